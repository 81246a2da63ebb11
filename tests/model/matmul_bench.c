/*  matmul_bench - CPU time of one bly_kern_matmul (a benchmark, not a test)

    Usage: matmul_bench TYPE N_IN N_OUT [TOKENS [THREADS [REPEATS]]]
    TYPE: q8_0, q4_k, q6_k, f16 or f32. Random weights (scales kept small),
    random activations; prints the minimum CPU time of REPEATS calls (the
    process's, so all threads count) and nanoseconds per 32-element
    row-token product. docs/BENCHMARKS.md quotes it for the prefill tiles. */

#include "bly_kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint32_t s_rng = 12345;

static uint32_t
s_next(void)
{
    s_rng = s_rng * 1664525u + 1013904223u;
    return s_rng >> 8;
}

static double
s_cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + ts.tv_nsec * 1e-9;
}

//  Random bytes, then every block scale set to a small positive half.
static void
s_fill(bly_type_t type, uint8_t *w, size_t n_in, size_t n_out)
{
    size_t row = bly_ref_row_size(type, n_in);
    for (size_t i = 0; i < row * n_out; i++)
        w[i] = (uint8_t) s_next();
    for (size_t r = 0; r < n_out; r++) {
        uint8_t *base = w + r * row;
        for (size_t i = 0; type == BLY_TYPE_F32 && i < n_in; i++)
            ((float *) base)[i] = (float) (s_next() / 8388608.0 - 1.0);
        for (size_t i = 0; type == BLY_TYPE_F16 && i < n_in; i++)
            ((uint16_t *) base)[i] = bly_fp32_to_fp16((float) (s_next() / 8388608.0 - 1.0));
        for (size_t b = 0; type == BLY_TYPE_Q8_0 && b < n_in / BLY_QK8_0; b++)
            ((bly_block_q8_0_t *) base)[b].d = bly_fp32_to_fp16(0.01f);
        for (size_t b = 0; type == BLY_TYPE_Q4_K && b < n_in / BLY_QK_K; b++) {
            ((bly_block_q4_k_t *) base)[b].d = bly_fp32_to_fp16(0.002f);
            ((bly_block_q4_k_t *) base)[b].dmin = bly_fp32_to_fp16(0.001f);
        }
        for (size_t b = 0; type == BLY_TYPE_Q6_K && b < n_in / BLY_QK_K; b++)
            ((bly_block_q6_k_t *) base)[b].d = bly_fp32_to_fp16(0.0005f);
    }
}

int
main(int argc, char **argv)
{
    static const struct { const char *name; bly_type_t type; size_t block; } types[] = {
        {"q8_0", BLY_TYPE_Q8_0, 32}, {"q4_k", BLY_TYPE_Q4_K, 256}, {"q6_k", BLY_TYPE_Q6_K, 256},
        {"f16", BLY_TYPE_F16, 1}, {"f32", BLY_TYPE_F32, 1},
    };
    size_t t = 0;
    while (argc > 1 && t < 5 && strcmp(argv[1], types[t].name) != 0)
        t++;
    long n_in = argc > 2 ? atol(argv[2]) : 0, n_out = argc > 3 ? atol(argv[3]) : 0;
    long n_tok = argc > 4 ? atol(argv[4]) : 128, n_thr = argc > 5 ? atol(argv[5]) : 1;
    long reps = argc > 6 ? atol(argv[6]) : 20;
    if (argc < 4 || t == 5 || n_in <= 0 || n_in > 65536 || n_in % (long) types[t].block
        || n_out <= 0 || n_out > 65536 || n_tok <= 0 || n_tok > 512 || n_thr <= 0 || n_thr > 16
        || reps <= 0 || reps > 1000) {
        fprintf(stderr, "usage: matmul_bench q8_0|q4_k|q6_k|f16|f32 N_IN N_OUT [TOKENS<=512 "
                        "[THREADS<=16 [REPEATS<=1000]]]\n");
        return 2;
    }
    bly_type_t type = types[t].type;
    uint8_t *w = malloc(bly_ref_row_size(type, (size_t) n_in) * (size_t) n_out);
    float *x = malloc((size_t) (n_in * n_tok) * sizeof(float));
    float *y = malloc((size_t) (n_out * n_tok) * sizeof(float));
    void *scratch = malloc(bly_kern_matmul_scratch_size(type, (size_t) n_in, (size_t) n_tok));
    bly_pool_t *pool = bly_pool_new((size_t) n_thr);
    if (!w || !x || !y || !scratch || !pool) {
        fprintf(stderr, "matmul_bench: out of memory\n");
        return 1;
    }
    s_fill(type, w, (size_t) n_in, (size_t) n_out);
    for (long i = 0; i < n_in * n_tok; i++)
        x[i] = (float) (s_next() / 8388608.0 - 1.0);
    double best = 1e30;
    for (long k = 0; k < reps; k++) {
        double t0 = s_cpu_seconds();
        bly_kern_matmul(pool, type, w, (size_t) n_in, (size_t) n_out, x, (size_t) n_tok, y,
                        scratch);
        double dt = s_cpu_seconds() - t0;
        best = dt < best ? dt : best;
    }
    double pairs = (double) n_out * (double) n_tok * (double) n_in / 32.0;
    printf("%s %ldx%ld x%ld tokens, %ld threads (%s): min %.3f ms CPU, %.3f ns per 32-element "
           "product (y[0] = %.6g)\n", types[t].name, n_in, n_out, n_tok, n_thr,
           bly_kern_isa_name(bly_kern_isa()), best * 1e3, best * 1e9 / pairs, (double) y[0]);
    bly_pool_destroy(&pool);
    free(w);
    free(x);
    free(y);
    free(scratch);
    return 0;
}
