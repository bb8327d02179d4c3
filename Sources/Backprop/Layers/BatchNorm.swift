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
///   `σ²·N/(N − 1)`, as PyTorch does. `N` is the whole step's rows: when a ``Trainer`` splits a step into
///   micro-batches it first collects the statistics of all of them (see ``Trainer``), so the result is that of one
///   batch, and the running statistics move once per step. A batch of one row has no variance: training on it is
///   an error (``TrainingError/batchTooSmall(rows:reason:)``).
/// - Evaluation: `x̂ = (x − running mean)/√(running variance + ε)`; nothing changes.
///
/// Backward (training), with `g = ∂L/∂Y`: `∂L/∂γ += Σₙ g·x̂`, `∂L/∂β += Σₙ g`,
/// `∂L/∂x = (γ/(N·√(σ² + ε)))·(N·g − Σₙ g − x̂·Σₙ g·x̂)`; in evaluation mode `∂L/∂x = g·γ/√(running var + ε)`.
/// Sums over rows are taken in `Double`. The forward pass keeps `μ` and `1/√(σ² + ε)` in its scratch space for the
/// backward pass, beside the step's sums when a step is split.
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
    /// shared by copies of this layer. Only training passes change them.
    public let runningMean: Matrix
    public let runningVariance: Matrix
    public let batchesTracked: Matrix

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

    public func outputSize(forInputSize inputSize: Int) -> Int {
        precondition(inputSize == featureCount, "BatchNorm: this layer normalises \(featureCount) features, was given \(inputSize)")
        return inputSize
    }

    public var parameters: [Matrix] { [scale, shift] }
    public var parameterGradients: [Matrix] { [scaleGradient, shiftGradient] }
    public var parameterNames: [TensorName] {  // γ and β, as nn.BatchNorm1d names them
        [TensorName("weight", shape: [featureCount]), TensorName("bias", shape: [featureCount])]
    }
    public var stateTensors: [(name: String, tensor: Matrix)] {
        [("running_mean", runningMean), ("running_var", runningVariance), ("num_batches_tracked", batchesTracked)]
    }

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

    /// `μ` and `1/√(σ² + ε)` (`2F`), this layer's number in a split step, and room for a batch's sums in `Double`
    /// (`3F` doubles, aligned). (A split step's sums live in the trainer's batch-statistics pass: the scratch space
    /// is laid out anew for each micro-batch's row count.)
    public func scratchCount(rows: Int, inputSize: Int, backward: Bool) -> Int { 8 * featureCount + 3 }

    /// The scratch space's parts, and the step's sums when a step is split.
    private struct Scratch {
        let mean: UnsafeMutablePointer<Float>, inverseDeviation: UnsafeMutablePointer<Float>
        let index: UnsafeMutablePointer<Float>
        /// Per feature: a shift `c`, `Σ(x − c)`, `Σ(x − c)²`, `Σg`, `Σg·x̂` (`5F`), or `nil`.
        var sums: UnsafeMutablePointer<Double>?
        let f: Int
        init(_ scratch: Matrix, features f: Int) {
            precondition(scratch.count >= 8 * f + 3, "BatchNorm: needs \(8 * f + 3) floats of scratch, was given \(scratch.count)")
            let p = scratch.pointer
            (mean, inverseDeviation, index, self.f) = (p, p + f, p + 2 * f, f)
        }
        func center(_ j: Int) -> Double { sums![j] }
        func sum(_ which: Int, _ j: Int) -> Double { sums![(which + 1) * f + j] }
        func setSum(_ which: Int, _ j: Int, _ value: Double) { sums![(which + 1) * f + j] = value }
        func zeroSums(_ which: Int) { for j in 0..<f { setSum(which, j, 0) } }
    }

    /// `μ` and `1/√(σ² + ε)` in the scratch space from the running statistics.
    private func useRunningStatistics(_ s: Scratch) {
        for j in 0..<featureCount {
            s.mean[j] = runningMean.pointer[j]
            s.inverseDeviation[j] = 1 / (runningVariance.pointer[j] + epsilon).squareRoot()
        }
    }

    /// `μ`, `1/√(σ² + ε)` from the sums `Σ(x − c)`, `Σ(x − c)²` over `n` rows; updates the running statistics if asked.
    private func useBatchStatistics(_ s: Scratch, rows n: Int, updatingRunningStatistics update: Bool) {
        let m = momentum, rm = runningMean.pointer, rv = runningVariance.pointer
        for j in 0..<featureCount {
            let shiftedMean = s.sum(0, j) / Double(n)
            let mean = s.center(j) + shiftedMean
            let variance = max(0, s.sum(1, j) / Double(n) - shiftedMean * shiftedMean)
            s.mean[j] = Float(mean)
            s.inverseDeviation[j] = Float(1 / (variance + Double(epsilon)).squareRoot())
            if update {
                rm[j] = (1 - m) * rm[j] + m * Float(mean)
                rv[j] = (1 - m) * rv[j] + m * Float(variance * Double(n) / Double(n - 1))
            }
        }
        if update { batchesTracked.pointer[0] += 1 }
    }

    /// Adds `Σ(x − c)` and `Σ(x − c)²` of `input`'s rows to the sums, `c` being the first row of the step.
    private func accumulateInputSums(_ s: Scratch, _ input: Matrix, first: Bool) {
        let n = input.rows, f = featureCount, x = input.pointer
        if first {
            for j in 0..<f { s.sums![j] = Double(x[j]) }
            s.zeroSums(0)
            s.zeroSums(1)
        }
        for j in 0..<f {
            var sum = 0.0, squares = 0.0
            let c = s.center(j)
            for i in 0..<n { let d = Double(x[i * f + j]) - c; sum += d; squares += d * d }
            s.setSum(0, j, s.sum(0, j) + sum)
            s.setSum(1, j, s.sum(1, j) + squares)
        }
    }

    /// `y = γ(x − μ)·(1/√(σ² + ε)) + β` with the `μ` and `1/√(σ² + ε)` in the scratch space.
    private func normalize(_ s: Scratch, output: Matrix, input: Matrix) {
        let n = input.rows, f = featureCount, x = input.pointer, y = output.pointer
        let gamma = scale.pointer, beta = shift.pointer
        for i in 0..<n {
            for j in 0..<f { y[i * f + j] = gamma[j] * (x[i * f + j] - s.mean[j]) * s.inverseDeviation[j] + beta[j] }
        }
    }

    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(sameShape: output, input, "BatchNorm.forward")
        precondition(input.columns == featureCount, "BatchNorm.forward: input \(input.shapeDescription) does not have \(featureCount) features")
        var s = Scratch(context.scratch, features: featureCount)
        guard context.isTraining, let pass = context.batchStatistics else {
            if context.isTraining {
                precondition(input.rows > 1, "BatchNorm.forward: training needs a batch of at least 2 rows, got \(input.shapeDescription)")
                // The sums in the scratch space after μ, 1/√(σ² + ε) and the index, at the first 8-byte boundary.
                let sums = UnsafeMutableRawPointer(s.index + 1).alignedUp(for: Double.self)
                sums.withMemoryRebound(to: Double.self, capacity: 3 * featureCount) { sums in
                    s.sums = sums
                    accumulateInputSums(s, input, first: true)
                    useBatchStatistics(s, rows: input.rows, updatingRunningStatistics: true)
                }
            } else {
                useRunningStatistics(s)
            }
            normalize(s, output: output, input: input)
            return
        }
        // A step split into micro-batches (see BatchStatisticsPass).
        let index = pass.visit(features: featureCount)
        s.index.pointee = Float(index)
        s.sums = pass.sums(ofLayer: index)
        switch pass.phase {
        case .census:
            output.assign(input)
            return
        case .collectInput(let layer) where index == layer:
            accumulateInputSums(s, input, first: pass.microBatch == 0)
            useRunningStatistics(s)  // the output is not used in this pass
        case .collectInput(let layer) where index > layer:
            useRunningStatistics(s)  // not used either
        default:  // the step's statistics are complete
            useBatchStatistics(s, rows: pass.rows, updatingRunningStatistics: pass.phase == .apply && pass.microBatch == 0)
        }
        normalize(s, output: output, input: input)
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        precondition(sameShape: dOutput, input, "BatchNorm.backward")
        if let dInput { precondition(sameShape: dInput, input, "BatchNorm.backward") }
        var s = Scratch(context.scratch, features: featureCount)
        let n = input.rows, f = featureCount, x = input.pointer, g = dOutput.pointer
        let dGamma = scaleGradient.pointer, dBeta = shiftGradient.pointer, gamma = scale.pointer
        // Where Σg and Σg·x̂ come from: this call's rows, or the whole step's (collected by an earlier pass).
        var stepRows = n, useStepSums = false, collecting = false
        if context.isTraining, let pass = context.batchStatistics {
            let index = Int(s.index.pointee)
            s.sums = pass.sums(ofLayer: index)
            stepRows = pass.rows
            switch pass.phase {
            case .collectGradient(let layer) where index == layer:
                collecting = true
                if pass.microBatch == 0 { s.zeroSums(2); s.zeroSums(3) }
            case .collectGradient(let layer) where index < layer:
                dInput?.fill(0)  // not used in this pass
                return
            default: useStepSums = true
            }
        }
        for j in 0..<f {
            var gSum = 0.0, gxSum = 0.0
            for i in 0..<n {
                let xHat = (x[i * f + j] - s.mean[j]) * s.inverseDeviation[j]
                gSum += Double(g[i * f + j])
                gxSum += Double(g[i * f + j] * xHat)
            }
            dBeta[j] += Float(gSum)
            dGamma[j] += Float(gxSum)
            if collecting {
                s.setSum(2, j, s.sum(2, j) + gSum)
                s.setSum(3, j, s.sum(3, j) + gxSum)
                continue
            }
            guard let dInput else { continue }
            let dx = dInput.pointer
            if context.isTraining {
                if useStepSums { (gSum, gxSum) = (s.sum(2, j), s.sum(3, j)) }
                let k = gamma[j] * s.inverseDeviation[j] / Float(stepRows)
                let (total, correlation) = (Float(gSum), Float(gxSum))
                for i in 0..<n {
                    let xHat = (x[i * f + j] - s.mean[j]) * s.inverseDeviation[j]
                    dx[i * f + j] = k * (Float(stepRows) * g[i * f + j] - total - xHat * correlation)
                }
            } else {
                for i in 0..<n { dx[i * f + j] = g[i * f + j] * gamma[j] * s.inverseDeviation[j] }
            }
        }
        if collecting { dInput?.fill(0) }  // not used in this pass
    }
}

/// How layers with batch statistics (``BatchNorm``) see one training step that a ``Trainer`` splits into several
/// micro-batches, so that the statistics are those of the whole step.
///
/// With `B` such layers, numbered in the order the forward pass meets them, a step runs: for each layer `k`, a
/// forward pass over every micro-batch in which layer `k` adds up its inputs (layers before it already use the
/// step's statistics); then, for each layer from the last, a forward and backward pass in which it adds up `Σg` and
/// `Σg·x̂`; then the real pass, in which every layer uses the step's statistics and sums. Parameter gradients of the
/// collecting passes are discarded (the real pass zeroes them first).
final class BatchStatisticsPass: @unchecked Sendable {
    enum Phase: Equatable {
        /// Count the layers (each call's output is its input).
        case census
        case collectInput(layer: Int)
        case collectGradient(layer: Int)
        case apply
    }
    var phase = Phase.census
    /// The micro-batch being run, from 0.
    var microBatch = 0
    /// The rows of the whole step.
    var rows = 0
    /// Layers met so far in this forward pass.
    private(set) var visited = 0
    /// Each layer's sums over the step (`5F` doubles: shift, `Σ(x − c)`, `Σ(x − c)²`, `Σg`, `Σg·x̂`), made by the
    /// census pass.
    private var layerSums: [UnsafeMutablePointer<Double>] = []

    deinit { for sums in layerSums { sums.deallocate() } }

    /// Starts a forward pass over micro-batch `microBatch`.
    func start(microBatch: Int) {
        self.microBatch = microBatch
        visited = 0
    }

    /// The calling layer's number in this forward pass; in the census, also makes room for its sums.
    func visit(features: Int) -> Int {
        if phase == .census && visited == layerSums.count {
            let sums = UnsafeMutablePointer<Double>.allocate(capacity: 5 * features)
            sums.initialize(repeating: 0, count: 5 * features)
            layerSums.append(sums)
        }
        defer { visited += 1 }
        return visited
    }

    /// The sums of layer `index`.
    func sums(ofLayer index: Int) -> UnsafeMutablePointer<Double> {
        precondition(index < layerSums.count, "BatchStatisticsPass: layer \(index) was not counted by the census")
        return layerSums[index]
    }
}
