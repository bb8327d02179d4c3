/// The outcome of comparing analytic gradients with central finite differences.
public struct GradientCheckResult: Sendable, CustomStringConvertible {
    /// The largest error over every checked element, `|analytic − numeric| / max(|analytic|, |numeric|, floor)`.
    public let maxRelativeError: Double
    /// Which element had it, e.g. `"parameter 0 [3, 1]: analytic 0.25, numeric 0.0625"`.
    public let worst: String
    /// How many elements were compared.
    public let checkedCount: Int

    /// Whether every element's error is at most `tolerance`.
    public func passes(tolerance: Double = 1e-2) -> Bool { maxRelativeError <= tolerance }

    public var description: String {
        "gradient check: max relative error \(maxRelativeError) over \(checkedCount) elements (worst: \(worst))"
    }
}

/// Compares a layer's backward pass with central differences of its forward pass.
///
/// The scalar checked is `L = Σᵢⱼ Yᵢⱼ Rᵢⱼ` for a fixed random `R` (so `∂L/∂Y = R`, which exercises every output).
/// For every input element and every parameter `x`, the numeric derivative is `(L(x + ε) − L(x − ε)) / 2ε`
/// (sums in `Double`), and the error is `|a − n| / max(|a|, |n|, floor)`; the floor keeps near-zero gradients
/// from producing huge relative errors out of `Float` rounding. The layer's parameters are restored exactly, its
/// parameter gradients are overwritten.
///
/// Use `Float`-friendly scales: inputs and parameters of order 1, `ε ≈ 1e-2`. Keep inputs away from kinks
/// (ReLU at 0), where no derivative exists. The passes run in `mode` (training by default: dropout keeps one
/// mask, ``LayerContext/randomIndex`` `randomIndex`, for every evaluation; batch normalization uses batch
/// statistics), through the layer's one pair of passes with a scratch space of its own.
public func gradientCheck(
    _ layer: some Layer, input: Matrix, mode: LayerContext.Mode = .training, randomIndex: UInt64 = 1,
    seed: UInt64 = 0, epsilon: Float = 1e-2, floor: Double = 1e-2, checksInput: Bool = true
) -> GradientCheckResult {
    var generator = SeededGenerator(seed: seed)
    let x = input.copy()
    let outputSize = layer.outputSize(forInputSize: x.columns)
    let r = Matrix(rows: x.rows, columns: outputSize)
    r.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] = Float(2 * generator.nextUniform() - 1) } }
    let output = Matrix(rows: x.rows, columns: outputSize)
    let scratch = Matrix(rows: 1, columns: layer.scratchCount(rows: x.rows, inputSize: x.columns, backward: true))
    let context = LayerContext(mode: mode, scratch: scratch, randomIndex: randomIndex)
    func objective() -> Double {
        layer.forward(output: output, input: x, context: context)
        var sum = 0.0
        for i in 0..<output.count { sum += Double(output.pointer[i]) * Double(r.pointer[i]) }
        return sum
    }
    // Analytic.
    for g in layer.parameterGradients { g.fill(0) }
    _ = objective()
    let dInput = Matrix(rows: x.rows, columns: x.columns)
    layer.backward(dInput: dInput, dOutput: r, input: x, output: output, context: context)
    // Numeric, element by element.
    var comparison = GradientComparison(floor: floor)
    let tensors = (checksInput ? [("input", x, dInput)] : []) + zip(layer.parameters, layer.parameterGradients).enumerated().map {
        ("parameter \($0.offset)", $0.element.0, $0.element.1)
    }
    for (name, tensor, analytic) in tensors {
        for i in 0..<tensor.count {
            let numeric = centralDifference(at: tensor.pointer + i, epsilon: epsilon, objective)
            comparison.add(analytic: Double(analytic.pointer[i]), numeric: numeric,
                           label: "\(name) [\(i / tensor.columns), \(i % tensor.columns)]")
        }
    }
    return comparison.result
}

/// Compares a loss's gradient with respect to its `output` argument with central differences of the loss.
public func gradientCheck(
    _ loss: some Loss, output: Matrix, targets: Matrix, epsilon: Float = 1e-2, floor: Double = 1e-2
) -> GradientCheckResult {
    let z = output.copy()
    let analytic = Matrix(rows: z.rows, columns: z.columns)
    _ = loss.lossAndGradient(gradient: analytic, output: z, targets: targets)
    let n = Double(max(z.rows, 1))
    var comparison = GradientComparison(floor: floor)
    for i in 0..<z.count {
        let numeric = centralDifference(at: z.pointer + i, epsilon: epsilon) {
            let sum = loss.sumOfLosses(output: z, targets: targets, gradient: nil, gradientScale: 1)
            return loss.reduction == .mean ? sum / n : sum
        }
        comparison.add(analytic: Double(analytic.pointer[i]), numeric: numeric,
                       label: "output [\(i / z.columns), \(i % z.columns)]")
    }
    return comparison.result
}

/// Compares a whole network's parameter gradients under `loss` with central differences.
public func gradientCheck(
    _ network: Network, loss: some Loss, input: Matrix, targets: Matrix, epsilon: Float = 1e-2, floor: Double = 1e-2
) -> GradientCheckResult {
    let workspace = Workspace(for: network, capacity: input.rows)
    let scale: Float = loss.reduction == .mean ? 1 / Float(input.rows) : 1
    func objective() -> Double {
        let output = network.forward(input, workspace: workspace)
        let sum = loss.sumOfLosses(output: output, targets: targets, gradient: nil, gradientScale: 1)
        return loss.reduction == .mean ? sum / Double(input.rows) : sum
    }
    network.zeroGradients()
    let output = network.forward(input, workspace: workspace)
    _ = loss.sumOfLosses(output: output, targets: targets, gradient: workspace.outputGradient(rows: input.rows),
                         gradientScale: scale)
    network.backward(input, workspace: workspace)
    var comparison = GradientComparison(floor: floor)
    for i in 0..<network.parameterCount {
        let numeric = centralDifference(at: network.parameters.pointer + i, epsilon: epsilon, objective)
        comparison.add(analytic: Double(network.gradients.pointer[i]), numeric: numeric, label: "parameter \(i)")
    }
    return comparison.result
}

/// `(f(x + ε) − f(x − ε)) / 2ε` for the element at `x`, which is restored afterwards.
private func centralDifference(at x: UnsafeMutablePointer<Float>, epsilon: Float, _ f: () -> Double) -> Double {
    let saved = x.pointee
    x.pointee = saved + epsilon
    let plus = f()
    x.pointee = saved - epsilon
    let minus = f()
    x.pointee = saved
    // Divide by the step actually taken in Float arithmetic.
    return (plus - minus) / (Double(saved + epsilon) - Double(saved - epsilon))
}

private struct GradientComparison {
    let floor: Double
    var maxError = 0.0
    var worst = "none"
    var count = 0

    mutating func add(analytic: Double, numeric: Double, label: @autoclosure () -> String) {
        count += 1
        let error = abs(analytic - numeric) / max(abs(analytic), abs(numeric), floor)
        if error > maxError || error.isNaN {
            maxError = error.isNaN ? .infinity : error
            worst = "\(label()): analytic \(analytic), numeric \(numeric)"
        }
    }

    var result: GradientCheckResult { GradientCheckResult(maxRelativeError: maxError, worst: worst, checkedCount: count) }
}
