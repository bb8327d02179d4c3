import ArgumentParser
@_spi(Internals) import Backprop
import Foundation

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show test images in the terminal beside the model's predicted class and probabilities.")

    @OptionGroup var options: ModelOptions

    @Option(parsing: .unconditional, help: "The index of the first test image.")
    var index: Int

    @Option(parsing: .unconditional, help: "How many images to show.")
    var count: Int = 1

    func validate() throws {
        guard index >= 0 else { throw ValidationError("--index must be ≥ 0") }
        guard count >= 1 && count <= 1_000_000 else { throw ValidationError("--count must be in 1...1000000; got \(count)") }
    }

    func run() throws {
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
        let side = Int(Double(test.featureCount).squareRoot())
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
            let picture = side * side == test.featureCount ? render(input.rows(row..<(row + 1)), side: side) : []
            for line in 0..<max(picture.count, right.count) {
                let left = line < picture.count ? picture[line] : String(repeating: " ", count: side)
                print(left + "   " + (line < right.count ? right[line] : ""))
            }
            print()
        }
    }

    /// The image as text, two pixels per character (upper and lower half), shaded by the darker-to-lighter
    /// characters " ░▒▓█".
    func render(_ image: Matrix, side: Int) -> [String] {
        let shades: [Character] = [" ", "░", "▒", "▓", "█"]
        var lines: [String] = []
        for r in stride(from: 0, to: side, by: 2) {
            var line = ""
            for c in 0..<side {
                let top = image[0, r * side + c], bottom = r + 1 < side ? image[0, (r + 1) * side + c] : 0
                let value = (top + bottom) / 2
                line.append(shades[min(4, Int((value * 5).rounded(.down)))])
            }
            lines.append(line)
        }
        return lines
    }
}
