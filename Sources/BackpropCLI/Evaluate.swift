import ArgumentParser
import Backprop
import Foundation

/// The options `evaluate` and `predict` share.
struct ModelOptions: ParsableArguments {
    @Option(help: "A model saved by 'backprop train --output'.")
    var model: String

    @Option(help: "A folder with MNIST-format IDX files, or a CSV or TSV table (for a model trained on a table).")
    var data: String = Dataset.defaultDirectory
}

/// Loads a saved model and the data set's test images; shared by `evaluate` and `predict`.
struct ModelAndData {
    let network: Network
    let metadata: [String: String]
    let test: Dataset
    let loss: any Loss

    init(_ options: ModelOptions) throws {
        let model = options.model, data = options.data
        do {
            (network, metadata) = try Checkpoint.load(from: model)
        } catch {
            throw fail(error.description)
        }
        if metadata["table"] != nil {
            throw fail("\(model) was trained on a table (its metadata has a table schema); evaluate it on a table: --data FILE.csv")
        }
        do {
            test = try Dataset.mnistTest(directory: data, classCount: network.outputSize)
        } catch {
            if case .labelOutOfRange(let path, let index, let label, let classCount) = error {
                throw fail("\(path): label \(label) (item \(index)) is outside the model's \(classCount) classes (0...\(classCount - 1)); \(model) was trained on other classes")
            }
            throw fail(error.description)
        }
        guard test.featureCount == network.inputSize else {
            throw fail("the model takes \(network.inputSize) inputs, but the images in \(data) have \(test.featureCount) pixels")
        }
        // A model that reads images as images needs their shape, not only their pixel count (14×56 is not 28×28).
        if let shape = test.imageShape {
            if let convolution = network.layers.first as? Conv2D, convolution.input != shape {
                throw fail("\(model) takes \(convolution.input.height)×\(convolution.input.width) images, but the images in \(data) are \(shape.height)×\(shape.width)")
            }
            if let recurrent = network.layers.first as? any RecurrentLayer, recurrent.inputSize != shape.width {
                throw fail("\(model) reads images row by row, \(recurrent.inputSize) pixels a row, but the images in \(data) are \(shape.height)×\(shape.width)")
            }
        }
        loss = metadata["loss"] == "binary-cross-entropy" ? BinaryCrossEntropy() : CrossEntropy()
    }

    /// Class names for Fashion-MNIST (recognised by its folder name), else the class numbers.
    static func classNames(count: Int, data: String) -> [String] {
        let fashion = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        return data.lowercased().contains("fashion") && count == 10 ? fashion : (0..<count).map(String.init)
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a saved model on a data set's test images or on a table: loss, accuracy, per-class accuracy, confusion matrix (or RMSE, MAE and R² for regression).",
        discussion: """
            With --data FILE.csv the model must have been trained on a table: every row of the file is evaluated, \
            its columns found by name and standardised as in training.
            """)

    @OptionGroup var options: ModelOptions

    @Option(parsing: .unconditional, help: "Threads for the matrix products and element-wise work. (default: the CPUs this process may use)", transform: number)
    var threads: Int?

    @Flag(help: "Print one JSON object: loss, accuracy, count, per_class_accuracy, confusion_matrix.")
    var json = false

    func validate() throws {
        if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be in 1...1024; got \(threads)") }
    }

    func run() throws {
        Parallel.setThreadCount(threadCount(threads, default: Parallel.availableProcessors, quiet: json))
        if isTable(options.data) { return try evaluateTable() }
        let loaded = try ModelAndData(options)
        let model = options.model, data = options.data
        let evaluation: Evaluation
        do {
            evaluation = try Evaluator(network: loaded.network, loss: loaded.loss).evaluate(on: loaded.test)
        } catch {
            throw fail(error.description)
        }
        let confusion = evaluation.confusion ?? []
        let perClass = evaluation.perClassAccuracy ?? []
        if json {
            let object: [String: Any] = [
                "loss": Double(evaluation.loss), "accuracy": evaluation.accuracy ?? Double.nan, "count": evaluation.count,
                // A class without test images has no accuracy: null, not NaN (which JSON cannot hold).
                "per_class_accuracy": perClass.map { $0.map { $0 as Any } ?? NSNull() }, "confusion_matrix": confusion,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let names = ModelAndData.classNames(count: loaded.network.outputSize, data: data)
        print("\(model): \(loaded.metadata["architecture"] ?? "?") \(loaded.metadata["activation"] ?? ""), \(evaluation.count) test samples from \(data)")
        printClassification(evaluation, names: names)
    }

    /// Loss, accuracy, per-class accuracy and confusion matrix as text.
    func printClassification(_ evaluation: Evaluation, names: [String]) {
        let confusion = evaluation.confusion ?? []
        let perClass = evaluation.perClassAccuracy ?? []
        print(String(format: "loss %.4f  accuracy %.4f", evaluation.loss, evaluation.accuracy ?? .nan))
        print("\nper-class accuracy:")
        let nameWidth = names.map(\.count).max() ?? 1
        for (i, accuracy) in perClass.enumerated() {
            let padded = names[i].padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            print("  \(i)  \(padded)  \(accuracy.map { String(format: "%.4f", $0) } ?? "   –")")
        }
        print("\nconfusion matrix (rows: label, columns: predicted):")
        let cellWidth = max(5, String(confusion.flatMap { $0 }.max() ?? 0).count + 1)
        print("     " + (0..<confusion.count).map { String($0).leftPadded(to: cellWidth) }.joined())
        for (i, row) in confusion.enumerated() {
            print(String(i).leftPadded(to: 4) + " " + row.map { String($0).leftPadded(to: cellWidth) }.joined())
        }
    }
}

extension Evaluate {
    /// `backprop evaluate --data FILE.csv`: the whole table, under the model's saved schema.
    func evaluateTable() throws {
        let model = try TableModel(path: options.model)
        let data = try model.dataset(options.data)
        let regression = model.schema.task == .regression
        let loss: any Loss = regression ? MeanSquaredError() : CrossEntropy()
        let evaluation: Evaluation
        do { evaluation = try Evaluator(network: model.network, loss: loss).evaluate(on: data) } catch { throw fail(error.description) }
        let metrics = regression ? RegressionMetrics(network: model.network, data: data, standardization: model.schema.standardization) : nil
        if json {
            var object: [String: Any] = ["loss": Double(evaluation.loss), "count": evaluation.count]
            if let metrics {
                object["rmse"] = metrics.rootMeanSquaredError
                object["mae"] = metrics.meanAbsoluteError
                object["r2"] = metrics.r2
            } else {
                object["accuracy"] = evaluation.accuracy ?? Double.nan
                object["per_class_accuracy"] = (evaluation.perClassAccuracy ?? []).map { $0.map { $0 as Any } ?? NSNull() }
                object["confusion_matrix"] = evaluation.confusion ?? []
                object["classes"] = model.schema.classes
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("\(options.model): \(model.metadata["architecture"] ?? "?") \(model.metadata["activation"] ?? ""), \(evaluation.count) rows of \(options.data), target '\(model.schema.target)'")
        if let metrics {
            print(String(format: "loss %.4f  rmse %.4g  mae %.4g  r2 %.4f", evaluation.loss, metrics.rootMeanSquaredError,
                         metrics.meanAbsoluteError, metrics.r2))
        } else {
            printClassification(evaluation, names: model.schema.classes)
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
