// The transformer's loops outside the matrix products: token and position embeddings, layer normalization, and
// causal multi-head attention fused per (sequence, head) pair, each compiled per ISA like Kernels.c. The formulas
// are stated in the Swift callers' doc comments (Layers/Transformer).
#include "CSIMD.h"
#include "Common.h"

BP_CLONES
void bp_embedding(float *restrict y, const float *restrict ids, const float *restrict table, const float *restrict positions,
                  long rows, long steps, long width) {
    for (long r = 0; r < rows * steps; r++) {
        const float *row = table + (long)ids[r] * width;
        float *out = y + r * width;
        if (positions) {
            const float *position = positions + (r % steps) * width;
            for (long j = 0; j < width; j++) out[j] = row[j] + position[j];
        } else {
            for (long j = 0; j < width; j++) out[j] = row[j];
        }
    }
}

BP_CLONES
void bp_embedding_backward(float *restrict dTable, float *restrict dPositions, const float *restrict ids,
                           const float *restrict dy, long rows, long steps, long width) {
    for (long r = 0; r < rows * steps; r++) {
        const float *g = dy + r * width;
        if (dTable) {
            float *row = dTable + (long)ids[r] * width;
            for (long j = 0; j < width; j++) row[j] += g[j];
        }
        if (dPositions) {
            float *position = dPositions + (r % steps) * width;
            for (long j = 0; j < width; j++) position[j] += g[j];
        }
    }
}

BP_CLONES
void bp_layer_norm(float *restrict y, float *restrict statistics, const float *restrict x, const float *restrict gamma,
                   const float *restrict beta, long rows, long width, float epsilon) {
    for (long r = 0; r < rows; r++) {
        const float *in = x + r * width;
        float *out = y + r * width;
        float sum = 0;
        for (long j = 0; j < width; j++) sum += in[j];
        float mean = sum / (float)width, squares = 0;
        for (long j = 0; j < width; j++) { float d = in[j] - mean; squares += d * d; }
        float rstd = 1.0f / bp_sqrt(squares / (float)width + epsilon);
        statistics[2 * r] = mean;
        statistics[2 * r + 1] = rstd;
        if (beta) {
            for (long j = 0; j < width; j++) out[j] = (in[j] - mean) * rstd * gamma[j] + beta[j];
        } else {
            for (long j = 0; j < width; j++) out[j] = (in[j] - mean) * rstd * gamma[j];
        }
    }
}

BP_CLONES
void bp_layer_norm_backward(float *restrict dx, float *restrict dGamma, float *restrict dBeta, const float *restrict dy,
                            const float *restrict x, const float *restrict statistics, const float *restrict gamma,
                            long rows, long width, int accumulate) {
    for (long r = 0; r < rows; r++) {
        const float *in = x + r * width, *g = dy + r * width;
        float mean = statistics[2 * r], rstd = statistics[2 * r + 1];
        float meanG = 0, meanGX = 0;
        for (long j = 0; j < width; j++) {
            float xhat = (in[j] - mean) * rstd, gj = g[j] * gamma[j];
            meanG += gj;
            meanGX += gj * xhat;
            dGamma[j] += g[j] * xhat;
        }
        if (dBeta) for (long j = 0; j < width; j++) dBeta[j] += g[j];
        meanG /= (float)width;
        meanGX /= (float)width;
        if (!dx) continue;
        float *out = dx + r * width;
        if (accumulate) {
            for (long j = 0; j < width; j++) out[j] += rstd * (g[j] * gamma[j] - meanG - (in[j] - mean) * rstd * meanGX);
        } else {
            for (long j = 0; j < width; j++) out[j] = rstd * (g[j] * gamma[j] - meanG - (in[j] - mean) * rstd * meanGX);
        }
    }
}

/// Features of a head accumulated at once: a block of 32 in two output rows, 8 AVX2 or 4 AVX-512 registers.
#define BP_HEAD_BLOCK 32

/// out0[0..<w] = Σⱼ a0[j·stride] · rows[j·rowStride + 0..<w] and out1 likewise with a1, for j in 0..<n: two output rows
/// of a product whose inner dimension is the sequence, sharing each loaded row. With w = 32 the accumulators are
/// fixed-size locals the compiler keeps in vector registers.
static inline __attribute__((always_inline)) void bp_weighted_rows2(float *restrict out0, float *restrict out1,
                                                                    const float *restrict a0, const float *restrict a1,
                                                                    long stride, const float *restrict rows, long rowStride,
                                                                    long n, long w) {
    if (w == BP_HEAD_BLOCK) {
        float acc0[BP_HEAD_BLOCK] = {0}, acc1[BP_HEAD_BLOCK] = {0};
        for (long j = 0; j < n; j++) {
            float x0 = a0[j * stride], x1 = a1[j * stride];
            const float *row = rows + j * rowStride;
            for (int e = 0; e < BP_HEAD_BLOCK; e++) {
                acc0[e] += x0 * row[e];
                acc1[e] += x1 * row[e];
            }
        }
        for (int e = 0; e < BP_HEAD_BLOCK; e++) { out0[e] = acc0[e]; out1[e] = acc1[e]; }
        return;
    }
    for (long e = 0; e < w; e++) { out0[e] = 0; out1[e] = 0; }
    for (long j = 0; j < n; j++) {
        float x0 = a0[j * stride], x1 = a1[j * stride];
        const float *row = rows + j * rowStride;
        for (long e = 0; e < w; e++) {
            out0[e] += x0 * row[e];
            out1[e] += x1 * row[e];
        }
    }
}

/// out[0..<w] += a · row[0..<w].
static inline __attribute__((always_inline)) void bp_add_scaled_row(float *restrict out, float a, const float *restrict row, long w) {
    for (long e = 0; e < w; e++) out[e] += a * row[e];
}

/// For the queries (or keys) `first..<last` of a head, two at a time, each output row r gets
/// Σⱼ weight(r, j) · rows[j] over a triangle of j: `lower` (j ≤ r: outputs of attention, dQ) reads weights along row r
/// of a steps-wide matrix; otherwise (j ≥ r: dK, dV) down column r. `out` rows are `outStride` apart.
static inline __attribute__((always_inline)) void bp_triangle_product(float *restrict outFirst, long outStride,
                                                                      const float *restrict weightsFirst, long steps, int lower,
                                                                      const float *restrict rows, long rowStride, long d,
                                                                      long first, long last) {
    // Row r of the output, and with `lower` of the weights, is row r − first of the buffers given.
    const float *weights = weightsFirst;
    long weightRow = lower ? first : 0;
    for (long e0 = 0; e0 < d; e0 += BP_HEAD_BLOCK) {
        long w = d - e0 < BP_HEAD_BLOCK ? d - e0 : BP_HEAD_BLOCK;
        const float *block = rows + e0;
        long r = first;
        for (; r + 2 <= last; r += 2) {
            float *o0 = outFirst + (r - first) * outStride + e0, *o1 = o0 + outStride;
            if (lower) {  // rows 0…r shared, row r + 1 for the second only
                const float *a0 = weights + (r - weightRow) * steps, *a1 = a0 + steps;
                bp_weighted_rows2(o0, o1, a0, a1, 1, block, rowStride, r + 1, w);
                bp_add_scaled_row(o1, a1[r + 1], block + (r + 1) * rowStride, w);
            } else {      // rows r + 1… shared, row r for the first only
                const float *a0 = weights + (r + 1) * steps + r, *a1 = weights + (r + 1) * steps + r + 1;
                bp_weighted_rows2(o0, o1, a0, a1, steps, block + (r + 1) * rowStride, rowStride, steps - r - 1, w);
                bp_add_scaled_row(o0, weights[r * steps + r], block + r * rowStride, w);
            }
        }
        if (r < last) {  // the last one alone (its partner's result discarded)
            float spare[BP_HEAD_BLOCK], *o0 = outFirst + (r - first) * outStride + e0;
            if (lower) {
                const float *a0 = weights + (r - weightRow) * steps;
                bp_weighted_rows2(o0, spare, a0, a0, 1, block, rowStride, r + 1, w);
            } else {
                const float *a0 = weights + r * steps + r;
                bp_weighted_rows2(o0, spare, a0, a0, steps, block + r * rowStride, rowStride, steps - r, w);
            }
        }
    }
}

/// p[0..<n] = Σₑ x[e] · t[e·steps + 0..<n] · scale: a row times a packed transposed head (four features per pass).
static inline __attribute__((always_inline)) void bp_row_times_packed(float *restrict p, const float *restrict x,
                                                                      const float *restrict t, long steps, long d, long n,
                                                                      float scale) {
    for (long j = 0; j < n; j++) p[j] = 0;
    long e = 0;
    for (; e + 4 <= d; e += 4) {
        float x0 = x[e] * scale, x1 = x[e + 1] * scale, x2 = x[e + 2] * scale, x3 = x[e + 3] * scale;
        const float *t0 = t + e * steps, *t1 = t0 + steps, *t2 = t1 + steps, *t3 = t2 + steps;
        for (long j = 0; j < n; j++) p[j] += x0 * t0[j] + x1 * t1[j] + x2 * t2[j] + x3 * t3[j];
    }
    for (; e < d; e++) {
        float xe = x[e] * scale;
        const float *te = t + e * steps;
        for (long j = 0; j < n; j++) p[j] += xe * te[j];
    }
}

/// One head's features (d, from column `offset` of rows `stride` apart) packed transposed: t[e·steps + j].
static inline __attribute__((always_inline)) void bp_pack_transposed(float *restrict t, const float *restrict rows,
                                                                     long stride, long steps, long d) {
    // Eight rows at a time, each feature's eight values stored together (the stores are the costly side).
    long j = 0;
    for (; j + 8 <= steps; j += 8) {
        const float *r0 = rows + j * stride;
        for (long e = 0; e < d; e++) {
            float *out = t + e * steps + j;
            for (int k = 0; k < 8; k++) out[k] = r0[k * stride + e];
        }
    }
    for (; j < steps; j++) {
        const float *row = rows + j * stride;
        for (long e = 0; e < d; e++) t[e * steps + j] = row[e];
    }
}

/// Four rows of scores against a packed transposed head: p[r][0..<n] = scale · Σₑ q_r[e] · t[e·steps + 0..<n] for the
/// rows r = 0…3 of q (qStride apart) into p (pStride apart). 16 columns at a time in 8 AVX2 (4 AVX-512) registers,
/// each loaded row of t shared by the four. The tail (n mod 16 columns) stays blocked too: computed row by row
/// instead, the large GPT's step took about 5 % longer (4.77/4.86 s against 4.57/4.54, 1 thread).
static inline __attribute__((always_inline)) void bp_rows4_times_packed(float *restrict p, long pStride,
                                                                        const float *restrict q, long qStride,
                                                                        const float *restrict t, long steps, long d,
                                                                        long n, float scale) {
    const float *q0 = q, *q1 = q + qStride, *q2 = q1 + qStride, *q3 = q2 + qStride;
    for (long j0 = 0; j0 < n; j0 += 16) {
        long w = n - j0 < 16 ? n - j0 : 16;
        float a0[16] = {0}, a1[16] = {0}, a2[16] = {0}, a3[16] = {0};
        const float *tj = t + j0;
        if (w == 16) {
            for (long e = 0; e < d; e++) {
                const float *row = tj + e * steps;
                float x0 = q0[e], x1 = q1[e], x2 = q2[e], x3 = q3[e];
                for (int k = 0; k < 16; k++) {
                    a0[k] += x0 * row[k]; a1[k] += x1 * row[k]; a2[k] += x2 * row[k]; a3[k] += x3 * row[k];
                }
            }
        } else {
            for (long e = 0; e < d; e++) {
                const float *row = tj + e * steps;
                float x0 = q0[e], x1 = q1[e], x2 = q2[e], x3 = q3[e];
                for (long k = 0; k < w; k++) {
                    a0[k] += x0 * row[k]; a1[k] += x1 * row[k]; a2[k] += x2 * row[k]; a3[k] += x3 * row[k];
                }
            }
        }
        for (long k = 0; k < w; k++) {
            p[j0 + k] = a0[k] * scale; p[pStride + j0 + k] = a1[k] * scale;
            p[2 * pStride + j0 + k] = a2[k] * scale; p[3 * pStride + j0 + k] = a3[k] * scale;
        }
    }
}

/// Four output rows of 16 features: out_r[0..<16] = Σ_{j<n} a_r[j] · rows[j·rowStride + 0..<16] for r = 0…3, the
/// weights a_r along rows aStride apart (8 AVX2 accumulators; each loaded row shared by the four).
static inline __attribute__((always_inline)) void bp_weighted_rows4x16(float *restrict out, long outStride,
                                                                       const float *restrict a, long aStride,
                                                                       const float *restrict rows, long rowStride, long n) {
    float c0[16] = {0}, c1[16] = {0}, c2[16] = {0}, c3[16] = {0};
    const float *a0 = a, *a1 = a + aStride, *a2 = a1 + aStride, *a3 = a2 + aStride;
    for (long j = 0; j < n; j++) {
        const float *row = rows + j * rowStride;
        float x0 = a0[j], x1 = a1[j], x2 = a2[j], x3 = a3[j];
        for (int k = 0; k < 16; k++) {
            c0[k] += x0 * row[k]; c1[k] += x1 * row[k]; c2[k] += x2 * row[k]; c3[k] += x3 * row[k];
        }
    }
    for (int k = 0; k < 16; k++) {
        out[k] = c0[k]; out[outStride + k] = c1[k]; out[2 * outStride + k] = c2[k]; out[3 * outStride + k] = c3[k];
    }
}

/// bp_triangle_product's lower case (out row r = Σ_{j ≤ r} w(r, j) · rows[j], rows first..<last of out and of the
/// weights given from their first row): four rows by 16 features at a time where the features allow (a block's
/// weights w(r, j) for r < j < its end are zero, as the callers' are), the rest two rows at a time.
static inline __attribute__((always_inline)) void bp_lower_triangle_product(float *restrict outFirst, long outStride,
                                                                            const float *restrict weightsFirst, long steps,
                                                                            const float *restrict rows, long rowStride,
                                                                            long d, long first, long last) {
    long r = first;
    if (d % 16 == 0)
        for (; r + 4 <= last; r += 4)
            for (long e0 = 0; e0 < d; e0 += 16)
                bp_weighted_rows4x16(outFirst + (r - first) * outStride + e0, outStride, weightsFirst + (r - first) * steps,
                                     steps, rows + e0, rowStride, r + 4);
    if (r < last)
        bp_triangle_product(outFirst + (r - first) * outStride, outStride, weightsFirst + (r - first) * steps, steps, 1, rows,
                            rowStride, d, r, last);
}

BP_CLONES
void bp_attention(float *restrict y, float *restrict probabilities, float *restrict keysT, const float *restrict qkv,
                  long steps, long firstQuery, long width, long heads, long firstPair, long lastPair) {
    long d = width / heads, stride = 3 * width, queries = steps - firstQuery;
    float scale = 1.0f / bp_sqrt((float)d);
    for (long pair = firstPair; pair < lastPair; pair++) {
        long b = pair / heads, h = pair % heads;
        const float *base = qkv + b * steps * stride;
        float *kt = keysT + pair * d * steps;
        bp_pack_transposed(kt, base + width + h * d, stride, steps, d);
        // Scores four queries at a time (each block's extra columns beyond its causal limit are zeroed below).
        long i = firstQuery;
        for (; i + 4 <= steps; i += 4)
            bp_rows4_times_packed(probabilities + (pair * queries + i - firstQuery) * steps, steps, base + i * stride + h * d,
                                  stride, kt, steps, d, i + 4, scale);
        for (; i < steps; i++)
            bp_row_times_packed(probabilities + (pair * queries + i - firstQuery) * steps, base + i * stride + h * d, kt,
                                steps, d, i + 1, scale);
        for (long i = firstQuery; i < steps; i++) {
            float *p = probabilities + (pair * queries + i - firstQuery) * steps;
            long n = i + 1;
            float top = bp_row_max(p, n);
            for (long j = 0; j < n; j++) p[j] = bp_exp(p[j] - top);
            float inverse = 1.0f / bp_row_sum(p, n);
            for (long j = 0; j < n; j++) p[j] *= inverse;
            for (long j = n; j < steps; j++) p[j] = 0;
        }
        // Yᵢ = Σ_{j ≤ i} Pᵢⱼ Vⱼ (the probabilities' rows start at firstQuery)
        bp_lower_triangle_product(y + b * queries * width + h * d, width, probabilities + pair * queries * steps, steps,
                                  base + 2 * width + h * d, stride, d, firstQuery, steps);
    }
}

BP_CLONES
void bp_attention_backward(float *restrict dqkv, float *restrict valuesT, float *restrict rowTemporary,
                           const float *restrict dy, const float *restrict qkv, float *restrict probabilities, long steps,
                           long width, long heads, long firstPair, long lastPair) {
    long d = width / heads, stride = 3 * width;
    float scale = 1.0f / bp_sqrt((float)d);
    for (long pair = firstPair; pair < lastPair; pair++) {
        long b = pair / heads, h = pair % heads;
        const float *base = qkv + b * steps * stride, *g = dy + b * steps * width + h * d;
        float *dBase = dqkv + b * steps * stride, *P = probabilities + pair * steps * steps;
        float *vt = valuesT + pair * d * steps, *dp = rowTemporary + pair * steps;
        // dVⱼ = Σ_{i ≥ j} Pᵢⱼ dYᵢ
        bp_triangle_product(dBase + 2 * width + h * d, stride, P, steps, 0, g, width, d, 0, steps);
        // dPᵢ = dYᵢ·Vᵀ, dSᵢ = Pᵢ ∘ (dPᵢ − dPᵢ·Pᵢ)/√D written over Pᵢ
        bp_pack_transposed(vt, base + 2 * width + h * d, stride, steps, d);
        for (long i = 0; i < steps; i++) {
            long n = i + 1;
            float *p = P + i * steps;
            bp_row_times_packed(dp, g + i * width, vt, steps, d, n, 1.0f);
            float dot = bp_row_dot(p, dp, n);
            for (long j = 0; j < n; j++) p[j] = p[j] * (dp[j] - dot) * scale;
        }
        // dQᵢ = Σ_{j ≤ i} dSᵢⱼ Kⱼ, dKⱼ = Σ_{i ≥ j} dSᵢⱼ Qᵢ
        bp_lower_triangle_product(dBase + h * d, stride, P, steps, base + width + h * d, stride, d, 0, steps);
        bp_triangle_product(dBase + width + h * d, stride, P, steps, 0, base + h * d, stride, d, 0, steps);
    }
}
