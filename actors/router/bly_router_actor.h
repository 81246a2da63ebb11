/*  =========================================================================
    bly_router_actor - the router: client requests in, tokens out, a
    pipeline of layer-shards in between

    Manifest (role = router): endpoint (CURVE ROUTER for clients and shard
    replies), advertise (the endpoint shards reply to; default endpoint),
    model (GGUF: tokenizer, stage count, vocabulary), sessions, queue,
    n_ctx, step_ms, step_token_ms, probe_ms, peers_ms, fail_ms, audit_milli,
    audit_seed, audit_tol_ppm. The node section's bootstrap and
    bootstrap_key say where the shard list comes from.

    Clients send request and cancel (inference protocol) and get token
    (when streaming), done or error. The pure core (bly_router_core) plans,
    samples and fails over; this shell tokenizes, owns the sockets and
    carries out the core's effects.
    Pipe: "$TERM", "VERBOSE", "STATS" answered with "888": requests,
    sessions held, shards known; "AUDITS" answered with "8888888": audits,
    passed, mismatched, inconclusive, skipped, suspects, failed steps.
    ========================================================================= */

#ifndef BLY_ROUTER_ACTOR_H_INCLUDED
#define BLY_ROUTER_ACTOR_H_INCLUDED

#include "bly_actor.h"

#include <czmq.h>

//  Entry point; `args` is a bly_actor_args_t.
void bly_router_actor(zsock_t *pipe, void *args);

#endif
