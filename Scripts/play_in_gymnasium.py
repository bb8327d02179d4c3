"""Loads a policy saved by `backprop rl train --output M` into PyTorch and plays it in Gymnasium's CartPole-v1.

    ~/peers/bin/python Scripts/play_in_gymnasium.py M [EPISODES]

The file is a state dict of torch.nn.Sequential(Linear(4, H), Dropout(p), ReLU(), Linear(H, 2)); it loads with
load_state_dict(strict=True) as it is. Actions are the arg-max of the logits (greedy, as `backprop rl play` takes
them by default); episodes start from reset(seed=episode). Prints the mean, minimum and maximum return.
"""
import sys
import gymnasium as gym
import torch
from safetensors.torch import load_file

path, episodes = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100
state = load_file(path)
hidden = state["0.weight"].shape[0]
policy = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.Dropout(0.0), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))
policy.load_state_dict(state, strict=True)
policy.eval()
env = gym.make("CartPole-v1")
returns = []
for episode in range(1, episodes + 1):
    observation, _ = env.reset(seed=episode)
    total = 0.0
    while True:
        with torch.no_grad():
            action = int(policy(torch.from_numpy(observation).unsqueeze(0)).argmax())
        observation, reward, terminated, truncated, _ = env.step(action)
        total += reward
        if terminated or truncated:
            break
    returns.append(total)
print(f"PyTorch + Gymnasium {gym.__version__} CartPole-v1, {episodes} episodes (greedy): mean return "
      f"{sum(returns) / len(returns):.1f}, minimum {min(returns):.0f}, maximum {max(returns):.0f}")
