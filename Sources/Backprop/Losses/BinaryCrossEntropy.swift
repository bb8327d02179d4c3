#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sigmoid followed by binary cross-entropy, fused, on logits `Z` and targets `T` in [0, 1] (`N × K`): the
/// original text's output layer, `a = σ(z)` with `δ = a − y`. PyTorch: `nn.BCEWithLogitsLoss` (see ``Reduction``
/// for how `.mean` differs).
///
/// Per sample: `Lₙ = −Σₖ [Tₙₖ log σ(Zₙₖ) + (1 − Tₙₖ) log(1 − σ(Zₙₖ))]`, computed as
/// `Σₖ max(z, 0) − z·t + log(1 + e^(−|z|))`, which is finite for any finite logit.
/// Gradient: `∂Lₙ/∂Zₙₖ = σ(Zₙₖ) − Tₙₖ`.
public struct BinaryCrossEntropy: Loss {
    public var reduction: Reduction
    public var name: String { "binary-cross-entropy" }

    public init(reduction: Reduction = .mean) { self.reduction = reduction }

    public func sumOfLosses(output logits: Matrix, targets: Matrix, gradient: Matrix?, gradientScale: Float) -> Double {
        checkLossShapes("BinaryCrossEntropy", output: logits, targets: targets, gradient: gradient)
        let z = logits.pointer, t = targets.pointer
        var total = 0.0
        for i in 0..<logits.count {
            total += Double(max(z[i], 0) - z[i] * t[i] + log1pf(expf(-abs(z[i]))))
        }
        if let gradient {
            let g = gradient.pointer
            for i in 0..<logits.count { g[i] = gradientScale * (sigmoid(z[i]) - t[i]) }
        }
        return total
    }
}

/// The binary cross-entropy of `σ(logits)` against `targets` in [0, 1] (both `N × K`).
public func binaryCrossEntropy(logits: Matrix, targets: Matrix, reduction: Reduction = .mean) -> Float {
    BinaryCrossEntropy(reduction: reduction)(logits, targets: targets)
}
