/*  =========================================================================
    bly_router_core - the router's sessions as a pure state machine
    ========================================================================= */

#include "bly_router_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TOP_N 10

typedef enum {
    S_FREE = 0,       //  Slot unused.
    S_QUEUED,         //  Admitted, waiting for a running slot.
    S_RUNNING,        //  A step is in flight.
    S_PROBING,        //  A step failed; waiting for pongs before re-planning.
    S_BACKOFF,        //  A shard was busy; the session starts over after a pause.
    S_AUDITING,       //  Logits held while an audit path replays the history.
    S_FINISHED,       //  Done; reclaimed at the next call.
} s_state_t;

//  Audit phases: every hop with another node swapped at once (A_ALL); after
//  a mismatch, the same with one hop at a time given back to the primary's
//  node (A_ONE) to find the hop whose node changes the answer; then a third
//  node on that hop breaks the tie (A_THIRD).
typedef enum { A_NONE = 0, A_ALL, A_ONE, A_THIRD } s_phase_t;

//  A running audit of one session's held step.
typedef struct {
    s_phase_t phase;
    int buf;                                //  Audit buffers: held logits, and the
                                            //  A_ALL replay's ("first").
    uint64_t id;                            //  Audit session id on the wire.
    uint32_t step, step_n;                  //  In-flight step (epoch is always 1).
    size_t pos, target;                     //  Tokens replayed, tokens to replay.
    size_t hop;                             //  A_ONE, A_THIRD: the hop under test.
    bool has_alt[BLY_ROUTER_PATH_MAX];      //  Hops another node can serve...
    bly_router_hop_t alt[BLY_ROUTER_PATH_MAX];  //  ...and that node.
    bly_router_hop_t third;                 //  A_THIRD: the tie-breaker on `hop`.
    bly_router_hop_t path[BLY_ROUTER_PATH_MAX];
    size_t hop_count;
    bly_router_hop_t old[BLY_ROUTER_PATH_MAX];  //  The last replay's path (its closes).
    bool warm;                              //  Parked after a pass: the replay session
                                            //  stays open, holding `pos` tokens, so the
                                            //  next audit only feeds what came since.
} s_audit_t;

typedef struct {
    s_state_t state;
    uint64_t id;                            //  Session id on the wire.
    uint64_t order;                         //  Admission order (queue is FIFO).
    uint64_t client;
    char request_id[BLY_ROUTER_REQUEST_ID_MAX + 1];
    int32_t *tokens;                        //  Prompt then generated ids (n_ctx).
    size_t n_prompt, n_tokens;
    uint32_t max_tokens;
    bool stream, ignore_eos;
    bly_sampler_t *sampler;
    uint32_t epoch, step;                   //  Current epoch and in-flight step.
    size_t pos;                             //  Tokens the path's KV caches hold.
    uint32_t step_n;                        //  Tokens of the in-flight step.
    bly_router_hop_t path[BLY_ROUTER_PATH_MAX];
    size_t hop_count;
    bly_router_hop_t old_path[BLY_ROUTER_PATH_MAX];  //  The path before a re-plan.
    uint64_t probe_nonce[BLY_ROUTER_PATH_MAX];
    bool probe_ok[BLY_ROUTER_PATH_MAX];
    uint64_t timer_ms;                      //  Step stall or probe end.
    uint64_t deadline_ms, start_ms, first_ms;
    uint32_t failovers;
    int32_t top_ids[S_TOP_N];
    float top_logits[S_TOP_N];
    size_t n_top;
    s_audit_t audit;
} s_session_t;

typedef struct {
    bly_router_node_t node;
    uint64_t dead_until_ms;                 //  Missed a probe: avoided until then.
    uint64_t failed_until_ms;               //  Failed a step: avoided while others serve.
} s_node_t;

struct bly_router_core_t {
    bly_router_config_t config;
    size_t slot_count;                      //  sessions_max + queue_max.
    s_session_t *slots;
    s_node_t *nodes;                        //  BLY_ROUTER_NODES_MAX.
    size_t node_count;
    bly_router_fx_t *fx;                    //  Effects of the current call.
    size_t fx_count, fx_max;
    uint64_t next_id, next_order, next_nonce;
    float *scratch;                         //  n_vocab: logits the sampler may modify.
    s_node_t *old_nodes;                    //  BLY_ROUTER_NODES_MAX: set_nodes scratch.
    float *held[BLY_ROUTER_AUDITS_MAX];     //  n_vocab each: logits held for an audit.
    float *first[BLY_ROUTER_AUDITS_MAX];    //  n_vocab each: the first auditor's.
    bool buf_used[BLY_ROUTER_AUDITS_MAX];
    uint8_t (*suspects)[32];                //  BLY_ROUTER_SUSPECTS_MAX ids (a ring).
    size_t suspect_count, suspect_next;
    bly_router_stats_t stats;
};

void
bly_router_config_default(bly_router_config_t *config)
{
    bly_assert(config);
    memset(config, 0, sizeof(*config));
    config->sessions_max = 64;
    config->queue_max = 64;
    config->n_ctx = 4096;
    config->chunk_max = BLY_MODEL_BATCH_MAX;
    config->step_ms = 1000;
    config->step_token_ms = 50;
    config->probe_ms = 300;
    config->dead_ms = 10000;
    config->failovers_max = 4;
    config->deadline_ms = 600000;
    config->busy_ms = 50;
    config->session_base = 1;
    config->fail_ms = 30000;
    config->audit_milli = 0;
    config->audit_seed = 1;
    config->audit_tol = 1e-3f;
}

static bool
s_config_ok(const bly_router_config_t *c)
{
    return c->n_stages >= 2 && c->n_vocab > 0 && c->n_eos <= 8 && c->sessions_max > 0
           && c->sessions_max + c->queue_max <= BLY_ROUTER_SESSIONS_MAX && c->n_ctx > 0
           && c->n_ctx <= BLY_ROUTER_CTX_MAX && c->chunk_max > 0
           && c->chunk_max <= BLY_MODEL_BATCH_MAX && c->probe_ms > 0 && c->deadline_ms > 0
           && c->busy_ms > 0 && c->audit_milli <= 1000 && c->audit_tol >= 0
           && c->audit_tol < 1;
}

bly_router_core_t *
bly_router_core_new(const bly_router_config_t *config)
{
    bly_assert(config);
    if (!s_config_ok(config)) {
        bly_log_error("router: configuration out of range");
        return NULL;
    }
    bly_router_core_t *self = calloc(1, sizeof(*self));
    bly_assert(self);
    self->config = *config;
    self->slot_count = config->sessions_max + config->queue_max;
    self->slots = calloc(self->slot_count, sizeof(*self->slots));
    self->nodes = calloc(BLY_ROUTER_NODES_MAX, sizeof(*self->nodes));
    //  Per slot: a probe per hop, a close per hop of the path, of the old
    //  path and of an audit path, and a few more; plus a refusal per request
    //  of one call.
    self->fx_max = self->slot_count * (3 * BLY_ROUTER_PATH_MAX + 4) + 16;
    self->fx = calloc(self->fx_max, sizeof(*self->fx));
    self->scratch = calloc(config->n_vocab, sizeof(float));
    self->old_nodes = calloc(BLY_ROUTER_NODES_MAX, sizeof(*self->old_nodes));
    self->suspects = calloc(BLY_ROUTER_SUSPECTS_MAX, sizeof(*self->suspects));
    bly_assert(self->slots && self->nodes && self->fx && self->scratch && self->old_nodes
               && self->suspects);
    for (size_t i = 0; config->audit_milli > 0 && i < BLY_ROUTER_AUDITS_MAX; i++) {
        self->held[i] = calloc(config->n_vocab, sizeof(float));
        self->first[i] = calloc(config->n_vocab, sizeof(float));
        bly_assert(self->held[i] && self->first[i]);
    }
    for (size_t i = 0; i < self->slot_count; i++) {
        self->slots[i].tokens = calloc(config->n_ctx, sizeof(int32_t));
        bly_assert(self->slots[i].tokens);
    }
    self->next_id = config->session_base;
    self->next_nonce = 1;
    return self;
}

void
bly_router_core_destroy(bly_router_core_t **self_p)
{
    bly_assert(self_p);
    bly_router_core_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->slot_count; i++) {
        bly_sampler_destroy(&self->slots[i].sampler);
        free(self->slots[i].tokens);
    }
    free(self->slots);
    free(self->nodes);
    free(self->fx);
    free(self->scratch);
    free(self->old_nodes);
    for (size_t i = 0; i < BLY_ROUTER_AUDITS_MAX; i++) {
        free(self->held[i]);
        free(self->first[i]);
    }
    free(self->suspects);
    free(self);
    *self_p = NULL;
}

//  ---- Effects --------------------------------------------------------------

static bly_router_fx_t *
s_fx(bly_router_core_t *self, bly_router_fx_kind_t kind)
{
    //  fx_max covers the worst case of one call (see _new).
    bly_assert(self->fx_count < self->fx_max);
    bly_router_fx_t *fx = &self->fx[self->fx_count++];
    memset(fx, 0, sizeof(*fx));
    fx->kind = kind;
    return fx;
}

static void
s_fx_error(bly_router_core_t *self, uint64_t client, const char *request_id, int code,
           const char *reason)
{
    bly_router_fx_t *fx = s_fx(self, BLY_ROUTER_FX_ERROR);
    fx->client = client;
    fx->request_id = request_id;
    fx->code = code;
    fx->reason = reason;
}

//  Start of every public call: forget the last call's effects, free the
//  slots finished then.
static void
s_begin(bly_router_core_t *self)
{
    self->fx_count = 0;
    for (size_t i = 0; i < self->slot_count; i++) {
        s_session_t *s = &self->slots[i];
        if (s->state == S_FINISHED) {
            bly_sampler_destroy(&s->sampler);
            s->state = S_FREE;
        }
    }
}

//  ---- Nodes and planning ---------------------------------------------------

void
bly_router_core_set_nodes(bly_router_core_t *self, const bly_router_node_t *nodes, size_t count,
                          uint64_t now_ms)
{
    bly_assert(self);
    bly_assert(nodes || count == 0);
    s_begin(self);
    if (count > BLY_ROUTER_NODES_MAX)
        count = BLY_ROUTER_NODES_MAX;
    s_node_t *old = self->old_nodes;
    size_t old_count = self->node_count;
    memcpy(old, self->nodes, old_count * sizeof(*old));
    for (size_t i = 0; i < count; i++) {
        self->nodes[i].node = nodes[i];
        self->nodes[i].dead_until_ms = 0;
        self->nodes[i].failed_until_ms = 0;
        for (size_t j = 0; j < old_count; j++)
            if (memcmp(old[j].node.node_id, nodes[i].node_id, 32) == 0) {
                self->nodes[i].dead_until_ms = old[j].dead_until_ms;
                self->nodes[i].failed_until_ms = old[j].failed_until_ms;
            }
    }
    self->node_count = count;
}

//  Sessions whose path uses this node (the router's own view of its load).
static size_t
s_node_use(const bly_router_core_t *self, const uint8_t *node_id)
{
    size_t use = 0;
    for (size_t i = 0; i < self->slot_count; i++) {
        const s_session_t *s = &self->slots[i];
        if (s->state != S_RUNNING && s->state != S_PROBING && s->state != S_AUDITING)
            continue;
        for (size_t h = 0; h < s->hop_count; h++)
            if (memcmp(s->path[h].node_id, node_id, 32) == 0)
                use++;
    }
    return use;
}

//  Higher is better: announced speed per stage (a shard's speed covers its
//  whole range, so speed x stages in the range compares shards of different
//  ranges), discounted by announced load and by the sessions this router
//  already runs through the node.
static double
s_node_score(const bly_router_core_t *self, const s_node_t *n)
{
    double speed = (n->node.speed_milli ? n->node.speed_milli : 1)
                   * (1.0 + (double) (n->node.stage_last - n->node.stage_first));
    double load = n->node.load_milli > 1000 ? 1.0 : n->node.load_milli / 1000.0;
    return speed * (1.0 - 0.5 * load) / (1.0 + (double) s_node_use(self, n->node.node_id));
}

bool
bly_router_core_suspect(const bly_router_core_t *self, const uint8_t *node_id)
{
    bly_assert(self);
    bly_assert(node_id);
    for (size_t i = 0; i < self->suspect_count; i++)
        if (memcmp(self->suspects[i], node_id, 32) == 0)
            return true;
    return false;
}

//  The best usable node covering stages [first, last] that is not one of
//  `skip` (n_skip ids), or NULL. Nodes that failed a step recently count
//  only when no other node qualifies; dead and suspect nodes never do.
static const s_node_t *
s_pick_range(const bly_router_core_t *self, uint32_t first, uint32_t last,
             const uint8_t (*skip)[32], size_t n_skip, uint64_t now_ms)
{
    for (int pass = 0; pass < 2; pass++) {
        const s_node_t *best = NULL;
        double best_score = 0;
        for (size_t i = 0; i < self->node_count; i++) {
            const s_node_t *n = &self->nodes[i];
            bool skipped = false;
            for (size_t k = 0; k < n_skip; k++)
                skipped = skipped || memcmp(n->node.node_id, skip[k], 32) == 0;
            if (skipped || n->dead_until_ms > now_ms || n->node.stage_first > first
                || n->node.stage_last < last || (pass == 0 && n->failed_until_ms > now_ms)
                || bly_router_core_suspect(self, n->node.node_id))
                continue;
            double score = s_node_score(self, n);
            bool better = !best || score > best_score
                          || (score == best_score && n->node.stage_last > best->node.stage_last)
                          || (score == best_score && n->node.stage_last == best->node.stage_last
                              && memcmp(n->node.node_id, best->node.node_id, 32) < 0);
            if (better) {
                best = n;
                best_score = score;
            }
        }
        if (best)
            return best;
    }
    return NULL;
}

static const s_node_t *
s_pick(const bly_router_core_t *self, uint32_t stage, uint64_t now_ms)
{
    return s_pick_range(self, stage, stage, NULL, 0, now_ms);
}

//  Plan a path covering stages 0..n_stages-1 into the session. Returns 0,
//  or -1 when a stage has no live node (or the path is too long).
static int
s_plan(bly_router_core_t *self, s_session_t *s, uint64_t now_ms)
{
    uint32_t stage = 0;
    s->hop_count = 0;
    while (stage < self->config.n_stages) {
        const s_node_t *n = s_pick(self, stage, now_ms);
        if (!n || s->hop_count >= BLY_ROUTER_PATH_MAX)
            return -1;
        bly_router_hop_t *hop = &s->path[s->hop_count++];
        memcpy(hop->node_id, n->node.node_id, 32);
        memcpy(hop->endpoint, n->node.endpoint, sizeof(hop->endpoint));
        hop->stage_first = stage;
        hop->stage_last = n->node.stage_last < self->config.n_stages - 1
                              ? n->node.stage_last
                              : self->config.n_stages - 1;
        stage = hop->stage_last + 1;
    }
    bly_assert(s->hop_count > 0);
    return 0;
}

//  ---- Sessions -------------------------------------------------------------

static s_session_t *
s_by_id(bly_router_core_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->slot_count; i++) {
        s_session_t *s = &self->slots[i];
        if (s->state != S_FREE && s->state != S_FINISHED && s->id == id)
            return s;
    }
    return NULL;
}

static s_session_t *
s_by_request(bly_router_core_t *self, uint64_t client, const char *request_id)
{
    for (size_t i = 0; i < self->slot_count; i++) {
        s_session_t *s = &self->slots[i];
        if (s->state != S_FREE && s->state != S_FINISHED && s->client == client
            && strcmp(s->request_id, request_id) == 0)
            return s;
    }
    return NULL;
}

static size_t
s_count(const bly_router_core_t *self, bool running)
{
    size_t n = 0;
    for (size_t i = 0; i < self->slot_count; i++) {
        s_state_t st = self->slots[i].state;
        if (running ? (st == S_RUNNING || st == S_PROBING || st == S_BACKOFF || st == S_AUDITING)
                    : st == S_QUEUED)
            n++;
    }
    return n;
}

//  Send the next step of a running session: the next prompt chunk, or the
//  last generated token.
static void
s_send_step(bly_router_core_t *self, s_session_t *s, uint64_t now_ms)
{
    bly_assert(s->pos < s->n_tokens);
    size_t left = s->n_tokens - s->pos;
    uint32_t n = left > self->config.chunk_max ? self->config.chunk_max : (uint32_t) left;
    s->step++;
    s->step_n = n;
    s->state = S_RUNNING;
    s->timer_ms = now_ms + self->config.step_ms + (uint64_t) self->config.step_token_ms * n;
    bly_router_fx_t *fx = s_fx(self, BLY_ROUTER_FX_FORWARD);
    fx->session = s->id;
    fx->epoch = s->epoch;
    fx->step = s->step;
    fx->pos = (uint32_t) s->pos;
    fx->tokens = s->tokens + s->pos;
    fx->n_tokens = n;
    fx->logits = s->pos + n == s->n_tokens;
    fx->hops = s->path;
    fx->hop_count = s->hop_count;
}

static void
s_close_path(bly_router_core_t *self, s_session_t *s)
{
    for (size_t h = 0; h < s->hop_count; h++) {
        bly_router_fx_t *fx = s_fx(self, BLY_ROUTER_FX_CLOSE);
        fx->session = s->id;
        fx->hop = &s->path[h];
    }
}

static void s_start_queued(bly_router_core_t *self, uint64_t now_ms);
static void s_probe(bly_router_core_t *self, s_session_t *s, uint64_t now_ms);
static void s_audit_stop(bly_router_core_t *self, s_session_t *s);
static void s_restart_path(bly_router_core_t *self, s_session_t *s, uint64_t now_ms);
static s_session_t *s_by_audit(bly_router_core_t *self, uint64_t id);
static bool s_audit_due(const bly_router_core_t *self, const s_session_t *s);
static bool s_audit_start(bly_router_core_t *self, s_session_t *s, const float *logits,
                          uint64_t now_ms);
static void s_audit_result(bly_router_core_t *self, s_session_t *s, uint32_t step,
                           const float *logits, size_t n, uint64_t now_ms);
static void s_audit_inconclusive(bly_router_core_t *self, s_session_t *s, const char *why,
                                 uint64_t now_ms);
static bool s_audit_same(const s_session_t *s);

//  Prefer other nodes than this one (may be NULL) for fail_ms.
static void
s_avoid(bly_router_core_t *self, const uint8_t *node_id, uint64_t now_ms)
{
    for (size_t i = 0; node_id && i < self->node_count; i++)
        if (memcmp(self->nodes[i].node.node_id, node_id, 32) == 0)
            self->nodes[i].failed_until_ms = now_ms + self->config.fail_ms;
}

//  End a session: tell the client (unless silent), close the path, free
//  the slot at the next call, start a queued request.
static void
s_finish(bly_router_core_t *self, s_session_t *s, int code, const char *reason, uint64_t now_ms)
{
    if (code > 0)
        s_fx_error(self, s->client, s->request_id, code, reason);
    if (s->state == S_AUDITING || s->audit.warm)
        s_audit_stop(self, s);
    if (s->state == S_RUNNING || s->state == S_PROBING || s->state == S_AUDITING)
        s_close_path(self, s);
    s->state = S_FINISHED;
    s_start_queued(self, now_ms);
}

//  (Re)start a session on a new path at position 0.
static void
s_launch(bly_router_core_t *self, s_session_t *s, uint64_t now_ms)
{
    s->epoch++;
    s->pos = 0;
    s->state = S_RUNNING;
    if (s_plan(self, s, now_ms) != 0) {
        s->hop_count = 0;
        s_finish(self, s, BLY_ROUTER_ERR_NO_ROUTE, "no live node covers a stage of the model",
                 now_ms);
        return;
    }
    s_send_step(self, s, now_ms);
}

static void
s_start_queued(bly_router_core_t *self, uint64_t now_ms)
{
    while (s_count(self, true) < self->config.sessions_max) {
        s_session_t *first = NULL;
        for (size_t i = 0; i < self->slot_count; i++) {
            s_session_t *s = &self->slots[i];
            if (s->state == S_QUEUED && (!first || s->order < first->order))
                first = s;
        }
        if (!first)
            return;
        s_launch(self, first, now_ms);
    }
}

//  ---- Requests -------------------------------------------------------------

static const char *
s_check_request(const bly_router_core_t *self, const bly_router_request_t *r)
{
    if (r->n_prompt == 0)
        return "the prompt is empty";
    if (r->max_tokens == 0)
        return "max_tokens is 0";
    if (r->n_prompt + r->max_tokens > self->config.n_ctx)
        return "prompt plus max_tokens exceed the context";
    for (size_t i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || (uint32_t) r->prompt[i] >= self->config.n_vocab)
            return "a prompt id is outside the vocabulary";
    return NULL;
}

static s_session_t *
s_free_slot(bly_router_core_t *self)
{
    for (size_t i = 0; i < self->slot_count; i++)
        if (self->slots[i].state == S_FREE)
            return &self->slots[i];
    return NULL;
}

void
bly_router_core_request(bly_router_core_t *self, const bly_router_request_t *r, uint64_t now_ms)
{
    bly_assert(self);
    bly_assert(r && r->request_id);
    s_begin(self);
    const char *bad = s_check_request(self, r);
    if (bad || strlen(r->request_id) > BLY_ROUTER_REQUEST_ID_MAX) {
        s_fx_error(self, r->client, r->request_id, BLY_ROUTER_ERR_LIMIT,
                   bad ? bad : "request_id too long");
        return;
    }
    if (s_by_request(self, r->client, r->request_id)) {
        s_fx_error(self, r->client, r->request_id, BLY_ROUTER_ERR_DUPLICATE,
                   "a request with this id is running");
        return;
    }
    s_session_t *s = s_free_slot(self);
    if (!s) {
        s_fx_error(self, r->client, r->request_id, BLY_ROUTER_ERR_BUSY,
                   "busy: every session slot and queue place is taken");
        return;
    }
    bly_sampler_t *sampler = bly_sampler_new(&r->sampling, self->config.n_vocab);
    if (!sampler) {
        s_fx_error(self, r->client, r->request_id, BLY_ROUTER_ERR_LIMIT,
                   "sampling parameters out of range");
        return;
    }
    int32_t *tokens = s->tokens;
    memset(s, 0, sizeof(*s));
    s->tokens = tokens;
    s->sampler = sampler;
    s->state = S_QUEUED;
    s->id = self->next_id++;
    s->order = self->next_order++;
    s->client = r->client;
    snprintf(s->request_id, sizeof(s->request_id), "%s", r->request_id);
    memcpy(s->tokens, r->prompt, r->n_prompt * sizeof(int32_t));
    s->n_prompt = s->n_tokens = r->n_prompt;
    for (size_t i = 0; i < r->n_prompt; i++)
        bly_sampler_accept(s->sampler, r->prompt[i]);
    s->max_tokens = r->max_tokens;
    s->stream = r->stream;
    s->ignore_eos = r->ignore_eos;
    s->start_ms = now_ms;
    s->deadline_ms = now_ms + (r->deadline_ms ? r->deadline_ms : self->config.deadline_ms);
    s_start_queued(self, now_ms);
}

void
bly_router_core_cancel(bly_router_core_t *self, uint64_t client, const char *request_id,
                       uint64_t now_ms)
{
    bly_assert(self);
    bly_assert(request_id);
    s_begin(self);
    s_session_t *s = s_by_request(self, client, request_id);
    if (s)
        s_finish(self, s, BLY_ROUTER_ERR_CANCELLED, "cancelled by the client", now_ms);
}

void
bly_router_core_client_gone(bly_router_core_t *self, uint64_t client, uint64_t now_ms)
{
    bly_assert(self);
    s_begin(self);
    for (size_t i = 0; i < self->slot_count; i++) {
        s_session_t *s = &self->slots[i];
        if (s->state != S_FREE && s->state != S_FINISHED && s->client == client)
            s_finish(self, s, 0, NULL, now_ms);
    }
}

//  ---- Results --------------------------------------------------------------

//  The S_TOP_N largest logits, largest first (lowest id on ties).
static void
s_top(s_session_t *s, const float *logits, size_t n)
{
    s->n_top = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = s->n_top;
        if (k == S_TOP_N && !(logits[i] > s->top_logits[k - 1]))
            continue;
        if (k < S_TOP_N)
            s->n_top++;
        else
            k--;
        while (k > 0 && logits[i] > s->top_logits[k - 1]) {
            s->top_logits[k] = s->top_logits[k - 1];
            s->top_ids[k] = s->top_ids[k - 1];
            k--;
        }
        s->top_logits[k] = logits[i];
        s->top_ids[k] = (int32_t) i;
    }
}

static bool
s_is_eos(const bly_router_core_t *self, int32_t id)
{
    for (size_t i = 0; i < self->config.n_eos; i++)
        if (self->config.eos_ids[i] == id)
            return true;
    return false;
}

static void
s_done(bly_router_core_t *self, s_session_t *s, const char *finish, uint64_t now_ms)
{
    bly_router_fx_t *fx = s_fx(self, BLY_ROUTER_FX_DONE);
    fx->client = s->client;
    fx->request_id = s->request_id;
    fx->prompt = s->tokens;
    fx->n_prompt = s->n_prompt;
    fx->ids = s->tokens + s->n_prompt;
    fx->n_ids = s->n_tokens - s->n_prompt;
    fx->top_ids = s->top_ids;
    fx->top_logits = s->top_logits;
    fx->n_top = s->n_top;
    fx->finish = finish;
    fx->prefill_ms = (s->first_ms ? s->first_ms : now_ms) - s->start_ms;
    fx->decode_ms = s->first_ms ? now_ms - s->first_ms : 0;
    fx->failovers = s->failovers;
    s_finish(self, s, 0, NULL, now_ms);
}

//  Logits of the last token arrived: sample, stream, go on or finish.
//  `logits` is the caller's buffer; the sampler modifies it.
static void
s_sample(bly_router_core_t *self, s_session_t *s, float *logits, uint64_t now_ms)
{
    size_t generated = s->n_tokens - s->n_prompt;
    if (generated == 0 && s->n_top == 0)
        s_top(s, logits, self->config.n_vocab);
    int32_t id = bly_sampler_sample(s->sampler, logits);
    if (!s->first_ms)
        s->first_ms = now_ms;
    if (!s->ignore_eos && s_is_eos(self, id)) {
        s_done(self, s, "stop", now_ms);
        return;
    }
    bly_sampler_accept(s->sampler, id);
    s->tokens[s->n_tokens++] = id;
    if (s->stream) {
        bly_router_fx_t *fx = s_fx(self, BLY_ROUTER_FX_TOKEN);
        fx->client = s->client;
        fx->request_id = s->request_id;
        fx->index = (uint32_t) generated;
        fx->token = id;
    }
    if (generated + 1 >= s->max_tokens) {
        s_done(self, s, "length", now_ms);
        return;
    }
    s_send_step(self, s, now_ms);
}

void
bly_router_core_result(bly_router_core_t *self, uint64_t session, uint32_t epoch, uint32_t step,
                       const float *logits, size_t n, uint64_t now_ms)
{
    bly_assert(self);
    s_begin(self);
    s_session_t *s = s_by_audit(self, session);
    if (s) {
        if (epoch == 1)
            s_audit_result(self, s, step, logits, n, now_ms);
        return;
    }
    s = s_by_id(self, session);
    if (!s || s->state != S_RUNNING || s->epoch != epoch || s->step != step)
        return;    //  Stale, duplicate or unknown: ignore.
    bool want = s->pos + s->step_n == s->n_tokens;
    if (want && (!logits || n != self->config.n_vocab)) {
        bly_log_warn("router: session %llu step %u: result without %u logits",
                     (unsigned long long) session, step, self->config.n_vocab);
        s_probe(self, s, now_ms);
        return;
    }
    s->pos += s->step_n;
    if (!want) {
        s_send_step(self, s, now_ms);
        return;
    }
    if (s_audit_due(self, s) && s_audit_start(self, s, logits, now_ms))
        return;
    //  The sampler modifies logits: work on the core's copy.
    memcpy(self->scratch, logits, n * sizeof(float));
    s_sample(self, s, self->scratch, now_ms);
}

//  ---- Audits ---------------------------------------------------------------

static uint64_t
s_hash(uint64_t a, uint64_t b)
{
    uint64_t x = a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static s_session_t *
s_by_audit(bly_router_core_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->slot_count; i++) {
        s_session_t *s = &self->slots[i];
        if (s->state == S_AUDITING && s->audit.id == id)
            return s;
    }
    return NULL;
}

//  Deterministic in (seed, session, history length).
static bool
s_audit_due(const bly_router_core_t *self, const s_session_t *s)
{
    if (self->config.audit_milli == 0)
        return false;
    uint64_t h = s_hash(s_hash(self->config.audit_seed, s->id), s->n_tokens);
    return h % 1000 < self->config.audit_milli;
}

//  Every logit of `got` within tol x max(1, max |want|) of `want`; NaNs disagree.
static bool
s_agree(const float *want, const float *got, size_t n, float tol)
{
    float scale = 1.0f;
    for (size_t i = 0; i < n; i++) {
        float a = want[i] < 0 ? -want[i] : want[i];
        if (!(a <= scale))
            scale = a;
    }
    float limit = tol * scale;
    for (size_t i = 0; i < n; i++) {
        float d = want[i] - got[i];
        if (!((d < 0 ? -d : d) <= limit))
            return false;
    }
    return true;
}

static void
s_audit_send(bly_router_core_t *self, s_session_t *s, uint64_t now_ms)
{
    s_audit_t *a = &s->audit;
    size_t left = a->target - a->pos;
    uint32_t n = left > self->config.chunk_max ? self->config.chunk_max : (uint32_t) left;
    a->step++;
    a->step_n = n;
    s->timer_ms = now_ms + self->config.step_ms + (uint64_t) self->config.step_token_ms * n;
    bly_router_fx_t *fx = s_fx(self, BLY_ROUTER_FX_FORWARD);
    fx->session = a->id;
    fx->epoch = 1;
    fx->step = a->step;
    fx->pos = (uint32_t) a->pos;
    fx->tokens = s->tokens + a->pos;
    fx->n_tokens = n;
    fx->logits = a->pos + n == a->target;
    fx->audit = true;
    fx->hops = a->path;
    fx->hop_count = a->hop_count;
}

//  Replay the held step's history through the primary path with the
//  phase's hops swapped (a fresh audit session id).
static void
s_audit_launch(bly_router_core_t *self, s_session_t *s, uint64_t now_ms)
{
    s_audit_t *a = &s->audit;
    a->id = self->next_id++;
    a->step = 0;
    a->pos = 0;
    a->hop_count = s->hop_count;
    memcpy(a->path, s->path, s->hop_count * sizeof(*s->path));
    for (size_t h = 0; h < s->hop_count; h++) {
        const bly_router_hop_t *swap = NULL;
        if (a->phase == A_THIRD && h == a->hop)
            swap = &a->third;
        else if (a->has_alt[h] && !(a->phase == A_ONE && h == a->hop))
            swap = &a->alt[h];
        if (swap)
            a->path[h] = *swap;
    }
    s->state = S_AUDITING;
    s_audit_send(self, s, now_ms);
}

//  The hop `h` served by node `n` (the primary's stage range).
static void
s_hop_on(const s_session_t *s, size_t h, const s_node_t *n, bly_router_hop_t *out)
{
    *out = s->path[h];
    memcpy(out->node_id, n->node.node_id, 32);
    memcpy(out->endpoint, n->node.endpoint, sizeof(out->endpoint));
}

//  Hold `logits` and start an audit; false when none can run (no other
//  node serves any hop's stages, or every audit buffer is busy).
static bool
s_audit_start(bly_router_core_t *self, s_session_t *s, const float *logits, uint64_t now_ms)
{
    int buf = -1;
    for (int i = 0; i < BLY_ROUTER_AUDITS_MAX && buf < 0; i++)
        if (!self->buf_used[i])
            buf = i;
    s_audit_t *a = &s->audit;
    //  A node appears once in a replay path: skip the primary's nodes and
    //  the auditors already chosen.
    uint8_t skip[2 * BLY_ROUTER_PATH_MAX][32];
    size_t n_skip = 0, swapped = 0;
    for (size_t h = 0; h < s->hop_count; h++)
        memcpy(skip[n_skip++], s->path[h].node_id, 32);
    for (size_t h = 0; buf >= 0 && h < s->hop_count; h++) {
        const bly_router_hop_t *p = &s->path[h];
        const s_node_t *n = s_pick_range(self, p->stage_first, p->stage_last,
                                         (const uint8_t (*)[32]) skip, n_skip, now_ms);
        a->has_alt[h] = n != NULL;
        if (n) {
            s_hop_on(s, h, n, &a->alt[h]);
            memcpy(skip[n_skip++], n->node.node_id, 32);
            swapped++;
        }
    }
    if (swapped == 0) {
        self->stats.audits_skipped++;
        return false;
    }
    self->stats.audits++;
    self->buf_used[buf] = true;
    a->buf = buf;
    a->phase = A_ALL;
    a->target = s->n_tokens;
    memcpy(self->held[buf], logits, self->config.n_vocab * sizeof(float));
    if (a->warm && s_audit_same(s)) {
        //  The parked replay session holds a prefix: feed the rest.
        a->warm = false;
        s->state = S_AUDITING;
        s_audit_send(self, s, now_ms);
        return true;
    }
    if (a->warm) {
        memcpy(a->old, a->path, a->hop_count * sizeof(*a->path));
        for (size_t h = 0; h < a->hop_count; h++) {
            bly_router_fx_t *fx = s_fx(self, BLY_ROUTER_FX_CLOSE);
            fx->session = a->id;
            fx->hop = &a->old[h];
        }
        a->warm = false;
    }
    s_audit_launch(self, s, now_ms);
    return true;
}

//  True when the parked replay path is the one an A_ALL replay would use now.
static bool
s_audit_same(const s_session_t *s)
{
    const s_audit_t *a = &s->audit;
    if (a->hop_count != s->hop_count)
        return false;
    for (size_t h = 0; h < s->hop_count; h++) {
        const bly_router_hop_t *want = a->has_alt[h] ? &a->alt[h] : &s->path[h];
        if (memcmp(want->node_id, a->path[h].node_id, 32) != 0
            || want->stage_first != a->path[h].stage_first
            || want->stage_last != a->path[h].stage_last)
            return false;
    }
    return true;
}

//  A pass: keep the replay session open for the next audit, free the buffer.
static void
s_audit_park(bly_router_core_t *self, s_session_t *s, uint64_t now_ms)
{
    s_audit_t *a = &s->audit;
    memcpy(self->scratch, self->held[a->buf], self->config.n_vocab * sizeof(float));
    self->buf_used[a->buf] = false;
    a->phase = A_NONE;
    a->pos = a->target;
    a->warm = true;
    s->state = S_RUNNING;
    s_sample(self, s, self->scratch, now_ms);
}

//  Close the audit session on its hops and free its buffer.
static void
s_audit_stop(bly_router_core_t *self, s_session_t *s)
{
    s_audit_t *a = &s->audit;
    for (size_t h = 0; h < a->hop_count; h++) {
        bly_router_fx_t *fx = s_fx(self, BLY_ROUTER_FX_CLOSE);
        fx->session = a->id;
        fx->hop = &a->path[h];
    }
    if (a->phase != A_NONE)
        self->buf_used[a->buf] = false;
    a->phase = A_NONE;
    a->hop_count = 0;
    a->warm = false;
}

//  The held logits stand: sample them and go on.
static void
s_audit_resume(bly_router_core_t *self, s_session_t *s, uint64_t now_ms)
{
    memcpy(self->scratch, self->held[s->audit.buf], self->config.n_vocab * sizeof(float));
    s_audit_stop(self, s);
    s->state = S_RUNNING;
    s_sample(self, s, self->scratch, now_ms);
}

static void
s_audit_inconclusive(bly_router_core_t *self, s_session_t *s, const char *why, uint64_t now_ms)
{
    self->stats.audits_inconclusive++;
    bly_log_info("router: session %llu: audit inconclusive (%s)", (unsigned long long) s->id,
                 why);
    s_audit_resume(self, s, now_ms);
}

static void
s_mark_suspect(bly_router_core_t *self, const uint8_t *node_id)
{
    if (bly_router_core_suspect(self, node_id))
        return;
    memcpy(self->suspects[self->suspect_next], node_id, 32);
    self->suspect_next = (self->suspect_next + 1) % BLY_ROUTER_SUSPECTS_MAX;
    if (self->suspect_count < BLY_ROUTER_SUSPECTS_MAX)
        self->suspect_count++;
    self->stats.suspects++;
    bly_log_warn("router: node %02x%02x%02x%02x... gave outputs other nodes disagree with; "
                 "it is a suspect and gets no more work",
                 node_id[0], node_id[1], node_id[2], node_id[3]);
}

//  The next swappable hop after `h` (SIZE_MAX to start), or SIZE_MAX.
static size_t
s_next_alt(const s_session_t *s, size_t h)
{
    for (size_t k = h == SIZE_MAX ? 0 : h + 1; k < s->hop_count; k++)
        if (s->audit.has_alt[k])
            return k;
    return SIZE_MAX;
}

//  A_ONE found the hop: the tie-breaker for it (not on the replay path), or
//  NULL.
static const s_node_t *
s_audit_third(bly_router_core_t *self, s_session_t *s, uint64_t now_ms)
{
    s_audit_t *a = &s->audit;
    uint8_t skip[2 * BLY_ROUTER_PATH_MAX][32];
    size_t n_skip = 0;
    for (size_t h = 0; h < s->hop_count; h++) {
        memcpy(skip[n_skip++], s->path[h].node_id, 32);
        if (a->has_alt[h])
            memcpy(skip[n_skip++], a->alt[h].node_id, 32);
    }
    return s_pick_range(self, s->path[a->hop].stage_first, s->path[a->hop].stage_last,
                        (const uint8_t (*)[32]) skip, n_skip, now_ms);
}

//  Judge an audit replay. `got`: its logits. Returns true when the held
//  logits stand; sets *again when another replay must run first. Marks the
//  minority of the hop under test (or, without a majority, every party) as
//  suspect. Only nodes whose replays disagree are accused: a node that
//  lies on sessions but answers replays honestly is not caught, and cannot
//  make an honest node look guilty either.
static bool
s_audit_judge(bly_router_core_t *self, s_session_t *s, const float *got, bool *again,
              uint64_t now_ms)
{
    s_audit_t *a = &s->audit;
    size_t n = self->config.n_vocab;
    float tol = self->config.audit_tol;
    bool with_held = s_agree(self->held[a->buf], got, n, tol);
    *again = false;
    if (a->phase == A_ALL) {
        if (with_held) {
            self->stats.audits_passed++;
            return true;
        }
        self->stats.audits_mismatched++;
        memcpy(self->first[a->buf], got, n * sizeof(float));
        a->hop = s_next_alt(s, SIZE_MAX);
        a->phase = A_ONE;
        *again = true;
        return false;
    }
    bool with_all = s_agree(self->first[a->buf], got, n, tol);
    if (a->phase == A_ONE && with_all) {
        a->hop = s_next_alt(s, a->hop);
        *again = a->hop != SIZE_MAX;
        if (!*again) {
            //  No replay reproduces the held logits: the swapped hops' nodes
            //  answered the session otherwise than their replays. Nobody is
            //  accused; the session starts over on other nodes (for fail_ms).
            self->stats.audits_inconclusive++;
            bly_log_warn("router: session %llu: no replay reproduces the path's logits; "
                         "re-planning around its nodes", (unsigned long long) s->id);
            for (size_t h = 0; h < s->hop_count; h++)
                if (a->has_alt[h])
                    s_avoid(self, s->path[h].node_id, now_ms);
        }
        return false;
    }
    if (a->phase == A_ONE) {
        const s_node_t *third = s_audit_third(self, s, now_ms);
        if (third) {
            s_hop_on(s, a->hop, third, &a->third);
            a->phase = A_THIRD;
            *again = true;
            return false;
        }
        s_mark_suspect(self, s->path[a->hop].node_id);
        s_mark_suspect(self, a->alt[a->hop].node_id);
        return false;
    }
    if (with_all) {
        s_mark_suspect(self, s->path[a->hop].node_id);
        return false;
    }
    s_mark_suspect(self, a->alt[a->hop].node_id);
    if (with_held)
        return true;
    s_mark_suspect(self, s->path[a->hop].node_id);
    s_mark_suspect(self, a->third.node_id);
    return false;
}

//  A result of an audit step: the next chunk, or the verdict.
static void
s_audit_result(bly_router_core_t *self, s_session_t *s, uint32_t step, const float *logits,
               size_t n, uint64_t now_ms)
{
    s_audit_t *a = &s->audit;
    if (step != a->step)
        return;    //  Stale or duplicate.
    if (a->pos + a->step_n < a->target) {
        a->pos += a->step_n;
        s_audit_send(self, s, now_ms);
        return;
    }
    if (!logits || n != self->config.n_vocab) {
        s_audit_inconclusive(self, s, "a result without logits", now_ms);
        return;
    }
    bool again = false;
    bool held_ok = s_audit_judge(self, s, logits, &again, now_ms);
    if (again) {
        //  Close this replay's session and run the next one.
        memcpy(a->old, a->path, a->hop_count * sizeof(*a->path));
        for (size_t h = 0; h < a->hop_count; h++) {
            bly_router_fx_t *fx = s_fx(self, BLY_ROUTER_FX_CLOSE);
            fx->session = a->id;
            fx->hop = &a->old[h];
        }
        s_audit_launch(self, s, now_ms);
        return;
    }
    if (held_ok && a->phase == A_ALL) {
        s_audit_park(self, s, now_ms);
        return;
    }
    if (held_ok) {
        s_audit_resume(self, s, now_ms);
        return;
    }
    //  The primary's hop is a suspect: a new path without it, re-prefilled.
    s_audit_stop(self, s);
    s->state = S_RUNNING;
    s_restart_path(self, s, now_ms);
}

//  ---- Failover -------------------------------------------------------------

static void
s_probe(bly_router_core_t *self, s_session_t *s, uint64_t now_ms)
{
    s->state = S_PROBING;
    s->timer_ms = now_ms + self->config.probe_ms;
    for (size_t h = 0; h < s->hop_count; h++) {
        s->probe_nonce[h] = self->next_nonce++;
        s->probe_ok[h] = false;
        bly_router_fx_t *fx = s_fx(self, BLY_ROUTER_FX_PING);
        fx->hop = &s->path[h];
        fx->nonce = s->probe_nonce[h];
    }
}

//  A node failed a step: prefer others for fail_ms.
static void
s_mark_failed(bly_router_core_t *self, const uint8_t *node_id, uint64_t now_ms)
{
    self->stats.fails++;
    s_avoid(self, node_id, now_ms);
}

void
bly_router_core_fail(bly_router_core_t *self, uint64_t session, uint32_t epoch, uint32_t step,
                     int code, const uint8_t *node_id, uint64_t now_ms)
{
    bly_assert(self);
    s_begin(self);
    s_session_t *s = s_by_audit(self, session);
    if (s) {
        if (epoch == 1 && step == s->audit.step) {
            if (code != BLY_ROUTER_ERR_BUSY)
                s_mark_failed(self, node_id, now_ms);
            s_audit_inconclusive(self, s, "a hop failed the audit step", now_ms);
        }
        return;
    }
    s = s_by_id(self, session);
    if (!s || s->state != S_RUNNING || s->epoch != epoch || s->step != step)
        return;
    if (code == BLY_ROUTER_ERR_BUSY) {
        //  A shard has no free session slot: release the path and start over
        //  after a pause that differs per session (no lockstep retries).
        s_close_path(self, s);
        s->state = S_BACKOFF;
        s->timer_ms = now_ms + self->config.busy_ms * (1 + s->id % 4);
        return;
    }
    bly_log_info("router: session %llu step %u failed at a hop (code %d); probing the path",
                 (unsigned long long) session, step, code);
    s_mark_failed(self, node_id, now_ms);
    s_probe(self, s, now_ms);
}

void
bly_router_core_pong(bly_router_core_t *self, uint64_t nonce, uint64_t now_ms)
{
    bly_assert(self);
    s_begin(self);
    for (size_t i = 0; i < self->slot_count; i++) {
        s_session_t *s = &self->slots[i];
        if (s->state != S_PROBING)
            continue;
        for (size_t h = 0; h < s->hop_count; h++)
            if (s->probe_nonce[h] == nonce)
                s->probe_ok[h] = true;
    }
}

//  The probe window ended: mark silent hops dead, re-plan, re-prefill.
static void
s_replan(bly_router_core_t *self, s_session_t *s, uint64_t now_ms)
{
    for (size_t h = 0; h < s->hop_count; h++) {
        if (s->probe_ok[h])
            continue;
        for (size_t i = 0; i < self->node_count; i++)
            if (memcmp(self->nodes[i].node.node_id, s->path[h].node_id, 32) == 0)
                self->nodes[i].dead_until_ms = now_ms + self->config.dead_ms;
    }
    s_restart_path(self, s, now_ms);
}

//  A new path and a re-prefill from position 0 (a failover).
static void
s_restart_path(bly_router_core_t *self, s_session_t *s, uint64_t now_ms)
{
    if (s->failovers >= self->config.failovers_max) {
        s_finish(self, s, BLY_ROUTER_ERR_FAILED, "the path failed too often", now_ms);
        return;
    }
    s->failovers++;
    //  Close the old path's hops that the new path does not reuse (all of
    //  them when no new path exists).
    size_t old_count = s->hop_count;
    memcpy(s->old_path, s->path, sizeof(s->old_path));
    s_launch(self, s, now_ms);
    for (size_t h = 0; h < old_count; h++) {
        bool kept = false;
        for (size_t k = 0; s->state == S_RUNNING && k < s->hop_count; k++)
            kept = kept || memcmp(s->path[k].node_id, s->old_path[h].node_id, 32) == 0;
        if (kept)
            continue;
        bly_router_fx_t *fx = s_fx(self, BLY_ROUTER_FX_CLOSE);
        fx->session = s->id;
        fx->hop = &s->old_path[h];
    }
}

void
bly_router_core_tick(bly_router_core_t *self, uint64_t now_ms)
{
    bly_assert(self);
    s_begin(self);
    for (size_t i = 0; i < self->slot_count; i++) {
        s_session_t *s = &self->slots[i];
        if (s->state == S_FREE || s->state == S_FINISHED)
            continue;
        if (now_ms >= s->deadline_ms) {
            s_finish(self, s, BLY_ROUTER_ERR_DEADLINE, "the request's deadline passed", now_ms);
        } else if (s->state == S_RUNNING && now_ms >= s->timer_ms) {
            bly_log_info("router: session %llu step %u stalled; probing the path",
                         (unsigned long long) s->id, s->step);
            s_probe(self, s, now_ms);
        } else if (s->state == S_PROBING && now_ms >= s->timer_ms) {
            s_replan(self, s, now_ms);
        } else if (s->state == S_BACKOFF && now_ms >= s->timer_ms) {
            s_launch(self, s, now_ms);
        } else if (s->state == S_AUDITING && now_ms >= s->timer_ms) {
            s_audit_inconclusive(self, s, "the audit step stalled", now_ms);
        }
    }
}

const bly_router_hop_t *
bly_router_core_path(const bly_router_core_t *self, uint64_t session, size_t *hop_count)
{
    bly_assert(self);
    bly_assert(hop_count);
    for (size_t i = 0; i < self->slot_count; i++) {
        const s_session_t *s = &self->slots[i];
        if (s->state == S_RUNNING && s->id == session) {
            *hop_count = s->hop_count;
            return s->path;
        }
        if (s->state == S_AUDITING && s->audit.id == session) {
            *hop_count = s->audit.hop_count;
            return s->audit.path;
        }
    }
    *hop_count = 0;
    return NULL;
}

uint64_t
bly_router_core_next_ms(const bly_router_core_t *self)
{
    bly_assert(self);
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < self->slot_count; i++) {
        const s_session_t *s = &self->slots[i];
        if (s->state == S_FREE || s->state == S_FINISHED)
            continue;
        if (s->deadline_ms < next)
            next = s->deadline_ms;
        if (s->state != S_QUEUED && s->timer_ms < next)
            next = s->timer_ms;
    }
    return next;
}

void
bly_router_core_stats(const bly_router_core_t *self, bly_router_stats_t *stats)
{
    bly_assert(self);
    bly_assert(stats);
    *stats = self->stats;
}

size_t
bly_router_core_fx_count(const bly_router_core_t *self)
{
    bly_assert(self);
    return self->fx_count;
}

const bly_router_fx_t *
bly_router_core_fx_at(const bly_router_core_t *self, size_t index)
{
    bly_assert(self);
    bly_assert(index < self->fx_count);
    return &self->fx[index];
}

bool
bly_router_core_client_active(const bly_router_core_t *self, uint64_t client)
{
    bly_assert(self);
    for (size_t i = 0; i < self->slot_count; i++) {
        const s_session_t *s = &self->slots[i];
        if (s->state != S_FREE && s->state != S_FINISHED && s->client == client)
            return true;
    }
    return false;
}

size_t
bly_router_core_sessions(const bly_router_core_t *self)
{
    bly_assert(self);
    size_t n = 0;
    for (size_t i = 0; i < self->slot_count; i++)
        if (self->slots[i].state != S_FREE && self->slots[i].state != S_FINISHED)
            n++;
    return n;
}

size_t
bly_router_core_queued(const bly_router_core_t *self)
{
    bly_assert(self);
    return s_count(self, false);
}
