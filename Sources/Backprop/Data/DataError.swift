/// Why a data file could not be used. Each case names the file, what was expected and what was found.
public enum DataError: Error, Equatable, Sendable, CustomStringConvertible {
    /// There is no file at `path`.
    case fileNotFound(path: String)
    /// The file exists but could not be read (permissions, a folder, an I/O error, corrupt compression).
    case unreadable(path: String, reason: String)
    /// The file is shorter than its header or its dimensions say.
    case truncated(path: String, expectedBytes: Int, foundBytes: Int)
    /// The file has bytes beyond what its dimensions say.
    case trailingBytes(path: String, expectedBytes: Int, foundBytes: Int)
    /// The header at `offset` does not say what an IDX file must.
    case badHeader(path: String, offset: Int, expected: String, found: String)
    /// The file is well formed but not what this use needs (e.g. 28×28 images expected, 32×32 found).
    case unexpectedContent(path: String, expected: String, found: String)
    /// A label is outside `0..<classCount`.
    case labelOutOfRange(path: String, index: Int, label: Int, classCount: Int)
    /// Two files that go together disagree (image and label counts).
    case mismatch(expected: String, found: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            "\(path): no such file"
        case .unreadable(let path, let reason):
            "\(path): cannot be read: \(reason)"
        case .truncated(let path, let expected, let found):
            "\(path): truncated: expected \(expected) bytes, found \(found)"
        case .trailingBytes(let path, let expected, let found):
            "\(path): expected \(expected) bytes, found \(found) (extra data after the last element)"
        case .badHeader(let path, let offset, let expected, let found):
            "\(path): bad IDX header at offset \(offset): expected \(expected), found \(found)"
        case .unexpectedContent(let path, let expected, let found):
            "\(path): expected \(expected), found \(found)"
        case .labelOutOfRange(let path, let index, let label, let classCount):
            "\(path): label \(label) of item \(index) (offset \(8 + index)) is outside 0..<\(classCount)"
        case .mismatch(let expected, let found):
            "expected \(expected), found \(found)"
        }
    }
}
