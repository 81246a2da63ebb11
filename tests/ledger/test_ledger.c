/*  test_ledger - the pure ledger core: genesis, addresses, transaction rules (every
    ledger and PoL row of the hostile-input catalogue in TESTING.md), blocks, the PoL
    DAG, proofs and seeded random workloads with invariants. */

#include "consensus/bly_cons_msg.h"
#include "ledger_fixture.h"

#include <check.h>
#include <math.h>

static fx_keys_t s_k;
static bly_ledger_genesis_t s_g;

static bly_ledger_t *
s_new(int funded, int validators)
{
    fx_keys(&s_k, 1);
    fx_genesis(&s_g, &s_k, funded, validators);
    bly_ledger_t *l = bly_ledger_new(&s_g);
    ck_assert_ptr_nonnull(l);
    return l;
}

//  Apply the given transactions as one block; all must be included.
static void
s_block_ok(bly_ledger_t *l, uint8_t **txs, size_t *sizes, size_t n)
{
    uint8_t *b = NULL;
    size_t bs = 0, used = 0;
    char err[256] = "";
    ck_assert_int_eq(bly_ledger_block_build(l, (const uint8_t *const *) txs, sizes, n,
                                            bly_ledger_time_ms(l) + 1000, s_k.pk[0], &b, &bs,
                                            &used),
                     0);
    ck_assert_uint_eq(used, n);
    //  A check passes and changes nothing; then the block applies.
    uint8_t app[32];
    memcpy(app, bly_ledger_app_hash(l), 32);
    uint64_t height = bly_ledger_height(l);
    int rc = bly_ledger_block_check(l, b, bs, err, sizeof(err));
    ck_assert_msg(rc == 0, "block check refused: %s", err);
    ck_assert(!bly_ledger_block_is_open(l));
    ck_assert_mem_eq(bly_ledger_app_hash(l), app, 32);
    ck_assert_uint_eq(bly_ledger_height(l), height);
    rc = bly_ledger_block_apply(l, b, bs, err, sizeof(err));
    ck_assert_msg(rc == 0, "block refused: %s", err);
    free(b);
    for (size_t i = 0; i < n; i++)
        free(txs[i]);
}

static void
s_one_ok(bly_ledger_t *l, uint8_t *tx, size_t size)
{
    s_block_ok(l, &tx, &size, 1);
}

//  The transaction is refused by the check with `why` in the reason, and a block
//  holding it is refused with no state change.
static void
s_rejected(bly_ledger_t *l, uint8_t *tx, size_t size, const char *why)
{
    char err[256] = "";
    uint8_t app[32], blk[32];
    memcpy(app, bly_ledger_app_hash(l), 32);
    memcpy(blk, bly_ledger_block_hash(l), 32);
    uint64_t height = bly_ledger_height(l), total = fx_total(l);
    size_t accounts = bly_ledger_account_count(l), pol = bly_ledger_pol_count(l);
    ck_assert_int_eq(bly_ledger_tx_check(l, tx, size, NULL, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, why), "reason '%s' lacks '%s'", err, why);
    uint8_t *b = NULL;
    size_t bs = 0;
    ck_assert_int_eq(fx_raw_block(l, &tx, &size, 1, s_k.pk[0], &b, &bs), 0);
    err[0] = '\0';
    ck_assert_int_eq(bly_ledger_block_check(l, b, bs, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, why), "check reason '%s' lacks '%s'", err, why);
    err[0] = '\0';
    ck_assert_int_eq(bly_ledger_block_begin(l, b, bs, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, why), "block reason '%s' lacks '%s'", err, why);
    ck_assert(!bly_ledger_block_is_open(l));
    ck_assert_mem_eq(bly_ledger_app_hash(l), app, 32);
    ck_assert_mem_eq(bly_ledger_block_hash(l), blk, 32);
    ck_assert_uint_eq(bly_ledger_height(l), height);
    ck_assert_uint_eq(fx_total(l), total);
    ck_assert_uint_eq(bly_ledger_account_count(l), accounts);
    ck_assert_uint_eq(bly_ledger_pol_count(l), pol);
    free(b);
    free(tx);
}

//  ---- Genesis and addresses ----

START_TEST(test_genesis_file)
{
    const char *src = getenv("BLY_SOURCE_DIR");
    ck_assert_ptr_nonnull(src);
    char path[1024];
    snprintf(path, sizeof(path), "%s/config/genesis.conf", src);
    bly_ledger_genesis_t g;
    char err[256] = "";
    int rc = bly_ledger_genesis_load(path, &g, err, sizeof(err));
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(g.chain_id, "blyan-dev-1");
    ck_assert_uint_ge(g.account_count, 1);
    bly_ledger_t *l = bly_ledger_new(&g);
    ck_assert_ptr_nonnull(l);
    ck_assert_uint_eq(bly_ledger_height(l), 0);
    bly_ledger_destroy(&l);
    bly_ledger_destroy(&l);
}
END_TEST

static int
s_parse(const char *text)
{
    bly_ledger_genesis_t g;
    char err[256];
    return bly_ledger_genesis_parse(text, strlen(text), &g, err, sizeof(err));
}

START_TEST(test_genesis_bad)
{
    fx_keys(&s_k, 1);
    char addr[BLY_LEDGER_ADDRESS_LEN + 1], text[2048];
    bly_ledger_address_format(s_k.pk[0], addr);
    const char *base = "chain_id c1\ngenesis_time_ms 0\nreward_pool 10\nprice_per_token 1\n"
                       "min_fee 1\ndelta_reward 1\nvalidator_reward 1\nburn_bps 100\n"
                       "share_router_bps 100\nshare_validators_bps 100\nslash_bps 100\n"
                       "delta_norm_cap 1.5\n";
    snprintf(text, sizeof(text), "%saccount %s 5 1\n", base, addr);
    ck_assert_int_eq(s_parse(text), 0);
    snprintf(text, sizeof(text), "%s", base);  //  No account.
    ck_assert_int_eq(s_parse(text), -1);
    snprintf(text, sizeof(text), "%saccount %s 5 1\naccount %s 5 1\n", base, addr, addr);
    ck_assert_int_eq(s_parse(text), -1);  //  Duplicate key.
    snprintf(text, sizeof(text), "%saccount %s 18446744073709551615 1\n", base, addr);
    ck_assert_int_eq(s_parse(text), -1);  //  Supply overflows u64.
    snprintf(text, sizeof(text), "%sburn_bps 10\naccount %s 5 1\n", base, addr);
    ck_assert_int_eq(s_parse(text), -1);  //  Key twice.
    snprintf(text, sizeof(text), "%scolour blue\naccount %s 5 1\n", base, addr);
    ck_assert_int_eq(s_parse(text), -1);  //  Unknown key.
    addr[10] = addr[10] == 'a' ? 'b' : 'a';
    snprintf(text, sizeof(text), "%saccount %s 5 1\n", base, addr);
    ck_assert_int_eq(s_parse(text), -1);  //  Checksum.
    const char *shares = "chain_id c1\ngenesis_time_ms 0\nreward_pool 10\nprice_per_token 1\n"
                         "min_fee 1\ndelta_reward 1\nvalidator_reward 1\nburn_bps 100\n"
                         "share_router_bps 6000\nshare_validators_bps 5000\nslash_bps 100\n"
                         "delta_norm_cap 1.5\n";
    bly_ledger_address_format(s_k.pk[0], addr);
    snprintf(text, sizeof(text), "%saccount %s 5 1\n", shares, addr);
    ck_assert_int_eq(s_parse(text), -1);  //  Shares above 100%.
    bly_ledger_genesis_t g;
    fx_genesis(&g, &s_k, 2, 1);
    memset(g.accounts[1].key, 0, 32);  //  All-zero key.
    ck_assert_ptr_null(bly_ledger_new(&g));
}
END_TEST

START_TEST(test_address)
{
    fx_keys(&s_k, 1);
    char addr[BLY_LEDGER_ADDRESS_LEN + 1];
    uint8_t key[32];
    bly_ledger_address_format(s_k.pk[3], addr);
    ck_assert_uint_eq(strlen(addr), BLY_LEDGER_ADDRESS_LEN);
    ck_assert_int_eq(bly_ledger_address_parse(addr, key), 0);
    ck_assert_mem_eq(key, s_k.pk[3], 32);
    for (size_t i = 4; i < BLY_LEDGER_ADDRESS_LEN; i++) {
        char bad[BLY_LEDGER_ADDRESS_LEN + 1];
        memcpy(bad, addr, sizeof(bad));
        bad[i] = bad[i] == '0' ? '1' : '0';
        ck_assert_int_eq(bly_ledger_address_parse(bad, key), -1);
    }
    ck_assert_int_eq(bly_ledger_address_parse("bly1", key), -1);
    ck_assert_int_eq(bly_ledger_address_parse("", key), -1);
    uint8_t zero[32] = {0}, ident[32] = {1};
    ck_assert(!bly_ledger_key_valid(zero));
    ck_assert(!bly_ledger_key_valid(ident));
    ck_assert(bly_ledger_key_valid(s_k.pk[0]));
}
END_TEST

//  ---- Transfers and the hostile catalogue ----

START_TEST(test_transfer)
{
    bly_ledger_t *l = s_new(4, 2);
    uint64_t total = fx_total(l);
    uint8_t *tx;
    size_t size;
    ck_assert_int_eq(fx_transfer(&s_k, 1, 9, 500, 10, &tx, &size), 0);
    s_one_ok(l, tx, size);
    bly_ledger_account_t a;
    ck_assert_int_eq(bly_ledger_account(l, s_k.pk[9], &a), 0);
    ck_assert_uint_eq(a.balance, 500);
    ck_assert_int_eq(bly_ledger_account(l, s_k.pk[1], &a), 0);
    ck_assert_uint_eq(a.balance, FX_BALANCE - 510);
    ck_assert_uint_eq(a.nonce, 1);
    ck_assert_int_eq(bly_ledger_account(l, s_k.pk[0], &a), 0);  //  Proposer: fee - burn.
    ck_assert_uint_eq(a.balance, FX_BALANCE + 9);
    bly_ledger_supply_t s;
    bly_ledger_supply(l, &s);
    ck_assert_uint_eq(s.burned, 1);
    ck_assert_uint_eq(fx_total(l), total);
    ck_assert_uint_eq(bly_ledger_height(l), 1);
    bly_ledger_destroy(&l);
}
END_TEST

START_TEST(test_hostile_amounts)
{
    bly_ledger_t *l = s_new(4, 2);
    uint8_t *tx;
    size_t size;
    //  amount + fee overflows u64.
    ck_assert_int_eq(bly_ledger_make_transfer(s_k.sk[1], FX_CHAIN, 1, 2, s_k.pk[2],
                                              UINT64_MAX, &tx, &size), 0);
    s_rejected(l, tx, size, "overflows");
    //  Amount above balance.
    ck_assert_int_eq(bly_ledger_make_transfer(s_k.sk[1], FX_CHAIN, 1, 1, s_k.pk[2],
                                              FX_BALANCE, &tx, &size), 0);
    s_rejected(l, tx, size, "below amount plus fee");
    //  Fee above balance.
    ck_assert_int_eq(bly_ledger_make_transfer(s_k.sk[1], FX_CHAIN, 1, FX_BALANCE + 1, s_k.pk[2],
                                              1, &tx, &size), 0);
    s_rejected(l, tx, size, "fee above the balance");
    //  Fee below the minimum.
    ck_assert_int_eq(bly_ledger_make_transfer(s_k.sk[1], FX_CHAIN, 1, 0, s_k.pk[2], 1, &tx,
                                              &size), 0);
    s_rejected(l, tx, size, "minimum fee");
    //  Zero amount, self transfer, unknown sender, unstake above stake.
    ck_assert_int_eq(bly_ledger_make_transfer(s_k.sk[1], FX_CHAIN, 1, 1, s_k.pk[2], 0, &tx,
                                              &size), 0);
    s_rejected(l, tx, size, "amount is zero");
    ck_assert_int_eq(bly_ledger_make_transfer(s_k.sk[1], FX_CHAIN, 1, 1, s_k.pk[1], 5, &tx,
                                              &size), 0);
    s_rejected(l, tx, size, "to self");
    ck_assert_int_eq(bly_ledger_make_transfer(s_k.sk[20], FX_CHAIN, 1, 1, s_k.pk[1], 5, &tx,
                                              &size), 0);
    s_rejected(l, tx, size, "does not exist");
    ck_assert_int_eq(bly_ledger_make_stake(s_k.sk[1], FX_CHAIN, BLY_LEDGER_MSG_UNSTAKE, 1, 1,
                                           1001, &tx, &size), 0);
    s_rejected(l, tx, size, "unstake above the stake");
    bly_ledger_destroy(&l);
}
END_TEST

START_TEST(test_hostile_nonce_chain)
{
    bly_ledger_t *l = s_new(4, 2);
    uint8_t *tx;
    size_t size;
    ck_assert_int_eq(fx_transfer(&s_k, 1, 2, 5, 1, &tx, &size), 0);
    uint8_t *replay = malloc(size);
    memcpy(replay, tx, size);
    size_t replay_size = size;
    s_one_ok(l, tx, size);
    //  The very same transaction again: nonce reuse (replay).
    s_rejected(l, replay, replay_size, "already used");
    //  Nonce gap.
    ck_assert_int_eq(bly_ledger_make_transfer(s_k.sk[1], FX_CHAIN, 3, 1, s_k.pk[2], 5, &tx,
                                              &size), 0);
    //  The mempool's window admits it (nonce 2 still pending), not further.
    uint8_t from[32] = {0};
    char err[160];
    ck_assert_int_eq(bly_ledger_tx_check_pool(l, tx, size, 0, NULL, from, err, sizeof(err)), -1);
    ck_assert_int_eq(bly_ledger_tx_check_pool(l, tx, size, 1, NULL, from, err, sizeof(err)), 0);
    ck_assert_int_eq(memcmp(from, s_k.pk[1], 32), 0);
    s_rejected(l, tx, size, "nonce gap");
    ck_assert_int_eq(bly_ledger_make_transfer(s_k.sk[1], FX_CHAIN, 4, 1, s_k.pk[2], 5, &tx,
                                              &size), 0);
    ck_assert_int_eq(bly_ledger_tx_check_pool(l, tx, size, 1, NULL, NULL, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "nonce gap"));
    s_rejected(l, tx, size, "nonce gap");
    //  Replay from another chain id (valid signature, other chain).
    ck_assert_int_eq(bly_ledger_make_transfer(s_k.sk[1], "blyan-other", 2, 1, s_k.pk[2], 5, &tx,
                                              &size), 0);
    s_rejected(l, tx, size, "another chain id");
    bly_ledger_destroy(&l);
}
END_TEST

START_TEST(test_hostile_signatures)
{
    bly_ledger_t *l = s_new(4, 2);
    uint8_t *tx;
    size_t size;
    //  Flip a bit of the signature (the last bytes of the encoding), after the
    //  original was verified (twice: the second from the signature cache): the cache
    //  is keyed by the id of the whole encoding, so the copy is verified and refused.
    ck_assert_int_eq(fx_transfer(&s_k, 1, 2, 5, 1, &tx, &size), 0);
    ck_assert_int_eq(bly_ledger_tx_check(l, tx, size, NULL, NULL, 0), 0);
    ck_assert_int_eq(bly_ledger_tx_check(l, tx, size, NULL, NULL, 0), 0);
    tx[size - 5] ^= 0x01;
    s_rejected(l, tx, size, "signature does not verify");
    //  Flip the amount: the signature no longer covers it.
    bly_ledger_msg_t *m = bly_ledger_msg_new(BLY_LEDGER_MSG_TRANSFER);
    ck_assert_int_eq(bly_ledger_msg_set_to(m, s_k.pk[2], 32), 0);
    bly_ledger_msg_set_amount(m, 5);
    ck_assert_int_eq(bly_ledger_make_tx(&m, s_k.sk[1], FX_CHAIN, 1, 1, &tx, &size), 0);
    ck_assert_int_eq(bly_ledger_msg_decode(tx, size, &m, NULL, 0), 0);
    bly_ledger_msg_set_amount(m, 50);
    free(tx);
    ck_assert_int_eq(bly_ledger_msg_encode(m, &tx, &size), 0);
    s_rejected(l, tx, size, "signature does not verify");
    //  Cross-context: a stake's signature on an unstake with the very same fields (the
    //  signing bytes start with the message name, so it cannot verify).
    uint8_t *st;
    size_t ss;
    ck_assert_int_eq(bly_ledger_make_stake(s_k.sk[1], FX_CHAIN, BLY_LEDGER_MSG_STAKE, 1, 1, 5,
                                           &st, &ss), 0);
    bly_ledger_msg_t *sm = NULL;
    ck_assert_int_eq(bly_ledger_msg_decode(st, ss, &sm, NULL, 0), 0);
    bly_ledger_msg_set_id(sm, BLY_LEDGER_MSG_UNSTAKE);
    ck_assert_int_eq(bly_ledger_msg_encode(sm, &tx, &size), 0);
    s_rejected(l, tx, size, "signature does not verify");
    free(st);
    bly_ledger_msg_destroy(&sm);
    bly_ledger_msg_destroy(&m);
    bly_ledger_destroy(&l);
}
END_TEST

//  A transfer whose sender or receiver is an all-zero or small-order key.
START_TEST(test_hostile_keys)
{
    bly_ledger_t *l = s_new(4, 2);
    uint8_t *tx;
    size_t size;
    //  Small-order points: the identity (1, 0...) and the all-zero encoding.
    uint8_t bad[2][32] = {{0}, {1}};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(bly_ledger_make_transfer(s_k.sk[1], FX_CHAIN, 1, 1, bad[i], 5, &tx,
                                                  &size), 0);
        s_rejected(l, tx, size, "not a valid Ed25519 key");
        bly_ledger_msg_t *m = bly_ledger_msg_new(BLY_LEDGER_MSG_TRANSFER);
        ck_assert_int_eq(bly_ledger_msg_set_chain_id(m, FX_CHAIN), 0);
        ck_assert_int_eq(bly_ledger_msg_set_from(m, bad[i], 32), 0);
        ck_assert_int_eq(bly_ledger_msg_set_to(m, s_k.pk[2], 32), 0);
        bly_ledger_msg_set_nonce(m, 1);
        bly_ledger_msg_set_fee(m, 1);
        bly_ledger_msg_set_amount(m, 5);
        ck_assert_int_eq(bly_ledger_msg_encode(m, &tx, &size), 0);
        bly_ledger_msg_destroy(&m);
        s_rejected(l, tx, size, "sender is not a valid");
    }
    bly_ledger_destroy(&l);
}
END_TEST

//  Decoding: trailing bytes, truncation, non-canonical integers, wrong message kind.
START_TEST(test_hostile_encoding)
{
    bly_ledger_t *l = s_new(4, 2);
    uint8_t *tx;
    size_t size;
    ck_assert_int_eq(fx_transfer(&s_k, 1, 2, 5, 1, &tx, &size), 0);
    uint8_t *longer = malloc(size + 1);
    memcpy(longer, tx, size);
    longer[size] = 0xc0;
    s_rejected(l, longer, size + 1, "does not decode");
    uint8_t *shorter = malloc(size);
    memcpy(shorter, tx, size);
    s_rejected(l, shorter, size - 1, "does not decode");
    //  Non-canonical: the nonce 1 (a positive fixint) re-encoded as uint8 0xcc 0x01.
    uint8_t *nc = malloc(size + 1);
    const uint8_t *fixchain = tx + 3;  //  array, version, id, then chain_id str.
    size_t off = 3 + 1 + strlen(FX_CHAIN) + 2 + 32;  //  str, bin8 hdr + key: nonce next.
    ck_assert_uint_eq(fixchain[0], 0xa0 | strlen(FX_CHAIN));
    ck_assert_uint_eq(tx[off], 0x01);
    memcpy(nc, tx, off);
    nc[off] = 0xcc;
    nc[off + 1] = 0x01;
    memcpy(nc + off + 2, tx + off + 1, size - off - 1);
    s_rejected(l, nc, size + 1, "does not decode");
    //  A query message is not a transaction.
    bly_ledger_msg_t *m = bly_ledger_msg_new(BLY_LEDGER_MSG_HEAD_REQUEST);
    uint8_t *q;
    size_t qs;
    ck_assert_int_eq(bly_ledger_msg_encode(m, &q, &qs), 0);
    bly_ledger_msg_destroy(&m);
    s_rejected(l, q, qs, "not a transaction");
    free(tx);
    bly_ledger_destroy(&l);
}
END_TEST

//  Block-level checks: wrong height, prev hash, app hash, chain, tx root, time.
START_TEST(test_block_header)
{
    bly_ledger_t *l = s_new(4, 2);
    uint8_t *tx, *b;
    size_t size, bs;
    char err[256];
    ck_assert_int_eq(fx_transfer(&s_k, 1, 2, 5, 1, &tx, &size), 0);
    ck_assert_int_eq(fx_raw_block(l, &tx, &size, 1, s_k.pk[0], &b, &bs), 0);
    const char *why[] = {"height", "prev_hash", "app_hash", "tx_root", "chain id", "proposer",
                         "time"};
    for (int i = 0; i < 7; i++) {
        bly_ledger_msg_t *m = NULL;
        ck_assert_int_eq(bly_ledger_msg_decode(b, bs, &m, NULL, 0), 0);
        uint8_t junk[32] = {9};
        if (i == 0)
            bly_ledger_msg_set_height(m, 5);
        if (i == 1)
            ck_assert_int_eq(bly_ledger_msg_set_prev_hash(m, junk, 32), 0);
        if (i == 2)
            ck_assert_int_eq(bly_ledger_msg_set_app_hash(m, junk, 32), 0);
        if (i == 3)
            ck_assert_int_eq(bly_ledger_msg_set_tx_root(m, junk, 32), 0);
        if (i == 6) {
            ck_assert_int_eq(bly_ledger_block_apply(l, b, bs, err, sizeof(err)), 0);
            bly_ledger_msg_t *m2 = NULL;
            uint8_t *e2;
            size_t es2;
            ck_assert_int_eq(fx_raw_block(l, NULL, NULL, 0, s_k.pk[0], &e2, &es2), 0);
            ck_assert_int_eq(bly_ledger_msg_decode(e2, es2, &m2, NULL, 0), 0);
            bly_ledger_msg_set_time_ms(m2, 1);
            bly_ledger_msg_destroy(&m);
            m = m2;
            free(e2);
        }
        if (i == 4)
            ck_assert_int_eq(bly_ledger_msg_set_chain_id(m, "blyan-other"), 0);
        if (i == 5)
            ck_assert_int_eq(bly_ledger_msg_set_proposer(m, (uint8_t[32]){0}, 32), 0);
        uint8_t *e;
        size_t es;
        ck_assert_int_eq(bly_ledger_msg_encode(m, &e, &es), 0);
        uint8_t app[32];
        memcpy(app, bly_ledger_app_hash(l), 32);
        err[0] = '\0';
        ck_assert_int_eq(bly_ledger_block_begin(l, e, es, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, why[i]), "'%s' lacks '%s'", err, why[i]);
        ck_assert_mem_eq(bly_ledger_app_hash(l), app, 32);
        free(e);
        bly_ledger_msg_destroy(&m);
    }
    free(b);
    free(tx);
    bly_ledger_destroy(&l);
}
END_TEST

//  One bad transaction anywhere rejects the whole block; the good ones are undone.
START_TEST(test_block_all_or_nothing)
{
    bly_ledger_t *l = s_new(8, 2);
    uint8_t *txs[4], *b;
    size_t sizes[4], bs;
    char err[256];
    uint8_t app[32];
    memcpy(app, bly_ledger_app_hash(l), 32);
    ck_assert_int_eq(fx_transfer(&s_k, 1, 12, 5, 1, &txs[0], &sizes[0]), 0);
    ck_assert_int_eq(fx_transfer(&s_k, 2, 13, 5, 1, &txs[1], &sizes[1]), 0);
    ck_assert_int_eq(bly_ledger_make_stake(s_k.sk[3], FX_CHAIN, BLY_LEDGER_MSG_STAKE, 1, 1, 7,
                                           &txs[2], &sizes[2]), 0);
    ck_assert_int_eq(fx_transfer(&s_k, 4, 14, FX_BALANCE * 2, 1, &txs[3], &sizes[3]), 0);
    ck_assert_int_eq(fx_raw_block(l, txs, sizes, 4, s_k.pk[0], &b, &bs), 0);
    ck_assert_int_eq(bly_ledger_block_begin(l, b, bs, err, sizeof(err)), -1);
    ck_assert(strstr(err, "transaction 3"));
    ck_assert_mem_eq(bly_ledger_app_hash(l), app, 32);
    ck_assert_uint_eq(bly_ledger_account_count(l), 8);
    ck_assert_uint_eq(bly_ledger_total_stake(l), 2000);
    free(b);
    //  Begin + abort (a replica validating a proposal) changes nothing either.
    ck_assert_int_eq(fx_raw_block(l, txs, sizes, 3, s_k.pk[0], &b, &bs), 0);
    ck_assert_int_eq(bly_ledger_block_begin(l, b, bs, err, sizeof(err)), 0);
    ck_assert_uint_eq(bly_ledger_account_count(l), 10);
    bly_ledger_block_abort(l);
    ck_assert_mem_eq(bly_ledger_app_hash(l), app, 32);
    ck_assert_uint_eq(bly_ledger_account_count(l), 8);
    ck_assert_uint_eq(bly_ledger_total_stake(l), 2000);
    //  And the same block then commits.
    ck_assert_int_eq(bly_ledger_block_apply(l, b, bs, err, sizeof(err)), 0);
    ck_assert_uint_eq(bly_ledger_total_stake(l), 2007);
    free(b);
    for (int i = 0; i < 4; i++)
        free(txs[i]);
    bly_ledger_destroy(&l);
}
END_TEST

//  ---- Receipts, PoL, rewards, slashing ----

static uint8_t *
s_receipt(int payer, const uint8_t request[32], int router, int shards, uint64_t tokens,
          uint64_t price, size_t *size)
{
    bly_ledger_msg_t *m = bly_ledger_msg_new(BLY_LEDGER_MSG_RECEIPT);
    ck_assert_int_eq(bly_ledger_msg_set_request_id(m, request, 32), 0);
    ck_assert_int_eq(bly_ledger_msg_set_router(m, s_k.pk[router], 32), 0);
    for (int i = 0; i < shards; i++) {
        bly_ledger_node_key_t nk;
        memcpy(nk.key, s_k.pk[30 + i], 32);
        ck_assert_int_eq(bly_ledger_msg_shards_append(m, &nk), 0);
    }
    bly_ledger_msg_set_tokens(m, tokens);
    bly_ledger_msg_set_price(m, price);
    uint8_t *tx;
    ck_assert_int_eq(bly_ledger_make_tx(&m, s_k.sk[payer], FX_CHAIN, ++s_k.nonce[payer], 1, &tx,
                                        size), 0);
    return tx;
}

START_TEST(test_receipt)
{
    bly_ledger_t *l = s_new(4, 2);
    uint64_t total = fx_total(l);
    uint8_t req[32] = {7};
    size_t size;
    uint8_t *tx = s_receipt(2, req, 20, 3, 1000, 10, &size);
    s_one_ok(l, tx, size);
    //  cost 10000: burn 10% = 1000; rest 9000: router 10% = 900, proposer 20% = 1800,
    //  shards 6300 split by 3 = 2100 each.
    bly_ledger_account_t a;
    ck_assert_int_eq(bly_ledger_account(l, s_k.pk[20], &a), 0);
    ck_assert_uint_eq(a.balance, 900);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(bly_ledger_account(l, s_k.pk[30 + i], &a), 0);
        ck_assert_uint_eq(a.balance, 2100);
    }
    ck_assert_int_eq(bly_ledger_account(l, s_k.pk[2], &a), 0);
    ck_assert_uint_eq(a.balance, FX_BALANCE - 10001);
    ck_assert_uint_eq(fx_total(l), total);
    //  The same request id again: not paid twice.
    tx = s_receipt(2, req, 20, 3, 1000, 10, &size);
    s_rejected(l, tx, size, "already paid");
    s_k.nonce[2]--;
    uint8_t req2[32] = {8};
    tx = s_receipt(2, req2, 20, 3, 1000, 9, &size);
    s_rejected(l, tx, size, "price below");
    s_k.nonce[2]--;
    tx = s_receipt(2, req2, 20, 3, UINT64_MAX / 2, 10, &size);
    s_rejected(l, tx, size, "overflows");
    s_k.nonce[2]--;
    tx = s_receipt(2, req2, 20, 0, 10, 10, &size);
    s_rejected(l, tx, size, "no shard");
    s_k.nonce[2]--;
    tx = s_receipt(2, req2, 20, 1, 0, 10, &size);
    s_rejected(l, tx, size, "zero tokens");
    bly_ledger_destroy(&l);
}
END_TEST

//  A PoL transaction from key `who`: fields set by the caller on m.
static uint8_t *
s_sign(bly_ledger_msg_t *m, int who, size_t *size)
{
    uint8_t *tx;
    ck_assert_int_eq(bly_ledger_make_tx(&m, s_k.sk[who], FX_CHAIN, ++s_k.nonce[who], 1, &tx,
                                        size), 0);
    return tx;
}

static void
s_tensors(bly_ledger_msg_t *m, int count, uint8_t salt)
{
    for (int i = 0; i < count; i++) {
        bly_ledger_tensor_hash_t t;
        memset(&t, 0, sizeof(t));
        snprintf(t.name, sizeof(t.name), "blk.0.t%d.weight", i);
        memset(t.hash, salt + i, 32);
        ck_assert_int_eq(bly_ledger_msg_tensors_append(m, &t), 0);
    }
}

static uint8_t *
s_delta(const uint8_t parent[32], uint32_t layer, uint8_t dh, float norm, int tensors, size_t *size)
{
    bly_ledger_msg_t *m = bly_ledger_msg_new(BLY_LEDGER_MSG_POL_DELTA);
    uint8_t hash[32];
    memset(hash, dh, 32);
    uint32_t bits;
    memcpy(&bits, &norm, 4);
    ck_assert_int_eq(bly_ledger_msg_set_parent(m, parent, 32), 0);
    bly_ledger_msg_set_layer(m, layer);
    ck_assert_int_eq(bly_ledger_msg_set_delta_hash(m, hash, 32), 0);
    ck_assert_int_eq(bly_ledger_msg_set_evidence_hash(m, hash, 32), 0);
    bly_ledger_msg_set_norm_bits(m, bits);
    s_tensors(m, tensors, dh);
    return s_sign(m, 5, size);
}

static uint8_t *
s_attest(int who, const uint8_t target[32], float before, float after, size_t *size)
{
    bly_ledger_msg_t *m = bly_ledger_msg_new(BLY_LEDGER_MSG_ATTEST);
    uint32_t b, a;
    memcpy(&b, &before, 4);
    memcpy(&a, &after, 4);
    ck_assert_int_eq(bly_ledger_msg_set_target(m, target, 32), 0);
    bly_ledger_msg_set_loss_before_bits(m, b);
    bly_ledger_msg_set_loss_after_bits(m, a);
    return s_sign(m, who, size);
}

//  genesis -> meta -> 2 layers, committed; returns the layer-0 node id.
static void
s_model(bly_ledger_t *l, uint8_t layer0[32])
{
    size_t size;
    bly_ledger_msg_t *m = bly_ledger_msg_new(BLY_LEDGER_MSG_POL_META);
    ck_assert_int_eq(bly_ledger_msg_set_parent(m, bly_ledger_pol_at(l, 0)->id, 32), 0);
    ck_assert_int_eq(bly_ledger_msg_set_arch(m, "qwen3"), 0);
    ck_assert_int_eq(bly_ledger_msg_set_tokenizer_hash(m, (uint8_t[32]){3}, 32), 0);
    bly_ledger_msg_set_layer_count(m, 2);
    uint8_t *tx = s_sign(m, 0, &size);
    uint8_t meta[32];
    bly_ledger_tx_hash(tx, size, meta);
    s_one_ok(l, tx, size);
    uint8_t *txs[2];
    size_t sizes[2];
    for (uint32_t i = 0; i < 2; i++) {
        m = bly_ledger_msg_new(BLY_LEDGER_MSG_POL_LAYER);
        ck_assert_int_eq(bly_ledger_msg_set_parent(m, meta, 32), 0);
        bly_ledger_msg_set_layer(m, i);
        s_tensors(m, 4, (uint8_t) (i * 16));
        txs[i] = s_sign(m, 1, &sizes[i]);
    }
    bly_ledger_tx_hash(txs[0], sizes[0], layer0);
    s_block_ok(l, txs, sizes, 2);
}

START_TEST(test_pol_flow)
{
    bly_ledger_t *l = s_new(8, 3);  //  Validators 0, 1, 2 with 1000 each.
    uint64_t total = fx_total(l);
    uint8_t layer0[32], id[32];
    uint64_t version;
    ck_assert_int_eq(bly_ledger_layer_current(l, 0, id, &version), -1);
    s_model(l, layer0);
    ck_assert_uint_eq(bly_ledger_layer_count(l), 2);
    ck_assert_int_eq(bly_ledger_layer_current(l, 0, id, &version), 0);
    ck_assert_mem_eq(id, layer0, 32);
    ck_assert_uint_eq(version, 1);
    size_t size;
    uint8_t *tx = s_delta(layer0, 0, 0x40, 1.5f, 4, &size);
    uint8_t delta[32];
    bly_ledger_tx_hash(tx, size, delta);
    s_one_ok(l, tx, size);
    ck_assert(!bly_ledger_pol_find(l, delta)->accepted);
    //  Two of three validators (2000 of 3000 stake: not above 2/3) then the third.
    tx = s_attest(0, delta, 3.0f, 2.5f, &size);
    s_one_ok(l, tx, size);
    tx = s_attest(1, delta, 3.0f, 2.5f, &size);
    s_one_ok(l, tx, size);
    ck_assert(!bly_ledger_pol_find(l, delta)->accepted);
    tx = s_attest(1, delta, 3.0f, 2.5f, &size);
    s_rejected(l, tx, size, "already attested");
    s_k.nonce[1]--;
    tx = s_attest(2, delta, 3.0f, 2.4f, &size);
    s_one_ok(l, tx, size);
    ck_assert(bly_ledger_pol_find(l, delta)->accepted);
    ck_assert_int_eq(bly_ledger_layer_current(l, 0, id, &version), 0);
    ck_assert_mem_eq(id, delta, 32);
    ck_assert_uint_eq(version, 2);
    bly_ledger_account_t a;
    ck_assert_int_eq(bly_ledger_account(l, s_k.pk[5], &a), 0);
    ck_assert_uint_eq(a.balance, FX_BALANCE - 1 + 5000);  //  Fee, then delta reward.
    //  Reward claim: once, only by an improving attester.
    bly_ledger_msg_t *m = bly_ledger_msg_new(BLY_LEDGER_MSG_REWARD);
    ck_assert_int_eq(bly_ledger_msg_set_target(m, delta, 32), 0);
    tx = s_sign(m, 2, &size);
    s_one_ok(l, tx, size);
    m = bly_ledger_msg_new(BLY_LEDGER_MSG_REWARD);
    ck_assert_int_eq(bly_ledger_msg_set_target(m, delta, 32), 0);
    tx = s_sign(m, 2, &size);
    s_rejected(l, tx, size, "already claimed");
    m = bly_ledger_msg_new(BLY_LEDGER_MSG_REWARD);
    ck_assert_int_eq(bly_ledger_msg_set_target(m, delta, 32), 0);
    tx = s_sign(m, 6, &size);
    s_rejected(l, tx, size, "did not attest");
    //  A delta on the old version is stale now.
    tx = s_delta(layer0, 0, 0x50, 1.0f, 4, &size);
    s_rejected(l, tx, size, "not the current version");
    s_k.nonce[5]--;
    ck_assert_uint_eq(fx_total(l), total);
    char err[128];
    ck_assert_int_eq(bly_ledger_pol_check(l, err, sizeof(err)), 0);
    ck_assert_uint_eq(bly_ledger_pol_count(l), 5);
    bly_ledger_destroy(&l);
}
END_TEST

START_TEST(test_pol_hostile)
{
    bly_ledger_t *l = s_new(8, 3);
    uint8_t layer0[32];
    size_t size;
    uint8_t *tx;
    //  Parent that does not exist (and a layer before any model).
    uint8_t nowhere[32] = {0x77};
    tx = s_delta(nowhere, 0, 0x40, 1.0f, 4, &size);
    s_rejected(l, tx, size, "does not exist");
    s_k.nonce[5]--;
    s_model(l, layer0);
    //  NaN, +Inf, negative and over-the-cap norms.
    float bad[] = {NAN, INFINITY, -1.0f, 10.5f};
    const char *why[] = {"NaN", "NaN", "NaN", "above the cap"};
    for (int i = 0; i < 4; i++) {
        tx = s_delta(layer0, 0, 0x40, bad[i], 4, &size);
        s_rejected(l, tx, size, why[i]);
        s_k.nonce[5]--;
    }
    //  Wrong shape: 3 tensors where the layer has 4; the wrong layer's parent.
    tx = s_delta(layer0, 0, 0x40, 1.0f, 3, &size);
    s_rejected(l, tx, size, "wrong shape");
    s_k.nonce[5]--;
    tx = s_delta(layer0, 1, 0x40, 1.0f, 4, &size);
    s_rejected(l, tx, size, "not the current version");
    s_k.nonce[5]--;
    //  Duplicate of another miner's delta (same delta hash).
    tx = s_delta(layer0, 0, 0x40, 1.0f, 4, &size);
    s_one_ok(l, tx, size);
    bly_ledger_msg_t *m = bly_ledger_msg_new(BLY_LEDGER_MSG_POL_DELTA);
    uint8_t dh[32];
    memset(dh, 0x40, 32);
    ck_assert_int_eq(bly_ledger_msg_set_parent(m, layer0, 32), 0);
    ck_assert_int_eq(bly_ledger_msg_set_delta_hash(m, dh, 32), 0);
    bly_ledger_msg_set_norm_bits(m, 0x3f800000);
    s_tensors(m, 4, 0x40);
    tx = s_sign(m, 6, &size);
    s_rejected(l, tx, size, "duplicate delta hash");
    s_k.nonce[6]--;
    //  Attestation with NaN loss, and by a non-validator.
    uint8_t d[32];
    bly_ledger_tx_hash((uint8_t[1]){0}, 1, d);
    const bly_ledger_pol_t *last = bly_ledger_pol_at(l, bly_ledger_pol_count(l) - 1);
    tx = s_attest(0, last->id, NAN, 1.0f, &size);
    s_rejected(l, tx, size, "NaN");
    s_k.nonce[0]--;
    tx = s_attest(6, last->id, 2.0f, 1.0f, &size);
    s_rejected(l, tx, size, "not a validator");
    //  A second meta block, and a layer block twice.
    m = bly_ledger_msg_new(BLY_LEDGER_MSG_POL_META);
    ck_assert_int_eq(bly_ledger_msg_set_parent(m, bly_ledger_pol_at(l, 0)->id, 32), 0);
    ck_assert_int_eq(bly_ledger_msg_set_arch(m, "llama"), 0);
    bly_ledger_msg_set_layer_count(m, 2);
    tx = s_sign(m, 0, &size);
    s_rejected(l, tx, size, "already defined");
    s_k.nonce[0]--;
    m = bly_ledger_msg_new(BLY_LEDGER_MSG_POL_LAYER);
    ck_assert_int_eq(bly_ledger_msg_set_parent(m, bly_ledger_pol_at(l, 1)->id, 32), 0);
    bly_ledger_msg_set_layer(m, 1);
    s_tensors(m, 4, 0);
    tx = s_sign(m, 1, &size);
    s_rejected(l, tx, size, "already has a layer block");
    char err[128];
    ck_assert_int_eq(bly_ledger_pol_check(l, err, sizeof(err)), 0);
    bly_ledger_destroy(&l);
}
END_TEST

static void
s_vote_sig(int who, uint64_t height, const uint8_t hash[32], uint8_t sig[64])
{
    bly_ledger_msg_t *v = bly_ledger_msg_new(BLY_LEDGER_MSG_VOTE);
    ck_assert_int_eq(bly_ledger_msg_set_chain_id(v, FX_CHAIN), 0);
    ck_assert_int_eq(bly_ledger_msg_set_validator(v, s_k.pk[who], 32), 0);
    bly_ledger_msg_set_height(v, height);
    bly_ledger_msg_set_round(v, 0);
    bly_ledger_msg_set_step(v, BLY_LEDGER_STEP_PRECOMMIT);
    ck_assert_int_eq(bly_ledger_msg_set_block_hash(v, hash, 32), 0);
    ck_assert_int_eq(bly_ledger_msg_sign(v, s_k.sk[who]), 0);
    size_t n;
    memcpy(sig, bly_ledger_msg_signature(v, &n), 64);
    bly_ledger_msg_destroy(&v);
}

static uint8_t *
s_slash(int reporter, int offender, const uint8_t ha[32], const uint8_t sa[64],
        const uint8_t hb[32], const uint8_t sb[64], size_t *size)
{
    bly_ledger_msg_t *m = bly_ledger_msg_new(BLY_LEDGER_MSG_SLASH);
    ck_assert_int_eq(bly_ledger_msg_set_offender(m, s_k.pk[offender], 32), 0);
    bly_ledger_msg_set_height(m, 9);
    bly_ledger_msg_set_round(m, 0);
    bly_ledger_msg_set_step(m, BLY_LEDGER_STEP_PRECOMMIT);
    ck_assert_int_eq(bly_ledger_msg_set_hash_a(m, ha, 32), 0);
    ck_assert_int_eq(bly_ledger_msg_set_sig_a(m, sa, 64), 0);
    ck_assert_int_eq(bly_ledger_msg_set_hash_b(m, hb, 32), 0);
    ck_assert_int_eq(bly_ledger_msg_set_sig_b(m, sb, 64), 0);
    return s_sign(m, reporter, size);
}

START_TEST(test_slash)
{
    bly_ledger_t *l = s_new(4, 2);
    uint64_t total = fx_total(l);
    uint8_t ha[32] = {1}, hb[32] = {2}, sa[64], sb[64];
    s_vote_sig(1, 9, ha, sa);
    s_vote_sig(1, 9, hb, sb);
    size_t size;
    //  Same hash twice is no equivocation; a forged second signature is refused.
    uint8_t *tx = s_slash(3, 1, ha, sa, ha, sa, &size);
    s_rejected(l, tx, size, "same block");
    s_k.nonce[3]--;
    uint8_t forged[64];
    memcpy(forged, sb, 64);
    forged[0] ^= 1;
    tx = s_slash(3, 1, ha, sa, hb, forged, &size);
    s_rejected(l, tx, size, "vote signature");
    s_k.nonce[3]--;
    tx = s_slash(3, 2, ha, sa, hb, sb, &size);  //  Offender without stake.
    s_rejected(l, tx, size, "no stake");
    s_k.nonce[3]--;
    tx = s_slash(3, 1, ha, sa, hb, sb, &size);
    s_one_ok(l, tx, size);
    bly_ledger_account_t a;
    ck_assert_int_eq(bly_ledger_account(l, s_k.pk[1], &a), 0);
    ck_assert_uint_eq(a.stake, 950);  //  5% slashed and burned.
    ck_assert_uint_eq(bly_ledger_total_stake(l), 1950);
    ck_assert_uint_eq(fx_total(l), total);
    bly_ledger_account_t v[4];
    ck_assert_uint_eq(bly_ledger_validators(l, v, 4), 2);
    ck_assert_uint_eq(v[0].stake + v[1].stake, 1950);
    ck_assert_int_lt(memcmp(v[0].key, v[1].key, 32), 0);
    ck_assert_uint_eq(bly_ledger_validators(l, v, 1), 2);
    tx = s_slash(3, 1, ha, sa, hb, sb, &size);
    s_rejected(l, tx, size, "already committed");
    bly_ledger_destroy(&l);
}
END_TEST

//  ---- Consensus evidence (slashing inside block apply) ----

//  An encoded consensus vote by key `who` (signed with `signer`'s secret key).
static void
s_cons_vote(uint8_t *out, int signer, uint8_t type, uint64_t height, int32_t round,
            const uint8_t *id)
{
    bly_cons_vote_t v = {.type = type, .height = height, .round = round, .pol_round = -1,
                         .validator = 1, .has_id = id != NULL};
    if (id)
        memcpy(v.id, id, 32);
    bly_cons_vote_sign(&v, FX_CHAIN, s_k.sk[signer]);
    bly_cons_vote_put(&v, out);
}

//  An empty block carrying `n` evidence items; returns how many were punished.
static size_t
s_block_ev(bly_ledger_t *l, const bly_ledger_evidence_t *ev, size_t n)
{
    uint8_t *b = NULL;
    size_t bs = 0, used = 0, slashed = 99;
    char err[256] = "";
    ck_assert_int_eq(bly_ledger_block_build(l, NULL, NULL, 0, bly_ledger_time_ms(l) + 1000,
                                            s_k.pk[0], &b, &bs, &used), 0);
    int rc = bly_ledger_block_begin_ev(l, b, bs, ev, n, &slashed, err, sizeof(err));
    ck_assert_msg(rc == 0, "block refused: %s", err);
    bly_ledger_block_commit(l);
    free(b);
    return slashed;
}

static uint64_t
s_stake(const bly_ledger_t *l, int who)
{
    bly_ledger_account_t a;
    ck_assert_int_eq(bly_ledger_account(l, s_k.pk[who], &a), 0);
    return a.stake;
}

START_TEST(test_evidence)
{
    bly_ledger_t *l = s_new(4, 2);
    uint64_t total = fx_total(l);
    for (int i = 0; i < 8; i++)
        ck_assert_uint_eq(s_block_ev(l, NULL, 0), 0);   //  Height 8; evidence up to 9.
    enum { P = BLY_CONS_PREVOTE, C = BLY_CONS_PRECOMMIT };
    static const uint8_t x[32] = {1}, y[32] = {2};
    uint8_t a[BLY_CONS_VOTE_SIZE], b[BLY_CONS_VOTE_SIZE];
    bly_ledger_evidence_t ev = {.vote_a = a, .vote_b = b};
    memcpy(ev.offender, s_k.pk[1], 32);
    //  Not an equivocation, or not provable: each is skipped, nothing changes.
    struct { int signer_b; uint8_t type_b; uint64_t h_b; int32_t r_b; const uint8_t *id_b; } bad[] = {
        {1, C, 9, 0, x},      //  Same block twice.
        {1, C, 9, 1, y},      //  Another round.
        {1, C, 8, 0, y},      //  Another height.
        {1, P, 9, 0, y},      //  Another type.
        {0, C, 9, 0, y},      //  Second vote signed by someone else.
    };
    uint8_t app[32];
    memcpy(app, bly_ledger_app_hash(l), 32);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s_cons_vote(a, 1, C, 9, 0, x);
        s_cons_vote(b, bad[i].signer_b, bad[i].type_b, bad[i].h_b, bad[i].r_b, bad[i].id_b);
        ck_assert_msg(s_block_ev(l, &ev, 1) == 0, "bad evidence %zu punished", i);
        ck_assert_uint_eq(s_stake(l, 1), 1000);
    }
    s_cons_vote(a, 1, C, 99, 0, x);          //  From a height not reached yet.
    s_cons_vote(b, 1, C, 99, 0, y);
    ck_assert_uint_eq(s_block_ev(l, &ev, 1), 0);
    s_cons_vote(a, 1, BLY_CONS_PROPOSAL, 5, 0, x);   //  Proposals are not votes here.
    s_cons_vote(b, 1, BLY_CONS_PROPOSAL, 5, 0, y);
    ck_assert_uint_eq(s_block_ev(l, &ev, 1), 0);
    s_cons_vote(a, 1, C, 9, 0, x);
    s_cons_vote(b, 1, C, 9, 0, y);
    b[BLY_CONS_VOTE_SIZE - 1] ^= 1;          //  Forged signature.
    ck_assert_uint_eq(s_block_ev(l, &ev, 1), 0);
    b[0] = 0xee;                             //  Does not decode.
    ck_assert_uint_eq(s_block_ev(l, &ev, 1), 0);
    s_cons_vote(b, 1, C, 9, 0, y);
    bly_ledger_evidence_t nostake = ev;      //  Account 2 has no stake.
    memcpy(nostake.offender, s_k.pk[2], 32);
    s_cons_vote(a, 2, C, 9, 0, x);
    s_cons_vote(b, 2, C, 9, 0, y);
    ck_assert_uint_eq(s_block_ev(l, &nostake, 1), 0);
    ck_assert_uint_eq(fx_total(l), total);
    //  A real equivocation (a precommit for x and one for y at height 9, round 0) twice
    //  in one block, then again: punished exactly once, 5 % of the stake burned.
    s_cons_vote(a, 1, C, 9, 0, x);
    s_cons_vote(b, 1, C, 9, 0, y);
    bly_ledger_evidence_t twice[2] = {ev, ev};
    ck_assert_uint_eq(s_block_ev(l, twice, 2), 1);
    ck_assert_uint_eq(s_stake(l, 1), 950);
    ck_assert_uint_eq(bly_ledger_total_stake(l), 1950);
    ck_assert_uint_eq(fx_total(l), total);
    ck_assert_uint_eq(s_block_ev(l, &ev, 1), 0);
    ck_assert_uint_eq(s_stake(l, 1), 950);
    //  The same offence as a slash transaction (ledger vote format) is refused too.
    uint8_t ha[32] = {1}, hb[32] = {2}, sa[64], sb[64];
    s_vote_sig(1, 9, ha, sa);
    s_vote_sig(1, 9, hb, sb);
    size_t size;
    uint8_t *tx = s_slash(3, 1, ha, sa, hb, sb, &size);
    s_rejected(l, tx, size, "already committed");
    ck_assert_uint_eq(fx_total(l), total);
    bly_ledger_destroy(&l);
}
END_TEST

//  The first committed offence tombstones the offender: no voting stake, and a
//  further offence of it is skipped (punished once, like CometBFT's tombstone).
START_TEST(test_tombstone)
{
    bly_ledger_t *l = s_new(4, 2);
    uint64_t total = fx_total(l);
    for (int i = 0; i < 8; i++)
        ck_assert_uint_eq(s_block_ev(l, NULL, 0), 0);
    enum { P = BLY_CONS_PREVOTE, C = BLY_CONS_PRECOMMIT };
    static const uint8_t x[32] = {1}, y[32] = {2};
    uint8_t a[BLY_CONS_VOTE_SIZE], b[BLY_CONS_VOTE_SIZE];
    bly_ledger_evidence_t ev = {.vote_a = a, .vote_b = b};
    memcpy(ev.offender, s_k.pk[1], 32);
    ck_assert(!bly_ledger_tombstoned(l, s_k.pk[1]));
    ck_assert_uint_eq(bly_ledger_voting_stake(l, s_k.pk[1]), 1000);
    s_cons_vote(a, 1, C, 9, 0, x);
    s_cons_vote(b, 1, C, 9, 0, y);
    ck_assert_uint_eq(s_block_ev(l, &ev, 1), 1);
    ck_assert_uint_eq(s_stake(l, 1), 950);
    ck_assert(bly_ledger_tombstoned(l, s_k.pk[1]));
    ck_assert(!bly_ledger_tombstoned(l, s_k.pk[0]));
    ck_assert_uint_eq(bly_ledger_voting_stake(l, s_k.pk[1]), 0);
    ck_assert_uint_eq(bly_ledger_voting_stake(l, s_k.pk[0]), 1000);
    ck_assert_uint_eq(bly_ledger_voting_stake(l, s_k.pk[2]), 0);   //  No stake.
    s_cons_vote(a, 1, P, 3, 2, NULL);
    s_cons_vote(b, 1, P, 3, 2, y);
    ck_assert_uint_eq(s_block_ev(l, &ev, 1), 0);
    ck_assert_uint_eq(s_stake(l, 1), 950);
    //  A nil prevote against a prevote for a block is an equivocation too; two
    //  offences of one validator in one block: the first punishes and tombstones.
    bly_ledger_evidence_t ev0[2] = {ev, ev};
    memcpy(ev0[0].offender, s_k.pk[0], 32);
    uint8_t c[BLY_CONS_VOTE_SIZE], d[BLY_CONS_VOTE_SIZE];
    memcpy(ev0[1].offender, s_k.pk[0], 32);
    ev0[1].vote_a = c;
    ev0[1].vote_b = d;
    s_cons_vote(a, 0, P, 3, 2, NULL);
    s_cons_vote(b, 0, P, 3, 2, y);
    s_cons_vote(c, 0, C, 3, 2, x);
    s_cons_vote(d, 0, C, 3, 2, y);
    ck_assert_uint_eq(s_block_ev(l, ev0, 2), 1);
    ck_assert_uint_eq(s_stake(l, 0), 950);
    ck_assert(bly_ledger_tombstoned(l, s_k.pk[0]));
    ck_assert_uint_eq(bly_ledger_voting_stake(l, s_k.pk[0]), 0);
    ck_assert_uint_eq(fx_total(l), total);
    bly_ledger_destroy(&l);
}
END_TEST

//  ---- Proofs ----

START_TEST(test_proof)
{
    bly_ledger_t *l = s_new(13, 2);
    bly_ledger_proof_t p;
    for (int i = 0; i < 13; i++) {
        ck_assert_int_eq(bly_ledger_proof(l, s_k.pk[i], &p), 0);
        ck_assert(bly_ledger_proof_verify(&p, bly_ledger_app_hash(l)));
        bly_ledger_proof_t bad = p;
        bad.account.balance++;
        ck_assert(!bly_ledger_proof_verify(&bad, bly_ledger_app_hash(l)));
        bad = p;
        if (bad.path_count > 0) {
            bad.path[0][0] ^= 1;
            ck_assert(!bly_ledger_proof_verify(&bad, bly_ledger_app_hash(l)));
        }
        bad = p;
        bad.leaf_index = bad.leaf_index ^ 1;
        ck_assert(!bly_ledger_proof_verify(&bad, bly_ledger_app_hash(l)));
    }
    ck_assert_int_eq(bly_ledger_proof(l, s_k.pk[40], &p), -1);
    //  After a block the old proof no longer matches the new app hash.
    ck_assert_int_eq(bly_ledger_proof(l, s_k.pk[1], &p), 0);
    uint8_t *tx;
    size_t size;
    ck_assert_int_eq(fx_transfer(&s_k, 1, 2, 5, 1, &tx, &size), 0);
    s_one_ok(l, tx, size);
    ck_assert(!bly_ledger_proof_verify(&p, bly_ledger_app_hash(l)));
    ck_assert_int_eq(bly_ledger_proof(l, s_k.pk[1], &p), 0);
    ck_assert(bly_ledger_proof_verify(&p, bly_ledger_app_hash(l)));
    bly_ledger_destroy(&l);
}
END_TEST

//  ---- Seeded random workloads ----

//  Run `blocks` workload blocks; check invariants after each; return the final app hash.
static void
s_workload(uint64_t seed, int blocks, uint8_t app[32])
{
    bly_ledger_t *l = s_new(16, 4);
    uint64_t total = fx_total(l);
    uint64_t nonces[FX_KEYS] = {0};
    size_t kinds[BLY_LEDGER_MSG_SLASH + 1] = {0};
    for (int h = 0; h < blocks; h++) {
        uint8_t *b;
        size_t bs, used;
        char err[256];
        ck_assert_int_eq(fx_workload_block(l, &s_k, 16, seed, 6, &b, &bs, &used), 0);
        int rc = bly_ledger_block_apply(l, b, bs, err, sizeof(err));
        ck_assert_msg(rc == 0, "height %d: %s", h + 1, err);
        bly_ledger_msg_t *m = NULL;
        ck_assert_int_eq(bly_ledger_msg_decode(b, bs, &m, NULL, 0), 0);
        for (size_t i = 0; i < bly_ledger_msg_txs_count(m); i++) {
            const bly_ledger_tx_blob_t *t = bly_ledger_msg_txs_at(m, i);
            bly_ledger_msg_t *tx = NULL;
            ck_assert_int_eq(bly_ledger_msg_decode(t->data, t->data_size, &tx, NULL, 0), 0);
            kinds[bly_ledger_msg_id(tx)]++;
            bly_ledger_msg_destroy(&tx);
        }
        bly_ledger_msg_destroy(&m);
        free(b);
        ck_assert_uint_eq(fx_total(l), total);  //  Conservation.
        uint64_t stake = 0;
        for (size_t i = 0; i < bly_ledger_account_count(l); i++) {
            const bly_ledger_account_t *a = bly_ledger_account_at(l, i);
            ck_assert_uint_le(a->balance, total);  //  No wrapped (negative) balance.
            stake += a->stake;
        }
        ck_assert_uint_eq(stake, bly_ledger_total_stake(l));
        for (int i = 0; i < 16; i++) {  //  Nonces never go backwards, by one per tx.
            bly_ledger_account_t a;
            ck_assert_int_eq(bly_ledger_account(l, s_k.pk[i], &a), 0);
            ck_assert_uint_ge(a.nonce, nonces[i]);
            nonces[i] = a.nonce;
        }
    }
    ck_assert_uint_eq(bly_ledger_height(l), (uint64_t) blocks);
    if (blocks >= 100) {  //  The workload really mixes the kinds it claims to.
        ck_assert_uint_gt(kinds[BLY_LEDGER_MSG_TRANSFER], 0);
        ck_assert_uint_gt(kinds[BLY_LEDGER_MSG_RECEIPT], 0);
        ck_assert_uint_gt(kinds[BLY_LEDGER_MSG_STAKE], 0);
        ck_assert_uint_gt(kinds[BLY_LEDGER_MSG_UNSTAKE], 0);
    }
    memcpy(app, bly_ledger_app_hash(l), 32);
    bly_ledger_destroy(&l);
}

START_TEST(test_random_workload)
{
    uint8_t a[32], b[32], c[32];
    //  Under valgrind (20x slower) a tenth of the blocks.
    int blocks = getenv("BLY_VALGRIND") ? 200 : 2000;
    s_workload(42, blocks, a);
    s_workload(42, blocks, b);
    ck_assert_mem_eq(a, b, 32);  //  Same blocks, same app hash, every run.
    s_workload(43, 50, c);
    ck_assert(memcmp(a, c, 32) != 0);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("ledger");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_genesis_file);
    tcase_add_test(tc, test_genesis_bad);
    tcase_add_test(tc, test_address);
    tcase_add_test(tc, test_transfer);
    tcase_add_test(tc, test_hostile_amounts);
    tcase_add_test(tc, test_hostile_nonce_chain);
    tcase_add_test(tc, test_hostile_signatures);
    tcase_add_test(tc, test_hostile_keys);
    tcase_add_test(tc, test_hostile_encoding);
    tcase_add_test(tc, test_block_header);
    tcase_add_test(tc, test_block_all_or_nothing);
    tcase_add_test(tc, test_receipt);
    tcase_add_test(tc, test_pol_flow);
    tcase_add_test(tc, test_pol_hostile);
    tcase_add_test(tc, test_slash);
    tcase_add_test(tc, test_evidence);
    tcase_add_test(tc, test_tombstone);
    tcase_add_test(tc, test_proof);
    tcase_add_test(tc, test_random_workload);
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
