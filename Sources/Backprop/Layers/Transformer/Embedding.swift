import CSIMD

/// Views of one new buffer of parameters and one of gradients: one `rows × columns` tensor of each per shape, in
/// order (a leaf layer's own storage until a ``Network`` binds it to its buffers).
func makeParameterTensors(_ shapes: [(rows: Int, columns: Int)]) -> (values: [Matrix], gradients: [Matrix]) {
    let count = shapes.reduce(0) { $0 + $1.rows * $1.columns }
    let values = MatrixStorage(count: count), gradients = MatrixStorage(count: count)
    var offset = 0, valueViews: [Matrix] = [], gradientViews: [Matrix] = []
    for shape in shapes {
        valueViews.append(Matrix(rows: shape.rows, columns: shape.columns, storage: values, offset: offset))
        gradientViews.append(Matrix(rows: shape.rows, columns: shape.columns, storage: gradients, offset: offset))
        offset += shape.rows * shape.columns
    }
    return (valueViews, gradientViews)
}

/// Checks that `parameters` and `gradients` have the shapes of `current`, and copies the current values into the
/// new parameter views (``Layer/bind(parameters:gradients:)``'s contract).
func rebind(_ layer: String, current: [Matrix], parameters: [Matrix], gradients: [Matrix]) {
    precondition(parameters.count == current.count && gradients.count == current.count,
                 "\(layer).bind: needs \(current.count) parameter and gradient tensors, got \(parameters.count) and \(gradients.count)")
    for (new, old) in zip(parameters, current) {
        precondition(new.rows == old.rows && new.columns == old.columns,
                     "\(layer).bind: tensor \(new.shapeDescription) does not match \(old.shapeDescription)")
    }
    for (new, old) in zip(gradients, current) {
        precondition(new.rows == old.rows && new.columns == old.columns,
                     "\(layer).bind: gradient \(new.shapeDescription) does not match \(old.shapeDescription)")
    }
    for (new, old) in zip(parameters, current) where new.storage !== old.storage || new.offset != old.offset {
        new.assign(old)
    }
}

/// Checks that every element of `ids` is a whole number in `0..<count` (the token ids a layer is given).
func checkTokenIDs(_ ids: Matrix, below count: Int, _ layer: String) {
    let p = ids.pointer
    for i in 0..<ids.count {
        let id = p[i]
        precondition(id >= 0 && id < Float(count) && id == id.rounded(.towardZero),
                     "\(layer): input element \(i) is \(id), not a token id in 0..<\(count)")
    }
}

/// A token embedding, `Y[n, t] = E[X[n, t]]`: each input element is a token id (a whole number, as a `Float`) and
/// becomes that row of the table `E` (`vocabularySize × width`). PyTorch: `nn.Embedding(vocabularySize, width)`,
/// whose `weight` is `E`.
///
/// Shapes: `X` is `N × T` token ids, `Y` is `N × (T·width)` (step `t`'s vector at columns `t·width ..< (t+1)·width`).
/// Backward: `dE[X[n, t]] += dY[n, t]` for every `n, t`; ids have no gradient, so `dX`, if asked, is zero.
public struct Embedding: Layer {
    /// `V`, the number of token ids.
    public let vocabularySize: Int
    /// `C`, the size of each token's vector.
    public let width: Int
    /// `E`, `V × C`.
    public private(set) var weight: Matrix
    /// `∂L/∂E`, accumulated by the backward pass.
    public private(set) var weightGradient: Matrix

    /// A table of `vocabularySize` vectors of `width`, drawn from `N(0, 1)` (PyTorch's default) with `seed`.
    public init(vocabularySize: Int, width: Int, seed: UInt64? = nil) {
        precondition(vocabularySize > 0 && width > 0, "Embedding: sizes must be positive, got \(vocabularySize) × \(width)")
        self.vocabularySize = vocabularySize
        self.width = width
        let tensors = makeParameterTensors([(vocabularySize, width)])
        (weight, weightGradient) = (tensors.values[0], tensors.gradients[0])
        var generator = SeededGenerator(seed: seed ?? LayerSeeds.next())
        initialize(.normal(standardDeviation: 1), using: &generator)
    }

    public func outputSize(forInputSize inputSize: Int) -> Int { inputSize * width }
    public func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int? { inputSize > 0 ? inputSize * width : nil }
    public var parameters: [Matrix] { [weight] }
    public var parameterGradients: [Matrix] { [weightGradient] }
    public var parameterNames: [TensorName] { [TensorName("weight", shape: [vocabularySize, width])] }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        rebind("Embedding", current: self.parameters, parameters: parameters, gradients: gradients)
        (weight, weightGradient) = (parameters[0], gradients[0])
    }

    /// Draws `E` with `initializer` (fan-in 1, fan-out `width`: `.normal(σ)` draws `N(0, σ²)`).
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        initializer.fill(weight, fanIn: 1, fanOut: width, using: &generator)
    }

    /// `Y[n, t] = E[X[n, t]]` (`bp_embedding`); stops with a message for an element that is not a token id.
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(output.rows == input.rows && output.columns == input.columns * width,
                     "Embedding.forward: input \(input.shapeDescription) and output \(output.shapeDescription) do not fit width \(width)")
        checkTokenIDs(input, below: vocabularySize, "Embedding.forward")
        bp_embedding(output.pointer, input.pointer, weight.pointer, nil, input.count, 1, width)
    }

    /// `dE[X[n, t]] += dY[n, t]`; `dX = 0`.
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        precondition(dOutput.rows == input.rows && dOutput.columns == input.columns * width,
                     "Embedding.backward: input \(input.shapeDescription) and dOutput \(dOutput.shapeDescription) do not fit width \(width)")
        bp_embedding_backward(weightGradient.pointer, nil, input.pointer, dOutput.pointer, input.count, 1, width)
        dInput?.fill(0)
    }
}

/// A learned position embedding, `Y[n, t] = X[n, t] + P[t]`: step `t` of every sequence gets row `t` of `P`
/// (`context × width`). PyTorch: `x + pos(torch.arange(T))` with `pos = nn.Embedding(context, width)`, whose
/// `weight` is `P`.
///
/// Shapes: `X` and `Y` are `N × (T·width)` with `T ≤ context`. Backward: `dP[t] += Σₙ dY[n, t]`, `dX = dY`.
public struct PositionEmbedding: Layer {
    /// The most steps a sequence may have.
    public let context: Int
    /// `C`, the size of each step's vector.
    public let width: Int
    /// `P`, `context × C`.
    public private(set) var weight: Matrix
    /// `∂L/∂P`, accumulated by the backward pass.
    public private(set) var weightGradient: Matrix

    /// `context` vectors of `width`, drawn from `N(0, 1)` (PyTorch's default) with `seed`.
    public init(context: Int, width: Int, seed: UInt64? = nil) {
        precondition(context > 0 && width > 0, "PositionEmbedding: sizes must be positive, got \(context) × \(width)")
        self.context = context
        self.width = width
        let tensors = makeParameterTensors([(context, width)])
        (weight, weightGradient) = (tensors.values[0], tensors.gradients[0])
        var generator = SeededGenerator(seed: seed ?? LayerSeeds.next())
        initialize(.normal(standardDeviation: 1), using: &generator)
    }

    public func outputSize(forInputSize inputSize: Int) -> Int {
        precondition(outputSizeIfAccepted(forInputSize: inputSize) != nil,
                     "PositionEmbedding: \(inputSize) input features are not 1…\(context) steps of \(width)")
        return inputSize
    }
    public func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int? {
        inputSize > 0 && inputSize % width == 0 && inputSize / width <= context ? inputSize : nil
    }
    public var parameters: [Matrix] { [weight] }
    public var parameterGradients: [Matrix] { [weightGradient] }
    public var parameterNames: [TensorName] { [TensorName("weight", shape: [context, width])] }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        rebind("PositionEmbedding", current: self.parameters, parameters: parameters, gradients: gradients)
        (weight, weightGradient) = (parameters[0], gradients[0])
    }

    /// Draws `P` with `initializer` (fan-in 1, fan-out `width`).
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        initializer.fill(weight, fanIn: 1, fanOut: width, using: &generator)
    }

    /// `Y[n, t] = X[n, t] + P[t]` (`output` may be `input`).
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(output.rows == input.rows && output.columns == input.columns && outputSizeIfAccepted(forInputSize: input.columns) != nil,
                     "PositionEmbedding.forward: input \(input.shapeDescription) and output \(output.shapeDescription) are not equal shapes of 1…\(self.context) steps of \(width)")
        let x = input.pointer, y = output.pointer, p = weight.pointer, n = input.columns
        for row in 0..<input.rows {
            for j in 0..<n { y[row * n + j] = x[row * n + j] + p[j] }
        }
    }

    /// `dP[t] += Σₙ dY[n, t]`, `dX = dY`.
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        precondition(dOutput.rows == input.rows && dOutput.columns == input.columns,
                     "PositionEmbedding.backward: dOutput \(dOutput.shapeDescription) does not match input \(input.shapeDescription)")
        let steps = input.columns / width
        bp_embedding_backward(nil, weightGradient.pointer, nil, dOutput.pointer, input.rows, steps, width)
        if let dInput, dInput.storage !== dOutput.storage || dInput.offset != dOutput.offset { dInput.assign(dOutput) }
    }
}

/// Layer normalization over each step's `width` features (Ba et al., 2016), with a learned scale and, optionally,
/// shift: for each vector `x` of `C = width` features,
///
///     μ = Σⱼ xⱼ / C,  σ² = Σⱼ (xⱼ − μ)² / C,  x̂ = (x − μ) / √(σ² + ε),  y = γ ∘ x̂ + β
///
/// PyTorch: `nn.LayerNorm(width, eps=epsilon, bias=hasBias)` (`weight` is `γ`, `bias` is `β`).
///
/// Shapes: `X` and `Y` are `N × (T·C)`, normalized in `N·T` vectors of `C`; the scratch keeps `μ` and `1/√(σ² + ε)`
/// of each. Backward, with `g = dY ∘ γ` per vector:
///
///     dγ += Σ dY ∘ x̂,  dβ += Σ dY,  dX = (g − mean(g) − x̂ · mean(g ∘ x̂)) / √(σ² + ε)
public struct LayerNorm: Layer {
    /// `C`, the features normalized together.
    public let width: Int
    /// Whether there is a shift `β`.
    public let hasBias: Bool
    /// `ε`, added to the variance.
    public let epsilon: Float
    /// `γ`, `1 × C` (starts at 1).
    public private(set) var weight: Matrix
    /// `β`, `1 × C` (starts at 0; `1 × 0` without a bias).
    public private(set) var bias: Matrix
    /// `∂L/∂γ`, `∂L/∂β`.
    public private(set) var weightGradient: Matrix, biasGradient: Matrix

    public init(width: Int, hasBias: Bool = true, epsilon: Float = 1e-5) {
        precondition(width > 0, "LayerNorm: width must be positive, got \(width)")
        precondition(epsilon >= 0 && epsilon.isFinite, "LayerNorm: epsilon must be finite and ≥ 0, got \(epsilon)")
        (self.width, self.hasBias, self.epsilon) = (width, hasBias, epsilon)
        let tensors = makeParameterTensors([(1, width), (1, hasBias ? width : 0)])
        (weight, bias) = (tensors.values[0], tensors.values[1])
        (weightGradient, biasGradient) = (tensors.gradients[0], tensors.gradients[1])
        weight.fill(1)
    }

    public func outputSize(forInputSize inputSize: Int) -> Int {
        precondition(inputSize > 0 && inputSize % width == 0, "LayerNorm: \(inputSize) input features are not vectors of \(width)")
        return inputSize
    }
    public func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int? {
        inputSize > 0 && inputSize % width == 0 ? inputSize : nil
    }
    public var parameters: [Matrix] { hasBias ? [weight, bias] : [weight] }
    public var parameterGradients: [Matrix] { hasBias ? [weightGradient, biasGradient] : [weightGradient] }
    public var parameterNames: [TensorName] {
        [TensorName("weight", shape: [width])] + (hasBias ? [TensorName("bias", shape: [width])] : [])
    }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        rebind("LayerNorm", current: self.parameters, parameters: parameters, gradients: gradients)
        (weight, weightGradient) = (parameters[0], gradients[0])
        if hasBias { (bias, biasGradient) = (parameters[1], gradients[1]) }
    }

    /// `γ = 1`, `β = 0` (as PyTorch starts them), whatever the initializer.
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        weight.fill(1)
        bias.fill(0)
    }

    /// `μ` and `1/√(σ² + ε)` for each of the `N·T` vectors.
    public func scratchCount(rows: Int, inputSize: Int, backward: Bool) -> Int { 2 * rows * (inputSize / width) }

    /// `Y = γ ∘ x̂ + β` per vector (`bp_layer_norm`).
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(sameShape: output, input, "LayerNorm.forward")
        let vectors = input.count / width
        precondition(input.columns % width == 0, "LayerNorm.forward: input \(input.shapeDescription) is not vectors of \(width)")
        let statistics = context.scratch(rows: 1, columns: 2 * vectors, offset: 0)
        bp_layer_norm(output.pointer, statistics.pointer, input.pointer, weight.pointer, hasBias ? bias.pointer : nil,
                      vectors, width, epsilon)
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        backward(dInput: dInput, dOutput: dOutput, input: input, context: context, accumulate: false)
    }

    /// The backward pass, adding `dX` to `dInput` when `accumulate` (a residual connection's sum, without a pass).
    func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, context: LayerContext, accumulate: Bool) {
        precondition(sameShape: dOutput, input, "LayerNorm.backward")
        if let dInput { precondition(sameShape: dInput, input, "LayerNorm.backward") }
        let vectors = input.count / width
        let statistics = context.scratch(rows: 1, columns: 2 * vectors, offset: 0)
        bp_layer_norm_backward(dInput?.pointer, weightGradient.pointer, hasBias ? biasGradient.pointer : nil, dOutput.pointer,
                               input.pointer, statistics.pointer, weight.pointer, vectors, width, accumulate ? 1 : 0)
    }
}
