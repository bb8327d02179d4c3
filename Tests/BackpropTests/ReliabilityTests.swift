@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

@Suite("Reliability: resume, kills, divergence, misuse")
struct ReliabilityTests {
    /// A run interrupted after 2 of 4 epochs and resumed ends with the same weights, bit for bit, as one that
    /// was never interrupted (Adam, dropout, batch norm, a residual block, shuffling, a schedule: every kind of
    /// state). The interrupted run is
    /// simulated by a 2-epoch run, so the schedule must not depend on --epochs (cosine would).
    @Test func resumedRunIsBitwiseIdentical() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 120, seed: 6)
        // A residual block with batch norm and dropout inside: running statistics and nested dropout masks too.
        let common = ["train", "--data", folder.path, "--layers", "16-10-10-4", "--residual", "--batch-norm",
                      "--optimizer", "adam", "--learning-rate", "0.01", "--dropout", "0.2", "--batch-size", "16", "--threads", "1", "--seed", "3", "--schedule", "step",
                      "--step-size", "1", "--gamma", "0.7", "--quiet"]
        let whole = "\(folder.path)/whole.safetensors", resumed = "\(folder.path)/resumed.safetensors"
        let checkpoint = "\(folder.path)/checkpoint.safetensors"
        var run = try runBackprop(common + ["--epochs", "4", "--output", whole])
        #expect(run.status == 0, "\(run.stderr)")
        run = try runBackprop(common + ["--epochs", "2", "--checkpoint-every", "1", "--checkpoint", checkpoint])
        #expect(run.status == 0, "\(run.stderr)")
        run = try runBackprop(common + ["--epochs", "4", "--resume", checkpoint, "--output", resumed])
        #expect(run.status == 0, "\(run.stderr)")
        let a = try Network.load(from: whole).parameters.scalars, b = try Network.load(from: resumed).parameters.scalars
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        // Without the optimizer state the result differs: the test can tell.
        var file = try SafetensorsFile(contentsOf: checkpoint)
        file.tensors = file.tensors.filter { !$0.key.hasPrefix("optimizer.") }
        file.metadata[TrainingCheckpoint.Key.optimizerSteps] = "0"
        try file.write(to: checkpoint)
        run = try runBackprop(common + ["--epochs", "4", "--resume", checkpoint, "--output", resumed])
        #expect(try Network.load(from: resumed).parameters.scalars != a)
        // A checkpoint of another optimizer is refused with a message.
        run = try runBackprop(["train", "--data", folder.path, "--layers", "16-10-4", "--epochs", "4", "--resume", checkpoint])
        #expect(run.status == 1 && run.stderr.contains("resume with the same --layers and --optimizer"), "\(run.stderr)")
    }

    /// SIGKILL a process 20 times while it is writing checkpoints: the checkpoint on disk is always a complete,
    /// loadable one.
    @Test func killedWhileSavingLeavesAGoodCheckpoint() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 40, seed: 7)
        let checkpoint = "\(folder.path)/checkpoint.safetensors"
        // A 16-1024-1024-4 network: 1.07 M parameters, a 4.3 MB file.
        let arguments = ["train", "--data", folder.path, "--layers", "16-1024-1024-4", "--batch-size", "0",
                         "--checkpoint-every", "1", "--checkpoint", checkpoint, "--epochs", "1000000", "--quiet"]
        let first = try runBackprop(Array(arguments.dropLast(3)) + ["--epochs", "1", "--quiet"])
        #expect(first.status == 0, "\(first.stderr)")
        let reference = try Checkpoint.load(from: checkpoint).network.parameterCount
        var generator = SeededGenerator(seed: 11)
        var killedMidSave = 0
        for attempt in 1...20 {
            let process = Process()
            process.executableURL = backpropExecutable
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Wait until a save has started (its temporary file appears), skip 0–3 further saves, then kill at a
            // random moment within the next few milliseconds: the kill lands while the file is being written.
            let saves = generator.nextIndex(below: 4)
            var seen = 0, wasSaving = false
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                let saving = (try? FileManager.default.contentsOfDirectory(atPath: folder.path))?.contains { $0.contains(".tmp-") } ?? false
                if saving && !wasSaving { seen += 1 }
                wasSaving = saving
                if saving && seen > saves { break }
                usleep(200)
            }
            usleep(UInt32(generator.nextIndex(below: 4000)))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal, "attempt \(attempt): the process ended before the kill")
            let temporaries = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains(".tmp-") }
            if !temporaries.isEmpty { killedMidSave += 1 }
            for file in temporaries { try FileManager.default.removeItem(atPath: "\(folder.path)/\(file)") }
            let loaded = try Checkpoint.load(from: checkpoint)
            #expect(loaded.network.parameterCount == reference, "attempt \(attempt)")
            #expect(loaded.network.parameters.scalars.allSatisfy { $0.isFinite })
        }
        print("killed mid-save \(killedMidSave) of 20 times")
        #expect(killedMidSave >= 5, "too few kills landed during a save (\(killedMidSave)) for the test to mean much")
    }

    @Test func divergenceNamesEpochAndBatchAndKeepsTheCheckpoint() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 200, seed: 8)
        let checkpoint = "\(folder.path)/checkpoint.safetensors"
        let run = try runBackprop(["train", "--data", folder.path, "--layers", "16-32-4", "--activation", "tanh",
                                   "--learning-rate", "0.05", "--schedule", "exponential", "--gamma", "1000000", "--epochs", "20",
                                   "--checkpoint-every", "1", "--checkpoint", checkpoint, "--quiet"])
        #expect(run.status == 1)
        #expect(run.stderr.hasPrefix("backprop: error: training diverged: the loss is") && run.stderr.contains("at epoch")
                && run.stderr.contains("batch") && run.stderr.contains("lower learning rate")
                && run.stderr.contains("the last checkpoint, after epoch"), "\(run.stderr)")
        #expect(try Checkpoint.load(from: checkpoint).network.parameters.scalars.allSatisfy { $0.isFinite })
    }

    @Test func clippingBoundsTheGradientNorm() throws {
        let (data, network, trainer) = largeGradientRegression()
        let before = network.parameters.scalars
        trainer.clipNorm = 0.5
        try trainer.trainEpoch(on: data)
        #expect(trainer.lastGradientNorm > 100)
        // The step was γ·g·0.5/‖g‖: the parameters moved by a vector of norm 0.5.
        let moved = zip(before, network.parameters.scalars).map { Double($0 - $1) }
        #expect(abs(moved.map { $0 * $0 }.reduce(0, +).squareRoot() - 0.5) < 1e-4)
    }

    /// A layer whose forward pass is the identity but whose backward pass produces NaN: the loss stays finite,
    /// the gradients do not.
    struct NaNBackward: Layer {
        func outputSize(forInputSize inputSize: Int) -> Int { inputSize }
        func forward(output: Matrix, input: Matrix, context: LayerContext) { output.assign(input) }
        func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) { dInput?.fill(.nan) }
    }

    @Test func nonFiniteGradientsStopTrainingBeforeTheStep() throws {
        let data = Dataset(features: [1, 2, 3, 4], featureCount: 1, targets: [1, 2, 3, 4], targetWidth: 1)
        let network = Network(inputSize: 1, layers: [Dense(inputSize: 1, outputSize: 1), NaNBackward(),
                                                     Dense(inputSize: 1, outputSize: 1)])
        let before = network.parameters.scalars
        let trainer = Trainer(network: network, loss: MeanSquaredError(), optimizer: SGD(learningRate: 0.1), batchSize: 0)
        #expect {
            try trainer.trainEpoch(on: data)
        } throws: { error in
            guard case .diverged(1, 1, let loss) = error as? TrainingError else { return false }
            return loss.isNaN  // the loss was finite; the NaN gradient is what stopped it
        }
        #expect(network.parameters.scalars == before, "no parameter was updated")
    }

    @Test func infiniteLossStopsTraining() throws {
        let data = Dataset(features: [1, 2], featureCount: 1, targets: [Float.infinity, 1], targetWidth: 1)
        let network = Network(inputSize: 1, layers: [Dense(inputSize: 1, outputSize: 1)])
        let before = network.parameters.scalars
        let trainer = Trainer(network: network, loss: MeanSquaredError(), optimizer: SGD(learningRate: 0.1), batchSize: 0)
        #expect { try trainer.trainEpoch(on: data) } throws: { error in
            guard case .diverged(1, 1, let loss)? = error as? TrainingError else { return false }
            return loss.isInfinite
        }
        #expect(network.parameters.scalars == before)
    }

    @Test func misuseStopsWithBothShapes() async {
        func message(_ result: ExitTest.Result?) -> String { String(decoding: result?.standardErrorContent ?? [], as: UTF8.self) }
        var result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            Dense(inputSize: 4, outputSize: 3).forward(output: Matrix(rows: 2, columns: 3), input: Matrix(rows: 2, columns: 5), context: LayerContext())
        }
        #expect(message(result).contains("input 2×5") && message(result).contains("weight 4×3"), "\(message(result))")
        result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = CrossEntropy()(Matrix(rows: 2, columns: 3), targets: Matrix(rows: 3, columns: 3))
        }
        #expect(message(result).contains("output 2×3 and targets 3×3"), "\(message(result))")
        result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let network = Network(sizes: [4, 3], activation: .relu, initializer: .zeros, seed: 0)
            network.forward(Matrix(rows: 2, columns: 5), workspace: Workspace(for: network, capacity: 2))
        }
        #expect(message(result).contains("input 2×5") && message(result).contains("4 features"), "\(message(result))")
        result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            ReLU().forward(output: Matrix(rows: 2, columns: 3), input: Matrix(rows: 3, columns: 2), context: LayerContext())
        }
        #expect(message(result).contains("3×2") && message(result).contains("2×3"), "\(message(result))")
    }
}

@Suite("Diagnostics: layer statistics and value clipping")
struct DiagnosticsTests {
    /// One full-batch SGD step: the recorded gradient norms are the layers' gradient norms, and the update ratio
    /// is γ‖g‖/‖θ_new‖.
    @Test func layerStatisticsOfOneStep() throws {
        let data = Dataset(features: [0, 0, 0, 1, 1, 0, 1, 1], featureCount: 2, labels: [0, 1, 1, 0], classCount: 2)
        let network = Network(sizes: [2, 5, 3, 2], activation: .tanh, initializer: .xavierUniform, seed: 2)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.5), batchSize: 0)
        trainer.recordsLayerStatistics = true
        let report = try trainer.trainEpoch(on: data)
        let dense = network.layers.compactMap { $0 as? Dense }
        let norms = dense.map { (sumOfSquares($0.weightGradient) + sumOfSquares($0.biasGradient)).squareRoot() }
        let sizes = dense.map { (sumOfSquares($0.weight) + sumOfSquares($0.bias)).squareRoot() }
        expectClose((report.layerGradientNorms ?? []).map(Float.init), norms, relative: 1e-6, absolute: 0)
        expectClose((report.layerUpdateRatios ?? []).map(Float.init), zip(norms, sizes).map { 0.5 * $0 / $1 },
                    relative: 1e-4, absolute: 0)
        #expect(report.layerGradientNorms?.count == 3)
    }

    @Test func clipValueClampsEveryElement() throws {
        let (data, network, trainer) = largeGradientRegression()
        let before = network.parameters.scalars
        trainer.clipValue = 0.25
        try trainer.trainEpoch(on: data)
        // Both gradients are large and negative, so each parameter moved up by exactly the clip value.
        expectClose(zip(network.parameters.scalars, before).map { $0 - $1 }, [0.25, 0.25], relative: 1e-6, absolute: 1e-7)
    }
}

/// A one-weight regression whose first full-batch gradient is large (targets of 100–400), trained by SGD with γ = 1.
func largeGradientRegression() -> (Dataset, Network, Trainer) {
    let data = Dataset(features: [1, 2, 3, 4], featureCount: 1, targets: [100, 200, 300, 400], targetWidth: 1)
    let network = Network(inputSize: 1, layers: [Dense(inputSize: 1, outputSize: 1)])
    return (data, network, Trainer(network: network, loss: MeanSquaredError(), optimizer: SGD(learningRate: 1), batchSize: 0))
}

/// One rule for NaN and infinity: no non-finite model is ever written, reading one is an error, and training that
/// makes the parameters non-finite stops.
@Suite("Non-finite models")
struct NonFiniteModelTests {
    @Test func aNonFiniteNetworkIsNeitherSavedNorLoaded() throws {
        let folder = TemporaryFolder()
        let path = "\(folder.path)/model.safetensors"
        let network = Network(sizes: [3, 2], activation: .relu, initializer: .heNormal, seed: 1)
        try network.save(to: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        network.parameters[0, 4] = .infinity
        #expect(throws: CheckpointError.nonFiniteValues(path: path, tensor: "0.weight")) { try network.save(to: path) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == good, "the previous file is intact")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["model.safetensors"])
        // A file written by someone else with a NaN in it.
        var file = try SafetensorsFile(contentsOf: path)
        file.tensors["0.bias"]!.values[1] = .nan
        try file.write(to: path)
        #expect(throws: CheckpointError.nonFiniteValues(path: path, tensor: "0.bias")) { try Network.load(from: path) }
    }

    @Test func aCheckpointWithNonFiniteOptimizerStateIsRefused() throws {
        let folder = TemporaryFolder()
        let path = "\(folder.path)/run.safetensors"
        let network = Network(sizes: [3, 2], activation: .relu, initializer: .heNormal, seed: 1)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: Adam(), batchSize: 2)
        try trainer.trainStep(input: randomMatrix(2, 3, seed: 1), targets: oneHot([0, 1], classCount: 2))
        try TrainingCheckpoint.save(trainer, to: path)
        var file = try SafetensorsFile(contentsOf: path)
        file.tensors["optimizer.exp_avg_sq"]!.values[0] = .nan
        try file.write(to: path)
        let again = Trainer(network: try Checkpoint.network(from: file, path: path).network, loss: CrossEntropy(),
                            optimizer: Adam(), batchSize: 2)
        #expect(throws: CheckpointError.nonFiniteValues(path: path, tensor: "optimizer.exp_avg_sq")) {
            try TrainingCheckpoint.restore(again, from: file, path: path)
        }
    }

    /// A checkpoint's optimizer state must be exactly what the resuming optimizer keeps: an Adam state without a
    /// moment, a momentum buffer resumed without momentum, or no momentum buffer resumed with momentum, is refused;
    /// the matching settings resume.
    @Test(arguments: [
        ("Adam missing exp_avg_sq", "adam", "adam", "exp_avg_sq", "lacks optimizer.exp_avg_sq"),
        ("momentum resumed by plain SGD", "momentum", "sgd", nil, "has optimizer.momentum_buffer, which SGD as configured does not keep"),
        ("plain SGD resumed with momentum", "sgd", "momentum", nil, "lacks optimizer.momentum_buffer"),
        ("amsgrad resumed by Adam", "amsgrad", "adam", nil, "has optimizer.max_exp_avg_sq"),
        ("RMSprop centered resumed plain", "centered", "rmsprop", nil, "has optimizer.grad_avg"),
        ("the same settings", "momentum", "momentum", nil, nil),
    ] as [(String, String, String, String?, String?)])
    func aCheckpointsOptimizerStateMustBeWhatTheOptimizerKeeps(_ label: String, _ saved: String, _ resumed: String,
                                                              _ removed: String?, _ message: String?) throws {
        func optimizer(_ kind: String) -> any Optimizer {
            switch kind {
            case "adam": Adam()
            case "amsgrad": Adam(amsgrad: true)
            case "momentum": SGD(learningRate: 0.1, momentum: 0.9)
            case "centered": RMSprop(centered: true)
            case "rmsprop": RMSprop()
            default: SGD(learningRate: 0.1)
            }
        }
        let folder = TemporaryFolder()
        let path = "\(folder.path)/run.safetensors"
        let network = Network(sizes: [3, 2], activation: .relu, initializer: .heNormal, seed: 1)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: optimizer(saved), batchSize: 2)
        try trainer.trainStep(input: randomMatrix(2, 3, seed: 1), targets: oneHot([0, 1], classCount: 2))
        try TrainingCheckpoint.save(trainer, to: path)
        var file = try SafetensorsFile(contentsOf: path)
        if let removed { file.tensors["optimizer.\(removed)"] = nil }
        let again = Trainer(network: try Checkpoint.network(from: file, path: path).network, loss: CrossEntropy(),
                            optimizer: optimizer(resumed), batchSize: 2)
        if let message {
            do {
                try TrainingCheckpoint.restore(again, from: file, path: path)
                Issue.record("\(label): resumed")
            } catch {
                #expect(error.description.contains(message) && error.description.contains(path), "\(label): \(error.description)")
            }
        } else {
            try TrainingCheckpoint.restore(again, from: file, path: path)
        }
    }

    /// Full-batch steps whose loss and gradient are finite but whose update overflows the parameters.
    @Test func parametersThatOverflowStopTheEpoch() {
        let data = Dataset(features: [0.5e6, 1e6, 1.5e6, 2e6], featureCount: 1, labels: [0, 1, 0, 1], classCount: 2)
        let trainer = Trainer(network: Network(sizes: [1, 2], activation: .relu, initializer: .heNormal, seed: 1),
                              loss: CrossEntropy(), optimizer: SGD(learningRate: 1e38), batchSize: 0)
        #expect(throws: TrainingError.nonFiniteParameters(epoch: 1)) { try trainer.trainEpoch(on: data) }
    }
}

/// Ctrl-C or SIGTERM while `backprop train` saves: the temporary file is removed, nothing else is left.
@Suite("Signals during a save")
struct SignalDuringSaveTests {
    @Test(arguments: [SIGTERM, SIGINT])
    func aSignalDuringTheSaveLeavesNoTemporaryFile(_ signal: Int32) throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 20, seed: 1)
        let process = Process()
        process.executableURL = backpropExecutable
        // About 36 MB of parameters: the save takes long enough to be caught in the middle.
        process.arguments = ["train", "--data", folder.path, "--layers", "16-3000-3000-4", "--epochs", "1", "--threads", "1",
                             "--output", "\(folder.path)/m.safetensors", "--quiet"]
        try process.run()
        var caughtMidSave = false
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            if names.contains(where: { $0.hasPrefix(".m.safetensors.tmp-") }) {
                kill(process.processIdentifier, signal)
                caughtMidSave = true
                break
            }
            usleep(200)
        }
        process.waitUntilExit()
        let left = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(!left.contains(where: { $0.contains(".tmp-") }), "left behind: \(left)")
        if caughtMidSave {
            #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == signal)
            // Either the save had finished (a complete, loadable model) or there is no model at all.
            if left.contains("m.safetensors") { _ = try Network.load(from: "\(folder.path)/m.safetensors") }
        }
        print("signal \(signal): caught mid-save \(caughtMidSave), reason \(process.terminationReason.rawValue), status \(process.terminationStatus), left \(left)")
    }
}
