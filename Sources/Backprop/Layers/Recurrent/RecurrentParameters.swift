/// The parameters of a one-layer, one-direction recurrent layer as PyTorch keeps them — `W_ih` (`G·H × F`), `W_hh`
/// (`G·H × H`), `b_ih`, `b_hh` (`1 × G·H`) for `G` gates — their gradients, and what ``LSTM`` and ``GRU`` share:
/// names, binding, initialisation, and the steps of a batch-first input.
struct RecurrentParameters: Sendable {
    let inputSize: Int, hiddenSize: Int, gates: Int
    private(set) var weightIH: Matrix, weightHH: Matrix, biasIH: Matrix, biasHH: Matrix
    private(set) var weightIHGradient: Matrix, weightHHGradient: Matrix, biasIHGradient: Matrix, biasHHGradient: Matrix

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
