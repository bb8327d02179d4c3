"""The vanishing gradient and its remedies, on a 10-layer MLP (784, nine hidden layers of 100, 10) trained on
Fashion-MNIST for 3 epochs with SGD (learning rate 0.1, batch 64, seed 0). For each setting: the mean gradient norm
of the first and of the last dense layer over the first epoch (`--log-grad-norms`), their ratio, and the test
accuracy after 3 epochs. Usage, after `swift build -c release`:  python3 Scripts/deep_experiment.py [--epochs 3]
"""
import argparse, json, os, subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKPROP = os.path.join(ROOT, ".build", "release", "backprop")
LAYERS = "-".join(["784"] + ["100"] * 9 + ["10"])
SETTINGS = [
    ("sigmoid, N(0, 0.01²)", ["--activation", "sigmoid", "--init", "normal001"]),
    ("tanh, Xavier", ["--activation", "tanh", "--init", "xavier"]),
    ("ReLU, He", ["--activation", "relu", "--init", "he"]),
    ("ReLU, He, batch norm", ["--activation", "relu", "--init", "he", "--batch-norm"]),
    ("ReLU, He, residual blocks", ["--activation", "relu", "--init", "he", "--residual"]),
    ("ReLU, He, residual + batch norm", ["--activation", "relu", "--init", "he", "--residual", "--batch-norm"]),
    ("sigmoid, N(0, 0.01²), residual + batch norm", ["--activation", "sigmoid", "--init", "normal001", "--residual", "--batch-norm"]),
]

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    a = parser.parse_args()
    print(f"10-layer MLP {LAYERS}, SGD 0.1, batch 64, {a.epochs} epochs, Fashion-MNIST\n")
    print("| setting | ‖∂L/∂W‖ first layer | ‖∂L/∂W‖ last layer | first ÷ last | test accuracy |")
    print("|---|---|---|---|---|")
    for name, flags in SETTINGS:
        run = subprocess.run([BACKPROP, "train", "--layers", LAYERS, *flags, "--learning-rate", "0.1", "--batch-size", "64",
                              "--epochs", str(a.epochs), "--seed", "0", "--log-grad-norms", "--json"],
                             capture_output=True, text=True)
        if run.returncode != 0:  # e.g. exploding activations: report the error line
            print(f"| {name} | – | – | – | {run.stderr.strip().removeprefix('backprop: error: ')} |", flush=True)
            continue
        epochs = [json.loads(line) for line in run.stdout.splitlines()]
        norms = epochs[0]["grad_norms"]  # per layer with parameters; dense layers first and last
        first, last = norms[0], norms[-1]
        print(f"| {name} | {first:.2e} | {last:.2e} | {first / last:.1e} | {epochs[-1]['test_accuracy']:.4f} |", flush=True)

if __name__ == "__main__":
    main()
