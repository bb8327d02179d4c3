@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// Policy gradients: returns, their normalisation, sampling, REINFORCE's weighted loss against PyTorch
/// (Tests/Fixtures/golden_policy_gradient.py), and a short run on CartPole that must improve the return.
@Suite("Policy gradients")
struct PolicyGradientTests {
    static let normalised = [1.2419817798624275, 0.8141004973519098, 0.33867685011800097, -0.1895716468085642,
                             -0.7765144211714143, -1.4286730593523589]

    @Test func discountedAndNormalisedReturnsMatchPyTorch() {
        let rewards = Matrix(rows: 6, columns: 1, values: [1, 1, 1, 1, 1, 1]), returns = Matrix(rows: 6, columns: 1)
        discountedReturns(rewards: rewards, gamma: 0.9, into: returns)
        expectClose(returns.scalars, [4.68559, 4.0951, 3.439, 2.71, 1.9, 1.0], "returns")
        normalizeReturns(returns)
        expectClose(returns.scalars, Self.normalised, relative: 1e-6, "normalised")
        // One return has no standard deviation: it becomes 0 (PyTorch's unbiased std would make it NaN).
        let one = Matrix(rows: 1, columns: 1, values: [7])
        normalizeReturns(one)
        #expect(one.scalars == [0])
        // Equal returns are centred to 0, not divided by 0.
        let equal = Matrix(rows: 3, columns: 1, values: [2, 2, 2])
        normalizeReturns(equal)
        #expect(equal.scalars == [0, 0, 0])
    }

    /// REINFORCE's loss −Σ Ĝₜ log π(aₜ|sₜ) is the cross-entropy of the taken actions weighted by Ĝₜ: its value and
    /// every parameter's gradient against PyTorch autograd.
    @Test func theWeightedCrossEntropyIsREINFORCEsLoss() throws {
        let network = Network(inputSize: 4, layers: [Dense(inputSize: 4, outputSize: 3), ReLU(), Dense(inputSize: 3, outputSize: 2)])
        try network.loadStateDict([
            "0.weight": .init(shape: [3, 4], values: [0.5, -0.3, 0.8, 0.1, -0.6, 0.2, 0.4, -0.7, 0.3, 0.9, -0.2, 0.5]),
            "0.bias": .init(shape: [3], values: [0.1, -0.2, 0.05]),
            "2.weight": .init(shape: [2, 3], values: [0.7, -0.4, 0.2, -0.5, 0.6, 0.9]),
            "2.bias": .init(shape: [2], values: [0.02, -0.03]),
        ])
        let states = Matrix(rows: 6, columns: 4, values: [0.01, 0.2, -0.03, -0.3, 0.02, 0.4, -0.04, -0.6, 0.03, 0.2, -0.05, -0.3,
                                                          0.04, 0.39, -0.06, -0.58, 0.05, 0.58, -0.07, -0.88, 0.06, 0.78, -0.09, -1.2])
        let actions = oneHot([1, 0, 1, 1, 0, 1], classCount: 2)
        let weights = Matrix(rows: 6, columns: 1, values: Self.normalised.map(Float.init))
        let workspace = Workspace(for: network, capacity: 6)
        let logits = network.forward(states, workspace: workspace, mode: .training)
        expectClose(softmax(logits).scalars, [0.4889268108593507, 0.5110731891406494, 0.42340767224745773, 0.5765923277525423,
                                              0.49217563877694054, 0.5078243612230594, 0.43033119866435426, 0.5696688013356457,
                                              0.3689555797367839, 0.631044420263216, 0.3088289007297346, 0.6911710992702654], "π")
        let loss = CrossEntropy(reduction: .sum).sumOfLosses(output: logits, targets: actions, weights: weights,
                                                            gradient: workspace.outputGradient(rows: 6), gradientScale: 1)
        expectClose([Float(loss)], [0.3541949272526347], relative: 1e-5, "loss")
        network.zeroGradients()
        network.backward(states, workspace: workspace)
        let first = network.layers[0] as! Dense, second = network.layers[2] as! Dense
        expectClose(first.weightGradient.transposed().scalars,
                    [0.0, 0.0, 0.0, 0.0, 0.003550366205511201, 0.1247313147580486, -0.0025276504430316107, -0.19502539415237102,
                     0.002485256343857843, 0.08731192033063404, -0.00176935531012214, -0.13651777590665987], relative: 1e-4, absolute: 1e-6, "dW1")
        expectClose(first.biasGradient.scalars, [0.0, -0.2717435533349673, -0.19022048733447688], relative: 1e-4, absolute: 1e-6, "db1")
        expectClose(second.weightGradient.transposed().scalars,
                    [0.0, -0.21267146962474368, -0.002728948489569505, 0.0, 0.21267146962474362, 0.002728948489569491],
                    relative: 1e-4, absolute: 1e-6, "dW2")
        expectClose(second.biasGradient.scalars, [0.2717435533349672, -0.271743553334967], relative: 1e-4, absolute: 1e-6, "db2")
        // The convenience function agrees.
        let value = crossEntropy(logits: logits, labels: [1, 0, 1, 1, 0, 1], weights: Self.normalised.map(Float.init), reduction: .sum)
        expectClose([value], [0.3541949272526347], relative: 1e-5, "crossEntropy(logits:labels:weights:)")
    }

    /// A policy whose logits are fixed by its bias: sampled actions follow softmax, greedy ones its arg-max.
    @Test func actionsAreSampledFromTheSoftmax() throws {
        let policy = Network(inputSize: 4, layers: [Dense(inputSize: 4, outputSize: 3, initializer: .zeros)])
        try policy.loadStateDict(["0.weight": .init(shape: [3, 4], values: [Float](repeating: 0, count: 12)),
                                  "0.bias": .init(shape: [3], values: [0, log(2), log(5)])])  // π = (1, 2, 5)/8
        let agent = PolicyGradientTrainer(policy: policy, optimizer: SGD(learningRate: 0.1), seed: 4)
        let observation = Matrix(rows: 1, columns: 4)
        var counts = [0, 0, 0]
        for _ in 0..<40_000 { counts[agent.action(for: observation)] += 1 }
        for (count, p) in zip(counts, [1.0 / 8, 2.0 / 8, 5.0 / 8]) {
            let sigma = (p * (1 - p) / 40_000).squareRoot()
            #expect(abs(Double(count) / 40_000 - p) < 5 * sigma, "\(counts)")
        }
        #expect(agent.action(for: observation, greedy: true) == 2)
    }

    /// Acting one row at a time draws the dropout masks the update's batch draws, row for row.
    @Test func actingDrawsTheUpdatesDropoutMasks() {
        let dropout = Dropout(probability: 0.5, seed: 9)
        let x = randomMatrix(7, 16, seed: 1), batch = Matrix(rows: 7, columns: 16), row = Matrix(rows: 1, columns: 16)
        dropout.forward(output: batch, input: x, context: LayerContext(mode: .training, randomIndex: 3))
        for t in 0..<7 {
            var context = LayerContext(mode: .training, randomIndex: 3)
            context.rowOffset = t
            dropout.forward(output: row, input: x.rows(t..<(t + 1)), context: context)
            #expect(row.scalars == batch.rows(t..<(t + 1)).scalars, "row \(t)")
        }
    }

    static func policy(seed: UInt64, dropout: Float = 0) -> Network {
        Network(inputSize: 4, layers: [Dense(inputSize: 4, outputSize: 32), Dropout(probability: dropout, seed: seed &+ 1), ReLU(),
                                       Dense(inputSize: 32, outputSize: 2)], initializer: .pytorchDefault, seed: seed)
    }

    @Test(arguments: [PolicyGradientAlgorithm.reinforce, .actorCritic])
    func trainingOnCartPoleImprovesTheReturn(_ algorithm: PolicyGradientAlgorithm) throws {
        let value = Network(inputSize: 4, layers: [Dense(inputSize: 4, outputSize: 32), ReLU(), Dense(inputSize: 32, outputSize: 1)],
                            initializer: .pytorchDefault, seed: 3)
        let agent = PolicyGradientTrainer(policy: Self.policy(seed: 1, dropout: algorithm == .reinforce ? 0.2 : 0),
                                          optimizer: Adam(learningRate: 0.02), algorithm: algorithm, valueNetwork: value,
                                          valueOptimizer: Adam(learningRate: 0.02), seed: 2)
        let cartPole = CartPole(seed: 5)
        var returns: [Double] = []
        for episode in 1...150 { returns.append(try agent.trainEpisode(in: cartPole, seed: UInt64(episode)).totalReward) }
        let first = returns.prefix(25).reduce(0, +) / 25, last = returns.suffix(25).reduce(0, +) / 25
        print("\(algorithm): mean return of the first 25 episodes \(first), of the last 25 \(last)")
        #expect(last > 2 * first, "\(algorithm): \(first) → \(last)")
        #expect(agent.environmentSteps == Int(returns.reduce(0, +)))
    }

    @Test func anEnvironmentThatDoesNotFitThePolicyIsAnError() {
        let policy = Network(inputSize: 3, layers: [Dense(inputSize: 3, outputSize: 2)])
        let agent = PolicyGradientTrainer(policy: policy, optimizer: SGD(learningRate: 0.1))
        #expect(throws: TrainingError.dataMismatch(expected: "3 observations and 2 actions (the policy's)",
                                                   found: "4 and 2 (the environment's)")) {
            try agent.trainEpisode(in: CartPole())
        }
    }
}
