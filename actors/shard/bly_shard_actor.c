/*  =========================================================================
    bly_shard_actor - a layer-shard: a stage range of a model, one KV cache
    per session, activations forwarded to the next hop
    ========================================================================= */

#include "bly_shard_actor.h"
#include "bly_inference_msg.h"
#include "bly_limits.h"
#include "bly_links.h"
#include "bly_node_status.h"
#include "bly_shard_core.h"
#include "bly_shard_engine.h"
#include "bly_sock.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>

typedef struct {
    zsock_t *pipe;
    const bly_identity_t *identity;
    zsock_t *server;                //  CURVE ROUTER: forward, close, ping.
    zpoller_t *poller;
    bool terminated, verbose;
    bly_model_t *model;
    const bly_model_hparams_t *hp;
    uint32_t stage_first, stage_last;   //  Served, inclusive.
    uint32_t n_batch;
    bly_shard_core_t *core;
    bly_shard_engine_t *engine;     //  Weights and one context per session slot.
    size_t sessions;
    float *acts;                    //  n_batch x n_embd.
    float *logits;                  //  BLY_SHARD_BATCH_MAX x n_vocab on a head shard, else n_vocab.
    uint64_t batches, batched_steps;    //  Passes of several decode steps, and their steps.
    bly_ratelimit_t batch_log;
    size_t batch_max;               //  Manifest batch_max (1: every step alone).
    bly_links_t *links;             //  Next hops and routers.
    uint64_t steps, refused;
    bly_ratelimit_t ratelimit;
    uint64_t expire_ms;
    //  Measurement (see s_measure, s_note_step, s_publish).
    double token_us;                //  Moving average of a one-token step, us.
    uint64_t busy_us;               //  Compute time since the last publish.
    uint64_t publish_us;            //  When the figures were last published.
    bool lie;                       //  TESTS ONLY: fault_lie (perturb every output).
} s_shard_t;

static void s_measure(s_shard_t *self);

//  ---- Tensor hashes --------------------------------------------------------

int
bly_shard_tensor_stage(const char *name, uint32_t n_layer)
{
    bly_assert(name);
    if (strncmp(name, "blk.", 4) == 0) {
        char *end = NULL;
        unsigned long layer = strtoul(name + 4, &end, 10);
        if (end == name + 4 || *end != '.' || layer >= n_layer)
            return -1;
        return (int) layer + 1;
    }
    if (strncmp(name, "token_embd.", 11) == 0)
        return 0;
    if (strncmp(name, "output", 6) == 0)
        return (int) n_layer + 1;
    return -1;
}

void
bly_shard_tensor_hash(const bly_gguf_tensor_t *tensor, char hex[65])
{
    bly_assert(tensor);
    bly_assert(hex);
    uint8_t hash[32];
    crypto_generichash(hash, sizeof(hash), tensor->data, tensor->size, NULL, 0);
    sodium_bin2hex(hex, 65, hash, sizeof(hash));
}

//  The expected hash of `name` in the file, into hex; -1 when absent.
static int
s_expected(FILE *f, const char *name, char hex[65])
{
    char line[BLY_GGUF_NAME_MAX + 80];
    rewind(f);
    for (size_t n = 0; n < BLY_SHARD_HASHES_MAX && fgets(line, sizeof(line), f); n++) {
        char got_name[BLY_GGUF_NAME_MAX + 1], got_hex[65];
        if (sscanf(line, "%256s %64s", got_name, got_hex) == 2 && strcmp(got_name, name) == 0) {
            memcpy(hex, got_hex, 65);
            return 0;
        }
    }
    return -1;
}

static bool
s_tensor_served(const char *name, const bly_model_hparams_t *hp, uint32_t first, uint32_t last)
{
    int stage = bly_shard_tensor_stage(name, hp->n_layer);
    if (stage >= 0 && (uint32_t) stage >= first && (uint32_t) stage <= last)
        return true;
    //  A tied head reads the token embedding.
    return stage == 0 && hp->tied_output && last == hp->n_layer + 1;
}

int
bly_shard_verify_hashes(const bly_model_t *model, uint32_t first, uint32_t last,
                        const char *hashes_path, char *err, size_t err_size)
{
    bly_assert(model && hashes_path && err);
    FILE *f = fopen(hashes_path, "r");
    if (!f) {
        snprintf(err, err_size, "cannot read tensor hashes %s", hashes_path);
        return -1;
    }
    const bly_gguf_t *g = bly_model_gguf(model);
    const bly_model_hparams_t *hp = bly_model_hparams(model);
    int rc = 0;
    for (uint64_t i = 0; i < bly_gguf_tensor_count(g) && rc == 0; i++) {
        const bly_gguf_tensor_t *t = bly_gguf_tensor_at(g, i);
        if (!s_tensor_served(t->name, hp, first, last))
            continue;
        char want[65], got[65];
        bly_shard_tensor_hash(t, got);
        if (s_expected(f, t->name, want) != 0) {
            snprintf(err, err_size, "tensor %s has no expected hash", t->name);
            rc = -1;
        } else if (strcmp(want, got) != 0) {
            snprintf(err, err_size, "tensor %s hash mismatch (%.16s... expected %.16s...)",
                     t->name, got, want);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

//  ---- Setup ----------------------------------------------------------------

static void
s_shard_destroy(s_shard_t **self_p)
{
    s_shard_t *self = *self_p;
    if (!self)
        return;
    if (self->identity)
        bly_node_status_clear(bly_identity_public_key(self->identity));
    bly_links_destroy(&self->links);
    zpoller_destroy(&self->poller);
    zsock_destroy(&self->server);
    bly_shard_engine_destroy(&self->engine);
    bly_shard_core_destroy(&self->core);
    free(self->acts);
    free(self->logits);
    bly_model_destroy(&self->model);
    free(self);
    *self_p = NULL;
}

//  The engine (one context per session slot, as many as the budget allows) and the core.
static int
s_make_contexts(s_shard_t *self, const bly_manifest_t *m, int sec, char *err, size_t err_size)
{
    size_t n_ctx = (size_t) bly_manifest_get_int(m, sec, "n_ctx", 1024);
    self->n_batch = (uint32_t) (n_ctx < BLY_MODEL_BATCH_MAX ? n_ctx : BLY_MODEL_BATCH_MAX);
    uint32_t n_layer = self->hp->n_layer;
    bly_shard_engine_config_t ec = {
        .backend = bly_manifest_get(m, sec, "backend"),
        .device = (int) bly_manifest_get_int(m, sec, "device", -1),
        .layer_first = self->stage_first < 1 ? 0 : self->stage_first - 1,
        .layer_end = self->stage_last > n_layer ? n_layer : self->stage_last,
        .head = self->stage_last == n_layer + 1,
        .sessions = (size_t) bly_manifest_get_int(m, sec, "sessions", 16),
        .budget = (uint64_t) bly_manifest_get_int(m, sec, "kv_budget_mb", 1024) << 20,
        .n_ctx = n_ctx, .n_batch = self->n_batch,
        .threads = (size_t) bly_manifest_get_int(m, sec, "threads", 1)};
    self->engine = bly_shard_engine_new(self->model, &ec, err, err_size);
    if (!self->engine)
        return -1;
    self->sessions = bly_shard_engine_slots(self->engine);
    bly_shard_config_t sc = {self->stage_first, self->stage_last, self->sessions,
                             (uint32_t) n_ctx, self->n_batch,
                             (uint32_t) bly_manifest_get_int(m, sec, "idle_ms", 600000)};
    self->core = bly_shard_core_new(&sc);
    return self->core ? 0 : -1;
}

static int
s_load(s_shard_t *self, const bly_manifest_t *m, int sec, char *err, size_t err_size)
{
    self->model = bly_actor_load_model(m, sec, err, err_size);
    if (!self->model)
        return -1;
    self->hp = bly_model_hparams(self->model);
    const char *range = bly_manifest_get(m, sec, "stages");
    self->stage_first = (uint32_t) strtoul(range, NULL, 10);
    self->stage_last = (uint32_t) strtoul(strchr(range, '-') + 1, NULL, 10);
    if (self->stage_last > self->hp->n_layer + 1) {
        snprintf(err, err_size, "stages %s: the model has stages 0-%u", range,
                 self->hp->n_layer + 1);
        return -1;
    }
    char hashes[BLY_PATH_MAX];
    if (bly_manifest_get_path(m, sec, "hashes", hashes, sizeof(hashes)) == 0
        && bly_shard_verify_hashes(self->model, self->stage_first, self->stage_last, hashes, err,
                                   err_size)
               != 0)
        return -1;
    if (s_make_contexts(self, m, sec, err, err_size) != 0)
        return -1;
    self->batch_max = (size_t) bly_manifest_get_int(m, sec, "batch_max", BLY_SHARD_BATCH_MAX);
    self->acts = calloc((size_t) self->n_batch * self->hp->n_embd, sizeof(float));
    size_t rows = self->stage_last == self->hp->n_layer + 1 ? BLY_SHARD_BATCH_MAX : 1;
    self->logits = calloc(rows * self->hp->n_vocab, sizeof(float));
    bly_assert(self->acts && self->logits);
    return 0;
}

static s_shard_t *
s_shard_new(zsock_t *pipe, const bly_actor_args_t *args, char *err, size_t err_size)
{
    s_shard_t *self = calloc(1, sizeof(*self));
    bly_assert(self);
    self->pipe = pipe;
    self->identity = args->identity;
    self->ratelimit = (bly_ratelimit_t) {0};
    if (s_load(self, args->manifest, args->section, err, err_size) != 0) {
        s_shard_destroy(&self);
        return NULL;
    }
    const char *endpoint = bly_manifest_get(args->manifest, args->section, "endpoint");
    self->server = bly_sock_server(ZMQ_ROUTER, self->identity, "open", endpoint, err, err_size);
    if (!self->server) {
        s_shard_destroy(&self);
        return NULL;
    }
    self->poller = zpoller_new(pipe, self->server, NULL);
    bly_assert(self->poller);
    self->links = bly_links_new(self->identity, BLY_SHARD_LINKS_MAX, NULL);
    self->lie = bly_manifest_get_bool(args->manifest, args->section, "fault_lie", false);
    if (self->lie)
        bly_log_warn("shard: fault_lie is set: every output is perturbed (a test of audits)");
    s_measure(self);
    bly_log_notice("shard: serving stages %u-%u of %u on %s, %zu sessions on %s",
                   self->stage_first, self->stage_last, self->hp->n_layer + 2, endpoint,
                   self->sessions, bly_shard_engine_device(self->engine));
    return self;
}

//  ---- Speed, load and the fault-injection knob ------------------------------

#define S_MEASURE_TOKENS 4      //  One-token steps timed at start.
#define S_AVERAGE_WEIGHT 8      //  A new step moves the average by 1/8.
#define S_PUBLISH_US 1000000    //  Figures reach the member actor this often.

//  tokens/s x 1000 from microseconds per token.
static uint32_t
s_speed_milli(double token_us)
{
    double milli = token_us > 0 ? 1e9 / token_us : 0;
    return milli > 4e9 ? 4000000000u : milli < 1 ? 1 : (uint32_t) milli;
}

//  Share speed and load with the member actor. Load: the larger of the
//  session slots held and the fraction of time spent computing since the
//  last publish.
static void
s_publish(s_shard_t *self, uint64_t now_us)
{
    uint64_t span = now_us > self->publish_us ? now_us - self->publish_us : 1;
    uint64_t busy = self->busy_us * 1000 / span;
    uint64_t held = self->sessions ? bly_shard_core_sessions(self->core) * 1000 / self->sessions
                                   : 0;
    uint64_t load = busy > held ? busy : held;
    bly_node_status_set(bly_identity_public_key(self->identity), s_speed_milli(self->token_us),
                        (uint32_t) (load > 1000 ? 1000 : load));
    self->busy_us = 0;
    self->publish_us = now_us;
}

//  Time S_MEASURE_TOKENS one-token steps through the served stages (slot
//  0's cache, positions 0..; a session's first step starts at 0 again).
static void
s_measure(s_shard_t *self)
{
    int64_t start = zclock_usecs();
    for (uint32_t pos = 0; pos < S_MEASURE_TOKENS; pos++) {
        int32_t id = (int32_t) pos;
        if (self->stage_first == 0 && bly_model_embed(self->model, &id, 1, self->acts) != 0)
            break;
        uint32_t lf = self->stage_first < 1 ? 0 : self->stage_first - 1;
        uint32_t le = self->stage_last > self->hp->n_layer ? self->hp->n_layer
                                                           : self->stage_last;
        if (lf < le
            && bly_shard_engine_run_layers(self->engine, 0, lf, le, self->acts, 1, pos) != 0)
            break;
        if (self->stage_last == self->hp->n_layer + 1
            && bly_shard_engine_head(self->engine, self->acts, self->logits) != 0)
            break;
    }
    double us = (double) (zclock_usecs() - start) / S_MEASURE_TOKENS;
    self->token_us = us > 1 ? us : 1;
    self->publish_us = (uint64_t) zclock_usecs();
    s_publish(self, self->publish_us);
    bly_log_notice("shard: measured %.1f tokens/s over stages %u-%u", 1e6 / self->token_us,
                   self->stage_first, self->stage_last);
}

//  A step's compute time: load, and the moving average of one-token steps.
static void
s_note_step(s_shard_t *self, uint32_t n_tokens, uint64_t us)
{
    self->busy_us += us;
    if (n_tokens == 1)
        self->token_us += ((double) us - self->token_us) / S_AVERAGE_WEIGHT;
}

//  TESTS ONLY (manifest fault_lie): a lying shard. Its activations (or
//  logits) are shifted by 1, the kind of wrong answer audits must catch.
static void
s_lie(s_shard_t *self, uint32_t n_tokens, bool logits, float *acts, float *logit_row)
{
    size_t count = logits ? self->hp->n_vocab : (size_t) n_tokens * self->hp->n_embd;
    float *out = logits ? logit_row : acts;
    for (size_t i = 0; i < count; i++)
        out[i] += 1.0f;
}

//  ---- Messages -------------------------------------------------------------

static void
s_refuse(s_shard_t *self, const char *what)
{
    self->refused++;
    if (bly_ratelimit_allow(&self->ratelimit, zclock_mono(), 10, 1000))
        bly_log_warn("shard: refused a message: %s", what);
}

//  An error straight back to the sender on the ROUTER.
static void
s_reply_error(s_shard_t *self, zframe_t *routing_id, int code, const char *reason)
{
    bly_inference_msg_t *e = bly_inference_msg_new(BLY_INFERENCE_MSG_ERROR);
    bly_inference_msg_set_routing_id(e, routing_id);
    bly_inference_msg_set_code(e, (uint16_t) code);
    if (bly_inference_msg_set_reason(e, reason) != 0 || bly_inference_msg_send(e, self->server) != 0)
        bly_log_debug("shard: could not send an error reply");
    bly_inference_msg_destroy(&e);
}

//  A fail for the step to the router named in the forward.
static void
s_send_fail(s_shard_t *self, const bly_inference_msg_t *fwd, int code, const char *reason)
{
    size_t size = 0;
    const uint8_t *id = bly_inference_msg_reply_id(fwd, &size);
    zsock_t *link = bly_links_get(self->links, bly_inference_msg_reply_to(fwd), id);
    if (!link)
        return;
    bly_inference_msg_t *f = bly_inference_msg_new(BLY_INFERENCE_MSG_FAIL);
    bly_inference_msg_set_session(f, bly_inference_msg_session(fwd));
    bly_inference_msg_set_epoch(f, bly_inference_msg_epoch(fwd));
    bly_inference_msg_set_step(f, bly_inference_msg_step(fwd));
    bly_inference_msg_set_code(f, (uint16_t) code);
    if (bly_inference_msg_set_reason(f, reason) != 0 || bly_inference_msg_send(f, link) != 0)
        bly_log_debug("shard: could not send a fail");
    bly_inference_msg_destroy(&f);
}

//  Load the step's input into self->acts: embed tokens, or copy activations.
static int
s_input(s_shard_t *self, const bly_inference_msg_t *fwd, uint32_t run_first, uint32_t n,
        float *out, const char **why)
{
    size_t row = self->hp->n_embd;
    if (run_first == 0) {
        if (bly_inference_msg_tokens_count(fwd) != n) {
            *why = "token count differs from n_tokens";
            return -1;
        }
        int32_t ids[BLY_MODEL_BATCH_MAX];
        for (uint32_t i = 0; i < n; i++)
            ids[i] = (int32_t) bly_inference_msg_tokens_at(fwd, i);
        if (bly_model_embed(self->model, ids, n, out) != 0) {
            *why = "a token id is outside the vocabulary";
            return -1;
        }
        return 0;
    }
    size_t size = 0;
    const uint8_t *acts = bly_inference_msg_acts(fwd, &size);
    if (size != (size_t) n * row * sizeof(float)) {
        *why = "activations of the wrong size";
        return -1;
    }
    memcpy(out, acts, size);
    return 0;
}

//  Run the hop's stages on slot `slot`. Returns 0 or -1 with *why.
static int
s_compute(s_shard_t *self, const bly_inference_msg_t *fwd, const bly_inference_hop_t *hop,
          int slot, const char **why)
{
    uint32_t n = bly_inference_msg_n_tokens(fwd), pos = bly_inference_msg_pos(fwd);
    if (s_input(self, fwd, hop->stage_first, n, self->acts, why) != 0)
        return -1;
    uint32_t lf = hop->stage_first < 1 ? 0 : hop->stage_first - 1;
    uint32_t le = hop->stage_last > self->hp->n_layer ? self->hp->n_layer : hop->stage_last;
    if (lf < le
        && bly_shard_engine_run_layers(self->engine, slot, lf, le, self->acts, n, pos) != 0) {
        *why = "the layers refused the step";
        return -1;
    }
    if (hop->stage_last == self->hp->n_layer + 1 && bly_inference_msg_logits(fwd)) {
        const float *last = self->acts + (size_t) (n - 1) * self->hp->n_embd;
        if (bly_shard_engine_head(self->engine, last, self->logits) != 0) {
            *why = "the head failed";
            return -1;
        }
    }
    return 0;
}

//  Pass the step on: activations to the next hop, or the result to the router.
static void
s_pass_on(s_shard_t *self, bly_inference_msg_t *fwd, const bly_inference_hop_t *hop,
          const float *acts, const float *logits)
{
    uint32_t n = bly_inference_msg_n_tokens(fwd);
    size_t index = bly_inference_msg_hop_index(fwd);
    bool last = hop->stage_last == self->hp->n_layer + 1;
    if (!last && index + 1 < bly_inference_msg_hops_count(fwd)) {
        const bly_inference_hop_t *next = bly_inference_msg_hops_at(fwd, index + 1);
        zsock_t *link = bly_links_get(self->links, next->endpoint, next->node_id);
        bly_inference_msg_set_routing_id(fwd, NULL);
        bly_inference_msg_set_hop_index(fwd, (uint32_t) index + 1);
        bly_inference_msg_tokens_clear(fwd);
        if (!link
            || bly_inference_msg_set_acts(fwd, (const uint8_t *) acts,
                                          (size_t) n * self->hp->n_embd * sizeof(float))
                   != 0
            || bly_inference_msg_send(fwd, link) != 0)
            s_send_fail(self, fwd, BLY_INFERENCE_ERROR_INTERNAL, "cannot reach the next hop");
        return;
    }
    if (!last) {
        s_send_fail(self, fwd, BLY_INFERENCE_ERROR_SHAPE, "the path ends before the head");
        return;
    }
    size_t size = 0;
    const uint8_t *id = bly_inference_msg_reply_id(fwd, &size);
    zsock_t *link = bly_links_get(self->links, bly_inference_msg_reply_to(fwd), id);
    if (!link)
        return;
    bly_inference_msg_t *r = bly_inference_msg_new(BLY_INFERENCE_MSG_RESULT);
    bly_inference_msg_set_session(r, bly_inference_msg_session(fwd));
    bly_inference_msg_set_epoch(r, bly_inference_msg_epoch(fwd));
    bly_inference_msg_set_step(r, bly_inference_msg_step(fwd));
    size_t bytes = bly_inference_msg_logits(fwd) ? self->hp->n_vocab * sizeof(float) : 0;
    if (bly_inference_msg_set_logits_data(r, (const uint8_t *) logits, bytes) != 0
        || bly_inference_msg_send(r, link) != 0)
        bly_log_warn("shard: could not send a result to %s", bly_inference_msg_reply_to(fwd));
    bly_inference_msg_destroy(&r);
}

static const char *
s_core_reason(int rc)
{
    switch (rc) {
    case BLY_SHARD_ERR_BUSY: return "busy: every session slot is taken";
    case BLY_SHARD_ERR_LIMIT: return "the step runs past the context";
    case BLY_SHARD_ERR_UNKNOWN: return "unknown session";
    case BLY_SHARD_ERR_SHAPE: return "stages not served here, or a bad token count";
    default: return "position does not follow the session's cache";
    }
}

//  Admit a forward step: its hop and session slot. False when it was refused or dropped
//  (the sender has been told where it should be).
static bool
s_admit(s_shard_t *self, bly_inference_msg_t *fwd, const bly_inference_hop_t **hop_p,
        int *slot_p)
{
    size_t index = bly_inference_msg_hop_index(fwd);
    if (index >= bly_inference_msg_hops_count(fwd)) {
        s_refuse(self, "hop_index past the path");
        s_reply_error(self, bly_inference_msg_routing_id(fwd), BLY_INFERENCE_ERROR_SHAPE,
                      "hop_index past the path");
        return false;
    }
    const bly_inference_hop_t *hop = bly_inference_msg_hops_at(fwd, index);
    size_t size = 0;
    bly_shard_step_t st = {bly_inference_msg_reply_id(fwd, &size), bly_inference_msg_session(fwd),
                           bly_inference_msg_epoch(fwd), bly_inference_msg_step(fwd),
                           bly_inference_msg_pos(fwd), bly_inference_msg_n_tokens(fwd),
                           hop->stage_first, hop->stage_last};
    bool reset = false;
    int slot = bly_shard_core_admit(self->core, &st, (uint64_t) zclock_mono(), &reset);
    if (slot == BLY_SHARD_DROP)
        return false;
    if (slot < 0) {
        s_refuse(self, s_core_reason(slot));
        s_send_fail(self, fwd, -slot, s_core_reason(slot));
        return false;
    }
    *hop_p = hop;
    *slot_p = slot;
    return true;
}

//  A computed step: account for it and pass it on.
static void
s_done(s_shard_t *self, bly_inference_msg_t *fwd, const bly_inference_hop_t *hop, int slot,
       float *acts, float *logits)
{
    uint32_t n = bly_inference_msg_n_tokens(fwd);
    if (self->lie)
        s_lie(self, n, hop->stage_last == self->hp->n_layer + 1, acts, logits);
    bly_shard_core_ran(self->core, slot, n);
    self->steps++;
    s_pass_on(self, fwd, hop, acts, logits);
}

static void
s_forward(s_shard_t *self, bly_inference_msg_t *fwd)
{
    const bly_inference_hop_t *hop = NULL;
    int slot = -1;
    if (!s_admit(self, fwd, &hop, &slot))
        return;
    const char *why = NULL;
    int64_t start_us = zclock_usecs();
    if (s_compute(self, fwd, hop, slot, &why) != 0) {
        bly_shard_core_drop(self->core, slot);
        s_refuse(self, why);
        s_send_fail(self, fwd, BLY_INFERENCE_ERROR_SHAPE, why);
        return;
    }
    s_note_step(self, bly_inference_msg_n_tokens(fwd), (uint64_t) (zclock_usecs() - start_us));
    s_done(self, fwd, hop, slot, self->acts, self->logits);
}

//  ---- Batches of decode steps ----------------------------------------------
//  Decode steps (one token) of different sessions that were queued together run as one
//  pass through the served stages: the weights are read once for all of them. Each row is
//  bit-identical to the step run alone, so batching never changes an answer.

typedef struct {
    bly_inference_msg_t *msgs[BLY_SHARD_BATCH_MAX];
    const bly_inference_hop_t *hops[BLY_SHARD_BATCH_MAX];
    int slots[BLY_SHARD_BATCH_MAX];
    size_t pos[BLY_SHARD_BATCH_MAX];
    size_t n;
} s_batch_t;

//  True when an admitted step can join the batch (one token, the batch's stages, a slot
//  not in it yet).
static bool
s_batch_fits(const s_shard_t *self, const s_batch_t *b, const bly_inference_msg_t *fwd,
             const bly_inference_hop_t *hop, int slot)
{
    if (b->n >= self->batch_max || bly_inference_msg_n_tokens(fwd) != 1)
        return false;
    if (b->n == 0)
        return true;
    if (hop->stage_first != b->hops[0]->stage_first || hop->stage_last != b->hops[0]->stage_last)
        return false;
    for (size_t i = 0; i < b->n; i++)
        if (b->slots[i] == slot)
            return false;
    return true;
}

//  Inputs, one pass, head rows. Returns 0 or -1 with *why (then every step fails).
static int
s_batch_compute(s_shard_t *self, s_batch_t *b, const char **why)
{
    size_t row = self->hp->n_embd;
    const bly_inference_hop_t *hop = b->hops[0];
    for (size_t i = 0; i < b->n; i++)
        if (s_input(self, b->msgs[i], hop->stage_first, 1, self->acts + i * row, why) != 0)
            return -1;
    uint32_t lf = hop->stage_first < 1 ? 0 : hop->stage_first - 1;
    uint32_t le = hop->stage_last > self->hp->n_layer ? self->hp->n_layer : hop->stage_last;
    if (lf < le
        && bly_shard_engine_run_layers_multi(self->engine, b->slots, b->pos, b->n, lf, le,
                                             self->acts) != 0) {
        *why = "the layers refused the step";
        return -1;
    }
    if (hop->stage_last == self->hp->n_layer + 1
        && bly_shard_engine_head_rows(self->engine, self->acts, b->n, self->logits) != 0) {
        *why = "the head failed";
        return -1;
    }
    return 0;
}

//  Run the batch (alone when it holds one step) and pass every step on; empties it.
static void
s_batch_flush(s_shard_t *self, s_batch_t *b)
{
    if (b->n == 1) {
        //  Admitted already: compute as a single step.
        const char *why = NULL;
        int64_t start_us = zclock_usecs();
        if (s_compute(self, b->msgs[0], b->hops[0], b->slots[0], &why) != 0) {
            bly_shard_core_drop(self->core, b->slots[0]);
            s_refuse(self, why);
            s_send_fail(self, b->msgs[0], BLY_INFERENCE_ERROR_SHAPE, why);
        } else {
            s_note_step(self, 1, (uint64_t) (zclock_usecs() - start_us));
            s_done(self, b->msgs[0], b->hops[0], b->slots[0], self->acts, self->logits);
        }
    } else if (b->n > 1) {
        const char *why = NULL;
        int64_t start_us = zclock_usecs();
        int rc = s_batch_compute(self, b, &why);
        //  A session's step took as long as the pass: that is its speed.
        s_note_step(self, 1, (uint64_t) (zclock_usecs() - start_us));
        self->batches++;
        self->batched_steps += b->n;
        if (bly_ratelimit_allow(&self->batch_log, zclock_mono(), 1, 10000))
            bly_log_notice("shard: %zu decode steps in one pass (%" PRIu64 " such passes, %"
                           PRIu64 " steps so far)", b->n, self->batches, self->batched_steps);
        for (size_t i = 0; i < b->n; i++) {
            if (rc != 0) {
                bly_shard_core_drop(self->core, b->slots[i]);
                s_refuse(self, why);
                s_send_fail(self, b->msgs[i], BLY_INFERENCE_ERROR_SHAPE, why);
                continue;
            }
            s_done(self, b->msgs[i], b->hops[i], b->slots[i],
                   self->acts + i * self->hp->n_embd, self->logits + i * self->hp->n_vocab);
        }
    }
    for (size_t i = 0; i < b->n; i++)
        bly_inference_msg_destroy(&b->msgs[i]);
    b->n = 0;
}

//  A forward step from the queue: into the batch, or (a prompt chunk) run alone after the
//  batch so far. Takes the message.
static void
s_batch_add(s_shard_t *self, s_batch_t *b, bly_inference_msg_t **fwd_p)
{
    bly_inference_msg_t *fwd = *fwd_p;
    *fwd_p = NULL;
    const bly_inference_hop_t *hop = NULL;
    int slot = -1;
    if (bly_inference_msg_n_tokens(fwd) != 1) {
        s_batch_flush(self, b);
        s_forward(self, fwd);
        bly_inference_msg_destroy(&fwd);
        return;
    }
    //  A later step of a session in the batch waits for the batch (its position follows).
    bool again = false;
    for (size_t i = 0; i < b->n; i++) {
        size_t size_a = 0, size_b = 0;
        const uint8_t *ra = bly_inference_msg_reply_id(b->msgs[i], &size_a);
        const uint8_t *rb = bly_inference_msg_reply_id(fwd, &size_b);
        again = again || (bly_inference_msg_session(b->msgs[i]) == bly_inference_msg_session(fwd)
                          && size_a == size_b && memcmp(ra, rb, size_a) == 0);
    }
    if (again)
        s_batch_flush(self, b);
    if (!s_admit(self, fwd, &hop, &slot)) {
        bly_inference_msg_destroy(&fwd);
        return;
    }
    if (!s_batch_fits(self, b, fwd, hop, slot))
        s_batch_flush(self, b);
    b->msgs[b->n] = fwd;
    b->hops[b->n] = hop;
    b->slots[b->n] = slot;
    b->pos[b->n] = bly_inference_msg_pos(fwd);
    b->n++;
}

//  Close and ping; anything else is refused.
static void
s_other(s_shard_t *self, bly_inference_msg_t *msg)
{
    switch (bly_inference_msg_id(msg)) {
    case BLY_INFERENCE_MSG_CLOSE: {
        size_t size = 0;
        (void) bly_shard_core_close(self->core, bly_inference_msg_reply_id(msg, &size),
                                    bly_inference_msg_session(msg));
        break;
    }
    case BLY_INFERENCE_MSG_PING: {
        bly_inference_msg_t *pong = bly_inference_msg_new(BLY_INFERENCE_MSG_PONG);
        bly_inference_msg_set_routing_id(pong, bly_inference_msg_routing_id(msg));
        bly_inference_msg_set_nonce(pong, bly_inference_msg_nonce(msg));
        bly_inference_msg_set_sessions(pong, (uint32_t) bly_shard_core_sessions(self->core));
        bly_inference_msg_set_stage_first(pong, self->stage_first);
        bly_inference_msg_set_stage_last(pong, self->stage_last);
        if (bly_inference_msg_send(pong, self->server) != 0)
            bly_log_debug("shard: could not send a pong");
        bly_inference_msg_destroy(&pong);
        break;
    }
    default:
        s_refuse(self, "unexpected message type");
        s_reply_error(self, bly_inference_msg_routing_id(msg), BLY_INFERENCE_ERROR_BAD_MESSAGE,
                      "a shard takes forward, close and ping");
    }
}

//  Every message queued on the server now (up to 2 x BLY_SHARD_BATCH_MAX), in order; the
//  decode steps among them run as batches.
static void
s_handle_server(s_shard_t *self)
{
    s_batch_t batch = {.n = 0};
    for (size_t got = 0; got < 2 * BLY_SHARD_BATCH_MAX; got++) {
        if (got > 0 && !(zsock_events(self->server) & ZMQ_POLLIN))
            break;
        zframe_t *routing_id = NULL;
        char err[256] = "";
        bly_inference_msg_t *msg = bly_inference_msg_recv_from(self->server, &routing_id, err,
                                                               sizeof(err));
        if (!msg) {
            s_refuse(self, err);
            if (routing_id)
                s_reply_error(self, routing_id, BLY_INFERENCE_ERROR_BAD_MESSAGE, err);
            zframe_destroy(&routing_id);
            continue;
        }
        if (bly_inference_msg_id(msg) == BLY_INFERENCE_MSG_FORWARD) {
            s_batch_add(self, &batch, &msg);
            continue;
        }
        s_batch_flush(self, &batch);
        s_other(self, msg);
        bly_inference_msg_destroy(&msg);
    }
    s_batch_flush(self, &batch);
}

static void
s_handle_pipe(s_shard_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pipe);
    if (!msg) {
        self->terminated = true;
        return;
    }
    char *command = zmsg_popstr(msg);
    if (!command || streq(command, "$TERM"))
        self->terminated = true;
    else if (streq(command, "VERBOSE"))
        self->verbose = true;
    else if (streq(command, "STATS"))
        zsock_send(self->pipe, "888", self->steps, self->refused,
                   (uint64_t) bly_shard_core_sessions(self->core));
    else if (streq(command, "BATCHES"))
        zsock_send(self->pipe, "88", self->batches, self->batched_steps);
    free(command);
    zmsg_destroy(&msg);
}

void
bly_shard_actor(zsock_t *pipe, void *args)
{
    char err[512] = "";
    s_shard_t *self = s_shard_new(pipe, (const bly_actor_args_t *) args, err, sizeof(err));
    if (!self) {
        bly_actor_fail(pipe, "shard: %s", err);
        return;
    }
    bly_actor_ready(pipe);
    while (!self->terminated) {
        void *which = zpoller_wait(self->poller, 1000);
        if (which == self->pipe) {
            s_handle_pipe(self);
        } else if (which == self->server) {
            for (int i = 0; i < BLY_ACTOR_BATCH_MAX && !self->terminated; i++) {
                s_handle_server(self);
                if (!(zsock_events(self->server) & ZMQ_POLLIN))
                    break;
            }
        } else if (zpoller_terminated(self->poller)) {
            break;
        }
        uint64_t now = (uint64_t) zclock_mono();
        if (now >= self->expire_ms) {
            (void) bly_shard_core_expire(self->core, now);
            self->expire_ms = now + 1000;
        }
        if ((uint64_t) zclock_usecs() >= self->publish_us + S_PUBLISH_US)
            s_publish(self, (uint64_t) zclock_usecs());
    }
    s_shard_destroy(&self);
}
