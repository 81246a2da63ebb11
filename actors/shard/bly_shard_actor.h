/*  =========================================================================
    bly_shard_actor - a layer-shard: a stage range of a model, one KV cache
    per session, activations forwarded to the next hop

    Manifest (role = layer-shard): endpoint (CURVE ROUTER it serves), model
    (GGUF path), stages (FIRST-LAST: 0 embedding, 1..L layers, L+1 head),
    backend (cpu | vulkan), device (vulkan: index in `blyan devices`),
    sessions, kv_budget_mb, n_ctx, threads, idle_ms, hashes
    (a file of "TENSOR_NAME BLAKE2B_HEX" lines; every tensor of the served
    stages must be listed and match, or the shard refuses to start),
    fault_lie (TESTS ONLY, fault injection: shift every output by 1).

    Speed and load: at start the shard times a few one-token steps through
    its stages, then keeps a moving average of its one-token steps; load is
    the larger of the session slots held and the busy fraction. Each second
    it publishes both through bly_node_status for the member actor.

    The compute (weights once, one context per session slot) is
    bly_shard_engine's, on either backend.

    The node section's model/stages/endpoints keys are what the member
    actor registers with the bootstrap (testnet init writes both).

    Messages (inference protocol): forward, close, ping on the ROUTER;
    results and fails go to the forward's reply_to, activations to the next
    hop, over CURVE DEALER links kept per endpoint. Bad input gets an error
    reply (when decodable enough to have a sender), a counter and a
    rate-limited log line; other sessions are unaffected.
    Decode steps (one token) of different sessions queued together run as
    one pass (bly_shard_engine_run_layers_multi: on the CPU the weights are
    read once for all; each row bit-identical to its step alone), up to
    BLY_SHARD_BATCH_MAX.
    Pipe: "$TERM", "VERBOSE", "STATS" answered with "888": steps run,
    messages refused, sessions held; "BATCHES" with "88": passes of several
    decode steps, and the steps they held.
    ========================================================================= */

#ifndef BLY_SHARD_ACTOR_H_INCLUDED
#define BLY_SHARD_ACTOR_H_INCLUDED

#include "bly_actor.h"
#include "bly_model.h"

#include <czmq.h>

//  Entry point; `args` is a bly_actor_args_t.
void bly_shard_actor(zsock_t *pipe, void *args);

//  Which stage a tensor belongs to (0 embedding, 1..L layers, L+1 head),
//  or -1 for none. token_embd also belongs to the head when `tied`.
int bly_shard_tensor_stage(const char *name, uint32_t n_layer);

//  BLAKE2b-256 of a tensor's bytes, as 64 hex characters plus NUL.
void bly_shard_tensor_hash(const bly_gguf_tensor_t *tensor, char hex[65]);

//  Check every tensor of stages [first, last] against the "NAME HEX" lines
//  of `hashes_path`. Returns 0, or -1 with the first mismatch in `err`.
BLY_MUST_USE int bly_shard_verify_hashes(const bly_model_t *model, uint32_t first, uint32_t last,
                                         const char *hashes_path, char *err, size_t err_size);

#endif
