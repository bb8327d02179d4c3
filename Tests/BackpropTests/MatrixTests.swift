@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Testing

@Suite("Matrix and GEMM")
struct MatrixTests {
    /// (m, k, n): op(A) is m×k, op(B) is k×n.
    /// One row or one column of C (`sgemv`), 2–4 columns (one `sgemv` each when neither operand is transposed), then
    /// three large enough to be split between threads (at least 2 M multiply-adds): by columns of C, by rows, by rows
    /// with a remainder that is not a multiple of the 16-row tile.
    static let shapes = [(1, 1, 1), (1, 7, 3), (1, 4, 128), (1, 128, 2), (20, 128, 1), (20, 128, 2), (300, 4, 3), (37, 29, 53),
                         (64, 784, 128), (256, 64, 128), (200, 150, 70)]
    static let transposes = [(false, false), (true, false), (false, true), (true, true)]

    @Test("gemm matches the reference triple loop", arguments: shapes, transposes)
    func gemmMatchesReference(shape: (Int, Int, Int), transpose: (Bool, Bool)) {
        let (m, k, n) = shape
        let (ta, tb) = transpose
        let a = ta ? randomMatrix(k, m, seed: 1) : randomMatrix(m, k, seed: 1)
        let b = tb ? randomMatrix(n, k, seed: 2) : randomMatrix(k, n, seed: 2)
        for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (-2, 0.25)] {
            let initial = randomMatrix(m, n, seed: 3)
            let expected = initial.copy()
            referenceGEMM(expected, a, b, transposeA: ta, transposeB: tb, alpha: alpha, beta: beta)
            for threads in [1, 3] {
                let c = initial.copy()
                Parallel.withThreadCount(threads) {
                    gemm(c, a, b, transposeA: ta, transposeB: tb, alpha: alpha, beta: beta)
                }
                // Float32 sums of k products of values in [-1, 1]: error grows like √k·ulp.
                expectClose(c, expected, relative: 1e-5, absolute: 1e-5 * Double(k).squareRoot(),
                            "\(m)×\(k)·\(k)×\(n) transposeA \(ta) transposeB \(tb) α \(alpha) β \(beta), \(threads) threads")
            }
        }
    }

    /// (m, k, n) for a packed operand: every row tile of the panel kernel (8, 4, 2, 1 rows) and its remainders; panels
    /// of 32 columns, whole, partial, and under 16 columns (where the second half of the panel is masked off, or, in
    /// place, not loaded); a convolution-sized product (six panels and four columns).
    static let packedShapes = [(1, 1, 1), (3, 5, 7), (7, 3, 16), (8, 64, 32), (13, 17, 33), (15, 40, 50), (64, 36, 196),
                               (16, 300, 40), (9, 1, 65), (5, 600, 17)]

    @Test("a packed operand multiplies as the reference does, in both layouts, and writes only C's columns",
          arguments: packedShapes)
    func packedOperandMatchesReference(shape: (Int, Int, Int)) {
        let (m, k, n) = shape
        let a = randomMatrix(m, k + 3, seed: 11), bRowMajor = randomMatrix(k, n + 2, seed: 12)
        let bTransposed = randomMatrix(n, k + 1, seed: 13)
        for transposed in [false, true] {
            let b = transposed ? bTransposed : bRowMajor
            for layout in PackedOperand.panelKernelAvailable ? [true, false] : [false] {
                let storage = Matrix(rows: 1, columns: PackedOperand.storageCount(k: k, n: n))
                let packed = PackedOperand(b.pointer, ldb: b.columns, k: k, n: n, transposed: transposed,
                                           storage: storage.pointer, panels: layout)
                expectProduct(m: m, k: k, n: n, a: a, transposeA: false, b: b, transposeB: transposed,
                              "transposed B \(transposed) panels \(layout)") { c, ldc, accumulate in
                    packed.multiply(m: m, a: a.pointer, lda: a.columns, c: c, ldc: ldc, accumulate: accumulate)
                }
            }
        }
    }

    @Test("the unpacked product (own kernel and sgemm) is the reference's, op(A) either way, and writes only C's columns",
          arguments: packedShapes)
    func unpackedProductMatchesReference(shape: (Int, Int, Int)) {
        let (m, k, n) = shape
        let b = randomMatrix(k, n + 2, seed: 12)
        for transposeA in [false, true] {
            let a = transposeA ? randomMatrix(k, m + 2, seed: 15) : randomMatrix(m, k + 3, seed: 11)
            for own in PackedOperand.unpackedKernelAvailable ? [true, false] : [false] {
                for bias in [nil, randomMatrix(1, m, seed: 16)] {
                    expectProduct(m: m, k: k, n: n, a: a, transposeA: transposeA, b: b, transposeB: false, rowBias: bias,
                                  "transposed A \(transposeA) own kernel \(own) bias \(bias != nil)") { c, ldc, accumulate in
                        unpackedGEMMOnThisThread(m: m, n: n, k: k, a: a.pointer, lda: a.columns, transposeA: transposeA, b: b.pointer,
                                                 ldb: b.columns, c: c, ldc: ldc, accumulate: accumulate,
                                                 rowBias: bias.map { UnsafePointer($0.pointer) }, ownKernel: own)
                    }
                }
            }
        }
    }

    /// Checks `multiply(c, ldc, accumulate)`, which should compute `C (+)= op(A)·op(B)` (`m × k` by `k × n`, taken from
    /// the top left of the wider `a` and `b`, so that leading dimensions matter), against ``referenceGEMM``, with and
    /// without accumulating. C is a block of a matrix 5 columns wider, whose extra columns hold 7, which nothing may
    /// overwrite; without accumulating, C holds NaN, which must be ignored (β = 0). With `rowBias`, `rowBias[i]` is
    /// added to row `i`.
    private func expectProduct(m: Int, k: Int, n: Int, a: Matrix, transposeA: Bool, b: Matrix, transposeB: Bool,
                               rowBias: Matrix? = nil, _ label: String, multiply: (UnsafeMutablePointer<Float>, Int, Bool) -> Void) {
        let opA = Matrix(rows: m, columns: k), opB = Matrix(rows: k, columns: n)
        for i in 0..<m { for p in 0..<k { opA[i, p] = transposeA ? a[p, i] : a[i, p] } }
        for p in 0..<k { for j in 0..<n { opB[p, j] = transposeB ? b[j, p] : b[p, j] } }
        for accumulate in [false, true] {
            let c = Matrix(rows: m, columns: n + 5)
            c.fill(7)
            let initial = randomMatrix(m, n, seed: 14)
            for i in 0..<m { for j in 0..<n { c[i, j] = accumulate ? initial[i, j] : .nan } }
            let expected = initial.copy()
            referenceGEMM(expected, opA, opB, beta: accumulate ? 1 : 0)
            if let rowBias { for i in 0..<m { for j in 0..<n { expected[i, j] += rowBias[0, i] } } }
            multiply(c.pointer, c.columns, accumulate)
            let product = Matrix(rows: m, columns: n)
            for i in 0..<m { for j in 0..<n { product[i, j] = c[i, j] } }
            let what = "\(m)×\(k)·\(k)×\(n) \(label) accumulate \(accumulate)"
            expectClose(product, expected, relative: 1e-5, absolute: 1e-5 * Double(k).squareRoot(), "\(what)")
            #expect((0..<m).allSatisfy { i in (n..<(n + 5)).allSatisfy { c[i, $0] == 7 } }, "\(what): wrote past C's columns")
        }
    }

    @Test func referenceGEMMIsMatrixProduct() {
        let a = Matrix([[1, 2, 3], [4, 5, 6]])
        let b = Matrix([[7, 8], [9, 10], [11, 12]])
        let c = Matrix(rows: 2, columns: 2)
        referenceGEMM(c, a, b)
        #expect(c.rowArrays == [[58, 64], [139, 154]])
        gemm(c, a, b)
        #expect(c.rowArrays == [[58, 64], [139, 154]])
        let ct = Matrix(rows: 3, columns: 3)
        gemm(ct, a, a, transposeA: true)  // AᵀA
        #expect(ct.rowArrays == [[17, 22, 27], [22, 29, 36], [27, 36, 45]])
    }

    @Test func viewsShareStorage() {
        let storage = MatrixStorage(count: 10)
        let whole = Matrix(rows: 2, columns: 5, storage: storage, offset: 0)
        let tail = Matrix(rows: 2, columns: 2, storage: storage, offset: 6)
        tail[1, 1] = 42
        #expect(whole[1, 4] == 42)
        let rows = whole.rows(1..<2)
        #expect(rows.rows == 1 && rows.columns == 5 && rows[0, 4] == 42)
        rows.fill(1)
        #expect(whole.scalars == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
        let copy = whole.copy()
        copy[0, 0] = 7
        #expect(whole[0, 0] == 0)
        #expect(whole.reshaped(rows: 5, columns: 2)[4, 1] == 1)
        #expect(Matrix([[1, 2], [3, 4]]).transposed() == Matrix([[1, 3], [2, 4]]))
    }

    @Test func emptyInnerDimensionScalesC() {
        let c = Matrix([[1, 2]])
        gemm(c, Matrix(rows: 1, columns: 0), Matrix(rows: 0, columns: 2), beta: 0.5)
        #expect(c.scalars == [0.5, 1])
    }

    @Test func misuseStopsWithBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            gemm(Matrix(rows: 3, columns: 6), Matrix(rows: 3, columns: 4), Matrix(rows: 5, columns: 6))
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("A 3×4") && message.contains("B 5×6") && message.contains("C 3×6"), "\(message)")
    }
}
