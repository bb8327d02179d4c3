import Backprop

/// libFuzzer entry point: any bytes, as a checkpoint, must give a network or a `CheckpointError`, never a crash,
/// a trap or a sanitizer report. A network that loads is run once on a zero input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let file = try SafetensorsFile(bytes: bytes, path: "fuzz")
        let (network, _) = try Checkpoint.network(from: file, path: "fuzz")
        if network.parameterCount < 1_000_000 && network.layerOutputSizes.allSatisfy({ $0 < 10_000 }) {
            _ = network(Matrix(rows: 1, columns: network.inputSize))
        }
    } catch {
        _ = error.description
    }
    return 0
}

// SwiftPM links an executable target's entry point as `FuzzCheckpoint_main` (it renames `main` so that tests can link
// executables); that function hands control to libFuzzer's driver with the entry point above.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzCheckpoint_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments, fuzzCheckpoint)
}
