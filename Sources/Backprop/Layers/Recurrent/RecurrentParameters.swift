/// The parameters of a one-layer, one-direction recurrent layer as PyTorch keeps them — `W_ih` (`G·H × F`), `W_hh`
/// (`G·H × H`), `b_ih`, `b_hh` (`1 × G·H`) for `G` gates (LSTM 4, GRU 3, RNN 1) — their gradients, and what the
/// recurrent layers share: names, binding, initialisation, the steps of a batch-first input.
public struct RecurrentParameters: Sendable {
    /// `F`, the features of one step; `H`, the hidden state's size; `G`, the number of gates.
    public let inputSize: Int, hiddenSize: Int, gates: Int
    /// `W_ih`, `W_hh`, `b_ih`, `b_hh`.
    public private(set) var weightIH: Matrix, weightHH: Matrix, biasIH: Matrix, biasHH: Matrix
    /// Their gradients, accumulated by the backward pass.
    public private(set) var weightIHGradient: Matrix, weightHHGradient: Matrix, biasIHGradient: Matrix, biasHHGradient: Matrix

    init(inputSize: Int, hiddenSize: Int, gates: Int, seed: UInt64?, layer: String) {
        precondition(inputSize > 0 && hiddenSize > 0, "\(layer): sizes must be positive, got \(inputSize) → \(hiddenSize)")
        (self.inputSize, self.hiddenSize, self.gates) = (inputSize, hiddenSize, gates)
        let g = gates * hiddenSize, count = g * (inputSize + hiddenSize + 2)
        func views(_ storage: MatrixStorage) -> (Matrix, Matrix, Matrix, Matrix) {
            (Matrix(rows: g, columns: inputSize, storage: storage, offset: 0),
             Matrix(rows: g, columns: hiddenSize, storage: storage, offset: g * inputSize),
             Matrix(rows: 1, columns: g, storage: storage, offset: g * (inputSize + hiddenSize)),
             Matrix(rows: 1, columns: g, storage: storage, offset: g * (inputSize + hiddenSize + 1)))
        }
        (weightIH, weightHH, biasIH, biasHH) = views(MatrixStorage(count: count))
        (weightIHGradient, weightHHGradient, biasIHGradient, biasHHGradient) = views(MatrixStorage(count: count))
        var generator = SeededGenerator(seed: seed ?? LayerSeeds.next())
        initialize(.pytorchDefault, using: &generator)
    }

    var parameters: [Matrix] { [weightIH, weightHH, biasIH, biasHH] }
    var gradients: [Matrix] { [weightIHGradient, weightHHGradient, biasIHGradient, biasHHGradient] }
    var names: [TensorName] {
        let g = gates * hiddenSize
        return [TensorName("weight_ih_l0", shape: [g, inputSize]), TensorName("weight_hh_l0", shape: [g, hiddenSize]),
                TensorName("bias_ih_l0", shape: [g]), TensorName("bias_hh_l0", shape: [g])]
    }

    /// The number of steps in an input of `width` features, if whole.
    func steps(_ width: Int) -> Int? { width > 0 && width % inputSize == 0 ? width / inputSize : nil }

    mutating func bind(parameters: [Matrix], gradients: [Matrix], layer: String) {
        precondition(parameters.count == 4 && gradients.count == 4, "\(layer).bind: needs [W_ih, W_hh, b_ih, b_hh] twice")
        for (new, old) in zip(parameters, self.parameters) { new.assign(old) }
        (weightIH, weightHH, biasIH, biasHH) = (parameters[0], parameters[1], parameters[2], parameters[3])
        (weightIHGradient, weightHHGradient, biasIHGradient, biasHHGradient) = (gradients[0], gradients[1], gradients[2], gradients[3])
    }

    /// PyTorch's default (``Initializer/pytorchDefault``): every parameter from `U(−1/√H, 1/√H)`. Another initializer
    /// draws the weights with fan-in `F` (or `H`) and fan-out `G·H`, and zero biases.
    func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        if initializer == .pytorchDefault {
            let a = 1 / Double(hiddenSize).squareRoot()
            for tensor in parameters {
                tensor.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = Float((2 * generator.nextUniform() - 1) * a) } }
            }
        } else {
            initializer.fill(weightIH, fanIn: inputSize, fanOut: gates * hiddenSize, using: &generator)
            initializer.fill(weightHH, fanIn: hiddenSize, fanOut: gates * hiddenSize, using: &generator)
            biasIH.fill(0)
            biasHH.fill(0)
        }
    }

    /// Copies the hidden states (time-major, `T·N × H`: step `t` of sequence `s` at row `t·N + s`) into `output`:
    /// every step's, batch-first (`N × T·H`), or the last step's (`N × H`).
    func writeOutput(_ output: Matrix, hidden: Matrix, sequences n: Int, steps t: Int, every: Bool) {
        let h = hiddenSize, out = output.pointer, source = hidden.pointer
        for s in 0..<n {
            if every {
                for step in 0..<t { (out + (s * t + step) * h).update(from: source + (step * n + s) * h, count: h) }
            } else {
                (out + s * h).update(from: source + ((t - 1) * n + s) * h, count: h)
            }
        }
    }

    /// Adds `∂L/∂hₜ` from the output at `step` to `dh` (`N × H`).
    func addOutputGradient(_ dh: UnsafeMutablePointer<Float>, dOutput: Matrix, step: Int, sequences n: Int, steps t: Int, every: Bool) {
        let h = hiddenSize, dOut = dOutput.pointer
        if every {
            for s in 0..<n { let source = dOut + (s * t + step) * h; for j in 0..<h { dh[s * h + j] += source[j] } }
        } else if step == t - 1 {
            for i in 0..<(n * h) { dh[i] += dOut[i] }
        }
    }

    /// The input side of the backward pass from the pre-activation gradients `dG` (time-major, `T·N × G·H`):
    /// `db_ih += Σ dG`, `dW_ih += dGᵀ·X` and `dX = dG·W_ih`, with `dG` first copied into `batchMajor` (`N·T × G·H`) to
    /// follow the input's rows.
    func backwardInputSide(_ dG: Matrix, batchMajor: Matrix, input: Matrix, dInput: Matrix?, sequences n: Int, steps t: Int) {
        let g = gates * hiddenSize, source = dG.pointer
        addColumnSums(biasIHGradient, of: dG)
        for s in 0..<n {
            for step in 0..<t { (batchMajor.pointer + (s * t + step) * g).update(from: source + (step * n + s) * g, count: g) }
        }
        let x = input.reshaped(rows: n * t, columns: inputSize)
        gemm(weightIHGradient, batchMajor, x, transposeA: true, beta: 1)
        if let dInput { gemm(dInput.reshaped(rows: n * t, columns: inputSize), batchMajor, weightIH) }
    }
}

/// A recurrent layer over batch-first sequences (`N × T·F` in, `N × T·H` or `N × H` out) whose parameters are
/// ``RecurrentParameters``: ``RNN``, ``LSTM``, ``GRU``. Everything but the step itself is shared here.
public protocol RecurrentLayer: Layer {
    /// The parameters, in PyTorch's layout.
    var weights: RecurrentParameters { get }
    /// Whether the output is every step's hidden state (`N × T·H`) or only the last one's (`N × H`).
    var returnsSequences: Bool { get }
}

extension RecurrentLayer {
    /// `F`, the features of one step.
    public var inputSize: Int { weights.inputSize }
    /// `H`, the hidden state's size.
    public var hiddenSize: Int { weights.hiddenSize }
    /// `W_ih` (`G·H × F`), `W_hh` (`G·H × H`), `b_ih`, `b_hh` (`1 × G·H`), and their gradients.
    public var weightIH: Matrix { weights.weightIH }
    public var weightHH: Matrix { weights.weightHH }
    public var biasIH: Matrix { weights.biasIH }
    public var biasHH: Matrix { weights.biasHH }
    public var weightIHGradient: Matrix { weights.weightIHGradient }
    public var weightHHGradient: Matrix { weights.weightHHGradient }
    public var biasIHGradient: Matrix { weights.biasIHGradient }
    public var biasHHGradient: Matrix { weights.biasHHGradient }

    public var parameters: [Matrix] { weights.parameters }
    public var parameterGradients: [Matrix] { weights.gradients }
    /// `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, as in PyTorch's state_dict.
    public var parameterNames: [TensorName] { weights.names }

    /// PyTorch's default (and ``Initializer/pytorchDefault``): every parameter from `U(−1/√H, 1/√H)`. Another
    /// initializer draws the weights with fan-in `F` (or `H`) and fan-out `G·H`, and zero biases.
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        weights.initialize(initializer, using: &generator)
    }

    /// `T·H` for an input of `T` whole steps (`H` with only the last step's output); stops otherwise.
    public func outputSize(forInputSize inputSize: Int) -> Int {
        guard let size = outputSizeIfAccepted(forInputSize: inputSize) else {
            preconditionFailure("\(Self.self): an input of \(inputSize) features is not a whole number of steps of \(self.inputSize)")
        }
        return size
    }

    public func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int? {
        weights.steps(inputSize).map { returnsSequences ? $0 * hiddenSize : hiddenSize }
    }

    /// The number of steps in an input of `inputSize` features.
    func steps(_ inputSize: Int) -> Int? { weights.steps(inputSize) }

    /// The sequences `N` and steps `T` of a pass, after checking the shapes it is given: `input`, `output` (or, in
    /// the backward pass, `dOutput`; and `dInput`), and that `context` holds `scratchCount(T, backward)` floats (and,
    /// in the backward pass, was planned for it). Stops with the shapes in the message otherwise.
    func checkedShape(input: Matrix, output: Matrix, dInput: Matrix? = nil, context: LayerContext, backward: Bool,
                      scratchCount: (_ steps: Int, _ backward: Bool) -> Int) -> (n: Int, t: Int) {
        let pass = "\(Self.self).\(backward ? "backward" : "forward")"
        guard let t = steps(input.columns) else {
            preconditionFailure("\(pass): input \(input.shapeDescription) is not a whole number of steps of \(inputSize) features")
        }
        let n = input.rows, h = hiddenSize
        precondition(output.rows == n && output.columns == (returnsSequences ? t * h : h),
                     "\(pass): \(backward ? "dOutput" : "output") \(output.shapeDescription) does not fit \(n) sequences of \(t) steps of \(h)")
        let needed = scratchCount(t, backward)
        precondition((!backward || context.scratchIncludesBackward) && context.scratch.count >= needed,
                     "\(pass): needs \(backward ? "the scratch its forward pass filled, planned with backward: true, " : "")\(needed) floats of scratch, was given \(context.scratch.count)")
        if let dInput { precondition(sameShape: dInput, input, "\(pass) (dInput, input)") }
        return (n, t)
    }
}
