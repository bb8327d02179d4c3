#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Adam (Kingma & Ba, 2015), optionally AMSGrad (Reddi et al., 2018), with L2 weight decay added to the gradient.
/// PyTorch: `torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)`.
/// For decoupled weight decay use ``AdamW``.
///
/// At step `t`, with `g = ∂L/∂θ`:
///
///     g ← g + λθ
///     m ← β₁m + (1 − β₁)g
///     v ← β₂v + (1 − β₂)g²
///     m̂ ← m / (1 − β₁ᵗ)
///     v̂ ← v / (1 − β₂ᵗ),  or, AMSGrad:  v_max ← max(v_max, v);  v̂ ← v_max / (1 − β₂ᵗ)
///     θ ← θ − γ m̂ / (√v̂ + ε)
public struct Adam: Optimizer {
    /// `γ`.
    public var learningRate: Float
    /// `β₁`, the decay of the first-moment average.
    public var beta1: Float
    /// `β₂`, the decay of the second-moment average.
    public var beta2: Float
    /// `ε`.
    public var epsilon: Float
    /// `λ`, L2 penalty added to the gradient (coupled; see ``AdamW`` for the decoupled form).
    public var weightDecay: Float
    /// Whether the running maximum of `v` is used (AMSGrad).
    public var amsgrad: Bool

    /// The number of steps taken, `t`.
    public private(set) var stepCount = 0
    private var firstMoment: Matrix?
    private var secondMoment: Matrix?
    private var maxSecondMoment: Matrix?

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0, amsgrad: Bool = false) {
        validateAdam("Adam", learningRate, beta1, beta2, epsilon, weightDecay)
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.amsgrad = amsgrad
    }

    public var state: OptimizerState { OptimizerState(stepCount: stepCount, [("exp_avg", firstMoment), ("exp_avg_sq", secondMoment), ("max_exp_avg_sq", maxSecondMoment)]) }

    public mutating func restore(_ state: OptimizerState) {
        stepCount = state.stepCount
        firstMoment = state.copy("exp_avg")
        secondMoment = state.copy("exp_avg_sq")
        maxSecondMoment = state.copy("max_exp_avg_sq")
    }

    public mutating func step(parameters: Matrix, gradients: Matrix) {
        checkLayout("Adam", parameters, gradients)
        stepCount += 1
        adamStep(parameters: parameters, gradients: gradients, t: stepCount, learningRate: learningRate,
                 beta1: beta1, beta2: beta2, epsilon: epsilon, coupledWeightDecay: weightDecay,
                 m: stateBuffer(&firstMoment, like: parameters), v: stateBuffer(&secondMoment, like: parameters),
                 vMax: amsgrad ? stateBuffer(&maxSecondMoment, like: parameters) : nil)
    }
}

/// AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.
/// PyTorch: `torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
/// amsgrad=False)`.
///
/// At step `t`: first `θ ← θ − γλθ`, then the ``Adam`` update with `λ = 0`.
public struct AdamW: Optimizer {
    /// The Adam update it applies after the decay (its own weight decay stays 0).
    private var adam: Adam
    /// `λ`, the decoupled decay rate (multiplied by `γ`).
    public var weightDecay: Float

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 1e-2, amsgrad: Bool = false) {
        validateAdam("AdamW", learningRate, beta1, beta2, epsilon, weightDecay)
        adam = Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, amsgrad: amsgrad)
        self.weightDecay = weightDecay
    }

    /// `γ`.
    public var learningRate: Float { get { adam.learningRate } set { adam.learningRate = newValue } }
    /// `β₁`.
    public var beta1: Float { get { adam.beta1 } set { adam.beta1 = newValue } }
    /// `β₂`.
    public var beta2: Float { get { adam.beta2 } set { adam.beta2 = newValue } }
    /// `ε`.
    public var epsilon: Float { get { adam.epsilon } set { adam.epsilon = newValue } }
    /// Whether the running maximum of `v` is used (AMSGrad).
    public var amsgrad: Bool { get { adam.amsgrad } set { adam.amsgrad = newValue } }
    /// The number of steps taken, `t`.
    public var stepCount: Int { adam.stepCount }

    public var state: OptimizerState { adam.state }
    public mutating func restore(_ state: OptimizerState) { adam.restore(state) }

    public mutating func step(parameters: Matrix, gradients: Matrix) {
        checkLayout("AdamW", parameters, gradients)
        let decay = 1 - learningRate * weightDecay, theta = parameters.pointer
        for i in 0..<parameters.count { theta[i] *= decay }
        adam.step(parameters: parameters, gradients: gradients)
    }
}

private func validateAdam(_ name: String, _ learningRate: Float, _ beta1: Float, _ beta2: Float, _ epsilon: Float,
                          _ weightDecay: Float) {
    validate(learningRate.isFinite && learningRate >= 0, name, "the learning rate", learningRate, "≥ 0 and finite")
    validate(beta1 >= 0 && beta1 < 1, name, "beta1", beta1, "in [0, 1)")
    validate(beta2 >= 0 && beta2 < 1, name, "beta2", beta2, "in [0, 1)")
    validate(epsilon >= 0, name, "epsilon", epsilon, "≥ 0")
    validate(weightDecay >= 0, name, "weight decay", weightDecay, "≥ 0")
}

/// The Adam update, arranged as PyTorch arranges it, `θ ← θ − (γ / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)`, except
/// that `√v / √(1 − β₂ᵗ)` is computed as `√v · (1 / √(1 − β₂ᵗ))` (one quotient per element instead of two).
private func adamStep(
    parameters: Matrix, gradients: Matrix, t: Int, learningRate: Float, beta1: Float, beta2: Float, epsilon: Float,
    coupledWeightDecay wd: Float, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
    vMax: UnsafeMutablePointer<Float>?
) {
    let theta = parameters.pointer, grad = gradients.pointer, n = parameters.count
    let stepSize = learningRate / (1 - powf(beta1, Float(t)))
    let inverseCorrection2Root = 1 / (1 - powf(beta2, Float(t))).squareRoot()  // a product in the loop, not a quotient
    let amsgrad = vMax != nil, vMax = vMax ?? m  // (not written when AMSGrad is off)
    /// The update of eight parameters: (θ, m, v, v_max) from (θ, g, m, v, v_max).
    @inline(__always)
    func lanes(_ th: SIMD8<Float>, _ g: SIMD8<Float>, _ m: SIMD8<Float>, _ v: SIMD8<Float>, _ vMax: SIMD8<Float>)
        -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let g = g + wd * th
        let first = beta1 * m + (1 - beta1) * g
        let second = beta2 * v + (1 - beta2) * g * g
        let largest = amsgrad ? pointwiseMax(vMax, second) : second
        return (th - stepSize * first / (squareRoot(largest) * inverseCorrection2Root + epsilon), first, second, largest)
    }
    var i = 0
    while i + 8 <= n {
        let r = lanes(load8(theta, i), load8(grad, i), load8(m, i), load8(v, i), amsgrad ? load8(vMax, i) : SIMD8())
        store8(r.0, theta, i); store8(r.1, m, i); store8(r.2, v, i)
        if amsgrad { store8(r.3, vMax, i) }
        i += 8
    }
    if i < n {
        let k = n - i
        let r = lanes(loadTail(theta + i, k), loadTail(grad + i, k), loadTail(m + i, k), loadTail(v + i, k),
                      amsgrad ? loadTail(vMax + i, k) : SIMD8())
        storeTail(r.0, theta + i, k); storeTail(r.1, m + i, k); storeTail(r.2, v + i, k)
        if amsgrad { storeTail(r.3, vMax + i, k) }
    }
}
