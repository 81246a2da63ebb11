/*  test_sampler - greedy, seeds, top-k/top-p/min-p, temperature,
    repetition penalty, stop strings, bad parameters. */

#include "bly_sampler.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 1000 };

static void
s_logits(float *x)
{
    for (int i = 0; i < N; i++)
        x[i] = (float) ((i * 37) % 1009) / 100.0f;   //  Distinct values.
}

static bly_sampler_t *
s_new(float temp, uint32_t top_k, float top_p, float min_p, float penalty, uint64_t seed)
{
    bly_sampler_params_t p;
    bly_sampler_params_default(&p);
    p.temp = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repeat_penalty = penalty;
    p.seed = seed;
    return bly_sampler_new(&p, N);
}

static int32_t
s_argmax(const float *x)
{
    int32_t best = 0;
    for (int i = 1; i < N; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

START_TEST(test_greedy)
{
    float x[N];
    s_logits(x);
    bly_sampler_t *s = s_new(0.0f, 40, 0.95f, 0.05f, 1.0f, 1);
    ck_assert_int_eq(bly_sampler_sample(s, x), s_argmax(x));
    x[5] = x[s_argmax(x)];   //  A tie: the lowest id wins.
    ck_assert_int_eq(bly_sampler_sample(s, x), 5);
    bly_sampler_destroy(&s);
    //  top-k 1, top-p ~0 and min-p 1 all collapse to greedy at any temperature.
    s_logits(x);
    int32_t want = s_argmax(x);
    bly_sampler_t *a = s_new(2.0f, 1, 1.0f, 0.0f, 1.0f, 3);
    bly_sampler_t *b = s_new(2.0f, 0, 1e-6f, 0.0f, 1.0f, 4);
    bly_sampler_t *c = s_new(2.0f, 0, 1.0f, 1.0f, 1.0f, 5);
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(bly_sampler_sample(a, x), want);
        ck_assert_int_eq(bly_sampler_sample(b, x), want);
        ck_assert_int_eq(bly_sampler_sample(c, x), want);
    }
    bly_sampler_destroy(&a);
    bly_sampler_destroy(&b);
    bly_sampler_destroy(&c);
}
END_TEST

START_TEST(test_seed_deterministic)
{
    float x[N];
    int32_t first[64], again[64], other[64];
    bly_sampler_t *s1 = s_new(1.0f, 0, 1.0f, 0.0f, 1.0f, 42);
    bly_sampler_t *s2 = s_new(1.0f, 0, 1.0f, 0.0f, 1.0f, 42);
    bly_sampler_t *s3 = s_new(1.0f, 0, 1.0f, 0.0f, 1.0f, 43);
    for (int i = 0; i < 64; i++) {
        s_logits(x);
        first[i] = bly_sampler_sample(s1, x);
        s_logits(x);
        again[i] = bly_sampler_sample(s2, x);
        s_logits(x);
        other[i] = bly_sampler_sample(s3, x);
    }
    ck_assert(memcmp(first, again, sizeof(first)) == 0);
    ck_assert(memcmp(first, other, sizeof(first)) != 0);
    bly_sampler_destroy(&s1);
    bly_sampler_destroy(&s2);
    bly_sampler_destroy(&s3);
}
END_TEST

START_TEST(test_distribution)
{
    //  Probabilities 0.5, 0.3, 0.2 at temperature 1; at temperature 0.5
    //  they sharpen to 25:9:4.
    float base[N];
    for (int i = 0; i < N; i++)
        base[i] = -INFINITY;
    base[7] = logf(0.5f);
    base[3] = logf(0.3f);
    base[9] = logf(0.2f);
    const float temps[2] = {1.0f, 0.5f};
    const double want[2][3] = {{0.5, 0.3, 0.2}, {25.0 / 38, 9.0 / 38, 4.0 / 38}};
    for (int t = 0; t < 2; t++) {
        bly_sampler_t *s = s_new(temps[t], 0, 1.0f, 0.0f, 1.0f, 7);
        int count[N] = {0};
        float x[N];
        for (int i = 0; i < 20000; i++) {
            memcpy(x, base, sizeof(x));
            count[bly_sampler_sample(s, x)]++;
        }
        ck_assert_int_eq(count[7] + count[3] + count[9], 20000);
        ck_assert(fabs(count[7] / 20000.0 - want[t][0]) < 0.015);
        ck_assert(fabs(count[3] / 20000.0 - want[t][1]) < 0.015);
        ck_assert(fabs(count[9] / 20000.0 - want[t][2]) < 0.015);
        bly_sampler_destroy(&s);
    }
}
END_TEST

START_TEST(test_top_p_min_p)
{
    float base[N];
    for (int i = 0; i < N; i++)
        base[i] = -INFINITY;
    base[7] = logf(0.5f);
    base[3] = logf(0.3f);
    base[9] = logf(0.2f);
    //  top-p 0.7: 0.5 + 0.3 reaches it, 9 is never drawn.
    //  min-p 0.5: 0.2 < 0.5 * 0.5, 9 is never drawn; 3 (0.3 >= 0.25) is.
    bly_sampler_t *p = s_new(1.0f, 0, 0.7f, 0.0f, 1.0f, 9);
    bly_sampler_t *m = s_new(1.0f, 0, 1.0f, 0.5f, 1.0f, 9);
    bly_sampler_t *k = s_new(1.0f, 2, 1.0f, 0.0f, 1.0f, 9);
    int seen_p[N] = {0}, seen_m[N] = {0}, seen_k[N] = {0};
    float x[N];
    for (int i = 0; i < 2000; i++) {
        memcpy(x, base, sizeof(x));
        seen_p[bly_sampler_sample(p, x)]++;
        memcpy(x, base, sizeof(x));
        seen_m[bly_sampler_sample(m, x)]++;
        memcpy(x, base, sizeof(x));
        seen_k[bly_sampler_sample(k, x)]++;
    }
    ck_assert(seen_p[9] == 0 && seen_p[3] > 0 && seen_p[7] > 0);
    ck_assert(seen_m[9] == 0 && seen_m[3] > 0 && seen_m[7] > 0);
    ck_assert(seen_k[9] == 0 && seen_k[3] > 0 && seen_k[7] > 0);
    bly_sampler_destroy(&p);
    bly_sampler_destroy(&m);
    bly_sampler_destroy(&k);
}
END_TEST

START_TEST(test_repeat_penalty)
{
    float x[N];
    for (int i = 0; i < N; i++)
        x[i] = 0.0f;
    x[10] = 2.0f;
    x[11] = 1.5f;
    x[12] = -1.0f;
    bly_sampler_t *s = s_new(0.0f, 40, 1.0f, 0.0f, 2.0f, 1);
    ck_assert_int_eq(bly_sampler_sample(s, x), 10);
    bly_sampler_accept(s, 10);
    bly_sampler_accept(s, 10);   //  Counted once.
    bly_sampler_accept(s, 12);
    bly_sampler_accept(s, 99999);   //  Out of range: ignored.
    float y[N];
    memcpy(y, x, sizeof(x));
    ck_assert_int_eq(bly_sampler_sample(s, y), 11);
    ck_assert(y[10] == 1.0f);
    ck_assert(y[12] == -2.0f);
    bly_sampler_destroy(&s);
}
END_TEST

START_TEST(test_stop_and_params)
{
    const char *stops[] = {"END", "", "\n\n"};
    ck_assert_int_eq(bly_sampler_find_stop("abc\n\nxEND", 10, stops, 3), 3);
    ck_assert_int_eq(bly_sampler_find_stop("abENDc\n\n", 8, stops, 3), 2);
    ck_assert_int_eq(bly_sampler_find_stop("abEN", 4, stops, 3), -1);
    ck_assert_int_eq(bly_sampler_find_stop("", 0, stops, 3), -1);
    ck_assert_ptr_null(s_new(-0.1f, 40, 1.0f, 0.0f, 1.0f, 1));
    ck_assert_ptr_null(s_new(1.0f, 40, 1.1f, 0.0f, 1.0f, 1));
    ck_assert_ptr_null(s_new(1.0f, 40, 1.0f, -0.5f, 1.0f, 1));
    ck_assert_ptr_null(s_new(1.0f, 40, 1.0f, 0.0f, 0.0f, 1));
    ck_assert_ptr_null(s_new(NAN, 40, 1.0f, 0.0f, 1.0f, 1));
    bly_sampler_t *s = s_new(100.0f, 40, 1.0f, 1.0f, 100.0f, 1);
    ck_assert_ptr_nonnull(s);
    bly_sampler_destroy(&s);
    bly_sampler_destroy(&s);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("sampler");
    tcase_add_test(tc, test_greedy);
    tcase_add_test(tc, test_seed_deterministic);
    tcase_add_test(tc, test_distribution);
    tcase_add_test(tc, test_top_p_min_p);
    tcase_add_test(tc, test_repeat_penalty);
    tcase_add_test(tc, test_stop_and_params);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
