/*  =========================================================================
    bly_ledger - the pure, deterministic ledger state machine: accounts,
    replay sets, Merkle roots, the undo log and block begin/commit/abort.
    Transaction rules live in bly_ledger_tx.c, the genesis in
    bly_ledger_genesis.c.
    ========================================================================= */

#include "bly_ledger_internal.h"
#include "bly_sha256.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t s_zero[32];

int
bly_ledger_fail(char *err, size_t err_size, const char *format, ...)
{
    if (err && err_size) {
        va_list ap;
        va_start(ap, format);
        vsnprintf(err, err_size, format, ap);
        va_end(ap);
    }
    return -1;
}

void
bly_ledger_be64(uint8_t out[8], uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t) (value & 0xff);
        value >>= 8;
    }
}

uint64_t
bly_ledger_mul_bps(uint64_t value, uint32_t bps)
{
    bly_assert(bps <= BLY_LEDGER_BPS);
    return (value / BLY_LEDGER_BPS) * bps + ((value % BLY_LEDGER_BPS) * bps) / BLY_LEDGER_BPS;
}

void
bly_ledger_seen_key(char tag, const void *data, size_t size, uint8_t out[32])
{
    bly_sha256_t st;
    uint8_t t = (uint8_t) tag;
    bly_sha256_init(&st);
    bly_sha256_update(&st, &t, 1);
    bly_sha256_update(&st, data, size);
    bly_sha256_final(&st, out);
    //  The all-zero key marks an empty slot; a SHA-256 output of zero cannot be found.
    bly_assert(memcmp(out, s_zero, 32) != 0);
}

void
bly_ledger_pol_genesis_id(const char *chain_id, uint8_t out[32])
{
    bly_assert(chain_id);
    char buf[BLY_LEDGER_CHAIN_ID_MAX + 32];
    int n = snprintf(buf, sizeof(buf), "blyan/pol/genesis/%s", chain_id);
    bly_assert(n > 0 && (size_t) n < sizeof(buf));
    bly_sha256(out, (const uint8_t *) buf, (size_t) n);
}

void
bly_ledger_params_hash(const bly_ledger_genesis_t *g, uint8_t out[32])
{
    bly_assert(g);
    bly_sha256_t st;
    uint8_t b[8];
    bly_sha256_init(&st);
    bly_sha256_update(&st, (const uint8_t *) g->chain_id, strlen(g->chain_id) + 1);
    const uint64_t v[] = {g->genesis_time_ms, g->price_per_token, g->min_fee, g->delta_reward,
                          g->validator_reward, g->burn_bps, g->share_router_bps,
                          g->share_validators_bps, g->slash_bps};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        bly_ledger_be64(b, v[i]);
        bly_sha256_update(&st, b, 8);
    }
    uint32_t bits;
    memcpy(&bits, &g->delta_norm_cap, 4);
    bly_ledger_be64(b, bits);
    bly_sha256_update(&st, b, 8);
    bly_sha256_final(&st, out);
}

//  ---- Accounts ----

int64_t
bly_ledger_find(const bly_ledger_t *self, const uint8_t key[32])
{
    size_t lo = 0, hi = self->slot_count;
    while (lo < hi) {  //  Bounded: halves each time.
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(self->slots[mid].a.key, key, 32);
        if (c == 0)
            return (int64_t) mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1 - (int64_t) lo;  //  Where it would go, encoded below -1.
}

int
bly_ledger_reserve(bly_ledger_t *self, size_t accounts)
{
    bly_assert(self);
    size_t need = self->slot_count + accounts;
    if (need > BLY_LEDGER_ACCOUNTS_MAX)
        return -1;
    if (need <= self->slot_capacity)
        return 0;
    size_t cap = self->slot_capacity ? self->slot_capacity : 64;
    while (cap < need)
        cap *= 2;
    s_slot_t *slots = realloc(self->slots, cap * sizeof(*slots));
    if (!slots)
        return -1;
    self->slots = slots;
    uint8_t *scratch = realloc(self->scratch, cap * 32);
    if (!scratch)
        return -1;
    self->scratch = scratch;
    self->slot_capacity = cap;
    return 0;
}

static bly_ledger_undo_t *
s_log(bly_ledger_t *self, int kind)
{
    bly_assert(self->open);
    if (self->undo_count == self->undo_capacity) {
        size_t cap = self->undo_capacity ? self->undo_capacity * 2 : 1024;
        bly_ledger_undo_t *u = realloc(self->undo, cap * sizeof(*u));
        //  Out of memory in the middle of a block cannot be undone half-way; the
        //  log is reserved at block begin for the common case.
        bly_assert(u);
        self->undo = u;
        self->undo_capacity = cap;
    }
    bly_ledger_undo_t *e = &self->undo[self->undo_count++];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    return e;
}

bly_ledger_account_t *
bly_ledger_touch(bly_ledger_t *self, const uint8_t key[32])
{
    bly_assert(self->open);
    int64_t at = bly_ledger_find(self, key);
    if (at < 0) {
        size_t pos = (size_t) (-(at + 1));
        bly_assert(self->slot_count < self->slot_capacity);
        memmove(&self->slots[pos + 1], &self->slots[pos],
                (self->slot_count - pos) * sizeof(s_slot_t));
        memset(&self->slots[pos], 0, sizeof(s_slot_t));
        memcpy(self->slots[pos].a.key, key, 32);
        self->slot_count++;
        self->shape++;
        bly_ledger_undo_t *e = s_log(self, BLY_LEDGER_UNDO_ACCOUNT);
        memcpy(e->old.key, key, 32);
        e->existed = false;
        self->slots[pos].touched = self->generation;
        return &self->slots[pos].a;
    }
    s_slot_t *slot = &self->slots[at];
    if (slot->touched != self->generation) {
        bly_ledger_undo_t *e = s_log(self, BLY_LEDGER_UNDO_ACCOUNT);
        e->old = slot->a;
        e->existed = true;
        slot->touched = self->generation;
    }
    return &slot->a;
}

int
bly_ledger_account(const bly_ledger_t *self, const uint8_t key[32], bly_ledger_account_t *out)
{
    bly_assert(self);
    bly_assert(out);
    int64_t at = bly_ledger_find(self, key);
    if (at < 0) {
        memset(out, 0, sizeof(*out));
        memcpy(out->key, key, 32);
        return -1;
    }
    *out = self->slots[at].a;
    return 0;
}

size_t
bly_ledger_account_count(const bly_ledger_t *self)
{
    return self->slot_count;
}

const bly_ledger_account_t *
bly_ledger_account_at(const bly_ledger_t *self, size_t index)
{
    bly_assert(index < self->slot_count);
    return &self->slots[index].a;
}

//  ---- Replay set (linear probing; no rehash while a block is open) ----

static size_t
s_seen_slot(const bly_ledger_t *self, const uint8_t key[32])
{
    uint64_t h;
    memcpy(&h, key, 8);
    size_t mask = self->seen_capacity - 1;
    size_t i = (size_t) h & mask;
    for (size_t n = 0; n < self->seen_capacity; n++, i = (i + 1) & mask) {
        if (memcmp(self->seen[i], key, 32) == 0 || memcmp(self->seen[i], s_zero, 32) == 0)
            return i;
    }
    bly_assert(!"seen table full");  //  Never: its load is at most one half.
    return 0;
}

bool
bly_ledger_seen_has(const bly_ledger_t *self, const uint8_t key[32])
{
    if (self->seen_count == 0)
        return false;
    return memcmp(self->seen[s_seen_slot(self, key)], key, 32) == 0;
}

static int
s_seen_reserve(bly_ledger_t *self, size_t more)
{
    size_t need = self->seen_count + more;
    if (need > BLY_LEDGER_SEEN_MAX)
        return -1;
    if (need * 2 <= self->seen_capacity)
        return 0;
    size_t cap = self->seen_capacity ? self->seen_capacity : 1024;
    while (cap < need * 2)
        cap *= 2;
    uint8_t(*old)[32] = self->seen;
    size_t old_cap = self->seen_capacity;
    self->seen = calloc(cap, 32);
    if (!self->seen) {
        self->seen = old;
        return -1;
    }
    self->seen_capacity = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (memcmp(old[i], s_zero, 32) != 0)
            memcpy(self->seen[s_seen_slot(self, old[i])], old[i], 32);
    }
    free(old);
    return 0;
}

static void
s_seen_insert(bly_ledger_t *self, const uint8_t key[32])
{
    bly_assert(self->seen_count * 2 < self->seen_capacity);
    size_t i = s_seen_slot(self, key);
    bly_assert(memcmp(self->seen[i], key, 32) != 0);
    memcpy(self->seen[i], key, 32);
    self->seen_count++;
    bly_sha256_t st;
    bly_sha256_init(&st);
    bly_sha256_update(&st, self->seen_chain, 32);
    bly_sha256_update(&st, key, 32);
    bly_sha256_final(&st, self->seen_chain);
}

void
bly_ledger_seen_add(bly_ledger_t *self, const uint8_t key[32])
{
    bly_assert(self->open);
    s_seen_insert(self, key);
    bly_ledger_undo_t *e = s_log(self, BLY_LEDGER_UNDO_SEEN);
    memcpy(e->key, key, 32);
}

//  ---- PoL nodes ----

bool
bly_ledger_pol_room(const bly_ledger_t *self)
{
    return self->pol_count < BLY_LEDGER_POL_NODES_MAX;
}

void
bly_ledger_pol_append(bly_ledger_t *self, const bly_ledger_pol_t *node)
{
    bly_assert(self->pol_count < self->pol_capacity);
    self->pol[self->pol_count++] = *node;
    self->pol_dirty = true;
}

int64_t
bly_ledger_pol_index(const bly_ledger_t *self, const uint8_t id[32])
{
    for (size_t i = 0; i < self->pol_count; i++) {  //  Bounded by POL_NODES_MAX.
        if (memcmp(self->pol[i].id, id, 32) == 0)
            return (int64_t) i;
    }
    return -1;
}

void
bly_ledger_log_pol(bly_ledger_t *self, size_t index)
{
    bly_assert(index < self->pol_count);
    bly_ledger_undo_t *e = s_log(self, BLY_LEDGER_UNDO_POL);
    e->index = index;
    e->old_accepted = self->pol[index].accepted;
    e->old_version = self->pol[index].version;
    e->old_attest_stake = self->pol[index].attest_stake;
    self->pol_dirty = true;
}

void
bly_ledger_log_layer(bly_ledger_t *self, uint32_t layer)
{
    bly_assert(layer < BLY_LEDGER_POL_LAYERS_MAX);
    bly_ledger_undo_t *e = s_log(self, BLY_LEDGER_UNDO_LAYER);
    e->index = layer;
    e->old_current = self->layer_current[layer];
}

//  ---- Merkle roots ----

static void
s_leaf_account(const bly_ledger_account_t *a, uint8_t out[32])
{
    uint8_t buf[1 + 32 + 24];
    buf[0] = 0x00;
    memcpy(buf + 1, a->key, 32);
    bly_ledger_be64(buf + 33, a->balance);
    bly_ledger_be64(buf + 41, a->nonce);
    bly_ledger_be64(buf + 49, a->stake);
    bly_sha256(out, buf, sizeof(buf));
}

static void
s_node_hash(const uint8_t *l, const uint8_t *r, uint8_t out[32])
{
    uint8_t buf[65];
    buf[0] = 0x01;
    memcpy(buf + 1, l, 32);
    memcpy(buf + 33, r, 32);
    bly_sha256(out, buf, sizeof(buf));
}

void
bly_ledger_merkle_root(uint8_t *level, size_t n, uint8_t out[32])
{
    bly_assert(level || n == 0);
    if (n == 0) {
        memset(out, 0, 32);
        return;
    }
    while (n > 1) {  //  Halves each round.
        size_t m = 0;
        for (size_t i = 0; i < n; i += 2, m++) {
            if (i + 1 < n)
                s_node_hash(level + i * 32, level + (i + 1) * 32, level + m * 32);
            else
                memmove(level + m * 32, level + i * 32, 32);
        }
        n = m;
    }
    memcpy(out, level, 32);
}

//  Parent `p` of level (at `off`, `count` nodes) into the level after it.
static void
s_tree_parent(uint8_t *tree, size_t off, size_t count, size_t p)
{
    uint8_t *child = tree + (off + 2 * p) * 32, *parent = tree + (off + count + p) * 32;
    if (2 * p + 1 < count)
        s_node_hash(child, child + 32, parent);
    else
        memcpy(parent, child, 32);
}

//  Rehash the parents of the `k` dirty leaves (ascending indexes in tree_dirty),
//  level by level; or every node when `all`. Returns the root's node offset.
static size_t
s_tree_update(bly_ledger_t *self, size_t k, bool all)
{
    size_t off = 0, count = self->slot_count;
    while (count > 1) {  //  Halves each level.
        size_t up = (count + 1) / 2, kept = 0;
        for (size_t j = 0; j < (all ? up : k); j++) {
            size_t p = all ? j : self->tree_dirty[j] / 2;
            if (!all && kept > 0 && self->tree_dirty[kept - 1] == p)
                continue;
            s_tree_parent(self->tree, off, count, p);
            if (!all)
                self->tree_dirty[kept++] = (uint32_t) p;
        }
        k = kept;
        off += count;
        count = up;
    }
    return off;
}

//  The accounts' Merkle root. The tree of the last computation is kept: when no
//  slot moved since, only the paths of leaves that changed are rehashed (a block
//  touches a few accounts of many); otherwise it is rebuilt whole. Same root as
//  bly_ledger_merkle_root over the leaves.
static void
s_accounts_root(bly_ledger_t *self, uint8_t out[32])
{
    size_t n = self->slot_count, nodes = 2 * n + 64;
    for (size_t i = 0; i < n; i++) {
        s_slot_t *s = &self->slots[i];
        if (s->touched != 0 && s->touched == self->generation && self->open)
            s_leaf_account(&s->a, s->leaf);
    }
    if (n == 0) {
        memset(out, 0, 32);
        return;
    }
    if (self->tree_cap < nodes) {
        uint8_t *t = realloc(self->tree, nodes * 32);
        if (t)
            self->tree = t;
        uint32_t *d = realloc(self->tree_dirty, nodes * sizeof(*d));
        if (d)
            self->tree_dirty = d;
        //  Out of memory: fall back to the plain root (slower, same result).
        if (!t || !d) {
            for (size_t i = 0; i < n; i++)
                memcpy(self->scratch + i * 32, self->slots[i].leaf, 32);
            bly_ledger_merkle_root(self->scratch, n, out);
            self->tree_leaves = 0;
            return;
        }
        self->tree_cap = nodes;
        self->tree_leaves = 0;
    }
    bool all = self->tree_leaves != n || self->tree_shape != self->shape;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *leaf = self->tree + i * 32;
        if (all || memcmp(leaf, self->slots[i].leaf, 32) != 0) {
            memcpy(leaf, self->slots[i].leaf, 32);
            self->tree_dirty[k++] = (uint32_t) i;
        }
    }
    memcpy(out, self->tree + s_tree_update(self, k, all) * 32, 32);
    self->tree_leaves = n;
    self->tree_shape = self->shape;
}

static void
s_leaf_pol(const bly_ledger_pol_t *p, uint8_t out[32])
{
    bly_sha256_t st;
    uint8_t b[8];
    uint8_t tag = 0x02;
    bly_sha256_init(&st);
    bly_sha256_update(&st, &tag, 1);
    bly_sha256_update(&st, p->id, 32);
    bly_sha256_update(&st, p->parent, 32);
    bly_sha256_update(&st, p->author, 32);
    bly_sha256_update(&st, p->content, 32);
    bly_sha256_update(&st, p->shape, 32);
    const uint64_t v[] = {p->kind, p->accepted, p->layer, p->version, p->height, p->attest_stake};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        bly_ledger_be64(b, v[i]);
        bly_sha256_update(&st, b, 8);
    }
    bly_sha256_final(&st, out);
}

static int
s_pol_root(bly_ledger_t *self)
{
    if (!self->pol_dirty)
        return 0;
    uint8_t *level = malloc(self->pol_count * 32 + 32);
    if (!level)
        return -1;
    for (size_t i = 0; i < self->pol_count; i++)
        s_leaf_pol(&self->pol[i], level + i * 32);
    bly_ledger_merkle_root(level, self->pol_count, self->pol_root);
    free(level);
    self->pol_dirty = false;
    return 0;
}

void
bly_ledger_extra_root(const bly_ledger_t *self, uint8_t out[32])
{
    uint8_t buf[1 + 32 + 8 + 8 + 32 + 8];
    buf[0] = 0x03;
    memcpy(buf + 1, self->params_hash, 32);
    bly_ledger_be64(buf + 33, self->reward_pool);
    bly_ledger_be64(buf + 41, self->burned);
    memcpy(buf + 49, self->seen_chain, 32);
    bly_ledger_be64(buf + 81, self->layer_count);
    bly_sha256(out, buf, sizeof(buf));
}

static void
s_app_hash(const uint8_t acc[32], const uint8_t pol[32], const uint8_t extra[32], uint8_t out[32])
{
    uint8_t buf[1 + 96];
    buf[0] = 0x04;
    memcpy(buf + 1, acc, 32);
    memcpy(buf + 33, pol, 32);
    memcpy(buf + 65, extra, 32);
    bly_sha256(out, buf, sizeof(buf));
}

void
bly_ledger_compute_app_hash(bly_ledger_t *self, uint8_t out[32])
{
    uint8_t acc[32], extra[32];
    s_accounts_root(self, acc);
    //  The PoL root needs a level buffer: an allocation failure here is out of memory
    //  with at most POL_NODES_MAX x 32 bytes; treat it as fatal rather than hash wrong.
    bly_assert(s_pol_root(self) == 0);
    bly_ledger_extra_root(self, extra);
    s_app_hash(acc, self->pol_root, extra, out);
}

//  ---- Lifecycle ----

bly_ledger_t *
bly_ledger_new_empty(const bly_ledger_genesis_t *g)
{
    bly_assert(g);
    char err[256];
    if (sodium_init() < 0) {
        bly_log_error("ledger: libsodium does not initialise");
        return NULL;
    }
    if (bly_ledger_genesis_check(g, err, sizeof(err))) {
        bly_log_error("ledger: genesis refused: %s", err);
        return NULL;
    }
    bly_ledger_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->genesis = *g;
    bly_ledger_params_hash(g, self->params_hash);
    self->pol_capacity = BLY_LEDGER_POL_NODES_MAX;
    self->pol = calloc(self->pol_capacity, sizeof(*self->pol));
    self->sigcache = calloc(BLY_LEDGER_SIGCACHE_SIZE, sizeof(*self->sigcache));
    if (!self->pol || !self->sigcache || bly_ledger_reserve(self, g->account_count + 64) || s_seen_reserve(self, 1024)) {
        bly_ledger_destroy(&self);
        return NULL;
    }
    for (size_t i = 0; i < BLY_LEDGER_POL_LAYERS_MAX; i++)
        self->layer_current[i] = -1;
    self->reward_pool = g->reward_pool;
    self->time_ms = g->genesis_time_ms;
    return self;
}

bly_ledger_t *
bly_ledger_new(const bly_ledger_genesis_t *g)
{
    bly_ledger_t *self = bly_ledger_new_empty(g);
    if (!self)
        return NULL;
    bly_ledger_pol_t genesis = {.kind = BLY_LEDGER_POL_GENESIS, .accepted = true};
    bly_ledger_pol_genesis_id(g->chain_id, genesis.id);
    bly_ledger_pol_append(self, &genesis);
    for (size_t i = 0; i < g->account_count; i++) {
        if (bly_ledger_load_account(self, &g->accounts[i]))
            goto out_free;
    }
    if (bly_ledger_load_finish(self))
        goto out_free;
    return self;
out_free:
    bly_ledger_destroy(&self);
    return NULL;
}

void
bly_ledger_destroy(bly_ledger_t **self_p)
{
    bly_assert(self_p);
    bly_ledger_t *self = *self_p;
    if (!self)
        return;
    free(self->undo);
    free(self->journal);
    free(self->seen);
    free(self->sigcache);
    free(self->pol);
    free(self->scratch);
    free(self->tree);
    free(self->tree_dirty);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

int
bly_ledger_load_account(bly_ledger_t *self, const bly_ledger_account_t *account)
{
    bly_assert(self);
    bly_assert(!self->open);
    if (!bly_ledger_key_valid(account->key))
        return -1;
    if (self->slot_count > 0 && memcmp(self->slots[self->slot_count - 1].a.key, account->key, 32) >= 0) {
        //  Genesis accounts may come in any order: insert in place.
        int64_t at = bly_ledger_find(self, account->key);
        if (at >= 0 || bly_ledger_reserve(self, 1))
            return -1;
        size_t pos = (size_t) (-(at + 1));
        memmove(&self->slots[pos + 1], &self->slots[pos],
                (self->slot_count - pos) * sizeof(s_slot_t));
        memset(&self->slots[pos], 0, sizeof(s_slot_t));
        self->slots[pos].a = *account;
        s_leaf_account(account, self->slots[pos].leaf);
        self->slot_count++;
        self->shape++;
        return 0;
    }
    if (bly_ledger_reserve(self, 1))
        return -1;
    s_slot_t *s = &self->slots[self->slot_count++];
    self->shape++;
    memset(s, 0, sizeof(*s));
    s->a = *account;
    s_leaf_account(account, s->leaf);
    return 0;
}

int
bly_ledger_load_pol(bly_ledger_t *self, const bly_ledger_pol_t *node)
{
    bly_assert(self);
    if (!bly_ledger_pol_room(self) || node->kind > BLY_LEDGER_POL_DELTA)
        return -1;
    bly_ledger_pol_append(self, node);
    return 0;
}

int
bly_ledger_load_seen(bly_ledger_t *self, const uint8_t key[32])
{
    bly_assert(self);
    if (memcmp(key, s_zero, 32) == 0 || s_seen_reserve(self, 1) || bly_ledger_seen_has(self, key))
        return -1;
    size_t i = s_seen_slot(self, key);
    memcpy(self->seen[i], key, 32);
    self->seen_count++;
    return 0;
}

//  Rebuild what follows from the rows: total stake, layer table, app hash.
int
bly_ledger_load_finish(bly_ledger_t *self)
{
    bly_assert(self);
    uint64_t stake = 0;
    for (size_t i = 0; i < self->slot_count; i++) {
        if (__builtin_add_overflow(stake, self->slots[i].a.stake, &stake))
            return -1;
    }
    self->total_stake = stake;
    for (size_t i = 0; i < BLY_LEDGER_POL_LAYERS_MAX; i++)
        self->layer_current[i] = -1;
    self->layer_count = 0;
    for (size_t i = 0; i < self->pol_count; i++) {
        const bly_ledger_pol_t *p = &self->pol[i];
        if (p->kind == BLY_LEDGER_POL_META)
            self->layer_count = p->layer;
        if ((p->kind == BLY_LEDGER_POL_LAYER || p->kind == BLY_LEDGER_POL_DELTA) && p->accepted) {
            if (p->layer >= BLY_LEDGER_POL_LAYERS_MAX)
                return -1;
            int64_t cur = self->layer_current[p->layer];
            if (cur < 0 || self->pol[cur].version < p->version)
                self->layer_current[p->layer] = (int64_t) i;
        }
    }
    self->pol_dirty = true;
    bly_ledger_compute_app_hash(self, self->app_hash);
    return 0;
}

//  ---- Queries ----

const char *
bly_ledger_chain_id(const bly_ledger_t *self)
{
    return self->genesis.chain_id;
}

const bly_ledger_genesis_t *
bly_ledger_genesis(const bly_ledger_t *self)
{
    return &self->genesis;
}

uint64_t
bly_ledger_height(const bly_ledger_t *self)
{
    return self->height;
}

uint64_t
bly_ledger_time_ms(const bly_ledger_t *self)
{
    return self->time_ms;
}

const uint8_t *
bly_ledger_block_hash(const bly_ledger_t *self)
{
    return self->block_hash;
}

const uint8_t *
bly_ledger_app_hash(const bly_ledger_t *self)
{
    return self->app_hash;
}

uint64_t
bly_ledger_total_stake(const bly_ledger_t *self)
{
    return self->total_stake;
}

void
bly_ledger_supply(const bly_ledger_t *self, bly_ledger_supply_t *out)
{
    bly_assert(self);
    bly_assert(out);
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < self->slot_count; i++) {
        //  Genesis check keeps the total within u64, and supply is conserved.
        bly_assert(!__builtin_add_overflow(out->balances, self->slots[i].a.balance, &out->balances));
        bly_assert(!__builtin_add_overflow(out->stakes, self->slots[i].a.stake, &out->stakes));
    }
    out->reward_pool = self->reward_pool;
    out->burned = self->burned;
}

size_t
bly_ledger_validators(const bly_ledger_t *self, bly_ledger_account_t *out, size_t max)
{
    bly_assert(self);
    bly_assert(out || max == 0);
    size_t n = 0;
    for (size_t i = 0; i < self->slot_count; i++) {
        if (self->slots[i].a.stake == 0)
            continue;
        if (n < max)
            out[n] = self->slots[i].a;
        n++;
    }
    return n;
}

//  ---- Open block: begin, undo, commit ----

//  Open a block: save scalars, reserve capacity so nothing inside can fail for room.
int
bly_ledger_open(bly_ledger_t *self, size_t tx_count)
{
    bly_assert(!self->open);
    if (s_seen_reserve(self, tx_count * 2 + 2))
        return -1;
    if (self->undo_capacity < tx_count * 4 + 16) {
        size_t cap = tx_count * 4 + 16;
        bly_ledger_undo_t *u = realloc(self->undo, cap * sizeof(*u));
        if (!u)
            return -1;
        self->undo = u;
        self->undo_capacity = cap;
    }
    bly_ledger_saved_t *s = &self->saved;
    s->reward_pool = self->reward_pool;
    s->burned = self->burned;
    s->total_stake = self->total_stake;
    s->height = self->height;
    s->time_ms = self->time_ms;
    memcpy(s->block_hash, self->block_hash, 32);
    memcpy(s->app_hash, self->app_hash, 32);
    memcpy(s->seen_chain, self->seen_chain, 32);
    s->layer_count = self->layer_count;
    s->pol_count = self->pol_count;
    self->undo_count = 0;
    self->generation++;
    self->open = true;
    return 0;
}

static void
s_undo_one(bly_ledger_t *self, const bly_ledger_undo_t *e)
{
    if (e->kind == BLY_LEDGER_UNDO_ACCOUNT) {
        int64_t at = bly_ledger_find(self, e->old.key);
        bly_assert(at >= 0);
        if (e->existed) {
            self->slots[at].a = e->old;
            s_leaf_account(&e->old, self->slots[at].leaf);
        } else {
            memmove(&self->slots[at], &self->slots[at + 1],
                    (self->slot_count - (size_t) at - 1) * sizeof(s_slot_t));
            self->slot_count--;
            self->shape++;
        }
    } else if (e->kind == BLY_LEDGER_UNDO_POL) {
        bly_ledger_pol_t *p = &self->pol[e->index];
        p->accepted = e->old_accepted;
        p->version = e->old_version;
        p->attest_stake = e->old_attest_stake;
    } else if (e->kind == BLY_LEDGER_UNDO_LAYER) {
        self->layer_current[e->index] = e->old_current;
    } else {
        bly_assert(e->kind == BLY_LEDGER_UNDO_SEEN);
        //  Removing in reverse insertion order (and no rehash while open) restores
        //  the linear-probing table exactly.
        size_t i = s_seen_slot(self, e->key);
        bly_assert(memcmp(self->seen[i], e->key, 32) == 0);
        memset(self->seen[i], 0, 32);
        self->seen_count--;
    }
}

void
bly_ledger_block_abort(bly_ledger_t *self)
{
    bly_assert(self);
    bly_assert(self->open);
    for (size_t i = self->undo_count; i > 0; i--)
        s_undo_one(self, &self->undo[i - 1]);
    const bly_ledger_saved_t *s = &self->saved;
    self->reward_pool = s->reward_pool;
    self->burned = s->burned;
    self->total_stake = s->total_stake;
    self->height = s->height;
    self->time_ms = s->time_ms;
    memcpy(self->block_hash, s->block_hash, 32);
    memcpy(self->app_hash, s->app_hash, 32);
    memcpy(self->seen_chain, s->seen_chain, 32);
    self->layer_count = s->layer_count;
    if (self->pol_count != s->pol_count || self->undo_count > 0)
        self->pol_dirty = true;
    self->pol_count = s->pol_count;
    self->undo_count = 0;
    self->open = false;
}

//  A following store writes these rows at its next flush.
static void
s_journal(bly_ledger_t *self)
{
    size_t need = self->journal_count + self->undo_count;
    if (need > self->journal_capacity) {
        size_t cap = self->journal_capacity ? self->journal_capacity : 1024;
        while (cap < need)
            cap *= 2;
        bly_ledger_undo_t *j = realloc(self->journal, cap * sizeof(*j));
        //  The block is already applied: losing its rows would make the store wrong.
        bly_assert(j);
        self->journal = j;
        self->journal_capacity = cap;
    }
    for (size_t i = 0; i < self->undo_count; i++) {
        const bly_ledger_undo_t *e = &self->undo[i];
        if (e->kind == BLY_LEDGER_UNDO_ACCOUNT || e->kind == BLY_LEDGER_UNDO_SEEN ||
            (e->kind == BLY_LEDGER_UNDO_POL && e->index < self->journal_pol_base))
            self->journal[self->journal_count++] = *e;
    }
}

void
bly_ledger_set_verified(bly_ledger_t *self, bly_ledger_verified_fn *fn, void *ctx)
{
    bly_assert(self);
    self->verified = fn;
    self->verified_ctx = ctx;
}

void
bly_ledger_block_commit(bly_ledger_t *self)
{
    bly_assert(self);
    bly_assert(self->open);
    if (self->journal_on)
        s_journal(self);
    self->height = self->open_height;
    self->time_ms = self->open_time_ms;
    memcpy(self->block_hash, self->open_hash, 32);
    //  The app hash was computed when the block was applied (begin).
    self->undo_count = 0;
    self->open = false;
}

bool
bly_ledger_block_is_open(const bly_ledger_t *self)
{
    return self->open;
}

const uint8_t *
bly_ledger_open_block_hash(const bly_ledger_t *self)
{
    bly_assert(self->open);
    return self->open_hash;
}
