@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// The README's example, verbatim but for the epoch count, so that it keeps compiling and working.
@Suite("README example")
struct ReadmeExampleTests {
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Dataset.defaultDirectory)))
    func readmeExample() throws {
        // --- README begins ---
        let (train, test) = try Dataset.mnist()  // Fashion-MNIST, from /usr/share/datasets/fashion-mnist
        let network = Network(sizes: [784, 128, 10], activation: .relu, initializer: .heNormal, seed: 0)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.1),
                              batchSize: 64, seed: 0)
        for _ in 1...1 {
            let epoch = try trainer.trainEpoch(on: train)
            let result = try trainer.evaluate(on: test)
            print("epoch \(epoch.epoch): train loss \(epoch.trainLoss), test accuracy \(result.accuracy!)")
        }
        let image = Matrix(rows: 1, columns: 784)  // one all-black image, pixels in [0, 1]
        let probabilities = softmax(network(image))  // 1 × 10
        // --- README ends ---
        #expect(try trainer.evaluate(on: test).accuracy! > 0.78)
        #expect(abs(probabilities.scalars.reduce(0, +) - 1) < 1e-5)
    }
}
