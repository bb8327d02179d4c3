import CSIMD

/// Stochastic gradient descent, with optional momentum (heavy ball or Nesterov), dampening and L2 weight decay.
/// PyTorch: `torch.optim.SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)`.
///
/// At step `t`, with `g = ∂L/∂θ`:
///
///     g ← g + λθ                                  (weight decay λ, if λ ≠ 0)
///     if μ ≠ 0:  b ← g at t = 1, else b ← μb + (1 − τ)g
///                g ← g + μb  (Nesterov)   or   g ← b
///     θ ← θ − γg
///
/// This is PyTorch's momentum convention (`v ← μv + g; θ ← θ − γv`), not the `v ← μv + γg` of some texts; the two
/// agree for a constant learning rate. With the batch being the whole training set this is the text's (full-batch)
/// gradient descent, `θ ← θ − α∇L`.
public struct SGD: Optimizer {
    /// `γ`.
    public var learningRate: Float
    /// `μ`, the momentum factor (0 = none).
    public var momentum: Float
    /// `τ`, the dampening of the momentum's gradient term.
    public var dampening: Float
    /// `λ`, the L2 penalty added to the gradient.
    public var weightDecay: Float
    /// Whether the step uses Nesterov's look-ahead `g + μb` (needs `μ > 0` and `τ = 0`).
    public var nesterov: Bool

    /// The number of steps taken.
    public private(set) var stepCount = 0
    private var momentumBuffer: Matrix?

    public init(learningRate: Float, momentum: Float = 0, dampening: Float = 0, weightDecay: Float = 0,
                nesterov: Bool = false) {
        validate(learningRate.isFinite && learningRate >= 0, "SGD", "the learning rate", learningRate, "≥ 0 and finite")
        validate(momentum >= 0 && momentum.isFinite, "SGD", "momentum", momentum, "≥ 0")
        validate(dampening >= 0 && dampening <= 1, "SGD", "dampening", dampening, "in [0, 1]")
        validate(weightDecay >= 0 && weightDecay.isFinite, "SGD", "weight decay", weightDecay, "≥ 0")
        precondition(!nesterov || (momentum > 0 && dampening == 0),
                     "SGD: Nesterov momentum needs momentum > 0 and dampening 0, got momentum \(momentum), dampening \(dampening)")
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
    }

    public var stateBufferNames: Set<String>? { momentum > 0 ? ["momentum_buffer"] : [] }

    public var state: OptimizerState { OptimizerState(stepCount: stepCount, [("momentum_buffer", momentumBuffer)]) }

    public mutating func restore(_ state: OptimizerState) {
        stepCount = state.stepCount
        momentumBuffer = state.copy("momentum_buffer")
    }

    public mutating func step(parameters: Matrix, gradients: Matrix) {
        checkLayout("SGD", parameters, gradients)
        stepCount += 1
        let first = momentumBuffer?.count != parameters.count
        let buffer = momentum == 0 ? parameters.pointer : stateBuffer(&momentumBuffer, like: parameters)  // (unused without momentum)
        var job = SGDStep(theta: parameters.pointer, gradient: gradients.pointer, buffer: buffer,
                          learningRate: learningRate, momentum: momentum, gradientWeight: 1 - dampening,
                          weightDecay: weightDecay, nesterov: nesterov ? 1 : 0, first: first ? 1 : 0)
        Parallel.forEachBufferChunk(of: parameters.count, context: &job) { context, start, end in
            let j = context.load(as: SGDStep.self)
            bp_sgd(j.theta + start, j.gradient + start, j.buffer + start, end - start, j.learningRate, j.momentum,
                   j.gradientWeight, j.weightDecay, j.nesterov, j.first)
        }
    }
}

/// The arguments of `bp_sgd` for one step, shared by the threads that each update a chunk.
private struct SGDStep {
    var theta: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>, buffer: UnsafeMutablePointer<Float>
    var learningRate: Float, momentum: Float, gradientWeight: Float, weightDecay: Float
    var nesterov: Int32, first: Int32
}
