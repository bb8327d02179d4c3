import Backprop
import CMPI
#if canImport(Glibc)
import Glibc
#endif

/// Data-parallel training over MPI: a ``Communicator`` whose sums are in-place `MPI_Allreduce`s over
/// `MPI_COMM_WORLD`. Start the program with `mpirun -np N …`; every rank runs the same training on its shard of
/// each batch.
///
/// ```swift
/// let world = MPICommunicator.start()
/// trainer.communicator = world        // one allreduce of the gradients per step
/// …
/// world.stop()
/// ```
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    /// Seconds spent in allreduce so far (wall clock), and how many were made.
    public private(set) var allreduceSeconds = 0.0
    public private(set) var allreduceCount = 0

    private init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
    }

    /// Initialises MPI (once per process) and returns the world communicator.
    public static func start() -> MPICommunicator {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 { MPI_Init(nil, nil) }
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(bp_mpi_comm_world(), &rank)
        MPI_Comm_size(bp_mpi_comm_world(), &size)
        return MPICommunicator(rank: Int(rank), size: Int(size))
    }

    public func sumInPlace(_ buffer: UnsafeMutableBufferPointer<Float>) {
        timed(buffer.count) {
            MPI_Allreduce(bp_mpi_in_place(), buffer.baseAddress, Int32(buffer.count), bp_mpi_float(), bp_mpi_sum(), bp_mpi_comm_world())
        }
    }

    public func sumInPlace(_ buffer: UnsafeMutableBufferPointer<Double>) {
        timed(buffer.count) {
            MPI_Allreduce(bp_mpi_in_place(), buffer.baseAddress, Int32(buffer.count), bp_mpi_double(), bp_mpi_sum(), bp_mpi_comm_world())
        }
    }

    /// Whether `value` is the same on every rank (e.g. a hash of the weights).
    public func isEqualOnAllRanks(_ value: UInt64) -> Bool {
        var low = value, high = value
        timed(1) { MPI_Allreduce(bp_mpi_in_place(), &low, 1, bp_mpi_uint64(), bp_mpi_min(), bp_mpi_comm_world()) }
        timed(1) { MPI_Allreduce(bp_mpi_in_place(), &high, 1, bp_mpi_uint64(), bp_mpi_max(), bp_mpi_comm_world()) }
        return low == high
    }

    /// Ends every rank of the job with `code` (after this rank has printed why): no rank is left waiting.
    public func abort(code: Int32) -> Never {
        MPI_Abort(bp_mpi_comm_world(), code)
        exit(code)
    }

    /// Waits for every rank, then shuts MPI down.
    public func stop() {
        MPI_Barrier(bp_mpi_comm_world())
        MPI_Finalize()
    }

    /// Runs one collective call, timing it and checking its status.
    private func timed(_ count: Int, _ call: () -> Int32) {
        guard count > 0 else { return }
        var start = timespec(), end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        let status = call()
        clock_gettime(CLOCK_MONOTONIC, &end)
        precondition(status == bp_mpi_success(), "MPI_Allreduce of \(count) elements failed with \(status) on rank \(rank)")
        allreduceSeconds += Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) * 1e-9
        allreduceCount += 1
    }
}

extension Network {
    /// A 64-bit FNV-1a hash of the parameters' bits: equal on two processes exactly when their weights are
    /// bitwise equal (up to hash collisions).
    public var parameterHash: UInt64 {
        parameters.withUnsafeBufferPointer { values in
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            for value in values {
                hash = (hash ^ UInt64(value.bitPattern)) &* 0x100_0000_01B3
            }
            return hash
        }
    }
}
