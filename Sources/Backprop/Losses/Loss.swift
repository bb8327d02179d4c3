/// How a loss combines its samples' losses.
///
/// Each sample's loss is a sum over its outputs; `.mean` then averages over the **samples** of the batch (the
/// rows), `.sum` adds them. For ``CrossEntropy`` this is exactly PyTorch's `reduction='mean'`/`'sum'`. For
/// ``BinaryCrossEntropy`` and ``MeanSquaredError``, PyTorch's `'mean'` also divides by the number of outputs per
/// sample; ours does not, which is what the original text's program does (`dW = a1ᵀ·(a2 − y) / N`).
public enum Reduction: String, Sendable, CaseIterable {
    /// `L = (1/N) Σₙ Lₙ`.
    case mean
    /// `L = Σₙ Lₙ`.
    case sum
}

/// A loss function of a network's output (`N × K`) and the targets (`N × K`).
///
/// Losses that pair with an output nonlinearity take the **pre-activation** output (logits) and fuse the two,
/// which is both stabler and simpler in the backward pass.
public protocol Loss: Sendable {
    /// How ``callAsFunction(_:targets:)`` and ``lossAndGradient(gradient:output:targets:)`` reduce over samples.
    var reduction: Reduction { get }

    /// A short lowercase name (`"cross-entropy"`).
    var name: String { get }

    /// Returns `Σₙ Lₙ`, the sum of the per-sample losses, and, if `gradient` is not `nil`, writes
    /// `gradient = gradientScale · ∂(Σₙ Lₙ)/∂output` (overwriting). All three matrices are `N × K`.
    func sumOfLosses(output: Matrix, targets: Matrix, gradient: Matrix?, gradientScale: Float) -> Double
}

extension Loss {
    /// The reduced loss of `output` against `targets`.
    public func callAsFunction(_ output: Matrix, targets: Matrix) -> Float {
        let sum = sumOfLosses(output: output, targets: targets, gradient: nil, gradientScale: 1)
        return Float(reduction == .mean ? sum / Double(max(output.rows, 1)) : sum)
    }

    /// `Σₙ wₙLₙ`, each sample's loss weighted by `weights` (`N × 1`, any sign), and, if `gradient` is not `nil`,
    /// `gradient = gradientScale · ∂(Σₙ wₙLₙ)/∂output`: row `n` of the unweighted gradient times `wₙ`. Per-sample
    /// weights weigh classes (`wₙ` the weight of sample `n`'s class, as PyTorch's `weight=` does, but with ``Reduction/mean``
    /// still dividing by `N`), or turn cross-entropy into the policy-gradient loss `−Σₜ R̂ₜ log π(aₜ|sₜ)`
    /// (<doc:PolicyGradients>). Allocates nothing.
    public func sumOfLosses(output: Matrix, targets: Matrix, weights: Matrix, gradient: Matrix?, gradientScale: Float) -> Double {
        precondition(weights.count == output.rows,
                     "\(name): \(weights.shapeDescription) weights for \(output.rows) samples (need one per row)")
        var total = 0.0
        for n in 0..<output.rows {
            let w = weights.pointer[n]
            let rows = n..<(n + 1)
            total += Double(w) * sumOfLosses(output: output.rows(rows), targets: targets.rows(rows),
                                              gradient: gradient?.rows(rows), gradientScale: gradientScale * w)
        }
        return total
    }

    /// The reduced loss, with its gradient with respect to `output` written into `gradient`.
    public func lossAndGradient(gradient: Matrix, output: Matrix, targets: Matrix) -> Float {
        let n = Double(max(output.rows, 1))
        let sum = sumOfLosses(output: output, targets: targets, gradient: gradient,
                              gradientScale: reduction == .mean ? Float(1 / n) : 1)
        return Float(reduction == .mean ? sum / n : sum)
    }
}

/// Checks the shapes shared by every loss.
func checkLossShapes(_ name: String, output: Matrix, targets: Matrix, gradient: Matrix?) {
    precondition(output.rows == targets.rows && output.columns == targets.columns,
                 "\(name): output \(output.shapeDescription) and targets \(targets.shapeDescription) differ in shape")
    if let gradient {
        precondition(gradient.rows == output.rows && gradient.columns == output.columns,
                     "\(name): gradient \(gradient.shapeDescription) and output \(output.shapeDescription) differ in shape")
    }
}

/// The `N × classCount` one-hot matrix of class indices `labels`.
public func oneHot(_ labels: [Int], classCount: Int) -> Matrix {
    let result = Matrix(rows: labels.count, columns: classCount)
    for (i, label) in labels.enumerated() {
        precondition(label >= 0 && label < classCount, "oneHot: label \(label) at \(i) is outside 0..<\(classCount)")
        result[i, label] = 1
    }
    return result
}
