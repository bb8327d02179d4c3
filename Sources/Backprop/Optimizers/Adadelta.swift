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

    public mutating func step(parameters: Matrix, gradients: Matrix) {
        checkLayout("Adadelta", parameters, gradients)
        stepCount += 1
        let v = stateBuffer(&squareAverage, like: parameters), u = stateBuffer(&updateSquareAverage, like: parameters)
        let theta = parameters.pointer, grad = gradients.pointer
        let lr = learningRate, rho = rho, eps = epsilon, wd = weightDecay
        /// The update of eight parameters: (θ, v, u) from (θ, g, v, u).
        @inline(__always)
        func lanes(_ th: SIMD8<Float>, _ g: SIMD8<Float>, _ v: SIMD8<Float>, _ u: SIMD8<Float>)
            -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
            let g = g + wd * th
            let square = rho * v + (1 - rho) * g * g
            let delta = squareRoot(u + eps) / squareRoot(square + eps) * g
            return (th - lr * delta, square, rho * u + (1 - rho) * delta * delta)
        }
        let n = parameters.count
        var i = 0
        while i + 8 <= n {
            let r = lanes(load8(theta, i), load8(grad, i), load8(v, i), load8(u, i))
            store8(r.0, theta, i); store8(r.1, v, i); store8(r.2, u, i)
            i += 8
        }
        if i < n {
            let k = n - i
            let r = lanes(loadTail(theta + i, k), loadTail(grad + i, k), loadTail(v + i, k), loadTail(u + i, k))
            storeTail(r.0, theta + i, k); storeTail(r.1, v + i, k); storeTail(r.2, u + i, k)
        }
    }
}
