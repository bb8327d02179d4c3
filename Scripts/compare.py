"""Side-by-side epoch times: `backprop train --json` and the peer programs (PyTorch, the text's NumPy program) on
the same settings, one after the other in one run. Prints a Markdown table of median seconds per epoch and the
ratios. Usage (from the repository root, after `swift build -c release`):

    python3 Scripts/compare.py [--threads 1 2] [--python /tmp/peers/bin/python] [--peers ../shared/peers]

The peers need PyTorch / NumPy in the interpreter given by --python; a peer that cannot run is reported as such.
"""
import argparse, json, os, re, statistics, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKPROP = os.path.join(ROOT, ".build", "release", "backprop")

def backprop(args):
    out = subprocess.run([BACKPROP, "train", "--json", *args], check=True, capture_output=True, text=True).stdout
    epochs = [json.loads(line) for line in out.splitlines()]
    return statistics.median(e["epoch_seconds"] for e in epochs), epochs[-1]["test_accuracy"]

def peer(python, peers, script, args):
    try:
        out = subprocess.run([python, script, *args], cwd=peers, check=True, capture_output=True, text=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        return None, f"not run ({error.__class__.__name__})"
    seconds = re.search(r"s/epoch(?:\(median\))?=([0-9.]+)", out).group(1)
    accuracy = re.search(r"test_acc=([0-9.]+)", out).group(1)
    return float(seconds), float(accuracy)

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--python", default="/tmp/peers/bin/python")
    parser.add_argument("--peers", default=os.path.join(ROOT, "..", "shared", "peers"))
    parser.add_argument("--epochs", type=int, default=5)
    a = parser.parse_args()
    e = str(a.epochs)
    print("| work | threads | Backprop s/epoch (acc) | peer | peer s/epoch (acc) | Backprop ÷ peer |")
    print("|---|---|---|---|---|---|")
    for t in a.threads:
        rows = [
            ("784-64-10 sigmoid SGD 0.1 batch 64",
             ["--layers", "784-64-10", "--activation", "sigmoid", "--learning-rate", "0.1", "--batch-size", "64"],
             "torch", "torch_mlp.py", ["784-64-10", "sigmoid", "sgd", "0.1", "64", e, str(t)]),
            ("784-128-10 ReLU SGD 0.1 batch 64",
             ["--layers", "784-128-10", "--activation", "relu", "--init", "he", "--learning-rate", "0.1", "--batch-size", "64"],
             "torch", "torch_mlp.py", ["784-128-10", "relu", "sgd", "0.1", "64", e, str(t)]),
            ("784-64-10 sigmoid full batch (--preset seed)", ["--preset", "seed"],
             "numpy (float64)", "seed_numpy.py", [e]),
        ]
        for name, ours, peer_name, script, peer_args in rows:
            seconds, accuracy = backprop([*ours, "--epochs", e, "--threads", str(t), "--seed", "0"])
            env_threads = {"OMP_NUM_THREADS": str(t), "OPENBLAS_NUM_THREADS": str(t)}
            os.environ.update(env_threads)
            peer_seconds, peer_accuracy = peer(a.python, a.peers, script, peer_args)
            ratio = f"{seconds / peer_seconds:.2f}" if peer_seconds else "–"
            peer_text = f"{peer_seconds:.3f} ({peer_accuracy:.4f})" if peer_seconds else peer_accuracy
            print(f"| {name} | {t} | {seconds:.3f} ({accuracy:.4f}) | {peer_name} | {peer_text} | {ratio} |", flush=True)

if __name__ == "__main__":
    sys.exit(main())
