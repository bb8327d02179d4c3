import Foundation

/// A text corpus for a character-level language model: the bytes of some files, its vocabulary (the distinct
/// bytes, in increasing order) and each byte as an index into it. The last 5 % is for validation, as in
/// `torch_charlm.py` (10 % for the GPT model, as in `torch_gpt.py`: `trainingFraction: 0.9`).
public struct TextCorpus: Sendable {
    /// The distinct bytes, in increasing order (at most 256).
    public let vocabulary: [UInt8]
    /// Each byte of the corpus as its index in ``vocabulary``.
    public let ids: [UInt8]
    /// Where validation starts: `⌊trainingFraction·count⌋` (`⌊0.95·count⌋` by default).
    public let validationStart: Int

    /// The training part of ``ids``.
    public var training: ArraySlice<UInt8> { ids[..<validationStart] }
    /// The validation part of ``ids``.
    public var validation: ArraySlice<UInt8> { ids[validationStart...] }

    /// The corpus of `files`, concatenated in order. Throws for a missing, unreadable, empty or binary file (one
    /// with a NUL byte, which no text has).
    public init(files: [String], trainingFraction: Double = 0.95) throws(DataError) {
        precondition(!files.isEmpty, "TextCorpus: no files")
        var bytes: [UInt8] = []
        for path in files {
            var status = stat()
            guard stat(path, &status) == 0 else {
                if errno == ENOENT { throw .fileNotFound(path: path) }
                throw .unreadable(path: path, reason: String(cString: strerror(errno)))
            }
            guard (status.st_mode & S_IFMT) != S_IFDIR else { throw .unreadable(path: path, reason: "it is a directory") }
            guard (status.st_mode & S_IFMT) == S_IFREG else {
                throw .unreadable(path: path, reason: "not a regular file (a device, FIFO or socket)")
            }
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
                throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
            }
            guard !data.isEmpty else { throw .unexpectedContent(path: path, expected: "text", found: "an empty file") }
            if let zero = data.firstIndex(of: 0) {
                throw .unexpectedContent(path: path, expected: "text", found: "a binary file (a NUL byte at offset \(zero - data.startIndex))")
            }
            bytes.append(contentsOf: data)
        }
        self.init(bytes: bytes, trainingFraction: trainingFraction)
    }

    /// The corpus of `bytes` (not empty), the first `trainingFraction` of it for training.
    public init(bytes: [UInt8], trainingFraction: Double = 0.95) {
        precondition(!bytes.isEmpty, "TextCorpus: no bytes")
        precondition(trainingFraction > 0 && trainingFraction <= 1, "TextCorpus: the training fraction must be in (0, 1], got \(trainingFraction)")
        var present = [Bool](repeating: false, count: 256)
        for byte in bytes { present[Int(byte)] = true }
        vocabulary = (0..<256).filter { present[$0] }.map { UInt8($0) }
        var index = [UInt8](repeating: 0, count: 256)
        for (i, byte) in vocabulary.enumerated() { index[Int(byte)] = UInt8(i) }
        ids = bytes.map { index[Int($0)] }
        validationStart = Int(Double(bytes.count) * trainingFraction)
    }

    /// How many steps of `sequenceLength` each of `streams` contiguous streams of `part` gives: the streams are
    /// `⌊(count − 1)/streams⌋` long (each input byte has a next byte to predict).
    public static func chunkCount(_ part: ArraySlice<UInt8>, streams: Int, sequenceLength: Int) -> Int {
        guard streams > 0, sequenceLength > 0, part.count > 1 else { return 0 }
        return ((part.count - 1) / streams) / sequenceLength
    }
}
