/*  =========================================================================
    bly_member_actor - joins the node to the mesh through its bootstrap

    Started by blyan-node whenever the node section names a bootstrap. A
    CURVE DEALER to `bootstrap` (server key derived from `bootstrap_key`)
    sends the node's signed register (name, advertised endpoints, the roles
    of the manifest's actors, model, stages, device, speed), then signed
    heartbeats (with the load). Speed and load are what a shard of the node
    published through bly_node_status (else the manifest's speed_milli and
    load 0); a speed that moved by more than a quarter is sent in a new
    register, since heartbeats carry none; registers again when the bootstrap forgets the node; sends
    a signed leave when stopped. The timing lives in bly_member_core.

    Pipe: "$TERM", "VERBOSE", and "STATS", answered with the picture "888":
    registered (0 or 1), registrations, replies refused or unexpected.
    ========================================================================= */

#ifndef BLY_MEMBER_ACTOR_H_INCLUDED
#define BLY_MEMBER_ACTOR_H_INCLUDED

#include "bly_actor.h"

#include <czmq.h>

//  Entry point; `args` is a bly_actor_args_t (section BLY_MANIFEST_NODE).
void bly_member_actor(zsock_t *pipe, void *args);

#endif
