/* The floor of a 784-H-10 Adam epoch at batch B: the five cblas_sgemm calls of each step, exactly as
   ../shared/peers/gemm_floor.c makes them, plus torch.optim.Adam's update of every parameter (W1, b1, W2, b2)
   after each step, and nothing else: no data gathering, activations, loss or bias gradients. Best of 5 epochs.

   The update is the one in torch.optim.Adam (and Backprop's bp_adam), with IEEE square root and division:
       m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,  θ ← θ − (γ/(1−β1ᵗ))·m / (√v/√(1−β2ᵗ) + ε)
   One square root and one division per parameter per step. Subnormals are flushed to zero, as in a Backprop step.

   Build: cc -O3 -march=native -fno-math-errno adam_floor.c -o adam_floor -lopenblas -lm (vectorised like
   Backprop's kernels; without -fno-math-errno the square root is not vectorised). Usage: adam_floor B H THREADS
   (Scripts/compare.py builds and runs it.) THREADS sizes OpenBLAS's threads; the update runs on one. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static void adam(float *restrict theta, const float *restrict g, float *restrict m, float *restrict v, long count,
                 float stepSize, float inverseCorrection2Root) {
    const float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f;
    for (long i = 0; i < count; i++) {
        float first = beta1 * m[i] + (1 - beta1) * g[i], second = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        m[i] = first; v[i] = second;
        theta[i] -= stepSize * first / (__builtin_sqrtf(second) * inverseCorrection2Root + epsilon);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: adam_floor B H THREADS\n"); return 2; }
    int B = atoi(argv[1]), H = atoi(argv[2]), T = atoi(argv[3]), IN = 784, OUT = 10;
    openblas_set_num_threads(T);
#if defined(__x86_64__)
    _mm_setcsr(_mm_getcsr() | 0x8040);  // flush-to-zero and denormals-are-zero
#endif
    // Parameters, gradients and the two moments each in one buffer: W1, b1, W2, b2.
    long count = (long)IN * H + H + (long)H * OUT + OUT;
    float *theta = calloc(count, 4), *grad = calloc(count, 4), *m = calloc(count, 4), *v = calloc(count, 4);
    float *W1 = theta, *W2 = theta + IN * H + H, *dW1 = grad, *dW2 = grad + IN * H + H;
    float *X = calloc((size_t)B * IN, 4), *Z1 = calloc((size_t)B * H, 4), *Z2 = calloc((size_t)B * OUT, 4),
          *dA1 = calloc((size_t)B * H, 4);
    for (long i = 0; i < (long)B * IN; i++) X[i] = rand() / (float)RAND_MAX;
    for (long i = 0; i < count; i++) theta[i] = 0.01f;
    int steps = 60000 / B; double best = 1e9; long t = 0;
    for (int rep = 0; rep < 5; rep++) {
        double start = now();
        for (int s = 0; s < steps; s++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, H, IN, 1, X, IN, W1, H, 0, Z1, H);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, OUT, H, 1, Z1, H, W2, OUT, 0, Z2, OUT);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, OUT, B, 1, Z1, H, Z2, OUT, 1, dW2, OUT);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, H, OUT, 1, Z2, OUT, W2, OUT, 0, dA1, H);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, IN, H, B, 1, X, IN, dA1, H, 1, dW1, H);
            t++;
            float correction1 = 1 - powf(0.9f, (float)t), correction2 = 1 - powf(0.999f, (float)t);
            adam(theta, grad, m, v, count, 1e-3f / correction1, 1 / sqrtf(correction2));
        }
        double elapsed = now() - start; if (elapsed < best) best = elapsed;
    }
    double total = 0;  // keeps the work observable, and shows it stayed finite
    for (long i = 0; i < count; i++) total += theta[i];
    printf("adam-floor B=%d H=%d threads=%d s/epoch=%.4f parameters=%ld sum=%g\n", B, H, T, best, count, total);
    return 0;
}
