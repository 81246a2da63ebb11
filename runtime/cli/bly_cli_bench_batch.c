/*  =========================================================================
    blyan bench --sessions N - decode throughput of N concurrent sessions on
    the CPU: one token of every session per pass (bly_model_run_layers_multi,
    each weight read once for all of them, as a shard batching the sessions
    waiting on it does) against the same sessions decoded one after another,
    measured in the same run, alternating rounds.
    ========================================================================= */

#include "bly_cli_bench_batch.h"
#include "bly_kernels.h"
#include "bly_limits.h"
#include "bly_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define S_PROMPT 16     //  Prompt tokens of each session.
#define S_ROUNDS 2      //  Alternating rounds of each mode.

typedef struct {
    const bly_model_t *model;
    size_t n;                           //  Sessions.
    bly_model_ctx_t *ctx[BLY_MODEL_BATCH_MAX];
    size_t pos[BLY_MODEL_BATCH_MAX];
    int32_t next[BLY_MODEL_BATCH_MAX];
    float *x;                           //  n x n_embd.
    float *logits;                      //  n x n_vocab.
} s_bench_t;

static double
s_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

//  One greedy step of every session: batched (one pass through the layers and one through
//  the head for all) or one session at a time.
static int
s_step(s_bench_t *b, bool batched)
{
    const bly_model_hparams_t *hp = bly_model_hparams(b->model);
    size_t v = hp->n_vocab;
    if (batched) {
        if (bly_model_embed(b->model, b->next, b->n, b->x) != 0
            || bly_model_run_layers_multi(b->ctx, b->pos, b->n, 0, hp->n_layer, b->x) != 0
            || bly_model_head_rows(b->ctx[0], b->x, b->n, b->logits) != 0)
            return -1;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (!batched
            && (bly_model_embed(b->model, &b->next[i], 1, b->x) != 0
                || bly_model_run_layers(b->ctx[i], 0, hp->n_layer, b->x, 1, b->pos[i]) != 0
                || bly_model_head(b->ctx[i], b->x, b->logits) != 0))
            return -1;
        b->next[i] = (int32_t) bly_ref_argmax(b->logits + (batched ? i * v : 0), v);
        b->pos[i]++;
    }
    return 0;
}

static int
s_prepare(s_bench_t *b, size_t threads, size_t n_ctx)
{
    const bly_model_hparams_t *hp = bly_model_hparams(b->model);
    b->x = calloc(b->n * hp->n_embd, sizeof(float));
    b->logits = calloc(b->n * hp->n_vocab, sizeof(float));
    if (!b->x || !b->logits)
        return -1;
    for (size_t i = 0; i < b->n; i++) {
        char error[256];
        b->ctx[i] = bly_model_ctx_new(b->model, 0, hp->n_layer, n_ctx, b->n, threads, error,
                                      sizeof(error));
        if (!b->ctx[i]) {
            fprintf(stderr, "blyan bench: %s\n", error);
            return -1;
        }
        int32_t prompt[S_PROMPT];
        for (size_t t = 0; t < S_PROMPT; t++)
            prompt[t] = (int32_t) ((i * 7919 + t * 104729) % hp->n_vocab);
        if (bly_model_eval(b->ctx[i], prompt, S_PROMPT, 0, b->logits) != 0)
            return -1;
        b->next[i] = (int32_t) bly_ref_argmax(b->logits, hp->n_vocab);
        b->pos[i] = S_PROMPT;
    }
    return 0;
}

int
bly_cli_bench_sessions(const bly_model_t *model, size_t n, size_t threads, size_t n_gen,
                       bool json)
{
    bly_assert(n >= 1 && n <= BLY_MODEL_BATCH_MAX);
    s_bench_t *b = calloc(1, sizeof(*b));
    int rc = 1;
    if (!b)
        return 1;
    b->model = model;
    b->n = n;
    double t_batched = 0, t_alone = 0;
    size_t steps = (n_gen + S_ROUNDS * 2 - 1) / (S_ROUNDS * 2);
    if (s_prepare(b, threads, S_PROMPT + 2 * S_ROUNDS * steps + 1) != 0)
        goto out;
    for (size_t round = 0; round < 2 * S_ROUNDS; round++) {
        bool batched = round % 2 == 0;
        double t0 = s_clock();
        for (size_t s = 0; s < steps; s++)
            if (s_step(b, batched) != 0)
                goto out;
        *(batched ? &t_batched : &t_alone) += s_clock() - t0;
    }
    double tokens = (double) (n * steps * S_ROUNDS);
    double batched = tokens / t_batched, alone = tokens / t_alone;
    if (json)
        printf("{\"sessions\":%zu,\"threads\":%zu,\"isa\":\"%s\",\"tokens_each_mode\":%.0f,"
               "\"batched_tok_s\":%.2f,\"one_at_a_time_tok_s\":%.2f,\"ratio\":%.3f}\n",
               n, threads, bly_kern_isa_name(bly_kern_isa()), tokens, batched, alone,
               batched / alone);
    else
        printf("sessions    %zu, %zu threads, %.0f tokens per mode (alternating rounds)\n"
               "batched     %.2f tok/s (one pass per step for all sessions)\n"
               "one by one  %.2f tok/s\n"
               "ratio       %.2f\n",
               n, threads, tokens, batched, alone, batched / alone);
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        bly_model_ctx_destroy(&b->ctx[i]);
    free(b->x);
    free(b->logits);
    free(b);
    return rc;
}
