#ifndef BACKPROP_CSIMD_H
#define BACKPROP_CSIMD_H
// Packed instructions Swift cannot emit on the baseline target: Swift's squareRoot() on SIMD types is computed
// lane by lane, while SSE (part of every x86-64 CPU) and NEON (every ARM64 CPU) have a 4-lane square root.
// No stable API: for Backprop's own kernels.

typedef float bp_float4 __attribute__((ext_vector_type(4)));

#if defined(__SSE__)
#include <xmmintrin.h>
/// The IEEE square root of each lane (sqrtps).
static inline bp_float4 bp_sqrt4(bp_float4 x) { return (bp_float4)_mm_sqrt_ps((__m128)x); }
#elif defined(__ARM_NEON)
#include <arm_neon.h>
static inline bp_float4 bp_sqrt4(bp_float4 x) { return (bp_float4)vsqrtq_f32((float32x4_t)x); }
#else
static inline bp_float4 bp_sqrt4(bp_float4 x) {
    bp_float4 r = { __builtin_sqrtf(x[0]), __builtin_sqrtf(x[1]), __builtin_sqrtf(x[2]), __builtin_sqrtf(x[3]) };
    return r;
}
#endif

#endif
