/// Plain stochastic gradient descent: `θ ← θ − α·g`, with `g = ∂L/∂θ` the accumulated gradient.
///
/// With the batch being the whole training set this is the text's (full-batch) gradient descent; with smaller
/// batches, mini-batch SGD. PyTorch: `torch.optim.SGD(params, lr)` with its other options at their defaults.
public struct SGD: Optimizer {
    /// `α`, the learning rate.
    public var learningRate: Float

    /// - Parameter learningRate: `α > 0` (finite).
    public init(learningRate: Float) {
        precondition(learningRate.isFinite && learningRate > 0,
                     "SGD: the learning rate must be positive and finite, got \(learningRate)")
        self.learningRate = learningRate
    }

    public func step(parameters: Matrix, gradients: Matrix) {
        precondition(parameters.count == gradients.count,
                     "SGD.step: parameters \(parameters.shapeDescription) and gradients \(gradients.shapeDescription) differ")
        let theta = parameters.pointer, g = gradients.pointer, alpha = learningRate
        for i in 0..<parameters.count { theta[i] -= alpha * g[i] }
    }
}
