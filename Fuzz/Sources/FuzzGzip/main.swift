@_spi(Internals) import Backprop
import FuzzDriver

/// libFuzzer entry point: any bytes, as a gzip data file (the gzip magic bytes are put in front when missing, so every
/// input reaches zlib), must inflate or throw `DataError`, never crash, trap or draw a sanitizer report. Inflated as a
/// data file is (bounded by its IDX header), the output never runs more than 4 KB past the size the header claims.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGzip(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if !(bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B) { bytes = [0x1F, 0x8B] + bytes }
    do {
        _ = try inflateDataFile(bytes, path: "fuzz", boundedByIDXHeader: false)
    } catch {
        _ = error.description
    }
    do {
        let inflated = try inflateDataFile(bytes, path: "fuzz", boundedByIDXHeader: true)
        if let claimed = idxExpectedSize(inflated) {
            precondition(inflated.count <= claimed + 4096, "inflated \(inflated.count) bytes for an IDX header claiming \(claimed)")
        }
        // What IDXFile makes of the same bytes agrees with the bound: a file, or an error.
        if let file = try? IDXFile(bytes: bytes, path: "fuzz") {
            precondition(file.bytes.count == file.dimensions.reduce(1, *), "IDXFile: payload and dimensions disagree")
        }
    } catch {
        _ = error.description
    }
    return 0
}

@_cdecl("FuzzGzip_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzGzip)  // see FuzzDriver
}
