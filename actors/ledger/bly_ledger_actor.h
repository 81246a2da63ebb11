/*  =========================================================================
    bly_ledger_actor - the ledger's zactor shell (role "ledger")

    Owns the LMDB store and the ledger, serves a CURVE ROUTER on the manifest's
    `endpoint` (ZAP domain "open": anyone may query or submit; transactions are
    signed) with the `ledger` protocol: submit, account_request, head_request,
    block_request, tx_request, pol_request, proof_request.

    SOLO MODE: with block_ms > 0 the actor is its own block producer: every
    block_ms it builds a block from its mempool (in arrival order, skipping
    what no longer validates), commits it durably and drops what was included
    or became invalid. Only one node may run a solo ledger for a chain. A
    replicated chain runs the consensus actor instead (role "consensus",
    actors/consensus/bly_consensus_actor.h), which serves the same protocol
    through bly_ledger_serve.
    Submissions are checked against the committed state, so the solo mempool
    holds one transaction per sender (a second is refused until the next block).

    Manifest keys (section "ledger"): endpoint, genesis, dir (default
    <data_dir>/ledger), map_size_mb (default 1024), block_ms (default 1000,
    0 = no solo producer).
    ========================================================================= */

#ifndef BLY_LEDGER_ACTOR_H_INCLUDED
#define BLY_LEDGER_ACTOR_H_INCLUDED

#include "bly_actor.h"

//  Entry point: zactor_new(bly_ledger_actor, bly_actor_args_t *).
void bly_ledger_actor(zsock_t *pipe, void *args);

#endif
