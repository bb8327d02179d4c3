import CSIMD

/// RMSprop (Hinton, 2012): steps divided by a running RMS of the gradients; optionally centred and with momentum.
/// PyTorch: `torch.optim.RMSprop(params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
/// centered=False)`.
///
/// At each step, with `g = ∂L/∂θ`:
///
///     g ← g + λθ
///     v ← αv + (1 − α)g²
///     ṽ ← v,  or, centred:  ḡ ← αḡ + (1 − α)g;  ṽ ← v − ḡ²
///     if μ > 0:  b ← μb + g / (√ṽ + ε);  θ ← θ − γb
///     else:      θ ← θ − γ g / (√ṽ + ε)
public struct RMSprop: Optimizer {
    /// `γ`.
    public var learningRate: Float
    /// `α`, the smoothing constant of the running averages.
    public var alpha: Float
    /// `ε`.
    public var epsilon: Float
    /// `λ`.
    public var weightDecay: Float
    /// `μ`.
    public var momentum: Float
    /// Whether the gradient's running mean is subtracted (variance instead of second moment).
    public var centered: Bool

    /// The number of steps taken.
    public private(set) var stepCount = 0
    private var squareAverage: Matrix?
    private var gradientAverage: Matrix?
    private var momentumBuffer: Matrix?

    public init(learningRate: Float = 0.01, alpha: Float = 0.99, epsilon: Float = 1e-8, weightDecay: Float = 0,
                momentum: Float = 0, centered: Bool = false) {
        validate(learningRate.isFinite && learningRate >= 0, "RMSprop", "the learning rate", learningRate, "≥ 0 and finite")
        validate(alpha >= 0 && alpha <= 1, "RMSprop", "alpha", alpha, "in [0, 1]")
        validate(epsilon >= 0, "RMSprop", "epsilon", epsilon, "≥ 0")
        validate(weightDecay >= 0, "RMSprop", "weight decay", weightDecay, "≥ 0")
        validate(momentum >= 0, "RMSprop", "momentum", momentum, "≥ 0")
        self.learningRate = learningRate
        self.alpha = alpha
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.centered = centered
    }

    public var stateBufferNames: Set<String>? {
        Set(["square_avg"] + (centered ? ["grad_avg"] : []) + (momentum > 0 ? ["momentum_buffer"] : []))
    }

    public var state: OptimizerState { OptimizerState(stepCount: stepCount, [("square_avg", squareAverage), ("grad_avg", gradientAverage), ("momentum_buffer", momentumBuffer)]) }

    public mutating func restore(_ state: OptimizerState) {
        stepCount = state.stepCount
        squareAverage = state.copy("square_avg")
        gradientAverage = state.copy("grad_avg")
        momentumBuffer = state.copy("momentum_buffer")
    }

    /// One pass over the buffers (`bp_rmsprop`, compiled per instruction set), split between the threads.
    public mutating func step(parameters: Matrix, gradients: Matrix) {
        checkLayout("RMSprop", parameters, gradients)
        stepCount += 1
        let v = stateBuffer(&squareAverage, like: parameters)
        let mean = centered ? stateBuffer(&gradientAverage, like: parameters) : nil
        let b = momentum > 0 ? stateBuffer(&momentumBuffer, like: parameters) : nil
        struct Job {
            let theta: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, v: UnsafeMutablePointer<Float>
            let mean: UnsafeMutablePointer<Float>?, b: UnsafeMutablePointer<Float>?
            let lr: Float, alpha: Float, eps: Float, wd: Float, mu: Float
        }
        var job = Job(theta: parameters.pointer, g: gradients.pointer, v: v, mean: mean, b: b, lr: learningRate, alpha: alpha,
                      eps: epsilon, wd: weightDecay, mu: momentum)
        Parallel.forEachBufferChunk(of: parameters.count, context: &job) { context, start, end in
            let j = context.load(as: Job.self)
            bp_rmsprop(j.theta + start, j.g + start, j.v + start, j.mean.map { $0 + start }, j.b.map { $0 + start }, end - start,
                       j.lr, j.alpha, j.eps, j.wd, j.mu)
        }
    }
}
