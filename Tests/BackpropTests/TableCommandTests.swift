@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// A CSV whose class is the quadrant of (x, y), with a text column that says nothing and a regression target
/// `value = 3x − 2y + 10`.
func quadrantTable(rows: Int, seed: UInt64) -> String {
    var generator = SeededGenerator(seed: seed)
    var text = "x,y,shade,value,quadrant\n"
    for _ in 0..<rows {
        let x = generator.nextUniform() * 2 - 1, y = generator.nextUniform() * 2 - 1
        let quadrant = ["north east", "north west", "south west", "south east"][(y >= 0 ? 0 : 2) + ((x >= 0) == (y >= 0) ? 0 : 1)]
        text += String(format: "%.4f,%.4f,%@,%.4f,\"%@\"\n", x, y, ["dark", "light"][generator.nextIndex(below: 2)],
                       3 * x - 2 * y + 10, quadrant)
    }
    return text
}

/// The JSON objects of `--json` lines.
func jsonLines(_ text: String) throws -> [[String: Any]] {
    try text.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
}

@Suite("backprop on tables")
struct TableCommandTests {
    @Test func classificationTrainsEvaluatesAndPredicts() throws {
        let folder = TemporaryFolder()
        let data = folder.write("quadrants.csv", Array(quadrantTable(rows: 600, seed: 1).utf8), raw: true)
        let model = "\(folder.path)/model.safetensors"
        let train = try runBackprop(["train", "--data", data, "--target", "quadrant", "--layers", "auto-16-auto",
                                     "--epochs", "30", "--learning-rate", "0.01", "--threads", "1", "--json", "--output", model])
        #expect(train.status == 0, "\(train.stderr)")
        let lines = try jsonLines(train.stdout)
        #expect(lines.count == 30)
        let last = try #require(lines.last)
        #expect((last["test_accuracy"] as? Double ?? 0) > 0.9, "\(last)")
        #expect(last["test_rmse"] == nil && last["read_seconds"] is Double)
        let file = try SafetensorsFile(contentsOf: model)
        let schema = try #require(TableSchema(json: file.metadata["table"] ?? ""))
        #expect(schema.classes == ["north east", "north west", "south east", "south west"])
        #expect(schema.features.map(\.name) == ["x", "y", "shade", "value"] && schema.featureCount == 5)
        #expect(file.metadata["architecture"] == "5-16-4")

        let evaluate = try runBackprop(["evaluate", "--model", model, "--data", data, "--json"])
        #expect(evaluate.status == 0, "\(evaluate.stderr)")
        let result = try #require(try jsonLines(evaluate.stdout).first)
        #expect(result["count"] as? Int == 600 && (result["accuracy"] as? Double ?? 0) > 0.9)

        // Prediction needs no target column, and finds the columns by name.
        let rows = folder.write("new.csv", Array("shade,y,x,value\nlight,0.5,0.5,9\ndark,-0.5,-0.6,9.2\n".utf8), raw: true)
        let predict = try runBackprop(["predict", "--model", model, "--data", rows])
        #expect(predict.status == 0, "\(predict.stderr)")
        let output = predict.stdout.split(separator: "\n")
        #expect(output.count == 3 && output[0] == "quadrant,probability", "\(predict.stdout)")
        #expect(output[1].hasPrefix("north east,0.") && output[2].hasPrefix("south west,0."), "\(predict.stdout)")
    }

    @Test func regressionReportsRMSEMAEAndR2InTheTargetsUnits() throws {
        let folder = TemporaryFolder()
        let data = folder.write("values.csv", Array(quadrantTable(rows: 500, seed: 2).utf8), raw: true)
        let model = "\(folder.path)/model.safetensors"
        let train = try runBackprop(["train", "--data", data, "--target", "value", "--layers", "auto-16-auto", "--epochs", "40",
                                     "--learning-rate", "0.01", "--threads", "1", "--json", "--output", model])
        #expect(train.status == 0, "\(train.stderr)")
        let last = try #require(try jsonLines(train.stdout).last)
        let rmse = try #require(last["test_rmse"] as? Double), r2 = try #require(last["test_r2"] as? Double)
        #expect(last["test_mae"] is Double && last["test_accuracy"] is NSNull)
        // value spans about ±5 around 10 (standard deviation ≈ 2.1): a fit leaves a small fraction of that.
        #expect(rmse < 0.3 && r2 > 0.98, "\(last)")
        let file = try SafetensorsFile(contentsOf: model)
        #expect(file.metadata["task"] == "regression" && file.metadata["loss"] == "mean-squared-error")

        let predict = try runBackprop(["predict", "--model", model, "--data", data, "--count", "2"])
        #expect(predict.status == 0, "\(predict.stderr)")
        let output = predict.stdout.split(separator: "\n")
        #expect(output.count == 3 && output[0] == "value")
        let table = try Table(bytes: Array(quadrantTable(rows: 2, seed: 2).utf8))
        for row in 0..<2 {
            #expect(abs(Float(output[row + 1])! - table[row, 3]) < 1, "\(output) vs \(table[row, 3])")
        }
        let evaluate = try runBackprop(["evaluate", "--model", model, "--data", data])
        #expect(evaluate.status == 0 && evaluate.stdout.contains("rmse") && evaluate.stdout.contains("r2"), "\(evaluate.stdout)")

        // A regression checkpoint resumes (its loss, mean squared error, is the table's, not a conflicting flag).
        let checkpoint = "\(folder.path)/checkpoint.safetensors"
        let first = try runBackprop(["train", "--data", data, "--target", "value", "--epochs", "2", "--checkpoint-every", "2",
                                     "--checkpoint", checkpoint, "--quiet"])
        #expect(first.status == 0, "\(first.stderr)")
        let resumed = try runBackprop(["train", "--data", data, "--target", "value", "--epochs", "3", "--resume", checkpoint, "--json"])
        let epochs = try jsonLines(resumed.stdout).map { $0["epoch"] as? Int }
        #expect(resumed.status == 0 && epochs == [3], "\(resumed.stderr)")
    }

    @Test func validationFileImputationAndTSV() throws {
        let folder = TemporaryFolder()
        let train = folder.write("train.tsv", Array("a\tb\tlabel\n1\t2\tx\nNA\t3\ty\n2\t\tx\n5\t1\ty\n4\t4\tx\n".utf8), raw: true)
        let validation = folder.write("valid.tsv", Array("label\tb\ta\nx\t1\t1\ny\t2\t3\n".utf8), raw: true)
        let without = try runBackprop(["train", "--data", train, "--validation", validation, "--epochs", "1"])
        #expect(without.status == 1 && without.stderr.contains("train.tsv, line 3, column 'a' (1): the cell is empty or NA"), "\(without.stderr)")
        let with = try runBackprop(["train", "--data", train, "--validation", validation, "--epochs", "2", "--impute", "mean", "--json"])
        #expect(with.status == 0, "\(with.stderr)")
        #expect(try jsonLines(with.stdout).count == 2)
    }

    /// An empty text feature cell is an error naming it, and with `--impute mean` is filled (its one-hot inputs by
    /// the training split's category shares), in training, `evaluate` and `predict` alike.
    @Test func missingTextCellsAreImputedInEveryCommand() throws {
        let folder = TemporaryFolder()
        var csv = "colour,size,label\n"
        for i in 0..<40 { csv += "\(i % 5 == 3 ? "" : (i % 2 == 0 ? "red" : "blue")),\(i % 7),\(i % 2 == 0 ? "x" : "y")\n" }
        let data = folder.write("colours.csv", Array(csv.utf8), raw: true), model = folder.path + "/m.safetensors"
        let without = try runBackprop(["train", "--data", data, "--epochs", "1", "--output", model])
        #expect(without.status == 1 && without.stderr.contains("colours.csv, line 5, column 'colour' (1): the cell is empty or NA"),
                "\(without.stderr)")
        let trained = try runBackprop(["train", "--data", data, "--epochs", "30", "--impute", "mean", "--output", model, "--json"])
        #expect(trained.status == 0, "\(trained.stderr)")
        let evaluated = try runBackprop(["evaluate", "--model", model, "--data", data, "--json"])
        #expect(evaluated.status == 0, "\(evaluated.stderr)")
        let predicted = try runBackprop(["predict", "--model", model, "--data", data])
        let lines = predicted.stdout.split(separator: "\n")
        #expect(predicted.status == 0 && lines.count == 41 && !predicted.stdout.contains("nan"), "\(predicted.stderr)")
    }

    @Test func badTablesAreOneLineNamingFileRowAndColumn() throws {
        let folder = TemporaryFolder()
        let cases: [(name: String, bytes: [UInt8], arguments: [String], message: String)] = [
            ("ragged.csv", Array("a,b,c\n1,2,x\n3,4\n".utf8), [], "ragged.csv, line 3: 2 fields, expected 3 as in the header"),
            ("text.csv", Array("a,b,c\n1,2,x\n3,zz,y\n".utf8), [], "text.csv, line 3, column 'b' (2): 'zz' is not a number"),
            ("target.csv", Array("a,b\n1,x\n2,y\n".utf8), ["--target", "label"], "target.csv: no column named 'label'; the columns are 'a', 'b'"),
            ("one.csv", Array("a,b\n1,x\n2,x\n".utf8), [], "one.csv, column 'b': every row has the class 'x'"),
            ("empty.csv", [], [], "empty.csv: the file is empty"),
            ("header.csv", Array("a,b\n".utf8), [], "header.csv: the file has a header but no rows"),
            ("binary.csv", [0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00], [], "binary.csv, line 1: not a text file"),
            ("missing.csv", Array("a,b\n1,x\n,y\n".utf8), [], "missing.csv, line 3, column 'a' (1): the cell is empty or NA"),
            ("small.csv", Array("a,b\n1,x\n2,y\n".utf8), ["--validation-fraction", "0.9"], "small.csv: 2 rows cannot be split"),
        ]
        for (name, bytes, arguments, message) in cases {
            let path = folder.write(name, bytes, raw: true)
            let run = try runBackprop(["train", "--data", path, "--epochs", "1"] + arguments)
            #expect(run.status == 1, "\(name): \(run.status) \(run.stderr)")
            #expect(run.stderr.hasPrefix("backprop: error: \(path)") || run.stderr.hasPrefix("backprop: error: \(folder.path)"),
                    "\(name): \(run.stderr)")
            #expect(run.stderr.contains(message), "\(name): \(run.stderr)")
            #expect(run.stderr.split(separator: "\n").count == 1 && run.stdout.isEmpty, "\(name): \(run.stderr)")
        }
        let none = try runBackprop(["train", "--data", "\(folder.path)/none.csv"])
        #expect(none.status == 1 && none.stderr == "backprop: error: \(folder.path)/none.csv: no such file\n", "\(none.stderr)")
    }

    @Test func usageErrorsForTableFlags() throws {
        let folder = TemporaryFolder()
        let data = folder.write("t.csv", Array(quadrantTable(rows: 50, seed: 3).utf8), raw: true)
        quadrantFolder(folder, count: 20, seed: 1)
        for arguments in [["train", "--data", folder.path, "--target", "x"], ["train", "--data", folder.path, "--layers", "auto-10"],
                          ["train", "--data", data, "--validation-fraction", "1.5"], ["train", "--data", data, "--model", "cnn"],
                          ["train", "--data", data, "--layers", "auto-x-auto"], ["train", "--data", data, "--task", "ranking"]] {
            let run = try runBackprop(arguments)
            #expect(run.status == 64 && run.stderr.split(separator: "\n").count == 1, "\(arguments): \(run.status) \(run.stderr)")
        }
        let wrongSize = try runBackprop(["train", "--data", data, "--layers", "3-8-4", "--epochs", "1"])
        #expect(wrongSize.status == 1 && wrongSize.stderr.contains("--layers starts with 3 inputs, but \(data) gives 5"), "\(wrongSize.stderr)")
        let image = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--epochs", "1", "--output", "\(folder.path)/m.safetensors", "--quiet"])
        #expect(image.status == 0, "\(image.stderr)")
        let onTable = try runBackprop(["evaluate", "--model", "\(folder.path)/m.safetensors", "--data", data])
        #expect(onTable.status == 1 && onTable.stderr.contains("was not trained on a table"), "\(onTable.stderr)")
    }
}
