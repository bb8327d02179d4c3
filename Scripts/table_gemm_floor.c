/* The floor of an epoch of an MLP on a table: only the cblas_sgemm calls of its steps, as Backprop's Dense layers
   make them (forward Z = X·W; backward dW += Xᵀ·dZ and, but for the first layer, dX = dZ·Wᵀ), and nothing else: no
   data, activations, loss, bias gradients or optimizer. Best of 5 epochs, OpenBLAS on one thread by default.

   Build: cc -O2 Scripts/table_gemm_floor.c -o /tmp/table_gemm_floor $(pkg-config --cflags --libs openblas)
   Usage: table_gemm_floor ROWS BATCH SIZES…   e.g. table_gemm_floor 160000 64 40 128 64 5 (the 71 MB table's
   training split, 5 epochs of which Scripts/compare_tables.py times). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: %s ROWS BATCH SIZES...\n", argv[0]); return 64; }
    openblas_set_num_threads(1);
    int rows = atoi(argv[1]), n = atoi(argv[2]), layers = argc - 4, sizes[64];
    for (int i = 0; i <= layers; i++) sizes[i] = atoi(argv[3 + i]);
    float *x[64], *dx[64], *w[64], *dw[64];
    for (int i = 0; i <= layers; i++) {
        x[i] = calloc((size_t)n * sizes[i], sizeof(float));
        dx[i] = calloc((size_t)n * sizes[i], sizeof(float));
        for (int j = 0; j < n * sizes[i]; j++) x[i][j] = 0.01f;
    }
    for (int i = 0; i < layers; i++) {
        w[i] = calloc((size_t)sizes[i] * sizes[i + 1], sizeof(float));
        dw[i] = calloc((size_t)sizes[i] * sizes[i + 1], sizeof(float));
        for (int j = 0; j < sizes[i] * sizes[i + 1]; j++) w[i][j] = 0.01f;
    }
    double best = 1e30;
    for (int epoch = 0; epoch < 5; epoch++) {
        double start = now();
        for (int step = 0; step < (rows + n - 1) / n; step++) {
            for (int l = 0; l < layers; l++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, sizes[l + 1], sizes[l], 1, x[l], sizes[l],
                            w[l], sizes[l + 1], 0, x[l + 1], sizes[l + 1]);
            for (int l = layers - 1; l >= 0; l--) {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, sizes[l], sizes[l + 1], n, 1, x[l], sizes[l],
                            dx[l + 1], sizes[l + 1], 1, dw[l], sizes[l + 1]);
                if (l > 0)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, sizes[l], sizes[l + 1], 1, dx[l + 1],
                                sizes[l + 1], w[l], sizes[l + 1], 0, dx[l], sizes[l]);
            }
        }
        double seconds = now() - start;
        if (seconds < best) best = seconds;
    }
    printf("gemm floor %.4f s/epoch\n", best);
    return 0;
}
