/// A fully connected layer, `Z = X·W + b`.
///
/// Shapes: `X` is `N × inputSize`, the weight `W` is `inputSize × outputSize`, the bias `b` is `1 × outputSize`
/// (added to every row), `Z` is `N × outputSize`. Backward, with `dZ = ∂L/∂Z`:
///
/// - `dW += Xᵀ·dZ` (sgemm, A transposed, β = 1)
/// - `db += Σ_rows dZ`
/// - `dX = dZ·Wᵀ` (sgemm, B transposed, β = 0)
///
/// This is the text's `∂L/∂W⁽ˡ⁾ = δ⁽ˡ⁾a⁽ˡ⁻¹⁾ᵀ`, `∂L/∂b⁽ˡ⁾ = δ⁽ˡ⁾` and `W⁽ˡ⁺¹⁾ᵀδ⁽ˡ⁺¹⁾` with samples as rows.
/// (PyTorch's `nn.Linear` stores the transpose, `outputSize × inputSize`; checkpoints convert.)
public struct Dense: Layer {
    /// The number of input features.
    public let inputSize: Int
    /// The number of output features.
    public let outputSize: Int
    /// `W`, `inputSize × outputSize`.
    public private(set) var weight: Matrix
    /// `b`, `1 × outputSize`.
    public private(set) var bias: Matrix
    /// `∂L/∂W`, accumulated by ``backward(dInput:dOutput:input:output:context:)``.
    public private(set) var weightGradient: Matrix
    /// `∂L/∂b`, accumulated by ``backward(dInput:dOutput:input:output:context:)``.
    public private(set) var biasGradient: Matrix

    /// A layer with weights (and bias) drawn by `initializer` from a generator seeded with `seed`. Without a seed,
    /// each layer takes the next seed of a process-wide sequence, so two layers never start alike; give a seed (or
    /// build the network with ``Network/init(inputSize:layers:names:initializer:seed:)``) to reproduce a network.
    public init(inputSize: Int, outputSize: Int, initializer: Initializer = .xavierUniform, seed: UInt64? = nil) {
        var generator = SeededGenerator(seed: seed ?? LayerSeeds.next())
        self.init(inputSize: inputSize, outputSize: outputSize, initializer: initializer, generator: &generator)
    }

    /// A layer with weights (and bias) drawn by `initializer` from `generator`.
    public init(inputSize: Int, outputSize: Int, initializer: Initializer, generator: inout SeededGenerator) {
        precondition(inputSize > 0 && outputSize > 0,
                     "Dense: sizes must be positive, got \(inputSize) → \(outputSize)")
        self.inputSize = inputSize
        self.outputSize = outputSize
        let count = (inputSize + 1) * outputSize
        let values = MatrixStorage(count: count), gradients = MatrixStorage(count: count)
        weight = Matrix(rows: inputSize, columns: outputSize, storage: values, offset: 0)
        bias = Matrix(rows: 1, columns: outputSize, storage: values, offset: inputSize * outputSize)
        weightGradient = Matrix(rows: inputSize, columns: outputSize, storage: gradients, offset: 0)
        biasGradient = Matrix(rows: 1, columns: outputSize, storage: gradients, offset: inputSize * outputSize)
        initialize(initializer, using: &generator)
    }

    public func outputSize(forInputSize inputSize: Int) -> Int {
        precondition(inputSize == self.inputSize,
                     "Dense: this layer takes \(self.inputSize) input features, was given \(inputSize)")
        return outputSize
    }

    public var parameters: [Matrix] { [weight, bias] }
    public var parameterGradients: [Matrix] { [weightGradient, biasGradient] }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        precondition(parameters.count == 2 && gradients.count == 2, "Dense.bind: needs [weight, bias] twice")
        for (new, old) in zip(parameters + gradients, [weight, bias, weightGradient, biasGradient]) {
            precondition(new.rows == old.rows && new.columns == old.columns,
                         "Dense.bind: tensor \(new.shapeDescription) does not match \(old.shapeDescription)")
        }
        parameters[0].assign(weight)
        parameters[1].assign(bias)
        (weight, bias, weightGradient, biasGradient) = (parameters[0], parameters[1], gradients[0], gradients[1])
    }

    /// Draws `W` with `initializer` (fan-in `inputSize`, fan-out `outputSize`), then `b` (zero unless the
    /// initializer says otherwise).
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        initializer.fill(weight, fanIn: inputSize, fanOut: outputSize, using: &generator)
        initializer.fillBias(bias, fanIn: inputSize, using: &generator)
    }

    /// `Z = X·W + b`: `b` is copied into every row of `Z`, then `X·W` is added (sgemm, β = 1).
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(input.columns == inputSize && output.columns == outputSize && output.rows == input.rows,
                     "Dense.forward: input \(input.shapeDescription) and output \(output.shapeDescription) do not fit weight \(weight.shapeDescription)")
        broadcastRows(output, row: bias)
        gemm(output, input, weight, beta: 1)
    }

    /// `dW += Xᵀ·dZ`, `db += Σ_rows dZ`, `dX = dZ·Wᵀ`.
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        precondition(input.columns == inputSize && dOutput.columns == outputSize && dOutput.rows == input.rows,
                     "Dense.backward: input \(input.shapeDescription) and dOutput \(dOutput.shapeDescription) do not fit weight \(weight.shapeDescription)")
        gemm(weightGradient, input, dOutput, transposeA: true, beta: 1)
        addColumnSums(biasGradient, of: dOutput)
        if let dInput {
            gemm(dInput, dOutput, weight, transposeB: true, beta: 0)
        }
    }
}
