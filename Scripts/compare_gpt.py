"""The GPT side by side, on this machine, in one run (issue #28): `backprop text train --model gpt` against
PyTorch's ../shared/peers/torch_gpt.py and the sgemm floor of the same step (../shared/peers/gpt_floor.c), at 1 and
2 threads, on the small configuration (4 layers, 4 heads, width 128, context 64, batch 12) and the large one
(6, 6, 384, 256, 16); then sampling 500 bytes at batch 1: `backprop text sample` (key/value cache) against the
PyTorch module without a cache (each byte a forward pass over its window, as nanoGPT's generate does).
Prints a Markdown table of median seconds per iteration and the ratios.

    swift build -c release --product backprop && ~/peers/bin/python Scripts/compare_gpt.py [--iterations 200]
        [--large-iterations 10] [--threads 1 2] [--peers ../shared/peers] [--text FILE ...]

(--text defaults to Debian's fortunes, /usr/share/games/fortunes, as the recurrent text model uses.)
"""
import argparse, glob, json, os, re, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKPROP = os.path.join(ROOT, ".build", "release", "backprop")
sys.path.insert(0, os.path.join(ROOT, "Scripts"))

parser = argparse.ArgumentParser()
parser.add_argument("--iterations", type=int, default=200)
parser.add_argument("--large-iterations", type=int, default=10)
parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
parser.add_argument("--peers", default=os.path.join(ROOT, "..", "shared", "peers"))
parser.add_argument("--text", nargs="+", default=sorted(f for f in glob.glob("/usr/share/games/fortunes/*")
                                                       if not f.endswith((".dat", ".u8")) and os.path.isfile(f)))
args = parser.parse_args()
vocabulary = len(set(b"".join(open(f, "rb").read() for f in args.text)))
floor_binary = "/tmp/backprop-gpt-floor"
subprocess.run(["cc", "-O2", os.path.join(args.peers, "gpt_floor.c"), "-o", floor_binary, "-lopenblas"], check=True)


def ours(config, iterations, threads, output):
    L, H, C, T, B = config
    out = subprocess.run([BACKPROP, "text", "train", "--model", "gpt", "--text", *args.text, "--layers", str(L), "--heads", str(H),
                          "--width", str(C), "--context", str(T), "--batch-size", str(B), "--iterations", str(iterations),
                          "--eval-interval", str(iterations), "--threads", str(threads), "--json", "--output", output],
                         check=True, capture_output=True, text=True).stdout
    line = json.loads(out.splitlines()[-1])
    return line["seconds_per_iteration"], line["validation_loss"]


def torch_gpt(config, iterations, threads):
    L, H, C, T, B = config
    out = subprocess.run([sys.executable, os.path.join(args.peers, "torch_gpt.py"), str(L), str(H), str(C), str(T), str(B),
                          str(iterations), "1e-3", str(threads), *args.text], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"s/iter\(median\)=([0-9.]+)", out).group(1)), float(re.search(r"val_loss=([0-9.]+)", out).group(1))


def floor(config, iterations, threads):
    L, H, C, T, B = config
    out = subprocess.run([floor_binary, str(L), str(H), str(C), str(T), str(B), str(vocabulary), str(iterations)], check=True,
                         capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))).stdout
    return float(re.search(r"s/iter\(median\)=([0-9.]+)", out).group(1))


print("| configuration | threads | Backprop s/iter | PyTorch s/iter | floor s/iter | vs PyTorch | vs floor |")
print("|---|---|---|---|---|---|---|")
folder = tempfile.mkdtemp()
model = os.path.join(folder, "gpt.safetensors")
for config, iterations in [((4, 4, 128, 64, 12), args.iterations), ((6, 6, 384, 256, 16), args.large_iterations)]:
    if iterations == 0:
        continue
    for threads in args.threads:
        mine, _ = ours(config, iterations, threads, model if config[2] == 128 else os.path.join(folder, "large.safetensors"))
        if config[2] == 128 and not os.path.exists(model):
            raise SystemExit("the small configuration must run first (its model is sampled)")
        theirs, _ = torch_gpt(config, iterations, threads)
        bottom = floor(config, max(iterations, 20), threads)
        print(f"| {'-'.join(map(str, config))} | {threads} | {mine:.4f} | {theirs:.4f} | {bottom:.4f} | "
              f"{mine / theirs:.2f} | {mine / bottom:.2f} |", flush=True)

# Sampling 500 bytes at batch 1, one thread each, from the small model just trained.
import torch
from gpt_module import load
out = subprocess.run([BACKPROP, "text", "sample", "--model", model, "--length", "500", "--timing", "--seed", "1"],
                     check=True, capture_output=True)
ours_rate = float(re.search(r"([0-9.]+) bytes per second", out.stderr.decode()).group(1))
torch.set_num_threads(1); torch.manual_seed(0)
module, vocab, T, _ = load(model)
tokens = [vocab.index(10) if 10 in vocab else 0]
with torch.no_grad():
    start = time.perf_counter()
    for _ in range(500):
        logits = module(torch.tensor([tokens[-T:]]))[0, -1] / 0.8
        tokens.append(int(torch.multinomial(torch.softmax(logits, 0), 1)))
    theirs_rate = 500 / (time.perf_counter() - start)
print(f"\nSampling 500 bytes, batch 1, 1 thread: Backprop (key/value cache) {ours_rate:.0f} bytes/s, "
      f"PyTorch (no cache) {theirs_rate:.0f} bytes/s: {ours_rate / theirs_rate:.1f}x")
