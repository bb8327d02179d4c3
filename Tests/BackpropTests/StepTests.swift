@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

@Suite("Steps: whole-step batch statistics, your own batches, run-time optimizers, state dicts, exact sums")
struct StepTests {
    /// 20 features → 16 → batch norm → ReLU → dropout → residual (16 → 16, batch norm, tanh) → 3, with fixed weights.
    static func batchNormNetwork() -> Network {
        Network(inputSize: 20, layers: [
            Dense(inputSize: 20, outputSize: 16), BatchNorm(featureCount: 16), ReLU(), Dropout(probability: 0.25, seed: 5),
            Residual([Dense(inputSize: 16, outputSize: 16), BatchNorm(featureCount: 16), Tanh()]),
            Dense(inputSize: 16, outputSize: 3),
        ], initializer: .heNormal, seed: 11)
    }

    static let rows = 1000
    static let x = randomMatrix(rows, 20, seed: 12, in: -2...3)
    static let targets = oneHot((0..<rows).map { ($0 * 7) % 3 }, classCount: 3)

    @Test(arguments: [128, 333, 999])
    func aStepSplitIntoMicroBatchesHasTheWholeStepsStatisticsAndMasks(microBatchSize: Int) throws {
        let whole = Self.batchNormNetwork(), split = Self.batchNormNetwork()
        let wholeTrainer = Trainer(network: whole, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.2), batchSize: 0)
        let splitTrainer = Trainer(network: split, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.2), batchSize: 0,
                                   microBatchSize: microBatchSize)
        #expect(splitTrainer.batchStatisticsLayerCount == 2)
        for step in 0..<3 {
            let a = try wholeTrainer.trainStep(input: Self.x, targets: Self.targets)
            let b = try splitTrainer.trainStep(input: Self.x, targets: Self.targets)
            #expect(abs(a - b) <= 1e-5 * abs(a), "step \(step): loss \(a) whole, \(b) split")
        }
        for (a, b) in zip(whole.stateDict, split.stateDict) {
            expectClose(b.values, a.values.map(Double.init), relative: 1e-4, absolute: 1e-5, "\(a.name)")
        }
        // The running statistics moved once per step.
        #expect(split.stateDict.first { $0.name == "1.num_batches_tracked" }?.values == [3])
    }

    @Test func aOneRowStepWithBatchNormIsAnError() throws {
        let network = Self.batchNormNetwork()
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.1), batchSize: 4)
        let before = network.stateDict
        #expect(throws: TrainingError.batchTooSmall(rows: 1, reason: "batch normalization needs at least 2 rows to compute a variance in training")) {
            try trainer.trainStep(input: Self.x.rows(0..<1), targets: Self.targets.rows(0..<1))
        }
        #expect(network.stateDict == before)
        // An epoch whose last batch is one row stops there, with the same error, not a crash.
        let data = Dataset(features: Self.x.rows(0..<5).scalars, featureCount: 20, labels: [0, 1, 2, 0, 1], classCount: 3)
        #expect(throws: TrainingError.batchTooSmall(rows: 1, reason: "batch normalization needs at least 2 rows to compute a variance in training")) {
            try trainer.trainEpoch(on: data)
        }
        // Without batch normalization a 1-row step is fine.
        let plain = Trainer(network: Network(sizes: [20, 3], activation: .relu, initializer: .heNormal, seed: 1),
                            loss: CrossEntropy(), optimizer: SGD(learningRate: 0.1), batchSize: 1)
        #expect(try plain.trainStep(input: Self.x.rows(0..<1), targets: Self.targets.rows(0..<1)).isFinite)
    }

    @Test func aStepOnYourOwnBatchEqualsAStepOnTheDataset() throws {
        let data = Dataset(features: Self.x.scalars, featureCount: 20, labels: (0..<Self.rows).map { ($0 * 7) % 3 }, classCount: 3)
        let a = Self.batchNormNetwork(), b = Self.batchNormNetwork()
        let byIndex = Trainer(network: a, loss: CrossEntropy(), optimizer: Adam(learningRate: 0.01), batchSize: 50)
        let byMatrix = Trainer(network: b, loss: CrossEntropy(), optimizer: Adam(learningRate: 0.01), batchSize: 50)
        let indices = (0..<Int32(50)).map { $0 * 3 }
        let input = Matrix(rows: 50, columns: 20), targets = Matrix(rows: 50, columns: 3)
        indices.withUnsafeBufferPointer { data.gather(indices: $0, input: input, targets: targets) }
        try Parallel.withThreadCount(1) {
            for _ in 0..<3 {
                let sum = try indices.withUnsafeBufferPointer { try byIndex.trainBatch($0, data: data) }
                let mean = try byMatrix.trainStep(input: input, targets: targets)
                #expect(abs(Float(sum / 50) - mean) <= 1e-6 * abs(mean))
            }
        }
        #expect(a.parameters.scalars.map(\.bitPattern) == b.parameters.scalars.map(\.bitPattern))
        #expect(a.stateDict == b.stateDict)
    }

    @Test func aStepOnBadShapesOrNonFiniteValuesThrowsAndChangesNothing() throws {
        let network = Network(sizes: [20, 3], activation: .relu, initializer: .heNormal, seed: 1)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.1), batchSize: 4)
        func mismatch(_ input: String, _ targets: String) -> TrainingError {
            .dataMismatch(expected: "N × 20 inputs and N × 3 targets, N ≥ 1", found: "\(input) inputs and \(targets) targets")
        }
        #expect(throws: mismatch("4×19", "4×3")) { try trainer.trainStep(input: Matrix(rows: 4, columns: 19), targets: Matrix(rows: 4, columns: 3)) }
        #expect(throws: mismatch("4×20", "3×3")) { try trainer.trainStep(input: Matrix(rows: 4, columns: 20), targets: Matrix(rows: 3, columns: 3)) }
        #expect(throws: mismatch("0×20", "0×3")) { try trainer.trainStep(input: Matrix(rows: 0, columns: 20), targets: Matrix(rows: 0, columns: 3)) }
        let before = network.parameters.scalars
        let poisoned = Self.x.rows(0..<4).copy()
        poisoned[2, 5] = .nan
        #expect { try trainer.trainStep(input: poisoned, targets: Self.targets.rows(0..<4)) } throws: { error in
            guard case .diverged(0, 0, let loss)? = error as? TrainingError else { return false }
            return loss.isNaN
        }
        #expect(network.parameters.scalars.map(\.bitPattern) == before.map(\.bitPattern))
    }

    /// The optimizer by its command-line name, as a program would pick it at run time.
    static func optimizer(named name: String) -> any Optimizer {
        name == "adam" ? Adam(learningRate: 0.01) : SGD(learningRate: 0.1, momentum: 0.9)
    }

    @Test func checkpointsRecordTheOptimizerAndRefuseAnother() throws {
        let folder = TemporaryFolder()
        let network = Self.batchNormNetwork()
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: Self.optimizer(named: "adam"), batchSize: 0)
        try trainer.trainStep(input: Self.x, targets: Self.targets)
        let path = "\(folder.path)/run.safetensors"
        try TrainingCheckpoint.save(trainer, to: path)
        let file = try SafetensorsFile(contentsOf: path)
        #expect(file.metadata[TrainingCheckpoint.Key.optimizerType] == "Adam")
        let loaded = try Checkpoint.network(from: file, path: path).network
        let other = Trainer(network: loaded, loss: CrossEntropy(), optimizer: Self.optimizer(named: "sgd"), batchSize: 0)
        #expect {
            try TrainingCheckpoint.restore(other, from: file, path: path)
        } throws: { error in
            "\(error)".contains("Adam") && "\(error)".contains("SGD")
        }
        let same = Trainer(network: loaded, loss: CrossEntropy(), optimizer: Self.optimizer(named: "adam"), batchSize: 0)
        try TrainingCheckpoint.restore(same, from: file, path: path)
        #expect(same.optimizer.state.stepCount == 1)
    }

    @Test func stateDictsLoadStrictlyAndNameEveryMismatch() throws {
        let source = Self.batchNormNetwork(), target = Network(inputSize: 20, layers: [
            Dense(inputSize: 20, outputSize: 16), BatchNorm(featureCount: 16), ReLU(), Dropout(probability: 0.25),
            Residual([Dense(inputSize: 16, outputSize: 16), BatchNorm(featureCount: 16), Tanh()]),
            Dense(inputSize: 16, outputSize: 3),
        ], initializer: .zeros, seed: 0)
        var tensors = Dictionary(uniqueKeysWithValues: source.stateDict.map {
            ($0.name, SafetensorsFile.Tensor(shape: $0.shape, values: $0.values))
        })
        try target.loadStateDict(tensors)
        #expect(target.parameters == source.parameters && target.stateDict == source.stateDict)
        // Missing, unexpected and mis-shaped tensors are all named, and nothing is changed.
        let weight = tensors.removeValue(forKey: "4.body.0.weight")!
        tensors["4.body.0.wieght"] = weight
        tensors["5.weight"] = SafetensorsFile.Tensor(shape: [16, 3], values: tensors["5.weight"]!.values)
        target.parameters.fill(0)
        #expect(throws: CheckpointError.stateDictMismatch(path: "state dict", missing: ["4.body.0.weight"], unexpected: ["4.body.0.wieght"],
                                                         misshaped: ["5.weight: [16, 3], expected [3, 16]"])) {
            try target.loadStateDict(tensors)
        }
        #expect(target.parameters.scalars.allSatisfy { $0 == 0 })
    }

    @Test func aSixtyThousandRowBiasGradientIsExact() {
        let rows = 60_000, columns = 10
        let dOutput = randomMatrix(rows, columns, seed: 3, in: 0...1)
        let layer = Dense(inputSize: 1, outputSize: columns, seed: 1)
        layer.backward(dInput: nil, dOutput: dOutput, input: Matrix(rows: rows, columns: 1), output: dOutput,
                       context: LayerContext(mode: .training))
        for j in 0..<columns {
            var exact = 0.0
            for i in 0..<rows { exact += Double(dOutput[i, j]) }
            let relative = abs(Double(layer.biasGradient[0, j]) - exact) / exact
            #expect(relative <= 1e-6, "column \(j): \(layer.biasGradient[0, j]) against \(exact) (\(relative))")
        }
    }

    /// PyTorch's full-batch training of 784-32-BatchNorm-ReLU-10 (Tests/Fixtures/golden_fullbatch_batchnorm.py):
    /// its initial state dict, written by PyTorch, loads into a network defined here; 3 full-batch SGD steps on 5 000
    /// images (split here into micro-batches of 4 096 and 904 rows) give every tensor within 1e-4.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Dataset.defaultDirectory)))
    func fullBatchTrainingWithBatchNormMatchesPyTorch() throws {
        let network = Network(inputSize: 784, layers: [Dense(inputSize: 784, outputSize: 32), BatchNorm(featureCount: 32),
                                                       ReLU(), Dense(inputSize: 32, outputSize: 10)])
        try network.loadStateDict(contentsOf: "\(fixtures)/torch-batchnorm-initial.safetensors")
        let (train, _) = try Dataset.mnist()
        let input = Matrix(rows: 5000, columns: 784), targets = Matrix(rows: 5000, columns: 10)
        let indices = (0..<Int32(5000)).map { $0 }
        indices.withUnsafeBufferPointer { train.gather(indices: $0, input: input, targets: targets) }
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.1), batchSize: 0)
        var losses: [Float] = []
        for _ in 0..<3 { losses.append(try trainer.trainStep(input: input, targets: targets)) }
        expectClose(losses, [2.366575, 1.879921, 1.728613], relative: 1e-5, "losses (PyTorch's, printed by the script)")
        let expected = try SafetensorsFile(contentsOf: "\(fixtures)/torch-batchnorm-after3.safetensors").tensors
        for entry in network.stateDict {
            let reference = try #require(expected[entry.name], "\(entry.name)")
            #expect(entry.shape == reference.shape, "\(entry.name)")
            expectClose(entry.values, reference.values.map(Double.init), relative: 1e-4, absolute: 1e-4, "\(entry.name)")
        }
    }
}
