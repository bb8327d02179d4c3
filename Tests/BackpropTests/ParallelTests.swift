@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import CSIMD
import Foundation
import Synchronization
import Testing

@Suite("Parallel kernels", .serialized)  // one at a time: several of them need the team to themselves
struct ParallelTests {
    @Test func chunksCoverTheRangeOnceOnAlignedBounds() {
        for count in [0, 1, 15, 16, 17, 100, 784, 50_890] {
            for parts in 1...5 {
                for alignment in [1, 16, 4096] {
                    let chunks = (0..<parts).map { Parallel.chunk($0, of: parts, count: count, alignment: alignment) }
                    #expect(chunks.first?.lowerBound == 0 && chunks.last?.upperBound == count,
                            "count \(count), \(parts) parts, alignment \(alignment): \(chunks)")
                    for (previous, next) in zip(chunks, chunks.dropFirst()) {
                        #expect(previous.upperBound == next.lowerBound)
                        #expect(next.lowerBound % alignment == 0 || next.lowerBound == count)
                    }
                }
            }
        }
    }

    /// Every part of every job runs exactly once, while four threads submit jobs at the same time (one gets the
    /// workers, the others run their parts themselves) and parts submit nested jobs (which run inline).
    @Test func everyPartRunsOnceUnderConcurrentCallers() {
        let jobs = 2_000, parts = 3
        nonisolated(unsafe) let counts = (0..<4).map { _ in UnsafeMutableBufferPointer<Int>.allocate(capacity: jobs * parts) }
        defer { counts.forEach { $0.deallocate() } }
        let nestedRuns = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            let slots = counts[caller]
            slots.initialize(repeating: 0)
            Parallel.withThreadCount(parts) {
                for job in 0..<jobs {
                    Parallel.run(parts: parts) { part in
                        slots[job * parts + part] += 1
                        if job % 100 == 0 {
                            Parallel.run(parts: 2) { _ in nestedRuns.wrappingAdd(1, ordering: .relaxed) }
                        }
                    }
                }
            }
        }
        for slots in counts { #expect(slots.allSatisfy { $0 == 1 }) }
        #expect(nestedRuns.load(ordering: .relaxed) == 4 * (jobs / 100) * parts * 2)
    }

    /// A part that asks for more threads (which would start workers) runs its nested job inline instead of
    /// waiting for the team it is part of.
    @Test func nestedJobsWantingMoreThreadsDoNotDeadlock() {
        let counts = Atomic<Int>(0)
        Parallel.withThreadCount(2) {
            Parallel.run(parts: 2) { _ in
                Parallel.withThreadCount(5) {
                    Parallel.run(parts: 5) { _ in counts.wrappingAdd(1, ordering: .relaxed) }
                }
            }
        }
        #expect(counts.load(ordering: .relaxed) == 10)
    }

    /// Workers compute in the caller's floating-point mode: a subnormal result is flushed to zero on every part.
    /// (Repeated until part 1 has run on a worker, for up to 30 seconds: while other tests use the team, jobs run on
    /// their caller, and a fixed number of tries, 100 000 of them in 0.2 s, could all fall while another test held it.)
    @Test func workersUseTheCallersFloatingPointMode() {
        let values = Matrix(rows: 1, columns: 2), halves = Matrix(rows: 1, columns: 2)
        values.fill(Float.leastNormalMagnitude)
        let caller = pthread_self()
        nonisolated(unsafe) var workerThread = caller
        func halve() {
            Parallel.run(parts: 2) { part in
                halves.pointer[part] = values.pointer[part] * 0.5
                if part == 1 { workerThread = pthread_self() }
            }
        }
        Parallel.withThreadCount(2) {
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                workerThread = caller
                halve()  // normal mode first, so that a worker that kept the flushing mode would be caught
                #expect(halves.scalars == [Float.leastNormalMagnitude / 2, Float.leastNormalMagnitude / 2])
                withSubnormalsFlushedToZero { halve() }
                if pthread_equal(workerThread, caller) == 0 { break }
            }
        }
        #expect(pthread_equal(workerThread, caller) == 0, "no job reached a worker")
        #if arch(x86_64)
        #expect(halves.scalars == [0, 0])
        #endif
    }

    @Test func sumOfSquaresIsTheSameSumOnAnyThreadCount() {
        let x = randomMatrix(1, 200_003, seed: 4)
        let expected = x.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }
        for threads in [1, 2, 3] {
            let sum = Parallel.withThreadCount(threads) { sumOfSquares(x) }
            #expect(abs(sum - expected) <= 1e-6 * expected, "\(threads) threads: \(sum) vs \(expected)")
        }
        x[0, 7] = .nan
        #expect(Parallel.withThreadCount(3) { sumOfSquares(x) }.isNaN)
    }

    /// The optimizers' updates are element-wise, so splitting them between threads changes no bit.
    @Test(arguments: ["sgd", "nesterov", "adam", "amsgrad", "adamw"])
    func optimizerStepsAreBitwiseIdenticalOnAnyThreadCount(name: String) {
        func run(threads: Int) -> [Float] {
            let parameters = randomMatrix(1, 100_001, seed: 5), gradients = randomMatrix(1, 100_001, seed: 6)
            func steps(_ optimizer: some Optimizer) -> [Float] {
                var optimizer = optimizer
                Parallel.withThreadCount(threads) {
                    for _ in 0..<3 { optimizer.step(parameters: parameters, gradients: gradients) }
                }
                return parameters.scalars
            }
            switch name {
            case "sgd": return steps(SGD(learningRate: 0.1, weightDecay: 0.01))
            case "nesterov": return steps(SGD(learningRate: 0.1, momentum: 0.9, nesterov: true))
            case "adam": return steps(Adam(learningRate: 0.01))
            case "amsgrad": return steps(Adam(learningRate: 0.01, amsgrad: true))
            default: return steps(AdamW(learningRate: 0.01))
            }
        }
        let one = run(threads: 1)
        for threads in [2, 3] {
            #expect(run(threads: threads).map(\.bitPattern) == one.map(\.bitPattern), "\(name), \(threads) threads")
        }
    }

    @Test func gatherIsTheSameOnAnyThreadCount() {
        var generator = SeededGenerator(seed: 1)
        let images = (0..<500 * 784).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let data = Dataset(images: images, featureCount: 784, labels: (0..<500).map { UInt8($0 % 10) }, classCount: 10)
        let indices: [Int32] = (0..<100).map { Int32(($0 * 37) % 500) }
        var batches: [[Float]] = []
        for threads in [1, 3] {
            let input = Matrix(rows: 100, columns: 784), targets = Matrix(rows: 100, columns: 10)
            indices.withUnsafeBufferPointer { buffer in
                Parallel.withThreadCount(threads) { data.gather(indices: buffer, input: input, targets: targets) }
            }
            batches.append(input.scalars)
            #expect(input[99, 5] == Float(images[Int(indices[99]) * 784 + 5]) * (1 / 255))
        }
        #expect(batches[0] == batches[1])
    }

    /// The default thread count is the CPUs the process may use: under `taskset -c 0` the command trains with one
    /// thread (and says so), not with the machine's core count.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset")))
    func theDefaultThreadCountFollowsTheAffinityMask() throws {
        #expect(Parallel.availableProcessors >= 1 && Parallel.availableProcessors <= ProcessInfo.processInfo.processorCount)
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 32, seed: 3)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
        process.arguments = ["-c", "0", backpropExecutable.path, "train", "--data", folder.path, "--layers", "16-4", "--epochs", "1",
                             "--output", "\(folder.path)/m.safetensors"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = Pipe()
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0 && text.contains(", 1 thread(s);"), "\(text)")
    }

    /// Two threads measure a round trip: positive, and the shortest of five under 1 ms (a cache line between two CPUs
    /// of one machine takes 28–360 ns here, two threads sharing one CPU a few µs as they yield to each other; but while
    /// other tests keep both CPUs busy a single measurement can last a scheduler's time slice). A thread alone gives up
    /// after the timeout and leaves −1; a second that comes after that returns at once.
    @Test func roundTripProbe() {
        let probe = bp_round_trip_probe_create()!
        nonisolated(unsafe) let shared = probe
        var shortest = Double.infinity
        for _ in 0..<5 {
            bp_round_trip_reset(probe)
            let otherDone = DispatchSemaphore(value: 0)
            let other = Thread {
                bp_round_trip(shared, 5_000_000_000)
                otherDone.signal()
            }
            other.start()
            bp_round_trip(probe, 5_000_000_000)
            otherDone.wait()
            let measured = bp_round_trip_nanoseconds(probe)
            #expect(measured > 0, "\(measured) ns")
            shortest = min(shortest, measured)
        }
        #expect(shortest < 1_000_000, "\(shortest) ns")

        bp_round_trip_reset(probe)
        let start = ContinuousClock.now
        bp_round_trip(probe, 2_000_000)
        #expect(bp_round_trip_nanoseconds(probe) == -1)
        #expect(ContinuousClock.now - start >= .milliseconds(2))
        bp_round_trip(probe, 2_000_000)  // the late second thread: must not wait
        #expect(bp_round_trip_nanoseconds(probe) == -1)
        #expect(ContinuousClock.now - start < .seconds(1))
    }

    /// While far apart, the first window runs split, the second alone, then the faster way, with one window of the
    /// other way after every `retryEvery`; a window that began near, or was disturbed, is not measured; back near,
    /// everything is forgotten.
    @Test func farApartChoiceMeasuresBothWays() {
        var choice = FarApartChoice()
        let window = 100_000_000
        var now = 0
        /// Ends the window at `now + window` after `jobs` jobs.
        func next(jobs: Int, far: Bool) -> Bool {
            choice.jobs = jobs
            now += window
            return choice.nextWindow(now: now, far: far)
        }
        #expect(next(jobs: 500, far: false) == false)
        #expect(next(jobs: 500, far: true) == false)  // near until now: split first
        #expect(choice.splitRate == nil)
        #expect(next(jobs: 300, far: true) == true)  // the split window measured: now alone
        #expect(choice.splitRate == 300 / Double(window))
        #expect(next(jobs: 400, far: true) == true)  // alone was faster
        #expect(choice.aloneRate == 400 / Double(window))
        for _ in 1..<FarApartChoice.retryEvery { #expect(next(jobs: 400, far: true) == true) }
        #expect(next(jobs: 400, far: true) == false)  // the retry of the other way
        #expect(next(jobs: 450, far: true) == false)  // which is now faster
        #expect(choice.splitRate == 450 / Double(window))
        #expect(next(jobs: 450, far: false) == false)  // near again
        #expect(choice.splitRate == nil && choice.aloneRate == nil)
        #expect(next(jobs: 500, far: true) == false)
        #expect(next(jobs: 200, far: true) == true)
        #expect(next(jobs: 100, far: true) == false)  // alone was slower: split
        // A disturbed window (a run alone because the machine was busy, or a measurement without an answer) is not
        // measured: the split rate stays 200 a window, and split stays the faster way.
        choice.disturbed = true
        #expect(next(jobs: 50, far: true) == false)
        #expect(choice.splitRate == 200 / Double(window) && choice.aloneRate == 100 / Double(window))
    }

    /// Jobs give the same results while the team measures round trips (every `probeInterval`): a 2-thread sum
    /// repeated over at least three measurements is the same sum every time. (The sum is the same whether the team
    /// splits it or runs it alone: what this catches is a measurement that disturbs the jobs around it.)
    @Test func jobsAreExactWhileTheTeamMeasuresRoundTrips() {
        let x = randomMatrix(1, 200_003, seed: 5)
        let exact = x.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }
        let team = Parallel.team
        let before = team.measurements.load(ordering: .relaxed)
        let deadline = ContinuousClock.now + .seconds(30)
        Parallel.withThreadCount(2) {
            let first = sumOfSquares(x)
            #expect(abs(first - exact) <= 1e-6 * exact)
            var sums = 0
            while ContinuousClock.now < deadline && team.measurements.load(ordering: .relaxed) < before + 3 {
                let sum = sumOfSquares(x)
                if sum != first { Issue.record("\(sum) after \(sums) sums, first \(first)"); break }
                sums += 1
            }
        }
        #expect(team.measurements.load(ordering: .relaxed) >= before + 3, "the team measured no round trips")
    }
}
