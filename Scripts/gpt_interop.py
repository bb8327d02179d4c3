"""Interop of `backprop text train --model gpt` with PyTorch, both ways (issue #28):

1. a model Backprop saved loads strictly into Scripts/gpt_module.py's GPT (torch_gpt.py's module) and greedy decoding
   from the same prompt gives the same text in both;
2. a model PyTorch trained (a few hundred steps of torch_gpt.py's loop here) and saved as a plain state dict loads
   into `backprop text sample`, and greedy decoding again gives the same text.

    ~/peers/bin/python Scripts/gpt_interop.py MODEL.safetensors CORPUS_FILE... [--backprop PATH] [--prompt TEXT] [--length N]

Exits 1 if any text differs.
"""
import argparse, os, subprocess, sys, tempfile
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
sys.path.insert(0, os.path.dirname(__file__))
from gpt_module import GPT, optimizer, rate, greedy, load

parser = argparse.ArgumentParser()
parser.add_argument("model"); parser.add_argument("corpus", nargs="+")
parser.add_argument("--backprop", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "backprop"))
parser.add_argument("--prompt", default="The "); parser.add_argument("--length", type=int, default=300)
parser.add_argument("--torch-iterations", type=int, default=300)
args = parser.parse_args()
torch.set_num_threads(1)


def backprop_greedy(path):
    out = subprocess.run([args.backprop, "text", "sample", "--model", path, "--top-k", "1", "--prime", args.prompt,
                          "--length", str(args.length)], capture_output=True, check=True).stdout
    return out[:args.length]


def torch_greedy(model, vocab, T):
    index = {b: i for i, b in enumerate(vocab)}
    return bytes(vocab[i] for i in greedy(model, [index[b] for b in args.prompt.encode()], args.length, T))


def compare(what, ours, theirs):
    same = ours == theirs
    prefix = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    print(f"{what}: {'identical' if same else f'differ from byte {prefix}'} ({len(ours)} bytes)")
    print("  backprop:", ours[:120]); print("  pytorch: ", theirs[:120])
    return same


ok = True
model, vocab, T, H = load(args.model)
ok &= compare("Backprop-trained model", backprop_greedy(args.model), torch_greedy(model, vocab, T))

# PyTorch trains a model of the same shape on the same corpus and saves its state dict.
data = b"".join(open(f, "rb").read() for f in args.corpus)
vocab = sorted(set(data)); index = {b: i for i, b in enumerate(vocab)}
ids = torch.tensor([index[b] for b in data]); train = ids[:int(len(ids) * 0.9)]
V, C = model.tok.weight.shape; L = len(model.blocks)
torch.manual_seed(1)
trained = GPT(V, T, C, H, L); optim = optimizer(trained, 1e-3)
for i in range(args.torch_iterations):
    for g in optim.param_groups:
        g["lr"] = rate(i, 1e-3, args.torch_iterations)
    start = torch.randint(len(train) - T - 1, (12,))
    x = torch.stack([train[s:s + T] for s in start]); y = torch.stack([train[s + 1:s + T + 1] for s in start])
    loss = F.cross_entropy(trained(x).view(-1, V), y.view(-1))
    optim.zero_grad(set_to_none=True); loss.backward(); torch.nn.utils.clip_grad_norm_(trained.parameters(), 1.0); optim.step()
trained.eval()
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "torch-gpt.safetensors")
    save_file({k: v.contiguous() for k, v in trained.state_dict().items()}, path,
              metadata={"backprop.text.vocabulary": ",".join(map(str, vocab)), "backprop.gpt.heads": str(H)})
    ok &= compare(f"PyTorch-trained model ({args.torch_iterations} iterations, loss {loss.item():.3f})",
                  backprop_greedy(path), torch_greedy(trained, vocab, T))
sys.exit(0 if ok else 1)
