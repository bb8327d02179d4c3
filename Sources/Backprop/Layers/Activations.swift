/// The logistic sigmoid, `y = σ(z) = 1 / (1 + e⁻ᶻ)`; backward `dZ = dY ∘ y(1 − y)`.
public struct Sigmoid: Activation {
    public static let name = "sigmoid"
    public init() {}
    public func forward(output: Matrix, input: Matrix) { sigmoidForward(output: output, input: input) }
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix) {
        if let dInput { sigmoidBackward(dInput: dInput, dOutput: dOutput, output: output) }
    }
}

/// The rectified linear unit, `y = max(0, z)`; backward `dZ = dY ∘ [z > 0]`.
public struct ReLU: Activation {
    public static let name = "relu"
    public init() {}
    public func forward(output: Matrix, input: Matrix) { reluForward(output: output, input: input) }
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix) {
        if let dInput { reluBackward(dInput: dInput, dOutput: dOutput, output: output) }
    }
}

/// The hyperbolic tangent, `y = tanh(z)`; backward `dZ = dY ∘ (1 − y²)`.
public struct Tanh: Activation {
    public static let name = "tanh"
    public init() {}
    public func forward(output: Matrix, input: Matrix) { tanhForward(output: output, input: input) }
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix) {
        if let dInput { tanhBackward(dInput: dInput, dOutput: dOutput, output: output) }
    }
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
