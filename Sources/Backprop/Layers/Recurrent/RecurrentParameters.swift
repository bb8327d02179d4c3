/// The parameters of one layer and one direction of a recurrent layer as PyTorch keeps them — `W_ih` (`G·H × F`),
/// `W_hh` (`G·H × H`), `b_ih`, `b_hh` (`1 × G·H`) for `G` gates (LSTM 4, GRU 3, RNN 1) — and their gradients. `F` is
/// the step's features for the first layer and `D·H` (the directions' outputs side by side) above it.
public struct RecurrentParameters: Sendable {
    /// `F`, the features of one step of this layer's input; `H`, the hidden state's size; `G`, the number of gates.
    public let inputSize: Int, hiddenSize: Int, gates: Int
    /// The layer `k` (0 first) and whether this is its reverse direction: PyTorch's name suffix `_l{k}[_reverse]`.
    public let layer: Int, reverse: Bool
    /// `W_ih`, `W_hh`, `b_ih`, `b_hh`.
    public private(set) var weightIH: Matrix, weightHH: Matrix, biasIH: Matrix, biasHH: Matrix
    /// Their gradients, accumulated by the backward pass.
    public private(set) var weightIHGradient: Matrix, weightHHGradient: Matrix, biasIHGradient: Matrix, biasHHGradient: Matrix

    init(inputSize: Int, hiddenSize: Int, gates: Int, layer: Int, reverse: Bool) {
        (self.inputSize, self.hiddenSize, self.gates, self.layer, self.reverse) = (inputSize, hiddenSize, gates, layer, reverse)
        let g = gates * hiddenSize, count = Self.count(inputSize: inputSize, hiddenSize: hiddenSize, gates: gates)
        func views(_ storage: MatrixStorage) -> (Matrix, Matrix, Matrix, Matrix) {
            (Matrix(rows: g, columns: inputSize, storage: storage, offset: 0),
             Matrix(rows: g, columns: hiddenSize, storage: storage, offset: g * inputSize),
             Matrix(rows: 1, columns: g, storage: storage, offset: g * (inputSize + hiddenSize)),
             Matrix(rows: 1, columns: g, storage: storage, offset: g * (inputSize + hiddenSize + 1)))
        }
        (weightIH, weightHH, biasIH, biasHH) = views(MatrixStorage(count: count))
        (weightIHGradient, weightHHGradient, biasIHGradient, biasHHGradient) = views(MatrixStorage(count: count))
    }

    /// `G·H·(F + H + 2)`.
    static func count(inputSize: Int, hiddenSize: Int, gates: Int) -> Int { gates * hiddenSize * (inputSize + hiddenSize + 2) }

    var parameters: [Matrix] { [weightIH, weightHH, biasIH, biasHH] }
    var gradients: [Matrix] { [weightIHGradient, weightHHGradient, biasIHGradient, biasHHGradient] }
    /// `weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}` (with `_reverse` for the reverse direction).
    var names: [TensorName] {
        let g = gates * hiddenSize, suffix = "_l\(layer)" + (reverse ? "_reverse" : "")
        return [TensorName("weight_ih" + suffix, shape: [g, inputSize]), TensorName("weight_hh" + suffix, shape: [g, hiddenSize]),
                TensorName("bias_ih" + suffix, shape: [g]), TensorName("bias_hh" + suffix, shape: [g])]
    }

    mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
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
}

/// The state a recurrent layer carries between steps, in PyTorch's layout: `hidden` is `h_n` (`L·D·N × H`: the
/// `N × H` block `k·D + d` is layer `k`, direction `d`, as PyTorch's `(L·D, N, H)`), and `cell` is an LSTM's `c_n`
/// (the same shape; `nil` for RNN and GRU).
///
/// Passed in, it is the state before the first step (``RecurrentLayer/forward(output:finalState:input:initialState:context:)``);
/// no state means zeros, and gives exactly what explicit zeros give. Passed out, it is the state after the last
/// step — after step `T − 1` for the forward direction and after step 0 for the reverse direction — and carrying it
/// into the next chunk of a long sequence, without its gradient, is truncated backpropagation through time.
public struct RecurrentState: Sendable {
    /// `h`, `L·D·N × H`.
    public var hidden: Matrix
    /// An LSTM's `c`, `L·D·N × H`; `nil` for RNN and GRU.
    public var cell: Matrix?

    public init(hidden: Matrix, cell: Matrix? = nil) {
        self.hidden = hidden
        self.cell = cell
    }

    /// A zero state for `sequences` sequences of `layer` (allocates).
    public init(zerosFor layer: some RecurrentLayer, sequences: Int) {
        let rows = layer.numLayers * layer.directions * sequences
        hidden = Matrix(rows: rows, columns: layer.hiddenSize)
        cell = layer.stack.cell == .lstm ? Matrix(rows: rows, columns: layer.hiddenSize) : nil
    }

    /// Copies another state's values into this one (same shapes).
    public func assign(_ other: RecurrentState) {
        hidden.assign(other.hidden)
        if let cell, let otherCell = other.cell { cell.assign(otherCell) }
    }

    /// Sets every value to zero.
    public func fill(_ value: Float) {
        hidden.fill(value)
        cell?.fill(value)
    }
}

/// The recurrent cells: the step that ``RNN``, ``LSTM`` and ``GRU`` put in ``RecurrentStack``.
public enum RecurrentCell: String, Sendable, Codable {
    case rnnTanh, rnnReLU, lstm, gru

    /// `G`: LSTM 4 (i, f, g, o), GRU 3 (r, z, n), RNN 1.
    public var gates: Int {
        switch self {
        case .lstm: 4
        case .gru: 3
        case .rnnTanh, .rnnReLU: 1
        }
    }

    var typeName: String {
        switch self {
        case .lstm: "LSTM"
        case .gru: "GRU"
        case .rnnTanh, .rnnReLU: "RNN"
        }
    }
}

/// What a saved ``RNN``, ``LSTM`` or ``GRU`` is besides its parameters (their ``SavableLayer/Settings``): sizes,
/// stacking, directions, dropout, output, and an RNN's nonlinearity (`nil` for the gated cells).
public struct RecurrentSettings: Codable, Sendable, Equatable {
    public var inputSize: Int, hiddenSize: Int, numLayers: Int, bidirectional: Bool, dropout: Float, returnsSequences: Bool
    public var nonlinearity: RNN.Nonlinearity?

    public init(inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bidirectional: Bool = false, dropout: Float = 0,
                returnsSequences: Bool = true, nonlinearity: RNN.Nonlinearity? = nil) {
        (self.inputSize, self.hiddenSize, self.numLayers, self.bidirectional) = (inputSize, hiddenSize, numLayers, bidirectional)
        (self.dropout, self.returnsSequences, self.nonlinearity) = (dropout, returnsSequences, nonlinearity)
    }

    enum CodingKeys: String, CodingKey { case inputSize, hiddenSize, numLayers, bidirectional, dropout, returnsSequences, nonlinearity }

    /// Reads settings saved before stacking and directions existed as one layer, one direction, no dropout.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inputSize = try c.decode(Int.self, forKey: .inputSize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        numLayers = try c.decodeIfPresent(Int.self, forKey: .numLayers) ?? 1
        bidirectional = try c.decodeIfPresent(Bool.self, forKey: .bidirectional) ?? false
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0
        returnsSequences = try c.decode(Bool.self, forKey: .returnsSequences)
        nonlinearity = try c.decodeIfPresent(RNN.Nonlinearity.self, forKey: .nonlinearity)
    }

    /// The parameters of a stack of `cell` with these settings (`Int.max` for sizes no file can hold).
    func parameterCount(cell: RecurrentCell) -> Int? {
        guard (0...(1 << 24)).contains(inputSize), (0...(1 << 24)).contains(hiddenSize), (1...1024).contains(numLayers) else {
            return Int.max
        }
        return RecurrentStack.parameterCount(cell: cell, inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers,
                                             directions: bidirectional ? 2 : 1)
    }

    /// Throws ``InvalidLayerSettings`` for settings read from a file that cannot make a layer.
    func check(in type: String) throws {
        try checkSize(inputSize, "inputSize", in: type)
        try checkSize(hiddenSize, "hiddenSize", in: type)
        try checkSetting((1...1024).contains(numLayers), "\(type): numLayers \(numLayers) is not in 1...1024")
        try checkSetting(dropout >= 0 && dropout < 1, "\(type): dropout \(dropout) is not in [0, 1)")
    }
}
