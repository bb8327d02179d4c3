@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

@Suite("Convolution and pooling")
struct ConvolutionTests {
    static func conv() -> Conv2D {
        let layer = Conv2D(input: ImageShape(channels: 2, height: 5, width: 5), outputChannels: 3, kernelSize: 3, stride: 2, padding: 1)
        layer.weight.assign(Matrix(rows: 3, columns: 18, values: GoldenConvolution.w))
        layer.bias.assign(Matrix(rows: 1, columns: 3, values: GoldenConvolution.b))
        return layer
    }

    @Test func convolutionMatchesPyTorch() {
        let layer = Self.conv()
        #expect(layer.output == ImageShape(channels: 3, height: 3, width: 3))
        let x = Matrix(rows: 2, columns: 50, values: GoldenConvolution.x), dy = Matrix(rows: 2, columns: 27, values: GoldenConvolution.dy)
        let y = Matrix(rows: 2, columns: 27), dx = Matrix(rows: 2, columns: 50)
        let scratch = Matrix(rows: 1, columns: layer.scratchCount(rows: 2, inputSize: 50, backward: true))
        layer.forward(output: y, input: x, context: LayerContext(mode: .training, scratch: scratch))
        layer.backward(dInput: dx, dOutput: dy, input: x, output: y, context: LayerContext(mode: .training, scratch: scratch))
        expectClose(y.scalars, GoldenConvolution.y, relative: 1e-5, absolute: 1e-6, "y")
        expectClose(dx.scalars, GoldenConvolution.dx, relative: 1e-5, absolute: 1e-6, "dx")
        expectClose(layer.weightGradient.scalars, GoldenConvolution.dw, relative: 1e-5, absolute: 1e-6, "dW")
        expectClose(layer.biasGradient.scalars, GoldenConvolution.db, relative: 1e-5, absolute: 1e-6, "db")
    }

    @Test func convolutionPassesTheGradientCheck() {
        let result = gradientCheck(Self.conv(), input: Matrix(rows: 2, columns: 50, values: GoldenConvolution.x))
        #expect(result.passes(tolerance: 1e-2), "\(result)")
    }

    @Test(arguments: [Pool2D.Kind.max, .average])
    func poolingMatchesPyTorchAndPassesTheGradientCheck(_ kind: Pool2D.Kind) {
        let layer = Pool2D(kind, input: ImageShape(channels: 2, height: 4, width: 4))
        let x = Matrix(rows: 2, columns: 32, values: GoldenConvolution.poolX)
        let dy = Matrix(rows: 2, columns: 8, values: kind == .max ? GoldenConvolution.maxPoolDY : GoldenConvolution.averagePoolDY)
        let y = Matrix(rows: 2, columns: 8), dx = Matrix(rows: 2, columns: 32)
        let scratch = Matrix(rows: 1, columns: layer.scratchCount(rows: 2, inputSize: 32, backward: true))
        layer.forward(output: y, input: x, context: LayerContext(mode: .training, scratch: scratch))
        layer.backward(dInput: dx, dOutput: dy, input: x, output: y, context: LayerContext(mode: .training, scratch: scratch))
        expectClose(y.scalars, kind == .max ? GoldenConvolution.maxPoolY : GoldenConvolution.averagePoolY, "\(kind) y")
        expectClose(dx.scalars, kind == .max ? GoldenConvolution.maxPoolDX : GoldenConvolution.averagePoolDX, "\(kind) dx")
        let result = gradientCheck(layer, input: x, epsilon: 1e-3)
        #expect(result.passes(tolerance: 1e-2), "\(kind): \(result)")
    }

    @Test func smallCNNTrainsAndRoundTrips() throws {
        let folder = TemporaryFolder()
        let image = ImageShape(channels: 1, height: 4, width: 4)
        let conv = Conv2D(input: image, outputChannels: 4, kernelSize: 3, padding: 1, seed: 1)
        let pool = Pool2D(.max, input: conv.output)
        let network = Network(inputSize: 16, layers: [conv, ReLU(), pool, Flatten(), Dense(inputSize: pool.output.count, outputSize: 4, seed: 2)])
        quadrantFolder(folder, count: 200, seed: 3)
        let (train, test) = try Dataset.mnist(directory: folder.path, classCount: 4)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: Adam(learningRate: 0.01), batchSize: 16)
        for _ in 0..<5 { try trainer.trainEpoch(on: train) }
        #expect(try trainer.evaluate(on: test).accuracy! > 0.9)
        let path = "\(folder.path)/cnn.safetensors"
        try network.save(to: path)
        #expect(try SafetensorsFile(contentsOf: path).tensors["0.weight"]?.shape == [4, 1, 3, 3])
        let loaded = try Network.load(from: path)
        let x = randomMatrix(3, 16, seed: 5, in: 0...1)
        #expect(loaded(x) == network(x))
    }
}

extension ConvolutionTests {
    /// Pooling a batch on several threads gives exactly what one thread gives.
    @Test(arguments: [Pool2D.Kind.max, .average])
    func poolingIsTheSameOnAnyThreadCount(_ kind: Pool2D.Kind) {
        let pool = Pool2D(kind, input: ImageShape(channels: 3, height: 6, width: 6))
        let x = randomMatrix(40, 108, seed: 5), dy = randomMatrix(40, 27, seed: 6)
        var results: [[Float]] = []
        for threads in [1, 3] {
            let y = Matrix(rows: 40, columns: 27), dx = Matrix(rows: 40, columns: 108)
            let scratch = Matrix(rows: 1, columns: pool.scratchCount(rows: 40, inputSize: 108, backward: true))
            Parallel.withThreadCount(threads) {
                pool.forward(output: y, input: x, context: LayerContext(mode: .training, scratch: scratch))
                pool.backward(dInput: dx, dOutput: dy, input: x, output: y, context: LayerContext(mode: .training, scratch: scratch))
            }
            results.append(y.scalars + dx.scalars)
        }
        #expect(results[0] == results[1])
        #expect(results[0].contains { $0 != 0 })
    }

    /// Max pooling of every window shape and stride against the definition, computed here: each window's maximum,
    /// the gradient routed to its first position when values tie (as PyTorch does), and a NaN that wins its window.
    /// Width 37 has 18 windows of 2 × 2 in a row, more than the 16 the AVX-512 kernel takes at once; with 2 × 2 windows
    /// both widths leave a last column no window covers.
    @Test(arguments: [(2, 2), (3, 2), (2, 1), (3, 3)], [9, 37])
    func maxPoolingIsTheDefinition(_ window: (size: Int, stride: Int), width: Int) {
        let shape = ImageShape(channels: 2, height: 7, width: width), rows = 3  // odd sides: a last row and column no window covers
        let pool = Pool2D(.max, input: shape, kernelSize: window.size, stride: window.stride)
        var values = randomMatrix(rows, shape.count, seed: 9, in: 0...4).scalars.map { $0.rounded() }  // many ties
        values[shape.count + 10] = .nan  // sample 1, channel 0, row 1, column 1
        let x = Matrix(rows: rows, columns: shape.count, values: values)
        let out = pool.output, dy = randomMatrix(rows, out.count, seed: 10)
        let y = Matrix(rows: rows, columns: out.count), dx = Matrix(rows: rows, columns: shape.count)
        let scratch = Matrix(rows: 1, columns: pool.scratchCount(rows: rows, inputSize: shape.count, backward: true))
        pool.forward(output: y, input: x, context: LayerContext(mode: .training, scratch: scratch))
        dx.fill(7)  // dX is overwritten, not added to
        pool.backward(dInput: dx, dOutput: dy, input: x, output: y, context: LayerContext(mode: .training, scratch: scratch))
        var expectedY = [Float](repeating: 0, count: rows * out.count), expectedDX = [Float](repeating: 0, count: rows * shape.count)
        for n in 0..<rows {
            for c in 0..<shape.channels {
                for oy in 0..<out.height {
                    for ox in 0..<out.width {
                        var best = -Float.infinity, at = -1
                        for i in 0..<window.size {
                            for j in 0..<window.size {
                                let index = n * shape.count + (c * shape.height + oy * window.stride + i) * shape.width + ox * window.stride + j
                                if at < 0 || values[index] > best || values[index].isNaN { (best, at) = (values[index], index) }
                            }
                        }
                        let o = n * out.count + (c * out.height + oy) * out.width + ox
                        expectedY[o] = best
                        expectedDX[at] += dy.scalars[o]
                    }
                }
            }
        }
        #expect(y.scalars.enumerated().allSatisfy { $1 == expectedY[$0] || ($1.isNaN && expectedY[$0].isNaN) }, "\(window)")
        #expect(dx.scalars == expectedDX, "\(window)")
        #expect(expectedY.contains { $0.isNaN }, "the NaN falls in a window")
    }

    /// Batches larger than a chunk (64 samples) give what the samples give one at a time.
    @Test func chunkedBatchesEqualSingleSamples() {
        let layer = Conv2D(input: ImageShape(channels: 2, height: 6, width: 6), outputChannels: 3, kernelSize: 3, padding: 1, seed: 2)
        let rows = 130, x = randomMatrix(rows, 72, seed: 3), dy = randomMatrix(rows, 108, seed: 4)
        let y = Matrix(rows: rows, columns: 108), dx = Matrix(rows: rows, columns: 72)
        let scratch = Matrix(rows: 1, columns: layer.scratchCount(rows: rows, inputSize: 72, backward: true))
        layer.weightGradient.fill(0)
        Parallel.withThreadCount(3) {  // the batch's per-sample steps split between threads
            layer.forward(output: y, input: x, context: LayerContext(mode: .training, scratch: scratch))
            layer.backward(dInput: dx, dOutput: dy, input: x, output: y, context: LayerContext(mode: .training, scratch: scratch))
        }
        let batchWeightGradient = layer.weightGradient.copy()
        layer.weightGradient.fill(0)
        let one = Matrix(rows: 1, columns: layer.scratchCount(rows: 1, inputSize: 72, backward: true))
        for n in [0, 63, 64, 65, 129] {
            let yn = Matrix(rows: 1, columns: 108), dxn = Matrix(rows: 1, columns: 72)
            layer.forward(output: yn, input: x.rows(n..<(n + 1)), context: LayerContext(mode: .training, scratch: one))
            layer.backward(dInput: dxn, dOutput: dy.rows(n..<(n + 1)), input: x.rows(n..<(n + 1)), output: yn, context: LayerContext(mode: .training, scratch: one))
            expectClose(y.rows(n..<(n + 1)), yn, relative: 1e-5, absolute: 1e-6, "y of sample \(n)")
            expectClose(dx.rows(n..<(n + 1)), dxn, relative: 1e-5, absolute: 1e-6, "dx of sample \(n)")
        }
        layer.weightGradient.fill(0)
        for n in 0..<rows {
            let yn = Matrix(rows: 1, columns: 108)
            layer.forward(output: yn, input: x.rows(n..<(n + 1)), context: LayerContext(mode: .training, scratch: one))
            layer.backward(dInput: nil, dOutput: dy.rows(n..<(n + 1)), input: x.rows(n..<(n + 1)), output: yn, context: LayerContext(mode: .training, scratch: one))
        }
        expectClose(batchWeightGradient, layer.weightGradient, relative: 1e-4, absolute: 1e-4, "dW")
    }
}

extension ConvolutionTests {
    /// Small images, large padding and strides: in every edge case of the patch bounds the output is the
    /// convolution's definition, computed here as sums, and the gradients pass the gradient check.
    @Test(arguments: [(1, 1, 3, 1, 1), (1, 2, 3, 2, 1), (3, 3, 3, 2, 2), (5, 4, 2, 3, 0), (2, 5, 3, 1, 2), (6, 7, 3, 1, 1),
                      (7, 6, 5, 1, 1), (6, 6, 3, 2, 0)])
    func edgeCases(_ shape: (Int, Int, Int, Int, Int)) {
        let (height, width, kernel, stride, padding) = shape
        let layer = Conv2D(input: ImageShape(channels: 2, height: height, width: width), outputChannels: 2,
                           kernelSize: kernel, stride: stride, padding: padding, seed: 7)
        let x = randomMatrix(3, 2 * height * width, seed: 8), out = layer.output
        let y = layer(x)
        var expected = [Float]()
        for n in 0..<3 {
            for o in 0..<2 {
                for oy in 0..<out.height {
                    for ox in 0..<out.width {
                        var sum = Double(layer.bias[0, o])
                        for c in 0..<2 {
                            for i in 0..<kernel {
                                for j in 0..<kernel {
                                    let (iy, ix) = (oy * stride + i - padding, ox * stride + j - padding)
                                    guard iy >= 0 && iy < height && ix >= 0 && ix < width else { continue }
                                    sum += Double(layer.weight[o, (c * kernel + i) * kernel + j]) * Double(x[n, (c * height + iy) * width + ix])
                                }
                            }
                        }
                        expected.append(Float(sum))
                    }
                }
            }
        }
        expectClose(y.scalars, expected.map(Double.init), relative: 1e-5, absolute: 1e-6, "\(shape)")
        let result = gradientCheck(layer, input: x)
        #expect(result.passes(tolerance: 1e-2), "\(shape): \(result)")
    }
}

extension ConvolutionTests {
    /// One input and one output channel with a 1×1 kernel: each sample's products are single rows (`sgemv`), forward
    /// and backward; the output is `w·x + b` and the gradients pass the gradient check.
    @Test func singleChannelPointwiseConvolution() {
        let layer = Conv2D(input: ImageShape(channels: 1, height: 3, width: 4), outputChannels: 1, kernelSize: 1, seed: 5)
        let x = randomMatrix(70, 12, seed: 6)  // more than a chunk of 64 samples
        let (w, b) = (layer.weight[0, 0], layer.bias[0, 0])
        expectClose(layer(x).scalars, x.scalars.map { Double(w * $0 + b) }, relative: 1e-6, absolute: 1e-6, "y = w·x + b")
        #expect(gradientCheck(layer, input: x.rows(0..<3)).passes(tolerance: 1e-2))
    }
}

extension ConvolutionTests {
    @Test func flattenIsTheIdentityBothWays() {
        let x = randomMatrix(3, 8, seed: 9)
        #expect(Flatten()(x) == x)
        #expect(gradientCheck(Flatten(), input: x).passes(tolerance: 1e-3))
    }
}
