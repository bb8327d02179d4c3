import Foundation
import Synchronization

/// A layer that can be saved and loaded: it names its type and states its settings (everything but its
/// parameters), and can be rebuilt from them. The built-in layers save through this protocol, and so does a
/// user's own layer once its type is registered (``LayerRegistry/register(_:)``).
///
/// In a checkpoint's metadata a layer is one JSON object: `"type"` (``typeName``) and the settings' own keys, e.g.
/// `{"inputSize":784,"outputSize":128,"type":"dense"}`. `Settings` must therefore encode as a keyed object (a
/// struct) without a `type` key. Containers put their children's ``LayerDescription``s in their settings.
///
/// ```swift
/// struct Scale: SavableLayer {
///     struct Settings: Codable, Sendable { var featureCount: Int }
///     static let typeName = "my-scale"
///     var settings: Settings { Settings(featureCount: weight.columns) }
///     init(settings: Settings) throws { … }
///     …
/// }
/// LayerRegistry.register(Scale.self)  // once, before loading
/// ```
public protocol SavableLayer: Layer {
    /// What, besides its parameters, makes the layer what it is (sizes, probabilities, children).
    associatedtype Settings: Codable & Sendable
    /// The name the type is saved under (`"dense"`); unique among registered types.
    static var typeName: String { get }
    /// This layer's settings.
    var settings: Settings { get }
    /// A layer with these settings, its parameters to be filled by loading. Throw ``InvalidLayerSettings`` for
    /// settings that cannot make a layer (a damaged file must be an error, not a stop).
    init(settings: Settings) throws

    /// How many parameters a layer with these settings has (its children's not included), if it can say before
    /// it is built: loading then refuses settings that claim more parameters than the file holds before anything is
    /// allocated. Default `nil` (the layer is built, then counted).
    static func parameterCount(for settings: Settings) -> Int?
}

extension SavableLayer {
    public static func parameterCount(for settings: Settings) -> Int? { nil }
}

/// Settings read from a file that cannot make a layer: what is wrong with them.
public struct InvalidLayerSettings: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Settings of a layer that has none.
public struct NoSettings: Codable, Sendable, Equatable {
    public init() {}
}

/// The layer types that can be loaded, by ``SavableLayer/typeName``. The built-in layers are registered from the
/// start; register a type of your own once (for example at the start of `main`) before loading a model that
/// contains it. Safe to use from any thread.
public enum LayerRegistry {
    private static let types = Mutex<[String: any SavableLayer.Type]>(Dictionary(uniqueKeysWithValues: [
        Dense.self, Sigmoid.self, ReLU.self, Tanh.self, Softmax.self, LogSoftmax.self, LeakyReLU.self, ELU.self,
        GELU.self, Dropout.self, BatchNorm.self, Residual.self, Sequential.self, Conv2D.self, Pool2D.self, Flatten.self,
        LSTM.self, GRU.self, RNN.self, TimeDistributed.self, Embedding.self, PositionEmbedding.self, LayerNorm.self,
        MultiHeadAttention.self, TransformerBlock.self, GPT.self,
    ].map { (type: any SavableLayer.Type) in (type.typeName, type) }))

    /// Makes `type` loadable under its ``SavableLayer/typeName``. Registering the same type again does nothing; a
    /// different type under a name already taken stops with a message.
    public static func register<T: SavableLayer>(_ type: T.Type) {
        types.withLock { types in
            if let existing = types[T.typeName] {
                precondition(existing == type, "LayerRegistry: '\(T.typeName)' is already the name of \(existing); choose another typeName for \(T.self)")
                return
            }
            types[T.typeName] = type
        }
    }

    /// The type registered as `name`.
    public static func type(named name: String) -> (any SavableLayer.Type)? {
        types.withLock { $0[name] }
    }

    /// The registered names, sorted.
    public static var typeNames: [String] { types.withLock { $0.keys.sorted() } }
}

/// A layer as a checkpoint describes it: its registered type and its settings. Encoding throws
/// ``CheckpointError/unsupportedLayer(type:)`` unless the layer (and each of its children) is a ``SavableLayer``
/// whose type is registered; decoding builds a new layer through the ``LayerRegistry`` (its parameters are zero
/// until loaded).
public struct LayerDescription: Codable, Sendable {
    /// The layer described (or built).
    public let layer: any Layer

    /// The description of `layer`.
    public init(_ layer: any Layer) {
        self.layer = layer
    }

    private enum Key: String, CodingKey { case type }

    /// A coding-user-info key for a ``ParameterBudget`` that decoding charges each built layer's parameters to.
    static let budgetKey = CodingUserInfoKey(rawValue: "backprop.parameterBudget")!

    public init(from decoder: any Decoder) throws {
        let name = try decoder.container(keyedBy: Key.self).decode(String.self, forKey: .type)
        guard let type = LayerRegistry.type(named: name) else {
            throw InvalidLayerSettings("unknown layer type '\(name)' (known: \(LayerRegistry.typeNames.joined(separator: ", ")); register your own with LayerRegistry.register)")
        }
        self.layer = try type.decodeLayer(from: decoder, name: name, budget: decoder.userInfo[Self.budgetKey] as? ParameterBudget)
    }

    public func encode(to encoder: any Encoder) throws {
        guard let savable = layer as? any SavableLayer, LayerRegistry.type(named: type(of: savable).typeName) != nil else {
            throw CheckpointError.unsupportedLayer(type: "\(type(of: layer))")
        }
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(type(of: savable).typeName, forKey: .type)
        try savable.encodeSettings(to: encoder)
    }
}

/// The most parameters a file can fill, charged as layers are built while a checkpoint is read, so that a header
/// claiming huge layers fails before it allocates more than one of them.
final class ParameterBudget: @unchecked Sendable {
    private var remaining: Int
    init(_ count: Int) { remaining = count }
    func charge(_ count: Int, for type: String) throws {
        guard count <= remaining else {
            throw InvalidLayerSettings("a \(type) layer needs \(count) parameters, more than the file holds")
        }
        remaining -= count
    }
}

extension SavableLayer {
    /// Decodes the settings, charges their parameters to `budget` (before building when the type can count them),
    /// and builds the layer.
    static func decodeLayer(from decoder: any Decoder, name: String, budget: ParameterBudget?) throws -> any Layer {
        let settings = try Settings(from: decoder)
        let counted = parameterCount(for: settings)
        if let counted, let budget { try budget.charge(counted, for: name) }
        let layer = try Self(settings: settings)
        if counted == nil, layer.children.isEmpty, let budget { try budget.charge(layer.parameterCount, for: name) }
        return layer
    }
    func encodeSettings(to encoder: any Encoder) throws { try settings.encode(to: encoder) }
}

/// Checks a size read from a file: positive and at most `2²⁴` (a layer wider than that is not a model but damage).
func checkSize(_ value: Int, _ name: String, in type: String) throws {
    guard value > 0 && value <= 1 << 24 else { throw InvalidLayerSettings("\(type): \(name) \(value) is not in 1...\(1 << 24)") }
}

/// Checks a probability-like setting read from a file.
func checkSetting(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    guard condition else { throw InvalidLayerSettings(message()) }
}
