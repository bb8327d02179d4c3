import CSIMD

/// One time step of a cell, split by rows (sequences) between ``Parallel``'s threads. Within a step the sequences are
/// independent, so each thread runs the recurrent GEMM of its own rows and then the cell's kernel on them, while
/// they are still in its core's cache: one hand-off per step instead of one for the GEMM and a kernel on one thread.
/// A part gets at least 2²⁰ multiply-adds (as ``gemm(_:_:_:transposeA:transposeB:alpha:beta:)``'s parts do), so small
/// batches run on the calling thread.
///
/// A backward step's part also adds the column sums of its rows' gate gradients (the bias gradients) into its own
/// row of `biasPartials` (``maximumParts`` rows of doubles), while those rows are in its core's cache; the caller adds
/// the rows up after the last step, so no thread waits while one sums a whole step.
///
/// All pointers are row-major blocks of the step's `N` rows: `H` wide for states, `G·H` for gates. The recurrent
/// weights are a ``PackedOperand``, packed once per pass for all steps. Allocates nothing.
enum RecurrentSteps {
    /// The fewest rows a part gets for a step whose GEMM is `rows × width × depth`.
    @inline(__always)
    static func minimumRows(width: Int, depth: Int) -> Int { max(1, (1 << 20) / max(1, width * depth)) }

    /// The most parts a step is split into: the rows of `biasPartials`.
    static let maximumParts = 8

    /// The width of a row of `biasPartials` for hidden size `h`: `4H` (an LSTM's gates; a GRU's `[dr, dz, dn⊙r, dn]`).
    static func biasPartialWidth(h: Int) -> Int { 4 * h }

    /// The rows of part `part` of a backward step: bounds at multiples of 32, the row blocks in which
    /// `bp_add_column_sums_double` sums in float, so that the bias gradients are the same sums however many threads
    /// share the step.
    @inline(__always)
    static func backwardRows(_ part: Int, of parts: Int, n: Int) -> Range<Int> {
        Parallel.chunk(part, of: parts, count: n, alignment: 32)
    }

    /// Runs `function(context, part, parts)` on the parts of a backward step of `n` rows (at most ``maximumParts``,
    /// each at least `minimumRows`); each part's rows are ``backwardRows(_:of:n:)``.
    @inline(__always)
    private static func forEachBackwardPart<Context>(of n: Int, minimumRows: Int, context: inout Context, _ function: Parallel.Part) {
        let parts = min(maximumParts, Parallel.partCount(for: n, minimumPerPart: minimumRows))
        Parallel.run(parts: parts, context: &context, function)
    }

    // MARK: LSTM

    struct LSTMForward {
        let gates: UnsafeMutablePointer<Float>, previousHidden: UnsafePointer<Float>, weightHHTransposed: PackedOperand
        let bias: UnsafePointer<Float>, previousCell: UnsafePointer<Float>, cell: UnsafeMutablePointer<Float>
        let cellTanh: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>
        let h: Int
    }

    /// `G += h₋₁·W_hhᵀ` (`N × 4H`; `G` holds the step's input projection; `weightHHTransposed` is `W_hhᵀ`, `H × 4H`, packed),
    /// then ``bp_lstm_step`` on those rows: the gates activated in place, `c = f⊙c₋₁ + i⊙g`, `tanh c`, `h = o⊙tanh c`.
    static func lstmForward(_ job: LSTMForward, n: Int) {
        var job = job
        Parallel.forEachChunk(of: n, minimumPerPart: minimumRows(width: 4 * job.h, depth: job.h), alignment: 1,
                              context: &job) { context, start, end in
            let j = context.assumingMemoryBound(to: LSTMForward.self).pointee, h = j.h, g = 4 * h
            j.weightHHTransposed.multiply(m: end - start, a: j.previousHidden + start * h, lda: h, c: j.gates + start * g, ldc: g,
                                          accumulate: true)
            bp_lstm_step(j.gates + start * g, j.bias, j.previousCell + start * h, j.cell + start * h,
                         j.cellTanh + start * h, j.hidden + start * h, end - start, h)
        }
    }

    struct LSTMBackward {
        let gateGradients: UnsafeMutablePointer<Float>, cellGradient: UnsafeMutablePointer<Float>
        let hiddenGradient: UnsafeMutablePointer<Float>, gates: UnsafePointer<Float>, cellTanh: UnsafePointer<Float>
        let previousCell: UnsafePointer<Float>, weightHH: PackedOperand, biasPartials: UnsafeMutablePointer<Double>
        let h: Int, n: Int, needsPrevious: Bool
    }

    /// ``bp_lstm_step_backward`` on the rows (`dG`, and `dc` becomes `∂L/∂cₜ₋₁`) and `Σ dG` into the part's bias partial,
    /// then, unless this is the first step and no initial state wants a gradient, `dh ← dG·W_hh` (`∂L/∂hₜ₋₁`).
    static func lstmBackward(_ job: LSTMBackward) {
        var job = job
        forEachBackwardPart(of: job.n, minimumRows: minimumRows(width: job.h, depth: 4 * job.h), context: &job) { context, part, parts in
            let j = context.assumingMemoryBound(to: LSTMBackward.self).pointee, h = j.h, g = 4 * h
            let rows = RecurrentSteps.backwardRows(part, of: parts, n: j.n), start = rows.lowerBound, end = rows.upperBound
            bp_lstm_step_backward(j.gateGradients + start * g, j.cellGradient + start * h, j.hiddenGradient + start * h,
                                  j.gates + start * g, j.cellTanh + start * h, j.previousCell + start * h, end - start, h)
            bp_add_column_sums_double(j.biasPartials + part * RecurrentSteps.biasPartialWidth(h: h), j.gateGradients + start * g, end - start, g)
            if j.needsPrevious {
                j.weightHH.multiply(m: end - start, a: j.gateGradients + start * g, lda: g, c: j.hiddenGradient + start * h, ldc: h,
                                    accumulate: false)
            }
        }
    }

    // MARK: GRU

    struct GRUForward {
        let gates: UnsafeMutablePointer<Float>, recurrent: UnsafeMutablePointer<Float>, previousHidden: UnsafePointer<Float>
        let weightHHTransposed: PackedOperand, biasIH: UnsafePointer<Float>, biasHH: UnsafePointer<Float>
        let hiddenN: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>
        let h: Int
    }

    /// `R += h₋₁·W_hhᵀ` (`N × 3H`, holding `b_hh` in every row before, and again after the kernel; with
    /// `weightHHTransposed` `W_hhᵀ`, `H × 3H`, packed; kept apart from the input side because `r` multiplies only its `n`
    /// part), then ``bp_gru_step`` on those rows: `r`, `z`, `n = tanh(W_in x + b_in + r⊙(W_hn h₋₁ + b_hn))`, `h = (1−z)⊙n + z⊙h₋₁`.
    static func gruForward(_ job: GRUForward, n: Int) {
        var job = job
        Parallel.forEachChunk(of: n, minimumPerPart: minimumRows(width: 3 * job.h, depth: job.h), alignment: 1,
                              context: &job) { context, start, end in
            let j = context.assumingMemoryBound(to: GRUForward.self).pointee, h = j.h, g = 3 * h
            j.weightHHTransposed.multiply(m: end - start, a: j.previousHidden + start * h, lda: h, c: j.recurrent + start * g, ldc: g,
                                          accumulate: true)
            bp_gru_step(j.gates + start * g, j.biasIH, j.recurrent + start * g, j.biasHH, j.previousHidden + start * h,
                        j.hiddenN + start * h, j.hidden + start * h, end - start, h)
        }
    }

    struct GRUBackward {
        let gateGradients: UnsafeMutablePointer<Float>, hiddenGradient: UnsafeMutablePointer<Float>
        let gates: UnsafePointer<Float>, hiddenN: UnsafePointer<Float>, previousHidden: UnsafePointer<Float>
        let weightHH: PackedOperand, biasPartials: UnsafeMutablePointer<Double>
        let h: Int, n: Int, needsPrevious: Bool
    }

    /// ``bp_gru_step_backward`` on the rows (`dG`, `N × 4H`: `[dr, dz, dn⊙r, dn]`; `dh` becomes `dh⊙z`) and `Σ dG`
    /// into the part's bias partial, then, unless no earlier state needs it, `dh += [dr, dz, dn⊙r]·W_hh` (`∂L/∂hₜ₋₁`;
    /// the first `3H` columns of `dG`).
    static func gruBackward(_ job: GRUBackward) {
        var job = job
        forEachBackwardPart(of: job.n, minimumRows: minimumRows(width: job.h, depth: 3 * job.h), context: &job) { context, part, parts in
            let j = context.assumingMemoryBound(to: GRUBackward.self).pointee, h = j.h, width = 4 * h
            let rows = RecurrentSteps.backwardRows(part, of: parts, n: j.n), start = rows.lowerBound, end = rows.upperBound
            bp_gru_step_backward(j.gateGradients + start * width, j.hiddenGradient + start * h, j.gates + start * 3 * h,
                                 j.hiddenN + start * h, j.previousHidden + start * h, end - start, h)
            bp_add_column_sums_double(j.biasPartials + part * RecurrentSteps.biasPartialWidth(h: h), j.gateGradients + start * width,
                                      end - start, width)
            if j.needsPrevious {
                j.weightHH.multiply(m: end - start, a: j.gateGradients + start * width, lda: width, c: j.hiddenGradient + start * h,
                                    ldc: h, accumulate: true)
            }
        }
    }

    // MARK: RNN

    struct RNNForward {
        let hidden: UnsafeMutablePointer<Float>, previousHidden: UnsafePointer<Float>, weightHHTransposed: PackedOperand
        let bias: UnsafePointer<Float>
        let h: Int, relu: Bool
    }

    /// `h += h₋₁·W_hhᵀ` (`N × H`; `h` holds the step's input projection; `weightHHTransposed` is `W_hhᵀ`, packed), then
    /// ``bp_rnn_step``: `h = φ(h + b)`.
    static func rnnForward(_ job: RNNForward, n: Int) {
        var job = job
        Parallel.forEachChunk(of: n, minimumPerPart: minimumRows(width: job.h, depth: job.h), alignment: 1,
                              context: &job) { context, start, end in
            let j = context.assumingMemoryBound(to: RNNForward.self).pointee, h = j.h
            j.weightHHTransposed.multiply(m: end - start, a: j.previousHidden + start * h, lda: h, c: j.hidden + start * h, ldc: h,
                                          accumulate: true)
            bp_rnn_step(j.hidden + start * h, j.bias, end - start, h, j.relu ? 1 : 0)
        }
    }

    struct RNNBackward {
        let delta: UnsafeMutablePointer<Float>, hiddenGradient: UnsafeMutablePointer<Float>, hidden: UnsafePointer<Float>
        let weightHH: PackedOperand, biasPartials: UnsafeMutablePointer<Double>
        let h: Int, n: Int, relu: Bool, needsPrevious: Bool
    }

    /// ``bp_rnn_step_backward`` on the rows (`δ = dh⊙φ′`) and `Σ δ` into the part's bias partial, then, unless no
    /// earlier state needs it, `dh ← δ·W_hh`.
    static func rnnBackward(_ job: RNNBackward) {
        var job = job
        forEachBackwardPart(of: job.n, minimumRows: minimumRows(width: job.h, depth: job.h), context: &job) { context, part, parts in
            let j = context.assumingMemoryBound(to: RNNBackward.self).pointee, h = j.h
            let rows = RecurrentSteps.backwardRows(part, of: parts, n: j.n), start = rows.lowerBound, end = rows.upperBound
            bp_rnn_step_backward(j.delta + start * h, j.hiddenGradient + start * h, j.hidden + start * h, (end - start) * h,
                                 j.relu ? 1 : 0)
            bp_add_column_sums_double(j.biasPartials + part * RecurrentSteps.biasPartialWidth(h: h), j.delta + start * h, end - start, h)
            if j.needsPrevious {
                j.weightHH.multiply(m: end - start, a: j.delta + start * h, lda: h, c: j.hiddenGradient + start * h, ldc: h,
                                    accumulate: false)
            }
        }
    }
}
