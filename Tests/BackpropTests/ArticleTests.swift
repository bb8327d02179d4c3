@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// The DocC articles' examples, verbatim, so that they keep compiling and saying what they do.
@Suite("Article examples")
struct ArticleTests {
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Dataset.defaultDirectory)))
    func writingATrainingLoop() throws {
        var losses: [Float] = []
        func print(_ line: String) { Swift.print(line); losses.append(Float(line.split(separator: " ").last!)!) }
        // --- WritingATrainingLoop.md begins ---
        let (train, _) = try Dataset.mnist()
        let autoencoder = Network(inputSize: 784, layers: [
            Dense(inputSize: 784, outputSize: 32), ReLU(), Dense(inputSize: 32, outputSize: 784),
        ], initializer: .heNormal, seed: 0)
        let trainer = Trainer(network: autoencoder, loss: BinaryCrossEntropy(), optimizer: Adam(learningRate: 0.002),
                              batchSize: 64)
        var generator = SeededGenerator(seed: 1)
        for step in 1...1000 {
            let (images, _) = train.batch(at: (0..<64).map { _ in generator.nextIndex(below: train.count) })
            let loss = try trainer.trainStep(input: images, targets: images)  // the image is its own target
            if step % 250 == 0 { print("step \(step): reconstruction loss \(loss)") }
        }
        let (images, _) = train.batch(at: 0..<8)
        let reconstructions = sigmoid(autoencoder(images))  // 8 × 784, pixels in (0, 1)
        // --- WritingATrainingLoop.md ends ---
        let blank = BinaryCrossEntropy()(Matrix(rows: 8, columns: 784), targets: images)  // every pixel guessed at ½
        Swift.print("all-½ loss \(blank)")
        #expect(losses.count == 4 && losses.last! < 0.5 * blank && losses.last! < losses.first!, "\(losses) against \(blank)")
        #expect(reconstructions.scalars.allSatisfy { $0 > 0 && $0 < 1 })
    }
}
