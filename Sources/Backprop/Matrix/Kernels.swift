#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSIMD

// Element-wise kernels. Each writes into a preallocated output (which may be the input itself) and allocates
// nothing; the hot ones call the per-ISA C kernels of CSIMD, split between the threads for large counts. Shapes
// are checked by the callers' views.

/// `x ← s·x`.
func scale(_ x: Matrix, by s: Float) {
    let p = x.pointer
    if s == 0 { p.update(repeating: 0, count: x.count); return }
    for i in 0..<x.count { p[i] *= s }
}

/// `Σᵢ xᵢ²`: in `Float` lanes over blocks of 4096 elements, the blocks added in `Double`, split between the
/// threads (the parts added in order, so the result is reproducible for a given thread count). Infinite if any
/// element is infinite, NaN if any is NaN.
func sumOfSquares(_ x: Matrix) -> Double {
    var source = UnsafePointer(x.pointer)
    // The chunks of `Parallel.forEachBufferChunk`, like every other pass over the gradients.
    return Parallel.sum(of: x.count, minimumPerPart: Parallel.minimumBufferChunk,
                        alignment: Parallel.bufferChunkAlignment, context: &source) { context, start, end in
        bp_sum_of_squares(context.load(as: UnsafePointer<Float>.self) + start, end - start)
    }
}

/// An element-wise C kernel over up to three inputs and a setting: `kernel(output, a, b, c, count, setting)`.
typealias ElementKernel = @convention(c) (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                          UnsafePointer<Float>, Int, Float) -> Void

/// Runs `kernel` over all elements of `output` and its inputs (unused ones may repeat `a`), in chunks
/// split between the threads when there are at least 32 768 elements per thread (below that the hand-off costs more
/// than it saves). Allocates nothing.
func forEachElementChunk(_ kernel: ElementKernel, output: Matrix, _ a: Matrix, _ b: Matrix? = nil, _ c: Matrix? = nil,
                         setting: Float = 0) {
    struct Job {
        let kernel: ElementKernel
        let y: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafePointer<Float>
        let setting: Float
    }
    var job = Job(kernel: kernel, y: output.pointer, a: UnsafePointer(a.pointer), b: UnsafePointer((b ?? a).pointer),
                  c: UnsafePointer((c ?? a).pointer), setting: setting)
    Parallel.forEachChunk(of: output.count, minimumPerPart: 32_768, context: &job) { context, start, end in
        let job = context.load(as: Job.self)
        job.kernel(job.y + start, job.a + start, job.b + start, job.c + start, end - start, job.setting)
    }
}

/// Runs a row-wise kernel `kernel(output, a, b, rows, columns)` over the rows of `output` (`a`, `b` alike), split
/// between the threads by rows when there are at least 32 768 elements per thread.
func forEachRowChunk(_ kernel: @convention(c) (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, Int, Int) -> Void,
                     output: Matrix, _ a: Matrix, _ b: Matrix? = nil) {
    struct Job {
        let kernel: @convention(c) (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, Int, Int) -> Void
        let y: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>
        let columns: Int
    }
    let columns = output.columns
    var job = Job(kernel: kernel, y: output.pointer, a: UnsafePointer(a.pointer), b: UnsafePointer((b ?? a).pointer), columns: columns)
    Parallel.forEachChunk(of: output.rows, minimumPerPart: max(1, 32_768 / max(columns, 1)), alignment: 1, context: &job) { context, start, end in
        let job = context.load(as: Job.self)
        let offset = start * job.columns
        job.kernel(job.y + offset, job.a + offset, job.b + offset, end - start, job.columns)
    }
}

/// `xᵢ ← min(max(xᵢ, −limit), limit)`.
func clamp(_ x: Matrix, to limit: Float) {
    precondition(limit >= 0, "clamp: the limit must be non-negative, got \(limit)")
    let p = x.pointer
    for i in 0..<x.count { p[i] = min(max(p[i], -limit), limit) }
}

/// Checks that `a` and `b` have the same shape, naming both in the message.
@inlinable
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

/// `output[i] = f(input[i])` for an element-wise function `f`.
@inlinable
public func mapElements(output: Matrix, input: Matrix, _ f: (Float) -> Float) {
    precondition(sameShape: output, input, "mapElements")
    let y = output.pointer, x = input.pointer
    for i in 0..<input.count { y[i] = f(x[i]) }
}

/// `dInput[i] = dOutput[i] · f′(input[i])`, with `f′` given the forward pass's input `z` and output `y = f(z)`
/// (most activations' derivatives are cheapest from `y`).
@inlinable
public func chainElements(
    dInput: Matrix, dOutput: Matrix, input: Matrix, output: Matrix, _ derivative: (_ z: Float, _ y: Float) -> Float
) {
    precondition(sameShape: dInput, dOutput, "chainElements")
    precondition(sameShape: dInput, input, "chainElements")
    precondition(sameShape: dInput, output, "chainElements")
    let dx = dInput.pointer, dy = dOutput.pointer, z = input.pointer, y = output.pointer
    for i in 0..<dInput.count { dx[i] = dy[i] * derivative(z[i], y[i]) }
}

/// The row maximum `m = maxⱼ zⱼ` and `Σⱼ e^(zⱼ − m)` over `count` values: what softmax, log-softmax and
/// cross-entropy need, with no exponential able to overflow. `log Σⱼ e^(zⱼ) = m + log(sum)`; for precision with
/// large logits, subtract `m` from `zⱼ` before anything else (`zⱼ − m − log(sum)`, `e^(zⱼ − m)/sum`).
@inlinable
func shiftedExponentialSum(_ z: UnsafePointer<Float>, count: Int) -> (max: Float, sum: Float) {
    var m = -Float.infinity
    for j in 0..<count { m = max(m, z[j]) }
    var sum: Float = 0
    for j in 0..<count { sum += expf(z[j] - m) }
    return (m, sum)
}

/// `sums[i] += Σⱼ input[i, j]`: the row sums of an `m × n` matrix added to a `1 × m` row, each summed blockwise
/// (`bp_sum`: float lanes over blocks of 4096, the blocks added in `Double`; a convolution's bias gradient sums tens
/// of thousands of positions per channel).
func addRowSums(_ sums: Matrix, of input: Matrix) {
    precondition(sums.rows == 1 && sums.columns == input.rows,
                 "addRowSums: sums \(sums.shapeDescription) do not match rows of \(input.shapeDescription)")
    let n = input.columns
    for i in 0..<input.rows { sums.pointer[i] += Float(bp_sum(input.pointer + i * n, n)) }
}

/// Copies the `1 × n` row `row` into every row of the `m × n` matrix `output`.
func broadcastRows(_ output: Matrix, row: Matrix) {
    precondition(row.rows == 1 && row.columns == output.columns,
                 "broadcastRows: row \(row.shapeDescription) does not fit rows of \(output.shapeDescription)")
    let n = output.columns
    for i in 0..<output.rows { (output.pointer + i * n).update(from: row.pointer, count: n) }
}

/// `sums[j] += Σᵢ input[i, j]`: the column sums of an `m × n` matrix added to a `1 × n` row (a dense layer's bias
/// gradient), blockwise (`bp_add_column_sums`: float sums of 32-row blocks, vectorised across columns, added in
/// `Double`): a 60 000-row full batch is within 10⁻⁶ relative of the exact sum, where one running `Float` sum per
/// column drifts by about 10⁻⁴. Allocates nothing.
func addColumnSums(_ sums: Matrix, of input: Matrix) {
    precondition(sums.rows == 1 && sums.columns == input.columns,
                 "addColumnSums: sums \(sums.shapeDescription) do not match columns of \(input.shapeDescription)")
    bp_add_column_sums(sums.pointer, input.pointer, input.rows, input.columns)
}
