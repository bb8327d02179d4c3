// The element-wise loops of a training step, in C so that each is compiled three times (AVX-512, AVX2 + FMA, and
// the baseline x86-64 / ARM64 target) and the best one for the CPU is picked when the library loads (GCC/Clang
// `target_clones`, resolved by glibc's ifunc). Swift code is compiled for the baseline target only, where these
// loops run two to four times slower. The formulas are stated in the Swift callers' doc comments.
#include "CSIMD.h"
#include <math.h>
#include <string.h>

#include "Common.h"

BP_CLONES
void bp_bytes_to_floats(float *restrict out, const uint8_t *restrict in, long count, float scale) {
    for (long i = 0; i < count; i++) out[i] = (float)in[i] * scale;
}

/// Σᵢ xᵢ (or Σᵢ xᵢ² with `squares`): in 32 float lanes over blocks of 4096 elements (128 additions per lane), the
/// blocks added in double, so that long sums (a convolution's bias gradient adds 50 000 positions per channel, a
/// gradient norm 100 000 parameters) stay within about 10⁻⁶ relative at vector speed. Inlined into each clone.
static inline __attribute__((always_inline)) double bp_blockwise_sum(const float *restrict x, long count, int squares) {
    double total = 0;
    for (long start = 0; start < count; start += 4096) {
        long end = start + 4096 < count ? start + 4096 : count;
        float lanes[32] = {0};
        long i = start;
        if (squares) {
            for (; i + 32 <= end; i += 32)
                for (int j = 0; j < 32; j++) lanes[j] += x[i + j] * x[i + j];
        } else {
            for (; i + 32 <= end; i += 32)
                for (int j = 0; j < 32; j++) lanes[j] += x[i + j];
        }
        double block = 0;
        for (int j = 0; j < 32; j++) block += lanes[j];
        for (; i < end; i++) block += squares ? (double)x[i] * x[i] : x[i];
        total += block;
    }
    return total;
}

BP_CLONES
double bp_sum_of_squares(const float *restrict x, long count) { return bp_blockwise_sum(x, count, 1); }

/// Σᵢ xᵢ, blockwise (see bp_blockwise_sum).
BP_CLONES
double bp_sum(const float *restrict x, long count) { return bp_blockwise_sum(x, count, 0); }

/// total[j] = Σᵢ x[i·columns + first + j] for j < width ≤ 256: for each block of 32 rows the column sums are formed in
/// float lanes (vectorised across columns), then added in double.
static inline void bp_column_block_sums(double *restrict total, const float *restrict x, long rows, long columns,
                                        long first, long width) {
    float block[256];
    for (long j = 0; j < width; j++) total[j] = 0;
    for (long start = 0; start < rows; start += 32) {
        long end = start + 32 < rows ? start + 32 : rows;
        for (long j = 0; j < width; j++) block[j] = 0;
        for (long i = start; i < end; i++) {
            const float *row = x + i * columns + first;
            for (long j = 0; j < width; j++) block[j] += row[j];
        }
        for (long j = 0; j < width; j++) total[j] += block[j];
    }
}

/// sums[j] += Σᵢ x[i·columns + j] for a rows × columns matrix: blockwise, so that a 60 000-row bias gradient is
/// within about 10⁻⁷ relative of the exact sum at the speed of a float loop. Columns are taken 256 at a time.
BP_CLONES
void bp_add_column_sums(float *restrict sums, const float *restrict x, long rows, long columns) {
    double total[256];
    for (long first = 0; first < columns; first += 256) {
        long width = columns - first < 256 ? columns - first : 256;
        bp_column_block_sums(total, x, rows, columns, first, width);
        for (long j = 0; j < width; j++) sums[first + j] += (float)total[j];
    }
}

/// bp_add_column_sums into double sums, for sums that go on growing over many calls (a recurrent layer's bias
/// gradient, step by step).
BP_CLONES
void bp_add_column_sums_double(double *restrict sums, const float *restrict x, long rows, long columns) {
    double total[256];
    for (long first = 0; first < columns; first += 256) {
        long width = columns - first < 256 ? columns - first : 256;
        bp_column_block_sums(total, x, rows, columns, first, width);
        for (long j = 0; j < width; j++) sums[first + j] += total[j];
    }
}

BP_CLONES
void bp_sigmoid(float *restrict y, const float *restrict z, long count) {
    for (long i = 0; i < count; i++) y[i] = 1.0f / (1.0f + bp_exp(-z[i]));
}

BP_CLONES
void bp_sgd(float *restrict theta, const float *restrict gradient, float *restrict buffer, long count,
            float learningRate, float momentum, float gradientWeight, float weightDecay, int nesterov, int first) {
    if (momentum == 0) {
        for (long i = 0; i < count; i++) theta[i] -= learningRate * (gradient[i] + weightDecay * theta[i]);
        return;
    }
    for (long i = 0; i < count; i++) {
        float g = gradient[i] + weightDecay * theta[i];
        float b = first ? g : momentum * buffer[i] + gradientWeight * g;
        buffer[i] = b;
        theta[i] -= learningRate * (nesterov ? g + momentum * b : b);
    }
}

BP_CLONES
void bp_adam(float *restrict theta, const float *restrict gradient, float *restrict m, float *restrict v,
             float *restrict vMax, long count, float decay, float stepSize, float inverseCorrection2Root,
             float beta1, float beta2, float epsilon, float weightDecay) {
    if (vMax) {
        for (long i = 0; i < count; i++) {
            float th = theta[i] * decay, g = gradient[i] + weightDecay * th;
            float first = beta1 * m[i] + (1 - beta1) * g, second = beta2 * v[i] + (1 - beta2) * g * g;
            float largest = vMax[i] > second ? vMax[i] : second;
            m[i] = first; v[i] = second; vMax[i] = largest;
            theta[i] = th - stepSize * first / (bp_sqrt(largest) * inverseCorrection2Root + epsilon);
        }
        return;
    }
    for (long i = 0; i < count; i++) {
        float th = theta[i] * decay, g = gradient[i] + weightDecay * th;
        float first = beta1 * m[i] + (1 - beta1) * g, second = beta2 * v[i] + (1 - beta2) * g * g;
        m[i] = first; v[i] = second;
        theta[i] = th - stepSize * first / (bp_sqrt(second) * inverseCorrection2Root + epsilon);
    }
}

BP_CLONES
static void bp_exp_in_place(float *restrict x, long count) {
    for (long i = 0; i < count; i++) x[i] = bp_exp(x[i]);
}

double bp_softmax_cross_entropy(const float *restrict z, const float *restrict t, float *restrict g, long rows,
                                long k, float scale) {
    // g ← z − (row max), then e^g for the whole matrix in one vectorised pass, then each row's sum and loss.
    for (long n = 0; n < rows; n++) {
        const float *zn = z + n * k;
        float m = zn[0];
        for (long j = 1; j < k; j++) m = zn[j] > m ? zn[j] : m;
        for (long j = 0; j < k; j++) g[n * k + j] = zn[j] - m;
    }
    bp_exp_in_place(g, rows * k);
    double total = 0;
    for (long n = 0; n < rows; n++) {
        const float *zn = z + n * k, *tn = t + n * k;
        float *gn = g + n * k;
        float m = zn[0];
        for (long j = 1; j < k; j++) m = zn[j] > m ? zn[j] : m;
        float sum = 0, targetSum = 0, targetDotShifted = 0;
        for (long j = 0; j < k; j++) {
            sum += gn[j];
            targetSum += tn[j];
            if (tn[j] != 0) targetDotShifted += tn[j] * (zn[j] - m);  // 0·(−∞) must not make NaN
        }
        total += (double)(targetSum * logf(sum) - targetDotShifted);
        float inverseSum = 1 / sum;
        for (long j = 0; j < k; j++) gn[j] = scale * (gn[j] * inverseSum * targetSum - tn[j]);
    }
    return total;
}

/// ln x for a positive normal x: x = m·2ᵉ with m in [√½, √2), and Cephes' degree-9 polynomial for ln m (about
/// 1 ulp), written with bit operations so that loops over it vectorise.
static inline float bp_log(float x) {
    int32_t bits;
    memcpy(&bits, &x, 4);
    int32_t e = ((bits >> 23) & 0xff) - 126;  // x = m·2ᵉ, m in [½, 1)
    int32_t mantissaBits = (bits & 0x007fffff) | 0x3f000000;
    float m;
    memcpy(&m, &mantissaBits, 4);
    int below = m < 0.707106781f;
    e -= below;
    float f = below ? m + m - 1.0f : m - 1.0f;  // m − 1 with m in [√½, √2)
    float z = f * f;
    float y = 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z;
    float fe = (float)e;
    y += -2.12194440e-4f * fe;
    y += -0.5f * z;
    return f + y + 0.693359375f * fe;
}

BP_CLONES
double bp_binary_cross_entropy(const float *restrict z, const float *restrict t, float *restrict g, long count,
                               float scale) {
    double total = 0;
    float losses[1024];
    for (long start = 0; start < count; start += 1024) {
        long n = count - start < 1024 ? count - start : 1024;
        const float *zb = z + start, *tb = t + start;
        for (long i = 0; i < n; i++) {
            float x = zb[i], u = bp_exp(-(x < 0 ? -x : x));  // e^(−|z|) in (0, 1]
            float w = 1.0f + u;
            float log1pu = w == 1.0f ? u : bp_log(w) * (u / (w - 1.0f));  // log1p(u), Goldberg's correction
            losses[i] = (x > 0 ? x : 0) - x * tb[i] + log1pu;
        }
        if (g) {
            for (long i = 0; i < n; i++) {
                float x = zb[i], u = bp_exp(-(x < 0 ? -x : x));
                float sigmoid = (x >= 0 ? 1.0f : u) / (1.0f + u);
                g[start + i] = scale * (sigmoid - tb[i]);
            }
        }
        float lanes[32] = {0};
        long i = 0;
        for (; i + 32 <= n; i += 32)
            for (int j = 0; j < 32; j++) lanes[j] += losses[i + j];
        double block = 0;
        for (int j = 0; j < 32; j++) block += lanes[j];
        for (; i < n; i++) block += losses[i];
        total += block;
    }
    return total;
}

/// tanh x: Cephes' polynomial x + x³P(x²) below |x| = 0.625, else 1 − 2/(e^{2|x|} + 1) with x's sign (about 2 ulp;
/// both branches written so that loops over it vectorise).
static inline float bp_tanh(float x) {
    float a = x < 0 ? -x : x, z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z
                   - 3.33332819422e-1f) * z * x + x;
    float large = 1.0f - 2.0f / (bp_exp(2.0f * a) + 1.0f);
    return a < 0.625f ? small : (x < 0 ? -large : large);
}

/// One LSTM step over `n` rows of `h` units: `gates` (n × 4h, the pre-activations of i, f, g, o, summed but for the
/// biases) plus `bias` (4h: b_ih + b_hh) becomes the activated gates; `c = f∘cPrevious + i∘g`, `cellTanh = tanh(c)`, `hidden = o∘cellTanh` (each n × h).
BP_CLONES
void bp_lstm_step(float *restrict gates, const float *restrict bias, const float *restrict cPrevious, float *restrict c,
                  float *restrict cellTanh, float *restrict hidden, long n, long h) {
    for (long s = 0; s < n; s++) {
        float *row = gates + s * 4 * h;
        for (long j = 0; j < 2 * h; j++) row[j] = 1.0f / (1.0f + bp_exp(-(row[j] + bias[j])));  // i, f
        for (long j = 2 * h; j < 3 * h; j++) row[j] = bp_tanh(row[j] + bias[j]);  // g
        for (long j = 3 * h; j < 4 * h; j++) row[j] = 1.0f / (1.0f + bp_exp(-(row[j] + bias[j])));  // o
        const float *cp = cPrevious + s * h;
        float *cs = c + s * h, *ts = cellTanh + s * h, *hs = hidden + s * h;
        for (long j = 0; j < h; j++) {
            float cell = row[h + j] * cp[j] + row[j] * row[2 * h + j];
            float t = bp_tanh(cell);
            cs[j] = cell;
            ts[j] = t;
            hs[j] = row[3 * h + j] * t;
        }
    }
}

/// The backward pass of one LSTM step over `n` rows of `h` units. In: `gates` (activated i f g o, n × 4h),
/// `cellTanh`, `cPrevious`, `dh` (∂L/∂hₜ) and `dc` (∂L/∂cₜ from step t+1), each n × h. Out: `dGates`, the
/// pre-activation gradients (n × 4h), and `dc` becomes ∂L/∂cₜ₋₁ = dC∘f, with dC = dc + dh∘o∘(1 − tanh²c).
BP_CLONES
void bp_lstm_step_backward(float *restrict dGates, float *restrict dc, const float *restrict dh,
                           const float *restrict gates, const float *restrict cellTanh,
                           const float *restrict cPrevious, long n, long h) {
    for (long s = 0; s < n; s++) {
        const float *row = gates + s * 4 * h, *ts = cellTanh + s * h, *cp = cPrevious + s * h, *dhs = dh + s * h;
        float *dRow = dGates + s * 4 * h, *dcs = dc + s * h;
        for (long j = 0; j < h; j++) {
            float i = row[j], f = row[h + j], g = row[2 * h + j], o = row[3 * h + j], t = ts[j], dH = dhs[j];
            float dC = dcs[j] + dH * o * (1.0f - t * t);
            dRow[j] = dC * g * i * (1.0f - i);
            dRow[h + j] = dC * cp[j] * f * (1.0f - f);
            dRow[2 * h + j] = dC * i * (1.0f - g * g);
            dRow[3 * h + j] = dH * t * o * (1.0f - o);
            dcs[j] = dC * f;
        }
    }
}

/// One GRU step over `n` rows of `h` units. In: `gates` (n × 3h) holding the input side xₜ·W_ihᵀ of r, z, n, to which
/// `biasIH` is added; `recurrent` (n × 3h) holding hₜ₋₁·W_hhᵀ + b_hh; `hPrevious` (n × h). Out: `gates` becomes the
/// activated r, z, n; `hiddenN` = the n part of `recurrent` (W_hn·hₜ₋₁ + b_hn, kept for the backward pass);
/// `hidden` = (1 − z)∘n + z∘hₜ₋₁; and `recurrent` is reset to b_hh (`biasHH`, 3h) in every row, for the next step's
/// GEMM to add its product to (a GEMM with β = 1 does not clear its output first).
/// The n gate and the new state of one GRU row, given its activated r and z: in its own function so that the gate
/// parts, which are parts of one row, are separate `restrict` arrays (the compiler vectorises the loop only then).
static inline void bp_gru_new_state(float *restrict nGate, const float *restrict r, const float *restrict z,
                                    const float *restrict biasN, float *restrict recN, const float *restrict biasHN,
                                    const float *restrict hp, float *restrict hn, float *restrict hs, long h) {
    for (long j = 0; j < h; j++) {
        float recurrentN = recN[j];
        float value = bp_tanh(nGate[j] + biasN[j] + r[j] * recurrentN);
        recN[j] = biasHN[j];
        nGate[j] = value;
        hn[j] = recurrentN;
        hs[j] = (1.0f - z[j]) * value + z[j] * hp[j];
    }
}

BP_CLONES
void bp_gru_step(float *restrict gates, const float *restrict biasIH, float *restrict recurrent,
                 const float *restrict biasHH, const float *restrict hPrevious, float *restrict hiddenN,
                 float *restrict hidden, long n, long h) {
    for (long s = 0; s < n; s++) {
        float *row = gates + s * 3 * h, *rec = recurrent + s * 3 * h;
        for (long j = 0; j < 2 * h; j++) {
            row[j] = 1.0f / (1.0f + bp_exp(-(row[j] + biasIH[j] + rec[j])));
            rec[j] = biasHH[j];
        }
        bp_gru_new_state(row + 2 * h, row, row + h, biasIH + 2 * h, rec + 2 * h, biasHH + 2 * h, hPrevious + s * h,
                         hiddenN + s * h, hidden + s * h, h);
    }
}

/// The backward pass of one GRU step. In: `gates` (activated r, z, n), `hiddenN`, `hPrevious`, and `dh` (∂L/∂hₜ).
/// Out: `dGates` (n × 4h): per row `[dR, dZ, dN∘r, dN]`, the pre-activation gradients of r and z (either side), of
/// the recurrent side's W_hn·h + b_hn, and of the input side's n — so `[dR, dZ, dN∘r]` is the recurrent side's and
/// `[dR, dZ, ·, dN]` the input side's, each value written once; and `dh` becomes the direct path dh∘z (the caller
/// adds `[dR, dZ, dN∘r]`·W_hh).
BP_CLONES
void bp_gru_step_backward(float *restrict dGates, float *restrict dh, const float *restrict gates,
                          const float *restrict hiddenN, const float *restrict hPrevious, long n, long h) {
    for (long s = 0; s < n; s++) {
        const float *row = gates + s * 3 * h, *hn = hiddenN + s * h, *hp = hPrevious + s * h;
        float *dRow = dGates + s * 4 * h, *dhs = dh + s * h;
        for (long j = 0; j < h; j++) {
            float r = row[j], z = row[h + j], nGate = row[2 * h + j], dH = dhs[j];
            float dN = dH * (1.0f - z) * (1.0f - nGate * nGate);
            float dZ = dH * (hp[j] - nGate) * z * (1.0f - z);
            float dR = dN * hn[j] * r * (1.0f - r);
            dRow[j] = dR; dRow[h + j] = dZ; dRow[2 * h + j] = dN * r; dRow[3 * h + j] = dN;
            dhs[j] = dH * z;
        }
    }
}

/// One Elman RNN step's activation, in place over `n` rows of `h` pre-activations (but for `bias`, h: b_ih + b_hh):
/// tanh (`relu` 0) or ReLU (`relu` 1).
BP_CLONES
void bp_rnn_step(float *restrict hidden, const float *restrict bias, long n, long h, int relu) {
    for (long s = 0; s < n; s++) {
        float *row = hidden + s * h;
        if (relu) {
            for (long j = 0; j < h; j++) { float z = row[j] + bias[j]; row[j] = z > 0 ? z : 0.0f; }
        } else {
            for (long j = 0; j < h; j++) row[j] = bp_tanh(row[j] + bias[j]);
        }
    }
}

/// δ = dh∘φ′ for an RNN step from its output hₜ = φ(·): tanh′ = 1 − h², ReLU′ = [h > 0].
BP_CLONES
void bp_rnn_step_backward(float *restrict delta, const float *restrict dh, const float *restrict hidden, long count,
                          int relu) {
    if (relu) {
        for (long i = 0; i < count; i++) delta[i] = hidden[i] > 0 ? dh[i] : 0.0f;
    } else {
        for (long i = 0; i < count; i++) delta[i] = dh[i] * (1.0f - hidden[i] * hidden[i]);
    }
}

BP_CLONES
void bp_sigmoid_backward(float *restrict dz, const float *restrict dy, const float *restrict y, long count) {
    for (long i = 0; i < count; i++) dz[i] = dy[i] * (y[i] * (1.0f - y[i]));
}

BP_CLONES
void bp_relu(float *restrict y, const float *restrict z, long count) {
    for (long i = 0; i < count; i++) y[i] = z[i] > 0 ? z[i] : 0.0f;  // NaN → 0, as Swift's max(0, z)
}

BP_CLONES
void bp_relu_backward(float *restrict dz, const float *restrict dy, const float *restrict z, long count) {
    for (long i = 0; i < count; i++) dz[i] = dy[i] * (z[i] > 0 ? 1.0f : 0.0f);  // f′(0) = 0, as PyTorch
}

// MARK: - The other activations, vectorised (each branch computed and selected, so the loops vectorise)

BP_CLONES
void bp_tanh_forward(float *restrict y, const float *restrict z, long count) {
    for (long i = 0; i < count; i++) y[i] = bp_tanh(z[i]);
}

BP_CLONES
void bp_tanh_backward(float *restrict dz, const float *restrict dy, const float *restrict y, long count) {
    for (long i = 0; i < count; i++) dz[i] = dy[i] * (1.0f - y[i] * y[i]);
}

BP_CLONES
void bp_leaky_relu(float *restrict y, const float *restrict z, long count, float slope) {
    for (long i = 0; i < count; i++) y[i] = z[i] > 0 ? z[i] : slope * z[i];
}

BP_CLONES
void bp_leaky_relu_backward(float *restrict dz, const float *restrict dy, const float *restrict z, long count, float slope) {
    for (long i = 0; i < count; i++) dz[i] = dy[i] * (z[i] > 0 ? 1.0f : slope);
}

/// e^x − 1: the Taylor series to x⁷ for |x| < 0.25 (where e^x − 1 would cancel), else e^x − 1.
static inline float bp_expm1(float x) {
    float small = x * (1.0f + x * (0.5f + x * (1.0f / 6 + x * (1.0f / 24 + x * (1.0f / 120 + x * (1.0f / 720 + x * (1.0f / 5040)))))));
    float large = bp_exp(x) - 1.0f;
    return (x < 0.25f && x > -0.25f) ? small : large;
}

BP_CLONES
void bp_elu(float *restrict y, const float *restrict z, long count, float alpha) {
    for (long i = 0; i < count; i++) {
        float x = z[i] < 0 ? z[i] : 0.0f;  // e^z only where it is used (and never overflows)
        y[i] = z[i] > 0 ? z[i] : alpha * bp_expm1(x);
    }
}

BP_CLONES
void bp_elu_backward(float *restrict dz, const float *restrict dy, const float *restrict z, const float *restrict y,
                     long count, float alpha) {
    for (long i = 0; i < count; i++) dz[i] = dy[i] * (z[i] > 0 ? 1.0f : y[i] + alpha);
}

/// Φ(z) = (1 + erf(z/√2))/2, given e = e^(−z²/2) (which φ(z) = e/√(2π) shares): erfc(a) for a = |z|/√2 by Abramowitz
/// and Stegun's 7.1.26, t·(a₁ + t(a₂ + t(a₃ + t(a₄ + t·a₅))))·e^(−a²) with t = 1/(1 + p·a), absolute error below
/// 1.5·10⁻⁷ (so Φ's below 7.5·10⁻⁸, about one float ulp at 1).
static inline float bp_normal_cdf(float z, float e) {
    float a = (z < 0 ? -z : z) * 0.70710678118654752f;
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float erfc = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f)))) * e;
    return z >= 0 ? 1.0f - 0.5f * erfc : 0.5f * erfc;
}

BP_CLONES
void bp_gelu(float *restrict y, const float *restrict z, long count, int tanhApproximation) {
    if (tanhApproximation) {
        for (long i = 0; i < count; i++) {
            float x = z[i];
            y[i] = 0.5f * x * (1.0f + bp_tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
        }
    } else {
        for (long i = 0; i < count; i++) y[i] = z[i] * bp_normal_cdf(z[i], bp_exp(-0.5f * z[i] * z[i]));
    }
}

BP_CLONES
void bp_gelu_backward(float *restrict dz, const float *restrict dy, const float *restrict z, long count, int tanhApproximation) {
    if (tanhApproximation) {
        for (long i = 0; i < count; i++) {
            float x = z[i], t = bp_tanh(0.7978845608028654f * (x + 0.044715f * x * x * x));
            dz[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * x * x));
        }
    } else {
        for (long i = 0; i < count; i++) {
            float x = z[i], e = bp_exp(-0.5f * x * x);  // 0 beyond |x| ≈ 13.2, where φ underflows
            dz[i] = dy[i] * (bp_normal_cdf(x, e) + x * 0.3989422804014327f * e);
        }
    }
}

/// Row-wise softmax (`log` 0) or log-softmax (`log` 1) of `rows × columns`, each row shifted by its maximum.
BP_CLONES
void bp_softmax_rows(float *restrict y, const float *restrict z, long rows, long columns, int log) {
    for (long r = 0; r < rows; r++) {
        const float *zr = z + r * columns;
        float *yr = y + r * columns;
        float m = bp_row_max(zr, columns);
        for (long j = 0; j < columns; j++) yr[j] = bp_exp(zr[j] - m);
        float sum = bp_row_sum(yr, columns);
        if (log) {
            float logSum = logf(sum);
            for (long j = 0; j < columns; j++) yr[j] = (zr[j] - m) - logSum;
        } else {
            float inverse = 1.0f / sum;
            for (long j = 0; j < columns; j++) yr[j] *= inverse;
        }
    }
}

/// Their backward passes: softmax `dz = y∘(dy − Σ dy∘y)`; log-softmax `dz = dy − e^y·Σ dy`.
BP_CLONES
void bp_softmax_rows_backward(float *restrict dz, const float *restrict dy, const float *restrict y, long rows, long columns,
                              int log) {
    for (long r = 0; r < rows; r++) {
        const float *dyr = dy + r * columns, *yr = y + r * columns;
        float *dzr = dz + r * columns;
        if (log) {
            float sum = bp_row_sum(dyr, columns);
            for (long j = 0; j < columns; j++) dzr[j] = dyr[j] - bp_exp(yr[j]) * sum;
        } else {
            for (long j = 0; j < columns; j++) dzr[j] = dyr[j] * yr[j];  // the products, then their sum
            float sum = bp_row_sum(dzr, columns);
            for (long j = 0; j < columns; j++) dzr[j] = yr[j] * (dyr[j] - sum);
        }
    }
}

// MARK: - The other optimizers' updates (the arithmetic of the Swift definitions, per instruction set)

/// Adagrad: g ← g + λθ; s ← s + g²; θ ← θ − γ·g / (√s + ε).
BP_CLONES
void bp_adagrad(float *restrict theta, const float *restrict gradient, float *restrict s, long count, float learningRate,
                float epsilon, float weightDecay) {
    for (long i = 0; i < count; i++) {
        float g = gradient[i] + weightDecay * theta[i];
        float sum = s[i] + g * g;
        s[i] = sum;
        theta[i] = theta[i] - learningRate * g / (bp_sqrt(sum) + epsilon);
    }
}

/// Adadelta: g ← g + λθ; v ← ρv + (1 − ρ)g²; δ = √((u + ε)/(v + ε))·g (PyTorch: √(u + ε)/√(v + ε)·g); u ← ρu + (1 − ρ)δ²; θ ← θ − γδ.
BP_CLONES
void bp_adadelta(float *restrict theta, const float *restrict gradient, float *restrict v, float *restrict u, long count,
                 float learningRate, float rho, float epsilon, float weightDecay) {
    for (long i = 0; i < count; i++) {
        float g = gradient[i] + weightDecay * theta[i];
        float square = rho * v[i] + (1 - rho) * g * g;
        float delta = bp_sqrt((u[i] + epsilon) / (square + epsilon)) * g;  // one root: √a/√b = √(a/b)
        v[i] = square;
        u[i] = rho * u[i] + (1 - rho) * delta * delta;
        theta[i] = theta[i] - learningRate * delta;
    }
}

/// RMSprop: g ← g + λθ; v ← αv + (1 − α)g²; centred: ḡ ← αḡ + (1 − α)g and the denominator √(v − ḡ²) + ε;
/// step = g/(√· + ε); with momentum b ← μb + step; θ ← θ − γ·(b or step). `mean` and `buffer` may be NULL.
/// One variant of the loop per (centred, momentum), so that each is a straight loop the compiler vectorises.
static inline __attribute__((always_inline)) void bp_rmsprop_loop(
    float *restrict theta, const float *restrict gradient, float *restrict v, float *restrict mean, float *restrict buffer,
    long count, float learningRate, float alpha, float epsilon, float weightDecay, float momentum, int centered,
    int hasMomentum) {
    for (long i = 0; i < count; i++) {
        float g = gradient[i] + weightDecay * theta[i];
        float square = alpha * v[i] + (1 - alpha) * g * g;
        v[i] = square;
        float denominator = square;
        if (centered) {
            float average = alpha * mean[i] + (1 - alpha) * g;
            mean[i] = average;
            denominator = square - average * average;
        }
        float step = g / (bp_sqrt(denominator) + epsilon);
        if (hasMomentum) {
            step = momentum * buffer[i] + step;
            buffer[i] = step;
        }
        theta[i] = theta[i] - learningRate * step;
    }
}

BP_CLONES
void bp_rmsprop(float *restrict theta, const float *restrict gradient, float *restrict v, float *restrict mean,
                float *restrict buffer, long count, float learningRate, float alpha, float epsilon, float weightDecay,
                float momentum) {
    if (mean && buffer) bp_rmsprop_loop(theta, gradient, v, mean, buffer, count, learningRate, alpha, epsilon, weightDecay, momentum, 1, 1);
    else if (mean) bp_rmsprop_loop(theta, gradient, v, mean, v, count, learningRate, alpha, epsilon, weightDecay, momentum, 1, 0);
    else if (buffer) bp_rmsprop_loop(theta, gradient, v, v, buffer, count, learningRate, alpha, epsilon, weightDecay, momentum, 0, 1);
    else bp_rmsprop_loop(theta, gradient, v, v, v, count, learningRate, alpha, epsilon, weightDecay, momentum, 0, 0);
}

/// Max pooling of `planes` planes of h × w (the channels of one or more images, contiguous) with a k × k window
/// moved by `stride`, into planes of outH × outW: each window's maximum, and in `indices` the position of that
/// maximum in `x` (relative to `x`, as a float), the first one in row-major order when several are equal (as
/// PyTorch picks); a NaN wins, as in PyTorch, so that it propagates. The 2 × 2, stride-2 window of the
/// CNNs has its own loop, which the compiler vectorises.
BP_CLONES
void bp_max_pool(float *restrict y, float *restrict indices, const float *restrict x, long planes, long h, long w,
                 long outH, long outW, long k, long stride) {
    if (k == 2 && stride == 2 && bp_has_avx512f()) {
        bp_max_pool_2x2(y, indices, x, planes, h, w, outH, outW);
        return;
    }
    for (long p = 0; p < planes; p++) {
        const float *plane = x + p * h * w;
        float *out = y + p * outH * outW, *where = indices + p * outH * outW;
        for (long oy = 0; oy < outH; oy++) {
            if (k == 2 && stride == 2) {
                const float *top = plane + 2 * oy * w, *bottom = top + w;
                long base = p * h * w + 2 * oy * w;
                for (long ox = 0; ox < outW; ox++) {
                    float a = top[2 * ox], b = top[2 * ox + 1], c = bottom[2 * ox], d = bottom[2 * ox + 1];
                    float best = a; long at = 0;
                    if (b > best || b != b) { best = b; at = 1; }
                    if (c > best || c != c) { best = c; at = w; }
                    if (d > best || d != d) { best = d; at = w + 1; }
                    out[oy * outW + ox] = best;
                    where[oy * outW + ox] = (float)(base + 2 * ox + at);
                }
                continue;
            }
            for (long ox = 0; ox < outW; ox++) {
                long first = (oy * stride) * w + ox * stride, at = first;
                float best = plane[first];
                for (long i = 0; i < k; i++) {
                    for (long j = 0; j < k; j++) {
                        long index = (oy * stride + i) * w + ox * stride + j;
                        float v = plane[index];
                        if (v > best || v != v) { best = v; at = index; }
                    }
                }
                out[oy * outW + ox] = best;
                where[oy * outW + ox] = (float)(p * h * w + at);
            }
        }
    }
}

/// The adjoint of bp_max_pool for one image: dx (overwritten) receives each dy at the position `indices` names
/// (relative to dx), summed where windows overlap, and 0 everywhere else. The 2 × 2, stride-2 window writes each
/// window's four gradients at once instead of clearing the image and scattering into it.
BP_CLONES
void bp_max_pool_backward(float *restrict dx, const float *restrict dy, const float *restrict indices, long planes,
                          long h, long w, long outH, long outW, long k, long stride) {
    if (k == 2 && stride == 2 && bp_has_avx512f()) {
        bp_max_pool_2x2_backward(dx, dy, indices, planes, h, w, outH, outW);
        return;
    }
    if (k == 2 && stride == 2) {
        for (long p = 0; p < planes; p++) {
            float *plane = dx + p * h * w;
            for (long oy = 0; oy < outH; oy++) {
                float *top = plane + 2 * oy * w, *bottom = top + w;
                const float *g = dy + (p * outH + oy) * outW, *at = indices + (p * outH + oy) * outW;
                long base = p * h * w + 2 * oy * w;
                for (long ox = 0; ox < outW; ox++) {  // the positions as bp_max_pool converts them: vectorised
                    long corner = base + 2 * ox;
                    float a = at[ox], gradient = g[ox];
                    top[2 * ox] = a == (float)corner ? gradient : 0;
                    top[2 * ox + 1] = a == (float)(corner + 1) ? gradient : 0;
                    bottom[2 * ox] = a == (float)(corner + w) ? gradient : 0;
                    bottom[2 * ox + 1] = a == (float)(corner + w + 1) ? gradient : 0;
                }
                for (long x = 2 * outW; x < w; x++) top[x] = bottom[x] = 0;  // an odd width's last column
            }
            for (long e = 2 * outH * w; e < h * w; e++) plane[e] = 0;  // an odd height's last row
        }
        return;
    }
    for (long e = 0; e < planes * h * w; e++) dx[e] = 0;
    for (long o = 0; o < planes * outH * outW; o++) dx[(long)indices[o]] += dy[o];
}

/// The columns [first, last) of an output row whose input column x·stride + j − padding lies inside 0..<w.
static inline void bp_inside_columns(long j, long w, long outW, long stride, long padding, long *first, long *last) {
    long f = (padding - j + stride - 1) / stride;
    f = f < 0 ? 0 : (f > outW ? outW : f);
    long reach = w - 1 + padding - j, l = reach < 0 ? f : reach / stride + 1;
    l = l > outW ? outW : l;
    *first = f;
    *last = l < f ? f : l;
}

/// With "same" padding (outH = h, outW = w) and stride 1, patch row (i, j) of an h × w plane is the plane shifted by
/// `shift` = (i − p)·w + dx with dx = j − p: position t takes plane[t + shift] for t in [first, last), and the rest
/// lies outside the plane. Where the shift wraps across rows, the first −dx or last dx columns of every row are padding
/// (bp_zero_wrapped_columns clears them).
typedef struct { long shift, first, last, dx; } bp_shifted_row;

static inline bp_shifted_row bp_shifted(long i, long j, long padding, long h, long w) {
    long dx = j - padding, shift = (i - padding) * w + dx, plane = h * w;
    long first = shift < 0 ? (-shift < plane ? -shift : plane) : 0, last = shift > 0 ? plane - shift : plane;
    bp_shifted_row row = {shift, first, last < first ? first : last, dx};  // empty when the shift leaves the plane
    return row;
}

/// Sets to 0 the columns of each of the h rows of `plane` whose input column x + dx lies outside 0..<w.
static inline void bp_zero_wrapped_columns(float *restrict plane, long h, long w, long dx) {
    long left = dx < 0 ? (-dx < w ? -dx : w) : 0, right = dx > 0 ? (dx < w ? w - dx : 0) : w;
    for (long y = 0; y < h; y++) {
        for (long x = 0; x < left; x++) plane[y * w + x] = 0;
        for (long x = right; x < w; x++) plane[y * w + x] = 0;
    }
}

/// im2col of one image (channels × h × w): columns[(c·k + i)·k + j, y·outW + x] = X[c, s·y + i − p, s·x + j − p],
/// 0 outside the image; rows of `columns` are `rowStride` apart.
BP_CLONES
void bp_unfold(float *restrict columns, long rowStride, const float *restrict image, long channels, long h, long w,
               long k, long stride, long padding, long outH, long outW) {
    if (stride == 1 && outH == h && outW == w) {  // "same" padding: each row is the plane shifted by (i − p, j − p)
        long plane = h * w, row = 0;
        for (long c = 0; c < channels; c++) {
            for (long i = 0; i < k; i++) {
                for (long j = 0; j < k; j++, row++) {
                    bp_shifted_row r = bp_shifted(i, j, padding, h, w);
                    float *target = columns + row * rowStride;
                    const float *source = image + c * plane;
                    for (long t = 0; t < r.first; t++) target[t] = 0;
                    for (long t = r.first; t < r.last; t++) target[t] = source[t + r.shift];
                    for (long t = r.last; t < plane; t++) target[t] = 0;
                    bp_zero_wrapped_columns(target, h, w, r.dx);
                }
            }
        }
        return;
    }
    long row = 0;
    for (long c = 0; c < channels; c++) {
        for (long i = 0; i < k; i++) {
            for (long j = 0; j < k; j++, row++) {
                float *target = columns + row * rowStride;
                long first, last;
                bp_inside_columns(j, w, outW, stride, padding, &first, &last);
                for (long y = 0; y < outH; y++) {
                    long sourceY = y * stride + i - padding;
                    float *line = target + y * outW;
                    if (sourceY < 0 || sourceY >= h) {
                        for (long x = 0; x < outW; x++) line[x] = 0;
                        continue;
                    }
                    const float *source = image + (c * h + sourceY) * w + j - padding;
                    for (long x = 0; x < first; x++) line[x] = 0;
                    if (stride == 1) for (long x = first; x < last; x++) line[x] = source[x];
                    else for (long x = first; x < last; x++) line[x] = source[x * stride];
                    for (long x = last; x < outW; x++) line[x] = 0;
                }
            }
        }
    }
}

/// col2im, the adjoint of bp_unfold: image (overwritten) = the sum, at each input position, of the gradients of
/// the patch elements taken from it. With "same" padding and stride 1 the entries of `columns` at padded positions
/// are set to 0 on the way (they are gradients of zeros that no input receives).
BP_CLONES
void bp_fold(float *restrict image, float *restrict columns, long rowStride, long channels, long h, long w,
             long k, long stride, long padding, long outH, long outW) {
    for (long e = 0; e < channels * h * w; e++) image[e] = 0;
    if (stride == 1 && outH == h && outW == w) {  // each row adds to the plane shifted by (i − p, j − p)
        long plane = h * w, row = 0;
        for (long c = 0; c < channels; c++) {
            for (long i = 0; i < k; i++) {
                for (long j = 0; j < k; j++, row++) {
                    bp_shifted_row r = bp_shifted(i, j, padding, h, w);
                    float *source = columns + row * rowStride, *target = image + c * plane;
                    bp_zero_wrapped_columns(source, h, w, r.dx);  // gradients of padding: they add nothing
                    for (long t = r.first; t < r.last; t++) target[t + r.shift] += source[t];
                }
            }
        }
        return;
    }
    long row = 0;
    for (long c = 0; c < channels; c++) {
        for (long i = 0; i < k; i++) {
            for (long j = 0; j < k; j++, row++) {
                const float *source = columns + row * rowStride;
                long first, last;
                bp_inside_columns(j, w, outW, stride, padding, &first, &last);
                for (long y = 0; y < outH; y++) {
                    long targetY = y * stride + i - padding;
                    if (targetY < 0 || targetY >= h) continue;
                    float *target = image + (c * h + targetY) * w + j - padding;
                    const float *line = source + y * outW;
                    if (stride == 1) for (long x = first; x < last; x++) target[x] += line[x];
                    else for (long x = first; x < last; x++) target[x * stride] += line[x];
                }
            }
        }
    }
}
