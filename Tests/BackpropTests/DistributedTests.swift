@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

let mpirun = "/usr/bin/mpirun"

/// Runs `mpirun` with the given arguments (Open MPI; allowed as root, more ranks than cores allowed).
func runMPI(_ arguments: [String], timeout: TimeInterval = 120) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: mpirun)
    process.arguments = ["--oversubscribe"] + arguments
    var environment = ProcessInfo.processInfo.environment
    environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    process.environment = environment
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    let stdoutData = out.fileHandleForReading.readDataToEndOfFile(), stderrData = err.fileHandleForReading.readDataToEndOfFile()
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning { process.terminate(); Issue.record("mpirun did not finish in \(timeout) s (a hang)") }
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdoutData, as: UTF8.self), String(decoding: stderrData, as: UTF8.self))
}

@Suite("Data-parallel training under MPI", .enabled(if: FileManager.default.isExecutableFile(atPath: mpirun)))
struct DistributedTests {
    /// Two ranks on the same global batches end with the same weights as one process, to 1e-5 (the sums are
    /// ordered differently), and every rank's weights are bitwise the same (the program checks it at the end).
    @Test func twoRanksMatchOneProcess() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 256, seed: 9)
        let settings = ["--data", folder.path, "--layers", "16-12-4", "--optimizer", "adam", "--learning-rate", "0.01",
                        "--batch-size", "32", "--epochs", "3", "--threads", "1", "--seed", "4"]
        let single = "\(folder.path)/single.safetensors", distributed = "\(folder.path)/distributed.safetensors"
        let one = try runBackprop(["train"] + settings + ["--output", single, "--json"])
        #expect(one.status == 0, "\(one.stderr)")
        let two = try runMPI(["-np", "2", backpropExecutable.path, "train", "--distributed"] + settings + ["--output", distributed])
        #expect(two.status == 0, "\(two.stderr)")
        #expect(two.stdout.contains("weights bitwise identical on all 2 ranks"), "\(two.stdout)")
        #expect(two.stdout.contains("on each of 2 MPI ranks"))
        let a = try Network.load(from: single).parameters.scalars, b = try Network.load(from: distributed).parameters.scalars
        expectClose(b, a.map(Double.init), relative: 1e-5, absolute: 1e-6, "2 ranks vs 1 process")
        // The final test accuracy is the whole test set's, gathered from both ranks' shards.
        let lastOne = try JSONSerialization.jsonObject(with: Data(one.stdout.split(separator: "\n").last!.utf8)) as! [String: Any]
        let two2 = try runMPI(["-np", "2", backpropExecutable.path, "train", "--distributed"] + settings + ["--json"])
        let lastTwo = try JSONSerialization.jsonObject(with: Data(two2.stdout.split(separator: "\n").last!.utf8)) as! [String: Any]
        #expect(lastTwo["test_accuracy"] as? Double == lastOne["test_accuracy"] as? Double)
        #expect(lastTwo["ranks"] as? Int == 2 && two2.stdout.split(separator: "\n").count == 3, "only rank 0 prints")
    }

    /// A bad file on one rank ends every rank with the message; nobody waits forever.
    @Test func aFailingRankStopsEveryRank() throws {
        let good = TemporaryFolder(), bad = TemporaryFolder()
        quadrantFolder(good, count: 64, seed: 1)
        quadrantFolder(bad, count: 64, seed: 1)
        bad.write("t10k-labels-idx1-ubyte.gz", [0, 0, 8], raw: true)
        let common = ["train", "--distributed", "--layers", "16-4", "--epochs", "2"]
        let result = try runMPI(["-np", "1", backpropExecutable.path] + common + ["--data", good.path]
                                + [":", "-np", "1", backpropExecutable.path] + common + ["--data", bad.path], timeout: 60)
        #expect(result.status != 0)
        #expect(result.stderr.contains("backprop: error: (rank 1 of 2) \(bad.path)/t10k-labels-idx1-ubyte.gz"), "\(result.stderr)")
    }
}
