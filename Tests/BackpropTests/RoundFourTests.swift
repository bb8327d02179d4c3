@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// What this round's fuzz targets (Fuzz/) and measurement (Scripts/hostile_inputs.py) found, each tested as a class.
@Suite("Hostile input, round four: found by fuzzing and measurement")
struct RoundFourTests {
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
