import Backprop
import FuzzDriver

/// libFuzzer entry point: any bytes, as an IDX file (raw or gzip), must give a file or a `DataError`, never a
/// crash, a trap or a sanitizer report.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let file = try IDXFile(bytes: bytes, path: "fuzz")
        precondition(file.bytes.count == file.dimensions.reduce(1, *), "IDXFile: payload and dimensions disagree")
    } catch {
        _ = error.description
    }
    return 0
}

@_cdecl("FuzzIDX_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzIDX)  // see FuzzDriver
}
