@_spi(Internals) @testable import Backprop
import Foundation
import Testing

/// Expects `actual` and `expected` to agree element-wise: `|a − e| ≤ absolute + relative·|e|`.
func expectClose(
    _ actual: [Float], _ expected: [Double], relative: Double = 1e-5, absolute: Double = 1e-6,
    _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.count == expected.count, "\(comment?.rawValue ?? ""): \(actual.count) values, expected \(expected.count)",
            sourceLocation: sourceLocation)
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        let tolerance = absolute + relative * abs(e)
        if !(abs(Double(a) - e) <= tolerance) {
            Issue.record("\(comment?.rawValue ?? "") element \(i): \(a) is not within \(tolerance) of \(e)",
                         sourceLocation: sourceLocation)
            return
        }
    }
}

func expectClose(
    _ actual: Matrix, _ expected: Matrix, relative: Double = 1e-5, absolute: Double = 1e-6,
    _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.rows == expected.rows && actual.columns == expected.columns,
            "shapes \(actual.shapeDescription) and \(expected.shapeDescription)", sourceLocation: sourceLocation)
    expectClose(actual.scalars, expected.scalars.map(Double.init), relative: relative, absolute: absolute,
                comment, sourceLocation: sourceLocation)
}

/// A `rows × columns` matrix of uniform values in `range`, from a seeded generator.
func randomMatrix(_ rows: Int, _ columns: Int, seed: UInt64, in range: ClosedRange<Float> = -1...1) -> Matrix {
    var generator = SeededGenerator(seed: seed)
    let m = Matrix(rows: rows, columns: columns)
    m.withUnsafeMutableBufferPointer { buffer in
        for i in buffer.indices {
            buffer[i] = range.lowerBound + Float(generator.nextUniform()) * (range.upperBound - range.lowerBound)
        }
    }
    return m
}

/// The layers as a checkpoint describes them (types and settings, JSON with sorted keys).
func describe(_ layers: [any Layer]) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(layers.map(LayerDescription.init)), as: UTF8.self)
}
