@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// The built `backprop` executable: the test runner (…/debug/BackpropPackageTests.xctest) is in the same folder.
let backpropExecutable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    .deletingLastPathComponent().appendingPathComponent("backprop")

/// Runs the built `backprop` executable (SwiftPM builds it before the tests) and returns its status and output.
func runBackprop(_ arguments: [String], standardOutput: FileHandle? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    try runProcess(backpropExecutable, arguments, standardOutput: standardOutput)
}

/// Runs `executable` with `arguments` and returns its status and output; with `standardOutput` (e.g. `/dev/full`)
/// the process writes there instead, and `stdout` is empty.
func runProcess(_ executable: URL, _ arguments: [String], standardOutput: FileHandle? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = standardOutput ?? out
    process.standardError = err
    try process.run()
    let stdout = standardOutput == nil ? out.fileHandleForReading.readDataToEndOfFile() : Data()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

/// A tiny MNIST-format folder: 4×4 images whose class is the brightest quadrant.
func quadrantFolder(_ folder: borrowing TemporaryFolder, count: Int, seed: UInt64) {
    var generator = SeededGenerator(seed: seed)
    var images: [UInt8] = [], labels: [UInt8] = []
    for _ in 0..<count {
        let label = generator.nextIndex(below: 4)
        for r in 0..<4 {
            for c in 0..<4 {
                let quadrant = (r / 2) * 2 + c / 2
                images.append(UInt8(quadrant == label ? 150 + generator.nextIndex(below: 100) : generator.nextIndex(below: 60)))
            }
        }
        labels.append(UInt8(label))
    }
    for (prefix, n) in [("train", count), ("t10k", count)] {
        folder.write("\(prefix)-images-idx3-ubyte.gz", idx([n, 4, 4], images))
        folder.write("\(prefix)-labels-idx1-ubyte.gz", idx([n], labels))
    }
}

@Suite("The backprop command")
struct CommandTests {
    @Test func trainPrintsOneJSONObjectPerEpoch() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 200, seed: 1)
        let result = try runBackprop(["train", "--data", folder.path, "--layers", "16-8-4", "--activation", "tanh",
                                      "--optimizer", "sgd", "--learning-rate", "0.5", "--batch-size", "10",
                                      "--epochs", "3", "--seed", "0", "--threads", "1", "--init", "xavier", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 3)
        for (i, line) in lines.enumerated() {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            for key in ["epoch", "train_loss", "test_loss", "test_accuracy", "epoch_seconds", "samples_per_second"] {
                #expect(object[key] is NSNumber, "\(key) missing from \(line)")
            }
            #expect(object["epoch"] as? Int == i + 1)
        }
        let last = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as! [String: Any]
        #expect((last["test_accuracy"] as! Double) > 0.9, "\(lines.last!)")
    }

    @Test func optimizerAndScheduleFlags() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 100, seed: 4)
        let result = try runBackprop(["train", "--data", folder.path, "--layers", "16-8-4", "--optimizer", "adam",
                                      "--learning-rate", "0.01", "--schedule", "step", "--step-size", "1",
                                      "--gamma", "0.5", "--warmup-epochs", "1", "--epochs", "3", "--dropout", "0.1",
                                      "--init", "orthogonal", "--activation", "gelu", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let rates = try result.stdout.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])["learning_rate"] as? Double
        }
        // Warm-up epoch 0: γ/2; then the step schedule from its epoch 0: γ, γ/2.
        #expect(rates.map { $0.map { ($0 * 1e6).rounded() / 1e6 } } == [0.005, 0.01, 0.005])
        let bad = try runBackprop(["train", "--data", folder.path, "--optimizer", "adamax"])
        #expect(bad.status != 0 && bad.stderr.contains("adamax"))
    }

    @Test func savedModelEvaluatesToTheTrainingRunsAccuracy() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 300, seed: 5)
        let model = "\(folder.path)/model.safetensors", plot = "\(folder.path)/curves.svg"
        let train = try runBackprop(["train", "--data", folder.path, "--layers", "16-12-4", "--epochs", "2",
                                     "--batch-size", "16", "--output", model, "--plot", plot, "--json"])
        #expect(train.status == 0, "\(train.stderr)")
        let last = try JSONSerialization.jsonObject(with: Data(train.stdout.split(separator: "\n").last!.utf8)) as! [String: Any]
        let evaluate = try runBackprop(["evaluate", "--model", model, "--data", folder.path, "--json"])
        #expect(evaluate.status == 0, "\(evaluate.stderr)")
        let result = try JSONSerialization.jsonObject(with: Data(evaluate.stdout.utf8)) as! [String: Any]
        #expect(result["accuracy"] as? Double == last["test_accuracy"] as? Double)
        #expect(result["loss"] as? Double == last["test_loss"] as? Double)
        let confusion = try #require(result["confusion_matrix"] as? [[Int]])
        #expect(confusion.count == 4 && confusion.flatMap { $0 }.reduce(0, +) == 300)
        let svg = try String(contentsOfFile: plot, encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("polyline") && svg.contains("Accuracy"))

        let predict = try runBackprop(["predict", "--model", model, "--data", folder.path, "--index", "3", "--count", "2"])
        #expect(predict.status == 0 && predict.stdout.contains("test image 4") && predict.stdout.contains("predicted"))
        let outside = try runBackprop(["predict", "--model", model, "--data", folder.path, "--index", "299", "--count", "2"])
        #expect(outside.status == 1 && outside.stderr.contains("outside the 300 test images"))
        let missing = try runBackprop(["evaluate", "--model", "\(folder.path)/none.safetensors", "--data", folder.path])
        #expect(missing.status == 1 && missing.stderr == "backprop: error: \(folder.path)/none.safetensors: no such file\n")
    }

    /// Every kind of malformed data file ends in one line on standard error and status 1, never a signal.
    @Test(arguments: [
        ("empty", [UInt8]()),
        ("bad magic", [1, 0, 8, 1, 0, 0, 0, 20] + [UInt8](repeating: 0, count: 20)),
        ("bad type", [0, 0, 0x0C, 1, 0, 0, 0, 20] + [UInt8](repeating: 0, count: 20)),
        ("truncated header", [0, 0, 8, 1, 0, 0]),
        ("truncated payload", idx([20], [UInt8](repeating: 0, count: 19))),
        ("trailing bytes", idx([20], [UInt8](repeating: 0, count: 21))),
        ("three dimensions", idx([20, 1, 1], [UInt8](repeating: 0, count: 20))),
        ("label out of range", idx([20], [UInt8](repeating: 0, count: 19) + [4])),
        ("count mismatch", idx([19], [UInt8](repeating: 0, count: 19))),
        ("corrupt gzip", [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF]),
    ])
    func malformedLabelFileIsOneLineAndStatusOne(_ name: String, _ bytes: [UInt8]) throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 20, seed: 3)
        folder.write("t10k-labels-idx1-ubyte.gz", bytes, raw: true)
        let result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--epochs", "1"])
        #expect(result.status == 1, "\(name): status \(result.status)")
        #expect(result.stderr.hasPrefix("backprop: error: ") && result.stderr.contains("\(folder.path)/t10k-labels-idx1-ubyte.gz"),
                "\(name): \(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1 && result.stdout.isEmpty, "\(name): \(result.stderr)")
    }

    @Test func benchmarkTimesASavedModel() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 40, seed: 5)
        let model = "\(folder.path)/model.safetensors"
        let train = try runBackprop(["train", "--data", folder.path, "--layers", "16-40-4", "--epochs", "1", "--output", model])
        #expect(train.status == 0, "\(train.stderr)")
        let result = try runBackprop(["benchmark", "--model", model, "--batch-size", "8", "--calls", "50", "--warmup", "5",
                                      "--threads", "1", "--json"])
        #expect(result.status == 0 && result.stderr.isEmpty, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["batch_size"] as? Int == 8 && object["calls"] as? Int == 50 && object["threads"] as? Int == 1)
        #expect(object["parameters"] as? Int == 16 * 40 + 40 + 40 * 4 + 4)
        #expect(object["packed_layers"] as? Int == (PackedOperand.panelKernelAvailable ? 2 : 0))
        for key in ["median_microseconds", "p10_microseconds", "p90_microseconds", "p99_microseconds", "mean_microseconds",
                    "network_forward_median_microseconds", "network_call_median_microseconds"] {
            let value = try #require(object[key] as? Double, "\(key)")
            #expect(value > 0 && value.isFinite, "\(key) \(value)")
        }
        let (p10, median, p90) = (object["p10_microseconds"] as! Double, object["median_microseconds"] as! Double,
                                  object["p90_microseconds"] as! Double)
        #expect(p10 <= median && median <= p90)
        let text = try runBackprop(["benchmark", "--model", model, "--calls", "20"])
        #expect(text.status == 0 && text.stdout.contains("frozen.forward(_:workspace:)") && text.stdout.contains("median"))

        for (flags, message) in [(["--batch-size", "0"], "--batch-size must be in 1...65536"),
                                 (["--calls", "0"], "--calls must be in 1...10000000"),
                                 (["--warmup", "-1"], "--warmup must be in 0...10000000"),
                                 (["--threads", "0"], "--threads must be in 1...1024")] {
            let bad = try runBackprop(["benchmark", "--model", model] + flags)
            #expect(bad.status == 64 && bad.stderr.contains(message) && bad.stderr.contains("backprop benchmark --help"),
                    "\(flags): \(bad.stderr)")
        }
        let missing = try runBackprop(["benchmark", "--model", "\(folder.path)/none.safetensors"])
        #expect(missing.status == 1 && missing.stderr == "backprop: error: \(folder.path)/none.safetensors: no such file\n")
        let garbage = folder.write("garbage.safetensors", [16, 0, 0, 0, 0, 0, 0, 0] + Array("{\"a\": 1}        ".utf8))
        let bad = try runBackprop(["benchmark", "--model", garbage])
        #expect(bad.status == 1 && bad.stderr.split(separator: "\n").count == 1, "\(bad.stderr)")
        let gpt = "\(folder.path)/gpt.safetensors"
        try Checkpoint.save(Network(inputSize: 8, layers: [GPT(vocabularySize: 5, context: 8, width: 4, heads: 1, layers: 1)], names: [""]), to: gpt)
        let tokens = try runBackprop(["benchmark", "--model", gpt])
        #expect(tokens.status == 1 && tokens.stderr.contains("reads token ids") && tokens.stderr.split(separator: "\n").count == 1,
                "\(tokens.stderr)")
    }

    @Test func malformedModelIsOneLineAndStatusOne() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 20, seed: 3)
        let model = folder.write("model.safetensors", [16, 0, 0, 0, 0, 0, 0, 0] + Array("{\"a\": 1}        ".utf8))
        let result = try runBackprop(["evaluate", "--model", model, "--data", folder.path])
        #expect(result.status == 1 && result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("invalid safetensors header: entry 'a' is not an object"), "\(result.stderr)")
    }

    @Test func presetSeedIsTheOriginalProgram() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 50, seed: 2)
        let result = try runBackprop(["train", "--preset", "seed", "--data", folder.path, "--layers", "16-64-4", "--epochs", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("16-64-4 sigmoid, binary-cross-entropy, sgd lr 0.1, batch full (50), init normal001"),
                "\(result.stdout)")
        #expect(result.stdout.contains("epoch   2/2"))
    }

    @Test func badDataIsOneLineOnStandardErrorAndStatusOne() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 20, seed: 3)
        folder.write("t10k-labels-idx1-ubyte.gz", Array(idx([20], [UInt8](repeating: 0, count: 20)).prefix(15)))
        let result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--epochs", "1"])
        #expect(result.status == 1)
        #expect(result.stderr == "backprop: error: \(folder.path)/t10k-labels-idx1-ubyte.gz: truncated: its header gives 20 elements (28 bytes with the 8-byte header), but the file decompresses to 15 bytes (13 missing)\n")

        let missing = try runBackprop(["train", "--data", "\(folder.path)/nowhere", "--epochs", "1"])
        #expect(missing.status == 1 && missing.stderr.contains("nowhere/train-images-idx3-ubyte.gz: no such file"))

        quadrantFolder(folder, count: 20, seed: 3)
        let wrongSize = try runBackprop(["train", "--data", folder.path, "--layers", "784-10", "--epochs", "1"])
        #expect(wrongSize.status == 1 && wrongSize.stderr.contains("have 16 pixels"), "\(wrongSize.stderr)")

        let badLayers = try runBackprop(["train", "--data", folder.path, "--layers", "16--4"])
        #expect(badLayers.status != 0 && badLayers.stderr.contains("--layers"))
    }
}

/// Hostile command lines of the reliability issue that this round fixes: each ends with one line and the right status,
/// and writes nothing.
@Suite("The backprop command: hostile flags")
struct HostileFlagTests {
    @Test(arguments: [
        (["train", "--epochs", "-1"], "--epochs must be at least 1"),
        (["train", "--threads", "-1"], "--threads must be in 1...1024; got -1"),
        (["train", "--learning-rate", "-0.1"], "--learning-rate must be positive and finite; got -0.1"),
        (["train", "--threads", "1000000"], "--threads must be in 1...1024; got 1000000"),
        (["train", "--min-learning-rate", "inf", "--schedule", "cosine"], "--min-learning-rate must be finite and ≥ 0; got inf"),
        (["evaluate", "--model", "m.safetensors", "--threads", "0"], "--threads must be in 1...1024; got 0"),
        (["evaluate", "--model", "m.safetensors", "--threads", "-1"], "--threads must be in 1...1024; got -1"),
        (["rl", "train", "--episodes", "-5"], "--episodes must be in 1...100000000; got -5"),
    ])
    func negativeAndAbsurdNumbersGetTheRealMessage(_ arguments: [String], _ message: String) throws {
        let result = try runBackprop(arguments)
        #expect(result.status == 64, "\(arguments): \(result.status) \(result.stderr)")
        #expect(result.stderr.contains(message) && !result.stderr.contains("Missing value"), "\(arguments): \(result.stderr)")
        #expect(result.stderr.hasPrefix("backprop: error: ") && result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    }

    @Test func moreThreadsThanCPUsAreCappedWithOneNote() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 40, seed: 1)
        let result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--epochs", "2", "--threads", "1000"])
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr == "backprop: note: using \(cpus) thread(s): more than the \(cpus) CPU(s) available cannot help\n",
                "\(result.stderr)")
        #expect(result.stdout.contains("\(cpus) thread(s)"))
    }

    @Test func aHugeIndexIsOutsideTheImagesNotAnOverflow() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 20, seed: 1)
        let model = "\(folder.path)/m.safetensors"
        try Network(sizes: [16, 4], activation: .relu, initializer: .heNormal, seed: 1).save(to: model)
        let result = try runBackprop(["predict", "--model", model, "--data", folder.path, "--index", "9223372036854775807", "--count", "2"])
        #expect(result.status == 1 && result.stderr.hasPrefix("backprop: error: images from 9223372036854775807 (2 of them) are outside"),
                "\(result.status) \(result.stderr)")
    }

    @Test func aDivergedFullBatchRunSavesNothing() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 40, seed: 2)
        let model = "\(folder.path)/m.safetensors"
        let result = try runBackprop(["train", "--data", folder.path, "--layers", "16-8-4", "--batch-size", "0",
                                      "--learning-rate", "1e38", "--epochs", "2", "--output", model, "--json"])
        #expect(result.status == 1 && result.stderr.contains("training diverged"), "\(result.status) \(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: model))
    }
}

/// More hostile inputs of the reliability issue: empty data, tiny images for the CNN, models that cannot fit in
/// memory, a class without test images, a checkpoint whose generator cannot draw.
@Suite("The backprop command: hostile data and models")
struct HostileDataTests {
    /// A folder of `train` training and `test` test images (4×4, labels cycling through `classes`).
    static func folder(_ folder: borrowing TemporaryFolder, train: Int, test: Int, classes: Int = 4, side: Int = 4) {
        for (prefix, n) in [("train", train), ("t10k", test)] {
            folder.write("\(prefix)-images-idx3-ubyte.gz", idx([n, side, side], (0..<(n * side * side)).map { UInt8($0 % 251) }))
            folder.write("\(prefix)-labels-idx1-ubyte.gz", idx([n], (0..<n).map { UInt8($0 % classes) }))
        }
    }

    @Test(arguments: [
        (0, 10, ["train", "--layers", "16-4", "--epochs", "1"], "the data does not fit the network: expected at least one training sample, found none"),
        (10, 0, ["train", "--layers", "16-4", "--epochs", "1"], "expected at least one sample to evaluate, found none"),
    ])
    func emptyDataIsAnError(_ train: Int, _ test: Int, _ arguments: [String], _ message: String) throws {
        let folder = TemporaryFolder()
        Self.folder(folder, train: train, test: test)
        let result = try runBackprop(arguments + ["--data", folder.path])
        #expect(result.status == 1 && result.stderr.contains(message) && result.stderr.split(separator: "\n").count == 1,
                "\(result.status) \(result.stderr)")
    }

    @Test(arguments: [1, 2, 3])
    func theCNNRefusesImagesTooSmallForItsPoolings(_ side: Int) throws {
        let folder = TemporaryFolder()
        Self.folder(folder, train: 8, test: 8, side: side)
        let result = try runBackprop(["train", "--data", folder.path, "--model", "cnn", "--layers", "\(side * side)-4", "--epochs", "1"])
        #expect(result.status == 1 && result.stderr.contains("at least 4×4 pixels"), "\(result.status) \(result.stderr)")
    }

    @Test(arguments: [("784-100000000-10", "needs about"), ("784-9223372036854775807-10", "too large to count"),
                      ("784-3000000-3000000-10", "needs about")])
    func modelsThatCannotFitAreRefusedBeforeAllocating(_ layers: String, _ message: String) throws {
        let start = Date()
        let result = try runBackprop(["train", "--layers", layers, "--data", "/nonexistent"])
        #expect(result.status == 1 && result.stderr.contains(message), "\(result.status) \(result.stderr)")
        #expect(Date().timeIntervalSince(start) < 10)
    }

    @Test func aClassWithoutTestImagesHasNullAccuracyInJSON() throws {
        let folder = TemporaryFolder()
        Self.folder(folder, train: 12, test: 9, classes: 3)  // 4 classes in the model, class 3 has no test image
        let model = "\(folder.path)/m.safetensors"
        try Network(sizes: [16, 4], activation: .relu, initializer: .heNormal, seed: 1).save(to: model)
        let result = try runBackprop(["evaluate", "--model", model, "--data", folder.path, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let perClass = try #require(object["per_class_accuracy"] as? [Any])
        #expect(perClass.count == 4 && perClass[3] is NSNull && perClass[0] is NSNumber, "\(result.stdout)")
    }

    @Test func aCheckpointWhoseGeneratorIsAllZerosIsRefused() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 20, seed: 1)
        let checkpoint = "\(folder.path)/c.safetensors"
        var result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--epochs", "1",
                                      "--checkpoint-every", "1", "--checkpoint", checkpoint, "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        var file = try SafetensorsFile(contentsOf: checkpoint)
        file.metadata[TrainingCheckpoint.Key.generator] = "0,0,0,0"
        try file.write(to: checkpoint)
        result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--epochs", "2", "--resume", checkpoint])
        #expect(result.status == 1 && result.stderr.contains("not all zero"), "\(result.status) \(result.stderr)")
    }
}

/// Output locations are checked before the first epoch, and only regular files are ever replaced.
@Suite("The backprop command: output locations")
struct OutputLocationTests {
    @Test(arguments: [
        (["--output", ""], "--output is empty"),
        (["--output", "/dev/null"], "--output /dev/null exists and is not a regular file"),
        (["--output", "FOLDER"], "exists and is not a regular file"),
        (["--output", "FOLDER/missing/m.safetensors"], "the folder does not exist"),
        (["--plot", "/dev/zero"], "--plot /dev/zero exists and is not a regular file"),
        (["--checkpoint-every", "1", "--checkpoint", "FOLDER/nothing/c.safetensors"], "--checkpoint"),
        (["--output", "FOLDER/same.safetensors", "--checkpoint-every", "1", "--checkpoint", "FOLDER/same.safetensors"], "name the same file"),
        (["--model", "cnn", "--layers", "16-8-4"], "--model cnn has its own hidden layers"),
        (["--model", "cnn", "--batch-norm"], "--model cnn does not take --batch-norm"),
        (["--model", "cnn", "--dropout", "0.5"], "--model cnn does not take --dropout"),
    ])
    func badOutputsAreRefusedBeforeTraining(_ flags: [String], _ message: String) throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 20, seed: 1)
        let arguments = ["train", "--data", folder.path, "--epochs", "1"] + (flags.contains("--model") ? [] : ["--layers", "16-4"])
            + flags.map { $0.replacingOccurrences(of: "FOLDER", with: folder.path) }
        let before = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        let result = try runBackprop(arguments)
        #expect(result.status == 1 || result.status == 64, "\(flags): \(result.status)")
        #expect(result.stderr.hasPrefix("backprop: error: ") && result.stderr.contains(message)
                && result.stderr.split(separator: "\n").count == 1, "\(flags): \(result.stderr)")
        #expect(result.stdout.isEmpty, "\(flags): training started: \(result.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == before, "\(flags)")
    }

    @Test func theLibraryNeverReplacesAnythingButARegularFile() {
        #expect(throws: CheckpointError.self) { try writeAtomically([1], to: "/dev/null") }
        #expect(throws: CheckpointError.writeFailed(path: "", reason: "the path names no file")) { try writeAtomically([1], to: "") }
        var info = stat()
        #expect(stat("/dev/null", &info) == 0 && (info.st_mode & S_IFMT) == S_IFCHR, "/dev/null is still a device")
    }
}

@Suite("The backprop command: test files only")
struct TestFilesOnlyTests {
    @Test func evaluateAndPredictNeedOnlyTheTestFiles() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 12, seed: 1)
        for name in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"] { try FileManager.default.removeItem(atPath: "\(folder.path)/\(name)") }
        let model = "\(folder.path)/m.safetensors"
        try Network(sizes: [16, 4], activation: .relu, initializer: .heNormal, seed: 1).save(to: model)
        let evaluate = try runBackprop(["evaluate", "--model", model, "--data", folder.path])
        #expect(evaluate.status == 0 && evaluate.stdout.contains("12"), "\(evaluate.stdout) \(evaluate.stderr)")
        let predict = try runBackprop(["predict", "--model", model, "--data", folder.path, "--index", "3"])
        #expect(predict.status == 0 && predict.stdout.contains("test image 3"), "\(predict.stdout) \(predict.stderr)")
    }
}

@Suite("The backprop command: resuming")
struct ResumeConflictTests {
    /// Trains one epoch with `flags` and a checkpoint; returns the folder's checkpoint path.
    static func checkpoint(_ folder: borrowing TemporaryFolder, _ flags: [String]) throws -> String {
        quadrantFolder(folder, count: 20, seed: 1)
        let path = "\(folder.path)/c.safetensors"
        let result = try runBackprop(["train", "--data", folder.path, "--layers", "16-8-4", "--epochs", "1", "--checkpoint-every", "1",
                                      "--checkpoint", path, "--quiet"] + flags)
        #expect(result.status == 0, "\(result.stderr)")
        return path
    }

    @Test(arguments: [
        (["--dropout", "0.2"], [], "--dropout 0.0 conflicts with"),
        (["--activation", "tanh"], [], "--activation relu conflicts with"),
        (["--batch-norm"], [], "--batch-norm false conflicts with"),
        ([], ["--loss", "binary-cross-entropy"], "--loss binary-cross-entropy conflicts with"),
    ])
    func aFlagThatContradictsTheCheckpointIsAnError(_ first: [String], _ second: [String], _ message: String) throws {
        let folder = TemporaryFolder()
        let path = try Self.checkpoint(folder, first)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let result = try runBackprop(["train", "--data", folder.path, "--layers", "16-8-4", "--epochs", "2", "--resume", path] + second)
        #expect(result.status == 1 && result.stderr.contains(message) && result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "the checkpoint is untouched")
    }

    @Test func aNegativeEpochCountIsRefused() throws {
        let folder = TemporaryFolder()
        let path = try Self.checkpoint(folder, [])
        var file = try SafetensorsFile(contentsOf: path)
        file.metadata[TrainingCheckpoint.Key.epoch] = "-3"
        try file.write(to: path)
        let result = try runBackprop(["train", "--data", folder.path, "--layers", "16-8-4", "--epochs", "2", "--resume", path])
        #expect(result.status == 1 && result.stderr.contains("neither can be negative"), "\(result.stderr)")
    }
}
