/// Applies a layer to every step of a sequence: a batch of `N` sequences of `T` steps of `F` features, `N × (T·F)`,
/// becomes `N × (T·O)`, the layer seeing the `N·T` steps as rows of `F` (a row-major reshape, nothing copied). This is
/// what PyTorch's `nn.Linear` does to the last dimension of an `(N, T, F)` tensor: a dense head over every step of
/// a recurrent layer's output.
///
/// The parameters are the wrapped layer's, under its own names (`weight`, `bias` for ``Dense``), so a
/// `TimeDistributed(Dense(…))` named `head` saves as PyTorch's `head.weight`, `head.bias`.
public struct TimeDistributed: Layer {
    /// The layer applied to each step.
    public private(set) var layer: any Layer
    /// `F`, the features of one step.
    public let stepSize: Int

    /// `layer` over steps of `stepSize` features.
    public init(_ layer: any Layer, stepSize: Int) {
        precondition(stepSize > 0, "TimeDistributed: the step size must be positive, got \(stepSize)")
        precondition(layer.outputSizeIfAccepted(forInputSize: stepSize) != nil,
                     "TimeDistributed: \(type(of: layer)) does not accept steps of \(stepSize) features")
        self.layer = layer
        self.stepSize = stepSize
    }

    private func steps(_ width: Int) -> Int? { width > 0 && width % stepSize == 0 ? width / stepSize : nil }
    private var stepOutputSize: Int { layer.outputSize(forInputSize: stepSize) }

    public func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int? { steps(inputSize).map { $0 * stepOutputSize } }

    public func outputSize(forInputSize inputSize: Int) -> Int {
        guard let size = outputSizeIfAccepted(forInputSize: inputSize) else {
            preconditionFailure("TimeDistributed: an input of \(inputSize) features is not a whole number of steps of \(stepSize)")
        }
        return size
    }

    public var parameters: [Matrix] { layer.parameters }
    public var parameterGradients: [Matrix] { layer.parameterGradients }
    public var parameterNames: [TensorName] { layer.parameterNames }
    public var stateTensors: [(name: String, tensor: Matrix)] { layer.stateTensors }
    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) { layer.bind(parameters: parameters, gradients: gradients) }
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        layer.initialize(initializer, using: &generator)
    }

    public func scratchCount(rows: Int, inputSize: Int, backward: Bool) -> Int {
        guard let t = steps(inputSize) else { return 0 }
        return layer.scratchCount(rows: rows * t, inputSize: stepSize, backward: backward)
    }

    /// The call's rows as steps: `N × (T·F)` as `N·T × F`, and the context's first row scaled to steps.
    private func asSteps(_ m: Matrix, rows: Int, width: Int) -> Matrix { m.reshaped(rows: rows, columns: width) }

    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        guard let t = steps(input.columns) else {
            preconditionFailure("TimeDistributed.forward: input \(input.shapeDescription) is not a whole number of steps of \(stepSize)")
        }
        precondition(output.rows == input.rows && output.columns == t * stepOutputSize,
                     "TimeDistributed.forward: output \(output.shapeDescription) does not fit \(input.rows) sequences of \(t) steps of \(stepOutputSize)")
        var context = context
        context.rowOffset *= t
        layer.forward(output: asSteps(output, rows: input.rows * t, width: stepOutputSize),
                      input: asSteps(input, rows: input.rows * t, width: stepSize), context: context)
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        guard let t = steps(input.columns) else {
            preconditionFailure("TimeDistributed.backward: input \(input.shapeDescription) is not a whole number of steps of \(stepSize)")
        }
        precondition(sameShape: dOutput, output, "TimeDistributed.backward (dOutput, output)")
        if let dInput { precondition(sameShape: dInput, input, "TimeDistributed.backward (dInput, input)") }
        var context = context
        context.rowOffset *= t
        let rows = input.rows * t
        layer.backward(dInput: dInput.map { asSteps($0, rows: rows, width: stepSize) },
                       dOutput: asSteps(dOutput, rows: rows, width: stepOutputSize),
                       input: asSteps(input, rows: rows, width: stepSize), output: asSteps(output, rows: rows, width: stepOutputSize),
                       context: context)
    }
}

extension TimeDistributed: SavableLayer {
    public struct Settings: Codable, Sendable {
        public var stepSize: Int
        public var layer: LayerDescription
    }
    public static let typeName = "time_distributed"
    /// None of its own: the wrapped layer's are counted when it is read.
    public static func parameterCount(for settings: Settings) -> Int? { 0 }
    public var settings: Settings { Settings(stepSize: stepSize, layer: LayerDescription(layer)) }
    public init(settings: Settings) throws {
        try checkSize(settings.stepSize, "stepSize", in: "time_distributed")
        try checkSetting(settings.layer.layer.outputSizeIfAccepted(forInputSize: settings.stepSize) != nil,
                         "time_distributed: its layer does not accept steps of \(settings.stepSize) features")
        self.init(settings.layer.layer, stepSize: settings.stepSize)
    }
}
