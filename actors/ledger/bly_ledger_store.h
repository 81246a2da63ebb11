/*  =========================================================================
    bly_ledger_store - the ledger in LMDB: state rows, block store, indexes

    One environment per ledger directory with an explicit map size, named
    databases and reader slots (runtime/bly_limits.h), durable sync on. Each
    block is one write transaction: the accounts, PoL nodes and replay-set
    entries the open block changed, the block itself, its height and
    transaction indexes, and the meta row (height, hashes, counters). Any
    failure, MDB_MAP_FULL included, aborts the transaction: nothing of the
    block is on disk, and the caller aborts the block in memory too.

    Opening a store reads every row back (each record checked after the
    read), rebuilds the in-memory ledger and checks that its recomputed app
    hash equals the stored one. Never use a store across fork(); open one
    environment once per process.
    ========================================================================= */

#ifndef BLY_LEDGER_STORE_H_INCLUDED
#define BLY_LEDGER_STORE_H_INCLUDED

#include "bly_ledger.h"

typedef struct bly_ledger_store_t bly_ledger_store_t;

//  Open (creating the directory and writing the genesis state if empty) the store in
//  `dir` with `map_size` bytes of map (0: BLY_LEDGER_MAP_SIZE_DEFAULT). A store made
//  from another genesis is refused. *ledger_p receives the ledger at the last committed
//  block (the caller owns it; destroy it after the store). Returns NULL with err.
bly_ledger_store_t *bly_ledger_store_open(const char *dir, const bly_ledger_genesis_t *genesis,
                                          size_t map_size, bly_ledger_t **ledger_p, char *err,
                                          size_t err_size);
void bly_ledger_store_destroy(bly_ledger_store_t **self_p);

//  Persist the block that is open in `ledger` (after bly_ledger_block_begin on exactly
//  these bytes) in one durable write transaction. Returns 0 (then the caller commits
//  the block in memory) or -1 with err (nothing written; the caller aborts).
BLY_MUST_USE int bly_ledger_store_write(bly_ledger_store_t *self, const bly_ledger_t *ledger,
                                        const uint8_t *block, size_t size, char *err,
                                        size_t err_size);

//  Begin, write, commit (or abort everywhere on failure). Returns 0 or -1 with err;
//  on -1 the ledger and the store are exactly as before.
BLY_MUST_USE int bly_ledger_store_apply(bly_ledger_store_t *self, bly_ledger_t *ledger,
                                        const uint8_t *block, size_t size, char *err,
                                        size_t err_size);

//  Follow `ledger` (the one this store opened): from now on it records the rows
//  every block committed in memory changes (bly_ledger_block_begin[_ev] + _commit,
//  no store write per block), and bly_ledger_store_flush writes all of them with the
//  blocks in ONE durable write transaction. For a caller that keeps its own durable
//  log of the blocks (consensus: its commit log) and replays what the store lacks.
void bly_ledger_store_follow(bly_ledger_store_t *self, bly_ledger_t *ledger);
//  Write the blocks committed since the last flush (`count` encoded ledger blocks, in
//  height order, exactly those) and the rows they changed. 0, or -1 with err (nothing
//  written; the ledger stays ahead of the store).
BLY_MUST_USE int bly_ledger_store_flush(bly_ledger_store_t *self, bly_ledger_t *ledger,
                                        const uint8_t *const *blocks, const size_t *sizes,
                                        size_t count, char *err, size_t err_size);
//  Height the store holds of a followed ledger.
uint64_t bly_ledger_store_followed_height(const bly_ledger_t *ledger);
//  One fsync per write transaction instead of two (LMDB's MDB_NOMETASYNC): a system
//  crash may lose the last transaction, never corrupt the store. Only for a caller
//  whose own fsynced log replays what was lost (consensus). 0 or -1.
BLY_MUST_USE int bly_ledger_store_relax(bly_ledger_store_t *self);

//  The block at `height` (fresh buffer, caller frees) and its hash. 0, or -1 if absent.
BLY_MUST_USE int bly_ledger_store_block(bly_ledger_store_t *self, uint64_t height,
                                        uint8_t **block, size_t *size,
                                        uint8_t hash[BLY_LEDGER_HASH_SIZE]);
//  Height of the block with this header hash. 0, or -1 if absent.
BLY_MUST_USE int bly_ledger_store_block_height(bly_ledger_store_t *self,
                                               const uint8_t hash[BLY_LEDGER_HASH_SIZE],
                                               uint64_t *height);
//  A committed transaction by hash: its bytes (fresh buffer) and block height.
BLY_MUST_USE int bly_ledger_store_tx(bly_ledger_store_t *self,
                                     const uint8_t hash[BLY_LEDGER_HASH_SIZE], uint8_t **tx,
                                     size_t *size, uint64_t *height);

#endif
