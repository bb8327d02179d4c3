#ifndef BACKPROP_CSIMD_H
#define BACKPROP_CSIMD_H
// What Swift code in a package cannot do itself: element-wise kernels compiled per instruction set (Kernels.c),
// a software prefetch, the floating-point control word and a spin-wait hint.
// No stable API: for Backprop's own kernels.

#include <stdint.h>

// Kernels.c: element-wise loops compiled for AVX-512, AVX2 + FMA and the baseline target, chosen at load time.

/// out[i] = in[i] · scale.
void bp_bytes_to_floats(float *out, const uint8_t *in, long count, float scale);
/// Σ x[i]², in float lanes over blocks of 4096 elements, the blocks added in double.
double bp_sum_of_squares(const float *x, long count);
/// sums[j] += Σᵢ x[i·columns + j], blockwise (32-row float blocks added in double).
void bp_add_column_sums(float *sums, const float *x, long rows, long columns);
/// sums[j] += Σᵢ x[i·columns + j], into double sums.
void bp_add_column_sums_double(double *sums, const float *x, long rows, long columns);
/// Σᵢ xᵢ, blockwise (float lanes, blocks of 4096 added in double).
double bp_sum(const float *x, long count);
/// One LSTM step: activates the gates (n × 4h, i f g o, plus bias) in place and writes c, tanh(c) and h (n × h each).
void bp_lstm_step(float *gates, const float *bias, const float *cPrevious, float *c, float *cellTanh, float *hidden, long n,
                  long h);
/// The backward pass of one LSTM step: dGates (n × 4h) from dh, and dc (in: ∂L/∂cₜ, out: ∂L/∂cₜ₋₁).
void bp_lstm_step_backward(float *dGates, float *dc, const float *dh, const float *gates, const float *cellTanh,
                           const float *cPrevious, long n, long h);
/// One GRU step: gates (n × 3h, input side in, activated r z n out), recurrent (n × 3h, hₜ₋₁·W_hhᵀ + b_hh in, b_hh
/// out), hPrevious; writes hiddenN, hidden.
void bp_gru_step(float *gates, const float *biasIH, float *recurrent, const float *biasHH, const float *hPrevious,
                 float *hiddenN, float *hidden, long n, long h);
/// The backward pass of one GRU step: dGates (n × 4h, per row dR, dZ, dN∘r, dN); dh becomes dh∘z.
void bp_gru_step_backward(float *dGates, float *dh, const float *gates, const float *hiddenN, const float *hPrevious,
                          long n, long h);
/// An RNN step's activation in place: tanh, or ReLU when `relu` is 1.
void bp_rnn_step(float *hidden, const float *bias, long n, long h, int relu);
/// δ = dh∘φ′(h) for an RNN step.
void bp_rnn_step_backward(float *delta, const float *dh, const float *hidden, long count, int relu);
/// tanh and its backward pass dz = dy∘(1 − y²).
void bp_tanh_forward(float *y, const float *z, long count);
void bp_tanh_backward(float *dz, const float *dy, const float *y, long count);
/// Leaky ReLU and its backward pass.
void bp_leaky_relu(float *y, const float *z, long count, float slope);
void bp_leaky_relu_backward(float *dz, const float *dy, const float *z, long count, float slope);
/// ELU (α(e^z − 1) below 0) and its backward pass dz = dy∘(z > 0 ? 1 : y + α).
void bp_elu(float *y, const float *z, long count, float alpha);
void bp_elu_backward(float *dz, const float *dy, const float *z, const float *y, long count, float alpha);
/// GELU, exact (z·Φ(z)) or its tanh approximation, and the backward passes.
void bp_gelu(float *y, const float *z, long count, int tanhApproximation);
void bp_gelu_backward(float *dz, const float *dy, const float *z, long count, int tanhApproximation);
/// Row-wise softmax (log 0) or log-softmax (log 1), and their backward passes.
void bp_softmax_rows(float *y, const float *z, long rows, long columns, int log);
void bp_softmax_rows_backward(float *dz, const float *dy, const float *y, long rows, long columns, int log);
/// One Adagrad, Adadelta or RMSprop update over `count` parameters (see Kernels.c for the equations).
void bp_adagrad(float *theta, const float *gradient, float *s, long count, float learningRate, float epsilon,
                float weightDecay);
void bp_adadelta(float *theta, const float *gradient, float *v, float *u, long count, float learningRate, float rho,
                 float epsilon, float weightDecay);
void bp_rmsprop(float *theta, const float *gradient, float *v, float *mean, float *buffer, long count, float learningRate,
                float alpha, float epsilon, float weightDecay, float momentum);
/// The CPUs in this process's affinity mask (sched_getaffinity), else the online CPUs.
long bp_affinity_cpu_count(void);
/// A measurement of how long a cache line takes to go from one thread to another and back (Processors.c).
typedef struct bp_round_trip_probe bp_round_trip_probe;
/// A new probe (never freed: a process needs one).
bp_round_trip_probe *bp_round_trip_probe_create(void);
/// Readies the probe for two threads to call bp_round_trip on it.
void bp_round_trip_reset(bp_round_trip_probe *probe);
/// The first of two threads to call this waits up to `timeoutNanoseconds` for the second, then passes a value back
/// and forth 4 × 8 times and records the shortest group's time per round trip; the second answers each value. Every
/// wait ends after `timeoutNanoseconds` without news (the first thread then stops the measurement, which leaves the
/// −1 that bp_round_trip_reset wrote), and waits yield the CPU after a few thousand pauses, so two threads sharing
/// one CPU still finish.
void bp_round_trip(bp_round_trip_probe *probe, long timeoutNanoseconds);
/// The last measurement's nanoseconds per round trip (−1: none).
double bp_round_trip_nanoseconds(const bp_round_trip_probe *probe);
/// 1 when this CPU and the system run AVX-512F (Backprop's own matrix-product and pooling kernels), else 0.
int bp_has_avx512f(void);
/// 1 when the CPU has AVX2 and FMA (x86-64-v3).
int bp_has_avx2_fma(void);
/// y[i] = 1 / (1 + e^(−z[i])).
void bp_sigmoid(float *y, const float *z, long count);
/// SGD with momentum, dampening (gradientWeight = 1 − τ), weight decay, Nesterov; `first`: the first step.
void bp_sgd(float *theta, const float *gradient, float *buffer, long count, float learningRate, float momentum,
            float gradientWeight, float weightDecay, int nesterov, int first);
/// Adam / AMSGrad (vMax non-null) / AdamW (decay = 1 − γλ, weightDecay 0).
void bp_adam(float *theta, const float *gradient, float *m, float *v, float *vMax, long count, float decay,
             float stepSize, float inverseCorrection2Root, float beta1, float beta2, float epsilon,
             float weightDecay);

/// The calling thread's floating-point control word (x86 MXCSR: rounding, flush-to-zero, denormals-are-zero),
/// so that worker threads can compute in the same mode as the thread that gave them work. 0 elsewhere.
static inline unsigned bp_floating_point_control(void) {
#if defined(__x86_64__)
    return __builtin_ia32_stmxcsr();
#else
    return 0;
#endif
}

/// Sets the calling thread's floating-point control word (see bp_floating_point_control).
static inline void bp_set_floating_point_control(unsigned control) {
#if defined(__x86_64__)
    __builtin_ia32_ldmxcsr(control);
#else
    (void)control;
#endif
}

/// Softmax cross-entropy of rows × k logits z against targets t: returns Σ rows' losses and writes
/// g = scale · (softmax(z)·Σt − t) (the formula of Swift's CrossEntropy).
double bp_softmax_cross_entropy(const float *z, const float *t, float *g, long rows, long k, float scale);

/// Binary cross-entropy of sigmoid(z) against t over count elements: returns Σ max(z,0) − z·t + log1p(e^−|z|) and,
/// when g is non-null, writes g = scale · (σ(z) − t).
double bp_binary_cross_entropy(const float *z, const float *t, float *g, long count, float scale);
/// dz = dy · y(1 − y): the sigmoid's backward pass from its output y.
void bp_sigmoid_backward(float *dz, const float *dy, const float *y, long count);

/// y = max(0, z) (0 for NaN, as Swift's max(0, z)).
void bp_relu(float *y, const float *z, long count);
/// dz = dy · [z > 0].
void bp_relu_backward(float *dz, const float *dy, const float *z, long count);
/// im2col of one channels × h × w image into rows `rowStride` apart (k × k patches, `stride`, zero `padding`), and
/// its adjoint col2im (which overwrites `image`, and may set the entries of `columns` at padded positions to 0).
void bp_unfold(float *columns, long rowStride, const float *image, long channels, long h, long w, long k, long stride,
               long padding, long outH, long outW);
void bp_fold(float *image, float *columns, long rowStride, long channels, long h, long w, long k, long stride,
             long padding, long outH, long outW);
/// Max pooling of `planes` h × w planes with a k × k window moved by `stride` into outH × outW planes: the maxima, and
/// each maximum's position in `x` (the first of equal ones) as a float in `indices`.
void bp_max_pool(float *y, float *indices, const float *x, long planes, long h, long w, long outH, long outW, long k,
                 long stride);
/// Its adjoint for one image: dx (overwritten) holds each dy at the position in `indices`, summed, and 0 elsewhere.
void bp_max_pool_backward(float *dx, const float *dy, const float *indices, long planes, long h, long w, long outH,
                          long outW, long k, long stride);
/// The two for 2 × 2 windows with stride 2 in AVX-512 (Pooling.c), which those call where bp_has_avx512f() is 1.
void bp_max_pool_2x2(float *y, float *indices, const float *x, long planes, long h, long w, long outH, long outW);
void bp_max_pool_2x2_backward(float *dx, const float *dy, const float *indices, long planes, long h, long w, long outH,
                              long outW);

// Panels.c: a matrix product whose right-hand operand is packed once for many calls (a recurrent layer's W_hh), or
// read in place (a convolution's patches).

/// The columns of a panel.
#define BP_PANEL_WIDTH 32
/// op(B) (k × n; B row-major `ldb` apart, or its transpose, n × k, with `transposed`) into panels of
/// BP_PANEL_WIDTH columns: panel q holds rows 0..<k of columns 32q..<32q+32, each row 32 floats, zero past column n.
/// `packed` has room for k · ⌈n/32⌉ · 32 floats.
void bp_pack_panels(float *packed, const float *b, long k, long n, long ldb, int transposed);
/// C (m × n, `ldc` apart) = A (m × k, `lda` apart) · op(B), plus C when `accumulate` (C is not read otherwise),
/// with op(B) packed by bp_pack_panels. Only where bp_has_avx512f() is 1.
void bp_gemm_panels(long m, long n, long k, const float *a, long lda, const float *packed, float *c, long ldc,
                    int accumulate);
/// bp_gemm_panels in AVX2 (tiles of 6 × 16, the sum blocked by 256 and added to C in order, so its rounding differs
/// from the AVX-512 version's). Only where bp_has_avx2_fma() is 1.
void bp_gemm_panels_avx2(long m, long n, long k, const float *a, long lda, const float *packed, float *c, long ldc,
                         int accumulate);
/// The same kernel with B row-major in place (k × n, rows `ldb` apart), for a B used once, and A (m × k) or, with
/// `transposeA`, Aᵀ (A is k × m), rows `lda` apart: C = op(A) · B, plus C when `accumulate`. Only where
/// bp_has_avx512f() is 1.
void bp_gemm(long m, long n, long k, const float *a, long lda, int transposeA, const float *b, long ldb, float *c,
             long ldc, int accumulate);

/// Tells the CPU this thread is spinning on a shared variable (x86 `pause`, ARM `yield`).
static inline void bp_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Asks the CPU to start loading the cache line holding `p` into its outer caches (prefetcht2: L2 and below; no
/// fault if `p` is invalid). Measured on Zen 4 for a batch's rows, two steps ahead: the gather waited 4 µs
/// instead of 11 µs with prefetcht0 one step ahead (which fills L1, where the lines do not survive the step).
static inline void bp_prefetch(const void *p) { __builtin_prefetch(p, 0, 1); }


// Transformer.c: the transformer's loops outside the matrix products (Layers/Transformer states the formulas).

/// y[r] = table[ids[r]] + positions[r mod steps] (positions may be NULL), for the rows·steps tokens r (ids hold
/// whole numbers).
void bp_embedding(float *y, const float *ids, const float *table, const float *positions, long rows, long steps, long width);
/// dTable[ids[r]] += dy[r] and dPositions[r mod steps] += dy[r] (either may be NULL; ids only with dTable).
void bp_embedding_backward(float *dTable, float *dPositions, const float *ids, const float *dy, long rows, long steps,
                           long width);
/// Layer normalization of each row; statistics[2r], [2r+1] = the row's mean and 1/√(variance + ε); beta may be NULL.
void bp_layer_norm(float *y, float *statistics, const float *x, const float *gamma, const float *beta, long rows,
                   long width, float epsilon);
/// Its backward pass: dGamma (and dBeta, unless NULL) accumulate; dx is written, or added to with accumulate, or
/// skipped when NULL.
void bp_layer_norm_backward(float *dx, float *dGamma, float *dBeta, const float *dy, const float *x,
                            const float *statistics, const float *gamma, long rows, long width, int accumulate);
/// Causal attention for the (sequence, head) pairs firstPair..<lastPair of qkv (sequences of `steps` rows of
/// [q | k | v], each `width` wide): the queries firstQuery..<steps, their probabilities (pair, query, key) and
/// their outputs (sequence, query, width) written. keysT: the keys transposed, width·steps floats per sequence.
void bp_attention(float *y, float *probabilities, float *keysT, const float *qkv, long steps, long firstQuery, long width,
                  long heads, long firstPair, long lastPair);
/// Its backward pass (firstQuery 0): dqkv written for the pairs' columns; valuesT as keysT above, rowTemporary
/// `steps` floats per pair. The probabilities are overwritten (with ∂L/∂ of the scores).
void bp_attention_backward(float *dqkv, float *valuesT, float *rowTemporary, const float *dy, const float *qkv,
                           float *probabilities, long steps, long width, long heads, long firstPair, long lastPair);

#endif
