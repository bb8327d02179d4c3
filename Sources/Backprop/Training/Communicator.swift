/// The processes of a data-parallel job, as ``Trainer`` and ``Evaluator`` need them: every process holds the
/// whole model, works on its shard of each batch, and the shards' gradients are summed before the step.
///
/// The core library knows nothing of MPI; `BackpropMPI`'s `MPICommunicator` implements this over
/// `MPI_Allreduce`. Every process must make the same calls in the same order.
public protocol Communicator: AnyObject {
    /// This process's index, `0..<size`.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// Replaces `buffer` on every process by the element-wise sum over all processes.
    func sumInPlace(_ buffer: UnsafeMutableBufferPointer<Float>)
    /// Replaces `buffer` on every process by the element-wise sum over all processes.
    func sumInPlace(_ buffer: UnsafeMutableBufferPointer<Double>)
}

extension Communicator {
    /// The part of `0..<count` that this process takes: contiguous, sizes differing by at most one.
    public func shard(of count: Int) -> Range<Int> {
        (count * rank / size)..<(count * (rank + 1) / size)
    }

    /// The sum over all processes of each of `values`.
    public func sum(_ values: [Double]) -> [Double] {
        var result = values
        result.withUnsafeMutableBufferPointer { sumInPlace($0) }
        return result
    }
}
