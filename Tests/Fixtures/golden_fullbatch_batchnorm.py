"""Fixtures for StepTests' full-batch batch-normalization test, written by PyTorch (no Backprop metadata).

    ~/peers/bin/python Tests/Fixtures/golden_fullbatch_batchnorm.py   # needs torch, numpy, safetensors

A torch.nn.Sequential(Linear(784, 32), BatchNorm1d(32), ReLU(), Linear(32, 10)) in float32, seeded with
torch.manual_seed(0), is saved as it starts (torch-batchnorm-initial.safetensors: the state_dict as
safetensors.torch writes it, num_batches_tracked as int64). It then takes 3 full-batch steps of SGD (lr 0.1,
cross-entropy, mean) on the first 5 000 Fashion-MNIST training images (pixels / 255) and is saved again
(torch-batchnorm-after3.safetensors). The Swift test loads the first file into a network defined in code, takes the
same 3 steps, which Backprop splits into micro-batches of 4 096 and 904 rows, and compares every tensor with the
second file.
"""
import gzip, os, struct, sys
import numpy as np
import torch
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))
root = os.environ.get("DATA_DIR", "/usr/share/datasets/fashion-mnist")

def read(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    _, _, ndim = struct.unpack(">HBB", data[:4])
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)

x = torch.from_numpy(read(f"{root}/train-images-idx3-ubyte.gz")[:5000].reshape(5000, 784).astype(np.float32) / 255.0)
y = torch.from_numpy(read(f"{root}/train-labels-idx1-ubyte.gz")[:5000].astype(np.int64))

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(784, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{here}/torch-batchnorm-initial.safetensors")
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
model.train()
for step in range(3):
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    print(f"step {step + 1}: loss {loss.item():.6f}", file=sys.stderr)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{here}/torch-batchnorm-after3.safetensors")
print(f"torch {torch.__version__}", file=sys.stderr)
