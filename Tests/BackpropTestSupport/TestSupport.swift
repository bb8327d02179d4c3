// Helpers shared by the test targets: tolerances with the caller's source location, seeded random matrices, temporary
// folders that write raw or gzip files, small data sets.
@_spi(Internals) import Backprop
import CZlib
import Foundation
import Testing

/// Expects `actual` and `expected` to agree element-wise: `|a − e| ≤ absolute + relative·|e|`.
public func expectClose(
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

public func expectClose(
    _ actual: Matrix, _ expected: Matrix, relative: Double = 1e-5, absolute: Double = 1e-6,
    _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.rows == expected.rows && actual.columns == expected.columns,
            "shapes \(actual.shapeDescription) and \(expected.shapeDescription)", sourceLocation: sourceLocation)
    expectClose(actual.scalars, expected.scalars.map(Double.init), relative: relative, absolute: absolute,
                comment, sourceLocation: sourceLocation)
}

/// A `rows × columns` matrix of uniform values in `range`, from a seeded generator.
public func randomMatrix(_ rows: Int, _ columns: Int, seed: UInt64, in range: ClosedRange<Float> = -1...1) -> Matrix {
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
public func describe(_ layers: [any Layer]) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(layers.map(LayerDescription.init)), as: UTF8.self)
}

/// IDX files written to a temporary folder, raw or gzip.
public struct TemporaryFolder: ~Copyable {
    public let path: String
    public init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("backprop-tests-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` to `name`, gzip-compressed when `name` ends in `.gz` unless `raw`; returns the full path.
    @discardableResult
    public func write(_ name: String, _ bytes: [UInt8], raw: Bool = false) -> String {
        let file = "\(path)/\(name)"
        if name.hasSuffix(".gz") && !raw {
            let gz = gzopen(file, "wb")!
            bytes.withUnsafeBytes { _ = gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
            gzclose(gz)
        } else {
            _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
        }
        return file
    }
}

/// The bytes of an IDX file of unsigned bytes with the given dimensions and payload.
public func idx(_ dimensions: [Int], _ payload: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
    for d in dimensions { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
    return bytes + payload
}

/// Two interleaved spirals (Lang & Witbrock's benchmark): `count` points per arm, 3 turns... about 1.75 turns.
public func twoSpirals(count: Int, seed: UInt64) -> Dataset {
    var generator = SeededGenerator(seed: seed)
    var features: [Float] = [], labels: [Int] = []
    for arm in 0..<2 {
        for i in 0..<count {
            let t = 0.25 + 3.25 * Double.pi * Double(i) / Double(count)  // angle
            let r = t / (3.5 * Double.pi)
            let sign = arm == 0 ? 1.0 : -1.0
            let noise = { 0.01 * (2 * generator.nextUniform() - 1) }
            features += [Float(sign * r * cos(t) + noise()), Float(sign * r * sin(t) + noise())]
            labels.append(arm)
        }
    }
    return Dataset(features: features, featureCount: 2, labels: labels, classCount: 2)
}
