/// Why a data file could not be used. Each case names the file, what was expected and what was found.
public enum DataError: Error, Equatable, Sendable, CustomStringConvertible {
    /// There is no file at `path`.
    case fileNotFound(path: String)
    /// The file exists but could not be read (permissions, a folder, an I/O error, corrupt compression).
    case unreadable(path: String, reason: String)
    /// The file ends inside its header, which needs `expectedBytes`.
    case truncated(path: String, expectedBytes: Int, foundBytes: Int)
    /// The file holds fewer or more bytes than its header's `dimensions` call for (`expectedBytes`, header included).
    /// `compressed`: the bytes counted are the decompressed ones; inflating stops soon after the claimed size, so a
    /// larger `foundBytes` is then only what was inflated when it stopped.
    case payloadSize(path: String, dimensions: [Int], expectedBytes: Int, foundBytes: Int, compressed: Bool)
    /// The header at `offset` does not say what an IDX file must.
    case badHeader(path: String, offset: Int, expected: String, found: String)
    /// The file is well formed but not what this use needs (e.g. 28×28 images expected, 32×32 found).
    case unexpectedContent(path: String, expected: String, found: String)
    /// A label is outside `0..<classCount`.
    case labelOutOfRange(path: String, index: Int, label: Int, classCount: Int)
    /// Two files that go together disagree (the test images' size and the training images').
    case mismatch(expected: String, found: String)
    /// An image file and its label file hold different counts (the first dimension of their headers).
    case countMismatch(imagesPath: String, images: Int, labelsPath: String, labels: Int)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            "\(path): no such file"
        case .unreadable(let path, let reason):
            "\(path): cannot be read: \(reason)"
        case .truncated(let path, let expected, let found):
            "\(path): truncated: its header needs \(expected) bytes, the file has \(found)"
        case .payloadSize(let path, let dimensions, let expected, let found, let compressed):
            payloadSizeDescription(path: path, dimensions: dimensions, expected: expected, found: found, compressed: compressed)
        case .badHeader(let path, let offset, let expected, let found):
            "\(path): bad IDX header at offset \(offset): expected \(expected), found \(found)"
        case .unexpectedContent(let path, let expected, let found):
            "\(path): expected \(expected), found \(found)"
        case .labelOutOfRange(let path, let index, let label, let classCount):
            "\(path): label \(label) (item \(index), byte \(8 + index)) is outside the \(classCount) classes 0...\(classCount - 1)"
        case .mismatch(let expected, let found):
            "expected \(expected), found \(found)"
        case .countMismatch(let imagesPath, let images, let labelsPath, let labels):
            "\(imagesPath) holds \(images) images but \(labelsPath) holds \(labels) labels (the counts in their headers must agree)"
        }
    }

    /// "truncated: its header gives 60000×28×28 elements (47040016 bytes with the 16-byte header), but the file has
    /// 47039000 bytes (1016 missing)", or the same with extra bytes.
    private func payloadSizeDescription(path: String, dimensions: [Int], expected: Int, found: Int, compressed: Bool) -> String {
        let header = 4 + 4 * dimensions.count
        let claim = "its header gives \(dimensions.map(String.init).joined(separator: "×")) elements (\(expected) bytes with the \(header)-byte header)"
        if found < expected {
            return "\(path): truncated: \(claim), but the file \(compressed ? "decompresses to" : "has") \(found) bytes (\(expected - found) missing)"
        }
        return compressed
            ? "\(path): \(claim), but the file decompresses to more than that (inflating stopped there): extra data after the last element"
            : "\(path): \(claim), but the file has \(found) bytes (\(found - expected) extra after the last element)"
    }
}
