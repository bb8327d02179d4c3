/// A residual block (He et al., 2016): `Y = X + f(X)`, where `f` is a ``Sequential`` of layers whose output has the
/// input's size. Backward: `∂L/∂X = ∂L/∂Y + ∂L/∂X through f`, so the gradient reaches earlier layers undiminished
/// whatever `f` does to it: the cure for vanishing gradients in deep stacks.
///
/// The block's parameters are its body's, in order. Its scratch space holds the body's (planned by the
/// ``Sequential``), `f(X)` (`N × F`) and, for the backward pass, the gradient that flows back through `f`
/// (`N × F`). As a PyTorch module it is `x + self.body(x)` with `self.body = nn.Sequential(...)`, so its tensors
/// are named `body.0.weight`, ….
public struct Residual: Layer {
    /// `f`.
    public private(set) var body: Sequential

    /// `x + f(x)` with `f` the layers of `body`, in order (at least one).
    public init(_ body: [any Layer]) {
        self.body = Sequential(body)
    }

    public func outputSize(forInputSize inputSize: Int) -> Int {
        let output = body.outputSize(forInputSize: inputSize)
        precondition(output == inputSize, "Residual: the body maps \(inputSize) features to \(output); x + f(x) needs the same")
        return inputSize
    }

    public var children: [(name: String, layer: any Layer)] { [("body", body)] }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        body.bind(parameters: parameters, gradients: gradients)
    }

    /// The body's scratch, then `f(X)`, then (for the backward pass) `∂L/∂X` through `f`.
    public func scratchCount(rows: Int, inputSize: Int, backward: Bool) -> Int {
        body.scratchCount(rows: rows, inputSize: inputSize, backward: backward) + (backward ? 2 : 1) * rows * inputSize
    }

    /// Views of the scratch space: the body's, `f(X)` and the gradient through `f`.
    private func views(_ context: LayerContext, rows: Int, inputSize: Int, backward: Bool)
        -> (body: LayerContext, f: Matrix, dInputThroughBody: Matrix) {
        let bodyCount = body.scratchCount(rows: rows, inputSize: inputSize, backward: backward)
        return (context.with(scratch: context.scratch(rows: 1, columns: bodyCount, offset: 0)),
                context.scratch(rows: rows, columns: inputSize, offset: bodyCount),
                context.scratch(rows: backward ? rows : 0, columns: inputSize, offset: bodyCount + rows * inputSize))
    }

    /// `Y = X + f(X)`.
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(sameShape: output, input, "Residual.forward")
        let v = views(context, rows: input.rows, inputSize: input.columns, backward: context.scratchIncludesBackward)
        body.forward(output: v.f, input: input, context: v.body)
        let x = input.pointer, f = v.f.pointer, y = output.pointer
        for i in 0..<input.count { y[i] = x[i] + f[i] }
    }

    /// `∂L/∂X = ∂L/∂Y + (∂L/∂X through f)`; the body's parameter gradients are added as its layers add them.
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        precondition(sameShape: dOutput, input, "Residual.backward")
        let v = views(context, rows: input.rows, inputSize: input.columns, backward: true)
        body.backward(dInput: dInput == nil ? nil : v.dInputThroughBody, dOutput: dOutput, input: input, output: v.f,
                      context: v.body)
        if let dInput {
            precondition(sameShape: dInput, input, "Residual.backward")
            let through = v.dInputThroughBody.pointer, direct = dOutput.pointer, dx = dInput.pointer
            for i in 0..<dInput.count { dx[i] = direct[i] + through[i] }
        }
    }
}
