/*  =========================================================================
    bly_ledger_store - the ledger in LMDB (see the header for the contract)

    Databases and records (big-endian integers):
      meta      "genesis" -> 32-byte genesis id (params + initial accounts)
                "head"    -> height, time_ms, block hash, app hash, reward
                             pool, burned, replay-set chain (128 bytes)
      accounts  key (32)  -> balance, nonce, stake (24 bytes)
      pol       index (8) -> PoL node (190 bytes)
      seen      key (32)  -> one zero byte
      blocks    hash (32) -> the encoded block
      heights   height(8) -> block hash (32)
      txs       hash (32) -> height (8), index in the block (4)
    ========================================================================= */

#include "bly_ledger_store.h"
#include "bly_sha256.h"
#include "bly_ledger_internal.h"

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_HEAD_SIZE 128
#define S_POL_SIZE 190

enum { S_META, S_ACCOUNTS, S_POL, S_SEEN, S_BLOCKS, S_HEIGHTS, S_TXS, S_DB_COUNT };
static const char *const s_db_names[S_DB_COUNT] = {"meta", "accounts", "pol", "seen",
                                                   "blocks", "heights", "txs"};
_Static_assert(S_DB_COUNT <= BLY_LEDGER_MAX_DBS, "databases fit in maxdbs");

struct bly_ledger_store_t {
    MDB_env *env;               //  The environment.
    MDB_dbi dbi[S_DB_COUNT];    //  Named databases.
    uint8_t genesis_id[32];     //  Expected genesis id.
};

#define s_fail bly_ledger_fail

static uint64_t
s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void
s_genesis_id(const bly_ledger_genesis_t *g, uint8_t out[32])
{
    bly_sha256_t st;
    uint8_t params[32], b[24];
    bly_ledger_params_hash(g, params);
    bly_sha256_init(&st);
    bly_sha256_update(&st, params, 32);
    bly_ledger_be64(b, g->reward_pool);
    bly_sha256_update(&st, b, 8);
    for (size_t i = 0; i < g->account_count; i++) {
        bly_sha256_update(&st, g->accounts[i].key, 32);
        bly_ledger_be64(b, g->accounts[i].balance);
        bly_ledger_be64(b + 8, g->accounts[i].stake);
        bly_sha256_update(&st, b, 16);
    }
    bly_sha256_final(&st, out);
}

//  ---- Records ----

static void
s_pol_encode(const bly_ledger_pol_t *p, uint8_t out[S_POL_SIZE])
{
    memcpy(out, p->id, 32);
    memcpy(out + 32, p->parent, 32);
    memcpy(out + 64, p->author, 32);
    memcpy(out + 96, p->content, 32);
    memcpy(out + 128, p->shape, 32);
    out[160] = p->kind;
    out[161] = p->accepted ? 1 : 0;
    uint8_t b[8];
    bly_ledger_be64(b, p->layer);
    memcpy(out + 162, b + 4, 4);
    bly_ledger_be64(out + 166, p->version);
    bly_ledger_be64(out + 174, p->height);
    bly_ledger_be64(out + 182, p->attest_stake);
}

//  Decode and check a PoL record read back; -1 when it is not one we could write.
static int
s_pol_decode(const MDB_val *v, bly_ledger_pol_t *p)
{
    if (v->mv_size != S_POL_SIZE)
        return -1;
    const uint8_t *in = v->mv_data;
    memset(p, 0, sizeof(*p));
    memcpy(p->id, in, 32);
    memcpy(p->parent, in + 32, 32);
    memcpy(p->author, in + 64, 32);
    memcpy(p->content, in + 96, 32);
    memcpy(p->shape, in + 128, 32);
    p->kind = in[160];
    p->accepted = in[161] == 1;
    p->layer = ((uint32_t) in[162] << 24) | ((uint32_t) in[163] << 16) | ((uint32_t) in[164] << 8)
               | in[165];
    p->version = s_get64(in + 166);
    p->height = s_get64(in + 174);
    p->attest_stake = s_get64(in + 182);
    if (p->kind > BLY_LEDGER_POL_DELTA || in[161] > 1 || p->layer > BLY_LEDGER_POL_LAYERS_MAX)
        return -1;
    return 0;
}

static int
s_put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t ks, const void *d, size_t ds)
{
    MDB_val key = {ks, (void *) k}, val = {ds, (void *) d};
    return mdb_put(txn, dbi, &key, &val, 0);
}

static int
s_put_account(bly_ledger_store_t *self, MDB_txn *txn, const bly_ledger_account_t *a)
{
    //  Pair assertion, write side (cheap: full point validation happened when the
    //  account was created, and runs again on every read at open).
    static const uint8_t zero[32];
    uint64_t sum;
    bly_assert(memcmp(a->key, zero, 32) != 0);
    bly_assert(!__builtin_add_overflow(a->balance, a->stake, &sum));
    uint8_t v[24];
    bly_ledger_be64(v, a->balance);
    bly_ledger_be64(v + 8, a->nonce);
    bly_ledger_be64(v + 16, a->stake);
    return s_put(txn, self->dbi[S_ACCOUNTS], a->key, 32, v, 24);
}

static int
s_put_pol(bly_ledger_store_t *self, MDB_txn *txn, const bly_ledger_pol_t *p, uint64_t index)
{
    bly_assert(p->kind <= BLY_LEDGER_POL_DELTA);
    uint8_t k[8], v[S_POL_SIZE];
    bly_ledger_be64(k, index);
    s_pol_encode(p, v);
    return s_put(txn, self->dbi[S_POL], k, 8, v, S_POL_SIZE);
}

static int
s_put_head(bly_ledger_store_t *self, MDB_txn *txn, const bly_ledger_t *l, uint64_t height,
           uint64_t time_ms, const uint8_t block_hash[32])
{
    uint8_t v[S_HEAD_SIZE];
    bly_ledger_be64(v, height);
    bly_ledger_be64(v + 8, time_ms);
    memcpy(v + 16, block_hash, 32);
    memcpy(v + 48, l->app_hash, 32);
    bly_ledger_be64(v + 80, l->reward_pool);
    bly_ledger_be64(v + 88, l->burned);
    memcpy(v + 96, l->seen_chain, 32);
    return s_put(txn, self->dbi[S_META], "head", 4, v, S_HEAD_SIZE);
}

//  ---- Writing a block ----

//  Index every transaction of a decoded block by hash.
static int
s_put_txs_of(bly_ledger_store_t *self, MDB_txn *txn, const bly_ledger_msg_t *b, uint64_t height)
{
    int rc = 0;
    size_t n = bly_ledger_msg_txs_count(b);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const bly_ledger_tx_blob_t *t = bly_ledger_msg_txs_at(b, i);
        uint8_t hash[32], v[12];
        bly_ledger_tx_hash(t->data, t->data_size, hash);
        bly_ledger_be64(v, height);
        v[8] = (uint8_t) (i >> 24);
        v[9] = (uint8_t) (i >> 16);
        v[10] = (uint8_t) (i >> 8);
        v[11] = (uint8_t) i;
        rc = s_put(txn, self->dbi[S_TXS], hash, 32, v, 12);
    }
    return rc;
}

static int
s_put_txs(bly_ledger_store_t *self, MDB_txn *txn, const uint8_t *block, size_t size,
          uint64_t height)
{
    bly_ledger_msg_t *b = NULL;
    if (bly_ledger_msg_decode(block, size, &b, NULL, 0))
        return EINVAL;
    int rc = s_put_txs_of(self, txn, b, height);
    bly_ledger_msg_destroy(&b);
    return rc;
}

//  The changed state rows of the open block.
static int
s_put_changes(bly_ledger_store_t *self, MDB_txn *txn, const bly_ledger_t *l)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l->undo_count; i++) {
        const bly_ledger_undo_t *e = &l->undo[i];
        if (e->kind == BLY_LEDGER_UNDO_ACCOUNT) {
            int64_t at = bly_ledger_find(l, e->old.key);
            bly_assert(at >= 0);
            rc = s_put_account(self, txn, &l->slots[at].a);
        } else if (e->kind == BLY_LEDGER_UNDO_POL && e->index < l->saved.pol_count) {
            rc = s_put_pol(self, txn, &l->pol[e->index], e->index);
        } else if (e->kind == BLY_LEDGER_UNDO_SEEN) {
            rc = s_put(txn, self->dbi[S_SEEN], e->key, 32, "", 1);
        }
    }
    for (size_t i = l->saved.pol_count; rc == 0 && i < l->pol_count; i++)
        rc = s_put_pol(self, txn, &l->pol[i], i);
    return rc;
}

int
bly_ledger_store_write(bly_ledger_store_t *self, const bly_ledger_t *ledger, const uint8_t *block,
                       size_t size, char *err, size_t err_size)
{
    bly_assert(self);
    bly_assert(ledger);
    bly_assert(ledger->open);
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(self->env, NULL, 0, &txn);
    if (rc)
        return s_fail(err, err_size, "ledger store: cannot begin a write: %s", mdb_strerror(rc));
    uint8_t hk[8];
    bly_ledger_be64(hk, ledger->open_height);
    rc = s_put_changes(self, txn, ledger);
    if (rc == 0)
        rc = s_put(txn, self->dbi[S_BLOCKS], ledger->open_hash, 32, block, size);
    if (rc == 0)
        rc = s_put(txn, self->dbi[S_HEIGHTS], hk, 8, ledger->open_hash, 32);
    if (rc == 0)
        rc = s_put_txs(self, txn, block, size, ledger->open_height);
    if (rc == 0)
        rc = s_put_head(self, txn, ledger, ledger->open_height, ledger->open_time_ms,
                        ledger->open_hash);
    if (rc) {
        //  A failed write transaction is poisoned: abort it whole.
        mdb_txn_abort(txn);
        return s_fail(err, err_size, "ledger store: block %llu not written: %s%s",
                      (unsigned long long) ledger->open_height, mdb_strerror(rc),
                      rc == MDB_MAP_FULL ? " (raise the map size)" : "");
    }
    rc = mdb_txn_commit(txn);
    if (rc)
        return s_fail(err, err_size, "ledger store: block %llu commit failed: %s",
                      (unsigned long long) ledger->open_height, mdb_strerror(rc));
    return 0;
}

int
bly_ledger_store_apply(bly_ledger_store_t *self, bly_ledger_t *ledger, const uint8_t *block,
                       size_t size, char *err, size_t err_size)
{
    bly_assert(self);
    bly_assert(ledger);
    if (bly_ledger_block_begin(ledger, block, size, err, err_size))
        return -1;
    if (bly_ledger_store_write(self, ledger, block, size, err, err_size)) {
        bly_ledger_block_abort(ledger);
        return -1;
    }
    bly_ledger_block_commit(ledger);
    return 0;
}

//  ---- Following a ledger: blocks committed in memory, written in batches ----

void
bly_ledger_store_follow(bly_ledger_store_t *self, bly_ledger_t *ledger)
{
    bly_assert(self && ledger);
    bly_assert(!ledger->open);
    ledger->journal_on = true;
    ledger->journal_count = 0;
    ledger->journal_height = ledger->height;
    ledger->journal_pol_base = ledger->pol_count;
}

int
bly_ledger_store_relax(bly_ledger_store_t *self)
{
    bly_assert(self);
    return mdb_env_set_flags(self->env, MDB_NOMETASYNC, 1) == 0 ? 0 : -1;
}

uint64_t
bly_ledger_store_followed_height(const bly_ledger_t *ledger)
{
    bly_assert(ledger && ledger->journal_on);
    return ledger->journal_height;
}

//  One committed block: its bytes by header hash, its height, its transactions.
static int
s_put_block(bly_ledger_store_t *self, MDB_txn *txn, const uint8_t *block, size_t size,
            uint64_t height)
{
    bly_ledger_msg_t *b = NULL;
    uint8_t hash[32], hk[8];
    if (bly_ledger_msg_decode(block, size, &b, NULL, 0))
        return EINVAL;
    int rc = bly_ledger_msg_height(b) == height && bly_ledger_header_hash(b, hash) == 0 ? 0
                                                                                       : EINVAL;
    bly_ledger_be64(hk, height);
    if (rc == 0)
        rc = s_put(txn, self->dbi[S_BLOCKS], hash, 32, block, size);
    if (rc == 0)
        rc = s_put(txn, self->dbi[S_HEIGHTS], hk, 8, hash, 32);
    if (rc == 0)
        rc = s_put_txs_of(self, txn, b, height);
    bly_ledger_msg_destroy(&b);
    return rc;
}

//  The journalled rows: accounts and replay-set keys, changed and new PoL nodes.
static int
s_put_journal(bly_ledger_store_t *self, MDB_txn *txn, const bly_ledger_t *l)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l->journal_count; i++) {
        const bly_ledger_undo_t *e = &l->journal[i];
        if (e->kind == BLY_LEDGER_UNDO_ACCOUNT) {
            int64_t at = bly_ledger_find(l, e->old.key);
            bly_assert(at >= 0);
            rc = s_put_account(self, txn, &l->slots[at].a);
        } else if (e->kind == BLY_LEDGER_UNDO_POL) {
            rc = s_put_pol(self, txn, &l->pol[e->index], e->index);
        } else {
            bly_assert(e->kind == BLY_LEDGER_UNDO_SEEN);
            rc = s_put(txn, self->dbi[S_SEEN], e->key, 32, "", 1);
        }
    }
    for (size_t i = l->journal_pol_base; rc == 0 && i < l->pol_count; i++)
        rc = s_put_pol(self, txn, &l->pol[i], i);
    return rc;
}

int
bly_ledger_store_flush(bly_ledger_store_t *self, bly_ledger_t *ledger,
                       const uint8_t *const *blocks, const size_t *sizes, size_t count,
                       char *err, size_t err_size)
{
    bly_assert(self && ledger);
    bly_assert(ledger->journal_on && !ledger->open);
    if (ledger->height - ledger->journal_height != count)
        return s_fail(err, err_size, "ledger store: %zu blocks to flush, the ledger is %llu ahead",
                      count, (unsigned long long) (ledger->height - ledger->journal_height));
    if (count == 0)
        return 0;
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(self->env, NULL, 0, &txn);
    if (rc)
        return s_fail(err, err_size, "ledger store: cannot begin a write: %s", mdb_strerror(rc));
    rc = s_put_journal(self, txn, ledger);
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = s_put_block(self, txn, blocks[i], sizes[i], ledger->journal_height + 1 + i);
    if (rc == 0)
        rc = s_put_head(self, txn, ledger, ledger->height, ledger->time_ms, ledger->block_hash);
    if (rc) {
        mdb_txn_abort(txn);
        return s_fail(err, err_size, "ledger store: blocks up to %llu not written: %s%s",
                      (unsigned long long) ledger->height, mdb_strerror(rc),
                      rc == MDB_MAP_FULL ? " (raise the map size)" : "");
    }
    rc = mdb_txn_commit(txn);
    if (rc)
        return s_fail(err, err_size, "ledger store: commit up to %llu failed: %s",
                      (unsigned long long) ledger->height, mdb_strerror(rc));
    ledger->journal_count = 0;
    ledger->journal_height = ledger->height;
    ledger->journal_pol_base = ledger->pol_count;
    return 0;
}

//  ---- Opening ----

//  Write the genesis state of a fresh store.
static int
s_init(bly_ledger_store_t *self, MDB_txn *txn, const bly_ledger_t *l)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l->slot_count; i++)
        rc = s_put_account(self, txn, &l->slots[i].a);
    for (size_t i = 0; rc == 0 && i < l->pol_count; i++)
        rc = s_put_pol(self, txn, &l->pol[i], i);
    if (rc == 0)
        rc = s_put_head(self, txn, l, 0, l->time_ms, l->block_hash);
    if (rc == 0)
        rc = s_put(txn, self->dbi[S_META], "genesis", 7, self->genesis_id, 32);
    return rc;
}

//  Walk one database with a cursor, handing each record to `fn`.
typedef int (s_row_fn)(bly_ledger_t *l, const MDB_val *k, const MDB_val *v);

static int
s_walk(MDB_txn *txn, MDB_dbi dbi, bly_ledger_t *l, s_row_fn *fn)
{
    MDB_cursor *cur = NULL;
    if (mdb_cursor_open(txn, dbi, &cur))
        return -1;
    MDB_val k, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    int out = 0;
    while (rc == 0 && out == 0) {  //  Bounded by the rows in the database.
        out = fn(l, &k, &v);
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return out == 0 && rc == MDB_NOTFOUND ? 0 : -1;
}

static int
s_row_account(bly_ledger_t *l, const MDB_val *k, const MDB_val *v)
{
    //  Pair assertion, read side (an operating error: the file may be damaged).
    if (k->mv_size != 32 || v->mv_size != 24)
        return -1;
    bly_ledger_account_t a;
    memcpy(a.key, k->mv_data, 32);
    a.balance = s_get64(v->mv_data);
    a.nonce = s_get64((const uint8_t *) v->mv_data + 8);
    a.stake = s_get64((const uint8_t *) v->mv_data + 16);
    return bly_ledger_load_account(l, &a);
}

static int
s_row_pol(bly_ledger_t *l, const MDB_val *k, const MDB_val *v)
{
    bly_ledger_pol_t p;
    if (k->mv_size != 8 || s_get64(k->mv_data) != l->pol_count || s_pol_decode(v, &p))
        return -1;
    return bly_ledger_load_pol(l, &p);
}

static int
s_row_seen(bly_ledger_t *l, const MDB_val *k, const MDB_val *v)
{
    if (k->mv_size != 32 || v->mv_size != 1)
        return -1;
    return bly_ledger_load_seen(l, k->mv_data);
}

//  Rebuild the ledger from the rows and check it against the stored head.
static bly_ledger_t *
s_load(bly_ledger_store_t *self, MDB_txn *txn, const bly_ledger_genesis_t *g, char *err,
       size_t es)
{
    MDB_val k = {4, "head"}, v;
    if (mdb_get(txn, self->dbi[S_META], &k, &v) || v.mv_size != S_HEAD_SIZE) {
        s_fail(err, es, "ledger store: head record missing or damaged");
        return NULL;
    }
    const uint8_t *h = v.mv_data;
    bly_ledger_t *l = bly_ledger_new_empty(g);
    if (!l) {
        s_fail(err, es, "ledger store: out of memory");
        return NULL;
    }
    if (s_walk(txn, self->dbi[S_ACCOUNTS], l, s_row_account)
        || s_walk(txn, self->dbi[S_POL], l, s_row_pol)
        || s_walk(txn, self->dbi[S_SEEN], l, s_row_seen)) {
        s_fail(err, es, "ledger store: a state record is damaged");
        goto out_free;
    }
    l->height = s_get64(h);
    l->time_ms = s_get64(h + 8);
    memcpy(l->block_hash, h + 16, 32);
    l->reward_pool = s_get64(h + 80);
    l->burned = s_get64(h + 88);
    memcpy(l->seen_chain, h + 96, 32);
    char why[128];
    if (bly_ledger_load_finish(l) || bly_ledger_pol_check(l, why, sizeof(why))) {
        s_fail(err, es, "ledger store: state does not rebuild");
        goto out_free;
    }
    if (memcmp(l->app_hash, h + 48, 32) != 0) {
        s_fail(err, es, "ledger store: app hash of the rows differs from the head record");
        goto out_free;
    }
    return l;
out_free:
    bly_ledger_destroy(&l);
    return NULL;
}

static int
s_env_open(bly_ledger_store_t *self, const char *dir, size_t map_size, char *err, size_t es)
{
    if (mkdir(dir, 0700) && errno != EEXIST)
        return s_fail(err, es, "ledger store: cannot create %s: %s", dir, strerror(errno));
    int rc = mdb_env_create(&self->env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(self->env, map_size ? map_size : BLY_LEDGER_MAP_SIZE_DEFAULT);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(self->env, BLY_LEDGER_MAX_DBS);
    if (rc == 0)
        rc = mdb_env_set_maxreaders(self->env, BLY_LEDGER_MAX_READERS);
    //  Durable: no MDB_NOSYNC / MDB_NOMETASYNC. MDB_NOTLS: read transactions are not tied
    //  to threads (the actor may hand queries to helpers).
    if (rc == 0)
        rc = mdb_env_open(self->env, dir, MDB_NOTLS, 0600);
    if (rc)
        return s_fail(err, es, "ledger store: cannot open %s: %s", dir, mdb_strerror(rc));
    return 0;
}

bly_ledger_store_t *
bly_ledger_store_open(const char *dir, const bly_ledger_genesis_t *genesis, size_t map_size,
                      bly_ledger_t **ledger_p, char *err, size_t err_size)
{
    bly_assert(dir && genesis && ledger_p);
    *ledger_p = NULL;
    bly_ledger_store_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    s_genesis_id(genesis, self->genesis_id);
    MDB_txn *txn = NULL;
    if (s_env_open(self, dir, map_size, err, err_size))
        goto out_free;
    int rc = mdb_txn_begin(self->env, NULL, 0, &txn);
    for (int i = 0; rc == 0 && i < S_DB_COUNT; i++)
        rc = mdb_dbi_open(txn, s_db_names[i], MDB_CREATE, &self->dbi[i]);
    if (rc) {
        s_fail(err, err_size, "ledger store: cannot open databases: %s", mdb_strerror(rc));
        goto out_abort_txn;
    }
    MDB_val k = {7, "genesis"}, v;
    rc = mdb_get(txn, self->dbi[S_META], &k, &v);
    if (rc == MDB_NOTFOUND) {
        bly_ledger_t *l = bly_ledger_new(genesis);
        rc = l ? s_init(self, txn, l) : EINVAL;
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        txn = NULL;
        if (rc) {
            bly_ledger_destroy(&l);
            s_fail(err, err_size, "ledger store: cannot write the genesis: %s", mdb_strerror(rc));
            goto out_free;
        }
        *ledger_p = l;
        return self;
    }
    if (rc || v.mv_size != 32 || memcmp(v.mv_data, self->genesis_id, 32) != 0) {
        s_fail(err, err_size, "ledger store: %s holds another chain (genesis differs)", dir);
        goto out_abort_txn;
    }
    *ledger_p = s_load(self, txn, genesis, err, err_size);
    //  Commit (nothing written): database handles opened in an aborted transaction
    //  are closed with it.
    rc = mdb_txn_commit(txn);
    if (rc || !*ledger_p) {
        if (rc)
            s_fail(err, err_size, "ledger store: cannot open databases: %s", mdb_strerror(rc));
        bly_ledger_destroy(ledger_p);
        goto out_free;
    }
    return self;
out_abort_txn:
    mdb_txn_abort(txn);
out_free:
    bly_ledger_store_destroy(&self);
    return NULL;
}

void
bly_ledger_store_destroy(bly_ledger_store_t **self_p)
{
    bly_assert(self_p);
    bly_ledger_store_t *self = *self_p;
    if (!self)
        return;
    if (self->env)
        mdb_env_close(self->env);
    free(self);
    *self_p = NULL;
}

//  ---- Queries ----

//  Copy a value out of a read transaction.
static int
s_read(bly_ledger_store_t *self, int db, const void *key, size_t ks, uint8_t **out, size_t *size)
{
    MDB_txn *txn = NULL;
    if (mdb_txn_begin(self->env, NULL, MDB_RDONLY, &txn))
        return -1;
    MDB_val k = {ks, (void *) key}, v;
    int rc = mdb_get(txn, self->dbi[db], &k, &v);
    if (rc == 0) {
        *out = malloc(v.mv_size ? v.mv_size : 1);
        if (*out) {
            memcpy(*out, v.mv_data, v.mv_size);
            *size = v.mv_size;
        }
    }
    mdb_txn_abort(txn);
    return rc == 0 && *out ? 0 : -1;
}

int
bly_ledger_store_block(bly_ledger_store_t *self, uint64_t height, uint8_t **block, size_t *size,
                       uint8_t hash[32])
{
    bly_assert(self && block && size && hash);
    uint8_t hk[8], *h = NULL;
    size_t hs = 0;
    bly_ledger_be64(hk, height);
    if (s_read(self, S_HEIGHTS, hk, 8, &h, &hs))
        return -1;
    int rc = hs == 32 ? 0 : -1;
    if (rc == 0) {
        memcpy(hash, h, 32);
        rc = s_read(self, S_BLOCKS, h, 32, block, size);
    }
    free(h);
    return rc;
}

int
bly_ledger_store_block_height(bly_ledger_store_t *self, const uint8_t hash[32], uint64_t *height)
{
    bly_assert(self && hash && height);
    uint8_t *b = NULL;
    size_t bs = 0;
    if (s_read(self, S_BLOCKS, hash, 32, &b, &bs))
        return -1;
    bly_ledger_msg_t *m = NULL;
    int rc = bly_ledger_msg_decode(b, bs, &m, NULL, 0);
    if (rc == 0)
        *height = bly_ledger_msg_height(m);
    bly_ledger_msg_destroy(&m);
    free(b);
    return rc;
}

int
bly_ledger_store_tx(bly_ledger_store_t *self, const uint8_t hash[32], uint8_t **tx, size_t *size,
                    uint64_t *height)
{
    bly_assert(self && hash && tx && size && height);
    uint8_t *loc = NULL, *block = NULL, bh[32];
    size_t ls = 0, bs = 0;
    if (s_read(self, S_TXS, hash, 32, &loc, &ls))
        return -1;
    int rc = -1;
    if (ls == 12) {
        *height = s_get64(loc);
        size_t index = ((size_t) loc[8] << 24) | ((size_t) loc[9] << 16) | ((size_t) loc[10] << 8)
                       | loc[11];
        bly_ledger_msg_t *m = NULL;
        if (bly_ledger_store_block(self, *height, &block, &bs, bh) == 0
            && bly_ledger_msg_decode(block, bs, &m, NULL, 0) == 0
            && index < bly_ledger_msg_txs_count(m)) {
            const bly_ledger_tx_blob_t *t = bly_ledger_msg_txs_at(m, index);
            *tx = malloc(t->data_size);
            if (*tx) {
                memcpy(*tx, t->data, t->data_size);
                *size = t->data_size;
                rc = 0;
            }
        }
        bly_ledger_msg_destroy(&m);
    }
    free(block);
    free(loc);
    return rc;
}
