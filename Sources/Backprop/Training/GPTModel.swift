#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A byte-level GPT language model: a ``GPT`` over the distinct bytes of a corpus (its ``vocabulary``), in a
/// ``Network`` whose state_dict is that of `../shared/peers/torch_gpt.py`'s `GPT` (`tok.weight`, `pos.weight`,
/// `blocks.0.ln1.weight`, …), so the saved file loads into that module and a file it saved loads here.
public final class GPTModel {
    /// The bytes the model knows, in increasing order; token `i` is byte `vocabulary[i]`.
    public let vocabulary: [UInt8]
    /// The network: one ``GPT`` layer named `""` (its tensors at the top level), all parameters in one buffer.
    public let network: Network
    /// The model (sharing its parameters with ``network``).
    public let gpt: GPT

    /// `V`.
    public var vocabularySize: Int { vocabulary.count }
    /// The most bytes the model sees at once.
    public var context: Int { gpt.context }

    /// A new model over `vocabulary`, drawn as GPT-2 draws it from `seed`. Stops with a message if `heads` does not
    /// divide `width` (check user input first).
    public convenience init(vocabulary: [UInt8], layers: Int = 4, heads: Int = 4, width: Int = 128, context: Int = 64,
                            hasBias: Bool = false, seed: UInt64 = 0) {
        precondition(!vocabulary.isEmpty, "GPTModel: the vocabulary is empty")
        let gpt = GPT(vocabularySize: vocabulary.count, context: context, width: width, heads: heads, layers: layers,
                      hasBias: hasBias, seed: seed)
        try! self.init(network: Network(inputSize: context, layers: [gpt], names: [""]), vocabulary: vocabulary)
    }

    /// A model from its network (as loaded) and vocabulary; throws if they do not make one.
    public init(network: Network, vocabulary: [UInt8], path: String = "the model") throws(CheckpointError) {
        guard !vocabulary.isEmpty, zip(vocabulary, vocabulary.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw .invalidArchitecture(path: path, reason: "its vocabulary is not distinct bytes in increasing order")
        }
        guard network.layers.count == 1, let gpt = network.layers[0] as? GPT, network.inputSize == gpt.context else {
            throw .invalidArchitecture(path: path, reason: "not a GPT model (one gpt layer taking its context of token ids)")
        }
        guard gpt.vocabularySize == vocabulary.count else {
            throw .invalidArchitecture(path: path, reason: "its vocabulary has \(vocabulary.count) bytes but the model \(gpt.vocabularySize) tokens")
        }
        (self.vocabulary, self.network, self.gpt) = (vocabulary, network, gpt)
    }

    /// The metadata key of the number of heads in a file PyTorch wrote (a state_dict does not say).
    public static let headsKey = "backprop.gpt.heads"
    /// The metadata key that marks a GPT text model (`"gpt"`).
    public static let modelKey = "backprop.text.model"

    /// Saves the model (safetensors; the vocabulary and heads in the metadata), atomically.
    public func save(to path: String, metadata: [String: String] = [:]) throws(CheckpointError) {
        var metadata = metadata
        metadata[TextModel.vocabularyKey] = vocabulary.map(String.init).joined(separator: ",")
        metadata[Self.headsKey] = String(gpt.heads)
        metadata[Self.modelKey] = "gpt"
        try network.save(to: path, metadata: metadata)
    }

    /// Loads a model saved by ``save(to:metadata:)`` or by PyTorch (`safetensors.torch.save_file(model.state_dict(),
    /// path, metadata={"backprop.text.vocabulary": "10,32,…", "backprop.gpt.heads": "4"})`).
    public static func load(from path: String) throws(CheckpointError) -> GPTModel {
        try load(from: SafetensorsFile(contentsOf: path), path: path)
    }

    /// Whether a file holds a GPT text model (rather than a recurrent one).
    public static func isGPT(_ file: SafetensorsFile) -> Bool {
        file.metadata[modelKey] == "gpt" || file.tensors["tok.weight"] != nil
    }

    /// The model a safetensors file holds (`path` is only for messages).
    public static func load(from file: SafetensorsFile, path: String) throws(CheckpointError) -> GPTModel {
        let vocabulary = try TextModel.vocabulary(in: file.metadata, path: path)
        if file.metadata[Checkpoint.Key.layers] != nil {
            return try GPTModel(network: Checkpoint.network(from: file, path: path).network, vocabulary: vocabulary, path: path)
        }
        // A state_dict alone (PyTorch's): the sizes from the shapes, the heads from the metadata.
        func shape(_ name: String) throws(CheckpointError) -> [Int] {
            guard let tensor = file.tensors[name] else { throw .missingTensor(path: path, tensor: name) }
            return tensor.shape
        }
        let tok = try shape("tok.weight"), pos = try shape("pos.weight")
        guard tok.count == 2, pos.count == 2, tok[1] == pos[1] else {
            throw .invalidArchitecture(path: path, reason: "tok.weight \(tok) and pos.weight \(pos) are not V × C and T × C")
        }
        var layers = 0
        while file.tensors["blocks.\(layers).qkv.weight"] != nil { layers += 1 }
        guard let headsText = file.metadata[headsKey], let heads = Int(headsText) else {
            throw .invalidArchitecture(path: path, reason: "the metadata has no '\(headsKey)' (the number of heads)")
        }
        let settings = GPT.Settings(vocabularySize: tok[0], context: pos[0], width: tok[1], heads: heads, layers: layers,
                                    hasBias: file.tensors["ln.bias"] != nil)
        let gpt: GPT
        do {
            guard layers >= 1, let count = GPT.parameterCount(for: settings), count <= file.tensors.values.reduce(0, { $0 + $1.values.count }) else {
                throw InvalidLayerSettings("\(layers) blocks of width \(tok[1]) do not match the tensors the file holds")
            }
            gpt = try GPT(settings: settings)
        } catch {
            throw .invalidArchitecture(path: path, reason: "\(error)")
        }
        let network = Network(inputSize: settings.context, layers: [gpt], names: [""])
        try network.loadStateDict(file.tensors, path: path)
        return try GPTModel(network: network, vocabulary: vocabulary, path: path)
    }

    /// The token ids of `bytes`, or the bytes the vocabulary does not hold.
    public func tokens(of bytes: [UInt8]) -> Result<[Int], TextModel.UnknownBytes> {
        TextModel.indices(of: bytes, in: vocabulary).map { $0.map(Int.init) }
    }

    // MARK: - Generation

    /// Generates `length` bytes after `prompt` (by default a newline, if the vocabulary has one): each next byte is
    /// drawn from `softmax(logits / temperature)` over the `topK` most likely bytes (all when `nil`; `topK: 1` is
    /// greedy decoding) and fed back. Each byte is run through the model once, against a key/value cache of the
    /// bytes before it; when the window of `context` bytes is full, it restarts from its last `⌈context/2⌉` bytes
    /// (their keys and values recomputed at positions `0…`), so every prediction sees between `⌈context/2⌉` and
    /// `context` bytes. A prompt longer than the context is cut to its last `context` bytes. Throws for prompt
    /// bytes outside the vocabulary.
    public func generate(length: Int, prompt: [UInt8] = [], temperature: Float = 1, topK: Int? = nil,
                         seed: UInt64 = 0) throws(TextModel.UnknownBytes) -> [UInt8] {
        precondition(length >= 0, "GPTModel.generate: length must be ≥ 0, got \(length)")
        precondition(temperature > 0 && temperature.isFinite, "GPTModel.generate: temperature must be positive, got \(temperature)")
        precondition(topK.map { $0 >= 1 } ?? true, "GPTModel.generate: topK must be at least 1, got \(topK!)")
        let start = prompt.isEmpty ? [vocabulary.contains(10) ? 10 : vocabulary[0]] : prompt
        var tokens = try tokens(of: start).get()
        let decoder = Decoder(gpt)
        var generator = SeededGenerator(seed: seed)
        var windowStart = max(0, tokens.count - context)
        for (position, token) in tokens[windowStart...].enumerated() { decoder.step(token: token, position: position) }
        let v = vocabularySize, k = min(topK ?? v, v)
        var order = Array(0..<v), weights = [Double](repeating: 0, count: v)
        var output: [UInt8] = []
        output.reserveCapacity(length)
        for _ in 0..<length {
            let logits = decoder.logits.pointer
            let next: Int
            if k == 1 {
                var best = 0
                for j in 1..<max(v, 1) where logits[j] > logits[best] { best = j }
                next = best
            } else {
                order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
                let top = Double(logits[order[0]]) / Double(temperature)
                var total = 0.0
                for r in 0..<k {
                    weights[r] = exp(Double(logits[order[r]]) / Double(temperature) - top)
                    total += weights[r]
                }
                var u = generator.nextUniform() * total, choice = order[k - 1]
                for r in 0..<k {
                    u -= weights[r]
                    if u < 0 { choice = order[r]; break }
                }
                next = choice
            }
            tokens.append(next)
            output.append(vocabulary[next])
            if tokens.count - windowStart > context {
                windowStart = tokens.count - (context + 1) / 2
                for (position, token) in tokens[windowStart...].enumerated() { decoder.step(token: token, position: position) }
            } else {
                decoder.step(token: next, position: tokens.count - 1 - windowStart)
            }
        }
        return output
    }

    /// One sequence run a byte at a time against a key/value cache: each block keeps the `[q | k | v]` rows of the
    /// positions so far, so a step costs one row through every product and attention over the cached rows.
    final class Decoder {
        let gpt: GPT
        let caches: [Matrix]
        let x, normalized, statistics, attention, probabilities, keysT, up, activated, logits: Matrix

        init(_ gpt: GPT) {
            let c = gpt.width, t = gpt.context
            self.gpt = gpt
            caches = gpt.blocks.map { _ in Matrix(rows: t, columns: 3 * c) }
            (x, normalized, statistics, attention) = (Matrix(rows: 1, columns: c), Matrix(rows: 1, columns: c),
                                                      Matrix(rows: 1, columns: 2), Matrix(rows: 1, columns: c))
            probabilities = Matrix(rows: 1, columns: gpt.heads * t)
            keysT = Matrix(rows: 1, columns: c * t)
            (up, activated) = (Matrix(rows: 1, columns: 4 * c), Matrix(rows: 1, columns: 4 * c))
            logits = Matrix(rows: 1, columns: gpt.vocabularySize)
        }

        /// Runs `token` at `position` (the cache holds positions `0..<position`) and leaves its next-token logits
        /// in ``logits``.
        func step(token: Int, position n: Int) {
            precondition(n >= 0 && n < gpt.context && token >= 0 && token < gpt.vocabularySize,
                         "GPTModel.Decoder: token \(token) at position \(n) does not fit \(gpt.vocabularySize) tokens and a context of \(gpt.context)")
            let c = gpt.width, tok = gpt.tokenEmbedding.weight.pointer, pos = gpt.positionEmbedding.weight.pointer
            for j in 0..<c { x.pointer[j] = tok[token * c + j] + pos[n * c + j] }
            let context = LayerContext(mode: .evaluation, scratch: statistics, scratchIncludesBackward: false)
            for (block, cache) in zip(gpt.blocks, caches) {
                block.ln1.forward(output: normalized, input: x, context: context)
                gemm(cache.rows(n..<(n + 1)), normalized, block.attention.qkvWeight)
                block.attention.attend(output: attention, probabilities: probabilities, keysT: keysT, qkv: cache.rows(0..<(n + 1)),
                                       sequences: 1, steps: n + 1, firstQuery: n)
                gemm(x, attention, block.attention.projectionWeight, beta: 1)
                block.ln2.forward(output: normalized, input: x, context: context)
                gemm(up, normalized, block.upWeight)
                GELU().forward(output: activated, input: up, context: context)
                gemm(x, activated, block.downWeight, beta: 1)
            }
            gpt.finalNorm.forward(output: normalized, input: x, context: context)
            gemm(logits, normalized, gpt.tokenEmbedding.weight, transposeB: true)
        }
    }
}

/// Linear warmup, then a half cosine down to a floor, by iteration (`../shared/peers/torch_gpt.py`'s `rate`): for
/// iteration `i` (from 0) of `iterations`, with base rate `γ` and floor `γ_min`,
///
///     γᵢ = γ·(i + 1)/(warmup + 1)                                                  for i < warmup
///     γᵢ = γ_min + ½(1 + cos(π·(i − warmup)/max(1, iterations − warmup)))·(γ − γ_min)   otherwise
public struct WarmupCosineSchedule: Sendable, Equatable {
    /// `γ`, `γ_min`.
    public var base: Float, minimum: Float
    /// The warmup iterations and all iterations.
    public var warmup: Int, iterations: Int

    public init(base: Float, minimum: Float, warmup: Int, iterations: Int) {
        precondition(base >= 0 && minimum >= 0 && warmup >= 0 && iterations >= 1,
                     "WarmupCosineSchedule: needs rates ≥ 0, warmup ≥ 0 and iterations ≥ 1, got \(base), \(minimum), \(warmup), \(iterations)")
        (self.base, self.minimum, self.warmup, self.iterations) = (base, minimum, warmup, iterations)
    }

    /// `γᵢ`.
    public func learningRate(iteration i: Int) -> Float {
        if i < warmup { return Float(Double(base) * Double(i + 1) / Double(warmup + 1)) }
        let ratio = Double(i - warmup) / Double(max(1, iterations - warmup))
        return Float(Double(minimum) + 0.5 * (1 + cos(Double.pi * ratio)) * Double(base - minimum))
    }
}

/// Trains a ``GPTModel`` as `torch_gpt.py` does: each step draws `batchSize` random windows of `context + 1` bytes
/// from the training bytes, predicts every next byte of each window, and takes one ``AdamW`` step on the mean
/// cross-entropy, the gradient's global norm clipped to ``clipNorm`` and the learning rate from ``schedule``.
/// Every buffer is made once; a step allocates nothing.
public final class GPTTrainer {
    /// The model trained.
    public let model: GPTModel
    /// The optimizer: decoupled weight decay on the matrices only (``Network/matrixParameterRanges``).
    public var optimizer: AdamW
    /// The learning rate of each step, by iteration; `nil` keeps the optimizer's.
    public var schedule: WarmupCosineSchedule?
    /// Windows per step.
    public let batchSize: Int
    /// If set, the gradient's global norm is clipped to it before each step.
    public var clipNorm: Float?
    /// Steps taken (the next step's iteration).
    public var stepCount = 0

    private let input: Matrix, logits: Matrix, dLogits: Matrix, targets: Matrix, scratch: Matrix
    private var starts: [Int]

    /// A trainer of `model` with AdamW (`torch_gpt.py`'s defaults: betas 0.9 and 0.99, ε 10⁻⁸, decay 0.1 on the
    /// matrices), `batchSize` windows per step.
    public init(model: GPTModel, learningRate: Float = 1e-3, weightDecay: Float = 0.1, batchSize: Int = 12,
                schedule: WarmupCosineSchedule? = nil, clipNorm: Float? = 1) {
        precondition(batchSize >= 1, "GPTTrainer: the batch size must be positive, got \(batchSize)")
        var optimizer = AdamW(learningRate: learningRate, beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: weightDecay)
        optimizer.decayedRanges = model.network.matrixParameterRanges
        (self.model, self.optimizer, self.schedule, self.batchSize, self.clipNorm) = (model, optimizer, schedule, batchSize, clipNorm)
        let t = model.context, v = model.vocabularySize
        input = Matrix(rows: batchSize, columns: t)
        logits = Matrix(rows: batchSize, columns: t * v)
        dLogits = Matrix(rows: batchSize, columns: t * v)
        targets = Matrix(rows: batchSize * t, columns: v)
        scratch = Matrix(rows: 1, columns: model.gpt.scratchCount(rows: batchSize, inputSize: t, backward: true))
        starts = [Int](repeating: 0, count: batchSize)
    }

    /// Throws ``TrainingError/dataMismatch(expected:found:)`` unless `part` has a window to draw (`context + 2`
    /// bytes: `torch.randint(len − T − 1)` needs one start).
    public func checkLength(_ part: ArraySlice<UInt8>) throws(TrainingError) {
        guard part.count >= model.context + 2 else {
            throw .dataMismatch(expected: "at least \(model.context + 2) bytes (a window of the context, \(model.context), and the byte after it, from at least one start)",
                                found: "\(part.count) bytes")
        }
    }

    /// Fills the input and the one-hot targets with the windows of `part` (token ids) starting at ``starts``.
    private func load(_ part: ArraySlice<UInt8>) {
        let t = model.context, v = model.vocabularySize
        targets.fill(0)
        part.withUnsafeBufferPointer { ids in
            for (row, start) in starts.enumerated() {
                for step in 0..<t {
                    input.pointer[row * t + step] = Float(ids[start + step])
                    targets.pointer[(row * t + step) * v + Int(ids[start + step + 1])] = 1
                }
            }
        }
    }

    private func drawStarts(_ part: ArraySlice<UInt8>, using generator: inout SeededGenerator) {
        for i in starts.indices { starts[i] = generator.nextIndex(below: part.count - model.context - 1) }
    }

    /// One step on `batchSize` windows of `part` (token ids) drawn with `generator`. Returns the step's mean loss
    /// per byte; throws, changing nothing, if it is not finite or `part` is too short.
    @discardableResult
    public func step(_ part: ArraySlice<UInt8>, using generator: inout SeededGenerator) throws(TrainingError) -> Float {
        try checkLength(part)
        drawStarts(part, using: &generator)
        return try step(part, windowStarts: starts)
    }

    /// One step on the windows of `part` starting at `windowStarts` (`batchSize` of them, each at most
    /// `part.count − context − 1`).
    @discardableResult
    public func step(_ part: ArraySlice<UInt8>, windowStarts: [Int]) throws(TrainingError) -> Float {
        precondition(windowStarts.count == batchSize && windowStarts.allSatisfy { $0 >= 0 && $0 + model.context < part.count },
                     "GPTTrainer.step: \(windowStarts.count) window starts for \(batchSize) windows of \(model.context + 1) in \(part.count) bytes")
        if windowStarts != starts { starts = windowStarts }
        load(part)
        let network = model.network, gpt = model.gpt, m = batchSize * model.context, v = model.vocabularySize
        let context = LayerContext(mode: .training, scratch: scratch, randomIndex: UInt64(stepCount + 1))
        gpt.forward(output: logits, input: input, context: context)
        let value = CrossEntropy().lossAndGradient(gradient: dLogits.reshaped(rows: m, columns: v),
                                                   output: logits.reshaped(rows: m, columns: v), targets: targets)
        guard value.isFinite else { throw .diverged(epoch: 0, batch: stepCount + 1, loss: value) }
        network.zeroGradients()
        gpt.backward(dInput: nil, dOutput: dLogits, input: input, output: logits, context: context)
        if let clipNorm {
            let norm = sumOfSquares(network.gradients).squareRoot()
            if norm > Double(clipNorm) { scale(network.gradients, by: Float(Double(clipNorm) / (norm + 1e-6))) }
        }
        if let schedule { optimizer.learningRate = schedule.learningRate(iteration: stepCount) }
        optimizer.step(parameters: network.parameters, gradients: network.gradients)
        stepCount += 1
        return value
    }

    /// The mean over `batches` batches of random windows of `part` of each batch's mean loss per byte (nats), in
    /// evaluation mode (`torch_gpt.py`'s validation loss). Changes nothing in the model.
    public func loss(on part: ArraySlice<UInt8>, batches: Int = 20, using generator: inout SeededGenerator) throws(TrainingError) -> Double {
        try checkLength(part)
        let m = batchSize * model.context, v = model.vocabularySize
        let context = LayerContext(mode: .evaluation, scratch: scratch)
        var total = 0.0
        for _ in 0..<batches {
            drawStarts(part, using: &generator)
            load(part)
            model.gpt.forward(output: logits, input: input, context: context)
            total += Double(CrossEntropy()(logits.reshaped(rows: m, columns: v), targets: targets))
        }
        return total / Double(max(batches, 1))
    }
}

extension GPTTrainer {
    /// Saves the model (as ``GPTModel/save(to:metadata:)`` does, so `text sample` reads the file) with the training
    /// state: the optimizer's buffers (tensors `optimizer.exp_avg`, `optimizer.exp_avg_sq`), the steps taken and
    /// `generator`'s state (the window draws to come), atomically. Load it into PyTorch with `strict=False`.
    public func saveCheckpoint(to path: String, generator: SeededGenerator, metadata: [String: String] = [:]) throws(CheckpointError) {
        var metadata = metadata
        metadata[TextModel.vocabularyKey] = model.vocabulary.map(String.init).joined(separator: ",")
        metadata[GPTModel.headsKey] = String(model.gpt.heads)
        metadata[GPTModel.modelKey] = "gpt"
        var file = try Checkpoint.file(for: model.network, metadata: metadata)
        let state = optimizer.state
        for (name, buffer) in state.buffers {
            file.tensors[TrainingCheckpoint.Key.optimizerTensorPrefix + name] = SafetensorsFile.Tensor(shape: [buffer.count], values: buffer.scalars)
        }
        file.metadata[TrainingCheckpoint.Key.optimizerSteps] = String(stepCount)
        file.metadata[TrainingCheckpoint.Key.optimizerType] = "AdamW"
        let g = generator.state
        file.metadata[TrainingCheckpoint.Key.generator] = [g.0, g.1, g.2, g.3].map { String($0) }.joined(separator: ",")
        try file.checkFinite(path: path)
        try file.write(to: path)
    }

    /// Restores the training state of a file ``saveCheckpoint(to:generator:metadata:)`` wrote into this trainer,
    /// whose model must have been loaded from the same file; returns the window generator to continue with.
    public func restore(from file: SafetensorsFile, path: String) throws(CheckpointError) -> SeededGenerator {
        guard let stepsText = file.metadata[TrainingCheckpoint.Key.optimizerSteps], let steps = Int(stepsText),
              steps >= 0, steps <= TrainingCheckpoint.largestCount else {
            throw .invalidArchitecture(path: path, reason: "no training state: metadata '\(TrainingCheckpoint.Key.optimizerSteps)' is missing or not a count (save with --checkpoint-every)")
        }
        if let kind = file.metadata[TrainingCheckpoint.Key.optimizerType], kind != "AdamW" {
            throw .invalidArchitecture(path: path, reason: "the training state is that of \(kind), not of AdamW")
        }
        let words = (file.metadata[TrainingCheckpoint.Key.generator] ?? "").split(separator: ",").compactMap { UInt64($0) }
        guard words.count == 4, words.contains(where: { $0 != 0 }) else {
            throw .invalidArchitecture(path: path, reason: "metadata '\(TrainingCheckpoint.Key.generator)' is not four numbers, not all zero")
        }
        var buffers: [String: Matrix] = [:]
        for name in ["exp_avg", "exp_avg_sq"] {
            let key = TrainingCheckpoint.Key.optimizerTensorPrefix + name
            guard let tensor = file.tensors[key] else {
                if steps == 0 { continue }
                throw .missingTensor(path: path, tensor: key)
            }
            guard tensor.values.count == model.network.parameterCount else {
                throw .shapeMismatch(path: path, tensor: key, expected: [model.network.parameterCount], found: tensor.shape)
            }
            guard tensor.values.allSatisfy(\.isFinite) else { throw .nonFiniteValues(path: path, tensor: key) }
            buffers[name] = Matrix(rows: 1, columns: tensor.values.count, values: tensor.values)
        }
        optimizer.restore(OptimizerState(stepCount: steps, buffers: buffers))
        stepCount = steps
        var generator = SeededGenerator(seed: 0)
        generator.state = (words[0], words[1], words[2], words[3])
        return generator
    }
}
