/*  test_vk_ops - every Vulkan kernel against the scalar CPU reference (bly_ref).

    Tolerances (normalised mean squared error, sum (a-b)^2 / sum b^2): 1e-7 for element-wise
    kernels, 5e-4 for matrix products; activation quantization and the embedding gather must
    be bit-identical. Sizes are odd, not multiples of the workgroup, and the split path is
    forced with a small binding limit. Both reduction paths (subgroup arithmetic and the
    shared-memory fallback) run. The validation layer is on; its errors fail the test. */

#include "bly_vk_ops.h"
#include "cpu/bly_ref.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t s_rng = 4242;

static uint32_t
s_rand(void)
{
    s_rng = s_rng * 1664525u + 1013904223u;
    return s_rng;
}

static float
s_randf(void)
{
    return (float) ((s_rand() >> 8) / 8388608.0 - 1.0);
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

static bly_vk_t *
s_open(bool no_subgroup, uint64_t split_bytes)
{
    bly_vk_options_t opt = {.validation = true,
                            .no_subgroup = no_subgroup, .split_bytes = split_bytes};
    char error[256] = "";
    bly_vk_t *vk = bly_vk_new(&opt, error, sizeof(error));
    ck_assert_msg(vk != NULL, "cannot open a device: %s", error);
    ck_assert(bly_vk_uses_subgroups(vk) == (!no_subgroup && bly_vk_info(vk)->subgroup_arith));
    return vk;
}

static void
s_close(bly_vk_t **vk)
{
    bly_vk_destroy(vk);
    ck_assert_ptr_null(*vk);
    ck_assert_msg(bly_vk_validation_errors() == 0, "validation errors: %llu",
                  (unsigned long long) bly_vk_validation_errors());
}

static bly_vk_buf_t *
s_upload(bly_vk_t *vk, const void *data, size_t bytes)
{
    bly_vk_buf_t *buf = bly_vk_buf_new(vk, bytes);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(bly_vk_buf_write(buf, 0, data, bytes), 0);
    return buf;
}

static void
s_download(bly_vk_buf_t *buf, void *data, size_t bytes)
{
    ck_assert_int_eq(bly_vk_buf_read(buf, 0, data, bytes), 0);
}

static float *
s_floats(size_t n, float scale)
{
    float *x = malloc(n * sizeof(float));
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++)
        x[i] = s_randf() * scale;
    return x;
}

//  Random well-formed weight rows (small float values, small positive block scales).
static void *
s_weights(bly_type_t type, size_t cols, size_t rows)
{
    size_t row = bly_ref_row_size(type, cols);
    uint8_t *w = malloc(row * rows);
    ck_assert_ptr_nonnull(w);
    for (size_t i = 0; i < row * rows; i++)
        w[i] = (uint8_t) (s_rand() >> 24);
    for (size_t r = 0; r < rows; r++) {
        uint8_t *base = w + r * row;
        for (size_t i = 0; i < cols && type == BLY_TYPE_F32; i++)
            ((float *) base)[i] = s_randf();
        for (size_t i = 0; i < cols && type == BLY_TYPE_F16; i++)
            ((uint16_t *) base)[i] = bly_fp32_to_fp16(s_randf());
        for (size_t i = 0; i < cols && type == BLY_TYPE_BF16; i++)
            ((uint16_t *) base)[i] = bly_fp32_to_bf16(s_randf());
        for (size_t b = 0; type == BLY_TYPE_Q8_0 && b < cols / 32; b++)
            ((bly_block_q8_0_t *) base)[b].d = bly_fp32_to_fp16(0.01f + 0.01f * s_randf());
        for (size_t b = 0; type == BLY_TYPE_Q4_K && b < cols / 256; b++) {
            ((bly_block_q4_k_t *) base)[b].d = bly_fp32_to_fp16(0.002f + 0.001f * s_randf());
            ((bly_block_q4_k_t *) base)[b].dmin = bly_fp32_to_fp16(0.001f);
        }
        for (size_t b = 0; type == BLY_TYPE_Q6_K && b < cols / 256; b++)
            ((bly_block_q6_k_t *) base)[b].d = bly_fp32_to_fp16(0.0005f + 0.0002f * s_randf());
    }
    return w;
}

/* ---- Embedding gather -------------------------------------------------- */

static void
s_check_get_rows(bly_vk_t *vk, bly_type_t type, uint32_t cols, uint32_t rows)
{
    void *w = s_weights(type, cols, rows);
    bly_vk_weight_t vw;
    ck_assert_int_eq(bly_vk_weight_init(vk, &vw, type, rows, cols, w), 0);
    uint32_t ids[5] = {0, rows - 1, rows / 2, 3, rows - 1};
    uint32_t n_ids = 5;
    bly_vk_buf_t *ib = s_upload(vk, ids, sizeof(ids));
    bly_vk_buf_t *yb = bly_vk_buf_new(vk, (n_ids * cols + 7) * sizeof(float));
    ck_assert_ptr_nonnull(yb);
    ck_assert_int_eq(bly_vk_begin(vk), 0);
    ck_assert_int_eq(bly_vk_op_get_rows(vk, &vw, ib, n_ids, yb, 7), 0);
    ck_assert_int_eq(bly_vk_submit(vk), 0);
    float *got = malloc((n_ids * cols + 7) * sizeof(float)), *want = malloc(cols * sizeof(float));
    ck_assert(got && want);
    s_download(yb, got, (n_ids * cols + 7) * sizeof(float));
    size_t row = bly_ref_row_size(type, cols);
    for (uint32_t t = 0; t < n_ids; t++) {
        bly_ref_dequantize_row(type, (uint8_t *) w + ids[t] * row, want, cols);
        ck_assert_msg(memcmp(got + 7 + t * cols, want, cols * sizeof(float)) == 0,
                      "type %d row %u differs", type, ids[t]);
    }
    free(got);
    free(want);
    free(w);
    bly_vk_buf_destroy(&ib);
    bly_vk_buf_destroy(&yb);
    bly_vk_weight_fini(&vw);
}

START_TEST(test_get_rows)
{
    //  _i: 0 subgroup reductions, 1 the shared-memory fallback; split forces row chunks.
    bly_vk_t *vk = s_open(_i == 1, _i == 1 ? 2048 : 0);
    s_check_get_rows(vk, BLY_TYPE_F32, 67, 41);
    s_check_get_rows(vk, BLY_TYPE_F16, 45, 33);
    s_check_get_rows(vk, BLY_TYPE_BF16, 19, 29);
    s_check_get_rows(vk, BLY_TYPE_Q8_0, 96, 37);
    s_check_get_rows(vk, BLY_TYPE_Q4_K, 256, 11);
    s_check_get_rows(vk, BLY_TYPE_Q6_K, 512, 9);
    s_close(&vk);
}
END_TEST

/* ---- Matrix products --------------------------------------------------- */

static void
s_check_matmul(bly_vk_t *vk, bly_type_t type, uint32_t cols, uint32_t rows, uint32_t n_tok)
{
    void *w = s_weights(type, cols, rows);
    float *x = s_floats((size_t) cols * n_tok, 2.0f);
    float *want = malloc((size_t) rows * n_tok * sizeof(float));
    void *scratch = malloc(bly_ref_matmul_scratch_size(type, cols, n_tok));
    ck_assert(want && scratch);
    bly_ref_matmul(type, w, cols, rows, x, n_tok, want, scratch);

    bly_vk_weight_t vw;
    ck_assert_int_eq(bly_vk_weight_init(vk, &vw, type, rows, cols, w), 0);
    bly_vk_buf_t *xb = s_upload(vk, x, (size_t) cols * n_tok * sizeof(float));
    bly_vk_buf_t *yb = bly_vk_buf_new(vk, (size_t) rows * n_tok * sizeof(float));
    bly_vk_qscratch_t qs;
    ck_assert_int_eq(bly_vk_qscratch_init(vk, &qs, (uint64_t) cols * n_tok), 0);
    ck_assert_int_eq(bly_vk_begin(vk), 0);
    ck_assert_int_eq(bly_vk_op_matmul(vk, &vw, xb, 0, n_tok, &qs, yb, 0), 0);
    ck_assert_int_eq(bly_vk_submit(vk), 0);
    float *got = malloc((size_t) rows * n_tok * sizeof(float));
    ck_assert_ptr_nonnull(got);
    s_download(yb, got, (size_t) rows * n_tok * sizeof(float));
    double e = s_nmse(got, want, (size_t) rows * n_tok);
    ck_assert_msg(e < 5e-4, "type %d %ux%u x%u: nmse %g", type, cols, rows, n_tok, e);
    //  Same quantized inputs, integer block sums: far below the stated tolerance.
    ck_assert_msg(e < 1e-9, "type %d %ux%u x%u: nmse %g", type, cols, rows, n_tok, e);
    free(got);
    free(want);
    free(scratch);
    free(x);
    free(w);
    bly_vk_qscratch_fini(&qs);
    bly_vk_buf_destroy(&xb);
    bly_vk_buf_destroy(&yb);
    bly_vk_weight_fini(&vw);
}

START_TEST(test_matmul)
{
    bly_vk_t *vk = s_open(_i == 1, 0);
    const uint32_t toks[] = {1, 3, 6};
    //  Under valgrind one token only: a 6-token K-quant product outlasts the fence timeout.
    size_t n_toks = getenv("BLY_VALGRIND") ? 1 : 3;
    for (size_t t = 0; t < n_toks; t++) {
        s_check_matmul(vk, BLY_TYPE_F32, 67, 37, toks[t]);
        s_check_matmul(vk, BLY_TYPE_F16, 45, 13, toks[t]);
        s_check_matmul(vk, BLY_TYPE_BF16, 19, 11, toks[t]);
        s_check_matmul(vk, BLY_TYPE_Q8_0, 160, 67, toks[t]);
        s_check_matmul(vk, BLY_TYPE_Q4_K, 512, 9, toks[t]);
        s_check_matmul(vk, BLY_TYPE_Q6_K, 768, 7, toks[t]);
    }
    s_close(&vk);
}
END_TEST

START_TEST(test_matmul_split)
{
    //  A binding limit of 2 KiB splits every matrix into row chunks (an LM head in small).
    bly_vk_t *vk = s_open(false, 2048);
    ck_assert_int_eq(bly_vk_split_bytes(vk), 2048);
    s_check_matmul(vk, BLY_TYPE_F32, 64, 301, 1);
    s_check_matmul(vk, BLY_TYPE_Q8_0, 96, 157, 1);
    s_check_matmul(vk, BLY_TYPE_Q8_0, 96, 157, 5);
    s_check_matmul(vk, BLY_TYPE_Q6_K, 256, 23, 2);
    s_check_matmul(vk, BLY_TYPE_Q4_K, 256, 29, 1);
    //  A row larger than one binding cannot be split by rows: refused, not crashed.
    bly_vk_weight_t vw;
    void *w = s_weights(BLY_TYPE_F32, 1024, 2);
    ck_assert_int_eq(bly_vk_weight_init(vk, &vw, BLY_TYPE_F32, 2, 1024, w), -1);
    ck_assert_ptr_null(vw.buf);
    //  Columns that are not whole blocks are refused.
    ck_assert_int_eq(bly_vk_weight_init(vk, &vw, BLY_TYPE_Q8_0, 2, 33, w), -1);
    ck_assert_int_eq(bly_vk_weight_init(vk, &vw, BLY_TYPE_Q4_0, 2, 32, w), -1);
    free(w);
    s_close(&vk);
}
END_TEST

/* ---- Activation quantization ------------------------------------------- */

START_TEST(test_quantize)
{
    bly_vk_t *vk = s_open(_i == 1, 0);
    const size_t n = 512 * 3;
    float *x = s_floats(n, 3.0f);
    //  Ties: with amax 127 the Q8_0 scale is 1, so x.5 must round to even; a zero block.
    for (size_t j = 0; j < 32; j++)
        x[j] = j == 0 ? 127.0f : (float) j - 16.5f;
    for (size_t j = 32; j < 64; j++)
        x[j] = 0.0f;
    bly_block_q8_0_t *r0 = malloc(n / 32 * sizeof(*r0));
    bly_block_q8_k_t *rk = malloc(n / 256 * sizeof(*rk));
    int8_t *q = malloc(n);
    float *d = malloc(n / 32 * sizeof(float));
    ck_assert(r0 && rk && q && d);
    bly_ref_quantize_row_q8_0(x, r0, n);
    bly_ref_quantize_row_q8_k(x, rk, n);
    bly_vk_buf_t *xb = s_upload(vk, x, n * sizeof(float));
    bly_vk_qscratch_t qs;
    ck_assert_int_eq(bly_vk_qscratch_init(vk, &qs, n), 0);
    for (int pass = 0; pass < 2; pass++) {
        bly_type_t type = pass == 0 ? BLY_TYPE_Q8_0 : BLY_TYPE_Q8_K;
        size_t qk = pass == 0 ? 32 : 256;
        ck_assert_int_eq(bly_vk_begin(vk), 0);
        ck_assert_int_eq(bly_vk_op_quantize(vk, type, xb, 0, n, &qs), 0);
        ck_assert_int_eq(bly_vk_submit(vk), 0);
        s_download(qs.q, q, n);
        s_download(qs.d, d, n / qk * sizeof(float));
        for (size_t b = 0; b < n / qk; b++) {
            const int8_t *want = pass == 0 ? r0[b].qs : rk[b].qs;
            float want_d = pass == 0 ? bly_fp16_to_fp32(r0[b].d) : rk[b].d;
            ck_assert_msg(memcmp(q + b * qk, want, qk) == 0, "type %d block %zu", type, b);
            ck_assert_msg(d[b] == want_d, "type %d block %zu: d %a want %a", type, b,
                          (double) d[b], (double) want_d);
        }
    }
    //  More values than the scratch holds: refused.
    ck_assert_int_eq(bly_vk_begin(vk), 0);
    ck_assert_int_eq(bly_vk_op_quantize(vk, BLY_TYPE_Q8_0, xb, 0, n + 32, &qs), -1);
    ck_assert_int_eq(bly_vk_submit(vk), -1);
    bly_vk_qscratch_fini(&qs);
    bly_vk_buf_destroy(&xb);
    free(x);
    free(r0);
    free(rk);
    free(q);
    free(d);
    s_close(&vk);
}
END_TEST

/* ---- Element-wise ------------------------------------------------------ */

START_TEST(test_rmsnorm)
{
    bly_vk_t *vk = s_open(_i == 1, 0);
    //  Whole rows (3 x 67) and per-head norm (5 tokens x 4 heads x 16), the second in place.
    const uint32_t shapes[2][2] = {{67, 3}, {16, 20}};
    for (int s = 0; s < 2; s++) {
        uint32_t n = shapes[s][0], rows = shapes[s][1];
        float *x = s_floats((size_t) n * rows + 5, 4.0f), *w = s_floats(n, 1.0f);
        float *want = malloc((size_t) n * rows * sizeof(float));
        float *got = malloc(((size_t) n * rows + 5) * sizeof(float));
        ck_assert(want && got);
        for (uint32_t r = 0; r < rows; r++)
            bly_ref_rmsnorm(want + r * n, x + 5 + r * n, w, n, 1e-6f);
        bly_vk_buf_t *xb = s_upload(vk, x, ((size_t) n * rows + 5) * sizeof(float));
        bly_vk_buf_t *wb = s_upload(vk, w, n * sizeof(float));
        bly_vk_buf_t *yb = s == 0 ? bly_vk_buf_new(vk, (size_t) n * rows * 4) : xb;
        uint32_t y_off = s == 0 ? 0 : 5;
        ck_assert_int_eq(bly_vk_begin(vk), 0);
        ck_assert_int_eq(bly_vk_op_rmsnorm(vk, xb, 5, wb, yb, y_off, n, rows, 1e-6f), 0);
        ck_assert_int_eq(bly_vk_submit(vk), 0);
        s_download(yb, got, ((size_t) n * rows + y_off) * sizeof(float));
        double e = s_nmse(got + y_off, want, (size_t) n * rows);
        ck_assert_msg(e < 1e-7, "rmsnorm %ux%u nmse %g", n, rows, e);
        if (yb != xb)
            bly_vk_buf_destroy(&yb);
        bly_vk_buf_destroy(&xb);
        bly_vk_buf_destroy(&wb);
        free(x);
        free(w);
        free(want);
        free(got);
    }
    s_close(&vk);
}
END_TEST

START_TEST(test_elementwise)
{
    bly_vk_t *vk = s_open(_i == 1, 0);
    const uint32_t n = 1001;
    float *a = s_floats(n + 3, 6.0f), *b = s_floats(n + 2, 2.0f);
    float *want = malloc(n * sizeof(float)), *got = malloc((n + 1) * sizeof(float));
    ck_assert(want && got);
    bly_vk_buf_t *ab = s_upload(vk, a, (n + 3) * sizeof(float));
    bly_vk_buf_t *bb = s_upload(vk, b, (n + 2) * sizeof(float));
    bly_vk_buf_t *yb = bly_vk_buf_new(vk, (n + 1) * sizeof(float));
    for (int op = 0; op < 3; op++) {
        memcpy(want, a + 3, n * sizeof(float));
        if (op == 0)
            bly_ref_add(want, b + 2, n);
        else if (op == 1)
            bly_ref_swiglu(want, a + 3, b + 2, n);
        ck_assert_int_eq(bly_vk_begin(vk), 0);
        int rc = op == 0   ? bly_vk_op_add(vk, ab, 3, bb, 2, yb, 1, n)
                 : op == 1 ? bly_vk_op_swiglu(vk, ab, 3, bb, 2, yb, 1, n)
                           : bly_vk_op_copy(vk, ab, 3, yb, 1, n);
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(bly_vk_submit(vk), 0);
        s_download(yb, got, (n + 1) * sizeof(float));
        double e = s_nmse(got + 1, want, n);
        ck_assert_msg(e < 1e-7, "op %d nmse %g", op, e);
        if (op != 1)
            ck_assert(memcmp(got + 1, want, n * sizeof(float)) == 0);
    }
    bly_vk_buf_destroy(&ab);
    bly_vk_buf_destroy(&bb);
    bly_vk_buf_destroy(&yb);
    free(a);
    free(b);
    free(want);
    free(got);
    s_close(&vk);
}
END_TEST

START_TEST(test_rope)
{
    bly_vk_t *vk = s_open(_i == 1, 0);
    const uint32_t hd = 20, nh = 3, nt = 5, pos0 = 7, positions = 64;
    const float base = 1000000.0f;
    size_t n = (size_t) hd * nh * nt;
    float *x = s_floats(n, 3.0f), *want = malloc(n * sizeof(float));
    float *got = malloc((n + 9) * sizeof(float));
    ck_assert(want && got);
    //  _i 0: NeoX layout, subgroups; 1: normal layout, the shared-memory fallback.
    bool neox = _i == 0;
    memcpy(want, x, n * sizeof(float));
    for (uint32_t t = 0; t < nt; t++)
        if (neox)
            bly_ref_rope_neox(want + (size_t) t * hd * nh, nh, hd, pos0 + t, base);
        else
            bly_ref_rope_normal(want + (size_t) t * hd * nh, nh, hd, pos0 + t, base);
    bly_vk_buf_t *tb = bly_vk_buf_new(vk, (size_t) positions * hd * sizeof(float));
    ck_assert_ptr_nonnull(tb);
    ck_assert_int_eq(bly_vk_rope_table(tb, hd, positions, base), 0);
    bly_vk_buf_t *xb = s_upload(vk, x, n * sizeof(float));
    bly_vk_buf_t *yb = bly_vk_buf_new(vk, (n + 9) * sizeof(float));
    ck_assert_int_eq(bly_vk_begin(vk), 0);
    ck_assert_int_eq(bly_vk_op_rope(vk, neox, xb, 0, tb, yb, 9, hd, nh, nt, pos0), 0);
    //  In place.
    ck_assert_int_eq(bly_vk_op_rope(vk, neox, xb, 0, tb, xb, 0, hd, nh, nt, pos0), 0);
    ck_assert_int_eq(bly_vk_submit(vk), 0);
    s_download(yb, got, (n + 9) * sizeof(float));
    double e = s_nmse(got + 9, want, n);
    ck_assert_msg(e < 1e-7, "rope nmse %g", e);
    s_download(xb, got, n * sizeof(float));
    ck_assert_msg(s_nmse(got, want, n) < 1e-7, "rope in place");
    //  Positions past the table are refused.
    ck_assert_int_eq(bly_vk_begin(vk), 0);
    ck_assert_int_eq(bly_vk_op_rope(vk, neox, xb, 0, tb, xb, 0, hd, nh, nt, positions - 2), -1);
    ck_assert_int_eq(bly_vk_submit(vk), -1);
    bly_vk_buf_destroy(&tb);
    bly_vk_buf_destroy(&xb);
    bly_vk_buf_destroy(&yb);
    free(x);
    free(want);
    free(got);
    s_close(&vk);
}
END_TEST

/* ---- Attention --------------------------------------------------------- */

static void
s_check_attention(bly_vk_t *vk, uint32_t hd, uint32_t nh, uint32_t nkv, uint32_t nt,
                  uint32_t pos0)
{
    const uint32_t ctx = 320, kv_off = 11;
    bly_assert(pos0 + nt <= ctx);
    size_t kv_row = (size_t) nkv * hd, qn = (size_t) nt * nh * hd;
    float *k = s_floats(kv_off + ctx * kv_row, 1.5f), *v = s_floats(kv_off + ctx * kv_row, 1.0f);
    float *q = s_floats(qn + 3, 1.5f);
    float *want = malloc(qn * sizeof(float)), *got = malloc(qn * sizeof(float));
    float scores[320];
    ck_assert(want && got);
    for (uint32_t t = 0; t < nt; t++)
        bly_ref_attention(want + (size_t) t * nh * hd, q + 3 + (size_t) t * nh * hd,
                          k + kv_off, v + kv_off, nh, nkv, hd, pos0 + t + 1, scores);
    bly_vk_buf_t *kb = s_upload(vk, k, (kv_off + ctx * kv_row) * sizeof(float));
    bly_vk_buf_t *vb = s_upload(vk, v, (kv_off + ctx * kv_row) * sizeof(float));
    bly_vk_buf_t *qb = s_upload(vk, q, (qn + 3) * sizeof(float));
    bly_vk_buf_t *ob = bly_vk_buf_new(vk, qn * sizeof(float));
    bly_vk_attn_t a = {.head_dim = hd, .n_head = nh, .n_head_kv = nkv, .n_tok = nt,
                       .pos0 = pos0, .scale = 1.0f / sqrtf((float) hd)};
    ck_assert_int_eq(bly_vk_begin(vk), 0);
    ck_assert_int_eq(bly_vk_op_attention(vk, &a, qb, 3, kb, vb, kv_off, ob, 0), 0);
    ck_assert_int_eq(bly_vk_submit(vk), 0);
    s_download(ob, got, qn * sizeof(float));
    double e = s_nmse(got, want, qn);
    ck_assert_msg(e < 1e-7, "attention hd %u heads %u/%u tokens %u pos0 %u: nmse %g", hd, nh,
                  nkv, nt, pos0, e);
    bly_vk_buf_destroy(&kb);
    bly_vk_buf_destroy(&vb);
    bly_vk_buf_destroy(&qb);
    bly_vk_buf_destroy(&ob);
    free(k);
    free(v);
    free(q);
    free(want);
    free(got);
}

START_TEST(test_attention)
{
    bly_vk_t *vk = s_open(_i == 1, 0);
    s_check_attention(vk, 16, 4, 2, 1, 0);     //  decode, first position
    s_check_attention(vk, 16, 4, 2, 1, 19);    //  decode deep in the cache
    s_check_attention(vk, 20, 6, 3, 7, 0);     //  causal prefill, head_dim not a WG multiple
    s_check_attention(vk, 32, 4, 1, 5, 9);     //  prefill continuing a cache, 4:1 GQA
    //  Several key chunks (a chunk is one workgroup wide) and head_dim past the workgroup.
    s_check_attention(vk, 128, 2, 1, 1, 300);  //  decode over 301 keys
    s_check_attention(vk, 256, 2, 2, 3, 127);  //  chunk boundary inside the step
    s_check_attention(vk, 64, 4, 2, 2, 255);
    s_close(&vk);
}
END_TEST

/* ---- Argmax ------------------------------------------------------------ */

START_TEST(test_argmax)
{
    bly_vk_t *vk = s_open(_i == 1, 0);
    const uint32_t n = 151936;
    float *x = s_floats(n, 10.0f);
    x[100] = NAN;
    x[151000] = 50.0f;      //  a tie: the lower index wins
    x[150999 - 140000] = 50.0f;
    x[n - 1] = NAN;
    uint32_t out[3];
    bly_vk_buf_t *xb = s_upload(vk, x, n * sizeof(float));
    bly_vk_buf_t *ob = bly_vk_buf_new(vk, sizeof(out));
    ck_assert_int_eq(bly_vk_begin(vk), 0);
    ck_assert_int_eq(bly_vk_op_argmax(vk, xb, 0, n, ob, 1), 0);
    ck_assert_int_eq(bly_vk_submit(vk), 0);
    s_download(ob, out, sizeof(out));
    ck_assert_uint_eq(out[1], bly_ref_argmax(x, n));
    ck_assert_uint_eq(out[1], 150999 - 140000);
    float v;
    memcpy(&v, &out[2], sizeof(v));
    ck_assert(v == 50.0f);
    //  An odd count with the maximum last.
    x[2] = 99.0f;
    ck_assert_int_eq(bly_vk_buf_write(xb, 0, x, 3 * sizeof(float)), 0);
    ck_assert_int_eq(bly_vk_begin(vk), 0);
    ck_assert_int_eq(bly_vk_op_argmax(vk, xb, 0, 3, ob, 0), 0);
    ck_assert_int_eq(bly_vk_submit(vk), 0);
    s_download(ob, out, sizeof(out));
    ck_assert_uint_eq(out[0], 2);
    bly_vk_buf_destroy(&xb);
    bly_vk_buf_destroy(&ob);
    free(x);
    s_close(&vk);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("vk_ops");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 120);
    //  Loop index 0: subgroup reductions; 1: the shared-memory fallback path. Under valgrind
    //  (BLY_VALGRIND=1; lavapipe's JIT is ~50x slower there) only the subgroup path runs.
    int paths = getenv("BLY_VALGRIND") ? 1 : 2;
    tcase_add_loop_test(tc, test_get_rows, 0, paths);
    tcase_add_loop_test(tc, test_matmul, 0, paths);
    tcase_add_test(tc, test_matmul_split);
    tcase_add_loop_test(tc, test_quantize, 0, paths);
    tcase_add_loop_test(tc, test_rmsnorm, 0, paths);
    tcase_add_loop_test(tc, test_elementwise, 0, paths);
    tcase_add_loop_test(tc, test_rope, 0, paths);
    tcase_add_loop_test(tc, test_attention, 0, paths);
    tcase_add_loop_test(tc, test_argmax, 0, paths);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    if (!bly_vk_available())
        return 77;      //  No Vulkan driver at all: skipped, not passed.
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
