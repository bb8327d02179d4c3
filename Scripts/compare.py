"""Side by side, on this machine, in one run: `backprop train --json`, the GEMM-only floor (the same cblas_sgemm
calls and nothing else, ../shared/peers/gemm_floor.c; for the CNN, Scripts/cnn_floor.c), for Adam with one thread
the GEMM+Adam floor (those calls plus torch.optim's Adam update of every parameter, Scripts/adam_floor.c: what no
trainer on this BLAS with that update can beat) and the peers (PyTorch's torch_mlp.py and torch_cnn.py, the text's
NumPy program seed_numpy.py) on identical settings. Prints a Markdown table of median seconds per epoch, the ratios to the peer and to the floors, test
accuracy and Backprop's peak resident memory.

    swift build -c release && python3 Scripts/compare.py [--threads 1 2] [--epochs 5] [--repeat 2] [--cnn]
        [--python /tmp/peers/bin/python] [--peers ../shared/peers]

--cnn compares the small CNN of `backprop train --model cnn` instead of the MLPs (about 10 minutes at 5 epochs).

The peers need PyTorch / NumPy in the interpreter given by --python; a peer that cannot run is reported as such.

For 2-thread rows the script also measures how long a cache line takes between two threads, before and after Backprop's
run and the floor's (Scripts/round_trip.c). This host sometimes runs its two virtual CPUs on different core complexes
for tens of seconds (a round trip of 240–360 ns instead of 55–85), and 2-thread programs that share data, OpenBLAS's
floor included, then slow down: the table gives both runs' longest round trip, and when one ran near and the other far
(≥ 200 ns) the pair is run again (up to --phase-retries times) so that Backprop is judged against a floor measured in
the same state.
"""
import argparse, json, os, platform, re, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKPROP = os.path.join(ROOT, ".build", "release", "backprop")

def backprop(args):
    """Median epoch seconds, final test accuracy and peak RSS (MB) of one `backprop train --json` run."""
    run = subprocess.run(["/usr/bin/time", "-f", "%M", BACKPROP, "train", "--json", *args],
                         check=True, capture_output=True, text=True)
    epochs = [json.loads(line) for line in run.stdout.splitlines()]
    rss = int(run.stderr.strip().splitlines()[-1]) / 1024
    return statistics.median(e["epoch_seconds"] for e in epochs), epochs[-1]["test_accuracy"], rss

def peer(python, peers, script, args, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    try:
        out = subprocess.run([python, script, *args], cwd=peers, check=True, capture_output=True, text=True, env=env).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        return None, f"not run ({error.__class__.__name__})"
    return float(re.search(r"s/epoch(?:\(median\))?=([0-9.]+)", out).group(1)), float(re.search(r"test_acc=([0-9.]+)", out).group(1))

def build(source, binary, flags):
    """Compiles `source` into `binary` unless the binary is newer than the source."""
    if not os.path.exists(binary) or os.path.getmtime(binary) < os.path.getmtime(source):
        subprocess.run(["cc", *flags, source, "-o", binary,
                        "-I/usr/include/x86_64-linux-gnu/openblas-pthread", "-lopenblas", "-lm"], check=True)
    return binary

def floor(peers, batch, hidden, threads):
    binary = build(os.path.join(peers, "gemm_floor.c"), "/tmp/backprop-gemm-floor", ["-O2"])
    out = subprocess.run([binary, str(batch), str(hidden), str(threads)], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"s/epoch=([0-9.]+)", out).group(1))

def cnn_floor(batch, threads):
    """The GEMMs of one epoch of the small CNN, as im2col convolutions make them (Scripts/cnn_floor.c)."""
    binary = build(os.path.join(ROOT, "Scripts", "cnn_floor.c"), "/tmp/backprop-cnn-floor", ["-O2"])
    out = subprocess.run([binary, str(batch), str(threads)], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"s/epoch=([0-9.]+)", out).group(1))

FAR_ROUND_TRIP = 200  # nanoseconds: the two threads do not share a cache (see Parallel.swift's measureRoundTrip)

def round_trip():
    """Nanoseconds for a cache line to go between two threads and back (Scripts/round_trip.c)."""
    binary = build(os.path.join(ROOT, "Scripts", "round_trip.c"), "/tmp/backprop-round-trip", ["-O2", "-pthread"])
    out = subprocess.run([binary], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"round_trip_ns=([0-9.]+)", out).group(1))

def with_round_trips(run):
    """`run()`'s result and the longer of the round trips measured just before and just after it."""
    before = round_trip()
    result = run()
    return result, max(before, round_trip())

def adam_floor(batch, hidden):
    """The GEMM+Adam floor with one thread (Scripts/adam_floor.c, vectorised for this CPU like Backprop's kernels)."""
    binary = build(os.path.join(ROOT, "Scripts", "adam_floor.c"), "/tmp/backprop-adam-floor",
                   ["-O3", "-march=native", "-fno-math-errno"])
    out = subprocess.run([binary, str(batch), str(hidden), "1"], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"s/epoch=([0-9.]+)", out).group(1))

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--python", default="/tmp/peers/bin/python")
    parser.add_argument("--peers", default=os.path.join(ROOT, "..", "shared", "peers"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cnn", action="store_true", help="the small CNN instead of the MLPs")
    parser.add_argument("--phase-retries", type=int, default=2,
                        help="runs a 2-thread pair again while one ran near and the other far apart (see above)")
    a = parser.parse_args()
    e = str(a.epochs)
    print(f"{time.strftime('%Y-%m-%d')}, {platform.node()}, {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
          f"median s/epoch of {a.epochs} epochs")
    print()
    print("| work | threads | Backprop s/epoch (acc) | peer | peer s/epoch (acc) | ÷ peer | GEMM floor | ÷ floor "
          "| GEMM+Adam floor (÷ peer) | peak RSS | round trip ns (Backprop, floor) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [
        ("CNN conv32-pool-conv64-pool-128-10 Adam 0.001 batch 64", 64, None,
         ["--model", "cnn", "--optimizer", "adam", "--learning-rate", "0.001", "--batch-size", "64"],
         "torch", "torch_cnn.py", lambda t: ["adam", "0.001", "64", e, str(t)]),
    ] if a.cnn else [
        ("784-64-10 sigmoid SGD 0.1 batch 64", 64, 64,
         ["--layers", "784-64-10", "--activation", "sigmoid", "--learning-rate", "0.1", "--batch-size", "64"],
         "torch", "torch_mlp.py", lambda t: ["784-64-10", "sigmoid", "sgd", "0.1", "64", e, str(t)]),
        ("784-128-10 ReLU Adam 0.001 batch 64", 64, 128,
         ["--layers", "784-128-10", "--activation", "relu", "--optimizer", "adam", "--learning-rate", "0.001", "--batch-size", "64"],
         "torch", "torch_mlp.py", lambda t: ["784-128-10", "relu", "adam", "0.001", "64", e, str(t)]),
        ("784-64-10 sigmoid full batch (--preset seed)", 60000, 64, ["--preset", "seed"],
         "numpy (float64)", "seed_numpy.py", lambda t: [e]),
    ]
    for _ in range(a.repeat):
        for t in a.threads:
            for name, batch, hidden, ours, peer_name, script, peer_args in rows:
                def ours_run(): return backprop([*ours, "--epochs", e, "--threads", str(t), "--seed", "0"])
                def floor_run(): return cnn_floor(batch, t) if a.cnn else floor(a.peers, batch, hidden, t)
                round_trips = "–"
                if t == 1:
                    seconds, accuracy, rss = ours_run()
                    floor_seconds = floor_run()
                else:
                    for attempt in range(a.phase_retries + 1):
                        (seconds, accuracy, rss), ours_trip = with_round_trips(ours_run)
                        floor_seconds, floor_trip = with_round_trips(floor_run)
                        same_phase = (ours_trip >= FAR_ROUND_TRIP) == (floor_trip >= FAR_ROUND_TRIP)
                        if same_phase or attempt == a.phase_retries:
                            break
                        print(f"<!-- {name}, {t} threads: {seconds:.3f} s against the floor's {floor_seconds:.3f} s, "
                              f"round trips {ours_trip:.0f} and {floor_trip:.0f} ns: run again -->", flush=True)
                    round_trips = f"{ours_trip:.0f}, {floor_trip:.0f}" + ("" if same_phase else " (phases differ)")
                peer_seconds, peer_accuracy = peer(a.python, a.peers, script, peer_args(t), t)
                ratio = f"{seconds / peer_seconds:.2f}" if peer_seconds else "–"
                peer_text = f"{peer_seconds:.3f} ({peer_accuracy:.4f})" if peer_seconds else peer_accuracy
                adam_text = "–"
                if "adam" in ours and t == 1 and not a.cnn:
                    adam_seconds = adam_floor(batch, hidden)
                    adam_text = f"{adam_seconds:.3f}" + (f" ({adam_seconds / peer_seconds:.2f})" if peer_seconds else "")
                print(f"| {name} | {t} | {seconds:.3f} ({accuracy:.4f}) | {peer_name} | {peer_text} | {ratio} | "
                      f"{floor_seconds:.3f} | {seconds / floor_seconds:.2f} | {adam_text} | {rss:.0f} MB | {round_trips} |",
                      flush=True)

if __name__ == "__main__":
    sys.exit(main())
