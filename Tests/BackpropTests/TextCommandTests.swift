@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// `backprop text train` and `backprop text sample`, run as a user would, and their bad input.
@Suite("The backprop command: text")
struct TextCommandTests {
    /// A corpus of `count` bytes of English-like text.
    static func corpus(_ folder: borrowing TemporaryFolder, name: String = "corpus.txt", count: Int = 6000) -> String {
        let words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "big", "red", "house", "."]
        var generator = SeededGenerator(seed: 7)
        var text = ""
        while text.utf8.count < count { text += words[Int(generator.next() % UInt64(words.count))] + (generator.next() % 9 == 0 ? "\n" : " ") }
        let path = "\(folder.path)/\(name)"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8.prefix(count)))
        return path
    }

    @Test func trainsPrintsTheJSONFieldsSavesAndSamples() throws {
        let folder = TemporaryFolder()
        let text = Self.corpus(folder), model = "\(folder.path)/m.safetensors"
        let result = try runBackprop(["text", "train", "--text", text, "--hidden", "16", "--sequence-length", "10",
                                      "--batch-size", "8", "--epochs", "2", "--threads", "1", "--output", model, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        for (index, line) in lines.enumerated() {
            let object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(Set(object.keys) == ["epoch", "train_loss", "validation_loss", "validation_bits_per_character",
                                         "epoch_seconds", "characters_per_second"])
            #expect(object["epoch"] as? Int == index + 1)
            let nats = try #require(object["validation_loss"] as? Double)
            let bits = try #require(object["validation_bits_per_character"] as? Double)
            #expect(abs(bits - nats / log(2)) < 1e-9 && nats > 0 && nats < log(15))  // better than uniform over the vocabulary
        }
        let sample = try runBackprop(["text", "sample", "--model", model, "--length", "120", "--prime", "the ", "--seed", "3"])
        #expect(sample.status == 0, "\(sample.stderr)")
        #expect(sample.stdout.utf8.count == 121)  // 120 bytes and a newline
        let again = try runBackprop(["text", "sample", "--model", model, "--length", "120", "--prime", "the ", "--seed", "3"])
        #expect(again.stdout == sample.stdout)
        let unknown = try runBackprop(["text", "sample", "--model", model, "--prime", "xyzQ"])
        #expect(unknown.status == 1 && unknown.stderr.contains("--prime: not in the model's vocabulary: 'Q', 'x', 'y', 'z'"), "\(unknown.stderr)")
    }

    @Test(arguments: ["empty", "binary", "short", "missing", "directory"])
    func badCorporaAreOneLineAndStatusOne(_ kind: String) throws {
        let folder = TemporaryFolder()
        let path = "\(folder.path)/\(kind).txt"
        switch kind {
        case "empty": _ = FileManager.default.createFile(atPath: path, contents: Data())
        case "binary": _ = FileManager.default.createFile(atPath: path, contents: Data([0x7F, 0x45, 0x4C, 0x46, 0, 1, 2]))
        case "short": _ = FileManager.default.createFile(atPath: path, contents: Data(String(repeating: "abc ", count: 100).utf8))
        case "directory": try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        default: break
        }
        let output = "\(folder.path)/m.safetensors"
        let result = try runBackprop(["text", "train", "--text", path, "--output", output, "--threads", "1"])
        let expected = ["empty": "an empty file", "binary": "a binary file", "short": "shorter than one sequence of 50 per stream for 50 streams",
                        "missing": "no such file", "directory": "it is a directory"][kind]!
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains(path) && result.stderr.contains(expected), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1 && !FileManager.default.fileExists(atPath: output))
    }

    @Test func absurdFlagsAreUsageErrors() throws {
        let folder = TemporaryFolder()
        let text = Self.corpus(folder)
        for (flags, message) in [(["--cell", "tcn"], "--cell must be lstm, gru or rnn"), (["--sequence-length", "0"], "--sequence-length must be"),
                                 (["--batch-size", "-3"], "--batch-size must be"), (["--dropout", "0.5"], "--dropout is dropout between stacked layers"),
                                 (["--learning-rate", "nan"], "--learning-rate must be positive"),
                                 (["--batch-size", "100000", "--sequence-length", "100000"], "too large a step"),
                                 (["--layers", "2"], "--layers is for --model gpt"), (["--context", "32"], "--context is for --model gpt"),
                                 (["--iterations", "10"], "--iterations is for --model gpt")] {
            let result = try runBackprop(["text", "train", "--text", text] + flags)
            #expect(result.status == 64 && result.stderr.contains(message), "\(flags): \(result.stderr)")
        }
        let quiet = try runBackprop(["text", "train", "--text", text, "--hidden", "4", "--sequence-length", "10", "--batch-size", "8",
                                     "--quiet", "--threads", "1", "--output", "\(folder.path)/q.safetensors"])
        #expect(quiet.status == 0 && quiet.stdout.isEmpty && quiet.stderr.isEmpty, "\(quiet.stdout) \(quiet.stderr)")
        let noText = try runBackprop(["text", "train"])
        #expect(noText.status == 64 && noText.stderr.contains("--text"))
        let notAModel = try runBackprop(["text", "sample", "--model", text])
        #expect(notAModel.status == 1 && notAModel.stderr.contains(text))
    }
}
