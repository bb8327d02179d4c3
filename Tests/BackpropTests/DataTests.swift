@_spi(Internals) @testable import Backprop
import CZlib
import BackpropTestSupport
import Foundation
import Testing

@Suite("IDX files and data sets")
struct DataTests {
    @Test(arguments: ["images.idx", "images.idx.gz"])
    func readsRawAndGzip(_ name: String) throws {
        let folder = TemporaryFolder()
        let payload = (0..<24).map { UInt8($0 * 10) }
        let path = folder.write(name, idx([2, 3, 4], payload))
        let file = try IDXFile(contentsOf: path)
        #expect(file.dimensions == [2, 3, 4])
        #expect(file.bytes == payload)
    }

    @Test func loadsAFolderAndScalesPixelsPerBatch() throws {
        let folder = TemporaryFolder()
        // 3 training images of 2×2, 2 test images; training files raw, test files gzip.
        folder.write("train-images-idx3-ubyte", idx([3, 2, 2], [0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8]))
        folder.write("train-labels-idx1-ubyte", idx([3], [2, 0, 1]))
        folder.write("t10k-images-idx3-ubyte.gz", idx([2, 2, 2], [9, 9, 9, 9, 0, 0, 0, 0]))
        folder.write("t10k-labels-idx1-ubyte.gz", idx([2], [1, 1]))
        let (train, test) = try Dataset.mnist(directory: folder.path, classCount: 3)
        #expect(train.count == 3 && train.featureCount == 4 && test.count == 2 && train.targetWidth == 3)
        let input = Matrix(rows: 2, columns: 4), targets = Matrix(rows: 2, columns: 3)
        let indices: [Int32] = [0, 2]
        indices.withUnsafeBufferPointer { train.gather(indices: $0, input: input, targets: targets) }
        expectClose(input.scalars, [0, 1, 0.2, 0.4, 5.0 / 255, 6.0 / 255, 7.0 / 255, 8.0 / 255])
        #expect(targets.rowArrays == [[0, 0, 1], [0, 1, 0]])
    }

    /// Each malformed file gives its own error naming the file.
    @Test func malformedFilesThrowDescriptiveErrors() throws {
        let folder = TemporaryFolder()
        func error(_ bytes: [UInt8], name: String = "bad.idx") -> DataError? {
            let path = folder.write(name, bytes)
            do { _ = try IDXFile(contentsOf: path); return nil } catch { return error }
        }
        let path = "\(folder.path)/bad.idx"
        #expect(error([]) == .truncated(path: path, expectedBytes: 4, foundBytes: 0))
        #expect(error([1, 0, 8, 1, 0, 0, 0, 0]) == .badHeader(path: path, offset: 0, expected: "magic bytes 00 00", found: "01 00"))
        #expect(error([0, 0, 0x0D, 1, 0, 0, 0, 0]) == .badHeader(path: path, offset: 2, expected: "element type 0x08 (unsigned byte)", found: "0xD"))
        #expect(error([0, 0, 8, 3, 0, 0, 0, 2]) == .truncated(path: path, expectedBytes: 16, foundBytes: 8))
        #expect(error(idx([2, 2], [1, 2, 3])) == .payloadSize(path: path, dimensions: [2, 2], expectedBytes: 16, foundBytes: 15, compressed: false))
        #expect(error(idx([1], [1, 2])) == .payloadSize(path: path, dimensions: [1], expectedBytes: 9, foundBytes: 10, compressed: false))
        #expect(error(idx([1], [1, 2]), name: "bad.idx.gz") == .payloadSize(path: "\(path).gz", dimensions: [1], expectedBytes: 9,
                                                                           foundBytes: 10, compressed: true))
        // The message names the dimensions, the sizes and what is missing or extra.
        #expect(error(idx([3, 2, 2], [UInt8](repeating: 0, count: 10)))?.description
                == "\(path): truncated: its header gives 3×2×2 elements (28 bytes with the 16-byte header), but the file has 26 bytes (2 missing)")
        #expect(error(idx([3], [1, 2, 3, 4]))?.description
                == "\(path): its header gives 3 elements (11 bytes with the 8-byte header), but the file has 12 bytes (1 extra after the last element)")
        #expect(error(idx([0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF], [])).map { "\($0)" }?.contains("fits in memory") == true)

        let missing = "\(folder.path)/nothing.gz"
        #expect(throws: DataError.fileNotFound(path: missing)) { try IDXFile(contentsOf: missing) }
        #expect { try IDXFile(contentsOf: folder.path) } throws: { error in  // a folder
            guard case .unreadable(folder.path, _)? = error as? DataError else { return false }
            return true
        }

        // A gzip file cut in half, and one with its compressed bytes scrambled.
        let good = folder.write("good.gz", idx([100], (0..<100).map { UInt8($0) }))
        let compressed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: good)))
        for (name, bytes) in [("cut.gz", Array(compressed.prefix(compressed.count / 2))),
                              ("scrambled.gz", Array(compressed.prefix(10)) + compressed.dropFirst(10).map { $0 ^ 0x5A })] {
            let path = folder.write(name, bytes, raw: true)
            #expect {
                try IDXFile(contentsOf: path)
            } throws: { error in
                guard case .unreadable(let p, let reason) = error as? DataError else { return false }
                return p == path && reason.contains("gzip")
            }
        }
    }

    @Test func inconsistentFolderThrows() {
        let folder = TemporaryFolder()
        folder.write("train-images-idx3-ubyte", idx([3, 2, 2], [UInt8](repeating: 0, count: 12)))
        folder.write("train-labels-idx1-ubyte", idx([2], [0, 1]))
        #expect(throws: DataError.countMismatch(imagesPath: "\(folder.path)/train-images-idx3-ubyte", images: 3,
                                                labelsPath: "\(folder.path)/train-labels-idx1-ubyte", labels: 2)) {
            try Dataset.mnist(directory: folder.path)
        }
        #expect(DataError.countMismatch(imagesPath: "a", images: 3, labelsPath: "b", labels: 2).description
                == "a holds 3 images but b holds 2 labels (the counts in their headers must agree)")
        folder.write("train-labels-idx1-ubyte", idx([3], [0, 1, 12]))
        #expect(throws: DataError.labelOutOfRange(path: "\(folder.path)/train-labels-idx1-ubyte", index: 2, label: 12, classCount: 10)) {
            try Dataset.mnist(directory: folder.path)
        }
        folder.write("train-labels-idx1-ubyte", idx([3], [0, 1, 2]))
        folder.write("train-images-idx3-ubyte", idx([3, 4], [UInt8](repeating: 0, count: 12)))
        #expect { try Dataset.mnist(directory: folder.path) } throws: { error in  // 2-D images: not N × rows × columns
            guard case .unexpectedContent("\(folder.path)/train-images-idx3-ubyte", _, _)? = error as? DataError else { return false }
            return true
        }
    }

    /// The real data set, as Debian's `dataset-fashion-mnist` installs it (CI installs it).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Dataset.defaultDirectory)))
    func fashionMNIST() throws {
        let (train, test) = try Dataset.mnist()
        #expect(train.count == 60_000 && test.count == 10_000 && train.featureCount == 784)
        // Fashion-MNIST's first training label is 9 (ankle boot), the first test label 9 too; 6000 per class.
        #expect(train.label(at: 0) == 9 && test.label(at: 0) == 9)
        var counts = [Int](repeating: 0, count: 10)
        for i in 0..<train.count { counts[train.label(at: i)] += 1 }
        #expect(counts == [Int](repeating: 6000, count: 10))
    }

    /// A small gzip file that inflates far beyond what its header claims stops inflating at the claimed size: the
    /// error comes after at most 4 KB more, not after 30 MB (or 30 GB) in memory.
    @Test func aGzipBombStopsAtTheSizeItsHeaderClaims() throws {
        let folder = TemporaryFolder()
        let path = folder.write("bomb.gz", idx([10, 2, 2], [UInt8](repeating: 0, count: 30 << 20)))
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int) < 100_000)
        #expect {
            try IDXFile(contentsOf: path)
        } throws: { error in
            guard case .payloadSize(path, [10, 2, 2], 56, let found, true)? = error as? DataError else { return false }  // 16 + 40
            return found > 56 && found <= 4096  // inflating stopped soon after the claimed size
        }
        // A tiny gzip file whose header claims 2⁴⁰ bytes: nothing of that size is allocated (found by FuzzGzip: the
        // allocation for the claimed size failed and trapped).
        let huge = folder.write("huge.gz", idx([1 << 16, 1 << 16, 256], [1, 2, 3]))
        #expect {
            try IDXFile(contentsOf: huge)
        } throws: { error in
            guard case .payloadSize(huge, _, let expected, 19, true)? = error as? DataError else { return false }
            return expected == 16 + (1 << 40)
        }
        // A gzip file whose header is not IDX stops at once too, and the header is what is reported.
        let notIDX = folder.write("text.gz", [UInt8](repeating: 65, count: 10 << 20))
        #expect(throws: DataError.badHeader(path: notIDX, offset: 0, expected: "magic bytes 00 00", found: "41 41")) {
            try IDXFile(contentsOf: notIDX)
        }
    }
}
