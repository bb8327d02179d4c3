/// A long short-term memory layer (Hochreiter & Schmidhuber, 1997) with PyTorch's equations and parameter layout.
/// PyTorch: `nn.LSTM(inputSize, hiddenSize, numLayers, batch_first=True, bidirectional=…)`.
///
/// Shapes: a batch of `N` sequences of `T` steps of `F` features is `N × (T·F)` (batch-first: row `n` holds step 0's
/// features, then step 1's, …), so `T` is the input width divided by `F`. The output is every step's hidden state,
/// `N × (T·D·H)` (``RecurrentLayer/returnsSequences``), or the last step's, `N × D·H`, with `D` = 2 directions when
/// bidirectional (see ``RecurrentStack``). The state starts at zero, or at an explicit ``RecurrentState``
/// (``RecurrentLayer/forward(output:finalState:input:initialState:context:)``), which also returns `h_n` and `c_n`.
///
/// Per step, with `xₜ` and the previous `hₜ₋₁`, `cₜ₋₁`, the gates in PyTorch's order `i, f, g, o`:
/// `[i f g o] = xₜ·W_ihᵀ + b_ih + hₜ₋₁·W_hhᵀ + b_hh`, `i, f, o = σ(·)`, `g = tanh(·)`,
/// `cₜ = f ∘ cₜ₋₁ + i ∘ g`, `hₜ = o ∘ tanh(cₜ)`. `W_ih` is `4H × F` (`4H × D·H` above the first layer), `W_hh` is
/// `4H × H`, both biases `4H`, named `weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}` (`…_reverse`
/// for the reverse direction) as in `nn.LSTM`'s state_dict, and drawn from `U(−1/√H, 1/√H)` by the PyTorch default
/// initializer.
///
/// Backpropagation through time runs the text's δ recurrence backwards over the steps: with `dhₜ` (from the output
/// and from step `t+1`) and `dcₜ` (from step `t+1`): `do = dhₜ ∘ tanh(cₜ)`, `dc = dcₜ + dhₜ ∘ o ∘ (1 − tanh²cₜ)`,
/// `di = dc ∘ g`, `df = dc ∘ cₜ₋₁`, `dg = dc ∘ i`, `dcₜ₋₁ = dc ∘ f`; the pre-activation gradients `dGₜ` are those
/// times `σ′` or `tanh′` (`bp_lstm_step_backward`), and `dhₜ₋₁ = dGₜ·W_hh`. Each weight gradient is one GEMM over
/// all steps: `dW_ih += dGᵀ·X`, `dW_hh += dGᵀ·H₋₁`, `dX = dG·W_ih`.
///
/// The scratch space keeps, per step, the activated gates, `cₜ`, `tanh(cₜ)` and `hₜ`, so the backward pass
/// recomputes nothing.
public struct LSTM: RecurrentLayer {
    /// The layers, directions and parameters.
    public private(set) var stack: RecurrentStack

    /// `numLayers` stacked layers (each above the first reads the one below's hidden states, with `dropout` between
    /// them in training), each over the sequence forwards and, when `bidirectional`, also backwards; the parameters
    /// drawn from `U(−1/√H, 1/√H)` with a generator seeded with `seed` (without one, the next seed of a process-wide
    /// sequence, as for ``Dense``). PyTorch: `nn.LSTM(inputSize, hiddenSize, numLayers, batch_first=True, dropout=dropout,
    /// bidirectional=bidirectional)`.
    public init(inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bidirectional: Bool = false, dropout: Float = 0,
                returnsSequences: Bool = true, seed: UInt64? = nil) {
        stack = RecurrentStack(cell: .lstm, inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers,
                               bidirectional: bidirectional, dropout: dropout, returnsSequences: returnsSequences, seed: seed)
    }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        stack.bind(parameters: parameters, gradients: gradients)
    }
}

extension LSTM: SavableLayer {
    public typealias Settings = RecurrentSettings
    public static let typeName = "lstm"
    public var settings: Settings {
        Settings(inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bidirectional: bidirectional, dropout: dropout,
                 returnsSequences: returnsSequences)
    }
    public static func parameterCount(for s: Settings) -> Int? { s.parameterCount(cell: .lstm) }
    public init(settings: Settings) throws {
        try settings.check(in: "lstm")
        self.init(inputSize: settings.inputSize, hiddenSize: settings.hiddenSize, numLayers: settings.numLayers,
                  bidirectional: settings.bidirectional, dropout: settings.dropout, returnsSequences: settings.returnsSequences, seed: 0)
    }
}
