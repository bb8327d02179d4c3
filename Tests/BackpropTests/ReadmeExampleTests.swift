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

    /// The README's "Serving a model", verbatim but for the file's path.
    @Test func servingExample() throws {
        let network = Network(sizes: [784, 128, 10], activation: .relu, initializer: .heNormal, seed: 0)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("serving-\(UUID()).safetensors").path
        try Checkpoint.save(network, to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        // --- README begins ---
        let model = try Checkpoint.load(from: path).network.frozen()  // at start-up
        let workspace = Workspace(for: model, capacity: 32)  // one per thread: the largest batch it will run

        func classify(_ batch: Matrix) -> [Int] {  // batch: N × 784, N ≤ 32, pixels in [0, 1]
            let logits = model.forward(batch, workspace: workspace)  // a view in the workspace; allocates nothing
            return (0..<batch.rows).map { row in (0..<logits.columns).max { logits[row, $0] < logits[row, $1] }! }
        }
        // --- README ends ---
        let batch = randomMatrix(32, 784, seed: 1, in: 0...1)
        let expected = network(batch)
        #expect(classify(batch) == (0..<32).map { argmax(expected, row: $0) })
    }
}
