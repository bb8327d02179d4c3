/// Measures a network on a data set: mean loss, accuracy and confusion matrix, in batches of a fixed size.
///
/// The batch size is fixed (256 by default, whatever the training batch size was) so that the same network and
/// data give bit-for-bit the same outputs, and so the same accuracy, wherever they are evaluated: after an epoch
/// of training, or later by `backprop evaluate` on the saved model. Buffers are planned once; the batches allocate
/// nothing, and only the returned confusion matrix is allocated per call. A network of more than
/// ``maximumConfusionClasses`` outputs gets no confusion matrix (it would take classes² counts), only its accuracy.
public final class Evaluator {
    /// The network measured.
    public let network: Network
    /// The loss reported.
    public let loss: any Loss
    private let workspace: Workspace
    private let inputBatch: Matrix
    private let targetBatch: Matrix
    private var indices: [Int32]
    private var counts: [Int]  // the confusion matrix, row-major, reused (empty beyond maximumConfusionClasses)
    /// The most classes for which ``evaluate(on:)`` counts a confusion matrix (4096: 128 MB of counts).
    public static let maximumConfusionClasses = 4096
    /// For data-parallel evaluation: each process evaluates its shard of the data and the sums are combined, so
    /// every process gets the whole data set's figures.
    public var communicator: (any Communicator)?

    public init(network: Network, loss: any Loss, batchSize: Int = 256) {
        precondition(batchSize > 0, "Evaluator: the batch size must be positive, got \(batchSize)")
        self.network = network
        self.loss = loss
        workspace = Workspace(for: network, capacity: batchSize, backward: false)
        inputBatch = Matrix(rows: batchSize, columns: network.inputSize)
        targetBatch = Matrix(rows: batchSize, columns: network.outputSize)
        indices = [Int32](repeating: 0, count: batchSize)
        let classes = network.outputSize
        counts = [Int](repeating: 0, count: classes <= Evaluator.maximumConfusionClasses ? classes * classes : 0)
    }

    /// The mean loss, accuracy and confusion matrix of the network on `data`, in evaluation mode (changes nothing).
    public func evaluate(on data: Dataset) throws(TrainingError) -> Evaluation {
        try checkDataFits(data, network)
        guard data.count > 0 else { throw .dataMismatch(expected: "at least one sample to evaluate", found: "none") }
        var lossSum = 0.0, correctWithoutConfusion = 0
        let classes = data.targetWidth, confusing = !counts.isEmpty
        for i in counts.indices { counts[i] = 0 }
        let samples = communicator?.shard(of: data.count) ?? 0..<data.count
        var start = samples.lowerBound
        while start < samples.upperBound {
            let n = min(workspace.capacity, samples.upperBound - start)
            for i in 0..<n { indices[i] = Int32(start + i) }
            let input = inputBatch.rows(0..<n), targets = targetBatch.rows(0..<n)
            indices.withUnsafeBufferPointer {
                data.gather(indices: UnsafeBufferPointer(rebasing: $0[0..<n]), input: input, targets: targets)
            }
            let output = network.forward(input, workspace: workspace)
            lossSum += loss.sumOfLosses(output: output, targets: targets, gradient: nil, gradientScale: 1)
            if data.isClassification {
                for i in 0..<n {
                    let label = data.label(at: start + i), predicted = argmax(output, row: i)
                    if confusing { counts[label * classes + predicted] += 1 } else if label == predicted { correctWithoutConfusion += 1 }
                }
            }
            start += n
        }
        if let communicator {
            let totals = communicator.sum([lossSum, Double(correctWithoutConfusion)] + counts.map(Double.init))
            lossSum = totals[0]
            correctWithoutConfusion = Int(totals[1])
            for i in counts.indices { counts[i] = Int(totals[i + 2]) }
        }
        let confusion = data.isClassification && confusing ? (0..<classes).map { Array(counts[($0 * classes)..<(($0 + 1) * classes)]) } : []
        let correct = confusing ? confusion.indices.reduce(0) { $0 + confusion[$1][$1] } : correctWithoutConfusion
        let count = max(data.count, 1)
        return Evaluation(loss: Float(lossSum / Double(count)),
                          accuracy: data.isClassification ? Double(correct) / Double(count) : nil,
                          count: data.count, confusion: data.isClassification && confusing ? confusion : nil)
    }
}

/// Throws unless `data` has the network's input size and output width.
func checkDataFits(_ data: Dataset, _ network: Network) throws(TrainingError) {
    guard data.featureCount == network.inputSize, data.targetWidth == network.outputSize else {
        throw .dataMismatch(
            expected: "\(network.inputSize) features and \(network.outputSize) classes or targets",
            found: "\(data.featureCount) features and \(data.targetWidth)")
    }
}
