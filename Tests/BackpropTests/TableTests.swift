@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A table parsed from text (the bytes of `text`, as a file would hold them).
func table(_ text: String, path: String = "t.csv", separator: UInt8? = nil) throws(TableError) -> Table {
    try Table(bytes: Array(text.utf8), path: path, separator: separator)
}

/// The error that parsing `text` (and building its data set) throws, or `nil`.
func tableError(_ text: String, target: String? = nil) -> TableError? {
    do throws(TableError) {
        _ = try Dataset.from(table(text), target: target)
        return nil
    } catch {
        return error
    }
}

@Suite("Reading tables")
struct TableReaderTests {
    @Test func numbersAndTextColumns() throws {
        let t = try table("x,colour,y\n1.5,red,0\n-2,blue,1\n3e2,red,2\n")
        #expect(t.columnNames == ["x", "colour", "y"])
        #expect(t.rowCount == 3)
        #expect(t.cells == [1.5, 0, 0, -2, 1, 1, 300, 0, 2])
        #expect(t.columns[1].categories == ["red", "blue"])  // in order of first appearance
        #expect(t.columns[0].isInteger == false && t.columns[2].isInteger == true)
    }

    @Test func quotedFieldsCRLFAndBOM() throws {
        // A quoted comma, a doubled quote, a line break inside quotes, CRLF line ends and a UTF-8 byte-order mark.
        let text = "\u{FEFF}\"name, full\",\"value\"\r\n\"Smith, J\",\"1.25\"\r\n\"say \"\"hi\"\"\",2\r\n\"two\nlines\",3\r\nlast,4\r\n"
        let t = try table(text)
        #expect(t.columnNames == ["name, full", "value"])
        #expect(t.columns[0].categories == ["Smith, J", "say \"hi\"", "two\nlines", "last"])
        #expect(t.cells == [0, 1.25, 1, 2, 2, 3, 3, 4])
        // The row after the two-line field starts on line 6 of the file.
        #expect((0..<4).map { t.line(ofRow: $0) } == [2, 3, 4, 6])
    }

    @Test func tabsBlankLinesAndNoFinalNewline() throws {
        let t = try table("a\tb\n1\t2\n\n3\t4", path: "t.tsv")
        #expect(t.cells == [1, 2, 3, 4])
        #expect(t.line(ofRow: 1) == 4)  // after the blank line 3
        let file = TemporaryFolder()
        let path = file.write("x.tsv", Array("a,b\tc\n1,2\t3\n".utf8), raw: true)
        let fromFile = try Table(contentsOf: path)  // .tsv: tabs, though the header has a comma
        #expect(fromFile.columnNames == ["a,b", "c"])
    }

    @Test func missingCellsAreNaNAndRemembered() throws {
        let t = try table("a,b\n1,NA\n,2\n3,\n4,5\n")
        #expect(t[0, 1].isNaN && t[1, 0].isNaN && t[2, 1].isNaN)
        #expect(t.columns[0].firstMissingLine == 3 && t.columns[1].firstMissingLine == 2)
    }

    @Test func readsFilesWithAndWithoutTheMapping() throws {
        let folder = TemporaryFolder()
        // 4096 bytes exactly, no final newline (a whole page: read, not mapped), and an odd size (mapped, the
        // newline written after the end).
        let text = "a,b\n" + String(repeating: "1,2\n", count: 1022) + "7,89"
        #expect(text.utf8.count == 4096)
        let page = try Table(contentsOf: folder.write("page.csv", Array(text.utf8), raw: true))
        #expect(page.rowCount == 1023 && page[1022, 1] == 89)
        #expect(try Table(contentsOf: folder.write("odd.csv", Array("a,b\n1,2\n3,4".utf8), raw: true)).cells == [1, 2, 3, 4])
    }

    @Test func largeFilesParseInTwoHalvesTheSameAsInOne() throws {
        var generator = SeededGenerator(seed: 3)
        var text = "a,b,c\n", expected: [Float] = []
        while text.utf8.count < 3 << 20 {
            let row = (0..<3).map { _ in Float(generator.nextUniform() * 200 - 100) }
            expected += row.map { Float(String(format: "%.5g", $0))! }
            text += row.map { String(format: "%.5g", $0) }.joined(separator: ",") + "\n"
            if expected.count % 30_000 == 0 { text += "\n" }  // blank lines in both halves
        }
        let one = try Parallel.withThreadCount(1) { () throws(TableError) in try table(text) }
        let two = try Parallel.withThreadCount(2) { () throws(TableError) in try table(text) }
        #expect(one.cells == expected && two.cells == expected)
        #expect(two.line(ofRow: two.rowCount - 1) == one.line(ofRow: one.rowCount - 1))
        #expect(two.columns == one.columns)
        // An error in the second half names its line in the whole file.
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let bad = lines.count - 10
        lines[bad] = "1,2"
        let damaged = lines.joined(separator: "\n")
        let ragged = TableError.raggedRow(path: "t.csv", line: bad + 1, expected: 3, found: 2)
        #expect(throws: ragged) { try Parallel.withThreadCount(2) { () throws(TableError) in try table(damaged) } }
        #expect(throws: ragged) { try Parallel.withThreadCount(1) { () throws(TableError) in try table(damaged) } }
    }
}

@Suite("Decimal parsing")
struct DecimalParsingTests {
    func parse(_ text: String) -> Float? {
        Array(text.utf8).withUnsafeBufferPointer { DecimalParsing.parse($0)?.value }
    }

    @Test func matchesStrtofOnHardCases() {
        let cases = [
            "0", "-0", "1", "0.1", "16777216", "16777217", "16777219", "33554435", "0.30000000000000000000001",
            "3.4028235e38", "3.4028236e38", "1e-45", "1.17549435e-38", "7.0064923e-45", "123456789012345678901234",
            "-1.23456789", "9007199254740993", "1.00000005960464477539062", "1.000000059604644775390625",
            "1.0000000596046447753906251", "1.000000059604644776", "1.000000059604644775", "8.655585098266602e+01",
            "6.467132186889648e+01", "7.502980422973633e+01", "5.302926445007324e+01", "2.5e-3", ".5", "5.", "0000.000123", "4.2E+7", "+8",
        ]
        for text in cases {
            #expect(parse(text).map { $0.bitPattern } == strtof(text, nil).bitPattern, "\(text)")
        }
    }

    @Test func matchesStrtofOnRandomDecimals() {
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<20_000 {
            let digits = 1 + generator.nextIndex(below: 20)
            var text = generator.nextIndex(below: 2) == 0 ? "-" : ""
            let point = generator.nextIndex(below: digits + 1)
            for i in 0..<digits {
                if i == point && i > 0 { text += "." }
                text += String(generator.nextIndex(below: 10))
            }
            if generator.nextIndex(below: 3) == 0 { text += "e\(generator.nextIndex(below: 61) - 30)" }
            #expect(parse(text).map { $0.bitPattern } == strtof(text, nil).bitPattern, "\(text)")
        }
    }

    @Test func rejectsWhatIsNotADecimalNumber() {
        for text in ["", "-", ".", "e5", "1e", "1.2.3", "0x10", "inf", "nan", "1,5", "abc", "1 2"] {
            #expect(parse(text) == nil, "\(text)")
        }
        #expect(parse(" 2.5 ") == 2.5)
        #expect(Array("12".utf8).withUnsafeBufferPointer { DecimalParsing.parse($0)?.isInteger } == true)
        #expect(Array("12.0".utf8).withUnsafeBufferPointer { DecimalParsing.parse($0)?.isInteger } == false)
    }
}

@Suite("Bad tables")
struct BadTableTests {
    @Test func raggedRows() {
        #expect(tableError("a,b,c\n1,2,3\n4,5\n") == .raggedRow(path: "t.csv", line: 3, expected: 3, found: 2))
        #expect(tableError("a,b\n1,2\n4,5,6,7\n") == .raggedRow(path: "t.csv", line: 3, expected: 2, found: 4))
    }

    @Test func nonNumericCellInANumericColumn() {
        #expect(tableError("a,b\n1,0\n2,1\nx7,0\n")
                == .notANumber(path: "t.csv", line: 4, column: "a", columnNumber: 1, text: "x7"))
        #expect(tableError("a,b\n1,0\n1e999,1\n") == .outOfRange(path: "t.csv", line: 3, column: "a", columnNumber: 1, text: "1e999"))
    }

    @Test func unknownTargetColumn() {
        #expect(tableError("a,b\n1,0\n2,1\n", target: "c") == .unknownColumn(path: "t.csv", name: "c", available: ["a", "b"]))
    }

    @Test func targetWithOneClass() {
        #expect(tableError("a,b\n1,yes\n2,yes\n") == .oneClass(path: "t.csv", column: "b", value: "yes"))
    }

    @Test func emptyFileAndHeaderOnly() {
        #expect(tableError("") == .empty(path: "t.csv"))
        #expect(tableError("\n\r\n") == .empty(path: "t.csv"))
        #expect(tableError("a,b\n") == .headerOnly(path: "t.csv"))
        #expect(tableError("a,b\n\n\n") == .headerOnly(path: "t.csv"))
    }

    @Test func notText() {
        #expect(tableError("a,b\n1,2\n3\u{0}4,5\n") == .notText(path: "t.csv", line: 3, offset: 9))
        let latin1: [UInt8] = Array("a,b\n".utf8) + [0xE9] + Array(",1\nx,2\n".utf8)
        #expect(throws: TableError.notText(path: "t.csv", line: 2, offset: 4)) { try Table(bytes: latin1, path: "t.csv") }
        let gzip: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0x00]
        do throws(TableError) { _ = try Table(bytes: gzip, path: "t.csv"); Issue.record("gzip read as a table") } catch {
            #expect(error == .notText(path: "t.csv", line: 1, offset: 3))
        }
    }

    @Test func missingValuesAreErrorsUnlessImputed() throws {
        #expect(tableError("a,b\n1,0\n,1\n") == .missingValue(path: "t.csv", line: 3, column: "a", columnNumber: 1))
        #expect(tableError("a,b\n1,0\n2,NA\n") == .missingValue(path: "t.csv", line: 3, column: "b", columnNumber: 2))
        let (data, _) = try Dataset.from(table("a,b\n1,0\nNA,1\n"), imputeMissing: true)
        #expect(data.batch(at: [1]).input[0, 0].isNaN)
    }

    /// With imputation a missing text cell is `NaN` in each of its one-hot inputs, and standardising fills each with
    /// the share of its category among the known cells of the data the standardisation came from (the mean of the
    /// one-hot input, as mean imputation after one-hot encoding gives), while numeric cells get their column's mean.
    @Test func missingTextCellsAreImputedByTheCategoriesShares() throws {
        let csv = "colour,size,label\nred,1,a\nblue,NA,b\nred,3,a\n,5,b\nred,7,a\n"
        #expect(tableError(csv) == .missingValue(path: "t.csv", line: 5, column: "colour", columnNumber: 1))
        let (data, schema) = try Dataset.from(table(csv), imputeMissing: true)
        #expect(schema.features.map(\.name) == ["colour", "size"] && schema.features[0].categories == ["red", "blue"])
        let missingColour = data.batch(at: [3]).input
        #expect(missingColour[0, 0].isNaN && missingColour[0, 1].isNaN && missingColour[0, 2] == 5)
        let standardization = Standardization(of: data, standardizes: schema.standardizedInputs)
        #expect(standardization.featureFills == [0.75, 0.25, 4])  // red 3 of 4 known, blue 1 of 4; size (1+3+5+7)/4
        let filled = data.standardized(by: standardization).batch(at: [1, 3]).input
        let sizeScale = Float((([1, 3, 5, 7] as [Double]).map { ($0 - 4) * ($0 - 4) }.reduce(0, +) / 4).squareRoot())
        #expect(filled[0, 0] == 0 && filled[0, 1] == 1 && filled[0, 2] == 0)  // blue, size missing: the mean, 0
        #expect(filled[1, 0] == 0.75 && filled[1, 1] == 0.25 && abs(filled[1, 2] - 1 / sizeScale) < 1e-6)  // (5 − 4) / scale
        // A standardisation saved before there were fills reads, and imputes a missing input by 0.
        let old = try JSONDecoder().decode(Standardization.self, from: Data(#"{"featureMeans":[0,0,4],"featureScales":[1,1,2]}"#.utf8))
        #expect(old.featureFills == nil && data.standardized(by: old).batch(at: [3]).input.scalars == [0, 0, 0.5])
    }

    @Test func otherProblems() {
        #expect(tableError("a,a\n1,2\n") == .duplicateColumn(path: "t.csv", name: "a"))
        #expect(tableError("a,b\n1,\"open\n2,3\n") == .unterminatedQuote(path: "t.csv", line: 2))
        #expect(tableError("a\n1\n2\n") == .noFeatures(path: "t.csv"))
        let folder = TemporaryFolder()
        #expect(throws: TableError.fileNotFound(path: folder.path + "/none.csv")) { try Table(contentsOf: folder.path + "/none.csv") }
        #expect(throws: TableError.unreadable(path: folder.path, reason: "it is a folder, not a file")) { try Table(contentsOf: folder.path) }
    }

    @Test func messagesNameFileLineAndColumn() {
        let message = TableError.notANumber(path: "d.csv", line: 7, column: "age", columnNumber: 3, text: "abc").description
        #expect(message == "d.csv, line 7, column 'age' (3): 'abc' is not a number (the column's first value is a number)")
        let twoLines = TableError.unknownCategory(path: "d.csv", line: 2, column: "c", columnNumber: 1, text: "a\nb").description
        #expect(twoLines == "d.csv, line 2, column 'c' (1): 'a\\nb' is not one of the categories the model was trained with")
    }
}

@Suite("Table schemas and data sets")
struct TableSchemaTests {
    @Test func tasksFromTheTarget() throws {
        #expect(try TableSchema(table: table("a,b\n1,cat\n2,dog\n")).task == .classification)
        #expect(try TableSchema(table: table("a,b\n1,3\n2,10\n")).classes == ["3", "10"])  // integers sorted by value
        #expect(try TableSchema(table: table("a,b\n1,3.0\n2,10\n")).task == .regression)
        #expect(try TableSchema(table: table("a,b\n1,3\n2,10\n"), task: .regression).task == .regression)
        #expect(throws: TableError.textTarget(path: "t.csv", column: "b", line: 2, text: "cat")) {
            try TableSchema(table: table("a,b\n1,cat\n2,dog\n"), task: .regression)
        }
    }

    @Test func oneHotFeaturesAndClassIndices() throws {
        let (data, schema) = try Dataset.from(table("size,colour,kind\n1,red,b\n2,green,a\n3,red,c\n"))
        #expect(schema.classes == ["a", "b", "c"])
        #expect(schema.features.map(\.width) == [1, 2] && schema.featureCount == 3)
        #expect(schema.standardizedInputs == [true, false, false])
        let all = data.batch(at: 0..<3)
        #expect(all.input == Matrix([[1, 1, 0], [2, 0, 1], [3, 1, 0]]))
        #expect((0..<3).map { data.label(at: $0) } == [1, 0, 2])
    }

    @Test func columnsAreFoundByNameAndCategoriesChecked() throws {
        let (_, schema) = try Dataset.from(table("size,colour,kind\n1,red,b\n2,green,a\n"))
        let reordered = try schema.dataset(from: table("kind,colour,size\na,green,5\nb,red,6\n"))
        #expect(reordered.batch(at: 0..<2).input == Matrix([[5, 0, 1], [6, 1, 0]]))
        #expect((0..<2).map { reordered.label(at: $0) } == [0, 1])
        #expect(throws: TableError.unknownCategory(path: "t.csv", line: 3, column: "colour", columnNumber: 2, text: "blue")) {
            try schema.dataset(from: table("size,colour,kind\n1,red,b\n2,blue,a\n"))
        }
        #expect(throws: TableError.unknownCategory(path: "t.csv", line: 2, column: "kind", columnNumber: 3, text: "z")) {
            try schema.dataset(from: table("size,colour,kind\n1,red,z\n"))
        }
        // Prediction needs no target column.
        #expect(try schema.featureValues(from: table("colour,size\nred,9\n")) == [9, 1, 0])
        let decoded = try #require(TableSchema(json: schema.json))
        #expect(decoded == schema)
    }

    @Test func moreThan256Classes() throws {
        let labels = (0..<600).map { $0 % 300 }
        let data = Dataset(features: labels.map { Float($0) }, featureCount: 1, labels: labels, classCount: 300)
        let batch = data.batch(at: [299, 5])
        #expect(batch.targets[0, 299] == 1 && batch.targets[1, 5] == 1 && batch.targets.withUnsafeBufferPointer { $0.reduce(0, +) } == 2)
        #expect(data.label(at: 599) == 299)
        let text = "x,y\n" + (0..<600).map { "\($0),c\($0 % 300)" }.joined(separator: "\n")
        #expect(try TableSchema(table: table(text)).classes.count == 300)
    }

    @Test func evaluatorCountsAccuracyWithoutAConfusionMatrixBeyond4096Classes() throws {
        // All-zero outputs: the arg-max is class 0, so the accuracy is the share of label 0 (3 of 8).
        let labels = [0, 5, 0, 4095, 7, 0, 1, 2]
        for classes in [4096, 5000] {
            let data = Dataset(features: [Float](repeating: 1, count: 8), featureCount: 1, labels: labels, classCount: classes)
            let network = Network(sizes: [1, classes], activation: .relu, initializer: .zeros, seed: 0)
            let evaluation = try Evaluator(network: network, loss: CrossEntropy()).evaluate(on: data)
            #expect(evaluation.accuracy == 3.0 / 8)
            #expect((evaluation.confusion == nil) == (classes > Evaluator.maximumConfusionClasses))
        }
    }
}

@Suite("Preparing data sets")
struct PreparationTests {
    /// numpy: `np.random.RandomState(0).permutation(150)[:12]`, `RandomState(42).permutation(20)`.
    @Test func splitIsScikitLearnsTrainTestSplit() {
        let data = Dataset(features: (0..<150).map(Float.init), featureCount: 1, targets: (0..<150).map(Float.init), targetWidth: 1)
        let (train, validation) = data.split(validationFraction: 0.2, seed: 0)
        #expect(validation.count == 30 && train.count == 120)
        #expect(Array(validation.targetValues!.prefix(12)) == [114, 62, 33, 107, 7, 100, 40, 86, 76, 71, 134, 51])
        let small = Dataset(features: (0..<20).map(Float.init), featureCount: 1, targets: (0..<20).map(Float.init), targetWidth: 1)
        let parts = small.split(validationFraction: 0.25, seed: 42)
        #expect(parts.validation.targetValues! == [0, 17, 15, 1, 8])
        #expect(parts.train.targetValues! == [5, 11, 3, 18, 16, 13, 2, 9, 19, 4, 12, 7, 10, 14, 6])
    }

    /// numpy: `np.nanmean(x, 0)`, `np.nanstd(x, 0)` of [[1, 10], [2, 20], [4, nan], [5, 40]] → [3, 23.333334],
    /// [1.5811388, 12.472192].
    @Test func standardizationIsStandardScalers() {
        let data = Dataset(features: [1, 10, 2, 20, 4, .nan, 5, 40], featureCount: 2, targets: [1, 2, 3, 6], targetWidth: 1)
        let s = Standardization(of: data, targets: true)
        expectClose(s.featureMeans, [3, 23.333334])
        expectClose(s.featureScales, [1.5811388, 12.472192])
        expectClose(s.targetMeans!, [3])
        expectClose(s.targetScales!, [(7.0 / 2).squareRoot()])
        let standardized = data.standardized(by: s)
        let x = standardized.batch(at: 0..<4).input
        expectClose([x[0, 0]], [(1 - 3) / 1.5811388])
        #expect(x[2, 1] == 0)  // the missing cell is the training mean
        let y = standardized.batch(at: 0..<4).targets
        s.restoreTargets(y)
        expectClose(y.scalars, [1, 2, 3, 6])
        let masked = Standardization(of: data, standardizes: [false, true])
        #expect(masked.featureMeans[0] == 0 && masked.featureScales[0] == 1)
        let constant = Standardization(of: Dataset(features: [2, 2], featureCount: 1, labels: [0, 1], classCount: 2))
        #expect(constant.featureScales == [1])
    }

    @Test func batchesCoverEverySampleOnceIntoTheSameMatrices() {
        let data = Dataset(features: (0..<10).map(Float.init), featureCount: 1, labels: (0..<10).map { $0 % 3 }, classCount: 3)
        var seen: [Float] = [], sizes: [Int] = [], storages = Set<ObjectIdentifier>()
        for (input, targets) in data.batches(size: 4, seed: 5) {
            sizes.append(input.rows)
            storages.insert(ObjectIdentifier(input.storage))
            for r in 0..<input.rows {
                seen.append(input[r, 0])
                #expect(targets[r, Int(input[r, 0]) % 3] == 1)
            }
        }
        #expect(sizes == [4, 4, 2] && storages.count == 1)
        #expect(seen.sorted() == (0..<10).map(Float.init) && seen != (0..<10).map(Float.init))
        let inOrder = data.batches(size: 3).flatMap { batch in (0..<batch.input.rows).map { batch.input[$0, 0] } }
        #expect(inOrder == (0..<10).map(Float.init))
    }

    /// scikit-learn: y = [3, -0.5, 2, 7], ŷ = [2.5, 0, 2, 8]: √mean_squared_error 0.6123724356957945,
    /// mean_absolute_error 0.5, r2_score 0.9486081370449679.
    @Test func regressionMetricsAreScikitLearns() {
        let metrics = RegressionMetrics(predictions: Matrix([[2.5], [0], [2], [8]]), targets: Matrix([[3], [-0.5], [2], [7]]))
        #expect(abs(metrics.rootMeanSquaredError - 0.6123724356957945) < 1e-12)
        #expect(abs(metrics.meanAbsoluteError - 0.5) < 1e-12)
        #expect(abs(metrics.r2 - 0.9486081370449679) < 1e-12)
    }

    @Test func aTableTrainsToTheRightAnswer() throws {
        // y = class of x₀ + x₁ > 0 with a text column that decides nothing; the network must learn it.
        var generator = SeededGenerator(seed: 2)
        var text = "x0,x1,noise,label\n"
        for _ in 0..<400 {
            let a = generator.nextUniform() * 2 - 1, b = generator.nextUniform() * 2 - 1
            text += "\(a),\(b),\(["p", "q"][generator.nextIndex(below: 2)]),\(a + b > 0 ? "yes" : "no")\n"
        }
        let (data, schema) = try Dataset.from(table(text))
        let (train, validation) = data.split(validationFraction: 0.25, seed: 0)
        let standardization = Standardization(of: train, standardizes: schema.standardizedInputs)
        let network = Network(sizes: [schema.featureCount, 16, 2], activation: .relu, initializer: .scikitLearn, seed: 0)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: Adam(learningRate: 0.01), batchSize: 32, seed: 0)
        for _ in 0..<30 { _ = try trainer.trainEpoch(on: train.standardized(by: standardization)) }
        #expect(try trainer.evaluate(on: validation.standardized(by: standardization)).accuracy! > 0.95)
    }
}

/// The examples of the DocC article "Your own data: tables", verbatim but for the file's path.
@Suite("Your own data article")
struct YourOwnDataArticleTests {
    @Test func regressionFromSwift() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        var lines: [String] = []
        func print(_ line: String) { Swift.print(line); lines.append(line) }
        // --- YourOwnData.md begins ---
        let table = try Table(contentsOf: "\(root)/Examples/Tables/houses.csv")
        let (data, schema) = try Dataset.from(table, target: "price_k")  // regression: price_k has decimals
        let (train, validation) = data.split(validationFraction: 0.2, seed: 0)
        let standardization = Standardization(of: train, standardizes: schema.standardizedInputs, targets: true)
        let network = Network(sizes: [schema.featureCount, 32, 1], activation: .relu, initializer: .scikitLearn, seed: 0)
        let trainer = Trainer(network: network, loss: MeanSquaredError(), optimizer: Adam(learningRate: 0.01), batchSize: 32)
        for _ in 1...100 { try trainer.trainEpoch(on: train.standardized(by: standardization)) }
        let metrics = RegressionMetrics(network: network, data: validation.standardized(by: standardization),
                                        standardization: standardization)
        print("validation RMSE \(metrics.rootMeanSquaredError), R² \(metrics.r2)")
        // --- YourOwnData.md ends ---
        // --- YourOwnData.md batches begins ---
        for (input, targets) in train.batches(size: 32, seed: 1) {
            try trainer.trainStep(input: input, targets: targets)
        }
        // --- YourOwnData.md batches ends ---
        #expect(schema.task == .regression && schema.featureCount == 5 && validation.count == 40)
        try readmeTablesExample(root: root)
        // price_k = 2.4·area + 12·rooms + district + N(0, 15²): a fit comes near the noise.
        #expect(metrics.rootMeanSquaredError < 30 && metrics.r2 > 0.9, "\(lines)")
    }
}

@Suite("Tables from damaged files")
struct DamagedTableTests {
    /// Thousands of damaged copies of a good table (bytes replaced, inserted or cut at random by characters that
    /// matter to a CSV reader): each reads, or throws a `TableError`; none crashes, and whatever reads gives a data
    /// set under its own schema and under the good table's.
    @Test func damagedTablesThrowOrReadNeverCrash() throws {
        let good = Array("x,y,colour,label\n1.5,2,red,a\n-3,4e1,\"blue, dark\",b\n5,.5,red,\"a\"\r\n7,8,green,c\n".utf8)
        let goodSchema = try TableSchema(table: Table(bytes: good))
        let alphabet = Array(",\"\n\r\t0123456789.-+eENA ab\u{7F}".utf8) + [0, 0xFF, 0xEF, 0xBB, 0xBF]
        var generator = SeededGenerator(seed: 9)
        var read = 0
        for _ in 0..<5000 {
            var bytes = good
            for _ in 0...generator.nextIndex(below: 4) {
                let at = generator.nextIndex(below: bytes.count), byte = alphabet[generator.nextIndex(below: alphabet.count)]
                switch generator.nextIndex(below: 3) {
                case 0: bytes[at] = byte
                case 1: bytes.insert(byte, at: at)
                default: bytes.removeSubrange(at..<min(bytes.count, at + 1 + generator.nextIndex(below: 8)))
                }
                if bytes.isEmpty { bytes = [10] }
            }
            do throws(TableError) {
                let table = try Table(bytes: bytes)
                _ = try? Dataset.from(table)
                _ = try? Dataset.from(table, imputeMissing: true)
                _ = try? goodSchema.dataset(from: table, imputeMissing: true)
                _ = try? goodSchema.featureValues(from: table, imputeMissing: true)
                read += 1
            } catch {
                #expect(!error.description.isEmpty && !error.description.contains("\n") && !error.description.contains("\r"),
                        "\(error.description)")
            }
        }
        #expect(read > 500, "only \(read) of 5000 damaged tables read at all")
    }
}

/// The README's table example, verbatim but for the file's path and `print`.
func readmeTablesExample(root: String) throws {
    var accuracy = 0.0
    func print(_ value: Double, _ classes: [String]) { Swift.print(value, classes); accuracy = value }
    // --- README tables begins ---
    let table = try Table(contentsOf: "\(root)/Examples/Tables/fruit.csv")
    let (data, schema) = try Dataset.from(table)  // the target: the last column, "fruit"; colour one-hot
    let (train, validation) = data.split(validationFraction: 0.2, seed: 0)
    let standardization = Standardization(of: train, standardizes: schema.standardizedInputs)
    let network = Network(sizes: [schema.featureCount, 100, schema.targetWidth], activation: .relu,
                          initializer: .scikitLearn, seed: 0)
    let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: Adam(), batchSize: 64)
    for _ in 1...100 {
        for (input, targets) in train.standardized(by: standardization).batches(size: 32, seed: 1) {  // Matrix batches
            try trainer.trainStep(input: input, targets: targets)
        }
    }
    print(try trainer.evaluate(on: validation.standardized(by: standardization)).accuracy!, schema.classes)
    // --- README tables ends ---
    #expect(schema.classes == ["apple", "banana", "orange"] && accuracy > 0.8)
}
