/*  =========================================================================
    bly_cons_ledger - the ledger as the consensus application

    Implements bly_cons_app_t over a bly_ledger_t: a consensus block's
    payload is one encoded ledger block (its own header carries the ledger's
    previous hash, app hash and time). Holds a mempool of signed ledger
    transactions: each is checked against the committed state when offered,
    duplicates (same hash) are refused, the pool is bounded in count and
    bytes; block building skips transactions that conflict inside a block
    (a second spend of one nonce) and after every commit the pool drops
    what no longer applies.

    A pooled transaction's signature was verified on admission: the ledger
    is told so (bly_ledger_set_verified) and never verifies it again, in
    valid(v), on commit or when the pool is pruned.

    Committed evidence goes to the ledger with the block
    (bly_ledger_block_begin_ev): the ledger checks both consensus votes
    against the offender's key, burns slash_bps of its stake, once per
    (validator, height, round, step), and tombstones it. The core's voting
    powers follow the ledger (bly_cons_app_t.powers): each validator's
    stake after the last block, 0 once tombstoned (bly_ledger_voting_stake). Blocks at or below the ledger's height
    (a restart replaying the commit log over a store that already holds
    them) are skipped.
    ========================================================================= */

#ifndef BLY_CONS_LEDGER_H_INCLUDED
#define BLY_CONS_LEDGER_H_INCLUDED

#include "consensus/bly_cons_core.h"
#include "ledger/bly_ledger.h"

typedef struct _bly_cons_ledger_t bly_cons_ledger_t;

//  Where the shell keeps committed COMMIT messages (for sync answers).
typedef uint32_t(bly_cons_load_fn)(void *store, uint64_t height, uint8_t *buf, uint32_t max);

//  Wrap `ledger` (borrowed; it must outlive this object). `proposer` is
//  this replica's key (block fees go to it), `load`/`store` its block
//  store. NULL on bad arguments.
bly_cons_ledger_t *bly_cons_ledger_new(bly_ledger_t *ledger,
                                       const uint8_t proposer[BLY_LEDGER_KEY_SIZE],
                                       bly_cons_load_fn *load, void *store);
void bly_cons_ledger_destroy(bly_cons_ledger_t **self_p);

//  The vtable to give bly_cons_core_new.
bly_cons_app_t bly_cons_ledger_app(bly_cons_ledger_t *self);

//  Offer a signed ledger transaction. 0 when pooled; -1 with a reason in
//  `err` when invalid against the committed state, a duplicate, its sender
//  already has BLY_MEMPOOL_SENDER_TX_MAX pending, or the pool is full. A
//  sender's later nonces (up to that many ahead) wait for the earlier ones.
//  A full pool makes room fairly: the latest transaction of the sender holding
//  the most goes, while that sender holds more than one above this one.
BLY_MUST_USE int bly_cons_ledger_submit(bly_cons_ledger_t *self, const uint8_t *tx, size_t size,
                                        char *err, size_t err_size);

//  Hold at most `count` transactions (1..BLY_MEMPOOL_TX_MAX, the default; not below
//  what is pooled now). 0, or -1 when out of range.
BLY_MUST_USE int bly_cons_ledger_set_pool_max(bly_cons_ledger_t *self, uint32_t count);
//  Whether transaction `id` is pooled.
bool bly_cons_ledger_has(const bly_cons_ledger_t *self, const uint8_t id[BLY_LEDGER_HASH_SIZE]);
//  Pending transactions, and how many were evicted to make room so far.
uint32_t bly_cons_ledger_pending(const bly_cons_ledger_t *self);
uint64_t bly_cons_ledger_evicted(const bly_cons_ledger_t *self);
//  Offences committed in consensus blocks so far, and of those the ones the
//  ledger punished (the others were punished before or did not check out).
uint64_t bly_cons_ledger_offences(const bly_cons_ledger_t *self);
uint64_t bly_cons_ledger_slashed(const bly_cons_ledger_t *self);

//  The validator keys (by index) of the consensus config, borrowed: offenders of
//  committed evidence are named by index, voting powers are read by key. Call it
//  before bly_cons_core_new.
void bly_cons_ledger_set_validators(bly_cons_ledger_t *self, const bly_cons_config_t *config);

#endif
