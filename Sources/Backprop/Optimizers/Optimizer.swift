/// An update rule for parameters from their gradients: `θ ← update(θ, ∂L/∂θ)`.
///
/// Optimizers work on a network's two flat buffers (parameters and gradients, same layout), so a step is one loop
/// over all parameters at once; state they keep (momenta, running averages) lives in buffers of the same layout,
/// allocated at the first step (afterwards a step allocates nothing). Each type follows the update equations,
/// defaults and conventions of the PyTorch optimizer of the same name (`torch.optim`), so that hyper-parameters
/// tuned there carry over. Hyper-parameters are `var`s; schedules change ``learningRate`` between epochs.
///
/// Optimizers are values: a copy carries a copy of the step count but shares the state buffers.
public protocol Optimizer: Sendable {
    /// The step size `γ`. A `var`, so schedules can change it between steps.
    var learningRate: Float { get set }

    /// Applies one update to `parameters` from `gradients` (both `1 × P`, the same layout).
    mutating func step(parameters: Matrix, gradients: Matrix)

    /// Everything the next step depends on besides the hyper-parameters: the step count and the state buffers
    /// (named as in PyTorch's optimizer state: `momentum_buffer`, `exp_avg`, …). For checkpoints.
    var state: OptimizerState { get }

    /// Continues from a state read back from ``state`` (buffers are copied).
    mutating func restore(_ state: OptimizerState)

    /// The names of the state buffers this optimizer, as configured, keeps once it has taken a step (`nil`: not
    /// said). A checkpoint whose buffers are not exactly these is refused rather than resumed with a state missing or
    /// ignored (an Adam checkpoint without `exp_avg_sq`, a momentum buffer resumed by SGD without momentum).
    var stateBufferNames: Set<String>? { get }
}

extension Optimizer {
    public var stateBufferNames: Set<String>? { nil }
}

/// An optimizer's step count and state buffers (each `1 × P`, the parameters' layout).
public struct OptimizerState: Sendable {
    public var stepCount: Int
    public var buffers: [String: Matrix]
    public init(stepCount: Int, buffers: [String: Matrix]) {
        self.stepCount = stepCount
        self.buffers = buffers
    }

    /// The named buffers that exist.
    init(stepCount: Int, _ buffers: [(String, Matrix?)]) {
        self.init(stepCount: stepCount, buffers: Dictionary(uniqueKeysWithValues: buffers.compactMap { name, buffer in buffer.map { (name, $0) } }))
    }

    /// A copy of buffer `name`, if saved.
    func copy(_ name: String) -> Matrix? { buffers[name]?.copy() }
}

extension Optimizer {
    /// Applies one update to every parameter of `network` from its accumulated gradients.
    public mutating func step(_ network: Network) {
        step(parameters: network.parameters, gradients: network.gradients)
    }
}

/// Checks a hyper-parameter, stopping with a message that names the optimizer, the parameter and its value.
func validate(_ condition: Bool, _ optimizer: String, _ name: String, _ value: Float, _ expected: String) {
    precondition(condition, "\(optimizer): \(name) must be \(expected), got \(value)")
}

/// Checks that parameters and gradients have the same layout.
func checkLayout(_ optimizer: String, _ parameters: Matrix, _ gradients: Matrix) {
    precondition(parameters.count == gradients.count,
                 "\(optimizer).step: parameters \(parameters.shapeDescription) and gradients \(gradients.shapeDescription) differ")
}

/// A zero-filled state buffer of the parameters' layout, made at the first step or when the layout changes.
func stateBuffer(_ buffer: inout Matrix?, like parameters: Matrix, initialValue: Float = 0) -> UnsafeMutablePointer<Float> {
    if buffer?.count != parameters.count {
        let new = Matrix(rows: 1, columns: parameters.count)
        if initialValue != 0 { new.fill(initialValue) }
        buffer = new
    }
    return buffer!.pointer
}
