@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// Messages that named the wrong problem (the rest of the reliability issue): each now says what is really wrong,
/// in one line, with status 1 (64 for a usage error).
@Suite("Hostile input, round four: messages that say what is wrong")
struct MessageTests {
    /// Expects one line on standard error, starting "backprop: error: ", holding every one of `parts`.
    static func expectOneLine(_ result: (status: Int32, stdout: String, stderr: String), status: Int32, _ parts: [String],
                              _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == status, "\(comment): status \(result.status): \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.hasPrefix("backprop: error: ") && result.stderr.split(separator: "\n").count == 1,
                "\(comment): \(result.stderr)", sourceLocation: sourceLocation)
        for part in parts {
            #expect(result.stderr.contains(part), "\(comment): '\(part)' missing from \(result.stderr)", sourceLocation: sourceLocation)
        }
    }

    /// Image and label files that disagree on the count name both files and both counts; a file whose header
    /// disagrees with its size names the dimensions, the size they need and the size found.
    @Test func countMessagesNameBothFilesAndCounts() throws {
        let folder = TemporaryFolder()
        HostileDataTests.folder(folder, train: 20, test: 20)
        folder.write("t10k-labels-idx1-ubyte.gz", idx([19], [UInt8](repeating: 1, count: 19)))
        let model = "\(folder.path)/m.safetensors"
        try Network(sizes: [16, 4], activation: .relu, initializer: .heNormal, seed: 1).save(to: model)
        var result = try runBackprop(["evaluate", "--model", model, "--data", folder.path])
        Self.expectOneLine(result, status: 1, ["\(folder.path)/t10k-images-idx3-ubyte.gz holds 20 images but \(folder.path)/t10k-labels-idx1-ubyte.gz holds 19 labels"])
        // Raw images whose header says 20 images of 4×4 but that hold 19 and a half.
        try FileManager.default.removeItem(atPath: "\(folder.path)/t10k-images-idx3-ubyte.gz")
        folder.write("t10k-images-idx3-ubyte", idx([20, 4, 4], [UInt8](repeating: 0, count: 19 * 16 + 8)))
        folder.write("t10k-labels-idx1-ubyte.gz", idx([20], [UInt8](repeating: 1, count: 20)))
        result = try runBackprop(["evaluate", "--model", model, "--data", folder.path])
        Self.expectOneLine(result, status: 1, ["\(folder.path)/t10k-images-idx3-ubyte: truncated: its header gives 20×4×4 elements (336 bytes with the 16-byte header), but the file has 328 bytes (8 missing)"])
    }
}
