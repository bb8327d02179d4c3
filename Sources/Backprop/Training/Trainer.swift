#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What one epoch of training did.
public struct EpochReport: Sendable {
    /// The epoch's number, from 1.
    public var epoch: Int
    /// The mean per-sample loss over the epoch's batches, each measured before its step.
    public var trainLoss: Float
    /// Seconds spent training (gathering batches, forward, backward, steps); evaluation not included.
    public var seconds: Double
    /// Training samples per second.
    public var samplesPerSecond: Double { seconds > 0 ? Double(sampleCount) / seconds : 0 }
    /// The fraction of training samples whose arg-max output matched their label, each measured before its
    /// batch's step (classification), else `nil`.
    public var trainAccuracy: Double?
    /// With ``Trainer/recordsLayerStatistics``: for each layer that has parameters, in order, the mean over the
    /// epoch's steps of its gradient's L2 norm `‖∂L/∂θ‖₂` (before clipping).
    public var layerGradientNorms: [Double]?
    /// With ``Trainer/recordsLayerStatistics``: for each layer that has parameters, the mean over the epoch's steps
    /// of `‖Δθ‖₂ / ‖θ‖₂`, the size of the update relative to the weights (about 10⁻³ is healthy).
    public var layerUpdateRatios: [Double]?
    /// The number of samples trained on.
    public var sampleCount: Int
    /// The number of optimizer steps taken.
    public var stepCount: Int
}

/// The loss and accuracy of a network on a data set.
public struct Evaluation: Sendable {
    /// The mean per-sample loss.
    public var loss: Float
    /// The fraction of samples whose arg-max output is their label (classification), else `nil`.
    public var accuracy: Double?
    /// The number of samples.
    public var count: Int
    /// `confusion[label][predicted]`: how many samples of each class were predicted as each class
    /// (classification), else `nil`.
    public var confusion: [[Int]]?

    /// For each class, the fraction of its samples predicted correctly (`nil` for a class with no samples).
    public var perClassAccuracy: [Double?]? {
        confusion.map { rows in
            rows.enumerated().map { label, row in
                let total = row.reduce(0, +)
                return total == 0 ? nil : Double(row[label]) / Double(total)
            }
        }
    }
}

/// Why training stopped early.
public enum TrainingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The loss became NaN or infinite.
    case diverged(epoch: Int, batch: Int, loss: Float)
    /// The data does not fit the network.
    case dataMismatch(expected: String, found: String)

    public var description: String {
        switch self {
        case .diverged(let epoch, let batch, let loss):
            "training diverged: the loss is \(loss) at epoch \(epoch), batch \(batch); try a lower learning rate"
        case .dataMismatch(let expected, let found):
            "the data does not fit the network: expected \(expected), found \(found)"
        }
    }
}

/// Trains a ``Network`` with mini-batch gradient descent: each epoch visits the training set in a seeded shuffled
/// order, in batches of ``batchSize``; for each batch the gradients are zeroed, accumulated by forward and
/// backward passes, and applied by the optimizer. A batch size of 0 (or at least the data set's size) is
/// full-batch gradient descent, visited in order.
///
/// Batches larger than ``microBatchSize`` are processed in micro-batches whose gradients accumulate (`β = 1`)
/// before the one step, so memory stays bounded; the result equals one big batch up to summation order.
/// Everything a step needs is allocated when the trainer is made; a step allocates nothing.
public final class Trainer<O: Optimizer> {
    /// The network trained.
    public let network: Network
    /// The loss minimised; its ``Reduction`` applies per batch.
    public let loss: any Loss
    /// The update rule; a `var` so its learning rate can follow a schedule.
    public var optimizer: O
    /// Samples per step; 0 means the whole training set.
    public let batchSize: Int
    /// The most rows run through the network at once.
    public let microBatchSize: Int
    /// Whether each epoch visits the samples in a new random order.
    public let shuffle: Bool
    /// The generator for the shuffles (its state is part of a resumable run).
    public var generator: SeededGenerator
    /// The number of epochs trained so far (set it when resuming from a checkpoint).
    public var epochsCompleted = 0
    /// If set, gradients whose global norm `‖g‖₂` exceeds it are scaled by `clipNorm / (‖g‖₂ + 10⁻⁶)` before each
    /// step, as PyTorch's `clip_grad_norm_` does.
    public var clipNorm: Float?
    /// If set, every gradient element is clamped to `[−clipValue, clipValue]` before each step (after norm
    /// clipping), as PyTorch's `clip_grad_value_` does.
    public var clipValue: Float?
    /// The global gradient norm of the last step, before clipping.
    public private(set) var lastGradientNorm: Float = 0
    /// Whether each epoch's report includes per-layer gradient norms and update ratios (costs one copy of the
    /// parameters and a few passes over the buffers per step; off by default).
    public var recordsLayerStatistics = false {
        didSet { if recordsLayerStatistics && previousParameters == nil { previousParameters = network.parameters.copy() } }
    }
    private var previousParameters: Matrix?
    private lazy var parametrizedLayers: [(parameters: [Matrix], gradients: [Matrix])] =
        network.layers.filter { !$0.parameters.isEmpty }.map { ($0.parameters, $0.parameterGradients) }
    private var gradientNormSums: [Double] = []
    private var updateRatioSums: [Double] = []
    /// For data-parallel training: each process takes its shard of every batch, and the gradients are summed over
    /// all processes (one `sumInPlace` of the gradient buffer per step) before the identical step on every process.
    /// Every process must use the same seed, data and settings.
    public var communicator: (any Communicator)?

    private let workspace: Workspace
    private let inputBatch: Matrix
    private let targetBatch: Matrix
    private var order: [Int32] = []
    private var correctCount = 0
    private lazy var evaluator = Evaluator(network: network, loss: loss)

    /// - Parameters:
    ///   - network: the network to train; its parameters are updated in place.
    ///   - loss: the loss to minimise, applied to the network's output.
    ///   - optimizer: the update rule.
    ///   - batchSize: samples per step, or 0 for full-batch gradient descent.
    ///   - seed: seeds the shuffling.
    ///   - shuffle: whether each epoch visits the samples in a new random order.
    ///   - microBatchSize: the most rows run at once (bounds the memory of large batches).
    public init(network: Network, loss: any Loss, optimizer: O, batchSize: Int, seed: UInt64 = 0,
                shuffle: Bool = true, microBatchSize: Int = 4096) {
        precondition(batchSize >= 0, "Trainer: the batch size must be non-negative (0 = full batch), got \(batchSize)")
        precondition(microBatchSize > 0, "Trainer: the micro-batch size must be positive, got \(microBatchSize)")
        self.network = network
        self.loss = loss
        self.optimizer = optimizer
        self.batchSize = batchSize
        self.microBatchSize = microBatchSize
        self.shuffle = shuffle
        self.generator = SeededGenerator(seed: seed)
        let capacity = batchSize == 0 ? microBatchSize : min(batchSize, microBatchSize)
        workspace = Workspace(for: network, capacity: capacity)
        inputBatch = Matrix(rows: capacity, columns: network.inputSize)
        targetBatch = Matrix(rows: capacity, columns: network.outputSize)
    }

    /// Trains one epoch on `data`. `onBatch(batchesDone, batchCount, runningMeanLoss)` is called after each step.
    ///
    /// - Throws: ``TrainingError/diverged(epoch:batch:loss:)`` when a batch's loss or gradient is not finite (the
    ///   parameters are then left as they were before that batch); ``TrainingError/dataMismatch(expected:found:)``.
    @discardableResult
    public func trainEpoch(
        on data: Dataset, onBatch: (_ done: Int, _ total: Int, _ meanLoss: Float) -> Void = { _, _, _ in }
    ) throws(TrainingError) -> EpochReport {
        try checkFits(data)
        let start = monotonicSeconds()
        if order.count != data.count { order = [Int32](repeating: 0, count: data.count) }
        for i in order.indices { order[i] = Int32(i) }
        let size = batchSize == 0 ? data.count : min(batchSize, data.count)
        // A fresh permutation of 0..<N each epoch (PyTorch's RandomSampler does the same), so that the generator's
        // state is all a resumed run needs.
        if shuffle && size < data.count { generator.shuffle(&order) }
        let batchCount = (data.count + size - 1) / size
        var lossSum = 0.0
        correctCount = 0
        if recordsLayerStatistics {
            gradientNormSums = [Double](repeating: 0, count: parametrizedLayers.count)
            updateRatioSums = gradientNormSums
        }
        let epoch = epochsCompleted + 1
        try order.withUnsafeBufferPointer { (indices) throws(TrainingError) in
            func batch(_ b: Int) -> UnsafeBufferPointer<Int32> {
                UnsafeBufferPointer(rebasing: indices[(b * size)..<min((b + 1) * size, data.count)])
            }
            /// Starts fetching batch `b`'s images (this process's shard) from memory; see ``Dataset/prefetch(indices:)``.
            func prefetch(batch b: Int) {
                guard b < batchCount else { return }
                let all = batch(b)
                data.prefetch(indices: communicator.map { UnsafeBufferPointer(rebasing: all[$0.shard(of: all.count)]) } ?? all)
            }
            prefetch(batch: 1)
            for b in 0..<batchCount {
                prefetch(batch: b + 2)  // two steps ahead: the lines are in L2 or L3 by the time they are gathered
                let batchLoss = trainBatch(batch(b), data: data)  // this process's shard's loss when distributed
                guard batchLoss.isFinite else {
                    throw .diverged(epoch: epoch, batch: b + 1, loss: Float(batchLoss))
                }
                lossSum += batchLoss
                onBatch(b + 1, batchCount, Float(lossSum / Double(min((b + 1) * size, data.count))))
            }
        }
        if let communicator {
            let totals = communicator.sum([lossSum, Double(correctCount)])
            lossSum = totals[0]
            correctCount = Int(totals[1])
        }
        epochsCompleted += 1
        return EpochReport(epoch: epoch, trainLoss: Float(lossSum / Double(data.count)),
                           seconds: monotonicSeconds() - start,
                           trainAccuracy: data.isClassification ? Double(correctCount) / Double(data.count) : nil,
                           layerGradientNorms: recordsLayerStatistics ? gradientNormSums.map { $0 / Double(batchCount) } : nil,
                           layerUpdateRatios: recordsLayerStatistics ? updateRatioSums.map { $0 / Double(batchCount) } : nil,
                           sampleCount: data.count, stepCount: batchCount)
    }

    /// One step of gradient descent on the samples `indices` of `data`: ``accumulateGradients(_:data:batchCount:)``, the
    /// gradient norm (clipped to ``clipNorm`` if set), then, if the loss and the gradients are finite, the
    /// optimizer's update. Returns the sum of the per-sample losses, or NaN when the gradients are not finite; when
    /// the result is not finite no update was made. Subnormal numbers are flushed to zero during the step
    /// (``withSubnormalsFlushedToZero(_:)``). Allocates nothing.
    @discardableResult
    public func trainBatch(_ indices: UnsafeBufferPointer<Int32>, data: Dataset) -> Double {
        withSubnormalsFlushedToZero { trainBatchInCurrentMode(indices, data: data) }
    }

    private func trainBatchInCurrentMode(_ indices: UnsafeBufferPointer<Int32>, data: Dataset) -> Double {
        let lossSum: Double
        if let communicator {
            // This process's shard of the batch, scaled for the whole batch; then the sum over all processes.
            let shard = communicator.shard(of: indices.count)
            lossSum = accumulateGradients(UnsafeBufferPointer(rebasing: indices[shard]), data: data,
                                          batchCount: indices.count)
            if !lossSum.isFinite { network.gradients[0, 0] = .nan }  // so that every process stops at this batch
            network.gradients.withUnsafeMutableBufferPointer { communicator.sumInPlace($0) }
        } else {
            lossSum = accumulateGradients(indices, data: data)
        }
        let norm = sumOfSquares(network.gradients).squareRoot()
        lastGradientNorm = Float(norm)
        guard lossSum.isFinite else { return lossSum }
        guard norm.isFinite else { return .nan }
        if recordsLayerStatistics, let previousParameters {
            for (i, layer) in parametrizedLayers.enumerated() {
                gradientNormSums[i] += layer.gradients.reduce(0) { $0 + sumOfSquares($1) }.squareRoot()
            }
            previousParameters.assign(network.parameters)
        }
        if let clipNorm, norm > Double(clipNorm) {
            scale(network.gradients, by: Float(Double(clipNorm) / (norm + 1e-6)))
        }
        if let clipValue {
            clamp(network.gradients, to: clipValue)
        }
        optimizer.step(network)
        if recordsLayerStatistics, let previousParameters {
            var offset = 0
            for (i, layer) in parametrizedLayers.enumerated() {
                var change = 0.0, size = 0.0
                for tensor in layer.parameters {  // layers' tensors lie in order in the parameter buffer
                    for j in 0..<tensor.count {
                        let now = Double(tensor.pointer[j]), old = Double(previousParameters.pointer[offset + j])
                        change += (now - old) * (now - old)
                        size += now * now
                    }
                    offset += tensor.count
                }
                updateRatioSums[i] += size > 0 ? (change / size).squareRoot() : 0
            }
        }
        return lossSum
    }

    /// Zeroes the gradients and accumulates those of the samples `indices` of `data` (micro-batch by micro-batch),
    /// scaled for the loss's reduction over a batch of `batchCount` samples (default: `indices.count`; larger when
    /// `indices` is one process's shard). Returns the sum of the per-sample losses. Takes no optimizer step.
    /// Allocates nothing.
    public func accumulateGradients(_ indices: UnsafeBufferPointer<Int32>, data: Dataset, batchCount: Int? = nil) -> Double {
        network.setTraining(true)
        if indices.isEmpty { network.zeroGradients() }
        let scale: Float = loss.reduction == .mean ? 1 / Float(max(batchCount ?? indices.count, 1)) : 1
        var total = 0.0
        var start = 0
        while start < indices.count {
            let n = min(workspace.capacity, indices.count - start)
            let input = inputBatch.rows(0..<n), targets = targetBatch.rows(0..<n)
            data.gather(indices: UnsafeBufferPointer(rebasing: indices[start..<(start + n)]), input: input, targets: targets)
            let output = network.forward(input, workspace: workspace)
            total += loss.sumOfLosses(output: output, targets: targets,
                                      gradient: workspace.outputGradient(rows: n), gradientScale: scale)
            if data.isClassification {
                for i in 0..<n where argmax(output, row: i) == argmax(targets, row: i) { correctCount += 1 }
            }
            network.backward(input, workspace: workspace, zeroingGradients: start == 0)
            start += n
        }
        return total
    }

    /// The mean loss, accuracy and confusion matrix of the network on `data` (see ``Evaluator``). Layers are
    /// switched to evaluation behaviour (no dropout); the next training step switches them back.
    public func evaluate(on data: Dataset) throws(TrainingError) -> Evaluation {
        evaluator.communicator = communicator
        return try evaluator.evaluate(on: data)
    }

    private func checkFits(_ data: Dataset) throws(TrainingError) {
        try checkDataFits(data, network)
    }
}

/// The column of the largest element of row `row` (the first, on ties).
public func argmax(_ matrix: Matrix, row: Int) -> Int {
    precondition(row >= 0 && row < matrix.rows, "argmax: row \(row) is outside \(matrix.shapeDescription)")
    let p = matrix.pointer + row * matrix.columns
    var best = 0
    for j in 1..<matrix.columns where p[j] > p[best] { best = j }
    return best
}

/// Seconds on a monotonic clock.
func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
