#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSIMD
import Synchronization

/// The threads Backprop's kernels use: the calling thread plus ``threadCount`` − 1 persistent workers, shared by
/// the whole process. ``gemm(_:_:_:transposeA:transposeB:alpha:beta:)`` splits its output between them (each part
/// a single-threaded `sgemm`), and the training step splits its gathering, optimizer update and norm the same
/// way, so both cores work on every part of the step, not only inside BLAS.
///
/// Why not OpenBLAS's own threads: for the five GEMMs of a batch-64 step on 2 cores, OpenBLAS's second thread
/// made an epoch's GEMMs 1.2–1.4× (784-64-10) and 1.4–1.6× (784-128-10) faster than one thread, where two
/// single-threaded halves made them 1.4–1.8× and 1.4–1.75× faster; and its threads cannot run anything else.
/// OpenBLAS itself is kept at one thread.
///
/// Workers compute in the floating-point mode of the thread that gave them the job (see
/// ``withSubnormalsFlushedToZero(_:)``).
///
/// Workers spin for 20 000 `pause` instructions after each job (about 0.5 ms on Zen 4), so the next job of a
/// training step starts at once, then sleep on a condition variable until there is work. One job runs at a time:
/// a call that finds the team busy (another thread of the program is using it) runs on its own thread, so calls
/// from several threads are safe and never wait on each other.
///
/// While the machine is busy, and while the threads are far apart (a cache line takes 200 ns or more to go from one to
/// the other and back, measured ten times a second) and this program's jobs were measured to run faster that way, jobs
/// run on their caller alone.
///
/// A job is a C function pointer and a pointer to its arguments, so handing it to the workers allocates nothing;
/// the kernels of a training step use that form. (Internal closure forms, for tests and convenience, allocate a
/// small object to lend a closure to another thread.) Of this team, the public part is its size:
/// ``setThreadCount(_:)``, ``threadCount`` and ``withThreadCount(_:_:)``.
public enum Parallel {
    /// One part of a job: `function(context, part, parts)`.
    @usableFromInline typealias Part = @convention(c) (_ context: UnsafeMutableRawPointer, _ part: Int, _ parts: Int) -> Void
    /// One chunk of a loop: `function(context, start, end)` for the indices `start..<end`.
    @usableFromInline typealias Chunk = @convention(c) (_ context: UnsafeMutableRawPointer, _ start: Int, _ end: Int) -> Void

    /// The number of threads a kernel may use (at least 1). The first use sets it from OpenBLAS's default (the
    /// `OPENBLAS_NUM_THREADS` environment variable, else the number of processors).
    /// Inside ``withThreadCount(_:_:)``, that call's count.
    public static var threadCount: Int { scopedThreadCount ?? team.size }

    /// Sets the number of threads each kernel may use; 1 runs everything on the calling thread, and is
    /// bitwise reproducible. Results with more threads are reproducible for the same count.
    public static func setThreadCount(_ count: Int) {
        precondition(count >= 1, "Parallel.setThreadCount: need at least 1 thread, got \(count)")
        team.resize(count)
    }

    /// Runs `body` with ``threadCount`` set to `count` for the current task or thread only (other threads keep
    /// theirs): for a library that must not change the process-wide setting, and for tests.
    public static func withThreadCount<R, E: Error>(_ count: Int, _ body: () throws(E) -> R) throws(E) -> R {
        precondition(count >= 1, "Parallel.withThreadCount: need at least 1 thread, got \(count)")
        BLAS.keepOpenBLASSingleThreaded()
        let result: Result<R, E> = $scopedThreadCount.withValue(count) {
            do throws(E) { return .success(try body()) } catch { return .failure(error) }
        }
        return try result.get()
    }

    @TaskLocal @usableFromInline static var scopedThreadCount: Int?

    /// The CPUs this process may actually use: those in its affinity mask (`taskset`, `docker --cpuset-cpus`),
    /// and no more than its cgroup's CPU quota allows (`docker --cpus 1.5` gives 2, rounded up) — not the machine's
    /// core count, since more threads than CPUs only wait for each other. At least 1.
    public static let availableProcessors: Int = {
        var count = bp_affinity_cpu_count()
        if let quota = cgroupCPUQuota() { count = min(count, quota) }
        return max(1, Int(count))
    }()

    /// `⌈quota / period⌉` from cgroup v2's `/sys/fs/cgroup/cpu.max` (or v1's `cpu.cfs_quota_us` and
    /// `cpu.cfs_period_us`), if a quota is set.
    static func cgroupCPUQuota() -> Int? {
        func read(_ path: String) -> String? {
            guard let file = fopen(path, "r") else { return nil }
            defer { fclose(file) }
            var buffer = [CChar](repeating: 0, count: 128)
            guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
            return String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        func ceilingRatio(_ quota: String, _ period: String) -> Int? {
            guard let q = Double(quota), let p = Double(period), q > 0, p > 0 else { return nil }
            return max(1, Int((q / p).rounded(.up)))
        }
        if let line = read("/sys/fs/cgroup/cpu.max") {
            let parts = line.split(separator: " ").map(String.init)
            return parts.count == 2 ? ceilingRatio(parts[0], parts[1]) : nil  // "max 100000": no quota
        }
        if let quota = read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), let period = read("/sys/fs/cgroup/cpu/cpu.cfs_period_us") {
            return ceilingRatio(quota, period)  // −1: no quota
        }
        return nil
    }

    /// Runs `function(&context, part, parts)` for every `part` in `0..<parts` and returns when all are done. The
    /// calling thread and the workers each claim the next unclaimed part until none is left, so a thread the system
    /// is not running (the machine is busy) delays the job by at most the one part it claimed: split work into more
    /// parts than threads where a part's overhead allows. With one thread, when the team is busy with another
    /// caller's job, while the machine is busy, or while the threads are far apart and this program's jobs ran faster
    /// alone (see ``Parallel``), all parts run here, in order. `function` is a closure that captures nothing (its
    /// arguments are in `context`); allocates nothing.
    @inlinable
    static func run<Context>(parts: Int, context: inout Context, _ function: Part) {
        withUnsafeMutablePointer(to: &context) { pointer in
            let raw = UnsafeMutableRawPointer(pointer)
            if parts <= 1 { if parts == 1 { function(raw, 0, 1) }; return }
            team.run(parts: parts, function: function, context: raw)
        }
    }

    /// Runs `body(part)` for every `part` in `0..<parts`, as ``run(parts:context:_:)`` does (allocating a small
    /// object when the parts go to workers).
    static func run(parts: Int, _ body: (_ part: Int) -> Void) {
        if parts <= 1 { if parts == 1 { body(0) }; return }
        withoutActuallyEscaping(body) { body in
            var body = body
            run(parts: parts, context: &body) { context, part, _ in
                context.assumingMemoryBound(to: ((Int) -> Void).self).pointee(part)
            }
        }
    }

    /// Splits `0..<count` into at most ``threadCount`` contiguous ranges whose bounds are multiples of
    /// `alignment` (except the end), each at least `minimumPerPart` long, and runs `function(&context, start,
    /// end)` on each in parallel (see ``run(parts:context:_:)``). Small counts run as one range on the calling
    /// thread. Allocates nothing.
    @inlinable
    static func forEachChunk<Context>(
        of count: Int, minimumPerPart: Int, alignment: Int = 16, context: inout Context, _ function: Chunk
    ) {
        let parts = partCount(for: count, minimumPerPart: minimumPerPart)
        withUnsafeMutablePointer(to: &context) { pointer in
            let raw = UnsafeMutableRawPointer(pointer)
            if parts <= 1 { if count > 0 { function(raw, 0, count) }; return }
            var chunks = Chunks(function: function, context: raw, count: count, alignment: alignment)
            run(parts: parts, context: &chunks) { context, part, parts in
                let chunks = context.assumingMemoryBound(to: Chunks.self).pointee
                let range = Parallel.chunk(part, of: parts, count: chunks.count, alignment: chunks.alignment)
                if !range.isEmpty { chunks.function(chunks.context, range.lowerBound, range.upperBound) }
            }
        }
    }

    /// ``forEachChunk(of:minimumPerPart:alignment:context:_:)`` with a closure (allocating a small object when the
    /// chunks go to workers).
    static func forEachChunk(
        of count: Int, minimumPerPart: Int, alignment: Int = 16, _ body: (_ range: Range<Int>) -> Void
    ) {
        let parts = partCount(for: count, minimumPerPart: minimumPerPart)
        if parts <= 1 { if count > 0 { body(0..<count) }; return }
        run(parts: parts) { part in
            let range = chunk(part, of: parts, count: count, alignment: alignment)
            if !range.isEmpty { body(range) }
        }
    }

    /// One chunk of a sum: returns the sum over the indices `start..<end`.
    @usableFromInline typealias PartialSum = @convention(c) (_ context: UnsafeMutableRawPointer, _ start: Int, _ end: Int) -> Double

    /// `Σ function(&context, start, end)` over the chunks of `0..<count` that
    /// ``forEachChunk(of:minimumPerPart:alignment:context:_:)`` would make, computed in parallel and added in chunk
    /// order (so the result is reproducible for a given thread count). Allocates nothing.
    @inlinable
    static func sum<Context>(
        of count: Int, minimumPerPart: Int, alignment: Int, context: inout Context, _ function: PartialSum
    ) -> Double {
        let parts = partCount(for: count, minimumPerPart: minimumPerPart)
        return withUnsafeMutablePointer(to: &context) { pointer in
            let raw = UnsafeMutableRawPointer(pointer)
            if parts <= 1 { return function(raw, 0, count) }
            return withUnsafeTemporaryAllocation(of: Double.self, capacity: parts) { partial in
                var sums = Sums(function: function, context: raw, count: count, alignment: alignment,
                                partial: partial.baseAddress!)
                run(parts: parts, context: &sums) { context, part, parts in
                    let sums = context.assumingMemoryBound(to: Sums.self).pointee
                    let range = Parallel.chunk(part, of: parts, count: sums.count, alignment: sums.alignment)
                    sums.partial[part] = sums.function(sums.context, range.lowerBound, range.upperBound)
                }
                return partial.reduce(0, +)
            }
        }
    }

    /// A parallel sum's arguments, for the part function that sums each part's chunk.
    @usableFromInline
    struct Sums {
        @usableFromInline let function: PartialSum
        @usableFromInline let context: UnsafeMutableRawPointer
        @usableFromInline let count: Int
        @usableFromInline let alignment: Int
        @usableFromInline let partial: UnsafeMutablePointer<Double>
        @usableFromInline init(function: PartialSum, context: UnsafeMutableRawPointer, count: Int, alignment: Int,
                               partial: UnsafeMutablePointer<Double>) {
            (self.function, self.context, self.count, self.alignment, self.partial) =
                (function, context, count, alignment, partial)
        }
    }

    /// A chunked loop's arguments, for the part function that computes each part's chunk.
    @usableFromInline
    struct Chunks {
        @usableFromInline let function: Chunk
        @usableFromInline let context: UnsafeMutableRawPointer
        @usableFromInline let count: Int
        @usableFromInline let alignment: Int
        @usableFromInline init(function: Chunk, context: UnsafeMutableRawPointer, count: Int, alignment: Int) {
            (self.function, self.context, self.count, self.alignment) = (function, context, count, alignment)
        }
    }

    /// The split of every pass over a parameter-sized buffer (zeroing gradients, the optimizer step, the gradient
    /// norm): chunks of at least `minimumBufferChunk` elements with bounds at multiples of 1024 (4 KB). Every
    /// pass uses the same bounds, so each thread touches the same part of the buffers at every step and that
    /// part stays in its core's cache; a line written by one core and then touched by the other costs a transfer
    /// between the cores, which at these sizes cost more than the arithmetic.
    @inlinable
    static func forEachBufferChunk<Context>(of count: Int, context: inout Context, _ function: Chunk) {
        forEachChunk(of: count, minimumPerPart: minimumBufferChunk, alignment: bufferChunkAlignment,
                     context: &context, function)
    }

    /// The smallest chunk ``forEachBufferChunk(of:context:_:)`` gives a thread (below it, the hand-off costs more than
    /// the pass).
    @usableFromInline static let minimumBufferChunk = 16_384
    /// The multiple at which ``forEachBufferChunk(of:context:_:)`` splits.
    @usableFromInline static let bufferChunkAlignment = 1024

    /// How many parts ``forEachChunk(of:minimumPerPart:alignment:context:_:)`` uses for `count` elements.
    @inlinable
    static func partCount(for count: Int, minimumPerPart: Int, partsPerThread: Int = 1) -> Int {
        let size = threadCount
        if size == 1 { return 1 }
        return max(1, min(size * partsPerThread, count / max(minimumPerPart, 1)))
    }

    /// The `part`-th of `parts` contiguous ranges covering `0..<count`, bounds rounded to multiples of
    /// `alignment`.
    @inlinable
    static func chunk(_ part: Int, of parts: Int, count: Int, alignment: Int) -> Range<Int> {
        func bound(_ p: Int) -> Int {
            if p >= parts { return count }
            let exact = count * p / parts
            return min(count, (exact + alignment / 2) / alignment * alignment)
        }
        return bound(part)..<bound(part + 1)
    }

    @usableFromInline static let team = WorkerTeam()
}

/// The workers behind ``Parallel``. A job is a C function pointer, a context pointer and a part count, lent to the
/// workers for the duration of `Parallel.run(parts:context:_:)`, which does not return before every part has
/// finished (so the context may live on the caller's stack).
@usableFromInline
final class WorkerTeam: @unchecked Sendable {
    // Workers wait for `generation` to change, then claim parts of the job one at a time from `claim`, as the
    // caller does, until none is left. `claim` packs the job's number (32 bits), its part count (16 bits) and the
    // next unclaimed part (16 bits), so a claim is one compare-and-swap and a late worker's claim on a finished job
    // fails. `finished` counts the job's finished parts; the caller returns when it reaches the part count, without
    // waiting for workers that claimed nothing (a worker the system is not running delays the job by at most the
    // one part it claimed).
    private let generation = Atomic<Int>(0)
    private let claim = Atomic<UInt64>(0)
    private let finished = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let workerCount = Atomic<Int>(0)
    private let requestedSize = Atomic<Int>(0)
    private let jobThreads = Atomic<Int>(0)  // workers 1..<jobThreads take part in the current job
    // Written by the caller before `claim` is published (release) and read by a thread only after it has claimed a
    // part (acquire): they cannot change while a claimed part is unfinished.
    nonisolated(unsafe) private var jobFunction: Parallel.Part?
    nonisolated(unsafe) private var jobContext: UnsafeMutableRawPointer?
    nonisolated(unsafe) private var jobFloatingPointControl: UInt32 = 0
    nonisolated(unsafe) private var jobNumber: UInt64 = 0
    // After a job whose caller waited long for a preempted worker, the caller runs jobs alone until `soloUntil`
    // (read and written only by the holder of `busy`).
    nonisolated(unsafe) private var soloUntil = 0  // the caller runs jobs alone until this time (nanoseconds)
    nonisolated(unsafe) private var soloLength = WorkerTeam.shortestSolo  // the next solo run's length (nanoseconds)
    // The round-trip measurement (see `measureRoundTrip`), read and written only by the holder of `busy`.
    private let probe: OpaquePointer = bp_round_trip_probe_create()
    nonisolated(unsafe) private var nextProbe = 0  // time of the next measurement (nanoseconds)
    nonisolated(unsafe) private var farApart = FarApartChoice()  // measures the two ways to run jobs while far apart
    nonisolated(unsafe) private var aloneUntil = 0  // far apart, and faster alone: jobs run on the caller until then
    /// How many round trips the team has measured (for tests).
    let measurements = Atomic<Int>(0)
    private let sleepLock: UnsafeMutablePointer<pthread_mutex_t>
    private let wakeUp: UnsafeMutablePointer<pthread_cond_t>

    init() {
        sleepLock = .allocate(capacity: 1)
        wakeUp = .allocate(capacity: 1)
        pthread_mutex_init(sleepLock, nil)
        pthread_cond_init(wakeUp, nil)
    }

    /// The number of threads (caller included) a job may use.
    @usableFromInline var size: Int {
        let requested = requestedSize.load(ordering: .acquiring)
        if requested > 0 { return requested }
        // First use: OPENBLAS_NUM_THREADS if set (as OpenBLAS itself would), else the CPUs this process may use; then
        // keep OpenBLAS single-threaded (the team does the splitting).
        let environment = getenv("OPENBLAS_NUM_THREADS").flatMap { Int(String(cString: $0)) }.flatMap { $0 > 0 ? $0 : nil }
        resize(environment ?? Parallel.availableProcessors)
        return requestedSize.load(ordering: .acquiring)
    }

    /// Sets the size. Workers are started by the first job that needs them (and never stopped; surplus ones stay
    /// asleep), so that no call ever waits for the team: setting the size from inside a job cannot deadlock.
    func resize(_ count: Int) {
        BLAS.keepOpenBLASSingleThreaded()
        requestedSize.store(count, ordering: .releasing)
    }

    /// A wait for a worker longer than this (and than the caller's own share) means the worker was preempted.
    static let preemptedWait = 200_000
    /// How long the caller then runs jobs alone before it tries the workers again: 20 ms the first time, doubling
    /// while preemptions keep coming (within `soonAfterSolo` of the last solo run's end), up to 640 ms. Measured in
    /// time, not in jobs: a CNN's jobs last a thousand times longer than a small MLP's, and a count of jobs that suits
    /// one kept the other on one thread for seconds.
    static let shortestSolo = 20_000_000, longestSolo = 640_000_000, soonAfterSolo = 200_000_000

    /// The round-trip measurement's period (a `FarApartChoice` window lasts from one measurement to the next: this
    /// long while the team is in use, longer across a pause or a run alone because the machine is busy), how long a
    /// thread of the measurement waits for the other at most, and the round trip (nanoseconds) from which threads are
    /// far apart (see `measureRoundTrip`).
    static let probeInterval = 100_000_000, probeTimeout = 1_000_000
    static let farRoundTrip = 200.0

    /// The largest part count a job can have (16 bits of `claim`).
    static let maximumParts = 65_535

    @usableFromInline
    func run(parts: Int, function: Parallel.Part, context: UnsafeMutableRawPointer) {
        let threads = min(parts, Parallel.threadCount)
        guard threads > 1, parts <= Self.maximumParts,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for part in 0..<parts { function(context, part, parts) }
            return
        }
        while workerCount.load(ordering: .relaxed) < threads - 1 {  // only the holder of `busy` starts workers
            let index = workerCount.load(ordering: .relaxed) + 1
            startWorker(index: index)
            workerCount.store(index, ordering: .releasing)
        }
        let now = Self.nanoseconds()
        if now >= soloUntil && now >= nextProbe { measureRoundTrip(now: now) }
        farApart.jobs += 1
        if now < soloUntil { farApart.disturbed = true }  // a window with runs alone for this reason is not measured
        if now < soloUntil || now < aloneUntil {
            // The machine was busy a moment ago (the workers would only compete with this thread), or the threads are
            // far apart and this program's jobs ran faster alone (see `measureRoundTrip`).
            for part in 0..<parts { function(context, part, parts) }
            busy.store(false, ordering: .releasing)
            return
        }
        publish(parts: parts, threads: threads, function: function, context: context)
        let start = Self.nanoseconds()
        runClaimedParts(onCaller: true)
        let ownWorkDone = Self.nanoseconds()
        let spins = waitForParts(parts)
        // With parts claimed one at a time, the wait is at most the one part a worker is finishing: shorter than
        // this thread's own work. Much longer means the system stopped running the worker mid-part (another process
        // wants the core): run the next jobs alone rather than wait for it again.
        // A preemption soon after the last solo run means the machine is still busy: the next run is twice as long (up
        // to `longestSolo`); one long after it is a passing event (on this host a virtual CPU is sometimes paused
        // briefly even when the machine is quiet: a CNN step on a quiet machine saw a 2-part job's worker finish
        // 0.9 ms after the caller every 100–200 jobs): the run is short again.
        if spins > 0 {
            let waited = Self.nanoseconds() - ownWorkDone
            if waited > max(Self.preemptedWait, ownWorkDone - start) {
                let now = Self.nanoseconds()
                soloLength = now - soloUntil < Self.soonAfterSolo ? min(2 * soloLength, Self.longestSolo) : Self.shortestSolo
                soloUntil = now + soloLength
            }
        }
        (jobFunction, jobContext) = (nil, nil)
        busy.store(false, ordering: .releasing)
    }

    /// Hands the job to the workers `1..<threads` (waking them if they sleep); the caller then claims parts too.
    private func publish(parts: Int, threads: Int, function: Parallel.Part, context: UnsafeMutableRawPointer) {
        jobFunction = function
        jobContext = context
        jobFloatingPointControl = bp_floating_point_control()  // e.g. subnormals flushed during a step
        jobNumber = (jobNumber &+ 1) & 0xFFFF_FFFF
        jobThreads.store(threads, ordering: .relaxed)
        finished.store(0, ordering: .relaxed)
        claim.store(jobNumber << 32 | UInt64(parts) << 16, ordering: .releasing)
        generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(sleepLock)
            pthread_cond_broadcast(wakeUp)
            pthread_mutex_unlock(sleepLock)
        }
    }

    /// Waits until `parts` parts of the current job have finished; returns how many times it looked.
    private func waitForParts(_ parts: Int) -> Int {
        var spins = 0
        while finished.load(ordering: .acquiring) < parts {
            // Yield once the wait is long: with more busy threads than cores, a worker may need this core.
            spins += 1
            if spins < 4_000 { bp_cpu_relax() } else { sched_yield() }
        }
        return spins
    }

    /// How long a cache line takes to go from the caller to worker 1 and back, measured every `probeInterval` while
    /// the team is in use. At `farRoundTrip` or longer the two threads do not share a cache, and every line one writes
    /// and the other reads costs as much: whether this program's jobs then run faster split or on the caller alone
    /// is measured, one window between two measurements at a time (`FarApartChoice`).
    ///
    /// Why: this host's hypervisor sometimes runs its two virtual CPUs on different core complexes for a while (in
    /// about one run in ten, for tens of seconds). A round trip then took 240–360 ns instead of 55–85 (28–48 when
    /// they shared a core), and OpenBLAS's own 2-thread GEMMs ran at 1-thread speed (the 784-128-10 floor went from
    /// 0.16 to 0.30 s an epoch). Epochs measured in that state, 2 threads against 1 thread:
    /// - 784-128-10 Adam: 0.40–0.47 s against 0.28 s (two threads take 0.19 s otherwise): one thread is faster;
    /// - 784-256-10: 0.58–0.65 s against 0.56 s: about even;
    /// - GRU and LSTM on 12 000 images: 1.1–1.4 s against 1.4–1.5 s, and 1.5–1.6 s against 1.8 s: two are still
    ///   faster;
    /// - the small CNN on 12 000 images: 4.6 s against 5.3 s: two are faster.
    /// No rule on a job's size told these apart reliably (the first three's average jobs take 56, 117 and 112 µs on
    /// one thread), so the team measures.
    private func measureRoundTrip(now: Int) {
        bp_round_trip_reset(probe)
        publish(parts: 2, threads: 2, function: { context, _, _ in
            bp_round_trip(OpaquePointer(context), WorkerTeam.probeTimeout)
        }, context: UnsafeMutableRawPointer(probe))
        runClaimedParts(onCaller: true)
        _ = waitForParts(2)
        (jobFunction, jobContext) = (nil, nil)
        measurements.wrappingAdd(1, ordering: .relaxed)
        nextProbe = Self.nanoseconds() + Self.probeInterval
        let roundTrip = bp_round_trip_nanoseconds(probe)
        // −1: a thread did not answer within `probeTimeout` (the machine is busy): no news, as far apart as before,
        // and the window is not measured.
        if roundTrip < 0 { farApart.disturbed = true }
        let far = roundTrip < 0 ? farApart.windowFar : roundTrip >= Self.farRoundTrip
        aloneUntil = farApart.nextWindow(now: now, far: far) ? nextProbe : 0
    }

    /// Claims and runs parts of the current job until none is left.
    private func runClaimedParts(onCaller: Bool) {
        while true {
            var word = claim.load(ordering: .acquiring)
            var part = 0, parts = 0
            while true {
                parts = Int((word >> 16) & 0xFFFF)
                part = Int(word & 0xFFFF)
                if part >= parts { return }
                let (exchanged, original) = claim.compareExchange(expected: word, desired: word + 1, ordering: .acquiringAndReleasing)
                if exchanged { break }
                word = original
            }
            if !onCaller && bp_floating_point_control() != jobFloatingPointControl {
                bp_set_floating_point_control(jobFloatingPointControl)
            }
            jobFunction!(jobContext!, part, parts)
            finished.wrappingAdd(1, ordering: .releasing)
        }
    }

    private func startWorker(index: Int) {
        // The worker must start from the generation current now (no job runs while workers are being started),
        // not from the one it would see when it first runs, which may already be a job it has to take part in.
        final class Start {
            let team: WorkerTeam, index: Int, generation: Int
            init(_ team: WorkerTeam, _ index: Int, _ generation: Int) { (self.team, self.index, self.generation) = (team, index, generation) }
        }
        let start = Unmanaged.passRetained(Start(self, index, generation.load(ordering: .acquiring))).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { argument in
            let start = Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue()
            start.team.work(index: start.index, from: start.generation)
            return nil
        }, start)
        precondition(status == 0, "Parallel: could not start a worker thread (pthread_create: \(status))")
        pthread_detach(thread)
    }

    /// A worker's loop: wait for a new generation (spinning, then asleep), then claim parts of the job. (A worker that
    /// slept as soon as it was idle after finding itself preempted was tried: on a quiet machine its false alarms
    /// made 2-thread epochs 1.3× slower, and the caller's fallback to running alone, in `run`, already keeps a busy
    /// machine at about 1.1× one thread.)
    private func work(index: Int, from start: Int) {
        var seen = start
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < 20_000 { bp_cpu_relax(); continue }  // about 0.5 ms on Zen 4 (measured)
                pthread_mutex_lock(sleepLock)
                sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen {
                    pthread_cond_wait(wakeUp, sleepLock)
                }
                sleepers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(sleepLock)
            }
            seen = generation.load(ordering: .acquiring)
            if index < jobThreads.load(ordering: .relaxed) { runClaimedParts(onCaller: false) }
        }
    }

    /// A monotonic clock in nanoseconds (vDSO: no system call).
    static func nanoseconds() -> Int {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return t.tv_sec * 1_000_000_000 + t.tv_nsec
    }
}

/// Which way runs a program's jobs faster while the team's threads are far apart (see `WorkerTeam`'s
/// `measureRoundTrip`): split between the threads as usual, or on the caller alone. Time is cut into windows (one
/// between two round-trip measurements); a window that began and ended far apart gives its way's rate, jobs per
/// nanosecond. A program repeats the same steps, so over a window of many steps its jobs per second measure its
/// speed. The first far window runs split, the next alone, then the faster way, trying the other one again every
/// `retryEvery` windows. Back near, everything is forgotten and jobs run split.
struct FarApartChoice {
    /// Jobs started in the current window.
    var jobs = 0
    /// Whether something other than the window's way ran jobs in it (a run alone because the machine was busy) or its
    /// end is unknown (a measurement without an answer): its rate is then not recorded.
    var disturbed = false
    /// Whether the current window began far apart, and runs alone.
    private(set) var windowFar = false, windowAlone = false
    private var windowStart = 0
    /// The rates measured while far apart (jobs per nanosecond).
    private(set) var splitRate: Double?, aloneRate: Double?
    private var windowsSinceRetry = 0
    /// After this many windows on the faster way, one window tries the other.
    static let retryEvery = 10

    /// Ends the current window at `now` (nanoseconds); `far`: whether the threads are far apart now. Returns whether
    /// the next window runs alone.
    mutating func nextWindow(now: Int, far: Bool) -> Bool {
        if windowFar && far && !disturbed && now > windowStart {
            let rate = Double(jobs) / Double(now - windowStart)
            if windowAlone { aloneRate = rate } else { splitRate = rate }
        }
        (jobs, windowStart, windowFar, disturbed) = (0, now, far, false)
        guard far else {
            (splitRate, aloneRate, windowAlone, windowsSinceRetry) = (nil, nil, false, 0)
            return false
        }
        if let split = splitRate, let alone = aloneRate {
            windowsSinceRetry += 1
            let aloneIsFaster = alone > split
            if windowsSinceRetry > Self.retryEvery {
                windowsSinceRetry = 0
                windowAlone = !aloneIsFaster
            } else {
                windowAlone = aloneIsFaster
            }
        } else {
            windowAlone = splitRate != nil  // first split, then alone
        }
        return windowAlone
    }
}
