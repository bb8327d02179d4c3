@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// The character-level language model: its corpus, its training loop against torch_charlm.py's step by step
/// (Tests/Fixtures/golden_charlm.py), sampling, saving, and the per-step dense layer.
@Suite("Text models")
struct TextModelTests {
    @Test func theCorpusIsItsDistinctBytesAndTheLastFivePercentValidates() throws {
        let corpus = TextCorpus(bytes: Array("banana bread".utf8))
        #expect(corpus.vocabulary == Array(" abdenr".utf8))
        #expect(corpus.ids.map { corpus.vocabulary[Int($0)] } == Array("banana bread".utf8))
        #expect(corpus.validationStart == 11)  // ⌊0.95·12⌋
        // Streams of ⌊(count − 1)/N⌋ bytes, whole chunks of T: 11 training bytes, 2 streams of 5, chunks of 2 → 2.
        #expect(TextCorpus.chunkCount(corpus.training, streams: 2, sequenceLength: 2) == 2)
        #expect(TextCorpus.chunkCount(corpus.validation, streams: 1, sequenceLength: 1) == 0)
    }

    @Test func unusableFilesAreErrorsThatNameThem() throws {
        let folder = TemporaryFolder()
        let empty = "\(folder.path)/empty.txt", binary = "\(folder.path)/binary.bin", text = "\(folder.path)/a.txt"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        _ = FileManager.default.createFile(atPath: binary, contents: Data([72, 105, 0, 1, 2]))
        _ = FileManager.default.createFile(atPath: text, contents: Data("hello".utf8))
        #expect(throws: DataError.unexpectedContent(path: empty, expected: "text", found: "an empty file")) { try TextCorpus(files: [text, empty]) }
        #expect(throws: DataError.unexpectedContent(path: binary, expected: "text", found: "a binary file (a NUL byte at offset 2)")) {
            try TextCorpus(files: [binary])
        }
        #expect(throws: DataError.fileNotFound(path: "\(folder.path)/none")) { try TextCorpus(files: ["\(folder.path)/none"]) }
        #expect(throws: DataError.unreadable(path: folder.path, reason: "it is a directory")) { try TextCorpus(files: [folder.path]) }
        #expect(try TextCorpus(files: [text, text]).ids.count == 10)
    }

    /// A whole epoch of torch_charlm.py's loop — one-hot, LSTM, dense head, mean cross-entropy, state carried with its
    /// gradient cut, global norm clipped (0.5, so that it acts), Adam — step by step against PyTorch's: every
    /// step's loss, every parameter after the epoch, and the validation loss.
    @Test func anEpochMatchesPyTorchsStepByStep() throws {
        let corpus = TextCorpus(bytes: Array(GoldenCharLM.corpus.utf8))
        let model = TextModel(vocabulary: corpus.vocabulary, cell: .lstm, hiddenSize: GoldenCharLM.hidden)
        try model.network.loadStateDict(Dictionary(uniqueKeysWithValues: GoldenCharLM.before.map { name, shape, values in
            (name, SafetensorsFile.Tensor(shape: shape, values: values))
        }))
        let trainer = TextTrainer(model: model, optimizer: Adam(learningRate: 0.01), sequenceLength: GoldenCharLM.sequenceLength,
                                  batchSize: GoldenCharLM.streams, clipNorm: 0.5)
        var losses: [Float] = []
        _ = try trainer.trainEpoch(corpus.training) { _, _, loss in losses.append(loss) }
        expectClose(losses, GoldenCharLM.losses, relative: 1e-5, "losses")
        let names = model.network.stateDict.map(\.name)
        for (name, expected) in GoldenCharLM.after {
            let index = try #require(names.firstIndex(of: name))
            expectClose(model.network.stateDict[index].values, expected, relative: 1e-4, absolute: 1e-5, "\(name)")
        }
        #expect(abs(try trainer.loss(on: corpus.validation) - GoldenCharLM.validationLoss) < 1e-4 * GoldenCharLM.validationLoss)
    }

    @Test func samplingIsSeededStaysInTheVocabularyAndRefusesUnknownPrimeBytes() throws {
        let corpus = TextCorpus(bytes: Array("abc abc abd\n".utf8))
        let model = TextModel(vocabulary: corpus.vocabulary, hiddenSize: 8, seed: 3)
        let a = try model.sample(length: 200, temperature: 0.8, prime: Array("ab".utf8), seed: 1)
        let b = try model.sample(length: 200, temperature: 0.8, prime: Array("ab".utf8), seed: 1)
        let c = try model.sample(length: 200, temperature: 0.8, prime: Array("ab".utf8), seed: 2)
        #expect(a == b && a != c && a.count == 200)
        #expect(Set(a).isSubset(of: Set(corpus.vocabulary)))
        #expect(throws: TextModel.UnknownBytes.self) { try model.sample(length: 5, prime: Array("xyz".utf8)) }
        guard case .failure(let unknown) = model.indices(of: Array("zaq".utf8)) else { Issue.record("q and z are not in the vocabulary"); return }
        #expect(unknown.description == "not in the model's vocabulary: 'q', 'z'")
        // A very low temperature always picks the most likely byte.
        let greedy = try model.sample(length: 50, temperature: 1e-4, seed: 1), again = try model.sample(length: 50, temperature: 1e-4, seed: 9)
        #expect(greedy == again)
    }

    @Test func aSavedModelLoadsWithItsVocabularyAndSamplesTheSame() throws {
        let folder = TemporaryFolder()
        let model = TextModel(vocabulary: Array("\n abc".utf8), cell: .gru, hiddenSize: 6, numLayers: 2, seed: 4)
        let path = "\(folder.path)/text.safetensors"
        try model.save(to: path)
        let loaded = try TextModel.load(from: path)
        #expect(loaded.vocabulary == model.vocabulary)
        #expect(loaded.network.stateDict.map(\.name) == ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0",
                                                         "rnn.weight_ih_l1", "rnn.weight_hh_l1", "rnn.bias_ih_l1", "rnn.bias_hh_l1",
                                                         "head.weight", "head.bias"])
        #expect(try loaded.sample(length: 100, seed: 5) == model.sample(length: 100, seed: 5))
        // An image model is not a text model.
        let network = Network(inputSize: 4, layers: [Dense(inputSize: 4, outputSize: 2)])
        try network.save(to: "\(folder.path)/dense.safetensors")
        #expect(throws: CheckpointError.self) { try TextModel.load(from: "\(folder.path)/dense.safetensors") }
    }

    /// TimeDistributed(Dense) is the dense layer applied to each step's row, and passes the gradient check.
    @Test func timeDistributedIsTheLayerOnEveryStep() {
        let dense = Dense(inputSize: 3, outputSize: 2, seed: 1)
        let layer = TimeDistributed(dense, stepSize: 3)
        let x = randomMatrix(4, 12, seed: 2, in: -1...1)
        let y = layer(x), rows = dense(x.reshaped(rows: 16, columns: 3))
        #expect(y.rows == 4 && y.columns == 8 && y.scalars == rows.scalars)
        #expect(layer.parameterNames.map(\.name) == ["weight", "bias"])
        #expect(gradientCheck(layer, input: x).passes(tolerance: 1e-2))
    }
}
