@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// What this round's fuzz targets (Fuzz/) and measurement (Scripts/hostile_inputs.py) found, each tested as a class.
@Suite("Hostile input found by fuzzing and by Scripts/hostile_inputs.py")
struct FuzzAndSweepFindingsTests {
    /// A checkpoint counting more epochs or optimizer steps than any run reaches is refused: a step count of Int.max
    /// trapped at the first step after resuming, with every optimizer that counts its steps.
    @Test(arguments: ["adam", "momentum", "rmsprop", "adagrad", "adadelta"])
    func aCheckpointsCountsMustBeReachable(_ optimizer: String) throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 20, seed: 1)
        let checkpoint = "\(folder.path)/run.ckpt"
        let common = ["train", "--data", folder.path, "--layers", "16-4", "--optimizer", optimizer, "--quiet"]
        var result = try runBackprop(common + ["--epochs", "1", "--checkpoint-every", "1", "--checkpoint", checkpoint])
        #expect(result.status == 0, "\(result.stderr)")
        for (key, value, epochs) in [(TrainingCheckpoint.Key.optimizerSteps, "9223372036854775807", "2"),
                                     (TrainingCheckpoint.Key.epoch, "9007199254740993", "9007199254740994")] {
            var file = try SafetensorsFile(contentsOf: checkpoint)
            let good = file
            file.metadata[key] = value
            try file.write(to: checkpoint)
            result = try runBackprop(common + ["--epochs", epochs, "--resume", checkpoint])
            #expect(result.status == 1 && result.stderr.contains("neither can be above 2^53") && result.stderr.split(separator: "\n").count == 1,
                    "\(optimizer) \(key): \(result.status) \(result.stderr)")
            try good.write(to: checkpoint)
        }
    }

    /// A table model or checkpoint whose saved standardization does not fit its schema (a scale missing, target
    /// statistics of the wrong width or on a classification target) is refused by every command that reads it,
    /// `train --resume` included (it trapped there: the standardization was applied before any check).
    @Test func aDamagedTableStandardizationIsRefusedEverywhere() throws {
        let folder = TemporaryFolder()
        let checkpoint = "\(folder.path)/run.ckpt", regression = "\(folder.path)/houses.ckpt"
        var result = try runBackprop(["train", "--data", "Examples/Tables/fruit.csv", "--epochs", "1", "--checkpoint-every", "1",
                                      "--checkpoint", checkpoint, "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        result = try runBackprop(["train", "--data", "Examples/Tables/houses.csv", "--target", "price_k", "--epochs", "1",
                                  "--checkpoint-every", "1", "--checkpoint", regression, "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        for (path, table, target, damage) in [(checkpoint, "fruit.csv", "fruit", 0), (checkpoint, "fruit.csv", "fruit", 1),
                                              (regression, "houses.csv", "price_k", 2)] {
            var file = try SafetensorsFile(contentsOf: path)
            let good = file
            var schema = try #require(TableSchema(json: file.metadata["table"] ?? ""))
            var standardization = try #require(schema.standardization)
            switch damage {
            case 0: standardization.featureScales.removeLast()  // a scale missing
            case 1: (standardization.targetMeans, standardization.targetScales) = ([0], [1])  // target statistics for classes
            default: (standardization.targetMeans, standardization.targetScales) = ([0, 0], [1, 1])  // two for one output
            }
            schema.standardization = standardization
            file.metadata["table"] = schema.json
            try file.write(to: path)
            let before = try Data(contentsOf: URL(fileURLWithPath: path))
            for arguments in [["train", "--data", "Examples/Tables/\(table)", "--target", target, "--epochs", "2", "--resume", path],
                              ["evaluate", "--model", path, "--data", "Examples/Tables/\(table)"],
                              ["predict", "--model", path, "--data", "Examples/Tables/\(table)"]] {
                result = try runBackprop(arguments)
                #expect(result.status == 1 && result.stderr.contains("\(path): its table standardization is damaged")
                        && result.stderr.split(separator: "\n").count == 1, "damage \(damage), \(arguments[0]): \(result.status) \(result.stderr)")
            }
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
            try good.write(to: path)
        }
    }
}

/// What this round's measurement (Scripts/hostile_inputs.py) found.
@Suite("Hostile input, round four: found by measurement")
struct MeasurementFindingsTests {
    /// Runs `arguments` with standard output the write end of a pipe whose read end is closed, and SIGPIPE at its
    /// default action (as a shell leaves it, whatever the test runner does with it).
    static func runIntoClosedPipe(_ arguments: [String]) throws -> (status: Int32, signal: Int32, stderr: String) {
        var output: [Int32] = [0, 0], error: [Int32] = [0, 0]
        #expect(pipe(&output) == 0 && pipe(&error) == 0)
        close(output[0])
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, error[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))
        let argv = ([backpropExecutable.path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, backpropExecutable.path, &actions, &attributes, argv, environ)
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attributes)
        close(output[1])
        close(error[1])
        #expect(spawned == 0)
        let message = FileHandle(fileDescriptor: error[0], closeOnDealloc: true).readDataToEndOfFile()
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let signal = status & 0x7F, code = (status >> 8) & 0xFF
        return (signal == 0 ? code : -1, signal, String(decoding: message, as: UTF8.self))
    }

    /// Output that cannot be written is one line and status 1 for every command: help text into a full disk (it
    /// exited 0), and any output into a closed pipe (the process died of SIGPIPE, with no message).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/dev/full")))
    func outputThatCannotBeWrittenIsAnErrorEverywhere() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 20, seed: 1)
        let model = "\(folder.path)/m.safetensors"
        try Network(sizes: [16, 4], activation: .relu, initializer: .heNormal, seed: 1).save(to: model)
        for arguments in [["--help"], ["train", "--help"], ["help", "text", "sample"]] {
            let (status, _, message) = try runBackprop(arguments, standardOutput: FileHandle(forWritingAtPath: "/dev/full"))
            #expect(status == 1 && message == "backprop: error: cannot write to standard output: No space left on device\n",
                    "\(arguments): \(status) \(message)")
        }
        for arguments in [["evaluate", "--model", model, "--data", folder.path], ["predict", "--model", model, "--data", folder.path, "--index", "0"],
                          ["train", "--data", folder.path, "--layers", "16-4", "--epochs", "2"], ["--help"]] {
            let result = try Self.runIntoClosedPipe(arguments)
            #expect(result.status == 1 && result.stderr == "backprop: error: cannot write to standard output: Broken pipe\n",
                    "\(arguments): status \(result.status), signal \(result.signal): \(result.stderr)")
        }
    }

    /// An output folder that access() calls writable but where no file can be made (as root: /proc) is refused
    /// before training; the model was lost after training.
    @Test func anOutputFolderThatCannotTakeAFileIsRefusedBeforeTraining() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 20, seed: 1)
        for flags in [["--output", "/proc/m.safetensors"], ["--plot", "/proc/curves.svg"], ["--output", "/proc/self/comm"],
                      ["--checkpoint-every", "1", "--checkpoint", "/proc/c.safetensors"]] {
            let result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--epochs", "1"] + flags)
            #expect(result.status == 1 && result.stdout.isEmpty && result.stderr.split(separator: "\n").count == 1
                    && result.stderr.contains(flags[flags.count - 2]), "\(flags): \(result.status) \(result.stdout) \(result.stderr)")
        }
        let corpus = TextCommandTests.corpus(folder)
        let result = try runBackprop(["text", "train", "--text", corpus, "--hidden", "4", "--output", "/proc/t.safetensors"])
        #expect(result.status == 1 && result.stdout.isEmpty && result.stderr.contains("--output /proc/t.safetensors"), "\(result.stderr)")
    }

    /// A number too large for a Float in a table is out of range, wherever it is: as a column's first value it made
    /// the column text (one-hot encoded, silently), later it was called "not a number".
    @Test func aTableNumberTooLargeForAFloatIsOutOfRange() throws {
        let folder = TemporaryFolder()
        for (rows, line) in [("1e400,x\n2,y\n3,x\n4,y\n", 2), ("1,x\n2,y\n-3e39,x\n4,y\n", 4)] {
            let table = folder.write("t.csv", Array(("a,b\n" + rows).utf8))
            let result = try runBackprop(["train", "--data", table, "--epochs", "1"])
            #expect(result.status == 1 && result.stderr.contains("\(table), line \(line), column 'a' (1):")
                    && result.stderr.contains("is out of range (a 32-bit float holds magnitudes up to 3.4e38)") && result.stdout.isEmpty,
                    "\(rows): \(result.stderr)")
        }
        #expect(throws: TableError.outOfRange(path: "t", line: 3, column: "a", columnNumber: 1, text: "1e39")) {
            try Table(bytes: Array("a,b\n1,x\n1e39,y\n".utf8), path: "t")
        }
    }

    /// A data file is read as a stream and its size checked against its header before its payload is read: a raw file
    /// far larger than its header says, or a gzip stream followed by gigabytes of anything else, is refused without
    /// being read whole (the whole file was read into memory first: 200 MB of trailing bytes cost 270 MB).
    @Test func aDataFileLargerThanItsHeaderSaysIsNotReadWhole() throws {
        let folder = TemporaryFolder()
        let raw = folder.write("labels", idx([10], [UInt8](repeating: 1, count: 10)))
        let compressed = folder.write("labels.gz", idx([10], [UInt8](repeating: 1, count: 10)))
        let large: off_t = 64 << 30  // sparse: no disk is used, but reading it whole would need 64 GiB of memory
        #expect(truncate(raw, large) == 0 && truncate(compressed, large) == 0)
        #expect(throws: DataError.payloadSize(path: raw, dimensions: [10], expectedBytes: 18, foundBytes: Int(large), compressed: false)) {
            try IDXFile(contentsOf: raw)
        }
        #expect {
            try IDXFile(contentsOf: compressed)
        } throws: { error in
            guard case .unreadable(compressed, let reason)? = error as? DataError else { return false }
            return reason.contains("bytes of garbage after the gzip stream")
        }
    }

    /// The CNN and the recurrent models need square images, judged by the images' shape, not their pixel count (14×56
    /// images trained as if they were 28×28); test images must have the training images' shape; and evaluate and
    /// predict refuse images of another shape than a CNN or recurrent model reads.
    @Test func imagesOfAnotherShapeAreRefused() throws {
        let folder = TemporaryFolder()
        HostileDataTests.folder(folder, train: 16, test: 16, classes: 4, side: 4)
        // The same 16 pixels as 2×8 images.
        for prefix in ["train", "t10k"] {
            folder.write("\(prefix)-images-idx3-ubyte.gz", idx([16, 2, 8], (0..<256).map { UInt8($0 % 251) }))
        }
        for model in ["cnn", "rnn", "lstm"] {
            let result = try runBackprop(["train", "--data", folder.path, "--model", model, "--layers", "16-4", "--epochs", "1"])
            #expect(result.status == 1 && result.stderr.contains("--model \(model) needs square one-channel images; the images in \(folder.path) are 2×8")
                    && result.stdout.isEmpty, "\(model): \(result.stderr)")
        }
        folder.write("train-images-idx3-ubyte.gz", idx([16, 4, 4], (0..<256).map { UInt8($0 % 251) }))
        var result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--epochs", "1"])
        #expect(result.status == 1 && result.stderr.contains("of 4×4 pixels like the training images") && result.stderr.contains("found 2×8"),
                "\(result.stderr)")
        // Models of 4×4 images evaluated on 2×8 ones.
        let quadrants = TemporaryFolder()
        quadrantFolder(quadrants, count: 16, seed: 1)
        for (model, message) in [("cnn", "takes 4×4 images"), ("gru", "reads images row by row, 4 pixels a row")] {
            let path = "\(folder.path)/\(model).safetensors"
            result = try runBackprop(["train", "--data", quadrants.path, "--model", model, "--layers", "16-4", "--epochs", "1", "--output", path, "--quiet"])
            #expect(result.status == 0, "\(result.stderr)")
            for command in [["evaluate"], ["predict", "--index", "0"]] {
                result = try runBackprop(command + ["--model", path, "--data", folder.path])
                #expect(result.status == 1 && result.stderr.contains(message) && result.stderr.contains("are 2×8"), "\(model) \(command): \(result.stderr)")
            }
        }
    }

    /// ArgumentParser's message for a value not among an option's values listed them one per line: one line now.
    @Test func aValueNotAmongTheOptionsValuesIsOneLine() throws {
        let result = try runBackprop(["train", "--optimizer", "adamax"])
        #expect(result.status == 64 && result.stderr == "backprop: error: The value 'adamax' is invalid for '--optimizer <optimizer>'. Please provide one of the following: sgd, momentum, nesterov, adagrad, adadelta, rmsprop, adam, adamw (see 'backprop train --help')\n",
                "\(result.stderr)")
    }

    /// A model trained on a table, evaluated on images, says so (it reported the images' labels against its outputs).
    @Test func aTableModelOnImagesSaysItWasTrainedOnATable() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 16, seed: 1)
        let model = "\(folder.path)/houses.safetensors"
        var result = try runBackprop(["train", "--data", "Examples/Tables/houses.csv", "--target", "price_k", "--epochs", "1", "--output", model, "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        for command in [["evaluate"], ["predict", "--index", "0"]] {
            result = try runBackprop(command + ["--model", model, "--data", folder.path])
            #expect(result.status == 1 && result.stderr == "backprop: error: \(model) was trained on a table (its metadata has a table schema); evaluate it on a table: --data FILE.csv\n",
                    "\(command): \(result.stderr)")
        }
    }
}
