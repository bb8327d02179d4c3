#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSIMD

/// Softmax followed by cross-entropy, fused, on logits `Z` (`N × K`) and target distributions `T` (one-hot rows
/// for class labels; any rows summing to 1 for soft labels). PyTorch: `nn.CrossEntropyLoss`.
///
/// Per sample: `Lₙ = −Σₖ Tₙₖ log softmax(Zₙ)ₖ = (Σₖ Tₙₖ)·lse(Zₙ) − Σₖ Tₙₖ Zₙₖ`, with the log-sum-exp
/// `lse(z) = m + log Σₖ e^(zₖ − m)`, `m = maxₖ zₖ`, so that no exponential overflows (logits of ±1000 are fine).
/// Gradient: `∂Lₙ/∂Zₙₖ = softmax(Zₙ)ₖ·Σⱼ Tₙⱼ − Tₙₖ`, i.e. `softmax(Z) − T` for one-hot targets, divided by `N`
/// for ``Reduction/mean``.
public struct CrossEntropy: Loss {
    public var reduction: Reduction
    public var name: String { "cross-entropy" }

    public init(reduction: Reduction = .mean) { self.reduction = reduction }

    public func sumOfLosses(output logits: Matrix, targets: Matrix, gradient: Matrix?, gradientScale: Float) -> Double {
        checkLossShapes("CrossEntropy", output: logits, targets: targets, gradient: gradient)
        let k = logits.columns
        if let gradient {  // `bp_softmax_cross_entropy`: the exponentials of the whole batch in one vectorised pass
            return bp_softmax_cross_entropy(logits.pointer, targets.pointer, gradient.pointer, logits.rows, k,
                                            gradientScale)
        }
        var total = 0.0
        for n in 0..<logits.rows {
            let z = logits.pointer + n * k, t = targets.pointer + n * k
            let (m, sumExp) = shiftedExponentialSum(z, count: k)
            let lse = m + logf(sumExp)
            var targetSum: Float = 0, targetDotLogits: Float = 0
            for j in 0..<k {
                targetSum += t[j]
                if t[j] != 0 { targetDotLogits += t[j] * z[j] }  // 0·(−∞) must not make NaN
            }
            total += Double(targetSum * lse - targetDotLogits)
        }
        return total
    }
}

/// The softmax cross-entropy of `logits` (`N × K`) against class indices `labels` (`N` of them, each in `0..<K`).
public func crossEntropy(logits: Matrix, labels: [Int], reduction: Reduction = .mean) -> Float {
    CrossEntropy(reduction: reduction)(logits, targets: oneHot(labels, classCount: logits.columns))
}

/// The softmax cross-entropy of `logits` against class indices `labels`, sample `n`'s loss weighted by `weights[n]`:
/// `Σₙ wₙLₙ`, divided by `N` for ``Reduction/mean``.
public func crossEntropy(logits: Matrix, labels: [Int], weights: [Float], reduction: Reduction = .mean) -> Float {
    precondition(weights.count == labels.count, "crossEntropy: \(weights.count) weights for \(labels.count) labels")
    let sum = CrossEntropy().sumOfLosses(output: logits, targets: oneHot(labels, classCount: logits.columns),
                                         weights: Matrix(rows: weights.count, columns: 1, values: weights),
                                         gradient: nil, gradientScale: 1)
    return Float(reduction == .mean ? sum / Double(max(labels.count, 1)) : sum)
}

/// The softmax cross-entropy of `logits` against target distributions `targets` (both `N × K`).
public func crossEntropy(logits: Matrix, targets: Matrix, reduction: Reduction = .mean) -> Float {
    CrossEntropy(reduction: reduction)(logits, targets: targets)
}
