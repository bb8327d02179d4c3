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

    /// BackpropagationThroughTime.md's text model, on a small text of its own.
    @Test func backpropagationThroughTime() throws {
        let folder = TemporaryFolder()
        let textFiles = ["\(folder.path)/text.txt"]
        let words = ["The ", "cat ", "sat ", "on ", "a ", "mat.\n", "dog ", "ran ", "far ", "away.\n"]
        var generator = SeededGenerator(seed: 2)
        let text = (0..<15_000).map { _ in words[generator.nextIndex(below: words.count)] }.joined()
        _ = FileManager.default.createFile(atPath: textFiles[0], contents: Data(text.utf8))
        var printed: [String] = []
        func print(_ line: String) { Swift.print(line); printed.append(line) }
        // --- BackpropagationThroughTime.md begins ---
        let corpus = try TextCorpus(files: textFiles)
        let model = TextModel(vocabulary: corpus.vocabulary, cell: .lstm, hiddenSize: 128)
        let trainer = TextTrainer(model: model, optimizer: Adam(learningRate: 0.002), sequenceLength: 50, batchSize: 50,
                                  clipNorm: 5)
        let trainLoss = try trainer.trainEpoch(corpus.training)
        let bits = try trainer.loss(on: corpus.validation) / log(2)
        print(String(decoding: try model.sample(length: 200, temperature: 0.8, prime: Array("The ".utf8)), as: UTF8.self))
        // --- BackpropagationThroughTime.md ends ---
        #expect(trainLoss.isFinite && bits < log2(Double(corpus.vocabulary.count)) && printed.count == 1 && printed[0].utf8.count == 200)
    }
}
