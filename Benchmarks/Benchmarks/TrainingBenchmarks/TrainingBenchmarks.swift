import Backprop
import Benchmark

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
func trainingStep(_ name: String, sizes: [Int], activation: ActivationKind, batchSize: Int, threads: Int) {
    Benchmark("\(name), \(threads) thread(s)",
              configuration: .init(metrics: metrics, warmupIterations: 3, maxDuration: .seconds(3))) { benchmark in
        BLAS.setThreadCount(threads)
        let network = Network(sizes: sizes, activation: activation, initializer: .xavierUniform, seed: 0)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.01),
                              batchSize: batchSize)
        let size = batchSize == 0 ? data.train.count : batchSize
        let indices = (0..<Int32(data.train.count)).map { $0 }
        indices.withUnsafeBufferPointer { all in
            var start = 0
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                if start + size > all.count { start = 0 }
                blackHole(trainer.trainBatch(UnsafeBufferPointer(rebasing: all[start..<(start + size)]), data: data.train))
                start += size
            }
            benchmark.stopMeasurement()
        }
    }
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
        trainingStep("Full-batch step 784-64-10 sigmoid", sizes: [784, 64, 10], activation: .sigmoid,
                     batchSize: 0, threads: threads)
    }

    Benchmark("Inference 784-128-10 on 10 000 images",
              configuration: .init(metrics: metrics, warmupIterations: 1, maxDuration: .seconds(3))) { benchmark in
        let network = Network(sizes: [784, 128, 10], activation: .relu, initializer: .heNormal, seed: 0)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.1), batchSize: 1000)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try trainer.evaluate(on: data.test)) }
        benchmark.stopMeasurement()
    }

    Benchmark("sgemm 64×784 · 784×128",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: .kilo)) { benchmark in
        BLAS.setThreadCount(1)
        let a = Matrix(rows: 64, columns: 784), b = Matrix(rows: 784, columns: 128), c = Matrix(rows: 64, columns: 128)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { gemm(c, a, b) }
        benchmark.stopMeasurement()
    }

    Benchmark("sigmoid forward 64×128",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: .kilo)) { benchmark in
        let x = Matrix(rows: 64, columns: 128), y = Matrix(rows: 64, columns: 128)
        benchmark.startMeasurement()
        let layer = Sigmoid()
        for _ in benchmark.scaledIterations { layer.forward(output: y, input: x) }
        benchmark.stopMeasurement()
    }
}
