@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// What a hostile or careless user tried (a helper session's sweep of 560 cases, 2026-11-30) and what it found:
/// each failure class, tested as a class.
@Suite("Hostile input, round three")
struct HostileInputTests {
    /// No run overwrites its own input: the corpus, the training or validation table, an IDX file of the data
    /// folder, or the checkpoint it resumes from (as --output or --plot; the checkpoint may keep its file).
    @Test func noOutputMayNameAnInput() throws {
        let folder = TemporaryFolder()
        let corpus = TextCommandTests.corpus(folder)
        let before = try Data(contentsOf: URL(fileURLWithPath: corpus))
        var result = try runBackprop(["text", "train", "--text", corpus, "--output", "\(folder.path)/./corpus.txt"])
        #expect(result.status == 1 && result.stderr.contains("is a text file of the corpus (--text)"), "\(result.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: corpus)) == before)

        let table = "\(folder.path)/fruit.csv"
        try FileManager.default.copyItem(atPath: "Examples/Tables/fruit.csv", toPath: table)
        let tableBytes = try Data(contentsOf: URL(fileURLWithPath: table))
        for flags in [["--output", table], ["--plot", table], ["--checkpoint-every", "1", "--checkpoint", table],
                      ["--validation", table, "--output", table]] {
            result = try runBackprop(["train", "--data", table, "--epochs", "1"] + flags)
            #expect(result.status == 1 && result.stderr.contains("table"), "\(flags): \(result.stderr)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: table)) == tableBytes)

        quadrantFolder(folder, count: 32, seed: 1)
        let images = "\(folder.path)/train-images-idx3-ubyte.gz"
        result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--epochs", "1", "--output", images])
        #expect(result.status == 1 && result.stderr.contains("is a data file (--data)"), "\(result.stderr)")

        let checkpoint = "\(folder.path)/run.ckpt"
        result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--epochs", "1", "--checkpoint-every", "1",
                                  "--checkpoint", checkpoint, "--output", "\(folder.path)/m.safetensors"])
        #expect(result.status == 0, "\(result.stderr)")
        result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--epochs", "2", "--resume", checkpoint,
                                  "--output", checkpoint])
        #expect(result.status == 1 && result.stderr.contains("the checkpoint being resumed"), "\(result.stderr)")
        result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--epochs", "2", "--resume", checkpoint,
                                  "--checkpoint-every", "1", "--checkpoint", checkpoint, "--output", "\(folder.path)/m.safetensors"])
        #expect(result.status == 0, "resuming into the same checkpoint file is allowed: \(result.stderr)")
    }

    /// Output paths that cannot be written are refused before training: a trailing slash, a name too long for the
    /// file system, a symbolic link (which the atomic rename would replace).
    @Test func impossibleOutputPathsAreRefusedBeforeTraining() throws {
        let folder = TemporaryFolder()
        let corpus = TextCommandTests.corpus(folder)
        try FileManager.default.createSymbolicLink(atPath: "\(folder.path)/link", withDestinationPath: corpus)
        for (output, message) in [("\(folder.path)/new/", "ends with '/'"), ("\(folder.path)/" + String(repeating: "a", count: 300), "too long"),
                                  ("\(folder.path)/link", "is a symbolic link")] {
            let result = try runBackprop(["text", "train", "--text", corpus, "--hidden", "4", "--output", output])
            #expect(result.status == 1 && result.stderr.contains(message) && result.stdout.isEmpty, "\(output): \(result.stderr)")
        }
    }

    /// Models and steps that do not fit in memory are refused before allocating, for the recurrent models and the
    /// text model as for --layers.
    @Test func recurrentModelsTooLargeForMemoryAreRefused() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 16, seed: 2)
        var result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--model", "lstm", "--hidden", "65536"])
        #expect(result.status == 1 && result.stderr.contains("needs about") && result.stderr.contains("GB"), "\(result.stderr)")
        result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--model", "gru", "--hidden", "4096",
                                  "--num-layers", "64"])
        #expect(result.status == 1 && result.stderr.contains("needs about"), "\(result.stderr)")
        let corpus = TextCommandTests.corpus(folder, count: 200_000)
        result = try runBackprop(["text", "train", "--text", corpus, "--hidden", "65536", "--batch-size", "10", "--sequence-length", "10"])
        #expect(result.status == 1 && result.stderr.contains("needs about"), "\(result.stderr)")
    }

    /// A table, like an IDX file or a text, must be a regular file: a FIFO with no writer would block for ever and
    /// /dev/zero never ends.
    @Test func tablesMustBeRegularFiles() throws {
        let folder = TemporaryFolder()
        let fifo = "\(folder.path)/table.csv"
        #expect(mkfifo(fifo, 0o600) == 0)
        for arguments in [["train", "--data", fifo], ["train", "--data", "/dev/zero"], ["text", "train", "--text", fifo]] {
            let result = try runBackprop(arguments + ["--epochs", "1"])
            #expect(result.status == 1 && result.stderr.contains("not a regular file"), "\(arguments): \(result.stderr)")
        }
    }

    /// A table model whose standardization was damaged (a zero scale, a wrong count) is refused by evaluate and
    /// predict instead of predicting NaN or stopping.
    @Test func aDamagedTableStandardizationIsRefused() throws {
        let folder = TemporaryFolder()
        let model = "\(folder.path)/fruit.safetensors"
        var result = try runBackprop(["train", "--data", "Examples/Tables/fruit.csv", "--epochs", "2", "--output", model])
        #expect(result.status == 0, "\(result.stderr)")
        var file = try SafetensorsFile(contentsOf: model)
        let json = try #require(file.metadata["table"])
        var schema = try #require(TableSchema(json: json))
        let standardization = try #require(schema.standardization)
        for damage in 0..<2 {
            var damaged = standardization
            if damage == 0 { damaged.featureScales[0] = 0 } else { damaged.featureMeans.removeLast() }
            schema.standardization = damaged
            file.metadata["table"] = schema.json
            try file.write(to: model)
            for command in ["evaluate", "predict"] {
                result = try runBackprop([command, "--model", model, "--data", "Examples/Tables/fruit.csv"])
                #expect(result.status == 1 && result.stderr.contains("standardization is damaged"), "\(command): \(result.stderr)")
            }
        }
    }

    /// Output that cannot be written (a full disk) is an error, not a crash and not a silent success.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/dev/full")))
    func aFullStandardOutputIsAnError() throws {
        let folder = TemporaryFolder()
        let corpus = TextCommandTests.corpus(folder), model = "\(folder.path)/m.safetensors"
        #expect(try runBackprop(["text", "train", "--text", corpus, "--hidden", "8", "--sequence-length", "10", "--batch-size", "8",
                                 "--output", model]).status == 0)
        for arguments in [["text", "sample", "--model", model, "--length", "100000"], ["text", "sample", "--model", model, "--length", "5"]] {
            let (status, _, message) = try runBackprop(arguments, standardOutput: FileHandle(forWritingAtPath: "/dev/full"))
            #expect(status == 1 && message.contains("cannot write to standard output"), "\(arguments): \(message)")
        }
    }

    /// Flags a recurrent model would ignore are refused.
    @Test func flagsTheRecurrentModelsIgnoreAreRefused() throws {
        for flags in [["--activation", "sigmoid"], ["--init", "xavier"]] {
            let result = try runBackprop(["train", "--model", "rnn", "--epochs", "1"] + flags)
            #expect(result.status == 64 && result.stderr.contains("does not take \(flags[0])"), "\(result.stderr)")
        }
    }

    /// Resuming on a table takes the checkpoint's schema: a category the checkpoint never saw is an error naming the
    /// cell (it was silently one-hot encoded afresh), and the saved standardization is kept, not recomputed.
    @Test func resumingOnATableTakesTheCheckpointsSchema() throws {
        let folder = TemporaryFolder()
        let checkpoint = "\(folder.path)/run.ckpt", model = "\(folder.path)/m.safetensors"
        var result = try runBackprop(["train", "--data", "Examples/Tables/fruit.csv", "--epochs", "1", "--checkpoint-every", "1",
                                      "--checkpoint", checkpoint, "--output", model])
        #expect(result.status == 0, "\(result.stderr)")
        let saved = try #require(TableSchema(json: try SafetensorsFile(contentsOf: checkpoint).metadata["table"] ?? ""))
        // The same rows with 'yellow' renamed 'purple', and heavier fruit (another mean, were it recomputed).
        let text = try String(contentsOfFile: "Examples/Tables/fruit.csv", encoding: .utf8)
        let renamed = "\(folder.path)/renamed.csv", heavier = "\(folder.path)/heavier.csv"
        try text.replacingOccurrences(of: "yellow", with: "purple").write(toFile: renamed, atomically: true, encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        let heavy = [lines[0]] + lines.dropFirst().map { line -> String in
            var cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            cells[0] = String((Double(cells[0]) ?? 0) + 500)
            return cells.joined(separator: ",")
        }
        try (heavy.joined(separator: "\n") + "\n").write(toFile: heavier, atomically: true, encoding: .utf8)
        result = try runBackprop(["train", "--data", renamed, "--epochs", "2", "--resume", checkpoint, "--output", model])
        #expect(result.status == 1 && result.stderr.contains("purple"), "\(result.stderr)")
        result = try runBackprop(["train", "--data", heavier, "--epochs", "2", "--resume", checkpoint, "--output", model])
        #expect(result.status == 0, "\(result.stderr)")
        let resumed = try #require(TableSchema(json: try SafetensorsFile(contentsOf: model).metadata["table"] ?? ""))
        #expect(resumed.standardization == saved.standardization)
    }
}
