/*  =========================================================================
    bly_cons_ledger - the ledger as the consensus application
    ========================================================================= */

#include "bly_cons_ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Pooled bytes at most: two full ledger blocks.
#define S_POOL_BYTES_MAX (2u * BLY_LEDGER_BLOCK_BYTES_MAX)
//  Slots of the pool's id set (open addressing, load at most one half).
#define S_SET_SLOTS (2u * BLY_MEMPOOL_TX_MAX)
_Static_assert((S_SET_SLOTS & (S_SET_SLOTS - 1)) == 0, "the id set is a power of two");

struct _bly_cons_ledger_t {
    bly_ledger_t *ledger;                        //  Borrowed.
    uint8_t proposer[BLY_LEDGER_KEY_SIZE];       //  This replica's key.
    bly_cons_load_fn *load;                      //  Block store of the shell.
    void *store;
    uint8_t **txs;                               //  Pool, arrival order.
    size_t *sizes;
    uint8_t (*hashes)[BLY_LEDGER_HASH_SIZE];
    uint32_t count;
    size_t bytes;
    uint8_t (*set)[BLY_LEDGER_HASH_SIZE];        //  Ids of the pool; all-zero = empty.
    const uint8_t (*validators)[BLY_CONS_PUBKEY_SIZE];  //  Keys by validator index.
    uint32_t validator_count;
    uint64_t offences;                           //  Evidence items committed.
    uint64_t slashed;                            //  Of which the ledger punished.
};

static const uint8_t s_zero[BLY_LEDGER_HASH_SIZE];

//  Slot of `id` in the set: where it is, or the empty slot where it would go.
static uint32_t
s_set_slot(const bly_cons_ledger_t *self, const uint8_t id[BLY_LEDGER_HASH_SIZE])
{
    uint32_t i = (id[0] | (uint32_t) id[1] << 8 | (uint32_t) id[2] << 16) & (S_SET_SLOTS - 1);
    for (uint32_t n = 0; n < S_SET_SLOTS; n++, i = (i + 1) & (S_SET_SLOTS - 1))
        if (memcmp(self->set[i], id, BLY_LEDGER_HASH_SIZE) == 0 ||
            memcmp(self->set[i], s_zero, BLY_LEDGER_HASH_SIZE) == 0)
            return i;
    bly_assert(!"mempool id set full");  //  Never: at most half full.
    return 0;
}

static bool
s_pooled(void *self_, const uint8_t id[BLY_LEDGER_HASH_SIZE])
{
    const bly_cons_ledger_t *self = self_;
    return memcmp(self->set[s_set_slot(self, id)], id, BLY_LEDGER_HASH_SIZE) == 0;
}

bly_cons_ledger_t *
bly_cons_ledger_new(bly_ledger_t *ledger, const uint8_t proposer[BLY_LEDGER_KEY_SIZE],
                    bly_cons_load_fn *load, void *store)
{
    if (!ledger || !proposer || !load)
        return NULL;
    bly_cons_ledger_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->ledger = ledger;
    memcpy(self->proposer, proposer, BLY_LEDGER_KEY_SIZE);
    self->load = load;
    self->store = store;
    self->txs = calloc(BLY_MEMPOOL_TX_MAX, sizeof(*self->txs));
    self->sizes = calloc(BLY_MEMPOOL_TX_MAX, sizeof(*self->sizes));
    self->hashes = calloc(BLY_MEMPOOL_TX_MAX, sizeof(*self->hashes));
    self->set = calloc(S_SET_SLOTS, sizeof(*self->set));
    if (!self->txs || !self->sizes || !self->hashes || !self->set) {
        bly_cons_ledger_destroy(&self);
        return NULL;
    }
    //  A pooled transaction was verified when it was admitted: the ledger skips its
    //  signature in valid(v), on commit and when the pool is pruned.
    bly_ledger_set_verified(ledger, s_pooled, self);
    return self;
}

void
bly_cons_ledger_destroy(bly_cons_ledger_t **self_p)
{
    bly_assert(self_p);
    bly_cons_ledger_t *self = *self_p;
    if (!self)
        return;
    for (uint32_t i = 0; self->txs && i < self->count; i++)
        free(self->txs[i]);
    if (self->set)
        bly_ledger_set_verified(self->ledger, NULL, NULL);
    free(self->set);
    free(self->hashes);
    free(self->sizes);
    free(self->txs);
    free(self);
    *self_p = NULL;
}

int
bly_cons_ledger_submit(bly_cons_ledger_t *self, const uint8_t *tx, size_t size, char *err,
                       size_t err_size)
{
    bly_assert(self);
    bly_assert(tx);
    uint8_t hash[BLY_LEDGER_HASH_SIZE];
    if (size > BLY_LEDGER_TX_SIZE_MAX) {
        snprintf(err, err_size, "transaction larger than %u bytes", BLY_LEDGER_TX_SIZE_MAX);
        return -1;
    }
    //  Duplicates first: a relayed copy of a pooled transaction costs one hash.
    bly_ledger_tx_hash(tx, size, hash);
    if (s_pooled(self, hash)) {
        snprintf(err, err_size, "transaction already pending");
        return -1;
    }
    if (bly_ledger_tx_check(self->ledger, tx, size, NULL, err, err_size) != 0)
        return -1;
    if (self->count == BLY_MEMPOOL_TX_MAX || self->bytes + size > S_POOL_BYTES_MAX) {
        snprintf(err, err_size, "mempool full");
        return -1;
    }
    uint8_t *copy = malloc(size);
    if (!copy) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    memcpy(copy, tx, size);
    self->txs[self->count] = copy;
    self->sizes[self->count] = size;
    memcpy(self->hashes[self->count], hash, BLY_LEDGER_HASH_SIZE);
    memcpy(self->set[s_set_slot(self, hash)], hash, BLY_LEDGER_HASH_SIZE);
    self->count++;
    self->bytes += size;
    return 0;
}

//  After a commit: keep only what still applies to the new state (signatures
//  are not checked again: the set still holds every pooled id here).
static void
s_prune(bly_cons_ledger_t *self)
{
    uint32_t kept = 0;
    char err[128];
    for (uint32_t i = 0; i < self->count; i++) {
        if (bly_ledger_tx_check(self->ledger, self->txs[i], self->sizes[i], NULL, err,
                                sizeof(err)) != 0) {
            self->bytes -= self->sizes[i];
            free(self->txs[i]);
            continue;
        }
        self->txs[kept] = self->txs[i];
        self->sizes[kept] = self->sizes[i];
        memcpy(self->hashes[kept], self->hashes[i], BLY_LEDGER_HASH_SIZE);
        kept++;
    }
    self->count = kept;
    memset(self->set, 0, S_SET_SLOTS * sizeof(*self->set));
    for (uint32_t i = 0; i < kept; i++)
        memcpy(self->set[s_set_slot(self, self->hashes[i])], self->hashes[i],
               BLY_LEDGER_HASH_SIZE);
}

static uint32_t
s_build(void *self_, uint64_t height, uint8_t *payload, uint32_t max)
{
    bly_cons_ledger_t *self = self_;
    bly_assert(self);
    //  Fewer transactions until the ledger block fits the consensus block.
    for (size_t count = self->count;; count /= 2) {
        uint8_t *block = NULL;
        size_t size = 0, included = 0;
        int rc = bly_ledger_block_build(self->ledger, (const uint8_t *const *) self->txs,
                                        self->sizes, count, bly_ledger_time_ms(self->ledger) + 1,
                                        self->proposer, &block, &size, &included);
        if (rc == 0 && size <= max) {
            memcpy(payload, block, size);
            free(block);
            return (uint32_t) size;
        }
        free(block);
        if (rc != 0 || count == 0) {
            bly_log_error("consensus: the ledger cannot build a block at height %llu",
                          (unsigned long long) height);
            return 0;
        }
    }
}

static int
s_check(void *self_, uint64_t height, const uint8_t *payload, uint32_t size)
{
    bly_cons_ledger_t *self = self_;
    bly_assert(self);
    char err[256];
    if (height != bly_ledger_height(self->ledger) + 1 ||
        bly_ledger_block_check(self->ledger, payload, size, err, sizeof(err)) != 0)
        return -1;
    return 0;
}

static int
s_apply(void *self_, uint64_t height, const uint8_t *payload, uint32_t size,
        const uint16_t *offenders, uint32_t offender_count, const uint8_t *evidence,
        uint8_t app_hash[BLY_CONS_ID_SIZE])
{
    bly_cons_ledger_t *self = self_;
    bly_assert(self);
    bly_assert(offender_count <= BLY_CONS_BLOCK_EVIDENCE_MAX);
    char err[256];
    if (height <= bly_ledger_height(self->ledger)) {
        //  Replay of a block the ledger's store already holds (restart): nothing to do.
        memcpy(app_hash, bly_ledger_app_hash(self->ledger), BLY_CONS_ID_SIZE);
        return 0;
    }
    bly_ledger_evidence_t ev[BLY_CONS_BLOCK_EVIDENCE_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < offender_count; i++) {
        if (offenders[i] >= self->validator_count)
            continue;    //  No key known for it: the ledger could not check it.
        memcpy(ev[n].offender, self->validators[offenders[i]], BLY_LEDGER_KEY_SIZE);
        ev[n].vote_a = evidence + (size_t) i * 2 * BLY_CONS_VOTE_SIZE;
        ev[n].vote_b = ev[n].vote_a + BLY_CONS_VOTE_SIZE;
        n++;
    }
    size_t slashed = 0;
    if (height != bly_ledger_height(self->ledger) + 1 ||
        bly_ledger_block_begin_ev(self->ledger, payload, size, ev, n, &slashed, err,
                                  sizeof(err)) != 0) {
        bly_log_error("consensus: committed block %llu does not apply to the ledger: %s",
                      (unsigned long long) height,
                      height == bly_ledger_height(self->ledger) + 1 ? err : "not the next height");
        return -1;
    }
    bly_ledger_block_commit(self->ledger);
    self->offences += offender_count;
    self->slashed += slashed;
    s_prune(self);
    memcpy(app_hash, bly_ledger_app_hash(self->ledger), BLY_CONS_ID_SIZE);
    return 0;
}

static void
s_hash(void *self_, uint8_t app_hash[BLY_CONS_ID_SIZE])
{
    bly_cons_ledger_t *self = self_;
    bly_assert(self);
    memcpy(app_hash, bly_ledger_app_hash(self->ledger), BLY_CONS_ID_SIZE);
}

static uint32_t
s_load(void *self_, uint64_t height, uint8_t *buf, uint32_t max)
{
    bly_cons_ledger_t *self = self_;
    bly_assert(self);
    return self->load(self->store, height, buf, max);
}

//  The stake that votes of each validator key (0 when tombstoned). While
//  the commit log replays blocks the store already holds, this is the
//  state after the last stored block: the core does not verify replayed
//  commits, and after the replay it is the right one.
static uint32_t
s_powers(void *self_, uint64_t out[BLY_CONS_VALIDATORS_MAX])
{
    bly_cons_ledger_t *self = self_;
    bly_assert(self);
    bly_assert(self->validators);    //  bly_cons_ledger_set_validators first.
    for (uint32_t i = 0; i < self->validator_count; i++)
        out[i] = bly_ledger_voting_stake(self->ledger, self->validators[i]);
    return self->validator_count;
}

bly_cons_app_t
bly_cons_ledger_app(bly_cons_ledger_t *self)
{
    bly_assert(self);
    return (bly_cons_app_t){.self = self, .build = s_build, .check = s_check, .apply = s_apply,
                            .hash = s_hash, .load_commit = s_load, .powers = s_powers};
}

uint32_t
bly_cons_ledger_pending(const bly_cons_ledger_t *self)
{
    bly_assert(self);
    return self->count;
}

uint64_t
bly_cons_ledger_offences(const bly_cons_ledger_t *self)
{
    bly_assert(self);
    return self->offences;
}

uint64_t
bly_cons_ledger_slashed(const bly_cons_ledger_t *self)
{
    bly_assert(self);
    return self->slashed;
}

void
bly_cons_ledger_set_validators(bly_cons_ledger_t *self, const bly_cons_config_t *config)
{
    bly_assert(self && config);
    self->validators = (const uint8_t(*)[BLY_CONS_PUBKEY_SIZE]) config->pubkeys;
    self->validator_count = config->validator_count;
}
