/*  test_kernels - the optimised CPU kernels and the thread pool against the
    scalar references. Tolerance: normalised mean squared error (NMSE,
    sum (a-b)^2 / sum b^2) below 1e-10 for matmuls and attention (same
    quantized inputs, only the float summation order differs); activation
    quantization must be bit-identical. Odd sizes throughout. */

#include "bly_kernels.h"

#include <check.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static uint32_t s_rng = 777;

static float
s_randf(void)
{
    s_rng = s_rng * 1664525u + 1013904223u;
    return (float) ((s_rng >> 8) / 8388608.0 - 1.0);
}

static double
s_nmse(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num += ((double) a[i] - b[i]) * ((double) a[i] - b[i]);
        den += (double) b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

//  Random but well-formed weight rows: float types hold small values, block
//  scales are small positive halves, quants are random bytes.
static void
s_fill_weights(bly_type_t type, void *w, size_t n_in, size_t rows)
{
    size_t row = bly_ref_row_size(type, n_in);
    uint8_t *bytes = w;
    for (size_t i = 0; i < row * rows; i++)
        bytes[i] = (uint8_t) ((s_rng = s_rng * 1664525u + 1013904223u) >> 24);
    for (size_t r = 0; r < rows; r++) {
        uint8_t *base = bytes + r * row;
        for (size_t i = 0; i < n_in && type == BLY_TYPE_F32; i++)
            ((float *) base)[i] = s_randf();
        for (size_t i = 0; i < n_in && type == BLY_TYPE_F16; i++)
            ((uint16_t *) base)[i] = bly_fp32_to_fp16(s_randf());
        for (size_t i = 0; i < n_in && type == BLY_TYPE_BF16; i++)
            ((uint16_t *) base)[i] = bly_fp32_to_bf16(s_randf());
        for (size_t b = 0; type == BLY_TYPE_Q8_0 && b < n_in / 32; b++)
            ((bly_block_q8_0_t *) base)[b].d = bly_fp32_to_fp16(0.01f + 0.01f * s_randf());
        for (size_t b = 0; type == BLY_TYPE_Q4_K && b < n_in / 256; b++) {
            ((bly_block_q4_k_t *) base)[b].d = bly_fp32_to_fp16(0.002f);
            ((bly_block_q4_k_t *) base)[b].dmin = bly_fp32_to_fp16(0.001f);
        }
        for (size_t b = 0; type == BLY_TYPE_Q6_K && b < n_in / 256; b++)
            ((bly_block_q6_k_t *) base)[b].d = bly_fp32_to_fp16(0.0005f);
    }
}

static void
s_check_matmul(bly_pool_t *pool, bly_type_t type, size_t n_in, size_t n_out, size_t n_tok)
{
    size_t w_size = bly_ref_row_size(type, n_in) * n_out;
    size_t scratch_size = bly_kern_matmul_scratch_size(type, n_in, n_tok);
    size_t ref_size = bly_ref_matmul_scratch_size(type, n_in, n_tok);
    uint8_t *w = malloc(w_size), *s1 = malloc(scratch_size), *s2 = malloc(scratch_size);
    float *x = malloc(n_in * n_tok * sizeof(float));
    float *y1 = malloc(n_out * n_tok * sizeof(float)), *y2 = malloc(n_out * n_tok * sizeof(float));
    ck_assert(w && s1 && s2 && x && y1 && y2);
    s_fill_weights(type, w, n_in, n_out);
    for (size_t i = 0; i < n_in * n_tok; i++)
        x[i] = s_randf() * 2.0f;
    bly_ref_matmul(type, w, n_in, n_out, x, n_tok, y1, s1);
    bly_kern_matmul(pool, type, w, n_in, n_out, x, n_tok, y2, s2);
    ck_assert_msg(memcmp(s1, s2, ref_size) == 0, "quantized activations differ, type %d",
                  type);
    double e = s_nmse(y2, y1, n_out * n_tok);
    ck_assert_msg(e < 1e-10, "type %d %zux%zu x%zu: nmse %g", type, n_in, n_out, n_tok, e);
    free(w);
    free(s1);
    free(s2);
    free(x);
    free(y1);
    free(y2);
}

static void
s_check_all_types(size_t n_threads)
{
    bly_pool_t *pool = bly_pool_new(n_threads);
    ck_assert_ptr_nonnull(pool);
    const size_t toks[] = {1, 3, 4, 9};
    for (size_t t = 0; t < 4; t++) {
        s_check_matmul(pool, BLY_TYPE_F32, 37, 13, toks[t]);
        s_check_matmul(pool, BLY_TYPE_F16, 45, 7, toks[t]);
        s_check_matmul(pool, BLY_TYPE_BF16, 19, 11, toks[t]);
        s_check_matmul(pool, BLY_TYPE_Q8_0, 160, 67, toks[t]);
        s_check_matmul(pool, BLY_TYPE_Q8_0, 96, 10, toks[t] * 3);
        s_check_matmul(pool, BLY_TYPE_Q4_K, 512, 9, toks[t]);
        s_check_matmul(pool, BLY_TYPE_Q6_K, 256, 5, toks[t]);
    }
    bly_pool_destroy(&pool);
    ck_assert_ptr_null(pool);
}

START_TEST(test_matmul_simd)
{
    bly_kern_set_isa(BLY_KERN_AVX2);
    s_check_all_types(1);
    s_check_all_types(3);
}
END_TEST

START_TEST(test_matmul_portable)
{
    ck_assert_int_eq(bly_kern_set_isa(BLY_KERN_PORTABLE), BLY_KERN_PORTABLE);
    s_check_all_types(2);
    bly_kern_set_isa(BLY_KERN_AVX2);
}
END_TEST

//  A multi call equals separate calls, bit for bit (odd row counts).
START_TEST(test_matmul_multi)
{
    enum { IN = 96, T = 6 };
    const size_t outs[3] = {13, 7, 21};
    static uint8_t w[3][21 * 102];
    static float x[T * IN], y1[3][T * 21], y2[3][T * 21];
    static uint8_t scratch[8192];
    ck_assert_uint_le(bly_kern_matmul_scratch_size(BLY_TYPE_Q8_0, IN, T), sizeof(scratch));
    for (size_t i = 0; i < T * IN; i++)
        x[i] = s_randf();
    bly_pool_t *pool = bly_pool_new(2);
    bly_kern_mat_t mats[3];
    for (size_t m = 0; m < 3; m++) {
        s_fill_weights(BLY_TYPE_Q8_0, w[m], IN, outs[m]);
        mats[m] = (bly_kern_mat_t) {BLY_TYPE_Q8_0, w[m], outs[m], y2[m]};
        bly_kern_matmul(pool, BLY_TYPE_Q8_0, w[m], IN, outs[m], x, T, y1[m], scratch);
    }
    for (size_t t = 1; t <= T; t += T - 1) {
        bly_kern_matmul_multi(pool, mats, 3, IN, x, t, scratch);
        for (size_t m = 0; m < 3; m++)
            for (size_t i = 0; i < t * outs[m]; i++)
                ck_assert(y1[m][i] == y2[m][i]);
    }
    bly_pool_destroy(&pool);
}
END_TEST

START_TEST(test_quantize_exact)
{
    //  Includes exact halves, zeros, a zero block, huge and tiny values.
    enum { N = 32 * 9 };
    float x[N];
    for (int i = 0; i < N; i++)
        x[i] = s_randf() * (i < 64 ? 1e-3f : 40.0f);
    for (int i = 64; i < 96; i++)
        x[i] = 0.0f;
    for (int i = 96; i < 128; i++)
        x[i] = (float) (i - 112) * 0.5f;
    bly_block_q8_0_t a[N / 32], b[N / 32];
    bly_ref_quantize_row_q8_0(x, a, N);
    bly_kern_quantize_row(BLY_TYPE_Q8_0, x, b, N);
    ck_assert(memcmp(a, b, sizeof(a)) == 0);
    uint16_t h1[N], h2[N];
    bly_ref_quantize_row(BLY_TYPE_F16, x, h1, N - 3);
    bly_kern_quantize_row(BLY_TYPE_F16, x, h2, N - 3);
    ck_assert(memcmp(h1, h2, (N - 3) * 2) == 0);
}
END_TEST

//  The AVX2 Q8_0 kernels (4x4 tile, 4-row decode, 1-row tails, vec_dot)
//  all compute a row-token product as documented in bly_kernels.c: exact
//  integer sums of elements 0..15 and 16..31 per block, each accumulated
//  in block order with fma(dw * dx, sum, acc), then lo + hi. Checked bit for
//  bit against that recipe written out in scalar C, for row and token
//  counts that exercise every kernel and tail.
static float
s_q8_recipe(const bly_block_q8_0_t *w, const bly_block_q8_0_t *x, size_t n_blocks)
{
    float acc[2] = {0.0f, 0.0f};
    for (size_t b = 0; b < n_blocks; b++) {
        float s = bly_fp16_to_fp32(w[b].d) * bly_fp16_to_fp32(x[b].d);
        for (size_t half = 0; half < 2; half++) {
            int32_t sum = 0;
            for (size_t i = 16 * half; i < 16 * half + 16; i++)
                sum += (int32_t) w[b].qs[i] * x[b].qs[i];
            acc[half] = fmaf(s, (float) sum, acc[half]);
        }
    }
    return acc[0] + acc[1];
}

START_TEST(test_q8_0_avx2_recipe)
{
    if (bly_kern_set_isa(BLY_KERN_AVX2) != BLY_KERN_AVX2)
        return;   //  Nothing but the portable path on this CPU.
    enum { IN = 160, OUT = 11, T = 9, NB = IN / 32 };
    static bly_block_q8_0_t w[OUT][NB], xq[T][NB];
    static float x[T * IN], y[T * OUT];
    static uint8_t scratch[16384];
    ck_assert_uint_le(bly_kern_matmul_scratch_size(BLY_TYPE_Q8_0, IN, T), sizeof(scratch));
    s_fill_weights(BLY_TYPE_Q8_0, w, IN, OUT);
    w[3][2].qs[5] = -128;   //  The one value whose magnitude needs 8 bits.
    for (size_t i = 0; i < T * IN; i++)
        x[i] = s_randf() * 3.0f;
    for (size_t t = 0; t < T; t++)
        bly_ref_quantize_row_q8_0(x + t * IN, xq[t], IN);
    bly_pool_t *pool = bly_pool_new(2);
    const size_t counts[] = {1, 2, 3, 4, 5, 8, 9};
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        size_t n = counts[c];
        bly_kern_matmul(pool, BLY_TYPE_Q8_0, w, IN, OUT, x, n, y, scratch);
        for (size_t t = 0; t < n; t++)
            for (size_t r = 0; r < OUT; r++) {
                float want = s_q8_recipe(w[r], xq[t], NB);
                ck_assert_msg(memcmp(&y[t * OUT + r], &want, sizeof(float)) == 0,
                              "%zu tokens: row %zu token %zu: %.9g vs %.9g", n, r, t,
                              y[t * OUT + r], want);
                float dot = bly_kern_vec_dot(BLY_TYPE_Q8_0, w[r], xq[t], IN);
                ck_assert(memcmp(&dot, &want, sizeof(float)) == 0);
            }
    }
    bly_pool_destroy(&pool);
}
END_TEST

//  K-quant matmuls unpack each weight superblock once for up to four
//  tokens: every token's result equals bly_kern_vec_dot on its own, bit for
//  bit, for any token count (so prefill, decode and batch splits agree).
static void
s_check_kquant_tokens(bly_pool_t *pool, bly_type_t type, size_t n_in, size_t n_out)
{
    enum { T = 9 };
    size_t row = bly_ref_row_size(type, n_in);
    size_t x_row = bly_ref_row_size(bly_ref_vec_dot_type(type), n_in);
    uint8_t *w = malloc(row * n_out), *xq = malloc(x_row * T);
    uint8_t *scratch = malloc(bly_kern_matmul_scratch_size(type, n_in, T));
    float *x = malloc(n_in * T * sizeof(float)), *y = malloc(n_out * T * sizeof(float));
    ck_assert(w && xq && scratch && x && y);
    s_fill_weights(type, w, n_in, n_out);
    for (size_t i = 0; i < n_in * T; i++)
        x[i] = s_randf() * 2.0f;
    for (size_t t = 0; t < T; t++)
        bly_ref_quantize_row(type, x + t * n_in, xq + t * x_row, n_in);
    const size_t counts[] = {1, 3, 4, 5, 9};
    for (size_t c = 0; c < 5; c++) {
        bly_kern_matmul(pool, type, w, n_in, n_out, x, counts[c], y, scratch);
        for (size_t t = 0; t < counts[c]; t++)
            for (size_t r = 0; r < n_out; r++) {
                float want = bly_kern_vec_dot(type, w + r * row, xq + t * x_row, n_in);
                ck_assert_msg(memcmp(&y[t * n_out + r], &want, sizeof(float)) == 0,
                              "type %d, %zu tokens: row %zu token %zu: %.9g vs %.9g", type,
                              counts[c], r, t, y[t * n_out + r], want);
            }
    }
    free(w);
    free(xq);
    free(scratch);
    free(x);
    free(y);
}

START_TEST(test_kquant_tokens_agree)
{
    bly_pool_t *pool = bly_pool_new(2);
    s_check_kquant_tokens(pool, BLY_TYPE_Q4_K, 512, 7);
    s_check_kquant_tokens(pool, BLY_TYPE_Q6_K, 768, 5);
    bly_pool_destroy(&pool);
}
END_TEST

START_TEST(test_attention)
{
    enum { HD = 20, NH = 6, NKV = 2, POS = 5, NT = 7, CTX = POS + NT };
    static float q[NT * NH * HD], k[CTX * NKV * HD], v[CTX * NKV * HD];
    static float out1[NT * NH * HD], out2[NT * NH * HD], scores[4 * CTX];
    for (size_t i = 0; i < sizeof(q) / 4; i++)
        q[i] = s_randf() * 3;
    for (size_t i = 0; i < sizeof(k) / 4; i++) {
        k[i] = s_randf() * 3;
        v[i] = s_randf();
    }
    for (size_t t = 0; t < NT; t++)
        bly_ref_attention(out1 + t * NH * HD, q + t * NH * HD, k, v, NH, NKV, HD, POS + t + 1,
                          scores);
    for (size_t threads = 1; threads <= 3; threads++) {
        bly_pool_t *pool = bly_pool_new(threads);
        memset(out2, 0, sizeof(out2));
        bly_kern_attention(pool, out2, q, k, v, NH, NKV, HD, NT, POS, scores, CTX);
        double e = s_nmse(out2, out1, NT * NH * HD);
        ck_assert_msg(e < 1e-10, "threads %zu nmse %g", threads, e);
        bly_pool_destroy(&pool);
    }
}
END_TEST

typedef struct {
    atomic_int calls;
    atomic_int mask;
} s_count_t;

static void
s_count(void *arg, size_t index, size_t n_threads)
{
    s_count_t *c = arg;
    ck_assert_uint_lt(index, n_threads);
    atomic_fetch_add(&c->calls, 1);
    atomic_fetch_or(&c->mask, 1 << index);
}

START_TEST(test_pool)
{
    for (size_t n = 1; n <= 4; n++) {
        bly_pool_t *pool = bly_pool_new(n);
        ck_assert_uint_eq(bly_pool_size(pool), n);
        s_count_t c = {0};
        for (int run = 0; run < 300; run++)
            bly_pool_run(pool, s_count, &c);
        ck_assert_int_eq(atomic_load(&c.calls), 300 * (int) n);
        ck_assert_int_eq(atomic_load(&c.mask), (1 << n) - 1);
        bly_pool_reset_chunks(pool);
        ck_assert_uint_eq(bly_pool_next_chunk(pool), 0);
        ck_assert_uint_eq(bly_pool_next_chunk(pool), 1);
        bly_pool_destroy(&pool);
        bly_pool_destroy(&pool);   //  Twice is harmless.
    }
}
END_TEST

//  Dynamic runs: every chunk is taken exactly once, whichever threads join.
typedef struct {
    bly_pool_t *pool;
    atomic_int taken[64];
} s_chunks_t;

static void
s_take_chunks(void *arg, size_t index, size_t n_threads)
{
    s_chunks_t *c = arg;
    (void) index;
    (void) n_threads;
    size_t i;
    while ((i = bly_pool_next_chunk(c->pool)) < 64)
        atomic_fetch_add(&c->taken[i], 1);
}

START_TEST(test_pool_dynamic)
{
    for (size_t n = 1; n <= 4; n++) {
        s_chunks_t c = {.pool = bly_pool_new(n)};
        for (int run = 0; run < 300; run++) {
            bly_pool_reset_chunks(c.pool);
            bly_pool_run_dynamic(c.pool, s_take_chunks, &c);
            //  A static run in between must still reach every thread.
            s_count_t k = {0};
            bly_pool_run(c.pool, s_count, &k);
            ck_assert_int_eq(atomic_load(&k.calls), (int) n);
        }
        for (int i = 0; i < 64; i++)
            ck_assert_int_eq(atomic_load(&c.taken[i]), 300);
        bly_pool_destroy(&c.pool);
    }
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_matmul_simd);
    tcase_add_test(tc, test_matmul_portable);
    tcase_add_test(tc, test_quantize_exact);
    tcase_add_test(tc, test_matmul_multi);
    tcase_add_test(tc, test_q8_0_avx2_recipe);
    tcase_add_test(tc, test_kquant_tokens_agree);
    tcase_add_test(tc, test_attention);
    tcase_add_test(tc, test_pool);
    tcase_add_test(tc, test_pool_dynamic);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
