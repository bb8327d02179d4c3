import Backprop
import Foundation
import FuzzDriver

/// libFuzzer entry point: the bytes are the JSON header of an otherwise valid safetensors file (the 8-byte
/// little-endian length in front, and after it a data section as long as the header's largest `data_offsets` end, up
/// to 4 MB, of small finite floats), so that the fuzzer explores the metadata rather than the framing: the network
/// description (`backprop.layers`, `backprop.input_size`, layer names), the tensors' dtypes and shapes, the text
/// model's vocabulary, a table model's schema and a training checkpoint's state. Whatever the header says, the file
/// must give a network, a text model, a table model and a resumed trainer, or throw, never crash, trap or draw a
/// sanitizer report.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensorsMetadata(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let header = Array(UnsafeBufferPointer(start: data, count: size))
    var dataSize = 0
    if let object = try? JSONSerialization.jsonObject(with: Data(header)) as? [String: Any] {
        for case let entry as [String: Any] in object.values {
            if let offsets = entry["data_offsets"] as? [NSNumber], offsets.count == 2 {
                dataSize = max(dataSize, min(Int(clamping: offsets[1].int64Value), 4 << 20))
            }
        }
    }
    var bytes = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(header.count) >> (8 * UInt64($0))) } + header
    bytes.reserveCapacity(bytes.count + dataSize)
    for i in 0..<dataSize { bytes.append([0x0A, 0xD7, 0x23, 0x3C][i % 4]) }  // 0.01 as a little-endian F32
    do {
        let file = try SafetensorsFile(bytes: bytes, path: "fuzz")
        let (network, metadata) = try Checkpoint.network(from: file, path: "fuzz")
        let small = network.parameterCount < 1_000_000 && network.inputSize < 10_000 && network.layerOutputSizes.allSatisfy { $0 < 10_000 }
        if small { _ = network(Matrix(rows: 2, columns: network.inputSize)) }
        if metadata[TextModel.vocabularyKey] != nil, let model = try? TextModel.load(from: file, path: "fuzz"), small {
            _ = try? model.sample(length: 4, temperature: 1, prime: [model.vocabulary[0]], seed: 1)
        }
        if let json = metadata["table"], let schema = TableSchema(json: json),
           schema.inconsistency(inputs: network.inputSize, outputs: network.outputSize) == nil, small {
            // One row of the schema's columns (the first category of a text column, 1 for a number), as evaluate reads it.
            let names = schema.features.map(\.name) + [schema.target]
            let cells = schema.features.map { $0.categories?.first ?? "1" }
                + [schema.task == .classification ? schema.classes.first ?? "1" : "1"]
            func field(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
            let csv = names.map(field).joined(separator: ",") + "\n" + cells.map(field).joined(separator: ",") + "\n"
            if let table = try? Table(bytes: Array(csv.utf8), path: "fuzz.csv", separator: UInt8(ascii: ",")),
               let rows = try? schema.dataset(from: table) {
                let standardized = schema.standardization.map { rows.standardized(by: $0) } ?? rows
                let outputs = network(standardized.batch(at: 0..<standardized.count).input)
                if schema.task == .regression { schema.standardization?.restoreTargets(outputs) }
            }
        }
        if metadata[TrainingCheckpoint.Key.epoch] != nil, small {
            let optimizers: [any Optimizer] = [SGD(learningRate: 0.1), SGD(learningRate: 0.1, momentum: 0.9), Adam(), AdamW(),
                                               Adam(amsgrad: true), RMSprop(), RMSprop(centered: true), Adagrad(), Adadelta()]
            for optimizer in optimizers {
                let trainer = Trainer(network: network, loss: MeanSquaredError(), optimizer: optimizer, batchSize: 2)
                guard (try? TrainingCheckpoint.restore(trainer, from: file, path: "fuzz")) != nil else { continue }
                _ = try? trainer.trainStep(input: Matrix(rows: 2, columns: network.inputSize),
                                           targets: Matrix(rows: 2, columns: network.outputSize))
            }
        }
    } catch {
        _ = error.description
    }
    return 0
}

@_cdecl("FuzzSafetensorsMetadata_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzSafetensorsMetadata)  // see FuzzDriver
}
