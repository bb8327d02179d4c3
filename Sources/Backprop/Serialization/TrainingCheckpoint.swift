/// A checkpoint from which training can resume exactly: the model (as ``Checkpoint`` writes it, so `evaluate`
/// and `predict` read it too) plus the optimizer's state buffers (tensors `optimizer.<name>`, e.g.
/// `optimizer.exp_avg`), its type and step count, the epochs completed, the shuffling generator's state and the
/// trainer's random index (dropout masks).
///
/// Resuming from it and training on gives weights bit-for-bit identical to a run that was never interrupted
/// (with one BLAS thread; more threads may sum in another order). The optimizer tensors make the file a training
/// checkpoint rather than a plain state_dict: load it into PyTorch with `strict=False`, or save the model alone
/// with ``Checkpoint/save(_:to:metadata:)``.
public enum TrainingCheckpoint {
    /// Metadata keys.
    public enum Key {
        public static let epoch = "backprop.epoch"
        public static let generator = "backprop.generator"
        public static let optimizerSteps = "backprop.optimizer.steps"
        public static let optimizerType = "backprop.optimizer.type"
        public static let randomIndex = "backprop.random_index"
        /// Written by earlier versions, one per dropout layer (all equal); read when ``randomIndex`` is absent.
        public static let dropoutPrefix = "backprop.dropout."
        public static let optimizerTensorPrefix = "optimizer."
    }

    /// The most epochs or optimizer steps a checkpoint may count (2⁵³, beyond any run).
    static let largestCount = 1 << 53

    /// Saves `trainer`'s network and training state to `path`, atomically.
    public static func save(_ trainer: Trainer, to path: String, metadata: [String: String] = [:]) throws(CheckpointError) {
        var file = try Checkpoint.file(for: trainer.network, metadata: metadata)
        let state = trainer.optimizer.state
        for (name, buffer) in state.buffers {
            file.tensors[Key.optimizerTensorPrefix + name] = SafetensorsFile.Tensor(shape: [buffer.count], values: buffer.scalars)
        }
        file.metadata[Key.optimizerSteps] = String(state.stepCount)
        file.metadata[Key.epoch] = String(trainer.epochsCompleted)
        let g = trainer.generator.state
        file.metadata[Key.generator] = [g.0, g.1, g.2, g.3].map { String($0) }.joined(separator: ",")
        file.metadata[Key.optimizerType] = optimizerTypeName(trainer.optimizer)
        file.metadata[Key.randomIndex] = String(trainer.randomIndex)
        try file.checkFinite(path: path)  // a diverged run is never written over a good checkpoint
        try file.write(to: path)
    }

    /// Restores the training state in `file` into `trainer`, whose network must have been loaded from the same
    /// file (``Checkpoint/network(from:path:)``) and whose optimizer must be of the kind that wrote it.
    public static func restore(_ trainer: Trainer, from file: SafetensorsFile, path: String) throws(CheckpointError) {
        func number<T: FixedWidthInteger>(_ key: String, as: T.Type) throws(CheckpointError) -> T {
            guard let text = file.metadata[key], let value = T(text) else {
                throw .invalidArchitecture(path: path, reason: "no training state: metadata '\(key)' is missing or not a number")
            }
            return value
        }
        let epoch = try number(Key.epoch, as: Int.self), steps = try number(Key.optimizerSteps, as: Int.self)
        guard epoch >= 0, steps >= 0 else {
            throw .invalidArchitecture(path: path, reason: "the training state counts \(epoch) epochs and \(steps) optimizer steps; neither can be negative")
        }
        // Counts no run reaches, which the next step or epoch would overflow (a step count of Int.max trapped).
        guard epoch <= Self.largestCount, steps <= Self.largestCount else {
            throw .invalidArchitecture(path: path, reason: "the training state counts \(epoch) epochs and \(steps) optimizer steps; neither can be above 2^53")
        }
        let words = (file.metadata[Key.generator] ?? "").split(separator: ",").compactMap { UInt64($0) }
        guard words.count == 4, words.contains(where: { $0 != 0 }) else {  // all zeros: xoshiro would draw 0 forever
            throw .invalidArchitecture(path: path, reason: "metadata '\(Key.generator)' is not four numbers, not all zero")
        }
        var buffers: [String: Matrix] = [:]
        for (name, tensor) in file.tensors where name.hasPrefix(Key.optimizerTensorPrefix) {
            guard tensor.values.allSatisfy(\.isFinite) else { throw .nonFiniteValues(path: path, tensor: name) }
            guard tensor.values.count == trainer.network.parameterCount else {
                throw .shapeMismatch(path: path, tensor: name, expected: [trainer.network.parameterCount], found: tensor.shape)
            }
            buffers[String(name.dropFirst(Key.optimizerTensorPrefix.count))] =
                Matrix(rows: 1, columns: tensor.values.count, values: tensor.values)
        }
        if let saved = file.metadata[Key.optimizerType], saved != optimizerTypeName(trainer.optimizer) {
            throw .invalidArchitecture(path: path, reason: "the training state is that of \(saved), not of \(optimizerTypeName(trainer.optimizer)); resume with the same optimizer")
        }
        if let expected = trainer.optimizer.stateBufferNames {
            let present = Set(buffers.keys), kind = optimizerTypeName(trainer.optimizer)
            let missing = expected.subtracting(present).sorted(), unexpected = present.subtracting(expected).sorted()
            if steps > 0, !missing.isEmpty {
                throw .invalidArchitecture(path: path, reason: "the training state after \(steps) steps lacks \(missing.map { "optimizer.\($0)" }.joined(separator: ", ")), which \(kind) as configured keeps; resume with the optimizer settings that wrote it")
            }
            if !unexpected.isEmpty {
                throw .invalidArchitecture(path: path, reason: "the training state has \(unexpected.map { "optimizer.\($0)" }.joined(separator: ", ")), which \(kind) as configured does not keep (another momentum, centering or amsgrad setting wrote it); resume with the same optimizer settings")
            }
        }
        let randomIndex: UInt64
        if file.metadata[Key.randomIndex] != nil {
            randomIndex = try number(Key.randomIndex, as: UInt64.self)
        } else if let key = file.metadata.keys.filter({ $0.hasPrefix(Key.dropoutPrefix) }).min() {
            randomIndex = try number(key, as: UInt64.self)
        } else {
            randomIndex = 0
        }
        trainer.optimizer.restore(OptimizerState(stepCount: steps, buffers: buffers))
        trainer.epochsCompleted = epoch
        trainer.randomIndex = randomIndex
        trainer.generator.state = (words[0], words[1], words[2], words[3])
    }
}

/// The name of an optimizer's type, as checkpoints record it (`Adam`, `SGD`).
func optimizerTypeName(_ optimizer: any Optimizer) -> String { String(describing: type(of: optimizer)) }
