/*  test_ledger_store - the ledger in LMDB: reopen equals memory, block/tx indexes,
    another genesis refused, MDB_MAP_FULL with a tiny map leaves everything unchanged. */

#include "bly_ledger_store.h"
#include "ledger_fixture.h"

#include <check.h>
#include <unistd.h>

static fx_keys_t s_k;
static bly_ledger_genesis_t s_g;

static void
s_dir(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/bly_ledger_store_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
s_rmdir(const char *dir)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

//  Apply `blocks` workload blocks through the store.
static void
s_run(bly_ledger_store_t *st, bly_ledger_t *l, int blocks, int per_block)
{
    for (int i = 0; i < blocks; i++) {
        uint8_t *b;
        size_t bs, used;
        char err[256];
        ck_assert_int_eq(fx_workload_block(l, &s_k, 16, 7, per_block, &b, &bs, &used), 0);
        int rc = bly_ledger_store_apply(st, l, b, bs, err, sizeof(err));
        ck_assert_msg(rc == 0, "%s", err);
        free(b);
    }
}

START_TEST(test_reopen)
{
    char dir[64], err[256];
    s_dir(dir, sizeof(dir));
    fx_keys(&s_k, 1);
    fx_genesis(&s_g, &s_k, 16, 4);
    bly_ledger_t *l = NULL;
    bly_ledger_store_t *st = bly_ledger_store_open(dir, &s_g, 0, &l, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    s_run(st, l, 20, 8);
    uint8_t app[32], blk[32];
    memcpy(app, bly_ledger_app_hash(l), 32);
    memcpy(blk, bly_ledger_block_hash(l), 32);
    //  Indexes: block by height and hash, transaction by hash.
    uint8_t *b, hash[32];
    size_t bs;
    uint64_t height = 0;
    ck_assert_int_eq(bly_ledger_store_block(st, 20, &b, &bs, hash), 0);
    ck_assert_mem_eq(hash, blk, 32);
    ck_assert_int_eq(bly_ledger_store_block_height(st, hash, &height), 0);
    ck_assert_uint_eq(height, 20);
    bly_ledger_msg_t *m = NULL;
    ck_assert_int_eq(bly_ledger_msg_decode(b, bs, &m, NULL, 0), 0);
    ck_assert_uint_gt(bly_ledger_msg_txs_count(m), 0);
    const bly_ledger_tx_blob_t *t = bly_ledger_msg_txs_at(m, 0);
    uint8_t th[32], *tx;
    size_t ts;
    bly_ledger_tx_hash(t->data, t->data_size, th);
    ck_assert_int_eq(bly_ledger_store_tx(st, th, &tx, &ts, &height), 0);
    ck_assert_uint_eq(height, 20);
    ck_assert_uint_eq(ts, t->data_size);
    ck_assert_mem_eq(tx, t->data, ts);
    free(tx);
    bly_ledger_msg_destroy(&m);
    free(b);
    ck_assert_int_eq(bly_ledger_store_block(st, 21, &b, &bs, hash), -1);
    th[0] ^= 1;
    ck_assert_int_eq(bly_ledger_store_tx(st, th, &tx, &ts, &height), -1);
    bly_ledger_store_destroy(&st);
    bly_ledger_store_destroy(&st);
    //  Reopen: the rebuilt ledger equals the one in memory, account by account.
    bly_ledger_t *r = NULL;
    st = bly_ledger_store_open(dir, &s_g, 0, &r, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_uint_eq(bly_ledger_height(r), 20);
    ck_assert_mem_eq(bly_ledger_app_hash(r), app, 32);
    ck_assert_mem_eq(bly_ledger_block_hash(r), blk, 32);
    ck_assert_uint_eq(bly_ledger_account_count(r), bly_ledger_account_count(l));
    for (size_t i = 0; i < bly_ledger_account_count(l); i++)
        ck_assert_mem_eq(bly_ledger_account_at(r, i), bly_ledger_account_at(l, i),
                         sizeof(bly_ledger_account_t));
    s_run(st, r, 3, 8);  //  And it goes on.
    ck_assert_uint_eq(bly_ledger_height(r), 23);
    bly_ledger_store_destroy(&st);
    bly_ledger_destroy(&r);
    //  Another genesis is refused.
    bly_ledger_genesis_t other = s_g;
    other.min_fee = 2;
    st = bly_ledger_store_open(dir, &other, 0, &r, err, sizeof(err));
    ck_assert_ptr_null(st);
    ck_assert_ptr_null(r);
    ck_assert(strstr(err, "genesis differs"));
    bly_ledger_destroy(&l);
    s_rmdir(dir);
}
END_TEST

//  A followed ledger: blocks committed in memory, written in batches by flush; the
//  reopened store equals memory.
START_TEST(test_follow)
{
    char dir[64], err[256];
    s_dir(dir, sizeof(dir));
    fx_keys(&s_k, 2);
    fx_genesis(&s_g, &s_k, 16, 4);
    bly_ledger_t *l = NULL;
    bly_ledger_store_t *st = bly_ledger_store_open(dir, &s_g, 0, &l, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(bly_ledger_store_relax(st), 0);
    bly_ledger_store_follow(st, l);
    uint8_t *blocks[8];
    size_t sizes[8], pending = 0;
    static const int flush_after[] = {2, 3, 7};
    for (int h = 1, f = 0; h <= 7; h++) {
        size_t used;
        ck_assert_int_eq(fx_workload_block(l, &s_k, 16, 11, 12, &blocks[pending],
                                           &sizes[pending], &used), 0);
        int rc = bly_ledger_block_begin(l, blocks[pending], sizes[pending], err, sizeof(err));
        ck_assert_msg(rc == 0, "%s", err);
        bly_ledger_block_commit(l);
        pending++;
        if (h != flush_after[f])
            continue;
        //  Exactly the unwritten blocks, or nothing is written.
        ck_assert_int_eq(bly_ledger_store_flush(st, l, (const uint8_t *const *) blocks, sizes,
                                                pending - 1, err, sizeof(err)), -1);
        ck_assert_uint_eq(bly_ledger_store_followed_height(l), (uint64_t) h - pending);
        rc = bly_ledger_store_flush(st, l, (const uint8_t *const *) blocks, sizes, pending, err,
                                    sizeof(err));
        ck_assert_msg(rc == 0, "%s", err);
        ck_assert_uint_eq(bly_ledger_store_followed_height(l), (uint64_t) h);
        for (size_t i = 0; i < pending; i++)
            free(blocks[i]);
        pending = 0;
        f++;
    }
    uint8_t *b, hash[32];
    size_t bs;
    ck_assert_int_eq(bly_ledger_store_block(st, 5, &b, &bs, hash), 0);
    free(b);
    bly_ledger_store_destroy(&st);
    bly_ledger_t *r = NULL;
    st = bly_ledger_store_open(dir, &s_g, 0, &r, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_uint_eq(bly_ledger_height(r), 7);
    ck_assert_mem_eq(bly_ledger_app_hash(r), bly_ledger_app_hash(l), 32);
    ck_assert_mem_eq(bly_ledger_block_hash(r), bly_ledger_block_hash(l), 32);
    ck_assert_uint_eq(bly_ledger_account_count(r), bly_ledger_account_count(l));
    for (size_t i = 0; i < bly_ledger_account_count(l); i++)
        ck_assert_mem_eq(bly_ledger_account_at(r, i), bly_ledger_account_at(l, i),
                         sizeof(bly_ledger_account_t));
    bly_ledger_store_destroy(&st);
    bly_ledger_destroy(&r);
    bly_ledger_destroy(&l);
    s_rmdir(dir);
}
END_TEST

START_TEST(test_map_full)
{
    char dir[64], err[256] = "";
    s_dir(dir, sizeof(dir));
    fx_keys(&s_k, 1);
    fx_genesis(&s_g, &s_k, 16, 4);
    bly_ledger_t *l = NULL;
    //  A 256 KiB map: the genesis fits, a few dozen blocks of 40 transfers do not.
    bly_ledger_store_t *st = bly_ledger_store_open(dir, &s_g, 256 * 1024, &l, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    int rc = 0, blocks = 0;
    uint8_t app[32], blk[32];
    uint64_t height = 0;
    while (rc == 0 && blocks < 1000) {
        memcpy(app, bly_ledger_app_hash(l), 32);
        memcpy(blk, bly_ledger_block_hash(l), 32);
        height = bly_ledger_height(l);
        uint8_t *b;
        size_t bs, used;
        ck_assert_int_eq(fx_workload_block(l, &s_k, 16, 9, 40, &b, &bs, &used), 0);
        rc = bly_ledger_store_apply(st, l, b, bs, err, sizeof(err));
        free(b);
        blocks++;
    }
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(err, "MDB_MAP_FULL"), "%s", err);
    //  No partial apply: memory is at the last committed block...
    ck_assert(!bly_ledger_block_is_open(l));
    ck_assert_uint_eq(bly_ledger_height(l), height);
    ck_assert_mem_eq(bly_ledger_app_hash(l), app, 32);
    bly_ledger_store_destroy(&st);
    //  ... and so is the disk.
    bly_ledger_t *r = NULL;
    st = bly_ledger_store_open(dir, &s_g, 256 * 1024, &r, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_uint_eq(bly_ledger_height(r), height);
    ck_assert_mem_eq(bly_ledger_app_hash(r), app, 32);
    ck_assert_mem_eq(bly_ledger_block_hash(r), blk, 32);
    bly_ledger_store_destroy(&st);
    bly_ledger_destroy(&r);
    //  A larger map takes the same store further.
    st = bly_ledger_store_open(dir, &s_g, 64 * 1024 * 1024, &r, err, sizeof(err));
    ck_assert_ptr_nonnull(st);
    s_run(st, r, 2, 40);
    ck_assert_uint_eq(bly_ledger_height(r), height + 2);
    bly_ledger_store_destroy(&st);
    bly_ledger_destroy(&r);
    bly_ledger_destroy(&l);
    s_rmdir(dir);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("ledger_store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_reopen);
    tcase_add_test(tc, test_follow);
    tcase_add_test(tc, test_map_full);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
