import CBLAS
import CSIMD

/// How many parts per thread a large GEMM is split into: more than one, so that when the system does not run one of
/// the threads (a busy machine) the others take its share instead of waiting for it.
let gemmPartsPerThread = 4

/// General matrix multiply: `C ← α·op(A)·op(B) + β·C`, through OpenBLAS's `sgemm`, or on an AVX-512 CPU through
/// Backprop's own kernel when `B` is not transposed, `α = 1`, `β` is 0 or 1 and the operands are small enough for it.
///
/// `op(X)` is `Xᵀ` when the matching `transpose` flag is set, else `X`. With `op(A)` of shape `m × k` and `op(B)`
/// of shape `k × n`, `C` must be `m × n` and is written in place (nothing is allocated). `beta = 1` adds the
/// product to what `C` holds, which is how gradients accumulate; `beta = 0` overwrites `C`.
///
/// - Precondition: the shapes agree; the message names all three.
public func gemm(
    _ c: Matrix, _ a: Matrix, _ b: Matrix,
    transposeA: Bool = false, transposeB: Bool = false,
    alpha: Float = 1, beta: Float = 0
) {
    let (m, k, n) = checkedGEMMShape(c, a, b, transposeA: transposeA, transposeB: transposeB)
    if m == 0 || n == 0 { return }
    if k == 0 {  // an empty sum: C ← β·C (BLAS implementations disagree on this edge)
        scale(c, by: beta)
        return
    }
    gemm(m: m, n: n, k: k, a: a.pointer, lda: a.columns, b: b.pointer, ldb: b.columns, c: c.pointer, ldc: c.columns,
         transposeA: transposeA, transposeB: transposeB, alpha: alpha, beta: beta)
}

/// ``gemm(_:_:_:transposeA:transposeB:alpha:beta:)`` on raw row-major operands with leading dimensions (`op(A)`
/// `m × k`, `op(B)` `k × n`, `C` `m × n`, each row `lda`, `ldb`, `ldc` floats apart): for blocks of columns of a
/// wider matrix. `m`, `n` and `k` are positive. Split between the threads as that function is; allocates nothing.
func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
          c: UnsafeMutablePointer<Float>, ldc: Int, transposeA: Bool = false, transposeB: Bool = false,
          alpha: Float = 1, beta: Float = 0) {
    // A single row or column of C is a matrix-vector product: `sgemv`, one thread. (OpenBLAS 0.3.21's small-matrix
    // `sgemm` kernel mallocs a buffer on every call when C is narrow, as it is when an agent acts one observation
    // at a time, or in a value head; `sgemv` allocates nothing.) A C of 2–4 columns is that many products.
    if m == 1 || n == 1 {
        matrixVectorProduct(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                            transposeA: transposeA, transposeB: transposeB, alpha: alpha, beta: beta)
        return
    }
    if n <= 4 && !transposeA && !transposeB {
        for j in 0..<n {  // column j of C = A · column j of B, both strided by their row lengths
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(k), alpha, a, Int32(lda), b + j, Int32(ldb), beta,
                        c + j, Int32(ldc))
        }
        return
    }
    // Split C between the threads (see `Parallel`): by rows when A is the larger operand to pack, else by
    // columns, in multiples of 16 (the kernels' tile), each part a single-threaded product claimed by whichever thread
    // is free: up to `gemmPartsPerThread` parts per thread (one, below, when the shared operand is large), none of
    // less than 2²⁰ multiply-adds (below that the split costs more than it gains).
    let byRows = m >= n
    let split = byRows ? m : n
    // Every part packs all of the operand the parts share (B when C is split by rows, A when by columns). When that
    // operand is large (over 2¹⁸ floats, beyond the core's L2: a convolution's weight gradient shares the chunk's dY,
    // 64 × 12 544), each extra part repacks it from memory, which costs more than the smaller parts gain: one part
    // per thread then (conv2's weight gradient cut into 8 parts took 6.64 ms on one thread, into 2 parts 5.78).
    let sharedOperand = (byRows ? n : m) * k
    let perThread = sharedOperand > 1 << 18 ? 1 : gemmPartsPerThread
    let parts = max(1, min(Parallel.partCount(for: m * n * k, minimumPerPart: 1 << 20, partsPerThread: perThread), split / 16))
    // A row-major B (used as it is, each row loaded as vectors) with α = 1 and β 0 or 1 — a layer's dX = dY·W or
    // dW = dYᵀ·X — goes through Backprop's own AVX-512 kernel (``bp_gemm``), which at these sizes beats sgemm's
    // packing of both operands (an MLP's epoch 1.04–1.16× faster, A/B). The kernel reads A once per 32 columns of C
    // and does not block the sum, so A must stay in the core's L2 (2¹⁸ floats) unless C is one block of columns, and
    // a block of B (k × 32) must too: with an LSTM's dW_hh = dGᵀ·H₋₁ (1792 rows of dG) in it, its epoch ran
    // 0.92–0.98× as fast.
    let ownKernel = PackedOperand.unpackedKernelAvailable && !transposeB && alpha == 1 && (beta == 0 || beta == 1)
        && (m * k <= 1 << 18 || n <= Int(BP_PANEL_WIDTH)) && k <= 2048
    var job = GEMMPart(m: m, n: n, k: k, a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc, transposeA: transposeA,
                       transposeB: transposeB, alpha: alpha, beta: beta, byRows: byRows, ownKernel: ownKernel)
    Parallel.run(parts: parts, context: &job) { context, part, parts in
        let job = context.load(as: GEMMPart.self)
        let range = Parallel.chunk(part, of: parts, count: job.byRows ? job.m : job.n, alignment: 16)
        if range.isEmpty { return }
        var (m, n, a, b, c) = (job.m, job.n, job.a, job.b, job.c)
        if job.byRows {  // rows of C and of op(A)
            m = range.count
            a += job.transposeA ? range.lowerBound : range.lowerBound * job.lda
            c += range.lowerBound * job.ldc
        } else {  // columns of C and of op(B)
            n = range.count
            b += job.transposeB ? range.lowerBound * job.ldb : range.lowerBound
            c += range.lowerBound
        }
        if job.ownKernel {  // B row-major, α = 1, β 0 or 1: Backprop's own kernel, which packs neither operand
            bp_gemm(m, n, job.k, a, job.lda, job.transposeA ? 1 : 0, b, job.ldb, c, job.ldc, job.beta == 1 ? 1 : 0)
            return
        }
        cblas_sgemm(CblasRowMajor, job.transposeA ? CblasTrans : CblasNoTrans, job.transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(job.k), job.alpha, a, Int32(job.lda), b, Int32(job.ldb), job.beta,
                    c, Int32(job.ldc))
    }
}

/// `C ← α·op(A)·op(B) + β·C` when `C` is one row (`m = 1`, contiguous) or one column (`n = 1`, `ldc` apart), as one
/// `sgemv`; the vector operand is a row or column of `A` or `B`, contiguous or `lda`/`ldb` apart.
private func matrixVectorProduct(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                 c: UnsafeMutablePointer<Float>, ldc: Int, transposeA: Bool, transposeB: Bool,
                                 alpha: Float, beta: Float) {
    if m == 1 {  // cᵀ (n) = op(B)ᵀ (n×k) · op(A)ᵀ (k): op(B) = B (k×n): y = Bᵀx; op(B) = Bᵀ (B is n×k): y = Bx
        let x = (a, Int32(transposeA ? lda : 1))  // op(A) is 1×k: a row of A, or a column of the k×1 A
        cblas_sgemv(CblasRowMajor, transposeB ? CblasNoTrans : CblasTrans, Int32(transposeB ? n : k), Int32(transposeB ? k : n),
                    alpha, b, Int32(ldb), x.0, x.1, beta, c, 1)
    } else {  // c (m, ldc apart) = op(A) (m×k) · op(B) (k×1): op(B) a column of B, or a row of the 1×k B
        let x = (b, Int32(transposeB ? 1 : ldb))
        cblas_sgemv(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, Int32(transposeA ? k : m), Int32(transposeA ? m : k),
                    alpha, a, Int32(lda), x.0, x.1, beta, c, Int32(ldc))
    }
}

/// `C ← α·op(A)·op(B) + β·C` on the calling thread, on raw row-major operands (`op(A)` `m × k`, `op(B)` `k × n`,
/// leading dimensions `lda`, `ldb`, `ldc`): for kernels that already run on one of ``Parallel``'s threads, such as a
/// recurrent step's rows. A single row of C is one `sgemv`, as in ``gemm(_:_:_:transposeA:transposeB:alpha:beta:)``
/// (OpenBLAS's small-matrix `sgemm` would allocate). Allocates nothing.
@inline(__always)
func gemmOnThisThread(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      c: UnsafeMutablePointer<Float>, ldc: Int, transposeA: Bool = false, transposeB: Bool = false,
                      alpha: Float = 1, beta: Float) {
    if m == 0 || n == 0 { return }
    if m == 1 {  // cᵀ = op(B)ᵀ·aᵀ, with a the row of op(A): contiguous, or a column of A `lda` apart
        cblas_sgemv(CblasRowMajor, transposeB ? CblasNoTrans : CblasTrans, Int32(transposeB ? n : k), Int32(transposeB ? k : n),
                    alpha, b, Int32(ldb), a, Int32(transposeA ? lda : 1), beta, c, 1)
        return
    }
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// `C ← op(A)·B`, or `C ← C + op(A)·B` when `accumulate`, plus `rowBias[i]` in each row `i` when given, on the
/// calling thread, with neither operand packed: `op(A)` `m × k` (`A`, or with `transposeA` `Aᵀ`, rows `lda` apart),
/// `B` `k × n` row-major (rows `ldb` apart), `C` `m × n` (rows `ldc` apart; not read unless `accumulate`). Where the CPU has AVX-512, Backprop's own kernel (``bp_gemm``:
/// each row of `B` is loaded as vectors, each element of `A` broadcast), which at a convolution's per-sample sizes
/// saves `sgemm`'s packing of both operands at every call; elsewhere `sgemm`. `ownKernel` chooses; tests set it to
/// check both. Allocates nothing.
@inline(__always)
func unpackedGEMMOnThisThread(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
                              b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                              rowBias: UnsafePointer<Float>? = nil, ownKernel: Bool = PackedOperand.unpackedKernelAvailable) {
    if m == 0 || n == 0 { return }
    var accumulate = accumulate
    // The bias written (or added) first and the product added to it: a kernel that adds the bias to its sums and
    // stores C without reading it was 5 % slower in a CNN's epoch (A/B), each store missing the cache; writing the
    // rows first brings them in.
    if let rowBias {
        for i in 0..<m {
            let row = c + i * ldc
            if accumulate { for j in 0..<n { row[j] += rowBias[i] } } else { row.update(repeating: rowBias[i], count: n) }
        }
        accumulate = true
    }
    if ownKernel && k > 0 {
        bp_gemm(m, n, k, a, lda, transposeA ? 1 : 0, b, ldb, c, ldc, accumulate ? 1 : 0)
    } else if k > 0 {
        gemmOnThisThread(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, transposeA: transposeA,
                         beta: accumulate ? 1 : 0)
    } else if !accumulate {  // an empty sum
        for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
    }
}

/// `op(B)` (`k × n`) prepared once for many products `A·op(B)` with the same `B`: a recurrent layer's `W_hh`, which
/// every time step multiplies, or a frozen network's dense weights. Where the CPU has AVX-512 it is packed into panels
/// of 32 columns (``bp_pack_panels``) for Backprop's own kernel (``bp_gemm_panels``), which packs nothing at each call;
/// `sgemm` packs both operands at every call, a tenth of the time of a recurrent step's product (`N = 64`, `H = 128`).
/// Where it has AVX2 and FMA, the same panels feed ``bp_gemm_panels_avx2`` when the caller asks for panels (a frozen
/// network does); a recurrent layer does not there, since its epoch ran 1.10× as long with them as with `sgemm`
/// (LSTM 128 on Fashion-MNIST rows, 1 thread, farm-bench A/B of 3 pairs, Zen 3). Elsewhere it is `op(B)` itself,
/// row-major (a transposed `B` copied once), for `sgemm`.
struct PackedOperand {
    /// The panels, or `op(B)` row-major, `leadingDimension` apart.
    let values: UnsafePointer<Float>
    let k: Int, n: Int, leadingDimension: Int
    /// Whether `values` are panels for ``bp_gemm_panels``.
    let panels: Bool

    /// Whether this CPU runs ``bp_gemm_panels`` and ``bp_gemm`` (AVX-512F): the default for a recurrent layer's
    /// `W_hh`, and the kernel that reads `B` in place.
    static let unpackedKernelAvailable = bp_has_avx512f() != 0
    /// Whether this CPU runs ``bp_gemm_panels_avx2`` (AVX2 and FMA).
    static let avx2PanelKernelAvailable = bp_has_avx2_fma() != 0
    /// Whether this CPU runs a panel kernel: ``bp_gemm_panels`` or ``bp_gemm_panels_avx2``.
    static let panelKernelAvailable = unpackedKernelAvailable || avx2PanelKernelAvailable

    /// The floats of storage that packing a `k × n` `op(B)` may use, in either layout.
    static func storageCount(k: Int, n: Int) -> Int {
        k * ((n + Int(BP_PANEL_WIDTH) - 1) / Int(BP_PANEL_WIDTH) * Int(BP_PANEL_WIDTH))
    }

    /// Prepares `op(B)`: `B` row-major with rows `ldb` apart, `k × n`, or with `transposed` its transpose (`B` is
    /// `n × k`). Writes into `storage` (``storageCount(k:n:)`` floats) unless `B` can be used as it is (no panels, not
    /// transposed). `panels` chooses the layout; tests set it to check both.
    init(_ b: UnsafePointer<Float>, ldb: Int, k: Int, n: Int, transposed: Bool, storage: UnsafeMutablePointer<Float>,
         panels: Bool = PackedOperand.unpackedKernelAvailable) {
        precondition(k > 0 && n > 0, "PackedOperand: op(B) must not be empty, got \(k)×\(n)")
        precondition(!panels || Self.panelKernelAvailable, "PackedOperand: this CPU has neither AVX-512 nor AVX2 for the panel kernel")
        (self.k, self.n, self.panels) = (k, n, panels)
        if panels {
            bp_pack_panels(storage, b, k, n, ldb, transposed ? 1 : 0)
            (values, leadingDimension) = (UnsafePointer(storage), n)
        } else if transposed {  // op(B) = Bᵀ, copied row-major once: sgemm packs a row-major B faster than a transposed one
            cblas_somatcopy(CblasRowMajor, CblasTrans, Int32(n), Int32(k), 1, b, Int32(ldb), storage, Int32(n))
            (values, leadingDimension) = (UnsafePointer(storage), n)
        } else {
            (values, leadingDimension) = (b, ldb)
        }
    }

    /// `C ← A·op(B)`, or `C ← C + A·op(B)` when `accumulate`, on the calling thread: `A` is `m × k` (rows `lda`
    /// apart), `C` `m × n` (rows `ldc` apart; not read unless `accumulate`). Allocates nothing.
    @inline(__always)
    func multiply(m: Int, a: UnsafePointer<Float>, lda: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        if m == 0 { return }
        if panels {
            if Self.unpackedKernelAvailable {
                bp_gemm_panels(m, n, k, a, lda, values, c, ldc, accumulate ? 1 : 0)
            } else {
                bp_gemm_panels_avx2(m, n, k, a, lda, values, c, ldc, accumulate ? 1 : 0)
            }
        } else {
            gemmOnThisThread(m: m, n: n, k: k, a: a, lda: lda, b: values, ldb: leadingDimension, c: c, ldc: ldc,
                             beta: accumulate ? 1 : 0)
        }
    }
}

/// One `sgemm` call's arguments, for the threads that each compute a block of rows or columns of C.
private struct GEMMPart {
    var m: Int, n: Int, k: Int
    var a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>
    var lda: Int, ldb: Int, ldc: Int
    var transposeA: Bool, transposeB: Bool
    var alpha: Float, beta: Float
    var byRows: Bool
    /// Whether the parts run ``bp_gemm`` instead of `sgemm`.
    var ownKernel: Bool
}

/// The definition of ``gemm(_:_:_:transposeA:transposeB:alpha:beta:)`` as a triple loop, accumulating in
/// `Double`: `C[i,j] ← α·Σₚ op(A)[i,p]·op(B)[p,j] + β·C[i,j]`. Slow; the reference that tests compare against.
func referenceGEMM(
    _ c: Matrix, _ a: Matrix, _ b: Matrix,
    transposeA: Bool = false, transposeB: Bool = false,
    alpha: Float = 1, beta: Float = 0
) {
    let (m, k, n) = checkedGEMMShape(c, a, b, transposeA: transposeA, transposeB: transposeB)
    for i in 0..<m {
        for j in 0..<n {
            var sum = 0.0
            for p in 0..<k {
                let aValue = transposeA ? a[p, i] : a[i, p]
                let bValue = transposeB ? b[j, p] : b[p, j]
                sum += Double(aValue) * Double(bValue)
            }
            let previous = beta == 0 ? 0 : Double(beta) * Double(c[i, j])  // β = 0 ignores NaN in C, as BLAS does
            c[i, j] = Float(Double(alpha) * sum + previous)
        }
    }
}

/// Checks that `C (m×n) = op(A) (m×k) · op(B) (k×n)` and returns `(m, k, n)`.
private func checkedGEMMShape(
    _ c: Matrix, _ a: Matrix, _ b: Matrix, transposeA: Bool, transposeB: Bool
) -> (m: Int, k: Int, n: Int) {
    let (m, k) = transposeA ? (a.columns, a.rows) : (a.rows, a.columns)
    let (kB, n) = transposeB ? (b.columns, b.rows) : (b.rows, b.columns)
    precondition(k == kB && c.rows == m && c.columns == n, """
        gemm: cannot multiply A \(a.shapeDescription)\(transposeA ? "ᵀ" : "") by \
        B \(b.shapeDescription)\(transposeB ? "ᵀ" : "") into C \(c.shapeDescription)
        """)
    precondition(max(m, n, k) <= Int(Int32.max), "gemm: dimensions \(m), \(n), \(k) exceed the BLAS integer range")
    return (m, k, n)
}

/// The BLAS library in use. (OpenBLAS itself always runs on one thread: Backprop's own worker team, sized by
/// ``Parallel/setThreadCount(_:)``, splits each product between threads.)
public enum BLAS {
    /// Sets the number of threads Backprop's worker team uses: ``Parallel/setThreadCount(_:)``, which it calls.
    @available(*, deprecated, renamed: "Parallel.setThreadCount", message: "it sets Backprop's worker team, not OpenBLAS's threads")
    public static func setThreadCount(_ count: Int) {
        precondition(count >= 1, "BLAS.setThreadCount: need at least 1 thread, got \(count)")
        Parallel.setThreadCount(count)
    }

    /// The number of threads each call uses (``Parallel/threadCount``).
    @available(*, deprecated, renamed: "Parallel.threadCount")
    public static var threadCount: Int { Parallel.threadCount }

    /// OpenBLAS's build description, e.g. `"OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64"`.
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// The CPU kernel OpenBLAS chose, e.g. `"Cooperlake"`.
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// OpenBLAS's thread count before Backprop first set it (from `OPENBLAS_NUM_THREADS` or the processor count).
    static let openBLASDefaultThreadCount = max(1, Int(openblas_get_num_threads()))

    /// ``Parallel`` splits the work between threads; each `sgemm` call runs on one.
    static func keepOpenBLASSingleThreaded() {
        _ = openBLASDefaultThreadCount
        openblas_set_num_threads(1)
    }
}
