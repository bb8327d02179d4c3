/// The discounted returns of one episode: `Gₜ = rₜ + γ·Gₜ₊₁`, with `G = 0` after the last step, written into
/// `returns` (`rewards` and `returns` hold `T` elements each; they may be the same matrix). Summed in `Double`.
public func discountedReturns(rewards: Matrix, gamma: Float, into returns: Matrix) {
    precondition(rewards.count == returns.count, "discountedReturns: \(rewards.count) rewards, room for \(returns.count) returns")
    precondition(gamma >= 0 && gamma <= 1, "discountedReturns: γ must be in [0, 1], got \(gamma)")
    var g = 0.0
    for t in stride(from: rewards.count - 1, through: 0, by: -1) {
        g = Double(rewards.pointer[t]) + Double(gamma) * g
        returns.pointer[t] = Float(g)
    }
}

/// Normalises returns in place, `Ĝ = (G − mean) / (std + ε)` with the unbiased standard deviation and `ε` the
/// `Float` machine epsilon, as the classic PyTorch REINFORCE example does. A single return has no standard
/// deviation: it becomes 0 (centred, not scaled), so a one-step episode leaves the policy unchanged, where PyTorch's
/// unbiased `std()` of one element would make it NaN.
public func normalizeReturns(_ returns: Matrix) {
    let n = returns.count, p = returns.pointer
    guard n > 1 else {
        if n == 1 { p[0] = 0 }
        return
    }
    var mean = 0.0
    for t in 0..<n { mean += Double(p[t]) }
    mean /= Double(n)
    var squares = 0.0
    for t in 0..<n { squares += (Double(p[t]) - mean) * (Double(p[t]) - mean) }
    let deviation = (squares / Double(n - 1)).squareRoot() + Double(Float.ulpOfOne)
    for t in 0..<n { p[t] = Float((Double(p[t]) - mean) / deviation) }
}
