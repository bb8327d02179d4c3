import CSIMD

/// Adagrad (Duchi, Hazan & Singer, 2011): per-parameter steps scaled by the root of the summed squared gradients.
/// PyTorch: `torch.optim.Adagrad(params, lr=0.01, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
/// eps=1e-10)`.
///
/// At step `t`, with `g = ∂L/∂θ`:
///
///     γ̃ ← γ / (1 + (t − 1)η)                    (learning-rate decay η)
///     g ← g + λθ                                 (weight decay λ)
///     s ← s + g²                                 (s starts at the initial accumulator value)
///     θ ← θ − γ̃ g / (√s + ε)
public struct Adagrad: Optimizer {
    /// `γ`.
    public var learningRate: Float
    /// `η`, the learning-rate decay per step.
    public var learningRateDecay: Float
    /// `λ`.
    public var weightDecay: Float
    /// `s₀`, the accumulator's starting value.
    public let initialAccumulatorValue: Float
    /// `ε`, added to the denominator.
    public var epsilon: Float

    /// The number of steps taken.
    public private(set) var stepCount = 0
    private var sumOfSquares: Matrix?

    public init(learningRate: Float = 0.01, learningRateDecay: Float = 0, weightDecay: Float = 0,
                initialAccumulatorValue: Float = 0, epsilon: Float = 1e-10) {
        validate(learningRate.isFinite && learningRate >= 0, "Adagrad", "the learning rate", learningRate, "≥ 0 and finite")
        validate(learningRateDecay >= 0, "Adagrad", "the learning-rate decay", learningRateDecay, "≥ 0")
        validate(weightDecay >= 0, "Adagrad", "weight decay", weightDecay, "≥ 0")
        validate(initialAccumulatorValue >= 0, "Adagrad", "the initial accumulator value", initialAccumulatorValue, "≥ 0")
        validate(epsilon >= 0, "Adagrad", "epsilon", epsilon, "≥ 0")
        self.learningRate = learningRate
        self.learningRateDecay = learningRateDecay
        self.weightDecay = weightDecay
        self.initialAccumulatorValue = initialAccumulatorValue
        self.epsilon = epsilon
    }

    public var stateBufferNames: Set<String>? { ["sum"] }

    public var state: OptimizerState { OptimizerState(stepCount: stepCount, [("sum", sumOfSquares)]) }

    public mutating func restore(_ state: OptimizerState) {
        stepCount = state.stepCount
        sumOfSquares = state.copy("sum")
    }

    /// One pass over the buffers (`bp_adagrad`, compiled per instruction set), split between the threads.
    public mutating func step(parameters: Matrix, gradients: Matrix) {
        checkLayout("Adagrad", parameters, gradients)
        stepCount += 1
        let s = stateBuffer(&sumOfSquares, like: parameters, initialValue: initialAccumulatorValue)
        struct Job { let theta: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, s: UnsafeMutablePointer<Float>, lr: Float, eps: Float, wd: Float }
        var job = Job(theta: parameters.pointer, g: gradients.pointer, s: s,
                      lr: learningRate / (1 + Float(stepCount - 1) * learningRateDecay), eps: epsilon, wd: weightDecay)
        Parallel.forEachBufferChunk(of: parameters.count, context: &job) { context, start, end in
            let j = context.load(as: Job.self)
            bp_adagrad(j.theta + start, j.g + start, j.s + start, end - start, j.lr, j.eps, j.wd)
        }
    }
}
