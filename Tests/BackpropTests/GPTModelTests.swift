@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// The GPT model: generation with the key/value cache against full forward passes, saving and loading, and
/// `backprop text train --model gpt` / `text sample` as a user runs them, with their bad input.
@Suite("GPT: model, generation and command")
struct GPTModelTests {
    static func model(context: Int = 8, seed: UInt64 = 1) -> GPTModel {
        let model = GPTModel(vocabulary: Array("abcdefg\n".utf8).sorted(), layers: 2, heads: 2, width: 16, context: context, seed: seed)
        spreadParameters(model.gpt, seed: seed, scale: 0.3)  // larger than GPT-2's 0.02, so that outputs differ by position
        return model
    }

    /// The logits of the last step of `tokens` by a full forward pass of the plain layer (no cache).
    static func lastLogits(_ model: GPTModel, _ tokens: [Int]) -> [Float] {
        let logits = model.gpt(Matrix(rows: 1, columns: tokens.count, values: tokens.map(Float.init)))
        return Array(logits.scalars.suffix(model.vocabularySize))
    }

    @Test func cachedStepsMatchFullForwardPasses() {
        let model = Self.model()
        let tokens = [3, 1, 4, 1, 5, 2, 6, 0]
        let decoder = GPTModel.Decoder(model.gpt)
        for n in tokens.indices {
            decoder.step(token: tokens[n], position: n)
            expectClose(decoder.logits.scalars, Self.lastLogits(model, Array(tokens[...n])).map(Double.init),
                        relative: 1e-4, absolute: 1e-5, "position \(n)")
        }
    }

    /// Greedy decoding equals argmax over full forward passes of the window the documented rule gives (restart from
    /// the last ⌈T/2⌉ bytes when the window would pass T), computed here without the cache.
    @Test(arguments: [7, 8]) func greedyGenerationFollowsTheWindowRule(context: Int) throws {
        let model = Self.model(context: context, seed: 2)
        let prompt = Array("abc".utf8)
        let generated = try model.generate(length: 30, prompt: prompt, topK: 1)
        var tokens = try model.tokens(of: prompt).get(), start = 0, expected: [UInt8] = []
        for _ in 0..<30 {
            let logits = Self.lastLogits(model, Array(tokens[start...]))
            let next = logits.indices.max { logits[$0] < logits[$1] }!
            tokens.append(next)
            expected.append(model.vocabulary[next])
            if tokens.count - start > context { start = tokens.count - (context + 1) / 2 }
        }
        #expect(generated == expected)
        let sampled = try model.generate(length: 30, prompt: prompt, temperature: 1, topK: 3, seed: 5)
        #expect(sampled.count == 30 && sampled.allSatisfy(model.vocabulary.contains))
        #expect(try model.generate(length: 30, prompt: prompt, temperature: 1, topK: 3, seed: 5) == sampled)
        #expect(throws: TextModel.UnknownBytes.self) { try model.generate(length: 3, prompt: Array("xyz".utf8)) }
    }

    @Test func savesPyTorchNamesAndLoadsBack() throws {
        let folder = TemporaryFolder()
        let model = Self.model(), path = "\(folder.path)/gpt.safetensors"
        try model.save(to: path)
        let file = try SafetensorsFile(contentsOf: path)
        var expected: Set<String> = ["tok.weight", "pos.weight", "ln.weight"]
        for l in 0..<2 {
            for name in ["ln1.weight", "qkv.weight", "proj.weight", "ln2.weight", "up.weight", "down.weight"] { expected.insert("blocks.\(l).\(name)") }
        }
        #expect(Set(file.tensors.keys) == expected)
        #expect(file.tensors["blocks.0.qkv.weight"]!.shape == [48, 16] && file.tensors["blocks.1.up.weight"]!.shape == [64, 16])
        let loaded = try GPTModel.load(from: path)
        #expect(loaded.vocabulary == model.vocabulary && loaded.network.parameters.scalars == model.network.parameters.scalars)
        // Without Backprop's layer metadata (a state dict as PyTorch saves it) the sizes come from the shapes.
        var bare = file
        bare.metadata = [TextModel.vocabularyKey: file.metadata[TextModel.vocabularyKey]!, GPTModel.headsKey: "2"]
        let fromStateDict = try GPTModel.load(from: bare, path: "bare")
        #expect(fromStateDict.network.parameters.scalars == model.network.parameters.scalars)
        bare.metadata[GPTModel.headsKey] = nil
        #expect(throws: CheckpointError.self) { try GPTModel.load(from: bare, path: "bare") }
    }

    @Test func decayedRangesAreTheMatrices() {
        let model = Self.model()
        let ranges = model.network.matrixParameterRanges
        let decayed = ranges.reduce(0) { $0 + $1.count }
        // Every tensor but the 5 normalization scales of 16 decays.
        #expect(decayed == model.network.parameterCount - 5 * 16)
        #expect(ranges.count == 1 + 2 * 2)  // tok + pos, then qkv + proj and up + down of each block (split at the norms)
    }

    @Test func commandTrainsResumesAndSamples() throws {
        let folder = TemporaryFolder()
        let text = TextCommandTests.corpus(folder, count: 4000)
        let model = "\(folder.path)/gpt.safetensors", checkpoint = "\(folder.path)/ckpt.safetensors"
        let common = ["text", "train", "--model", "gpt", "--text", text, "--layers", "1", "--heads", "2", "--width", "16",
                      "--context", "16", "--batch-size", "4", "--warmup", "2", "--eval-interval", "5", "--threads", "1",
                      "--output", model, "--json"]
        let result = try runBackprop(common + ["--iterations", "10", "--checkpoint-every", "5", "--checkpoint", checkpoint])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        for (index, line) in lines.enumerated() {
            let object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(Set(object.keys) == ["iteration", "train_loss", "validation_loss", "validation_bits_per_character",
                                         "learning_rate", "seconds", "seconds_per_iteration"])
            #expect(object["iteration"] as? Int == 5 * (index + 1))
        }
        // Resumed from iteration 10 up to 15; a resumed run that has nothing left to do is an error.
        let resumed = try runBackprop(common + ["--iterations", "15", "--resume", checkpoint])
        #expect(resumed.status == 0 && resumed.stdout.split(separator: "\n").count == 1, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("\"iteration\":15"))
        let done = try runBackprop(common + ["--iterations", "10", "--resume", checkpoint])
        #expect(done.status == 1 && done.stderr.contains("already trained 10 iterations"), "\(done.stderr)")
        let sample = try runBackprop(["text", "sample", "--model", model, "--length", "50", "--top-k", "1", "--prime", "the "])
        #expect(sample.status == 0 && sample.stdout.utf8.count == 51, "\(sample.stderr)")
        let unknown = try runBackprop(["text", "sample", "--model", model, "--prime", "Qz"])
        #expect(unknown.status == 1 && unknown.stderr.contains("--prime: not in the model's vocabulary: 'Q', 'z'"), "\(unknown.stderr)")
        #expect(unknown.stderr.split(separator: "\n").count == 1)
    }

    @Test func badInputIsOneLineAndWritesNothing() throws {
        let folder = TemporaryFolder()
        let text = TextCommandTests.corpus(folder, count: 400)
        let output = "\(folder.path)/m.safetensors"
        func run(_ flags: [String], text: String = text) throws -> (status: Int32, stderr: String) {
            let result = try runBackprop(["text", "train", "--model", "gpt", "--text", text, "--threads", "1", "--output", output] + flags)
            return (result.status, result.stderr)
        }
        let long = try run(["--context", "64"])  // 400 bytes: the validation part is 40
        #expect(long.status == 1 && long.stderr.contains("shorter than a window of --context 64"), "\(long.stderr)")
        let heads = try run(["--heads", "3", "--width", "128"])
        #expect(heads.status == 64 && heads.stderr.contains("--heads 3 does not divide --width 128"), "\(heads.stderr)")
        let empty = "\(folder.path)/empty.txt", binary = "\(folder.path)/binary.txt"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        _ = FileManager.default.createFile(atPath: binary, contents: Data([0x7F, 0x45, 0x4C, 0x46, 0, 1, 2]))
        let emptyResult = try run([], text: empty), binaryResult = try run([], text: binary)
        #expect(emptyResult.status == 1 && emptyResult.stderr.contains("an empty file"), "\(emptyResult.stderr)")
        #expect(binaryResult.status == 1 && binaryResult.stderr.contains("a binary file"), "\(binaryResult.stderr)")
        for result in [long, emptyResult, binaryResult] { #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)") }
        let model = try run(["--model", "tcn"])
        #expect(model.status == 64 && model.stderr.contains("--model must be rnn or gpt"))
        #expect(!FileManager.default.fileExists(atPath: output))
    }
}
