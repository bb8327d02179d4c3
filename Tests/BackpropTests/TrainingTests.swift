@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

@Suite("Training")
struct TrainingTests {
    @Test func xor() throws {
        let data = Dataset(features: [0, 0, 0, 1, 1, 0, 1, 1], featureCount: 2, labels: [0, 1, 1, 0], classCount: 2)
        let network = Network(sizes: [2, 8, 2], activation: .tanh, initializer: .xavierUniform, seed: 1)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.5), batchSize: 0)
        for _ in 0..<500 { try trainer.trainEpoch(on: data) }
        let evaluation = try trainer.evaluate(on: data)
        #expect(evaluation.accuracy! >= 0.99, "XOR accuracy \(evaluation.accuracy!), loss \(evaluation.loss)")
        #expect(evaluation.loss < 0.05)
    }

    @Test func twoSpiralsReach95Percent() throws {
        let train = twoSpirals(count: 200, seed: 1), test = twoSpirals(count: 100, seed: 2)
        let network = Network(sizes: [2, 64, 64, 2], activation: .relu, initializer: .heNormal, seed: 3)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.1),
                              batchSize: 16, seed: 4)
        var accuracy = 0.0
        for _ in 0..<300 {
            try trainer.trainEpoch(on: train)
            accuracy = try trainer.evaluate(on: test).accuracy!
            if accuracy >= 0.97 { break }
        }
        #expect(accuracy >= 0.95, "two-spirals test accuracy \(accuracy)")
        // A linear model cannot separate the spirals: the hidden layers are doing the work.
        let linear = Network(inputSize: 2, layers: [Dense(inputSize: 2, outputSize: 2)])
        let linearTrainer = Trainer(network: linear, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.1), batchSize: 16)
        for _ in 0..<50 { try linearTrainer.trainEpoch(on: train) }
        #expect(try linearTrainer.evaluate(on: test).accuracy! < 0.75)
    }

    func trainedParameters(seed: UInt64, batchSize: Int = 8, microBatchSize: Int = 4096) throws -> [Float] {
        let network = Network(sizes: [2, 16, 2], activation: .sigmoid, initializer: .xavierUniform, seed: seed)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.3),
                              batchSize: batchSize, seed: seed, microBatchSize: microBatchSize)
        let data = twoSpirals(count: 50, seed: 9)
        for _ in 0..<5 { try trainer.trainEpoch(on: data) }
        return network.parameters.scalars
    }

    @Test func sameSeedGivesBitwiseIdenticalWeights() throws {
        try Parallel.withThreadCount(1) {
            let first = try trainedParameters(seed: 7), second = try trainedParameters(seed: 7)
            #expect(first.map(\.bitPattern) == second.map(\.bitPattern))
            #expect(try trainedParameters(seed: 8) != first)
        }
    }

    /// Full-batch gradient descent in micro-batches equals one big batch, up to summation order.
    @Test func microBatchesAccumulateToTheFullBatch() throws {
        let whole = try trainedParameters(seed: 5, batchSize: 0)
        let pieces = try trainedParameters(seed: 5, batchSize: 0, microBatchSize: 7)
        expectClose(pieces, whole.map(Double.init), relative: 1e-4, absolute: 1e-5)
    }

    /// One step of full-batch gradient descent is θ ← θ − α·∇L with ∇L computed on the whole set.
    @Test func fullBatchStepIsGradientDescent() throws {
        let data = twoSpirals(count: 20, seed: 3)
        let network = Network(sizes: [2, 5, 2], activation: .tanh, initializer: .xavierUniform, seed: 2)
        let before = network.parameters.copy()
        // ∇L by the network-level API, on the whole set at once.
        let all = Matrix(rows: 40, columns: 2), targets = Matrix(rows: 40, columns: 2)
        let indices = (0..<Int32(40)).map { $0 }
        indices.withUnsafeBufferPointer { data.gather(indices: $0, input: all, targets: targets) }
        let workspace = Workspace(for: network, capacity: 40)
        network.zeroGradients()
        let output = network.forward(all, workspace: workspace)
        _ = CrossEntropy().lossAndGradient(gradient: workspace.outputGradient(rows: 40), output: output, targets: targets)
        network.backward(all, workspace: workspace)
        let gradient = network.gradients.copy()

        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.25),
                              batchSize: 0, microBatchSize: 16)
        let report = try trainer.trainEpoch(on: data)
        #expect(report.stepCount == 1 && report.sampleCount == 40)
        let expected = zip(before.scalars, gradient.scalars).map { Double($0) - 0.25 * Double($1) }
        expectClose(network.parameters.scalars, expected, relative: 1e-5, absolute: 1e-6)
    }

    @Test func divergenceStopsWithAClearError() throws {
        let data = Dataset(features: [1, 2, 3, 4], featureCount: 1, targets: [1e30, 2e30, 3e30, 4e30], targetWidth: 1)
        let network = Network(inputSize: 1, layers: [Dense(inputSize: 1, outputSize: 1)])
        let trainer = Trainer(network: network, loss: MeanSquaredError(), optimizer: SGD(learningRate: 10), batchSize: 2)
        #expect {
            for _ in 0..<10 { try trainer.trainEpoch(on: data) }
        } throws: { error in
            guard case .diverged(let epoch, let batch, _) = error as? TrainingError else { return false }
            return epoch >= 1 && batch >= 1 && "\(error)".contains("lower learning rate")
        }
        #expect(network.parameters.scalars.allSatisfy { $0.isFinite })
    }

    @Test func dataThatDoesNotFitTheNetworkIsAnError() {
        let data = Dataset(features: [0, 0, 0], featureCount: 3, labels: [0], classCount: 2)
        let trainer = Trainer(network: Network(sizes: [2, 2], activation: .relu, initializer: .zeros, seed: 0),
                              loss: CrossEntropy(), optimizer: SGD(learningRate: 0.1), batchSize: 1)
        #expect(throws: TrainingError.dataMismatch(expected: "2 features and 2 classes or targets", found: "3 features and 2")) {
            try trainer.trainEpoch(on: data)
        }
    }

    @Test func initializersAreSeededAndScaled() {
        func weights(_ initializer: Initializer, seed: UInt64) -> [Float] {
            Dense(inputSize: 200, outputSize: 100, initializer: initializer, seed: seed).weight.scalars
        }
        for initializer in [Initializer.normal001, .xavierUniform, .heNormal] {
            #expect(weights(initializer, seed: 1) == weights(initializer, seed: 1))
            #expect(weights(initializer, seed: 1) != weights(initializer, seed: 2))
        }
        func standardDeviation(_ w: [Float]) -> Double {
            let mean = w.reduce(0.0) { $0 + Double($1) } / Double(w.count)
            return (w.reduce(0.0) { $0 + pow(Double($1) - mean, 2) } / Double(w.count)).squareRoot()
        }
        // 20 000 draws: the sample standard deviation is within 2% of the target.
        #expect(abs(standardDeviation(weights(.normal001, seed: 3)) / 0.01 - 1) < 0.02)
        #expect(abs(standardDeviation(weights(.heNormal, seed: 3)) / (2.0 / 200).squareRoot() - 1) < 0.02)
        let xavier = weights(.xavierUniform, seed: 3), bound = Float((6.0 / 300).squareRoot())
        #expect(xavier.allSatisfy { abs($0) <= bound })
        #expect(abs(standardDeviation(xavier) / (Double(bound) / 3.0.squareRoot()) - 1) < 0.02)
        #expect(Dense(inputSize: 3, outputSize: 4, initializer: .heNormal).bias.scalars == [0, 0, 0, 0])
    }

    @Test func generatorIsTheReferenceXoshiro() {
        // xoshiro256** from state (1, 2, 3, 4): the reference implementation's first outputs.
        var generator = SeededGenerator(seed: 0)
        generator.state = (1, 2, 3, 4)
        #expect((0..<3).map { _ in generator.next() } == [11520, 0, 1509978240])
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42)
        var x = Array(0..<100), y = Array(0..<100)
        a.shuffle(&x); b.shuffle(&y)
        #expect(x == y && x != Array(0..<100) && x.sorted() == Array(0..<100))
    }
}
