/// What one step of an environment returned. PyTorch users know it as Gymnasium's `Env.step` tuple.
public struct EnvironmentStep: Sendable {
    /// The observation after the step (`1 × observationSize`): a view of the environment's own buffer, valid until
    /// its next `step` or `reset` (copy it to keep it).
    public var observation: Matrix
    /// The reward for the step.
    public var reward: Double
    /// Whether the episode ended by the task's own rule (the pole fell): the state is terminal.
    public var terminated: Bool
    /// Whether the episode was cut short by a time limit: the state is not terminal, only the episode is over.
    public var truncated: Bool

    public init(observation: Matrix, reward: Double, terminated: Bool, truncated: Bool) {
        self.observation = observation
        self.reward = reward
        self.terminated = terminated
        self.truncated = truncated
    }

    /// Whether the episode is over (terminated or truncated).
    public var isLast: Bool { terminated || truncated }
}

/// A task an agent learns by acting: Gymnasium's `Env` with discrete actions, as a small protocol.
///
/// `reset(seed:)` starts an episode and returns the first observation; `step(_:)` takes an action in
/// `0..<actionCount` and returns the next observation, the reward, and whether the episode terminated or was
/// truncated. Observations are views of a buffer the environment owns, so acting allocates nothing.
public protocol Environment: AnyObject {
    /// The number of features of an observation.
    var observationSize: Int { get }
    /// The number of discrete actions.
    var actionCount: Int { get }
    /// Starts an episode, drawing its start from `seed` (or from the environment's generator when `nil`), and
    /// returns the first observation (`1 × observationSize`, valid until the next call).
    func reset(seed: UInt64?) -> Matrix
    /// Takes `action` (`0..<actionCount`).
    func step(_ action: Int) -> EnvironmentStep
}
