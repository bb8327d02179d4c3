import Backprop

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

// SwiftPM links an executable target's entry point as `FuzzIDX_main` (it renames `main` so that tests can link
// executables); that function hands control to libFuzzer's driver with the entry point above.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzIDX_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments, fuzzIDX)
}
