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
    /// The parameters became NaN or infinite during the epoch, though every step's loss and gradient were finite (an
    /// update too large for them: `--learning-rate 1e38`).
    case nonFiniteParameters(epoch: Int)
    /// A training step with too few rows for the network (batch normalization needs at least 2).
    case batchTooSmall(rows: Int, reason: String)

    public var description: String {
        switch self {
        case .diverged(let epoch, let batch, let loss):
            "training diverged: the loss is \(loss.isNaN ? "NaN" : "\(loss)") at epoch \(epoch), batch \(batch); try a lower learning rate"
        case .dataMismatch(let expected, let found):
            "the data does not fit the network: expected \(expected), found \(found)"
        case .nonFiniteParameters(let epoch):
            "training diverged: the parameters are not finite after epoch \(epoch); try a lower learning rate or weight decay"
        case .batchTooSmall(let rows, let reason):
            "a training step of \(rows) row\(rows == 1 ? "" : "s") is too small: \(reason)"
        }
    }
}

/// Trains a ``Network`` with mini-batch gradient descent: each epoch visits the training set in a seeded shuffled
/// order, in batches of ``batchSize``; for each batch the gradients are zeroed, accumulated by forward and
/// backward passes in training mode, and applied by the optimizer. A batch size of 0 (or at least the data set's
/// size) is full-batch gradient descent, visited in order.
///
/// Batches larger than ``microBatchSize`` are processed in micro-batches whose gradients accumulate (`β = 1`)
/// before the one step, so memory stays bounded; the result equals one big batch up to summation order. Layers
/// with batch statistics (``BatchNorm``) still see the whole step: the trainer first runs passes that collect their
/// statistics over every micro-batch (one forward pass per such layer, then one forward and backward pass per such
/// layer for the gradient sums), then the real pass, so a split step costs about `1 + 2B` passes for `B` of them.
///
/// The optimizer can be any ``Optimizer``, chosen at run time. Everything a step needs is allocated when the
/// trainer is made (the optimizer's state at its first step); a step allocates nothing. For a loop of your own,
/// ``trainStep(input:targets:sampleWeights:)`` takes one batch as matrices (see <doc:WritingATrainingLoop>).
public final class Trainer {
    /// The network trained.
    public let network: Network
    /// The loss minimised; its ``Reduction`` applies per batch.
    public let loss: any Loss
    /// The update rule; a `var` so its learning rate can follow a schedule.
    public var optimizer: any Optimizer
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
    /// The random draw (``LayerContext/randomIndex``) of the last training step: each step takes the next, so dropout
    /// masks never repeat (part of a resumable run). The micro-batches of a step share it, each with its rows'
    /// offset, so a split step draws the masks of the whole batch.
    public var randomIndex: UInt64 = 0
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
    /// How batch-statistics layers see a step split into micro-batches.
    private let statisticsPass = BatchStatisticsPass()
    /// The number of layers with batch statistics (counted once, by a census pass).
    let batchStatisticsLayerCount: Int

    /// - Parameters:
    ///   - network: the network to train; its parameters are updated in place.
    ///   - loss: the loss to minimise, applied to the network's output.
    ///   - optimizer: the update rule.
    ///   - batchSize: samples per step, or 0 for full-batch gradient descent.
    ///   - seed: seeds the shuffling.
    ///   - shuffle: whether each epoch visits the samples in a new random order.
    ///   - microBatchSize: the most rows run at once (bounds the memory of large batches).
    public init(network: Network, loss: any Loss, optimizer: any Optimizer, batchSize: Int, seed: UInt64 = 0,
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
        // Count the layers with batch statistics: one forward pass on a row of zeros in which they only count.
        var census = LayerContext(mode: .training)
        census.batchStatistics = statisticsPass
        statisticsPass.phase = .census
        statisticsPass.start(microBatch: 0)
        _ = network.forward(inputBatch.rows(0..<1), workspace: workspace, context: census)
        batchStatisticsLayerCount = statisticsPass.visited
    }

    /// Trains one epoch on `data`. `onBatch(batchesDone, batchCount, runningMeanLoss)` is called after each step.
    ///
    /// - Throws: ``TrainingError/diverged(epoch:batch:loss:)`` when a batch's loss or gradient is not finite (the
    ///   parameters are then left as they were before that batch); ``TrainingError/dataMismatch(expected:found:)``;
    ///   ``TrainingError/batchTooSmall(rows:reason:)`` for a 1-row step of a network with batch normalization.
    @discardableResult
    public func trainEpoch(
        on data: Dataset, onBatch: (_ done: Int, _ total: Int, _ meanLoss: Float) -> Void = { _, _, _ in }
    ) throws(TrainingError) -> EpochReport {
        try checkFits(data)
        guard data.count > 0 else { throw .dataMismatch(expected: "at least one training sample", found: "none") }
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
            /// Starts fetching batch `b`'s images (this process's shard) from memory; see `Dataset.prefetch(indices:)`.
            func prefetch(batch b: Int) {
                guard b < batchCount else { return }
                let all = batch(b)
                data.prefetch(indices: communicator.map { UnsafeBufferPointer(rebasing: all[$0.shard(of: all.count)]) } ?? all)
            }
            prefetch(batch: 1)
            for b in 0..<batchCount {
                prefetch(batch: b + 2)  // two steps ahead: the lines are in L2 or L3 by the time they are gathered
                let batchLoss = try trainBatch(batch(b), data: data)  // this process's shard's loss when distributed
                guard batchLoss.isFinite else {
                    throw .diverged(epoch: epoch, batch: b + 1, loss: Float(batchLoss))
                }
                lossSum += batchLoss
                onBatch(b + 1, batchCount, Float(lossSum / Double(min((b + 1) * size, data.count))))
            }
        }
        // Every step checked its loss and gradient; an update can still overflow the parameters themselves.
        guard sumOfSquares(network.parameters).isFinite else { throw .nonFiniteParameters(epoch: epoch) }
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

    /// One step of gradient descent on the samples `indices` of `data`: ``accumulateGradients(_:data:batchCount:)``,
    /// the gradient norm (clipped to ``clipNorm`` if set), then, if the loss and the gradients are finite, the
    /// optimizer's update. Returns the sum of the per-sample losses, or NaN when the gradients are not finite; when
    /// the result is not finite no update was made. Subnormal numbers are flushed to zero during the step
    /// (``withSubnormalsFlushedToZero(_:)``). Allocates nothing.
    ///
    /// - Throws: ``TrainingError/batchTooSmall(rows:reason:)`` for a 1-row step of a network with batch normalization.
    @discardableResult
    @_spi(Internals) public func trainBatch(_ indices: UnsafeBufferPointer<Int32>, data: Dataset) throws(TrainingError) -> Double {
        try checkStepRows(communicator == nil ? indices.count : indices.count)
        return withSubnormalsFlushedToZero {
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
            return applyStep(lossSum: lossSum)
        }
    }

    /// One step of gradient descent on a batch of your own: `input` (`N × inputSize`) and `targets`
    /// (`N × outputSize`, one-hot rows for classification), any `N ≥ 1` (split into micro-batches above
    /// ``microBatchSize``). Runs the forward and backward passes in training mode, then the update as
    /// a step of ``trainEpoch(on:onBatch:)`` does. Returns the batch's loss reduced as the loss says (the mean per sample for
    /// `.mean`), measured before the update. Allocates nothing.
    ///
    /// - Throws: ``TrainingError/diverged(epoch:batch:loss:)`` (epoch and batch 0) when the loss or the gradients
    ///   are not finite: no update is made; ``TrainingError/dataMismatch(expected:found:)`` when the shapes do not
    ///   fit the network; ``TrainingError/batchTooSmall(rows:reason:)``.
    ///
    /// With `sampleWeights` (`N × 1`), sample `n`'s loss counts `wₙ` times (any sign): see
    /// ``Loss/sumOfLosses(output:targets:weights:gradient:gradientScale:)``.
    @discardableResult
    public func trainStep(input: Matrix, targets: Matrix, sampleWeights: Matrix? = nil) throws(TrainingError) -> Float {
        guard input.rows == targets.rows, input.rows > 0, input.columns == network.inputSize,
              targets.columns == network.outputSize, sampleWeights.map({ $0.count == input.rows }) ?? true else {
            throw .dataMismatch(expected: "N × \(network.inputSize) inputs and N × \(network.outputSize) targets\(sampleWeights == nil ? "" : " and N weights"), N ≥ 1",
                                found: "\(input.shapeDescription) inputs and \(targets.shapeDescription) targets\(sampleWeights.map { " and \($0.count) weights" } ?? "")")
        }
        try checkStepRows(input.rows)
        let lossSum = withSubnormalsFlushedToZero {
            applyStep(lossSum: accumulate(rows: input.rows, batchCount: input.rows, countsAccuracy: false) { start, n in
                (input.rows(start..<(start + n)), targets.rows(start..<(start + n)),
                 sampleWeights.map { $0.reshaped(rows: input.rows, columns: 1).rows(start..<(start + n)) })
            })
        }
        guard lossSum.isFinite else { throw .diverged(epoch: 0, batch: 0, loss: Float(lossSum)) }
        return Float(loss.reduction == .mean ? lossSum / Double(input.rows) : lossSum)
    }

    /// A 1-row training step has no batch statistics.
    private func checkStepRows(_ rows: Int) throws(TrainingError) {
        if rows == 1 && batchStatisticsLayerCount > 0 {
            throw .batchTooSmall(rows: 1, reason: "batch normalization needs at least 2 rows to compute a variance in training")
        }
    }

    /// The gradient norm, clipping and the optimizer's update after the gradients of a step were accumulated.
    /// Returns `lossSum`, or NaN when the gradients are not finite (then no update is made).
    private func applyStep(lossSum: Double) -> Double {
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
    /// in training mode, scaled for the loss's reduction over a batch of `batchCount` samples (default:
    /// `indices.count`; larger when `indices` is one process's shard). Returns the sum of the per-sample losses.
    /// Takes no optimizer step. Allocates nothing.
    @_spi(Internals) public func accumulateGradients(_ indices: UnsafeBufferPointer<Int32>, data: Dataset, batchCount: Int? = nil) -> Double {
        accumulate(rows: indices.count, batchCount: batchCount ?? indices.count, countsAccuracy: data.isClassification) { start, n in
            let input = inputBatch.rows(0..<n), targets = targetBatch.rows(0..<n)
            data.gather(indices: UnsafeBufferPointer(rebasing: indices[start..<(start + n)]), input: input, targets: targets)
            return (input, targets, nil)
        }
    }

    /// Zeroes the gradients and accumulates those of a step over `rows` rows, micro-batch by micro-batch;
    /// `batch(start, n)` gives rows `start..<start + n` as input and targets. With layers that keep batch statistics
    /// and more than one micro-batch, the statistics passes run first (see the type's documentation).
    private func accumulate(rows: Int, batchCount: Int, countsAccuracy: Bool,
                            _ batch: (_ start: Int, _ count: Int) -> (input: Matrix, targets: Matrix, weights: Matrix?)) -> Double {
        if rows == 0 { network.zeroGradients(); return 0 }
        let scale: Float = loss.reduction == .mean ? 1 / Float(max(batchCount, 1)) : 1
        let capacity = workspace.capacity, microBatches = (rows + capacity - 1) / capacity
        randomIndex &+= 1
        var context = LayerContext(mode: .training, randomIndex: randomIndex)
        let split = microBatches > 1 && batchStatisticsLayerCount > 0
        if split {
            statisticsPass.rows = rows
            context.batchStatistics = statisticsPass
        }
        /// One pass over every micro-batch; with `backward`, the loss, its gradient and the backward pass too.
        func pass(backward: Bool, isLast: Bool) -> Double {
            var total = 0.0
            for m in 0..<microBatches {
                let start = m * capacity, n = min(capacity, rows - start)
                let (input, targets, weights) = batch(start, n)
                statisticsPass.start(microBatch: m)
                context.rowOffset = start
                let output = network.forward(input, workspace: workspace, context: context)
                guard backward else { continue }
                let gradient = workspace.outputGradient(rows: n)
                total += weights.map { loss.sumOfLosses(output: output, targets: targets, weights: $0, gradient: gradient, gradientScale: scale) }
                    ?? loss.sumOfLosses(output: output, targets: targets, gradient: gradient, gradientScale: scale)
                if isLast && countsAccuracy {
                    for i in 0..<n where argmax(output, row: i) == argmax(targets, row: i) { correctCount += 1 }
                }
                network.backward(input, workspace: workspace, zeroingGradients: m == 0)
            }
            return total
        }
        if split {
            for layer in 0..<batchStatisticsLayerCount {
                statisticsPass.phase = .collectInput(layer: layer)
                _ = pass(backward: false, isLast: false)
            }
            for layer in (0..<batchStatisticsLayerCount).reversed() {
                statisticsPass.phase = .collectGradient(layer: layer)
                _ = pass(backward: true, isLast: false)
            }
            statisticsPass.phase = .apply
        }
        return pass(backward: true, isLast: true)
    }

    /// The mean loss, accuracy and confusion matrix of the network on `data` (see ``Evaluator``), in evaluation
    /// mode (no dropout, batch normalization's running statistics).
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
@_spi(Internals) public func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
