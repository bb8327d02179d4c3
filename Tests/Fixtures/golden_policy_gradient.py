"""Golden values for Tests/BackpropTests/PolicyGradientTests.swift, from PyTorch autograd (float64).

    ~/peers/bin/python Tests/Fixtures/golden_policy_gradient.py

A policy Linear(4, 3) – ReLU – Linear(3, 2) with fixed weights, six CartPole-like states, the actions taken and the
rewards; returns G_t = r_t + 0.9 G_{t+1}, normalised by (G − mean) / (std + eps) (unbiased std, float32 eps), and
REINFORCE's loss −Σ_t Ĝ_t log π(a_t|s_t) as the classic example computes it (log_prob of a Categorical), with its
gradient for every parameter. Prints Swift literals.
"""
import torch
torch.set_default_dtype(torch.float64)
w1 = torch.tensor([[0.5, -0.3, 0.8, 0.1], [-0.6, 0.2, 0.4, -0.7], [0.3, 0.9, -0.2, 0.5]], requires_grad=True)
b1 = torch.tensor([0.1, -0.2, 0.05], requires_grad=True)
w2 = torch.tensor([[0.7, -0.4, 0.2], [-0.5, 0.6, 0.9]], requires_grad=True)
b2 = torch.tensor([0.02, -0.03], requires_grad=True)
states = torch.tensor([[0.01, 0.2, -0.03, -0.3], [0.02, 0.4, -0.04, -0.6], [0.03, 0.2, -0.05, -0.3],
                       [0.04, 0.39, -0.06, -0.58], [0.05, 0.58, -0.07, -0.88], [0.06, 0.78, -0.09, -1.2]])
actions = torch.tensor([1, 0, 1, 1, 0, 1])
rewards = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
R, returns = 0.0, []
for r in reversed(rewards):
    R = r + 0.9 * R
    returns.insert(0, R)
returns = torch.tensor(returns)
eps = torch.finfo(torch.float32).eps
normalised = (returns - returns.mean()) / (returns.std() + eps)
logits = torch.relu(states @ w1.T + b1) @ w2.T + b2
logp = torch.distributions.Categorical(logits=logits).log_prob(actions)
loss = -(logp * normalised).sum()
loss.backward()
lit = lambda t: "[" + ", ".join(repr(float(v)) for v in t.detach().reshape(-1).tolist()) + "]"
print("returns", lit(returns)); print("normalised", lit(normalised)); print("loss", repr(loss.item()))
print("dW1", lit(w1.grad)); print("db1", lit(b1.grad)); print("dW2", lit(w2.grad)); print("db2", lit(b2.grad))
print("probabilities", lit(torch.softmax(logits, 1)))
