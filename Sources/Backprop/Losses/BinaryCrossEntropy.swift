import CSIMD

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
        // `bp_binary_cross_entropy`, in the CPU's widest vectors, the elements split between the threads.
        var job = (z: UnsafePointer(logits.pointer), t: UnsafePointer(targets.pointer), g: gradient?.pointer,
                   scale: gradientScale)
        return Parallel.sum(of: logits.count, minimumPerPart: 32_768, alignment: 1024, context: &job) {
            context, start, end in
            let job = context.load(as: (z: UnsafePointer<Float>, t: UnsafePointer<Float>,
                                        g: UnsafeMutablePointer<Float>?, scale: Float).self)
            return bp_binary_cross_entropy(job.z + start, job.t + start, job.g.map { $0 + start }, end - start,
                                           job.scale)
        }
    }
}

/// The binary cross-entropy of `σ(logits)` against `targets` in [0, 1] (both `N × K`).
public func binaryCrossEntropy(logits: Matrix, targets: Matrix, reduction: Reduction = .mean) -> Float {
    BinaryCrossEntropy(reduction: reduction)(logits, targets: targets)
}
