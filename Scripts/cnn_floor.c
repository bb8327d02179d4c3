/* The GEMM floor of one epoch of `backprop train --model cnn` (and ../shared/peers/torch_cnn.py): conv 32 3×3
   (padding 1) – ReLU – max pool 2 – conv 64 3×3 (padding 1) – ReLU – max pool 2 – dense 128 – ReLU – dense 10, on
   60 000 one-channel 28×28 images at batch B. Only the cblas_sgemm calls of each step, with the shapes a
   convolution by unfolded patches (im2col) needs, and nothing else: no unfolding or folding, activations, pooling,
   loss, bias gradients or update. Best of 3 epochs.

   Per step, with L1 = 28·28 and L2 = 14·14 locations and P1 = 1·3·3, P2 = 32·3·3 patch sizes:
     forward   conv1  Y1[32 × B·L1]  = W1[32 × P1] · cols1[P1 × B·L1]
               conv2  Y2[64 × B·L2]  = W2[64 × P2] · cols2[P2 × B·L2]
               dense1 Z3[B × 128]    = X3[B × 3136] · W3ᵀ
               dense2 Z4[B × 10]     = Z3 · W4ᵀ
     backward  dense2 dW4 += dZ4ᵀ · Z3,  dZ3 = dZ4 · W4
               dense1 dW3 += dZ3ᵀ · X3,  dX3 = dZ3 · W3
               conv2  dW2 += dY2 · cols2ᵀ, dcols2 = W2ᵀ · dY2
               conv1  dW1 += dY1 · cols1ᵀ (the input needs no gradient)
   That is 25.0 MFLOP a sample, 1.50 TFLOP an epoch.

   Build: cc -O2 cnn_floor.c -o cnn_floor -lopenblas. Usage: cnn_floor B THREADS (THREADS sizes OpenBLAS's own
   threads). Scripts/compare.py --cnn builds and runs it. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static float *filled(size_t count) {
    float *p = malloc(count * sizeof(float));
    if (!p) { fprintf(stderr, "cnn_floor: out of memory\n"); exit(1); }
    for (size_t i = 0; i < count; i++) p[i] = (float)(rand() % 1000) / 1000.0f - 0.5f;
    return p;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: cnn_floor B THREADS\n"); return 2; }
    int B = atoi(argv[1]), T = atoi(argv[2]);
    if (B <= 0 || T <= 0) { fprintf(stderr, "cnn_floor: B and THREADS must be positive\n"); return 2; }
    openblas_set_num_threads(T);
    const int C1 = 32, C2 = 64, P1 = 9, P2 = 32 * 9, L1 = 28 * 28, L2 = 14 * 14, F3 = 64 * 7 * 7, H = 128, O = 10;
    const int W1n = B * L1, W2n = B * L2;  // GEMM widths of the two convolutions
    float *w1 = filled(C1 * P1), *w2 = filled((size_t)C2 * P2), *w3 = filled((size_t)H * F3), *w4 = filled(O * H);
    float *dw1 = filled(C1 * P1), *dw2 = filled((size_t)C2 * P2), *dw3 = filled((size_t)H * F3), *dw4 = filled(O * H);
    float *cols1 = filled((size_t)P1 * W1n), *y1 = filled((size_t)C1 * W1n);
    float *cols2 = filled((size_t)P2 * W2n), *dcols2 = filled((size_t)P2 * W2n), *y2 = filled((size_t)C2 * W2n);
    float *x3 = filled((size_t)B * F3), *z3 = filled((size_t)B * H), *z4 = filled((size_t)B * O);
    float *dx3 = filled((size_t)B * F3), *dz3 = filled((size_t)B * H);
    int steps = (60000 + B - 1) / B;
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        double start = now();
        for (int s = 0; s < steps; s++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C1, W1n, P1, 1, w1, P1, cols1, W1n, 0, y1, W1n);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C2, W2n, P2, 1, w2, P2, cols2, W2n, 0, y2, W2n);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, H, F3, 1, x3, F3, w3, F3, 0, z3, H);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, O, H, 1, z3, H, w4, H, 0, z4, O);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, H, B, 1, z4, O, z3, H, 1, dw4, H);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, H, O, 1, z4, O, w4, H, 0, dz3, H);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, F3, B, 1, dz3, H, x3, F3, 1, dw3, F3);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, F3, H, 1, dz3, H, w3, F3, 0, dx3, F3);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C2, P2, W2n, 1, y2, W2n, cols2, W2n, 1, dw2, P2);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, P2, W2n, C2, 1, w2, P2, y2, W2n, 0, dcols2, W2n);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C1, P1, W1n, 1, y1, W1n, cols1, W1n, 1, dw1, P1);
        }
        double elapsed = now() - start;
        if (elapsed < best) best = elapsed;
    }
    double total = 0;  // keeps the work observable
    for (int i = 0; i < C2 * P2; i++) total += dw2[i];
    printf("cnn-floor B=%d threads=%d s/epoch=%.4f gflops=%.1f sum=%g\n", B, T, best,
           25.0e6 * 60000 / best / 1e9, total);
    return 0;
}
