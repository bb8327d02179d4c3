// A matrix product for a right-hand operand used many times: a recurrent layer's W_hh, which every time step
// multiplies. sgemm packs both operands into its own layout at every call; at a step's size (64 × 128 by 128 × 512)
// that packing is a tenth of the time. Here op(B) is packed once, into panels of 32 columns, and A is read in place
// (each of its elements is broadcast to 32 columns, so it needs no packing). The same kernel also reads a row-major B
// in place (`bp_gemm`), for a convolution's per-sample products, which each use their patches once. That kernel is
// AVX-512 only; on other CPUs `bp_has_avx512f` is 0 and the callers use sgemm instead (`unpackedGEMMOnThisThread` in
// GEMM.swift). The packed product also has an AVX2 version (`bp_gemm_panels_avx2`: tiles of 6 rows × 16 columns,
// each panel read as two halves of 16, the sum blocked by 256 so that a block of a half-panel, 16 KB, stays in L1),
// for CPUs with AVX2 and FMA but no AVX-512 (a frozen network's dense layers, `FrozenNetwork`; the caller chooses).
#include "CSIMD.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define BP_AVX512 __attribute__((target("avx512f")))
#define BP_AVX2 __attribute__((target("avx2,fma")))
#endif

void bp_pack_panels(float *restrict packed, const float *restrict b, long k, long n, long ldb, int transposed) {
    for (long first = 0; first < n; first += BP_PANEL_WIDTH) {
        float *panel = packed + first * k;
        long width = n - first < BP_PANEL_WIDTH ? n - first : BP_PANEL_WIDTH;
        for (long p = 0; p < k; p++) {
            float *row = panel + p * BP_PANEL_WIDTH;
            if (transposed) {
                for (long j = 0; j < width; j++) row[j] = b[(first + j) * ldb + p];
            } else {
                for (long j = 0; j < width; j++) row[j] = b[p * ldb + first + j];
            }
            for (long j = width; j < BP_PANEL_WIDTH; j++) row[j] = 0;
        }
    }
}

#if defined(__x86_64__)
// Rows `R` of C and one block of 32 columns (W = 2 vectors of 16) or of up to 16 (W = 1); the masks say which of the
// columns exist. 2·R (or R) accumulators; per step p of the sum, W loads of B's row p and R broadcasts of A's
// elements (r, p), 2·R (or R) fused multiply-adds. A's element (r, p) is at a[r·rs + p·ps]; B's row p at b + p·bs.
#define BP_PANEL_TILE(R, W)                                                                                           \
    static inline __attribute__((always_inline)) BP_AVX512 void bp_panel_tile_##R##_##W(                              \
        float *c, long ldc, const float *a, long rs, long ps, const float *b, long bs, long k, int accumulate,         \
        __mmask16 low, __mmask16 high) {                                                                              \
        __m512 left[R], right[R];                                                                                     \
        for (int r = 0; r < R; r++) left[r] = right[r] = _mm512_setzero_ps();                                        \
        for (long p = 0; p < k; p++) {                                                                                \
            __m512 b0 = _mm512_maskz_loadu_ps(low, b + p * bs);                                                       \
            __m512 b1 = W == 2 ? _mm512_maskz_loadu_ps(high, b + p * bs + 16) : b0;                                   \
            for (int r = 0; r < R; r++) {                                                                             \
                __m512 x = _mm512_set1_ps(a[r * rs + p * ps]);                                                        \
                left[r] = _mm512_fmadd_ps(x, b0, left[r]);                                                            \
                if (W == 2) right[r] = _mm512_fmadd_ps(x, b1, right[r]);                                              \
            }                                                                                                         \
        }                                                                                                             \
        for (int r = 0; r < R; r++) {                                                                                 \
            float *row = c + r * ldc;                                                                                 \
            if (accumulate) left[r] = _mm512_add_ps(left[r], _mm512_maskz_loadu_ps(low, row));                        \
            _mm512_mask_storeu_ps(row, low, left[r]);                                                                 \
            if (W == 2) {                                                                                             \
                if (accumulate) right[r] = _mm512_add_ps(right[r], _mm512_maskz_loadu_ps(high, row + 16));            \
                _mm512_mask_storeu_ps(row + 16, high, right[r]);                                                      \
            }                                                                                                         \
        }                                                                                                             \
    }
BP_PANEL_TILE(8, 2)
BP_PANEL_TILE(4, 2)
BP_PANEL_TILE(2, 2)
BP_PANEL_TILE(1, 2)
BP_PANEL_TILE(8, 1)
BP_PANEL_TILE(4, 1)
BP_PANEL_TILE(2, 1)
BP_PANEL_TILE(1, 1)

// All rows of C for one block of columns: tiles of 8 rows, then 4, 2 and 1.
#define BP_PANEL_ROWS(W)                                                                                              \
    do {                                                                                                              \
        long i = 0;                                                                                                   \
        for (; i + 8 <= m; i += 8) bp_panel_tile_8_##W(block + i * ldc, ldc, a + i * rs, rs, ps, b, bs, k, accumulate, low, high); \
        if (i + 4 <= m) { bp_panel_tile_4_##W(block + i * ldc, ldc, a + i * rs, rs, ps, b, bs, k, accumulate, low, high); i += 4; } \
        if (i + 2 <= m) { bp_panel_tile_2_##W(block + i * ldc, ldc, a + i * rs, rs, ps, b, bs, k, accumulate, low, high); i += 2; } \
        if (i < m) bp_panel_tile_1_##W(block + i * ldc, ldc, a + i * rs, rs, ps, b, bs, k, accumulate, low, high);    \
    } while (0)

BP_AVX512
static void bp_gemm_blocks_avx512(long m, long n, long k, const float *a, long rs, long ps, const float *bFirst,
                                  long blockStride, long bs, float *c, long ldc, int accumulate) {
    for (long first = 0; first < n; first += BP_PANEL_WIDTH) {
        long width = n - first < BP_PANEL_WIDTH ? n - first : BP_PANEL_WIDTH;
        __mmask16 low = width >= 16 ? 0xFFFF : (__mmask16)((1u << width) - 1);
        __mmask16 high = width >= 32 ? 0xFFFF : width <= 16 ? 0 : (__mmask16)((1u << (width - 16)) - 1);
        const float *b = bFirst + first / BP_PANEL_WIDTH * blockStride;
        float *block = c + first;
        if (width > 16) BP_PANEL_ROWS(2);
        else BP_PANEL_ROWS(1);  // a last block of at most 16 columns: half the multiply-adds
    }
}
#endif

#if defined(__x86_64__)
// Rows `R` of C, 16 columns (the mask says which exist), rows of B `bs` apart: 2·R accumulators, per step p two loads
// of B's row p, R broadcasts of A's elements (r, p), 2·R fused multiply-adds. With `accumulate` the sums start from
// C, so a sum blocked over p adds its blocks in order.
#define BP_AVX2_TILE(R)                                                                                               \
    static inline __attribute__((always_inline)) BP_AVX2 void bp_avx2_tile_##R(                                      \
        float *c, long ldc, const float *a, long lda, const float *b, long bs, long k, int accumulate,                \
        __m256i low, __m256i high) {                                                                                  \
        __m256 left[R], right[R];                                                                                     \
        for (int r = 0; r < R; r++) {                                                                                 \
            left[r] = accumulate ? _mm256_maskload_ps(c + r * ldc, low) : _mm256_setzero_ps();                        \
            right[r] = accumulate ? _mm256_maskload_ps(c + r * ldc + 8, high) : _mm256_setzero_ps();                  \
        }                                                                                                             \
        for (long p = 0; p < k; p++) {                                                                                \
            __m256 b0 = _mm256_loadu_ps(b + p * bs), b1 = _mm256_loadu_ps(b + p * bs + 8);                            \
            for (int r = 0; r < R; r++) {                                                                             \
                __m256 x = _mm256_broadcast_ss(a + r * lda + p);                                                      \
                left[r] = _mm256_fmadd_ps(x, b0, left[r]);                                                            \
                right[r] = _mm256_fmadd_ps(x, b1, right[r]);                                                          \
            }                                                                                                         \
        }                                                                                                             \
        for (int r = 0; r < R; r++) {                                                                                 \
            _mm256_maskstore_ps(c + r * ldc, low, left[r]);                                                           \
            _mm256_maskstore_ps(c + r * ldc + 8, high, right[r]);                                                     \
        }                                                                                                             \
    }
BP_AVX2_TILE(6)
BP_AVX2_TILE(4)
BP_AVX2_TILE(2)
BP_AVX2_TILE(1)

/// The sum's block: 256 rows of a half-panel are 16 KB, which stay in L1 while every tile of rows reads them.
#define BP_AVX2_SUM_BLOCK 256

BP_AVX2
static void bp_gemm_panels_avx2_blocks(long m, long n, long k, const float *a, long lda, const float *packed, float *c,
                                       long ldc, int accumulate) {
    const int lanes[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    for (long first = 0; first < n; first += 16) {
        long width = n - first < 16 ? n - first : 16;
        // Lane j exists when j < width: its mask element is all ones (the sign bit is what maskload reads).
        __m256i count = _mm256_set1_epi32((int)width);
        __m256i low = _mm256_cmpgt_epi32(count, _mm256_loadu_si256((const __m256i *)lanes));
        __m256i high = _mm256_cmpgt_epi32(count, _mm256_loadu_si256((const __m256i *)(lanes + 8)));
        const float *half = packed + first / BP_PANEL_WIDTH * k * BP_PANEL_WIDTH + first % BP_PANEL_WIDTH;
        for (long p0 = 0; p0 < k; p0 += BP_AVX2_SUM_BLOCK) {
            long depth = k - p0 < BP_AVX2_SUM_BLOCK ? k - p0 : BP_AVX2_SUM_BLOCK;
            int add = accumulate || p0 > 0;
            const float *b = half + p0 * BP_PANEL_WIDTH;
            float *block = c + first;
            long i = 0;
            for (; i + 6 <= m; i += 6)
                bp_avx2_tile_6(block + i * ldc, ldc, a + i * lda + p0, lda, b, BP_PANEL_WIDTH, depth, add, low, high);
            if (i + 4 <= m) {
                bp_avx2_tile_4(block + i * ldc, ldc, a + i * lda + p0, lda, b, BP_PANEL_WIDTH, depth, add, low, high);
                i += 4;
            }
            if (i + 2 <= m) {
                bp_avx2_tile_2(block + i * ldc, ldc, a + i * lda + p0, lda, b, BP_PANEL_WIDTH, depth, add, low, high);
                i += 2;
            }
            if (i < m) bp_avx2_tile_1(block + i * ldc, ldc, a + i * lda + p0, lda, b, BP_PANEL_WIDTH, depth, add, low, high);
        }
    }
}
#endif

void bp_gemm(long m, long n, long k, const float *a, long lda, int transposeA, const float *b, long ldb, float *c,
             long ldc, int accumulate) {
#if defined(__x86_64__)
    bp_gemm_blocks_avx512(m, n, k, a, transposeA ? 1 : lda, transposeA ? lda : 1, b, BP_PANEL_WIDTH, ldb, c, ldc,
                          accumulate);
#else
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)transposeA; (void)b; (void)ldb; (void)c; (void)ldc;
    (void)accumulate;
    __builtin_trap();  // never called: bp_has_avx512f() is 0
#endif
}

void bp_gemm_panels(long m, long n, long k, const float *a, long lda, const float *packed, float *c, long ldc,
                    int accumulate) {
#if defined(__x86_64__)
    bp_gemm_blocks_avx512(m, n, k, a, lda, 1, packed, k * BP_PANEL_WIDTH, BP_PANEL_WIDTH, c, ldc, accumulate);
#else
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed; (void)c; (void)ldc; (void)accumulate;
    __builtin_trap();  // never called: bp_has_avx512f() is 0
#endif
}

void bp_gemm_panels_avx2(long m, long n, long k, const float *a, long lda, const float *packed, float *c, long ldc,
                         int accumulate) {
#if defined(__x86_64__)
    bp_gemm_panels_avx2_blocks(m, n, k, a, lda, packed, c, ldc, accumulate);
#else
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed; (void)c; (void)ldc; (void)accumulate;
    __builtin_trap();  // never called: bp_has_avx2_fma() is 0
#endif
}
