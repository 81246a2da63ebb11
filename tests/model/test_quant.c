/*  test_quant - F16, BF16 and Q8_0 quantization against independent oracles. */

#include "bly_quant.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

//  Value of an F16 bit pattern, computed from the format's definition.
static double
s_f16_value(uint16_t h)
{
    int exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (exponent == 0)
        return sign * ldexp(mantissa, -24);
    if (exponent == 31)
        return mantissa ? NAN : sign * INFINITY;
    return sign * ldexp(1024 + mantissa, exponent - 25);
}

//  The F16 nearest to x (ties to the even pattern) by search over all values.
static uint16_t
s_f16_oracle(float x)
{
    double m = fabs((double) x);
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    uint16_t low = 0, high = 0x7BFF;   //  Finite positive patterns ascend with their value.
    if (m >= 65520.0)
        return sign | 0x7C00;
    while (low < high) {   //  Largest pattern whose value is <= m.
        uint16_t mid = (uint16_t) ((low + high + 1) / 2);
        if (s_f16_value(mid) <= m)
            low = mid;
        else
            high = (uint16_t) (mid - 1);
    }
    double below = s_f16_value(low);
    double above = low == 0x7BFF ? 65536.0 : s_f16_value((uint16_t) (low + 1));
    if (m - below < above - m || (m - below == above - m && (low & 1) == 0))
        return sign | low;
    return sign | (uint16_t) (low + 1);
}

static float
s_float(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

START_TEST(test_f16_known)
{
    ck_assert_uint_eq(bly_fp32_to_fp16(1.0f), 0x3C00);
    ck_assert_uint_eq(bly_fp32_to_fp16(-2.0f), 0xC000);
    ck_assert_uint_eq(bly_fp32_to_fp16(0.1f), 0x2E66);
    ck_assert_uint_eq(bly_fp32_to_fp16(1.0f / 3.0f), 0x3555);
    ck_assert_uint_eq(bly_fp32_to_fp16(65504.0f), 0x7BFF);
    ck_assert_uint_eq(bly_fp32_to_fp16(65519.0f), 0x7BFF);
    ck_assert_uint_eq(bly_fp32_to_fp16(65520.0f), 0x7C00);
    ck_assert_uint_eq(bly_fp32_to_fp16(1e9f), 0x7C00);
    ck_assert_uint_eq(bly_fp32_to_fp16(-INFINITY), 0xFC00);
    ck_assert_uint_eq(bly_fp32_to_fp16(ldexpf(1.0f, -24)), 0x0001);
    ck_assert_uint_eq(bly_fp32_to_fp16(ldexpf(1.0f, -25)), 0x0000);   //  Tie to even.
    ck_assert_uint_eq(bly_fp32_to_fp16(ldexpf(1.5f, -25)), 0x0001);
    ck_assert_uint_eq(bly_fp32_to_fp16(ldexpf(1.0f, -14)), 0x0400);
    ck_assert_uint_eq(bly_fp32_to_fp16(-0.0f), 0x8000);
    uint16_t nan = bly_fp32_to_fp16(NAN);
    ck_assert_uint_eq(nan & 0x7C00, 0x7C00);
    ck_assert_uint_ne(nan & 0x3FF, 0);
}
END_TEST

START_TEST(test_f16_oracle)
{
    //  Every F32 exponent that lands in F16's range, with many significands,
    //  including exact halfway points.
    uint64_t state = 99;
    for (uint32_t exponent = 90; exponent < 145; exponent++) {
        for (int k = 0; k < 600; k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t mantissa = (uint32_t) (state >> 41);
            if (k < 8)
                mantissa = (k & 1 ? 0x1000u : 0x3000u) << (k / 2);   //  Halfway patterns.
            uint32_t bits = (k % 3 == 0 ? 0x80000000u : 0) | exponent << 23 | mantissa;
            float x = s_float(bits);
            ck_assert_msg(bly_fp32_to_fp16(x) == s_f16_oracle(x),
                          "%a: got 0x%04x, expected 0x%04x", (double) x, bly_fp32_to_fp16(x),
                          s_f16_oracle(x));
        }
    }
}
END_TEST

START_TEST(test_bf16)
{
    ck_assert_uint_eq(bly_fp32_to_bf16(1.0f), 0x3F80);
    ck_assert_uint_eq(bly_fp32_to_bf16(-2.0f), 0xC000);
    ck_assert_uint_eq(bly_fp32_to_bf16(s_float(0x3F808000)), 0x3F80);   //  Tie: even stays.
    ck_assert_uint_eq(bly_fp32_to_bf16(s_float(0x3F818000)), 0x3F82);   //  Tie: odd rounds up.
    ck_assert_uint_eq(bly_fp32_to_bf16(s_float(0x3F808001)), 0x3F81);
    ck_assert_uint_eq(bly_fp32_to_bf16(INFINITY), 0x7F80);
    ck_assert_uint_eq(bly_fp32_to_bf16(s_float(0x7F7FFFFF)), 0x7F80);   //  Overflows.
    uint16_t nan = bly_fp32_to_bf16(NAN);
    ck_assert_uint_eq(nan & 0x7F80, 0x7F80);
    ck_assert_uint_ne(nan & 0x7F, 0);
    //  Against the nearest of the two neighbours, in double.
    uint64_t state = 7;
    for (int k = 0; k < 100000; k++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t bits = (uint32_t) (state >> 32) & 0xFF7FFFFF;   //  Finite.
        float x = s_float(bits);
        uint16_t got = bly_fp32_to_bf16(x);
        double low = s_float((bits >> 16) << 16);
        uint32_t next = ((bits >> 16) + 1) << 16;
        //  Past the largest finite value the next step is 2^128, which rounds to infinity.
        double high = (next & 0x7F800000) == 0x7F800000 ? copysign(ldexp(1.0, 128), low)
                                                        : s_float(next);
        double dl = fabs((double) x - low), dh = fabs(high - (double) x);
        uint16_t expected = (uint16_t) ((bits >> 16) + (dh < dl || (dh == dl && (bits >> 16) & 1)));
        ck_assert_uint_eq(got, expected);
    }
    uint16_t row[3];
    float in[3] = {1.0f, -2.0f, 0.0f};
    bly_quantize_row_bf16(in, row, 3);
    ck_assert_uint_eq(row[1], 0xC000);
    bly_quantize_row_f16(in, row, 3);
    ck_assert_uint_eq(row[0], 0x3C00);
}
END_TEST

START_TEST(test_q8_0)
{
    float x[64];
    for (int i = 0; i < 32; i++)
        x[i] = (float) (i - 13) * 0.37f;
    memset(x + 32, 0, 32 * sizeof(float));   //  An all-zero block.
    bly_block_q8_0_t blocks[2];
    bly_quantize_row_q8_0(x, blocks, 64);
    //  max |x| = 18 * 0.37 = 6.66: d = 6.66 / 127, that value stored as 127 * sign.
    double d = s_f16_value(blocks[0].d);
    ck_assert_double_eq_tol(d, 6.66 / 127.0, 6.66 / 127.0 * 1e-3);
    ck_assert_int_eq(blocks[0].qs[31], 127);
    ck_assert_int_eq(blocks[0].qs[13], 0);
    ck_assert_int_eq(blocks[0].qs[0], (int) lround(-13 * 0.37 * 127.0 / 6.66));
    for (int i = 0; i < 32; i++)
        ck_assert_double_le(fabs(blocks[0].qs[i] * d - x[i]), d * 0.5 + fabs(x[i]) * 2e-3);
    ck_assert_uint_eq(blocks[1].d, 0);
    for (int i = 0; i < 32; i++)
        ck_assert_int_eq(blocks[1].qs[i], 0);
    //  Random rows: every value within half a step.
    uint64_t state = 3;
    float row[256];
    bly_block_q8_0_t out[8];
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 256; i++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            row[i] = ((float) (state >> 40) / (float) (1 << 24) - 0.5f) * (float) (round + 1);
        }
        bly_quantize_row_q8_0(row, out, 256);
        for (int b = 0; b < 8; b++) {
            double scale = s_f16_value(out[b].d);
            for (int i = 0; i < 32; i++) {
                double error = fabs(out[b].qs[i] * scale - row[b * 32 + i]);
                ck_assert_double_le(error, scale * 0.5 + fabs(row[b * 32 + i]) * 2e-3);
            }
        }
    }
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *suite = suite_create("quant");
    TCase *tc = tcase_create("rows");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_f16_known);
    tcase_add_test(tc, test_f16_oracle);
    tcase_add_test(tc, test_bf16);
    tcase_add_test(tc, test_q8_0);
    suite_add_tcase(suite, tc);
    return suite;
}

int
main(void)
{
    SRunner *runner = srunner_create(s_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
