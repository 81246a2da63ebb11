/*  test_model_types - every weight type and both architectures end to end.

    For each case two tiny models are written with the GGUF writer: one
    with random weights of the type under test, and its twin holding the
    same weights dequantized to F32. The quantized model computes with
    activations quantized as llama.cpp does (Q8_0, Q8_K, F16, BF16), the
    twin in float, so their logits must agree closely (NMSE < 5e-3; a
    wrong layout or dispatch gives ~1) -- and must not be equal, or the
    quantized path was not taken. The F32 twin itself must match a forward
    pass written in this test from the formulas (double sums), which pins
    down the wiring of each architecture: swapping llama to the NeoX RoPE
    layout fails it. Shapes need n_in % 256 == 0 for the K-quants. A
    Q4_K_M-like mix (Q6_K for attn_v and ffn_down) exercises the unfused
    matmul path; llama models have no q/k norm, use the normal RoPE layout
    and a separate output matrix. */

#include "bly_gguf.h"
#include "bly_gguf_writer.h"
#include "bly_model.h"
#include "bly_ref.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { S_EMBD = 256, S_FF = 512, S_HEADS = 4, S_KV = 2, S_HD = 64, S_VOCAB = 512, S_LAYERS = 2 };

static uint32_t s_rng = 99;

static float
s_randf(void)
{
    s_rng = s_rng * 1664525u + 1013904223u;
    return (float) ((s_rng >> 8) / 8388608.0 - 1.0);
}

//  Random row data of `type`, scaled to keep activations sane.
static void
s_random_rows(bly_type_t type, void *data, size_t n_in, size_t rows)
{
    size_t size = bly_ref_row_size(type, n_in) * rows;
    uint8_t *bytes = data;
    for (size_t i = 0; i < size; i++)
        bytes[i] = (uint8_t) ((s_rng = s_rng * 1664525u + 1013904223u) >> 24);
    size_t n = n_in * rows;
    for (size_t i = 0; type == BLY_TYPE_F32 && i < n; i++)
        ((float *) data)[i] = 0.1f * s_randf();
    for (size_t i = 0; type == BLY_TYPE_F16 && i < n; i++)
        ((uint16_t *) data)[i] = bly_fp32_to_fp16(0.1f * s_randf());
    for (size_t i = 0; type == BLY_TYPE_BF16 && i < n; i++)
        ((uint16_t *) data)[i] = bly_fp32_to_bf16(0.1f * s_randf());
    for (size_t b = 0; type == BLY_TYPE_Q8_0 && b < n / 32; b++)
        ((bly_block_q8_0_t *) data)[b].d = bly_fp32_to_fp16(0.001f);
    for (size_t b = 0; type == BLY_TYPE_Q4_K && b < n / 256; b++) {
        ((bly_block_q4_k_t *) data)[b].d = bly_fp32_to_fp16(0.0002f);
        ((bly_block_q4_k_t *) data)[b].dmin = bly_fp32_to_fp16(0.0002f);
    }
    for (size_t b = 0; type == BLY_TYPE_Q6_K && b < n / 256; b++)
        ((bly_block_q6_k_t *) data)[b].d = bly_fp32_to_fp16(0.00002f);
}

//  One tensor of both files.
typedef struct {
    char name[64];
    bly_type_t type;
    uint64_t ne[2];
    uint32_t n_dims;
} s_tensor_t;

static size_t
s_tensors(bool llama, bly_type_t type, bool mix, s_tensor_t *t)
{
    size_t n = 0;
    t[n++] = (s_tensor_t) {"token_embd.weight", type, {S_EMBD, S_VOCAB}, 2};
    t[n++] = (s_tensor_t) {"output_norm.weight", BLY_TYPE_F32, {S_EMBD, 1}, 1};
    if (llama)
        t[n++] = (s_tensor_t) {"output.weight", type, {S_EMBD, S_VOCAB}, 2};
    for (int l = 0; l < S_LAYERS; l++) {
        const struct {
            const char *what;
            uint64_t ne0, ne1;
            bool f32, k_mix;
        } parts[] = {
            {"attn_norm", S_EMBD, 1, true, false}, {"ffn_norm", S_EMBD, 1, true, false},
            {"attn_q_norm", S_HD, 1, true, false}, {"attn_k_norm", S_HD, 1, true, false},
            {"attn_q", S_EMBD, S_HEADS * S_HD, false, false},
            {"attn_k", S_EMBD, S_KV * S_HD, false, false},
            {"attn_v", S_EMBD, S_KV * S_HD, false, true},
            {"attn_output", S_HEADS * S_HD, S_EMBD, false, false},
            {"ffn_gate", S_EMBD, S_FF, false, false}, {"ffn_up", S_EMBD, S_FF, false, false},
            {"ffn_down", S_FF, S_EMBD, false, true},
        };
        for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++) {
            if (llama && strstr(parts[p].what, "_norm") && parts[p].ne0 == S_HD)
                continue;
            s_tensor_t *x = &t[n++];
            snprintf(x->name, sizeof(x->name), "blk.%d.%s.weight", l, parts[p].what);
            x->type = parts[p].f32 ? BLY_TYPE_F32
                                   : (mix && parts[p].k_mix ? BLY_TYPE_Q6_K : type);
            x->ne[0] = parts[p].ne0;
            x->ne[1] = parts[p].ne1;
            x->n_dims = parts[p].ne1 > 1 ? 2 : 1;
        }
    }
    return n;
}

static void
s_metadata(bly_gguf_writer_t *w, const char *arch)
{
    char key[96];
    ck_assert_int_eq(bly_gguf_writer_set_str(w, "general.architecture", arch, strlen(arch)), 0);
    const struct {
        const char *k;
        uint32_t v;
    } u[] = {{"block_count", S_LAYERS}, {"embedding_length", S_EMBD},
             {"feed_forward_length", S_FF}, {"attention.head_count", S_HEADS},
             {"attention.head_count_kv", S_KV}, {"attention.key_length", S_HD},
             {"context_length", 256}};
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        snprintf(key, sizeof(key), "%s.%s", arch, u[i].k);
        ck_assert_int_eq(bly_gguf_writer_set_u32(w, key, u[i].v), 0);
    }
    snprintf(key, sizeof(key), "%s.rope.freq_base", arch);
    ck_assert_int_eq(bly_gguf_writer_set_f32(w, key, 10000.0f), 0);
    snprintf(key, sizeof(key), "%s.attention.layer_norm_rms_epsilon", arch);
    ck_assert_int_eq(bly_gguf_writer_set_f32(w, key, 1e-5f), 0);
}

//  Write the quantized model to qpath and its F32 twin to fpath.
static void
s_write_pair(bool llama, bly_type_t type, bool mix, const char *qpath, const char *fpath)
{
    static s_tensor_t t[64];
    size_t n = s_tensors(llama, type, mix, t);
    bly_gguf_writer_t *wq = bly_gguf_writer_new(32), *wf = bly_gguf_writer_new(32);
    s_metadata(wq, llama ? "llama" : "qwen3");
    s_metadata(wf, llama ? "llama" : "qwen3");
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(bly_gguf_writer_add_tensor(wq, t[i].name, t[i].type, t[i].n_dims,
                                                    t[i].ne), 0);
        ck_assert_int_eq(bly_gguf_writer_add_tensor(wf, t[i].name, BLY_TYPE_F32, t[i].n_dims,
                                                    t[i].ne), 0);
    }
    FILE *fq = fopen(qpath, "wb"), *ff = fopen(fpath, "wb");
    ck_assert(fq && ff);
    ck_assert_int_eq(bly_gguf_writer_begin(wq, fq), 0);
    ck_assert_int_eq(bly_gguf_writer_begin(wf, ff), 0);
    for (size_t i = 0; i < n; i++) {
        size_t elements = t[i].ne[0] * t[i].ne[1];
        size_t size = bly_ref_row_size(t[i].type, t[i].ne[0]) * t[i].ne[1];
        uint8_t *q = malloc(size);
        float *f = malloc(elements * sizeof(float));
        s_random_rows(t[i].type, q, t[i].ne[0], t[i].ne[1]);
        if (strstr(t[i].name, "norm"))
            for (size_t e = 0; e < elements; e++)
                ((float *) q)[e] = 1.0f + 0.1f * s_randf();
        bly_ref_dequantize_row(t[i].type, q, f, elements);
        ck_assert_int_eq(bly_gguf_writer_write(wq, q, size), 0);
        ck_assert_int_eq(bly_gguf_writer_write(wf, f, elements * sizeof(float)), 0);
        free(q);
        free(f);
    }
    ck_assert_int_eq(bly_gguf_writer_finish(wq), 0);
    ck_assert_int_eq(bly_gguf_writer_finish(wf), 0);
    fclose(fq);
    fclose(ff);
    bly_gguf_writer_destroy(&wq);
    bly_gguf_writer_destroy(&wf);
}

//  Logits of the last of 6 tokens (prefill of 5, then one decode step).
static void
s_logits(const char *path, float *logits)
{
    char error[256];
    bly_model_t *m = bly_model_load(path, error, sizeof(error));
    ck_assert_msg(m != NULL, "%s", error);
    const bly_model_hparams_t *hp = bly_model_hparams(m);
    ck_assert_uint_eq(hp->n_vocab, S_VOCAB);
    bly_model_ctx_t *ctx = bly_model_ctx_new(m, 0, hp->n_layer, 16, 8, 2, error, sizeof(error));
    ck_assert_msg(ctx != NULL, "%s", error);
    const int32_t ids[6] = {1, 77, 300, 5, 511, 42};
    ck_assert_int_eq(bly_model_eval(ctx, ids, 5, 0, logits), 0);
    ck_assert_int_eq(bly_model_eval(ctx, ids + 5, 1, 5, logits), 0);
    bly_model_ctx_destroy(&ctx);
    bly_model_destroy(&m);
}

//  Weights of an F32 file by name (layer -1: global tensors).
static const float *
s_f32(const bly_gguf_t *g, int layer, const char *what)
{
    char name[96];
    if (layer < 0)
        snprintf(name, sizeof(name), "%s.weight", what);
    else
        snprintf(name, sizeof(name), "blk.%d.%s.weight", layer, what);
    const bly_gguf_tensor_t *t = bly_gguf_tensor_find(g, name);
    ck_assert_msg(t && t->type == BLY_TYPE_F32, "%s", name);
    return t->data;
}

//  y = W x for an F32 matrix of n_out rows of n_in, in double.
static void
s_mv(const float *w, const float *x, size_t n_in, size_t n_out, float *y)
{
    for (size_t o = 0; o < n_out; o++) {
        double sum = 0;
        for (size_t i = 0; i < n_in; i++)
            sum += (double) w[o * n_in + i] * x[i];
        y[o] = (float) sum;
    }
}

//  A plain forward pass of an F32 model written here from the formulas
//  (double sums, RoPE angles in double), one token at a time, for the
//  logits of the last of n tokens: the engine's wiring of each
//  architecture (q/k norm, RoPE layout, GQA, SwiGLU, tied output) is
//  checked against it.
static void
s_reference_logits(const char *path, bool llama, const int32_t *ids, size_t n, float *logits)
{
    char error[256];
    bly_gguf_t *g = bly_gguf_open(path, error, sizeof(error));
    ck_assert_msg(g != NULL, "%s", error);
    enum { Q = S_HEADS * S_HD, KVD = S_KV * S_HD };
    static float kc[S_LAYERS][8][KVD], vc[S_LAYERS][8][KVD];
    float x[S_EMBD], xn[S_EMBD], q[Q], k[KVD], v[KVD], att[Q], t[S_EMBD], gt[S_FF], up[S_FF];
    ck_assert_uint_le(n, 8);
    for (size_t p = 0; p < n; p++) {
        memcpy(x, s_f32(g, -1, "token_embd") + ids[p] * S_EMBD, sizeof(x));
        for (int l = 0; l < S_LAYERS; l++) {
            bly_ref_rmsnorm(xn, x, s_f32(g, l, "attn_norm"), S_EMBD, 1e-5f);
            s_mv(s_f32(g, l, "attn_q"), xn, S_EMBD, Q, q);
            s_mv(s_f32(g, l, "attn_k"), xn, S_EMBD, KVD, k);
            s_mv(s_f32(g, l, "attn_v"), xn, S_EMBD, KVD, v);
            for (int h = 0; h < S_HEADS + S_KV; h++) {
                float *vec = h < S_HEADS ? q + h * S_HD : k + (h - S_HEADS) * S_HD;
                if (!llama)
                    bly_ref_rmsnorm(vec, vec, s_f32(g, l, h < S_HEADS ? "attn_q_norm"
                                                                       : "attn_k_norm"),
                                    S_HD, 1e-5f);
                for (int i = 0; i < S_HD / 2; i++) {
                    double theta = (double) p * pow(10000.0, -2.0 * i / S_HD);
                    int a = llama ? 2 * i : i, b = llama ? 2 * i + 1 : i + S_HD / 2;
                    double x0 = vec[a], x1 = vec[b];
                    vec[a] = (float) (x0 * cos(theta) - x1 * sin(theta));
                    vec[b] = (float) (x0 * sin(theta) + x1 * cos(theta));
                }
            }
            memcpy(kc[l][p], k, sizeof(k));
            memcpy(vc[l][p], v, sizeof(v));
            for (int h = 0; h < S_HEADS; h++) {
                int kvh = h / (S_HEADS / S_KV);
                double sc[8], max = -1e300, sum = 0;
                for (size_t j = 0; j <= p; j++) {
                    sc[j] = 0;
                    for (int d = 0; d < S_HD; d++)
                        sc[j] += (double) q[h * S_HD + d] * kc[l][j][kvh * S_HD + d];
                    sc[j] /= sqrt((double) S_HD);
                    max = fmax(max, sc[j]);
                }
                for (size_t j = 0; j <= p; j++)
                    sum += (sc[j] = exp(sc[j] - max));
                for (int d = 0; d < S_HD; d++) {
                    double o = 0;
                    for (size_t j = 0; j <= p; j++)
                        o += sc[j] / sum * vc[l][j][kvh * S_HD + d];
                    att[h * S_HD + d] = (float) o;
                }
            }
            s_mv(s_f32(g, l, "attn_output"), att, Q, S_EMBD, t);
            bly_ref_add(x, t, S_EMBD);
            bly_ref_rmsnorm(xn, x, s_f32(g, l, "ffn_norm"), S_EMBD, 1e-5f);
            s_mv(s_f32(g, l, "ffn_gate"), xn, S_EMBD, S_FF, gt);
            s_mv(s_f32(g, l, "ffn_up"), xn, S_EMBD, S_FF, up);
            for (int i = 0; i < S_FF; i++)
                gt[i] = (float) (gt[i] / (1.0 + exp(-(double) gt[i])) * up[i]);
            s_mv(s_f32(g, l, "ffn_down"), gt, S_FF, S_EMBD, t);
            bly_ref_add(x, t, S_EMBD);
        }
    }
    bly_ref_rmsnorm(xn, x, s_f32(g, -1, "output_norm"), S_EMBD, 1e-5f);
    s_mv(s_f32(g, -1, llama ? "output" : "token_embd"), xn, S_EMBD, S_VOCAB, logits);
    bly_gguf_destroy(&g);
}

static void
s_check_case(bool llama, bly_type_t type, bool mix)
{
    char qpath[] = "/tmp/bly_types_q_XXXXXX", fpath[] = "/tmp/bly_types_f_XXXXXX";
    close(mkstemp(qpath));
    close(mkstemp(fpath));
    s_write_pair(llama, type, mix, qpath, fpath);
    static float lq[S_VOCAB], lf[S_VOCAB];
    s_logits(qpath, lq);
    s_logits(fpath, lf);
    //  The F32 twin against the from-the-formulas forward pass.
    static float lr[S_VOCAB];
    const int32_t ids[6] = {1, 77, 300, 5, 511, 42};
    s_reference_logits(fpath, llama, ids, 6, lr);
    for (int i = 0; i < S_VOCAB; i++)
        ck_assert_msg(fabs(lf[i] - lr[i]) < 1e-4 * (1 + fabs(lr[i])), "%s logit %d: %g vs %g",
                      llama ? "llama" : "qwen3", i, lf[i], lr[i]);
    unlink(qpath);
    unlink(fpath);
    double num = 0, den = 0;
    for (int i = 0; i < S_VOCAB; i++) {
        num += ((double) lq[i] - lf[i]) * ((double) lq[i] - lf[i]);
        den += (double) lf[i] * lf[i];
    }
    double nmse = num / den;
    printf("%s %s%s: nmse %.3g\n", llama ? "llama" : "qwen3", bly_type_name(type),
           mix ? "+Q6_K" : "", nmse);
    ck_assert_msg(den > 0 && nmse < 5e-3, "%s %d: nmse %g", llama ? "llama" : "qwen3", type,
                  nmse);
    if (type != BLY_TYPE_F32)
        ck_assert_msg(num > 0, "type %d: quantized activations left no trace", type);
}

START_TEST(test_types_qwen3)
{
    const bly_type_t types[] = {BLY_TYPE_F32, BLY_TYPE_F16, BLY_TYPE_BF16, BLY_TYPE_Q8_0,
                                BLY_TYPE_Q4_K, BLY_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        s_check_case(false, types[i], false);
    s_check_case(false, BLY_TYPE_Q4_K, true);
}
END_TEST

START_TEST(test_types_llama)
{
    s_check_case(true, BLY_TYPE_Q8_0, false);
    s_check_case(true, BLY_TYPE_Q4_K, true);
    s_check_case(true, BLY_TYPE_F16, false);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("model_types");
    TCase *tc = tcase_create("types");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_types_qwen3);
    tcase_add_test(tc, test_types_llama);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
