"""The GPT of ../shared/peers/torch_gpt.py as an importable module (sizes as arguments), and the byte-level
generation rule of `backprop text sample`, for the golden fixture, the interop check and the comparison script.

The module, its names and its initialization are torch_gpt.py's: token + learned position embeddings; N pre-norm
blocks (LayerNorm without bias -> causal self-attention, one fused QKV projection and an output projection ->
residual; LayerNorm -> Linear(C, 4C) -> GELU (erf) -> Linear(4C, C) -> residual); final LayerNorm; the output head
tied to the token embedding; no biases; normal(0, 0.02), output projections normal(0, 0.02/sqrt(2N)).
"""
import math
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.C, self.H = C, H
        self.ln1 = nn.LayerNorm(C, bias=False); self.qkv = nn.Linear(C, 3 * C, bias=False)
        self.proj = nn.Linear(C, C, bias=False)
        self.ln2 = nn.LayerNorm(C, bias=False); self.up = nn.Linear(C, 4 * C, bias=False)
        self.down = nn.Linear(4 * C, C, bias=False)

    def forward(self, x):
        b, t, _ = x.shape
        C, H = self.C, self.H
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (u.view(b, t, H, C // H).transpose(1, 2) for u in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).contiguous().view(b, t, C))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, V, T, C, H, L):
        super().__init__()
        self.tok = nn.Embedding(V, C); self.pos = nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block(C, H) for _ in range(L)); self.ln = nn.LayerNorm(C, bias=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if name.endswith(("proj.weight", "down.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, x):
        h = self.tok(x) + self.pos(torch.arange(x.shape[1]))
        for block in self.blocks:
            h = block(h)
        return self.ln(h) @ self.tok.weight.t()


def optimizer(model, lr, weight_decay=0.1):
    """torch_gpt.py's AdamW: decay on the matrices only."""
    decay = [p for p in model.parameters() if p.dim() >= 2]; rest = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.99), eps=1e-8)


def rate(i, lr, iters, warmup=100):
    """torch_gpt.py's schedule (its warmup of 100 as an argument)."""
    if i < warmup:
        return lr * (i + 1) / (warmup + 1)
    ratio = (i - warmup) / max(1, iters - warmup)
    return lr / 10 + 0.5 * (1 + math.cos(math.pi * ratio)) * (lr - lr / 10)


@torch.no_grad()
def greedy(model, prompt, length, T):
    """`backprop text sample --top-k 1`: each next token the argmax given the window; when the window would pass T
    tokens it restarts from the last ceil(T/2) of them."""
    tokens = list(prompt); start = max(0, len(tokens) - T); out = []
    for _ in range(length):
        logits = model(torch.tensor([tokens[start:]]))[0, -1]
        nxt = int(torch.argmax(logits)); tokens.append(nxt); out.append(nxt)
        if len(tokens) - start > T:
            start = len(tokens) - (T + 1) // 2
    return out


def load(path):
    """A model saved by `backprop text train --model gpt` (or in its format): (module, vocabulary, context, heads).
    The file's state dict loads strictly; a training checkpoint's optimizer.* tensors are left out."""
    from safetensors.torch import load_file, safe_open
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
    state = {k: v for k, v in load_file(path).items() if not k.startswith("optimizer.")}
    vocab = [int(b) for b in metadata["backprop.text.vocabulary"].split(",")]
    V, C = state["tok.weight"].shape; T = state["pos.weight"].shape[0]
    L = len([k for k in state if k.endswith(".qkv.weight")]); H = int(metadata["backprop.gpt.heads"])
    model = GPT(V, T, C, H, L)
    model.load_state_dict(state, strict=True)
    return model.eval(), vocab, T, H
