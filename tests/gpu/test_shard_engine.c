/*  test_shard_engine - a layer-shard's compute on the Vulkan backend (validation layer on):
    two shards' engines ([0, 1) and [1, L) + head) with two session slots each, the sessions'
    steps interleaved, give bit for bit the logits of each session run alone on Vulkan and
    the CPU engine's within the F32 tolerance; the slot count follows the budget (limit and
    limit+1) and a budget holding no session refuses the engine; an embedding-only engine
    opens no device; an unknown backend is refused. */

#include "shard/bly_shard_engine.h"
#include "bly_vk.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bly_model_t *
s_load(void)
{
    const char *shared = getenv("BLY_SHARED_DIR");
    char path[1100], error[256] = "";
    snprintf(path, sizeof(path), "%s/testdata/models/qwen3-tiny-f32.gguf",
             shared ? shared : "../shared");
    bly_model_t *model = bly_model_load(path, error, sizeof(error));
    ck_assert_msg(model != NULL, "%s", error);
    return model;
}

static bly_shard_engine_t *
s_engine(const bly_model_t *model, const char *backend, uint32_t first, uint32_t end, bool head,
         size_t sessions, uint64_t budget, char *error)
{
    bly_shard_engine_config_t c = {.backend = backend, .device = -1, .layer_first = first,
                                   .layer_end = end, .head = head, .sessions = sessions,
                                   .budget = budget, .n_ctx = 32, .n_batch = 8, .threads = 1};
    error[0] = 0;
    return bly_shard_engine_new(model, &c, error, 256);
}

#define S_STEPS 5

//  Session k's prompt and greedy steps through two engines (a: layers [0, 1), b: the rest
//  and the head) on slot k, the two sessions' steps interleaved; logits per step into out.
static void
s_run_pair(const bly_model_t *model, bly_shard_engine_t *a, bly_shard_engine_t *b,
           const int *slots, size_t n_sessions, float *out)
{
    const bly_model_hparams_t *hp = bly_model_hparams(model);
    size_t ne = hp->n_embd, nv = hp->n_vocab, L = hp->n_layer;
    static const int32_t prompts[2][4] = {{9707, 11, 1879, 0}, {785, 3974, 13876, 38835}};
    float *x = malloc(4 * ne * sizeof(float));
    ck_assert_ptr_nonnull(x);
    int32_t next[2];
    for (size_t step = 0; step <= S_STEPS; step++)
        for (size_t k = 0; k < n_sessions; k++) {
            size_t n = step == 0 ? 4 : 1, pos = step == 0 ? 0 : 3 + step;
            const int32_t *ids = step == 0 ? prompts[slots[k]] : &next[k];
            float *logits = out + ((size_t) slots[k] * (S_STEPS + 1) + step) * nv;
            ck_assert_int_eq(bly_model_embed(model, ids, n, x), 0);
            ck_assert_int_eq(bly_shard_engine_run_layers(a, slots[k], 0, 1, x, n, pos), 0);
            ck_assert_int_eq(bly_shard_engine_run_layers(b, slots[k], 1, L, x, n, pos), 0);
            ck_assert_int_eq(bly_shard_engine_head(b, x + (n - 1) * ne, logits), 0);
            next[k] = 0;
            for (size_t v = 1; v < nv; v++)
                if (logits[v] > logits[next[k]])
                    next[k] = (int32_t) v;
        }
    free(x);
}

START_TEST(test_interleaved)
{
    bly_model_t *model = s_load();
    const bly_model_hparams_t *hp = bly_model_hparams(model);
    size_t nv = hp->n_vocab, rows = 2 * (S_STEPS + 1);
    float *alone = malloc(rows * nv * sizeof(float)), *mixed = malloc(rows * nv * sizeof(float));
    float *cpu = malloc(rows * nv * sizeof(float));
    ck_assert(alone && mixed && cpu);
    char error[256];
    const char *backends[] = {"vulkan", "vulkan", "cpu"};
    float *outs[] = {alone, mixed, cpu};
    for (size_t r = 0; r < 3; r++) {
        bly_shard_engine_t *a = s_engine(model, backends[r], 0, 1, false, 2, 1 << 30, error);
        ck_assert_msg(a != NULL, "%s", error);
        bly_shard_engine_t *b = s_engine(model, backends[r], 1, hp->n_layer, true, 2, 1 << 30,
                                         error);
        ck_assert_msg(b != NULL, "%s", error);
        ck_assert_uint_eq(bly_shard_engine_slots(a), 2);
        ck_assert_ptr_nonnull(strstr(bly_shard_engine_device(b), backends[r]));
        if (r == 0) {       //  each session alone: slot 1 only after slot 0 is done
            s_run_pair(model, a, b, (const int[]) {0}, 1, outs[r]);
            s_run_pair(model, a, b, (const int[]) {1}, 1, outs[r]);
        } else {
            s_run_pair(model, a, b, (const int[]) {0, 1}, 2, outs[r]);
        }
        bly_shard_engine_destroy(&b);
        bly_shard_engine_destroy(&a);
        ck_assert_ptr_null(a);
    }
    ck_assert_msg(memcmp(alone, mixed, rows * nv * sizeof(float)) == 0,
                  "interleaved sessions differ from sessions run alone");
    double worst = 0;
    for (size_t i = 0; i < rows * nv; i++) {
        double d = mixed[i] > cpu[i] ? mixed[i] - cpu[i] : cpu[i] - mixed[i];
        worst = d > worst ? d : worst;
    }
    ck_assert_msg(worst < 1e-4, "Vulkan shards differ from the CPU's by %g", worst);
    free(alone);
    free(mixed);
    free(cpu);
    bly_model_destroy(&model);
    ck_assert_uint_eq(bly_vk_validation_errors(), 0);
}
END_TEST

//  As s_run_pair with two sessions (slots 0 and 1), but every decode step of both sessions
//  runs as one batch (run_layers_multi + head_rows), as a shard runs queued steps.
static void
s_run_batched(const bly_model_t *model, bly_shard_engine_t *a, bly_shard_engine_t *b,
              float *out)
{
    const bly_model_hparams_t *hp = bly_model_hparams(model);
    size_t ne = hp->n_embd, nv = hp->n_vocab, L = hp->n_layer;
    static const int32_t prompts[2][4] = {{9707, 11, 1879, 0}, {785, 3974, 13876, 38835}};
    float *x = malloc(4 * ne * sizeof(float)), *logits = malloc(2 * nv * sizeof(float));
    ck_assert(x && logits);
    int32_t next[2];
    const int slots[2] = {0, 1};
    for (size_t step = 0; step <= S_STEPS; step++) {
        if (step == 0) {
            for (int k = 0; k < 2; k++) {
                ck_assert_int_eq(bly_model_embed(model, prompts[k], 4, x), 0);
                ck_assert_int_eq(bly_shard_engine_run_layers(a, k, 0, 1, x, 4, 0), 0);
                ck_assert_int_eq(bly_shard_engine_run_layers(b, k, 1, L, x, 4, 0), 0);
                ck_assert_int_eq(bly_shard_engine_head_rows(b, x + 3 * ne, 1,
                                                            logits + (size_t) k * nv), 0);
            }
        } else {
            size_t pos[2] = {3 + step, 3 + step};
            ck_assert_int_eq(bly_model_embed(model, next, 2, x), 0);
            ck_assert_int_eq(bly_shard_engine_run_layers_multi(a, slots, pos, 2, 0, 1, x), 0);
            ck_assert_int_eq(bly_shard_engine_run_layers_multi(b, slots, pos, 2, 1, L, x), 0);
            ck_assert_int_eq(bly_shard_engine_head_rows(b, x, 2, logits), 0);
        }
        for (int k = 0; k < 2; k++) {
            const float *l = logits + (size_t) k * nv;
            memcpy(out + ((size_t) k * (S_STEPS + 1) + step) * nv, l, nv * sizeof(float));
            next[k] = 0;
            for (size_t v = 1; v < nv; v++)
                if (l[v] > l[next[k]])
                    next[k] = (int32_t) v;
        }
    }
    free(logits);
    free(x);
}

//  Decode steps of two sessions batched equal the sessions run alone, bit for bit, on both
//  backends (CPU: one pass with the weights read once; Vulkan: the steps in order).
START_TEST(test_batched)
{
    bly_model_t *model = s_load();
    const bly_model_hparams_t *hp = bly_model_hparams(model);
    size_t nv = hp->n_vocab, rows = 2 * (S_STEPS + 1);
    float *alone = malloc(rows * nv * sizeof(float)), *batched = malloc(rows * nv * sizeof(float));
    ck_assert(alone && batched);
    const char *backends[] = {"cpu", "vulkan"};
    char error[256];
    for (size_t r = 0; r < 2; r++) {
        for (int mode = 0; mode < 2; mode++) {
            bly_shard_engine_t *a = s_engine(model, backends[r], 0, 1, false, 2, 1 << 30, error);
            ck_assert_msg(a != NULL, "%s", error);
            bly_shard_engine_t *b = s_engine(model, backends[r], 1, hp->n_layer, true, 2,
                                             1 << 30, error);
            ck_assert_msg(b != NULL, "%s", error);
            if (mode == 0) {
                s_run_pair(model, a, b, (const int[]) {0}, 1, alone);
                s_run_pair(model, a, b, (const int[]) {1}, 1, alone);
            } else {
                s_run_batched(model, a, b, batched);
            }
            bly_shard_engine_destroy(&b);
            bly_shard_engine_destroy(&a);
        }
        ck_assert_msg(memcmp(alone, batched, rows * nv * sizeof(float)) == 0,
                      "%s: batched decode steps differ from sessions run alone", backends[r]);
    }
    free(alone);
    free(batched);
    bly_model_destroy(&model);
    ck_assert_uint_eq(bly_vk_validation_errors(), 0);
}
END_TEST

START_TEST(test_budget)
{
    bly_model_t *model = s_load();
    const bly_model_hparams_t *hp = bly_model_hparams(model);
    char error[256];
    bly_shard_engine_t *e = s_engine(model, "vulkan", 0, hp->n_layer, false, 1, 1 << 30, error);
    ck_assert_msg(e != NULL, "%s", error);
    uint64_t one = bly_shard_engine_bytes(e);
    ck_assert_uint_gt(one, 0);
    bly_shard_engine_destroy(&e);
    //  Three sessions' bytes: three slots of eight; one byte less: two.
    const uint64_t budgets[] = {3 * one, 3 * one - 1};
    const size_t want[] = {3, 2};
    for (size_t i = 0; i < 2; i++) {
        e = s_engine(model, "vulkan", 0, hp->n_layer, false, 8, budgets[i], error);
        ck_assert_msg(e != NULL, "%s", error);
        ck_assert_uint_eq(bly_shard_engine_slots(e), want[i]);
        ck_assert_uint_eq(bly_shard_engine_bytes(e), want[i] * one);
        bly_shard_engine_destroy(&e);
    }
    ck_assert_ptr_null(s_engine(model, "vulkan", 0, hp->n_layer, false, 8, one - 1, error));
    ck_assert_msg(strstr(error, "holds no session") != NULL, "%s", error);
    //  Embedding only: nothing on the device, every slot available.
    e = s_engine(model, "vulkan", 0, 0, false, 8, 1, error);
    ck_assert_msg(e != NULL, "%s", error);
    ck_assert_uint_eq(bly_shard_engine_slots(e), 8);
    ck_assert_ptr_nonnull(strstr(bly_shard_engine_device(e), "no device"));
    bly_shard_engine_destroy(&e);
    ck_assert_ptr_null(s_engine(model, "opencl", 0, 1, false, 1, 1 << 30, error));
    ck_assert_msg(strstr(error, "not available") != NULL, "%s", error);
    bly_model_destroy(&model);
    ck_assert_uint_eq(bly_vk_validation_errors(), 0);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("shard_engine");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_budget);
    if (!getenv("BLY_VALGRIND"))    //  whole steps outlast the fence timeout under valgrind
        tcase_add_test(tc, test_interleaved);
    if (!getenv("BLY_VALGRIND"))
        tcase_add_test(tc, test_batched);
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
