/*  =========================================================================
    blyan tx / balance / chain / pol - talk to a node's ledger actor

    blyan tx transfer --node E --server-key HEX --key F --to ADDR --amount N [--fee N]
                      [--nonce N]
    blyan balance --node E --server-key HEX ADDR
    blyan chain head --node E --server-key HEX [--json]
    blyan chain block --node E --server-key HEX H
    blyan pol show --node E --server-key HEX

    E is the ledger's endpoint (manifest key `endpoint` of its ledger
    section); HEX is the node id of the node running it (its CURVE server key
    derives from it). Every command takes --timeout-ms N (default 3000). The
    transfer reads the chain id and the sender's nonce from the ledger, signs
    with the key file F (from blyan keygen), submits, and prints the
    transaction hash. --nonce N signs with nonce N instead of the committed
    one + 1: a consensus mempool holds a sender's next transactions (up to
    BLY_MEMPOOL_SENDER_TX_MAX) while earlier ones are still pending. Exit 0 on success, 1 when the ledger refuses or does not
    answer, 2 bad usage.
    ========================================================================= */

#include "bly_cli.h"
#include "bly_identity.h"
#include "bly_ledger.h"
#include "bly_sock.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    zsock_t *dealer;
    int timeout_ms;
    const char *endpoint;
} s_conn_t;

static int
s_connect(int argc, char **argv, s_conn_t *c)
{
    const char *node = bly_cli_opt(argc, argv, "--node");
    const char *key = bly_cli_opt(argc, argv, "--server-key");
    const char *timeout = bly_cli_opt(argc, argv, "--timeout-ms");
    long t = 3000;
    if (!node || !key || (timeout && bly_cli_parse_long(timeout, 1, 600000, &t))) {
        fprintf(stderr, "need --node ENDPOINT --server-key NODE_ID_HEX [--timeout-ms N]\n");
        return 2;
    }
    uint8_t id[BLY_IDENTITY_PUBLIC_SIZE];
    char z85[BLY_IDENTITY_Z85_SIZE], err[256];
    if (bly_identity_id_from_hex(key, id) || bly_identity_curve_z85_from_id(id, z85)) {
        fprintf(stderr, "--server-key must be the node id (64 hex characters)\n");
        return 2;
    }
    bly_identity_t *me = bly_identity_new_random();
    bly_assert(me);
    c->dealer = bly_sock_client(ZMQ_DEALER, me, z85, node, err, sizeof(err));
    bly_identity_destroy(&me);
    if (!c->dealer) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    c->timeout_ms = (int) t;
    c->endpoint = node;
    zsock_set_rcvtimeo(c->dealer, c->timeout_ms);
    return 0;
}

//  Send a request (consumed) and receive the reply; NULL after printing why.
static bly_ledger_msg_t *
s_ask(s_conn_t *c, bly_ledger_msg_t **req_p, int want)
{
    char err[256] = "";
    bly_ledger_msg_t *reply = NULL;
    if (bly_ledger_msg_send(*req_p, c->dealer) != 0) {
        fprintf(stderr, "cannot send to %s\n", c->endpoint);
    } else {
        reply = bly_ledger_msg_recv(c->dealer, err, sizeof(err));
        if (!reply)
            fprintf(stderr, "no answer from %s within %d ms (%s)\n", c->endpoint, c->timeout_ms,
                    err[0] ? err : "is the ledger running, and is the server key its node id?");
    }
    bly_ledger_msg_destroy(req_p);
    if (reply && bly_ledger_msg_id(reply) != want) {
        if (bly_ledger_msg_id(reply) == BLY_LEDGER_MSG_ERROR)
            fprintf(stderr, "ledger refused: %s\n", bly_ledger_msg_reason(reply));
        else
            fprintf(stderr, "ledger answered %s\n", bly_ledger_msg_command(reply));
        bly_ledger_msg_destroy(&reply);
    }
    return reply;
}

static void
s_hex(const uint8_t *data, size_t size, char *out)
{
    sodium_bin2hex(out, size * 2 + 1, data, size);
}

static bly_ledger_msg_t *
s_account(s_conn_t *c, const uint8_t key[32])
{
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_ACCOUNT_REQUEST);
    bly_assert(req && bly_ledger_msg_set_key(req, key, 32) == 0);
    return s_ask(c, &req, BLY_LEDGER_MSG_ACCOUNT);
}

static int
s_parse_u64(const char *text, uint64_t *v)
{
    char *end = NULL;
    if (!text || text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    unsigned long long x = strtoull(text, &end, 10);
    if (errno || *end)
        return -1;
    *v = x;
    return 0;
}

static int
s_transfer(int argc, char **argv, s_conn_t *c)
{
    const char *key_file = bly_cli_opt(argc, argv, "--key");
    uint8_t to[32];
    uint64_t amount, fee = 1, nonce = 0;
    const char *fee_text = bly_cli_opt(argc, argv, "--fee");
    const char *nonce_text = bly_cli_opt(argc, argv, "--nonce");
    if (!key_file || !bly_cli_opt(argc, argv, "--to")
        || bly_ledger_address_parse(bly_cli_opt(argc, argv, "--to"), to)
        || s_parse_u64(bly_cli_opt(argc, argv, "--amount"), &amount)
        || (fee_text && s_parse_u64(fee_text, &fee))
        || (nonce_text && (s_parse_u64(nonce_text, &nonce) || nonce == 0))) {
        fprintf(stderr, "need --key FILE --to ADDRESS (bly1..., checksummed) --amount N [--fee N] "
                        "[--nonce N >= 1]\n");
        return 2;
    }
    char err[512];
    bly_identity_t *me = bly_identity_load(key_file, err, sizeof(err));
    if (!me) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    int rc = 1;
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_HEAD_REQUEST);
    bly_ledger_msg_t *head = s_ask(c, &req, BLY_LEDGER_MSG_HEAD);
    bly_ledger_msg_t *acc = head ? s_account(c, bly_identity_public_key(me)) : NULL;
    uint8_t *tx = NULL;
    size_t size;
    if (acc && bly_ledger_make_transfer(bly_identity_secret_key(me), bly_ledger_msg_chain_id(head),
                                        nonce_text ? nonce : bly_ledger_msg_nonce(acc) + 1, fee,
                                        to, amount, &tx, &size) == 0) {
        req = bly_ledger_msg_new(BLY_LEDGER_MSG_SUBMIT);
        bly_assert(req && bly_ledger_msg_set_tx(req, tx, size) == 0);
        bly_ledger_msg_t *ok = s_ask(c, &req, BLY_LEDGER_MSG_SUBMIT_OK);
        if (ok) {
            char hex[65];
            size_t n;
            s_hex(bly_ledger_msg_tx_hash(ok, &n), 32, hex);
            printf("%s\n", hex);
            rc = 0;
        }
        bly_ledger_msg_destroy(&ok);
    }
    free(tx);
    bly_ledger_msg_destroy(&acc);
    bly_ledger_msg_destroy(&head);
    bly_identity_destroy(&me);
    return rc;
}

int
bly_cli_tx(int argc, char **argv)
{
    static const char *const known[] = {"--node=", "--server-key=", "--timeout-ms=", "--key=",
                                        "--to=", "--amount=", "--fee=", "--nonce=", NULL};
    if (argc < 2 || strcmp(argv[1], "transfer") != 0 || bly_cli_check_options(argc, argv, known)) {
        fprintf(stderr, "usage: blyan tx transfer --node E --server-key HEX --key F --to ADDR "
                        "--amount N [--fee N] [--nonce N]\n");
        return 2;
    }
    s_conn_t c;
    int rc = s_connect(argc, argv, &c);
    if (rc)
        return rc;
    rc = s_transfer(argc, argv, &c);
    zsock_destroy(&c.dealer);
    return rc;
}

//  The n-th argument after argv[0] that is neither an option nor an option's value.
//  Options taking a value are listed as "--name=" in `known`.
static const char *
s_positional(int argc, char **argv, const char *const *known, int n)
{
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0) {
            if (strchr(argv[i], '='))
                continue;
            size_t len = strlen(argv[i]);
            for (const char *const *k = known; *k; k++) {
                if (strncmp(*k, argv[i], len) == 0 && (*k)[len] == '=') {
                    i++;  //  Skip its value.
                    break;
                }
            }
            continue;
        }
        if (n-- == 0)
            return argv[i];
    }
    return NULL;
}

int
bly_cli_balance(int argc, char **argv)
{
    static const char *const known[] = {"--node=", "--server-key=", "--timeout-ms=", "--json",
                                        NULL};
    uint8_t key[32];
    const char *addr = s_positional(argc, argv, known, 0);
    if (bly_cli_check_options(argc, argv, known) || !addr || bly_ledger_address_parse(addr, key)) {
        fprintf(stderr, "usage: blyan balance --node E --server-key HEX ADDRESS (bly1..., "
                        "checksummed) [--json]\n");
        return 2;
    }
    s_conn_t c;
    int rc = s_connect(argc, argv, &c);
    if (rc)
        return rc;
    bly_ledger_msg_t *a = s_account(&c, key);
    if (a && bly_cli_flag(argc, argv, "--json"))
        printf("{\"address\": \"%s\", \"exists\": %s, \"balance\": %" PRIu64 ", \"nonce\": %" PRIu64
               ", \"stake\": %" PRIu64 ", \"height\": %" PRIu64 "}\n",
               addr, bly_ledger_msg_exists(a) ? "true" : "false", bly_ledger_msg_balance(a),
               bly_ledger_msg_nonce(a), bly_ledger_msg_stake(a), bly_ledger_msg_height(a));
    else if (a)
        printf("%" PRIu64 "\n", bly_ledger_msg_balance(a));
    rc = a ? 0 : 1;
    bly_ledger_msg_destroy(&a);
    zsock_destroy(&c.dealer);
    return rc;
}

static int
s_head(s_conn_t *c, bool json)
{
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_HEAD_REQUEST);
    bly_ledger_msg_t *h = s_ask(c, &req, BLY_LEDGER_MSG_HEAD);
    if (!h)
        return 1;
    char bh[65], ah[65];
    size_t n;
    s_hex(bly_ledger_msg_block_hash(h, &n), 32, bh);
    s_hex(bly_ledger_msg_app_hash(h, &n), 32, ah);
    if (json)
        printf("{\"height\": %" PRIu64 ", \"hash\": \"%s\", \"app_hash\": \"%s\", \"time_ms\": %" PRIu64
               ", \"chain_id\": \"%s\"}\n",
               bly_ledger_msg_height(h), bh, ah, bly_ledger_msg_time_ms(h),
               bly_ledger_msg_chain_id(h));
    else
        printf("height %" PRIu64 "\nhash %s\napp_hash %s\nchain_id %s\n", bly_ledger_msg_height(h),
               bh, ah, bly_ledger_msg_chain_id(h));
    bly_ledger_msg_destroy(&h);
    return 0;
}

//  Print one block: header fields and one line per transaction.
static int
s_block(s_conn_t *c, uint64_t height)
{
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_BLOCK_REQUEST);
    bly_assert(req);
    bly_ledger_msg_set_height(req, height);
    bly_ledger_msg_t *r = s_ask(c, &req, BLY_LEDGER_MSG_BLOCK_REPLY);
    if (!r)
        return 1;
    size_t n;
    const uint8_t *data = bly_ledger_msg_data(r, &n);
    bly_ledger_msg_t *b = NULL;
    char err[160], hex[65];
    int rc = 1;
    if (bly_ledger_msg_decode(data, n, &b, err, sizeof(err)) == 0
        && bly_ledger_msg_id(b) == BLY_LEDGER_MSG_BLOCK) {
        s_hex(bly_ledger_msg_block_hash(r, &n), 32, hex);
        printf("height %" PRIu64 "\nhash %s\ntime_ms %" PRIu64 "\n", bly_ledger_msg_height(b), hex,
               bly_ledger_msg_time_ms(b));
        s_hex(bly_ledger_msg_app_hash(b, &n), 32, hex);
        printf("app_hash %s (after the previous block)\n", hex);
        char addr[BLY_LEDGER_ADDRESS_LEN + 1];
        bly_ledger_address_format(bly_ledger_msg_proposer(b, &n), addr);
        printf("proposer %s\ntransactions %zu\n", addr, bly_ledger_msg_txs_count(b));
        for (size_t i = 0; i < bly_ledger_msg_txs_count(b); i++) {
            const bly_ledger_tx_blob_t *t = bly_ledger_msg_txs_at(b, i);
            bly_ledger_msg_t *tx = NULL;
            uint8_t th[32];
            bly_ledger_tx_hash(t->data, t->data_size, th);
            s_hex(th, 32, hex);
            bool ok = bly_ledger_msg_decode(t->data, t->data_size, &tx, NULL, 0) == 0;
            printf("  %s %s", hex, ok ? bly_ledger_msg_command(tx) : "?");
            if (ok && bly_ledger_msg_id(tx) == BLY_LEDGER_MSG_TRANSFER) {
                bly_ledger_address_format(bly_ledger_msg_to(tx, &n), addr);
                printf(" amount %" PRIu64 " fee %" PRIu64 " to %s", bly_ledger_msg_amount(tx),
                       bly_ledger_msg_fee(tx), addr);
            }
            printf("\n");
            bly_ledger_msg_destroy(&tx);
        }
        rc = 0;
    } else {
        fprintf(stderr, "the ledger sent a block that does not decode\n");
    }
    bly_ledger_msg_destroy(&b);
    bly_ledger_msg_destroy(&r);
    return rc;
}

int
bly_cli_chain(int argc, char **argv)
{
    static const char *const known[] = {"--node=", "--server-key=", "--timeout-ms=", "--json",
                                        NULL};
    const char *what = s_positional(argc, argv, known, 0);
    const char *h_text = s_positional(argc, argv, known, 1);
    uint64_t height = 0;
    bool head = what && strcmp(what, "head") == 0;
    bool block = what && strcmp(what, "block") == 0 && s_parse_u64(h_text, &height) == 0;
    if (bly_cli_check_options(argc, argv, known) || (!head && !block)) {
        fprintf(stderr, "usage: blyan chain head --node E --server-key HEX [--json]\n"
                        "       blyan chain block --node E --server-key HEX HEIGHT\n");
        return 2;
    }
    s_conn_t c;
    int rc = s_connect(argc, argv, &c);
    if (rc)
        return rc;
    rc = head ? s_head(&c, bly_cli_flag(argc, argv, "--json")) : s_block(&c, height);
    zsock_destroy(&c.dealer);
    return rc;
}

int
bly_cli_pol(int argc, char **argv)
{
    static const char *const known[] = {"--node=", "--server-key=", "--timeout-ms=", NULL};
    const char *what = s_positional(argc, argv, known, 0);
    if (bly_cli_check_options(argc, argv, known) || !what || strcmp(what, "show") != 0) {
        fprintf(stderr, "usage: blyan pol show --node E --server-key HEX\n");
        return 2;
    }
    s_conn_t c;
    int rc = s_connect(argc, argv, &c);
    if (rc)
        return rc;
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_POL_REQUEST);
    bly_ledger_msg_t *r = s_ask(&c, &req, BLY_LEDGER_MSG_POL);
    static const char *const kinds[] = {"genesis", "meta", "layer", "delta"};
    for (size_t i = 0; r && i < bly_ledger_msg_nodes_count(r); i++) {
        const bly_ledger_pol_node_t *p = bly_ledger_msg_nodes_at(r, i);
        char id[65], parent[65];
        s_hex(p->node, 32, id);
        s_hex(p->parent, 32, parent);
        printf("%s %-7s parent %.16s layer %" PRIu32 " version %" PRIu64 " %s height %" PRIu64 "\n",
               id, p->kind < 4 ? kinds[p->kind] : "?", parent, p->layer, p->version,
               p->accepted ? "final" : "pending", p->height);
    }
    rc = r ? 0 : 1;
    bly_ledger_msg_destroy(&r);
    zsock_destroy(&c.dealer);
    return rc;
}

//  blyan address --key F | HEX: the checksummed ledger address of a key file or node id.
int
bly_cli_address(int argc, char **argv)
{
    static const char *const known[] = {"--key=", NULL};
    const char *key_file = bly_cli_opt(argc, argv, "--key");
    const char *hex = s_positional(argc, argv, known, 0);
    uint8_t key[32];
    char err[512], addr[BLY_LEDGER_ADDRESS_LEN + 1];
    if (bly_cli_check_options(argc, argv, known) || (!key_file == !hex)) {
        fprintf(stderr, "usage: blyan address --key FILE | NODE_ID_HEX\n");
        return 2;
    }
    if (key_file) {
        bly_identity_t *me = bly_identity_load(key_file, err, sizeof(err));
        if (!me) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
        memcpy(key, bly_identity_public_key(me), 32);
        bly_identity_destroy(&me);
    } else if (bly_identity_id_from_hex(hex, key)) {
        fprintf(stderr, "not a node id (64 hex characters)\n");
        return 2;
    }
    if (!bly_ledger_key_valid(key)) {
        fprintf(stderr, "not a valid Ed25519 public key\n");
        return 2;
    }
    bly_ledger_address_format(key, addr);
    printf("%s\n", addr);
    return 0;
}
