"""Golden values for Tests/BackpropTests/GPTGoldenTests.swift: the GPT of torch_gpt.py (Scripts/gpt_module.py) on
two small configurations, in float64 from float32 parameters.

    ~/peers/bin/python Tests/Fixtures/golden_gpt.py     # writes Tests/Fixtures/gpt-golden-*.safetensors

For each configuration: the initial state dict (float32, with the vocabulary and heads in the metadata, as a
PyTorch user would save it), one batch's logits, loss and every parameter's gradient, then three AdamW steps
(torch_gpt.py's optimizer and schedule, warmup 2 of 5 iterations, lr 1e-2, gradient norm clipped to 0.05 so that
clipping acts) on three batches of windows of a fixed token sequence, and the parameters after them.
"""
import os, sys
import torch
from safetensors.torch import save_file
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "Scripts"))
from gpt_module import GPT, optimizer, rate

here = os.path.dirname(__file__)
for name, (V, T, C, H, L, B) in {"multihead": (11, 8, 16, 4, 2, 3), "head32": (11, 8, 32, 1, 2, 2)}.items():
    torch.manual_seed(0)
    model = GPT(V, T, C, H, L)
    initial = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    vocab = ",".join(str(b) for b in range(97, 97 + V))
    save_file(initial, os.path.join(here, f"gpt-golden-{name}-initial.safetensors"),
              metadata={"backprop.text.vocabulary": vocab, "backprop.gpt.heads": str(H)})
    model = model.double()
    g = torch.Generator().manual_seed(1)
    corpus = torch.randint(V, (40,), generator=g)
    starts = torch.randint(len(corpus) - T - 1, (4, B), generator=g)
    def batch(s):
        return (torch.stack([corpus[i:i + T] for i in s]), torch.stack([corpus[i + 1:i + T + 1] for i in s]))
    out = {"corpus": corpus.double(), "starts": starts.double()}
    x, y = batch(starts[0])
    logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits.view(-1, V), y.view(-1))
    loss.backward()
    out["logits"] = logits.detach()
    out["loss"] = loss.detach().view(1)
    for k, p in model.named_parameters():
        out["grad." + k] = p.grad.detach().clone()
    optim = optimizer(model, 1e-2)
    losses, norms = [], []
    for i in range(3):
        for group in optim.param_groups:
            group["lr"] = rate(i, 1e-2, 5, warmup=2)
        x, y = batch(starts[i + 1])
        loss = torch.nn.functional.cross_entropy(model(x).view(-1, V), y.view(-1))
        optim.zero_grad(set_to_none=True); loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)))
        optim.step(); losses.append(loss.item())
    out["step_losses"] = torch.tensor(losses, dtype=torch.float64)
    out["step_norms"] = torch.tensor(norms, dtype=torch.float64)
    assert min(norms) > 0.05, norms
    for k, p in model.named_parameters():
        out["after." + k] = p.detach().clone()
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(here, f"gpt-golden-{name}.safetensors"),
              metadata={"sizes": f"{V} {T} {C} {H} {L} {B}", "torch": torch.__version__})
    print(name, "loss", out["loss"].item(), "step losses", losses, "norms", norms)
