import ArgumentParser
@_spi(Internals) import Backprop
import BackpropMPI
import Foundation

/// `backprop train`'s run: data, network, trainer, the epoch loop, checkpoints and the saved model. What it prints
/// goes through a ``TrainingReporter``.
extension Train {
    func run() throws {
        let world = distributed ? MPICommunicator.start() : nil
        do {
            try run(world: world)
        } catch {
            // A rank that fails has printed why; end every rank so that none waits in a collective for it.
            if let world { world.abort(code: 1) }
            throw error
        }
        world?.stop()
    }

    func run(world: MPICommunicator?) throws {
        let settings = try settings()
        // Every output location is checked before the first epoch, so that no training is lost to a bad path.
        if (world?.rank ?? 0) == 0 {
            do {
                if let output { try checkOutputLocation(output, flag: "--output") }
                if let plot { try checkOutputLocation(plot, flag: "--plot") }
                if checkpointEvery != nil { try checkOutputLocation(checkpoint, flag: "--checkpoint") }
            }
            if let output, checkpointEvery != nil, sameFile(output, checkpoint) {
                throw fail("--output and --checkpoint name the same file (\(output)); the model would overwrite the checkpoint")
            }
            if let output, let plot, sameFile(output, plot) { throw fail("--output and --plot name the same file (\(output))") }
            var outputs: [(path: String, flag: String)] = []
            if let output { outputs.append((output, "--output")) }
            if let plot { outputs.append((plot, "--plot")) }
            if checkpointEvery != nil { outputs.append((checkpoint, "--checkpoint")) }
            var inputs: [(path: String, what: String)] = []
            if trainsOnTable {
                inputs.append((self.data, "the training table (--data)"))
                if let validation { inputs.append((validation, "the validation table (--validation)")) }
            } else {
                let files = Dataset.standardFiles
                for file in [files.trainImages, files.trainLabels, files.testImages, files.testLabels] {
                    for suffix in [".gz", ""] { inputs.append(("\(self.data)/\(file)\(suffix)", "a data file (--data)")) }
                }
            }
            try checkOutputsSpareInputs(outputs, inputs: inputs)
            // The checkpoint may keep being written where it is resumed from; the model and the plot may not.
            if let resume { try checkOutputsSpareInputs(outputs.filter { $0.flag != "--checkpoint" }, inputs: [(resume, "the checkpoint being resumed (--resume)")]) }
        }
        Parallel.setThreadCount(threadCount(threads, default: world != nil ? 1 : Parallel.availableProcessors,
                                            quiet: quiet || json))
        if trainsOnTable { return try runTable(world: world) }
        try checkMemory(settings, world: world)

        let data: (train: Dataset, test: Dataset)
        do {
            data = try Dataset.mnist(directory: self.data, classCount: settings.sizes.last!)
        } catch {
            var message = error.description
            if case .labelOutOfRange(let path, let index, let label, let classCount) = error {
                let sizes = settings.sizes.map(String.init).joined(separator: "-")
                message = "\(path): label \(label) (item \(index)) is outside the network's \(classCount) classes (0...\(classCount - 1)), the last size of --layers \(sizes)\(layers == nil ? " (the default)" : ""); end --layers with more classes than the largest label"
            }
            if case .fileNotFound = error, self.data == Dataset.defaultDirectory {
                message += " (install Fashion-MNIST with: apt-get install dataset-fashion-mnist, or pass --data DIR)"
            }
            throw fail(message, rank: world)
        }
        if model != .mlp {
            // Square images: the CNN and the row-by-row recurrent models take a side from the pixel count, so 14×56
            // images would be read as 28×28.
            let shape = data.train.imageShape, side = shape?.height ?? 0
            guard let shape, shape.height == shape.width else {
                throw fail("--model \(model.rawValue) needs square one-channel images; the images in \(self.data) are \(shape.map { "\($0.height)×\($0.width)" } ?? "?")", rank: world)
            }
            guard side >= 4 || model != .cnn else {
                throw fail("--model cnn needs images of at least 4×4 pixels for its two 2×2 poolings; \(self.data) has \(side)×\(side)", rank: world)
            }
        }
        guard data.train.featureCount == settings.sizes[0] else {
            throw fail("--layers starts with \(settings.sizes[0]) inputs, but the images in \(self.data) have \(data.train.featureCount) pixels", rank: world)
        }
        try train(settings: settings, data: data, optimizer: makeOptimizer(settings), world: world)
    }

    /// Stops before any work if the network's parameters, gradients, optimizer state and activations need more
    /// memory than the machine has.
    func checkMemory(_ settings: Settings, world: MPICommunicator?) throws {
        let what = model.isRecurrent ? "--model \(model.rawValue) --hidden \(hidden) --num-layers \(numLayers)\(bidirectional ? " --bidirectional" : "")"
            : "--layers \(settings.sizes.map(String.init).joined(separator: "-"))"
        if let needed = memoryNeeded(settings), needed > ProcessInfo.processInfo.physicalMemory {
            throw fail("\(what) needs about \(gigabytes(needed)) for its parameters, gradients, optimizer state and activations; this machine has \(gigabytes(ProcessInfo.processInfo.physicalMemory))", rank: world)
        } else if memoryNeeded(settings) == nil {
            throw fail("\(what) is too large to count", rank: world)
        }
    }

    /// The training loop (`table`: the prepared table when training on one).
    func train(settings: Settings, data: (train: Dataset, test: Dataset), optimizer: any Optimizer,
               world: MPICommunicator?, table: PreparedTable? = nil) throws {
        let leader = (world?.rank ?? 0) == 0  // the rank that prints and writes files
        let output = leader ? self.output : nil, plot = leader ? self.plot : nil
        let checkpointEvery = leader ? self.checkpointEvery : nil
        func fail(_ message: String) -> ExitCode { BackpropCLI.fail(message, rank: world) }
        let regression = table?.schema.task == .regression
        let (network, resumeFile) = try startingNetwork(settings, regression: regression, fail: fail)
        let loss: any Loss = switch settings.loss {
        case _ where regression: MeanSquaredError()
        case .crossEntropy: CrossEntropy()
        case .binaryCrossEntropy: BinaryCrossEntropy()
        }
        let schedule = makeSchedule(settings)
        let trainer = Trainer(network: network, loss: loss, optimizer: optimizer, batchSize: settings.batchSize, seed: seed)
        trainer.clipNorm = clipNorm
        trainer.clipValue = clipValue
        trainer.recordsLayerStatistics = logGradNorms
        trainer.communicator = world
        if let resumeFile, let resume {
            do { try TrainingCheckpoint.restore(trainer, from: resumeFile, path: resume) } catch { throw fail(error.description) }
            guard trainer.epochsCompleted < settings.epochs else {
                throw fail("\(resume) has already trained \(trainer.epochsCompleted) epochs; ask for more with --epochs")
            }
        }
        var metadata = self.metadata(settings, schedule: schedule)
        if let table {
            metadata["table"] = table.schema.json
            metadata["task"] = table.schema.task.rawValue
            if regression { metadata["loss"] = loss.name }  // as startingNetwork expects it on --resume
            if impute == .mean { metadata["impute"] = "mean" }
        }
        let reporter = makeReporter(leader: leader)
        reporter.started(summary(settings, loss: loss, schedule: schedule, data: data, world: world))
        if let table {
            reporter.note(String(format: "read %d rows of %@ in %.3f s: %d inputs (%d feature columns), %@", table.rowCount, self.data,
                                 table.readSeconds, table.schema.featureCount, table.schema.features.count,
                                 regression ? "regression on '\(table.schema.target)'" : "\(table.schema.classes.count) classes of '\(table.schema.target)'"))
        }
        var lastCheckpoint: Int?
        var curves = CurvePlot(title: "\(settings.sizes.map(String.init).joined(separator: "-")) \(settings.activation.rawValue), \(settings.optimizer.rawValue) lr \(settings.learningRate), batch \(settings.batchSize)")
        var last: (report: EpochReport, evaluation: Evaluation, metrics: RegressionMetrics?)?
        for epoch in trainer.epochsCompleted..<settings.epochs {
            trainer.optimizer.learningRate = schedule.learningRate(epoch: epoch, base: settings.learningRate)
            let report: EpochReport
            let evaluation: Evaluation
            var metrics: RegressionMetrics?
            do {
                let samplesPerBatch = settings.batchSize == 0 ? data.train.count : settings.batchSize
                reporter.epochStarted(epoch + 1, of: settings.epochs, samplesPerBatch: samplesPerBatch)
                report = try trainer.trainEpoch(on: data.train) { done, total, loss in
                    reporter.batchFinished(done, of: total, meanLoss: loss)
                }
                evaluation = try trainer.evaluate(on: data.test)
                if regression { metrics = RegressionMetrics(network: network, data: data.test, standardization: table?.schema.standardization) }
            } catch {
                var message = error.description
                if let lastCheckpoint { message += " (the last checkpoint, after epoch \(lastCheckpoint), is in \(checkpoint))" }
                throw fail(message)
            }
            last = (report, evaluation, metrics)
            if let checkpointEvery, report.epoch % checkpointEvery == 0 || report.epoch == settings.epochs {
                var withResults = metadata
                withResults["test_accuracy"] = "\(evaluation.accuracy ?? .nan)"
                metrics?.record(in: &withResults)
                do { try TrainingCheckpoint.save(trainer, to: checkpoint, metadata: withResults) } catch { throw fail(error.description) }
                lastCheckpoint = report.epoch
            }
            curves.trainLoss.append(Double(report.trainLoss))
            curves.testLoss.append(Double(evaluation.loss))
            curves.trainAccuracy.append(report.trainAccuracy ?? .nan)
            curves.testAccuracy.append(evaluation.accuracy ?? .nan)
            reporter.epochFinished(report, evaluation: evaluation, of: settings.epochs,
                                   learningRate: trainer.optimizer.learningRate, world: world,
                                   table: table.map { TableReport(metrics: metrics, readSeconds: $0.readSeconds) })
        }
        if let world {
            guard world.isEqualOnAllRanks(network.parameterHash) else {
                throw fail("the weights differ between ranks after training")
            }
            reporter.note("weights bitwise identical on all \(world.size) ranks")
        }
        do {  // the model first: a plot that fails must not lose it
            if let output, let last {
                var metadata = metadata
                metadata["train_loss"] = "\(last.report.trainLoss)"
                metadata["test_loss"] = "\(last.evaluation.loss)"
                metadata["test_accuracy"] = "\(last.evaluation.accuracy ?? .nan)"
                last.metrics?.record(in: &metadata)
                try network.save(to: output, metadata: metadata)
                reporter.note("saved the model to \(output)")
            }
            if let plot { try writeAtomically(Array(curves.svg().utf8), to: plot) }
        } catch {
            throw fail(error.description)
        }
    }

    /// A new network, or the one in `--resume`'s checkpoint with the file (whose architecture and optimizer must be
    /// the command line's).
    func startingNetwork(_ settings: Settings, regression: Bool = false,
                         fail: (String) -> ExitCode) throws -> (Network, SafetensorsFile?) {
        guard let resume else { return (makeNetwork(settings), nil) }
        let file: SafetensorsFile, network: Network
        do {
            file = try SafetensorsFile(contentsOf: resume)
            network = try Checkpoint.network(from: file, path: resume).network
        } catch {
            throw fail(error.description)
        }
        let saved = (architecture: file.metadata["architecture"], optimizer: file.metadata["optimizer"])
        let architecture = settings.sizes.map(String.init).joined(separator: "-")
        guard saved.architecture == architecture, saved.optimizer == settings.optimizer.rawValue else {
            throw fail("\(resume) was written by a \(saved.architecture ?? "?") network with \(saved.optimizer ?? "?"); resume with the same --layers and --optimizer (given: \(architecture), \(settings.optimizer.rawValue))")
        }
        // The checkpoint is the authority on the model: a flag that would describe another one is an error.
        var given = metadata(settings, schedule: makeSchedule(settings))
        if regression { given["loss"] = MeanSquaredError().name }
        for (key, flag) in [("model", "--model"), ("activation", "--activation"), ("loss", "--loss"), ("dropout", "--dropout"),
                            ("batch_norm", "--batch-norm"), ("residual", "--residual"), ("hidden", "--hidden"),
                            ("num_layers", "--num-layers"), ("bidirectional", "--bidirectional")] {
            if let recorded = file.metadata[key], let value = given[key], recorded != value {
                throw fail("\(flag) \(value) conflicts with \(resume), which was trained with \(key.replacingOccurrences(of: "_", with: "-")) \(recorded); resume with the same settings")
            }
        }
        return (network, file)
    }

    /// The line printed before training: the model, the loss and optimizer, the batch, the threads and the data.
    func summary(_ settings: Settings, loss: any Loss, schedule: any LearningRateSchedule,
                 data: (train: Dataset, test: Dataset), world: MPICommunicator?) -> String {
        """
        backprop: \(modelDescription(settings))\
        \(model.isRecurrent ? "" : " " + settings.activation.rawValue)\(batchNorm ? " + batch norm" : "")\(residual ? ", residual" : ""), \
        \(loss.name), \(settings.optimizer.rawValue) lr \(settings.learningRate)\
        \(schedule is ConstantSchedule ? "" : " (\(schedule))"), \
        batch \(settings.batchSize == 0 ? "full (\(data.train.count))" : String(settings.batchSize)), \
        init \(model.isRecurrent ? "pytorch" : settings.initializer.name), seed \(seed), \(Parallel.threadCount) thread(s)\
        \(world.map { " on each of \($0.size) MPI ranks" } ?? ""); \
        \(data.train.count) training and \(data.test.count) test samples from \(self.data)
        """
    }

    /// The model in the summary line.
    func modelDescription(_ settings: Settings) -> String {
        let side = Int(Double(settings.sizes[0]).squareRoot())
        return switch model {
        case .mlp: settings.sizes.map(String.init).joined(separator: "-")
        case .cnn: "cnn (conv32-pool-conv64-pool-128-\(settings.sizes.last!))"
        case .rnn, .lstm, .gru:
            "\(model.rawValue) (\(side) steps of \(side) → \(numLayers > 1 ? "\(numLayers)×" : "")\(hidden)\(bidirectional ? " bidirectional" : "")"
                + "\(dropout > 0 ? ", dropout \(dropout) between layers" : "") → \(settings.sizes.last!))"
        }
    }

    /// JSON lines with `--json`, nothing but errors with `--quiet` (and on every rank but the first), a progress bar
    /// and a line per epoch on a terminal, lines alone otherwise.
    func makeReporter(leader: Bool) -> any TrainingReporter {
        if json && leader { return JSONLinesReporter() }
        if quiet || !leader { return SilentReporter() }
        return LineReporter(showsProgress: standardOutputIsTerminal)
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
    var learning_rate: Double
    var train_accuracy: Double
    var grad_norms: [Double]?
    var update_ratios: [Double]?
    var ranks: Int?
    var allreduce_seconds_per_step: Double?
    var test_rmse: Double?  // regression on a table
    var test_mae: Double?
    var test_r2: Double?
    var read_seconds: Double?  // tables: reading and parsing the file

    private enum CodingKeys: String, CodingKey {
        case epoch, train_loss, test_loss, test_accuracy, epoch_seconds, samples_per_second, steps, learning_rate
        case train_accuracy, grad_norms, update_ratios, ranks, allreduce_seconds_per_step
        case test_rmse, test_mae, test_r2, read_seconds
    }

    /// A value that is not finite (no accuracy, a loss that overflowed) is `null`: JSON has no NaN.
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        func number(_ value: Double, _ key: CodingKeys) throws {
            if value.isFinite { try c.encode(value, forKey: key) } else { try c.encodeNil(forKey: key) }
        }
        try c.encode(epoch, forKey: .epoch)
        try number(train_loss, .train_loss)
        try number(test_loss, .test_loss)
        try number(test_accuracy, .test_accuracy)
        try number(epoch_seconds, .epoch_seconds)
        try number(samples_per_second, .samples_per_second)
        try c.encode(steps, forKey: .steps)
        try number(learning_rate, .learning_rate)
        try number(train_accuracy, .train_accuracy)
        try c.encodeIfPresent(grad_norms?.map { $0.isFinite ? $0 : nil }, forKey: .grad_norms)
        try c.encodeIfPresent(update_ratios?.map { $0.isFinite ? $0 : nil }, forKey: .update_ratios)
        try c.encodeIfPresent(ranks, forKey: .ranks)
        if let allreduce_seconds_per_step { try number(allreduce_seconds_per_step, .allreduce_seconds_per_step) }
        if let test_rmse { try number(test_rmse, .test_rmse) }
        if let test_mae { try number(test_mae, .test_mae) }
        if let test_r2 { try number(test_r2, .test_r2) }
        if let read_seconds { try number(read_seconds, .read_seconds) }
    }
}

/// What an epoch on a table adds to its report: regression metrics (in the target's units) and the reading time.
struct TableReport {
    var metrics: RegressionMetrics?
    var readSeconds: Double
}

extension RegressionMetrics {
    /// Adds test_rmse, test_mae and test_r2 to a saved model's metadata.
    func record(in metadata: inout [String: String]) {
        metadata["test_rmse"] = "\(rootMeanSquaredError)"
        metadata["test_mae"] = "\(meanAbsoluteError)"
        metadata["test_r2"] = "\(r2)"
    }
}
