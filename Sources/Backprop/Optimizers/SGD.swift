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

    public var state: OptimizerState { OptimizerState(stepCount: stepCount, [("momentum_buffer", momentumBuffer)]) }

    public mutating func restore(_ state: OptimizerState) {
        stepCount = state.stepCount
        momentumBuffer = state.copy("momentum_buffer")
    }

    public mutating func step(parameters: Matrix, gradients: Matrix) {
        checkLayout("SGD", parameters, gradients)
        stepCount += 1
        let theta = parameters.pointer, grad = gradients.pointer, n = parameters.count
        let lr = learningRate, mu = momentum, wd = weightDecay, gradientWeight = 1 - dampening, nesterov = nesterov
        let first = momentumBuffer?.count != n
        let b = mu == 0 ? theta : stateBuffer(&momentumBuffer, like: parameters)  // (b unused without momentum)
        /// The update of eight parameters: (θ, b) from (θ, g, b).
        @inline(__always)
        func lanes(_ th: SIMD8<Float>, _ g: SIMD8<Float>, _ b: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>) {
            let g = g + wd * th
            if mu == 0 { return (th - lr * g, b) }
            let buffer = first ? g : mu * b + gradientWeight * g
            return (th - lr * (nesterov ? g + mu * buffer : buffer), buffer)
        }
        var i = 0
        while i + 8 <= n {
            let r = lanes(load8(theta, i), load8(grad, i), mu == 0 ? SIMD8() : load8(b, i))
            store8(r.0, theta, i)
            if mu != 0 { store8(r.1, b, i) }
            i += 8
        }
        if i < n {
            let k = n - i
            let r = lanes(loadTail(theta + i, k), loadTail(grad + i, k), mu == 0 ? SIMD8() : loadTail(b + i, k))
            storeTail(r.0, theta + i, k)
            if mu != 0 { storeTail(r.1, b + i, k) }
        }
    }
}
