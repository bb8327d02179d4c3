"""Trains 784-128-10 ReLU on Fashion-MNIST for 3 epochs at batch 64 with every optimizer and prints a Markdown
table of the final test accuracy and losses (the README's optimizer table). Usage, from the repository root after
`swift build -c release`:  python3 Scripts/optimizers.py [--epochs 3] [--threads 2] [--data DIR]
"""
import argparse, json, os, subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKPROP = os.path.join(ROOT, ".build", "release", "backprop")
# A sensible learning rate for each: PyTorch's default where it has one, except RMSprop (its 0.01 default is
# too large for this network; 0.001 is the usual choice).
RATES = [("sgd", 0.1), ("momentum", 0.01), ("nesterov", 0.01), ("adagrad", 0.01), ("adadelta", 1.0),
         ("rmsprop", 0.001), ("adam", 0.001), ("adamw", 0.001)]

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data")
    a = parser.parse_args()
    print(f"| optimizer | learning rate | test accuracy | test loss | train loss | s/epoch |")
    print("|---|---|---|---|---|---|")
    for name, lr in RATES:
        args = [BACKPROP, "train", "--layers", "784-128-10", "--activation", "relu", "--init", "he",
                "--optimizer", name, "--learning-rate", str(lr), "--batch-size", "64", "--epochs", str(a.epochs),
                "--seed", "0", "--threads", str(a.threads), "--json"]
        if a.data: args += ["--data", a.data]
        lines = [json.loads(l) for l in subprocess.run(args, check=True, capture_output=True, text=True).stdout.splitlines()]
        last = lines[-1]
        seconds = sorted(l["epoch_seconds"] for l in lines)[len(lines) // 2]
        print(f"| {name} | {lr:g} | {last['test_accuracy']:.4f} | {last['test_loss']:.4f} | {last['train_loss']:.4f} | {seconds:.2f} |", flush=True)

if __name__ == "__main__":
    main()
