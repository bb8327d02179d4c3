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

BP_CLONES
void bp_attention(float *restrict y, float *restrict probabilities, float *restrict keysT, const float *restrict qkv,
                  long steps, long firstQuery, long width, long heads, long firstPair, long lastPair) {
    long d = width / heads, stride = 3 * width, queries = steps - firstQuery;
    float scale = 1.0f / bp_sqrt((float)d);
    for (long pair = firstPair; pair < lastPair; pair++) {
        long b = pair / heads, h = pair % heads;
        const float *base = qkv + b * steps * stride;
        float *kt = keysT + pair * d * steps;
        for (long j = 0; j < steps; j++) {
            const float *k = base + j * stride + width + h * d;
            for (long e = 0; e < d; e++) kt[e * steps + j] = k[e];
        }
        for (long i = firstQuery; i < steps; i++) {
            const float *q = base + i * stride + h * d;
            float *p = probabilities + (pair * queries + i - firstQuery) * steps;
            long n = i + 1;
            for (long j = 0; j < n; j++) p[j] = 0;
            for (long e = 0; e < d; e++) {
                float qe = q[e] * scale;
                const float *ke = kt + e * steps;
                for (long j = 0; j < n; j++) p[j] += qe * ke[j];
            }
            float top = p[0];
            for (long j = 1; j < n; j++) top = p[j] > top ? p[j] : top;
            float total = 0;
            for (long j = 0; j < n; j++) { p[j] = bp_exp(p[j] - top); total += p[j]; }
            float inverse = 1.0f / total;
            for (long j = 0; j < n; j++) p[j] *= inverse;
            for (long j = n; j < steps; j++) p[j] = 0;
            float *out = y + (b * queries + i - firstQuery) * width + h * d;
            for (long e = 0; e < d; e++) out[e] = 0;
            for (long j = 0; j < n; j++) {
                const float *v = base + j * stride + 2 * width + h * d;
                float pj = p[j];
                for (long e = 0; e < d; e++) out[e] += pj * v[e];
            }
        }
    }
}

BP_CLONES
void bp_attention_backward(float *restrict dqkv, float *restrict valuesT, const float *restrict dy, const float *restrict qkv,
                           const float *restrict probabilities, long steps, long width, long heads, long firstPair,
                           long lastPair) {
    long d = width / heads, stride = 3 * width;
    float scale = 1.0f / bp_sqrt((float)d);
    float ds[steps];
    for (long pair = firstPair; pair < lastPair; pair++) {
        long b = pair / heads, h = pair % heads;
        const float *base = qkv + b * steps * stride;
        float *dBase = dqkv + b * steps * stride;
        float *vt = valuesT + pair * d * steps;
        for (long j = 0; j < steps; j++) {
            const float *v = base + j * stride + 2 * width + h * d;
            for (long e = 0; e < d; e++) vt[e * steps + j] = v[e];
            float *dRow = dBase + j * stride + h * d;
            for (long e = 0; e < d; e++) { dRow[e] = 0; dRow[width + e] = 0; dRow[2 * width + e] = 0; }
        }
        for (long i = 0; i < steps; i++) {
            const float *g = dy + (b * steps + i) * width + h * d, *q = base + i * stride + h * d;
            const float *p = probabilities + (pair * steps + i) * steps;
            long n = i + 1;
            for (long j = 0; j < n; j++) ds[j] = 0;
            for (long e = 0; e < d; e++) {
                float ge = g[e];
                const float *ve = vt + e * steps;
                for (long j = 0; j < n; j++) ds[j] += ge * ve[j];
            }
            float dot = 0;
            for (long j = 0; j < n; j++) dot += p[j] * ds[j];
            for (long j = 0; j < n; j++) ds[j] = p[j] * (ds[j] - dot) * scale;
            float *dq = dBase + i * stride + h * d;
            for (long j = 0; j < n; j++) {
                const float *k = base + j * stride + width + h * d;
                float *dk = dBase + j * stride + width + h * d, *dv = dBase + j * stride + 2 * width + h * d;
                float sj = ds[j], pj = p[j];
                for (long e = 0; e < d; e++) {
                    dq[e] += sj * k[e];
                    dk[e] += sj * q[e];
                    dv[e] += pj * g[e];
                }
            }
        }
    }
}
