/// Why a checkpoint could not be read or written. Each case names the file and what was expected and found.
public enum CheckpointError: Error, Equatable, Sendable, CustomStringConvertible {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    /// The file is shorter than its header says.
    case truncated(path: String, expectedBytes: Int, foundBytes: Int)
    /// The 8-byte header length, or the header's JSON, is not valid.
    case invalidHeader(path: String, reason: String)
    /// A tensor has a dtype other than F32.
    case unsupportedDataType(path: String, tensor: String, dataType: String)
    /// A tensor's byte range is outside the data section, disagrees with its shape, or overlaps another's.
    case invalidTensorLayout(path: String, tensor: String, reason: String)
    /// A tensor the architecture needs is absent.
    case missingTensor(path: String, tensor: String)
    /// A tensor's shape disagrees with the architecture.
    case shapeMismatch(path: String, tensor: String, expected: [Int], found: [Int])
    /// The metadata does not describe a network this library can build.
    case invalidArchitecture(path: String, reason: String)
    /// A layer of the network cannot be described in a checkpoint.
    case unsupportedLayer(type: String)
    /// Writing failed; any previous file at `path` is untouched.
    case writeFailed(path: String, reason: String)
    /// A tensor holds NaN or infinite values: such a model is never written, and reading one is an error.
    case nonFiniteValues(path: String, tensor: String)
    /// A state dict does not fit the network: tensors it lacks, tensors the network does not have, and tensors of
    /// another shape (`name: found, expected …`), as PyTorch's `load_state_dict(strict=True)` reports them.
    case stateDictMismatch(path: String, missing: [String], unexpected: [String], misshaped: [String])

    public var description: String {
        switch self {
        case .fileNotFound(let path): "\(path): no such file"
        case .unreadable(let path, let reason): "\(path): cannot be read: \(reason)"
        case .truncated(let path, let expected, let found):
            "\(path): truncated: expected at least \(expected) bytes, found \(found)"
        case .invalidHeader(let path, let reason): "\(path): invalid safetensors header: \(reason)"
        case .unsupportedDataType(let path, let tensor, let dataType):
            "\(path): tensor '\(tensor)' has dtype \(dataType); only F32, F64, I64 and I32 are read"
        case .invalidTensorLayout(let path, let tensor, let reason): "\(path): tensor '\(tensor)': \(reason)"
        case .missingTensor(let path, let tensor): "\(path): tensor '\(tensor)' is missing"
        case .shapeMismatch(let path, let tensor, let expected, let found):
            "\(path): tensor '\(tensor)' has shape \(found), the architecture needs \(expected)"
        case .invalidArchitecture(let path, let reason): "\(path): not a Backprop model: \(reason)"
        case .unsupportedLayer(let type):
            "a \(type) layer cannot be saved in a checkpoint: make it a SavableLayer and register it with LayerRegistry.register(\(type).self)"
        case .writeFailed(let path, let reason): path.isEmpty ? "an empty path cannot be written" : "\(path): cannot be written: \(reason)"
        case .nonFiniteValues(let path, let tensor):
            "\(path): tensor '\(tensor)' holds NaN or infinite values (did training diverge?); such a model is not saved or loaded"
        case .stateDictMismatch(let path, let missing, let unexpected, let misshaped):
            "\(path): the tensors do not fit the network: " + [
                missing.isEmpty ? nil : "missing \(missing.joined(separator: ", "))",
                unexpected.isEmpty ? nil : "unexpected \(unexpected.joined(separator: ", "))",
                misshaped.isEmpty ? nil : "other shape \(misshaped.joined(separator: "; "))",
            ].compactMap { $0 }.joined(separator: "; ")
        }
    }
}
