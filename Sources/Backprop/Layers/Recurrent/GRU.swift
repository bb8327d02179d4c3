/// A gated recurrent unit layer (Cho et al., 2014) with PyTorch's equations and parameter layout. PyTorch:
/// `nn.GRU(inputSize, hiddenSize, numLayers, batch_first=True, bidirectional=…)`. Shapes and state as ``LSTM``'s,
/// without a cell state.
///
/// Per step, gates in PyTorch's order `r, z, n`: `r = σ(xₜW_irᵀ + b_ir + hₜ₋₁W_hrᵀ + b_hr)`,
/// `z = σ(xₜW_izᵀ + b_iz + hₜ₋₁W_hzᵀ + b_hz)`, `n = tanh(xₜW_inᵀ + b_in + r ∘ (hₜ₋₁W_hnᵀ + b_hn))` — `b_hn` inside the
/// reset product, as PyTorch has it — and `hₜ = (1 − z) ∘ n + z ∘ hₜ₋₁`. `W_ih` is `3H × F`, `W_hh` is `3H × H`,
/// named as `nn.GRU`'s state_dict.
///
/// Backward (`bp_gru_step_backward`), with `dhₜ`: `dn = dhₜ ∘ (1 − z) ∘ (1 − n²)`, `dz = dhₜ ∘ (hₜ₋₁ − n) ∘ z(1 − z)`,
/// `dr = dn ∘ (W_hn·hₜ₋₁ + b_hn) ∘ r(1 − r)`; the input side gets `[dr, dz, dn]`, the recurrent side
/// `[dr, dz, dn ∘ r]`, and `dhₜ₋₁ = dhₜ ∘ z + [dr, dz, dn ∘ r]·W_hh`.
public struct GRU: RecurrentLayer {
    /// The layers, directions and parameters.
    public private(set) var stack: RecurrentStack

    /// `numLayers` stacked layers (each above the first reads the one below's hidden states, with `dropout` between
    /// them in training), each over the sequence forwards and, when `bidirectional`, also backwards; the parameters
    /// drawn from `U(−1/√H, 1/√H)` with a generator seeded with `seed` (without one, the next seed of a process-wide
    /// sequence, as for ``Dense``). PyTorch: `nn.GRU(inputSize, hiddenSize, numLayers, batch_first=True, dropout=dropout,
    /// bidirectional=bidirectional)`.
    public init(inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bidirectional: Bool = false, dropout: Float = 0,
                returnsSequences: Bool = true, seed: UInt64? = nil) {
        stack = RecurrentStack(cell: .gru, inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers,
                               bidirectional: bidirectional, dropout: dropout, returnsSequences: returnsSequences, seed: seed)
    }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        stack.bind(parameters: parameters, gradients: gradients)
    }
}

extension GRU: SavableLayer {
    public typealias Settings = RecurrentSettings
    public static let typeName = "gru"
    public var settings: Settings {
        Settings(inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bidirectional: bidirectional, dropout: dropout,
                 returnsSequences: returnsSequences)
    }
    public static func parameterCount(for s: Settings) -> Int? { s.parameterCount(cell: .gru) }
    public init(settings: Settings) throws {
        try settings.check(in: "gru")
        self.init(inputSize: settings.inputSize, hiddenSize: settings.hiddenSize, numLayers: settings.numLayers,
                  bidirectional: settings.bidirectional, dropout: settings.dropout, returnsSequences: settings.returnsSequences, seed: 0)
    }
}
