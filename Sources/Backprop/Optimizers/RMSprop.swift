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

    public mutating func step(parameters: Matrix, gradients: Matrix) {
        checkLayout("RMSprop", parameters, gradients)
        stepCount += 1
        let v = stateBuffer(&squareAverage, like: parameters)
        let centered = centered, hasMomentum = momentum > 0
        let mean = centered ? stateBuffer(&gradientAverage, like: parameters) : v  // (unused when not centred)
        let b = hasMomentum ? stateBuffer(&momentumBuffer, like: parameters) : v  // (unused without momentum)
        let theta = parameters.pointer, grad = gradients.pointer
        let lr = learningRate, a = alpha, eps = epsilon, wd = weightDecay, mu = momentum
        /// The update of eight parameters: (θ, v, ḡ, b) from (θ, g, v, ḡ, b).
        @inline(__always)
        func lanes(_ th: SIMD8<Float>, _ g: SIMD8<Float>, _ v: SIMD8<Float>, _ mean: SIMD8<Float>, _ b: SIMD8<Float>)
            -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
            let g = g + wd * th
            let square = a * v + (1 - a) * g * g
            let average = centered ? a * mean + (1 - a) * g : mean
            let denominator = centered ? square - average * average : square
            let step = g / (squareRoot(denominator) + eps)
            let buffer = hasMomentum ? mu * b + step : step
            return (th - lr * buffer, square, average, buffer)
        }
        let n = parameters.count
        var i = 0
        while i + 8 <= n {
            let r = lanes(load8(theta, i), load8(grad, i), load8(v, i), load8(mean, i), load8(b, i))
            store8(r.0, theta, i); store8(r.1, v, i)
            if centered { store8(r.2, mean, i) }
            if hasMomentum { store8(r.3, b, i) }
            i += 8
        }
        if i < n {
            let k = n - i
            let r = lanes(loadTail(theta + i, k), loadTail(grad + i, k), loadTail(v + i, k), loadTail(mean + i, k),
                          loadTail(b + i, k))
            storeTail(r.0, theta + i, k); storeTail(r.1, v + i, k)
            if centered { storeTail(r.2, mean + i, k) }
            if hasMomentum { storeTail(r.3, b + i, k) }
        }
    }
}
