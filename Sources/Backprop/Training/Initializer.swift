import CBLAS

/// How a layer's weights (and biases) are drawn.
///
/// `fanIn` and `fanOut` are a dense layer's input and output sizes. Biases start at zero, except with
/// ``pytorchDefault`` and ``scikitLearn``. Each case names the PyTorch function it matches in distribution (`torch.nn.init`); the
/// draws themselves come from ``SeededGenerator``, so they are reproducible but not PyTorch's numbers.
public enum Initializer: Sendable, Equatable {
    /// `W ~ N(0, σ²)`; the original text's program uses `σ = 0.01` (``normal001``). `nn.init.normal_`.
    case normal(standardDeviation: Float)
    /// Xavier/Glorot uniform: `W ~ U(−a, a)`, `a = √(6 / (fanIn + fanOut))` (Glorot & Bengio, 2010).
    /// `nn.init.xavier_uniform_`.
    case xavierUniform
    /// Xavier/Glorot normal: `W ~ N(0, 2 / (fanIn + fanOut))`. `nn.init.xavier_normal_`.
    case xavierNormal
    /// He/Kaiming normal: `W ~ N(0, 2 / fanIn)` (He et al., 2015), for ReLU networks.
    /// `nn.init.kaiming_normal_(nonlinearity='relu')`.
    case heNormal
    /// He/Kaiming uniform: `W ~ U(−a, a)`, `a = √(6 / fanIn)`. `nn.init.kaiming_uniform_(nonlinearity='relu')`.
    case heUniform
    /// PyTorch's default for `nn.Linear`: `W ~ U(−a, a)` and `b ~ U(−a, a)` with `a = 1/√fanIn`
    /// (`kaiming_uniform_(a=√5)` for the weight).
    case pytorchDefault
    /// A (semi-)orthogonal `W` times `gain` (Saxe et al., 2014): `WᵀW = I` when `fanIn ≥ fanOut`, `WWᵀ = I`
    /// otherwise. Computed as the `Q` of a QR factorisation of a Gaussian matrix (LAPACK `sgeqrf` + `sorgqr`), signs
    /// fixed by `R`'s diagonal, as `nn.init.orthogonal_` does.
    case orthogonal(gain: Float)
    /// All zeros (for tests; a network initialised so cannot break symmetry).
    case zeros
    /// scikit-learn's MLP (`_init_coef`): `W ~ U(−a, a)` and `b ~ U(−a, a)` with `a = √(6 / (fanIn + fanOut))`,
    /// Xavier uniform for the weights and the biases alike. The default of `backprop train` on a table.
    case scikitLearn

    /// The original program's `np.random.randn(...) * 0.01`.
    public static let normal001 = Initializer.normal(standardDeviation: 0.01)

    /// Fills `weight` with draws from `generator`, in row-major order; `fanIn` and `fanOut` set the scale (for a
    /// dense layer its sizes; for a convolution, channels times kernel area). Orthogonal uses `weight`'s own shape.
    public func fill(_ weight: Matrix, fanIn: Int, fanOut: Int, using generator: inout SeededGenerator) {
        precondition(fanIn > 0 && fanOut > 0, "Initializer.fill: fan-in and fan-out must be positive, got \(fanIn), \(fanOut)")
        func uniform(_ a: Double) {
            weight.withUnsafeMutableBufferPointer { w in
                for i in w.indices { w[i] = Float((2 * generator.nextUniform() - 1) * a) }
            }
        }
        func normal(_ standardDeviation: Double) {
            weight.withUnsafeMutableBufferPointer { w in
                for i in w.indices { w[i] = Float(generator.nextGaussian() * standardDeviation) }
            }
        }
        switch self {
        case .normal(let standardDeviation):
            // Float(draw) · σ in Float, as the original program's draws scaled (Scripts/seed_trajectory.py relies on it).
            weight.withUnsafeMutableBufferPointer { w in
                for i in w.indices { w[i] = Float(generator.nextGaussian()) * standardDeviation }
            }
        case .xavierUniform, .scikitLearn: uniform((6.0 / Double(fanIn + fanOut)).squareRoot())
        case .xavierNormal: normal((2.0 / Double(fanIn + fanOut)).squareRoot())
        case .heNormal: normal((2.0 / Double(fanIn)).squareRoot())
        case .heUniform: uniform((6.0 / Double(fanIn)).squareRoot())
        case .pytorchDefault: uniform(1 / Double(fanIn).squareRoot())
        case .orthogonal(let gain): fillOrthogonal(weight, gain: gain, using: &generator)
        case .zeros: weight.fill(0)
        }
    }

    /// Fills `bias` (`1 × fanOut`): zeros, or `U(−1/√fanIn, 1/√fanIn)` for ``pytorchDefault``, or
    /// `U(−a, a)` with `a = √(6 / (fanIn + fanOut))` for ``scikitLearn``.
    public func fillBias(_ bias: Matrix, fanIn: Int, using generator: inout SeededGenerator) {
        guard self == .pytorchDefault || self == .scikitLearn else { bias.fill(0); return }
        let a = self == .scikitLearn ? (6.0 / Double(fanIn + bias.count)).squareRoot() : 1 / Double(fanIn).squareRoot()
        bias.withUnsafeMutableBufferPointer { b in
            for i in b.indices { b[i] = Float((2 * generator.nextUniform() - 1) * a) }
        }
    }
}

/// `W` (`rows × columns`) = `gain · Q`, `Q` with orthonormal columns (tall or square) or rows (wide).
private func fillOrthogonal(_ weight: Matrix, gain: Float, using generator: inout SeededGenerator) {
    let tall = weight.rows >= weight.columns
    let m = max(weight.rows, weight.columns), n = min(weight.rows, weight.columns)
    // A Gaussian m × n matrix, row-major; its QR gives m × n Q with orthonormal columns.
    var a = (0..<(m * n)).map { _ in Float(generator.nextGaussian()) }
    var tau = [Float](repeating: 0, count: n)
    var info = LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, Int32(m), Int32(n), &a, Int32(n), &tau)
    precondition(info == 0, "orthogonal initializer: LAPACKE_sgeqrf failed with info \(info) for \(m)×\(n)")
    let signs = (0..<n).map { a[$0 * n + $0] < 0 ? Float(-1) : 1 }  // sign(R[j, j])
    info = LAPACKE_sorgqr(LAPACK_ROW_MAJOR, Int32(m), Int32(n), Int32(n), &a, Int32(n), &tau)
    precondition(info == 0, "orthogonal initializer: LAPACKE_sorgqr failed with info \(info) for \(m)×\(n)")
    for i in 0..<m {
        for j in 0..<n {
            let value = gain * signs[j] * a[i * n + j]  // Q[i, j]
            if tall { weight[i, j] = value } else { weight[j, i] = value }
        }
    }
}

extension Initializer {
    /// The names used on the command line.
    public static let names = ["normal001", "xavier", "xavier-normal", "he", "he-uniform", "pytorch", "orthogonal", "zeros", "sklearn"]

    /// The initializer named `name` (one of ``names``).
    public init?(name: String) {
        switch name {
        case "normal001": self = .normal001
        case "xavier": self = .xavierUniform
        case "xavier-normal": self = .xavierNormal
        case "he": self = .heNormal
        case "he-uniform": self = .heUniform
        case "pytorch": self = .pytorchDefault
        case "orthogonal": self = .orthogonal(gain: 1)
        case "zeros": self = .zeros
        case "sklearn": self = .scikitLearn
        default: return nil
        }
    }

    /// The command-line name, or a description for settings no name stands for.
    public var name: String {
        switch self {
        case .normal(let s): s == 0.01 ? "normal001" : "normal(\(s))"
        case .xavierUniform: "xavier"
        case .xavierNormal: "xavier-normal"
        case .heNormal: "he"
        case .heUniform: "he-uniform"
        case .pytorchDefault: "pytorch"
        case .orthogonal(let gain): gain == 1 ? "orthogonal" : "orthogonal(\(gain))"
        case .zeros: "zeros"
        case .scikitLearn: "sklearn"
        }
    }
}
