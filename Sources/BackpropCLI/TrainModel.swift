import Backprop
import Foundation

/// The optimizer, schedule, network and saved metadata that `backprop train`'s settings describe.
extension Train {
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
            "hidden": "\(hidden)",
            "num_layers": "\(numLayers)",
            "bidirectional": "\(bidirectional)",
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

    /// Bytes an MLP of `settings.sizes` (or the recurrent model) needs while training, counted before anything is allocated: parameters,
    /// gradients and up to three optimizer buffers (AMSGrad's), 4 bytes each, and the activations and their gradients
    /// of a micro-batch (at most 4 096 rows) and of an evaluation batch. `nil` when the count overflows.
    func memoryNeeded(_ settings: Settings) -> UInt64? {
        let sizes = settings.sizes
        if model.isRecurrent {  // rows of a square image as steps; the stack's parameters and scratch, the head's
            let side = max(1, Int(Double(sizes[0]).squareRoot())), directions = bidirectional ? 2 : 1
            let cell: RecurrentCell = model == .lstm ? .lstm : model == .gru ? .gru : .rnnTanh
            let parameters = Double(RecurrentStack.parameterCount(cell: cell, inputSize: side, hiddenSize: hidden, numLayers: numLayers,
                                                                  directions: directions)) + Double(directions * hidden + 1) * Double(sizes.last!)
            let rows = (settings.batchSize == 0 ? 4096 : min(settings.batchSize, 4096)) + 256
            let scratch = RecurrentStack.scratchEstimate(cell: cell, inputSize: side, hiddenSize: hidden, numLayers: numLayers,
                                                         directions: directions, rows: rows, steps: side)
            let bytes = 4 * (5 * parameters + scratch)
            return bytes < 1.8e19 ? UInt64(bytes) : nil
        }
        var parameters = 0, activations = 0
        for i in 0..<(sizes.count - 1) {
            let (weights, o1) = (sizes[i] &+ 1).multipliedReportingOverflow(by: sizes[i + 1])
            let (sum, o2) = parameters.addingReportingOverflow(weights)
            let (units, o3) = activations.addingReportingOverflow(sizes[i + 1])
            guard !o1 && !o2 && !o3 && sizes[i] < Int.max else { return nil }
            (parameters, activations) = (sum, units)
        }
        let rows = UInt64(settings.batchSize == 0 ? 4096 : min(settings.batchSize, 4096)) + 256
        let (a, o4) = UInt64(parameters).multipliedReportingOverflow(by: 20)
        let (b, o5) = UInt64(activations).multipliedReportingOverflow(by: 8 * rows)
        let (total, o6) = a.addingReportingOverflow(b)
        return o4 || o5 || o6 ? nil : total
    }

    func makeNetwork(_ settings: Settings) -> Network {
        let side = Int(Double(settings.sizes[0]).squareRoot())
        switch model {
        case .cnn: return makeCNN(settings, side: side)
        case .rnn, .lstm, .gru:
            // torch_rnn_rows.py's module: rnn (28 → H, batch_first) and head (H → classes), PyTorch's default init.
            let rnn: any RecurrentLayer = switch model {
            case .lstm: LSTM(inputSize: side, hiddenSize: hidden, numLayers: numLayers, bidirectional: bidirectional,
                             dropout: dropout, returnsSequences: false)
            case .gru: GRU(inputSize: side, hiddenSize: hidden, numLayers: numLayers, bidirectional: bidirectional,
                           dropout: dropout, returnsSequences: false)
            default: RNN(inputSize: side, hiddenSize: hidden, numLayers: numLayers, bidirectional: bidirectional,
                         dropout: dropout, returnsSequences: false)
            }
            let width = rnn.directions * hidden
            return Network(inputSize: side * side, layers: [rnn, Dense(inputSize: width, outputSize: settings.sizes.last!)],
                           names: ["rnn", "head"], initializer: .pytorchDefault, seed: seed)
        case .mlp: break
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
}

/// `bytes` as "12.3 GB".
func gigabytes(_ bytes: UInt64) -> String { String(format: "%.1f GB", Double(bytes) / 1e9) }
