@_spi(Internals) import Backprop
import Benchmark
import Foundation
import Synchronization

/// Fashion-MNIST when installed, else random bytes of the same shape (the timing does not depend on the pixels).
let data: (train: Dataset, test: Dataset) = {
    if let real = try? Dataset.mnist() { return real }
    var generator = SeededGenerator(seed: 0)
    func random(_ count: Int) -> Dataset {
        Dataset(images: (0..<count * 784).map { _ in UInt8(truncatingIfNeeded: generator.next()) }, featureCount: 784,
                labels: (0..<count).map { _ in UInt8(generator.nextIndex(below: 10)) }, classCount: 10)
    }
    return (random(60_000), random(10_000))
}()

// Resident-memory and CPU-time sampling allocate inside the measured window, so they are left out here;
// peak memory is measured on the whole `backprop train` run (see README).
let metrics: [BenchmarkMetric] = [.wallClock, .mallocCountTotal, .instructions]

/// One optimizer step (gather, forward, loss, backward, update) per iteration, after a warm-up step.
func trainingStep(_ name: String, sizes: [Int], activation: ActivationKind, batchSize: Int, threads: Int,
                  optimizer: some Optimizer = SGD(learningRate: 0.01), besideBusyThread: Bool = false) {
    trainingStep(name, batchSize: batchSize, threads: threads, optimizer: optimizer, besideBusyThread: besideBusyThread) {
        Network(sizes: sizes, activation: activation, initializer: .xavierUniform, seed: 0)
    }
}

/// A thread that keeps one CPU busy (an empty loop) from its start until ``stop()``: the other busy process of
/// issue 17's contended case, inside the benchmark's process.
final class BusyThread: Sendable {
    private let running = Atomic<Bool>(true)

    init() {
        let thread = Thread { [self] in
            var spins = 0
            while running.load(ordering: .relaxed) { spins &+= 1 }
            blackHole(spins)
        }
        thread.start()
    }

    func stop() { running.store(false, ordering: .relaxed) }
}

/// The same for any network `makeNetwork` builds (called once per run of the benchmark closure); with
/// `besideBusyThread`, while a ``BusyThread`` competes for the CPUs.
func trainingStep(_ name: String, batchSize: Int, threads: Int, optimizer: some Optimizer, besideBusyThread: Bool = false,
                  network makeNetwork: @escaping @Sendable () -> Network) {
    Benchmark("\(name), \(threads) thread(s)\(besideBusyThread ? ", beside a busy thread" : "")",
              configuration: .init(metrics: metrics, warmupIterations: 3, maxDuration: .seconds(3))) { benchmark in
        let busy = besideBusyThread ? BusyThread() : nil
        defer { busy?.stop() }
        Parallel.setThreadCount(threads)
        let trainer = Trainer(network: makeNetwork(), loss: CrossEntropy(), optimizer: optimizer, batchSize: batchSize)
        let size = batchSize == 0 ? data.train.count : batchSize
        let indices = (0..<Int32(data.train.count)).map { $0 }
        indices.withUnsafeBufferPointer { all in
            // package-benchmark runs this closure several times: warm up each new trainer (the optimizer allocates
            // its state at its first step) outside the measurement.
            _ = try! trainer.trainBatch(UnsafeBufferPointer(rebasing: all[0..<size]), data: data.train)
            var start = size
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                if start + size > all.count { start = 0 }
                blackHole(try! trainer.trainBatch(UnsafeBufferPointer(rebasing: all[start..<(start + size)]), data: data.train))
                start += size
            }
            benchmark.stopMeasurement()
        }
    }
}

/// 784-128-ReLU-[Residual(Dense 128→128, BatchNorm 128, ReLU)]-10.
@Sendable func residualBatchNormNetwork() -> Network {
    Network(inputSize: 784, layers: [
        Dense(inputSize: 784, outputSize: 128, initializer: .heNormal, seed: 1), ReLU(),
        Residual([Dense(inputSize: 128, outputSize: 128, initializer: .heNormal, seed: 2), BatchNorm(featureCount: 128),
                  ReLU()]),
        Dense(inputSize: 128, outputSize: 10, initializer: .xavierUniform, seed: 3),
    ])
}

let benchmarks: @Sendable () -> Void = {
    // What the harness itself allocates per measured sample, to subtract from the counts below.
    Benchmark("Empty (harness overhead)", configuration: .init(metrics: metrics, maxDuration: .seconds(1))) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(0) }
    }

    for threads in [1, 2] {
        trainingStep("Step 784-64-10 sigmoid SGD batch 64", sizes: [784, 64, 10], activation: .sigmoid,
                     batchSize: 64, threads: threads)
        trainingStep("Step 784-128-10 relu SGD batch 64", sizes: [784, 128, 10], activation: .relu,
                     batchSize: 64, threads: threads)
        trainingStep("Step 784-128-10 relu Adam batch 64", sizes: [784, 128, 10], activation: .relu,
                     batchSize: 64, threads: threads, optimizer: Adam(learningRate: 0.001))
        trainingStep("Full-batch step 784-64-10 sigmoid", sizes: [784, 64, 10], activation: .sigmoid,
                     batchSize: 0, threads: threads)
        // The contended case (issue 17): another thread keeps one of the CPUs busy. With 2 threads the step must not
        // take much longer than with 1 (Scripts/busy_machine.py measures the same with a busy process).
        trainingStep("Step 784-128-10 relu Adam batch 64", sizes: [784, 128, 10], activation: .relu,
                     batchSize: 64, threads: threads, optimizer: Adam(learningRate: 0.001), besideBusyThread: true)
    }

    // Core v2 layers, 1 thread: a residual block with batch normalization, batch normalization on its own, and the
    // same residual network trained with `trainStep(input:targets:)` on batches of the caller's own.
    trainingStep("Step 784-128-res(128-BN-relu)-10 SGD batch 64", batchSize: 64, threads: 1,
                 optimizer: SGD(learningRate: 0.01), network: residualBatchNormNetwork)
    trainingStep("Step 784-128-BN-relu-10 Adam batch 64", batchSize: 64, threads: 1,
                 optimizer: Adam(learningRate: 0.001)) {
        Network(inputSize: 784, layers: [Dense(inputSize: 784, outputSize: 128, initializer: .heNormal, seed: 1),
                                         BatchNorm(featureCount: 128), ReLU(),
                                         Dense(inputSize: 128, outputSize: 10, initializer: .xavierUniform, seed: 2)])
    }
    Benchmark("trainStep 784-128-res(128-BN-relu)-10 SGD batch 64 (own matrices), 1 thread(s)",
              configuration: .init(metrics: metrics, warmupIterations: 3, maxDuration: .seconds(3))) { benchmark in
        Parallel.setThreadCount(1)
        let trainer = Trainer(network: residualBatchNormNetwork(), loss: CrossEntropy(),
                              optimizer: SGD(learningRate: 0.01), batchSize: 64)
        // 20 batches of 64 gathered and scaled beforehand: the measured step is the trainer's alone.
        let batches = (0..<20).map { b in
            let input = Matrix(rows: 64, columns: 784), targets = Matrix(rows: 64, columns: 10)
            let indices = (Int32(b * 64)..<Int32((b + 1) * 64)).map { $0 }
            indices.withUnsafeBufferPointer { data.train.gather(indices: $0, input: input, targets: targets) }
            return (input: input, targets: targets)
        }
        _ = try! trainer.trainStep(input: batches[0].input, targets: batches[0].targets)  // warm-up
        var b = 1
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            if b == batches.count { b = 0 }
            blackHole(try! trainer.trainStep(input: batches[b].input, targets: batches[b].targets))
            b += 1
        }
        benchmark.stopMeasurement()
    }
    // Beside "Step 784-128-10 relu Adam batch 64": the optimizer is only known at run time (`any Optimizer`).
    let optimizers: [String: any Optimizer] = ["adam": Adam(learningRate: 0.001), "sgd": SGD(learningRate: 0.01)]
    let chosen: any Optimizer = optimizers["adam"]!
    trainingStep("Step 784-128-10 relu Adam batch 64, optimizer chosen at run time", batchSize: 64, threads: 1,
                 optimizer: chosen) {
        Network(sizes: [784, 128, 10], activation: .relu, initializer: .xavierUniform, seed: 0)
    }

    // One REINFORCE episode on CartPole (4-128-2 policy, dropout 0.6, Adam): acting step by step, then the update.
    for algorithm in [PolicyGradientAlgorithm.reinforce, .actorCritic] {
        Benchmark("RL episode CartPole \(algorithm.rawValue) 4-128-2, 1 thread(s)",
                  configuration: .init(metrics: metrics, warmupIterations: 3, maxDuration: .seconds(3))) { benchmark in
            Parallel.setThreadCount(1)
            let policy = Network(inputSize: 4, layers: [Dense(inputSize: 4, outputSize: 128), Dropout(probability: 0.6, seed: 1),
                                                        ReLU(), Dense(inputSize: 128, outputSize: 2)], initializer: .pytorchDefault, seed: 1)
            let value = Network(inputSize: 4, layers: [Dense(inputSize: 4, outputSize: 128), ReLU(), Dense(inputSize: 128, outputSize: 1)],
                                initializer: .pytorchDefault, seed: 2)
            let agent = PolicyGradientTrainer(policy: policy, optimizer: Adam(learningRate: 0.01), algorithm: algorithm,
                                              valueNetwork: value, valueOptimizer: Adam(learningRate: 0.01), seed: 3)
            let cartPole = CartPole(seed: 4)
            _ = try! agent.trainEpisode(in: cartPole)  // warm-up: the optimizers make their state at their first step
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { blackHole(try! agent.trainEpisode(in: cartPole)) }
            benchmark.stopMeasurement()
        }
    }

    // One step of `backprop train --model lstm|gru --hidden 128`: each image 28 steps of 28 pixels, the last hidden
    // state into a dense head; Adam, batch 64.
    for threads in [1, 2] {
        for (cell, gates) in [("LSTM", RecurrentCell.lstm), ("GRU", .gru)] {
            trainingStep("Step \(cell) 128 rows-of-28 Adam batch 64", batchSize: 64, threads: threads,
                         optimizer: Adam(learningRate: 0.001)) {
                let rnn: any Layer = gates == .lstm ? LSTM(inputSize: 28, hiddenSize: 128, returnsSequences: false, seed: 1)
                    : GRU(inputSize: 28, hiddenSize: 128, returnsSequences: false, seed: 1)
                return Network(inputSize: 784, layers: [rnn, Dense(inputSize: 128, outputSize: 10, seed: 2)], names: ["rnn", "head"])
            }
        }
    }

    // One step of `backprop text train` (defaults): 50 streams × 50 bytes, one-hot over a 100-byte vocabulary,
    // LSTM 128, per-step dense head, cross-entropy, global-norm clipping, Adam.
    for threads in [1, 2] {
        Benchmark("Text step LSTM 128 vocabulary 100 sequence 50 batch 50, \(threads) thread(s)",
                  configuration: .init(metrics: metrics, warmupIterations: 2, maxDuration: .seconds(5))) { benchmark in
            Parallel.setThreadCount(threads)
            var generator = SeededGenerator(seed: 3)
            let bytes = (0..<200_000).map { _ in UInt8(32 + generator.nextIndex(below: 100)) }
            let corpus = TextCorpus(bytes: bytes)
            let trainer = TextTrainer(model: TextModel(vocabulary: corpus.vocabulary, hiddenSize: 128, seed: 1),
                                      optimizer: Adam(learningRate: 0.002), sequenceLength: 50, batchSize: 50, clipNorm: 5)
            let chunks = TextCorpus.chunkCount(corpus.training, streams: 50, sequenceLength: 50)
            _ = try! trainer.trainStep(corpus.training, chunk: 0)  // warm-up: the optimizer's state
            var k = 1
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                if k == chunks { k = 0; trainer.resetState() }
                blackHole(try! trainer.trainStep(corpus.training, chunk: k))
                k += 1
            }
            benchmark.stopMeasurement()
        }
    }

    // One step of the GPT of `backprop text train --model gpt` (torch_gpt.py's configuration), and of the larger one;
    // generating 100 bytes with the key/value cache.
    for threads in [1, 2] {
        for (l, h, c, t, b) in [(4, 4, 128, 64, 12), (6, 6, 384, 256, 16)] {
            Benchmark("GPT step \(l) layers \(h) heads width \(c) context \(t) batch \(b) vocabulary 100, \(threads) thread(s)",
                      configuration: .init(metrics: metrics, warmupIterations: 2, maxDuration: .seconds(5))) { benchmark in
                Parallel.setThreadCount(threads)
                var generator = SeededGenerator(seed: 3)
                let corpus = TextCorpus(bytes: (0..<200_000).map { _ in UInt8(32 + generator.nextIndex(below: 100)) }, trainingFraction: 0.9)
                let model = GPTModel(vocabulary: corpus.vocabulary, layers: l, heads: h, width: c, context: t, seed: 1)
                let trainer = GPTTrainer(model: model, batchSize: b, schedule: WarmupCosineSchedule(base: 1e-3, minimum: 1e-4, warmup: 100, iterations: 2000))
                try! trainer.step(corpus.training, using: &generator)  // warm-up: the optimizer's state
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { blackHole(try! trainer.step(corpus.training, using: &generator)) }
                benchmark.stopMeasurement()
            }
        }
    }
    Benchmark("GPT generate 100 bytes, 4 layers width 128 context 64, key/value cache",
              configuration: .init(metrics: metrics, warmupIterations: 1, maxDuration: .seconds(5))) { benchmark in
        Parallel.setThreadCount(1)
        let model = GPTModel(vocabulary: (32..<132).map(UInt8.init), layers: 4, heads: 4, width: 128, context: 64, seed: 1)
        for _ in benchmark.scaledIterations { blackHole(try! model.generate(length: 100, prompt: [65], topK: 10)) }
    }

    // One step of the small CNN (`backprop train --model cnn`), batch 64.
    for threads in [1, 2] {
    Benchmark("Step CNN conv32-pool-conv64-pool-128-10 Adam batch 64, \(threads) thread(s)",
              configuration: .init(metrics: metrics, warmupIterations: 2, maxDuration: .seconds(5))) { benchmark in
        Parallel.setThreadCount(threads)
        let image = ImageShape(channels: 1, height: 28, width: 28)
        let conv1 = Conv2D(input: image, outputChannels: 32, kernelSize: 3, padding: 1, seed: 1)
        let pool1 = Pool2D(.max, input: conv1.output)
        let conv2 = Conv2D(input: pool1.output, outputChannels: 64, kernelSize: 3, padding: 1, seed: 2)
        let pool2 = Pool2D(.max, input: conv2.output)
        let network = Network(inputSize: 784, layers: [conv1, ReLU(), pool1, conv2, ReLU(), pool2, Flatten(),
                                                       Dense(inputSize: pool2.output.count, outputSize: 128, seed: 3), ReLU(),
                                                       Dense(inputSize: 128, outputSize: 10, seed: 4)])
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: Adam(learningRate: 0.001), batchSize: 64)
        let indices = (0..<Int32(64 * 20)).map { $0 }
        indices.withUnsafeBufferPointer { all in
            _ = try! trainer.trainBatch(UnsafeBufferPointer(rebasing: all[0..<64]), data: data.train)  // warm-up
            var start = 64
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                if start + 64 > all.count { start = 0 }
                blackHole(try! trainer.trainBatch(UnsafeBufferPointer(rebasing: all[start..<(start + 64)]), data: data.train))
                start += 64
            }
            benchmark.stopMeasurement()
        }
    }
    }

    Benchmark("Inference 784-128-10 on 10 000 images",
              configuration: .init(metrics: metrics, warmupIterations: 1, maxDuration: .seconds(3))) { benchmark in
        let network = Network(sizes: [784, 128, 10], activation: .relu, initializer: .heNormal, seed: 0)
        let evaluator = Evaluator(network: network, loss: CrossEntropy())
        blackHole(try evaluator.evaluate(on: data.test))  // warm-up outside the measurement
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try evaluator.evaluate(on: data.test)) }
        benchmark.stopMeasurement()
    }

    // The latency a server sees: one call of a frozen network (dense weights packed once) and of the network as
    // trained, at batch 1 and 32, 1 thread (Scripts/compare_inference.py runs the same beside PyTorch and
    // onnxruntime). Zero allocations per call is part of the claim.
    for sizes in [[784, 128, 10], [784, 512, 512, 10]] {
        for rows in [1, 32] {
            let name = sizes.map(String.init).joined(separator: "-")
            let network = Network(sizes: sizes, activation: .relu, initializer: .heNormal, seed: 0)
            let frozen = network.frozen()
            let input = Matrix(rows: rows, columns: 784, values: (0..<rows * 784).map { Float($0 % 251) / 251 })
            Benchmark("Inference latency \(name), batch \(rows), frozen, 1 thread",
                      configuration: .init(metrics: metrics, warmupIterations: 100, maxDuration: .seconds(2))) { benchmark in
                Parallel.setThreadCount(1)
                let workspace = Workspace(for: frozen, capacity: rows)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { blackHole(frozen.forward(input, workspace: workspace)) }
                benchmark.stopMeasurement()
            }
            Benchmark("Inference latency \(name), batch \(rows), network, 1 thread",
                      configuration: .init(metrics: metrics, warmupIterations: 100, maxDuration: .seconds(2))) { benchmark in
                Parallel.setThreadCount(1)
                let workspace = Workspace(for: network, capacity: rows, backward: false)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { blackHole(network.forward(input, workspace: workspace)) }
                benchmark.stopMeasurement()
            }
        }
    }

    // One inference batch as the evaluator runs it (gather 256 test images, forward pass into a planned
    // workspace): the allocation count per batch is the claim here, "zero in steady state".
    Benchmark("Inference batch 784-128-10, 256 images (gather + forward)",
              configuration: .init(metrics: metrics, warmupIterations: 1, maxDuration: .seconds(3))) { benchmark in
        let network = Network(sizes: [784, 128, 10], activation: .relu, initializer: .heNormal, seed: 0)
        let batch = 256  // the Evaluator's default batch size
        let workspace = Workspace(for: network, capacity: batch, backward: false)
        let input = Matrix(rows: batch, columns: 784), targets = Matrix(rows: batch, columns: 10)
        let indices = (0..<Int32(data.test.count)).map { $0 }
        indices.withUnsafeBufferPointer { all in
            var start = 0
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                if start + batch > all.count { start = 0 }
                data.test.gather(indices: UnsafeBufferPointer(rebasing: all[start..<(start + batch)]), input: input,
                                 targets: targets)
                blackHole(network.forward(input, workspace: workspace))  // evaluation mode
                start += batch
            }
            benchmark.stopMeasurement()
        }
    }

    // The five GEMMs of a 784-128-10 step at batch 64 (forward Z1, Z2; backward dW2, dA1, dW1), one thread.
    let shapes: [(String, (m: Int, k: Int, n: Int), Bool, Bool)] = [
        ("Z1 = X·W1 64×784·784×128", (64, 784, 128), false, false),
        ("Z2 = A1·W2 64×128·128×10", (64, 128, 10), false, false),
        ("dW2 += A1ᵀ·dZ2 128×64·64×10", (128, 64, 10), true, false),
        ("dA1 = dZ2·W2ᵀ 64×10·10×128", (64, 10, 128), false, true),
        ("dW1 += Xᵀ·dZ1 784×64·64×128", (784, 64, 128), true, false),
    ]
    for (name, shape, transposeA, transposeB) in shapes {
        Benchmark("sgemm \(name)", configuration: .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: .kilo)) { benchmark in
            Parallel.setThreadCount(1)
            let a = transposeA ? Matrix(rows: shape.k, columns: shape.m) : Matrix(rows: shape.m, columns: shape.k)
            let b = transposeB ? Matrix(rows: shape.n, columns: shape.k) : Matrix(rows: shape.k, columns: shape.n)
            let c = Matrix(rows: shape.m, columns: shape.n)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { gemm(c, a, b, transposeA: transposeA, transposeB: transposeB, beta: 1) }
            benchmark.stopMeasurement()
        }
    }

    // The optimizer's update alone, over the 101 770 parameters of 784-128-10 (one thread, subnormals flushed as
    // in a step): a square root and a division per parameter, the part of a step that no GEMM can hide.
    Benchmark("Adam update 101 770 parameters (784-128-10), 1 thread",
              configuration: .init(metrics: metrics, warmupIterations: 3, maxDuration: .seconds(2))) { benchmark in
        Parallel.setThreadCount(1)
        let count = 784 * 128 + 128 + 128 * 10 + 10
        let parameters = randomInput(1, count), gradients = randomInput(1, count)
        var adam = Adam(learningRate: 0.001)
        adam.step(parameters: parameters, gradients: gradients)  // allocates its moments
        withSubnormalsFlushedToZero {
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { adam.step(parameters: parameters, gradients: gradients) }
            benchmark.stopMeasurement()
        }
    }

    // Every element-wise activation, forward then backward over a 256×1024 batch (262 144 elements; the same count for
    // each, so the times compare per element), 1 thread; and a user's own activation, written only through the
    // `Activation` protocol in this package (as a user's would be): the protocol's default passes, specialized here.
    let activations = ActivationKind.allCases.map { ($0.rawValue, $0.makeLayer()) }
        + [("user-defined squareplus (protocol)", Squareplus() as any Layer)]
    for (name, layer) in activations {
        Benchmark("Activation \(name) forward+backward 256×1024, 1 thread",
                  configuration: .init(metrics: [.wallClock, .mallocCountTotal], warmupIterations: 3, maxDuration: .seconds(1))) { benchmark in
            Parallel.setThreadCount(1)
            let x = randomInput(256, 1024), y = Matrix(rows: 256, columns: 1024)
            let dy = randomInput(256, 1024), dx = Matrix(rows: 256, columns: 1024), context = LayerContext()
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                layer.forward(output: y, input: x, context: context)
                layer.backward(dInput: dx, dOutput: dy, input: x, output: y, context: context)
            }
            benchmark.stopMeasurement()
        }
    }

    // Every optimizer's update over a 784-128-10 network's parameters, 1 thread (compare with Adam's).
    let updates: [(String, any Optimizer)] = [("SGD momentum", SGD(learningRate: 0.01, momentum: 0.9)), ("Adagrad", Adagrad()),
                                              ("Adadelta", Adadelta()), ("RMSprop", RMSprop()),
                                              ("RMSprop centered momentum", RMSprop(momentum: 0.9, centered: true)), ("AdamW", AdamW())]
    for (name, optimizer) in updates {
        Benchmark("\(name) update 101 770 parameters (784-128-10), 1 thread",
                  configuration: .init(metrics: metrics, warmupIterations: 3, maxDuration: .seconds(1))) { benchmark in
            Parallel.setThreadCount(1)
            let count = 784 * 128 + 128 + 128 * 10 + 10
            let parameters = randomInput(1, count), gradients = randomInput(1, count)
            var optimizer = optimizer
            optimizer.step(parameters: parameters, gradients: gradients)  // allocates its state
            withSubnormalsFlushedToZero {
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { optimizer.step(parameters: parameters, gradients: gradients) }
                benchmark.stopMeasurement()
            }
        }
    }

    Benchmark("sigmoid forward 64×128",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: .kilo)) { benchmark in
        let x = randomInput(64, 128), y = Matrix(rows: 64, columns: 128)
        let layer = Sigmoid(), context = LayerContext()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { layer.forward(output: y, input: x, context: context) }
        benchmark.stopMeasurement()
    }
}

/// Values in [−8, 8], so that the kernels see realistic inputs (not zeros).
func randomInput(_ rows: Int, _ columns: Int) -> Matrix {
    var generator = SeededGenerator(seed: 1)
    return Matrix(rows: rows, columns: columns, values: (0..<(rows * columns)).map { _ in Float(16 * generator.nextUniform() - 8) })
}

/// Squareplus, `f(z) = (z + √(z² + 4))/2` (Barron 2021), `f′(z) = (1 + z/√(z² + 4))/2`: a smooth ReLU that a user
/// might write, through the protocol only.
struct Squareplus: Activation {
    func value(_ z: Float) -> Float { (z + (z * z + 4).squareRoot()) / 2 }
    func derivative(input z: Float, output y: Float) -> Float { (1 + z / (z * z + 4).squareRoot()) / 2 }
}
