/*  =========================================================================
    bly_actor - the actor shell conventions over CZMQ zactor

    Every Blyan actor is a zactor whose entry point receives a
    bly_actor_args_t. After it sets up (binds, allocates) it calls
    bly_actor_ready(), or bly_actor_fail() with a reason; bly_actor_start()
    waits for that report, so a node knows each actor is serving before it
    starts the next. The pipe accepts "$TERM" (stop) and "VERBOSE".
    ========================================================================= */

#ifndef BLY_ACTOR_H_INCLUDED
#define BLY_ACTOR_H_INCLUDED

#include "bly_identity.h"
#include "bly_log.h"
#include "bly_manifest.h"
#include "bly_model.h"

#include <czmq.h>

typedef struct {
    const char *name;                 //  Actor name for logs ("bootstrap").
    const bly_manifest_t *manifest;   //  The node's manifest (borrowed).
    int section;                      //  Its actor section, or BLY_MANIFEST_NODE.
    const bly_identity_t *identity;   //  The node identity (borrowed).
    //  The node's ZAP handler (borrowed, may be NULL). An actor may add
    //  allow-listed domains with it ONLY before bly_actor_ready: actors start
    //  one at a time, so no two threads use its pipe at once.
    zactor_t *zap;
} bly_actor_args_t;

//  Report a successful start: unblocks zactor_new and bly_actor_start.
void bly_actor_ready(zsock_t *pipe);

//  Report a failed start with a reason, then wait for "$TERM". The actor
//  returns after this call.
void bly_actor_fail(zsock_t *pipe, const char *format, ...) BLY_PRINTF(2, 3);

//  Start an actor and wait (BLY_ACTOR_START_TIMEOUT_MS at most) for its
//  report. NULL with the reason in `err` when it failed.
zactor_t *bly_actor_start(zactor_fn *entry, bly_actor_args_t *args, char *err, size_t err_size);

//  The memory-mapped model named by the section's `model` key (router, layer-shard).
//  NULL with the reason in `err` when the key is missing or too long or the file does not
//  load.
bly_model_t *bly_actor_load_model(const bly_manifest_t *m, int section, char *err,
                                  size_t err_size);

//  Read one pipe command. Returns true when the actor must stop ("$TERM" or
//  a broken pipe); sets *verbose on "VERBOSE".
bool bly_actor_pipe_command(zsock_t *pipe, bool *verbose);

#endif
