/// A sequential network: each layer's output is the next layer's input.
///
/// All parameters live in one contiguous buffer, ``parameters`` (`1 × P`), and all gradients in a second of the
/// same layout, ``gradients``; each layer's tensors are views into them, in layer order (for `Dense`: `W` then `b`).
/// So zeroing the gradients is one fill, an optimizer step is one loop, and saving a model is writing a buffer.
///
/// A `Network` is a reference type: layers, trainers and optimizers see the same parameters. Activations are not
/// kept here but in a ``Workspace``, one per thread, so a trained network can serve several threads at once.
public final class Network: Sendable {
    /// The number of input features.
    public let inputSize: Int
    /// The layers in order, bound to views of ``parameters`` and ``gradients``.
    public let layers: [any Layer]
    /// Every parameter of every layer, `1 × P`.
    public let parameters: Matrix
    /// `∂L/∂θ` for every parameter, `1 × P`, the same layout as ``parameters``.
    public let gradients: Matrix
    /// The number of features each layer outputs.
    public let layerOutputSizes: [Int]
    /// Each layer's slice of ``gradients`` (empty for layers without parameters).
    let layerGradients: [Matrix]

    /// Builds a network taking `inputSize` features through `layers`, moving their current parameter values into
    /// the network's buffers.
    public init(inputSize: Int, layers: [any Layer]) {
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
        self.layers = bound
        self.layerOutputSizes = sizes
        self.parameters = Matrix(rows: 1, columns: count, storage: parameterStorage, offset: 0)
        self.gradients = Matrix(rows: 1, columns: count, storage: gradientStorage, offset: 0)
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

    /// Switches every layer to training (`true`) or evaluation (`false`) behaviour.
    public func setTraining(_ training: Bool) {
        for layer in layers { layer.setTraining(training) }
    }

    /// Draws fresh parameters for every layer with `initializer`, from a generator seeded with `seed`.
    public func initialize(_ initializer: Initializer, seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        for layer in layers { layer.initialize(initializer, using: &generator) }
    }

    /// Runs the forward pass on `input` (`N × inputSize`, `N ≤ workspace.capacity`) and returns a view of the
    /// output (`N × outputSize`) in `workspace`, valid until its next use. Allocates nothing.
    @discardableResult
    public func forward(_ input: Matrix, workspace: Workspace) -> Matrix {
        precondition(input.columns == inputSize,
                     "Network.forward: input \(input.shapeDescription) does not have the network's \(inputSize) features")
        precondition(workspace.layerOutputSizes == layerOutputSizes,
                     "Network.forward: the workspace was planned for another network")
        precondition(input.rows <= workspace.capacity,
                     "Network.forward: a batch of \(input.rows) rows exceeds the workspace's \(workspace.capacity)")
        var current = input
        for (i, layer) in layers.enumerated() {
            let output = workspace.activations[i].rows(0..<input.rows)
            layer.forward(output: output, input: current, scratch: workspace.scratch[i])
            current = output
        }
        return current
    }

    /// Runs the backward pass after ``forward(_:workspace:)`` on the same `input`, starting from
    /// `∂L/∂output`, which must be in ``Workspace/outputGradient(rows:)``. Adds every parameter's gradient to
    /// ``gradients``. Allocates nothing.
    ///
    /// With `zeroingGradients`, each layer's gradients are set to zero just before its backward pass, which is
    /// ``zeroGradients()`` followed by the backward pass, but touches each gradient where and when it is about to
    /// be added to (one pass over a buffer that is then hot in the cache of the core that adds to it).
    public func backward(_ input: Matrix, workspace: Workspace, zeroingGradients: Bool = false) {
        let n = input.rows
        for i in layers.indices.reversed() {
            if zeroingGradients { layerGradients[i].fill(0) }
            let layerInput = i == 0 ? input : workspace.activations[i - 1].rows(0..<n)
            let dInput: Matrix? = i == 0 ? nil : workspace.deltas[i - 1].rows(0..<n)
            layers[i].backward(dInput: dInput, dOutput: workspace.deltas[i].rows(0..<n),
                               input: layerInput, output: workspace.activations[i].rows(0..<n),
                               scratch: workspace.scratch[i])
        }
    }

    /// The network's output for `input`, computed with a workspace of its own (allocates; for convenience).
    public func callAsFunction(_ input: Matrix) -> Matrix {
        let workspace = Workspace(for: self, capacity: max(input.rows, 1), backward: false)
        return forward(input, workspace: workspace).copy()
    }
}

/// The activations and their gradients for one network at batches of up to ``capacity`` rows, in one buffer,
/// planned once and reused by every step. One per thread.
public final class Workspace {
    /// The largest batch this workspace can hold.
    public let capacity: Int
    /// The network's layer output sizes this workspace was planned for.
    public let layerOutputSizes: [Int]
    /// Each layer's output, `capacity × layerOutputSizes[i]`.
    public let activations: [Matrix]
    /// `∂L/∂` each layer's output, same shapes as ``activations``.
    public let deltas: [Matrix]
    /// Each layer's scratch space (``Layer/scratchCount(rows:inputSize:)`` for `capacity` rows), `1 × count`.
    public let scratch: [Matrix]

    /// Plans the activations of `network` for batches of up to `capacity` rows; with `backward: false` (for
    /// inference) no space is planned for gradients, and ``Network/backward(_:workspace:zeroingGradients:)`` cannot be used.
    public init(for network: Network, capacity: Int, backward: Bool = true) {
        precondition(capacity > 0, "Workspace: capacity must be positive, got \(capacity)")
        self.capacity = capacity
        self.layerOutputSizes = network.layerOutputSizes
        let total = network.layerOutputSizes.reduce(0, +) * capacity
        let inputSizes = [network.inputSize] + network.layerOutputSizes.dropLast()
        let scratchCounts = zip(network.layers, inputSizes).map { $0.scratchCount(rows: capacity, inputSize: $1) }
        let deltaTotal = backward ? total : 0
        let storage = MatrixStorage(count: total + deltaTotal + scratchCounts.reduce(0, +))
        var offset = 0
        var activations: [Matrix] = [], deltas: [Matrix] = [], scratch: [Matrix] = []
        for size in network.layerOutputSizes {
            activations.append(Matrix(rows: capacity, columns: size, storage: storage, offset: offset))
            deltas.append(Matrix(rows: backward ? capacity : 0, columns: size, storage: storage, offset: backward ? offset + total : 0))
            offset += capacity * size
        }
        offset = total + deltaTotal
        for count in scratchCounts {
            scratch.append(Matrix(rows: 1, columns: count, storage: storage, offset: offset))
            offset += count
        }
        self.activations = activations
        self.deltas = deltas
        self.scratch = scratch
    }

    /// Where the loss writes `∂L/∂output` for a batch of `rows` rows.
    public func outputGradient(rows: Int) -> Matrix { deltas[deltas.count - 1].rows(0..<rows) }
}
