#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which policy-gradient method a ``PolicyGradientTrainer`` uses.
public enum PolicyGradientAlgorithm: String, Sendable, CaseIterable {
    /// REINFORCE (Williams, 1992): each action's log-probability is pushed up in proportion to the (normalised)
    /// return that followed it.
    case reinforce
    /// Advantage actor-critic: a value network `V(s)` learns the (normalised) returns, and each action is weighted
    /// by its advantage `Ĝₜ − V(sₜ)` instead of the return alone, which lowers the variance of the gradient.
    case actorCritic = "actor-critic"
}

/// What one episode of policy-gradient training did.
public struct EpisodeReport: Sendable {
    /// The episode's number, from 1.
    public var episode: Int
    /// The sum of its rewards.
    public var totalReward: Double
    /// Its steps.
    public var steps: Int
    /// Whether a policy update followed this episode (after every ``PolicyGradientTrainer/episodesPerUpdate``).
    public var updated: Bool
}

/// Trains a categorical policy by gradient ascent on the expected return (see <doc:PolicyGradients>).
///
/// The policy is a ``Network`` from observations to one logit per action; its softmax is the distribution
/// `π(a|s)` actions are sampled from, with a seeded generator. Acting runs the policy in training mode, one row at a
/// time, with the random draw and row the update will use, so dropout drops the same units when acting as when
/// learning (as in PyTorch, where the update backpropagates through the acting passes). Policies with batch
/// normalization act in evaluation mode instead (one row has no batch statistics).
///
/// After every ``episodesPerUpdate`` episodes, the returns `Gₜ = rₜ + γGₜ₊₁` of each episode are computed and
/// normalised over the update's steps (``normalizeReturns(_:)``), and one optimizer step minimises
/// `−Σₜ wₜ log π(aₜ|sₜ)`: the softmax cross-entropy of the taken actions, each weighted (``Loss/sumOfLosses(output:targets:weights:gradient:gradientScale:)``)
/// by `wₜ = Ĝₜ` (REINFORCE) or by the advantage `Ĝₜ − V(sₜ)` (actor-critic, whose value network then takes a step
/// on the squared error `Σₜ (V(sₜ) − Ĝₜ)²`). Every buffer is made when the trainer is; an environment step allocates
/// nothing, and neither does an update.
public final class PolicyGradientTrainer {
    /// The policy, observations → action logits.
    public let policy: Network
    /// The value network of actor-critic, observations → one value; `nil` for REINFORCE.
    public let valueNetwork: Network?
    /// The method.
    public let algorithm: PolicyGradientAlgorithm
    /// The discount `γ`.
    public let gamma: Float
    /// Whether returns are normalised before they weigh the actions (default `true`).
    public var normalizesReturns = true
    /// Episodes per policy update.
    public let episodesPerUpdate: Int
    /// The longest episode the buffers hold; a longer one is cut there (as a time limit truncates it).
    public let maximumEpisodeLength: Int
    /// The policy's trainer (its optimizer, random index and clipping can be set there).
    public let policyTrainer: Trainer
    /// The value network's trainer, for actor-critic.
    public let valueTrainer: Trainer?
    /// Episodes played so far.
    public private(set) var episodeCount = 0
    /// Environment steps taken so far.
    public private(set) var environmentSteps = 0
    /// The generator actions are sampled with.
    public var generator: SeededGenerator

    private let actionCount: Int
    private let states: Matrix, actions: Matrix, rewards: Matrix, weights: Matrix, values: Matrix
    private let episodeStarts: UnsafeMutablePointer<Int>
    private var bufferedEpisodes = 0, bufferedSteps = 0
    private let acting: Workspace
    private let valueWorkspace: Workspace?

    /// - Parameters:
    ///   - policy: observations (`observationSize` features) → one logit per action.
    ///   - optimizer: the policy's update rule.
    ///   - algorithm: REINFORCE, or actor-critic with `valueNetwork` and `valueOptimizer`.
    ///   - valueNetwork: for actor-critic, observations → one value `V(s)`; ignored by REINFORCE.
    ///   - valueOptimizer: for actor-critic, the value network's update rule.
    ///   - gamma: the discount `γ` in `[0, 1]`.
    ///   - episodesPerUpdate: episodes whose steps make one update.
    ///   - maximumEpisodeLength: the longest episode the buffers hold.
    ///   - seed: seeds the action sampling.
    public init(policy: Network, optimizer: any Optimizer, algorithm: PolicyGradientAlgorithm = .reinforce,
                valueNetwork: Network? = nil, valueOptimizer: (any Optimizer)? = nil, gamma: Float = 0.99,
                episodesPerUpdate: Int = 1, maximumEpisodeLength: Int = 500, seed: UInt64 = 0) {
        precondition(gamma >= 0 && gamma <= 1, "PolicyGradientTrainer: γ must be in [0, 1], got \(gamma)")
        precondition(episodesPerUpdate > 0 && maximumEpisodeLength > 0,
                     "PolicyGradientTrainer: episodesPerUpdate and maximumEpisodeLength must be positive")
        precondition(policy.outputSize >= 2, "PolicyGradientTrainer: the policy must output one logit per action (at least 2), got \(policy.outputSize)")
        if algorithm == .actorCritic {
            guard let valueNetwork, valueOptimizer != nil else {
                preconditionFailure("PolicyGradientTrainer: actor-critic needs a valueNetwork and a valueOptimizer")
            }
            precondition(valueNetwork.inputSize == policy.inputSize && valueNetwork.outputSize == 1,
                         "PolicyGradientTrainer: the value network must map \(policy.inputSize) features to 1 value, it maps \(valueNetwork.inputSize) to \(valueNetwork.outputSize)")
        }
        self.policy = policy
        self.algorithm = algorithm
        self.valueNetwork = algorithm == .actorCritic ? valueNetwork : nil
        self.gamma = gamma
        self.episodesPerUpdate = episodesPerUpdate
        self.maximumEpisodeLength = maximumEpisodeLength
        self.generator = SeededGenerator(seed: seed)
        let capacity = episodesPerUpdate * maximumEpisodeLength
        actionCount = policy.outputSize
        policyTrainer = Trainer(network: policy, loss: CrossEntropy(reduction: .sum), optimizer: optimizer,
                                batchSize: capacity, shuffle: false)
        if algorithm == .actorCritic, let valueNetwork, let valueOptimizer {
            valueTrainer = Trainer(network: valueNetwork, loss: MeanSquaredError(reduction: .sum), optimizer: valueOptimizer,
                                   batchSize: capacity, shuffle: false)
            valueWorkspace = Workspace(for: valueNetwork, capacity: min(capacity, 4096), backward: false)
        } else {
            valueTrainer = nil
            valueWorkspace = nil
        }
        states = Matrix(rows: capacity, columns: policy.inputSize)
        actions = Matrix(rows: capacity, columns: actionCount)
        rewards = Matrix(rows: capacity, columns: 1)
        weights = Matrix(rows: capacity, columns: 1)
        values = Matrix(rows: capacity, columns: 1)
        episodeStarts = .allocate(capacity: episodesPerUpdate + 1)
        acting = Workspace(for: policy, capacity: 1, backward: false)
    }

    deinit { episodeStarts.deallocate() }

    /// The action the policy takes for `observation` (`1 × observationSize`): sampled from `π(·|s)` with
    /// ``generator``, or the most probable with `greedy`. Runs in evaluation mode; allocates nothing.
    public func action(for observation: Matrix, greedy: Bool = false) -> Int {
        let logits = policy.forward(observation, workspace: acting)
        return greedy ? argmax(logits, row: 0) : sample(logits)
    }

    /// An index drawn with probabilities `softmax(logits)` (row 0), by inverting the cumulative distribution.
    private func sample(_ logits: Matrix) -> Int {
        let z = logits.pointer, k = logits.columns
        var m = z[0]
        for j in 1..<k { m = max(m, z[j]) }
        var total = 0.0
        for j in 0..<k { total += Double(expf(z[j] - m)) }
        let u = generator.nextUniform() * total
        var cumulative = 0.0
        for j in 0..<k {
            cumulative += Double(expf(z[j] - m))
            if u < cumulative { return j }
        }
        return k - 1
    }

    /// Plays one episode in `environment` (started with `reset(seed:)`), sampling every action from the policy,
    /// and updates the policy (and value network) after every ``episodesPerUpdate`` episodes.
    ///
    /// - Throws: ``TrainingError/dataMismatch(expected:found:)`` when the environment's observation size or action
    ///   count does not fit the policy; ``TrainingError/diverged(epoch:batch:loss:)`` (epoch = the episode) when a
    ///   reward, return, loss or gradient is not finite (no update is made).
    @discardableResult
    public func trainEpisode(in environment: some Environment, seed: UInt64? = nil) throws(TrainingError) -> EpisodeReport {
        guard environment.observationSize == policy.inputSize, environment.actionCount == actionCount else {
            throw .dataMismatch(expected: "\(policy.inputSize) observations and \(actionCount) actions (the policy's)",
                                found: "\(environment.observationSize) and \(environment.actionCount) (the environment's)")
        }
        episodeCount += 1
        let first = bufferedSteps
        episodeStarts[bufferedEpisodes] = first
        let randomIndex = policyTrainer.randomIndex &+ 1  // the draw the coming update's step will make
        let mode: LayerContext.Mode = policyTrainer.batchStatisticsLayerCount > 0 ? .evaluation : .training
        var observation = environment.reset(seed: seed)
        var total = 0.0, steps = 0
        while steps < maximumEpisodeLength {
            let row = first + steps
            states.rows(row..<(row + 1)).assign(observation)
            let logits = policy.forward(observation, workspace: acting, mode: mode, randomIndex: randomIndex, rowOffset: row)
            let action = sample(logits)
            let step = environment.step(action)
            let target = actions.pointer + row * actionCount
            for j in 0..<actionCount { target[j] = j == action ? 1 : 0 }
            rewards.pointer[row] = Float(step.reward)
            total += step.reward
            steps += 1
            observation = step.observation
            if step.isLast { break }
        }
        environmentSteps += steps
        bufferedSteps += steps
        bufferedEpisodes += 1
        guard total.isFinite else {
            discardBufferedEpisodes()
            throw .diverged(epoch: episodeCount, batch: 0, loss: Float(total))
        }
        var updated = false
        if bufferedEpisodes == episodesPerUpdate {
            defer { discardBufferedEpisodes() }
            do { try update() } catch {
                // The step reports epoch and batch 0; here the epoch is the episode.
                if case .diverged(_, _, let loss) = error { throw .diverged(epoch: episodeCount, batch: 0, loss: loss) }
                throw error
            }
            updated = true
        }
        return EpisodeReport(episode: episodeCount, totalReward: total, steps: steps, updated: updated)
    }

    private func discardBufferedEpisodes() {
        bufferedEpisodes = 0
        bufferedSteps = 0
    }

    /// One update from the buffered episodes.
    private func update() throws(TrainingError) {
        let n = bufferedSteps
        episodeStarts[bufferedEpisodes] = n
        for e in 0..<bufferedEpisodes {  // each episode's returns, into `weights`
            let range = episodeStarts[e]..<episodeStarts[e + 1]
            discountedReturns(rewards: rewards.rows(range), gamma: gamma, into: weights.rows(range))
        }
        let returns = weights.rows(0..<n)
        if normalizesReturns { normalizeReturns(returns) }
        let input = states.rows(0..<n), targets = actions.rows(0..<n)
        if let valueTrainer, let valueNetwork, let valueWorkspace {
            // Advantages Ĝ − V(s) with the value network as it was when the actions were taken; then both steps.
            var start = 0
            while start < n {
                let count = min(valueWorkspace.capacity, n - start)
                values.rows(start..<(start + count)).assign(
                    valueNetwork.forward(input.rows(start..<(start + count)), workspace: valueWorkspace))
                start += count
            }
            try valueTrainer.trainStep(input: input, targets: returns)
            for t in 0..<n { values.pointer[t] = returns.pointer[t] - values.pointer[t] }
            try policyTrainer.trainStep(input: input, targets: targets, sampleWeights: values.rows(0..<n))
        } else {
            try policyTrainer.trainStep(input: input, targets: targets, sampleWeights: returns)
        }
    }
}
