@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

/// A safetensors file with a hand-made header and data section.
func safetensorsBytes(header: String, data: [UInt8] = []) -> [UInt8] {
    var headerBytes = Array(header.utf8)
    while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
    let n = UInt64(headerBytes.count)
    return (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + headerBytes + data
}

@Suite("Checkpoints")
struct CheckpointTests {
    @Test func roundTripIsExact() throws {
        let folder = TemporaryFolder()
        let network = Network(inputSize: 5, layers: [
            Dense(inputSize: 5, outputSize: 7, initializer: .heNormal, seed: 1), GELU(approximation: .tanh),
            Dropout(probability: 0.3, seed: 9), Dense(inputSize: 7, outputSize: 4, initializer: .pytorchDefault, seed: 2),
            LeakyReLU(negativeSlope: 0.2), Dense(inputSize: 4, outputSize: 3, seed: 3),
        ])
        let path = "\(folder.path)/model.safetensors"
        try network.save(to: path, metadata: ["note": "hello"])
        let (loaded, metadata) = try Checkpoint.load(from: path)
        #expect(loaded.parameters.scalars.map(\.bitPattern) == network.parameters.scalars.map(\.bitPattern))
        #expect(try describe(loaded.layers) == describe(network.layers))
        #expect(metadata["note"] == "hello" && metadata["format"] == "pt")
        let x = randomMatrix(6, 5, seed: 4)
        #expect(loaded(x) == network(x))
    }

    @Test func namesAndLayoutsFollowPyTorchSequential() throws {
        let network = Network(sizes: [3, 4, 2], activation: .relu, initializer: .xavierUniform, seed: 5)
        let file = try Checkpoint.file(for: network)
        #expect(Set(file.tensors.keys) == ["0.weight", "0.bias", "2.weight", "2.bias"])
        let dense = network.layers[0] as! Dense
        let weight = try #require(file.tensors["0.weight"])
        #expect(weight.shape == [4, 3] && file.tensors["0.bias"]?.shape == [4])
        #expect(weight.values == dense.weight.transposed().scalars)  // nn.Linear keeps W as out × in
        // The bytes parse back to the same tensors, and the header is 8-byte aligned.
        let bytes = file.serialized()
        let reparsed = try SafetensorsFile(bytes: bytes, path: "memory")
        #expect(reparsed.tensors == file.tensors && reparsed.metadata == file.metadata)
        #expect(Int(bytes[0]) % 8 == 0)
    }

    /// A file written by the Python safetensors library from a PyTorch model gives PyTorch's outputs.
    @Test func loadsAFileWrittenByPyTorch() throws {
        let network = try Network.load(from: "\(fixtures)/torch-sequential.safetensors")
        let output = network(Matrix([[0.5, -1.0, 2.0], [0.0, 0.25, -0.75]]))
        expectClose(output.scalars, [-0.07085598260164261, -0.059851646423339844, -0.23972468078136444, -0.1452234983444214],
                    relative: 1e-5, absolute: 1e-6)
    }

    @Test func malformedFilesThrowDescriptiveErrors() {
        func error(_ bytes: [UInt8]) -> CheckpointError? {
            do { _ = try Checkpoint.network(from: SafetensorsFile(bytes: bytes, path: "m"), path: "m"); return nil }
            catch { return error }
        }
        let layers = #"[{"type":"dense","inputSize":1,"outputSize":2}]"#
            .replacingOccurrences(of: "\"", with: "\\\"")
        let meta = #""__metadata__":{"backprop.layers":"\#(layers)","backprop.input_size":"1"}"#
        let floats: [UInt8] = [UInt8](repeating: 0, count: 16)
        #expect(error([1, 2, 3]) == .truncated(path: "m", expectedBytes: 8, foundBytes: 3))
        #expect(error([200, 0, 0, 0, 0, 0, 0, 0, 0x7B]) == .truncated(path: "m", expectedBytes: 208, foundBytes: 9))
        #expect(error([0, 0, 0, 0, 0, 0, 0, 1]).map { "\($0)" }?.contains("exceeds") == true)
        #expect(error(safetensorsBytes(header: "{not json")).map { "\($0)" }?.contains("not valid JSON") == true)
        #expect(error(safetensorsBytes(header: #"{"0.weight":{"dtype":"F16","shape":[2,1],"data_offsets":[0,4]}}"#, data: floats))
                == .unsupportedDataType(path: "m", tensor: "0.weight", dataType: "F16"))
        #expect(error(safetensorsBytes(header: #"{"0.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[8,16]}}"#, data: [0, 0, 0, 0]))
                .map { "\($0)" }?.contains("outside the data section") == true)
        #expect(error(safetensorsBytes(header: #"{"0.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[0,12]}}"#, data: floats))
                .map { "\($0)" }?.contains("needs 8") == true)
        #expect(error(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: floats))
                .map { "\($0)" }?.contains("overlap") == true)
        #expect(error(safetensorsBytes(header: #"{"0.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]}}"#, data: floats))
                == .invalidArchitecture(path: "m", reason: "the metadata has no 'backprop.layers' and 'backprop.input_size'"))
        #expect(error(safetensorsBytes(header: "{\(meta),\"0.weight\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]}}", data: floats))
                == .missingTensor(path: "m", tensor: "0.bias"))
        #expect(error(safetensorsBytes(header: "{\(meta),\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]},\"0.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", data: floats))
                == .shapeMismatch(path: "m", tensor: "0.weight", expected: [2, 1], found: [1, 2]))
        // And the well-formed version of the same file loads.
        #expect(error(safetensorsBytes(header: "{\(meta),\"0.weight\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]},\"0.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", data: floats)) == nil)
    }

    @Test func customLayersCannotBeSaved() {
        let network = Network(inputSize: 2, layers: [SigmoidWithoutDerivative()])
        #expect(throws: CheckpointError.unsupportedLayer(type: "SigmoidWithoutDerivative")) {
            try network.save(to: "/tmp/never-written.safetensors")
        }
    }

    @Test func failedWritesLeaveThePreviousFile() throws {
        let folder = TemporaryFolder()
        let path = "\(folder.path)/model.safetensors"
        try writeAtomically([1, 2, 3], to: path)
        try writeAtomically([4, 5], to: path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data([4, 5]))
        #expect { try writeAtomically([6], to: "\(folder.path)/missing/model.safetensors") } throws: { error in
            guard case .writeFailed("\(folder.path)/missing/model.safetensors", _)? = error as? CheckpointError else { return false }
            return true
        }
        // No temporary files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["model.safetensors"])
    }
}
