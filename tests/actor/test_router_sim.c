/*  =========================================================================
    test_router_sim - deterministic simulation of the router core

    One thread, a virtual clock and a seeded network that delays, duplicates
    and reorders messages. Five simulated shards run the real shard core
    (bly_shard_core) over a toy model whose activations are hash chains of
    the whole token history, so a shard that lost its KV cache and was not
    re-prefilled gives different logits. Shards crash, stall and restart at
    every step of a generation. Invariants: every request ends; the output
    equals the single-process reference; no session stays held (router, and
    shards once their idle timeout passes).
    ========================================================================= */

#include "bly_limits.h"
#include "router/bly_router_core.h"
#include "shard/bly_shard_core.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_STAGES 5          //  Embedding, 3 layers, head.
#define S_VOCAB 64
#define S_NODES 6           //  The sixth (a third copy of stages 0-1) joins audit tests.
#define S_LIVE 5
#define S_EVENTS 1024
#define S_CTX 256
#define S_REQUESTS 6

static size_t s_busy_answers = 0;    //  Busy answers shards gave (test_shard_busy).

//  ---- Toy model ------------------------------------------------------------

static uint64_t
s_mix(uint64_t a, uint64_t b)
{
    uint64_t x = a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

//  One stage over one token: the stage's "KV" folds in the input; the
//  output depends on the whole history.
static uint64_t
s_stage(uint64_t *kv, uint32_t stage, uint64_t x)
{
    *kv = s_mix(*kv, x);
    return s_mix(*kv, stage);
}

static void
s_logits(uint64_t x, float *logits)
{
    for (int v = 0; v < S_VOCAB; v++)
        logits[v] = (float) (s_mix(x, (uint64_t) v) % 10007) / 1000.0f;
}

//  ---- Network and nodes ----------------------------------------------------

typedef enum { E_FORWARD, E_RESULT, E_FAIL, E_PING, E_PONG, E_CLOSE } s_kind_t;

typedef struct {
    bool used;
    uint64_t at;                    //  Delivery time.
    uint64_t order;                 //  Tie-break.
    s_kind_t kind;
    int node;                       //  Target shard (forward, ping, close).
    uint64_t session, nonce;
    uint32_t epoch, step, pos, n;
    bool want_logits;
    uint64_t acts[BLY_MODEL_BATCH_MAX];
    int32_t tokens[BLY_MODEL_BATCH_MAX];
    bly_router_hop_t hops[BLY_ROUTER_PATH_MAX];
    size_t hop_count, hop_index;
    float logits[S_VOCAB];
    int code;
    uint8_t from[32];               //  Fail: the shard that sent it.
    bool audit;                     //  Forward: an audit replay.
} s_event_t;

typedef struct {
    bly_shard_core_t *core;
    uint64_t kv[BLY_SHARD_SESSIONS_MAX][S_STAGES];
    bool down;                      //  Crashed: drops everything.
    bool lie;                       //  Perturbs every output (a lying shard).
    bool lie_live;                  //  Perturbs outputs of sessions, not of audit replays.
    uint64_t stall_until;           //  Stalled: handles nothing before then.
    uint32_t first, last;
} s_node_t;

typedef struct {
    uint64_t base, seed, now, order;    //  base: the run's seed; seed: PRNG state.
    s_event_t *events;
    s_node_t nodes[S_NODES];
    bly_router_core_t *router;
    uint8_t router_id[32];
    //  Per request: what the client saw.
    int32_t got[S_REQUESTS][S_CTX];
    size_t got_n[S_REQUESTS], streamed[S_REQUESTS];
    int done[S_REQUESTS];           //  0 running, 1 done, -code error.
    double p_dup;
    uint64_t delay_max;
} s_sim_t;

static uint64_t
s_rand(s_sim_t *sim)
{
    sim->seed = s_mix(sim->seed, 0x1234567);
    return sim->seed;
}

static s_event_t *
s_post(s_sim_t *sim, s_kind_t kind)
{
    for (size_t i = 0; i < S_EVENTS; i++)
        if (!sim->events[i].used) {
            s_event_t *e = &sim->events[i];
            e->used = true;
            e->kind = kind;
            e->at = sim->now + 1 + s_rand(sim) % sim->delay_max;
            e->order = sim->order++;
            return e;
        }
    ck_abort_msg("event queue full");
    return NULL;
}

//  Duplicate a posted event (the network delivers it twice).
static void
s_maybe_dup(s_sim_t *sim, s_event_t *e)
{
    if ((double) (s_rand(sim) % 1000) / 1000.0 >= sim->p_dup)
        return;
    s_event_t *d = s_post(sim, e->kind);
    uint64_t at = d->at, order = d->order;
    *d = *e;
    d->at = at;
    d->order = order;
}

static int
s_node_of(const bly_router_hop_t *hop)
{
    return hop->node_id[0];
}

static void
s_apply_fx(s_sim_t *sim)
{
    for (size_t i = 0; i < bly_router_core_fx_count(sim->router); i++) {
        const bly_router_fx_t *fx = bly_router_core_fx_at(sim->router, i);
        s_event_t *e = NULL;
        int r = (int) fx->client;
        switch (fx->kind) {
        case BLY_ROUTER_FX_FORWARD:
            e = s_post(sim, E_FORWARD);
            e->node = s_node_of(&fx->hops[0]);
            e->session = fx->session, e->epoch = fx->epoch, e->step = fx->step;
            e->pos = fx->pos, e->n = fx->n_tokens, e->want_logits = fx->logits;
            e->audit = fx->audit;
            memcpy(e->tokens, fx->tokens, fx->n_tokens * sizeof(int32_t));
            memcpy(e->hops, fx->hops, fx->hop_count * sizeof(*fx->hops));
            e->hop_count = fx->hop_count, e->hop_index = 0;
            break;
        case BLY_ROUTER_FX_PING:
            e = s_post(sim, E_PING);
            e->node = s_node_of(fx->hop), e->nonce = fx->nonce;
            break;
        case BLY_ROUTER_FX_CLOSE:
            e = s_post(sim, E_CLOSE);
            e->node = s_node_of(fx->hop), e->session = fx->session;
            break;
        case BLY_ROUTER_FX_TOKEN:
            ck_assert_uint_eq(fx->index, sim->streamed[r]);
            sim->streamed[r]++;
            break;
        case BLY_ROUTER_FX_DONE:
            ck_assert_int_eq(sim->done[r], 0);
            sim->done[r] = 1;
            sim->got_n[r] = fx->n_ids;
            memcpy(sim->got[r], fx->ids, fx->n_ids * sizeof(int32_t));
            break;
        case BLY_ROUTER_FX_ERROR:
            ck_assert_int_eq(sim->done[r], 0);
            sim->done[r] = -fx->code;
            break;
        }
        if (e && (fx->kind == BLY_ROUTER_FX_FORWARD || fx->kind == BLY_ROUTER_FX_CLOSE))
            s_maybe_dup(sim, e);
    }
}

//  A shard handles a forward: admit, run its stages, pass on or answer.
static void
s_shard_forward(s_sim_t *sim, s_node_t *node, s_event_t *e)
{
    const bly_router_hop_t *hop = &e->hops[e->hop_index];
    bly_shard_step_t st = {sim->router_id, e->session, e->epoch, e->step, e->pos, e->n,
                           hop->stage_first, hop->stage_last};
    bool reset;
    int slot = bly_shard_core_admit(node->core, &st, sim->now, &reset);
    if (slot == BLY_SHARD_DROP)
        return;
    if (slot < 0) {
        s_busy_answers += slot == BLY_SHARD_ERR_BUSY;
        s_event_t *f = s_post(sim, E_FAIL);
        f->session = e->session, f->epoch = e->epoch, f->step = e->step, f->code = -slot;
        f->from[0] = (uint8_t) (node - sim->nodes);
        return;
    }
    if (reset)
        memset(node->kv[slot], 0, sizeof(node->kv[slot]));
    for (uint32_t t = 0; t < e->n; t++) {
        if (hop->stage_first == 0)
            e->acts[t] = (uint64_t) e->tokens[t] + 1;
        for (uint32_t stage = hop->stage_first; stage <= hop->stage_last; stage++)
            e->acts[t] = s_stage(&node->kv[slot][stage], stage, e->acts[t]);
        e->acts[t] ^= node->lie || (node->lie_live && !e->audit);
    }
    bly_shard_core_ran(node->core, slot, e->n);
    s_event_t *next = NULL;
    if (e->hop_index + 1 < e->hop_count) {
        next = s_post(sim, E_FORWARD);
        uint64_t at = next->at, order = next->order;
        *next = *e;
        next->at = at, next->order = order;
        next->hop_index++;
        next->node = s_node_of(&e->hops[next->hop_index]);
    } else {
        next = s_post(sim, E_RESULT);
        next->session = e->session, next->epoch = e->epoch, next->step = e->step;
        next->want_logits = e->want_logits;
        s_logits(e->acts[e->n - 1], next->logits);
    }
    s_maybe_dup(sim, next);
}

static void
s_deliver(s_sim_t *sim, s_event_t *e)
{
    if (e->kind == E_RESULT) {
        bly_router_core_result(sim->router, e->session, e->epoch, e->step,
                               e->want_logits ? e->logits : NULL, e->want_logits ? S_VOCAB : 0,
                               sim->now);
    } else if (e->kind == E_FAIL) {
        bly_router_core_fail(sim->router, e->session, e->epoch, e->step, e->code, e->from,
                             sim->now);
    } else if (e->kind == E_PONG) {
        bly_router_core_pong(sim->router, e->nonce, sim->now);
    } else {
        s_node_t *node = &sim->nodes[e->node];
        if (node->down)
            return;
        if (sim->now < node->stall_until) {    //  Stalled: hold it until then.
            s_event_t *held = s_post(sim, e->kind);
            uint64_t order = held->order;
            *held = *e;
            held->at = node->stall_until, held->order = order;
            return;
        }
        if (e->kind == E_FORWARD)
            s_shard_forward(sim, node, e);
        else if (e->kind == E_CLOSE)
            (void) bly_shard_core_close(node->core, sim->router_id, e->session);
        else {
            s_event_t *p = s_post(sim, E_PONG);
            p->nonce = e->nonce;
        }
        return;
    }
    s_apply_fx(sim);
}

//  The next event in time order, or NULL.
static s_event_t *
s_next(s_sim_t *sim)
{
    s_event_t *best = NULL;
    for (size_t i = 0; i < S_EVENTS; i++) {
        s_event_t *e = &sim->events[i];
        if (e->used && (!best || e->at < best->at || (e->at == best->at && e->order < best->order)))
            best = e;
    }
    return best;
}

//  ---- Setup and reference --------------------------------------------------

static const uint32_t s_ranges[S_NODES][2] = {{0, 1}, {2, 3}, {4, 4}, {0, 1}, {2, 4}, {0, 1}};

//  Audits per mille in new simulations (the audit tests raise it).
static uint32_t s_audit_milli = 0;

//  Session slots of each simulated shard (test_shard_busy lowers it), and
//  how many busy answers the shards gave.
static size_t s_shard_sessions = 8;

static void
s_sim_init(s_sim_t *sim, uint64_t seed, size_t live_nodes)
{
    memset(sim, 0, sizeof(*sim));
    sim->base = sim->seed = seed;
    sim->events = calloc(S_EVENTS, sizeof(*sim->events));
    ck_assert_ptr_nonnull(sim->events);
    sim->delay_max = 1 + seed % 20;
    sim->p_dup = (double) (seed % 4) / 10.0;
    sim->router_id[0] = 0xAA;
    bly_router_config_t c;
    bly_router_config_default(&c);
    c.n_stages = S_STAGES, c.n_vocab = S_VOCAB, c.n_ctx = S_CTX;
    c.chunk_max = 3 + (uint32_t) (seed % 5);   //  Prompts span several chunks.
    c.sessions_max = 4, c.queue_max = 2, c.step_ms = 200, c.step_token_ms = 1;
    c.probe_ms = 50, c.dead_ms = 400, c.failovers_max = 16, c.fail_ms = 400;
    c.audit_milli = s_audit_milli, c.audit_seed = seed;
    sim->router = bly_router_core_new(&c);
    ck_assert_ptr_nonnull(sim->router);
    bly_router_node_t nodes[S_NODES];
    memset(nodes, 0, sizeof(nodes));
    for (size_t i = 0; i < S_NODES; i++) {
        bly_shard_config_t sc = {s_ranges[i][0], s_ranges[i][1], s_shard_sessions, S_CTX, 16,
                                 2000};
        sim->nodes[i].core = bly_shard_core_new(&sc);
        ck_assert_ptr_nonnull(sim->nodes[i].core);
        sim->nodes[i].first = s_ranges[i][0];
        sim->nodes[i].last = s_ranges[i][1];
        nodes[i].node_id[0] = (uint8_t) i;
        snprintf(nodes[i].endpoint, sizeof(nodes[i].endpoint), "sim://%zu", i);
        nodes[i].stage_first = s_ranges[i][0];
        nodes[i].stage_last = s_ranges[i][1];
        nodes[i].speed_milli = 1000 + (uint32_t) (s_mix(seed, i) % 1000);
    }
    bly_router_core_set_nodes(sim->router, nodes, live_nodes, 0);
}

static void
s_sim_free(s_sim_t *sim)
{
    for (size_t i = 0; i < S_NODES; i++)
        bly_shard_core_destroy(&sim->nodes[i].core);
    bly_router_core_destroy(&sim->router);
    free(sim->events);
}

static void
s_prompt(uint64_t seed, int r, int32_t *prompt, size_t *n)
{
    *n = 1 + (size_t) (s_mix(seed, 100 + (uint64_t) r) % 20);
    for (size_t i = 0; i < *n; i++)
        prompt[i] = (int32_t) (s_mix(seed, (uint64_t) (r * 1000) + i) % S_VOCAB);
}

static void
s_sampling(int r, bly_sampler_params_t *p)
{
    bly_sampler_params_default(p);
    p->temp = r % 2 ? 0.8f : 0.0f;
    p->seed = 1000 + (uint64_t) r;
}

//  The single-process reference: every stage over the whole history,
//  one token at a time, the same sampler.
static size_t
s_reference(const int32_t *prompt, size_t n_prompt, size_t max_tokens,
            const bly_sampler_params_t *params, int32_t *out)
{
    uint64_t kv[S_STAGES] = {0}, x = 0;
    bly_sampler_t *sampler = bly_sampler_new(params, S_VOCAB);
    ck_assert_ptr_nonnull(sampler);
    int32_t history[S_CTX];
    memcpy(history, prompt, n_prompt * sizeof(int32_t));
    size_t n = n_prompt, fed = 0, got = 0;
    for (size_t i = 0; i < n_prompt; i++)
        bly_sampler_accept(sampler, prompt[i]);
    while (got < max_tokens) {
        for (; fed < n; fed++) {
            x = (uint64_t) history[fed] + 1;
            for (uint32_t s = 0; s < S_STAGES; s++)
                x = s_stage(&kv[s], s, x);
        }
        float logits[S_VOCAB];
        s_logits(x, logits);
        int32_t id = bly_sampler_sample(sampler, logits);
        bly_sampler_accept(sampler, id);
        history[n++] = out[got++] = id;
    }
    bly_sampler_destroy(&sampler);
    return got;
}

//  ---- Runs -----------------------------------------------------------------

typedef enum { F_NONE, F_CRASH, F_STALL, F_RESTART } s_fault_t;

static void
s_submit(s_sim_t *sim, int r, size_t max_tokens)
{
    int32_t prompt[32];
    size_t n;
    s_prompt(sim->base, r, prompt, &n);
    char id[16];
    snprintf(id, sizeof(id), "r%d", r);
    bly_router_request_t req = {(uint64_t) r, id, prompt, n, (uint32_t) max_tokens,
                                {.temp = 0}, true, true, 0};
    s_sampling(r, &req.sampling);
    bly_router_core_request(sim->router, &req, sim->now);
    s_apply_fx(sim);
}

static void
s_fault(s_sim_t *sim, s_fault_t fault, int node)
{
    s_node_t *n = &sim->nodes[node];
    if (fault == F_CRASH || fault == F_RESTART) {
        n->down = true;
    } else if (fault == F_STALL) {
        n->stall_until = sim->now + 300 + s_rand(sim) % 700;
    }
}

static void
s_restart(s_sim_t *sim, int node)
{
    s_node_t *n = &sim->nodes[node];
    bly_shard_config_t sc = {n->first, n->last, s_shard_sessions, S_CTX, 16, 2000};
    bly_shard_core_destroy(&n->core);
    n->core = bly_shard_core_new(&sc);
    ck_assert_ptr_nonnull(n->core);
    n->down = false;
}

//  Run until the queue and the router's timers are empty.
static void
s_run(s_sim_t *sim, s_fault_t fault, size_t fault_at, int fault_node)
{
    size_t delivered = 0;
    uint64_t restart_at = UINT64_MAX;
    for (size_t iter = 0; iter < 400000; iter++) {
        s_event_t *e = s_next(sim);
        uint64_t timer = bly_router_core_next_ms(sim->router);
        if (!e && timer == UINT64_MAX)
            return;
        if (e && e->at <= timer) {
            sim->now = e->at > sim->now ? e->at : sim->now;
            s_event_t copy = *e;
            e->used = false;
            if (delivered++ == fault_at && fault != F_NONE) {
                s_fault(sim, fault, fault_node);
                if (fault == F_RESTART)
                    restart_at = sim->now + 100;
            }
            if (sim->now >= restart_at) {
                s_restart(sim, fault_node);
                restart_at = UINT64_MAX;
            }
            s_deliver(sim, &copy);
        } else {
            sim->now = timer > sim->now ? timer : sim->now;
            bly_router_core_tick(sim->router, sim->now);
            s_apply_fx(sim);
        }
    }
    ck_abort_msg("seed %llu: simulation did not settle", (unsigned long long) sim->base);
}

static void
s_check_outputs(s_sim_t *sim, size_t max_tokens)
{
    for (int r = 0; r < S_REQUESTS; r++) {
        int32_t prompt[32], want[S_CTX];
        size_t n;
        s_prompt(sim->base, r, prompt, &n);
        bly_sampler_params_t p;
        s_sampling(r, &p);
        size_t want_n = s_reference(prompt, n, max_tokens, &p, want);
        ck_assert_msg(sim->done[r] == 1, "seed %llu request %d ended with %d",
                      (unsigned long long) sim->base, r, sim->done[r]);
        ck_assert_uint_eq(sim->got_n[r], want_n);
        ck_assert_uint_eq(sim->streamed[r], want_n);
        for (size_t i = 0; i < want_n; i++)
            ck_assert_msg(sim->got[r][i] == want[i], "seed %llu request %d token %zu: %d != %d",
                          (unsigned long long) sim->base, r, i, sim->got[r][i], want[i]);
    }
    ck_assert_uint_eq(bly_router_core_sessions(sim->router), 0);
    ck_assert_uint_eq(bly_router_core_queued(sim->router), 0);
    //  Shards: stale duplicates may re-open a session after its close; the
    //  idle timeout reclaims every one.
    for (size_t i = 0; i < S_NODES; i++) {
        (void) bly_shard_core_expire(sim->nodes[i].core, sim->now + 2000);
        ck_assert_uint_eq(bly_shard_core_sessions(sim->nodes[i].core), 0);
    }
}

static void
s_one_seed(uint64_t seed)
{
    s_sim_t sim;
    s_sim_init(&sim, seed, S_LIVE);
    size_t max_tokens = 4 + seed % 9;
    for (int r = 0; r < S_REQUESTS; r++)
        s_submit(&sim, r, max_tokens);
    s_fault_t fault = (s_fault_t) (seed % 4);
    s_run(&sim, fault, (size_t) (s_mix(seed, 7) % 300), (int) (s_mix(seed, 9) % S_LIVE));
    s_check_outputs(&sim, max_tokens);
    s_sim_free(&sim);
}

START_TEST(test_seeds)
{
    const char *env = getenv("BLY_SIM_SEEDS");
    //  Under valgrind (BLY_VALGRIND) a few dozen seeds keep the suite in minutes.
    uint64_t seeds = env ? strtoull(env, NULL, 10) : getenv("BLY_VALGRIND") ? 30 : 1000;
    for (uint64_t seed = 1; seed <= seeds; seed++)
        s_one_seed(seed);
}
END_TEST

//  A crash at every delivered event of one generation, for each node.
START_TEST(test_crash_every_step)
{
    size_t stride = getenv("BLY_VALGRIND") ? 29 : 3;
    for (int node = 0; node < S_LIVE; node++)
        for (size_t at = 0; at < 160; at += stride) {
            s_sim_t sim;
            s_sim_init(&sim, 77, S_LIVE);
            sim.p_dup = 0;
            for (int r = 0; r < S_REQUESTS; r++)
                s_submit(&sim, r, 6);
            s_run(&sim, F_CRASH, at, node);
            s_check_outputs(&sim, 6);
            s_sim_free(&sim);
        }
}
END_TEST

//  Shards with 2 session slots for 4 running sessions: shards answer busy,
//  sessions back off and start over; every output still equals the reference.
START_TEST(test_shard_busy)
{
    s_shard_sessions = 2;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        s_sim_t sim;
        s_sim_init(&sim, seed, S_LIVE);
        size_t max_tokens = 3 + seed % 5;
        for (int r = 0; r < S_REQUESTS; r++)
            s_submit(&sim, r, max_tokens);
        s_run(&sim, seed % 3 ? F_NONE : F_CRASH, (size_t) (s_mix(seed, 7) % 200),
              (int) (s_mix(seed, 9) % S_LIVE));
        s_check_outputs(&sim, max_tokens);
        s_sim_free(&sim);
    }
    ck_assert_uint_gt(s_busy_answers, 100);
    s_shard_sessions = 8;
}
END_TEST

START_TEST(test_no_route)
{
    s_sim_t sim;
    //  Only nodes 0..2: crashing node 0 leaves stages 0-1 uncovered.
    s_sim_init(&sim, 5, 3);
    s_submit(&sim, 0, 8);
    s_run(&sim, F_CRASH, 2, 0);
    ck_assert_int_eq(sim.done[0], -BLY_ROUTER_ERR_NO_ROUTE);
    ck_assert_uint_eq(bly_router_core_sessions(sim.router), 0);
    s_sim_free(&sim);
}
END_TEST

START_TEST(test_busy_and_limits)
{
    s_sim_t sim;
    s_sim_init(&sim, 9, S_LIVE);
    for (int r = 0; r < S_REQUESTS; r++)
        s_submit(&sim, r, 4);
    ck_assert_uint_eq(bly_router_core_queued(sim.router), 2);
    //  A seventh request: every slot and queue place is taken.
    int32_t prompt[1] = {1};
    bly_router_request_t req = {6, "r6", prompt, 1, 4, {.temp = 0}, true, true, 0};
    bly_sampler_params_default(&req.sampling);
    bly_router_core_request(sim.router, &req, sim.now);
    ck_assert_uint_eq(bly_router_core_fx_count(sim.router), 1);
    ck_assert_int_eq(bly_router_core_fx_at(sim.router, 0)->kind, BLY_ROUTER_FX_ERROR);
    ck_assert_int_eq(bly_router_core_fx_at(sim.router, 0)->code, BLY_ROUTER_ERR_BUSY);
    //  Over the context, a token outside the vocabulary, a duplicate id.
    req.client = 0, req.request_id = "big", req.max_tokens = S_CTX;
    bly_router_core_request(sim.router, &req, sim.now);
    ck_assert_int_eq(bly_router_core_fx_at(sim.router, 0)->code, BLY_ROUTER_ERR_LIMIT);
    prompt[0] = S_VOCAB, req.max_tokens = 4;
    bly_router_core_request(sim.router, &req, sim.now);
    ck_assert_int_eq(bly_router_core_fx_at(sim.router, 0)->code, BLY_ROUTER_ERR_LIMIT);
    prompt[0] = 1, req.request_id = "r0";
    bly_router_core_request(sim.router, &req, sim.now);
    ck_assert_int_eq(bly_router_core_fx_at(sim.router, 0)->code, BLY_ROUTER_ERR_DUPLICATE);
    //  Cancel one; the others finish as the reference says.
    bly_router_core_cancel(sim.router, 5, "r5", sim.now);
    ck_assert_int_eq(bly_router_core_fx_at(sim.router, 0)->code, BLY_ROUTER_ERR_CANCELLED);
    sim.done[5] = -BLY_ROUTER_ERR_CANCELLED;
    s_run(&sim, F_NONE, 0, 0);
    ck_assert_int_eq(sim.done[0], 1);
    ck_assert_int_eq(sim.done[5], -BLY_ROUTER_ERR_CANCELLED);
    ck_assert_uint_eq(bly_router_core_sessions(sim.router), 0);
    s_sim_free(&sim);
}
END_TEST

START_TEST(test_deadline)
{
    s_sim_t sim;
    s_sim_init(&sim, 3, S_LIVE);
    int32_t prompt[2] = {1, 2};
    bly_router_request_t req = {0, "d", prompt, 2, 100, {.temp = 0}, true, true, 30};
    bly_sampler_params_default(&req.sampling);
    bly_router_core_request(sim.router, &req, sim.now);
    s_apply_fx(&sim);
    //  Every node stalls: the deadline ends the request.
    for (int i = 0; i < S_LIVE; i++)
        sim.nodes[i].stall_until = 100000;
    s_run(&sim, F_NONE, 0, 0);
    ck_assert_int_eq(sim.done[0], -BLY_ROUTER_ERR_DEADLINE);
    ck_assert_uint_eq(bly_router_core_sessions(sim.router), 0);
    s_sim_free(&sim);
}
END_TEST

//  ---- Health and audits ---------------------------------------------------

//  Seeds of an audit test: a tenth under valgrind (BLY_VALGRIND).
static uint64_t
s_audit_seeds(uint64_t n)
{
    return getenv("BLY_VALGRIND") ? n / 10 : n;
}

//  A core over stages 0-4 with the given nodes.
static bly_router_core_t *
s_core(const bly_router_node_t *nodes, size_t count)
{
    bly_router_config_t c;
    bly_router_config_default(&c);
    c.n_stages = S_STAGES, c.n_vocab = S_VOCAB, c.n_ctx = S_CTX;
    c.probe_ms = 50, c.fail_ms = 1000;
    bly_router_core_t *r = bly_router_core_new(&c);
    ck_assert_ptr_nonnull(r);
    bly_router_core_set_nodes(r, nodes, count, 0);
    return r;
}

static void
s_node(bly_router_node_t *n, uint8_t id, uint32_t first, uint32_t last, uint32_t speed,
       uint32_t load)
{
    memset(n, 0, sizeof(*n));
    n->node_id[0] = id;
    snprintf(n->endpoint, sizeof(n->endpoint), "sim://%u", id);
    n->stage_first = first, n->stage_last = last;
    n->speed_milli = speed, n->load_milli = load;
}

//  Start request `id`; the first hop of its first forward (or -1).
static const bly_router_fx_t *
s_start(bly_router_core_t *r, const char *id, uint64_t now)
{
    int32_t prompt[2] = {1, 2};
    bly_router_request_t req = {0, id, prompt, 2, 4, {.temp = 0}, true, true, 0};
    bly_sampler_params_default(&req.sampling);
    bly_router_core_request(r, &req, now);
    for (size_t i = 0; i < bly_router_core_fx_count(r); i++)
        if (bly_router_core_fx_at(r, i)->kind == BLY_ROUTER_FX_FORWARD)
            return bly_router_core_fx_at(r, i);
    return NULL;
}

//  Two shards serve stages 0-1: the faster one, then the less loaded one
//  (fresh figures from the peer list) gets the session.
START_TEST(test_prefers_fast_and_light)
{
    bly_router_node_t n[3];
    s_node(&n[0], 0, 0, 1, 1000, 0);
    s_node(&n[1], 1, 0, 1, 3000, 0);
    s_node(&n[2], 2, 2, 4, 1000, 0);
    bly_router_core_t *r = s_core(n, 3);
    ck_assert_int_eq(s_start(r, "a", 0)->hops[0].node_id[0], 1);
    bly_router_core_destroy(&r);
    //  Same speed; node 1 reports 80 % load in its heartbeats, node 0 10 %.
    n[1].speed_milli = 1000, n[1].load_milli = 800, n[0].load_milli = 100;
    r = s_core(n, 3);
    ck_assert_int_eq(s_start(r, "a", 0)->hops[0].node_id[0], 0);
    //  The next peer list says the opposite: the next session follows it
    //  (the router's own session on node 0 counts too, so make it clear).
    n[1].load_milli = 0, n[0].load_milli = 1000, n[1].speed_milli = 4000;
    bly_router_core_set_nodes(r, n, 3, 1);
    ck_assert_int_eq(s_start(r, "b", 1)->hops[0].node_id[0], 1);
    bly_router_core_destroy(&r);
}
END_TEST

//  A shard that failed a step is avoided for fail_ms while another serves
//  its stages, though it is faster and answers pings.
START_TEST(test_recent_fail_avoided)
{
    bly_router_node_t n[3];
    s_node(&n[0], 0, 0, 1, 1000, 0);
    s_node(&n[1], 1, 0, 1, 3000, 0);
    s_node(&n[2], 2, 2, 4, 1000, 0);
    bly_router_core_t *r = s_core(n, 3);
    const bly_router_fx_t *fx = s_start(r, "a", 0);
    ck_assert_int_eq(fx->hops[0].node_id[0], 1);
    uint8_t failed[32] = {1};
    bly_router_core_fail(r, fx->session, fx->epoch, fx->step, 7, failed, 10);
    uint64_t nonces[2];
    size_t pings = 0;
    for (size_t i = 0; i < bly_router_core_fx_count(r); i++)
        if (bly_router_core_fx_at(r, i)->kind == BLY_ROUTER_FX_PING && pings < 2)
            nonces[pings++] = bly_router_core_fx_at(r, i)->nonce;
    ck_assert_uint_eq(pings, 2);
    for (size_t i = 0; i < pings; i++)
        bly_router_core_pong(r, nonces[i], 20);
    bly_router_core_tick(r, 60);
    const bly_router_fx_t *again = NULL;
    for (size_t i = 0; i < bly_router_core_fx_count(r); i++)
        if (bly_router_core_fx_at(r, i)->kind == BLY_ROUTER_FX_FORWARD)
            again = bly_router_core_fx_at(r, i);
    ck_assert_ptr_nonnull(again);
    ck_assert_int_eq(again->hops[0].node_id[0], 0);
    bly_router_stats_t st;
    bly_router_core_stats(r, &st);
    ck_assert_uint_eq(st.fails, 1);
    //  Still within fail_ms: a new session avoids node 1 too...
    ck_assert_int_eq(s_start(r, "b", 500)->hops[0].node_id[0], 0);
    //  ...after it, node 1 is preferred again.
    ck_assert_int_eq(s_start(r, "c", 1100)->hops[0].node_id[0], 1);
    bly_router_core_destroy(&r);
    //  When every node of a stage failed recently, the best of them serves.
    r = s_core(n, 3);
    uint8_t zero[32] = {0};
    fx = s_start(r, "a", 0);
    bly_router_core_fail(r, fx->session, fx->epoch, fx->step, 7, zero, 1);
    bly_router_core_fail(r, fx->session, fx->epoch, fx->step, 7, failed, 1);
    ck_assert_int_eq(s_start(r, "b", 2)->hops[0].node_id[0], 1);
    bly_router_core_destroy(&r);
}
END_TEST

//  Shards 0, 3 and 5 serve stages 0-1 and one of them lies. Every logits
//  step is audited, so every token equals the honest reference; the liar
//  is caught by majority whenever it takes part, and no honest shard is
//  ever suspected. The network delays, duplicates and reorders.
START_TEST(test_audit_catches_liar)
{
    s_audit_milli = 1000;
    s_shard_sessions = 16;
    const int liars[3] = {0, 3, 5};
    size_t caught = 0;
    uint64_t seeds = s_audit_seeds(120);
    for (uint64_t seed = 1; seed <= seeds; seed++) {
        s_sim_t sim;
        s_sim_init(&sim, seed, S_NODES);
        int liar = liars[seed % 3];
        sim.nodes[liar].lie = true;
        size_t max_tokens = 3 + seed % 5;
        for (int r = 0; r < S_REQUESTS; r++)
            s_submit(&sim, r, max_tokens);
        s_run(&sim, F_NONE, 0, 0);
        s_check_outputs(&sim, max_tokens);
        bly_router_stats_t st;
        bly_router_core_stats(sim.router, &st);
        ck_assert_uint_gt(st.audits, 0);
        //  No faults: every replay (a warm one continuing where the last
        //  stopped included) completes.
        ck_assert_uint_eq(st.audits_inconclusive, 0);
        for (int i = 0; i < S_NODES; i++) {
            uint8_t id[32] = {(uint8_t) i};
            if (i != liar)
                ck_assert_msg(!bly_router_core_suspect(sim.router, id),
                              "seed %llu: honest node %d suspected", (unsigned long long) seed, i);
            else
                caught += bly_router_core_suspect(sim.router, id);
        }
        ck_assert_uint_eq(st.suspects, st.audits_mismatched > 0 ? 1 : 0);
        s_sim_free(&sim);
    }
    ck_assert_uint_gt(caught, seeds * 5 / 6);
    s_audit_milli = 0;
    s_shard_sessions = 8;
}
END_TEST

//  Honest shards, audits on a fifth of the steps, crashes, stalls and
//  restarts: audits change no output and accuse nobody.
START_TEST(test_audit_honest)
{
    s_audit_milli = 200;
    s_shard_sessions = 16;
    uint64_t audits = 0;
    uint64_t seeds = s_audit_seeds(150);
    for (uint64_t seed = 1; seed <= seeds; seed++) {
        s_sim_t sim;
        s_sim_init(&sim, seed, S_NODES);
        size_t max_tokens = 4 + seed % 9;
        for (int r = 0; r < S_REQUESTS; r++)
            s_submit(&sim, r, max_tokens);
        s_run(&sim, (s_fault_t) (seed % 4), (size_t) (s_mix(seed, 7) % 300),
              (int) (s_mix(seed, 9) % S_NODES));
        s_check_outputs(&sim, max_tokens);
        bly_router_stats_t st;
        bly_router_core_stats(sim.router, &st);
        ck_assert_uint_eq(st.suspects, 0);
        ck_assert_uint_eq(st.audits_mismatched, 0);
        audits += st.audits;
        s_sim_free(&sim);
    }
    ck_assert_uint_gt(audits, seeds);
    s_audit_milli = 0;
    s_shard_sessions = 8;
}
END_TEST

//  Only two shards serve stages 0-1 and one lies: no majority, both become
//  suspects, and with no trusted shard left the client gets "no route".
//  Without audits the same liar goes unnoticed and the output is wrong.
START_TEST(test_audit_no_majority)
{
    s_audit_milli = 1000;
    s_sim_t sim;
    s_sim_init(&sim, 4, S_LIVE);
    sim.nodes[3].lie = true;
    s_submit(&sim, 0, 6);
    s_run(&sim, F_NONE, 0, 0);
    ck_assert_int_eq(sim.done[0], -BLY_ROUTER_ERR_NO_ROUTE);
    bly_router_stats_t st;
    bly_router_core_stats(sim.router, &st);
    ck_assert_uint_eq(st.audits_mismatched, 1);
    ck_assert_uint_eq(st.suspects, 2);
    ck_assert_uint_eq(bly_router_core_sessions(sim.router), 0);
    s_sim_free(&sim);
    s_audit_milli = 0;
    //  No audits: a lying primary shard changes the output unseen.
    s_sim_init(&sim, 4, S_LIVE);
    sim.nodes[0].lie = sim.nodes[3].lie = true;
    s_submit(&sim, 0, 6);
    s_run(&sim, F_NONE, 0, 0);
    ck_assert_int_eq(sim.done[0], 1);
    int32_t prompt[32], want[S_CTX];
    size_t n;
    s_prompt(sim.base, 0, prompt, &n);
    bly_sampler_params_t p;
    s_sampling(0, &p);
    (void) s_reference(prompt, n, 6, &p, want);
    ck_assert(memcmp(sim.got[0], want, 6 * sizeof(int32_t)) != 0);
    s_sim_free(&sim);
}
END_TEST

//  A liar that tells audit replays from sessions (the simulation lets it)
//  and answers replays honestly: no replay reproduces its answers, so
//  nobody is accused, and sessions start over around the path's nodes:
//  every output still equals the reference.
START_TEST(test_audit_replay_aware_liar)
{
    s_audit_milli = 1000;
    s_shard_sessions = 16;
    const int liars[3] = {0, 3, 5};
    uint64_t inconclusive = 0;
    uint64_t seeds = s_audit_seeds(60);
    for (uint64_t seed = 1; seed <= seeds; seed++) {
        s_sim_t sim;
        s_sim_init(&sim, seed, S_NODES);
        sim.nodes[liars[seed % 3]].lie_live = true;
        size_t max_tokens = 3 + seed % 5;
        for (int r = 0; r < S_REQUESTS; r++)
            s_submit(&sim, r, max_tokens);
        s_run(&sim, F_NONE, 0, 0);
        s_check_outputs(&sim, max_tokens);
        bly_router_stats_t st;
        bly_router_core_stats(sim.router, &st);
        ck_assert_uint_eq(st.suspects, 0);
        inconclusive += st.audits_inconclusive;
        s_sim_free(&sim);
    }
    ck_assert_uint_gt(inconclusive, seeds / 6);
    s_audit_milli = 0;
    s_shard_sessions = 8;
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("router_sim");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_busy_and_limits);
    tcase_add_test(tc, test_deadline);
    tcase_add_test(tc, test_no_route);
    tcase_add_test(tc, test_shard_busy);
    tcase_add_test(tc, test_crash_every_step);
    tcase_add_test(tc, test_seeds);
    tcase_add_test(tc, test_prefers_fast_and_light);
    tcase_add_test(tc, test_recent_fail_avoided);
    tcase_add_test(tc, test_audit_no_majority);
    tcase_add_test(tc, test_audit_catches_liar);
    tcase_add_test(tc, test_audit_honest);
    tcase_add_test(tc, test_audit_replay_aware_liar);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
