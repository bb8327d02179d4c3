import Foundation

/// A file in the safetensors format (Hugging Face): an 8-byte little-endian header length `n`, `n` bytes of JSON
/// header, then the tensors' bytes. The header maps each tensor name to `{"dtype", "shape", "data_offsets":
/// [begin, end]}` (offsets relative to the data section) and may hold `"__metadata__"`, a string-to-string map.
///
/// Only `F32` tensors are read and written. Reading checks every length and offset against the file before
/// touching the data, so a damaged file is an error, never a read outside the buffer.
public struct SafetensorsFile: Sendable {
    /// A tensor: its shape (outermost first) and its elements in row-major order.
    public struct Tensor: Sendable, Equatable {
        public var shape: [Int]
        public var values: [Float]
        public init(shape: [Int], values: [Float]) {
            precondition(shape.reduce(1, *) == values.count,
                         "SafetensorsFile.Tensor: \(values.count) values do not fill shape \(shape)")
            self.shape = shape
            self.values = values
        }
    }

    /// The header's `__metadata__`.
    public var metadata: [String: String]
    /// The tensors by name.
    public var tensors: [String: Tensor]

    public init(metadata: [String: String] = [:], tensors: [String: Tensor] = [:]) {
        self.metadata = metadata
        self.tensors = tensors
    }

    /// The element types read, with their sizes in bytes. `F32` is read as it is; `F64`, `I64` and `I32` (PyTorch
    /// writes batch normalization's `num_batches_tracked` as `I64`) are converted to `Float`. Files are written in
    /// `F32` only.
    static let readableTypes = ["F32": 4, "F64": 8, "I64": 8, "I32": 4]

    /// `count` little-endian elements of `dtype` at byte `start` of `bytes`, as `Float`s.
    private static func floats(from bytes: [UInt8], at start: Int, count: Int, dtype: String) -> [Float] {
        bytes.withUnsafeBytes { source in
            let base = source.baseAddress! + start
            func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T {
                T(littleEndian: base.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
            }
            switch dtype {
            case "F64": return (0..<count).map { Float(Double(bitPattern: load(UInt64.self, $0))) }
            case "I64": return (0..<count).map { Float(load(Int64.self, $0)) }
            case "I32": return (0..<count).map { Float(load(Int32.self, $0)) }
            default: return (0..<count).map { Float(bitPattern: load(UInt32.self, $0)) }
            }
        }
    }

    /// Throws ``CheckpointError/nonFiniteValues(path:tensor:)`` for the first tensor (by name) that holds a NaN or an
    /// infinity: Backprop never writes such a model, and refuses to read one.
    public func checkFinite(path: String) throws(CheckpointError) {
        for name in tensors.keys.sorted() where !tensors[name]!.values.allSatisfy(\.isFinite) {
            throw .nonFiniteValues(path: path, tensor: name)
        }
    }

    /// The largest header accepted (the format's own limit is 100 MB).
    static let maximumHeaderSize = 100_000_000

    /// Reads and validates the safetensors file at `path`.
    public init(contentsOf path: String) throws(CheckpointError) {
        let bytes: [UInt8]
        do { bytes = try readFile(path) } catch {
            if case .fileNotFound = error { throw .fileNotFound(path: path) }
            if case .unreadable(_, let reason) = error { throw .unreadable(path: path, reason: reason) }  // (not the path twice)
            throw .unreadable(path: path, reason: error.description)
        }
        try self.init(bytes: bytes, path: path)
    }

    /// Parses a safetensors file held in memory (`path` is only for messages).
    public init(bytes: [UInt8], path: String) throws(CheckpointError) {
        guard bytes.count >= 8 else { throw .truncated(path: path, expectedBytes: 8, foundBytes: bytes.count) }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(Self.maximumHeaderSize) else {
            throw .invalidHeader(path: path, reason: "header length \(headerLength) exceeds \(Self.maximumHeaderSize) bytes")
        }
        let dataStart = 8 + Int(headerLength)
        guard bytes.count >= dataStart else { throw .truncated(path: path, expectedBytes: dataStart, foundBytes: bytes.count) }
        let header: Any
        do {
            header = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart]))
        } catch {
            throw .invalidHeader(path: path, reason: "the header is not valid JSON (\(error.localizedDescription))")
        }
        guard let entries = header as? [String: Any] else {
            throw .invalidHeader(path: path, reason: "the header is not a JSON object")
        }
        let dataSize = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var tensors: [String: Tensor] = [:]
        var ranges: [(range: Range<Int>, name: String)] = []
        for (name, entry) in entries {
            if name == "__metadata__" {
                guard let map = entry as? [String: String] else {
                    throw .invalidHeader(path: path, reason: "__metadata__ is not a map of strings")
                }
                metadata = map
                continue
            }
            guard let info = entry as? [String: Any] else {
                throw .invalidHeader(path: path, reason: "entry '\(name)' is not an object")
            }
            guard let dtype = info["dtype"] as? String else {
                throw .invalidHeader(path: path, reason: "tensor '\(name)' has no dtype")
            }
            guard let elementSize = Self.readableTypes[dtype] else {
                throw .unsupportedDataType(path: path, tensor: name, dataType: dtype)
            }
            guard let shapeNumbers = info["shape"] as? [NSNumber], let offsetNumbers = info["data_offsets"] as? [NSNumber],
                  offsetNumbers.count == 2 else {
                throw .invalidHeader(path: path, reason: "tensor '\(name)' needs a shape and two data_offsets")
            }
            let shape = shapeNumbers.map(\.int64Value), offsets = offsetNumbers.map(\.int64Value)
            guard shape.allSatisfy({ $0 >= 0 && $0 <= Int64(Int32.max) }), offsets.allSatisfy({ $0 >= 0 }) else {
                throw .invalidTensorLayout(path: path, tensor: name, reason: "negative or huge shape \(shape) or offsets \(offsets)")
            }
            var elementCount: Int64 = 1
            for d in shape {
                let (product, overflow) = elementCount.multipliedReportingOverflow(by: d)
                guard !overflow, product <= Int64(dataSize) else {
                    throw .invalidTensorLayout(path: path, tensor: name,
                                               reason: "shape \(shape) needs more bytes than the file's \(dataSize)")
                }
                elementCount = product
            }
            guard offsets[0] <= offsets[1], offsets[1] <= Int64(dataSize) else {
                throw .invalidTensorLayout(path: path, tensor: name,
                                           reason: "data_offsets \(offsets) lie outside the data section of \(dataSize) bytes")
            }
            guard offsets[1] - offsets[0] == elementCount * Int64(elementSize) else {
                throw .invalidTensorLayout(path: path, tensor: name,
                                           reason: "data_offsets \(offsets) span \(offsets[1] - offsets[0]) bytes, shape \(shape) of \(dtype) needs \(elementCount * Int64(elementSize))")
            }
            let range = Int(offsets[0])..<Int(offsets[1])
            ranges.append((range, name))
            let values = Self.floats(from: bytes, at: dataStart + range.lowerBound, count: Int(elementCount), dtype: dtype)
            tensors[name] = Tensor(shape: shape.map { Int($0) }, values: values)
        }
        ranges.sort { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(ranges, ranges.dropFirst()) where a.range.upperBound > b.range.lowerBound {
            throw .invalidTensorLayout(path: path, tensor: b.name, reason: "its bytes \(b.range) overlap tensor '\(a.name)' at \(a.range)")
        }
        self.metadata = metadata
        self.tensors = tensors
    }

    /// The header (padded with spaces to a multiple of 8 bytes, its length first) and the tensors in name order.
    private func layout() -> (header: [UInt8], names: [String]) {
        let names = tensors.keys.sorted()
        var entries: [String: Any] = [:]
        if !metadata.isEmpty { entries["__metadata__"] = metadata }
        var offset = 0
        for name in names {
            let tensor = tensors[name]!
            entries[name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + 4 * tensor.values.count]]
            offset += 4 * tensor.values.count
        }
        var header = [UInt8]((try? JSONSerialization.data(withJSONObject: entries, options: [.sortedKeys])) ?? Data("{}".utf8))
        while header.count % 8 != 0 { header.append(0x20) }
        let length = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(header.count) >> (8 * UInt64($0))) }
        return (length + header, names)
    }

    /// Calls `sink` with the file's bytes, piece by piece: the header, then each tensor's little-endian floats.
    private func forEachPiece(_ sink: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        let (header, names) = layout()
        try header.withUnsafeBytes { try sink($0) }
        for name in names {
            try tensors[name]!.values.withUnsafeBufferPointer { values in
                #if _endian(little)
                try sink(UnsafeRawBufferPointer(values))
                #else
                try values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { try sink($0) }
                #endif
            }
        }
    }

    /// The file's bytes.
    public func serialized() -> [UInt8] {
        var bytes: [UInt8] = []
        forEachPiece { (piece: UnsafeRawBufferPointer) in bytes.append(contentsOf: piece) }
        return bytes
    }

    /// Writes the file atomically: to a temporary file in the same folder, flushed to disk, then renamed over
    /// `path`. A crash at any moment leaves either the previous file or the new one, never a mixture.
    public func write(to path: String) throws(CheckpointError) {
        try writeAtomically(to: path) { (file) throws(CheckpointError) in
            do {
                try forEachPiece { try file.write($0) }
            } catch let error as CheckpointError {
                throw error
            } catch {
                throw .writeFailed(path: path, reason: "\(error)")
            }
        }
    }
}
