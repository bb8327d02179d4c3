"""Runs the original text's NumPy program (../shared/peers/seed_numpy.py) from the *same* initial weights that
`backprop train --preset seed --seed S` draws, and prints its test accuracy per epoch, in float64 (as the text)
and float32 (as Backprop). Compare with `backprop train --preset seed --json`: the trajectories should agree to
within float32 rounding. Usage: python3 Scripts/seed_trajectory.py EPOCHS [SEED]   (needs NumPy; DATA_DIR picks
the data folder.)
"""
import math, os, sys
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "peers"))
from idx import load  # noqa: E402

M64 = (1 << 64) - 1

class SeededGenerator:
    """Backprop's SeededGenerator: xoshiro256** seeded by SplitMix64, Box–Muller normals."""
    def __init__(self, seed):
        s = seed
        state = []
        for _ in range(4):
            s = (s + 0x9E3779B97F4A7C15) & M64
            z = s
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            state.append(z ^ (z >> 31))
        self.s = state

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.next() >> 11) * 2.0 ** -53

    def gaussian(self):
        u1 = 1 - self.uniform(); u2 = self.uniform()
        return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)

def initial_weights(seed):
    g = SeededGenerator(seed)
    w1 = np.array([g.gaussian() for _ in range(784 * 64)]).astype(np.float32) * np.float32(0.01)
    w2 = np.array([g.gaussian() for _ in range(64 * 10)]).astype(np.float32) * np.float32(0.01)
    return w1.reshape(784, 64), w2.reshape(64, 10)

def run(epochs, seed, dtype):
    xtr, ytr, xte, yte = load()
    x, xt = xtr.astype(dtype), xte.astype(dtype)
    y = np.eye(10, dtype=dtype)[ytr]
    w1, w2 = (w.astype(dtype) for w in initial_weights(seed))
    b1, b2 = np.zeros(64, dtype), np.zeros(10, dtype)
    sig = lambda v: 1 / (1 + np.exp(-v))
    n = len(x); lr = dtype(0.1); accs = []
    for _ in range(epochs):
        z1 = x @ w1 + b1; a1 = sig(z1); a2 = sig(a1 @ w2 + b2)
        dz2 = a2 - y
        dw2 = a1.T @ dz2 / n; db2 = dz2.sum(0) / n
        dz1 = (dz2 @ w2.T) * a1 * (1 - a1)
        dw1 = x.T @ dz1 / n; db1 = dz1.sum(0) / n
        w2 -= lr * dw2; b2 -= lr * db2; w1 -= lr * dw1; b1 -= lr * db1
        accs.append(float((np.argmax(sig(sig(xt @ w1 + b1) @ w2 + b2), 1) == yte).mean()))
    return accs

if __name__ == "__main__":
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    for dtype in (np.float64, np.float32):
        accs = run(epochs, seed, dtype)
        print(f"numpy-{np.dtype(dtype).name} seed={seed} test_accuracy per epoch: "
              + " ".join(f"{a:.4f}" for a in accs))
