#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The cart-pole balancing task (Barto, Sutton & Anderson, 1983), exactly as Gymnasium's `CartPole-v1` defines it.
///
/// A pole is hinged on a cart that moves along a track; each step pushes the cart left (action 0) or right (1) with a
/// force of 10 N. The state is `(x, ẋ, θ, θ̇)`, kept in `Double`; observations are the state in `Float`. With gravity
/// `g = 9.8`, cart mass 1.0, pole mass `m = 0.1`, total mass `M = 1.1`, half-length `l = 0.5` and `τ = 0.02` s:
///
/// - `a = (F + m·l·θ̇²·sin θ)/M`, `θ̈ = (g·sin θ − cos θ·a) / (l·(4/3 − m·cos²θ/M))`, `ẍ = a − m·l·θ̈·cos θ/M`;
/// - Euler integration, positions first with the old velocities: `x ← x + τẋ`, `ẋ ← ẋ + τẍ`, `θ ← θ + τθ̇`,
///   `θ̇ ← θ̇ + τθ̈` (each expression evaluated in the order Gymnasium evaluates it, so the `Double` results agree bit for
///   bit on the same C library);
/// - the episode terminates when `|x| > 2.4` or `|θ| > 12°`, and is truncated after ``maximumSteps`` (500) steps;
///   every step, the terminating one included, is rewarded 1;
/// - `reset` draws each state variable uniformly from `[−0.05, 0.05)`.
///
/// The start states come from ``SeededGenerator`` (Gymnasium draws them from NumPy's PCG64, so the same seed gives
/// other start states); the dynamics are Gymnasium's, checked against recorded trajectories to 1e-9.
public final class CartPole: Environment {
    public let observationSize = 4
    public let actionCount = 2
    /// Steps after which an episode is truncated (`CartPole-v1`'s `max_episode_steps`).
    public let maximumSteps: Int
    /// The reward at which `CartPole-v1` counts as solved (its `reward_threshold`), for a running mean of returns.
    public static let rewardThreshold = 475.0

    /// `(x, ẋ, θ, θ̇)`.
    public private(set) var state: (Double, Double, Double, Double) = (0, 0, 0, 0)
    /// Steps taken in this episode.
    public private(set) var stepCount = 0
    private var generator: SeededGenerator
    private let observation = Matrix(rows: 1, columns: 4)
    private var terminatedAlready = false

    static let gravity = 9.8, massCart = 1.0, massPole = 0.1, totalMass = massPole + massCart
    static let length = 0.5, poleMassLength = massPole * length, forceMagnitude = 10.0, tau = 0.02
    static let thetaThreshold = 12 * 2 * Double.pi / 360, xThreshold = 2.4

    /// A cart-pole whose resets without a seed draw from a generator seeded with `seed`.
    public init(seed: UInt64 = 0, maximumSteps: Int = 500) {
        precondition(maximumSteps > 0, "CartPole: maximumSteps must be positive, got \(maximumSteps)")
        self.generator = SeededGenerator(seed: seed)
        self.maximumSteps = maximumSteps
    }

    public func reset(seed: UInt64? = nil) -> Matrix {
        if let seed { generator = SeededGenerator(seed: seed) }
        func draw() -> Double { -0.05 + 0.1 * generator.nextUniform() }
        let (x, xDot, theta, thetaDot) = (draw(), draw(), draw(), draw())
        return reset(to: (x, xDot, theta, thetaDot))
    }

    /// Starts an episode in `state` (for replaying a recorded trajectory).
    @discardableResult
    public func reset(to state: (Double, Double, Double, Double)) -> Matrix {
        self.state = state
        stepCount = 0
        terminatedAlready = false
        writeObservation()
        return observation
    }

    public func step(_ action: Int) -> EnvironmentStep {
        precondition(action == 0 || action == 1, "CartPole.step: action \(action) is not 0 (left) or 1 (right)")
        var (x, xDot, theta, thetaDot) = state
        let force = action == 1 ? Self.forceMagnitude : -Self.forceMagnitude
        let cosTheta = cos(theta), sinTheta = sin(theta)
        let temp = (force + Self.poleMassLength * (thetaDot * thetaDot) * sinTheta) / Self.totalMass
        let thetaAcceleration = (Self.gravity * sinTheta - cosTheta * temp)
            / (Self.length * (4.0 / 3.0 - Self.massPole * (cosTheta * cosTheta) / Self.totalMass))
        let xAcceleration = temp - Self.poleMassLength * thetaAcceleration * cosTheta / Self.totalMass
        x = x + Self.tau * xDot
        xDot = xDot + Self.tau * xAcceleration
        theta = theta + Self.tau * thetaDot
        thetaDot = thetaDot + Self.tau * thetaAcceleration
        state = (x, xDot, theta, thetaDot)
        stepCount += 1
        let terminated = x < -Self.xThreshold || x > Self.xThreshold || theta < -Self.thetaThreshold || theta > Self.thetaThreshold
        let reward = terminatedAlready ? 0.0 : 1.0  // Gymnasium: 1 up to and including the terminating step
        if terminated { terminatedAlready = true }
        writeObservation()
        return EnvironmentStep(observation: observation, reward: reward, terminated: terminated,
                               truncated: !terminated && stepCount >= maximumSteps)
    }

    private func writeObservation() {
        let p = observation.pointer
        (p[0], p[1], p[2], p[3]) = (Float(state.0), Float(state.1), Float(state.2), Float(state.3))
    }
}
