import Foundation

/// Saving and loading networks as safetensors files that PyTorch reads directly.
///
/// Tensor names and layouts follow the state_dict of the matching `torch.nn.Sequential`: every layer counts as
/// a module (activations and dropout too), so a 784-128-10 ReLU network is saved as `0.weight` (128 × 784, as
/// `nn.Linear` stores it), `0.bias`, `2.weight`, `2.bias`, and
///
/// ```python
/// model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
/// model.load_state_dict(safetensors.torch.load_file("model.safetensors"))
/// ```
///
/// gives the same predictions. The metadata records the architecture (`backprop.layers`, `backprop.input_size`,
/// and for people `architecture` and `activation`) and whatever the caller adds (training settings, results).
public enum Checkpoint {
    /// The metadata keys this library writes and reads.
    public enum Key {
        public static let layers = "backprop.layers"
        public static let inputSize = "backprop.input_size"
        public static let format = "format"
    }

    /// The safetensors contents for `network`, with `metadata` added to the architecture's.
    public static func file(for network: Network, metadata: [String: String] = [:]) throws(CheckpointError) -> SafetensorsFile {
        var specifications: [LayerSpecification] = []
        var tensors: [String: SafetensorsFile.Tensor] = [:]
        for (index, (layer, size)) in zip(network.layers, [network.inputSize] + network.layerOutputSizes).enumerated() {
            guard let specification = layer.specification else { throw .unsupportedLayer(type: "\(type(of: layer))") }
            specifications.append(specification)
            let shapes = specification.expectedTensors(inputSize: size)
            for ((name, transposed), tensor) in zip(specification.tensorNames, layer.parameters) {
                let stored = transposed ? tensor.transposed() : tensor
                let shape = shapes.first { $0.name == name }?.shape ?? (tensor.rows == 1 && !transposed ? [tensor.columns] : [stored.rows, stored.columns])
                tensors["\(index).\(name)"] = SafetensorsFile.Tensor(shape: shape, values: stored.scalars)
            }
            for (name, tensor) in layer.stateTensors {  // 1 × 1 counters are 0-dimensional in PyTorch
                tensors["\(index).\(name)"] = SafetensorsFile.Tensor(shape: tensor.count == 1 ? [] : [tensor.count],
                                                                    values: tensor.scalars)
            }
        }
        var allMetadata = metadata
        allMetadata[Key.format] = "pt"  // what safetensors.torch writes; PyTorch tooling expects it
        allMetadata[Key.inputSize] = String(network.inputSize)
        allMetadata[Key.layers] = String(decoding: (try? JSONEncoder().encode(specifications)) ?? Data(), as: UTF8.self)
        return SafetensorsFile(metadata: allMetadata, tensors: tensors)
    }

    /// Saves `network` to `path` atomically (see ``writeAtomically(_:to:)``).
    public static func save(_ network: Network, to path: String, metadata: [String: String] = [:]) throws(CheckpointError) {
        try file(for: network, metadata: metadata).write(to: path)
    }

    /// Loads a network saved by ``save(_:to:metadata:)``, with its metadata.
    public static func load(from path: String) throws(CheckpointError) -> (network: Network, metadata: [String: String]) {
        try network(from: SafetensorsFile(contentsOf: path), path: path)
    }

    /// Builds the network a safetensors file describes (`path` is only for messages).
    public static func network(from file: SafetensorsFile, path: String) throws(CheckpointError) -> (network: Network, metadata: [String: String]) {
        guard let layersText = file.metadata[Key.layers], let inputText = file.metadata[Key.inputSize] else {
            throw .invalidArchitecture(path: path, reason: "the metadata has no '\(Key.layers)' and '\(Key.inputSize)'")
        }
        guard let inputSize = Int(inputText), inputSize > 0 else {
            throw .invalidArchitecture(path: path, reason: "input size '\(inputText)' is not a positive number")
        }
        let specifications: [LayerSpecification]
        do {
            specifications = try JSONDecoder().decode([LayerSpecification].self, from: Data(layersText.utf8))
        } catch {
            throw .invalidArchitecture(path: path, reason: "cannot read the layer list (\(error))")
        }
        guard !specifications.isEmpty else { throw .invalidArchitecture(path: path, reason: "the layer list is empty") }
        // Every layer must fit, and every tensor must be present with the right shape, before anything is allocated
        // for the network: a header that claims huge layers fails here instead of exhausting memory.
        var size = inputSize
        for (index, specification) in specifications.enumerated() {
            for (name, expected) in specification.expectedTensors(inputSize: size) {
                guard expected.allSatisfy({ $0 > 0 && $0 <= 1 << 24 }) else {
                    throw .invalidArchitecture(path: path, reason: "layer \(index) has a tensor of shape \(expected)")
                }
                let key = "\(index).\(name)"
                guard let stored = file.tensors[key] else { throw .missingTensor(path: path, tensor: key) }
                guard stored.shape == expected else {
                    throw .shapeMismatch(path: path, tensor: key, expected: expected, found: stored.shape)
                }
            }
            guard let next = specification.outputSize(forInputSize: size) else {
                throw .invalidArchitecture(path: path, reason: "layer \(index) (\(specification)) cannot take \(size) inputs")
            }
            size = next
        }
        let network = Network(inputSize: inputSize, layers: specifications.map { $0.makeLayer() })
        for (index, (layer, specification)) in zip(network.layers, specifications).enumerated() {
            for ((name, transposed), tensor) in zip(specification.tensorNames, layer.parameters) {
                let stored = file.tensors["\(index).\(name)"]!  // presence and shape were checked above
                let matrix = transposed ? Matrix(rows: tensor.columns, columns: tensor.rows, values: stored.values).transposed()
                                        : Matrix(rows: tensor.rows, columns: tensor.columns, values: stored.values)
                tensor.assign(matrix)
            }
            for (name, tensor) in layer.stateTensors {  // shapes were checked above
                tensor.assign(Matrix(rows: 1, columns: tensor.count, values: file.tensors["\(index).\(name)"]!.values))
            }
        }
        return (network, file.metadata)
    }
}

extension Network {
    /// Saves the network as a PyTorch-compatible safetensors file (see ``Checkpoint``).
    public func save(to path: String, metadata: [String: String] = [:]) throws(CheckpointError) {
        try Checkpoint.save(self, to: path, metadata: metadata)
    }

    /// Loads a network saved by ``save(to:metadata:)``.
    public static func load(from path: String) throws(CheckpointError) -> Network {
        try Checkpoint.load(from: path).network
    }
}
