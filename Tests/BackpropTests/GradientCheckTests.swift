@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Testing

/// A deliberately wrong sigmoid whose backward pass drops f′(z): `dZ = dY`. The gradient check must reject it.
struct SigmoidWithoutDerivative: Layer {
    func outputSize(forInputSize inputSize: Int) -> Int { inputSize }
    func forward(output: Matrix, input: Matrix, context: LayerContext) { Sigmoid().forward(output: output, input: input, context: context) }
    func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) { dInput?.assign(dOutput) }
}

/// A Dense layer whose backward pass forgets the bias gradient.
struct DenseWithoutBiasGradient: Layer {
    var inner: Dense
    func outputSize(forInputSize inputSize: Int) -> Int { inner.outputSize(forInputSize: inputSize) }
    var parameters: [Matrix] { inner.parameters }
    var parameterGradients: [Matrix] { inner.parameterGradients }
    mutating func bind(parameters: [Matrix], gradients: [Matrix]) { inner.bind(parameters: parameters, gradients: gradients) }
    func forward(output: Matrix, input: Matrix, context: LayerContext) { inner.forward(output: output, input: input, context: context) }
    func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        inner.backward(dInput: dInput, dOutput: dOutput, input: input, output: output, context: context)
        inner.biasGradient.fill(0)
    }
}

@Suite("Finite-difference gradient checks")
struct GradientCheckTests {
    /// Inputs bounded away from 0 so that ReLU's kink is never within ε.
    static func input(seed: UInt64) -> Matrix {
        let x = randomMatrix(6, 5, seed: seed, in: 0.1...1.5)
        x.withUnsafeMutableBufferPointer { b in for i in b.indices where i % 3 == 0 { b[i] = -b[i] } }
        return x
    }

    @Test func dense() {
        let result = gradientCheck(Dense(inputSize: 5, outputSize: 4, seed: 3), input: Self.input(seed: 1))
        #expect(result.passes(tolerance: 1e-2), "\(result)")
        #expect(result.checkedCount == 6 * 5 + 5 * 4 + 4)
    }

    @Test(arguments: [ActivationKind.sigmoid, .relu, .tanh])
    func activation(_ kind: ActivationKind) {
        let result = gradientCheck(kind.makeLayer(), input: Self.input(seed: 2))
        #expect(result.passes(tolerance: 1e-2), "\(kind): \(result)")
    }

    @Test func checkCatchesDroppedDerivative() {
        let result = gradientCheck(SigmoidWithoutDerivative(), input: Self.input(seed: 2))
        #expect(!result.passes(tolerance: 1e-2), "\(result)")
        #expect(result.maxRelativeError > 0.5)
    }

    @Test func checkCatchesMissingBiasGradient() {
        let layer = DenseWithoutBiasGradient(inner: Dense(inputSize: 5, outputSize: 4, seed: 3))
        let result = gradientCheck(layer, input: Self.input(seed: 1))
        #expect(!result.passes(tolerance: 1e-2), "\(result)")
        #expect(result.worst.hasPrefix("parameter 1"), "\(result)")
    }

    static let losses: [any Loss] = [
        CrossEntropy(), CrossEntropy(reduction: .sum), BinaryCrossEntropy(), BinaryCrossEntropy(reduction: .sum),
        MeanSquaredError(), MeanSquaredError(reduction: .sum),
    ]

    @Test(arguments: losses)
    func loss(_ loss: any Loss) {
        let logits = randomMatrix(5, 4, seed: 4, in: -3...3)
        let targets = loss is MeanSquaredError
            ? randomMatrix(5, 4, seed: 5)
            : oneHot([0, 3, 1, 2, 3], classCount: 4)
        let result = gradientCheck(loss, output: logits, targets: targets)
        #expect(result.passes(tolerance: 1e-2), "\(loss.name) \(loss.reduction): \(result)")
    }

    @Test func crossEntropyWithSoftTargets() {
        let soft = Matrix([[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]])
        let result = gradientCheck(CrossEntropy(), output: randomMatrix(2, 3, seed: 6, in: -2...2), targets: soft)
        #expect(result.passes(tolerance: 1e-2), "\(result)")
    }

    @Test(arguments: [ActivationKind.sigmoid, .relu, .tanh])
    func wholeNetwork(_ kind: ActivationKind) {
        let network = Network(sizes: [5, 7, 6, 3], activation: kind, initializer: .xavierUniform, seed: 9)
        // For ReLU a step of ε can carry a hidden unit across its kink at 0 (where no derivative exists);
        // a smaller step avoids that for these inputs.
        let result = gradientCheck(network, loss: CrossEntropy(), input: Self.input(seed: 7),
                                   targets: oneHot([0, 1, 2, 2, 1, 0], classCount: 3),
                                   epsilon: kind == .relu ? 1e-3 : 1e-2)
        #expect(result.passes(tolerance: 2e-2), "\(kind): \(result)")
        #expect(result.checkedCount == network.parameterCount)
    }
}
