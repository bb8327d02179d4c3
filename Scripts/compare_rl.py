"""REINFORCE on CartPole-v1: Backprop and the PyTorch reference side by side, in one run, same seeds and settings.

    swift build -c release --product backprop
    ~/peers/bin/python Scripts/compare_rl.py [SEEDS] [MAX_EPISODES]      # default: 0-9, 1000

For each seed: `backprop rl train --seed S --episodes N --json` (4-128-2 policy, dropout 0.6 before the ReLU, Adam
0.01, γ 0.99, normalised returns, one update per episode, 1 thread) and ../shared/peers/torch_reinforce.py S N (the
same, in PyTorch with Gymnasium's CartPole-v1). Prints per seed the episode at which each solved (running return >
475) or '-', the environment steps and the environment steps per second of training, and Backprop's speed ÷ PyTorch's.
"""
import json, os, re, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
peers = os.path.join(os.path.dirname(root), "shared", "peers")
seeds = range(int(sys.argv[1].split("-")[0]), int(sys.argv[1].split("-")[1]) + 1) if len(sys.argv) > 1 else range(10)
episodes = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
backprop = os.path.join(root, ".build", "release", "backprop")

print(f"| seed | Backprop solved at | steps | steps/s | PyTorch solved at | steps | steps/s | speed ÷ PyTorch |")
print("|---|---|---|---|---|---|---|---|")
solved = [0, 0]
for seed in seeds:
    lines = subprocess.run([backprop, "rl", "train", "--seed", str(seed), "--episodes", str(episodes), "--json"],
                           check=True, capture_output=True, text=True).stdout.splitlines()
    ours = json.loads(lines[-1])
    text = subprocess.run([sys.executable, os.path.join(peers, "torch_reinforce.py"), str(seed), str(episodes)],
                          check=True, capture_output=True, text=True).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", text))
    theirs_steps, theirs_seconds = int(fields["env_steps"]), float(fields["seconds"])
    theirs_rate = theirs_steps / theirs_seconds
    ours_solved = ours["episodes"] if ours["stopped"] == "solved" else None
    theirs_solved = None if fields["solved_at_episode"] == "None" else int(fields["solved_at_episode"])
    solved[0] += ours_solved is not None
    solved[1] += theirs_solved is not None
    print(f"| {seed} | {ours_solved or '-'} | {ours['environment_steps']} | {ours['environment_steps_per_second']:.0f} | "
          f"{theirs_solved or '-'} | {theirs_steps} | {theirs_rate:.0f} | {ours['environment_steps_per_second'] / theirs_rate:.1f} |")
    sys.stdout.flush()
print(f"\nsolved within {episodes} episodes: Backprop {solved[0]} of {len(seeds)}, PyTorch {solved[1]} of {len(seeds)}")
