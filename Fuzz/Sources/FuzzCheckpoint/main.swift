import Backprop
import FuzzDriver

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

@_cdecl("FuzzCheckpoint_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzCheckpoint)  // see FuzzDriver
}
