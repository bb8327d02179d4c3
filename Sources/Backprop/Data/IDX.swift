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
        let data = try readDecompressed(path)
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
        if data.count < expected {
            throw .truncated(path: path, expectedBytes: expected, foundBytes: data.count)
        }
        if data.count > expected {
            throw .trailingBytes(path: path, expectedBytes: expected, foundBytes: data.count)
        }
        self.dimensions = dimensions
        self.bytes = Array(data[headerSize...])
    }
}

extension String {
    fileprivate init(format2 a: UInt8, _ b: UInt8) {
        func hex(_ x: UInt8) -> String { (x < 16 ? "0" : "") + String(x, radix: 16, uppercase: true) }
        self = hex(a) + " " + hex(b)
    }
}

/// The whole content of `path`, decompressed if it is gzip.
func readDecompressed(_ path: String) throws(DataError) -> [UInt8] {
    var status = stat()
    guard stat(path, &status) == 0 else {
        if errno == ENOENT { throw .fileNotFound(path: path) }
        throw .unreadable(path: path, reason: String(cString: strerror(errno)))
    }
    guard (status.st_mode & S_IFMT) == S_IFREG else {
        throw .unreadable(path: path, reason: "not a regular file")
    }
    guard let file = gzopen(path, "rb") else {
        throw .unreadable(path: path, reason: String(cString: strerror(errno)))
    }
    defer { gzclose_r(file) }
    gzbuffer(file, 1 << 17)
    var result: [UInt8] = []
    result.reserveCapacity(Int(status.st_size))
    let chunk = 1 << 20
    var buffer = [UInt8](repeating: 0, count: chunk)
    while true {
        let read = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(chunk)) }
        if read < 0 {
            var code: Int32 = 0
            let message = gzerror(file, &code).map { String(cString: $0) } ?? "unknown error"
            throw .unreadable(path: path, reason: "corrupt gzip data (\(message))")
        }
        if read == 0 { break }
        result.append(contentsOf: buffer[0..<Int(read)])
    }
    var code: Int32 = 0
    let message = gzerror(file, &code).map { String(cString: $0) } ?? ""
    if code != Z_OK {
        throw .unreadable(path: path, reason: "corrupt or truncated gzip data (\(message))")
    }
    return result
}
