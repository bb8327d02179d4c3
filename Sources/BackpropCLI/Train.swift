import ArgumentParser
import Backprop
import BackpropMPI
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
            Optimizers follow torch.optim's update equations and defaults: momentum and nesterov are SGD with \
            --momentum (default 0.9); --weight-decay is L2 added to the gradient (decoupled for adamw, default \
            0.01 there).
            """)

    @Option(help: "A folder with the four MNIST-format IDX files (.gz or raw).")
    var data: String = Dataset.defaultDirectory

    @Option(help: "A preset of the settings below: seed (the original text's program).")
    var preset: Preset?

    @Option(help: "Layer sizes from input to output, e.g. 784-128-10. (default: 784-128-10)")
    var layers: String?

    @Option(help: "Hidden-layer activation: \(ActivationKind.allCases.map(\.rawValue).joined(separator: ", ")). (default: relu)")
    var activation: ActivationKind?

    @Option(help: "Output loss: cross-entropy (softmax) or binary-cross-entropy (sigmoid outputs). (default: cross-entropy)")
    var loss: LossKind?

    @Option(help: "The optimizer: \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", ")). (default: sgd)")
    var optimizer: OptimizerKind?

    @Option(help: """
        The learning rate γ. (default: 0.1 for sgd, 0.01 for momentum, nesterov, adagrad and rmsprop, 1.0 for \
        adadelta, 0.001 for adam and adamw)
        """)
    var learningRate: Float?

    @Option(help: "The momentum μ of the momentum and nesterov optimizers (and of rmsprop if given). (default: 0.9)")
    var momentum: Float?

    @Option(help: "Weight decay λ: L2 added to the gradient; decoupled for adamw. (default: 0, 0.01 for adamw)")
    var weightDecay: Float?

    @Option(help: "Learning-rate schedule per epoch: none, step, exponential, cosine. (default: none)")
    var schedule: ScheduleKind = .none

    @Option(help: "step: epochs between decays. (default: a third of the epochs after warm-up)")
    var stepSize: Int?

    @Option(help: "step and exponential: the decay factor. (default: 0.1 for step, 0.9 for exponential)")
    var gamma: Float?

    @Option(help: "cosine: the final learning rate. (default: 0)")
    var minLearningRate: Float = 0

    @Option(help: "Epochs of linear warm-up before the schedule: γ·(e+1)/(W+1) in epoch e < W. (default: 0)")
    var warmupEpochs: Int = 0

    @Option(help: "Dropout probability after each hidden activation (0 = none). (default: 0)")
    var dropout: Float = 0

    @Option(help: """
        mlp (the --layers network) or cnn: conv 32 3×3 – activation – max pool 2 – conv 64 3×3 – activation – max pool 2 \
        – flatten – dense 128 – activation – dense (classes), for square one-channel images. (default: mlp)
        """)
    var model: ModelKind = .mlp

    @Flag(help: "Batch normalization (nn.BatchNorm1d) after each hidden dense layer, before its activation.")
    var batchNorm = false

    @Flag(help: "Wrap each hidden layer of equal width (dense, batch norm, activation) in a residual block x + f(x).")
    var residual = false

    @Option(help: "Samples per step; 0 = the whole training set (full-batch gradient descent). (default: 64)")
    var batchSize: Int?

    @Option(help: "Passes over the training set. (default: 5)")
    var epochs: Int?

    @Option(help: "Seeds the weights, the shuffling and dropout.")
    var seed: UInt64 = 0

    @Option(help: "Threads for the matrix products and element-wise work (1 gives bitwise-reproducible runs). (default: all cores)")
    var threads: Int?

    @Option(name: .customLong("init"), help: """
        Weight initializer: \(Initializer.names.joined(separator: ", ")). normal001 is N(0, 0.01²), xavier and he \
        are uniform and normal, pytorch is nn.Linear's default. (default: he for relu-like activations, xavier \
        otherwise)
        """)
    var initializer: String?

    @Flag(help: "Print one JSON object per epoch on standard output.")
    var json = false

    @Flag(help: "Print nothing but errors (and the JSON lines, with --json).")
    var quiet = false

    @Option(help: "Save the trained model here, as a safetensors file that PyTorch loads (written atomically).")
    var output: String?

    @Option(help: "Write the training and test loss and accuracy per epoch here, as an SVG chart.")
    var plot: String?

    @Option(help: "Save a resumable checkpoint (model, optimizer state, epoch, generator) every N epochs.")
    var checkpointEvery: Int?

    @Option(help: "Where --checkpoint-every writes. (default: checkpoint.safetensors)")
    var checkpoint: String = "checkpoint.safetensors"

    @Option(help: "Continue training from a checkpoint written by --checkpoint-every, up to --epochs in all.")
    var resume: String?

    @Option(help: "Scale the gradients down when their global L2 norm exceeds this (as torch's clip_grad_norm_).")
    var clipNorm: Float?

    @Option(help: "Clamp every gradient element to [-X, X] before each step (as torch's clip_grad_value_).")
    var clipValue: Float?

    @Flag(help: "Record each layer's mean gradient norm and update ratio ‖Δθ‖/‖θ‖ per epoch (JSON: grad_norms, update_ratios).")
    var logGradNorms = false

    @Flag(help: """
        Data-parallel training under mpirun: each rank trains on its shard of every batch (--batch-size is the \
        global batch) and the gradients are summed with one MPI_Allreduce per step; rank 0 alone prints and writes \
        files. Default --threads is 1 per rank.
        """)
    var distributed = false

    enum Preset: String, ExpressibleByArgument, CaseIterable { case seed }
    enum ModelKind: String, ExpressibleByArgument, CaseIterable { case mlp, cnn }
    enum LossKind: String, ExpressibleByArgument, CaseIterable {
        case crossEntropy = "cross-entropy", binaryCrossEntropy = "binary-cross-entropy"
    }
    enum OptimizerKind: String, ExpressibleByArgument, CaseIterable {
        case sgd, momentum, nesterov, adagrad, adadelta, rmsprop, adam, adamw

        var defaultLearningRate: Float {
            switch self {
            case .sgd: 0.1
            case .momentum, .nesterov, .adagrad, .rmsprop: 0.01
            case .adadelta: 1.0
            case .adam, .adamw: 0.001
            }
        }
    }
    enum ScheduleKind: String, ExpressibleByArgument, CaseIterable { case none, step, exponential, cosine }

    /// The settings after applying the preset and the defaults.
    struct Settings {
        var sizes: [Int]
        var activation: ActivationKind
        var loss: LossKind
        var optimizer: OptimizerKind
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
        let reluLike: Set<ActivationKind> = [.relu, .leakyRelu, .elu, .gelu, .geluTanh]
        let initializerName = initializer ?? (seedPreset ? "normal001" : reluLike.contains(activation) ? "he" : "xavier")
        guard let initializer = Initializer(name: initializerName) else {
            throw ValidationError("--init must be one of \(Initializer.names.joined(separator: ", ")); got '\(initializerName)'")
        }
        let optimizer = optimizer ?? .sgd
        let settings = Settings(
            sizes: sizes, activation: activation,
            loss: loss ?? (seedPreset ? .binaryCrossEntropy : .crossEntropy),
            optimizer: optimizer,
            learningRate: learningRate ?? optimizer.defaultLearningRate,
            batchSize: batchSize ?? (seedPreset ? 0 : 64),
            epochs: epochs ?? (seedPreset ? 100 : 5),
            initializer: initializer)
        guard settings.learningRate.isFinite && settings.learningRate > 0 else {
            throw ValidationError("--learning-rate must be positive; got \(settings.learningRate)")
        }
        guard settings.batchSize >= 0 else { throw ValidationError("--batch-size must be 0 (full batch) or positive") }
        guard settings.epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let momentum, !(momentum >= 0 && momentum < 1) { throw ValidationError("--momentum must be in [0, 1); got \(momentum)") }
        if let weightDecay, !(weightDecay >= 0 && weightDecay.isFinite) {
            throw ValidationError("--weight-decay must be ≥ 0; got \(weightDecay)")
        }
        guard dropout >= 0 && dropout < 1 else { throw ValidationError("--dropout must be in [0, 1); got \(dropout)") }
        guard warmupEpochs >= 0 else { throw ValidationError("--warmup-epochs must be ≥ 0") }
        if let stepSize, stepSize < 1 { throw ValidationError("--step-size must be at least 1") }
        if let gamma, !(gamma > 0 && gamma.isFinite) { throw ValidationError("--gamma must be positive; got \(gamma)") }
        guard minLearningRate >= 0 else { throw ValidationError("--min-learning-rate must be ≥ 0") }
        if let checkpointEvery, checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1") }
        if let clipNorm, !(clipNorm > 0 && clipNorm.isFinite) { throw ValidationError("--clip-norm must be positive; got \(clipNorm)") }
        if let clipValue, !(clipValue > 0 && clipValue.isFinite) { throw ValidationError("--clip-value must be positive; got \(clipValue)") }
        return settings
    }

    func makeOptimizer(_ settings: Settings) -> any Optimizer {
        let lr = settings.learningRate, decay = weightDecay ?? 0
        switch settings.optimizer {
        case .sgd: return SGD(learningRate: lr, momentum: momentum ?? 0, weightDecay: decay)
        case .momentum: return SGD(learningRate: lr, momentum: momentum ?? 0.9, weightDecay: decay)
        case .nesterov: return SGD(learningRate: lr, momentum: momentum ?? 0.9, weightDecay: decay, nesterov: true)
        case .adagrad: return Adagrad(learningRate: lr, weightDecay: decay)
        case .adadelta: return Adadelta(learningRate: lr, weightDecay: decay)
        case .rmsprop: return RMSprop(learningRate: lr, weightDecay: decay, momentum: momentum ?? 0)
        case .adam: return Adam(learningRate: lr, weightDecay: decay)
        case .adamw: return AdamW(learningRate: lr, weightDecay: weightDecay ?? 0.01)
        }
    }

    func makeSchedule(_ settings: Settings) -> any LearningRateSchedule {
        let remaining = max(1, settings.epochs - warmupEpochs)
        let main: any LearningRateSchedule = switch schedule {
        case .none: ConstantSchedule()
        case .step: StepDecay(stepSize: stepSize ?? max(1, remaining / 3), gamma: gamma ?? 0.1)
        case .exponential: ExponentialDecay(gamma: gamma ?? 0.9)
        case .cosine: CosineAnnealing(period: remaining, minimum: minLearningRate)
        }
        return warmupEpochs > 0 ? LinearWarmup(epochs: warmupEpochs, then: main) : main
    }

    /// What a saved model records about how it was trained.
    func metadata(_ settings: Settings, schedule: any LearningRateSchedule) -> [String: String] {
        var metadata = [
            "architecture": settings.sizes.map(String.init).joined(separator: "-"),
            "activation": settings.activation.rawValue,
            "loss": settings.loss.rawValue,
            "optimizer": settings.optimizer.rawValue,
            "learning_rate": "\(settings.learningRate)",
            "schedule": schedule is ConstantSchedule ? "none" : "\(schedule)",
            "batch_size": "\(settings.batchSize)",
            "epochs": "\(settings.epochs)",
            "seed": "\(seed)",
            "init": settings.initializer.name,
            "dropout": "\(dropout)",
            "batch_norm": "\(batchNorm)",
            "residual": "\(residual)",
            "model": model.rawValue,
            "data": data,
            "written_by": "backprop train",
        ]
        if let momentum { metadata["momentum"] = "\(momentum)" }
        if let weightDecay { metadata["weight_decay"] = "\(weightDecay)" }
        if let clipNorm { metadata["clip_norm"] = "\(clipNorm)" }
        if let clipValue { metadata["clip_value"] = "\(clipValue)" }
        return metadata
    }

    /// The small CNN of `--model cnn` for `side × side` one-channel images.
    func makeCNN(_ settings: Settings, side: Int) -> Network {
        var generator = SeededGenerator(seed: seed)
        let image = ImageShape(channels: 1, height: side, width: side)
        let conv1 = Conv2D(input: image, outputChannels: 32, kernelSize: 3, padding: 1, initializer: settings.initializer, generator: &generator)
        let pool1 = Pool2D(.max, input: conv1.output)
        let conv2 = Conv2D(input: pool1.output, outputChannels: 64, kernelSize: 3, padding: 1, initializer: settings.initializer, generator: &generator)
        let pool2 = Pool2D(.max, input: conv2.output)
        return Network(inputSize: image.count, layers: [
            conv1, settings.activation.makeLayer(), pool1, conv2, settings.activation.makeLayer(), pool2, Flatten(),
            Dense(inputSize: pool2.output.count, outputSize: 128, initializer: settings.initializer, generator: &generator),
            settings.activation.makeLayer(),
            Dense(inputSize: 128, outputSize: settings.sizes.last!, initializer: settings.initializer, generator: &generator),
        ])
    }

    func makeNetwork(_ settings: Settings) -> Network {
        if model == .cnn {
            let side = Int(Double(settings.sizes[0]).squareRoot())
            return makeCNN(settings, side: side)
        }
        var generator = SeededGenerator(seed: seed)
        var layers: [any Layer] = []
        let sizes = settings.sizes
        for i in 0..<(sizes.count - 1) {
            let dense = Dense(inputSize: sizes[i], outputSize: sizes[i + 1], initializer: settings.initializer, generator: &generator)
            guard i < sizes.count - 2 else { layers.append(dense); break }
            var block: [any Layer] = [dense]
            if batchNorm { block.append(BatchNorm(featureCount: sizes[i + 1])) }
            block.append(settings.activation.makeLayer())
            if dropout > 0 { block.append(Dropout(probability: dropout, seed: seed &+ UInt64(i) &+ 1)) }
            if residual && sizes[i] == sizes[i + 1] { layers.append(Residual(block)) } else { layers += block }
        }
        return Network(inputSize: sizes[0], layers: layers)
    }

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
        BLAS.setThreadCount(threads ?? (world != nil ? 1 : ProcessInfo.processInfo.activeProcessorCount))

        let data: (train: Dataset, test: Dataset)
        do {
            data = try Dataset.mnist(directory: self.data, classCount: settings.sizes.last!)
        } catch {
            var message = error.description
            if case .fileNotFound = error, self.data == Dataset.defaultDirectory {
                message += " (install Fashion-MNIST with: apt-get install dataset-fashion-mnist, or pass --data DIR)"
            }
            throw fail(message, rank: world)
        }
        if model == .cnn {
            let side = Int(Double(data.train.featureCount).squareRoot())
            guard side * side == data.train.featureCount else {
                throw fail("--model cnn needs square one-channel images; \(self.data) has \(data.train.featureCount) pixels per image", rank: world)
            }
        }
        guard data.train.featureCount == settings.sizes[0] else {
            throw fail("--layers starts with \(settings.sizes[0]) inputs, but the images in \(self.data) have \(data.train.featureCount) pixels", rank: world)
        }
        try train(settings: settings, data: data, optimizer: makeOptimizer(settings), world: world)
    }

    /// The training loop.
    func train(settings: Settings, data: (train: Dataset, test: Dataset), optimizer: any Optimizer,
               world: MPICommunicator?) throws {
        let leader = (world?.rank ?? 0) == 0  // the rank that prints and writes files
        let json = self.json && leader, quiet = self.quiet || !leader
        let output = leader ? self.output : nil, plot = leader ? self.plot : nil
        let checkpointEvery = leader ? self.checkpointEvery : nil
        func fail(_ message: String) -> ExitCode { BackpropCLI.fail(message, rank: world) }
        var resumeFile: SafetensorsFile?
        let network: Network
        if let resume {
            do {
                let file = try SafetensorsFile(contentsOf: resume)
                network = try Checkpoint.network(from: file, path: resume).network
                resumeFile = file
            } catch {
                throw fail(error.description)
            }
            let saved = (architecture: resumeFile?.metadata["architecture"], optimizer: resumeFile?.metadata["optimizer"])
            let architecture = settings.sizes.map(String.init).joined(separator: "-")
            guard saved.architecture == architecture, saved.optimizer == settings.optimizer.rawValue else {
                throw fail("\(resume) was written by a \(saved.architecture ?? "?") network with \(saved.optimizer ?? "?"); resume with the same --layers and --optimizer (given: \(architecture), \(settings.optimizer.rawValue))")
            }
        } else {
            network = makeNetwork(settings)
        }
        let loss: any Loss = switch settings.loss {
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
        let metadata = self.metadata(settings, schedule: schedule)
        var lastCheckpoint: Int?
        if !json && !quiet {
            print("""
                backprop: \(model == .cnn ? "cnn (conv32-pool-conv64-pool-128-\(settings.sizes.last!))" : settings.sizes.map(String.init).joined(separator: "-")) \
                \(settings.activation.rawValue)\(batchNorm ? " + batch norm" : "")\(residual ? ", residual" : ""), \
                \(loss.name), \(settings.optimizer.rawValue) lr \(settings.learningRate)\
                \(schedule is ConstantSchedule ? "" : " (\(schedule))"), \
                batch \(settings.batchSize == 0 ? "full (\(data.train.count))" : String(settings.batchSize)), \
                init \(settings.initializer.name), seed \(seed), \(Parallel.threadCount) thread(s)\
                \(world.map { " on each of \($0.size) MPI ranks" } ?? ""); \
                \(data.train.count) training and \(data.test.count) test samples from \(self.data)
                """)
        }
        var curves = CurvePlot(title: "\(settings.sizes.map(String.init).joined(separator: "-")) \(settings.activation.rawValue), \(settings.optimizer.rawValue) lr \(settings.learningRate), batch \(settings.batchSize)")
        var last: (report: EpochReport, evaluation: Evaluation)?
        let showProgress = standardOutputIsTerminal && !json && !quiet
        for epoch in trainer.epochsCompleted..<settings.epochs {
            trainer.optimizer.learningRate = schedule.learningRate(epoch: epoch, base: settings.learningRate)
            let report: EpochReport
            let evaluation: Evaluation
            do {
                if showProgress {
                    var bar = ProgressBar(epoch: epoch + 1, epochs: settings.epochs,
                                          samplesPerBatch: settings.batchSize == 0 ? data.train.count : settings.batchSize)
                    report = try trainer.trainEpoch(on: data.train) { done, total, loss in
                        bar.update(done: done, total: total, loss: loss)
                    }
                    bar.clear()
                } else {
                    report = try trainer.trainEpoch(on: data.train)
                }
                evaluation = try trainer.evaluate(on: data.test)
            } catch {
                var message = error.description
                if let lastCheckpoint { message += " (the last checkpoint, after epoch \(lastCheckpoint), is in \(checkpoint))" }
                throw fail(message)
            }
            last = (report, evaluation)
            if let checkpointEvery, report.epoch % checkpointEvery == 0 || report.epoch == settings.epochs {
                var withResults = metadata
                withResults["test_accuracy"] = "\(evaluation.accuracy ?? .nan)"
                do { try TrainingCheckpoint.save(trainer, to: checkpoint, metadata: withResults) } catch { throw fail(error.description) }
                lastCheckpoint = report.epoch
            }
            let accuracy = evaluation.accuracy ?? .nan
            curves.trainLoss.append(Double(report.trainLoss))
            curves.testLoss.append(Double(evaluation.loss))
            curves.trainAccuracy.append(report.trainAccuracy ?? .nan)
            curves.testAccuracy.append(accuracy)
            if json {
                let line = EpochLine(
                    epoch: report.epoch, train_loss: Double(report.trainLoss), test_loss: Double(evaluation.loss),
                    test_accuracy: accuracy, epoch_seconds: report.seconds,
                    samples_per_second: report.samplesPerSecond, steps: report.stepCount,
                    learning_rate: Double(trainer.optimizer.learningRate),
                    train_accuracy: report.trainAccuracy ?? .nan,
                    grad_norms: report.layerGradientNorms,
                    update_ratios: report.layerUpdateRatios,
                    ranks: world?.size,
                    allreduce_seconds_per_step: world.map { $0.allreduceSeconds / Double(max($0.allreduceCount, 1)) })
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(line), as: UTF8.self))
            } else if !quiet {
                print(String(
                    format: "epoch %3d/%d  train loss %.4f  test loss %.4f  test accuracy %.4f  %.3f s  %.0f samples/s",
                    report.epoch, settings.epochs, report.trainLoss, evaluation.loss, accuracy,
                    report.seconds, report.samplesPerSecond))
                if let norms = report.layerGradientNorms, let ratios = report.layerUpdateRatios {
                    print("           gradient norm per layer " + norms.map { String(format: "%.3g", $0) }.joined(separator: " ")
                          + "   update ratio " + ratios.map { String(format: "%.2g", $0) }.joined(separator: " "))
                }
            }
            fflush(nil)  // one line per epoch, even through a pipe
        }
        if let world {
            guard world.isEqualOnAllRanks(network.parameterHash) else {
                throw fail("the weights differ between ranks after training")
            }
            if !quiet && !json { print("weights bitwise identical on all \(world.size) ranks") }
        }
        do {
            if let plot { try writeAtomically(Array(curves.svg().utf8), to: plot) }
            if let output, let last {
                var metadata = metadata
                metadata["train_loss"] = "\(last.report.trainLoss)"
                metadata["test_loss"] = "\(last.evaluation.loss)"
                metadata["test_accuracy"] = "\(last.evaluation.accuracy ?? .nan)"
                try network.save(to: output, metadata: metadata)
                if !json && !quiet { print("saved the model to \(output)") }
            }
        } catch {
            throw fail(error.description)
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
    var learning_rate: Double
    var train_accuracy: Double
    var grad_norms: [Double]?
    var update_ratios: [Double]?
    var ranks: Int?
    var allreduce_seconds_per_step: Double?
}
