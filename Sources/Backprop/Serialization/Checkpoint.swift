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
        /// The top-level layers' names when they are not `0`, `1`, … (a JSON array of strings).
        public static let layerNames = "backprop.layer_names"
        public static let format = "format"
    }

    /// The safetensors contents for `network`, with `metadata` added to the architecture's. Throws
    /// ``CheckpointError/unsupportedLayer(type:)`` for a layer that is not a registered ``SavableLayer``.
    public static func file(for network: Network, metadata: [String: String] = [:]) throws(CheckpointError) -> SafetensorsFile {
        var tensors: [String: SafetensorsFile.Tensor] = [:]
        for entry in network.stateDict {
            tensors[entry.name] = SafetensorsFile.Tensor(shape: entry.shape, values: entry.values)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]  // the same network always gives the same bytes
        let layers: Data
        do {
            layers = try encoder.encode(network.layers.map(LayerDescription.init))
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw .invalidArchitecture(path: "", reason: "cannot describe the layers (\(error))")
        }
        var allMetadata = metadata
        allMetadata[Key.format] = "pt"  // what safetensors.torch writes; PyTorch tooling expects it
        allMetadata[Key.inputSize] = String(network.inputSize)
        allMetadata[Key.layers] = String(decoding: layers, as: UTF8.self)
        if network.body.names != network.layers.indices.map(String.init) {
            allMetadata[Key.layerNames] = String(decoding: (try? encoder.encode(network.body.names)) ?? Data(), as: UTF8.self)
        }
        return SafetensorsFile(metadata: allMetadata, tensors: tensors)
    }

    /// Saves `network` to `path` atomically: to a temporary file in the same folder, flushed, then renamed over `path`.
    /// A network with a NaN or infinite parameter or buffer is not written
    /// (``CheckpointError/nonFiniteValues(path:tensor:)``); any previous file at `path` stays.
    public static func save(_ network: Network, to path: String, metadata: [String: String] = [:]) throws(CheckpointError) {
        let file = try file(for: network, metadata: metadata)
        try file.checkFinite(path: path)
        try file.write(to: path)
    }

    /// Loads a network saved by ``save(_:to:metadata:)``, with its metadata.
    public static func load(from path: String) throws(CheckpointError) -> (network: Network, metadata: [String: String]) {
        try network(from: SafetensorsFile(contentsOf: path), path: path)
    }

    /// Builds the network a safetensors file describes (`path` is only for messages). Layer types come from the
    /// ``LayerRegistry``, so a user's own registered layers load too.
    public static func network(from file: SafetensorsFile, path: String) throws(CheckpointError) -> (network: Network, metadata: [String: String]) {
        guard let layersText = file.metadata[Key.layers], let inputText = file.metadata[Key.inputSize] else {
            throw .invalidArchitecture(path: path, reason: "the metadata has no '\(Key.layers)' and '\(Key.inputSize)'")
        }
        guard let inputSize = Int(inputText), inputSize > 0, inputSize <= 1 << 24 else {
            throw .invalidArchitecture(path: path, reason: "input size '\(inputText)' is not a number in 1...\(1 << 24)")
        }
        // Layers are built one by one, each charged to what the file's tensors can fill (with 2²⁰ to spare, so that a
        // small layer without its tensors is reported by name below), so that a header claiming huge layers fails
        // before it allocates more than one of them.
        let layers: [any Layer]
        do {
            let decoder = JSONDecoder()
            decoder.userInfo[LayerDescription.budgetKey] = ParameterBudget(file.tensors.values.reduce(1 << 20) { $0 + $1.values.count })
            layers = try decoder.decode([LayerDescription].self, from: Data(layersText.utf8)).map(\.layer)
        } catch let error as InvalidLayerSettings {
            throw .invalidArchitecture(path: path, reason: error.description)
        } catch let error as DecodingError {
            throw .invalidArchitecture(path: path, reason: "cannot read the layer list: \(describe(error))")
        } catch {
            throw .invalidArchitecture(path: path, reason: "cannot read the layer list (\(error))")
        }
        guard !layers.isEmpty else { throw .invalidArchitecture(path: path, reason: "the layer list is empty") }
        var size = inputSize
        for (index, layer) in layers.enumerated() {
            guard let next = layer.outputSizeIfAccepted(forInputSize: size) else {
                throw .invalidArchitecture(path: path, reason: "layer \(index) (\(type(of: layer))) cannot take \(size) inputs")
            }
            size = next
        }
        var names: [String]?
        if let text = file.metadata[Key.layerNames] {
            guard let decoded = try? JSONDecoder().decode([String].self, from: Data(text.utf8)),
                  Sequential.areValid(decoded, count: layers.count) else {
                throw .invalidArchitecture(path: path, reason: "'\(Key.layerNames)' is not \(layers.count) distinct names without '.'")
            }
            names = decoded
        }
        let network = Network(inputSize: inputSize, layers: layers, names: names)
        try network.loadStateDict(file.tensors, path: path, strict: false)  // refuses non-finite tensors too
        return (network, file.metadata)
    }
}

/// Where in the layer list decoding failed, and why, in a line (JSONDecoder's own text says "not valid JSON" even
/// for a number out of range).
func describe(_ error: DecodingError) -> String {
    func place(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        let underlying = (context.underlyingError as? NSError).map { " (\($0.userInfo[NSDebugDescriptionErrorKey] ?? $0.localizedDescription))" } ?? ""
        return (path.isEmpty ? "" : "at \(path): ") + context.debugDescription + underlying
    }
    switch error {
    case .typeMismatch(let type, let context): return place(context) + " (expected \(type))"
    case .valueNotFound(let type, let context): return place(context) + " (expected \(type))"
    case .keyNotFound(let key, let context): return place(context) + " (no '\(key.stringValue)')"
    case .dataCorrupted(let context): return place(context)
    @unknown default: return "\(error)"
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
