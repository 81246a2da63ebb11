/*  test_ref - the scalar reference kernels against independently computed
    values: hand-built blocks with known contents, float64 formulas. */

#include "bly_ref.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t s_rng = 12345;

static float
s_randf(void)   //  Uniform in [-1, 1).
{
    s_rng = s_rng * 1664525u + 1013904223u;
    return (float) ((s_rng >> 8) / 8388608.0 - 1.0);
}

START_TEST(test_fp16_known)
{
    ck_assert_uint_eq(bly_fp32_to_fp16(1.0f), 0x3c00);
    ck_assert_uint_eq(bly_fp32_to_fp16(-2.0f), 0xc000);
    ck_assert_uint_eq(bly_fp32_to_fp16(65504.0f), 0x7bff);
    ck_assert_uint_eq(bly_fp32_to_fp16(65519.0f), 0x7bff);
    ck_assert_uint_eq(bly_fp32_to_fp16(65520.0f), 0x7c00);
    ck_assert_uint_eq(bly_fp32_to_fp16(ldexpf(1.0f, -24)), 0x0001);
    ck_assert_uint_eq(bly_fp32_to_fp16(ldexpf(1.0f, -25)), 0x0000);      //  Tie to even.
    ck_assert_uint_eq(bly_fp32_to_fp16(ldexpf(3.0f, -25)), 0x0002);      //  1.5 ulp -> 2.
    ck_assert_uint_eq(bly_fp32_to_fp16(1.0f + ldexpf(1.0f, -11)), 0x3c00); //  Tie to even.
    ck_assert_uint_eq(bly_fp32_to_fp16(1.0f + ldexpf(3.0f, -11)), 0x3c02);
    ck_assert_uint_eq(bly_fp32_to_fp16(INFINITY), 0x7c00);
    ck_assert(isnan(bly_fp16_to_fp32(bly_fp32_to_fp16(NAN))));
    ck_assert(bly_fp16_to_fp32(0x3555) == 0x1.554p-2f);
    ck_assert(bly_fp16_to_fp32(0x0001) == ldexpf(1.0f, -24));
    ck_assert(bly_fp16_to_fp32(0x8400) == -ldexpf(1.0f, -14));
    ck_assert(isinf(bly_fp16_to_fp32(0xfc00)));
}
END_TEST

START_TEST(test_fp16_round_trip)
{
    //  Every finite half survives half -> float -> half, and is the nearest.
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00)
            continue;
        float f = bly_fp16_to_fp32((uint16_t) h);
        ck_assert_uint_eq(bly_fp32_to_fp16(f), h);
    }
    for (int i = 0; i < 20000; i++) {
        float f = s_randf() * 70000.0f;
        uint16_t h = bly_fp32_to_fp16(f);
        if ((h & 0x7c00) == 0x7c00)
            continue;
        double err = fabs((double) bly_fp16_to_fp32(h) - f);
        double up = fabs((double) bly_fp16_to_fp32((uint16_t) (h + 1)) - f);
        double down = (h & 0x7fff) ? fabs((double) bly_fp16_to_fp32((uint16_t) (h - 1)) - f)
                                   : 1e30;
        ck_assert(err <= up);
        ck_assert(err <= down);
    }
}
END_TEST

START_TEST(test_bf16)
{
    ck_assert_uint_eq(bly_fp32_to_bf16(1.0f), 0x3f80);
    ck_assert_uint_eq(bly_fp32_to_bf16(-3.0f), 0xc040);
    //  1 + 2^-8 is exactly halfway: rounds to even (1.0); 1 + 3*2^-8 rounds up.
    ck_assert_uint_eq(bly_fp32_to_bf16(1.0f + ldexpf(1.0f, -8)), 0x3f80);
    ck_assert_uint_eq(bly_fp32_to_bf16(1.0f + ldexpf(3.0f, -8)), 0x3f82);
    ck_assert(bly_bf16_to_fp32(0x4049) == 3.140625f);
    ck_assert(isnan(bly_bf16_to_fp32(bly_fp32_to_bf16(NAN))));
}
END_TEST

START_TEST(test_dequant_q8_0)
{
    bly_block_q8_0_t b[2];
    b[0].d = 0x3800;   //  0.5
    b[1].d = 0xc400;   //  -4
    for (int j = 0; j < 32; j++) {
        b[0].qs[j] = (int8_t) (j - 16);
        b[1].qs[j] = (int8_t) (j % 2 ? 127 : -128);
    }
    float y[64];
    bly_ref_dequantize_row(BLY_TYPE_Q8_0, b, y, 64);
    for (int j = 0; j < 32; j++) {
        ck_assert(y[j] == 0.5f * (float) (j - 16));
        ck_assert(y[32 + j] == (j % 2 ? -508.0f : 512.0f));
    }
}
END_TEST

//  Pack 8 six-bit scales and mins the way the Q4_K format lays them out.
static void
s_pack_q4_k_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12])
{
    for (int j = 0; j < 4; j++) {
        out[j] = (uint8_t) (sc[j] | ((sc[j + 4] >> 4) << 6));
        out[j + 4] = (uint8_t) (m[j] | ((m[j + 4] >> 4) << 6));
        out[j + 8] = (uint8_t) ((sc[j + 4] & 0xf) | ((m[j + 4] & 0xf) << 4));
    }
}

START_TEST(test_dequant_q4_k)
{
    bly_block_q4_k_t b;
    uint8_t sc[8] = {1, 63, 17, 32, 5, 48, 63, 33};
    uint8_t m[8] = {0, 7, 63, 20, 50, 16, 1, 62};
    uint8_t q[256];
    for (int i = 0; i < 256; i++)
        q[i] = (uint8_t) ((i * 7 + i / 13) & 15);
    b.d = 0x3400;      //  0.25
    b.dmin = 0x2c00;   //  0.0625
    s_pack_q4_k_scales(sc, m, b.scales);
    //  Element i: sub-block i/32; 64-element chunks store the first 32 in
    //  the low nibbles and the next 32 in the high nibbles of 32 bytes.
    memset(b.qs, 0, sizeof(b.qs));
    for (int i = 0; i < 256; i++) {
        int chunk = i / 64, r = i % 64;
        b.qs[chunk * 32 + r % 32] |= (uint8_t) (r < 32 ? q[i] : q[i] << 4);
    }
    float y[256];
    bly_ref_dequantize_row(BLY_TYPE_Q4_K, &b, y, 256);
    for (int i = 0; i < 256; i++) {
        double want = 0.25 * sc[i / 32] * q[i] - 0.0625 * m[i / 32];
        ck_assert_msg(fabs(y[i] - want) < 1e-6, "i %d got %g want %g", i, y[i], want);
    }
}
END_TEST

START_TEST(test_dequant_q6_k)
{
    bly_block_q6_k_t b;
    int q[256];
    for (int i = 0; i < 256; i++)
        q[i] = (i * 11 + i / 7) % 64;   //  0..63, stored; value q - 32
    for (int j = 0; j < 16; j++)
        b.scales[j] = (int8_t) (j * 17 - 128);
    b.d = 0x3c00;
    //  Element i of 128-chunk c: quarter k = (i%128)/32, l = i%32. Low 4
    //  bits in ql[c*64 + l + 32*(k&1)] (low nibble for k<2, else high);
    //  high 2 bits in qh[c*32 + l] at bit 2k. Scale index c*8 + l/16 + 2k.
    memset(b.ql, 0, sizeof(b.ql));
    memset(b.qh, 0, sizeof(b.qh));
    for (int i = 0; i < 256; i++) {
        int c = i / 128, k = (i % 128) / 32, l = i % 32;
        int low = q[i] & 15, high = q[i] >> 4;
        b.ql[c * 64 + l + 32 * (k & 1)] |= (uint8_t) (k < 2 ? low : low << 4);
        b.qh[c * 32 + l] |= (uint8_t) (high << (2 * k));
    }
    float y[256];
    bly_ref_dequantize_row(BLY_TYPE_Q6_K, &b, y, 256);
    for (int i = 0; i < 256; i++) {
        int c = i / 128, k = (i % 128) / 32, l = i % 32;
        double want = (double) b.scales[c * 8 + l / 16 + 2 * k] * (q[i] - 32);
        ck_assert_msg(y[i] == want, "i %d got %g want %g", i, y[i], want);
    }
}
END_TEST

START_TEST(test_dequant_float_types)
{
    float f[4] = {1.5f, -0.25f, 3.0e-5f, 1000.0f}, y[4];
    uint16_t h[4], bf[4];
    for (int i = 0; i < 4; i++) {
        h[i] = bly_fp32_to_fp16(f[i]);
        bf[i] = bly_fp32_to_bf16(f[i]);
    }
    bly_ref_dequantize_row(BLY_TYPE_F16, h, y, 4);
    ck_assert(y[0] == 1.5f && y[1] == -0.25f && y[3] == 1000.0f);
    ck_assert(fabsf(y[2] - 3.0e-5f) < 3e-8f);
    bly_ref_dequantize_row(BLY_TYPE_BF16, bf, y, 4);
    ck_assert(y[0] == 1.5f && y[1] == -0.25f && y[3] == 1000.0f);
    bly_ref_dequantize_row(BLY_TYPE_F32, f, y, 4);
    ck_assert(memcmp(f, y, sizeof(f)) == 0);
}
END_TEST

START_TEST(test_quantize_q8_0)
{
    float x[64];
    for (int j = 0; j < 64; j++)
        x[j] = (float) (j - 32) / 4.0f;   //  Block 0: -8..-0.25, max|x| 8
    x[5] = 0.5f * 8.0f / 127.0f * 3.0f;   //  q = 1.5 exactly -> 2 (even)
    x[6] = 0.5f * 8.0f / 127.0f * 5.0f;   //  q = 2.5 -> 2 (even)
    bly_block_q8_0_t y[2];
    bly_ref_quantize_row_q8_0(x, y, 64);
    ck_assert_uint_eq(y[0].d, bly_fp32_to_fp16(8.0f / 127.0f));
    ck_assert_int_eq(y[0].qs[0], -127);
    ck_assert_int_eq(y[0].qs[5], 2);
    ck_assert_int_eq(y[0].qs[6], 2);
    ck_assert_int_eq(y[1].qs[31], 127);
    ck_assert_int_eq(y[1].qs[0], 0);
    //  All-zero block: d = 0 and all quants 0.
    memset(x, 0, sizeof(x));
    bly_ref_quantize_row_q8_0(x, y, 32);
    ck_assert_uint_eq(y[0].d, 0);
    ck_assert_int_eq(y[0].qs[3], 0);
}
END_TEST

START_TEST(test_quantize_q8_k)
{
    float x[256];
    for (int j = 0; j < 256; j++)
        x[j] = s_randf();
    x[77] = -2.0f;
    bly_block_q8_k_t y;
    bly_ref_quantize_row_q8_k(x, &y, 256);
    //  The extreme maps to -127 exactly; d carries the sign back.
    ck_assert_int_eq(y.qs[77], -127);
    ck_assert(fabsf(y.d - 2.0f / 127.0f) < 1e-7f);
    x[77] = 2.0f;
    bly_ref_quantize_row_q8_k(x, &y, 256);
    ck_assert_int_eq(y.qs[77], -127);
    ck_assert(fabsf(y.d + 2.0f / 127.0f) < 1e-7f);
    for (int g = 0; g < 16; g++) {
        int sum = 0;
        for (int j = 0; j < 16; j++)
            sum += y.qs[g * 16 + j];
        ck_assert_int_eq(y.bsums[g], sum);
    }
    float back[256];
    bly_ref_dequantize_row(BLY_TYPE_Q8_K, &y, back, 256);
    for (int j = 0; j < 256; j++)
        ck_assert(fabsf(back[j] - x[j]) <= fabsf(y.d) * 0.5001f);
}
END_TEST

//  Fill a weight row of `type` with random data of valid structure.
static void
s_random_weights(bly_type_t type, void *w, size_t n)
{
    uint8_t *bytes = w;
    size_t size = bly_ref_row_size(type, n);
    for (size_t i = 0; i < size; i++)
        bytes[i] = (uint8_t) (s_randf() * 128.0f + 128.0f);
    float *f = w;
    uint16_t *h = w;
    for (size_t i = 0; i < n && type != BLY_TYPE_Q8_0 && type < BLY_TYPE_Q4_K; i++) {
        if (type == BLY_TYPE_F32)
            f[i] = s_randf();
        else
            h[i] = bly_fp32_to_fp16(s_randf());
    }
    if (type == BLY_TYPE_BF16)
        for (size_t i = 0; i < n; i++)
            h[i] = bly_fp32_to_bf16(s_randf());
    for (size_t b = 0; type == BLY_TYPE_Q8_0 && b < n / 32; b++)
        ((bly_block_q8_0_t *) w)[b].d = bly_fp32_to_fp16(0.01f + 0.01f * fabsf(s_randf()));
    for (size_t b = 0; type == BLY_TYPE_Q4_K && b < n / 256; b++) {
        ((bly_block_q4_k_t *) w)[b].d = bly_fp32_to_fp16(0.001f);
        ((bly_block_q4_k_t *) w)[b].dmin = bly_fp32_to_fp16(0.0005f);
    }
    for (size_t b = 0; type == BLY_TYPE_Q6_K && b < n / 256; b++)
        ((bly_block_q6_k_t *) w)[b].d = bly_fp32_to_fp16(0.0003f);
}

//  vec_dot equals the float64 dot of the dequantized weights with the
//  dequantized (quantized) activations, to float rounding.
START_TEST(test_vec_dot_types)
{
    const bly_type_t types[] = {BLY_TYPE_F32, BLY_TYPE_F16, BLY_TYPE_BF16, BLY_TYPE_Q8_0,
                                BLY_TYPE_Q4_K, BLY_TYPE_Q6_K};
    enum { N = 512 };
    static uint8_t w[N * 4], xq[N * 4];
    static float x[N], wf[N], xf[N];
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        for (int rep = 0; rep < 5; rep++) {
            s_random_weights(types[t], w, N);
            for (int i = 0; i < N; i++)
                x[i] = s_randf() * 3.0f;
            bly_ref_quantize_row(types[t], x, xq, N);
            bly_ref_dequantize_row(types[t], w, wf, N);
            bly_ref_dequantize_row(bly_ref_vec_dot_type(types[t]), xq, xf, N);
            double want = 0.0, mag = 0.0;
            for (int i = 0; i < N; i++) {
                want += (double) wf[i] * xf[i];
                mag += fabs((double) wf[i] * xf[i]);
            }
            float got = bly_ref_vec_dot(types[t], w, xq, N);
            ck_assert_msg(fabs(got - want) <= 1e-5 * mag + 1e-6, "type %d got %g want %g",
                          types[t], got, want);
        }
    }
}
END_TEST

START_TEST(test_matmul)
{
    enum { IN = 64, OUT = 5, T = 3 };
    float w[OUT * IN], x[T * IN], y[T * OUT];
    for (int i = 0; i < OUT * IN; i++)
        w[i] = s_randf();
    for (int i = 0; i < T * IN; i++)
        x[i] = s_randf();
    static uint8_t scratch[4096];
    ck_assert_uint_le(bly_ref_matmul_scratch_size(BLY_TYPE_F32, IN, T), sizeof(scratch));
    bly_ref_matmul(BLY_TYPE_F32, w, IN, OUT, x, T, y, scratch);
    for (int t = 0; t < T; t++)
        for (int o = 0; o < OUT; o++) {
            double want = 0.0;
            for (int i = 0; i < IN; i++)
                want += (double) w[o * IN + i] * x[t * IN + i];
            ck_assert(fabs(y[t * OUT + o] - want) < 1e-5);
        }
}
END_TEST

START_TEST(test_rmsnorm_softmax)
{
    float x[4] = {1, 2, 3, 4}, w[4] = {1, 0.5f, 2, 1}, y[4];
    bly_ref_rmsnorm(y, x, w, 4, 0.0f);
    double rms = sqrt((1 + 4 + 9 + 16) / 4.0);
    for (int i = 0; i < 4; i++)
        ck_assert(fabs(y[i] - x[i] / rms * w[i]) < 1e-6);
    float s[3] = {1000.0f, 1000.0f, 999.0f};   //  Large values: no overflow.
    bly_ref_softmax(s, 3);
    double e = exp(-1.0), z = 2 + e;
    ck_assert(fabs(s[0] - 1 / z) < 1e-6 && fabs(s[2] - e / z) < 1e-6);
}
END_TEST

START_TEST(test_rope)
{
    //  One head of 4 at position 3, base 100: theta0 = 3, theta1 = 3 / 10.
    float x[4] = {1, 2, 3, 4}, y[4] = {1, 2, 3, 4};
    bly_ref_rope_neox(x, 1, 4, 3, 100.0f);
    double t0 = 3.0, t1 = 0.3;
    ck_assert(fabs(x[0] - (1 * cos(t0) - 3 * sin(t0))) < 1e-5);
    ck_assert(fabs(x[2] - (1 * sin(t0) + 3 * cos(t0))) < 1e-5);
    ck_assert(fabs(x[1] - (2 * cos(t1) - 4 * sin(t1))) < 1e-5);
    ck_assert(fabs(x[3] - (2 * sin(t1) + 4 * cos(t1))) < 1e-5);
    bly_ref_rope_normal(y, 1, 4, 3, 100.0f);
    ck_assert(fabs(y[0] - (1 * cos(t0) - 2 * sin(t0))) < 1e-5);
    ck_assert(fabs(y[1] - (1 * sin(t0) + 2 * cos(t0))) < 1e-5);
    ck_assert(fabs(y[3] - (3 * sin(t1) + 4 * cos(t1))) < 1e-5);
    //  Position 0 is the identity.
    float z[4] = {1, 2, 3, 4};
    bly_ref_rope_neox(z, 1, 4, 0, 1e6f);
    ck_assert(z[0] == 1 && z[1] == 2 && z[2] == 3 && z[3] == 4);
}
END_TEST

START_TEST(test_attention_gqa)
{
    //  2 query heads share 1 kv head of dim 2; 2 positions.
    float q[4] = {1, 0, 0, 1};
    float k[4] = {1, 0, 0, 1};
    float v[4] = {10, 20, 30, 40};
    float out[4], scores[2];
    bly_ref_attention(out, q, k, v, 2, 1, 2, 2, scores);
    double a = exp(1 / sqrt(2.0)), p0 = a / (a + 1), p1 = 1 / (a + 1);
    ck_assert(fabs(out[0] - (p0 * 10 + p1 * 30)) < 1e-4);
    ck_assert(fabs(out[1] - (p0 * 20 + p1 * 40)) < 1e-4);
    ck_assert(fabs(out[2] - (p1 * 10 + p0 * 30)) < 1e-4);
    //  One position: the output is that value row.
    bly_ref_attention(out, q, k, v, 2, 1, 2, 1, scores);
    ck_assert(out[0] == 10 && out[3] == 20);
}
END_TEST

START_TEST(test_swiglu_add_argmax)
{
    float g[3] = {0, 1, -2}, u[3] = {5, 2, 3}, o[3];
    bly_ref_swiglu(o, g, u, 3);
    ck_assert(o[0] == 0.0f);
    ck_assert(fabs(o[1] - 2 / (1 + exp(-1.0))) < 1e-6);
    ck_assert(fabs(o[2] - 3 * -2 / (1 + exp(2.0))) < 1e-6);
    bly_ref_add(o, u, 3);
    ck_assert(o[0] == 5.0f);
    float m[5] = {1, 7, 3, 7, NAN};
    ck_assert_uint_eq(bly_ref_argmax(m, 5), 1);
    float n[3] = {NAN, -1, -2};
    ck_assert_uint_eq(bly_ref_argmax(n, 3), 1);
}
END_TEST

START_TEST(test_types)
{
    ck_assert_uint_eq(bly_ref_row_size(BLY_TYPE_Q8_0, 64), 68);
    ck_assert_uint_eq(bly_ref_row_size(BLY_TYPE_Q4_K, 512), 288);
    ck_assert_uint_eq(bly_ref_row_size(BLY_TYPE_Q6_K, 256), 210);
    ck_assert_uint_eq(bly_ref_row_size(BLY_TYPE_F16, 3), 6);
    ck_assert_int_eq(bly_ref_vec_dot_type(BLY_TYPE_Q6_K), BLY_TYPE_Q8_K);
    ck_assert(!bly_ref_type_supported(BLY_TYPE_Q4_0));
    ck_assert_uint_eq(bly_ref_block_elements(BLY_TYPE_Q5_K), 0);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("ref");
    TCase *tc = tcase_create("ref");
    tcase_add_test(tc, test_fp16_known);
    tcase_add_test(tc, test_fp16_round_trip);
    tcase_add_test(tc, test_bf16);
    tcase_add_test(tc, test_dequant_q8_0);
    tcase_add_test(tc, test_dequant_q4_k);
    tcase_add_test(tc, test_dequant_q6_k);
    tcase_add_test(tc, test_dequant_float_types);
    tcase_add_test(tc, test_quantize_q8_0);
    tcase_add_test(tc, test_quantize_q8_k);
    tcase_add_test(tc, test_vec_dot_types);
    tcase_add_test(tc, test_matmul);
    tcase_add_test(tc, test_rmsnorm_softmax);
    tcase_add_test(tc, test_rope);
    tcase_add_test(tc, test_attention_gqa);
    tcase_add_test(tc, test_swiglu_add_argmax);
    tcase_add_test(tc, test_types);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
