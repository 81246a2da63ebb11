/*  =========================================================================
    bly_cons_ledger - the ledger as the consensus application
    ========================================================================= */

#include "bly_cons_ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Pooled bytes at most: two full ledger blocks.
#define S_POOL_BYTES_MAX (2u * BLY_LEDGER_BLOCK_BYTES_MAX)

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
    uint64_t offences;                           //  Evidence items committed.
};

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
    if (!self->txs || !self->sizes || !self->hashes) {
        bly_cons_ledger_destroy(&self);
        return NULL;
    }
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
    if (bly_ledger_tx_check(self->ledger, tx, size, hash, err, err_size) != 0)
        return -1;
    for (uint32_t i = 0; i < self->count; i++) {
        if (memcmp(self->hashes[i], hash, BLY_LEDGER_HASH_SIZE) == 0) {
            snprintf(err, err_size, "transaction already pending");
            return -1;
        }
    }
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
    self->count++;
    self->bytes += size;
    return 0;
}

//  After a commit: keep only what still applies to the new state.
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
        bly_ledger_block_begin(self->ledger, payload, size, err, sizeof(err)) != 0)
        return -1;
    bly_ledger_block_abort(self->ledger);
    return 0;
}

static int
s_apply(void *self_, uint64_t height, const uint8_t *payload, uint32_t size,
        const uint16_t *offenders, uint32_t offender_count, uint8_t app_hash[BLY_CONS_ID_SIZE])
{
    bly_cons_ledger_t *self = self_;
    bly_assert(self);
    char err[256];
    if (height != bly_ledger_height(self->ledger) + 1 ||
        bly_ledger_block_begin(self->ledger, payload, size, err, sizeof(err)) != 0) {
        bly_log_error("consensus: committed block %llu does not apply to the ledger",
                      (unsigned long long) height);
        return -1;
    }
    bly_ledger_block_commit(self->ledger);
    self->offences += offender_count;
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

bly_cons_app_t
bly_cons_ledger_app(bly_cons_ledger_t *self)
{
    bly_assert(self);
    return (bly_cons_app_t){.self = self, .build = s_build, .check = s_check, .apply = s_apply,
                            .hash = s_hash, .load_commit = s_load};
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
