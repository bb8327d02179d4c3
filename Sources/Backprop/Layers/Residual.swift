/// A residual block (He et al., 2016): `Y = X + f(X)`, where `f` is a sequence of layers whose output has the
/// input's size. Backward: `∂L/∂X = ∂L/∂Y + ∂L/∂X through f`, so the gradient reaches earlier layers undiminished
/// whatever `f` does to it: the cure for vanishing gradients in deep stacks.
///
/// The block's parameters are its layers' parameters, in order; its scratch space holds the inner layers'
/// activations, their gradients and scratch, and the gradient that flows back through `f`. As a PyTorch module it
/// is `x + self.body(x)` with `self.body = nn.Sequential(...)`, so its tensors are named `body.0.weight`, ….
public struct Residual: Layer {
    /// The layers of `f`, in order.
    public private(set) var body: [any Layer]

    public init(_ body: [any Layer]) {
        precondition(!body.isEmpty, "Residual: needs at least one layer")
        self.body = body
    }

    /// The feature counts after each layer of the body, for `inputSize` input features.
    private func sizes(_ inputSize: Int) -> [Int] {
        var size = inputSize, sizes: [Int] = []
        for layer in body { size = layer.outputSize(forInputSize: size); sizes.append(size) }
        return sizes
    }

    public func outputSize(forInputSize inputSize: Int) -> Int {
        let output = sizes(inputSize).last!
        precondition(output == inputSize, "Residual: the body maps \(inputSize) features to \(output); x + f(x) needs the same")
        return inputSize
    }

    public var parameters: [Matrix] { body.flatMap(\.parameters) }
    public var parameterGradients: [Matrix] { body.flatMap(\.parameterGradients) }
    public var stateTensors: [(name: String, tensor: Matrix)] {
        body.enumerated().flatMap { k, layer in layer.stateTensors.map { ("body.\(k).\($0.name)", $0.tensor) } }
    }
    public var specification: LayerSpecification? {
        let inner = body.compactMap(\.specification)
        return inner.count == body.count ? .residual(inner) : nil
    }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        var start = 0
        for k in body.indices {
            let count = body[k].parameters.count
            body[k].bind(parameters: Array(parameters[start..<(start + count)]), gradients: Array(gradients[start..<(start + count)]))
            start += count
        }
        precondition(start == parameters.count, "Residual.bind: \(parameters.count) tensors for a body with \(start)")
    }

    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        for layer in body { layer.initialize(initializer, using: &generator) }
    }

    public func setTraining(_ training: Bool) {
        for layer in body { layer.setTraining(training) }
    }

    /// Per inner layer: its output and the gradient there (`rows × size` each) and its own scratch; then the
    /// gradient with respect to the block's input through the body (`rows × inputSize`).
    public func scratchCount(rows: Int, inputSize: Int) -> Int {
        let sizes = sizes(inputSize), inputs = [inputSize] + sizes.dropLast()
        return zip(body, zip(sizes, inputs)).reduce(rows * inputSize) { total, item in
            total + 2 * rows * item.1.0 + item.0.scratchCount(rows: rows, inputSize: item.1.1)
        }
    }

    /// Views of the scratch space: each inner layer's output, gradient and scratch, and the body's input gradient.
    private func views(_ scratch: Matrix, rows: Int, inputSize: Int)
        -> (outputs: [Matrix], deltas: [Matrix], scratch: [Matrix], dInput: Matrix) {
        let sizes = sizes(inputSize), inputs = [inputSize] + sizes.dropLast()
        var offset = scratch.offset
        func take(_ r: Int, _ c: Int) -> Matrix {
            defer { offset += r * c }
            return Matrix(rows: r, columns: c, storage: scratch.storage, offset: offset)
        }
        var outputs: [Matrix] = [], deltas: [Matrix] = [], inner: [Matrix] = []
        for (k, layer) in body.enumerated() {
            outputs.append(take(rows, sizes[k]))
            deltas.append(take(rows, sizes[k]))
            inner.append(take(1, layer.scratchCount(rows: rows, inputSize: inputs[k])))
        }
        return (outputs, deltas, inner, take(rows, inputSize))
    }

    public func forward(output: Matrix, input: Matrix) {
        forward(output: output, input: input,
                scratch: Matrix(rows: 1, columns: scratchCount(rows: input.rows, inputSize: input.columns)))
    }

    public func forward(output: Matrix, input: Matrix, scratch: Matrix) {
        precondition(sameShape: output, input, "Residual.forward")
        let v = views(scratch, rows: input.rows, inputSize: input.columns)
        var current = input
        for (k, layer) in body.enumerated() {
            layer.forward(output: v.outputs[k], input: current, scratch: v.scratch[k])
            current = v.outputs[k]
        }
        let x = input.pointer, f = current.pointer, y = output.pointer
        for i in 0..<input.count { y[i] = x[i] + f[i] }
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix) {
        preconditionFailure("Residual.backward needs the scratch space its forward pass filled: run it in a Network, or call backward(…, scratch:)")
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, scratch: Matrix) {
        let v = views(scratch, rows: input.rows, inputSize: input.columns)
        v.deltas[body.count - 1].assign(dOutput)
        for k in body.indices.reversed() {
            let layerInput = k == 0 ? input : v.outputs[k - 1]
            let layerDInput: Matrix? = k == 0 ? (dInput == nil ? nil : v.dInput) : v.deltas[k - 1]
            body[k].backward(dInput: layerDInput, dOutput: v.deltas[k], input: layerInput, output: v.outputs[k],
                             scratch: v.scratch[k])
        }
        if let dInput {
            let through = v.dInput.pointer, direct = dOutput.pointer, dx = dInput.pointer
            for i in 0..<dInput.count { dx[i] = direct[i] + through[i] }
        }
    }
}
