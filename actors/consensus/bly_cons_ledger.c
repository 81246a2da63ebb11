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
    uint8_t (*froms)[BLY_LEDGER_KEY_SIZE];       //  Sender of each.
    uint32_t count;
    uint32_t count_max;                          //  <= BLY_MEMPOOL_TX_MAX.
    size_t bytes;
    uint8_t (*set)[BLY_LEDGER_HASH_SIZE];        //  Ids of the pool; all-zero = empty.
    uint8_t (*senders)[BLY_LEDGER_KEY_SIZE];     //  Senders with pooled transactions.
    uint16_t *sender_pooled;                     //  How many each (same slots).
    const uint8_t (*validators)[BLY_CONS_PUBKEY_SIZE];  //  Keys by validator index.
    uint32_t validator_count;
    uint64_t offences;                           //  Evidence items committed.
    uint64_t slashed;                            //  Of which the ledger punished.
    uint64_t evicted;                            //  Dropped to make room for others.
};

static const uint8_t s_zero[BLY_LEDGER_HASH_SIZE];

//  Two open-addressed tables of 32-byte keys with linear probing, S_SET_SLOTS each
//  and at most half full: the ids of the pool and the senders (with a count each;
//  only ids are removed one by one, the sender table is rebuilt at each prune).
//  All-zero marks a free slot (no SHA-256 output or valid key is zero).
static uint32_t
s_home(const uint8_t key[32])
{
    return (key[0] | (uint32_t) key[1] << 8 | (uint32_t) key[2] << 16) & (S_SET_SLOTS - 1);
}

//  Slot of `key`: where it is, or the free slot where it would go.
static uint32_t
s_probe(uint8_t (*keys)[32], const uint8_t key[32])
{
    uint32_t i = s_home(key);
    for (uint32_t n = 0; n < S_SET_SLOTS; n++, i = (i + 1) & (S_SET_SLOTS - 1))
        if (memcmp(keys[i], key, 32) == 0 || memcmp(keys[i], s_zero, 32) == 0)
            return i;
    bly_assert(!"mempool table full");  //  Never: at most one key per pooled transaction.
    return 0;
}

//  Free slot i, moving back later keys of its probe run so every key stays
//  reachable from its home without tombstones.
static void
s_table_remove(uint8_t (*keys)[32], uint32_t i)
{
    memset(keys[i], 0, 32);
    uint32_t j = i;
    for (uint32_t n = 0; n < S_SET_SLOTS; n++) {
        j = (j + 1) & (S_SET_SLOTS - 1);
        if (memcmp(keys[j], s_zero, 32) == 0)
            return;
        //  The key at j may fill the hole unless its home lies after the hole.
        if (((j - s_home(keys[j])) & (S_SET_SLOTS - 1)) >= ((j - i) & (S_SET_SLOTS - 1))) {
            memcpy(keys[i], keys[j], 32);
            memset(keys[j], 0, 32);
            i = j;
        }
    }
}

static uint32_t
s_set_slot(const bly_cons_ledger_t *self, const uint8_t id[BLY_LEDGER_HASH_SIZE])
{
    return s_probe(self->set, id);
}

static uint32_t
s_sender_slot(const bly_cons_ledger_t *self, const uint8_t key[BLY_LEDGER_KEY_SIZE])
{
    return s_probe(self->senders, key);
}

static void
s_sender_add(bly_cons_ledger_t *self, const uint8_t key[BLY_LEDGER_KEY_SIZE])
{
    uint32_t i = s_sender_slot(self, key);
    memcpy(self->senders[i], key, BLY_LEDGER_KEY_SIZE);
    self->sender_pooled[i]++;
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
    self->count_max = BLY_MEMPOOL_TX_MAX;
    self->txs = calloc(BLY_MEMPOOL_TX_MAX, sizeof(*self->txs));
    self->sizes = calloc(BLY_MEMPOOL_TX_MAX, sizeof(*self->sizes));
    self->hashes = calloc(BLY_MEMPOOL_TX_MAX, sizeof(*self->hashes));
    self->froms = calloc(BLY_MEMPOOL_TX_MAX, sizeof(*self->froms));
    self->set = calloc(S_SET_SLOTS, sizeof(*self->set));
    self->senders = calloc(S_SET_SLOTS, sizeof(*self->senders));
    self->sender_pooled = calloc(S_SET_SLOTS, sizeof(*self->sender_pooled));
    if (!self->txs || !self->sizes || !self->hashes || !self->froms || !self->set ||
        !self->senders || !self->sender_pooled) {
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
    free(self->senders);
    free(self->sender_pooled);
    free(self->hashes);
    free(self->froms);
    free(self->sizes);
    free(self->txs);
    free(self);
    *self_p = NULL;
}

//  Fair eviction: drop the latest pooled transaction (its highest nonce) of the
//  sender holding the most, if it holds more than `mine` + 1. 0, or -1 when none may go.
static int
s_evict_for(bly_cons_ledger_t *self, uint16_t mine)
{
    uint32_t top = 0;
    for (uint32_t i = 1; i < S_SET_SLOTS; i++)
        if (self->sender_pooled[i] > self->sender_pooled[top])
            top = i;
    if (self->sender_pooled[top] <= mine + 1)
        return -1;
    uint32_t at = self->count;
    while (at > 0 && memcmp(self->froms[at - 1], self->senders[top], BLY_LEDGER_KEY_SIZE) != 0)
        at--;
    bly_assert(at > 0);   //  The sender holds pooled transactions.
    at--;
    s_table_remove(self->set, s_set_slot(self, self->hashes[at]));
    //  The top sender keeps at least one (it held more than mine + 1 >= 1), so its
    //  entry stays; entries of senders with none go at the next prune.
    self->sender_pooled[top]--;
    free(self->txs[at]);
    self->bytes -= self->sizes[at];
    uint32_t tail = self->count - at - 1;
    memmove(&self->txs[at], &self->txs[at + 1], tail * sizeof(*self->txs));
    memmove(&self->sizes[at], &self->sizes[at + 1], tail * sizeof(*self->sizes));
    memmove(&self->hashes[at], &self->hashes[at + 1], tail * sizeof(*self->hashes));
    memmove(&self->froms[at], &self->froms[at + 1], tail * sizeof(*self->froms));
    self->count--;
    self->evicted++;
    return 0;
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
    //  A sender may have transactions in flight: later nonces wait in the pool
    //  until the earlier ones commit (a block applies them in nonce order).
    uint8_t from[BLY_LEDGER_KEY_SIZE];
    if (bly_ledger_tx_check_pool(self->ledger, tx, size, BLY_MEMPOOL_SENDER_TX_MAX - 1, NULL,
                                 from, err, err_size) != 0)
        return -1;
    uint16_t mine = self->sender_pooled[s_sender_slot(self, from)];
    if (mine >= BLY_MEMPOOL_SENDER_TX_MAX) {
        snprintf(err, err_size, "sender already has %u pending transactions",
                 BLY_MEMPOOL_SENDER_TX_MAX);
        return -1;
    }
    //  Full: room comes from the sender holding the most, while it holds more than
    //  one above this sender (each pass frees one; a few when bytes are short).
    for (uint32_t n = 0; self->count >= self->count_max || self->bytes + size > S_POOL_BYTES_MAX;
         n++) {
        if (n == BLY_MEMPOOL_SENDER_TX_MAX || s_evict_for(self, mine) != 0) {
            snprintf(err, err_size, "mempool full");
            return -1;
        }
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
    memcpy(self->froms[self->count], from, BLY_LEDGER_KEY_SIZE);
    memcpy(self->set[s_set_slot(self, hash)], hash, BLY_LEDGER_HASH_SIZE);
    s_sender_add(self, from);
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
    uint8_t from[BLY_LEDGER_KEY_SIZE];
    memset(self->senders, 0, S_SET_SLOTS * sizeof(*self->senders));
    memset(self->sender_pooled, 0, S_SET_SLOTS * sizeof(*self->sender_pooled));
    for (uint32_t i = 0; i < self->count; i++) {
        if (bly_ledger_tx_check_pool(self->ledger, self->txs[i], self->sizes[i],
                                     BLY_MEMPOOL_SENDER_TX_MAX - 1, NULL, from, err,
                                     sizeof(err)) != 0) {
            self->bytes -= self->sizes[i];
            free(self->txs[i]);
            continue;
        }
        s_sender_add(self, from);
        self->txs[kept] = self->txs[i];
        self->sizes[kept] = self->sizes[i];
        memcpy(self->hashes[kept], self->hashes[i], BLY_LEDGER_HASH_SIZE);
        memcpy(self->froms[kept], from, BLY_LEDGER_KEY_SIZE);
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

static uint32_t
s_pending(void *self_)
{
    return bly_cons_ledger_pending(self_);
}

bly_cons_app_t
bly_cons_ledger_app(bly_cons_ledger_t *self)
{
    bly_assert(self);
    return (bly_cons_app_t){.self = self, .build = s_build, .check = s_check, .apply = s_apply,
                            .hash = s_hash, .load_commit = s_load, .pending = s_pending,
                            .powers = s_powers};
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

int
bly_cons_ledger_set_pool_max(bly_cons_ledger_t *self, uint32_t count)
{
    bly_assert(self);
    if (count == 0 || count > BLY_MEMPOOL_TX_MAX || count < self->count)
        return -1;
    self->count_max = count;
    return 0;
}

bool
bly_cons_ledger_has(const bly_cons_ledger_t *self, const uint8_t id[BLY_LEDGER_HASH_SIZE])
{
    bly_assert(self && id);
    return memcmp(self->set[s_set_slot(self, id)], id, BLY_LEDGER_HASH_SIZE) == 0;
}

uint64_t
bly_cons_ledger_evicted(const bly_cons_ledger_t *self)
{
    bly_assert(self);
    return self->evicted;
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
