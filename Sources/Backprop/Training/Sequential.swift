/// Layers applied in order, each one's output the next one's input: `Y = fₖ(…f₂(f₁(X)))`. PyTorch:
/// `nn.Sequential`, and its children are named `0`, `1`, … as there.
///
/// A `Sequential` plans the memory of its children: the intermediate outputs, their gradients and every child's
/// scratch space all lie in the scratch space it is given (``scratchCount(rows:inputSize:backward:)``), laid out
/// anew for each call's row count without allocating. The last child writes straight into the caller's output, and
/// its backward pass reads the caller's `dOutput`. ``Network``, ``Residual`` and other containers are built on it.
public struct Sequential: Layer {
    /// The layers, in order.
    public private(set) var layers: [any Layer]
    /// Each layer's name in a state_dict: `0`, `1`, … unless given (a PyTorch module's attribute names, such as
    /// `rnn` and `head`).
    public let names: [String]

    /// A sequence of `layers` (at least one), named `0`, `1`, … or by `names` (one each, distinct, non-empty,
    /// without `.`; or, for a single layer, `""`: its tensors are then named as the layer names them, unprefixed).
    public init(_ layers: [any Layer], names: [String]? = nil) {
        precondition(!layers.isEmpty, "Sequential: needs at least one layer")
        let names = names ?? layers.indices.map(String.init)
        precondition(Self.areValid(names, count: layers.count),
                     "Sequential: needs \(layers.count) distinct, non-empty names without '.', got \(names)")
        self.layers = layers
        self.names = names
    }

    /// Whether `names` can name `count` children.
    static func areValid(_ names: [String], count: Int) -> Bool {
        if count == 1 && names == [""] { return true }  // one layer whose tensors are the model's own (GPT)
        return names.count == count && Set(names).count == count && names.allSatisfy { !$0.isEmpty && !$0.contains(".") }
    }

    /// The number of features after each layer, for `inputSize` input features.
    public func outputSizes(forInputSize inputSize: Int) -> [Int] {
        var size = inputSize
        return layers.map { layer in
            size = layer.outputSize(forInputSize: size)
            return size
        }
    }

    public func outputSize(forInputSize inputSize: Int) -> Int {
        var size = inputSize
        for layer in layers { size = layer.outputSize(forInputSize: size) }
        return size
    }

    public var children: [(name: String, layer: any Layer)] { Array(zip(names, layers)) }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        precondition(parameters.count == gradients.count, "Sequential.bind: \(parameters.count) parameters, \(gradients.count) gradients")
        var start = 0
        for k in layers.indices {
            let count = layers[k].parameters.count
            precondition(start + count <= parameters.count, "Sequential.bind: \(parameters.count) tensors for layers with more")
            layers[k].bind(parameters: Array(parameters[start..<(start + count)]), gradients: Array(gradients[start..<(start + count)]))
            start += count
        }
        precondition(start == parameters.count, "Sequential.bind: \(parameters.count) tensors for layers with \(start)")
    }

    /// Per layer but the last: its output (`rows × size`); every layer's own scratch space; with `backward`, per
    /// layer but the last, the gradient with respect to its output (`rows × size`).
    public func scratchCount(rows: Int, inputSize: Int, backward: Bool) -> Int {
        withPlan(rows: rows, inputSize: inputSize, backward: backward) { $0.total }
    }

    /// Where each child's output, scratch and output gradient lie in the scratch space for a call on `rows` rows.
    struct Plan {
        /// Per child, five numbers: output size, output offset, scratch offset, scratch count, gradient offset.
        let entries: UnsafeMutableBufferPointer<Int>
        let total: Int
        func outputSize(_ k: Int) -> Int { entries[5 * k] }
        func outputOffset(_ k: Int) -> Int { entries[5 * k + 1] }
        func scratchOffset(_ k: Int) -> Int { entries[5 * k + 2] }
        func scratchCount(_ k: Int) -> Int { entries[5 * k + 3] }
        func gradientOffset(_ k: Int) -> Int { entries[5 * k + 4] }
    }

    /// Lays out the children's memory (on the stack: a pass allocates nothing) and hands the plan to `body`.
    func withPlan<R>(rows: Int, inputSize: Int, backward: Bool, _ body: (Plan) -> R) -> R {
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 5 * layers.count) { entries in
            var size = inputSize, offset = 0
            for (k, layer) in layers.enumerated() {  // outputs of all but the last
                let inputSize = size
                size = layer.outputSize(forInputSize: size)
                entries[5 * k] = size
                entries[5 * k + 1] = offset
                if k < layers.count - 1 { offset += rows * size }
                entries[5 * k + 3] = layer.scratchCount(rows: rows, inputSize: inputSize, backward: backward)
            }
            for k in layers.indices {  // each child's scratch
                entries[5 * k + 2] = offset
                offset += entries[5 * k + 3]
            }
            for k in layers.indices {  // gradients at the outputs of all but the last
                entries[5 * k + 4] = offset
                if backward && k < layers.count - 1 { offset += rows * entries[5 * k] }
            }
            return body(Plan(entries: entries, total: offset))
        }
    }

    /// Runs every layer in order; the last writes `output`.
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(output.rows == input.rows, "Sequential.forward: input \(input.shapeDescription) and output \(output.shapeDescription) differ in rows")
        let n = input.rows, last = layers.count - 1
        withPlan(rows: n, inputSize: input.columns, backward: context.scratchIncludesBackward) { plan in
            precondition(plan.total <= context.scratch.count,
                         "Sequential.forward: needs \(plan.total) floats of scratch for \(input.shapeDescription), was given \(context.scratch.count)")
            precondition(output.columns == plan.outputSize(last),
                         "Sequential.forward: output \(output.shapeDescription) does not have the last layer's \(plan.outputSize(last)) features")
            var current = input
            for k in layers.indices {
                let result = k == last ? output : context.scratch(rows: n, columns: plan.outputSize(k), offset: plan.outputOffset(k))
                layers[k].forward(output: result, input: current,
                                  context: context.with(scratch: context.scratch(rows: 1, columns: plan.scratchCount(k), offset: plan.scratchOffset(k))))
                current = result
            }
        }
    }

    /// Runs every layer's backward pass from the last to the first.
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        backward(dInput: dInput, dOutput: dOutput, input: input, output: output, context: context) { _ in }
    }

    /// The backward pass, calling `beforeLayer(k)` just before layer `k`'s (``Network`` zeroes its gradients there).
    func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext,
                  beforeLayer: (Int) -> Void) {
        precondition(context.scratchIncludesBackward,
                     "Sequential.backward: the scratch space was planned without room for the backward pass (scratchCount(…, backward: false))")
        precondition(dOutput.rows == input.rows && dOutput.columns == output.columns,
                     "Sequential.backward: dOutput \(dOutput.shapeDescription) does not match output \(output.shapeDescription)")
        let n = input.rows, last = layers.count - 1
        withPlan(rows: n, inputSize: input.columns, backward: true) { plan in
            precondition(plan.total <= context.scratch.count,
                         "Sequential.backward: needs \(plan.total) floats of scratch for \(input.shapeDescription), was given \(context.scratch.count)")
            func activation(_ k: Int) -> Matrix { context.scratch(rows: n, columns: plan.outputSize(k), offset: plan.outputOffset(k)) }
            func gradient(_ k: Int) -> Matrix { context.scratch(rows: n, columns: plan.outputSize(k), offset: plan.gradientOffset(k)) }
            for k in layers.indices.reversed() {
                beforeLayer(k)
                layers[k].backward(dInput: k == 0 ? dInput : gradient(k - 1),
                                   dOutput: k == last ? dOutput : gradient(k),
                                   input: k == 0 ? input : activation(k - 1),
                                   output: k == last ? output : activation(k),
                                   context: context.with(scratch: context.scratch(rows: 1, columns: plan.scratchCount(k), offset: plan.scratchOffset(k))))
            }
        }
    }

    /// The output of layer `k` (`rows × size`) as the forward pass just made with `context` left it in the scratch
    /// space; the last layer's output is the caller's.
    public func output(ofLayer k: Int, rows: Int, inputSize: Int, context: LayerContext) -> Matrix {
        precondition(k >= 0 && k < layers.count - 1, "Sequential.output(ofLayer:): layer \(k) is not one of the first \(layers.count - 1)")
        return withPlan(rows: rows, inputSize: inputSize, backward: context.scratchIncludesBackward) { plan in
            context.scratch(rows: rows, columns: plan.outputSize(k), offset: plan.outputOffset(k))
        }
    }
}
