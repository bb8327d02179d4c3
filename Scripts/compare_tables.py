#!/usr/bin/env python3
"""Backprop against scikit-learn's MLP on tables, side by side in one run.

Writes scikit-learn's bundled breast-cancer, wine, iris and digits tables (classification) and diabetes
(regression) as CSV with a header, and a 200 000-row, 40-feature, 5-class make_classification table (~71 MB),
into FOLDER (default /tmp/backprop-tables; never inside the repository). Then, on each small table, runs
../shared/peers/sklearn_mlp.py (one hidden layer of 100, adam, 200 epochs, batch 64, seeded 80/20 split,
StandardScaler) and `backprop train` with the same settings, and prints their test accuracy (or R²). On the large
table it times pandas.read_csv against Backprop's reader (best of --repeat), runs 5 epochs of a 128-64 network in
both under /usr/bin/time -v (fit seconds, accuracy, peak RSS), and with --csv-packages also times the Swift CSV
packages (Benchmarks/CSVReaders, built here with swift build -c release).

Needs numpy, pandas and scikit-learn (run it with the peers venv, e.g. ~/peers/bin/python), and a release build:
    swift build -c release && ~/peers/bin/python Scripts/compare_tables.py [--folder DIR] [--csv-packages]
"""
import argparse, json, os, re, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = [("breast_cancer", "classification"), ("wine", "classification"), ("iris", "classification"),
         ("digits", "classification"), ("diabetes", "regression")]


def write_tables(folder):
    import numpy as np, pandas as pd
    from sklearn import datasets
    os.makedirs(folder, exist_ok=True)
    for name, _ in SMALL:
        path = os.path.join(folder, f"{name}.csv")
        if not os.path.exists(path):
            getattr(datasets, f"load_{name}")(as_frame=True).frame.to_csv(path, index=False)
    path = os.path.join(folder, "synthetic.csv")
    if not os.path.exists(path):
        X, y = datasets.make_classification(n_samples=200_000, n_features=40, n_informative=20, n_classes=5, random_state=0)
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(40)])
        frame["target"] = y
        frame.to_csv(path, index=False, float_format="%.6g")


def timed(command):
    """Runs command under /usr/bin/time -v; returns (stdout, peak RSS in MB)."""
    result = subprocess.run(["/usr/bin/time", "-v"] + command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {result.stderr.strip()[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) / 1024
    return result.stdout, rss


def sklearn(peers, path, task, hidden, epochs):
    out, rss = timed([sys.executable, os.path.join(peers, "sklearn_mlp.py"), path, "target", task, hidden, str(epochs)])
    fields = dict(re.findall(r"(\w+)=([\w.\-]+)", out))
    metric = float(fields["test_accuracy"] if task == "classification" else fields["test_r2"])
    return metric, float(fields["fit_seconds"]), rss


def backprop(binary, path, task, layers, epochs, threads):
    command = [binary, "train", "--data", path, "--layers", layers, "--epochs", str(epochs), "--optimizer", "adam",
               "--learning-rate", "0.001", "--batch-size", "64", "--json"]
    if threads:
        command += ["--threads", str(threads)]
    out, rss = timed(command)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    last = lines[-1]
    metric = last["test_accuracy"] if task == "classification" else last["test_r2"]
    return metric, sum(line["epoch_seconds"] for line in lines), lines[0]["read_seconds"], rss


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", default="/tmp/backprop-tables")
    parser.add_argument("--backprop", default=os.path.join(ROOT, ".build/release/backprop"))
    parser.add_argument("--peers", default=os.path.join(ROOT, "../shared/peers"))
    parser.add_argument("--repeat", type=int, default=3, help="reads of the large table per reader (best kept)")
    parser.add_argument("--threads", type=int, default=None, help="backprop --threads (default: all cores)")
    parser.add_argument("--csv-packages", action="store_true", help="also time yaslab/CSV.swift and swiftcsv/SwiftCSV")
    args = parser.parse_args()
    if os.path.abspath(args.folder).startswith(ROOT + os.sep):
        sys.exit("--folder must be outside the repository")
    write_tables(args.folder)
    print(f"{time.strftime('%Y-%m-%d')}, {os.uname().nodename}, {os.cpu_count()} cores; tables in {args.folder}\n")

    print("| table | task | scikit-learn | Backprop | difference | sklearn fit s | Backprop train s |")
    print("|---|---|---|---|---|---|---|")
    for name, task in SMALL:
        path = os.path.join(args.folder, f"{name}.csv")
        theirs, their_seconds, _ = sklearn(args.peers, path, task, "100", 200)
        ours, our_seconds, _, _ = backprop(args.backprop, path, task, "auto-100-auto", 200, args.threads)
        label = "accuracy" if task == "classification" else "R²"
        print(f"| {name} | {task} | {label} {theirs:.4f} | {label} {ours:.4f} | {ours - theirs:+.4f} "
              f"| {their_seconds:.2f} | {our_seconds:.2f} |")

    large = os.path.join(args.folder, "synthetic.csv")
    size = os.path.getsize(large) / 1e6
    import pandas as pd
    pandas_seconds = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        pd.read_csv(large)
        pandas_seconds.append(time.perf_counter() - start)
    theirs, their_seconds, their_rss = sklearn(args.peers, large, "classification", "128-64", 5)
    runs = [backprop(args.backprop, large, "classification", "auto-128-64-auto", 5, args.threads) for _ in range(args.repeat)]
    ours, our_seconds, _, our_rss = min(runs, key=lambda run: run[1])
    read_seconds = min(run[2] for run in runs)
    print(f"\n200 000 × 40, 5 classes ({size:.1f} MB), 5 epochs of 128-64 (best of {args.repeat} Backprop runs):\n")
    print("| | scikit-learn / pandas | Backprop | ratio |")
    print("|---|---|---|---|")
    print(f"| read the CSV (s, best of {args.repeat}) | {min(pandas_seconds):.3f} (pandas.read_csv) | {read_seconds:.3f} "
          f"| {min(pandas_seconds) / read_seconds:.1f}× faster |")
    print(f"| train 5 epochs (s) | {their_seconds:.2f} | {our_seconds:.3f} | {their_seconds / our_seconds:.1f}× faster |")
    print(f"| test accuracy | {theirs:.4f} | {ours:.4f} | {ours - theirs:+.4f} |")
    print(f"| peak RSS, whole run (MB) | {their_rss:.0f} | {our_rss:.0f} | |")
    floor_binary = os.path.join(args.folder, "table_gemm_floor")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "openblas"], capture_output=True, text=True).stdout.split()
    subprocess.run(["cc", "-O2", os.path.join(ROOT, "Scripts/table_gemm_floor.c"), "-o", floor_binary] + flags, check=True)
    out = subprocess.run([floor_binary, "160000", "64", "40", "128", "64", "5"], capture_output=True, text=True, check=True).stdout
    floor = 5 * float(out.split()[2])
    print(f"| GEMM floor of 5 epochs (s; Scripts/table_gemm_floor.c, 1 thread) | | {floor:.3f} "
          f"| {their_seconds / floor:.1f}× faster than scikit-learn; Backprop at {our_seconds / floor:.2f}× the floor |")

    if args.csv_packages:
        package = os.path.join(ROOT, "Benchmarks/CSVReaders")
        subprocess.run(["swift", "build", "-c", "release", "--package-path", package], check=True, capture_output=True)
        binary = os.path.join(package, ".build/release/CSVReaders")
        print(f"\nReading {size:.1f} MB into Float cells (Benchmarks/CSVReaders; Backprop best of {args.repeat}, "
              "the packages once):\n")
        print("| reader | seconds | × Backprop |")
        print("|---|---|---|")
        results = {}
        for reader, repeat in [("backprop", args.repeat), ("csv.swift", 1), ("swiftcsv", 1)]:
            out = subprocess.run([binary, large, str(repeat), reader], capture_output=True, text=True, check=True).stdout
            results[reader] = float(out.split()[1])
        results["pandas.read_csv"] = min(pandas_seconds)
        for reader, seconds in results.items():
            print(f"| {reader} | {seconds:.3f} | {seconds / results['backprop']:.1f} |")


if __name__ == "__main__":
    main()
