@_spi(Internals) import Backprop
import ArgumentParser
import Foundation

/// `backprop rl`: policy-gradient reinforcement learning on a classic control task.
struct RL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rl",
        abstract: "Train a policy by policy gradients (REINFORCE, actor-critic) and watch it play.",
        subcommands: [RLTrain.self, RLPlay.self])
}

/// The environments `rl` knows, by name.
enum EnvironmentName {
    static let known = ["cartpole"]

    static func make(_ name: String, seed: UInt64) throws -> CartPole {
        guard name.lowercased() == "cartpole" || name == "CartPole-v1" else {
            throw fail("unknown environment '\(name)'; known: \(known.joined(separator: ", ")) (Gymnasium's CartPole-v1)")
        }
        return CartPole(seed: seed)
    }
}

struct RLTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a policy on an environment until it is solved or for --episodes episodes.",
        discussion: """
            The policy is observations → hidden (ReLU, dropout before it) → one logit per action; actions are \
            sampled from its softmax. REINFORCE updates it after every episode with the episode's normalised \
            discounted returns; actor-critic also trains a value network (observations → hidden → 1) and weights \
            each action by its advantage. Training stops when the running return (0.05·return + 0.95·previous, from \
            10) passes the environment's reward threshold (475 for CartPole-v1), or after --episodes. The saved \
            policy is a torch.nn.Sequential(Linear, Dropout, ReLU, Linear) state dict that PyTorch loads as it is.
            """)

    @Option(help: "The environment: \(EnvironmentName.known.joined(separator: ", ")).")
    var env: String = "cartpole"

    @Option(help: "The policy-gradient algorithm.")
    var algorithm: PolicyGradientAlgorithm = .reinforce

    @Option(parsing: .unconditional, help: "Hidden units of the policy (and of the value network). (default: 128)", transform: number)
    var hidden: Int = 128

    @Option(parsing: .unconditional, help: "Dropout probability before the policy's ReLU. (default: 0.6 for reinforce, 0 for actor-critic)", transform: number)
    var dropout: Float?

    @Option(help: "The optimizer: sgd, adam.")
    var optimizer: String = "adam"

    @Option(parsing: .unconditional, help: "The learning rate. (default: 0.01)", transform: number)
    var learningRate: Float = 0.01

    @Option(parsing: .unconditional, help: "The discount γ. (default: 0.99)", transform: number)
    var gamma: Float = 0.99

    @Option(parsing: .unconditional, help: "The most episodes to play. (default: 1000)", transform: number)
    var episodes: Int = 1000

    @Option(parsing: .unconditional, help: "Seeds the weights, the action sampling, dropout and each episode's start (seed + episode). (default: 0)", transform: number)
    var seed: UInt64 = 0

    @Option(help: "Save the policy here (safetensors, written atomically).")
    var output: String?

    @Option(parsing: .unconditional, help: "Threads for the matrix products (1 is fastest for these small networks). (default: 1)", transform: number)
    var threads: Int = 1

    @Flag(help: "Print one JSON object per episode, and one at the end.")
    var json = false

    @Flag(help: "Print nothing but errors (and the JSON lines, with --json).")
    var quiet = false

    func validate() throws {
        guard hidden >= 1 && hidden <= 1 << 16 else { throw ValidationError("--hidden must be in 1...65536; got \(hidden)") }
        if let dropout, !(dropout >= 0 && dropout < 1) { throw ValidationError("--dropout must be in [0, 1); got \(dropout)") }
        guard ["sgd", "adam"].contains(optimizer) else { throw ValidationError("--optimizer must be sgd or adam; got '\(optimizer)'") }
        guard learningRate.isFinite && learningRate > 0 else { throw ValidationError("--learning-rate must be positive and finite; got \(learningRate)") }
        guard gamma >= 0 && gamma <= 1 else { throw ValidationError("--gamma must be in [0, 1]; got \(gamma)") }
        guard episodes >= 1 && episodes <= 100_000_000 else { throw ValidationError("--episodes must be in 1...100000000; got \(episodes)") }
        guard threads >= 1 && threads <= 1024 else { throw ValidationError("--threads must be in 1...1024; got \(threads)") }
    }

    func makeOptimizer() -> any Optimizer {
        optimizer == "sgd" ? SGD(learningRate: learningRate) : Adam(learningRate: learningRate)
    }

    /// One line of `--json` output per episode. Field names are a contract: add, rename none.
    struct EpisodeLine: Encodable {
        var episode: Int
        var `return`: Double
        var running_return: Double
        var steps: Int
        var environment_steps: Int
        var seconds: Double
        /// The environment steps so far over the seconds so far (the summary line's figure, on every line).
        var environment_steps_per_second: Double
    }

    /// The last line of `--json` output.
    struct SummaryLine: Encodable {
        var stopped: String  // "solved" or "episodes"
        var episodes: Int
        var running_return: Double
        var environment_steps: Int
        var seconds: Double
        var environment_steps_per_second: Double
    }

    func run() throws {
        Parallel.setThreadCount(threads)
        let environment = try EnvironmentName.make(env, seed: seed)
        if let output { try checkOutputLocation(output, flag: "--output") }
        let p = dropout ?? (algorithm == .reinforce ? 0.6 : 0)
        let policy = Network(inputSize: environment.observationSize, layers: [
            Dense(inputSize: environment.observationSize, outputSize: hidden), Dropout(probability: p, seed: seed &+ 1),
            ReLU(), Dense(inputSize: hidden, outputSize: environment.actionCount),
        ], initializer: .pytorchDefault, seed: seed)
        let value = algorithm == .actorCritic ? Network(inputSize: environment.observationSize, layers: [
            Dense(inputSize: environment.observationSize, outputSize: hidden), ReLU(), Dense(inputSize: hidden, outputSize: 1),
        ], initializer: .pytorchDefault, seed: seed &+ 2) : nil
        let trainer = PolicyGradientTrainer(policy: policy, optimizer: makeOptimizer(), algorithm: algorithm,
                                            valueNetwork: value, valueOptimizer: value == nil ? nil : makeOptimizer(),
                                            gamma: gamma, maximumEpisodeLength: environment.maximumSteps, seed: seed)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if !json && !quiet {
            print("backprop rl: \(env) \(algorithm.rawValue), policy \(environment.observationSize)-\(hidden)-\(environment.actionCount) (dropout \(p)), \(optimizer) lr \(learningRate), γ \(gamma), seed \(seed)")
        }
        var running = 10.0, solved = false
        let start = monotonicSeconds()
        /// Environment steps so far per second of training so far.
        func stepsPerSecond(_ seconds: Double) -> Double { Double(trainer.environmentSteps) / max(seconds, 1e-9) }
        var lastEpisode = 0
        for episode in 1...episodes {
            let report: EpisodeReport
            do {
                report = try trainer.trainEpisode(in: environment, seed: seed &+ UInt64(episode))
            } catch {
                if case .diverged(_, _, let loss) = error {
                    throw fail("episode \(episode): training diverged: the update after it gave a loss of \(loss.isNaN ? "NaN" : "\(loss)"); try a lower --learning-rate than \(learningRate) (the default is 0.01)")
                }
                throw fail("episode \(episode): \(error.description)")
            }
            running = 0.05 * report.totalReward + 0.95 * running
            lastEpisode = episode
            let seconds = monotonicSeconds() - start
            if json {
                let line = EpisodeLine(episode: episode, return: report.totalReward, running_return: running, steps: report.steps,
                                       environment_steps: trainer.environmentSteps, seconds: seconds,
                                       environment_steps_per_second: stepsPerSecond(seconds))
                print(String(decoding: try encoder.encode(line), as: UTF8.self))
            } else if !quiet && (episode % 10 == 0 || running > CartPole.rewardThreshold) {
                print(String(format: "episode %5d  return %5.0f  running return %6.1f  %8d steps  %.2f s",
                             episode, report.totalReward, running, trainer.environmentSteps, seconds))
            }
            if running > CartPole.rewardThreshold { solved = true; break }
        }
        let seconds = monotonicSeconds() - start, rate = stepsPerSecond(seconds)
        if json {
            print(String(decoding: try encoder.encode(SummaryLine(
                stopped: solved ? "solved" : "episodes", episodes: lastEpisode, running_return: running,
                environment_steps: trainer.environmentSteps, seconds: seconds,
                environment_steps_per_second: rate)), as: UTF8.self))
        } else if !quiet {
            print(solved
                  ? String(format: "solved at episode %d: running return %.1f > %.0f (%d environment steps, %.0f per second)",
                           lastEpisode, running, CartPole.rewardThreshold, trainer.environmentSteps, rate)
                  : String(format: "not solved after %d episodes: running return %.1f ≤ %.0f (%d environment steps, %.0f per second)", lastEpisode,
                           running, CartPole.rewardThreshold, trainer.environmentSteps, rate))
        }
        if let output {
            do {
                try policy.save(to: output, metadata: [
                    "written_by": "backprop rl train", "environment": "CartPole-v1", "algorithm": algorithm.rawValue,
                    "hidden": "\(hidden)", "dropout": "\(p)", "gamma": "\(gamma)", "optimizer": optimizer,
                    "learning_rate": "\(learningRate)", "seed": "\(seed)", "episodes": "\(lastEpisode)",
                    "running_return": "\(running)", "solved": "\(solved)",
                ])
                if !json && !quiet { print("saved the policy to \(output)") }
            } catch {
                throw fail(error.description)
            }
        }
    }
}

struct RLPlay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "play",
        abstract: "Play episodes with a saved policy and print the mean, minimum and maximum return.")

    @Option(help: "A policy saved by 'backprop rl train --output'.")
    var model: String

    @Option(help: "The environment: \(EnvironmentName.known.joined(separator: ", ")).")
    var env: String = "cartpole"

    @Option(parsing: .unconditional, help: "Episodes to play. (default: 100)", transform: number)
    var episodes: Int = 100

    @Option(parsing: .unconditional, help: "Seeds each episode's start (seed + episode) and the sampling. (default: 0)", transform: number)
    var seed: UInt64 = 0

    @Flag(help: "Sample actions from the policy instead of taking the most probable.")
    var sample = false

    @Flag(help: "Draw the cart and pole in the terminal, frame by frame.")
    var render = false

    func validate() throws {
        guard episodes >= 1 && episodes <= 100_000_000 else { throw ValidationError("--episodes must be in 1...100000000; got \(episodes)") }
    }

    func run() throws {
        Parallel.setThreadCount(1)
        let environment = try EnvironmentName.make(env, seed: seed)
        let policy: Network
        do { policy = try Network.load(from: model) } catch { throw fail(error.description) }
        guard policy.inputSize == environment.observationSize, policy.outputSize == environment.actionCount else {
            throw fail("\(model) maps \(policy.inputSize) inputs to \(policy.outputSize) outputs; \(env) has \(environment.observationSize) observations and \(environment.actionCount) actions")
        }
        let player = PolicyGradientTrainer(policy: policy, optimizer: SGD(learningRate: 1), maximumEpisodeLength: 1, seed: seed)
        var returns: [Double] = []
        let terminal = render && isatty(STDOUT_FILENO) == 1
        for episode in 1...episodes {
            var observation = environment.reset(seed: seed &+ UInt64(episode))
            var total = 0.0
            while true {
                let action = player.action(for: observation, greedy: !sample)
                let step = environment.step(action)
                total += step.reward
                observation = step.observation
                if render {
                    print(drawCartPole(environment.state, episode: episode, step: environment.stepCount, total: total, clear: terminal))
                    if terminal { usleep(20_000) }  // 50 frames a second, CartPole's own rate
                }
                if step.isLast { break }
            }
            guard total.isFinite else { throw fail("episode \(episode): the return is \(total)") }
            returns.append(total)
        }
        let mean = returns.reduce(0, +) / Double(returns.count)
        print(String(format: "%d episodes (%@ actions): mean return %.1f, minimum %.0f, maximum %.0f",
                     returns.count, sample ? "sampled" : "greedy", mean, returns.min()!, returns.max()!))
    }
}

/// One frame: the track from −2.4 to 2.4, the cart, and the pole drawn from its pivot at its angle.
func drawCartPole(_ state: (Double, Double, Double, Double), episode: Int, step: Int, total: Double, clear: Bool) -> String {
    let width = 61, height = 12
    var grid = [[Character]](repeating: [Character](repeating: " ", count: width), count: height)
    let cart = Int(((state.0 + 2.4) / 4.8 * Double(width - 1)).rounded())
    let base = height - 3
    for x in 0..<width { grid[height - 1][x] = "=" }
    for dx in -3...3 where (0..<width).contains(cart + dx) { grid[height - 2][cart + dx] = dx == -3 || dx == 3 ? "o" : "█" }
    // The pole: 8 rows long at θ = 0, leaning with sin θ (characters are about twice as tall as wide).
    for k in 1...8 {
        let x = cart + Int((2 * Double(k) * sin(state.2)).rounded()), y = base - Int((Double(k) * cos(state.2)).rounded()) + 1
        if (0..<width).contains(x) && (0..<height).contains(y) { grid[y][x] = "|" }
    }
    let header = String(format: "episode %d  step %3d  return %.0f  x %+.2f  θ %+.1f°", episode, step, total, state.0, state.2 * 180 / .pi)
    return (clear ? "\u{1B}[H\u{1B}[2J" : "") + header + "\n" + grid.map { String($0) }.joined(separator: "\n")
}

extension PolicyGradientAlgorithm: ExpressibleByArgument {}
