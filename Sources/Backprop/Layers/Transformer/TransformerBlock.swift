import CSIMD

/// A pre-norm transformer block (GPT-2's): causal self-attention and a GELU MLP, each on a layer-normalized copy of
/// the residual stream and added back to it:
///
///     H = X + Attention(LN₁(X))
///     Y = H + GELU(LN₂(H)·W_up)·W_down             (W_up: C × 4C, W_down: 4C × C; GELU with erf)
///
/// Backward, with `G = GELU(U)`, `U = LN₂(H)·W_up`: `dW_down += Gᵀ·dY`, `dU = (dY·W_downᵀ) ∘ GELU′(U)`,
/// `dW_up += LN₂(H)ᵀ·dU`, `dH = dY + LN₂ᵀ(dU·W_upᵀ)`, then `dX = dH + LN₁ᵀ(Attentionᵀ(dH))`, where `LNᵀ` and
/// `Attentionᵀ` are those layers' backward passes (``LayerNorm``, ``MultiHeadAttention``).
///
/// PyTorch: `../shared/peers/torch_gpt.py`'s `Block`, whose state_dict names the tensors `ln1.weight` (and
/// `ln1.bias` with biases), `qkv.weight`, `proj.weight`, `ln2.weight`, `up.weight`, `down.weight`.
///
/// Shapes: `X` and `Y` are `N × (T·C)`. One buffer holds all the block's parameters; the scratch keeps every
/// activation the backward pass needs.
public struct TransformerBlock: Layer {
    /// `C`.
    public let width: Int
    /// `H`, dividing `C`.
    public let heads: Int
    /// Whether the layer normalizations have a shift `β`.
    public let hasBias: Bool
    /// The normalization before the attention.
    public private(set) var ln1: LayerNorm
    /// The attention.
    public private(set) var attention: MultiHeadAttention
    /// The normalization before the MLP.
    public private(set) var ln2: LayerNorm
    /// `W_up`, `C × 4C`, and `W_down`, `4C × C`.
    public private(set) var upWeight: Matrix, downWeight: Matrix
    /// `∂L/∂W_up`, `∂L/∂W_down`.
    public private(set) var upWeightGradient: Matrix, downWeightGradient: Matrix

    /// A block of `width` features and `heads` heads; matrices drawn from `N(0, 0.02²)` with `seed`.
    public init(width: Int, heads: Int, hasBias: Bool = false, seed: UInt64? = nil) {
        precondition(width > 0 && heads > 0 && width % heads == 0, "TransformerBlock: \(heads) heads do not divide a width of \(width)")
        (self.width, self.heads, self.hasBias) = (width, heads, hasBias)
        ln1 = LayerNorm(width: width, hasBias: hasBias)
        attention = MultiHeadAttention(width: width, heads: heads, seed: 0)
        ln2 = LayerNorm(width: width, hasBias: hasBias)
        let mlp = makeParameterTensors([(width, 4 * width), (4 * width, width)])
        (upWeight, downWeight) = (mlp.values[0], mlp.values[1])
        (upWeightGradient, downWeightGradient) = (mlp.gradients[0], mlp.gradients[1])
        var generator = SeededGenerator(seed: seed ?? LayerSeeds.next())
        initialize(.normal(standardDeviation: 0.02), using: &generator)
        // One buffer for all of them, as a network would bind them.
        let all = makeParameterTensors(parameters.map { ($0.rows, $0.columns) })
        bind(parameters: all.values, gradients: all.gradients)
    }

    public func outputSize(forInputSize inputSize: Int) -> Int {
        precondition(inputSize > 0 && inputSize % width == 0, "TransformerBlock: \(inputSize) input features are not steps of \(width)")
        return inputSize
    }
    public func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int? {
        inputSize > 0 && inputSize % width == 0 ? inputSize : nil
    }

    public var parameters: [Matrix] { ln1.parameters + attention.parameters + ln2.parameters + [upWeight, downWeight] }
    public var parameterGradients: [Matrix] {
        ln1.parameterGradients + attention.parameterGradients + ln2.parameterGradients + [upWeightGradient, downWeightGradient]
    }
    public var parameterNames: [TensorName] {
        ln1.parameterNames.map { $0.prefixed("ln1") } + attention.parameterNames + ln2.parameterNames.map { $0.prefixed("ln2") }
            + [TensorName("up.weight", shape: [4 * width, width], transposed: true),
               TensorName("down.weight", shape: [width, 4 * width], transposed: true)]
    }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        rebind("TransformerBlock", current: self.parameters, parameters: parameters, gradients: gradients)
        let n = hasBias ? 2 : 1
        ln1.bind(parameters: Array(parameters[0..<n]), gradients: Array(gradients[0..<n]))
        attention.bind(parameters: Array(parameters[n..<(n + 2)]), gradients: Array(gradients[n..<(n + 2)]))
        ln2.bind(parameters: Array(parameters[(n + 2)..<(2 * n + 2)]), gradients: Array(gradients[(n + 2)..<(2 * n + 2)]))
        (upWeight, downWeight) = (parameters[2 * n + 2], parameters[2 * n + 3])
        (upWeightGradient, downWeightGradient) = (gradients[2 * n + 2], gradients[2 * n + 3])
    }

    /// `γ = 1`, `β = 0`; the four matrices drawn with `initializer` (GPT's scaled output projections are
    /// ``GPT``'s to draw).
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        ln1.initialize(initializer, using: &generator)
        attention.initialize(initializer, using: &generator)
        ln2.initialize(initializer, using: &generator)
        initializer.fill(upWeight, fanIn: width, fanOut: 4 * width, using: &generator)
        initializer.fill(downWeight, fanIn: 4 * width, fanOut: width, using: &generator)
    }

    /// Forward: LN₁(X) and its statistics, the attention's scratch, `H`, LN₂(H) and its statistics, `U` and `G`
    /// (`M = N·T` rows); backward besides: `dG`, `dU` (`M × 4C` each), `d LN₂(H)`, `dH`, `d LN₁(X)` (`M × C` each).
    public func scratchCount(rows: Int, inputSize: Int, backward: Bool) -> Int {
        let m = rows * (inputSize / width)
        return attention.scratchCount(rows: rows, inputSize: inputSize, backward: backward) + 3 * m * width + 4 * m
            + 8 * m * width + (backward ? 8 * m * width + 3 * m * width : 0)
    }

    private struct Scratch {
        let attention: LayerContext, ln1: LayerContext, ln2: LayerContext
        let normalized1, hidden, normalized2, up, activated: Matrix
        let dActivated, dUp, dNormalized2, dHidden, dNormalized1: Matrix
    }

    private func views(_ context: LayerContext, rows: Int, inputSize: Int) -> Scratch {
        let m = rows * (inputSize / width), c = width, backward = context.scratchIncludesBackward
        let a = attention.scratchCount(rows: rows, inputSize: inputSize, backward: backward)
        var offset = a
        func next(_ r: Int, _ columns: Int) -> Matrix {
            defer { offset += r * columns }
            return context.scratch(rows: r, columns: columns, offset: offset)
        }
        let normalized1 = next(m, c), statistics1 = next(1, 2 * m), hidden = next(m, c), normalized2 = next(m, c)
        let statistics2 = next(1, 2 * m), up = next(m, 4 * c), activated = next(m, 4 * c)
        let b = backward ? m : 0
        return Scratch(attention: context.with(scratch: context.scratch(rows: 1, columns: a, offset: 0)),
                       ln1: context.with(scratch: statistics1), ln2: context.with(scratch: statistics2),
                       normalized1: normalized1, hidden: hidden, normalized2: normalized2, up: up, activated: activated,
                       dActivated: next(b, 4 * c), dUp: next(b, 4 * c), dNormalized2: next(b, c), dHidden: next(b, c),
                       dNormalized1: next(b, c))
    }

    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(sameShape: output, input, "TransformerBlock.forward")
        precondition(input.columns % width == 0, "TransformerBlock.forward: input \(input.shapeDescription) is not steps of \(width)")
        let m = input.rows * (input.columns / width)
        let s = views(context, rows: input.rows, inputSize: input.columns)
        let hidden = s.hidden.reshaped(rows: input.rows, columns: input.columns)
        ln1.forward(output: s.normalized1.reshaped(rows: input.rows, columns: input.columns), input: input, context: s.ln1)
        hidden.assign(input)
        attention.forward(output: hidden, input: s.normalized1.reshaped(rows: input.rows, columns: input.columns),
                          context: s.attention, addToOutput: true)
        ln2.forward(output: s.normalized2, input: s.hidden, context: s.ln2)
        gemm(s.up, s.normalized2, upWeight)
        GELU().forward(output: s.activated, input: s.up, context: context)
        output.assign(hidden)
        gemm(output.reshaped(rows: m, columns: width), s.activated, downWeight, beta: 1)
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        precondition(sameShape: dOutput, input, "TransformerBlock.backward")
        if let dInput { precondition(sameShape: dInput, input, "TransformerBlock.backward") }
        precondition(context.scratchIncludesBackward, "TransformerBlock.backward: the scratch was planned without room for the backward pass")
        let m = input.rows * (input.columns / width)
        let s = views(context, rows: input.rows, inputSize: input.columns)
        let dY = dOutput.reshaped(rows: m, columns: width)
        gemm(downWeightGradient, s.activated, dY, transposeA: true, beta: 1)
        gemm(s.dActivated, dY, downWeight, transposeB: true)
        GELU().backward(dInput: s.dUp, dOutput: s.dActivated, input: s.up, output: s.activated, context: context)
        gemm(upWeightGradient, s.normalized2, s.dUp, transposeA: true, beta: 1)
        gemm(s.dNormalized2, s.dUp, upWeight, transposeB: true)
        s.dHidden.assign(dY)
        ln2.backward(dInput: s.dHidden, dOutput: s.dNormalized2, input: s.hidden, context: s.ln2, accumulate: true)
        let shape = (rows: input.rows, columns: input.columns)
        attention.backward(dInput: s.dNormalized1.reshaped(rows: shape.rows, columns: shape.columns),
                           dOutput: s.dHidden.reshaped(rows: shape.rows, columns: shape.columns),
                           input: s.normalized1.reshaped(rows: shape.rows, columns: shape.columns),
                           output: s.hidden.reshaped(rows: shape.rows, columns: shape.columns), context: s.attention)
        guard let dInput else {
            ln1.backward(dInput: nil, dOutput: s.dNormalized1, input: input.reshaped(rows: m, columns: width), context: s.ln1,
                         accumulate: false)
            return
        }
        let dX = dInput.reshaped(rows: m, columns: width)
        dX.assign(s.dHidden)
        ln1.backward(dInput: dX, dOutput: s.dNormalized1, input: input.reshaped(rows: m, columns: width), context: s.ln1,
                     accumulate: true)
    }
}
