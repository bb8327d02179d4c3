import ArgumentParser
@_spi(Internals) import Backprop
import Foundation

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show test images in the terminal beside the model's predicted class and probabilities, or predict every row of a table.",
        discussion: """
            With --data FILE.csv (a model trained on a table; the file needs the feature columns, not the target) \
            prints one line of CSV per row on standard output, after a header: the predicted class and its \
            probability, or the predicted value. --index and --count then select rows (from 0).
            """)

    @OptionGroup var options: ModelOptions

    @Option(parsing: .unconditional, help: "The index of the first test image (required for images; for a table, the first row, default 0).", transform: number)
    var index: Int?

    @Option(parsing: .unconditional, help: "How many images to show (default 1), or rows of a table to predict (default: all).", transform: number)
    var count: Int?

    func validate() throws {
        if let index { guard index >= 0 else { throw ValidationError("--index must be ≥ 0") } }
        if let count { guard count >= 1 && count <= 1_000_000 else { throw ValidationError("--count must be in 1...1000000; got \(count)") } }
        if index == nil && !isTable(options.data) { throw ValidationError("Missing expected argument '--index <index>'") }
    }

    func run() throws {
        if isTable(options.data) { return try predictTable() }
        let index = self.index ?? 0, count = self.count ?? 1
        let loaded = try ModelAndData(options)
        let data = options.data
        let test = loaded.test
        guard index < test.count && count <= test.count - index else {  // (no index + count: it can overflow)
            throw fail("images from \(index) (\(count) of them) are outside the \(test.count) test images of \(data)")
        }
        let names = ModelAndData.classNames(count: loaded.network.outputSize, data: data)
        let input = Matrix(rows: count, columns: test.featureCount)
        let targets = Matrix(rows: count, columns: test.targetWidth)
        let indices = (index..<(index + count)).map { Int32($0) }
        indices.withUnsafeBufferPointer { test.gather(indices: $0, input: input, targets: targets) }
        let logits = loaded.network(input)
        let probabilities = loaded.loss is BinaryCrossEntropy ? sigmoid(logits) : softmax(logits)
        let shape = test.imageShape ?? ImageShape(channels: 1, height: 1, width: test.featureCount)
        for row in 0..<count {
            let label = test.label(at: index + row), predicted = argmax(logits, row: row)
            var right: [String] = [
                "test image \(index + row)",
                "label      \(label) \(names[label])",
                "predicted  \(predicted) \(names[predicted])  \(predicted == label ? "✓" : "✗")",
                "",
            ]
            for c in 0..<names.count {
                let p = Double(probabilities[row, c])
                let bar = String(repeating: "█", count: Int((p * 20).rounded()))
                right.append(String(format: "%2d %@ %6.2f%% %@", c, names[c].padding(toLength: 11, withPad: " ", startingAt: 0), p * 100, bar))
            }
            let picture = shape.height > 1 ? render(input.rows(row..<(row + 1)), height: shape.height, width: shape.width) : []
            for line in 0..<max(picture.count, right.count) {
                let left = line < picture.count ? picture[line] : String(repeating: " ", count: picture.isEmpty ? 0 : shape.width)
                print(left + "   " + (line < right.count ? right[line] : ""))
            }
            print()
        }
    }

    /// The image as text, two pixels per character (upper and lower half), shaded by the darker-to-lighter
    /// characters " ░▒▓█".
    func render(_ image: Matrix, height: Int, width: Int) -> [String] {
        let shades: [Character] = [" ", "░", "▒", "▓", "█"]
        var lines: [String] = []
        for r in stride(from: 0, to: height, by: 2) {
            var line = ""
            for c in 0..<width {
                let top = image[0, r * width + c], bottom = r + 1 < height ? image[0, (r + 1) * width + c] : 0
                let value = (top + bottom) / 2
                line.append(shades[min(4, Int((value * 5).rounded(.down)))])
            }
            lines.append(line)
        }
        return lines
    }
}

extension Predict {
    /// `backprop predict --data FILE.csv`: a CSV line per row, the class and its probability or the value.
    func predictTable() throws {
        let model = try TableModel(path: options.model)
        let outputs = try model.predictions(options.data)
        let first = index ?? 0
        guard first < outputs.rows || (first == 0 && outputs.rows == 0) else {
            throw fail("row \(first) is outside the \(outputs.rows) rows of \(options.data)")
        }
        let last = count.map { min(outputs.rows, first + $0) } ?? outputs.rows
        var text = ""
        let target = csvField(model.schema.target)
        if model.schema.task == .classification {
            text += "\(target),probability\n"
            for row in first..<last {
                let k = argmax(outputs, row: row)
                text += "\(csvField(model.schema.classes[k])),\(String(format: "%.6f", outputs[row, k]))\n"
                if text.utf8.count > 1 << 16 { print(text, terminator: ""); text = "" }
            }
        } else {
            text += "\(target)\n"
            for row in first..<last {
                text += "\(outputs[row, 0])\n"
                if text.utf8.count > 1 << 16 { print(text, terminator: ""); text = "" }
            }
        }
        print(text, terminator: "")
    }
}
