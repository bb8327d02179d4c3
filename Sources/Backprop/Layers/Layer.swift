/// A stage of a network: a function of a batch of samples (one per row) with a forward pass and its backward pass.
///
/// Shapes: a batch `X` is `N × inputSize`, the output `Y` is `N × outputSize`. Kernels come in pairs with
/// outputs first:
///
/// - ``forward(output:input:)`` computes `Y = f(X; θ)`.
/// - ``backward(dInput:dOutput:input:output:)`` receives `dY = ∂L/∂Y`, **adds** `∂L/∂θ` to the layer's gradient
///   tensors (so gradients accumulate over micro-batches until zeroed), and writes `dX = ∂L/∂X` (overwriting) when
///   `dInput` is not `nil`. The first layer of a network is passed `nil`, which skips the product it does not need.
///
/// Layers hold their parameters as ``Matrix`` views. A layer made on its own owns them; a ``Network`` rebinds every
/// layer's parameters and gradients to views of its two contiguous buffers. A layer keeps no scratch space of its
/// own: what its backward pass needs from its forward pass (saved statistics, indices, patches) goes in the scratch
/// space the ``Workspace`` plans for it (``scratchCount(rows:inputSize:)``), so one trained network can serve
/// several threads, each with its own ``Workspace``.
///
/// To write a layer of your own, implement this protocol and check it with ``gradientCheck(_:input:seed:epsilon:floor:)``.
public protocol Layer: Sendable {
    /// The number of output features for `inputSize` input features (stops with a message if the layer cannot
    /// take that many).
    func outputSize(forInputSize inputSize: Int) -> Int

    /// The layer's parameter tensors (views), in the order they are laid out in a network's buffer.
    var parameters: [Matrix] { get }

    /// The gradient tensors, one per parameter tensor and of the same shape.
    var parameterGradients: [Matrix] { get }

    /// Makes `parameters` and `gradients` (same count and shapes as the current ones) the layer's tensors,
    /// copying the current parameter values into the new views.
    mutating func bind(parameters: [Matrix], gradients: [Matrix])

    /// Sets the parameters to fresh values drawn with `initializer`.
    func initialize(_ initializer: Initializer, using generator: inout SeededGenerator)

    /// `Y = f(X)`: `output` is `N × outputSize`, `input` is `N × inputSize`.
    func forward(output: Matrix, input: Matrix)

    /// Given `dOutput = ∂L/∂Y`, adds `∂L/∂θ` to ``parameterGradients`` and writes `dInput = ∂L/∂X` if asked.
    /// `input` and `output` are the forward pass's.
    func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix)

    /// Switches between training and evaluation behaviour (``Dropout``; most layers behave the same in both).
    func setTraining(_ training: Bool)

    /// What the layer is, for saving; `nil` for layers a checkpoint cannot describe (the default).
    var specification: LayerSpecification? { get }

    /// How many `Float`s of scratch space the layer keeps from its forward pass to its backward pass for a batch of
    /// `rows` rows (saved statistics, indices, unfolded patches). The ``Workspace`` plans it; default 0.
    func scratchCount(rows: Int, inputSize: Int) -> Int

    /// The forward pass with the layer's scratch space (`1 × scratchCount`); by default ``forward(output:input:)``.
    func forward(output: Matrix, input: Matrix, scratch: Matrix)

    /// The backward pass with the scratch space its forward pass filled; by default
    /// ``backward(dInput:dOutput:input:output:)``.
    func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, scratch: Matrix)

    /// Tensors that are saved with the model but are not trained (batch norm's running statistics), by their
    /// PyTorch state_dict names; default none.
    var stateTensors: [(name: String, tensor: Matrix)] { get }
}

extension Layer {
    /// Parameter-free layers have no tensors.
    public var parameters: [Matrix] { [] }
    public var parameterGradients: [Matrix] { [] }
    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        precondition(parameters.isEmpty && gradients.isEmpty, "\(Self.self) has no parameters to bind")
    }
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {}
    public func setTraining(_ training: Bool) {}
    public var specification: LayerSpecification? { nil }
    public func scratchCount(rows: Int, inputSize: Int) -> Int { 0 }
    public func forward(output: Matrix, input: Matrix, scratch: Matrix) { forward(output: output, input: input) }
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, scratch: Matrix) {
        backward(dInput: dInput, dOutput: dOutput, input: input, output: output)
    }
    public var stateTensors: [(name: String, tensor: Matrix)] { [] }

    /// The number of `Float`s in the parameters.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Applies the layer to a batch, allocating the output (and any scratch): convenient, not for a training loop.
    public func callAsFunction(_ input: Matrix) -> Matrix {
        let output = Matrix(rows: input.rows, columns: outputSize(forInputSize: input.columns))
        let scratch = Matrix(rows: 1, columns: scratchCount(rows: input.rows, inputSize: input.columns))
        forward(output: output, input: input, scratch: scratch)
        return output
    }
}

/// An element-wise activation `Y = f(Z)`, without parameters. Backward: `dZ = dY ∘ f′(Z)`.
///
/// A type states `f` and `f′` for one element; the layer's passes loop over the batch with them
/// (``mapElements(output:input:_:)`` and ``chainElements(dInput:dOutput:input:output:_:)``).
public protocol Activation: Layer {
    /// `f(z)`.
    func value(_ z: Float) -> Float
    /// `f′(z)`, given `z` and `y = f(z)` (whichever is cheaper to use).
    func derivative(input z: Float, output y: Float) -> Float
}

extension Activation {
    public func outputSize(forInputSize inputSize: Int) -> Int { inputSize }

    /// `Y = f(Z)`, element by element.
    public func forward(output: Matrix, input: Matrix) {
        mapElements(output: output, input: input) { value($0) }
    }

    /// `dZ = dY ∘ f′(Z)`, element by element (nothing to do when `dInput` is `nil`).
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix) {
        guard let dInput else { return }
        chainElements(dInput: dInput, dOutput: dOutput, input: input, output: output) { derivative(input: $0, output: $1) }
    }
}
