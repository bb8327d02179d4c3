import CSIMD

/// Adadelta (Zeiler, 2012): steps scaled by the ratio of running RMS of past updates to that of gradients.
/// PyTorch: `torch.optim.Adadelta(params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0)`.
///
/// At each step, with `g = ∂L/∂θ`:
///
///     g ← g + λθ
///     v ← ρv + (1 − ρ)g²
///     Δ ← √(u + ε) / √(v + ε) · g
///     u ← ρu + (1 − ρ)Δ²
///     θ ← θ − γΔ
public struct Adadelta: Optimizer {
    /// `γ`, a factor on the update (1 in the paper).
    public var learningRate: Float
    /// `ρ`, the decay of both running averages.
    public var rho: Float
    /// `ε`.
    public var epsilon: Float
    /// `λ`.
    public var weightDecay: Float

    /// The number of steps taken.
    public private(set) var stepCount = 0
    private var squareAverage: Matrix?
    private var updateSquareAverage: Matrix?

    public init(learningRate: Float = 1.0, rho: Float = 0.9, epsilon: Float = 1e-6, weightDecay: Float = 0) {
        validate(learningRate.isFinite && learningRate >= 0, "Adadelta", "the learning rate", learningRate, "≥ 0 and finite")
        validate(rho >= 0 && rho <= 1, "Adadelta", "rho", rho, "in [0, 1]")
        validate(epsilon >= 0, "Adadelta", "epsilon", epsilon, "≥ 0")
        validate(weightDecay >= 0, "Adadelta", "weight decay", weightDecay, "≥ 0")
        self.learningRate = learningRate
        self.rho = rho
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    public var stateBufferNames: Set<String>? { ["square_avg", "acc_delta"] }

    public var state: OptimizerState { OptimizerState(stepCount: stepCount, [("square_avg", squareAverage), ("acc_delta", updateSquareAverage)]) }

    public mutating func restore(_ state: OptimizerState) {
        stepCount = state.stepCount
        squareAverage = state.copy("square_avg")
        updateSquareAverage = state.copy("acc_delta")
    }

    /// One pass over the buffers (`bp_adadelta`, compiled per instruction set), split between the threads.
    public mutating func step(parameters: Matrix, gradients: Matrix) {
        checkLayout("Adadelta", parameters, gradients)
        stepCount += 1
        let v = stateBuffer(&squareAverage, like: parameters), u = stateBuffer(&updateSquareAverage, like: parameters)
        struct Job {
            let theta: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, v: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>
            let lr: Float, rho: Float, eps: Float, wd: Float
        }
        var job = Job(theta: parameters.pointer, g: gradients.pointer, v: v, u: u, lr: learningRate, rho: rho, eps: epsilon, wd: weightDecay)
        Parallel.forEachBufferChunk(of: parameters.count, context: &job) { context, start, end in
            let j = context.load(as: Job.self)
            bp_adadelta(j.theta + start, j.g + start, j.v + start, j.u + start, end - start, j.lr, j.rho, j.eps, j.wd)
        }
    }
}
