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

    /// Reads and validates the IDX file at `path` (gzip or raw), streaming: a gzip file is inflated as it is read,
    /// into one buffer of the size its header claims (never held compressed and inflated at once), and a raw file's
    /// size is checked against its header before its payload is read; so neither a file larger than its header says
    /// nor one that inflates far beyond it costs more memory than the size claimed.
    public init(contentsOf path: String) throws(DataError) {
        let (file, size) = try openRegularFile(path)
        defer { fclose(file) }
        func read(_ buffer: UnsafeMutableRawBufferPointer) throws(DataError) -> Int {
            let n = fread(buffer.baseAddress, 1, buffer.count, file)
            if n < buffer.count && ferror(file) != 0 {
                throw .unreadable(path: path, reason: "read failed: \(String(cString: strerror(errno)))")
            }
            return n
        }
        /// `read` into bytes `range` of `array`.
        func read(into array: inout [UInt8], _ range: Range<Int>) throws(DataError) -> Int {
            try array.withUnsafeMutableBytes { buffer in
                Result { () throws(DataError) in try read(UnsafeMutableRawBufferPointer(rebasing: buffer[range])) }
            }.get()
        }
        // The first bytes: the gzip magic, or a raw header (at most 4 + 4 · 255 bytes).
        var first = [UInt8](repeating: 0, count: min(size, 4 + 4 * 255))
        let count = try read(into: &first, 0..<first.count)
        first.removeSubrange(count...)
        if first.count >= 2 && first[0] == 0x1F && first[1] == 0x8B {
            var served = 0
            var data = try inflateGzip(path: path, size: size, expectedSize: IDXFile.expectedSize) { (buffer) throws(DataError) in
                if served < first.count {  // the bytes already read first
                    let n = min(buffer.count, first.count - served)
                    first.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + served, byteCount: n) }
                    served += n
                    return n
                }
                return try read(buffer)
            }
            let header = try IDXFile.header(of: data, path: path)
            try self.init(data: &data, header: header, path: path, compressed: true)
        } else {
            let header = try IDXFile.header(of: first, path: path)
            guard size == header.expectedBytes else {  // checked before the payload is read
                throw .payloadSize(path: path, dimensions: header.dimensions, expectedBytes: header.expectedBytes, foundBytes: size,
                                   compressed: false)
            }
            var data = first
            data.reserveCapacity(size)
            data.append(contentsOf: repeatElement(0, count: size - first.count))
            let rest = try read(into: &data, first.count..<size)
            guard first.count + rest == size else {
                throw .unreadable(path: path, reason: "read \(first.count + rest) of \(size) bytes")
            }
            try self.init(data: &data, header: header, path: path, compressed: false)
        }
    }

    /// Parses and validates an IDX file held in memory (gzip or raw); `path` is only for messages.
    public init(bytes: [UInt8], path: String) throws(DataError) {
        let compressed = bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
        var data = try decompressIfGzip(bytes, path: path, expectedSize: IDXFile.expectedSize)
        let header = try IDXFile.header(of: data, path: path)
        try self.init(data: &data, header: header, path: path, compressed: compressed)
    }

    /// The file whose (decompressed) bytes are `data`, with its `header` read: its size must be what the header
    /// claims. The header is removed from `data` in place, so the payload is not copied again.
    private init(data: inout [UInt8], header: Header, path: String, compressed: Bool) throws(DataError) {
        guard data.count == header.expectedBytes else {
            throw .payloadSize(path: path, dimensions: header.dimensions, expectedBytes: header.expectedBytes,
                               foundBytes: data.count, compressed: compressed)
        }
        data.removeSubrange(0..<header.size)
        dimensions = header.dimensions
        bytes = data
    }

    /// A header: the dimensions, its size in bytes, and the size of the whole file it describes.
    struct Header {
        var dimensions: [Int], size: Int, expectedBytes: Int
    }

    /// The header at the start of `data` (the first bytes of a file, or all of them), or the error in it.
    static func header(of data: [UInt8], path: String) throws(DataError) -> Header {
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
        return Header(dimensions: dimensions, size: headerSize, expectedBytes: headerSize + elementCount)
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

/// `raw`, decompressed if it starts with the gzip magic bytes `1F 8B` (`path` is only for messages); see
/// ``inflateGzip(path:size:expectedSize:source:)``.
func decompressIfGzip(_ raw: [UInt8], path: String, expectedSize: (([UInt8]) -> InflateLimit)? = nil) throws(DataError) -> [UInt8] {
    guard raw.count >= 2, raw[0] == 0x1F, raw[1] == 0x8B else { return raw }
    var served = 0
    return try inflateGzip(path: path, size: raw.count, expectedSize: expectedSize) { buffer in
        let n = min(buffer.count, raw.count - served)
        raw.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + served, byteCount: n) }
        served += n
        return n
    }
}

/// Inflates the gzip stream whose `size` compressed bytes `source` gives, piece by piece (it fills the buffer it is
/// handed from the start and returns how many bytes it put there, 0 at the end); `path` is only for messages.
///
/// The stream is inflated with zlib's `inflate` (not `gzread`, whose "transparent" mode would pass a corrupt stream
/// through as if it were raw data), so a truncated or corrupt file is an error, and so are bytes after it that are
/// not another gzip member (those are not read). Concatenated members are read one after another, as `gunzip` does.
///
/// With `expectedSize` (given the bytes inflated so far, the length the whole must have, once it can tell), the output
/// is allocated once at that length (or at what the input can inflate to, if less), and inflating stops as soon as
/// the output passes it: the bytes returned are then more than the length claimed (by at most 4 KB), for the caller
/// to report (``DataError/payloadSize(path:dimensions:expectedBytes:foundBytes:compressed:)``), so a small file that
/// would inflate to gigabytes is never held whole in memory. Inflating also stops when `expectedSize` says `stop` (a
/// header that cannot be valid), returning what it has for the caller to report.
func inflateGzip(path: String, size: Int, expectedSize: (([UInt8]) -> InflateLimit)?,
                 source: (UnsafeMutableRawBufferPointer) throws(DataError) -> Int) throws(DataError) -> [UInt8] {
    var stream = z_stream()
    guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw .unreadable(path: path, reason: "zlib could not start inflating")
    }
    defer { inflateEnd(&stream) }
    let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { input.deallocate() }
    var fed = 0, ended = false
    /// Moves the input not yet inflated to the front of the buffer and reads more after it.
    func refill() throws(DataError) {
        let left = Int(stream.avail_in)
        if left > 0 { memmove(input.baseAddress!, stream.next_in, left) }
        let n = ended ? 0 : try source(UnsafeMutableRawBufferPointer(rebasing: input[left...]))
        if n == 0 { ended = true }
        fed += n
        stream.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.avail_in = UInt32(left + n)
    }
    var consumed: Int { fed - Int(stream.avail_in) }
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    var finished = false, stoppedEarly = false
    var limit: Int?  // the length the whole must have, once known
    inflating: while true {
        if stream.avail_in == 0 && !ended { try refill() }
        // Until the header tells the length, small steps (an IDX header is at most 1 024 bytes); then never more than
        // one byte past it.
        let room = limit.map { max(1, $0 + 1 - output.count) } ?? (expectedSize == nil ? Int.max : 4096)
        let (status, produced) = chunk.withUnsafeMutableBufferPointer { buffer in
            let available = min(buffer.count, room)
            stream.next_out = buffer.baseAddress!
            stream.avail_out = UInt32(available)
            let status = inflate(&stream, Z_NO_FLUSH)
            return (status, available - Int(stream.avail_out))
        }
        output.append(contentsOf: chunk[0..<produced])
        if limit == nil {
            switch expectedSize?(output) ?? .unknown {
            case .unknown: break
            case .stop:
                stoppedEarly = true  // a header that cannot be valid: the parser reports it
                break inflating
            case .size(let claimed):
                limit = claimed
                // Deflate expands at most 1 032-fold: a header claiming more than the input can give is not allocated
                // for (a 33-byte file claiming 2⁴⁰ bytes made the allocation fail).
                output.reserveCapacity(min(claimed, 1032 * size) + 1)
            }
        }
        if let limit, output.count > limit {
            stoppedEarly = true  // more than the header claims: the parser reports the sizes
            break inflating
        }
        switch status {
        case Z_STREAM_END:
            finished = true
            // Another gzip member follows? Start it; otherwise done.
            if stream.avail_in < 2 && !ended { try refill() }
            if stream.avail_in >= 2, stream.next_in[0] == 0x1F, stream.next_in[1] == 0x8B {
                guard inflateReset(&stream) == Z_OK else {
                    throw .unreadable(path: path, reason: "zlib could not restart at offset \(consumed)")
                }
                finished = false
                continue
            }
            break inflating
        case Z_OK:
            continue
        case Z_BUF_ERROR where stream.avail_in == 0:
            if ended { break inflating }  // input exhausted before the end of the stream: reported below
        default:
            let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
            throw .unreadable(path: path, reason: "corrupt gzip data near compressed offset \(consumed) (\(message))")
        }
    }
    if stoppedEarly { return output }
    guard finished else {
        throw .unreadable(path: path, reason: "truncated gzip data: the stream ends without its end marker after \(size) bytes")
    }
    if consumed < size {
        throw .unreadable(path: path, reason: "\(size - consumed) bytes of garbage after the gzip stream at offset \(consumed)")
    }
    return output
}

/// The gzip path of the data files, for the fuzz target: `bytes` inflated as ``inflateGzip(path:size:expectedSize:source:)``
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

/// The file at `path`, opened for reading, and its size; it must be a regular file (a FIFO would wait for ever,
/// `/dev/zero` never end).
func openRegularFile(_ path: String) throws(DataError) -> (file: UnsafeMutablePointer<FILE>, size: Int) {
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
    return (file, Int(status.st_size))
}

/// The bytes of the file at `path`.
func readFile(_ path: String) throws(DataError) -> [UInt8] {
    let (file, size) = try openRegularFile(path)
    defer { fclose(file) }
    var result = [UInt8](repeating: 0, count: size)
    let read = result.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
    guard read == result.count else {
        throw .unreadable(path: path, reason: "read \(read) of \(result.count) bytes (\(String(cString: strerror(errno))))")
    }
    return result
}
