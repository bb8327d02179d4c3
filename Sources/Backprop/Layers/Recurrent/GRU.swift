#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A gated recurrent unit layer (Cho et al., 2014), one layer, one direction, with PyTorch's equations and parameter
/// layout. PyTorch: `nn.GRU(inputSize, hiddenSize, batch_first=True)`. Shapes as ``LSTM``'s: input `N × (T·F)`,
/// output `N × (T·H)` or `N × H`, state from zero.
///
/// Per step, gates in PyTorch's order `r, z, n`: `r = σ(W_ir xₜ + b_ir + W_hr hₜ₋₁ + b_hr)`,
/// `z = σ(W_iz xₜ + b_iz + W_hz hₜ₋₁ + b_hz)`, `n = tanh(W_in xₜ + b_in + r ∘ (W_hn hₜ₋₁ + b_hn))` (`b_hn` inside the
/// reset product, as PyTorch has it), `hₜ = (1 − z) ∘ n + z ∘ hₜ₋₁`. `W_ih` is `3H × F`, `W_hh` is `3H × H`, both
/// biases `3H`, named `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, drawn from `U(−1/√H, 1/√H)`.
///
/// Backward through time, with `dhₜ`: `dn = dhₜ ∘ (1 − z)`, `dz = dhₜ ∘ (hₜ₋₁ − n)`, `dhₜ₋₁ = dhₜ ∘ z + …`; the
/// pre-activations' gradients `dn̂ = dn ∘ (1 − n²)`, `dr̂ = dn̂ ∘ (W_hn hₜ₋₁ + b_hn) ∘ r(1 − r)`, `dẑ = dz ∘ z(1 − z)`;
/// the input side gets `[dr̂ dẑ dn̂]`, the hidden side `[dr̂ dẑ dn̂ ∘ r]`, and `dhₜ₋₁ += (hidden side)·W_hh`. Weight
/// gradients are one GEMM each over all steps.
public struct GRU: Layer {
    /// `F`, the features of one step.
    public let inputSize: Int
    /// `H`, the hidden state's size.
    public let hiddenSize: Int
    /// Whether the output is every step's hidden state or only the last one's.
    public let returnsSequences: Bool
    public private(set) var weightIH: Matrix, weightHH: Matrix, biasIH: Matrix, biasHH: Matrix
    public private(set) var weightIHGradient: Matrix, weightHHGradient: Matrix, biasIHGradient: Matrix, biasHHGradient: Matrix

    /// A GRU from `inputSize` features per step to `hiddenSize`, parameters from `U(−1/√H, 1/√H)` (seeded as ``LSTM``).
    public init(inputSize: Int, hiddenSize: Int, returnsSequences: Bool = true, seed: UInt64? = nil) {
        precondition(inputSize > 0 && hiddenSize > 0, "GRU: sizes must be positive, got \(inputSize) → \(hiddenSize)")
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.returnsSequences = returnsSequences
        let g = 3 * hiddenSize, count = g * (inputSize + hiddenSize + 2)
        let values = MatrixStorage(count: count), gradients = MatrixStorage(count: count)
        func views(_ storage: MatrixStorage) -> (Matrix, Matrix, Matrix, Matrix) {
            (Matrix(rows: g, columns: inputSize, storage: storage, offset: 0),
             Matrix(rows: g, columns: hiddenSize, storage: storage, offset: g * inputSize),
             Matrix(rows: 1, columns: g, storage: storage, offset: g * (inputSize + hiddenSize)),
             Matrix(rows: 1, columns: g, storage: storage, offset: g * (inputSize + hiddenSize + 1)))
        }
        (weightIH, weightHH, biasIH, biasHH) = views(values)
        (weightIHGradient, weightHHGradient, biasIHGradient, biasHHGradient) = views(gradients)
        var generator = SeededGenerator(seed: seed ?? LayerSeeds.next())
        initialize(.pytorchDefault, using: &generator)
    }

    func steps(_ inputSize: Int) -> Int? { inputSize > 0 && inputSize % self.inputSize == 0 ? inputSize / self.inputSize : nil }

    public func outputSize(forInputSize inputSize: Int) -> Int {
        guard let t = steps(inputSize) else {
            preconditionFailure("GRU: an input of \(inputSize) features is not a whole number of steps of \(self.inputSize)")
        }
        return returnsSequences ? t * hiddenSize : hiddenSize
    }

    public func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int? {
        steps(inputSize).map { returnsSequences ? $0 * hiddenSize : hiddenSize }
    }

    public var parameters: [Matrix] { [weightIH, weightHH, biasIH, biasHH] }
    public var parameterGradients: [Matrix] { [weightIHGradient, weightHHGradient, biasIHGradient, biasHHGradient] }
    public var parameterNames: [TensorName] {
        let g = 3 * hiddenSize
        return [TensorName("weight_ih_l0", shape: [g, inputSize]), TensorName("weight_hh_l0", shape: [g, hiddenSize]),
                TensorName("bias_ih_l0", shape: [g]), TensorName("bias_hh_l0", shape: [g])]
    }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        precondition(parameters.count == 4 && gradients.count == 4, "GRU.bind: needs [W_ih, W_hh, b_ih, b_hh] twice")
        for (new, old) in zip(parameters, self.parameters) { new.assign(old) }
        (weightIH, weightHH, biasIH, biasHH) = (parameters[0], parameters[1], parameters[2], parameters[3])
        (weightIHGradient, weightHHGradient, biasIHGradient, biasHHGradient) = (gradients[0], gradients[1], gradients[2], gradients[3])
    }

    /// As ``LSTM/initialize(_:using:)``.
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        if initializer == .pytorchDefault {
            let a = 1 / Double(hiddenSize).squareRoot()
            for tensor in parameters {
                tensor.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = Float((2 * generator.nextUniform() - 1) * a) } }
            }
        } else {
            initializer.fill(weightIH, fanIn: inputSize, fanOut: 3 * hiddenSize, using: &generator)
            initializer.fill(weightHH, fanIn: hiddenSize, fanOut: 3 * hiddenSize, using: &generator)
            biasIH.fill(0)
            biasHH.fill(0)
        }
    }

    private struct Buffers {
        let projected: Matrix  // N·T × 3H batch-major: x·W_ihᵀ + b_ih; in the backward pass, the input side's gradient
        let gates: Matrix  // T·N × 3H time-major: r, z, n after their nonlinearities
        let hiddenN: Matrix  // T·N × H: W_hn hₜ₋₁ + b_hn
        let hidden: Matrix  // T·N × H
        let recurrent: Matrix  // N × 3H: hₜ₋₁·W_hhᵀ + b_hh
        let zeros: Matrix  // N × H
        let inputSide: Matrix, hiddenSide: Matrix  // T·N × 3H time-major (backward)
        let hiddenGradient: Matrix, carried: Matrix  // N × H (backward)

        static func count(n: Int, t: Int, h: Int, backward: Bool) -> Int {
            let nt = n * t
            return nt * 3 * h * 2 + nt * h * 2 + n * 3 * h + n * h + (backward ? 2 * nt * 3 * h + 2 * n * h : 0)
        }

        init(_ context: LayerContext, n: Int, t: Int, h: Int, backward: Bool) {
            var offset = 0
            func take(_ rows: Int, _ columns: Int) -> Matrix {
                defer { offset += rows * columns }
                return context.scratch(rows: rows, columns: columns, offset: offset)
            }
            let nt = n * t
            projected = take(nt, 3 * h)
            gates = take(nt, 3 * h)
            (hiddenN, hidden) = (take(nt, h), take(nt, h))
            recurrent = take(n, 3 * h)
            zeros = take(n, h)
            (inputSide, hiddenSide) = backward ? (take(nt, 3 * h), take(nt, 3 * h)) : (take(0, 3 * h), take(0, 3 * h))
            (hiddenGradient, carried) = backward ? (take(n, h), take(n, h)) : (take(0, h), take(0, h))
        }
    }

    public func scratchCount(rows: Int, inputSize: Int, backward: Bool) -> Int {
        guard let t = steps(inputSize) else { return 0 }
        return Buffers.count(n: rows, t: t, h: hiddenSize, backward: backward)
    }

    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        guard let t = steps(input.columns) else {
            preconditionFailure("GRU.forward: input \(input.shapeDescription) is not a whole number of steps of \(inputSize) features")
        }
        let n = input.rows, h = hiddenSize, g = 3 * h
        precondition(output.rows == n && output.columns == (returnsSequences ? t * h : h),
                     "GRU.forward: output \(output.shapeDescription) does not fit \(n) sequences of \(t) steps of \(h)")
        precondition(context.scratch.count >= Buffers.count(n: n, t: t, h: h, backward: false),
                     "GRU.forward: needs \(Buffers.count(n: n, t: t, h: h, backward: false)) floats of scratch, was given \(context.scratch.count)")
        let b = Buffers(context, n: n, t: t, h: h, backward: context.scratchIncludesBackward)
        broadcastRows(b.projected, row: biasIH)
        gemm(b.projected, input.reshaped(rows: n * t, columns: inputSize), weightIH, transposeB: true, beta: 1)
        b.zeros.fill(0)
        for step in 0..<t {
            let previous = step == 0 ? b.zeros : b.hidden.rows(((step - 1) * n)..<(step * n))
            broadcastRows(b.recurrent, row: biasHH)
            gemm(b.recurrent, previous, weightHH, transposeB: true, beta: 1)
            let gates = b.gates.pointer + step * n * g, hn = b.hiddenN.pointer + step * n * h
            let hh = b.hidden.pointer + step * n * h, hPrevious = previous.pointer
            for s in 0..<n {
                let pre = b.projected.pointer + (s * t + step) * g, rec = b.recurrent.pointer + s * g, row = gates + s * g
                for j in 0..<h {
                    let r = sigmoid(pre[j] + rec[j]), z = sigmoid(pre[h + j] + rec[h + j])
                    let nGate = tanhf(pre[2 * h + j] + r * rec[2 * h + j])
                    (row[j], row[h + j], row[2 * h + j]) = (r, z, nGate)
                    hn[s * h + j] = rec[2 * h + j]
                    hh[s * h + j] = (1 - z) * nGate + z * hPrevious[s * h + j]
                }
            }
        }
        let out = output.pointer, hidden = b.hidden.pointer
        for s in 0..<n {
            if returnsSequences {
                for step in 0..<t { (out + (s * t + step) * h).update(from: hidden + (step * n + s) * h, count: h) }
            } else {
                (out + s * h).update(from: hidden + ((t - 1) * n + s) * h, count: h)
            }
        }
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        guard let t = steps(input.columns) else {
            preconditionFailure("GRU.backward: input \(input.shapeDescription) is not a whole number of steps of \(inputSize) features")
        }
        let n = input.rows, h = hiddenSize, g = 3 * h
        precondition(dOutput.rows == n && dOutput.columns == (returnsSequences ? t * h : h),
                     "GRU.backward: dOutput \(dOutput.shapeDescription) does not fit \(n) sequences of \(t) steps of \(h)")
        precondition(context.scratchIncludesBackward && context.scratch.count >= Buffers.count(n: n, t: t, h: h, backward: true),
                     "GRU.backward: needs the scratch its forward pass filled, planned with backward: true (\(Buffers.count(n: n, t: t, h: h, backward: true)) floats), was given \(context.scratch.count)")
        if let dInput { precondition(sameShape: dInput, input, "GRU.backward (dInput, input)") }
        let b = Buffers(context, n: n, t: t, h: h, backward: true)
        let dh = b.hiddenGradient.pointer, carried = b.carried.pointer, dOut = dOutput.pointer
        b.hiddenGradient.fill(0)
        for step in stride(from: t - 1, through: 0, by: -1) {
            for s in 0..<n {
                if returnsSequences {
                    let source = dOut + (s * t + step) * h
                    for j in 0..<h { dh[s * h + j] += source[j] }
                } else if step == t - 1 {
                    for j in 0..<h { dh[s * h + j] += dOut[s * h + j] }
                }
            }
            let gates = b.gates.pointer + step * n * g, hn = b.hiddenN.pointer + step * n * h
            let hPrevious = step == 0 ? b.zeros.pointer : b.hidden.pointer + (step - 1) * n * h
            let inputSide = b.inputSide.pointer + step * n * g, hiddenSide = b.hiddenSide.pointer + step * n * g
            for s in 0..<n {
                let row = gates + s * g, dx = inputSide + s * g, dhh = hiddenSide + s * g
                for j in 0..<h {
                    let (r, z, nGate) = (row[j], row[h + j], row[2 * h + j])
                    let dH = dh[s * h + j]
                    let dN = dH * (1 - z) * (1 - nGate * nGate)
                    let dZ = dH * (hPrevious[s * h + j] - nGate) * z * (1 - z)
                    let dR = dN * hn[s * h + j] * r * (1 - r)
                    (dx[j], dx[h + j], dx[2 * h + j]) = (dR, dZ, dN)
                    (dhh[j], dhh[h + j], dhh[2 * h + j]) = (dR, dZ, dN * r)
                    carried[s * h + j] = dH * z  // the direct path hₜ = … + z ∘ hₜ₋₁
                }
            }
            // dhₜ₋₁ = dhₜ ∘ z + (hidden side)·W_hh.
            b.hiddenGradient.assign(b.carried)
            gemm(b.hiddenGradient, b.hiddenSide.rows((step * n)..<((step + 1) * n)), weightHH, beta: 1)
        }
        if t > 1 {
            gemm(weightHHGradient, b.hiddenSide.rows(n..<(t * n)), b.hidden.rows(0..<((t - 1) * n)), transposeA: true, beta: 1)
        }
        addColumnSums(biasIHGradient, of: b.inputSide)
        addColumnSums(biasHHGradient, of: b.hiddenSide)
        let batchMajor = b.projected, source = b.inputSide.pointer
        for s in 0..<n {
            for step in 0..<t { (batchMajor.pointer + (s * t + step) * g).update(from: source + (step * n + s) * g, count: g) }
        }
        let x = input.reshaped(rows: n * t, columns: inputSize)
        gemm(weightIHGradient, batchMajor, x, transposeA: true, beta: 1)
        if let dInput { gemm(dInput.reshaped(rows: n * t, columns: inputSize), batchMajor, weightIH) }
    }
}

extension GRU: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable {
        public var inputSize: Int, hiddenSize: Int, returnsSequences: Bool
    }
    public static let typeName = "gru"
    public var settings: Settings { Settings(inputSize: inputSize, hiddenSize: hiddenSize, returnsSequences: returnsSequences) }
    public static func parameterCount(for s: Settings) -> Int? {
        guard s.inputSize >= 0, s.hiddenSize >= 0, s.inputSize <= 1 << 24, s.hiddenSize <= 1 << 24 else { return Int.max }
        return 3 * s.hiddenSize * (s.inputSize + s.hiddenSize + 2)
    }
    public init(settings: Settings) throws {
        try checkSize(settings.inputSize, "inputSize", in: "gru")
        try checkSize(settings.hiddenSize, "hiddenSize", in: "gru")
        self.init(inputSize: settings.inputSize, hiddenSize: settings.hiddenSize, returnsSequences: settings.returnsSequences, seed: 0)
    }
}
