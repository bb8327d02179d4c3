"""Records CartPole-v1 trajectories from Gymnasium for Tests/BackpropTests/CartPoleTests.swift.

    ~/peers/bin/python Scripts/record_cartpole.py > Tests/Fixtures/cartpole_trajectories.json

Each trajectory: Gymnasium's start state after reset(seed=k) (float64, from env.unwrapped.state), then per step the
action taken, the state (float64), the observation (float32), the reward and the terminated and truncated flags,
until the episode ends. Six trajectories take random actions (a seeded NumPy generator: short episodes that end by
termination), two follow a simple controller (push towards the side the pole leans to, counting its angular
velocity), which keeps the pole up until the 500-step truncation. The Gymnasium version is recorded in the file.
"""
import json, sys
import numpy as np
import gymnasium as gym

trajectories = []
for k in range(8):
    env = gym.make("CartPole-v1")
    observation, _ = env.reset(seed=k)
    start = [float(v) for v in env.unwrapped.state]
    rng = np.random.default_rng(100 + k)
    steps = []
    while True:
        x, x_dot, theta, theta_dot = env.unwrapped.state
        action = int(rng.integers(2)) if k < 6 else int(theta + 0.5 * theta_dot + 0.01 * x + 0.1 * x_dot > 0)
        observation, reward, terminated, truncated, _ = env.step(action)
        steps.append({"action": action, "state": [float(v) for v in env.unwrapped.state],
                      "observation": [float(v) for v in observation], "reward": float(reward),
                      "terminated": bool(terminated), "truncated": bool(truncated)})
        if terminated or truncated:
            break
    trajectories.append({"seed": k, "start_state": start, "start_observation": [float(v) for v in np.float32(start)],
                         "steps": steps})
    print(f"trajectory {k}: {len(steps)} steps, terminated {steps[-1]['terminated']}, truncated {steps[-1]['truncated']}",
          file=sys.stderr)
json.dump({"gymnasium_version": gym.__version__, "environment": "CartPole-v1", "trajectories": trajectories},
          sys.stdout, separators=(",", ":"))
