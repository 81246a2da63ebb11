/*  =========================================================================
    bly_router_actor - the router shell: sockets, tokenizer, the core's effects
    ========================================================================= */

#include "bly_router_actor.h"
#include "bly_bootstrap_msg.h"
#include "bly_inference_msg.h"
#include "bly_limits.h"
#include "shard/bly_links.h"
#include "bly_model.h"
#include "bly_router_core.h"
#include "bly_sock.h"
#include "bly_tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CLIENTS_MAX (2 * BLY_ROUTER_SESSIONS_MAX)
#define S_LINKS_MAX BLY_ROUTER_PATH_MAX
#define S_TEXT_MAX (256u * 1024u)

typedef struct {
    bool used;
    zframe_t *rid;                  //  ROUTER routing id.
    bool special;                   //  Print control tokens (last request's flag).
    uint64_t last_ms;
} s_client_t;

typedef struct {
    zsock_t *pipe;
    const bly_identity_t *identity;
    zsock_t *server;                //  Clients and shard replies.
    zsock_t *bootstrap;             //  Peer list.
    zpoller_t *poller;
    bool terminated;
    char advertise[BLY_ENDPOINT_MAX];
    char model_name[BLY_MODEL_NAME_MAX];   //  Node `model`: shards must match ("" any).
    bly_model_t *model;
    bly_tokenizer_t *tok;
    bly_router_core_t *core;
    s_client_t clients[S_CLIENTS_MAX];
    bly_links_t *links;             //  Shards (their pongs are polled).
    int32_t *ids;                   //  Prompt scratch (BLY_ROUTER_CTX_MAX).
    float *logits;                  //  Result scratch (n_vocab, aligned copy).
    char *text;                     //  Done text scratch.
    uint32_t n_vocab;
    uint64_t peers_ms, next_peers_ms, requests;
    size_t node_count;
    bly_ratelimit_t ratelimit;
} s_router_t;

static void
s_router_destroy(s_router_t **self_p)
{
    s_router_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < S_CLIENTS_MAX; i++)
        zframe_destroy(&self->clients[i].rid);
    bly_links_destroy(&self->links);
    zpoller_destroy(&self->poller);
    zsock_destroy(&self->server);
    zsock_destroy(&self->bootstrap);
    bly_router_core_destroy(&self->core);
    bly_tokenizer_destroy(&self->tok);
    bly_model_destroy(&self->model);
    free(self->ids);
    free(self->logits);
    free(self->text);
    free(self);
    *self_p = NULL;
}

//  Health and audit keys: fail_ms, audit_milli, audit_seed, audit_tol_ppm.
static void
s_audit_config(bly_router_config_t *c, const bly_manifest_t *m, int sec)
{
    c->fail_ms = (uint32_t) bly_manifest_get_int(m, sec, "fail_ms", c->fail_ms);
    c->audit_milli = (uint32_t) bly_manifest_get_int(m, sec, "audit_milli", 0);
    c->audit_seed = (uint64_t) bly_manifest_get_int(m, sec, "audit_seed", 1);
    c->audit_tol = (float) bly_manifest_get_int(m, sec, "audit_tol_ppm", 1000) / 1e6f;
}

//  Model, tokenizer and core.
static int
s_load(s_router_t *self, const bly_manifest_t *m, int sec, char *err, size_t err_size)
{
    self->model = bly_actor_load_model(m, sec, err, err_size);
    if (!self->model)
        return -1;
    self->tok = bly_tokenizer_new_gguf(bly_model_gguf(self->model), err, err_size);
    if (!self->tok)
        return -1;
    const bly_model_hparams_t *hp = bly_model_hparams(self->model);
    self->n_vocab = hp->n_vocab;
    bly_router_config_t c;
    bly_router_config_default(&c);
    c.n_stages = hp->n_layer + 2;
    c.n_vocab = hp->n_vocab;
    for (uint32_t id = 0; id < hp->n_vocab && c.n_eos < 8; id++)
        if (bly_tokenizer_is_eog(self->tok, (int32_t) id))
            c.eos_ids[c.n_eos++] = (int32_t) id;
    c.sessions_max = (size_t) bly_manifest_get_int(m, sec, "sessions", 64);
    c.queue_max = (size_t) bly_manifest_get_int(m, sec, "queue", 64);
    c.n_ctx = (uint32_t) bly_manifest_get_int(m, sec, "n_ctx", 1024);
    c.step_ms = (uint32_t) bly_manifest_get_int(m, sec, "step_ms", 1000);
    c.step_token_ms = (uint32_t) bly_manifest_get_int(m, sec, "step_token_ms", 50);
    c.probe_ms = (uint32_t) bly_manifest_get_int(m, sec, "probe_ms", 300);
    s_audit_config(&c, m, sec);
    c.session_base = (uint64_t) zclock_time() * 1000;
    self->core = bly_router_core_new(&c);
    if (!self->core) {
        snprintf(err, err_size, "router configuration out of range");
        return -1;
    }
    self->ids = calloc(BLY_ROUTER_CTX_MAX, sizeof(int32_t));
    self->logits = calloc(hp->n_vocab, sizeof(float));
    self->text = malloc(S_TEXT_MAX);
    bly_assert(self->ids && self->logits && self->text);
    return 0;
}

static int
s_sockets(s_router_t *self, const bly_manifest_t *m, int sec, char *err, size_t err_size)
{
    const char *model_name = bly_manifest_get(m, BLY_MANIFEST_NODE, "model");
    snprintf(self->model_name, sizeof(self->model_name), "%s", model_name ? model_name : "");
    const char *endpoint = bly_manifest_get(m, sec, "endpoint");
    const char *advertise = bly_manifest_get(m, sec, "advertise");
    snprintf(self->advertise, sizeof(self->advertise), "%s", advertise ? advertise : endpoint);
    self->server = bly_sock_server(ZMQ_ROUTER, self->identity, "open", endpoint, err, err_size);
    if (!self->server)
        return -1;
    self->poller = zpoller_new(self->pipe, self->server, NULL);
    bly_assert(self->poller);
    self->links = bly_links_new(self->identity, S_LINKS_MAX, self->poller);
    const char *boot = bly_manifest_get(m, BLY_MANIFEST_NODE, "bootstrap");
    const char *key_hex = bly_manifest_get(m, BLY_MANIFEST_NODE, "bootstrap_key");
    uint8_t key[32];
    char z85[BLY_IDENTITY_Z85_SIZE];
    if (!boot || !key_hex || bly_identity_id_from_hex(key_hex, key) != 0
        || bly_identity_curve_z85_from_id(key, z85) != 0) {
        snprintf(err, err_size, "the router needs the node's bootstrap and bootstrap_key");
        return -1;
    }
    self->bootstrap = bly_sock_client(ZMQ_DEALER, self->identity, z85, boot, err, err_size);
    if (!self->bootstrap)
        return -1;
    return zpoller_add(self->poller, self->bootstrap);
}

static s_router_t *
s_router_new(zsock_t *pipe, const bly_actor_args_t *args, char *err, size_t err_size)
{
    s_router_t *self = calloc(1, sizeof(*self));
    bly_assert(self);
    self->pipe = pipe;
    self->identity = args->identity;
    self->peers_ms = (uint64_t) bly_manifest_get_int(args->manifest, args->section, "peers_ms",
                                                     500);
    if (s_load(self, args->manifest, args->section, err, err_size) != 0
        || s_sockets(self, args->manifest, args->section, err, err_size) != 0) {
        s_router_destroy(&self);
        return NULL;
    }
    bly_log_notice("router: serving on %s (%u stages)",
                   bly_manifest_get(args->manifest, args->section, "endpoint"),
                   bly_model_hparams(self->model)->n_layer + 2);
    return self;
}

//  ---- Clients and links ----------------------------------------------------

//  The handle of a client by routing id, a new one when unknown (the
//  longest-silent client without a running request makes room when the
//  table is full), or -1 when every client has a request running.
static int64_t
s_client(s_router_t *self, zframe_t *rid)
{
    int64_t free_slot = -1, oldest = -1;
    for (size_t i = 0; i < S_CLIENTS_MAX; i++) {
        s_client_t *c = &self->clients[i];
        if (c->used && zframe_eq(c->rid, rid)) {
            c->last_ms = (uint64_t) zclock_mono();
            return (int64_t) i;
        }
        if (!c->used && free_slot < 0)
            free_slot = (int64_t) i;
        if (c->used && (oldest < 0 || c->last_ms < self->clients[oldest].last_ms)
            && !bly_router_core_client_active(self->core, i))
            oldest = (int64_t) i;
    }
    if (free_slot < 0 && oldest < 0)
        return -1;
    if (free_slot < 0) {
        zframe_destroy(&self->clients[oldest].rid);
        self->clients[oldest].used = false;
        free_slot = oldest;
    }
    s_client_t *c = &self->clients[free_slot];
    c->used = true;
    c->rid = zframe_dup(rid);
    c->last_ms = (uint64_t) zclock_mono();
    return free_slot;
}

//  ---- Effects --------------------------------------------------------------

static uint32_t
s_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static void
s_send_client(s_router_t *self, uint64_t client, bly_inference_msg_t *msg)
{
    if (client >= S_CLIENTS_MAX || !self->clients[client].used)
        return;
    bly_inference_msg_set_routing_id(msg, self->clients[client].rid);
    if (bly_inference_msg_send(msg, self->server) != 0)
        bly_log_debug("router: could not reach client %llu", (unsigned long long) client);
}

static int
s_fx_forward(s_router_t *self, const bly_router_fx_t *fx, bly_inference_msg_t *m)
{
    bly_inference_msg_set_session(m, fx->session);
    bly_inference_msg_set_epoch(m, fx->epoch);
    bly_inference_msg_set_step(m, fx->step);
    bly_inference_msg_set_pos(m, fx->pos);
    bly_inference_msg_set_n_tokens(m, fx->n_tokens);
    bly_inference_msg_set_logits(m, fx->logits);
    for (uint32_t i = 0; i < fx->n_tokens; i++)
        if (bly_inference_msg_tokens_append(m, (uint32_t) fx->tokens[i]) != 0)
            return -1;
    for (size_t h = 0; h < fx->hop_count; h++) {
        bly_inference_hop_t hop = {0};
        snprintf(hop.endpoint, sizeof(hop.endpoint), "%s", fx->hops[h].endpoint);
        memcpy(hop.node_id, fx->hops[h].node_id, 32);
        hop.stage_first = fx->hops[h].stage_first;
        hop.stage_last = fx->hops[h].stage_last;
        if (bly_inference_msg_hops_append(m, &hop) != 0)
            return -1;
    }
    if (bly_inference_msg_set_reply_to(m, self->advertise) != 0
        || bly_inference_msg_set_reply_id(m, bly_identity_public_key(self->identity), 32) != 0)
        return -1;
    zsock_t *link = bly_links_get(self->links, fx->hops[0].endpoint, fx->hops[0].node_id);
    return link ? bly_inference_msg_send(m, link) : -1;
}

static int
s_fx_done(s_router_t *self, const bly_router_fx_t *fx, bly_inference_msg_t *m)
{
    bool special = fx->client < S_CLIENTS_MAX && self->clients[fx->client].special;
    size_t len = 0;
    if (bly_tokenizer_decode(self->tok, fx->ids, fx->n_ids, special, self->text, S_TEXT_MAX,
                             &len)
        != 0)
        len = 0;
    if (bly_inference_msg_set_request_id(m, fx->request_id) != 0
        || bly_inference_msg_set_output(m, (const uint8_t *) self->text, len) != 0
        || bly_inference_msg_set_finish(m, fx->finish) != 0)
        return -1;
    for (size_t i = 0; i < fx->n_prompt; i++)
        if (bly_inference_msg_prompt_ids_append(m, (uint32_t) fx->prompt[i]) != 0)
            return -1;
    for (size_t i = 0; i < fx->n_ids; i++)
        if (bly_inference_msg_ids_append(m, (uint32_t) fx->ids[i]) != 0)
            return -1;
    for (size_t i = 0; i < fx->n_top; i++)
        if (bly_inference_msg_top_ids_append(m, (uint32_t) fx->top_ids[i]) != 0
            || bly_inference_msg_top_logits_bits_append(m, s_bits(fx->top_logits[i])) != 0)
            return -1;
    bly_inference_msg_set_prefill_us(m, fx->prefill_ms * 1000);
    bly_inference_msg_set_decode_us(m, fx->decode_ms * 1000);
    bly_inference_msg_set_failovers(m, fx->failovers);
    s_send_client(self, fx->client, m);
    return 0;
}

static void
s_fx_one(s_router_t *self, const bly_router_fx_t *fx)
{
    int kinds[] = {0, BLY_INFERENCE_MSG_FORWARD, BLY_INFERENCE_MSG_TOKEN, BLY_INFERENCE_MSG_DONE,
                   BLY_INFERENCE_MSG_ERROR, BLY_INFERENCE_MSG_PING, BLY_INFERENCE_MSG_CLOSE};
    bly_inference_msg_t *m = bly_inference_msg_new(kinds[fx->kind]);
    int rc = 0;
    if (fx->kind == BLY_ROUTER_FX_FORWARD) {
        rc = s_fx_forward(self, fx, m);
    } else if (fx->kind == BLY_ROUTER_FX_TOKEN) {
        size_t size = 0;
        bool special = fx->client < S_CLIENTS_MAX && self->clients[fx->client].special;
        const char *piece = bly_tokenizer_piece(self->tok, fx->token, special, &size);
        bly_inference_msg_set_index(m, fx->index);
        bly_inference_msg_set_token(m, (uint32_t) fx->token);
        rc = bly_inference_msg_set_request_id(m, fx->request_id) != 0
                     || bly_inference_msg_set_piece(m, (const uint8_t *) (piece ? piece : ""),
                                                    piece && size <= 256 ? size : 0)
                            != 0
                 ? -1 : 0;
        if (rc == 0)
            s_send_client(self, fx->client, m);
    } else if (fx->kind == BLY_ROUTER_FX_DONE) {
        rc = s_fx_done(self, fx, m);
    } else if (fx->kind == BLY_ROUTER_FX_ERROR) {
        bly_inference_msg_set_code(m, (uint16_t) fx->code);
        rc = bly_inference_msg_set_request_id(m, fx->request_id) != 0
                     || bly_inference_msg_set_reason(m, fx->reason) != 0
                 ? -1 : 0;
        if (rc == 0)
            s_send_client(self, fx->client, m);
    } else {
        zsock_t *link = bly_links_get(self->links, fx->hop->endpoint, fx->hop->node_id);
        bly_inference_msg_set_nonce(m, fx->nonce);
        bly_inference_msg_set_session(m, fx->session);
        rc = bly_inference_msg_set_reply_id(m, bly_identity_public_key(self->identity), 32);
        rc = rc == 0 && link ? bly_inference_msg_send(m, link) : -1;
    }
    if (rc != 0)
        bly_log_debug("router: an effect of kind %d could not be carried out", fx->kind);
    bly_inference_msg_destroy(&m);
}

static void
s_apply(s_router_t *self)
{
    for (size_t i = 0; i < bly_router_core_fx_count(self->core); i++)
        s_fx_one(self, bly_router_core_fx_at(self->core, i));
}

//  ---- Requests -------------------------------------------------------------

static void
s_refuse(s_router_t *self, zframe_t *rid, const char *request_id, int code, const char *reason)
{
    if (bly_ratelimit_allow(&self->ratelimit, zclock_mono(), 10, 1000))
        bly_log_warn("router: refused a message: %s", reason);
    bly_inference_msg_t *e = bly_inference_msg_new(BLY_INFERENCE_MSG_ERROR);
    bly_inference_msg_set_routing_id(e, rid);
    bly_inference_msg_set_code(e, (uint16_t) code);
    if (bly_inference_msg_set_request_id(e, request_id) != 0
        || bly_inference_msg_set_reason(e, reason) != 0
        || bly_inference_msg_send(e, self->server) != 0)
        bly_log_debug("router: could not send an error");
    bly_inference_msg_destroy(&e);
}

//  The request's prompt as ids in self->ids. Returns the count, or -1.
static long
s_tokenize(s_router_t *self, const bly_inference_msg_t *m)
{
    size_t n = bly_inference_msg_prompt_ids_count(m);
    if (n > 0) {
        for (size_t i = 0; i < n; i++)
            self->ids[i] = (int32_t) bly_inference_msg_prompt_ids_at(m, i);
        return (long) n;
    }
    const char *text = bly_inference_msg_prompt(m);
    unsigned flags = BLY_TOKENIZE_ADD_SPECIAL;
    size_t len = strlen(text), count = bly_inference_msg_contents_count(m);
    if (count > 0) {
        if (count != bly_inference_msg_roles_count(m))
            return -1;
        bly_chat_message_t msgs[64];
        for (size_t i = 0; i < count; i++)
            msgs[i] = (bly_chat_message_t) {bly_inference_msg_roles_at(m, i),
                                            bly_inference_msg_contents_at(m, i)};
        if (bly_chat_format_chatml(msgs, count, true, self->text, S_TEXT_MAX, &len) != 0)
            return -1;
        text = self->text;
        flags |= BLY_TOKENIZE_SPECIAL;
    } else if (bly_inference_msg_special(m)) {
        flags |= BLY_TOKENIZE_SPECIAL;
    }
    if (bly_tokenizer_encode(self->tok, text, len, flags, self->ids, BLY_ROUTER_CTX_MAX, &n) != 0)
        return -1;
    return (long) n;
}

static float
s_float(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static void
s_request(s_router_t *self, bly_inference_msg_t *m, zframe_t *rid)
{
    const char *request_id = bly_inference_msg_request_id(m);
    long n = s_tokenize(self, m);
    if (n <= 0) {
        s_refuse(self, rid, request_id, BLY_INFERENCE_ERROR_LIMIT,
                 "the prompt is empty, too long, or the chat messages do not pair up");
        return;
    }
    int64_t client = s_client(self, rid);
    if (client < 0) {
        s_refuse(self, rid, request_id, BLY_INFERENCE_ERROR_BUSY, "busy: too many clients");
        return;
    }
    self->clients[client].special = bly_inference_msg_special(m);
    bly_router_request_t r = {(uint64_t) client, request_id, self->ids, (size_t) n,
                              bly_inference_msg_max_tokens(m), {.temp = 0},
                              bly_inference_msg_stream(m), bly_inference_msg_ignore_eos(m),
                              bly_inference_msg_deadline_ms(m)};
    r.sampling.temp = s_float(bly_inference_msg_temp_bits(m));
    r.sampling.top_k = bly_inference_msg_top_k(m);
    r.sampling.top_p = s_float(bly_inference_msg_top_p_bits(m));
    r.sampling.min_p = s_float(bly_inference_msg_min_p_bits(m));
    r.sampling.repeat_penalty = s_float(bly_inference_msg_repeat_penalty_bits(m));
    r.sampling.repeat_last_n = bly_inference_msg_repeat_last_n(m);
    r.sampling.seed = bly_inference_msg_seed(m);
    self->requests++;
    bly_router_core_request(self->core, &r, (uint64_t) zclock_mono());
    s_apply(self);
}

//  The hop of the session's path whose node sent the message (its CURVE
//  key), looking at hop `index` only or at every hop when index is
//  SIZE_MAX; NULL when none.
static const bly_router_hop_t *
s_sender_hop(s_router_t *self, const bly_inference_msg_t *m, size_t index)
{
    size_t count = 0;
    const bly_router_hop_t *path = bly_router_core_path(self->core, bly_inference_msg_session(m),
                                                        &count);
    const char *sender = bly_inference_msg_peer_key(m);
    for (size_t h = 0; path && sender && h < count; h++) {
        char z85[BLY_IDENTITY_Z85_SIZE];
        if ((index == SIZE_MAX || index == h)
            && bly_identity_curve_z85_from_id(path[h].node_id, z85) == 0
            && strcmp(z85, sender) == 0)
            return &path[h];
    }
    return NULL;
}

static bool
s_from_path(s_router_t *self, const bly_inference_msg_t *m, size_t index)
{
    return s_sender_hop(self, m, index) != NULL;
}

static void
s_result(s_router_t *self, bly_inference_msg_t *m)
{
    size_t count = 0;
    (void) bly_router_core_path(self->core, bly_inference_msg_session(m), &count);
    if (count == 0 || !s_from_path(self, m, count - 1)) {
        if (bly_ratelimit_allow(&self->ratelimit, zclock_mono(), 10, 1000))
            bly_log_warn("router: a result for session %llu not from its last hop; ignored",
                         (unsigned long long) bly_inference_msg_session(m));
        return;
    }
    size_t size = 0;
    const uint8_t *data = bly_inference_msg_logits_data(m, &size);
    size_t n = size / sizeof(float);
    if (size % sizeof(float) != 0 || n > self->n_vocab)
        n = 0, size = 0;
    if (size)
        memcpy(self->logits, data, size);
    bly_router_core_result(self->core, bly_inference_msg_session(m), bly_inference_msg_epoch(m),
                           bly_inference_msg_step(m), size ? self->logits : NULL, n,
                           (uint64_t) zclock_mono());
    s_apply(self);
}

static void
s_handle_server(s_router_t *self)
{
    zframe_t *rid = NULL;
    char err[256] = "";
    bly_inference_msg_t *m = bly_inference_msg_recv_from(self->server, &rid, err, sizeof(err));
    if (!m) {
        if (rid)
            s_refuse(self, rid, "", BLY_INFERENCE_ERROR_BAD_MESSAGE, err);
        zframe_destroy(&rid);
        return;
    }
    uint64_t now = (uint64_t) zclock_mono();
    switch (bly_inference_msg_id(m)) {
    case BLY_INFERENCE_MSG_REQUEST:
        s_request(self, m, bly_inference_msg_routing_id(m));
        break;
    case BLY_INFERENCE_MSG_CANCEL: {
        int64_t client = s_client(self, bly_inference_msg_routing_id(m));
        if (client >= 0) {
            bly_router_core_cancel(self->core, (uint64_t) client,
                                   bly_inference_msg_request_id(m), now);
            s_apply(self);
        }
        break;
    }
    case BLY_INFERENCE_MSG_RESULT:
        s_result(self, m);
        break;
    case BLY_INFERENCE_MSG_FAIL: {
        const bly_router_hop_t *hop = s_sender_hop(self, m, SIZE_MAX);
        if (!hop)
            break;
        uint8_t node_id[32];
        memcpy(node_id, hop->node_id, 32);
        bly_log_info("router: session %llu: a shard failed the step: %s",
                     (unsigned long long) bly_inference_msg_session(m), bly_inference_msg_reason(m));
        bly_router_core_fail(self->core, bly_inference_msg_session(m), bly_inference_msg_epoch(m),
                             bly_inference_msg_step(m), bly_inference_msg_code(m), node_id, now);
        s_apply(self);
        break;
    }
    default:
        s_refuse(self, bly_inference_msg_routing_id(m), bly_inference_msg_request_id(m),
                 BLY_INFERENCE_ERROR_BAD_MESSAGE, "a router takes request, cancel, result, fail");
    }
    bly_inference_msg_destroy(&m);
}

//  A pong or an error on a shard link.
static void
s_handle_link(s_router_t *self, zsock_t *sock)
{
    char err[256];
    bly_inference_msg_t *m = bly_inference_msg_recv(sock, err, sizeof(err));
    if (!m)
        return;
    if (bly_inference_msg_id(m) == BLY_INFERENCE_MSG_PONG) {
        bly_router_core_pong(self->core, bly_inference_msg_nonce(m), (uint64_t) zclock_mono());
        s_apply(self);
    } else if (bly_inference_msg_id(m) == BLY_INFERENCE_MSG_ERROR) {
        bly_log_info("router: a shard refused a message: %s", bly_inference_msg_reason(m));
    }
    bly_inference_msg_destroy(&m);
}

//  ---- Peers ----------------------------------------------------------------

static void
s_handle_bootstrap(s_router_t *self)
{
    char err[256];
    bly_bootstrap_msg_t *m = bly_bootstrap_msg_recv(self->bootstrap, err, sizeof(err));
    if (!m)
        return;
    if (bly_bootstrap_msg_id(m) == BLY_BOOTSTRAP_MSG_PEERS) {
        static bly_router_node_t nodes[BLY_ROUTER_NODES_MAX];
        size_t count = 0;
        for (size_t i = 0; i < bly_bootstrap_msg_peers_count(m) && count < BLY_ROUTER_NODES_MAX;
             i++) {
            const bly_bootstrap_peer_t *p = bly_bootstrap_msg_peers_at(m, i);
            if (p->endpoints_count == 0 || p->stage_last < p->stage_first
                || strlen(p->endpoints[0]) >= BLY_ENDPOINT_MAX
                || (self->model_name[0] && strcmp(p->model, self->model_name) != 0))
                continue;
            bly_router_node_t *n = &nodes[count++];
            memset(n, 0, sizeof(*n));
            memcpy(n->node_id, p->node_id, 32);
            memcpy(n->endpoint, p->endpoints[0], strlen(p->endpoints[0]) + 1);
            n->stage_first = p->stage_first;
            n->stage_last = p->stage_last;
            n->speed_milli = p->speed_milli;
            n->load_milli = p->load_milli;
        }
        if (count != self->node_count)
            bly_log_notice("router: %zu shards known", count);
        self->node_count = count;
        bly_router_core_set_nodes(self->core, nodes, count, (uint64_t) zclock_mono());
        s_apply(self);
    }
    bly_bootstrap_msg_destroy(&m);
}

static void
s_ask_peers(s_router_t *self)
{
    bly_bootstrap_msg_t *q = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_PEERS_REQUEST);
    if (bly_bootstrap_msg_set_role(q, "layer-shard") != 0
        || bly_bootstrap_msg_send(q, self->bootstrap) != 0)
        bly_log_debug("router: could not ask the bootstrap for peers");
    bly_bootstrap_msg_destroy(&q);
}

//  Pipe "AUDITS": "8888888" audits, passed, mismatched, inconclusive,
//  skipped, suspects, failed steps.
static void
s_send_audits(s_router_t *self)
{
    bly_router_stats_t st;
    bly_router_core_stats(self->core, &st);
    zsock_send(self->pipe, "8888888", st.audits, st.audits_passed, st.audits_mismatched,
               st.audits_inconclusive, st.audits_skipped, st.suspects, st.fails);
}

static void
s_handle_pipe(s_router_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pipe);
    char *command = msg ? zmsg_popstr(msg) : NULL;
    if (!command || streq(command, "$TERM"))
        self->terminated = true;
    else if (streq(command, "STATS"))
        zsock_send(self->pipe, "888", self->requests,
                   (uint64_t) bly_router_core_sessions(self->core), (uint64_t) self->node_count);
    else if (streq(command, "AUDITS"))
        s_send_audits(self);
    free(command);
    zmsg_destroy(&msg);
}

static void
s_tick(s_router_t *self)
{
    uint64_t now = (uint64_t) zclock_mono();
    if (now >= self->next_peers_ms) {
        s_ask_peers(self);
        self->next_peers_ms = now + self->peers_ms;
    }
    if (now >= bly_router_core_next_ms(self->core)) {
        bly_router_core_tick(self->core, now);
        s_apply(self);
    }
}

static int
s_wait_ms(const s_router_t *self)
{
    uint64_t now = (uint64_t) zclock_mono();
    uint64_t next = bly_router_core_next_ms(self->core);
    if (self->next_peers_ms < next)
        next = self->next_peers_ms;
    return next <= now ? 0 : (int) (next - now > 1000 ? 1000 : next - now);
}

void
bly_router_actor(zsock_t *pipe, void *args)
{
    char err[512] = "";
    s_router_t *self = s_router_new(pipe, (const bly_actor_args_t *) args, err, sizeof(err));
    if (!self) {
        bly_actor_fail(pipe, "router: %s", err);
        return;
    }
    bly_actor_ready(pipe);
    while (!self->terminated) {
        void *which = zpoller_wait(self->poller, s_wait_ms(self));
        if (which == self->pipe) {
            s_handle_pipe(self);
        } else if (which == self->server) {
            for (int i = 0; i < BLY_ACTOR_BATCH_MAX; i++) {
                s_handle_server(self);
                if (!(zsock_events(self->server) & ZMQ_POLLIN))
                    break;
            }
        } else if (which == self->bootstrap) {
            s_handle_bootstrap(self);
        } else if (which) {
            s_handle_link(self, (zsock_t *) which);
        } else if (zpoller_terminated(self->poller)) {
            break;
        }
        s_tick(self);
    }
    s_router_destroy(&self);
}
