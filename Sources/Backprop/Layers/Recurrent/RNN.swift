#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An Elman recurrent layer, one layer, one direction, with PyTorch's equations and parameter layout. PyTorch:
/// `nn.RNN(inputSize, hiddenSize, nonlinearity='tanh'|'relu', batch_first=True)`. Shapes as ``LSTM``'s: input
/// `N × (T·F)`, output `N × (T·H)` or `N × H`, state from zero.
///
/// Per step: `hₜ = φ(xₜ·W_ihᵀ + b_ih + hₜ₋₁·W_hhᵀ + b_hh)` with `φ` = tanh or ReLU; `W_ih` is `H × F`, `W_hh` is
/// `H × H`, named `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, drawn from `U(−1/√H, 1/√H)`.
/// Backward through time, the text's δ recurrence itself: `δₜ = dhₜ ∘ φ′`, `dhₜ₋₁ = δₜ·W_hh` (plus the output's
/// gradient at `t − 1`): each step multiplies the gradient by `W_hh` and by `φ′ ≤ 1`, which is why it vanishes or
/// explodes over long sequences (see <doc:VanishingGradients>).
public struct RNN: RecurrentLayer {
    /// The nonlinearity `φ`.
    public enum Nonlinearity: String, Sendable, Codable { case tanh, relu }

    /// The parameters, in PyTorch's layout (see ``RecurrentLayer`` for the views of them).
    public private(set) var weights: RecurrentParameters
    /// `φ`.
    public let nonlinearity: Nonlinearity
    /// Whether the output is every step's hidden state (`N × T·H`) or only the last one's (`N × H`).
    public let returnsSequences: Bool

    /// An RNN from `inputSize` features per step to `hiddenSize`, parameters from `U(−1/√H, 1/√H)` (seeded as
    /// ``LSTM``).
    public init(inputSize: Int, hiddenSize: Int, nonlinearity: Nonlinearity = .tanh, returnsSequences: Bool = true,
                seed: UInt64? = nil) {
        weights = RecurrentParameters(inputSize: inputSize, hiddenSize: hiddenSize, gates: 1, seed: seed, layer: "RNN")
        self.nonlinearity = nonlinearity
        self.returnsSequences = returnsSequences
    }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        weights.bind(parameters: parameters, gradients: gradients, layer: "RNN")
    }

    /// `N·T × H` batch-major projection (then the batch-major `δ` for the input side), `T·N × H` hidden states,
    /// `N × H` zeros; backward: `T·N × H` `δ`, `N × H` `dh`.
    private struct Buffers {
        let projected: Matrix, hidden: Matrix, zeros: Matrix, deltas: Matrix, hiddenGradient: Matrix
        static func count(n: Int, t: Int, h: Int, backward: Bool) -> Int {
            2 * n * t * h + n * h + (backward ? n * t * h + n * h : 0)
        }
        init(_ context: LayerContext, n: Int, t: Int, h: Int, backward: Bool) {
            var offset = 0
            func take(_ rows: Int, _ columns: Int) -> Matrix {
                defer { offset += rows * columns }
                return context.scratch(rows: rows, columns: columns, offset: offset)
            }
            (projected, hidden, zeros) = (take(n * t, h), take(n * t, h), take(n, h))
            (deltas, hiddenGradient) = backward ? (take(n * t, h), take(n, h)) : (take(0, h), take(0, h))
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
        let h = hiddenSize
        let b = Buffers(context, n: n, t: t, h: h, backward: context.scratchIncludesBackward)
        broadcastRows(b.projected, row: biasIH)
        gemm(b.projected, input.reshaped(rows: n * t, columns: inputSize), weightIH, transposeB: true, beta: 1)
        b.zeros.fill(0)
        for step in 0..<t {
            let previous = step == 0 ? b.zeros : b.hidden.rows(((step - 1) * n)..<(step * n))
            let current = b.hidden.rows((step * n)..<((step + 1) * n))
            broadcastRows(current, row: biasHH)
            gemm(current, previous, weightHH, transposeB: true, beta: 1)
            let hh = current.pointer
            for s in 0..<n {
                let pre = b.projected.pointer + (s * t + step) * h
                for j in 0..<h {
                    let z = hh[s * h + j] + pre[j]
                    hh[s * h + j] = nonlinearity == .tanh ? tanhf(z) : max(0, z)
                }
            }
        }
        weights.writeOutput(output, hidden: b.hidden, sequences: n, steps: t, every: returnsSequences)
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        let (n, t) = checkedShape(input: input, output: dOutput, dInput: dInput, context: context, backward: true) {
            Buffers.count(n: input.rows, t: $0, h: hiddenSize, backward: $1)
        }
        let h = hiddenSize
        let b = Buffers(context, n: n, t: t, h: h, backward: true)
        let dh = b.hiddenGradient.pointer
        b.hiddenGradient.fill(0)
        for step in stride(from: t - 1, through: 0, by: -1) {
            weights.addOutputGradient(dh, dOutput: dOutput, step: step, sequences: n, steps: t, every: returnsSequences)
            let hh = b.hidden.pointer + step * n * h, delta = b.deltas.pointer + step * n * h
            for i in 0..<(n * h) {  // δₜ = dhₜ ∘ φ′, from hₜ = φ(·): tanh′ = 1 − h², ReLU′ = [h > 0]
                delta[i] = dh[i] * (nonlinearity == .tanh ? 1 - hh[i] * hh[i] : (hh[i] > 0 ? 1 : 0))
            }
            gemm(b.hiddenGradient, b.deltas.rows((step * n)..<((step + 1) * n)), weightHH)  // dhₜ₋₁ = δₜ·W_hh
        }
        if t > 1 {
            gemm(weightHHGradient, b.deltas.rows(n..<(t * n)), b.hidden.rows(0..<((t - 1) * n)), transposeA: true, beta: 1)
        }
        addColumnSums(biasHHGradient, of: b.deltas)
        weights.backwardInputSide(b.deltas, batchMajor: b.projected, input: input, dInput: dInput, sequences: n, steps: t)
    }
}

extension RNN: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable {
        public var inputSize: Int, hiddenSize: Int, nonlinearity: Nonlinearity, returnsSequences: Bool
    }
    public static let typeName = "rnn"
    public var settings: Settings {
        Settings(inputSize: inputSize, hiddenSize: hiddenSize, nonlinearity: nonlinearity, returnsSequences: returnsSequences)
    }
    public static func parameterCount(for s: Settings) -> Int? {
        guard s.inputSize >= 0, s.hiddenSize >= 0, s.inputSize <= 1 << 24, s.hiddenSize <= 1 << 24 else { return Int.max }
        return s.hiddenSize * (s.inputSize + s.hiddenSize + 2)
    }
    public init(settings: Settings) throws {
        try checkSize(settings.inputSize, "inputSize", in: "rnn")
        try checkSize(settings.hiddenSize, "hiddenSize", in: "rnn")
        self.init(inputSize: settings.inputSize, hiddenSize: settings.hiddenSize, nonlinearity: settings.nonlinearity,
                  returnsSequences: settings.returnsSequences, seed: 0)
    }
}
