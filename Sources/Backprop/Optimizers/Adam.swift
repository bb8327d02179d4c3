#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSIMD

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

    public var stateBufferNames: Set<String>? { Set(["exp_avg", "exp_avg_sq"] + (amsgrad ? ["max_exp_avg_sq"] : [])) }

    public var state: OptimizerState { OptimizerState(stepCount: stepCount, [("exp_avg", firstMoment), ("exp_avg_sq", secondMoment), ("max_exp_avg_sq", maxSecondMoment)]) }

    public mutating func restore(_ state: OptimizerState) {
        stepCount = state.stepCount
        firstMoment = state.copy("exp_avg")
        secondMoment = state.copy("exp_avg_sq")
        maxSecondMoment = state.copy("max_exp_avg_sq")
    }

    public mutating func step(parameters: Matrix, gradients: Matrix) {
        checkLayout("Adam", parameters, gradients)
        step(parameters: parameters, gradients: gradients, decay: 1)
    }

    /// The step, after `θ ← decay · θ` (AdamW's decoupled decay, fused into the same pass) on the elements of
    /// `decayed` (all when `nil`; the ranges sorted and disjoint).
    mutating func step(parameters: Matrix, gradients: Matrix, decay: Float, decayed: [Range<Int>]? = nil) {
        stepCount += 1
        let m = stateBuffer(&firstMoment, like: parameters), v = stateBuffer(&secondMoment, like: parameters)
        let vMax = amsgrad ? stateBuffer(&maxSecondMoment, like: parameters) : nil
        func update(_ range: Range<Int>, decay: Float) {
            if range.isEmpty { return }
            let span = (rows: 1, columns: range.count)
            adamStep(parameters: Matrix(rows: span.rows, columns: span.columns, storage: parameters.storage, offset: parameters.offset + range.lowerBound),
                     gradients: Matrix(rows: span.rows, columns: span.columns, storage: gradients.storage, offset: gradients.offset + range.lowerBound),
                     t: stepCount, learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                     coupledWeightDecay: weightDecay, decay: decay, m: m + range.lowerBound, v: v + range.lowerBound,
                     vMax: vMax.map { $0 + range.lowerBound })
        }
        guard let decayed, decay != 1 else { return update(0..<parameters.count, decay: decay) }
        var next = 0
        for range in decayed {
            update(next..<range.lowerBound, decay: 1)
            update(range, decay: decay)
            next = range.upperBound
        }
        update(next..<parameters.count, decay: 1)
    }
}

/// AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.
/// PyTorch: `torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
/// amsgrad=False)`.
///
/// At step `t`: first `θ ← θ − γλθ` (on ``decayedRanges`` only, if set), then the ``Adam`` update with `λ = 0`.
public struct AdamW: Optimizer {
    /// The Adam update it applies after the decay (its own weight decay stays 0).
    private var adam: Adam
    /// `λ`, the decoupled decay rate (multiplied by `γ`).
    public var weightDecay: Float
    /// The elements of the parameter buffer that decay (sorted, disjoint ranges), or `nil` for all of them: PyTorch's
    /// two parameter groups, `weight_decay` on some tensors and 0 on the others. ``Network/matrixParameterRanges``
    /// gives the usual choice, the tensors of two or more dimensions (not biases or normalization scales).
    public var decayedRanges: [Range<Int>]? {
        didSet {
            if let ranges = decayedRanges {
                precondition(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound <= $1.lowerBound } && (ranges.first?.lowerBound ?? 0) >= 0,
                             "AdamW.decayedRanges: the ranges must be sorted, disjoint and non-negative, got \(ranges)")
            }
        }
    }

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
    public var stateBufferNames: Set<String>? { adam.stateBufferNames }
    public mutating func restore(_ state: OptimizerState) { adam.restore(state) }

    public mutating func step(parameters: Matrix, gradients: Matrix) {
        checkLayout("AdamW", parameters, gradients)
        if let last = decayedRanges?.last {
            precondition(last.upperBound <= parameters.count,
                         "AdamW: decayedRanges reach \(last.upperBound), beyond the \(parameters.count) parameters")
        }
        adam.step(parameters: parameters, gradients: gradients, decay: 1 - learningRate * weightDecay, decayed: decayedRanges)
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
/// that `√v / √(1 − β₂ᵗ)` is computed as `√v · (1 / √(1 − β₂ᵗ))` (one quotient per element instead of two); with
/// `decay ≠ 1` (AdamW, `1 − γλ`), `θ ← decay · θ` first. One pass over the buffers (`bp_adam`), split between the
/// threads.
private func adamStep(
    parameters: Matrix, gradients: Matrix, t: Int, learningRate: Float, beta1: Float, beta2: Float, epsilon: Float,
    coupledWeightDecay wd: Float, decay: Float = 1, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
    vMax: UnsafeMutablePointer<Float>?
) {
    let stepSize = learningRate / (1 - powf(beta1, Float(t)))
    let inverseCorrection2Root = 1 / (1 - powf(beta2, Float(t))).squareRoot()  // a product in the loop, not a quotient
    var job = AdamStep(theta: parameters.pointer, gradient: gradients.pointer, m: m, v: v, vMax: vMax, decay: decay,
                       stepSize: stepSize, inverseCorrection2Root: inverseCorrection2Root, beta1: beta1,
                       beta2: beta2, epsilon: epsilon, weightDecay: wd)
    Parallel.forEachBufferChunk(of: parameters.count, context: &job) { context, start, end in
        let j = context.load(as: AdamStep.self)
        bp_adam(j.theta + start, j.gradient + start, j.m + start, j.v + start, j.vMax.map { $0 + start }, end - start,
                j.decay, j.stepSize, j.inverseCorrection2Root, j.beta1, j.beta2, j.epsilon, j.weightDecay)
    }
}

/// The arguments of `bp_adam` for one step, shared by the threads that each update a chunk.
private struct AdamStep {
    var theta: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>
    var m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, vMax: UnsafeMutablePointer<Float>?
    var decay: Float, stepSize: Float, inverseCorrection2Root: Float, beta1: Float, beta2: Float, epsilon: Float
    var weightDecay: Float
}
