@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

@Suite("Activations, dropout and initializers")
struct ActivationTests {
    @Test(arguments: ActivationKind.allCases)
    func matchesPyTorch(_ kind: ActivationKind) throws {
        let golden = try #require(GoldenActivations.cases[kind.rawValue])
        let layer = kind.makeLayer()
        let x = Matrix(rows: 4, columns: 5, values: GoldenActivations.x)
        let dy = Matrix(rows: 4, columns: 5, values: GoldenActivations.dy)
        let y = Matrix(rows: 4, columns: 5), dx = Matrix(rows: 4, columns: 5)
        let context = LayerContext(mode: .training)
        layer.forward(output: y, input: x, context: context)
        layer.backward(dInput: dx, dOutput: dy, input: x, output: y, context: context)
        expectClose(y.scalars, golden.y, relative: 1e-5, absolute: 1e-6, "\(kind) forward")
        expectClose(dx.scalars, golden.dx, relative: 1e-5, absolute: 1e-6, "\(kind) backward")
    }

    @Test(arguments: ActivationKind.allCases)
    func passesTheGradientCheck(_ kind: ActivationKind) {
        let x = GradientCheckTests.input(seed: 11)
        let result = gradientCheck(kind.makeLayer(), input: x)
        #expect(result.passes(tolerance: 1e-2), "\(kind): \(result)")
    }

    @Test func functionsMatchLayers() {
        let x = randomMatrix(3, 4, seed: 2, in: -2...2)
        let z = x.scalars.map(Double.init)
        // Each function against its formula, computed here in Double.
        expectClose(leakyRelu(x, negativeSlope: 0.2).scalars, z.map { $0 > 0 ? $0 : 0.2 * $0 }, "leaky ReLU")
        expectClose(elu(x, alpha: 0.5).scalars, z.map { $0 > 0 ? $0 : 0.5 * (Foundation.exp($0) - 1) }, "ELU")
        expectClose(gelu(x, approximation: .tanh).scalars,
                    z.map { 0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }, "GELU (tanh)")
        let rows = x.rowArrays.map { $0.map(Double.init) }
        expectClose(logSoftmax(x).scalars, rows.flatMap { row in
            let m = row.max()!, lse = m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +))
            return row.map { $0 - lse }
        }, "log-softmax")
        // exp(log-softmax) is softmax; rows sum to 1.
        expectClose(logSoftmax(x).scalars.map { exp($0) }, softmax(x).scalars.map(Double.init), relative: 1e-5)
        for row in softmax(x).rowArrays { #expect(abs(row.reduce(0, +) - 1) < 1e-6) }
        #expect(LeakyReLU(negativeSlope: 0.2).value(-1) == -0.2 && ELU(alpha: 2).value(-1000) == -2)
    }

    /// The vectorised kernels against the scalar definitions (`tanhf`, `expm1f`, `erff`, `expf` in double where it
    /// matters) over 40 001 points of [−20, 20] and ±0, forward and backward, within the accuracy each states.
    @Test(arguments: [ActivationKind.tanh, .leakyRelu, .elu, .gelu, .geluTanh])
    func vectorisedKernelsAreWithinTheirStatedAccuracy(_ kind: ActivationKind) {
        let layer = kind.makeLayer() as! any Activation
        let points = (0...40_000).map { -20 + 40 * Float($0) / 40_000 } + [0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8]
        let z = Matrix(rows: 1, columns: points.count, values: points)
        let y = Matrix(rows: 1, columns: points.count), dy = Matrix(rows: 1, columns: points.count, values: points.map { _ in 1 })
        let dz = Matrix(rows: 1, columns: points.count)
        layer.forward(output: y, input: z, context: LayerContext())
        layer.backward(dInput: dz, dOutput: dy, input: z, output: y, context: LayerContext())
        let (relative, absolute): (Double, Double) = switch kind {
        case .tanh: (5e-7, 1e-37)
        case .elu: (3e-7, 1e-37)
        case .gelu, .geluTanh: (0, 3e-7)
        default: (0, 0)
        }
        var worstValue = 0.0, worstDerivative = 0.0
        for (i, point) in points.enumerated() {
            let value = Double(layer.value(point)), derivative = Double(layer.derivative(input: point, output: layer.value(point)))
            let bound = { (exact: Double) in relative * abs(exact) + absolute * max(1, Double(abs(point))) + 1e-37 }
            worstValue = max(worstValue, abs(Double(y.scalars[i]) - value) / bound(value))
            worstDerivative = max(worstDerivative, abs(Double(dz.scalars[i]) - derivative) / (bound(derivative) + 2e-7 * abs(derivative) + 1e-7))
        }
        #expect(worstValue <= 1.5, "\(kind) forward: worst error \(worstValue) of the bound")
        #expect(worstDerivative <= 1.5, "\(kind) backward: worst error \(worstDerivative) of the bound")
    }

    /// Softmax and log-softmax rows against a double-precision computation, rows of 1 to 1 000 columns and extreme
    /// logits.
    @Test func softmaxRowsMatchDoublePrecision() {
        for columns in [1, 3, 10, 1000] {
            let x = randomMatrix(5, columns, seed: UInt64(columns), in: -30...30)
            x[0, 0] = 80  // far larger than the others: no overflow
            let y = softmax(x), l = logSoftmax(x)
            for r in 0..<5 {
                let row = (0..<columns).map { Double(x[r, $0]) }, m = row.max()!
                let sum = row.reduce(0) { $0 + Foundation.exp($1 - m) }
                for j in 0..<columns {
                    let exact = Foundation.exp(row[j] - m) / sum, logExact = row[j] - m - Foundation.log(sum)
                    #expect(abs(Double(y[r, j]) - exact) <= 1e-6 * exact + 1e-12)
                    #expect(abs(Double(l[r, j]) - logExact) <= 2e-6 * max(1, abs(logExact)))
                }
            }
        }
    }

    @Test func dropoutTrainsAndEvaluates() {
        let dropout = Dropout(probability: 0.25, seed: 3)
        let x = Matrix(rows: 200, columns: 50)
        x.fill(2)
        let y = Matrix(rows: 200, columns: 50)
        let training = LayerContext(mode: .training, randomIndex: 1)
        dropout.forward(output: y, input: x, context: training)
        let kept = y.scalars.filter { $0 != 0 }
        // 10 000 draws: the kept fraction is 0.75 ± 3σ (σ ≈ 0.0043); survivors are scaled by 1/(1 − p).
        #expect(abs(Double(kept.count) / 10_000 - 0.75) < 0.013)
        #expect(kept.allSatisfy { abs($0 - 2 / 0.75) < 1e-6 })
        // The backward pass uses the same mask.
        let dy = Matrix(rows: 200, columns: 50), dx = Matrix(rows: 200, columns: 50)
        dy.fill(1)
        dropout.backward(dInput: dx, dOutput: dy, input: x, output: y, context: training)
        #expect(zip(dx.scalars, y.scalars).allSatisfy { ($0 == 0) == ($1 == 0) })
        #expect(zip(dx.scalars, y.scalars).allSatisfy { (dx: Float, _: Float) in dx == 0 || abs(dx - Float(1 / 0.75)) < 1e-6 })
        // Another random index draws another mask; evaluation is the identity.
        let y2 = Matrix(rows: 200, columns: 50)
        dropout.forward(output: y2, input: x, context: LayerContext(mode: .training, randomIndex: 2))
        #expect(y2 != y)
        dropout.forward(output: y2, input: x, context: LayerContext(mode: .evaluation, randomIndex: 1))
        #expect(y2 == x)
        // The same seed and random index give the same mask, and the layer keeps nothing between calls.
        let again = Dropout(probability: 0.25, seed: 3)
        again.forward(output: y2, input: x, context: training)
        #expect(y2 == y)
        dropout.forward(output: y2, input: x, context: training)
        #expect(y2 == y)
    }

    @Test func dropoutPassesTheGradientCheckWithAFixedMask() {
        let dropout = Dropout(probability: 0.4, seed: 5)
        let result = gradientCheck(dropout, input: GradientCheckTests.input(seed: 4), randomIndex: 7)
        #expect(result.passes(tolerance: 1e-2), "\(result)")
    }

    @Test func trainerDropsOnlyInItsSteps() throws {
        let network = Network(inputSize: 2, layers: [Dense(inputSize: 2, outputSize: 4, seed: 1), ReLU(),
                                                     Dropout(probability: 0.5, seed: 1), Dense(inputSize: 4, outputSize: 2, seed: 2)])
        let data = Dataset(features: [0, 0, 0, 1, 1, 0, 1, 1], featureCount: 2, labels: [0, 1, 1, 0], classCount: 2)
        let x = Matrix(rows: 4, columns: 2, values: [0, 0, 0, 1, 1, 0, 1, 1])
        let before = network(x)
        #expect(network(x) == before)  // inference is deterministic: no dropout outside training
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.1), batchSize: 2)
        try trainer.trainEpoch(on: data)
        #expect(trainer.randomIndex == 2)  // one mask per step
        let first = try trainer.evaluate(on: data), second = try trainer.evaluate(on: data)
        #expect(first.loss == second.loss)
        #expect(network(x) == network(x))
    }

    @Test(arguments: [(64, 64), (128, 32), (784, 10)])
    func orthogonalColumnsAreOrthonormal(_ shape: (Int, Int)) {
        let (fanIn, fanOut) = shape
        let w = Dense(inputSize: fanIn, outputSize: fanOut, initializer: .orthogonal(gain: 1), seed: 4).weight
        let product = Matrix(rows: fanOut, columns: fanOut)
        referenceGEMM(product, w, w, transposeA: true)  // WᵀW
        let identity = (0..<fanOut * fanOut).map { $0 / fanOut == $0 % fanOut ? 1.0 : 0.0 }
        expectClose(product.scalars, identity, relative: 0, absolute: 1e-4, "WᵀW for \(fanIn)×\(fanOut)")
    }

    @Test func orthogonalWideRowsAreOrthonormalAndGainScales() {
        let w = Dense(inputSize: 10, outputSize: 30, initializer: .orthogonal(gain: 2), seed: 4).weight
        let product = Matrix(rows: 10, columns: 10)
        referenceGEMM(product, w, w, transposeB: true)  // WWᵀ = 4I
        expectClose(product.scalars, (0..<100).map { $0 / 10 == $0 % 10 ? 4.0 : 0.0 }, relative: 0, absolute: 4e-4)
    }

    @Test func initializerStatistics() {
        func stats(_ initializer: Initializer, _ fanIn: Int, _ fanOut: Int) -> (std: Double, max: Float, bias: [Float]) {
            let layer = Dense(inputSize: fanIn, outputSize: fanOut, initializer: initializer, seed: 8)
            let w = layer.weight.scalars
            let mean = w.reduce(0.0) { $0 + Double($1) } / Double(w.count)
            let std = (w.reduce(0.0) { $0 + pow(Double($1) - mean, 2) } / Double(w.count)).squareRoot()
            return (std, w.map(abs).max()!, layer.bias.scalars)
        }
        // 20 000 draws each: sample standard deviations within 2% of the target.
        let xavierNormal = stats(.xavierNormal, 200, 100)
        #expect(abs(xavierNormal.std / (2.0 / 300).squareRoot() - 1) < 0.02)
        let heUniform = stats(.heUniform, 200, 100), heBound = Float((6.0 / 200).squareRoot())
        #expect(heUniform.max <= heBound && abs(heUniform.std / (Double(heBound) / 3.0.squareRoot()) - 1) < 0.02)
        let pytorch = stats(.pytorchDefault, 200, 100), bound = Float(1 / 200.0.squareRoot())
        #expect(pytorch.max <= bound && abs(pytorch.std / (Double(bound) / 3.0.squareRoot()) - 1) < 0.02)
        #expect(pytorch.bias.allSatisfy { abs($0) <= bound } && pytorch.bias.contains { $0 != 0 })
        #expect(stats(.heNormal, 200, 100).bias.allSatisfy { $0 == 0 })
        for name in Initializer.names { #expect(Initializer(name: name)?.name == name) }
    }
}
