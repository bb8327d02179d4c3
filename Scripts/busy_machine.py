"""Does a busy machine make more threads slower than one? Runs `backprop train` (784-128-10 ReLU, Adam, batch 64) at
1 and 2 threads, quiet and with one competing busy process that this script starts itself (a shell busy-loop, as in
issue #17), alternating the configurations, and prints the median seconds per epoch of each and the ratio of 2
threads to 1 in each condition (goal: ≤ 1.1 busy).

    swift build -c release --product backprop && python3 Scripts/busy_machine.py [--repeat 5] [--epochs 2] [--binary B]
"""
import argparse, json, os, statistics, subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKPROP = os.path.join(ROOT, ".build", "release", "backprop")


def epoch_seconds(binary, threads, epochs):
    out = subprocess.run([binary, "train", "--layers", "784-128-10", "--activation", "relu", "--optimizer", "adam",
                          "--learning-rate", "0.001", "--batch-size", "64", "--epochs", str(epochs), "--threads", str(threads),
                          "--json", "--output", "/tmp/busy-machine.safetensors"], check=True, capture_output=True, text=True).stdout
    return [json.loads(line)["epoch_seconds"] for line in out.splitlines() if line.startswith("{")]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--binary", default=BACKPROP, help="another build of backprop, to compare")
    a = parser.parse_args()
    times = {(busy, t): [] for busy in (False, True) for t in (1, 2)}
    for _ in range(a.repeat):
        for busy in (False, True):
            loop = subprocess.Popen(["sh", "-c", "while :; do :; done"]) if busy else None
            try:
                for threads in (1, 2):
                    times[(busy, threads)] += epoch_seconds(a.binary, threads, a.epochs)
            finally:
                if loop:
                    loop.kill()
                    loop.wait()
    print("| condition | 1 thread s/epoch | 2 threads s/epoch | 2 threads / 1 thread |")
    print("|---|---|---|---|")
    for busy in (False, True):
        one, two = statistics.median(times[(busy, 1)]), statistics.median(times[(busy, 2)])
        print(f"| {'one busy process' if busy else 'quiet'} | {one:.3f} | {two:.3f} | {two / one:.2f} |")


if __name__ == "__main__":
    main()
