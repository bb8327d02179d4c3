@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

@Suite("CartPole")
struct CartPoleTests {
    struct Recording: Decodable {
        struct Step: Decodable {
            var action: Int, state: [Double], observation: [Double], reward: Double, terminated: Bool, truncated: Bool
        }
        struct Trajectory: Decodable { var seed: Int; var start_state: [Double]; var steps: [Step] }
        var gymnasium_version: String
        var trajectories: [Trajectory]
    }

    /// Trajectories Gymnasium's CartPole-v1 produced (Scripts/record_cartpole.py), replayed from the same start
    /// states with the same actions: every state within 1e-9, observations, rewards and flags equal.
    @Test func replaysGymnasiumsTrajectories() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/cartpole_trajectories.json"))
        let recording = try JSONDecoder().decode(Recording.self, from: data)
        #expect(recording.trajectories.count == 8)
        var worst = 0.0, steps = 0
        for trajectory in recording.trajectories {
            let cartPole = CartPole()
            let s = trajectory.start_state
            cartPole.reset(to: (s[0], s[1], s[2], s[3]))
            for (t, expected) in trajectory.steps.enumerated() {
                let step = cartPole.step(expected.action)
                let state = [cartPole.state.0, cartPole.state.1, cartPole.state.2, cartPole.state.3]
                for (a, b) in zip(state, expected.state) { worst = max(worst, abs(a - b)) }
                #expect(zip(state, expected.state).allSatisfy { abs($0 - $1) <= 1e-9 },
                        "trajectory \(trajectory.seed), step \(t + 1): \(state) against \(expected.state)")
                #expect(step.observation.scalars == expected.observation.map(Float.init), "trajectory \(trajectory.seed), step \(t + 1)")
                #expect(step.reward == expected.reward && step.terminated == expected.terminated && step.truncated == expected.truncated,
                        "trajectory \(trajectory.seed), step \(t + 1): \(step.reward) \(step.terminated) \(step.truncated)")
                steps += 1
            }
        }
        print("CartPole: \(steps) steps of Gymnasium \(recording.gymnasium_version) replayed, largest state difference \(worst)")
        #expect(steps > 1000)
    }

    @Test func resetsWithinBoundsAndReproducibly() {
        let a = CartPole(seed: 3), b = CartPole(seed: 3)
        for _ in 0..<100 {
            let (x, y) = (a.reset(seed: nil).scalars, b.reset(seed: nil).scalars)
            #expect(x == y && x.allSatisfy { abs($0) <= 0.05 })
        }
        #expect(CartPole().reset(seed: 1).scalars != CartPole().reset(seed: 2).scalars)
    }

    @Test func aStepAfterTerminationIsNotRewarded() {
        let cartPole = CartPole()
        cartPole.reset(to: (2.399, 1, 0, 0))
        let last = cartPole.step(1)
        #expect(last.terminated && last.reward == 1 && !last.truncated)
        #expect(cartPole.step(1).reward == 0)
    }
}
