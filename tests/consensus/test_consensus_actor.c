/*  test_consensus_actor - four consensus actors (one process, one ZAP handler) over CURVE
    ipc: a transfer submitted to one replica commits on all of them, a replica restarted
    from its storage catches up and agrees on the block hashes, a key outside the validator
    set is refused by ZAP, and bad configurations fail to start with a reason. */

#include "bly_actor.h"
#include "consensus/bly_consensus_actor.h"
#include "bly_ledger.h"
#include "bly_node.h"
#include "bly_sock.h"
#include "bly_zap.h"

#include <check.h>
#include <unistd.h>

#define S_N 4

typedef struct {
    zactor_t *zap;
    char dir[64];
    bly_identity_t *ids[S_N];
    bly_manifest_t *manifests[S_N];
    bly_actor_args_t args[S_N];
    zactor_t *actors[S_N];
    zsock_t *clients[S_N];
} s_net_t;

static void
s_genesis(s_net_t *n, int staked)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/genesis.conf", n->dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "chain_id cons-test-1\ngenesis_time_ms 0\nreward_pool 1000\nprice_per_token 1\n"
               "min_fee 1\ndelta_reward 1\nvalidator_reward 1\nburn_bps 1000\n"
               "share_router_bps 1000\nshare_validators_bps 1000\nslash_bps 100\n"
               "delta_norm_cap 5\n");
    for (int i = 0; i < S_N; i++) {
        char addr[BLY_LEDGER_ADDRESS_LEN + 1];
        bly_ledger_address_format(bly_identity_public_key(n->ids[i]), addr);
        fprintf(f, "account %s 1000000 %d\n", addr, i < staked ? 1000 : 0);
    }
    fclose(f);
}

//  Manifest of replica i; `peer_ids_override` replaces its peer_ids when not NULL.
static bly_manifest_t *
s_manifest(s_net_t *n, int i, const char *peer_ids_override)
{
    char text[2048], peers[512] = "", ids[512] = "", err[2048];
    for (int j = 0; j < S_N; j++) {
        if (j == i)
            continue;
        size_t pl = strlen(peers), il = strlen(ids);
        snprintf(peers + pl, sizeof(peers) - pl, "%sipc://%s/r%d", pl ? "," : "", n->dir, j);
        snprintf(ids + il, sizeof(ids) - il, "%s%s", il ? "," : "",
                 bly_identity_id_hex(n->ids[j]));
    }
    snprintf(text, sizeof(text),
             "node\n    name = v%d\n    key_file = k\n"
             "actor\n    role = consensus\n    endpoint = ipc://%s/c%d\n"
             "    listen = ipc://%s/r%d\n    genesis = genesis.conf\n    dir = %s/d%d\n"
             "    map_size_mb = 16\n    peers = %s\n    peer_ids = %s\n"
             //  These tests wait for heights without transactions: no idle pause.
             "    timeout_idle_ms = 0\n",
             i, n->dir, i, n->dir, i, n->dir, i, peers,
             peer_ids_override ? peer_ids_override : ids);
    bly_manifest_t *m = bly_manifest_parse(text, strlen(text), "test.zpl", n->dir,
                                           bly_node_schema(), err, sizeof(err));
    ck_assert_msg(m, "%s", err);
    return m;
}

static void
s_setup(s_net_t *n, int staked)
{
    memset(n, 0, sizeof(*n));
    snprintf(n->dir, sizeof(n->dir), "/tmp/bly_cons_actor_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(n->dir));
    n->zap = bly_zap_new();
    ck_assert_ptr_nonnull(n->zap);
    ck_assert_int_eq(bly_zap_open(n->zap, "open"), 0);
    for (int i = 0; i < S_N; i++)
        n->ids[i] = bly_identity_new_random();
    s_genesis(n, staked);
}

static void
s_start(s_net_t *n, int i)
{
    char err[512];
    if (!n->manifests[i])
        n->manifests[i] = s_manifest(n, i, NULL);
    n->args[i] = (bly_actor_args_t){"consensus", n->manifests[i], 0, n->ids[i], n->zap};
    n->actors[i] = bly_actor_start(bly_consensus_actor, &n->args[i], err, sizeof(err));
    ck_assert_msg(n->actors[i], "%s", err);
    if (!n->clients[i]) {
        char ep[128];
        snprintf(ep, sizeof(ep), "ipc://%s/c%d", n->dir, i);
        bly_identity_t *me = bly_identity_new_random();
        n->clients[i] = bly_sock_client(ZMQ_DEALER, me, bly_identity_curve_public_z85(n->ids[i]),
                                        ep, err, sizeof(err));
        bly_identity_destroy(&me);
        ck_assert_msg(n->clients[i], "%s", err);
        zsock_set_rcvtimeo(n->clients[i], 3000);
    }
}

static void
s_teardown(s_net_t *n)
{
    for (int i = 0; i < S_N; i++) {
        zsock_destroy(&n->clients[i]);
        zactor_destroy(&n->actors[i]);
        bly_manifest_destroy(&n->manifests[i]);
        bly_identity_destroy(&n->ids[i]);
    }
    bly_zap_destroy(&n->zap);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", n->dir);
    ck_assert_int_eq(system(cmd), 0);
}

static bly_ledger_msg_t *
s_ask(s_net_t *n, int i, bly_ledger_msg_t **req_p)
{
    ck_assert_int_eq(bly_ledger_msg_send(*req_p, n->clients[i]), 0);
    bly_ledger_msg_destroy(req_p);
    bly_ledger_msg_t *r = bly_ledger_msg_recv(n->clients[i], NULL, 0);
    ck_assert_msg(r, "replica %d does not answer", i);
    return r;
}

static uint64_t
s_height(s_net_t *n, int i)
{
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_HEAD_REQUEST);
    bly_ledger_msg_t *r = s_ask(n, i, &req);
    uint64_t h = bly_ledger_msg_height(r);
    bly_ledger_msg_destroy(&r);
    return h;
}

static uint64_t
s_balance(s_net_t *n, int i, const uint8_t *key)
{
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_ACCOUNT_REQUEST);
    ck_assert_int_eq(bly_ledger_msg_set_key(req, key, 32), 0);
    bly_ledger_msg_t *r = s_ask(n, i, &req);
    uint64_t b = bly_ledger_msg_balance(r);
    bly_ledger_msg_destroy(&r);
    return b;
}

//  Block hash of height h on replica i (zeros when absent).
static void
s_block_hash(s_net_t *n, int i, uint64_t h, uint8_t out[32])
{
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_BLOCK_REQUEST);
    bly_ledger_msg_set_height(req, h);
    bly_ledger_msg_t *r = s_ask(n, i, &req);
    size_t size;
    memset(out, 0, 32);
    if (bly_ledger_msg_id(r) == BLY_LEDGER_MSG_BLOCK_REPLY)
        memcpy(out, bly_ledger_msg_block_hash(r, &size), 32);
    bly_ledger_msg_destroy(&r);
}

//  Bounded wait (not a timing assertion): until replica i has height >= h.
static void
s_wait_height(s_net_t *n, int i, uint64_t h)
{
    for (int t = 0; t < 500 && s_height(n, i) < h; t++)
        zclock_sleep(20);
    ck_assert_uint_ge(s_height(n, i), h);
}

START_TEST(test_transfer_restart_agree)
{
    s_net_t n;
    s_setup(&n, S_N);
    for (int i = 0; i < S_N; i++)
        s_start(&n, i);
    s_wait_height(&n, 0, 2);
    //  A transfer from replica 0's funded key, submitted to replica 1.
    uint8_t *tx = NULL, to[32];
    size_t size;
    bly_identity_t *sink = bly_identity_new_random();   //  Not a validator: no fees.
    memcpy(to, bly_identity_public_key(sink), 32);
    bly_identity_destroy(&sink);
    ck_assert_int_eq(bly_ledger_make_transfer(bly_identity_secret_key(n.ids[0]), "cons-test-1", 1,
                                              1, to, 777, &tx, &size), 0);
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_SUBMIT);
    ck_assert_int_eq(bly_ledger_msg_set_tx(req, tx, size), 0);
    bly_ledger_msg_t *r = s_ask(&n, 1, &req);
    ck_assert_int_eq(bly_ledger_msg_id(r), BLY_LEDGER_MSG_SUBMIT_OK);
    bly_ledger_msg_destroy(&r);
    //  The same transaction again: refused (already pending, or its nonce is used).
    req = bly_ledger_msg_new(BLY_LEDGER_MSG_SUBMIT);
    ck_assert_int_eq(bly_ledger_msg_set_tx(req, tx, size), 0);
    r = s_ask(&n, 1, &req);
    ck_assert_int_eq(bly_ledger_msg_id(r), BLY_LEDGER_MSG_ERROR);
    bly_ledger_msg_destroy(&r);
    free(tx);
    for (int i = 0; i < S_N; i++) {
        for (int t = 0; t < 500 && s_balance(&n, i, to) != 777; t++)
            zclock_sleep(20);
        ck_assert_uint_eq(s_balance(&n, i, to), 777);
    }
    //  Restart replica 2 from its storage; it catches up and agrees.
    zactor_destroy(&n.actors[2]);
    uint64_t target = s_height(&n, 0) + 3;
    s_start(&n, 2);
    s_wait_height(&n, 2, target);
    for (uint64_t h = 1; h <= target; h += target / 4 + 1) {
        uint8_t a[32], b[32];
        s_block_hash(&n, 0, h, a);
        for (int i = 1; i < S_N; i++) {
            s_block_hash(&n, i, h, b);
            ck_assert_mem_eq(a, b, 32);
        }
    }
    s_teardown(&n);
}
END_TEST

//  Submit a transfer of `amount` from replica 0's key (nonce) to `to` via replica i.
static void
s_transfer(s_net_t *n, int i, uint64_t nonce, const uint8_t to[32], uint64_t amount)
{
    uint8_t *tx = NULL;
    size_t size;
    ck_assert_int_eq(bly_ledger_make_transfer(bly_identity_secret_key(n->ids[0]), "cons-test-1",
                                              nonce, 1, to, amount, &tx, &size), 0);
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_SUBMIT);
    ck_assert_int_eq(bly_ledger_msg_set_tx(req, tx, size), 0);
    bly_ledger_msg_t *r = s_ask(n, i, &req);
    ck_assert_int_eq(bly_ledger_msg_id(r), BLY_LEDGER_MSG_SUBMIT_OK);
    bly_ledger_msg_destroy(&r);
    free(tx);
}

static void
s_shell(const char *format, const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), format, dir, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
}

//  The LMDB store lags the commit log (a crash between the commit log's fsync and the
//  store's write): the restarted replica applies and writes the missing blocks from its
//  log and agrees. A store AHEAD of its commit log is refused with a reason.
START_TEST(test_store_lags_log)
{
    s_net_t n;
    s_setup(&n, S_N);
    for (int i = 0; i < S_N; i++)
        s_start(&n, i);
    s_wait_height(&n, 3, 2);
    zactor_destroy(&n.actors[3]);
    s_shell("cp -r %s/d3/ledger %s/ledger.old", n.dir);
    s_start(&n, 3);
    uint8_t to[32];
    bly_identity_t *sink = bly_identity_new_random();
    memcpy(to, bly_identity_public_key(sink), 32);
    bly_identity_destroy(&sink);
    s_transfer(&n, 3, 1, to, 777);
    for (int t = 0; t < 500 && s_balance(&n, 3, to) != 777; t++)
        zclock_sleep(20);
    ck_assert_uint_eq(s_balance(&n, 3, to), 777);
    s_wait_height(&n, 3, s_height(&n, 3) + 2);
    zactor_destroy(&n.actors[3]);
    s_shell("rm -rf %s/d3/ledger && mv %s/ledger.old %s/d3/ledger", n.dir);
    s_start(&n, 3);
    ck_assert_uint_eq(s_balance(&n, 3, to), 777);
    uint64_t target = s_height(&n, 0) + 2;
    s_wait_height(&n, 3, target);
    for (uint64_t h = 1; h <= target; h++) {
        uint8_t a[32], b[32];
        s_block_hash(&n, 0, h, a);
        s_block_hash(&n, 3, h, b);
        ck_assert_mem_eq(a, b, 32);
    }
    //  An emptied commit log under a full store: refused, the store is ahead.
    zactor_destroy(&n.actors[3]);
    s_shell(": > %s/d3/commits && : > %s/d3/wal && test -d %s/d3/ledger", n.dir);
    char err[512] = "";
    bly_actor_args_t args = {"consensus", n.manifests[3], 0, n.ids[3], n.zap};
    zactor_t *a = bly_actor_start(bly_consensus_actor, &args, err, sizeof(err));
    ck_assert_ptr_null(a);
    ck_assert_msg(strstr(err, "ahead of the commit log"), "reason: %s", err);
    s_teardown(&n);
}
END_TEST

START_TEST(test_stranger_refused)
{
    s_net_t n;
    s_setup(&n, S_N);
    s_start(&n, 0);
    uint64_t before = bly_zap_denials(n.zap);
    char ep[128], err[256];
    snprintf(ep, sizeof(ep), "ipc://%s/r0", n.dir);
    bly_identity_t *stranger = bly_identity_new_random();
    zsock_t *s = bly_sock_client(ZMQ_DEALER, stranger, bly_identity_curve_public_z85(n.ids[0]),
                                 ep, err, sizeof(err));
    ck_assert_msg(s, "%s", err);
    zstr_sendm(s, "C");
    zstr_send(s, "garbage");
    for (int t = 0; t < 250 && bly_zap_denials(n.zap) == before; t++)
        zclock_sleep(20);
    ck_assert_uint_gt(bly_zap_denials(n.zap), before);
    //  The replica still serves its clients.
    ck_assert_uint_ge(s_height(&n, 0), 0);
    zsock_destroy(&s);
    bly_identity_destroy(&stranger);
    s_teardown(&n);
}
END_TEST

static void
s_expect_fail(s_net_t *n, bly_manifest_t *m, const char *reason)
{
    char err[512] = "";
    bly_actor_args_t args = {"consensus", m, 0, n->ids[0], n->zap};
    zactor_t *a = bly_actor_start(bly_consensus_actor, &args, err, sizeof(err));
    ck_assert_ptr_null(a);
    ck_assert_msg(strstr(err, reason), "reason: %s", err);
    bly_manifest_destroy(&m);
}

START_TEST(test_bad_config)
{
    s_net_t n;
    s_setup(&n, S_N);
    //  A peer that is not a validator of the genesis.
    bly_identity_t *other = bly_identity_new_random();
    char ids[256];
    snprintf(ids, sizeof(ids), "%s,%s,%s", bly_identity_id_hex(n.ids[1]),
             bly_identity_id_hex(n.ids[2]), bly_identity_id_hex(other));
    s_expect_fail(&n, s_manifest(&n, 0, ids), "not another validator");
    //  Itself listed as a peer.
    snprintf(ids, sizeof(ids), "%s,%s,%s", bly_identity_id_hex(n.ids[0]),
             bly_identity_id_hex(n.ids[2]), bly_identity_id_hex(n.ids[3]));
    s_expect_fail(&n, s_manifest(&n, 0, ids), "not another validator");
    //  A malformed id.
    s_expect_fail(&n, s_manifest(&n, 0, "abc,def,012"), "bad endpoint or peer_ids");
    bly_identity_destroy(&other);
    //  No staked account: no validator set (a fresh store: the genesis changed).
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s/d0", n.dir);
    ck_assert_int_eq(system(cmd), 0);
    s_genesis(&n, 0);
    s_expect_fail(&n, s_manifest(&n, 0, NULL), "no usable validator set");
    s_teardown(&n);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("consensus_actor");
    TCase *tc = tcase_create("actor");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_transfer_restart_agree);
    tcase_add_test(tc, test_store_lags_log);
    tcase_add_test(tc, test_stranger_refused);
    tcase_add_test(tc, test_bad_config);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
