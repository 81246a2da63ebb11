/*  =========================================================================
    bly_consensus_actor - one Tendermint replica as a zactor (role "consensus")

    A thin shell around the pure core (bly_cons_core) with the ledger as its
    application (bly_cons_ledger). It owns:

    - the replica link: a CURVE ROUTER on `listen` in the ZAP domain
      "consensus", ALLOW-LISTED with the Curve keys of the genesis validator
      set (any other key is refused by ZAP), plus one DEALER per other
      replica (`peers`, node ids in `peer_ids`, same order). Frames are
      [kind][data]: kind "C" a consensus message, "T" a client transaction
      relayed into every mempool. The sender is the ZAP User-Id of the frame;
      the core sees it as a validator index;
    - the WAL (<dir>/wal): PERSIST effects, fsynced when the core asks,
      before any later effect (so an own vote never leaves before it is
      durable); truncated after each durable COMMIT;
    - the guard file (<dir>.guard, beside the folder): a copy of the last
      synced WAL record (it precedes every own signature), so a replica
      whose folder was wiped restores its double-sign guard
      (bly_cons_core_replay_guard) and catches up by sync;
    - the commit log (<dir>/commits): every COMMIT (block + certificate),
      fsynced; it is the core's block store (replay, sync answers);
    - the LMDB ledger store (<dir>/ledger): the query front. After each
      durable COMMIT the block's ledger payload is applied to it;
    - timers (the core's TIMER effects, due times on the monotonic clock);
    - the client ROUTER on `endpoint` (ZAP domain "open") speaking the
      `ledger` protocol (bly_ledger_serve): queries are answered from the
      LMDB front, submissions go into this replica's mempool and are relayed
      to the other replicas. So `blyan tx transfer --node E`, `blyan chain
      head --node E` work against a consensus node exactly as against a solo
      ledger node (no ledger actor runs beside it).

    Recovery: the in-memory ledger of the core starts at genesis; every
    commit log record is replayed (bly_cons_core_replay_commit), then the
    WAL (bly_cons_core_replay_wal); the LMDB front is brought up to the
    commit log's height. Torn tails of either file are cut off.

    Manifest keys (section "consensus"): endpoint, listen, genesis, peers,
    peer_ids, dir (default <data_dir>/consensus), map_size_mb,
    timeout_propose_ms, timeout_commit_ms, timeout_idle_ms, gossip_ms. docs/MANIFEST.md.
    ========================================================================= */

#ifndef BLY_CONSENSUS_ACTOR_H_INCLUDED
#define BLY_CONSENSUS_ACTOR_H_INCLUDED

#include "bly_actor.h"

//  Entry point: zactor_new(bly_consensus_actor, bly_actor_args_t *).
void bly_consensus_actor(zsock_t *pipe, void *args);

#endif
