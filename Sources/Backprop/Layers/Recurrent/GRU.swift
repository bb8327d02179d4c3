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
public struct GRU: RecurrentLayer {
    /// The parameters, in PyTorch's layout (see ``RecurrentLayer`` for the views of them).
    public private(set) var weights: RecurrentParameters
    /// Whether the output is every step's hidden state (`N × T·H`) or only the last one's (`N × H`).
    public let returnsSequences: Bool

    /// A GRU from `inputSize` features per step to `hiddenSize`, its parameters drawn from `U(−1/√H, 1/√H)` with a
    /// generator seeded with `seed` (without one, the next seed of a process-wide sequence, as for ``Dense``).
    public init(inputSize: Int, hiddenSize: Int, returnsSequences: Bool = true, seed: UInt64? = nil) {
        weights = RecurrentParameters(inputSize: inputSize, hiddenSize: hiddenSize, gates: 3, seed: seed, layer: "GRU")
        self.returnsSequences = returnsSequences
    }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        weights.bind(parameters: parameters, gradients: gradients, layer: "GRU")
    }

    /// Where each buffer lies in the scratch space for `n` sequences of `t` steps.
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
        let (n, t) = checkedShape(input: input, output: output, context: context, backward: false) {
            Buffers.count(n: input.rows, t: $0, h: hiddenSize, backward: $1)
        }
        let h = hiddenSize, g = 3 * h
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
        weights.writeOutput(output, hidden: b.hidden, sequences: n, steps: t, every: returnsSequences)
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        let (n, t) = checkedShape(input: input, output: dOutput, dInput: dInput, context: context, backward: true) {
            Buffers.count(n: input.rows, t: $0, h: hiddenSize, backward: $1)
        }
        let h = hiddenSize, g = 3 * h
        let b = Buffers(context, n: n, t: t, h: h, backward: true)
        let dh = b.hiddenGradient.pointer, carried = b.carried.pointer
        b.hiddenGradient.fill(0)
        for step in stride(from: t - 1, through: 0, by: -1) {
            weights.addOutputGradient(dh, dOutput: dOutput, step: step, sequences: n, steps: t, every: returnsSequences)
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
        addColumnSums(biasHHGradient, of: b.hiddenSide)
        weights.backwardInputSide(b.inputSide, batchMajor: b.projected, input: input, dInput: dInput, sequences: n, steps: t)
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
