#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSIMD

/// The logistic sigmoid, `y = σ(z) = 1 / (1 + e⁻ᶻ)`; `f′(z) = y(1 − y)`. PyTorch: `nn.Sigmoid`.
public struct Sigmoid: Activation {
    public init() {}
    @inlinable public func value(_ z: Float) -> Float { sigmoid(z) }
    @inlinable public func derivative(input z: Float, output y: Float) -> Float { y * (1 - y) }

    /// `Y = σ(Z) = 1 / (1 + e^(−Z))`, with `e^x` computed as the library's vectorised exponential (Cody–Waite reduction and a Cephes polynomial, about 2 ulp), in the CPU's widest vectors
    /// (`bp_sigmoid`), split between the threads for large batches.
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(sameShape: output, input, "Sigmoid.forward")
        forEachElementChunk({ y, z, _, _, n, _ in bp_sigmoid(y, z, n) }, output: output, input)
    }

    /// `dZ = dY ∘ Y(1 − Y)` (`bp_sigmoid_backward`), split between the threads for large batches.
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        guard let dInput else { return }
        precondition(sameShape: dInput, dOutput, "Sigmoid.backward")
        precondition(sameShape: dInput, output, "Sigmoid.backward")
        forEachElementChunk({ dz, dy, y, _, n, _ in bp_sigmoid_backward(dz, dy, y, n) }, output: dInput, dOutput, output)
    }
}

/// The rectified linear unit, `y = max(0, z)`; `f′(z) = [z > 0]` (0 at the kink, as in PyTorch). PyTorch: `nn.ReLU`.
public struct ReLU: Activation {
    public init() {}
    @inlinable public func value(_ z: Float) -> Float { max(0, z) }
    @inlinable public func derivative(input z: Float, output y: Float) -> Float { z > 0 ? 1 : 0 }

    /// `Y = max(0, Z)` (`bp_relu`), split between the threads for large batches.
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(sameShape: output, input, "ReLU.forward")
        forEachElementChunk({ y, z, _, _, n, _ in bp_relu(y, z, n) }, output: output, input)
    }

    /// `dZ = dY ∘ [Z > 0]` (`bp_relu_backward`), split between the threads for large batches.
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        guard let dInput else { return }
        precondition(sameShape: dInput, dOutput, "ReLU.backward")
        precondition(sameShape: dInput, input, "ReLU.backward")
        forEachElementChunk({ dz, dy, z, _, n, _ in bp_relu_backward(dz, dy, z, n) }, output: dInput, dOutput, input)
    }
}

/// The hyperbolic tangent, `y = tanh(z)`; `f′(z) = 1 − y²`. PyTorch: `nn.Tanh`.
public struct Tanh: Activation {
    public init() {}
    @inlinable public func value(_ z: Float) -> Float { tanhf(z) }
    @inlinable public func derivative(input z: Float, output y: Float) -> Float { 1 - y * y }

    /// `Y = tanh(Z)` (`bp_tanh_forward`: Cephes' polynomial below |z| = 0.625, `1 − 2/(e^{2|z|} + 1)` above; within
    /// 5·10⁻⁷ relative), split between the threads for large batches.
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(sameShape: output, input, "Tanh.forward")
        forEachElementChunk({ y, z, _, _, n, _ in bp_tanh_forward(y, z, n) }, output: output, input)
    }

    /// `dZ = dY ∘ (1 − Y²)` (`bp_tanh_backward`).
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        guard let dInput else { return }
        precondition(sameShape: dInput, dOutput, "Tanh.backward")
        precondition(sameShape: dInput, output, "Tanh.backward")
        forEachElementChunk({ dz, dy, y, _, n, _ in bp_tanh_backward(dz, dy, y, n) }, output: dInput, dOutput, output)
    }
}

/// The leaky ReLU, `y = z` for `z > 0`, else `a·z`; `f′(z) = 1` or `a` (`a` at the kink, as in PyTorch).
/// PyTorch: `nn.LeakyReLU(negative_slope=0.01)`.
public struct LeakyReLU: Activation {
    /// `a`, the slope for negative inputs.
    public var negativeSlope: Float
    public init(negativeSlope: Float = 0.01) { self.negativeSlope = negativeSlope }
    @inlinable public func value(_ z: Float) -> Float { z > 0 ? z : negativeSlope * z }
    @inlinable public func derivative(input z: Float, output y: Float) -> Float { z > 0 ? 1 : negativeSlope }

    /// `Y = Z > 0 ? Z : a·Z` (`bp_leaky_relu`), split between the threads for large batches.
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(sameShape: output, input, "LeakyReLU.forward")
        forEachElementChunk({ y, z, _, _, n, a in bp_leaky_relu(y, z, n, a) }, output: output, input, setting: negativeSlope)
    }

    /// `dZ = dY ∘ (Z > 0 ? 1 : a)` (`bp_leaky_relu_backward`).
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        guard let dInput else { return }
        precondition(sameShape: dInput, dOutput, "LeakyReLU.backward")
        precondition(sameShape: dInput, input, "LeakyReLU.backward")
        forEachElementChunk({ dz, dy, z, _, n, a in bp_leaky_relu_backward(dz, dy, z, n, a) }, output: dInput, dOutput, input,
                            setting: negativeSlope)
    }
}

/// The exponential linear unit (Clevert et al., 2016), `y = z` for `z > 0`, else `α(eᶻ − 1)`;
/// `f′(z) = 1` or `y + α`. PyTorch: `nn.ELU(alpha=1.0)`.
public struct ELU: Activation {
    /// `α`, the value approached as `z → −∞` is `−α`.
    public var alpha: Float
    public init(alpha: Float = 1) { self.alpha = alpha }
    @inlinable public func value(_ z: Float) -> Float { z > 0 ? z : alpha * expm1f(z) }
    @inlinable public func derivative(input z: Float, output y: Float) -> Float { z > 0 ? 1 : y + alpha }

    /// `Y = Z > 0 ? Z : α(e^Z − 1)` (`bp_elu`: `e^z − 1` by its Taylor series below |z| = 0.25, else by the library's
    /// exponential; within 3·10⁻⁷ relative of `expm1`), split between the threads for large batches.
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(sameShape: output, input, "ELU.forward")
        forEachElementChunk({ y, z, _, _, n, alpha in bp_elu(y, z, n, alpha) }, output: output, input, setting: alpha)
    }

    /// `dZ = dY ∘ (Z > 0 ? 1 : Y + α)` (`bp_elu_backward`).
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        guard let dInput else { return }
        precondition(sameShape: dInput, dOutput, "ELU.backward")
        precondition(sameShape: dInput, input, "ELU.backward")
        precondition(sameShape: dInput, output, "ELU.backward")
        forEachElementChunk({ dz, dy, z, y, n, alpha in bp_elu_backward(dz, dy, z, y, n, alpha) }, output: dInput, dOutput, input,
                            output, setting: alpha)
    }
}

/// The Gaussian error linear unit (Hendrycks & Gimpel, 2016). PyTorch: `nn.GELU(approximate='none' | 'tanh')`.
///
/// - Exact: `y = z·Φ(z)` with `Φ(z) = (1 + erf(z/√2))/2`; `f′(z) = Φ(z) + z·φ(z)`, `φ(z) = e^(−z²/2)/√(2π)`.
/// - Tanh approximation: `y = z(1 + tanh u)/2` with `u = √(2/π)(z + 0.044715z³)`;
///   `f′(z) = (1 + tanh u)/2 + z(1 − tanh²u)·√(2/π)(1 + 3·0.044715z²)/2`.
public struct GELU: Activation {
    /// How `Φ` is computed.
    public enum Approximation: String, Sendable, Codable { case none, tanh }
    /// Exact (`erf`) or the tanh approximation.
    public var approximation: Approximation
    public init(approximation: Approximation = .none) { self.approximation = approximation }

    @usableFromInline static let sqrt2OverPi: Float = (2 / Float.pi).squareRoot()
    @usableFromInline static let inverseSqrt2: Float = 1 / Float(2).squareRoot()
    @usableFromInline static let inverseSqrt2Pi: Float = 1 / (2 * Float.pi).squareRoot()

    @inlinable public func value(_ z: Float) -> Float {
        switch approximation {
        case .none: return z * 0.5 * (1 + erff(z * Self.inverseSqrt2))
        case .tanh: return 0.5 * z * (1 + tanhf(Self.sqrt2OverPi * (z + 0.044715 * z * z * z)))
        }
    }

    @inlinable public func derivative(input z: Float, output y: Float) -> Float {
        switch approximation {
        case .none:
            return 0.5 * (1 + erff(z * Self.inverseSqrt2)) + z * Self.inverseSqrt2Pi * expf(-0.5 * z * z)
        case .tanh:
            let t = tanhf(Self.sqrt2OverPi * (z + 0.044715 * z * z * z))
            return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * Self.sqrt2OverPi * (1 + 3 * 0.044715 * z * z)
        }
    }

    /// `Y = Z·Φ(Z)` (`bp_gelu`: `Φ` through Abramowitz and Stegun's `erfc` 7.1.26, absolute error below 1.5·10⁻⁷, and
    /// the library's exponential, whose `e^(−z²/2)` the backward pass's `φ` shares; within 3·10⁻⁷·max(1, |z|) of
    /// `z·(1 + erf(z/√2))/2`), or the tanh approximation with
    /// the library's tanh; split between the threads for large batches.
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(sameShape: output, input, "GELU.forward")
        forEachElementChunk({ y, z, _, _, n, tanh in bp_gelu(y, z, n, tanh != 0 ? 1 : 0) }, output: output, input,
                            setting: approximation == .tanh ? 1 : 0)
    }

    /// `dZ = dY ∘ f′(Z)` (`bp_gelu_backward`).
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        guard let dInput else { return }
        precondition(sameShape: dInput, dOutput, "GELU.backward")
        precondition(sameShape: dInput, input, "GELU.backward")
        forEachElementChunk({ dz, dy, z, _, n, tanh in bp_gelu_backward(dz, dy, z, n, tanh != 0 ? 1 : 0) }, output: dInput, dOutput,
                            input, setting: approximation == .tanh ? 1 : 0)
    }
}

/// Softmax over each row, `yⱼ = e^(zⱼ − m) / Σₖ e^(zₖ − m)` with `m` the row's maximum (so nothing overflows).
/// Backward: `dzⱼ = yⱼ (dyⱼ − Σₖ dyₖ yₖ)`. PyTorch: `nn.Softmax(dim=1)`.
///
/// As an output layer, prefer leaving the logits to ``CrossEntropy``, which fuses softmax and is exact for
/// extreme logits.
public struct Softmax: Layer {
    public init() {}
    public func outputSize(forInputSize inputSize: Int) -> Int { inputSize }

    /// Row by row (`bp_softmax_rows`, the exponential vectorised), split between the threads by rows.
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(sameShape: output, input, "Softmax.forward")
        forEachRowChunk({ y, z, _, rows, columns in bp_softmax_rows(y, z, rows, columns, 0) }, output: output, input)
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        guard let dInput else { return }
        precondition(sameShape: dInput, dOutput, "Softmax.backward")
        precondition(sameShape: dInput, output, "Softmax.backward")
        forEachRowChunk({ dz, dy, y, rows, columns in bp_softmax_rows_backward(dz, dy, y, rows, columns, 0) }, output: dInput,
                        dOutput, output)
    }
}

/// Log-softmax over each row, `yⱼ = zⱼ − lse(z) = (zⱼ − m) − log Σₖ e^(zₖ − m)`, `m` the row's maximum.
/// Backward: `dzⱼ = dyⱼ − e^(yⱼ) Σₖ dyₖ`. PyTorch: `nn.LogSoftmax(dim=1)`.
public struct LogSoftmax: Layer {
    public init() {}
    public func outputSize(forInputSize inputSize: Int) -> Int { inputSize }

    /// Row by row (`bp_softmax_rows`, the exponential vectorised), split between the threads by rows.
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(sameShape: output, input, "LogSoftmax.forward")
        forEachRowChunk({ y, z, _, rows, columns in bp_softmax_rows(y, z, rows, columns, 1) }, output: output, input)
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        guard let dInput else { return }
        precondition(sameShape: dInput, dOutput, "LogSoftmax.backward")
        precondition(sameShape: dInput, output, "LogSoftmax.backward")
        forEachRowChunk({ dz, dy, y, rows, columns in bp_softmax_rows_backward(dz, dy, y, rows, columns, 1) }, output: dInput,
                        dOutput, output)
    }
}

/// `σ` applied to every element, as a new matrix.
public func sigmoid(_ x: Matrix) -> Matrix { Sigmoid()(x) }
/// `max(0, x)` applied to every element, as a new matrix.
public func relu(_ x: Matrix) -> Matrix { ReLU()(x) }
/// `tanh` applied to every element, as a new matrix.
public func tanh(_ x: Matrix) -> Matrix { Tanh()(x) }
/// The leaky ReLU of every element, as a new matrix.
public func leakyRelu(_ x: Matrix, negativeSlope: Float = 0.01) -> Matrix { LeakyReLU(negativeSlope: negativeSlope)(x) }
/// The ELU of every element, as a new matrix.
public func elu(_ x: Matrix, alpha: Float = 1) -> Matrix { ELU(alpha: alpha)(x) }
/// The GELU of every element, as a new matrix.
public func gelu(_ x: Matrix, approximation: GELU.Approximation = .none) -> Matrix { GELU(approximation: approximation)(x) }
/// The row-wise softmax, as a new matrix.
public func softmax(_ x: Matrix) -> Matrix { Softmax()(x) }
/// The row-wise log-softmax, as a new matrix.
public func logSoftmax(_ x: Matrix) -> Matrix { LogSoftmax()(x) }

/// The activations known by name (command line, checkpoints), with their default settings.
public enum ActivationKind: String, CaseIterable, Sendable {
    case sigmoid, relu, tanh
    case leakyRelu = "leaky-relu"
    case elu, gelu
    case geluTanh = "gelu-tanh"
    case softmax
    case logSoftmax = "log-softmax"

    /// A new layer of this kind.
    public func makeLayer() -> any Layer {
        switch self {
        case .sigmoid: Sigmoid()
        case .relu: ReLU()
        case .tanh: Tanh()
        case .leakyRelu: LeakyReLU()
        case .elu: ELU()
        case .gelu: GELU()
        case .geluTanh: GELU(approximation: .tanh)
        case .softmax: Softmax()
        case .logSoftmax: LogSoftmax()
        }
    }
}
