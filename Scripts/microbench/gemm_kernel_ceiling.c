// How much slack OpenBLAS leaves on the training step's largest products.
//
// For each shape, in alternation on one pinned core: OpenBLAS's cblas_sgemm (β = 0, as the
// step calls it), a plain AVX-512 micro-kernel of our own, and a 2048² OpenBLAS product as
// the reference rate. The own kernel gets every advantage an own-GEMM design could give:
// the weight operand packed once outside the timing (the step's weights change only at the
// optimizer step), K in blocks of 512 so that a K = 512 product writes C once with no zero
// fill, and a 12 × 32 register tile (24 accumulators, 12 broadcasts and 2 loads per k).
// Activations are packed per 12-row panel inside the timing, as any GEMM must.
//
// Prints, per shape: OpenBLAS's and the own kernel's median rate as a fraction of the
// 2048² median, the median of the pairwise speed ratios own / OpenBLAS, and the largest
// difference between the two results (a wrong kernel would make the timing meaningless);
// then OpenBLAS on the first shape with its operands in cache and evicted.
//
//   gcc -O3 -march=skylake-avx512 gemm_kernel_ceiling.c -lopenblas -lm   (Scripts/bench-kernel-ceiling.sh)
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ROWS = 12, COLUMNS = 32, DEPTH = 512, PAIRS = 21 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// The weight operand as panels of 32 output columns: panel p holds, for each k, the 32
// values of columns 32p … 32p+31. `transposed`: the weights are stored (N, K) (the step's
// NT forward products); otherwise (K, N) (its NN input-gradient products).
static void packWeights(const float *w, int n, int k, int transposed, float *packed) {
    for (int p = 0; p < n / COLUMNS; p++)
        for (int kk = 0; kk < k; kk++)
            for (int j = 0; j < COLUMNS; j++)
                packed[((size_t)p * k + kk) * COLUMNS + j] =
                    transposed ? w[(size_t)(p * COLUMNS + j) * k + kk] : w[(size_t)kk * n + p * COLUMNS + j];
}

// Rows i0 … i0+rows−1, depth k0 … k0+depth−1 of x (M, K) as depth × 12 values, zero-padded.
static void packActivations(const float *x, int ldx, int rows, int depth, float *packed) {
    for (int kk = 0; kk < depth; kk++)
        for (int i = 0; i < ROWS; i++) packed[kk * ROWS + i] = i < rows ? x[(size_t)i * ldx + kk] : 0;
}

// c[12 × 32] (=|+=) x-panel · w-panel over `depth`.
__attribute__((noinline)) static void microKernel(int depth, const float *restrict x, const float *restrict w,
                                                  float *restrict c, int ldc, int accumulate) {
    __m512 acc[ROWS][2];
    for (int i = 0; i < ROWS; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int kk = 0; kk < depth; kk++) {
        __m512 w0 = _mm512_load_ps(w), w1 = _mm512_load_ps(w + 16);
        _mm_prefetch((const char *)(w + 8 * COLUMNS), _MM_HINT_T0);
#pragma GCC unroll 12
        for (int i = 0; i < ROWS; i++) {
            __m512 a = _mm512_set1_ps(x[i]);
            acc[i][0] = _mm512_fmadd_ps(a, w0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(a, w1, acc[i][1]);
        }
        x += ROWS;
        w += COLUMNS;
    }
#pragma GCC unroll 12
    for (int i = 0; i < ROWS; i++) {
        float *row = c + (size_t)i * ldc;
        if (accumulate) {
            acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_loadu_ps(row));
            acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_loadu_ps(row + 16));
        }
        _mm512_storeu_ps(row, acc[i][0]);
        _mm512_storeu_ps(row + 16, acc[i][1]);
    }
}

// C (M, N) = X (M, K) · packed weights; N a multiple of 32. Blocks of 512 output columns
// keep the weight panels of one block (512 × 512 floats, 1 MiB) in L2.
static void ownProduct(int m, int n, int k, const float *x, const float *packedWeights, float *c,
                       float *activationPanel, float *edge) {
    for (int k0 = 0; k0 < k; k0 += DEPTH) {
        int depth = k - k0 < DEPTH ? k - k0 : DEPTH;
        for (int j0 = 0; j0 < n; j0 += 512) {
            int j1 = j0 + 512 < n ? j0 + 512 : n;
            for (int i0 = 0; i0 < m; i0 += ROWS) {
                int rows = m - i0 < ROWS ? m - i0 : ROWS;
                packActivations(x + (size_t)i0 * k + k0, k, rows, depth, activationPanel);
                for (int j = j0; j < j1; j += COLUMNS) {
                    const float *w = packedWeights + ((size_t)(j / COLUMNS) * k + k0) * COLUMNS;
                    if (rows == ROWS) {
                        microKernel(depth, activationPanel, w, c + (size_t)i0 * n + j, n, k0 > 0);
                    } else {
                        for (int i = 0; i < rows; i++) memcpy(edge + i * COLUMNS, c + (size_t)(i0 + i) * n + j, COLUMNS * 4);
                        microKernel(depth, activationPanel, w, edge, COLUMNS, k0 > 0);
                        for (int i = 0; i < rows; i++) memcpy(c + (size_t)(i0 + i) * n + j, edge + i * COLUMNS, COLUMNS * 4);
                    }
                }
            }
        }
    }
}

static int compareDoubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int count) {
    qsort(v, count, sizeof(double), compareDoubles);
    return v[count / 2];
}

static float *filled(size_t count, unsigned seed) {
    float *p = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < count; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / (float)(1u << 24) - 0.5f;
    }
    return p;
}

static void measure(const char *name, int m, int n, int k, int transposed) {
    float *x = filled((size_t)m * k, 1), *w = filled((size_t)n * k, 2), *packed = filled((size_t)n * k, 3);
    float *reference = filled((size_t)m * n, 4), *own = filled((size_t)m * n, 5);
    float *panel = filled((size_t)ROWS * DEPTH, 6), *edge = filled(ROWS * COLUMNS, 7);
    float *square = filled(2048 * 2048, 8), *squareC = filled(2048 * 2048, 9);
    packWeights(w, n, k, transposed, packed);
    double flop = 2.0 * m * n * k, squareFlop = 2.0 * 2048 * 2048 * 2048;
    double squareRate[PAIRS], blasRate[PAIRS], ownRate[PAIRS], ratio[PAIRS];
    for (int r = 0; r < PAIRS; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2048, 2048, 2048, 1, square, 2048, square, 2048, 0,
                    squareC, 2048);
        double t1 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transposed ? CblasTrans : CblasNoTrans, m, n, k, 1, x, k, w,
                    transposed ? k : n, 0, reference, n);
        double t2 = now();
        ownProduct(m, n, k, x, packed, own, panel, edge);
        double t3 = now();
        squareRate[r] = squareFlop / (t1 - t0) / 1e9;
        blasRate[r] = flop / (t2 - t1) / 1e9;
        ownRate[r] = flop / (t3 - t2) / 1e9;
        ratio[r] = (t2 - t1) / (t3 - t2);
    }
    double difference = 0, scale = 0;
    for (size_t i = 0; i < (size_t)m * n; i++) {
        difference = fmax(difference, fabs(reference[i] - own[i]));
        scale = fmax(scale, fabs(reference[i]));
    }
    if (!(difference <= 1e-4 * scale)) {
        fprintf(stderr, "gemm_kernel_ceiling: the own kernel's result differs from OpenBLAS's for %s\n", name);
        exit(1);
    }
    double squareMedian = median(squareRate, PAIRS);
    printf("%-44s OpenBLAS %5.1f GFLOP/s (%3.0f %% of 2048²)  own kernel %5.1f (%3.0f %%)  own/OpenBLAS %.3f  max |Δ| %.1e of %.1e\n",
           name, median(blasRate, PAIRS), 100 * median(blasRate, PAIRS) / squareMedian, median(ownRate, PAIRS),
           100 * median(ownRate, PAIRS) / squareMedian, median(ratio, PAIRS), difference, scale);
    free(x); free(w); free(packed); free(reference); free(own); free(panel); free(edge); free(square); free(squareC);
}

// OpenBLAS on the first shape right after the same product (operands in cache) against
// right after a 256 MiB pass that evicts them, as the step's passes between products might.
static void measureColdOperands(int m, int n, int k) {
    float *x = filled((size_t)m * k, 1), *w = filled((size_t)n * k, 2), *c = filled((size_t)m * n, 3);
    size_t flushBytes = (size_t)256 << 20;
    unsigned char *flush = malloc(flushBytes);
    double ratio[PAIRS];
    for (int r = 0; r < PAIRS; r++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, x, k, w, k, 0, c, n);
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, x, k, w, k, 0, c, n);
        double warm = now() - t0;
        memset(flush, r, flushBytes);
        t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, x, k, w, k, 0, c, n);
        ratio[r] = warm / (now() - t0);
    }
    printf("OpenBLAS NT %d × %d × %d with operands evicted by a 256 MiB pass: speed %.3f of the cached run (median of %d pairs)\n",
           m, n, k, median(ratio, PAIRS), PAIRS);
    free(x); free(w); free(c); free(flush);
}

int main(void) {
    // The step's products of one batch of 32 paired utterances (4,841 audio frames); see
    // `vavl bench`'s breakdown by shape.
    measure("FF linear1 forward  NT 4841 × 2048 × 512", 4841, 2048, 512, 1);
    measure("FF linear2 forward  NT 4841 × 512 × 2048", 4841, 512, 2048, 1);
    measure("attention projection NT 4841 × 512 × 512", 4841, 512, 512, 1);
    measure("FF linear1 input gradient NN 4841 × 512 × 2048", 4841, 512, 2048, 0);
    measure("FF linear2 input gradient NN 4841 × 2048 × 512", 4841, 2048, 512, 0);
    measureColdOperands(4841, 2048, 512);
    return 0;
}
