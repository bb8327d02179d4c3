#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A character-level language model (Karpathy's char-rnn): each byte one-hot over the ``vocabulary`` → a
/// recurrent layer (``LSTM``, ``GRU`` or ``RNN``, stacked if asked) → a dense layer over every step
/// (``TimeDistributed``) → the logits of the next byte. PyTorch: `torch_charlm.py`'s `LM`, whose state_dict
/// (`rnn.weight_ih_l0`, …, `head.weight`, `head.bias`) the saved file holds.
public final class TextModel {
    /// The bytes the model knows, in increasing order; input and output `i` is byte `vocabulary[i]`.
    public let vocabulary: [UInt8]
    /// The layers, `rnn` then `head`, and their parameters in one buffer (for an optimizer and for saving).
    public let network: Network

    /// The recurrent layer (sharing its parameters with ``network``).
    public let recurrent: any RecurrentLayer
    /// The dense layer over every step (sharing its parameters with ``network``).
    public let head: any Layer
    /// `V`, the vocabulary's size.
    public var vocabularySize: Int { vocabulary.count }

    /// A new model over `vocabulary` with `numLayers` layers of `cell` of `hiddenSize` (dropout between them in
    /// training), PyTorch's default initialization seeded with `seed`.
    public convenience init(vocabulary: [UInt8], cell: RecurrentCell = .lstm, hiddenSize: Int = 128, numLayers: Int = 1,
                            dropout: Float = 0, seed: UInt64 = 0) {
        let v = vocabulary.count
        precondition(v >= 1, "TextModel: the vocabulary is empty")
        let rnn: any RecurrentLayer = switch cell {
        case .lstm: LSTM(inputSize: v, hiddenSize: hiddenSize, numLayers: numLayers, dropout: dropout, seed: seed)
        case .gru: GRU(inputSize: v, hiddenSize: hiddenSize, numLayers: numLayers, dropout: dropout, seed: seed)
        case .rnnTanh, .rnnReLU: RNN(inputSize: v, hiddenSize: hiddenSize, nonlinearity: cell == .rnnReLU ? .relu : .tanh,
                                     numLayers: numLayers, dropout: dropout, seed: seed)
        }
        let head = TimeDistributed(Dense(inputSize: hiddenSize * rnn.directions, outputSize: v), stepSize: hiddenSize * rnn.directions)
        let network = Network(inputSize: v, layers: [rnn, head], names: ["rnn", "head"], initializer: .pytorchDefault, seed: seed)
        try! self.init(network: network, vocabulary: vocabulary)
    }

    /// A model from its network (as loaded from a file) and vocabulary; throws if they do not make one.
    public init(network: Network, vocabulary: [UInt8], path: String = "the model") throws(CheckpointError) {
        let v = vocabulary.count
        guard v >= 1, zip(vocabulary, vocabulary.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw .invalidArchitecture(path: path, reason: "its vocabulary is not distinct bytes in increasing order")
        }
        guard network.layers.count == 2, let rnn = network.layers[0] as? any RecurrentLayer, rnn.inputSize == v,
              network.layers[1] is TimeDistributed, network.outputSize == v, network.inputSize == v else {
            throw .invalidArchitecture(path: path, reason: "not a text model (one-hot \(v) → recurrent layer → per-step dense layer → \(v))")
        }
        self.vocabulary = vocabulary
        self.network = network
        recurrent = rnn
        head = network.layers[1]
    }

    /// The metadata key of the vocabulary: its bytes in decimal, separated by commas.
    public static let vocabularyKey = "backprop.text.vocabulary"

    /// Saves the model (safetensors; the vocabulary in the metadata), atomically.
    public func save(to path: String, metadata: [String: String] = [:]) throws(CheckpointError) {
        var metadata = metadata
        metadata[Self.vocabularyKey] = vocabulary.map(String.init).joined(separator: ",")
        try network.save(to: path, metadata: metadata)
    }

    /// Loads a model saved by ``save(to:metadata:)``.
    public static func load(from path: String) throws(CheckpointError) -> TextModel {
        try load(from: SafetensorsFile(contentsOf: path), path: path)
    }

    /// The model a safetensors file holds (`path` is only for messages).
    public static func load(from file: SafetensorsFile, path: String) throws(CheckpointError) -> TextModel {
        let (network, metadata) = try Checkpoint.network(from: file, path: path)
        return try TextModel(network: network, vocabulary: vocabulary(in: metadata, path: path), path: path)
    }

    /// The vocabulary a text model's metadata records (``vocabularyKey``).
    static func vocabulary(in metadata: [String: String], path: String) throws(CheckpointError) -> [UInt8] {
        guard let list = metadata[vocabularyKey] else {
            throw .invalidArchitecture(path: path, reason: "no vocabulary (\(vocabularyKey)): not a text model")
        }
        var vocabulary: [UInt8] = []
        for item in list.split(separator: ",", omittingEmptySubsequences: false) {
            guard let byte = UInt8(item) else { throw .invalidArchitecture(path: path, reason: "its vocabulary has '\(item)', not a byte") }
            vocabulary.append(byte)
        }
        return vocabulary
    }

    /// The indices of `bytes` in the vocabulary, or the bytes it does not know.
    public func indices(of bytes: [UInt8]) -> Result<[UInt8], UnknownBytes> {
        Self.indices(of: bytes, in: vocabulary)
    }

    /// The indices of `bytes` in `vocabulary` (at most 256 distinct bytes), or the bytes it does not hold.
    static func indices(of bytes: [UInt8], in vocabulary: [UInt8]) -> Result<[UInt8], UnknownBytes> {
        var index = [Int](repeating: -1, count: 256)
        for (i, byte) in vocabulary.enumerated() { index[Int(byte)] = i }
        let unknown = Set(bytes.filter { index[Int($0)] < 0 })
        guard unknown.isEmpty else { return .failure(UnknownBytes(bytes: unknown.sorted())) }
        return .success(bytes.map { UInt8(index[Int($0)]) })
    }

    /// Bytes outside a model's vocabulary.
    public struct UnknownBytes: Error, Sendable, CustomStringConvertible {
        public let bytes: [UInt8]
        public var description: String {
            "not in the model's vocabulary: " + bytes.map { byte in
                (32..<127).contains(byte) ? "'\(Character(UnicodeScalar(byte)))'" : String(format: "\\x%02X", byte)
            }.joined(separator: ", ")
        }
    }

    /// Generates `length` bytes: runs `prime` (by default a newline, if the vocabulary has one) through the model
    /// from a zero state, then draws each next byte from `softmax(logits / temperature)` and feeds it back.
    /// Returns the generated bytes (not the prime). Throws ``UnknownBytes`` for prime bytes outside the vocabulary.
    public func sample(length: Int, temperature: Float = 1, prime: [UInt8] = [], seed: UInt64 = 0) throws(UnknownBytes) -> [UInt8] {
        precondition(length >= 0, "TextModel.sample: length must be ≥ 0, got \(length)")
        precondition(temperature > 0 && temperature.isFinite, "TextModel.sample: temperature must be positive, got \(temperature)")
        let start = prime.isEmpty ? [vocabulary.contains(10) ? 10 : vocabulary[0]] : prime
        let startIndices = try indices(of: start).get()
        let rnn = recurrent, v = vocabularySize
        let width = rnn.directions * rnn.hiddenSize
        let x = Matrix(rows: 1, columns: v), hidden = Matrix(rows: 1, columns: width), logits = Matrix(rows: 1, columns: v)
        let state = RecurrentState(zerosFor: rnn, sequences: 1), next = RecurrentState(zerosFor: rnn, sequences: 1)
        let scratch = Matrix(rows: 1, columns: max(rnn.scratchCount(rows: 1, inputSize: v, backward: false),
                                                   head.scratchCount(rows: 1, inputSize: width, backward: false)))
        let context = LayerContext(mode: .evaluation, scratch: scratch, scratchIncludesBackward: false)
        var generator = SeededGenerator(seed: seed)
        func step(_ index: UInt8) {
            x.fill(0)
            x.pointer[Int(index)] = 1
            rnn.forward(output: hidden, finalState: next, input: x, initialState: state, context: context)
            state.assign(next)
            head.forward(output: logits, input: hidden, context: context)
        }
        for index in startIndices { step(index) }
        var output: [UInt8] = []
        output.reserveCapacity(length)
        var probabilities = [Double](repeating: 0, count: v)
        for _ in 0..<length {
            var top = -Double.infinity
            for j in 0..<v { top = max(top, Double(logits.pointer[j]) / Double(temperature)) }
            var total = 0.0
            for j in 0..<v {
                probabilities[j] = exp(Double(logits.pointer[j]) / Double(temperature) - top)
                total += probabilities[j]
            }
            var u = generator.nextUniform() * total, choice = v - 1
            for j in 0..<v {
                u -= probabilities[j]
                if u < 0 { choice = j; break }
            }
            output.append(vocabulary[choice])
            step(UInt8(choice))
        }
        return output
    }
}

/// Trains a ``TextModel`` as `torch_charlm.py` does: the bytes cut into `batchSize` contiguous streams; each step
/// feeds the next `sequenceLength` bytes of every stream, one-hot, from the state the previous step left (its
/// gradient cut: truncated backpropagation through time), predicts each next byte, and takes one optimizer step on
/// the mean cross-entropy, the gradient's global norm clipped to ``clipNorm``. Every buffer is made once; a step
/// allocates nothing.
public final class TextTrainer {
    /// The model trained.
    public let model: TextModel
    /// The optimizer (its learning rate may be changed between steps).
    public var optimizer: any Optimizer
    /// `T`, the bytes per stream per step; `N`, the streams.
    public let sequenceLength: Int, batchSize: Int
    /// If set, the gradient's global norm is clipped to it before each step.
    public var clipNorm: Float?
    /// Steps taken.
    public private(set) var stepCount = 0

    private let input: Matrix, hidden: Matrix, logits: Matrix, targets: Matrix, dLogits: Matrix, dHidden: Matrix
    private let state: RecurrentState, next: RecurrentState
    private let rnnScratch: Matrix, headScratch: Matrix

    /// A trainer of `model` with `optimizer`, steps of `sequenceLength` bytes of `batchSize` streams.
    public init(model: TextModel, optimizer: any Optimizer, sequenceLength: Int = 50, batchSize: Int = 50, clipNorm: Float? = 5) {
        precondition(sequenceLength >= 1 && batchSize >= 1, "TextTrainer: sequence length and batch size must be positive, got \(sequenceLength) and \(batchSize)")
        (self.model, self.optimizer, self.sequenceLength, self.batchSize, self.clipNorm) = (model, optimizer, sequenceLength, batchSize, clipNorm)
        let v = model.vocabularySize, rnn = model.recurrent, t = sequenceLength, n = batchSize
        let width = rnn.directions * rnn.hiddenSize
        input = Matrix(rows: n, columns: t * v)
        hidden = Matrix(rows: n, columns: t * width)
        logits = Matrix(rows: n, columns: t * v)
        dLogits = Matrix(rows: n, columns: t * v)
        dHidden = Matrix(rows: n, columns: t * width)
        targets = Matrix(rows: n * t, columns: v)
        state = RecurrentState(zerosFor: rnn, sequences: n)
        next = RecurrentState(zerosFor: rnn, sequences: n)
        rnnScratch = Matrix(rows: 1, columns: rnn.scratchCount(rows: n, inputSize: t * v, backward: true))
        headScratch = Matrix(rows: 1, columns: model.head.scratchCount(rows: n, inputSize: t * width, backward: true))
    }

    /// Fills `input` (one-hot) and `targets` (one-hot, row `s·T + t`) with chunk `k` of the streams of `part`.
    private func load(_ part: ArraySlice<UInt8>, chunk k: Int) {
        let n = batchSize, t = sequenceLength, v = model.vocabularySize
        let streamLength = (part.count - 1) / n
        input.fill(0)
        targets.fill(0)
        part.withUnsafeBufferPointer { ids in  // indexed from the slice's start
            for s in 0..<n {
                for step in 0..<t {
                    let position = s * streamLength + k * t + step
                    input.pointer[s * t * v + step * v + Int(ids[position])] = 1
                    targets.pointer[(s * t + step) * v + Int(ids[position + 1])] = 1
                }
            }
        }
    }

    /// One pass over `part` (the training bytes): every chunk of every stream, in order, the state carried from
    /// zero. Calls `progress(done, total, loss)` after each step. Returns the mean loss per byte (nats).
    /// Throws ``TrainingError/diverged(epoch:batch:loss:)`` if a loss is not finite (the parameters are then those
    /// before that step).
    public func trainEpoch(_ part: ArraySlice<UInt8>, epoch: Int = 1,
                           progress: (_ done: Int, _ total: Int, _ loss: Float) -> Void = { _, _, _ in }) throws(TrainingError) -> Double {
        let chunks = try checkedChunkCount(part)
        resetState()
        var total = 0.0
        for k in 0..<chunks {
            let value: Float
            do { value = try trainStep(part, chunk: k) } catch {
                if case .diverged(_, _, let loss) = error { throw .diverged(epoch: epoch, batch: k + 1, loss: loss) }
                throw error
            }
            total += Double(value)
            progress(k + 1, chunks, value)
        }
        return total / Double(chunks)
    }

    /// Sets the carried state to zero (the start of an epoch).
    public func resetState() { state.fill(0) }

    /// One step on chunk `k` of `part`'s streams (bytes `k·T ..< (k+1)·T` of each), from the carried state, which it
    /// then replaces. Returns the step's mean loss per byte; throws, changing nothing, if it is not finite.
    public func trainStep(_ part: ArraySlice<UInt8>, chunk k: Int) throws(TrainingError) -> Float {
        precondition(k >= 0 && k < TextCorpus.chunkCount(part, streams: batchSize, sequenceLength: sequenceLength),
                     "TextTrainer.trainStep: \(part.count) bytes have no chunk \(k) of \(batchSize) streams of \(sequenceLength)")
        let rnn = model.recurrent, head = model.head, network = model.network, v = model.vocabularySize
        load(part, chunk: k)
        stepCount += 1
        let context = LayerContext(mode: .training, scratch: rnnScratch, randomIndex: UInt64(stepCount))
        let headContext = context.with(scratch: headScratch)
        rnn.forward(output: hidden, finalState: next, input: input, initialState: state, context: context)
        head.forward(output: logits, input: hidden, context: headContext)
        let value = CrossEntropy().lossAndGradient(gradient: dLogits.reshaped(rows: batchSize * sequenceLength, columns: v),
                                                   output: logits.reshaped(rows: batchSize * sequenceLength, columns: v), targets: targets)
        guard value.isFinite else { throw .diverged(epoch: 0, batch: stepCount, loss: value) }
        network.zeroGradients()
        head.backward(dInput: dHidden, dOutput: dLogits, input: hidden, output: logits, context: headContext)
        rnn.backward(dInput: nil, dInitialState: nil, dOutput: dHidden, dFinalState: nil, input: input, context: context)
        if let clipNorm {
            let norm = sumOfSquares(network.gradients).squareRoot()
            if norm > Double(clipNorm) { scale(network.gradients, by: Float(Double(clipNorm) / (norm + 1e-6))) }
        }
        optimizer.step(parameters: network.parameters, gradients: network.gradients)
        state.assign(next)  // carried to the next chunk; its gradient is cut
        return value
    }

    /// The number of chunks of `part`'s streams; throws ``TrainingError/dataMismatch(expected:found:)`` when there is
    /// not one (the bytes are fewer than `batchSize · sequenceLength + 1`).
    func checkedChunkCount(_ part: ArraySlice<UInt8>) throws(TrainingError) -> Int {
        let chunks = TextCorpus.chunkCount(part, streams: batchSize, sequenceLength: sequenceLength)
        guard chunks >= 1 else {
            throw .dataMismatch(expected: "at least \(batchSize * sequenceLength + 1) bytes (\(batchSize) streams of \(sequenceLength) and one to predict)",
                                found: "\(part.count) bytes")
        }
        return chunks
    }

    /// The mean loss per byte (nats) over every chunk of `part`'s streams, in evaluation mode, the state carried
    /// from zero (`torch_charlm.py`'s validation). Changes nothing in the model. Throws for too few bytes.
    public func loss(on part: ArraySlice<UInt8>) throws(TrainingError) -> Double {
        let chunks = try checkedChunkCount(part)
        let rnn = model.recurrent, head = model.head, v = model.vocabularySize
        let context = LayerContext(mode: .evaluation, scratch: rnnScratch)
        state.fill(0)
        var total = 0.0
        for k in 0..<chunks {
            load(part, chunk: k)
            rnn.forward(output: hidden, finalState: next, input: input, initialState: state, context: context)
            head.forward(output: logits, input: hidden, context: context.with(scratch: headScratch))
            total += CrossEntropy(reduction: .sum)(logits.reshaped(rows: batchSize * sequenceLength, columns: v), targets: targets).double
            state.assign(next)
        }
        return total / Double(chunks * batchSize * sequenceLength)
    }
}

private extension Float {
    var double: Double { Double(self) }
}
