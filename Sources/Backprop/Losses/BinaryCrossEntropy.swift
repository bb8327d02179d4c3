#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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
        // `bp_binary_cross_entropy`, in the CPU's widest vectors, the rows split between the threads.
        let parts = Parallel.partCount(for: logits.count, minimumPerPart: 32_768)
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: parts) { partial in
            var job = BinaryCrossEntropyJob(z: logits.pointer, t: targets.pointer, g: gradient?.pointer,
                                            count: logits.count, scale: gradientScale, partial: partial.baseAddress!)
            Parallel.run(parts: parts, context: &job) { context, part, parts in
                let job = context.load(as: BinaryCrossEntropyJob.self)
                let range = Parallel.chunk(part, of: parts, count: job.count, alignment: 1024)
                job.partial[part] = bp_binary_cross_entropy(job.z + range.lowerBound, job.t + range.lowerBound,
                                                            job.g.map { $0 + range.lowerBound }, range.count, job.scale)
            }
            return partial.reduce(0, +)
        }
    }
}

/// The arguments of `bp_binary_cross_entropy`, shared by the threads that each take a chunk.
private struct BinaryCrossEntropyJob {
    var z: UnsafePointer<Float>, t: UnsafePointer<Float>, g: UnsafeMutablePointer<Float>?
    var count: Int, scale: Float, partial: UnsafeMutablePointer<Double>
}

/// The binary cross-entropy of `σ(logits)` against `targets` in [0, 1] (both `N × K`).
public func binaryCrossEntropy(logits: Matrix, targets: Matrix, reduction: Reduction = .mean) -> Float {
    BinaryCrossEntropy(reduction: reduction)(logits, targets: targets)
}
