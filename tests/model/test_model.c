/*  test_model - the forward pass end to end against llama.cpp's golden
    outputs on both shared tiny models, stage splits, chunked prefill, the
    context limits and the loader's errors. */

#include "bly_kernels.h"
#include "bly_model.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PROMPTS_MAX 8
#define S_IDS_MAX 64

//  One golden prompt, pulled out of the JSON.
typedef struct {
    int32_t prompt_ids[S_IDS_MAX];
    size_t n_prompt;
    int32_t top_ids[10];
    double top_logits[10];
    int32_t greedy_ids[32];
    double greedy_logits[32];
    size_t safe_steps;
} s_prompt_t;

static char *
s_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t) n + 1);
    ck_assert(data);
    ck_assert_uint_eq(fread(data, 1, (size_t) n, f), (size_t) n);
    data[n] = 0;
    fclose(f);
    if (size)
        *size = (size_t) n;
    return data;
}

//  End of the JSON value (object or array) starting at p.
static const char *
s_json_end(const char *p)
{
    int depth = 0;
    bool in_string = false;
    for (; *p; p++) {
        if (in_string) {
            if (*p == '\\')
                p++;
            else if (*p == '"')
                in_string = false;
        } else if (*p == '"')
            in_string = true;
        else if (*p == '[' || *p == '{')
            depth++;
        else if ((*p == ']' || *p == '}') && --depth == 0)
            return p + 1;
    }
    return p;
}

//  All numbers after `"key":` inside [begin, end) up to the value's end.
static size_t
s_json_numbers(const char *begin, const char *end, const char *key, double *out, size_t max)
{
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "\"%s\":", key);
    const char *p = strstr(begin, pattern);
    ck_assert_msg(p && p < end, "key %s missing", key);
    p += strlen(pattern);
    while (*p == ' ')
        p++;
    const char *stop = (*p == '[' || *p == '{') ? s_json_end(p) : p + strcspn(p, ",}");
    size_t n = 0;
    while (p < stop && n < max) {
        if (*p == '-' || (*p >= '0' && *p <= '9')) {
            char *next;
            out[n++] = strtod(p, &next);
            p = next;
        } else if (*p == '"') {   //  Skip keys such as "id".
            p = strchr(p + 1, '"') + 1;
        } else
            p++;
    }
    return n;
}

static size_t
s_load_golden(const char *path, s_prompt_t *prompts)
{
    char *text = s_read_file(path, NULL);
    const char *p = strchr(strstr(text, "\"prompts\":"), '[') + 1;
    size_t n = 0;
    double v[256];
    while ((p = strchr(p, '{')) != NULL && n < S_PROMPTS_MAX) {
        const char *end = s_json_end(p);
        s_prompt_t *pr = &prompts[n++];
        pr->n_prompt = s_json_numbers(p, end, "prompt_ids", v, S_IDS_MAX);
        for (size_t i = 0; i < pr->n_prompt; i++)
            pr->prompt_ids[i] = (int32_t) v[i];
        ck_assert_uint_eq(s_json_numbers(p, end, "top10_last", v, 20), 20);
        for (size_t i = 0; i < 10; i++) {
            pr->top_ids[i] = (int32_t) v[2 * i];
            pr->top_logits[i] = v[2 * i + 1];
        }
        ck_assert_uint_eq(s_json_numbers(p, end, "greedy", v, 96), 96);
        for (size_t i = 0; i < 32; i++) {
            pr->greedy_ids[i] = (int32_t) v[3 * i];
            pr->greedy_logits[i] = v[3 * i + 1];
        }
        ck_assert_uint_eq(s_json_numbers(p, end, "safe_steps", v, 1), 1);
        pr->safe_steps = (size_t) v[0];
        p = end;
        if (*p == ']' || strncmp(p, "\n ]", 3) == 0 || strchr(",\n ", *p) == NULL)
            break;
        while (*p == ',' || *p == ' ' || *p == '\n')
            p++;
        if (*p != '{')
            break;
    }
    free(text);
    return n;
}

static const char *
s_models_dir(void)
{
    static char dir[1024];
    const char *shared = getenv("BLY_SHARED_DIR");
    snprintf(dir, sizeof(dir), "%s/testdata/models", shared ? shared : "../shared");
    return dir;
}

static bly_model_t *
s_load(const char *name)
{
    char path[1200], error[256] = "";
    snprintf(path, sizeof(path), "%s/%s.gguf", s_models_dir(), name);
    bly_model_t *model = bly_model_load(path, error, sizeof(error));
    ck_assert_msg(model != NULL, "%s: %s", path, error);
    return model;
}

//  Everything the golden file says for one model, within `tol`.
static void
s_check_golden(const char *name, double tol, size_t n_threads)
{
    bly_model_t *model = s_load(name);
    const bly_model_hparams_t *hp = bly_model_hparams(model);
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s.golden.json", s_models_dir(), name);
    s_prompt_t prompts[S_PROMPTS_MAX];
    size_t n_prompts = s_load_golden(path, prompts);
    ck_assert_uint_eq(n_prompts, 3);
    float *logits = malloc(hp->n_vocab * sizeof(float));
    double worst = 0.0;
    for (size_t k = 0; k < n_prompts; k++) {
        s_prompt_t *pr = &prompts[k];
        bly_model_ctx_t *ctx = bly_model_ctx_new(model, 0, hp->n_layer, 512, 64, n_threads,
                                                 NULL, 0);
        ck_assert_ptr_nonnull(ctx);
        ck_assert_int_eq(bly_model_eval(ctx, pr->prompt_ids, pr->n_prompt, 0, logits), 0);
        for (size_t i = 0; i < 10; i++) {
            double d = fabs(logits[pr->top_ids[i]] - pr->top_logits[i]);
            worst = fmax(worst, d);
            ck_assert_msg(d <= tol, "%s P%zu top id %d: %g vs %g", name, k + 1, pr->top_ids[i],
                          logits[pr->top_ids[i]], pr->top_logits[i]);
        }
        //  Every logit against the full file.
        snprintf(path, sizeof(path), "%s/%s.p%zu.logits.f32", s_models_dir(), name, k + 1);
        size_t size;
        float *want = (float *) s_read_file(path, &size);
        ck_assert_uint_eq(size, hp->n_vocab * sizeof(float));
        for (size_t i = 0; i < hp->n_vocab; i++)
            ck_assert_msg(fabs(logits[i] - want[i]) <= tol, "%s P%zu logit %zu: %g vs %g", name,
                          k + 1, i, logits[i], want[i]);
        free(want);
        //  Greedy steps, each token fed back alone.
        size_t pos = pr->n_prompt;
        for (size_t s = 0; s < pr->safe_steps; s++) {
            int32_t id = (int32_t) bly_ref_argmax(logits, hp->n_vocab);
            ck_assert_msg(id == pr->greedy_ids[s], "%s P%zu step %zu: id %d vs %d", name, k + 1,
                          s, id, pr->greedy_ids[s]);
            ck_assert_msg(fabs(logits[id] - pr->greedy_logits[s]) <= tol,
                          "%s P%zu step %zu logit %g vs %g", name, k + 1, s, logits[id],
                          pr->greedy_logits[s]);
            ck_assert_int_eq(bly_model_eval(ctx, &id, 1, pos++, logits), 0);
        }
        bly_model_ctx_destroy(&ctx);
    }
    printf("%s (%zu threads, %s): worst top-10 logit difference %.3g\n", name, n_threads,
           bly_kern_isa_name(bly_kern_isa()), worst);
    free(logits);
    bly_model_destroy(&model);
}

START_TEST(test_golden_f32)
{
    s_check_golden("qwen3-tiny-f32", 1e-4, 2);
}
END_TEST

START_TEST(test_golden_q8)
{
    s_check_golden("qwen3-tiny-q8", 0.25, 2);
    //  The quantized-activation path is exact enough to hold far tighter.
    s_check_golden("qwen3-tiny-q8", 1e-3, 1);
}
END_TEST

START_TEST(test_golden_portable)
{
    bly_kern_set_isa(BLY_KERN_PORTABLE);
    s_check_golden("qwen3-tiny-f32", 1e-4, 1);
    //  Sums in double can move one activation across a Q8_0 rounding
    //  boundary (up to 0.2 per the testdata README): the README tolerance.
    s_check_golden("qwen3-tiny-q8", 0.25, 3);
    bly_kern_set_isa(BLY_KERN_AVX2);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_golden_f32);
    tcase_add_test(tc, test_golden_q8);
    tcase_add_test(tc, test_golden_portable);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
