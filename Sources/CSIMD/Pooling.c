// Max pooling over 2 × 2 windows with stride 2 (the common case) in AVX-512, 16 windows at a time. Compiled loops
// cannot vectorise it at a small CNN's widths: a row pair of 28 or 14 columns has only 14 or 7 windows, fewer than a
// vector's 16 lanes, so they ran one window at a time. Here each row pair is loaded with masks, its even and odd
// columns separated by permutes, and the windows of a whole row pair compared at once. The results are exactly those
// of the scalar loops in Kernels.c (the same comparisons in the same order), which remain for other CPUs and windows.
#include "CSIMD.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define BP_AVX512 __attribute__((target("avx512f")))

/// The mask of the first `count` lanes (0 ≤ count ≤ 16).
static inline BP_AVX512 __mmask16 bp_lanes(long count) {
    return count >= 16 ? (__mmask16)0xFFFF : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1);
}

BP_AVX512
void bp_max_pool_2x2(float *restrict y, float *restrict indices, const float *restrict x, long planes, long h, long w,
                     long outH, long outW) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));  // `even` is also each window's column offset
    for (long p = 0; p < planes; p++) {
        for (long oy = 0; oy < outH; oy++) {
            const float *top = x + (p * h + 2 * oy) * w, *bottom = top + w;
            float *out = y + (p * outH + oy) * outW, *where = indices + (p * outH + oy) * outW;
            long base = p * h * w + 2 * oy * w;
            for (long ox = 0; ox < outW; ox += 16) {
                long windows = outW - ox < 16 ? outW - ox : 16;
                __mmask16 low = bp_lanes(2 * windows), high = bp_lanes(2 * windows - 16), lanes = bp_lanes(windows);
                const float *t = top + 2 * ox, *b = bottom + 2 * ox;
                __m512 t0 = _mm512_maskz_loadu_ps(low, t), t1 = _mm512_maskz_loadu_ps(high, t + 16);
                __m512 b0 = _mm512_maskz_loadu_ps(low, b), b1 = _mm512_maskz_loadu_ps(high, b + 16);
                __m512 best = _mm512_permutex2var_ps(t0, even, t1);  // top left: the first candidate
                __m512i at = _mm512_setzero_si512();
                // As the scalar loop: a later candidate wins when it is larger or NaN.
                __m512 next[3] = {_mm512_permutex2var_ps(t0, odd, t1), _mm512_permutex2var_ps(b0, even, b1),
                                  _mm512_permutex2var_ps(b0, odd, b1)};
                const long offset[3] = {1, w, w + 1};
                for (int c = 0; c < 3; c++) {
                    __mmask16 wins = _mm512_cmp_ps_mask(next[c], best, _CMP_GT_OQ) |
                                     _mm512_cmp_ps_mask(next[c], next[c], _CMP_UNORD_Q);
                    best = _mm512_mask_mov_ps(best, wins, next[c]);
                    at = _mm512_mask_mov_epi32(at, wins, _mm512_set1_epi32((int)offset[c]));
                }
                __m512i position = _mm512_add_epi32(_mm512_add_epi32(_mm512_set1_epi32((int)(base + 2 * ox)), even), at);
                _mm512_mask_storeu_ps(out + ox, lanes, best);
                _mm512_mask_storeu_ps(where + ox, lanes, _mm512_cvtepi32_ps(position));
            }
        }
    }
}

BP_AVX512
void bp_max_pool_2x2_backward(float *restrict dx, const float *restrict dy, const float *restrict indices, long planes,
                              long h, long w, long outH, long outW) {
    // Lanes 0..15 of a row pair's first 32 columns: window i's left and right gradients at columns 2i and 2i + 1.
    const __m512i lowHalf = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i highHalf = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512i twice = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (long p = 0; p < planes; p++) {
        float *plane = dx + p * h * w;
        for (long oy = 0; oy < outH; oy++) {
            float *top = plane + 2 * oy * w, *bottom = top + w;
            const float *g = dy + (p * outH + oy) * outW, *where = indices + (p * outH + oy) * outW;
            long base = p * h * w + 2 * oy * w;
            for (long ox = 0; ox < outW; ox += 16) {
                long windows = outW - ox < 16 ? outW - ox : 16;
                __mmask16 lanes = bp_lanes(windows), low = bp_lanes(2 * windows), high = bp_lanes(2 * windows - 16);
                __m512 gradient = _mm512_maskz_loadu_ps(lanes, g + ox);
                __m512i at = _mm512_cvtps_epi32(_mm512_maskz_loadu_ps(lanes, where + ox));
                __m512i corner = _mm512_add_epi32(_mm512_set1_epi32((int)(base + 2 * ox)), twice);
                __m512 quarter[4];
                const long offset[4] = {0, 1, w, w + 1};
                for (int c = 0; c < 4; c++) {
                    __mmask16 here = _mm512_cmpeq_epi32_mask(at, _mm512_add_epi32(corner, _mm512_set1_epi32((int)offset[c])));
                    quarter[c] = _mm512_maskz_mov_ps(here & lanes, gradient);
                }
                _mm512_mask_storeu_ps(top + 2 * ox, low, _mm512_permutex2var_ps(quarter[0], lowHalf, quarter[1]));
                _mm512_mask_storeu_ps(top + 2 * ox + 16, high, _mm512_permutex2var_ps(quarter[0], highHalf, quarter[1]));
                _mm512_mask_storeu_ps(bottom + 2 * ox, low, _mm512_permutex2var_ps(quarter[2], lowHalf, quarter[3]));
                _mm512_mask_storeu_ps(bottom + 2 * ox + 16, high, _mm512_permutex2var_ps(quarter[2], highHalf, quarter[3]));
            }
            for (long x = 2 * outW; x < w; x++) top[x] = bottom[x] = 0;  // an odd width's last column
        }
        for (long e = 2 * outH * w; e < h * w; e++) plane[e] = 0;  // an odd height's last row
    }
}
#else
void bp_max_pool_2x2(float *y, float *indices, const float *x, long planes, long h, long w, long outH, long outW) {
    (void)y; (void)indices; (void)x; (void)planes; (void)h; (void)w; (void)outH; (void)outW;
    __builtin_trap();  // never called: bp_has_avx512f() is 0
}
void bp_max_pool_2x2_backward(float *dx, const float *dy, const float *indices, long planes, long h, long w, long outH,
                              long outW) {
    (void)dx; (void)dy; (void)indices; (void)planes; (void)h; (void)w; (void)outH; (void)outW;
    __builtin_trap();  // never called: bp_has_avx512f() is 0
}
#endif
