// The built-in layers' settings and names for saving (SavableLayer). The names and keys are those of the files
// earlier versions wrote, so those files still load.

extension Dense: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable { public var inputSize: Int; public var outputSize: Int }
    public static let typeName = "dense"
    public var settings: Settings { Settings(inputSize: inputSize, outputSize: outputSize) }
    public static func parameterCount(for s: Settings) -> Int? {
        let (product, overflow) = (s.inputSize &+ 1).multipliedReportingOverflow(by: s.outputSize)
        return overflow || s.inputSize < 0 || s.outputSize < 0 ? Int.max : product
    }
    public init(settings: Settings) throws {
        try checkSize(settings.inputSize, "inputSize", in: "dense")
        try checkSize(settings.outputSize, "outputSize", in: "dense")
        try checkSetting(settings.inputSize * settings.outputSize <= 1 << 28, "dense: \(settings.inputSize)×\(settings.outputSize) weights are more than 2²⁸")
        self.init(inputSize: settings.inputSize, outputSize: settings.outputSize, initializer: .zeros, seed: 0)
    }
}

extension Sigmoid: SavableLayer {
    public static let typeName = "sigmoid"
    public var settings: NoSettings { NoSettings() }
    public init(settings: NoSettings) { self.init() }
}

extension ReLU: SavableLayer {
    public static let typeName = "relu"
    public var settings: NoSettings { NoSettings() }
    public init(settings: NoSettings) { self.init() }
}

extension Tanh: SavableLayer {
    public static let typeName = "tanh"
    public var settings: NoSettings { NoSettings() }
    public init(settings: NoSettings) { self.init() }
}

extension Softmax: SavableLayer {
    public static let typeName = "softmax"
    public var settings: NoSettings { NoSettings() }
    public init(settings: NoSettings) { self.init() }
}

extension LogSoftmax: SavableLayer {
    public static let typeName = "log-softmax"
    public var settings: NoSettings { NoSettings() }
    public init(settings: NoSettings) { self.init() }
}

extension Flatten: SavableLayer {
    public static let typeName = "flatten"
    public var settings: NoSettings { NoSettings() }
    public init(settings: NoSettings) { self.init() }
}

extension LeakyReLU: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable { public var negativeSlope: Float }
    public static let typeName = "leaky-relu"
    public var settings: Settings { Settings(negativeSlope: negativeSlope) }
    public init(settings: Settings) throws {
        try checkSetting(settings.negativeSlope.isFinite, "leaky-relu: the negative slope \(settings.negativeSlope) is not finite")
        self.init(negativeSlope: settings.negativeSlope)
    }
}

extension ELU: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable { public var alpha: Float }
    public static let typeName = "elu"
    public var settings: Settings { Settings(alpha: alpha) }
    public init(settings: Settings) throws {
        try checkSetting(settings.alpha.isFinite, "elu: alpha \(settings.alpha) is not finite")
        self.init(alpha: settings.alpha)
    }
}

extension GELU: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable { public var approximation: Approximation }
    public static let typeName = "gelu"
    public var settings: Settings { Settings(approximation: approximation) }
    public init(settings: Settings) { self.init(approximation: settings.approximation) }
}

extension Dropout: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable { public var probability: Float; public var seed: UInt64 }
    public static let typeName = "dropout"
    public var settings: Settings { Settings(probability: probability, seed: seed) }
    public init(settings: Settings) throws {
        try checkSetting(settings.probability >= 0 && settings.probability < 1, "dropout: probability \(settings.probability) is not in [0, 1)")
        self.init(probability: settings.probability, seed: settings.seed)
    }
}

extension BatchNorm: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable { public var featureCount: Int; public var epsilon: Float; public var momentum: Float }
    public static let typeName = "batch-norm"
    public var settings: Settings { Settings(featureCount: featureCount, epsilon: epsilon, momentum: momentum) }
    public static func parameterCount(for s: Settings) -> Int? { s.featureCount < 0 || s.featureCount > 1 << 40 ? Int.max : 2 * s.featureCount }
    public init(settings: Settings) throws {
        try checkSize(settings.featureCount, "featureCount", in: "batch-norm")
        try checkSetting(settings.epsilon > 0 && settings.epsilon.isFinite && settings.momentum >= 0 && settings.momentum <= 1,
                         "batch-norm: need ε > 0 and momentum in [0, 1], got ε \(settings.epsilon), momentum \(settings.momentum)")
        self.init(featureCount: settings.featureCount, epsilon: settings.epsilon, momentum: settings.momentum)
    }
}

extension Sequential: SavableLayer {
    public struct Settings: Codable, Sendable { public var layers: [LayerDescription]; public var names: [String]? }
    public static let typeName = "sequential"
    public var settings: Settings {
        Settings(layers: layers.map(LayerDescription.init), names: names == layers.indices.map(String.init) ? nil : names)
    }
    public init(settings: Settings) throws {
        try checkSetting(!settings.layers.isEmpty, "sequential: no layers")
        if let names = settings.names {
            try checkSetting(Self.areValid(names, count: settings.layers.count), "sequential: names \(names) do not name its \(settings.layers.count) layers")
        }
        self.init(settings.layers.map(\.layer), names: settings.names)
    }
}

extension Residual: SavableLayer {
    public struct Settings: Codable, Sendable { public var body: [LayerDescription] }
    public static let typeName = "residual"
    public var settings: Settings { Settings(body: body.layers.map(LayerDescription.init)) }
    public init(settings: Settings) throws {
        try checkSetting(!settings.body.isEmpty, "residual: the body has no layers")
        self.init(settings.body.map(\.layer))
    }
}

extension Conv2D: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable {
        public var input: ImageShape
        public var outputChannels: Int, kernelSize: Int, stride: Int, padding: Int
    }
    public static let typeName = "conv2d"
    public static func parameterCount(for s: Settings) -> Int? {
        let sizes = [s.input.channels, s.kernelSize, s.kernelSize, s.outputChannels]
        guard sizes.allSatisfy({ $0 >= 0 && $0 <= 1 << 24 }) else { return Int.max }
        let (patch, o1) = s.input.channels.multipliedReportingOverflow(by: s.kernelSize * s.kernelSize)
        let (count, o2) = (patch &+ 1).multipliedReportingOverflow(by: s.outputChannels)
        return o1 || o2 ? Int.max : count
    }
    public var settings: Settings {
        Settings(input: input, outputChannels: outputChannels, kernelSize: kernelSize, stride: stride, padding: padding)
    }
    public init(settings s: Settings) throws {
        for (value, name) in [(s.input.channels, "channels"), (s.input.height, "height"), (s.input.width, "width"),
                              (s.outputChannels, "outputChannels"), (s.kernelSize, "kernelSize"), (s.stride, "stride")] {
            try checkSize(value, name, in: "conv2d")
        }
        try checkSetting(s.padding >= 0 && s.padding <= 1 << 12 && s.input.count <= 1 << 24
                         && s.input.channels * s.kernelSize * s.kernelSize * s.outputChannels <= 1 << 28
                         && s.input.height + 2 * s.padding >= s.kernelSize && s.input.width + 2 * s.padding >= s.kernelSize,
                         "conv2d: a \(s.kernelSize)×\(s.kernelSize) kernel, padding \(s.padding), \(s.outputChannels) channels do not fit \(s.input.channels)×\(s.input.height)×\(s.input.width) images")
        self.init(input: s.input, outputChannels: s.outputChannels, kernelSize: s.kernelSize, stride: s.stride,
                  padding: s.padding, initializer: .zeros)
    }
}

extension Pool2D: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable { public var kind: Kind; public var input: ImageShape; public var kernelSize: Int; public var stride: Int }
    public static let typeName = "pool2d"
    public var settings: Settings { Settings(kind: kind, input: input, kernelSize: kernelSize, stride: stride) }
    public init(settings s: Settings) throws {
        for (value, name) in [(s.input.channels, "channels"), (s.input.height, "height"), (s.input.width, "width"),
                              (s.kernelSize, "kernelSize"), (s.stride, "stride")] {
            try checkSize(value, name, in: "pool2d")
        }
        try checkSetting(s.input.count <= 1 << 24 && s.input.height >= s.kernelSize && s.input.width >= s.kernelSize,
                         "pool2d: a \(s.kernelSize)×\(s.kernelSize) window does not fit \(s.input.height)×\(s.input.width)")
        self.init(s.kind, input: s.input, kernelSize: s.kernelSize, stride: s.stride)
    }
}

// What each layer accepts, for loading (outputSizeIfAccepted), and PyTorch's names for its tensors.

extension Dense {
    public func outputSizeIfAccepted(forInputSize size: Int) -> Int? { size == inputSize ? outputSize : nil }
    /// `weight` (`out × in`, the transpose of `W`, as `nn.Linear` stores it) and `bias`.
    public var parameterNames: [TensorName] {
        [TensorName("weight", shape: [outputSize, inputSize], transposed: true), TensorName("bias", shape: [outputSize])]
    }
}

extension BatchNorm {
    public func outputSizeIfAccepted(forInputSize size: Int) -> Int? { size == featureCount ? size : nil }
}

extension Conv2D {
    public func outputSizeIfAccepted(forInputSize size: Int) -> Int? { size == input.count ? output.count : nil }
    /// `weight` (`outC × inC × k × k`, as `nn.Conv2d` stores it) and `bias`.
    public var parameterNames: [TensorName] {
        [TensorName("weight", shape: [outputChannels, input.channels, kernelSize, kernelSize]),
         TensorName("bias", shape: [outputChannels])]
    }
}

extension Pool2D {
    public func outputSizeIfAccepted(forInputSize size: Int) -> Int? { size == input.count ? output.count : nil }
}

extension Sequential {
    public func outputSizeIfAccepted(forInputSize size: Int) -> Int? {
        var size = size
        for layer in layers {
            guard let next = layer.outputSizeIfAccepted(forInputSize: size) else { return nil }
            size = next
        }
        return size
    }
}

extension Residual {
    public func outputSizeIfAccepted(forInputSize size: Int) -> Int? {
        body.outputSizeIfAccepted(forInputSize: size) == size ? size : nil
    }
}
