// The transformer layers' settings for checkpoints (``SavableLayer``): sizes only; their tensors are the
// state_dict's.

extension Embedding: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable {
        public var vocabularySize: Int, width: Int
    }
    public static let typeName = "embedding"
    public var settings: Settings { Settings(vocabularySize: vocabularySize, width: width) }
    public init(settings s: Settings) throws {
        try checkSize(s.vocabularySize, "vocabularySize", in: Self.typeName)
        try checkSize(s.width, "width", in: Self.typeName)
        try checkSetting(s.vocabularySize * s.width <= 1 << 28, "embedding: \(s.vocabularySize) × \(s.width) is too large")
        self.init(vocabularySize: s.vocabularySize, width: s.width, seed: 0)
    }
    public static func parameterCount(for s: Settings) -> Int? {
        s.vocabularySize.multipliedReportingOverflow(by: s.width).overflow ? nil : s.vocabularySize * s.width
    }
}

extension PositionEmbedding: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable {
        public var context: Int, width: Int
    }
    public static let typeName = "position-embedding"
    public var settings: Settings { Settings(context: context, width: width) }
    public init(settings s: Settings) throws {
        try checkSize(s.context, "context", in: Self.typeName)
        try checkSize(s.width, "width", in: Self.typeName)
        try checkSetting(s.context * s.width <= 1 << 28, "position-embedding: \(s.context) × \(s.width) is too large")
        self.init(context: s.context, width: s.width, seed: 0)
    }
    public static func parameterCount(for s: Settings) -> Int? {
        s.context.multipliedReportingOverflow(by: s.width).overflow ? nil : s.context * s.width
    }
}

extension LayerNorm: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable {
        public var width: Int, hasBias: Bool, epsilon: Float
    }
    public static let typeName = "layer-norm"
    public var settings: Settings { Settings(width: width, hasBias: hasBias, epsilon: epsilon) }
    public init(settings s: Settings) throws {
        try checkSize(s.width, "width", in: Self.typeName)
        try checkSetting(s.epsilon >= 0 && s.epsilon.isFinite, "layer-norm: epsilon \(s.epsilon) is not finite and ≥ 0")
        self.init(width: s.width, hasBias: s.hasBias, epsilon: s.epsilon)
    }
    public static func parameterCount(for s: Settings) -> Int? { (s.hasBias ? 2 : 1) * s.width }
}

extension MultiHeadAttention: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable {
        public var width: Int, heads: Int
    }
    public static let typeName = "multi-head-attention"
    public var settings: Settings { Settings(width: width, heads: heads) }
    public init(settings s: Settings) throws {
        try checkTransformerShape(width: s.width, heads: s.heads, in: Self.typeName)
        self.init(width: s.width, heads: s.heads, seed: 0)
    }
    public static func parameterCount(for s: Settings) -> Int? { s.width <= 1 << 16 ? 4 * s.width * s.width : nil }
}

extension TransformerBlock: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable {
        public var width: Int, heads: Int, hasBias: Bool
    }
    public static let typeName = "transformer-block"
    public var settings: Settings { Settings(width: width, heads: heads, hasBias: hasBias) }
    public init(settings s: Settings) throws {
        try checkTransformerShape(width: s.width, heads: s.heads, in: Self.typeName)
        self.init(width: s.width, heads: s.heads, hasBias: s.hasBias, seed: 0)
    }
    public static func parameterCount(for s: Settings) -> Int? {
        s.width <= 1 << 16 ? 12 * s.width * s.width + (s.hasBias ? 4 : 2) * s.width : nil
    }
}

extension GPT: SavableLayer {
    public struct Settings: Codable, Sendable, Equatable {
        public var vocabularySize: Int, context: Int, width: Int, heads: Int, layers: Int, hasBias: Bool
    }
    public static let typeName = "gpt"
    public var settings: Settings {
        Settings(vocabularySize: vocabularySize, context: context, width: width, heads: heads, layers: layerCount, hasBias: hasBias)
    }
    public init(settings s: Settings) throws {
        try checkSize(s.vocabularySize, "vocabularySize", in: Self.typeName)
        try checkSize(s.context, "context", in: Self.typeName)
        try checkSetting(s.layers > 0 && s.layers <= 1024, "gpt: layers \(s.layers) is not in 1...1024")
        try checkTransformerShape(width: s.width, heads: s.heads, in: Self.typeName)
        guard Self.parameterCount(for: s) != nil else { throw InvalidLayerSettings("gpt: \(s) is too large a model") }
        self.init(vocabularySize: s.vocabularySize, context: s.context, width: s.width, heads: s.heads, layers: s.layers,
                  hasBias: s.hasBias, seed: 0)
    }
    /// `(V + T)·C + L·(12C² + 2C or 4C) + C or 2C`, or `nil` if that overflows.
    public static func parameterCount(for s: Settings) -> Int? {
        guard s.width <= 1 << 16, s.vocabularySize <= 1 << 24, s.context <= 1 << 24,
              let block = TransformerBlock.parameterCount(for: .init(width: s.width, heads: s.heads, hasBias: s.hasBias)) else { return nil }
        let (blocks, overflow) = block.multipliedReportingOverflow(by: s.layers)
        guard !overflow else { return nil }
        return (s.vocabularySize + s.context) * s.width + blocks + (s.hasBias ? 2 : 1) * s.width
    }
}

/// Checks a width and head count read from a file: the width at most 2¹⁶, the heads dividing it.
func checkTransformerShape(width: Int, heads: Int, in type: String) throws {
    try checkSetting(width > 0 && width <= 1 << 16, "\(type): width \(width) is not in 1...65536")
    try checkSetting(heads > 0 && width % heads == 0, "\(type): \(heads) heads do not divide a width of \(width)")
}
