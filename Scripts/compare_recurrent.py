"""Recurrent networks side by side, on this machine, in one run: `backprop train --model lstm|gru|rnn` against
PyTorch's torch_rnn_rows.py and the recurrent GEMM floor (../shared/peers/lstm_floor.c: only the cblas_sgemm calls
of an epoch), and `backprop text train` against torch_charlm.py, on identical settings. Prints a Markdown table of
seconds per epoch, the ratios to PyTorch (median epoch against median epoch) and to the floor (our best epoch against
the floor's best of 3, as lstm_floor.c reports it, with our median's ratio in brackets), and the final test accuracy
or validation bits per character.

    swift build -c release --product backprop && python3 Scripts/compare_recurrent.py [--threads 1 2]
        [--cells lstm gru] [--epochs 3] [--text-epochs 3] [--python ~/peers/bin/python] [--peers ../shared/peers]
        [--text FILE ...]   (default: Debian's fortunes, /usr/share/games/fortunes)

Images by rows: Fashion-MNIST (or DATA_DIR), hidden 128, Adam 0.001, batch 64. Text: LSTM 128, sequence 50,
50 streams, Adam 0.002, gradient norm clipped to 5.
"""
import argparse, glob, json, os, re, statistics, subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKPROP = os.path.join(ROOT, ".build", "release", "backprop")
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def backprop(args, key):
    """Median and best epoch seconds and the last epoch's `key` of one `backprop … --json` run."""
    out = subprocess.run([BACKPROP, *args, "--json"], check=True, capture_output=True, text=True).stdout
    epochs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    seconds = [e["epoch_seconds"] for e in epochs]
    return statistics.median(seconds), min(seconds), epochs[-1][key]


def peer(python, peers, script, args, threads, metric):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    try:
        out = subprocess.run([python, script, *args], cwd=peers, check=True, capture_output=True, text=True, env=env).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        return None, f"not run ({error.__class__.__name__})"
    return float(re.search(r"s/epoch\(median\)=([0-9.]+)", out).group(1)), float(re.search(metric + r"=([0-9.]+)", out).group(1))


def lstm_floor(peers, batch, hidden, steps, inputs, threads, gates):
    binary = "/tmp/backprop-lstm-floor"
    source = os.path.join(peers, "lstm_floor.c")
    if not os.path.exists(binary) or os.path.getmtime(binary) < os.path.getmtime(source):
        subprocess.run(["cc", "-O2", source, "-o", binary, "-I/usr/include/x86_64-linux-gnu/openblas-pthread",
                        "-lopenblas", "-lm"], check=True)
    out = subprocess.run([binary, *map(str, [batch, hidden, steps, inputs, threads, gates])],
                         check=True, capture_output=True, text=True).stdout
    return float(re.search(r"s/epoch=([0-9.]+)", out).group(1))


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "–"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--text-epochs", type=int, default=3)
    parser.add_argument("--python", default=os.path.expanduser("~/peers/bin/python"))
    parser.add_argument("--peers", default=os.path.join(ROOT, "..", "shared", "peers"))
    parser.add_argument("--text", nargs="*", default=None)
    a = parser.parse_args()
    peers = os.path.abspath(a.peers)
    text = a.text if a.text is not None else sorted(
        f for f in glob.glob("/usr/share/games/fortunes/*") if os.path.isfile(f) and not f.endswith((".dat", ".u8")))

    # PyTorch's figure is its median epoch, compared with ours; the floor's is its best of 3 epochs (lstm_floor.c), compared
    # with our best epoch (and, in brackets, our median): on a noisy host a median against a best would count the noise.
    print("| task | threads | Backprop s/epoch | PyTorch s/epoch | Backprop/PyTorch | GEMM floor s/epoch (best) | Backprop best s/epoch | Backprop/floor best (median) | Backprop result | PyTorch result |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for threads in a.threads:
        for cell in a.cells:
            ours, best, accuracy = backprop(["train", "--model", cell, "--hidden", "128", "--optimizer", "adam",
                                       "--learning-rate", "0.001", "--batch-size", "64", "--epochs", str(a.epochs),
                                       "--threads", str(threads), "--output", "/tmp/compare-recurrent.safetensors"],
                                      "test_accuracy")
            theirs, their_accuracy = peer(a.python, peers, "torch_rnn_rows.py",
                                          [cell, "128", "adam", "0.001", "64", str(a.epochs), str(threads)], threads, "test_acc")
            gemms = lstm_floor(peers, 64, 128, 28, 28, threads, GATES[cell])
            print(f"| {cell} 128, rows of Fashion-MNIST, {a.epochs} epochs | {threads} | {ours:.2f} | "
                  f"{theirs if isinstance(theirs, str) or theirs is None else f'{theirs:.2f}'} | {ratio(ours, theirs)} | "
                  f"{gemms:.2f} | {best:.2f} | {ratio(best, gemms)} ({ratio(ours, gemms)}) | accuracy {accuracy:.4f} | "
                  f"accuracy {their_accuracy} |", flush=True)
        if a.text_epochs > 0 and text:
            ours, _, bits = backprop(["text", "train", "--text", *text, "--epochs", str(a.text_epochs), "--threads", str(threads),
                                   "--output", "/tmp/compare-recurrent-text.safetensors"], "validation_bits_per_character")
            theirs, their_bits = peer(a.python, peers, "torch_charlm.py",
                                      ["lstm", "128", "50", "50", "0.002", str(a.text_epochs), str(threads), *text], threads,
                                      "val_bits_per_char")
            print(f"| text LSTM 128, {len(text)} files, {a.text_epochs} epochs | {threads} | {ours:.2f} | "
                  f"{theirs if isinstance(theirs, str) or theirs is None else f'{theirs:.2f}'} | {ratio(ours, theirs)} | – | – | – | "
                  f"{bits:.3f} bits/char | {their_bits} bits/char |", flush=True)


if __name__ == "__main__":
    main()
