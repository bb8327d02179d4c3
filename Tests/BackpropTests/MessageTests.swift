@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// Messages that named the wrong problem (the rest of the reliability issue): each now says what is really wrong,
/// in one line, with status 1 (64 for a usage error).
@Suite("Hostile input, round four: messages that say what is wrong")
struct MessageTests {
    /// Expects one line on standard error, starting "backprop: error: ", holding every one of `parts`.
    static func expectOneLine(_ result: (status: Int32, stdout: String, stderr: String), status: Int32, _ parts: [String],
                              _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == status, "\(comment): status \(result.status): \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.hasPrefix("backprop: error: ") && result.stderr.split(separator: "\n").count == 1,
                "\(comment): \(result.stderr)", sourceLocation: sourceLocation)
        for part in parts {
            #expect(result.stderr.contains(part), "\(comment): '\(part)' missing from \(result.stderr)", sourceLocation: sourceLocation)
        }
    }

    /// A number the flag's type cannot hold is out of range (it was read as infinity or 0 and reported as if the user
    /// had typed that, or as a bare "is invalid"); a fraction where a whole number is needed, and text, say so.
    @Test(arguments: [
        (["train", "--learning-rate", "1e400"], "out of range (the largest magnitude a 32-bit float holds is 3.4028235e+38)"),
        (["train", "--learning-rate=1e39"], "out of range (the largest magnitude a 32-bit float holds"),
        (["train", "--momentum", "1e-50"], "out of range (the smallest non-zero magnitude a 32-bit float holds is 1e-45)"),
        (["train", "--clip-value", "-1e400"], "out of range"),
        (["train", "--validation-fraction", "1e400"], "out of range (the largest magnitude a 64-bit float holds"),
        (["train", "--epochs", "99999999999999999999"], "out of range (a whole number from -9223372036854775808 to 9223372036854775807)"),
        (["train", "--seed", "-1"], "out of range (a whole number from 0 to 18446744073709551615)"),
        (["train", "--batch-size", "6.5"], "not a whole number"),
        (["evaluate", "--model", "m.safetensors", "--threads", "1e3"], "not a whole number"),
        (["predict", "--model", "m.safetensors", "--index", "18446744073709551616"], "out of range"),
        (["text", "train", "--text", "corpus.txt", "--learning-rate", "1e400"], "out of range"),
        (["text", "sample", "--model", "m.safetensors", "--temperature", "1e400"], "out of range"),
        (["rl", "train", "--gamma", "1e999"], "out of range"),
        (["rl", "play", "--model", "m.safetensors", "--episodes", "many"], "not a number"),
    ])
    func aNumberTheFlagCannotHoldIsOutOfRange(_ arguments: [String], _ message: String) throws {
        let result = try runBackprop(arguments)
        let value = arguments.last!.split(separator: "=").last!
        Self.expectOneLine(result, status: 64, ["The value '\(value)' is invalid for '", message], "\(arguments)")
        #expect(!result.stderr.contains("got inf") && !result.stderr.contains("got 0.0"), "\(result.stderr)")
    }

    /// Infinity typed as such is refused by the flag's own check, which says that the value must be finite.
    @Test func infinityTypedAsSuchMustBeFinite() throws {
        for (arguments, message) in [(["train", "--learning-rate", "inf"], "--learning-rate must be positive and finite; got inf"),
                                     (["rl", "train", "--learning-rate", "+infinity"], "--learning-rate must be positive and finite; got inf"),
                                     (["train", "--weight-decay", "inf"], "--weight-decay must be finite and ≥ 0; got inf")] {
            Self.expectOneLine(try runBackprop(arguments), status: 64, [message], "\(arguments)")
        }
    }

    /// Every option's default is shown once (ArgumentParser adds "(default: …)" itself to an option with a default
    /// value, and some help texts said it too), and no option lists its values twice.
    @Test(arguments: [["train"], ["evaluate"], ["predict"], ["rl", "train"], ["rl", "play"], ["text", "train"], ["text", "sample"]])
    func helpShowsEachDefaultOnce(_ command: [String]) throws {
        let result = try runBackprop(command + ["--help"])
        #expect(result.status == 0)
        // One entry per option: its line and the indented lines that continue it.
        var entries: [String] = []
        var inOptions = false
        for line in result.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("OPTIONS:") { inOptions = true; continue }
            guard inOptions else { continue }
            if line.hasPrefix("  -") { entries.append(line.trimmingCharacters(in: .whitespaces)) }
            else if line.hasPrefix("    "), !entries.isEmpty { entries[entries.count - 1] += " " + line.trimmingCharacters(in: .whitespaces) }
        }
        #expect(entries.count > 3, "\(result.stdout)")
        for entry in entries {
            #expect(entry.components(separatedBy: "default:").count <= 2, "\(command): \(entry)")
            if let values = entry.range(of: "(values: ") {
                let list = entry[values.upperBound...].prefix { $0 != ";" && $0 != ")" }.components(separatedBy: ", ")
                #expect(list.count < 2 || !entry[..<values.lowerBound].contains("\(list[0]), \(list[1])"), "\(command): \(entry)")
            }
        }
    }

    /// A label outside the model's classes names the label, the model's number of classes and the file, for a model of
    /// fewer classes than the data has and for data with more classes than the model.
    @Test(arguments: [(10, 12), (3, 10)])
    func aLabelOutsideTheModelsClassesNamesAll(_ modelClasses: Int, _ dataClasses: Int) throws {
        let folder = TemporaryFolder()
        HostileDataTests.folder(folder, train: 30, test: 30, classes: dataClasses)
        let model = "\(folder.path)/m.safetensors"
        try Network(sizes: [16, modelClasses], activation: .relu, initializer: .heNormal, seed: 1).save(to: model)
        let labels = "\(folder.path)/t10k-labels-idx1-ubyte.gz"
        for command in [["evaluate"], ["predict", "--index", "0"]] {
            let result = try runBackprop(command + ["--model", model, "--data", folder.path])
            Self.expectOneLine(result, status: 1, ["\(labels): label \(modelClasses) (item \(modelClasses))",
                                                   "outside the model's \(modelClasses) classes (0...\(modelClasses - 1))", model],
                               "\(command)")
        }
        let result = try runBackprop(["train", "--data", folder.path, "--layers", "16-\(modelClasses)", "--epochs", "1"])
        Self.expectOneLine(result, status: 1, ["\(folder.path)/train-labels-idx1-ubyte.gz: label \(modelClasses) (item \(modelClasses))",
                                               "outside the network's \(modelClasses) classes", "--layers 16-\(modelClasses)"])
    }

    /// Image and label files that disagree on the count name both files and both counts; a file whose header
    /// disagrees with its size names the dimensions, the size they need and the size found.
    @Test func countMessagesNameBothFilesAndCounts() throws {
        let folder = TemporaryFolder()
        HostileDataTests.folder(folder, train: 20, test: 20)
        folder.write("t10k-labels-idx1-ubyte.gz", idx([19], [UInt8](repeating: 1, count: 19)))
        let model = "\(folder.path)/m.safetensors"
        try Network(sizes: [16, 4], activation: .relu, initializer: .heNormal, seed: 1).save(to: model)
        var result = try runBackprop(["evaluate", "--model", model, "--data", folder.path])
        Self.expectOneLine(result, status: 1, ["\(folder.path)/t10k-images-idx3-ubyte.gz holds 20 images but \(folder.path)/t10k-labels-idx1-ubyte.gz holds 19 labels"])
        // Raw images whose header says 20 images of 4×4 but that hold 19 and a half.
        try FileManager.default.removeItem(atPath: "\(folder.path)/t10k-images-idx3-ubyte.gz")
        folder.write("t10k-images-idx3-ubyte", idx([20, 4, 4], [UInt8](repeating: 0, count: 19 * 16 + 8)))
        folder.write("t10k-labels-idx1-ubyte.gz", idx([20], [UInt8](repeating: 1, count: 20)))
        result = try runBackprop(["evaluate", "--model", model, "--data", folder.path])
        Self.expectOneLine(result, status: 1, ["\(folder.path)/t10k-images-idx3-ubyte: truncated: its header gives 20×4×4 elements (336 bytes with the 16-byte header), but the file has 328 bytes (8 missing)"])
    }

    /// `rl train` with an absurd learning rate: the message is about the episode and the learning rate (it spoke of
    /// "epoch 0, batch 0", and "-nan").
    @Test func anRLRunThatDivergesNamesTheEpisodeAndTheLearningRate() throws {
        let result = try runBackprop(["rl", "train", "--learning-rate", "1e30", "--episodes", "5", "--quiet"])
        Self.expectOneLine(result, status: 1, ["episode 2: training diverged: the update after it gave a loss of NaN; try a lower --learning-rate than 1e+30"])
        #expect(!result.stderr.contains("epoch") && !result.stderr.contains("-nan"), "\(result.stderr)")
    }

    /// `text sample --prime` takes the bytes as the shell passed them, UTF-8 or not (Swift's `CommandLine.arguments`
    /// turns a byte that is not UTF-8 into U+FFFD); bytes outside the vocabulary are named as \xNN.
    @Test func aPrimeOfAnyBytesIsTakenAsGiven() throws {
        let folder = TemporaryFolder()
        // A Latin-1 corpus: é is the single byte E9, not valid UTF-8 on its own.
        var corpus: [UInt8] = []
        for i in 0..<800 { corpus += Array((i % 3 == 0 ? "the cat sat on the mat. " : "le caf").utf8) + (i % 3 == 0 ? [] : [0xE9, 0x20]) }
        let text = folder.write("latin1.txt", corpus), model = "\(folder.path)/m.safetensors"
        let trained = try runBackprop(["text", "train", "--text", text, "--hidden", "8", "--sequence-length", "10", "--batch-size", "8",
                                       "--threads", "1", "--quiet", "--output", model])
        #expect(trained.status == 0, "\(trained.stderr)")
        func sample(prime: String) throws -> (status: Int32, stdout: String, stderr: String) {
            // The shell's printf makes the bytes; Foundation's Process could pass only UTF-8.
            try runProcess(URL(fileURLWithPath: "/bin/sh"),
                           ["-c", "exec \"$0\" text sample --model \"$1\" --length 20 --prime \"$(printf '\(prime)')\"",
                            backpropExecutable.path, model])
        }
        let latin1 = try sample(prime: "le caf\\351")  // octal 351 = E9
        #expect(latin1.status == 0 && latin1.stderr.isEmpty, "\(latin1.stderr)")
        let unknown = try sample(prime: "caf\\303\\251\\377")  // é in UTF-8 (C3 A9), and FF
        Self.expectOneLine(unknown, status: 1, ["--prime: not in the model's vocabulary: \\xA9, \\xC3, \\xFF"])
        let dashes = try sample(prime: "\\055\\055the")  // a value that looks like a flag is still the prime
        Self.expectOneLine(dashes, status: 1, ["--prime: not in the model's vocabulary: '-'"])
    }

    /// `--loss` with a table whose target is learnt by regression (inferred from its numbers) is refused, naming
    /// the conflict, before training (it was silently ignored).
    @Test func aLossForClassificationWithARegressionTableIsRefused() throws {
        let folder = TemporaryFolder()
        let output = "\(folder.path)/m.safetensors"
        for loss in ["cross-entropy", "binary-cross-entropy"] {
            let result = try runBackprop(["train", "--data", "Examples/Tables/houses.csv", "--target", "price_k", "--loss", loss,
                                          "--epochs", "1", "--output", output])
            Self.expectOneLine(result, status: 1, ["--loss \(loss) is for classification, but the target 'price_k' of Examples/Tables/houses.csv",
                                                   "learnt by regression", "--task classification"], loss)
            #expect(result.stdout.isEmpty && !FileManager.default.fileExists(atPath: output))
        }
    }
}
