/// A stage of a network: a function of a batch of samples (one per row) with a forward pass and its backward pass.
///
/// Shapes: a batch `X` is `N × inputSize`, the output `Y` is `N × outputSize`. There is one pass of each kind,
/// outputs first:
///
/// - ``forward(output:input:context:)`` computes `Y = f(X; θ)`.
/// - ``backward(dInput:dOutput:input:output:context:)`` receives `dY = ∂L/∂Y`, **adds** `∂L/∂θ` to the layer's
///   gradient tensors (so gradients accumulate over micro-batches until zeroed), and writes `dX = ∂L/∂X`
///   (overwriting) when `dInput` is not `nil`. The first layer of a network is passed `nil`, which skips the product
///   it does not need.
///
/// What varies from call to call arrives in the ``LayerContext``: training or evaluation, the layer's scratch space
/// (what its forward pass leaves for its backward pass: saved statistics, indices, patches), and which random draw
/// a dropout layer makes. A layer stores none of it, so one trained network can serve many threads at once, each
/// with its own scratch space (a ``Workspace``), and the backward pass is always given what its forward pass left.
///
/// Layers hold their parameters as ``Matrix`` views. A layer made on its own owns them; a ``Network`` rebinds every
/// layer's parameters and gradients to views of its two contiguous buffers. A layer made of other layers (a
/// container: ``Sequential``, ``Residual``) lists them in ``children``; everything that walks a model (saving,
/// loading, initialising) goes through ``children``.
///
/// To write a layer of your own, implement this protocol, check it with
/// ``gradientCheck(_:input:mode:randomIndex:seed:epsilon:floor:)``, and make it ``SavableLayer`` to save it (see
/// <doc:WritingALayer>).
public protocol Layer: Sendable {
    /// The number of output features for `inputSize` input features (stops with a message if the layer cannot
    /// take that many).
    func outputSize(forInputSize inputSize: Int) -> Int

    /// The number of output features for `inputSize` input features, or `nil` if the layer cannot take that many.
    /// Loading uses it, so that a file describing layers that do not fit together is an error, never a stop. The
    /// default calls ``outputSize(forInputSize:)``; override it if that can stop.
    func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int?

    /// The layer's parameter tensors (views), its children's included, in the order they are laid out in a
    /// network's buffer.
    var parameters: [Matrix] { get }

    /// The gradient tensors, one per parameter tensor and of the same shape.
    var parameterGradients: [Matrix] { get }

    /// Makes `parameters` and `gradients` (same count and shapes as the current ones) the layer's tensors,
    /// copying the current parameter values into the new views.
    mutating func bind(parameters: [Matrix], gradients: [Matrix])

    /// Sets the parameters to fresh values drawn with `initializer` (children included).
    func initialize(_ initializer: Initializer, using generator: inout SeededGenerator)

    /// How many `Float`s of scratch space a call on `rows` rows of `inputSize` features needs (default 0): what the
    /// forward pass keeps for the backward pass, and, when `backward` is `true`, what the backward pass needs
    /// besides. A ``Workspace`` plans it once; the ``LayerContext`` of each call hands it over.
    func scratchCount(rows: Int, inputSize: Int, backward: Bool) -> Int

    /// `Y = f(X)`: `output` is `N × outputSize`, `input` is `N × inputSize`; `context.scratch` holds at least
    /// ``scratchCount(rows:inputSize:backward:)`` floats.
    func forward(output: Matrix, input: Matrix, context: LayerContext)

    /// Given `dOutput = ∂L/∂Y`, adds `∂L/∂θ` to ``parameterGradients`` and writes `dInput = ∂L/∂X` if asked.
    /// `input`, `output` and `context` (its scratch included) are those of the forward pass just made.
    func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext)

    /// The layers this one is made of, each with its name in a PyTorch state_dict (`"body"`, `"0"`); default none.
    var children: [(name: String, layer: any Layer)] { get }

    /// How each tensor of ``parameters`` appears in a PyTorch state_dict, in the same order. The default names a
    /// container's tensors `child.tensor` from its ``children``, and a leaf's `0`, `1`, … with their own shapes
    /// (a `1 × n` tensor as `[n]`).
    var parameterNames: [TensorName] { get }

    /// Tensors that are saved with the model but are not trained (batch norm's running statistics), by their
    /// PyTorch state_dict names; the default collects the children's, prefixed with their names.
    var stateTensors: [(name: String, tensor: Matrix)] { get }
}

/// How a parameter tensor is named and shaped in a PyTorch state_dict.
public struct TensorName: Sendable, Equatable {
    /// The name relative to the layer (`weight`, `body.0.bias`).
    public var name: String
    /// The shape PyTorch gives it, outermost first (`[out, in]` for `nn.Linear`'s weight).
    public var shape: [Int]
    /// Whether PyTorch stores the transpose of the `rows × columns` matrix (`nn.Linear`'s weight is `W`ᵀ).
    public var transposed: Bool

    public init(_ name: String, shape: [Int], transposed: Bool = false) {
        self.name = name
        self.shape = shape
        self.transposed = transposed
    }

    /// The name with `prefix.` in front (unchanged for an empty prefix).
    func prefixed(_ prefix: String) -> TensorName {
        prefix.isEmpty ? self : TensorName("\(prefix).\(name)", shape: shape, transposed: transposed)
    }
}

/// What one call of a layer's passes needs besides its tensors. Containers hand each child the same context with
/// the child's part of the scratch space (``with(scratch:)``).
public struct LayerContext: Sendable {
    /// Training or evaluation behaviour.
    public enum Mode: Sendable, Equatable {
        /// Dropout drops, batch normalization uses (and updates) batch statistics.
        case training
        /// Dropout is the identity, batch normalization uses its running statistics; nothing in the layer changes.
        case evaluation
    }

    /// Training or evaluation, for this call only.
    public var mode: Mode
    /// This layer's scratch space for this call (`1 × count`, at least ``Layer/scratchCount(rows:inputSize:backward:)``).
    /// The backward pass gets the same space its forward pass filled.
    public var scratch: Matrix
    /// Which random draw layers make in training (dropout's mask): a trainer gives each step a new index. The same
    /// index gives the same draw, so a backward pass (or a finite-difference check) sees its forward pass's mask.
    public var randomIndex: UInt64
    /// The position of this call's first row in the whole batch. Layers that draw per row (dropout) draw for rows
    /// `rowOffset…`, so a batch run as several calls (micro-batches, or one row at a time while an agent acts) draws
    /// exactly what it would in one call.
    public var rowOffset: Int = 0
    /// How layers with batch statistics see a step split into several micro-batches (set by ``Trainer``; `nil`
    /// when each call is a whole batch).
    var batchStatistics: BatchStatisticsPass?
    /// Whether the scratch space was planned with room for the backward pass
    /// (``Layer/scratchCount(rows:inputSize:backward:)`` with `backward: true`); containers lay it out accordingly.
    public var scratchIncludesBackward: Bool

    /// A context in `mode` with `scratch` (by default none, planned with room for the backward pass unless
    /// `scratchIncludesBackward` is `false`) and random draw `randomIndex`.
    public init(mode: Mode = .evaluation, scratch: Matrix = LayerContext.noScratch, randomIndex: UInt64 = 0,
                scratchIncludesBackward: Bool = true) {
        self.mode = mode
        self.scratch = scratch
        self.randomIndex = randomIndex
        self.scratchIncludesBackward = scratchIncludesBackward
    }

    /// An empty scratch space (made once, so that a context without scratch allocates nothing).
    public static let noScratch = Matrix(rows: 1, columns: 0)

    /// Whether this call trains.
    @inlinable public var isTraining: Bool { mode == .training }

    /// The same call with another scratch space (for a child of a container).
    public func with(scratch: Matrix) -> LayerContext {
        var context = self
        context.scratch = scratch
        return context
    }

    /// A `rows × columns` view of the scratch space starting `offset` floats in (for a layer that lays out its
    /// scratch).
    public func scratch(rows: Int, columns: Int, offset: Int) -> Matrix {
        precondition(offset >= 0 && rows >= 0 && columns >= 0 && offset + rows * columns <= scratch.count,
                     "LayerContext: a \(rows)×\(columns) scratch view at \(offset) does not fit \(scratch.count) floats of scratch; plan the scratch with scratchCount(rows:inputSize:backward:)")
        return Matrix(rows: rows, columns: columns, storage: scratch.storage, offset: scratch.offset + offset)
    }
}

extension Layer {
    /// Parameter-free layers have no tensors; containers have their children's.
    public func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int? { outputSize(forInputSize: inputSize) }
    public var parameters: [Matrix] { children.flatMap(\.layer.parameters) }
    public var parameterGradients: [Matrix] { children.flatMap(\.layer.parameterGradients) }
    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        precondition(parameters.isEmpty && gradients.isEmpty, "\(Self.self) has no parameters to bind")
    }
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        for child in children { child.layer.initialize(initializer, using: &generator) }
    }
    public func scratchCount(rows: Int, inputSize: Int, backward: Bool) -> Int { 0 }
    public var children: [(name: String, layer: any Layer)] { [] }
    public var parameterNames: [TensorName] {
        let children = self.children
        if !children.isEmpty {
            return children.flatMap { child in child.layer.parameterNames.map { $0.prefixed(child.name) } }
        }
        return parameters.enumerated().map { index, tensor in
            TensorName(String(index), shape: tensor.rows == 1 ? [tensor.columns] : [tensor.rows, tensor.columns])
        }
    }
    public var stateTensors: [(name: String, tensor: Matrix)] {
        children.flatMap { child in child.layer.stateTensors.map { ("\(child.name).\($0.name)", $0.tensor) } }
    }

    /// The number of `Float`s in the parameters.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Applies the layer to a batch in evaluation mode, allocating the output and the scratch space: convenient,
    /// not for a training loop. Changes nothing in the layer.
    public func callAsFunction(_ input: Matrix) -> Matrix {
        let output = Matrix(rows: input.rows, columns: outputSize(forInputSize: input.columns))
        let scratch = Matrix(rows: 1, columns: scratchCount(rows: input.rows, inputSize: input.columns, backward: false))
        forward(output: output, input: input,
                context: LayerContext(mode: .evaluation, scratch: scratch, scratchIncludesBackward: false))
        return output
    }
}

/// An element-wise activation `Y = f(Z)`, without parameters. Backward: `dZ = dY ∘ f′(Z)`.
///
/// A type states `f` and `f′` for one element; the layer's passes loop over the batch with them
/// (``mapElements(output:input:_:)`` and ``chainElements(dInput:dOutput:input:output:_:)``).
///
/// ## Fast path for your own activation
/// The default passes are `@inlinable`: they are compiled in your module for your type, with `value` and `derivative`
/// inlined into the loops, so when those are plain arithmetic (`+ − × ÷`, `squareRoot()`, `min`/`max`, comparisons)
/// the compiler vectorises the loops. Squareplus, `(z + √(z² + 4))/2`, written this way in the Benchmarks package
/// runs its two passes over 262 144 elements in 246 µs, against ReLU's 59–74 µs (3–4×; 1 696 µs, 18×, before the
/// passes were inlinable).
/// A call the compiler cannot inline (Foundation's `exp`, `tanh`) keeps the loop scalar, and these passes run on
/// the calling thread: for those, override `forward(output:input:context:)` and
/// `backward(dInput:dOutput:input:output:context:)` and run your own kernel over the matrices' `pointer`s, as the
/// built-in activations do with their C kernels.
public protocol Activation: Layer {
    /// `f(z)`.
    func value(_ z: Float) -> Float
    /// `f′(z)`, given `z` and `y = f(z)` (whichever is cheaper to use).
    func derivative(input z: Float, output y: Float) -> Float
}

extension Activation {
    public func outputSize(forInputSize inputSize: Int) -> Int { inputSize }

    /// `Y = f(Z)`, element by element. Inlinable, so that it is compiled for the conforming type where the type is
    /// declared, with `f` inlined into the loop, which the compiler then vectorises when `f` is plain arithmetic.
    @inlinable
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        mapElements(output: output, input: input) { value($0) }
    }

    /// `dZ = dY ∘ f′(Z)`, element by element (nothing to do when `dInput` is `nil`); inlinable, as `forward` is.
    @inlinable
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        guard let dInput else { return }
        chainElements(dInput: dInput, dOutput: dOutput, input: input, output: output) { derivative(input: $0, output: $1) }
    }
}
