/// One tensor of a network's state dict: its PyTorch name and shape, and its values in PyTorch's layout.
public struct StateDictEntry: Sendable, Equatable {
    /// The name, as in the `state_dict()` of the matching `torch.nn.Sequential` (`0.weight`, `2.body.1.running_mean`).
    public var name: String
    /// PyTorch's shape, outermost first (`[]` for a scalar such as `num_batches_tracked`).
    public var shape: [Int]
    /// The elements in row-major order of that shape.
    public var values: [Float]
    /// Whether the tensor is trained (a parameter) or only saved (a buffer: running statistics).
    public var isParameter: Bool
}

extension Network {
    /// Every tensor the network saves, by PyTorch name: each layer's parameters then its buffers, in layer order,
    /// walking containers through their ``Layer/children``. The values are copies, in PyTorch's layout (a dense
    /// layer's weight transposed to `out × in`).
    public var stateDict: [StateDictEntry] {
        namedTensors.map { entry in
            let stored = entry.transposed ? entry.tensor.transposed() : entry.tensor
            return StateDictEntry(name: entry.name, shape: entry.shape, values: stored.scalars, isParameter: entry.isParameter)
        }
    }

    /// The ranges of ``parameters`` holding the tensors PyTorch gives two or more dimensions (weights and
    /// embeddings, not biases or normalization scales), in order: the tensors that `p.dim() >= 2` selects for
    /// weight decay (``AdamW/decayedRanges``). Adjacent tensors share a range.
    public var matrixParameterRanges: [Range<Int>] {
        var ranges: [Range<Int>] = []
        for entry in namedTensors where entry.isParameter && entry.shape.count >= 2 {
            let start = entry.tensor.offset - parameters.offset, range = start..<(start + entry.tensor.count)
            if let last = ranges.last, last.upperBound == range.lowerBound {
                ranges[ranges.count - 1] = last.lowerBound..<range.upperBound
            } else {
                ranges.append(range)
            }
        }
        return ranges
    }

    /// The network's tensors (views) with their PyTorch names and shapes.
    var namedTensors: [(name: String, tensor: Matrix, shape: [Int], transposed: Bool, isParameter: Bool)] {
        zip(body.names, layers).flatMap { index, layer in
            let parameters = zip(layer.parameterNames, layer.parameters).map { name, tensor in
                (index.isEmpty ? name.name : "\(index).\(name.name)", tensor, name.shape, name.transposed, true)
            }
            let buffers = layer.stateTensors.map { name, tensor in  // 1 × 1 counters are 0-dimensional in PyTorch
                (index.isEmpty ? name : "\(index).\(name)", tensor, tensor.count == 1 ? [Int]() : [tensor.count], false, false)
            }
            return parameters + buffers
        }
    }

    /// Sets the network's parameters and buffers from `tensors`, by PyTorch name (``stateDict``'s names), as
    /// `load_state_dict` does. Everything is checked before anything changes. When `strict`, every tensor the network
    /// needs that is missing, every one whose shape differs and every one the network does not have are reported
    /// together in ``CheckpointError/stateDictMismatch(path:missing:unexpected:misshaped:)``; otherwise tensors the
    /// network does not have are ignored (a training checkpoint's optimizer state), and the first missing or
    /// mis-shaped tensor is reported (``CheckpointError/missingTensor(path:tensor:)``,
    /// ``CheckpointError/shapeMismatch(path:tensor:expected:found:)``). A tensor holding NaN or infinity is refused
    /// (``CheckpointError/nonFiniteValues(path:tensor:)``). `path` is only for messages.
    public func loadStateDict(_ tensors: [String: SafetensorsFile.Tensor], path: String = "state dict",
                              strict: Bool = true) throws(CheckpointError) {
        let expected = namedTensors
        var missing: [String] = [], misshaped: [String] = []
        for entry in expected {
            guard let stored = tensors[entry.name] else { missing.append(entry.name); continue }
            if stored.shape != entry.shape { misshaped.append("\(entry.name): \(stored.shape), expected \(entry.shape)") }
        }
        let names = Set(expected.map(\.name))
        let unexpected = strict ? tensors.keys.filter { !names.contains($0) }.sorted() : []
        if !strict, let name = missing.first { throw .missingTensor(path: path, tensor: name) }
        if !strict, let entry = expected.first(where: { entry in tensors[entry.name].map { $0.shape != entry.shape } ?? false }),
           let stored = tensors[entry.name] {
            throw .shapeMismatch(path: path, tensor: entry.name, expected: entry.shape, found: stored.shape)
        }
        guard missing.isEmpty && unexpected.isEmpty && misshaped.isEmpty else {
            throw .stateDictMismatch(path: path, missing: missing, unexpected: unexpected, misshaped: misshaped)
        }
        for entry in expected where !tensors[entry.name]!.values.allSatisfy(\.isFinite) {
            throw .nonFiniteValues(path: path, tensor: entry.name)
        }
        for entry in expected {
            let values = tensors[entry.name]!.values  // presence and shape were checked above
            let matrix = entry.transposed
                ? Matrix(rows: entry.tensor.columns, columns: entry.tensor.rows, values: values).transposed()
                : Matrix(rows: entry.tensor.rows, columns: entry.tensor.columns, values: values)
            entry.tensor.assign(matrix)
        }
    }

    /// Sets the network's parameters and buffers from a safetensors file of its state dict, such as one written by
    /// `safetensors.torch.save_file(model.state_dict(), path)` for the matching PyTorch module; strict, as
    /// ``loadStateDict(_:path:strict:)``.
    public func loadStateDict(contentsOf path: String, strict: Bool = true) throws(CheckpointError) {
        try loadStateDict(SafetensorsFile(contentsOf: path).tensors, path: path, strict: strict)
    }
}
