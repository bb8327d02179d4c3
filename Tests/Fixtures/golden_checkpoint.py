"""Writes Tests/Fixtures/torch-sequential.safetensors with the safetensors library from a PyTorch
Sequential(Linear(3, 4), Tanh(), Linear(4, 2)), plus the metadata Backprop needs to rebuild it, and prints the
model's outputs on a fixed input (pasted into CheckpointTests.swift).

    python3 Tests/Fixtures/golden_checkpoint.py
"""
import json, os
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
layers = [{"type": "dense", "inputSize": 3, "outputSize": 4}, {"type": "tanh"}, {"type": "dense", "inputSize": 4, "outputSize": 2}]
path = os.path.join(os.path.dirname(__file__), "torch-sequential.safetensors")
save_file(model.state_dict(), path, metadata={"backprop.layers": json.dumps(layers), "backprop.input_size": "3", "written_by": "safetensors.torch"})
x = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.25, -0.75]])
with torch.no_grad():
    print("outputs:", model(x).reshape(-1).tolist())
