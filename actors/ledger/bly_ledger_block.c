/*  =========================================================================
    bly_ledger_block - blocks (build, begin), the PoL queries and checks, and
    account proofs, on top of the state in bly_ledger.c.
    ========================================================================= */

#include "bly_ledger_internal.h"
#include "bly_sha256.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define s_fail(err, size, text) bly_ledger_fail(err, size, "%s", text)

void
bly_ledger_tx_hash(const uint8_t *tx, size_t size, uint8_t out[32])
{
    bly_assert(tx);
    bly_sha256(out, tx, size);
}

//  Merkle root of the transaction hashes of a decoded block.
static int
s_tx_root(const bly_ledger_msg_t *block, uint8_t out[32])
{
    size_t n = bly_ledger_msg_txs_count(block);
    uint8_t *level = malloc(n * 32 + 32);
    if (!level)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const bly_ledger_tx_blob_t *b = bly_ledger_msg_txs_at(block, i);
        bly_ledger_tx_hash(b->data, b->data_size, level + i * 32);
    }
    bly_ledger_merkle_root(level, n, out);
    free(level);
    return 0;
}

//  Header hash: SHA-256 of the block_header message with the block's fields.
int
bly_ledger_header_hash(const bly_ledger_msg_t *block, uint8_t out[32])
{
    bly_ledger_msg_t *h = bly_ledger_msg_new(BLY_LEDGER_MSG_BLOCK_HEADER);
    if (!h)
        return -1;
    size_t sz;
    int rc = bly_ledger_msg_set_chain_id(h, bly_ledger_msg_chain_id(block));
    bly_ledger_msg_set_height(h, bly_ledger_msg_height(block));
    bly_ledger_msg_set_time_ms(h, bly_ledger_msg_time_ms(block));
    rc |= bly_ledger_msg_set_prev_hash(h, bly_ledger_msg_prev_hash(block, &sz), 32);
    rc |= bly_ledger_msg_set_app_hash(h, bly_ledger_msg_app_hash(block, &sz), 32);
    rc |= bly_ledger_msg_set_tx_root(h, bly_ledger_msg_tx_root(block, &sz), 32);
    rc |= bly_ledger_msg_set_proposer(h, bly_ledger_msg_proposer(block, &sz), 32);
    uint8_t *buf = NULL;
    if (rc == 0)
        rc = bly_ledger_msg_encode(h, &buf, &sz);
    if (rc == 0)
        bly_sha256(out, buf, sz);
    free(buf);
    bly_ledger_msg_destroy(&h);
    return rc ? -1 : 0;
}

//  Header checks against the committed state.
static int
s_check_header(const bly_ledger_t *self, const bly_ledger_msg_t *block, char *err, size_t es)
{
    size_t sz;
    if (strcmp(bly_ledger_msg_chain_id(block), self->genesis.chain_id) != 0)
        return s_fail(err, es, "block: wrong chain id");
    if (self->height == UINT64_MAX || bly_ledger_msg_height(block) != self->height + 1)
        return s_fail(err, es, "block: height is not the next height");
    if (memcmp(bly_ledger_msg_prev_hash(block, &sz), self->block_hash, 32) != 0)
        return s_fail(err, es, "block: prev_hash is not the last block hash");
    if (memcmp(bly_ledger_msg_app_hash(block, &sz), self->app_hash, 32) != 0)
        return s_fail(err, es, "block: app_hash is not the current app hash");
    if (bly_ledger_msg_time_ms(block) < self->time_ms)
        return s_fail(err, es, "block: time goes backwards");
    if (!bly_ledger_key_valid(bly_ledger_msg_proposer(block, &sz)))
        return s_fail(err, es, "block: proposer is not a valid Ed25519 key");
    uint8_t root[32];
    if (s_tx_root(block, root))
        return s_fail(err, es, "block: out of memory");
    if (memcmp(root, bly_ledger_msg_tx_root(block, &sz), 32) != 0)
        return s_fail(err, es, "block: tx_root does not match the transactions");
    return 0;
}

//  Decode one transaction blob and apply it.
static int
s_apply_blob(bly_ledger_t *self, const uint8_t *data, size_t size, char *err, size_t es)
{
    char why[160] = "";
    bly_ledger_msg_t *tx = NULL;
    if (bly_ledger_msg_decode(data, size, &tx, why, sizeof(why))) {
        if (err && es)
            snprintf(err, es, "transaction does not decode: %s", why);
        return -1;
    }
    uint8_t hash[32];
    bly_ledger_tx_hash(data, size, hash);
    int rc = bly_ledger_tx_apply(self, tx, hash, err, es);
    bly_ledger_msg_destroy(&tx);
    return rc;
}

//  Begin a block; the app hash of the pending state is computed only when
//  `app_hash` (a check that aborts right after does not need it).
static int
s_begin(bly_ledger_t *self, const uint8_t *block, size_t size,
        const bly_ledger_evidence_t *evidence, size_t evidence_count, size_t *slashed,
        bool app_hash, char *err, size_t err_size)
{
    bly_assert(self);
    bly_assert(block);
    bly_assert(!self->open);
    char why[160] = "";
    bly_ledger_msg_t *b = NULL;
    if (size > BLY_LEDGER_BLOCK_BYTES_MAX)
        return s_fail(err, err_size, "block: larger than the block limit");
    if (bly_ledger_msg_decode(block, size, &b, why, sizeof(why))) {
        if (err && err_size)
            snprintf(err, err_size, "block does not decode: %s", why);
        return -1;
    }
    int rc = -1;
    if (bly_ledger_msg_id(b) != BLY_LEDGER_MSG_BLOCK) {
        s_fail(err, err_size, "block: message is not a block");
        goto out;
    }
    if (s_check_header(self, b, err, err_size))
        goto out;
    size_t n = bly_ledger_msg_txs_count(b);
    //  Room for the replay-set entries of the transactions and of the evidence
    //  (two per item: the offence and the tombstone).
    if (bly_ledger_open(self, n + 2 * evidence_count)) {
        s_fail(err, err_size, "block: out of memory or replay set full");
        goto out;
    }
    size_t sz;
    memcpy(self->proposer, bly_ledger_msg_proposer(b, &sz), 32);
    self->open_height = bly_ledger_msg_height(b);
    self->open_time_ms = bly_ledger_msg_time_ms(b);
    for (size_t i = 0; i < n; i++) {
        const bly_ledger_tx_blob_t *t = bly_ledger_msg_txs_at(b, i);
        char txerr[200] = "";
        if (s_apply_blob(self, t->data, t->data_size, txerr, sizeof(txerr))) {
            if (err && err_size)
                snprintf(err, err_size, "block: transaction %zu rejected: %s", i, txerr);
            bly_ledger_block_abort(self);
            goto out;
        }
    }
    size_t punished = 0;
    for (size_t i = 0; i < evidence_count; i++) {
        char why_ev[160];
        if (bly_ledger_evidence_apply(self, &evidence[i], why_ev, sizeof(why_ev)) == 0)
            punished++;
        else
            bly_log_info("ledger: block %llu: evidence %zu skipped: %s",
                         (unsigned long long) self->open_height, i, why_ev);
    }
    if (slashed)
        *slashed = punished;
    if (bly_ledger_header_hash(b, self->open_hash)) {
        s_fail(err, err_size, "block: out of memory");
        bly_ledger_block_abort(self);
        goto out;
    }
    if (app_hash)
        bly_ledger_compute_app_hash(self, self->app_hash);
    rc = 0;
out:
    bly_ledger_msg_destroy(&b);
    return rc;
}

int
bly_ledger_block_begin_ev(bly_ledger_t *self, const uint8_t *block, size_t size,
                          const bly_ledger_evidence_t *evidence, size_t evidence_count,
                          size_t *slashed, char *err, size_t err_size)
{
    return s_begin(self, block, size, evidence, evidence_count, slashed, true, err, err_size);
}

int
bly_ledger_block_begin(bly_ledger_t *self, const uint8_t *block, size_t size, char *err,
                       size_t err_size)
{
    return s_begin(self, block, size, NULL, 0, NULL, true, err, err_size);
}

int
bly_ledger_block_check(bly_ledger_t *self, const uint8_t *block, size_t size, char *err,
                       size_t err_size)
{
    if (s_begin(self, block, size, NULL, 0, NULL, false, err, err_size) != 0)
        return -1;
    bly_ledger_block_abort(self);
    return 0;
}

int
bly_ledger_block_apply(bly_ledger_t *self, const uint8_t *block, size_t size, char *err,
                       size_t err_size)
{
    if (bly_ledger_block_begin(self, block, size, err, err_size))
        return -1;
    bly_ledger_block_commit(self);
    return 0;
}

//  Fill the header fields of a block being built.
static int
s_fill_header(const bly_ledger_t *self, bly_ledger_msg_t *b, uint64_t time_ms,
              const uint8_t proposer[32])
{
    int rc = bly_ledger_msg_set_chain_id(b, self->genesis.chain_id);
    bly_ledger_msg_set_height(b, self->height + 1);
    bly_ledger_msg_set_time_ms(b, time_ms);
    rc |= bly_ledger_msg_set_prev_hash(b, self->block_hash, 32);
    rc |= bly_ledger_msg_set_app_hash(b, self->app_hash, 32);
    rc |= bly_ledger_msg_set_proposer(b, proposer, 32);
    uint8_t root[32];
    rc |= s_tx_root(b, root);
    rc |= bly_ledger_msg_set_tx_root(b, root, 32);
    return rc ? -1 : 0;
}

int
bly_ledger_block_build(bly_ledger_t *self, const uint8_t *const *txs, const size_t *sizes,
                       size_t count, uint64_t time_ms, const uint8_t proposer[32],
                       uint8_t **block, size_t *size, size_t *included)
{
    bly_assert(self);
    bly_assert(block && size);
    bly_assert(count == 0 || (txs && sizes));
    if (self->open || self->height == UINT64_MAX || !bly_ledger_key_valid(proposer))
        return -1;
    bly_ledger_msg_t *b = bly_ledger_msg_new(BLY_LEDGER_MSG_BLOCK);
    size_t cap = count < BLY_LEDGER_BLOCK_TXS_MAX ? count : BLY_LEDGER_BLOCK_TXS_MAX;
    if (!b || bly_ledger_open(self, cap)) {
        bly_ledger_msg_destroy(&b);
        return -1;
    }
    memcpy(self->proposer, proposer, 32);
    self->open_height = self->height + 1;
    self->open_time_ms = time_ms;
    size_t used = 0, bytes = 512;
    bly_ledger_tx_blob_t *blob = malloc(sizeof(*blob));
    uint8_t *taken = calloc(count + 1, 1);
    int rc = blob && taken ? 0 : -1;
    //  Arrival order first; a second pass takes what failed only because a sender's
    //  earlier nonce came later in the pool.
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        size_t before = used;
        for (size_t i = 0; rc == 0 && i < count && used < cap; i++) {
            if (taken[i] || sizes[i] > BLY_LEDGER_TX_SIZE_MAX ||
                bytes + sizes[i] + 3 > BLY_LEDGER_BLOCK_BYTES_MAX)
                continue;
            if (s_apply_blob(self, txs[i], sizes[i], NULL, 0))
                continue;
            memcpy(blob->data, txs[i], sizes[i]);
            blob->data_size = sizes[i];
            rc = bly_ledger_msg_txs_append(b, blob);
            taken[i] = 1;
            used++;
            bytes += sizes[i] + 3;
        }
        if (used == before || used == count)
            break;
    }
    bly_ledger_block_abort(self);
    free(taken);
    free(blob);
    if (rc == 0)
        rc = s_fill_header(self, b, time_ms < self->time_ms ? self->time_ms : time_ms, proposer);
    if (rc == 0)
        rc = bly_ledger_msg_encode(b, block, size);
    bly_ledger_msg_destroy(&b);
    if (included)
        *included = used;
    return rc;
}

//  ---- PoL queries ----

size_t
bly_ledger_pol_count(const bly_ledger_t *self)
{
    return self->pol_count;
}

const bly_ledger_pol_t *
bly_ledger_pol_at(const bly_ledger_t *self, size_t index)
{
    bly_assert(index < self->pol_count);
    return &self->pol[index];
}

const bly_ledger_pol_t *
bly_ledger_pol_find(const bly_ledger_t *self, const uint8_t id[32])
{
    int64_t i = bly_ledger_pol_index(self, id);
    return i < 0 ? NULL : &self->pol[i];
}

uint32_t
bly_ledger_layer_count(const bly_ledger_t *self)
{
    return self->layer_count;
}

int
bly_ledger_layer_current(const bly_ledger_t *self, uint32_t layer, uint8_t id[32],
                         uint64_t *version)
{
    bly_assert(self);
    if (layer >= self->layer_count || layer >= BLY_LEDGER_POL_LAYERS_MAX)
        return -1;
    int64_t cur = self->layer_current[layer];
    if (cur < 0)
        return -1;
    if (id)
        memcpy(id, self->pol[cur].id, 32);
    if (version)
        *version = self->pol[cur].version;
    return 0;
}

//  The kind a parent of `kind` must have.
static int
s_parent_kind_ok(uint8_t kind, uint8_t parent_kind)
{
    if (kind == BLY_LEDGER_POL_META)
        return parent_kind == BLY_LEDGER_POL_GENESIS;
    if (kind == BLY_LEDGER_POL_LAYER)
        return parent_kind == BLY_LEDGER_POL_META;
    if (kind == BLY_LEDGER_POL_DELTA)
        return parent_kind == BLY_LEDGER_POL_LAYER || parent_kind == BLY_LEDGER_POL_DELTA;
    return 0;
}

int
bly_ledger_pol_check(const bly_ledger_t *self, char *err, size_t err_size)
{
    bly_assert(self);
    if (self->pol_count == 0 || self->pol[0].kind != BLY_LEDGER_POL_GENESIS)
        return s_fail(err, err_size, "pol: node 0 is not the PoL genesis");
    for (size_t i = 1; i < self->pol_count; i++) {
        const bly_ledger_pol_t *p = &self->pol[i];
        //  Only earlier nodes may be parents: commit order is a topological order, so
        //  a cycle would need a node to precede itself.
        int64_t at = bly_ledger_pol_index(self, p->parent);
        if (at < 0 || (size_t) at >= i)
            return s_fail(err, err_size, "pol: a parent is missing or not earlier (cycle)");
        const bly_ledger_pol_t *q = &self->pol[at];
        if (!s_parent_kind_ok(p->kind, q->kind))
            return s_fail(err, err_size, "pol: a parent has the wrong kind");
        if (!q->accepted || q->height >= p->height)
            return s_fail(err, err_size, "pol: a parent was not final before its child");
        if (p->kind != BLY_LEDGER_POL_META && p->layer != q->layer && q->kind != BLY_LEDGER_POL_META)
            return s_fail(err, err_size, "pol: a delta changes another layer than its parent");
        for (size_t j = 0; j < i; j++) {
            if (memcmp(self->pol[j].id, p->id, 32) == 0)
                return s_fail(err, err_size, "pol: duplicate node id");
        }
    }
    return 0;
}

//  ---- Proofs ----

int
bly_ledger_proof(const bly_ledger_t *self, const uint8_t key[32], bly_ledger_proof_t *out)
{
    bly_assert(self);
    bly_assert(out);
    bly_assert(!self->open);
    int64_t at = bly_ledger_find(self, key);
    if (at < 0)
        return -1;
    memset(out, 0, sizeof(*out));
    out->account = self->slots[at].a;
    out->leaf_index = (uint64_t) at;
    out->leaf_count = self->slot_count;
    uint8_t *level = malloc(self->slot_count * 32);
    if (!level)
        return -1;
    for (size_t i = 0; i < self->slot_count; i++)
        memcpy(level + i * 32, self->slots[i].leaf, 32);
    size_t n = self->slot_count, idx = (size_t) at;
    while (n > 1) {  //  Halves each round; depth <= 64.
        size_t sib = idx ^ 1;
        if (sib < n) {
            bly_assert(out->path_count < BLY_LEDGER_PROOF_DEPTH_MAX);
            memcpy(out->path[out->path_count], level + sib * 32, 32);
            out->path_right[out->path_count++] = sib > idx;
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i += 2, m++) {
            uint8_t buf[65] = {0x01};
            if (i + 1 < n) {
                memcpy(buf + 1, level + i * 32, 32);
                memcpy(buf + 33, level + (i + 1) * 32, 32);
                bly_sha256(level + m * 32, buf, 65);
            } else {
                memmove(level + m * 32, level + i * 32, 32);
            }
        }
        n = m;
        idx /= 2;
    }
    free(level);
    memcpy(out->pol_root, self->pol_root, 32);
    bly_ledger_extra_root(self, out->extra_root);
    memcpy(out->app_hash, self->app_hash, 32);
    out->height = self->height;
    return 0;
}

bool
bly_ledger_proof_verify(const bly_ledger_proof_t *proof, const uint8_t app_hash[32])
{
    bly_assert(proof);
    bly_assert(app_hash);
    if (proof->path_count > BLY_LEDGER_PROOF_DEPTH_MAX || proof->leaf_index >= proof->leaf_count)
        return false;
    uint8_t h[32], buf[65];
    buf[0] = 0x00;
    uint8_t leaf[57];
    leaf[0] = 0x00;
    memcpy(leaf + 1, proof->account.key, 32);
    bly_ledger_be64(leaf + 33, proof->account.balance);
    bly_ledger_be64(leaf + 41, proof->account.nonce);
    bly_ledger_be64(leaf + 49, proof->account.stake);
    bly_sha256(h, leaf, sizeof(leaf));
    //  Walk up, recomputing which levels had a sibling from index and count.
    uint64_t idx = proof->leaf_index, n = proof->leaf_count;
    size_t used = 0;
    while (n > 1) {
        uint64_t sib = idx ^ 1;
        if (sib < n) {
            if (used >= proof->path_count || proof->path_right[used] != (sib > idx))
                return false;
            buf[0] = 0x01;
            const uint8_t *l = sib > idx ? h : proof->path[used];
            const uint8_t *r = sib > idx ? proof->path[used] : h;
            memcpy(buf + 1, l, 32);
            memcpy(buf + 33, r, 32);
            bly_sha256(h, buf, 65);
            used++;
        }
        n = (n + 1) / 2;
        idx /= 2;
    }
    if (used != proof->path_count)
        return false;
    uint8_t app[97], out[32];
    app[0] = 0x04;
    memcpy(app + 1, h, 32);
    memcpy(app + 33, proof->pol_root, 32);
    memcpy(app + 65, proof->extra_root, 32);
    bly_sha256(out, app, sizeof(app));
    return sodium_memcmp(out, app_hash, 32) == 0;
}
