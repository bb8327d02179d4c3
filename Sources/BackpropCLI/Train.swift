import ArgumentParser
import Backprop
import Foundation

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a multilayer perceptron on an MNIST-format data set.",
        discussion: """
            Trains with mini-batch gradient descent (full-batch with --batch-size 0) and reports, after every \
            epoch, the training loss, the test loss and accuracy, and the epoch's training time.
            --preset seed reproduces the original text's NumPy program: 784-64-10, sigmoid, a sigmoid output \
            with binary cross-entropy, N(0, 0.01²) weights, full-batch gradient descent, learning rate 0.1, \
            100 epochs. Flags given with it override it.
            """)

    @Option(help: "A folder with the four MNIST-format IDX files (.gz or raw).")
    var data: String = Dataset.defaultDirectory

    @Option(help: "A preset of the settings below: seed (the original text's program).")
    var preset: Preset?

    @Option(help: "Layer sizes from input to output, e.g. 784-128-10. (default: 784-128-10)")
    var layers: String?

    @Option(help: "Hidden-layer activation: sigmoid, relu or tanh. (default: relu)")
    var activation: ActivationKind?

    @Option(help: "Output loss: cross-entropy (softmax) or binary-cross-entropy (sigmoid outputs). (default: cross-entropy)")
    var loss: LossKind?

    @Option(help: "The optimizer: sgd. (default: sgd)")
    var optimizer: OptimizerKind?

    @Option(help: "The learning rate α in θ ← θ − α·∂L/∂θ. (default: 0.1)")
    var learningRate: Float?

    @Option(help: "Samples per step; 0 = the whole training set (full-batch gradient descent). (default: 64)")
    var batchSize: Int?

    @Option(help: "Passes over the training set. (default: 5)")
    var epochs: Int?

    @Option(help: "Seeds the weights and the shuffling.")
    var seed: UInt64 = 0

    @Option(help: "OpenBLAS threads (1 gives bitwise-reproducible runs). (default: all cores)")
    var threads: Int?

    @Option(name: .customLong("init"), help: "Weight initializer: normal001 (N(0, 0.01²)), xavier or he. (default: he for relu, xavier otherwise)")
    var initializer: String?

    @Flag(help: "Print one JSON object per epoch on standard output.")
    var json = false

    enum Preset: String, ExpressibleByArgument, CaseIterable { case seed }
    enum LossKind: String, ExpressibleByArgument, CaseIterable {
        case crossEntropy = "cross-entropy", binaryCrossEntropy = "binary-cross-entropy"
    }
    enum OptimizerKind: String, ExpressibleByArgument, CaseIterable { case sgd }

    /// The settings after applying the preset and the defaults.
    struct Settings {
        var sizes: [Int]
        var activation: ActivationKind
        var loss: LossKind
        var learningRate: Float
        var batchSize: Int
        var epochs: Int
        var initializer: Initializer
    }

    func settings() throws -> Settings {
        let seedPreset = preset == .seed
        let sizesText = layers ?? (seedPreset ? "784-64-10" : "784-128-10")
        let sizes = sizesText.split(separator: "-").compactMap { Int($0) }
        guard sizes.count >= 2, sizes.count == sizesText.split(separator: "-", omittingEmptySubsequences: false).count,
              sizes.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--layers must be positive sizes joined by '-', like 784-128-10; got '\(sizesText)'")
        }
        let activation = activation ?? (seedPreset ? .sigmoid : .relu)
        let initializerName = initializer ?? (seedPreset ? "normal001" : activation == .relu ? "he" : "xavier")
        guard let initializer = Initializer(name: initializerName) else {
            throw ValidationError("--init must be normal001, xavier or he; got '\(initializerName)'")
        }
        let settings = Settings(
            sizes: sizes, activation: activation,
            loss: loss ?? (seedPreset ? .binaryCrossEntropy : .crossEntropy),
            learningRate: learningRate ?? 0.1,
            batchSize: batchSize ?? (seedPreset ? 0 : 64),
            epochs: epochs ?? (seedPreset ? 100 : 5),
            initializer: initializer)
        guard settings.learningRate.isFinite && settings.learningRate > 0 else {
            throw ValidationError("--learning-rate must be positive; got \(settings.learningRate)")
        }
        guard settings.batchSize >= 0 else { throw ValidationError("--batch-size must be 0 (full batch) or positive") }
        guard settings.epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        return settings
    }

    func run() throws {
        let settings = try settings()
        BLAS.setThreadCount(threads ?? ProcessInfo.processInfo.activeProcessorCount)

        let data: (train: Dataset, test: Dataset)
        do {
            data = try Dataset.mnist(directory: self.data, classCount: settings.sizes.last!)
        } catch {
            var message = error.description
            if case .fileNotFound = error, self.data == Dataset.defaultDirectory {
                message += " (install Fashion-MNIST with: apt-get install dataset-fashion-mnist, or pass --data DIR)"
            }
            throw fail(message)
        }
        guard data.train.featureCount == settings.sizes[0] else {
            throw fail("--layers starts with \(settings.sizes[0]) inputs, but the images in \(self.data) have \(data.train.featureCount) pixels")
        }

        let network = Network(sizes: settings.sizes, activation: settings.activation,
                              initializer: settings.initializer, seed: seed)
        let loss: any Loss = switch settings.loss {
        case .crossEntropy: CrossEntropy()
        case .binaryCrossEntropy: BinaryCrossEntropy()
        }
        let trainer = Trainer(network: network, loss: loss, optimizer: SGD(learningRate: settings.learningRate),
                              batchSize: settings.batchSize, seed: seed)
        if !json {
            print("""
                backprop: \(settings.sizes.map(String.init).joined(separator: "-")) \(settings.activation.rawValue), \
                \(loss.name), sgd lr \(settings.learningRate), \
                batch \(settings.batchSize == 0 ? "full (\(data.train.count))" : String(settings.batchSize)), \
                init \(settings.initializer.name), seed \(seed), \(BLAS.threadCount) BLAS thread(s); \
                \(data.train.count) training and \(data.test.count) test samples from \(self.data)
                """)
        }
        for _ in 1...settings.epochs {
            let report: EpochReport
            let evaluation: Evaluation
            do {
                report = try trainer.trainEpoch(on: data.train)
                evaluation = try trainer.evaluate(on: data.test)
            } catch {
                throw fail(error.description)
            }
            let accuracy = evaluation.accuracy ?? .nan
            if json {
                let line = EpochLine(
                    epoch: report.epoch, train_loss: Double(report.trainLoss), test_loss: Double(evaluation.loss),
                    test_accuracy: accuracy, epoch_seconds: report.seconds,
                    samples_per_second: report.samplesPerSecond, steps: report.stepCount)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(line), as: UTF8.self))
            } else {
                print(String(
                    format: "epoch %3d/%d  train loss %.4f  test loss %.4f  test accuracy %.4f  %.3f s  %.0f samples/s",
                    report.epoch, settings.epochs, report.trainLoss, evaluation.loss, accuracy,
                    report.seconds, report.samplesPerSecond))
            }
            fflush(nil)  // one line per epoch, even through a pipe
        }
    }
}

/// One line of `--json` output. The field names are a contract with scripts: add fields, rename none.
struct EpochLine: Encodable {
    var epoch: Int
    var train_loss: Double
    var test_loss: Double
    var test_accuracy: Double
    var epoch_seconds: Double
    var samples_per_second: Double
    var steps: Int
}
