// A matrix product for a right-hand operand used many times: a recurrent layer's W_hh, which every time step
// multiplies. sgemm packs both operands into its own layout at every call; at a step's size (64 × 128 by 128 × 512)
// that packing is a tenth of the time. Here op(B) is packed once, into panels of 32 columns, and A is read in place
// (each of its elements is broadcast to 32 columns, so it needs no packing). The kernel is AVX-512 only; on other
// CPUs `bp_panel_kernel_available` is 0 and the caller uses sgemm instead (`PackedOperand` in GEMM.swift).
#include "CSIMD.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define BP_AVX512 __attribute__((target("avx512f")))
#endif

int bp_panel_kernel_available(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

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
// Rows `R` of C, one panel's 32 columns (the masks say which exist): 2·R accumulators of 16 floats; per step of the
// sum two loads of the panel's row and R broadcasts of A's column, 2·R fused multiply-adds.
#define BP_PANEL_TILE(R)                                                                                              \
    static inline __attribute__((always_inline)) BP_AVX512 void bp_panel_tile_##R(                                    \
        float *c, long ldc, const float *a, long lda, const float *panel, long k, int accumulate, __mmask16 low,      \
        __mmask16 high) {                                                                                             \
        __m512 left[R], right[R];                                                                                     \
        for (int r = 0; r < R; r++) left[r] = right[r] = _mm512_setzero_ps();                                        \
        for (long p = 0; p < k; p++) {                                                                                \
            __m512 b0 = _mm512_loadu_ps(panel + p * BP_PANEL_WIDTH), b1 = _mm512_loadu_ps(panel + p * BP_PANEL_WIDTH + 16); \
            for (int r = 0; r < R; r++) {                                                                             \
                __m512 x = _mm512_set1_ps(a[r * lda + p]);                                                            \
                left[r] = _mm512_fmadd_ps(x, b0, left[r]);                                                            \
                right[r] = _mm512_fmadd_ps(x, b1, right[r]);                                                          \
            }                                                                                                         \
        }                                                                                                             \
        for (int r = 0; r < R; r++) {                                                                                 \
            float *row = c + r * ldc;                                                                                 \
            if (accumulate) {                                                                                         \
                left[r] = _mm512_add_ps(left[r], _mm512_maskz_loadu_ps(low, row));                                   \
                right[r] = _mm512_add_ps(right[r], _mm512_maskz_loadu_ps(high, row + 16));                            \
            }                                                                                                         \
            _mm512_mask_storeu_ps(row, low, left[r]);                                                                 \
            _mm512_mask_storeu_ps(row + 16, high, right[r]);                                                          \
        }                                                                                                             \
    }
BP_PANEL_TILE(8)
BP_PANEL_TILE(4)
BP_PANEL_TILE(2)
BP_PANEL_TILE(1)

BP_AVX512
static void bp_gemm_panels_avx512(long m, long n, long k, const float *a, long lda, const float *packed, float *c,
                                  long ldc, int accumulate) {
    for (long first = 0; first < n; first += BP_PANEL_WIDTH) {
        long width = n - first < BP_PANEL_WIDTH ? n - first : BP_PANEL_WIDTH;
        __mmask16 low = width >= 16 ? 0xFFFF : (__mmask16)((1u << width) - 1);
        __mmask16 high = width >= 32 ? 0xFFFF : width <= 16 ? 0 : (__mmask16)((1u << (width - 16)) - 1);
        const float *panel = packed + first * k;
        float *block = c + first;
        long i = 0;
        for (; i + 8 <= m; i += 8) bp_panel_tile_8(block + i * ldc, ldc, a + i * lda, lda, panel, k, accumulate, low, high);
        if (i + 4 <= m) { bp_panel_tile_4(block + i * ldc, ldc, a + i * lda, lda, panel, k, accumulate, low, high); i += 4; }
        if (i + 2 <= m) { bp_panel_tile_2(block + i * ldc, ldc, a + i * lda, lda, panel, k, accumulate, low, high); i += 2; }
        if (i < m) bp_panel_tile_1(block + i * ldc, ldc, a + i * lda, lda, panel, k, accumulate, low, high);
    }
}
#endif

void bp_gemm_panels(long m, long n, long k, const float *a, long lda, const float *packed, float *c, long ldc,
                    int accumulate) {
#if defined(__x86_64__)
    bp_gemm_panels_avx512(m, n, k, a, lda, packed, c, ldc, accumulate);
#else
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed; (void)c; (void)ldc; (void)accumulate;
    __builtin_trap();  // never called: bp_panel_kernel_available() is 0
#endif
}
