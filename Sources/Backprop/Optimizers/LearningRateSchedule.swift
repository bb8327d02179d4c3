#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A learning rate that changes with the epoch: `γₑ = schedule(e, γ₀)` for epochs `e = 0, 1, 2, …`.
///
/// Schedules are closed-form functions of the epoch, so they compose with any optimizer (set
/// ``Optimizer/learningRate`` at the start of each epoch) and resume trivially. Each matches the PyTorch scheduler
/// of the same name stepped once per epoch (`scheduler.get_last_lr()` before epoch `e`'s batches).
public protocol LearningRateSchedule: Sendable {
    /// The learning rate for epoch `epoch` (from 0) when the base rate is `base`.
    func learningRate(epoch: Int, base: Float) -> Float
}

/// The base rate throughout.
public struct ConstantSchedule: LearningRateSchedule {
    public init() {}
    public func learningRate(epoch: Int, base: Float) -> Float { base }
}

/// `γₑ = γ₀ · gamma^⌊e / stepSize⌋`. PyTorch: `StepLR(optimizer, step_size, gamma=0.1)`.
public struct StepDecay: LearningRateSchedule {
    /// Epochs between decays.
    public var stepSize: Int
    /// The factor applied at each decay.
    public var gamma: Float

    public init(stepSize: Int, gamma: Float = 0.1) {
        precondition(stepSize >= 1, "StepDecay: stepSize must be at least 1, got \(stepSize)")
        precondition(gamma > 0 && gamma.isFinite, "StepDecay: gamma must be positive, got \(gamma)")
        self.stepSize = stepSize
        self.gamma = gamma
    }

    public func learningRate(epoch: Int, base: Float) -> Float {
        base * Float(pow(Double(gamma), Double(epoch / stepSize)))
    }
}

/// `γₑ = γ₀ · gammaᵉ`. PyTorch: `ExponentialLR(optimizer, gamma)`.
public struct ExponentialDecay: LearningRateSchedule {
    /// The factor applied every epoch.
    public var gamma: Float

    public init(gamma: Float) {
        precondition(gamma > 0 && gamma.isFinite, "ExponentialDecay: gamma must be positive, got \(gamma)")
        self.gamma = gamma
    }

    public func learningRate(epoch: Int, base: Float) -> Float {
        base * Float(pow(Double(gamma), Double(epoch)))
    }
}

/// `γₑ = η_min + (γ₀ − η_min)(1 + cos(π e / T))/2` for `e ≤ T`, then `η_min`.
/// PyTorch: `CosineAnnealingLR(optimizer, T_max=T, eta_min)` for its first `T` epochs (PyTorch's recursive form
/// rises again after `T`; this one stays at the minimum, which is what a run of `T` epochs wants).
public struct CosineAnnealing: LearningRateSchedule {
    /// `T`, the epochs from the base rate to the minimum.
    public var period: Int
    /// `η_min`.
    public var minimum: Float

    public init(period: Int, minimum: Float = 0) {
        precondition(period >= 1, "CosineAnnealing: period must be at least 1, got \(period)")
        precondition(minimum >= 0, "CosineAnnealing: minimum must be ≥ 0, got \(minimum)")
        self.period = period
        self.minimum = minimum
    }

    public func learningRate(epoch: Int, base: Float) -> Float {
        let e = Double(min(epoch, period))
        return Float(Double(minimum) + (Double(base) - Double(minimum)) * (1 + cos(Double.pi * e / Double(period))) / 2)
    }
}

/// Linear warm-up for `epochs` epochs, then `schedule` with its epochs counted from the end of the warm-up:
/// `γₑ = γ₀ · (e + 1)/(W + 1)` for `e < W`, else `schedule(e − W, γ₀)`.
/// PyTorch: `SequentialLR(optimizer, [LinearLR(optimizer, start_factor=1/(W+1), total_iters=W), main],
/// milestones=[W])`.
public struct LinearWarmup: LearningRateSchedule {
    /// `W`, the warm-up epochs.
    public var epochs: Int
    /// The schedule after the warm-up.
    public var schedule: any LearningRateSchedule

    public init(epochs: Int, then schedule: any LearningRateSchedule = ConstantSchedule()) {
        precondition(epochs >= 0, "LinearWarmup: epochs must be ≥ 0, got \(epochs)")
        self.epochs = epochs
        self.schedule = schedule
    }

    public func learningRate(epoch: Int, base: Float) -> Float {
        epoch < epochs ? base * Float(epoch + 1) / Float(epochs + 1) : schedule.learningRate(epoch: epoch - epochs, base: base)
    }
}
