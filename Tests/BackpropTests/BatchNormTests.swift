@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

@Suite("Batch normalization")
struct BatchNormTests {
    static func layer() -> BatchNorm {
        let layer = BatchNorm(featureCount: 5)
        layer.scale.assign(Matrix(rows: 1, columns: 5, values: GoldenBatchNorm.gamma))
        layer.shift.assign(Matrix(rows: 1, columns: 5, values: GoldenBatchNorm.beta))
        return layer
    }

    @Test func matchesPyTorchInTrainingAndEvaluation() {
        let layer = Self.layer()
        let x = Matrix(rows: 6, columns: 5, values: GoldenBatchNorm.x), dy = Matrix(rows: 6, columns: 5, values: GoldenBatchNorm.dy)
        let y = Matrix(rows: 6, columns: 5), dx = Matrix(rows: 6, columns: 5)
        let scratch = Matrix(rows: 1, columns: layer.scratchCount(rows: 6, inputSize: 5, backward: true))
        let training = LayerContext(mode: .training, scratch: scratch), evaluation = LayerContext(mode: .evaluation, scratch: scratch)
        layer.forward(output: y, input: x, context: training)
        layer.backward(dInput: dx, dOutput: dy, input: x, output: y, context: training)
        expectClose(y.scalars, GoldenBatchNorm.trainingY, "training y")
        expectClose(dx.scalars, GoldenBatchNorm.trainingDX, relative: 1e-4, absolute: 1e-6, "training dx")
        expectClose(layer.scaleGradient.scalars, GoldenBatchNorm.dGamma, "dγ")
        expectClose(layer.shiftGradient.scalars, GoldenBatchNorm.dBeta, "dβ")
        expectClose(layer.runningMean.scalars, GoldenBatchNorm.runningMean, "running mean")
        expectClose(layer.runningVariance.scalars, GoldenBatchNorm.runningVariance, "running variance")
        #expect(layer.batchesTracked.scalars == [1])
        layer.forward(output: y, input: x, context: evaluation)
        layer.backward(dInput: dx, dOutput: dy, input: x, output: y, context: evaluation)
        expectClose(y.scalars, GoldenBatchNorm.evaluationY, "evaluation y")
        expectClose(dx.scalars, GoldenBatchNorm.evaluationDX, "evaluation dx")
    }

    @Test(arguments: [true, false])
    func passesTheGradientCheck(training: Bool) {
        let layer = Self.layer()
        if !training { layer.runningVariance.fill(0.7); layer.runningMean.fill(0.2) }
        let result = gradientCheck(layer, input: Matrix(rows: 6, columns: 5, values: GoldenBatchNorm.x),
                                   mode: training ? .training : .evaluation)
        #expect(result.passes(tolerance: 1e-2), "\(result)")
    }

    @Test func trainsInANetworkAndRoundTripsThroughACheckpoint() throws {
        let folder = TemporaryFolder()
        let network = Network(inputSize: 2, layers: [Dense(inputSize: 2, outputSize: 8, seed: 1), BatchNorm(featureCount: 8),
                                                     ReLU(), Dense(inputSize: 8, outputSize: 2, seed: 2)])
        let data = twoSpirals(count: 40, seed: 3)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.1), batchSize: 16)
        for _ in 0..<3 { try trainer.trainEpoch(on: data) }
        let path = "\(folder.path)/bn.safetensors"
        try network.save(to: path)
        let file = try SafetensorsFile(contentsOf: path)
        #expect(file.tensors["1.running_mean"]?.shape == [8] && file.tensors["1.num_batches_tracked"]?.shape == [])
        #expect(file.tensors["1.num_batches_tracked"]?.values == [15])  // 3 epochs × 5 batches (80 samples / 16)
        let loaded = try Network.load(from: path)
        let x = randomMatrix(5, 2, seed: 4)
        #expect(loaded(x) == network(x))
    }
}
