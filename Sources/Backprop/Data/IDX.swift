import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file in the IDX format of MNIST: a big-endian header, then the elements in row-major order.
///
/// Header: two zero bytes; the element type (`0x08` unsigned byte — the only type MNIST uses and the only one
/// read here); the number of dimensions `d`; then `d` sizes as big-endian `UInt32`. The file may be gzip
/// compressed (as distributed) or raw; zlib tells them apart by content, not by name.
public struct IDXFile: Sendable {
    /// The sizes of the dimensions, outermost first (`[60000, 28, 28]` for MNIST training images).
    public let dimensions: [Int]
    /// The elements, `dimensions.reduce(1, *)` bytes.
    public let bytes: [UInt8]

    /// Reads and validates the IDX file at `path` (gzip or raw).
    public init(contentsOf path: String) throws(DataError) {
        try self.init(bytes: readFile(path), path: path)
    }

    /// Parses and validates an IDX file held in memory (gzip or raw); `path` is only for messages.
    public init(bytes: [UInt8], path: String) throws(DataError) {
        let compressed = bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
        var data = try decompressIfGzip(bytes, path: path, expectedSize: IDXFile.expectedSize)
        func byte(_ i: Int) -> Int { Int(data[i]) }
        guard data.count >= 4 else {
            throw .truncated(path: path, expectedBytes: 4, foundBytes: data.count)
        }
        guard data[0] == 0, data[1] == 0 else {
            throw .badHeader(path: path, offset: 0, expected: "magic bytes 00 00",
                             found: String(format2: data[0], data[1]))
        }
        guard data[2] == 0x08 else {
            throw .badHeader(path: path, offset: 2, expected: "element type 0x08 (unsigned byte)",
                             found: "0x" + String(data[2], radix: 16, uppercase: true))
        }
        let dimensionCount = byte(3)
        guard dimensionCount >= 1 else {
            throw .badHeader(path: path, offset: 3, expected: "at least 1 dimension", found: "0")
        }
        let headerSize = 4 + 4 * dimensionCount
        guard data.count >= headerSize else {
            throw .truncated(path: path, expectedBytes: headerSize, foundBytes: data.count)
        }
        var dimensions: [Int] = []
        var elementCount = 1
        for d in 0..<dimensionCount {
            let o = 4 + 4 * d
            let size = byte(o) << 24 | byte(o + 1) << 16 | byte(o + 2) << 8 | byte(o + 3)
            let (product, overflow) = elementCount.multipliedReportingOverflow(by: size)
            guard !overflow, product <= 1 << 40 else {
                throw .badHeader(path: path, offset: o, expected: "dimensions whose product fits in memory",
                                 found: "dimension \(d) of size \(size)")
            }
            dimensions.append(size)
            elementCount = product
        }
        let expected = headerSize + elementCount
        guard data.count == expected else {
            throw .payloadSize(path: path, dimensions: dimensions, expectedBytes: expected, foundBytes: data.count,
                               compressed: compressed)
        }
        self.dimensions = dimensions
        data.removeSubrange(0..<headerSize)  // in place: no second copy of the payload
        self.bytes = data
    }
}

extension IDXFile {
    /// How long a decompressed IDX file must be, judged from its first bytes as they are inflated: unknown while the
    /// header is incomplete, then the header's size plus the element count; `stop` for a header that cannot be
    /// valid (inflating stops there and the parser reports the header).
    static func expectedSize(_ data: [UInt8]) -> InflateLimit {
        guard data.count >= 4 else { return .unknown }
        guard data[0] == 0, data[1] == 0, data[2] == 0x08, data[3] >= 1 else { return .stop }
        let headerSize = 4 + 4 * Int(data[3])
        guard data.count >= headerSize else { return .unknown }
        var count = 1
        for d in 0..<Int(data[3]) {
            let o = 4 + 4 * d
            let size = Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3])
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow, product <= 1 << 40 else { return .stop }
            count = product
        }
        return .size(headerSize + count)
    }
}

extension String {
    fileprivate init(format2 a: UInt8, _ b: UInt8) {
        func hex(_ x: UInt8) -> String { (x < 16 ? "0" : "") + String(x, radix: 16, uppercase: true) }
        self = hex(a) + " " + hex(b)
    }
}

/// What inflating may produce, as far as the bytes so far tell.
enum InflateLimit { case unknown, stop, size(Int) }

/// `raw`, decompressed if it starts with the gzip magic bytes `1F 8B` (`path` is only for messages).
///
/// The gzip stream is inflated with zlib's `inflate` (not `gzread`, whose "transparent" mode would pass a corrupt
/// stream through as if it were raw data), so a truncated or corrupt file is an error. Concatenated gzip members
/// are read one after another, as `gunzip` does.
///
/// With `expectedSize` (given the bytes inflated so far, the length the whole must have, once it can tell), the output
/// is allocated once at that length (or at what the input can inflate to, if less), and inflating stops as soon as the output passes it: the bytes returned are then
/// one more than the length claimed, for the caller to report (``DataError/payloadSize(path:dimensions:expectedBytes:foundBytes:compressed:)``),
/// so a small file that would inflate to gigabytes is never held whole in memory. Inflating also stops when
/// `expectedSize` says `stop` (a header that cannot be valid), returning what it has for the caller to report.
func decompressIfGzip(_ raw: [UInt8], path: String, expectedSize: (([UInt8]) -> InflateLimit)? = nil) throws(DataError) -> [UInt8] {
    guard raw.count >= 2, raw[0] == 0x1F, raw[1] == 0x8B else { return raw }
    var stream = z_stream()
    guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw .unreadable(path: path, reason: "zlib could not start inflating")
    }
    defer { inflateEnd(&stream) }
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    var consumed = 0
    var finished = false, stoppedEarly = false
    var limit: Int?  // the length the whole must have, once known
    try raw.withUnsafeBufferPointer { (input) throws(DataError) in
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!)
        stream.avail_in = UInt32(input.count)
        while true {
            // Until the header tells the length, small steps (an IDX header is at most 1 024 bytes); then never more
            // than one byte past it.
            let room = limit.map { max(1, $0 + 1 - output.count) } ?? (expectedSize == nil ? Int.max : 4096)
            let (status, produced) = chunk.withUnsafeMutableBufferPointer { buffer in
                stream.next_out = buffer.baseAddress!
                stream.avail_out = UInt32(min(buffer.count, room))
                let status = inflate(&stream, Z_NO_FLUSH)
                return (status, Int(UInt32(min(buffer.count, room)) - stream.avail_out))
            }
            output.append(contentsOf: chunk[0..<produced])
            consumed = input.count - Int(stream.avail_in)
            if limit == nil {
                switch expectedSize?(output) ?? .unknown {
                case .unknown: break
                case .stop:
                    stoppedEarly = true  // a header that cannot be valid: the parser reports it
                    return
                case .size(let size):
                    limit = size
                    // Deflate expands at most 1 032-fold: a header claiming more than the input can give is not
                    // allocated for (a 33-byte file claiming 2⁴⁰ bytes made the allocation fail).
                    output.reserveCapacity(min(size, 1032 * raw.count) + 1)
                }
            }
            if let limit, output.count > limit {
                stoppedEarly = true  // more than the header claims: the parser reports the sizes
                return
            }
            switch status {
            case Z_STREAM_END:
                finished = true
                // Another gzip member follows? Start it; otherwise done.
                if stream.avail_in >= 2, input[consumed] == 0x1F, input[consumed + 1] == 0x8B {
                    guard inflateReset(&stream) == Z_OK else {
                        throw .unreadable(path: path, reason: "zlib could not restart at offset \(consumed)")
                    }
                    finished = false
                    continue
                }
                return
            case Z_OK:
                continue
            case Z_BUF_ERROR where stream.avail_in == 0:
                return  // input exhausted before the end of the stream: reported below
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                throw .unreadable(path: path, reason: "corrupt gzip data near compressed offset \(consumed) (\(message))")
            }
        }
    }
    if stoppedEarly { return output }
    guard finished else {
        throw .unreadable(path: path, reason: "truncated gzip data: the stream ends without its end marker after \(raw.count) bytes")
    }
    if consumed < raw.count {
        throw .unreadable(path: path, reason: "\(raw.count - consumed) bytes of garbage after the gzip stream at offset \(consumed)")
    }
    return output
}

/// The gzip path of the data files, for the fuzz target: `bytes` inflated as ``decompressIfGzip(_:path:expectedSize:)``
/// inflates them (returned as they are if they are not gzip), bounded by an IDX header as ``IDXFile`` reads them when
/// `boundedByIDXHeader`.
@_spi(Internals) public func inflateDataFile(_ bytes: [UInt8], path: String, boundedByIDXHeader: Bool) throws(DataError) -> [UInt8] {
    if boundedByIDXHeader { return try decompressIfGzip(bytes, path: path, expectedSize: IDXFile.expectedSize) }
    return try decompressIfGzip(bytes, path: path)
}

/// The length an IDX file whose first bytes are `prefix` must have, if its header is complete and valid (for the fuzz
/// target's bound on inflating).
@_spi(Internals) public func idxExpectedSize(_ prefix: [UInt8]) -> Int? {
    if case .size(let size) = IDXFile.expectedSize(prefix) { return size }
    return nil
}

/// The bytes of the file at `path`.
func readFile(_ path: String) throws(DataError) -> [UInt8] {
    var status = stat()
    guard stat(path, &status) == 0 else {
        if errno == ENOENT { throw .fileNotFound(path: path) }
        throw .unreadable(path: path, reason: String(cString: strerror(errno)))
    }
    guard (status.st_mode & S_IFMT) == S_IFREG else {
        throw .unreadable(path: path, reason: "not a regular file")
    }
    guard let file = fopen(path, "rb") else {
        throw .unreadable(path: path, reason: String(cString: strerror(errno)))
    }
    defer { fclose(file) }
    var result = [UInt8](repeating: 0, count: Int(status.st_size))
    let read = result.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
    guard read == result.count else {
        throw .unreadable(path: path, reason: "read \(read) of \(result.count) bytes (\(String(cString: strerror(errno))))")
    }
    return result
}
