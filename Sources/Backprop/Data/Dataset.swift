#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSIMD

/// Samples and their targets, kept compactly and turned into `Float` batches on demand.
///
/// Images read from IDX files stay as bytes (`N × features`, one byte a pixel) and are scaled to [0, 1] as each
/// batch is gathered, so a data set costs one byte a pixel, not four. Targets are class labels (for
/// classification: one-hot rows in batches, accuracy by arg-max) or real-valued rows (for regression).
public struct Dataset: Sendable {
    enum Features: Sendable {
        case bytes([UInt8])  // scaled by 1/255
        case floats([Float])
    }
    enum Targets: Sendable {
        case labels([Int32])  // any number of classes
        case values([Float], width: Int)
    }

    var features: Features
    var targets: Targets
    /// The number of samples.
    public let count: Int
    /// The number of features per sample.
    public let featureCount: Int
    /// The number of classes (labels lie in `0..<classCount`), or the width of real-valued targets.
    public let targetWidth: Int
    /// The shape of each sample as an image (one channel, rows × columns) when the samples are images read from IDX
    /// files (``load(images:labels:classCount:)``); `nil` otherwise. Kept by subsets and splits.
    public internal(set) var imageShape: ImageShape?

    /// A data set of these parts (checked by the public initialisers that call it).
    init(features: Features, targets: Targets, count: Int, featureCount: Int, targetWidth: Int) {
        self.features = features
        self.targets = targets
        self.count = count
        self.featureCount = featureCount
        self.targetWidth = targetWidth
    }

    /// Whether targets are class labels.
    public var isClassification: Bool { if case .labels = targets { true } else { false } }

    /// Images as bytes (scaled to [0, 1] when batched) with class labels.
    public init(images: [UInt8], featureCount: Int, labels: [UInt8], classCount: Int) {
        precondition(featureCount > 0 && images.count == labels.count * featureCount,
                     "Dataset: \(images.count) bytes are not \(labels.count) images of \(featureCount) features")
        precondition(labels.allSatisfy { Int($0) < classCount },
                     "Dataset: labels must be in 0..<\(classCount)")
        features = .bytes(images)
        targets = .labels(labels.map { Int32($0) })
        count = labels.count
        self.featureCount = featureCount
        targetWidth = classCount
    }

    /// Real-valued features (`count × featureCount`, row-major) with class labels in `0..<classCount` (any number
    /// of classes up to `Int32.max`).
    public init(features: [Float], featureCount: Int, labels: [Int], classCount: Int) {
        precondition(featureCount > 0 && features.count == labels.count * featureCount,
                     "Dataset: \(features.count) values are not \(labels.count) samples of \(featureCount) features")
        precondition(classCount > 0 && classCount <= Int(Int32.max) && labels.allSatisfy { $0 >= 0 && $0 < classCount },
                     "Dataset: labels must be in 0..<\(classCount)")
        self.features = .floats(features)
        targets = .labels(labels.map { Int32($0) })
        count = labels.count
        self.featureCount = featureCount
        targetWidth = classCount
    }

    /// Real-valued features and real-valued targets (`count × targetWidth`), for regression.
    public init(features: [Float], featureCount: Int, targets: [Float], targetWidth: Int) {
        precondition(featureCount > 0 && targetWidth > 0 && features.count % featureCount == 0
                     && targets.count == features.count / featureCount * targetWidth,
                     "Dataset: \(features.count) features and \(targets.count) targets do not pair up as rows of \(featureCount) and \(targetWidth)")
        self.features = .floats(features)
        self.targets = .values(targets, width: targetWidth)
        count = features.count / featureCount
        self.featureCount = featureCount
        self.targetWidth = targetWidth
    }

    /// The class label of sample `index` (classification only).
    public func label(at index: Int) -> Int {
        guard case .labels(let labels) = targets else { preconditionFailure("Dataset: regression targets have no labels") }
        return Int(labels[index])
    }

    /// Starts loading the features of samples `indices` into the CPU caches and returns at once, so that a later
    /// ``gather(indices:input:targets:)`` of them does not wait on memory: the trainer calls it for the batch after
    /// next before computing the current one (a shuffled batch is scattered over the whole data set, which does
    /// not fit in the caches).
    @_spi(Internals) public func prefetch(indices: UnsafeBufferPointer<Int32>) {
        let lineBytes = 64
        func prefetchRows<T>(_ values: [T]) {
            values.withUnsafeBytes { source in
                let rowBytes = featureCount * MemoryLayout<T>.stride
                for index in indices {
                    let row = source.baseAddress! + Int(index) * rowBytes
                    var offset = 0
                    while offset < rowBytes { bp_prefetch(row + offset); offset += lineBytes }
                    bp_prefetch(row + rowBytes - 1)
                }
            }
        }
        switch features {
        case .bytes(let bytes): prefetchRows(bytes)
        case .floats(let values): prefetchRows(values)
        }
    }

    /// Writes samples `indices` into the first `indices.count` rows of `input` (`≥ n × featureCount`) and their
    /// targets into `targets` (`≥ n × targetWidth`; one-hot rows for labels), checking every index. Allocates
    /// nothing (the indices are converted on the stack).
    public func gather(at indices: some Collection<Int>, input: Matrix, targets: Matrix) {
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: indices.count) { buffer in
            for (k, index) in indices.enumerated() {
                precondition(index >= 0 && index < count, "Dataset.gather: index \(index) is outside 0..<\(count)")
                buffer[k] = Int32(index)
            }
            gather(indices: UnsafeBufferPointer(buffer), input: input, targets: targets)
        }
    }

    /// Samples `indices` as new matrices: their features (`n × featureCount`) and targets (`n × targetWidth`, one-hot
    /// rows for labels). Checks every index; allocates the two matrices (for a loop that allocates nothing, reuse
    /// matrices with ``gather(at:input:targets:)``).
    public func batch(at indices: some Collection<Int>) -> (input: Matrix, targets: Matrix) {
        let input = Matrix(rows: indices.count, columns: featureCount), targets = Matrix(rows: indices.count, columns: targetWidth)
        gather(at: indices, input: input, targets: targets)
        return (input, targets)
    }

    /// Writes samples `indices` into the first `indices.count` rows of `input` (`≥ n × featureCount`) and their
    /// targets into `targets` (`≥ n × targetWidth`; one-hot rows for labels). Allocates nothing.
    @_spi(Internals) public func gather(indices: UnsafeBufferPointer<Int32>, input: Matrix, targets targetMatrix: Matrix) {
        precondition(input.columns == featureCount && targetMatrix.columns == targetWidth
                     && input.rows >= indices.count && targetMatrix.rows >= indices.count,
                     "Dataset.gather: \(indices.count) samples do not fit input \(input.shapeDescription) and targets \(targetMatrix.shapeDescription) for \(featureCount) features, \(targetWidth) targets")
        let f = featureCount, x = input.pointer
        // Rows are split between the threads: each converts its own, and the memory fetches overlap.
        let rowsPerThread = max(1, 16_384 / f)
        func gatherRows(from source: UnsafeRawBufferPointer, bytes: Bool) {
            var job = Gather(input: x, source: source.baseAddress!, indices: indices.baseAddress!, featureCount: f,
                             sourceIsBytes: bytes)
            Parallel.forEachChunk(of: indices.count, minimumPerPart: rowsPerThread, alignment: 1, context: &job) {
                context, start, end in
                let job = context.load(as: Gather.self), f = job.featureCount
                for row in start..<end {
                    let index = Int(job.indices[row]), to = job.input + row * f
                    if job.sourceIsBytes {
                        bp_bytes_to_floats(to, job.source.assumingMemoryBound(to: UInt8.self) + index * f, f, 1 / 255)
                    } else {
                        to.update(from: job.source.assumingMemoryBound(to: Float.self) + index * f, count: f)
                    }
                }
            }
        }
        switch features {
        case .bytes(let bytes): bytes.withUnsafeBytes { gatherRows(from: $0, bytes: true) }
        case .floats(let values): values.withUnsafeBytes { gatherRows(from: $0, bytes: false) }
        }
        let w = targetWidth, t = targetMatrix.pointer
        switch targets {
        case .labels(let labels):
            t.update(repeating: 0, count: indices.count * w)
            for (row, index) in indices.enumerated() { t[row * w + Int(labels[Int(index)])] = 1 }
        case .values(let values, _):
            values.withUnsafeBufferPointer { source in
                for (row, index) in indices.enumerated() {
                    (t + row * w).update(from: source.baseAddress! + Int(index) * w, count: w)
                }
            }
        }
    }
}

extension Dataset {
    /// Where Debian's `dataset-fashion-mnist` package puts Fashion-MNIST.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"

    /// The four standard files of an MNIST-format folder (gzip, or raw with the same names less `.gz`).
    public static let standardFiles = (
        trainImages: "train-images-idx3-ubyte", trainLabels: "train-labels-idx1-ubyte",
        testImages: "t10k-images-idx3-ubyte", testLabels: "t10k-labels-idx1-ubyte")

    /// Loads the training and test sets from a folder of MNIST-format IDX files (MNIST, Fashion-MNIST, …).
    ///
    /// Each file is looked for with `.gz` first, then without. Images must be `rows × columns` bytes (28×28 for
    /// MNIST) and labels in `0..<classCount`.
    public static func mnist(
        directory: String = defaultDirectory, classCount: Int = 10
    ) throws(DataError) -> (train: Dataset, test: Dataset) {
        let files = standardFiles
        let trainImages = locate(files.trainImages, in: directory), testImages = locate(files.testImages, in: directory)
        let train = try load(images: trainImages, labels: locate(files.trainLabels, in: directory), classCount: classCount)
        let test = try load(images: testImages, labels: locate(files.testLabels, in: directory), classCount: classCount)
        guard train.imageShape == test.imageShape else {  // (the same pixel count in another shape is not the same images)
            func size(_ s: ImageShape?) -> String { s.map { "\($0.height)×\($0.width)" } ?? "?" }
            throw .mismatch(expected: "test images (\(testImages)) of \(size(train.imageShape)) pixels like the training images (\(trainImages))",
                            found: "\(size(test.imageShape))")
        }
        return (train, test)
    }

    /// Loads only the test images and labels of an MNIST-format folder (for evaluating or predicting: the training
    /// files need not be there).
    public static func mnistTest(directory: String = defaultDirectory, classCount: Int = 10) throws(DataError) -> Dataset {
        let files = standardFiles
        return try load(images: locate(files.testImages, in: directory), labels: locate(files.testLabels, in: directory),
                        classCount: classCount)
    }

    /// Loads one image file and its label file.
    public static func load(images imagePath: String, labels labelPath: String, classCount: Int = 10) throws(DataError) -> Dataset {
        let images = try IDXFile(contentsOf: imagePath)
        let labels = try IDXFile(contentsOf: labelPath)
        guard images.dimensions.count == 3 else {
            throw .unexpectedContent(path: imagePath, expected: "3 dimensions (count × rows × columns)",
                                     found: "\(images.dimensions.count): \(images.dimensions)")
        }
        guard labels.dimensions.count == 1 else {
            throw .unexpectedContent(path: labelPath, expected: "1 dimension (count)",
                                     found: "\(labels.dimensions.count): \(labels.dimensions)")
        }
        guard images.dimensions[1] > 0, images.dimensions[2] > 0 else {
            throw .unexpectedContent(path: imagePath, expected: "images of positive size",
                                     found: "\(images.dimensions[1])×\(images.dimensions[2])")
        }
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw .countMismatch(imagesPath: imagePath, images: images.dimensions[0], labelsPath: labelPath,
                                 labels: labels.dimensions[0])
        }
        if let bad = labels.bytes.firstIndex(where: { Int($0) >= classCount }) {
            throw .labelOutOfRange(path: labelPath, index: bad, label: Int(labels.bytes[bad]), classCount: classCount)
        }
        var data = Dataset(images: images.bytes, featureCount: images.dimensions[1] * images.dimensions[2],
                           labels: labels.bytes, classCount: classCount)
        data.imageShape = ImageShape(channels: 1, height: images.dimensions[1], width: images.dimensions[2])
        return data
    }

    private static func locate(_ name: String, in directory: String) -> String {
        let gz = "\(directory)/\(name).gz", raw = "\(directory)/\(name)"
        var status = stat()
        if stat(gz, &status) != 0 && stat(raw, &status) == 0 { return raw }
        return gz
    }
}

/// The arguments of a gather, shared by the threads that each convert some of the rows.
private struct Gather {
    var input: UnsafeMutablePointer<Float>, source: UnsafeRawPointer, indices: UnsafePointer<Int32>, featureCount: Int
    var sourceIsBytes: Bool  // bytes scaled by 1/255, else floats copied
}
