#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSIMD

/// A long short-term memory layer (Hochreiter & Schmidhuber, 1997), one layer, one direction, with PyTorch's
/// equations and parameter layout. PyTorch: `nn.LSTM(inputSize, hiddenSize, batch_first=True)`.
///
/// Shapes: a batch of `N` sequences of `T` steps of `F` features is `N × (T·F)` (batch-first: row `n` holds step 0's
/// features, then step 1's, …), so `T` is the input width divided by `F`. The output is every step's hidden state,
/// `N × (T·H)` (``returnsSequences``), or the last step's, `N × H`. The state starts at zero.
///
/// Per step, with `xₜ` and the previous `hₜ₋₁`, `cₜ₋₁`, the gates in PyTorch's order `i, f, g, o`:
/// `[i f g o] = xₜ·W_ihᵀ + b_ih + hₜ₋₁·W_hhᵀ + b_hh`, `i, f, o = σ(·)`, `g = tanh(·)`,
/// `cₜ = f ∘ cₜ₋₁ + i ∘ g`, `hₜ = o ∘ tanh(cₜ)`. `W_ih` is `4H × F`, `W_hh` is `4H × H`, both biases `4H`, named
/// `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0` as in `nn.LSTM`'s state_dict, and drawn from
/// `U(−1/√H, 1/√H)` by the PyTorch default initializer.
///
/// Backpropagation through time runs the text's δ recurrence backwards over the steps: with `dhₜ` (from the output
/// and from step `t+1`) and `dcₜ` (from step `t+1`): `do = dhₜ ∘ tanh(cₜ)`, `dc = dcₜ + dhₜ ∘ o ∘ (1 − tanh²cₜ)`,
/// `di = dc ∘ g`, `df = dc ∘ cₜ₋₁`, `dg = dc ∘ i`, `dcₜ₋₁ = dc ∘ f`; the pre-activation gradients `dGₜ` are those
/// times `σ′` or `tanh′`, and `dhₜ₋₁ = dGₜ·W_hh`. The input projection of all steps is one GEMM, each step one
/// recurrent GEMM, and each weight gradient one GEMM over all steps: `dW_ih += dGᵀ·X`, `dW_hh += dGᵀ·H₋₁`,
/// `dX = dG·W_ih`.
///
/// The scratch space keeps, per step, the activated gates, `cₜ`, `tanh(cₜ)` and `hₜ` (time-major: step `t` of
/// sample `n` at row `t·N + n`), so the backward pass recomputes nothing.
public struct LSTM: RecurrentLayer {
    /// The parameters, in PyTorch's layout (see ``RecurrentLayer`` for the views of them).
    public private(set) var weights: RecurrentParameters
    /// Whether the output is every step's hidden state (`N × T·H`) or only the last one's (`N × H`).
    public let returnsSequences: Bool

    /// An LSTM from `inputSize` features per step to `hiddenSize`, its parameters drawn from `U(−1/√H, 1/√H)` with a
    /// generator seeded with `seed` (without one, the next seed of a process-wide sequence, as for ``Dense``).
    public init(inputSize: Int, hiddenSize: Int, returnsSequences: Bool = true, seed: UInt64? = nil) {
        weights = RecurrentParameters(inputSize: inputSize, hiddenSize: hiddenSize, gates: 4, seed: seed, layer: "LSTM")
        self.returnsSequences = returnsSequences
    }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        weights.bind(parameters: parameters, gradients: gradients, layer: "LSTM")
    }

    /// Where each buffer lies in the scratch space for `n` sequences of `t` steps.
    private struct Buffers {
        let projected: Matrix  // N·T × 4H, batch-major: x·W_ihᵀ + b_ih + b_hh; in the backward pass, dG batch-major
        let gates: Matrix  // T·N × 4H, time-major: i, f, g, o after their nonlinearities
        let cells: Matrix, cellTanh: Matrix, hidden: Matrix  // T·N × H, time-major
        let recurrent: Matrix  // N × 4H: hₜ₋₁·W_hhᵀ
        let zeros: Matrix  // N × H: h₋₁ = c₋₁ = 0
        let gateGradients: Matrix  // T·N × 4H, time-major (backward)
        let hiddenGradient: Matrix, cellGradient: Matrix  // N × H (backward)

        static func count(n: Int, t: Int, h: Int, backward: Bool) -> Int {
            let nt = n * t
            return nt * 4 * h * 2 + nt * h * 3 + n * 4 * h + n * h + (backward ? nt * 4 * h + 2 * n * h : 0)
        }

        init(_ context: LayerContext, n: Int, t: Int, h: Int, backward: Bool) {
            var offset = 0
            func take(_ rows: Int, _ columns: Int) -> Matrix {
                defer { offset += rows * columns }
                return context.scratch(rows: rows, columns: columns, offset: offset)
            }
            let nt = n * t
            projected = take(nt, 4 * h)
            gates = take(nt, 4 * h)
            (cells, cellTanh, hidden) = (take(nt, h), take(nt, h), take(nt, h))
            recurrent = take(n, 4 * h)
            zeros = take(n, h)
            gateGradients = backward ? take(nt, 4 * h) : take(0, 4 * h)
            (hiddenGradient, cellGradient) = backward ? (take(n, h), take(n, h)) : (take(0, h), take(0, h))
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
        let h = hiddenSize, g = 4 * h
        let b = Buffers(context, n: n, t: t, h: h, backward: context.scratchIncludesBackward)
        // The input projection of every step at once: rows of X (n·T + t) as N·T × F.
        let x = input.reshaped(rows: n * t, columns: inputSize)
        broadcastRows(b.projected, row: biasIH)
        for j in 0..<g { let p = b.projected.pointer; for r in 0..<(n * t) { p[r * g + j] += biasHH.pointer[j] } }
        gemm(b.projected, x, weightIH, transposeB: true, beta: 1)
        b.zeros.fill(0)
        for step in 0..<t {
            let previousHidden = step == 0 ? b.zeros : b.hidden.rows(((step - 1) * n)..<(step * n))
            let previousCell = step == 0 ? b.zeros : b.cells.rows(((step - 1) * n)..<(step * n))
            gemm(b.recurrent, previousHidden, weightHH, transposeB: true)  // N × 4H
            // The summed pre-activations of this step into its rows of `gates`, then the cell (`bp_lstm_step`).
            let gates = b.gates.pointer + step * n * g, recurrent = b.recurrent.pointer, projected = b.projected.pointer
            for s in 0..<n {
                let row = gates + s * g, pre = projected + (s * t + step) * g, rec = recurrent + s * g
                for j in 0..<g { row[j] = pre[j] + rec[j] }
            }
            bp_lstm_step(gates, previousCell.pointer, b.cells.pointer + step * n * h, b.cellTanh.pointer + step * n * h,
                         b.hidden.pointer + step * n * h, n, h)
        }
        weights.writeOutput(output, hidden: b.hidden, sequences: n, steps: t, every: returnsSequences)
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        let (n, t) = checkedShape(input: input, output: dOutput, dInput: dInput, context: context, backward: true) {
            Buffers.count(n: input.rows, t: $0, h: hiddenSize, backward: $1)
        }
        let h = hiddenSize, g = 4 * h
        let b = Buffers(context, n: n, t: t, h: h, backward: true)
        let dh = b.hiddenGradient.pointer, dc = b.cellGradient.pointer
        b.hiddenGradient.fill(0)
        b.cellGradient.fill(0)
        for step in stride(from: t - 1, through: 0, by: -1) {
            // dhₜ: from the output at this step, plus what step t+1 sent back (already in dh).
            weights.addOutputGradient(dh, dOutput: dOutput, step: step, sequences: n, steps: t, every: returnsSequences)
            let gates = b.gates.pointer + step * n * g, dGates = b.gateGradients.pointer + step * n * g
            let tc = b.cellTanh.pointer + step * n * h
            let cPrevious = step == 0 ? b.zeros.pointer : b.cells.pointer + (step - 1) * n * h
            for s in 0..<n {
                let row = gates + s * g, dRow = dGates + s * g
                for j in 0..<h {
                    let (i, f, gg, o) = (row[j], row[h + j], row[2 * h + j], row[3 * h + j])
                    let cellTanh = tc[s * h + j], dH = dh[s * h + j]
                    let dO = dH * cellTanh
                    let dC = dc[s * h + j] + dH * o * (1 - cellTanh * cellTanh)
                    dRow[j] = dC * gg * i * (1 - i)
                    dRow[h + j] = dC * cPrevious[s * h + j] * f * (1 - f)
                    dRow[2 * h + j] = dC * i * (1 - gg * gg)
                    dRow[3 * h + j] = dO * o * (1 - o)
                    dc[s * h + j] = dC * f  // to step t−1
                }
            }
            // dhₜ₋₁ = dGₜ·W_hh (N × 4H · 4H × H), to be added to by step t−1's output gradient.
            gemm(b.hiddenGradient, b.gateGradients.rows((step * n)..<((step + 1) * n)), weightHH)
        }
        // Weight gradients of all steps at once. W_hh: dGₜ against hₜ₋₁ (time-major rows; h₋₁ = 0 adds nothing).
        if t > 1 {
            gemm(weightHHGradient, b.gateGradients.rows(n..<(t * n)), b.hidden.rows(0..<((t - 1) * n)), transposeA: true, beta: 1)
        }
        addColumnSums(biasHHGradient, of: b.gateGradients)  // b_ih gets the same, below, with W_ih and dX
        weights.backwardInputSide(b.gateGradients, batchMajor: b.projected, input: input, dInput: dInput, sequences: n, steps: t)
    }
}

extension LSTM: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable {
        public var inputSize: Int, hiddenSize: Int, returnsSequences: Bool
    }
    public static let typeName = "lstm"
    public var settings: Settings { Settings(inputSize: inputSize, hiddenSize: hiddenSize, returnsSequences: returnsSequences) }
    public static func parameterCount(for s: Settings) -> Int? {
        guard s.inputSize >= 0, s.hiddenSize >= 0, s.inputSize <= 1 << 24, s.hiddenSize <= 1 << 24 else { return Int.max }
        return 4 * s.hiddenSize * (s.inputSize + s.hiddenSize + 2)
    }
    public init(settings: Settings) throws {
        try checkSize(settings.inputSize, "inputSize", in: "lstm")
        try checkSize(settings.hiddenSize, "hiddenSize", in: "lstm")
        self.init(inputSize: settings.inputSize, hiddenSize: settings.hiddenSize, returnsSequences: settings.returnsSequences, seed: 0)
    }
}
