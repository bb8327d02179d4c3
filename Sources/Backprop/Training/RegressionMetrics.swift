/// How well a regression network predicts, in the targets' original units: scikit-learn's
/// `mean_squared_error` (its root), `mean_absolute_error` and `r2_score`.
public struct RegressionMetrics: Sendable, Equatable {
    /// √(Σ (ŷ − y)² / n).
    public var rootMeanSquaredError: Double
    /// Σ |ŷ − y| / n.
    public var meanAbsoluteError: Double
    /// The coefficient of determination, 1 − Σ (ŷ − y)² / Σ (y − ȳ)² (averaged over target columns; 1 when
    /// every target is the same and is predicted exactly, else 0 for constant targets, as scikit-learn does).
    public var r2: Double
    /// The number of samples.
    public var count: Int

    /// The metrics of `predictions` against `targets` (both `n × width`, original units).
    public init(predictions: Matrix, targets: Matrix) {
        precondition(predictions.rows == targets.rows && predictions.columns == targets.columns && targets.rows > 0,
                     "RegressionMetrics: predictions \(predictions.shapeDescription) and targets \(targets.shapeDescription) must have the same non-empty shape")
        let n = targets.rows, width = targets.columns
        var squared = 0.0, absolute = 0.0, r2Sum = 0.0
        for j in 0..<width {
            var mean = 0.0
            for i in 0..<n { mean += Double(targets[i, j]) }
            mean /= Double(n)
            var residual = 0.0, total = 0.0
            for i in 0..<n {
                let y = Double(targets[i, j]), d = Double(predictions[i, j]) - y
                residual += d * d
                absolute += abs(d)
                total += (y - mean) * (y - mean)
            }
            squared += residual
            r2Sum += total > 0 ? 1 - residual / total : (residual == 0 ? 1 : 0)
        }
        rootMeanSquaredError = (squared / Double(n * width)).squareRoot()
        meanAbsoluteError = absolute / Double(n * width)
        r2 = r2Sum / Double(width)
        count = n
    }

    /// The metrics of `network` on `data` (real-valued targets), whose targets were standardised by
    /// `standardization` (if given, outputs and targets are restored to the original units first). Runs the
    /// network in evaluation mode in batches of 256.
    public init(network: Network, data: Dataset, standardization: Standardization? = nil) {
        precondition(!data.isClassification, "RegressionMetrics: \(data.count) samples with class labels, not values")
        let predictions = Matrix(rows: data.count, columns: data.targetWidth)
        let targets = Matrix(rows: data.count, columns: data.targetWidth)
        let workspace = Workspace(for: network, capacity: 256, backward: false)
        var start = 0
        for batch in data.batches(size: 256) {
            let n = batch.input.rows
            predictions.rows(start..<(start + n)).assign(network.forward(batch.input, workspace: workspace))
            targets.rows(start..<(start + n)).assign(batch.targets)
            start += n
        }
        standardization?.restoreTargets(predictions)
        standardization?.restoreTargets(targets)
        self.init(predictions: predictions, targets: targets)
    }
}
