/*  =========================================================================
    bly_shard_actor - a layer-shard: a stage range of a model, one KV cache
    per session, activations forwarded to the next hop
    ========================================================================= */

#include "bly_shard_actor.h"
#include "bly_inference_msg.h"
#include "bly_limits.h"
#include "bly_links.h"
#include "bly_shard_core.h"
#include "bly_shard_engine.h"
#include "bly_sock.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
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
    float *logits;                  //  n_vocab.
    bly_links_t *links;             //  Next hops and routers.
    uint64_t steps, refused;
    bly_ratelimit_t ratelimit;
    uint64_t expire_ms;
} s_shard_t;

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
    char path[BLY_PATH_MAX];
    if (bly_manifest_get_path(m, sec, "model", path, sizeof(path)) != 0) {
        snprintf(err, err_size, "model path missing or too long");
        return -1;
    }
    self->model = bly_model_load(path, err, err_size);
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
    self->acts = calloc((size_t) self->n_batch * self->hp->n_embd, sizeof(float));
    self->logits = calloc(self->hp->n_vocab, sizeof(float));
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
    bly_log_notice("shard: serving stages %u-%u of %u on %s, %zu sessions on %s",
                   self->stage_first, self->stage_last, self->hp->n_layer + 2, endpoint,
                   self->sessions, bly_shard_engine_device(self->engine));
    return self;
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
        const char **why)
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
        if (bly_model_embed(self->model, ids, n, self->acts) != 0) {
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
    memcpy(self->acts, acts, size);
    return 0;
}

//  Run the hop's stages on slot `slot`. Returns 0 or -1 with *why.
static int
s_compute(s_shard_t *self, const bly_inference_msg_t *fwd, const bly_inference_hop_t *hop,
          int slot, const char **why)
{
    uint32_t n = bly_inference_msg_n_tokens(fwd), pos = bly_inference_msg_pos(fwd);
    if (s_input(self, fwd, hop->stage_first, n, why) != 0)
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
s_pass_on(s_shard_t *self, bly_inference_msg_t *fwd, const bly_inference_hop_t *hop)
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
            || bly_inference_msg_set_acts(fwd, (const uint8_t *) self->acts,
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
    if (bly_inference_msg_set_logits_data(r, (const uint8_t *) self->logits, bytes) != 0
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

static void
s_forward(s_shard_t *self, bly_inference_msg_t *fwd)
{
    size_t index = bly_inference_msg_hop_index(fwd);
    if (index >= bly_inference_msg_hops_count(fwd)) {
        s_refuse(self, "hop_index past the path");
        s_reply_error(self, bly_inference_msg_routing_id(fwd), BLY_INFERENCE_ERROR_SHAPE,
                      "hop_index past the path");
        return;
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
        return;
    if (slot < 0) {
        s_refuse(self, s_core_reason(slot));
        s_send_fail(self, fwd, -slot, s_core_reason(slot));
        return;
    }
    const char *why = NULL;
    if (s_compute(self, fwd, hop, slot, &why) != 0) {
        bly_shard_core_drop(self->core, slot);
        s_refuse(self, why);
        s_send_fail(self, fwd, BLY_INFERENCE_ERROR_SHAPE, why);
        return;
    }
    bly_shard_core_ran(self->core, slot, st.n_tokens);
    self->steps++;
    s_pass_on(self, fwd, hop);
}

static void
s_handle_server(s_shard_t *self)
{
    zframe_t *routing_id = NULL;
    char err[256] = "";
    bly_inference_msg_t *msg = bly_inference_msg_recv_from(self->server, &routing_id, err,
                                                           sizeof(err));
    if (!msg) {
        s_refuse(self, err);
        if (routing_id)
            s_reply_error(self, routing_id, BLY_INFERENCE_ERROR_BAD_MESSAGE, err);
        zframe_destroy(&routing_id);
        return;
    }
    switch (bly_inference_msg_id(msg)) {
    case BLY_INFERENCE_MSG_FORWARD:
        s_forward(self, msg);
        break;
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
    bly_inference_msg_destroy(&msg);
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
    }
    s_shard_destroy(&self);
}
