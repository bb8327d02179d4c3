"""Inference latency side by side, on this machine, in one run: Backprop (`backprop benchmark --json`, which calls
`FrozenNetwork.forward(_:workspace:)` from Swift, and reports `Network.forward(_:workspace:)` too), PyTorch (`model(x)` under `torch.inference_mode()`) and onnxruntime
(`InferenceSession.run`, sequential execution) on the same saved weights, 1 thread each by default. Prints a Markdown
table of median microseconds per call (and p90) for each network and batch size, and the ratios to onnxruntime.

    swift build -c release && ~/peers/bin/python Scripts/compare_inference.py [--calls 10000] [--threads 1]
        [--batch-sizes 1 32] [--rounds 2]

Each network is trained by `backprop train` for one epoch on Fashion-MNIST and saved; PyTorch loads that file
(nn.Sequential, the same state-dict names), and the ONNX graph is built from the same tensors (Gemm with transB and
Relu nodes, what torch.onnx.export writes for nn.Linear and nn.ReLU). Before timing, the three outputs on one batch
are checked to agree (to 1e-4 relative).

The peers are timed from Python, so their figures include the interpreter's call overhead; the table also gives
the median of an onnxruntime session whose graph is a single Identity of the same input (what a call costs with no
arithmetic), so that onnxruntime's time in its kernels can be read off as the difference. Backprop's figure has no
such overhead: it is what a Swift program that embeds the model pays per call. The measurements are interleaved
(every peer once per round, --rounds rounds) and the table keeps each one's smallest median over the rounds, so a
noisy moment on the machine hurts all of them alike.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKPROP = os.path.join(ROOT, ".build", "release", "backprop")
NETWORKS = ["784-128-10", "784-512-512-10"]


def train(layers, folder):
    """Trains `layers` for one epoch with `backprop train` and returns the saved file."""
    path = os.path.join(folder, f"mlp-{layers}.safetensors")
    subprocess.run([BACKPROP, "train", "--layers", layers, "--epochs", "1", "--threads", "1", "--json",
                    "--output", path], check=True, capture_output=True)
    return path


def backprop(path, batch, calls, threads):
    out = subprocess.run([BACKPROP, "benchmark", "--model", path, "--batch-size", str(batch), "--calls", str(calls),
                          "--threads", str(threads), "--json"], check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    return result["median_microseconds"], result["p90_microseconds"], result["network_forward_median_microseconds"]


def timed(call, calls, warmup=1000):
    """Median and p90 of `calls` timed calls, in microseconds."""
    for _ in range(warmup):
        call()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        call()
        samples.append((clock() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.9 * len(samples)) - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--networks", nargs="+", default=NETWORKS)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)

    import numpy as np
    import onnx
    import onnxruntime
    import torch
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    torch.set_num_threads(args.threads)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL

    def session(graph):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(model)
        return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def onnx_mlp(tensors, count):
        nodes, initializers, name = [], [], "x"
        for i in range(count):
            w, b = f"{2 * i}.weight", f"{2 * i}.bias"
            initializers += [numpy_helper.from_array(tensors[w], w), numpy_helper.from_array(tensors[b], b)]
            nodes.append(helper.make_node("Gemm", [name, w, b], [f"z{i}"], transB=1))
            name = f"z{i}"
            if i < count - 1:
                nodes.append(helper.make_node("Relu", [name], [f"a{i}"]))
                name = f"a{i}"
        nodes.append(helper.make_node("Identity", [name], ["y"]))
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", tensors["0.weight"].shape[1]])]
        outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", tensors[f"{2 * count - 2}.weight"].shape[0]])]
        return session(helper.make_graph(nodes, "mlp", inputs, outputs, initializers))

    def empty(features):
        value = helper.make_tensor_value_info
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "empty",
                                  [value("x", TensorProto.FLOAT, ["n", features])],
                                  [value("y", TensorProto.FLOAT, ["n", features])])
        return session(graph)

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for layers in args.networks:
            sizes = [int(s) for s in layers.split("-")]
            path = train(layers, folder)
            tensors = load_file(path)
            count = len(sizes) - 1
            modules = []
            for i in range(count):
                modules.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
                if i < count - 1:
                    modules.append(torch.nn.ReLU())
            model = torch.nn.Sequential(*modules).eval()
            model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()})
            ort, identity = onnx_mlp(tensors, count), empty(sizes[0])
            for batch in args.batch_sizes:
                x = np.random.default_rng(0).random((batch, sizes[0]), dtype=np.float32)
                tx = torch.from_numpy(x)
                with torch.inference_mode():
                    expected = model(tx).numpy()
                got = ort.run(None, {"x": x})[0]
                if not np.allclose(got, expected, rtol=1e-4, atol=1e-4):
                    sys.exit(f"{layers}: onnxruntime and PyTorch disagree by {np.abs(got - expected).max()}")
                best = {}
                for _ in range(args.rounds):
                    with torch.inference_mode():
                        measured = {
                            "backprop": backprop(path, batch, args.calls, args.threads),
                            "torch": timed(lambda: model(tx), args.calls),
                            "onnxruntime": timed(lambda: ort.run(None, {"x": x}), args.calls),
                            "empty": timed(lambda: identity.run(None, {"x": x}), args.calls),
                        }
                    for key, value in measured.items():
                        if key not in best or value[0] < best[key][0]:
                            best[key] = value
                rows.append((layers, batch, best))
                print(f"{layers} batch {batch}: " + ", ".join(f"{k} {v[0]:.1f}" for k, v in best.items()), file=sys.stderr)

    print(f"\nInference, {args.threads} thread(s), median (p90) µs per call over {args.calls} calls, best of "
          f"{args.rounds} interleaved rounds\n")
    print("| network | batch | Backprop frozen | Backprop network | PyTorch | onnxruntime | onnxruntime, empty graph "
          "| frozen / onnxruntime | frozen / (onnxruntime − empty) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for layers, batch, best in rows:
        b, t, o, e = (best[k] for k in ("backprop", "torch", "onnxruntime", "empty"))
        kernels = o[0] - e[0]
        print(f"| {layers} | {batch} | {b[0]:.1f} ({b[1]:.1f}) | {b[2]:.1f} | {t[0]:.1f} ({t[1]:.1f}) | {o[0]:.1f} ({o[1]:.1f}) "
              f"| {e[0]:.1f} | {b[0] / o[0]:.2f} | {b[0] / kernels:.2f} |")


if __name__ == "__main__":
    main()
