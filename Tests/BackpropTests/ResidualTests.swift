@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

@Suite("Residual blocks")
struct ResidualTests {
    static func block(seed: UInt64) -> Residual {
        Residual([Dense(inputSize: 5, outputSize: 7, seed: seed), Tanh(), Dense(inputSize: 7, outputSize: 5, seed: seed + 1)])
    }

    @Test func passesTheGradientCheck() {
        let result = gradientCheck(Self.block(seed: 3), input: GradientCheckTests.input(seed: 5))
        #expect(result.passes(tolerance: 1e-2), "\(result)")
        #expect(result.checkedCount == 6 * 5 + (5 * 7 + 7) + (7 * 5 + 5))
    }

    /// `Y = X + f(X)`, and `∂L/∂X = ∂L/∂Y + ∂L/∂X through f`: with f's last layer zeroed, the block is the identity.
    @Test func isTheIdentityPlusItsBody() {
        let block = Self.block(seed: 1)
        let x = randomMatrix(4, 5, seed: 2)
        let body = Network(inputSize: 5, layers: [Dense(inputSize: 5, outputSize: 7, seed: 1), Tanh(), Dense(inputSize: 7, outputSize: 5, seed: 2)])
        let expected = zip(x.scalars, body(x).scalars).map { Double($0) + Double($1) }
        expectClose(block(x).scalars, expected, relative: 1e-6, absolute: 1e-7)
    }

    @Test func deepResidualNetworkTrainsAndRoundTrips() throws {
        let folder = TemporaryFolder()
        var layers: [any Layer] = [Dense(inputSize: 2, outputSize: 16, seed: 1), ReLU()]
        for k in 0..<4 {
            layers.append(Residual([Dense(inputSize: 16, outputSize: 16, initializer: .heNormal, seed: 10 + UInt64(k)),
                                    BatchNorm(featureCount: 16), Tanh()]))  // smooth, for the finite differences
        }
        layers.append(Dense(inputSize: 16, outputSize: 2, seed: 99))
        let network = Network(inputSize: 2, layers: layers)
        let check = gradientCheck(network, loss: CrossEntropy(), input: GradientCheckTests.input(seed: 1).reshaped(rows: 15, columns: 2),
                                  targets: oneHot((0..<15).map { $0 % 2 }, classCount: 2), epsilon: 1e-3)
        #expect(check.passes(tolerance: 3e-2), "\(check)")
        let data = twoSpirals(count: 100, seed: 3)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: Adam(learningRate: 0.01), batchSize: 16)
        for _ in 0..<30 { try trainer.trainEpoch(on: data) }
        #expect(try trainer.evaluate(on: data).accuracy! > 0.9)
        let path = "\(folder.path)/residual.safetensors"
        try network.save(to: path)
        let file = try SafetensorsFile(contentsOf: path)
        #expect(file.tensors["2.body.0.weight"]?.shape == [16, 16] && file.tensors["2.body.1.running_var"]?.shape == [16])
        let loaded = try Network.load(from: path)
        let x = randomMatrix(3, 2, seed: 7)
        #expect(loaded(x) == network(x))
    }
}

extension ResidualTests {
    @Test func matchesPyTorch() {
        let first = Dense(inputSize: 5, outputSize: 7), second = Dense(inputSize: 7, outputSize: 5)
        first.weight.assign(Matrix(rows: 5, columns: 7, values: GoldenResidual.w1))
        first.bias.assign(Matrix(rows: 1, columns: 7, values: GoldenResidual.b1))
        second.weight.assign(Matrix(rows: 7, columns: 5, values: GoldenResidual.w2))
        second.bias.assign(Matrix(rows: 1, columns: 5, values: GoldenResidual.b2))
        let block = Residual([first, Tanh(), second])
        let x = Matrix(rows: 4, columns: 5, values: GoldenResidual.x), dy = Matrix(rows: 4, columns: 5, values: GoldenResidual.dy)
        let y = Matrix(rows: 4, columns: 5), dx = Matrix(rows: 4, columns: 5)
        let scratch = Matrix(rows: 1, columns: block.scratchCount(rows: 4, inputSize: 5, backward: true))
        block.forward(output: y, input: x, context: LayerContext(mode: .training, scratch: scratch))
        block.backward(dInput: dx, dOutput: dy, input: x, output: y, context: LayerContext(mode: .training, scratch: scratch))
        expectClose(y.scalars, GoldenResidual.yExpected, "y")
        expectClose(dx.scalars, GoldenResidual.dxExpected, "dx")
        expectClose(first.weightGradient.scalars, GoldenResidual.dw1Expected, "dW1")
        expectClose(first.biasGradient.scalars, GoldenResidual.db1Expected, "db1")
        expectClose(second.weightGradient.scalars, GoldenResidual.dw2Expected, "dW2")
        expectClose(second.biasGradient.scalars, GoldenResidual.db2Expected, "db2")
    }
}
