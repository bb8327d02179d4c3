#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The logistic sigmoid, `y = σ(z) = 1 / (1 + e⁻ᶻ)`; `f′(z) = y(1 − y)`.
public struct Sigmoid: Activation {
    public static let name = "sigmoid"
    public init() {}
    @inlinable public static func value(_ z: Float) -> Float { sigmoid(z) }
    @inlinable public static func derivative(input z: Float, output y: Float) -> Float { y * (1 - y) }
}

/// The rectified linear unit, `y = max(0, z)`; `f′(z) = [z > 0]` (0 at the kink, as in PyTorch).
public struct ReLU: Activation {
    public static let name = "relu"
    public init() {}
    @inlinable public static func value(_ z: Float) -> Float { max(0, z) }
    @inlinable public static func derivative(input z: Float, output y: Float) -> Float { z > 0 ? 1 : 0 }
}

/// The hyperbolic tangent, `y = tanh(z)`; `f′(z) = 1 − y²`.
public struct Tanh: Activation {
    public static let name = "tanh"
    public init() {}
    @inlinable public static func value(_ z: Float) -> Float { tanhf(z) }
    @inlinable public static func derivative(input z: Float, output y: Float) -> Float { 1 - y * y }
}

/// `σ` applied to every element, as a new matrix.
public func sigmoid(_ x: Matrix) -> Matrix { Sigmoid()(x) }
/// `max(0, x)` applied to every element, as a new matrix.
public func relu(_ x: Matrix) -> Matrix { ReLU()(x) }
/// `tanh` applied to every element, as a new matrix.
public func tanh(_ x: Matrix) -> Matrix { Tanh()(x) }

/// The activations known by name (command line, checkpoints).
public enum ActivationKind: String, CaseIterable, Sendable {
    case sigmoid, relu, tanh

    /// A new layer of this kind.
    public func makeLayer() -> any Activation {
        switch self {
        case .sigmoid: Sigmoid()
        case .relu: ReLU()
        case .tanh: Tanh()
        }
    }
}
