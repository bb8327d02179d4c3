/// An Elman recurrent layer with PyTorch's equations and parameter layout. PyTorch: `nn.RNN(inputSize, hiddenSize,
/// numLayers, nonlinearity='tanh'|'relu', batch_first=True, bidirectional=…)`. Shapes and state as ``LSTM``'s, without
/// a cell state.
///
/// Per step: `hₜ = φ(xₜ·W_ihᵀ + b_ih + hₜ₋₁·W_hhᵀ + b_hh)` with `φ` = tanh or ReLU; `W_ih` is `H × F`, `W_hh` is
/// `H × H`, named `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, drawn from `U(−1/√H, 1/√H)`.
/// Backward through time, the text's δ recurrence itself: `δₜ = dhₜ ∘ φ′`, `dhₜ₋₁ = δₜ·W_hh` (plus the output's
/// gradient at `t − 1`): each step multiplies the gradient by `W_hh` and by `φ′ ≤ 1`, which is why it vanishes or
/// explodes over long sequences (see <doc:VanishingGradients>).
public struct RNN: RecurrentLayer {
    /// The nonlinearity `φ`.
    public enum Nonlinearity: String, Sendable, Codable { case tanh, relu }

    /// The layers, directions and parameters.
    public private(set) var stack: RecurrentStack
    /// `φ`.
    public var nonlinearity: Nonlinearity { stack.cell == .rnnReLU ? .relu : .tanh }

    /// `numLayers` stacked layers (each above the first reads the one below's hidden states, with `dropout` between
    /// them in training), each over the sequence forwards and, when `bidirectional`, also backwards; the parameters
    /// drawn from `U(−1/√H, 1/√H)` with a generator seeded with `seed` (without one, the next seed of a process-wide
    /// sequence, as for ``Dense``). PyTorch: `nn.RNN(inputSize, hiddenSize, numLayers, batch_first=True, dropout=dropout,
    /// bidirectional=bidirectional)`.
    public init(inputSize: Int, hiddenSize: Int, nonlinearity: Nonlinearity = .tanh, numLayers: Int = 1,
                bidirectional: Bool = false, dropout: Float = 0, returnsSequences: Bool = true, seed: UInt64? = nil) {
        stack = RecurrentStack(cell: nonlinearity == .relu ? .rnnReLU : .rnnTanh, inputSize: inputSize, hiddenSize: hiddenSize,
                               numLayers: numLayers, bidirectional: bidirectional, dropout: dropout,
                               returnsSequences: returnsSequences, seed: seed)
    }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        stack.bind(parameters: parameters, gradients: gradients)
    }
}

extension RNN: SavableLayer {
    public typealias Settings = RecurrentSettings
    public static let typeName = "rnn"
    public var settings: Settings {
        Settings(inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bidirectional: bidirectional, dropout: dropout,
                 returnsSequences: returnsSequences, nonlinearity: nonlinearity)
    }
    public static func parameterCount(for s: Settings) -> Int? { s.parameterCount(cell: s.nonlinearity == .relu ? .rnnReLU : .rnnTanh) }
    public init(settings: Settings) throws {
        try settings.check(in: "rnn")
        self.init(inputSize: settings.inputSize, hiddenSize: settings.hiddenSize, nonlinearity: settings.nonlinearity ?? .tanh, numLayers: settings.numLayers,
                  bidirectional: settings.bidirectional, dropout: settings.dropout, returnsSequences: settings.returnsSequences, seed: 0)
    }
}
