/*  =========================================================================
    bly_router_core - the router's sessions as a pure state machine

    No sockets, no clock, no threads: the shell feeds requests, shard
    replies, the peer list and the time, and carries out the effects the
    core queues (forward a step, stream a token, finish, refuse, ping,
    close). The same core runs in the deterministic simulator.

    A session keeps its whole token history (prompt + generated) and its
    sampler. A step feeds the tokens from the session's KV position: the
    prompt in chunks of at most chunk_max tokens, then one token per step.
    The last hop returns the logits of the last token; the core samples.

    Failover: when a step fails (a shard's fail reply) or stalls (its
    deadline passes), the core pings every hop of the path and waits
    probe_ms; hops that do not answer are marked dead for dead_ms. It then
    plans a new path (a new epoch), prefills the whole history again from
    position 0 and continues: the sampler state is untouched, so the output
    equals a run without the failure. After failovers_max re-plans, or when
    no live node covers a stage, the client gets an error. A shard that
    answers busy (no free KV slot) is not a failure: the session releases
    its path and starts over after a pause, until its deadline.

    Health: a node that failed a step (a fail reply naming it) is avoided
    for fail_ms while another node covers its stages; one that missed a
    probe is not used for dead_ms; a suspect is never used again.

    Audits (audit_milli of the steps that end in logits, chosen by a hash of
    audit_seed, the session and its length): before sampling, the core holds
    the logits and replays the session's history through an audit path,
    the same path with every hop that another node can serve handed to that
    node; the replay's last logits must agree with the held ones within
    audit_tol x max(1, max |logit|). Agree: sample the held logits (the
    replay session stays open, so the next audit feeds only new tokens).
    Disagree: replays with one hop at a time given back to the primary's
    node find the disputed hop; a third node on it decides by majority; the
    node in the minority becomes a suspect (with no third node, both do).
    When the primary's node is a suspect, the session re-plans without it
    and re-prefills (like a failover, the sampler untouched), so the output
    is what an honest path gives. When no replay reproduces the held logits,
    nobody is accused and the session re-plans around its nodes. An audit
    that fails or stalls is inconclusive: the held logits are sampled.
    docs/INFERENCE.md, "Audits", has the reasoning and the limits.

    Effects (and every pointer in them) are valid until the next call into
    the core. Finished sessions are reclaimed at the start of the next call.
    ========================================================================= */

#ifndef BLY_ROUTER_CORE_H_INCLUDED
#define BLY_ROUTER_CORE_H_INCLUDED

#include "bly_limits.h"
#include "bly_log.h"
#include "bly_sampler.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Error codes (equal to the inference protocol's error_* constants).
#define BLY_ROUTER_ERR_BUSY 2
#define BLY_ROUTER_ERR_LIMIT 3
#define BLY_ROUTER_ERR_NO_ROUTE 4
#define BLY_ROUTER_ERR_DEADLINE 5
#define BLY_ROUTER_ERR_CANCELLED 6
#define BLY_ROUTER_ERR_FAILED 11
#define BLY_ROUTER_ERR_DUPLICATE 12

//  A shard the bootstrap knows: plain data.
typedef struct {
    uint8_t node_id[32];                //  Ed25519 id.
    char endpoint[BLY_ENDPOINT_MAX];    //  Where it serves forward/ping.
    uint32_t stage_first;               //  Stages served, inclusive.
    uint32_t stage_last;
    uint32_t speed_milli;               //  Tokens/s x 1000 it announced.
    uint32_t load_milli;                //  Load it announced.
} bly_router_node_t;

//  One hop of a path: plain data.
typedef struct {
    uint8_t node_id[32];
    char endpoint[BLY_ENDPOINT_MAX];
    uint32_t stage_first;
    uint32_t stage_last;
} bly_router_hop_t;

typedef struct {
    uint32_t n_stages;          //  Layers + 2 (embedding, layers, head).
    uint32_t n_vocab;           //  Logits per result.
    int32_t eos_ids[8];         //  End-of-generation ids (n_eos of them).
    size_t n_eos;
    size_t sessions_max;        //  Running sessions at most (<= BLY_ROUTER_SESSIONS_MAX).
    size_t queue_max;           //  Requests waiting for a session slot.
    uint32_t n_ctx;             //  Tokens one session may hold (prompt + generated).
    uint32_t chunk_max;         //  Prompt tokens per step (<= BLY_MODEL_BATCH_MAX).
    uint32_t step_ms;           //  A step stalls after step_ms + step_token_ms per token.
    uint32_t step_token_ms;
    uint32_t probe_ms;          //  Wait for pongs after a failure.
    uint32_t dead_ms;           //  A hop that missed a probe is avoided this long.
    uint32_t failovers_max;     //  Re-plans per session before giving up.
    uint32_t deadline_ms;       //  Default request deadline.
    uint32_t busy_ms;           //  A shard answered busy: start over after 1-4 x this.
    uint64_t session_base;      //  First session id (the shell uses the clock, so ids
                                //  stay unique across router restarts).
    uint32_t fail_ms;           //  A node that failed a step is avoided this long.
    uint32_t audit_milli;       //  Logits steps audited, per mille (0: no audits).
    uint64_t audit_seed;        //  Which steps and hops are audited.
    float audit_tol;            //  Relative tolerance of an audit's comparison.
} bly_router_config_t;

//  Counters since the core started.
typedef struct {
    uint64_t fails;             //  Fail replies for steps (busy excluded).
    uint64_t audits;            //  Audits started.
    uint64_t audits_passed;     //  The auditor agreed.
    uint64_t audits_mismatched; //  The auditor disagreed.
    uint64_t audits_inconclusive; //  An audit step failed or stalled.
    uint64_t audits_skipped;    //  Due, but no other node or no free audit slot.
    uint64_t suspects;          //  Nodes marked suspect.
} bly_router_stats_t;

//  Fill a config with the defaults (n_stages, n_vocab and eos ids stay 0).
void bly_router_config_default(bly_router_config_t *config);

//  A client request, already tokenized (borrowed by the call).
typedef struct {
    uint64_t client;            //  The shell's handle of the client connection.
    const char *request_id;     //  Client-chosen id (<= BLY_ROUTER_REQUEST_ID_MAX bytes).
    const int32_t *prompt;      //  Prompt ids.
    size_t n_prompt;
    uint32_t max_tokens;        //  Tokens to generate.
    bly_sampler_params_t sampling;
    bool stream;                //  Stream each token.
    bool ignore_eos;            //  Do not stop at end-of-generation ids.
    uint32_t deadline_ms;       //  0: the config's default.
} bly_router_request_t;

typedef enum {
    BLY_ROUTER_FX_FORWARD = 1,  //  Send forward to hops[0].
    BLY_ROUTER_FX_TOKEN,        //  Stream one token to the client.
    BLY_ROUTER_FX_DONE,         //  The request finished.
    BLY_ROUTER_FX_ERROR,        //  The request failed or was refused.
    BLY_ROUTER_FX_PING,         //  Ping hop (endpoint, node_id) with nonce.
    BLY_ROUTER_FX_CLOSE,        //  Tell a hop to drop the session.
} bly_router_fx_kind_t;

//  One effect. Pointers borrow core memory until the next core call.
typedef struct {
    bly_router_fx_kind_t kind;
    uint64_t client;                    //  TOKEN, DONE, ERROR.
    const char *request_id;
    uint64_t session;                   //  FORWARD, CLOSE.
    uint32_t epoch, step, pos;          //  FORWARD.
    const int32_t *tokens;              //  FORWARD: n_tokens ids.
    uint32_t n_tokens;
    bool logits;                        //  FORWARD: the last hop returns logits.
    bool audit;                         //  FORWARD: a replay of an audit (for logs
                                        //  and simulations; on the wire it looks
                                        //  like any session).
    const bly_router_hop_t *hops;       //  FORWARD: the path.
    size_t hop_count;
    const bly_router_hop_t *hop;        //  PING, CLOSE: the target.
    uint64_t nonce;                     //  PING.
    uint32_t index;                     //  TOKEN: position among generated tokens.
    int32_t token;                      //  TOKEN.
    const int32_t *prompt;              //  DONE: prompt ids.
    size_t n_prompt;
    const int32_t *ids;                 //  DONE: generated ids.
    size_t n_ids;
    const int32_t *top_ids;             //  DONE: top logits at the last prompt position.
    const float *top_logits;
    size_t n_top;
    const char *finish;                 //  DONE: "stop" or "length".
    uint64_t prefill_ms, decode_ms;     //  DONE: virtual-clock timings.
    uint32_t failovers;                 //  DONE.
    int code;                           //  ERROR: BLY_ROUTER_ERR_*.
    const char *reason;                 //  ERROR.
} bly_router_fx_t;

typedef struct bly_router_core_t bly_router_core_t;

//  NULL when the config is out of range (logged).
BLY_MUST_USE bly_router_core_t *bly_router_core_new(const bly_router_config_t *config);
void bly_router_core_destroy(bly_router_core_t **self_p);

//  Replace the known shards (from the bootstrap's peer list).
void bly_router_core_set_nodes(bly_router_core_t *self, const bly_router_node_t *nodes,
                               size_t count, uint64_t now_ms);

//  A new request. Starts it, queues it, or answers ERROR (busy, limit,
//  duplicate) through the effects.
void bly_router_core_request(bly_router_core_t *self, const bly_router_request_t *request,
                             uint64_t now_ms);

//  The client cancels; unknown ids are ignored.
void bly_router_core_cancel(bly_router_core_t *self, uint64_t client, const char *request_id,
                            uint64_t now_ms);

//  The client connection is gone: drop its sessions silently.
void bly_router_core_client_gone(bly_router_core_t *self, uint64_t client, uint64_t now_ms);

//  A result from a last hop. `logits` holds n_vocab floats when the step
//  asked for them (else NULL, n 0). Stale or duplicate results are ignored.
void bly_router_core_result(bly_router_core_t *self, uint64_t session, uint32_t epoch,
                            uint32_t step, const float *logits, size_t n, uint64_t now_ms);

//  A fail from a hop (`node_id`, the sender, or NULL when unknown). Stale
//  ones are ignored; a non-busy fail makes the node avoided for fail_ms.
void bly_router_core_fail(bly_router_core_t *self, uint64_t session, uint32_t epoch,
                          uint32_t step, int code, const uint8_t *node_id, uint64_t now_ms);

//  A pong.
void bly_router_core_pong(bly_router_core_t *self, uint64_t nonce, uint64_t now_ms);

//  The current path of a running session or of a running audit (session
//  ids of audits are distinct), borrowed until the next call, or NULL: the
//  shell checks that results come from the last hop and fails from a hop
//  of the path.
const bly_router_hop_t *bly_router_core_path(const bly_router_core_t *self, uint64_t session,
                                             size_t *hop_count);

//  Timers: stalls, probes, deadlines.
void bly_router_core_tick(bly_router_core_t *self, uint64_t now_ms);

//  The earliest time tick has work (UINT64_MAX when none).
uint64_t bly_router_core_next_ms(const bly_router_core_t *self);

//  The effects queued by the last call, in order.
size_t bly_router_core_fx_count(const bly_router_core_t *self);
const bly_router_fx_t *bly_router_core_fx_at(const bly_router_core_t *self, size_t index);

//  True when the client has a request running or queued.
bool bly_router_core_client_active(const bly_router_core_t *self, uint64_t client);

//  Counters, and whether an audit marked the node as suspect.
void bly_router_core_stats(const bly_router_core_t *self, bly_router_stats_t *stats);
bool bly_router_core_suspect(const bly_router_core_t *self, const uint8_t *node_id);

//  Sessions holding a slot (running or finishing) and requests queued.
size_t bly_router_core_sessions(const bly_router_core_t *self);
size_t bly_router_core_queued(const bly_router_core_t *self);

#endif
