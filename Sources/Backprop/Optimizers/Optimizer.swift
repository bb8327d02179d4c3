/// An update rule for parameters from their gradients: `θ ← update(θ, ∂L/∂θ)`.
///
/// Optimizers work on a network's two flat buffers (parameters and gradients, same layout), so a step is one loop
/// over all parameters at once; state they keep (momenta, running averages) lives in buffers of the same layout.
public protocol Optimizer {
    /// The step size `α`. A `var`, so schedules can change it between steps.
    var learningRate: Float { get set }

    /// Applies one update to `parameters` from `gradients` (both `1 × P`, the same layout).
    mutating func step(parameters: Matrix, gradients: Matrix)
}

extension Optimizer {
    /// Applies one update to every parameter of `network` from its accumulated gradients.
    public mutating func step(_ network: Network) {
        step(parameters: network.parameters, gradients: network.gradients)
    }
}
