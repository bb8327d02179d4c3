#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Element-wise kernels. Each writes into a preallocated output (which may be the input itself), loops over raw
// pointers so that the compiler can vectorise, and allocates nothing. Shapes are checked by the callers' views.

/// `x ← s·x`.
public func scale(_ x: Matrix, by s: Float) {
    let p = x.pointer
    if s == 0 { p.update(repeating: 0, count: x.count); return }
    for i in 0..<x.count { p[i] *= s }
}

/// Checks that `a` and `b` have the same shape, naming both in the message.
@inline(__always)
func precondition(sameShape a: Matrix, _ b: Matrix, _ what: @autoclosure () -> String) {
    precondition(a.rows == b.rows && a.columns == b.columns,
                 "\(what()): shapes \(a.shapeDescription) and \(b.shapeDescription) differ")
}

/// The logistic function σ(x) = 1 / (1 + e⁻ˣ), computed without overflow for any finite x.
@inlinable public func sigmoid(_ x: Float) -> Float {
    if x >= 0 {
        return 1 / (1 + expf(-x))
    } else {
        let e = expf(x)
        return e / (1 + e)
    }
}

/// `output[i] = σ(input[i])`.
public func sigmoidForward(output: Matrix, input: Matrix) {
    precondition(sameShape: output, input, "sigmoidForward")
    let y = output.pointer, x = input.pointer
    for i in 0..<input.count { y[i] = sigmoid(x[i]) }
}

/// `dInput[i] = dOutput[i] · σ′(z) = dOutput[i] · y(1 − y)`, from the forward output `y = σ(z)`.
public func sigmoidBackward(dInput: Matrix, dOutput: Matrix, output: Matrix) {
    precondition(sameShape: dInput, dOutput, "sigmoidBackward")
    precondition(sameShape: dInput, output, "sigmoidBackward")
    let dx = dInput.pointer, dy = dOutput.pointer, y = output.pointer
    for i in 0..<dInput.count { dx[i] = dy[i] * y[i] * (1 - y[i]) }
}

/// `output[i] = max(0, input[i])`.
public func reluForward(output: Matrix, input: Matrix) {
    precondition(sameShape: output, input, "reluForward")
    let y = output.pointer, x = input.pointer
    for i in 0..<input.count { y[i] = max(0, x[i]) }
}

/// `dInput[i] = dOutput[i] · [y > 0]` from the forward output `y = max(0, z)`; the derivative at 0 is 0, as in
/// PyTorch.
public func reluBackward(dInput: Matrix, dOutput: Matrix, output: Matrix) {
    precondition(sameShape: dInput, dOutput, "reluBackward")
    precondition(sameShape: dInput, output, "reluBackward")
    let dx = dInput.pointer, dy = dOutput.pointer, y = output.pointer
    for i in 0..<dInput.count { dx[i] = y[i] > 0 ? dy[i] : 0 }
}

/// `output[i] = tanh(input[i])`.
public func tanhForward(output: Matrix, input: Matrix) {
    precondition(sameShape: output, input, "tanhForward")
    let y = output.pointer, x = input.pointer
    for i in 0..<input.count { y[i] = tanhf(x[i]) }
}

/// `dInput[i] = dOutput[i] · (1 − y²)` from the forward output `y = tanh(z)`.
public func tanhBackward(dInput: Matrix, dOutput: Matrix, output: Matrix) {
    precondition(sameShape: dInput, dOutput, "tanhBackward")
    precondition(sameShape: dInput, output, "tanhBackward")
    let dx = dInput.pointer, dy = dOutput.pointer, y = output.pointer
    for i in 0..<dInput.count { dx[i] = dy[i] * (1 - y[i] * y[i]) }
}

/// Copies the `1 × n` row `row` into every row of the `m × n` matrix `output`.
public func broadcastRows(_ output: Matrix, row: Matrix) {
    precondition(row.rows == 1 && row.columns == output.columns,
                 "broadcastRows: row \(row.shapeDescription) does not fit rows of \(output.shapeDescription)")
    let n = output.columns
    for i in 0..<output.rows { (output.pointer + i * n).update(from: row.pointer, count: n) }
}

/// `sums[j] += Σᵢ input[i, j]`: the column sums of an `m × n` matrix added to a `1 × n` row.
public func addColumnSums(_ sums: Matrix, of input: Matrix) {
    precondition(sums.rows == 1 && sums.columns == input.columns,
                 "addColumnSums: sums \(sums.shapeDescription) do not match columns of \(input.shapeDescription)")
    let n = input.columns, s = sums.pointer
    for i in 0..<input.rows {
        let row = input.pointer + i * n
        for j in 0..<n { s[j] += row[j] }
    }
}
