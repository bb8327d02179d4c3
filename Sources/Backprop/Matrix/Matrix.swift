/// The memory behind one or more matrices: a 64-byte aligned, zero-initialised block of `Float`s.
///
/// A `MatrixStorage` is shared by every ``Matrix`` that views it; it is freed when the last view goes away.
public final class MatrixStorage: @unchecked Sendable {
    /// The first element.
    @usableFromInline let pointer: UnsafeMutablePointer<Float>
    /// How many `Float`s the block holds.
    public let count: Int

    /// Allocates `count` zeroed `Float`s.
    public init(count: Int) {
        precondition(count >= 0, "MatrixStorage: count must be non-negative, got \(count)")
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
        self.count = count
    }

    deinit { pointer.deallocate() }
}

/// A row-major matrix of `Float`s: `rows × columns` contiguous elements, `self[i, j]` at `i·columns + j`.
///
/// A `Matrix` is a *view*: it names a contiguous range of a ``MatrixStorage``. Copies of a `Matrix`, and the
/// views made by ``rows(_:)`` and ``reshaped(rows:columns:)``, share their elements, as NumPy arrays and PyTorch
/// tensors do; writing through one is seen through all. ``copy()`` makes an independent matrix.
/// This is what lets a network keep every layer's parameters in one contiguous buffer (see ``Network``).
///
/// Shapes are checked: misuse stops with a precondition failure that names the shapes involved.
public struct Matrix: Sendable {
    /// The number of rows.
    public let rows: Int
    /// The number of columns.
    public let columns: Int
    /// The storage viewed.
    public let storage: MatrixStorage
    /// The index in `storage` of element `[0, 0]`.
    public let offset: Int

    /// The number of elements, `rows · columns`.
    @inlinable public var count: Int { rows * columns }

    /// The shape as text, `"rows×columns"`, for messages.
    public var shapeDescription: String { "\(rows)×\(columns)" }

    /// A new zero-filled `rows × columns` matrix with storage of its own.
    public init(rows: Int, columns: Int) {
        precondition(rows >= 0 && columns >= 0, "Matrix: shape must be non-negative, got \(rows)×\(columns)")
        self.init(rows: rows, columns: columns, storage: MatrixStorage(count: rows * columns), offset: 0)
    }

    /// A new `rows × columns` matrix holding `values` in row-major order.
    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns,
                     "Matrix: \(values.count) values cannot fill a \(rows)×\(columns) matrix")
        self.init(rows: rows, columns: columns)
        values.withUnsafeBufferPointer { source in
            pointer.update(from: source.baseAddress!, count: source.count)
        }
    }

    /// A new matrix from nested rows: `Matrix([[1, 2], [3, 4]])` is 2×2.
    public init(_ rowValues: [[Float]]) {
        let columns = rowValues.first?.count ?? 0
        for (i, row) in rowValues.enumerated() {
            precondition(row.count == columns,
                         "Matrix: row \(i) has \(row.count) values, row 0 has \(columns)")
        }
        self.init(rows: rowValues.count, columns: columns, values: rowValues.flatMap { $0 })
    }

    /// A view of `rows × columns` elements of `storage`, starting at `offset`.
    public init(rows: Int, columns: Int, storage: MatrixStorage, offset: Int) {
        precondition(rows >= 0 && columns >= 0, "Matrix: shape must be non-negative, got \(rows)×\(columns)")
        precondition(offset >= 0 && offset + rows * columns <= storage.count,
                     "Matrix: a \(rows)×\(columns) view at offset \(offset) does not fit in storage of \(storage.count) elements")
        self.rows = rows
        self.columns = columns
        self.storage = storage
        self.offset = offset
    }

    /// The first element. Valid only while this matrix (or another view of its storage) is alive.
    @inlinable var pointer: UnsafeMutablePointer<Float> { storage.pointer + offset }

    /// The elements as a buffer, valid only while this matrix is alive; for kernels.
    @inlinable var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    /// Calls `body` with the elements in row-major order, for reading.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(storage) { try body(UnsafeBufferPointer(buffer)) }
    }

    /// Calls `body` with the elements in row-major order, for reading and writing (seen by every view).
    public func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try withExtendedLifetime(storage) { try body(buffer) }
    }

    /// The element in row `row`, column `column`. Setting it writes through to every view of the storage.
    @inlinable public subscript(row: Int, column: Int) -> Float {
        get {
            precondition(row >= 0 && row < rows && column >= 0 && column < columns,
                         "Matrix: index [\(row), \(column)] is outside a \(rows)×\(columns) matrix")
            return storage.pointer[offset + row * columns + column]
        }
        nonmutating set {
            precondition(row >= 0 && row < rows && column >= 0 && column < columns,
                         "Matrix: index [\(row), \(column)] is outside a \(rows)×\(columns) matrix")
            storage.pointer[offset + row * columns + column] = newValue
        }
    }

    /// A view of the rows in `range` (row-major rows are contiguous, so this is a batch of samples).
    public func rows(_ range: Range<Int>) -> Matrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows,
                     "Matrix: rows \(range) are outside a \(rows)×\(columns) matrix")
        return Matrix(rows: range.count, columns: columns, storage: storage, offset: offset + range.lowerBound * columns)
    }

    /// A view of the same elements with another shape of the same element count.
    public func reshaped(rows newRows: Int, columns newColumns: Int) -> Matrix {
        precondition(newRows * newColumns == count,
                     "Matrix: cannot reshape \(rows)×\(columns) to \(newRows)×\(newColumns)")
        return Matrix(rows: newRows, columns: newColumns, storage: storage, offset: offset)
    }

    /// An independent copy with storage of its own.
    public func copy() -> Matrix {
        let result = Matrix(rows: rows, columns: columns)
        result.pointer.update(from: pointer, count: count)
        return result
    }

    /// Copies the elements of `source`, which must have this matrix's shape.
    public func assign(_ source: Matrix) {
        precondition(source.rows == rows && source.columns == columns,
                     "Matrix.assign: source is \(source.shapeDescription), destination is \(shapeDescription)")
        pointer.update(from: source.pointer, count: count)
    }

    /// Sets every element to `value` (split between the threads for large matrices, see ``Parallel``).
    public func fill(_ value: Float) {
        var job = (pointer: pointer, value: value)
        Parallel.forEachBufferChunk(of: count, context: &job) { context, start, end in
            let job = context.load(as: (pointer: UnsafeMutablePointer<Float>, value: Float).self)
            (job.pointer + start).update(repeating: job.value, count: end - start)
        }
    }

    /// The elements in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(buffer)) }

    /// The elements as nested rows.
    public var rowArrays: [[Float]] {
        (0..<rows).map { i in Array(UnsafeBufferPointer(start: pointer + i * columns, count: columns)) }
    }

    /// The transpose, as a new matrix.
    public func transposed() -> Matrix {
        let result = Matrix(rows: columns, columns: rows)
        for i in 0..<rows {
            for j in 0..<columns { result.pointer[j * rows + i] = pointer[i * columns + j] }
        }
        return result
    }
}

extension Matrix: CustomStringConvertible {
    public var description: String {
        let shown = rowArrays.prefix(8).map { row in
            "[" + row.prefix(8).map { String($0) }.joined(separator: ", ") + (row.count > 8 ? ", …" : "") + "]"
        }
        return "Matrix \(shapeDescription) [" + shown.joined(separator: ",\n ") + (rows > 8 ? ",\n …" : "") + "]"
    }
}

extension Matrix: Equatable {
    /// Two matrices are equal when their shapes and elements are equal (not when they share storage).
    public static func == (lhs: Matrix, rhs: Matrix) -> Bool {
        lhs.rows == rhs.rows && lhs.columns == rhs.columns
            && (0..<lhs.count).allSatisfy { lhs.pointer[$0] == rhs.pointer[$0] }
    }
}
