/*  =========================================================================
    bly_bootstrap_actor - the bootstrap's zactor shell

    A ROUTER socket on the manifest's `endpoint`, CURVE with the node's
    identity, ZAP domain "open" (any key may connect; each message carries
    its sender's key, which the core checks against the node id). Reads at
    most BLY_ACTOR_BATCH_MAX messages per wake-up, feeds them to
    bly_bootstrap_core with the wall clock, sends the replies, and expires
    silent nodes. Undecodable frames get an error reply when their routing
    id is known, otherwise a counted drop; logs are rate limited.

    Pipe: "$TERM", "VERBOSE", and "STATS", answered with the picture "8888":
    registered peers, requests handled, requests refused, frames dropped.
    ========================================================================= */

#ifndef BLY_BOOTSTRAP_ACTOR_H_INCLUDED
#define BLY_BOOTSTRAP_ACTOR_H_INCLUDED

#include "bly_actor.h"

#include <czmq.h>

//  Entry point; `args` is a bly_actor_args_t naming a `role = bootstrap`
//  section (keys: endpoint, heartbeat_ms, expiry_ms, max_peers,
//  timestamp_window_ms).
void bly_bootstrap_actor(zsock_t *pipe, void *args);

#endif
