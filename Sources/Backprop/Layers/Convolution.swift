import CSIMD

/// The shape of one sample of image-like data: channels × height × width, flattened channel-major (NCHW, as
/// PyTorch's `flatten` orders it) into a row of `channels · height · width` features.
public struct ImageShape: Sendable, Equatable, Codable {
    public var channels: Int
    public var height: Int
    public var width: Int
    public init(channels: Int, height: Int, width: Int) {
        precondition(channels > 0 && height > 0 && width > 0, "ImageShape: sizes must be positive, got \(channels)×\(height)×\(width)")
        self.channels = channels
        self.height = height
        self.width = width
    }
    /// `channels · height · width`.
    public var count: Int { channels * height * width }
    /// `height · width`: the positions in one channel.
    public var locations: Int { height * width }
}

/// A 2-D convolution (cross-correlation, as in PyTorch): `Y[o, y, x] = b[o] + Σ_c Σ_i Σ_j W[o, c, i, j] ·
/// X[c, s·y + i − p, s·x + j − p]` with zero padding `p` and stride `s`. PyTorch: `nn.Conv2d(inC, outC, k,
/// stride, padding)`; the weight is stored as PyTorch stores it, `outC × (inC·k·k)`.
///
/// Each sample is unfolded into patches (im2col) and multiplied while they are in the cache: `Y_n = W · cols_n + b`,
/// with `cols_n` of shape `(inC·k·k) × (outH·outW)`, written straight into the sample's row. Backward, for chunks
/// of up to 64 samples: `dW += dY · colsᵀ` as one GEMM over the chunk (β = 1), `db += Σ dY`, and per sample
/// `dX_n = col2im(Wᵀ · dY_n)`. The scratch space holds one chunk's patches and its channel-major `dY`.
public struct Conv2D: Layer {
    public let input: ImageShape
    public let outputChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    /// `W`, `outC × (inC·k·k)`.
    public private(set) var weight: Matrix
    /// `b`, `1 × outC`.
    public private(set) var bias: Matrix
    public private(set) var weightGradient: Matrix
    public private(set) var biasGradient: Matrix

    public init(input: ImageShape, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                initializer: Initializer = .pytorchDefault, seed: UInt64 = 0) {
        var generator = SeededGenerator(seed: seed)
        self.init(input: input, outputChannels: outputChannels, kernelSize: kernelSize, stride: stride, padding: padding,
                  initializer: initializer, generator: &generator)
    }

    public init(input: ImageShape, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                initializer: Initializer, generator: inout SeededGenerator) {
        precondition(outputChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0,
                     "Conv2D: need positive channels, kernel and stride, padding ≥ 0; got \(outputChannels), \(kernelSize), \(stride), \(padding)")
        precondition(input.height + 2 * padding >= kernelSize && input.width + 2 * padding >= kernelSize,
                     "Conv2D: a \(kernelSize)×\(kernelSize) kernel does not fit a padded \(input.height)×\(input.width) image")
        self.input = input
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        let patch = input.channels * kernelSize * kernelSize
        let values = MatrixStorage(count: (patch + 1) * outputChannels), gradients = MatrixStorage(count: (patch + 1) * outputChannels)
        weight = Matrix(rows: outputChannels, columns: patch, storage: values, offset: 0)
        bias = Matrix(rows: 1, columns: outputChannels, storage: values, offset: patch * outputChannels)
        weightGradient = Matrix(rows: outputChannels, columns: patch, storage: gradients, offset: 0)
        biasGradient = Matrix(rows: 1, columns: outputChannels, storage: gradients, offset: patch * outputChannels)
        initialize(initializer, using: &generator)
    }

    /// The output's shape.
    public var output: ImageShape {
        ImageShape(channels: outputChannels, height: (input.height + 2 * padding - kernelSize) / stride + 1,
                   width: (input.width + 2 * padding - kernelSize) / stride + 1)
    }

    public func outputSize(forInputSize inputSize: Int) -> Int {
        precondition(inputSize == input.count, "Conv2D: this layer takes \(input.channels)×\(input.height)×\(input.width) = \(input.count) features, was given \(inputSize)")
        return output.count
    }

    public var parameters: [Matrix] { [weight, bias] }
    public var parameterGradients: [Matrix] { [weightGradient, biasGradient] }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        precondition(parameters.count == 2 && gradients.count == 2 && parameters[0].count == weight.count
                     && parameters[1].count == bias.count, "Conv2D.bind: needs [weight, bias] twice")
        parameters[0].assign(weight.reshaped(rows: parameters[0].rows, columns: parameters[0].columns))
        parameters[1].assign(bias)
        (weight, bias, weightGradient, biasGradient) = (parameters[0], parameters[1], gradients[0], gradients[1])
    }

    /// Draws `W` with fan-in `inC·k·k` and fan-out `outC·k·k` (as PyTorch computes them for convolutions).
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        let area = kernelSize * kernelSize
        initializer.fill(weight, fanIn: input.channels * area, fanOut: outputChannels * area, using: &generator)
        initializer.fillBias(bias, fanIn: input.channels * area, using: &generator)
    }

    /// Samples unfolded together: one GEMM per chunk instead of one per sample, with bounded scratch.
    static let chunkSize = 64

    /// The unfolded patches of a chunk (`(inC·k·k) × (chunk·outH·outW)`), which the backward pass also uses for each
    /// sample's patch gradients, and the chunk's `dY` gathered channel-major (`outC × (chunk·outH·outW)`) for the
    /// weight-gradient GEMM; the patches stay from the forward to the backward pass when the batch fits one chunk, and
    /// are rebuilt otherwise.
    public func scratchCount(rows: Int, inputSize: Int, backward: Bool) -> Int {
        min(rows, Self.chunkSize) * output.height * output.width * (weight.columns + outputChannels)
    }

    /// Stops unless `scratch` holds ``scratchCount(rows:inputSize:backward:)`` floats for `rows` rows.
    private func checkScratch(_ scratch: Matrix, rows: Int, _ what: String) {
        let needed = scratchCount(rows: rows, inputSize: input.count, backward: false)
        precondition(scratch.count >= needed,
                     "\(what): needs \(needed) floats of scratch for \(rows) rows, was given \(scratch.count); plan it with scratchCount(rows:inputSize:backward:)")
    }

    private func buffers(_ scratch: Matrix, samples: Int) -> (columns: Matrix, channels: Matrix) {
        let width = samples * output.height * output.width
        return (Matrix(rows: weight.columns, columns: width, storage: scratch.storage, offset: scratch.offset),
                Matrix(rows: outputChannels, columns: width, storage: scratch.storage, offset: scratch.offset + weight.columns * width))
    }

    public func forward(output y: Matrix, input x: Matrix, context: LayerContext) {
        let scratch = context.scratch
        let out = output, locations = out.height * out.width
        precondition(x.columns == input.count && y.columns == out.count && y.rows == x.rows,
                     "Conv2D.forward: input \(x.shapeDescription) / output \(y.shapeDescription) do not fit \(input.count) → \(out.count) features")
        checkScratch(scratch, rows: x.rows, "Conv2D.forward")
        var start = 0
        while start < x.rows {
            let samples = min(Self.chunkSize, x.rows - start), width = samples * locations
            let (columns, channels) = buffers(scratch, samples: samples)
            let job = ConvolutionSamples(layer: self, x: x.pointer, y: y.pointer, columns: columns.pointer,
                                         channels: channels.pointer, start: start, width: width)
            job.forEachSample(samples, .forward)  // unfold, then Y_n = W · cols_n + b, each sample while its patches are in the cache
            start += samples
        }
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input x: Matrix, output: Matrix, context: LayerContext) {
        let scratch = context.scratch
        let out = self.output, locations = out.height * out.width
        precondition(x.columns == input.count && dOutput.columns == out.count && dOutput.rows == x.rows,
                     "Conv2D.backward: input \(x.shapeDescription) / dOutput \(dOutput.shapeDescription) do not fit \(input.count) → \(out.count) features")
        if let dInput { precondition(sameShape: dInput, x, "Conv2D.backward (dInput, input)") }
        checkScratch(scratch, rows: x.rows, "Conv2D.backward")
        var start = 0
        while start < x.rows {
            let samples = min(Self.chunkSize, x.rows - start), width = samples * locations
            let (columns, channels) = buffers(scratch, samples: samples)
            var job = ConvolutionSamples(layer: self, x: x.pointer, y: dOutput.pointer, columns: columns.pointer,
                                         channels: channels.pointer, start: start, width: width)
            if x.rows > Self.chunkSize {  // the forward pass's patches were overwritten by later chunks
                job.forEachSample(samples, .unfold)
            }
            job.forEachSample(samples, .gatherOutputGradient)  // channel-major: channels[o, n·L + l] = dY[n, o, l]
            gemm(weightGradient, channels, columns, transposeB: true, beta: 1)  // dW += dY · colsᵀ, one GEMM for the chunk
            addRowSums(biasGradient, of: channels)
            if let dInput {  // dcols_n = Wᵀ · dY_n into sample n's patch columns, folded while they are in the cache
                job.x = dInput.pointer
                job.forEachSample(samples, .inputGradient)
            }
            start += samples
        }
    }

    /// im2col: `columns[(c·k + i)·k + j, y·outW + x] = X[c, s·y + i − p, s·x + j − p]` (0 outside the image), rows
    /// `rowStride` apart (``bp_unfold``).
    fileprivate func unfold(_ image: UnsafePointer<Float>, into columns: UnsafeMutablePointer<Float>, rowStride: Int) {
        bp_unfold(columns, rowStride, image, input.channels, input.height, input.width, kernelSize, stride, padding,
                  output.height, output.width)
    }

    /// col2im, the adjoint of `unfold`: writes `dX` (overwriting) as the sum of each patch element's gradient
    /// (``bp_fold``, which may zero the patch gradients at padded positions).
    fileprivate func fold(_ columns: UnsafeMutablePointer<Float>, rowStride: Int, into image: UnsafeMutablePointer<Float>) {
        bp_fold(image, columns, rowStride, input.channels, input.height, input.width, kernelSize, stride, padding,
                output.height, output.width)
    }
}

/// The per-sample steps of a chunk of a convolution (unfolding patches; the forward product with the bias; gathering
/// `dY`; the patch gradients and their folding), for the threads that each take a share of the chunk's samples.
/// `x` is the input (or `dInput` when folding), `y` the output (or `dOutput`); `columns` and `channels` are the
/// chunk's patch and channel-major buffers, `width` columns wide; `start` is the chunk's first sample.
private struct ConvolutionSamples {
    enum Step { case unfold, forward, gatherOutputGradient, inputGradient }
    let layer: Conv2D
    var x: UnsafeMutablePointer<Float>
    let y: UnsafeMutablePointer<Float>, columns: UnsafeMutablePointer<Float>, channels: UnsafeMutablePointer<Float>
    let start: Int, width: Int
    var step = Step.unfold

    /// Runs `step` for samples `0..<samples` of the chunk, in parts claimed by the threads one at a time (up to four
    /// per thread, so that a thread the system does not run holds back little).
    func forEachSample(_ samples: Int, _ step: Step) {
        var job = (samples: self, count: samples)
        job.samples.step = step
        let parts = Parallel.partCount(for: samples, minimumPerPart: 2, partsPerThread: 4)
        Parallel.run(parts: parts, context: &job) { context, part, parts in
            let job = context.load(as: (samples: ConvolutionSamples, count: Int).self)
            job.samples.run(Parallel.chunk(part, of: parts, count: job.count, alignment: 1))
        }
    }

    private func run(_ samples: Range<Int>) {
        let input = layer.input, out = layer.output, locations = out.locations
        let outC = layer.outputChannels, patch = layer.weight.columns
        for n in samples {
            let sample = start + n, patches = columns + n * locations
            switch step {
            case .unfold:
                layer.unfold(x + sample * input.count, into: patches, rowStride: width)
            case .forward:  // Y_n (outC × L) = W (outC × P) · cols_n (P × L, rows `width` apart) + b: b written first, the product added
                layer.unfold(x + sample * input.count, into: patches, rowStride: width)
                unpackedGEMMOnThisThread(m: outC, n: locations, k: patch, a: layer.weight.pointer, lda: patch, b: patches,
                                         ldb: width, c: y + sample * out.count, ldc: locations, accumulate: false,
                                         rowBias: layer.bias.pointer)
            case .gatherOutputGradient:
                for o in 0..<outC {
                    (channels + o * width + n * locations).update(from: y + sample * out.count + o * locations, count: locations)
                }
            case .inputGradient:  // dcols_n (P × L) = Wᵀ (P × outC) · dY_n (outC × L), then col2im into dX_n
                unpackedGEMMOnThisThread(m: patch, n: locations, k: outC, a: layer.weight.pointer, lda: patch, transposeA: true,
                                         b: y + sample * out.count, ldb: locations, c: patches, ldc: width, accumulate: false)
                layer.fold(patches, rowStride: width, into: x + sample * input.count)
            }
        }
    }
}

/// 2-D max or average pooling over `k × k` windows with stride `s` (no padding), channel by channel.
/// PyTorch: `nn.MaxPool2d(k, stride)`, `nn.AvgPool2d(k, stride)`.
///
/// Max: `Y[c, y, x] = max over the window`; backward sends each `dY` to the window's (first) maximum, whose index the
/// forward pass keeps in the scratch space. Average: `Y = mean over the window`; backward spreads `dY/k²` over it.
public struct Pool2D: Layer {
    public enum Kind: String, Sendable, Codable { case max, average }
    public let kind: Kind
    public let input: ImageShape
    public let kernelSize: Int
    public let stride: Int

    public init(_ kind: Kind, input: ImageShape, kernelSize: Int = 2, stride: Int? = nil) {
        precondition(kernelSize > 0 && (stride ?? kernelSize) > 0 && input.height >= kernelSize && input.width >= kernelSize,
                     "Pool2D: a \(kernelSize)×\(kernelSize) window does not fit \(input.height)×\(input.width)")
        self.kind = kind
        self.input = input
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
    }

    public var output: ImageShape {
        ImageShape(channels: input.channels, height: (input.height - kernelSize) / stride + 1,
                   width: (input.width - kernelSize) / stride + 1)
    }

    public func outputSize(forInputSize inputSize: Int) -> Int {
        precondition(inputSize == input.count, "Pool2D: this layer takes \(input.count) features, was given \(inputSize)")
        return output.count
    }


    public func scratchCount(rows: Int, inputSize: Int, backward: Bool) -> Int { kind == .max ? rows * output.count : 0 }

    public func forward(output y: Matrix, input x: Matrix, context: LayerContext) {
        let scratch = context.scratch
        precondition(x.columns == input.count && y.columns == output.count && y.rows == x.rows,
                     "Pool2D.forward: input \(x.shapeDescription) / output \(y.shapeDescription) do not fit \(input.count) → \(output.count)")
        precondition(scratch.count >= scratchCount(rows: x.rows, inputSize: x.columns, backward: false),
                     "Pool2D.forward: needs \(scratchCount(rows: x.rows, inputSize: x.columns, backward: false)) floats of scratch for \(x.rows) rows, was given \(scratch.count); plan it with scratchCount(rows:inputSize:backward:)")
        var job = PoolRows(layer: self, x: x.pointer, y: y.pointer, scratch: scratch.pointer)
        Parallel.forEachChunk(of: x.rows, minimumPerPart: 8, alignment: 1, context: &job) { context, start, end in
            context.load(as: PoolRows.self).forward(rows: start..<end)
        }
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input x: Matrix, output: Matrix, context: LayerContext) {
        let scratch = context.scratch
        precondition(x.columns == input.count && dOutput.columns == self.output.count && dOutput.rows == x.rows,
                     "Pool2D.backward: input \(x.shapeDescription) / dOutput \(dOutput.shapeDescription) do not fit \(input.count) → \(self.output.count)")
        precondition(scratch.count >= scratchCount(rows: x.rows, inputSize: x.columns, backward: false),
                     "Pool2D.backward: needs the scratch its forward pass filled (\(scratchCount(rows: x.rows, inputSize: x.columns, backward: false)) floats), was given \(scratch.count)")
        guard let dInput else { return }
        precondition(sameShape: dInput, x, "Pool2D.backward (dInput, input)")
        if kind == .average { dInput.fill(0) }  // max pooling's kernel writes every element
        var job = PoolRows(layer: self, x: dInput.pointer, y: dOutput.pointer, scratch: scratch.pointer)
        Parallel.forEachChunk(of: x.rows, minimumPerPart: 8, alignment: 1, context: &job) { context, start, end in
            context.load(as: PoolRows.self).backward(rows: start..<end)
        }
    }
}

/// A pooling layer's pass over some samples (rows), for the threads that each take a share of the batch: in the
/// forward pass `x` is the input and `y` the output; in the backward pass `x` is `dInput` and `y` is `dOutput`.
private struct PoolRows {
    let layer: Pool2D
    let x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>

    /// Each window's maximum (its position in the image kept in `scratch`; ``bp_max_pool``) or mean.
    func forward(rows: Range<Int>) {
        let input = layer.input, out = layer.output, k = layer.kernelSize, stride = layer.stride
        let h = input.height, w = input.width
        if layer.kind == .max {  // positions relative to each image, so that they stay exact as floats
            for n in rows {
                bp_max_pool(y + n * out.count, scratch + n * out.count, x + n * input.count, input.channels, h, w,
                            out.height, out.width, k, stride)
            }
            return
        }
        for n in rows {
            let image = x + n * input.count, result = y + n * out.count
            for c in 0..<input.channels {
                for oy in 0..<out.height {
                    for ox in 0..<out.width {
                        let o = (c * out.height + oy) * out.width + ox
                        var sum: Float = 0
                        for i in 0..<k {
                            for j in 0..<k { sum += image[(c * h + oy * stride + i) * w + ox * stride + j] }
                        }
                        result[o] = sum / Float(k * k)
                    }
                }
            }
        }
    }

    /// Sends each output gradient to its window's maximum (max; the rest of `dX` is 0) or adds it spread evenly over
    /// the window (average, into a `dX` cleared beforehand).
    func backward(rows: Range<Int>) {
        let input = layer.input, out = layer.output, k = layer.kernelSize, stride = layer.stride
        let h = input.height, w = input.width
        if layer.kind == .max {  // each image's dX written whole (bp_max_pool_backward)
            for n in rows {
                bp_max_pool_backward(x + n * input.count, y + n * out.count, scratch + n * out.count, input.channels, h, w,
                                     out.height, out.width, k, stride)
            }
            return
        }
        for n in rows {
            let gradient = y + n * out.count, dx = x + n * input.count
            for o in 0..<out.count {
                let c = o / (out.height * out.width), oy = (o / out.width) % out.height, ox = o % out.width
                let share = gradient[o] / Float(k * k)
                for i in 0..<k { for j in 0..<k { dx[(c * h + oy * stride + i) * w + ox * stride + j] += share } }
            }
        }
    }
}

/// Flattens images into rows: the identity here, because samples are already rows of `C·H·W` features (NCHW
/// order); it exists so that a network's module indices match PyTorch's `nn.Flatten()`.
public struct Flatten: Layer {
    public init() {}
    public func outputSize(forInputSize inputSize: Int) -> Int { inputSize }
    public func forward(output: Matrix, input: Matrix, context: LayerContext) { output.assign(input) }
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) { dInput?.assign(dOutput) }
}
