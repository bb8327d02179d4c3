import ArgumentParser
@_spi(Internals) import Backprop
import Foundation

/// `backprop benchmark`: the latency of a saved model's inference, as a server that embeds it would call it.
struct Benchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time a saved model's inference: microseconds per call at a batch size, median and percentiles.",
        discussion: """
            Loads the model (any 'backprop train --output' file: an MLP, a CNN, a table model), freezes it \
            (network.frozen(): dense weights packed once for Backprop's own kernel), plans one inference \
            workspace, and calls frozen.forward(_:workspace:) --calls times on the same batch of inputs drawn \
            uniformly from [0, 1) (seed 0), after --warmup calls that are not counted. Each call is timed on its own \
            with the monotonic clock. Then the same for the network as loaded, network.forward(_:workspace:) \
            (sgemm, which packs the weights at every call), and --calls / 10 calls of network(x), which also plans a \
            workspace and copies the output each time. Nothing is written.
            """)

    @Option(help: "A model saved by 'backprop train --output'.")
    var model: String

    @Option(parsing: .unconditional, help: "Rows per call, 1...65536.", transform: number)
    var batchSize: Int = 1

    @Option(parsing: .unconditional, help: "Timed calls, 1...10000000.", transform: number)
    var calls: Int = 10_000

    @Option(parsing: .unconditional, help: "Untimed calls before them, 0...10000000.", transform: number)
    var warmup: Int = 1000

    @Option(parsing: .unconditional, help: "Threads for the matrix products and element-wise work. (default: 1, as one request of a server)", transform: number)
    var threads: Int?

    @Flag(help: "Print one JSON object: model, batch_size, threads, calls, median_microseconds, p10_microseconds, p90_microseconds, p99_microseconds, mean_microseconds (the frozen network), network_forward_median_microseconds, network_call_median_microseconds, packed_layers, parameters.")
    var json = false

    func validate() throws {
        guard (1...65_536).contains(batchSize) else { throw ValidationError("--batch-size must be in 1...65536; got \(batchSize)") }
        guard (1...10_000_000).contains(calls) else { throw ValidationError("--calls must be in 1...10000000; got \(calls)") }
        guard (0...10_000_000).contains(warmup) else { throw ValidationError("--warmup must be in 0...10000000; got \(warmup)") }
        if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be in 1...1024; got \(threads)") }
    }

    func run() throws {
        let threadCount = BackpropCLI.threadCount(threads, default: 1, quiet: json)
        Parallel.setThreadCount(threadCount)
        let network: Network, metadata: [String: String]
        do { (network, metadata) = try Checkpoint.load(from: model) } catch { throw fail(error.description) }
        // Inputs drawn from [0, 1) are features; a model that reads token ids would reject them.
        if network.layers.contains(where: { $0 is GPT || $0 is Embedding }) {
            throw fail("\(model) reads token ids (a GPT text model), not features; 'backprop benchmark' times models that read features. Time its generation with 'backprop text sample --model \(model)'")
        }
        var generator = SeededGenerator(seed: 0)
        let input = Matrix(rows: batchSize, columns: network.inputSize,
                           values: (0..<batchSize * network.inputSize).map { _ in Float(generator.nextUniform()) })

        let frozen = network.frozen()
        let frozenWorkspace = Workspace(for: frozen, capacity: batchSize)
        let forward = Benchmark.time(calls: calls, warmup: warmup) { frozen.forward(input, workspace: frozenWorkspace) }
        let workspace = Workspace(for: network, capacity: batchSize, backward: false)
        let unfrozen = Benchmark.time(calls: calls, warmup: warmup) { network.forward(input, workspace: workspace) }
        // The convenience call allocates its workspace and a copy each time: a tenth as many calls is plenty.
        let convenience = Benchmark.time(calls: max(1, calls / 10), warmup: min(warmup, 20)) { _ = network(input) }
        let output = frozen.forward(input, workspace: frozenWorkspace)
        guard output.withUnsafeBufferPointer({ $0.allSatisfy(\.isFinite) }) else {
            throw fail("\(model) gives outputs that are not finite on inputs in [0, 1)")
        }

        if json {
            let object: [String: Any] = [
                "model": model, "batch_size": batchSize, "threads": threadCount, "calls": calls,
                "median_microseconds": forward.percentile(0.5), "p10_microseconds": forward.percentile(0.1),
                "p90_microseconds": forward.percentile(0.9), "p99_microseconds": forward.percentile(0.99),
                "mean_microseconds": forward.mean, "network_forward_median_microseconds": unfrozen.percentile(0.5),
                "network_call_median_microseconds": convenience.percentile(0.5), "packed_layers": frozen.packedLayerCount,
                "parameters": network.parameterCount,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let architecture = metadata["architecture"].map { "\($0) " } ?? ""
        print("\(model): \(architecture)\(network.parameterCount) parameters, batch \(batchSize), \(threadCount) thread(s), \(frozen.packedLayerCount) dense layer(s) packed")
        print(String(format: "frozen.forward(_:workspace:)   median %.2f µs  p10 %.2f  p90 %.2f  p99 %.2f  mean %.2f  (%d calls)",
                     forward.percentile(0.5), forward.percentile(0.1), forward.percentile(0.9),
                     forward.percentile(0.99), forward.mean, calls))
        print(String(format: "network.forward(_:workspace:)  median %.2f µs  p10 %.2f  p90 %.2f  p99 %.2f  mean %.2f  (%d calls)",
                     unfrozen.percentile(0.5), unfrozen.percentile(0.1), unfrozen.percentile(0.9),
                     unfrozen.percentile(0.99), unfrozen.mean, calls))
        print(String(format: "network(x)                     median %.2f µs  (%d calls)", convenience.percentile(0.5),
                     convenience.samples.count))
    }

    /// Call durations in microseconds, sorted.
    struct Timings {
        let samples: [Double]
        /// The sample at fraction `q` of the sorted samples (nearest rank).
        func percentile(_ q: Double) -> Double {
            samples[min(samples.count - 1, max(0, Int((q * Double(samples.count)).rounded(.up)) - 1))]
        }
        var mean: Double { samples.reduce(0, +) / Double(samples.count) }
    }

    /// Runs `body` `warmup` times, then `calls` times, timing each of those.
    static func time(calls: Int, warmup: Int, _ body: () -> Void) -> Timings {
        for _ in 0..<warmup { body() }
        var samples = [Double](repeating: 0, count: calls)
        for i in 0..<calls {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            samples[i] = Double(DispatchTime.now().uptimeNanoseconds - start) / 1000
        }
        samples.sort()
        return Timings(samples: samples)
    }
}
