#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Batch normalization over features (Ioffe & Szegedy, 2015). PyTorch: `nn.BatchNorm1d(features, eps=1e-5,
/// momentum=0.1)`.
///
/// Shapes: `X` and `Y` are `N × F`; the scale `γ` and shift `β` are `1 × F` (parameters, initialised to 1 and 0).
///
/// - Training: per feature `μ = (1/N) Σₙ xₙ`, `σ² = (1/N) Σₙ (xₙ − μ)²`, `x̂ = (x − μ)/√(σ² + ε)`, `y = γx̂ + β`;
///   the running statistics move by `r ← (1 − m)·r + m·s` with the batch mean and the *unbiased* variance
///   `σ²·N/(N − 1)`, as PyTorch does.
/// - Evaluation: `x̂ = (x − running mean)/√(running variance + ε)`.
///
/// Backward (training), with `g = ∂L/∂Y`: `∂L/∂γ += Σₙ g·x̂`, `∂L/∂β += Σₙ g`,
/// `∂L/∂x = (γ/(N·√(σ² + ε)))·(N·g − Σₙ g − x̂·Σₙ g·x̂)`; in evaluation mode `∂L/∂x = g·γ/√(running var + ε)`.
/// The forward pass keeps `μ` and `1/√(σ² + ε)` in its scratch space (`2F` floats) for the backward pass.
public struct BatchNorm: Layer {
    /// `F`, the number of features.
    public let featureCount: Int
    /// `ε`, added to the variance.
    public let epsilon: Float
    /// `m`, the weight of each batch in the running statistics.
    public let momentum: Float
    /// `γ`, `1 × F`.
    public private(set) var scale: Matrix
    /// `β`, `1 × F`.
    public private(set) var shift: Matrix
    public private(set) var scaleGradient: Matrix
    public private(set) var shiftGradient: Matrix
    /// The running mean and variance (`1 × F` each) and the number of batches seen (`1 × 1`), in one storage
    /// shared by copies of this layer.
    public let runningMean: Matrix
    public let runningVariance: Matrix
    public let batchesTracked: Matrix
    private let mode = TrainingMode()

    public init(featureCount: Int, epsilon: Float = 1e-5, momentum: Float = 0.1) {
        precondition(featureCount > 0, "BatchNorm: the feature count must be positive, got \(featureCount)")
        precondition(epsilon > 0 && momentum >= 0 && momentum <= 1,
                     "BatchNorm: need ε > 0 and momentum in [0, 1], got ε \(epsilon), momentum \(momentum)")
        self.featureCount = featureCount
        self.epsilon = epsilon
        self.momentum = momentum
        let values = MatrixStorage(count: 2 * featureCount), gradients = MatrixStorage(count: 2 * featureCount)
        scale = Matrix(rows: 1, columns: featureCount, storage: values, offset: 0)
        shift = Matrix(rows: 1, columns: featureCount, storage: values, offset: featureCount)
        scaleGradient = Matrix(rows: 1, columns: featureCount, storage: gradients, offset: 0)
        shiftGradient = Matrix(rows: 1, columns: featureCount, storage: gradients, offset: featureCount)
        scale.fill(1)
        let statistics = MatrixStorage(count: 2 * featureCount + 1)
        runningMean = Matrix(rows: 1, columns: featureCount, storage: statistics, offset: 0)
        runningVariance = Matrix(rows: 1, columns: featureCount, storage: statistics, offset: featureCount)
        batchesTracked = Matrix(rows: 1, columns: 1, storage: statistics, offset: 2 * featureCount)
        runningVariance.fill(1)
    }

    /// Whether batch statistics are used (and the running ones updated) or the running ones.
    public var isTraining: Bool { mode.isTraining }
    public func setTraining(_ training: Bool) { mode.isTraining = training }

    public func outputSize(forInputSize inputSize: Int) -> Int {
        precondition(inputSize == featureCount, "BatchNorm: this layer normalises \(featureCount) features, was given \(inputSize)")
        return inputSize
    }

    public var parameters: [Matrix] { [scale, shift] }
    public var parameterGradients: [Matrix] { [scaleGradient, shiftGradient] }
    public var stateTensors: [(name: String, tensor: Matrix)] {
        [("running_mean", runningMean), ("running_var", runningVariance), ("num_batches_tracked", batchesTracked)]
    }
    public var specification: LayerSpecification? { .batchNorm(featureCount: featureCount, epsilon: epsilon, momentum: momentum) }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        precondition(parameters.count == 2 && gradients.count == 2 && parameters.allSatisfy { $0.count == featureCount },
                     "BatchNorm.bind: needs [scale, shift] of \(featureCount) features twice")
        parameters[0].assign(scale)
        parameters[1].assign(shift)
        (scale, shift, scaleGradient, shiftGradient) = (parameters[0], parameters[1], gradients[0], gradients[1])
    }

    /// Sets `γ = 1`, `β = 0` (as PyTorch), whatever the initializer.
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        scale.fill(1)
        shift.fill(0)
    }

    public func scratchCount(rows: Int, inputSize: Int) -> Int { 2 * featureCount }

    public func forward(output: Matrix, input: Matrix) {
        forward(output: output, input: input, scratch: Matrix(rows: 1, columns: 2 * featureCount))
    }

    public func forward(output: Matrix, input: Matrix, scratch: Matrix) {
        precondition(sameShape: output, input, "BatchNorm.forward")
        precondition(input.columns == featureCount && scratch.count >= 2 * featureCount,
                     "BatchNorm.forward: input \(input.shapeDescription) does not have \(featureCount) features")
        let n = input.rows, f = featureCount, x = input.pointer, y = output.pointer
        let mean = scratch.pointer, inverseDeviation = scratch.pointer + f
        if isTraining {
            precondition(n > 1, "BatchNorm.forward: training needs a batch of at least 2 rows, got \(input.shapeDescription)")
            for j in 0..<f { mean[j] = 0; inverseDeviation[j] = 0 }
            for i in 0..<n { for j in 0..<f { mean[j] += x[i * f + j] } }
            for j in 0..<f { mean[j] /= Float(n) }
            for i in 0..<n { for j in 0..<f { let d = x[i * f + j] - mean[j]; inverseDeviation[j] += d * d } }
            let m = momentum, rm = runningMean.pointer, rv = runningVariance.pointer
            for j in 0..<f {
                let variance = inverseDeviation[j] / Float(n)
                rm[j] = (1 - m) * rm[j] + m * mean[j]
                rv[j] = (1 - m) * rv[j] + m * variance * Float(n) / Float(n - 1)
                inverseDeviation[j] = 1 / (variance + epsilon).squareRoot()
            }
            batchesTracked.pointer[0] += 1
        } else {
            for j in 0..<f {
                mean[j] = runningMean.pointer[j]
                inverseDeviation[j] = 1 / (runningVariance.pointer[j] + epsilon).squareRoot()
            }
        }
        let gamma = scale.pointer, beta = shift.pointer
        for i in 0..<n {
            for j in 0..<f { y[i * f + j] = gamma[j] * (x[i * f + j] - mean[j]) * inverseDeviation[j] + beta[j] }
        }
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix) {
        preconditionFailure("BatchNorm.backward needs the scratch space its forward pass filled: run it in a Network, or call backward(…, scratch:)")
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, scratch: Matrix) {
        precondition(sameShape: dOutput, input, "BatchNorm.backward")
        let n = input.rows, f = featureCount, x = input.pointer, g = dOutput.pointer
        let mean = scratch.pointer, inverseDeviation = scratch.pointer + f
        let dGamma = scaleGradient.pointer, dBeta = shiftGradient.pointer, gamma = scale.pointer
        // Per feature: Σₙ g and Σₙ g·x̂ go into the parameter gradients and into dx.
        for j in 0..<f {
            var gSum: Float = 0, gxSum: Float = 0
            for i in 0..<n {
                let xHat = (x[i * f + j] - mean[j]) * inverseDeviation[j]
                gSum += g[i * f + j]
                gxSum += g[i * f + j] * xHat
            }
            dBeta[j] += gSum
            dGamma[j] += gxSum
            guard let dInput else { continue }
            precondition(sameShape: dInput, input, "BatchNorm.backward")
            let dx = dInput.pointer
            if isTraining {
                let k = gamma[j] * inverseDeviation[j] / Float(n)
                for i in 0..<n {
                    let xHat = (x[i * f + j] - mean[j]) * inverseDeviation[j]
                    dx[i * f + j] = k * (Float(n) * g[i * f + j] - gSum - xHat * gxSum)
                }
            } else {
                for i in 0..<n { dx[i * f + j] = g[i * f + j] * gamma[j] * inverseDeviation[j] }
            }
        }
    }
}

import Synchronization

/// A train/evaluation flag shared by the copies of a layer (layers are values; the mode is state).
final class TrainingMode: Sendable {
    private let flag = Mutex(true)
    var isTraining: Bool {
        get { flag.withLock { $0 } }
        set { flag.withLock { $0 = newValue } }
    }
}
