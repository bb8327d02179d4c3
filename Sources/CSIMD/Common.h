// What the kernel files share: the per-ISA clone attribute and the inlined square root and exponential.
#ifndef BACKPROP_CSIMD_COMMON_H
#define BACKPROP_CSIMD_COMMON_H
#include <stdint.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BP_THREAD_SANITIZER 1
#endif
#endif

// Under ThreadSanitizer the clones are left out: glibc calls each clone's ifunc resolver while relocating the
// program, before the sanitizer's runtime is ready, and the instrumented resolver crashes there. The kernels are
// then compiled once for the baseline target (and instrumented like the rest).
#if defined(__x86_64__) && defined(__linux__) && !defined(BP_THREAD_SANITIZER)
#define BP_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BP_CLONES
#endif

/// The IEEE square root, without `sqrtf`'s errno side effect (which keeps loops from being vectorised).
static inline float bp_sqrt(float x) {
#if __has_builtin(__builtin_elementwise_sqrt)
    return __builtin_elementwise_sqrt(x);
#else
    return __builtin_sqrtf(x);
#endif
}

/// e^x: the same Cody–Waite reduction and Cephes polynomial as Swift's `exponential`, with x above 88 clamped to
/// 88 and 0 for x below −87 (where e^x < 1.7·10⁻³⁸ is at the edge of the normal range).
static inline float bp_exp(float x) {
    float original = x;
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float shifter = 12582912.0f;  // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits
    float t = x * 1.44269504f + shifter;
    float n = t - shifter;
    float r = x - n * 0.693359375f + n * 2.1219444e-4f;
    float p = 1.98756915e-4f;
    p = p * r + 1.39819995e-3f;
    p = p * r + 8.3334519e-3f;
    p = p * r + 4.16665796e-2f;
    p = p * r + 1.66666655e-1f;
    p = p * r + 5.00000012e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t bits;
    memcpy(&bits, &t, 4);
    int32_t scaleBits = ((bits - 0x4B400000) + 127) << 23;
    float scale;
    memcpy(&scale, &scaleBits, 4);
    return original < -87.0f ? 0.0f : p * scale;
}

/// The largest and the sum of a row, in 16 float lanes (vectorised without reassociating a single running value).
static inline __attribute__((always_inline)) float bp_row_max(const float *restrict x, long n) {
    float lanes[16];
    for (int j = 0; j < 16; j++) lanes[j] = -__builtin_inff();
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) lanes[j] = x[i + j] > lanes[j] ? x[i + j] : lanes[j];
    float m = -__builtin_inff();
    for (int j = 0; j < 16; j++) m = lanes[j] > m ? lanes[j] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static inline __attribute__((always_inline)) float bp_row_sum(const float *restrict x, long n) {
    float lanes[16] = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) lanes[j] += x[i + j];
    float sum = 0;
    for (int j = 0; j < 16; j++) sum += lanes[j];
    for (; i < n; i++) sum += x[i];
    return sum;
}


/// Σᵢ xᵢyᵢ, in 16 float lanes.
static inline __attribute__((always_inline)) float bp_row_dot(const float *restrict x, const float *restrict y, long n) {
    float lanes[16] = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) lanes[j] += x[i + j] * y[i + j];
    float sum = 0;
    for (int j = 0; j < 16; j++) sum += lanes[j];
    for (; i < n; i++) sum += x[i] * y[i];
    return sum;
}

#endif
