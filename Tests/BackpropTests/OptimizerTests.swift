@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Testing

/// Each optimizer against torch.optim on the same fixed gradients (Tests/Fixtures/golden_optimizers.py).
@Suite("Optimizers and schedules against PyTorch")
struct OptimizerTests {
    static let optimizers: [(String, any Optimizer)] = [
        ("sgd", SGD(learningRate: 0.1)),
        ("sgdMomentum", SGD(learningRate: 0.1, momentum: 0.9)),
        ("sgdMomentumDampening", SGD(learningRate: 0.1, momentum: 0.9, dampening: 0.3)),
        ("sgdNesterov", SGD(learningRate: 0.1, momentum: 0.9, nesterov: true)),
        ("sgdWeightDecay", SGD(learningRate: 0.1, weightDecay: 0.05)),
        ("sgdMomentumWeightDecay", SGD(learningRate: 0.1, momentum: 0.8, weightDecay: 0.05)),
        ("adagrad", Adagrad(learningRate: 0.1)),
        ("adagradDecayed", Adagrad(learningRate: 0.1, learningRateDecay: 0.05, weightDecay: 0.1, initialAccumulatorValue: 0.2)),
        ("adadelta", Adadelta()),
        ("adadeltaWeightDecay", Adadelta(learningRate: 0.5, rho: 0.8, weightDecay: 0.1)),
        ("rmsprop", RMSprop(learningRate: 0.01)),
        ("rmspropMomentum", RMSprop(learningRate: 0.01, momentum: 0.9)),
        ("rmspropCentered", RMSprop(learningRate: 0.01, weightDecay: 0.1, centered: true)),
        ("rmspropCenteredMomentum", RMSprop(learningRate: 0.01, alpha: 0.9, momentum: 0.5, centered: true)),
        ("adam", Adam(learningRate: 0.1)),
        ("adamAmsgrad", Adam(learningRate: 0.1, amsgrad: true)),
        ("adamWeightDecay", Adam(learningRate: 0.1, beta1: 0.8, beta2: 0.99, weightDecay: 0.1)),
        ("adamw", AdamW(learningRate: 0.1)),
        ("adamwAmsgrad", AdamW(learningRate: 0.1, weightDecay: 0.2, amsgrad: true)),
    ]

    @Test(arguments: optimizers.map(\.0))
    func matchesPyTorch(_ name: String) throws {
        var optimizer = Self.optimizers.first { $0.0 == name }!.1
        let expected = try #require(GoldenOptimizers.trajectories[name])
        let parameters = Matrix(rows: 1, columns: 8, values: GoldenOptimizers.initial)
        let gradients = Matrix(rows: 1, columns: 8)
        #expect(expected.count >= 5)
        for (t, gradient) in GoldenOptimizers.gradients.enumerated() {
            gradients.assign(Matrix(rows: 1, columns: 8, values: gradient))
            optimizer.step(parameters: parameters, gradients: gradients)
            expectClose(parameters.scalars, expected[t], relative: 1e-5, absolute: 1e-6, "\(name) step \(t + 1)")
        }
        #expect(gradients.scalars == GoldenOptimizers.gradients.last!, "an optimizer must not change the gradients")
    }

    /// `step(network)` updates the network's parameter buffer through the optimizer it is given.
    @Test func stepsTheNetworkBuffers() {
        let network = Network(sizes: [3, 2], activation: .relu, initializer: .xavierUniform, seed: 1)
        let before = network.parameters.scalars
        network.gradients.fill(1)
        var adam = Adam(learningRate: 0.5)
        adam.step(network)
        // Adam's first step moves every parameter by γ·g/(|g| + ε) ≈ γ, whatever the gradient's size.
        expectClose(network.parameters.scalars, before.map { Double($0) - 0.5 }, relative: 1e-5, absolute: 1e-6)
        #expect(adam.stepCount == 1)
    }

    @Test func aChangedLearningRateTakesEffectAtTheNextStep() {
        var sgd = SGD(learningRate: 0.1)
        let parameters = Matrix(rows: 1, columns: 3, values: [1, 2, 3]), gradients = Matrix(rows: 1, columns: 3, values: [1, -2, 4])
        sgd.step(parameters: parameters, gradients: gradients)
        expectClose(parameters.scalars, [0.9, 2.2, 2.6], "γ = 0.1")
        sgd.learningRate = 0.5  // as a schedule does between epochs
        sgd.step(parameters: parameters, gradients: gradients)
        expectClose(parameters.scalars, [0.4, 3.2, 0.6], "γ = 0.5")
        sgd.learningRate = 0
        sgd.step(parameters: parameters, gradients: gradients)
        expectClose(parameters.scalars, [0.4, 3.2, 0.6], "γ = 0")
    }

    @Test func invalidHyperParametersStopWithAMessage() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Adam(learningRate: 0.1, beta1: 1.5)
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("Adam: beta1 must be in [0, 1), got 1.5"), "\(message)")
        await #expect(processExitsWith: .failure) { _ = SGD(learningRate: 0.1, nesterov: true) }
        await #expect(processExitsWith: .failure) { _ = RMSprop(learningRate: -1) }
    }

    static let schedules: [(String, any LearningRateSchedule)] = [
        ("step", StepDecay(stepSize: 3, gamma: 0.5)),
        ("exponential", ExponentialDecay(gamma: 0.9)),
        ("cosine", CosineAnnealing(period: 10, minimum: 0.001)),
        ("warmupCosine", LinearWarmup(epochs: 3, then: CosineAnnealing(period: 7))),
        ("warmupStep", LinearWarmup(epochs: 2, then: StepDecay(stepSize: 2, gamma: 0.1))),
    ]

    @Test(arguments: schedules.map(\.0))
    func scheduleMatchesPyTorch(_ name: String) throws {
        let schedule = Self.schedules.first { $0.0 == name }!.1
        let expected = try #require(GoldenOptimizers.schedules[name])
        let rates = expected.indices.map { schedule.learningRate(epoch: $0, base: 0.1) }
        expectClose(rates, expected, relative: 1e-5, absolute: 1e-7, "\(name)")
    }
}
