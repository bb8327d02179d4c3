/// Squared error on predictions `Y` and targets `T` (`N × K`). PyTorch: `nn.MSELoss` (see ``Reduction`` for how
/// `.mean` differs).
///
/// Per sample: `Lₙ = Σₖ (Yₙₖ − Tₙₖ)²`. Gradient: `∂Lₙ/∂Yₙₖ = 2(Yₙₖ − Tₙₖ)`.
public struct MeanSquaredError: Loss {
    public var reduction: Reduction
    public var name: String { "mean-squared-error" }

    public init(reduction: Reduction = .mean) { self.reduction = reduction }

    public func sumOfLosses(output: Matrix, targets: Matrix, gradient: Matrix?, gradientScale: Float) -> Double {
        checkLossShapes("MeanSquaredError", output: output, targets: targets, gradient: gradient)
        let y = output.pointer, t = targets.pointer
        var total = 0.0
        for i in 0..<output.count {
            let d = y[i] - t[i]
            total += Double(d * d)
        }
        if let gradient {
            let g = gradient.pointer
            for i in 0..<output.count { g[i] = gradientScale * 2 * (y[i] - t[i]) }
        }
        return total
    }
}

/// The squared error of `predictions` against `targets` (both `N × K`).
public func meanSquaredError(predictions: Matrix, targets: Matrix, reduction: Reduction = .mean) -> Float {
    MeanSquaredError(reduction: reduction)(predictions, targets: targets)
}
