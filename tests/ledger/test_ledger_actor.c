/*  test_ledger_actor - the ledger actor over real CURVE tcp on 127.0.0.1 in solo mode:
    submit, block production, every query (the account proof verified against the head's
    app hash), and hostile frames (garbage, forged transaction, a reply sent as a request,
    unknown heights and hashes, a second pending transaction) each answered with an error
    while the actor keeps serving. */

#include "bly_actor.h"
#include "bly_ledger_actor.h"
#include "bly_node.h"
#include "bly_sock.h"
#include "bly_zap.h"
#include "ledger_fixture.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    zactor_t *zap;
    bly_identity_t *identity;
    bly_manifest_t *manifest;
    bly_actor_args_t args;
    zactor_t *actor;
    zsock_t *client;
    char dir[64];
    char endpoint[64];
} s_fixture_t;

static fx_keys_t s_k;

static int
s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

//  A genesis file for the fixture keys (first 4 funded, 2 validators).
static void
s_write_genesis(const char *path)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "chain_id %s\ngenesis_time_ms 0\nreward_pool 1000\nprice_per_token 1\n"
               "min_fee 1\ndelta_reward 1\nvalidator_reward 1\nburn_bps 1000\n"
               "share_router_bps 1000\nshare_validators_bps 1000\nslash_bps 100\n"
               "delta_norm_cap 5\n", FX_CHAIN);
    for (int i = 0; i < 4; i++) {
        char addr[BLY_LEDGER_ADDRESS_LEN + 1];
        bly_ledger_address_format(s_k.pk[i], addr);
        fprintf(f, "account %s %llu %d\n", addr, FX_BALANCE, i < 2 ? 1000 : 0);
    }
    fclose(f);
}

static void
s_start(s_fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    fx_keys(&s_k, 1);
    snprintf(f->dir, sizeof(f->dir), "/tmp/bly_ledger_actor_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    char path[128], text[1024], err[2048];
    snprintf(path, sizeof(path), "%s/genesis.conf", f->dir);
    s_write_genesis(path);
    f->zap = bly_zap_new();
    ck_assert_ptr_nonnull(f->zap);
    ck_assert_int_eq(bly_zap_open(f->zap, "open"), 0);
    f->identity = bly_identity_new_random();
    snprintf(f->endpoint, sizeof(f->endpoint), "tcp://127.0.0.1:%d", s_free_port());
    snprintf(text, sizeof(text),
             "node\n    name = l1\n    key_file = k\n"
             "actor\n    role = ledger\n    endpoint = %s\n    genesis = %s\n"
             "    dir = %s/db\n    map_size_mb = 16\n    block_ms = 50\n",
             f->endpoint, path, f->dir);
    f->manifest = bly_manifest_parse(text, strlen(text), "test.zpl", f->dir, bly_node_schema(),
                                     err, sizeof(err));
    ck_assert_msg(f->manifest, "%s", err);
    f->args = (bly_actor_args_t){"ledger", f->manifest, 0, f->identity, NULL};
    f->actor = bly_actor_start(bly_ledger_actor, &f->args, err, sizeof(err));
    ck_assert_msg(f->actor, "%s", err);
    bly_identity_t *me = bly_identity_new_random();
    f->client = bly_sock_client(ZMQ_DEALER, me, bly_identity_curve_public_z85(f->identity),
                                f->endpoint, err, sizeof(err));
    bly_identity_destroy(&me);
    ck_assert_msg(f->client, "%s", err);
    zsock_set_rcvtimeo(f->client, 3000);
}

static void
s_stop(s_fixture_t *f)
{
    zsock_destroy(&f->client);
    zactor_destroy(&f->actor);
    bly_manifest_destroy(&f->manifest);
    bly_identity_destroy(&f->identity);
    bly_zap_destroy(&f->zap);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    ck_assert_int_eq(system(cmd), 0);
}

//  Send (consumes *req_p) and receive one reply of id `want`.
static bly_ledger_msg_t *
s_ask(s_fixture_t *f, bly_ledger_msg_t **req_p, int want)
{
    ck_assert_int_eq(bly_ledger_msg_send(*req_p, f->client), 0);
    bly_ledger_msg_destroy(req_p);
    char err[256];
    bly_ledger_msg_t *r = bly_ledger_msg_recv(f->client, err, sizeof(err));
    ck_assert_msg(r, "no reply: %s", err);
    ck_assert_msg(bly_ledger_msg_id(r) == want, "got %s: %s", bly_ledger_msg_command(r),
                  bly_ledger_msg_reason(r));
    return r;
}

static uint64_t
s_height(s_fixture_t *f, bly_ledger_msg_t **head_p)
{
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_HEAD_REQUEST);
    bly_ledger_msg_t *h = s_ask(f, &req, BLY_LEDGER_MSG_HEAD);
    uint64_t height = bly_ledger_msg_height(h);
    if (head_p)
        *head_p = h;
    else
        bly_ledger_msg_destroy(&h);
    return height;
}

static bly_ledger_msg_t *
s_submit(s_fixture_t *f, const uint8_t *tx, size_t size, int want)
{
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_SUBMIT);
    ck_assert_int_eq(bly_ledger_msg_set_tx(req, tx, size), 0);
    return s_ask(f, &req, want);
}

START_TEST(test_solo_chain)
{
    s_fixture_t f;
    s_start(&f);
    ck_assert_uint_eq(s_height(&f, NULL), 0);
    uint8_t *tx;
    size_t size;
    ck_assert_int_eq(fx_transfer(&s_k, 1, 9, 777, 3, &tx, &size), 0);
    bly_ledger_msg_t *ok = s_submit(&f, tx, size, BLY_LEDGER_MSG_SUBMIT_OK);
    uint8_t hash[32];
    size_t n;
    memcpy(hash, bly_ledger_msg_tx_hash(ok, &n), 32);
    bly_ledger_msg_destroy(&ok);
    for (int i = 0; i < 100 && s_height(&f, NULL) == 0; i++)  //  Bounded: 5 s.
        zclock_sleep(50);
    bly_ledger_msg_t *head = NULL;
    ck_assert_uint_eq(s_height(&f, &head), 1);
    //  Account of the receiver.
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_ACCOUNT_REQUEST);
    ck_assert_int_eq(bly_ledger_msg_set_key(req, s_k.pk[9], 32), 0);
    bly_ledger_msg_t *r = s_ask(&f, &req, BLY_LEDGER_MSG_ACCOUNT);
    ck_assert(bly_ledger_msg_exists(r));
    ck_assert_uint_eq(bly_ledger_msg_balance(r), 777);
    bly_ledger_msg_destroy(&r);
    //  The block and the transaction by hash.
    req = bly_ledger_msg_new(BLY_LEDGER_MSG_BLOCK_REQUEST);
    bly_ledger_msg_set_height(req, 1);
    r = s_ask(&f, &req, BLY_LEDGER_MSG_BLOCK_REPLY);
    ck_assert_mem_eq(bly_ledger_msg_block_hash(r, &n), bly_ledger_msg_block_hash(head, &n), 32);
    bly_ledger_msg_destroy(&r);
    req = bly_ledger_msg_new(BLY_LEDGER_MSG_TX_REQUEST);
    ck_assert_int_eq(bly_ledger_msg_set_tx_hash(req, hash, 32), 0);
    r = s_ask(&f, &req, BLY_LEDGER_MSG_TX_REPLY);
    ck_assert_uint_eq(bly_ledger_msg_height(r), 1);
    const uint8_t *got = bly_ledger_msg_tx(r, &n);
    ck_assert_uint_eq(n, size);
    ck_assert_mem_eq(got, tx, size);
    bly_ledger_msg_destroy(&r);
    //  The proof of the sender verifies against the head's app hash.
    req = bly_ledger_msg_new(BLY_LEDGER_MSG_PROOF_REQUEST);
    ck_assert_int_eq(bly_ledger_msg_set_key(req, s_k.pk[1], 32), 0);
    r = s_ask(&f, &req, BLY_LEDGER_MSG_PROOF);
    bly_ledger_proof_t p;
    memset(&p, 0, sizeof(p));
    memcpy(p.account.key, s_k.pk[1], 32);
    p.account.balance = bly_ledger_msg_balance(r);
    p.account.nonce = bly_ledger_msg_nonce(r);
    p.account.stake = bly_ledger_msg_stake(r);
    ck_assert_uint_eq(p.account.nonce, 1);
    p.leaf_index = bly_ledger_msg_leaf_index(r);
    p.leaf_count = bly_ledger_msg_leaf_count(r);
    p.path_count = bly_ledger_msg_path_count(r);
    for (size_t i = 0; i < p.path_count; i++) {
        memcpy(p.path[i], bly_ledger_msg_path_at(r, i)->hash, 32);
        p.path_right[i] = bly_ledger_msg_path_at(r, i)->right;
    }
    memcpy(p.pol_root, bly_ledger_msg_pol_root(r, &n), 32);
    memcpy(p.extra_root, bly_ledger_msg_extra_root(r, &n), 32);
    ck_assert(bly_ledger_proof_verify(&p, bly_ledger_msg_app_hash(head, &n)));
    bly_ledger_msg_destroy(&r);
    req = bly_ledger_msg_new(BLY_LEDGER_MSG_POL_REQUEST);
    r = s_ask(&f, &req, BLY_LEDGER_MSG_POL);
    ck_assert_uint_eq(bly_ledger_msg_nodes_count(r), 1);
    bly_ledger_msg_destroy(&r);
    bly_ledger_msg_destroy(&head);
    free(tx);
    s_stop(&f);
}
END_TEST

static void
s_expect_error(s_fixture_t *f, bly_ledger_msg_t *r, int code)
{
    ck_assert_uint_eq(bly_ledger_msg_code(r), code);
    bly_ledger_msg_destroy(&r);
    (void) f;
}

START_TEST(test_hostile)
{
    s_fixture_t f;
    s_start(&f);
    //  Garbage bytes: an error reply, not a crash.
    zframe_t *junk = zframe_new("\xc1\xff\x00garbage", 10);
    ck_assert_int_eq(zframe_send(&junk, f.client, 0), 0);
    char err[256];
    bly_ledger_msg_t *r = bly_ledger_msg_recv(f.client, err, sizeof(err));
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(bly_ledger_msg_id(r), BLY_LEDGER_MSG_ERROR);
    s_expect_error(&f, r, BLY_LEDGER_ERROR_BAD_MESSAGE);
    //  A reply sent as a request.
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_HEAD);
    ck_assert_int_eq(bly_ledger_msg_set_chain_id(req, "x"), 0);
    s_expect_error(&f, s_ask(&f, &req, BLY_LEDGER_MSG_ERROR), BLY_LEDGER_ERROR_BAD_MESSAGE);
    //  A forged transaction, one for another chain, one from an unknown account.
    uint8_t *tx;
    size_t size;
    ck_assert_int_eq(fx_transfer(&s_k, 1, 9, 5, 1, &tx, &size), 0);
    tx[size - 1] ^= 1;
    s_expect_error(&f, s_submit(&f, tx, size, BLY_LEDGER_MSG_ERROR), BLY_LEDGER_ERROR_REJECTED);
    free(tx);
    ck_assert_int_eq(bly_ledger_make_transfer(s_k.sk[1], "other-chain", 1, 1, s_k.pk[9], 5, &tx,
                                              &size), 0);
    s_expect_error(&f, s_submit(&f, tx, size, BLY_LEDGER_MSG_ERROR), BLY_LEDGER_ERROR_REJECTED);
    free(tx);
    ck_assert_int_eq(fx_transfer(&s_k, 30, 9, 5, 1, &tx, &size), 0);
    s_expect_error(&f, s_submit(&f, tx, size, BLY_LEDGER_MSG_ERROR), BLY_LEDGER_ERROR_REJECTED);
    free(tx);
    //  Unknown height and transaction hash.
    req = bly_ledger_msg_new(BLY_LEDGER_MSG_BLOCK_REQUEST);
    bly_ledger_msg_set_height(req, 99);
    s_expect_error(&f, s_ask(&f, &req, BLY_LEDGER_MSG_ERROR), BLY_LEDGER_ERROR_NOT_FOUND);
    req = bly_ledger_msg_new(BLY_LEDGER_MSG_TX_REQUEST);
    ck_assert_int_eq(bly_ledger_msg_set_tx_hash(req, s_k.pk[3], 32), 0);
    s_expect_error(&f, s_ask(&f, &req, BLY_LEDGER_MSG_ERROR), BLY_LEDGER_ERROR_NOT_FOUND);
    //  Still serving, nothing changed.
    ck_assert_uint_eq(s_height(&f, NULL), 0);
    zstr_send(f.actor, "STATS");
    uint64_t height, pool, handled, refused;
    ck_assert_int_eq(zsock_recv(f.actor, "8888", &height, &pool, &handled, &refused), 0);
    ck_assert_uint_eq(refused, 7);
    ck_assert_uint_eq(pool, 0);
    s_stop(&f);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("ledger_actor");
    TCase *tc = tcase_create("actor");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_solo_chain);
    tcase_add_test(tc, test_hostile);
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
