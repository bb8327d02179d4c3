/// What a layer is, without its parameters: enough to rebuild it when a model is loaded.
///
/// Saved in checkpoints' metadata (`backprop.layers`, a JSON array such as
/// `[{"type":"dense","inputSize":784,"outputSize":128},{"type":"relu"},…]`).
public indirect enum LayerSpecification: Sendable, Equatable {
    case dense(inputSize: Int, outputSize: Int)
    case sigmoid, relu, tanh, softmax, logSoftmax
    case leakyRelu(negativeSlope: Float)
    case elu(alpha: Float)
    case gelu(approximation: GELU.Approximation)
    case dropout(probability: Float, seed: UInt64)
    case batchNorm(featureCount: Int, epsilon: Float, momentum: Float)
    case residual([LayerSpecification])
    case conv2D(input: ImageShape, outputChannels: Int, kernelSize: Int, stride: Int, padding: Int)
    case pool2D(kind: Pool2D.Kind, input: ImageShape, kernelSize: Int, stride: Int)
    case flatten

    /// A new layer of this kind (a dense layer's parameters are zero until loaded or initialised).
    public func makeLayer() -> any Layer {
        switch self {
        case .dense(let inputSize, let outputSize):
            Dense(inputSize: inputSize, outputSize: outputSize, initializer: .zeros)
        case .sigmoid: Sigmoid()
        case .relu: ReLU()
        case .tanh: Tanh()
        case .softmax: Softmax()
        case .logSoftmax: LogSoftmax()
        case .leakyRelu(let slope): LeakyReLU(negativeSlope: slope)
        case .elu(let alpha): ELU(alpha: alpha)
        case .gelu(let approximation): GELU(approximation: approximation)
        case .dropout(let probability, let seed): Dropout(probability: probability, seed: seed)
        case .batchNorm(let featureCount, let epsilon, let momentum):
            BatchNorm(featureCount: featureCount, epsilon: epsilon, momentum: momentum)
        case .residual(let body): Residual(body.map { $0.makeLayer() })
        case .conv2D(let input, let outputChannels, let kernelSize, let stride, let padding):
            Conv2D(input: input, outputChannels: outputChannels, kernelSize: kernelSize, stride: stride, padding: padding,
                   initializer: .zeros)
        case .pool2D(let kind, let input, let kernelSize, let stride): Pool2D(kind, input: input, kernelSize: kernelSize, stride: stride)
        case .flatten: Flatten()
        }
    }

    /// The names and PyTorch shapes of the layer's tensors in a state_dict, in the order of ``Layer/parameters``.
    /// A dense layer's weight is stored as PyTorch's `nn.Linear` keeps it, `outputSize × inputSize` (transposed).
    var tensorNames: [(name: String, transposed: Bool)] {
        switch self {
        case .dense: [("weight", true), ("bias", false)]
        case .batchNorm: [("weight", false), ("bias", false)]  // γ and β, as nn.BatchNorm1d names them
        case .conv2D: [("weight", false), ("bias", false)]  // W already outC × (inC·k·k), PyTorch's order
        case .residual(let body):
            body.enumerated().flatMap { k, inner in inner.tensorNames.map { ("body.\(k).\($0.name)", $0.transposed) } }
        default: []
        }
    }
}

extension LayerSpecification: Codable {
    private enum Key: String, CodingKey {
        case type, inputSize, outputSize, negativeSlope, alpha, approximation, probability, seed
        case featureCount, epsilon, momentum, body, input, outputChannels, kernelSize, stride, padding, kind
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        let type = try c.decode(String.self, forKey: .type)
        switch type {
        case "dense": self = .dense(inputSize: try c.decode(Int.self, forKey: .inputSize),
                                    outputSize: try c.decode(Int.self, forKey: .outputSize))
        case "sigmoid": self = .sigmoid
        case "relu": self = .relu
        case "tanh": self = .tanh
        case "softmax": self = .softmax
        case "log-softmax": self = .logSoftmax
        case "leaky-relu": self = .leakyRelu(negativeSlope: try c.decode(Float.self, forKey: .negativeSlope))
        case "elu": self = .elu(alpha: try c.decode(Float.self, forKey: .alpha))
        case "gelu":
            let name = try c.decode(String.self, forKey: .approximation)
            guard let approximation = GELU.Approximation(rawValue: name) else {
                throw DecodingError.dataCorruptedError(forKey: .approximation, in: c, debugDescription: "unknown GELU approximation '\(name)'")
            }
            self = .gelu(approximation: approximation)
        case "dropout": self = .dropout(probability: try c.decode(Float.self, forKey: .probability),
                                        seed: try c.decode(UInt64.self, forKey: .seed))
        case "residual": self = .residual(try c.decode([LayerSpecification].self, forKey: .body))
        case "conv2d": self = .conv2D(input: try c.decode(ImageShape.self, forKey: .input),
                                      outputChannels: try c.decode(Int.self, forKey: .outputChannels),
                                      kernelSize: try c.decode(Int.self, forKey: .kernelSize),
                                      stride: try c.decode(Int.self, forKey: .stride), padding: try c.decode(Int.self, forKey: .padding))
        case "pool2d": self = .pool2D(kind: try c.decode(Pool2D.Kind.self, forKey: .kind), input: try c.decode(ImageShape.self, forKey: .input),
                                      kernelSize: try c.decode(Int.self, forKey: .kernelSize), stride: try c.decode(Int.self, forKey: .stride))
        case "flatten": self = .flatten
        case "batch-norm": self = .batchNorm(featureCount: try c.decode(Int.self, forKey: .featureCount),
                                             epsilon: try c.decode(Float.self, forKey: .epsilon),
                                             momentum: try c.decode(Float.self, forKey: .momentum))
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unknown layer type '\(type)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        switch self {
        case .dense(let inputSize, let outputSize):
            try c.encode("dense", forKey: .type)
            try c.encode(inputSize, forKey: .inputSize)
            try c.encode(outputSize, forKey: .outputSize)
        case .sigmoid: try c.encode("sigmoid", forKey: .type)
        case .relu: try c.encode("relu", forKey: .type)
        case .tanh: try c.encode("tanh", forKey: .type)
        case .softmax: try c.encode("softmax", forKey: .type)
        case .logSoftmax: try c.encode("log-softmax", forKey: .type)
        case .leakyRelu(let slope):
            try c.encode("leaky-relu", forKey: .type)
            try c.encode(slope, forKey: .negativeSlope)
        case .elu(let alpha):
            try c.encode("elu", forKey: .type)
            try c.encode(alpha, forKey: .alpha)
        case .gelu(let approximation):
            try c.encode("gelu", forKey: .type)
            try c.encode(approximation.rawValue, forKey: .approximation)
        case .dropout(let probability, let seed):
            try c.encode("dropout", forKey: .type)
            try c.encode(probability, forKey: .probability)
            try c.encode(seed, forKey: .seed)
        case .residual(let body):
            try c.encode("residual", forKey: .type)
            try c.encode(body, forKey: .body)
        case .conv2D(let input, let outputChannels, let kernelSize, let stride, let padding):
            try c.encode("conv2d", forKey: .type)
            try c.encode(input, forKey: .input)
            try c.encode(outputChannels, forKey: .outputChannels)
            try c.encode(kernelSize, forKey: .kernelSize)
            try c.encode(stride, forKey: .stride)
            try c.encode(padding, forKey: .padding)
        case .pool2D(let kind, let input, let kernelSize, let stride):
            try c.encode("pool2d", forKey: .type)
            try c.encode(kind, forKey: .kind)
            try c.encode(input, forKey: .input)
            try c.encode(kernelSize, forKey: .kernelSize)
            try c.encode(stride, forKey: .stride)
        case .flatten: try c.encode("flatten", forKey: .type)
        case .batchNorm(let featureCount, let epsilon, let momentum):
            try c.encode("batch-norm", forKey: .type)
            try c.encode(featureCount, forKey: .featureCount)
            try c.encode(epsilon, forKey: .epsilon)
            try c.encode(momentum, forKey: .momentum)
        }
    }
}

extension Dense { public var specification: LayerSpecification? { .dense(inputSize: inputSize, outputSize: outputSize) } }
extension Sigmoid { public var specification: LayerSpecification? { .sigmoid } }
extension ReLU { public var specification: LayerSpecification? { .relu } }
extension Tanh { public var specification: LayerSpecification? { .tanh } }
extension Softmax { public var specification: LayerSpecification? { .softmax } }
extension LogSoftmax { public var specification: LayerSpecification? { .logSoftmax } }
extension LeakyReLU { public var specification: LayerSpecification? { .leakyRelu(negativeSlope: negativeSlope) } }
extension ELU { public var specification: LayerSpecification? { .elu(alpha: alpha) } }
extension GELU { public var specification: LayerSpecification? { .gelu(approximation: approximation) } }
extension Dropout { public var specification: LayerSpecification? { .dropout(probability: probability, seed: seed) } }

extension LayerSpecification {
    /// The output size for `inputSize` inputs, or `nil` if this layer cannot take them.
    func outputSize(forInputSize size: Int) -> Int? {
        switch self {
        case .dense(let inputSize, let outputSize): return inputSize == size && outputSize > 0 ? outputSize : nil
        case .batchNorm(let f, let epsilon, let momentum): return f == size && epsilon > 0 && momentum >= 0 && momentum <= 1 ? size : nil
        case .dropout(let p, _): return p >= 0 && p < 1 ? size : nil
        case .conv2D(let input, let outputChannels, let k, let stride, let padding):
            guard input.channels > 0, input.height > 0, input.width > 0, outputChannels > 0, k > 0, stride > 0, padding >= 0,
                  input.count == size, input.height + 2 * padding >= k, input.width + 2 * padding >= k,
                  input.count <= 1 << 24, outputChannels <= 1 << 16 else { return nil }
            return outputChannels * ((input.height + 2 * padding - k) / stride + 1) * ((input.width + 2 * padding - k) / stride + 1)
        case .pool2D(_, let input, let k, let stride):
            guard input.channels > 0, input.count == size, k > 0, stride > 0, input.height >= k, input.width >= k else { return nil }
            return input.channels * ((input.height - k) / stride + 1) * ((input.width - k) / stride + 1)
        case .residual(let body):
            guard !body.isEmpty else { return nil }
            var inner = size
            for layer in body { guard let next = layer.outputSize(forInputSize: inner) else { return nil }; inner = next }
            return inner == size ? size : nil
        default: return size
        }
    }

    /// The PyTorch names and shapes of every tensor this layer saves (parameters, then state), for `inputSize`
    /// inputs (assumed valid).
    func expectedTensors(inputSize: Int) -> [(name: String, shape: [Int])] {
        switch self {
        case .dense(let inputSize, let outputSize): return [("weight", [outputSize, inputSize]), ("bias", [outputSize])]
        case .batchNorm(let f, _, _):
            return [("weight", [f]), ("bias", [f]), ("running_mean", [f]), ("running_var", [f]), ("num_batches_tracked", [])]
        case .conv2D(let input, let outputChannels, let k, _, _):
            return [("weight", [outputChannels, input.channels, k, k]), ("bias", [outputChannels])]
        case .residual(let body):
            var size = inputSize, result: [(String, [Int])] = []
            for (k, layer) in body.enumerated() {
                result += layer.expectedTensors(inputSize: size).map { ("body.\(k).\($0.name)", $0.shape) }
                size = layer.outputSize(forInputSize: size) ?? size
            }
            return result
        default: return []
        }
    }
}
