/// How a layer's weights are drawn. Biases start at zero.
///
/// `fanIn` and `fanOut` are a dense layer's input and output sizes.
public enum Initializer: Sendable, Equatable {
    /// `W ~ N(0, σ²)`; the original text's program uses `σ = 0.01` (``normal001``).
    case normal(standardDeviation: Float)
    /// Xavier/Glorot uniform: `W ~ U(−a, a)` with `a = √(6 / (fanIn + fanOut))` (Glorot & Bengio, 2010).
    case xavierUniform
    /// He/Kaiming normal: `W ~ N(0, 2 / fanIn)` (He et al., 2015), for ReLU networks.
    case heNormal
    /// All zeros (for tests; a network initialised so cannot break symmetry).
    case zeros

    /// The original program's `np.random.randn(...) * 0.01`.
    public static let normal001 = Initializer.normal(standardDeviation: 0.01)

    /// Fills `weight` with draws from `generator`, in row-major order.
    public func fill(_ weight: Matrix, fanIn: Int, fanOut: Int, using generator: inout SeededGenerator) {
        weight.withUnsafeMutableBufferPointer { w in
            switch self {
            case .normal(let standardDeviation):
                for i in w.indices { w[i] = Float(generator.nextGaussian()) * standardDeviation }
            case .xavierUniform:
                let a = (6.0 / Double(fanIn + fanOut)).squareRoot()
                for i in w.indices { w[i] = Float((2 * generator.nextUniform() - 1) * a) }
            case .heNormal:
                let standardDeviation = (2.0 / Double(fanIn)).squareRoot()
                for i in w.indices { w[i] = Float(generator.nextGaussian() * standardDeviation) }
            case .zeros:
                w.update(repeating: 0)
            }
        }
    }
}

extension Initializer {
    /// The names used on the command line: `normal001`, `xavier`, `he`, `zeros`.
    public init?(name: String) {
        switch name {
        case "normal001": self = .normal001
        case "xavier": self = .xavierUniform
        case "he": self = .heNormal
        case "zeros": self = .zeros
        default: return nil
        }
    }

    /// The command-line name, or `normal(σ)` for other standard deviations.
    public var name: String {
        switch self {
        case .normal(let s): s == 0.01 ? "normal001" : "normal(\(s))"
        case .xavierUniform: "xavier"
        case .heNormal: "he"
        case .zeros: "zeros"
        }
    }
}
