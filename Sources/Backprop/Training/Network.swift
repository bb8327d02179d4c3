/// A network: a ``Sequential`` of layers that owns their parameters, ready to train and to serve.
///
/// All parameters live in one contiguous buffer, ``parameters`` (`1 × P`), and all gradients in a second of the
/// same layout, ``gradients``; each layer's tensors are views into them, in layer order (for `Dense`: `W` then `b`;
/// a container's children in order). So zeroing the gradients is one fill, an optimizer step is one loop, and
/// saving a model is writing a buffer.
///
/// A `Network` is a reference type: layers, trainers and optimizers see the same parameters. It keeps no mode and
/// no activations: each call says whether it trains (``LayerContext/Mode``; inference is in evaluation mode and
/// changes nothing), and activations live in a ``Workspace``, one per thread, so any number of tasks can infer
/// with one network at once.
public final class Network: Sendable {
    /// The number of input features.
    public let inputSize: Int
    /// The layers in order, as a container (its scratch plan is the network's).
    public let body: Sequential
    /// Every parameter of every layer, `1 × P`.
    public let parameters: Matrix
    /// `∂L/∂θ` for every parameter, `1 × P`, the same layout as ``parameters``.
    public let gradients: Matrix
    /// The number of features each layer outputs.
    public let layerOutputSizes: [Int]
    /// Each layer's slice of ``gradients`` (empty for layers without parameters).
    let layerGradients: [Matrix]

    /// The layers in order, bound to views of ``parameters`` and ``gradients``.
    public var layers: [any Layer] { body.layers }

    /// Builds a network taking `inputSize` features through `layers`, **copying** their current parameter values
    /// into the network's buffers (the layers passed in keep their own storage; the network's copies are
    /// ``layers``). To draw every parameter afresh from one seed, use ``init(inputSize:layers:names:initializer:seed:)``.
    public convenience init(inputSize: Int, layers: [any Layer]) {
        self.init(inputSize: inputSize, layers: layers, names: nil)
    }

    /// A network whose layers are named `names` in its state dict (`rnn.weight_ih_l0`, `head.weight`: a PyTorch
    /// module's attribute names) instead of `0`, `1`, …; the parameters are copied as ``init(inputSize:layers:)`` does.
    public init(inputSize: Int, layers: [any Layer], names: [String]?) {
        precondition(inputSize > 0, "Network: the input size must be positive, got \(inputSize)")
        precondition(!layers.isEmpty, "Network: needs at least one layer")
        var sizes: [Int] = []
        var size = inputSize
        for layer in layers {
            size = layer.outputSize(forInputSize: size)
            sizes.append(size)
        }
        let count = layers.reduce(0) { $0 + $1.parameterCount }
        let parameterStorage = MatrixStorage(count: count), gradientStorage = MatrixStorage(count: count)
        var bound = layers
        var offset = 0
        var layerGradients: [Matrix] = []
        for i in bound.indices {
            let start = offset
            var values: [Matrix] = [], gradients: [Matrix] = []
            for tensor in bound[i].parameters {
                values.append(Matrix(rows: tensor.rows, columns: tensor.columns, storage: parameterStorage, offset: offset))
                gradients.append(Matrix(rows: tensor.rows, columns: tensor.columns, storage: gradientStorage, offset: offset))
                offset += tensor.count
            }
            bound[i].bind(parameters: values, gradients: gradients)
            layerGradients.append(Matrix(rows: 1, columns: offset - start, storage: gradientStorage, offset: start))
        }
        self.layerGradients = layerGradients
        self.inputSize = inputSize
        self.body = Sequential(bound, names: names)
        self.layerOutputSizes = sizes
        self.parameters = Matrix(rows: 1, columns: count, storage: parameterStorage, offset: 0)
        self.gradients = Matrix(rows: 1, columns: count, storage: gradientStorage, offset: 0)
    }

    /// Builds a network taking `inputSize` features through `layers` and draws every parameter with
    /// `initializer` from one generator seeded with `seed`: layer by layer, children in order, each tensor in
    /// row-major order (``initialize(_:seed:)``). The same layers, initializer and seed always give the same network,
    /// whatever the layers held before.
    public convenience init(inputSize: Int, layers: [any Layer], names: [String]? = nil, initializer: Initializer, seed: UInt64) {
        self.init(inputSize: inputSize, layers: layers, names: names)
        initialize(initializer, seed: seed)
    }

    /// A multilayer perceptron: `Dense(sizes[0] → sizes[1])`, activation, …, `Dense(→ sizes.last)`, with no
    /// activation after the last layer (the loss applies the output nonlinearity). Weights are drawn with
    /// `initializer` from a generator seeded with `seed`, layer by layer.
    public convenience init(
        sizes: [Int], activation: ActivationKind, initializer: Initializer, seed: UInt64
    ) {
        precondition(sizes.count >= 2 && sizes.allSatisfy { $0 > 0 },
                     "Network: an MLP needs at least two positive sizes, got \(sizes)")
        var generator = SeededGenerator(seed: seed)
        var layers: [any Layer] = []
        for i in 0..<(sizes.count - 1) {
            layers.append(Dense(inputSize: sizes[i], outputSize: sizes[i + 1],
                                initializer: initializer, generator: &generator))
            if i < sizes.count - 2 { layers.append(activation.makeLayer()) }
        }
        self.init(inputSize: sizes[0], layers: layers)
    }

    /// The number of output features.
    public var outputSize: Int { layerOutputSizes.last! }

    /// The number of parameters, `P`.
    public var parameterCount: Int { parameters.count }

    /// Sets every gradient to zero (one fill of the gradient buffer).
    public func zeroGradients() { gradients.fill(0) }

    /// Draws fresh parameters for every layer with `initializer`, from one generator seeded with `seed`: layer by
    /// layer, children in order (batch normalization resets to `γ = 1`, `β = 0`).
    public func initialize(_ initializer: Initializer, seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        for layer in layers { layer.initialize(initializer, using: &generator) }
    }

    /// Runs the forward pass on `input` (`N × inputSize`, `N ≤ workspace.capacity`) and returns a view of the
    /// output (`N × outputSize`) in `workspace`, valid until its next use. In evaluation mode (the default) nothing
    /// in the network changes, and any number of threads may run it at once, each with its own workspace; in
    /// training mode, dropout draws mask `randomIndex` for rows `rowOffset…` (see ``LayerContext/rowOffset``) and
    /// batch normalization updates its running statistics. Allocates nothing.
    @discardableResult
    public func forward(_ input: Matrix, workspace: Workspace, mode: LayerContext.Mode = .evaluation,
                        randomIndex: UInt64 = 0, rowOffset: Int = 0) -> Matrix {
        var context = LayerContext(mode: mode, randomIndex: randomIndex)
        context.rowOffset = rowOffset
        return forward(input, workspace: workspace, context: context)
    }

    /// The forward pass with a context made by a trainer (mode, random draw, batch-statistics pass).
    func forward(_ input: Matrix, workspace: Workspace, context: LayerContext) -> Matrix {
        precondition(input.columns == inputSize,
                     "Network.forward: input \(input.shapeDescription) does not have the network's \(inputSize) features")
        precondition(workspace.layerOutputSizes == layerOutputSizes && workspace.inputSize == inputSize,
                     "Network.forward: the workspace was planned for another network")
        precondition(input.rows <= workspace.capacity,
                     "Network.forward: a batch of \(input.rows) rows exceeds the workspace's \(workspace.capacity)")
        var context = context
        context.scratch = workspace.scratch
        context.scratchIncludesBackward = workspace.includesBackward
        let output = workspace.output.rows(0..<input.rows)
        body.forward(output: output, input: input, context: context)
        workspace.lastContext = context
        workspace.lastRows = input.rows
        return output
    }

    /// Runs the backward pass after ``forward(_:workspace:mode:randomIndex:rowOffset:)`` on the same `input` and workspace (in
    /// the same mode, with the same random draw), starting from `∂L/∂output`, which must be in
    /// ``Workspace/outputGradient(rows:)``. Adds every parameter's gradient to ``gradients``. Allocates nothing.
    ///
    /// With `zeroingGradients`, each layer's gradients are set to zero just before its backward pass, which is
    /// ``zeroGradients()`` followed by the backward pass, but touches each gradient where and when it is about to
    /// be added to (one pass over a buffer that is then hot in the cache of the core that adds to it).
    public func backward(_ input: Matrix, workspace: Workspace, zeroingGradients: Bool = false) {
        precondition(workspace.includesBackward,
                     "Network.backward: the workspace was planned for inference (Workspace(…, backward: false))")
        guard let context = workspace.lastContext else {
            preconditionFailure("Network.backward: run forward(_:workspace:) on this workspace first")
        }
        let n = input.rows
        precondition(n == workspace.lastRows,
                     "Network.backward: the forward pass on this workspace had \(workspace.lastRows) rows, this input \(input.shapeDescription) has \(n)")
        body.backward(dInput: nil, dOutput: workspace.outputGradient(rows: n), input: input,
                      output: workspace.output.rows(0..<n), context: context) { k in
            if zeroingGradients { layerGradients[k].fill(0) }
        }
    }

    /// The output of layer `k` (all but the last) in `workspace` after a forward pass on `rows` rows.
    public func output(ofLayer k: Int, rows: Int, workspace: Workspace) -> Matrix {
        guard let context = workspace.lastContext else {
            preconditionFailure("Network.output(ofLayer:): run forward(_:workspace:) on this workspace first")
        }
        return body.output(ofLayer: k, rows: rows, inputSize: inputSize, context: context)
    }

    /// The network's output for `input` in evaluation mode, computed with a workspace of its own (allocates; for
    /// convenience). Changes nothing in the network: safe to call from many tasks at once.
    public func callAsFunction(_ input: Matrix) -> Matrix {
        let workspace = Workspace(for: self, capacity: max(input.rows, 1), backward: false)
        return forward(input, workspace: workspace).copy()
    }
}

/// The memory of one network's passes at batches of up to ``capacity`` rows: the output, its gradient, and the
/// scratch space in which the network's ``Sequential`` lays out every layer's output, gradient and scratch.
/// Planned once and reused by every step; one per thread.
public final class Workspace {
    /// The largest batch this workspace can hold.
    public let capacity: Int
    /// The network's input size and layer output sizes this workspace was planned for.
    public let inputSize: Int
    public let layerOutputSizes: [Int]
    /// Whether there is room for the backward pass.
    public let includesBackward: Bool
    /// The network's output, `capacity × outputSize`.
    let output: Matrix
    /// `∂L/∂output`, `capacity × outputSize` (none without room for the backward pass).
    let outputGradientBuffer: Matrix
    /// The network's scratch space, `1 × count`.
    let scratch: Matrix
    /// The context and row count of the last forward pass, for the backward pass that follows it.
    var lastContext: LayerContext?
    var lastRows = 0

    /// Plans the passes of `network` for batches of up to `capacity` rows; with `backward: false` (for
    /// inference) no space is planned for gradients, and ``Network/backward(_:workspace:zeroingGradients:)`` cannot
    /// be used.
    public init(for network: Network, capacity: Int, backward: Bool = true) {
        precondition(capacity > 0, "Workspace: capacity must be positive, got \(capacity)")
        self.capacity = capacity
        self.inputSize = network.inputSize
        self.layerOutputSizes = network.layerOutputSizes
        self.includesBackward = backward
        let outputCount = capacity * network.outputSize
        let scratchCount = network.body.scratchCount(rows: capacity, inputSize: network.inputSize, backward: backward)
        let storage = MatrixStorage(count: (backward ? 2 : 1) * outputCount + scratchCount)
        output = Matrix(rows: capacity, columns: network.outputSize, storage: storage, offset: 0)
        outputGradientBuffer = Matrix(rows: backward ? capacity : 0, columns: network.outputSize, storage: storage, offset: outputCount)
        scratch = Matrix(rows: 1, columns: scratchCount, storage: storage, offset: (backward ? 2 : 1) * outputCount)
    }

    /// Where the loss writes `∂L/∂output` for a batch of `rows` rows.
    public func outputGradient(rows: Int) -> Matrix {
        precondition(includesBackward, "Workspace.outputGradient: this workspace was planned for inference (backward: false)")
        return outputGradientBuffer.rows(0..<rows)
    }
}
