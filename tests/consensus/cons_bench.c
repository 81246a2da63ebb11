/*  =========================================================================
    cons_bench - finality and throughput of real consensus replicas (a
    benchmark, not a test; docs/BENCHMARKS.md)

    cons_bench prepare DIR CLIENTS
        Append CLIENTS funded accounts (Ed25519 seed of client i is
        SHA-256("cons-bench-<i>"): INSECURE, benchmarks only) to
        DIR/genesis.conf of a `blyan testnet init --validators` folder,
        before its first start.
    cons_bench calibrate
        Microseconds per Ed25519 verification on this machine now (these
        VMs change speed over minutes: a run's figures are read against it).
    cons_bench run DIR CLIENTS RATE SECONDS [SKIP]
        Submit transfers at RATE per second for SECONDS to the replicas
        validator1..4 of DIR (except validatorSKIP, one that is down); each
        client talks to one replica (client i to the (i mod live)-th), like a
        wallet to its node. Each client has up to INFLIGHT (env, default 1,
        at most S_INFLIGHT_MAX) transfers in flight with consecutive nonces
        (the mempool holds a sender's later nonces until the earlier ones
        commit). Transfers are signed BEFORE the timed part (the clients'
        signing is not the chain's work; on this 2-core VM it would take CPU
        from the replicas). Finality of a transfer = from its submission to
        the moment a watcher sees it in a committed block (block_request on
        the first live replica, asked again 2 ms after a "not yet": finality
        reads up to 2 ms late, and the watcher costs the replica ~500
        requests/s instead of ~1,000). Prints p50/p99/max
        finality and committed transfers/s.
    ========================================================================= */

#include "bly_identity.h"
#include "bly_ledger.h"
#include "bly_manifest.h"
#include "bly_node.h"
#include "bly_sock.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_REPLICAS 4
#define S_CLIENTS_MAX 20000
#define S_INFLIGHT_MAX 32       //  Below the mempool's per-sender window.
#define S_TX_BYTES_MAX 256      //  One signed transfer, encoded.

typedef struct {
    uint8_t secret[64], key[32];
    uint64_t nonce;         //  Highest committed nonce.
    uint64_t sent;          //  Highest submitted nonce.
    uint64_t start_nonce;   //  Committed nonce when the run started.
    int64_t sent_us[S_INFLIGHT_MAX];   //  Submission time of nonce n at n % S_INFLIGHT_MAX.
    uint8_t *signed_txs;    //  Pre-signed transfers for nonces nonce+1 .. nonce+presigned.
    uint16_t *signed_sizes;
    uint32_t presigned;
} s_client_t;

static void
s_client_key(int i, s_client_t *c)
{
    char text[64];
    uint8_t seed[32];
    snprintf(text, sizeof(text), "cons-bench-%d", i);
    crypto_hash_sha256(seed, (const uint8_t *) text, strlen(text));
    crypto_sign_seed_keypair(c->key, c->secret, seed);
}

static int
s_prepare(const char *dir, int clients)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/genesis.conf", dir);
    FILE *f = fopen(path, "a");
    if (!f)
        return 1;
    for (int i = 0; i < clients; i++) {
        s_client_t c;
        char addr[BLY_LEDGER_ADDRESS_LEN + 1];
        s_client_key(i, &c);
        bly_ledger_address_format(c.key, addr);
        fprintf(f, "account %s 1000000000 0\n", addr);
    }
    return fclose(f) == 0 ? 0 : 1;
}

//  A DEALER to validator k's ledger endpoint (from its manifest and key).
static zsock_t *
s_connect(const char *dir, int k)
{
    char path[4096], err[2048];
    snprintf(path, sizeof(path), "%s/validator%d/manifest.zpl", dir, k);
    bly_manifest_t *m = bly_manifest_load(path, bly_node_schema(), err, sizeof(err));
    snprintf(path, sizeof(path), "%s/validator%d/node.key", dir, k);
    bly_identity_t *server = bly_identity_load(path, err, sizeof(err));
    bly_identity_t *me = bly_identity_new_random();
    zsock_t *s = NULL;
    if (m && server && me && bly_manifest_actor_count(m) == 1)
        s = bly_sock_client(ZMQ_DEALER, me, bly_identity_curve_public_z85(server),
                            bly_manifest_get(m, 0, "endpoint"), err, sizeof(err));
    if (!s)
        fprintf(stderr, "cons_bench: validator%d: %s\n", k, err);
    bly_manifest_destroy(&m);
    bly_identity_destroy(&server);
    bly_identity_destroy(&me);
    return s;
}

static int
s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

typedef struct {
    zsock_t *socks[S_REPLICAS];
    int live[S_REPLICAS], live_count;
    s_client_t *clients;
    int count;
    uint64_t inflight;      //  Per client, 1..S_INFLIGHT_MAX.
    uint8_t sink[32];
    char chain_id[BLY_CONS_CHAIN_ID_MAX + 1];
    int64_t *lat;
    uint64_t submitted, acked, rejected, committed, next_height;
    bool asking;
    int64_t retry_at;       //  Next block request after a NOT_FOUND.
} s_bench_t;

//  Sign the transfers client i may send in this run (nonces after its committed one).
static int
s_presign(s_bench_t *b, int i, uint32_t count)
{
    s_client_t *c = &b->clients[i];
    c->signed_txs = malloc((size_t) count * S_TX_BYTES_MAX);
    c->signed_sizes = calloc(count, sizeof(*c->signed_sizes));
    if (!c->signed_txs || !c->signed_sizes)
        return -1;
    for (uint32_t k = 0; k < count; k++) {
        uint8_t *tx = NULL;
        size_t size;
        if (bly_ledger_make_transfer(c->secret, b->chain_id, c->nonce + 1 + k, 1, b->sink,
                                     (uint64_t) i + 1, &tx, &size) != 0 || size > S_TX_BYTES_MAX) {
            free(tx);
            return -1;
        }
        memcpy(c->signed_txs + (size_t) k * S_TX_BYTES_MAX, tx, size);
        c->signed_sizes[k] = (uint16_t) size;
        free(tx);
    }
    c->presigned = count;
    c->sent = c->start_nonce = c->nonce;
    return 0;
}

//  Client i's next transfer, if it has one signed and room in flight.
static bool
s_submit(s_bench_t *b, int i)
{
    s_client_t *c = &b->clients[i];
    uint64_t k = c->sent - c->start_nonce;
    if (c->sent - c->nonce >= b->inflight || k >= c->presigned)
        return false;
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_SUBMIT);
    bly_assert(req && bly_ledger_msg_set_tx(req, c->signed_txs + k * S_TX_BYTES_MAX,
                                            c->signed_sizes[k]) == 0);
    c->sent++;
    c->sent_us[c->sent % S_INFLIGHT_MAX] = zclock_usecs();
    (void) !bly_ledger_msg_send(req, b->socks[b->live[i % b->live_count]]);
    bly_ledger_msg_destroy(&req);
    b->submitted++;
    return true;
}

static void
s_ask_block(s_bench_t *b)
{
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_BLOCK_REQUEST);
    bly_assert(req);
    bly_ledger_msg_set_height(req, b->next_height);
    (void) !bly_ledger_msg_send(req, b->socks[b->live[0]]);
    bly_ledger_msg_destroy(&req);
    b->asking = true;
}

//  A committed block: every transfer of ours in it is final now.
static void
s_on_block(s_bench_t *b, const bly_ledger_msg_t *r, bool measure)
{
    size_t n;
    const uint8_t *data = bly_ledger_msg_data(r, &n);
    bly_ledger_msg_t *blk = NULL;
    int64_t now = zclock_usecs();
    if (bly_ledger_msg_decode(data, n, &blk, NULL, 0) != 0)
        return;
    for (size_t t = 0; t < bly_ledger_msg_txs_count(blk); t++) {
        const bly_ledger_tx_blob_t *blob = bly_ledger_msg_txs_at(blk, t);
        bly_ledger_msg_t *tx = NULL;
        if (bly_ledger_msg_decode(blob->data, blob->data_size, &tx, NULL, 0) == 0) {
            uint64_t i = bly_ledger_msg_amount(tx) - 1, nonce = bly_ledger_msg_nonce(tx);
            s_client_t *c = i < (uint64_t) b->count ? &b->clients[i] : NULL;
            if (c && nonce > c->nonce && nonce <= c->sent) {
                if (measure)
                    b->lat[b->committed++] = now - c->sent_us[nonce % S_INFLIGHT_MAX];
                c->nonce = nonce;
            }
        }
        bly_ledger_msg_destroy(&tx);
    }
    bly_ledger_msg_destroy(&blk);
    b->next_height++;
}

static void
s_on_reply(s_bench_t *b, zsock_t *s, bool measure)
{
    bly_ledger_msg_t *r = bly_ledger_msg_recv(s, NULL, 0);
    if (!r)
        return;
    int id = bly_ledger_msg_id(r);
    if (id == BLY_LEDGER_MSG_SUBMIT_OK) {
        b->acked++;
    } else if (id == BLY_LEDGER_MSG_BLOCK_REPLY) {
        s_on_block(b, r, measure);
        b->asking = false;
    } else if (id == BLY_LEDGER_MSG_ERROR && bly_ledger_msg_code(r) == BLY_LEDGER_ERROR_NOT_FOUND) {
        b->asking = false;   //  No such block yet: ask again in 2 ms.
        b->retry_at = zclock_usecs() + 2000;
    } else if (id == BLY_LEDGER_MSG_ERROR) {
        if (b->rejected++ < 3)   //  The first reasons, for the reader.
            fprintf(stderr, "cons_bench: refused: %s\n", bly_ledger_msg_reason(r));
        //  Its client stays "in flight" until the end: no retry.
    }
    bly_ledger_msg_destroy(&r);
}

static void
s_loop(s_bench_t *b, double rate, double seconds)
{
    zpoller_t *poller = zpoller_new(NULL);
    for (int k = 0; k < b->live_count; k++)
        zpoller_add(poller, b->socks[b->live[k]]);
    int64_t start = zclock_usecs(), end = start + (int64_t) (seconds * 1e6);
    int64_t drain = end + 5000000;
    int cursor = 0;
    for (int64_t now = start; now < drain; now = zclock_usecs()) {
        uint64_t due = now < end ? (uint64_t) ((double) (now - start) * rate / 1e6) : 0;
        for (int tries = 0; b->submitted < due && tries < b->count; tries++) {
            cursor = (cursor + 1) % b->count;
            (void) s_submit(b, cursor);
        }
        if (!b->asking && zclock_usecs() >= b->retry_at)
            s_ask_block(b);
        zsock_t *which = zpoller_wait(poller, 1);
        //  Drain the replies: a replica drops them once BLY_SOCKET_HWM wait for us.
        for (int k = 0; which && k < 4096; k++) {
            s_on_reply(b, which, true);
            which = (zsock_events(which) & ZMQ_POLLIN) ? which : zpoller_wait(poller, 0);
        }
        if (now >= end && b->committed >= b->acked)
            break;
    }
    zpoller_destroy(&poller);
}

static int
s_run(const char *dir, int clients, double rate, double seconds, int skip)
{
    const char *inflight = getenv("INFLIGHT");
    s_bench_t b = {.count = clients, .inflight = inflight ? strtoull(inflight, NULL, 10) : 1};
    if (b.inflight < 1 || b.inflight > S_INFLIGHT_MAX) {
        fprintf(stderr, "cons_bench: INFLIGHT must be 1..%d\n", S_INFLIGHT_MAX);
        return 2;
    }
    b.clients = calloc((size_t) clients, sizeof(*b.clients));
    b.lat = calloc((size_t) (rate * seconds) + (size_t) clients * S_INFLIGHT_MAX + 16,
                   sizeof(int64_t));
    snprintf(b.chain_id, sizeof(b.chain_id), "blyan-testnet-1");
    s_client_t probe;
    s_client_key(clients, &probe);   //  The sink: a fresh valid key.
    memcpy(b.sink, probe.key, 32);
    for (int k = 1; k <= S_REPLICAS; k++) {
        if (k == skip)
            continue;
        b.socks[k - 1] = s_connect(dir, k);
        if (!b.socks[k - 1])
            return 1;
        b.live[b.live_count++] = k - 1;
    }
    for (int i = 0; i < clients; i++)
        s_client_key(i, &b.clients[i]);
    //  Start from the current head: blocks before it hold none of this run's transfers.
    bly_ledger_msg_t *req = bly_ledger_msg_new(BLY_LEDGER_MSG_HEAD_REQUEST);
    zsock_set_rcvtimeo(b.socks[b.live[0]], 3000);
    (void) !bly_ledger_msg_send(req, b.socks[b.live[0]]);
    bly_ledger_msg_destroy(&req);
    bly_ledger_msg_t *head = bly_ledger_msg_recv(b.socks[b.live[0]], NULL, 0);
    if (!head)
        return 1;
    b.next_height = bly_ledger_msg_height(head) + 1;
    bly_ledger_msg_destroy(&head);
    for (int i = 0; i < clients; i++) {
        req = bly_ledger_msg_new(BLY_LEDGER_MSG_ACCOUNT_REQUEST);
        bly_assert(req && bly_ledger_msg_set_key(req, b.clients[i].key, 32) == 0);
        (void) !bly_ledger_msg_send(req, b.socks[b.live[0]]);
        bly_ledger_msg_destroy(&req);
        bly_ledger_msg_t *a = bly_ledger_msg_recv(b.socks[b.live[0]], NULL, 0);
        b.clients[i].nonce = a ? bly_ledger_msg_nonce(a) : 0;
        bly_ledger_msg_destroy(&a);
    }
    //  Enough signed transfers for a fair share of the run and then some.
    uint32_t per_client = (uint32_t) (rate * seconds / clients * 1.5) + (uint32_t) b.inflight + 4;
    for (int i = 0; i < clients; i++)
        if (s_presign(&b, i, per_client) != 0) {
            fprintf(stderr, "cons_bench: cannot sign the transfers\n");
            return 1;
        }
    int64_t t0 = zclock_usecs();
    s_loop(&b, rate, seconds);
    double elapsed = (double) (zclock_usecs() - t0) / 1e6;
    qsort(b.lat, b.committed, sizeof(int64_t), s_cmp);
    int64_t p50 = b.committed ? b.lat[b.committed / 2] : 0;
    int64_t p99 = b.committed ? b.lat[b.committed * 99 / 100] : 0;
    int64_t max = b.committed ? b.lat[b.committed - 1] : 0;
    printf("replicas %d (skip %d) inflight %d rate %.0f/s for %.0f s: submitted %" PRIu64
           " acked %" PRIu64 " rejected %" PRIu64 " committed %" PRIu64
           " in %.2f s = %.0f tx/s; finality p50 %.1f ms p99 %.1f ms max %.1f ms\n",
           b.live_count, skip, (int) b.inflight, rate, seconds, b.submitted, b.acked, b.rejected,
           b.committed, elapsed, (double) b.committed / elapsed, (double) p50 / 1e3, (double) p99 / 1e3,
           (double) max / 1e3);
    for (int k = 0; k < S_REPLICAS; k++)
        zsock_destroy(&b.socks[k]);
    for (int i = 0; i < clients; i++) {
        free(b.clients[i].signed_txs);
        free(b.clients[i].signed_sizes);
    }
    free(b.clients);
    free(b.lat);
    return b.committed == b.acked ? 0 : 1;
}

//  How fast this machine is right now: microseconds per Ed25519 verification
//  (libsodium, the replicas' main cost), median of 5 rounds of 400.
static int
s_calibrate(void)
{
    uint8_t pk[32], sk[64], sig[64], msg[200] = {1};
    crypto_sign_keypair(pk, sk);
    crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk);
    int64_t rounds[5];
    for (int r = 0; r < 5; r++) {
        int64_t t0 = zclock_usecs();
        for (int i = 0; i < 400; i++)
            if (crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) != 0)
                return 1;
        rounds[r] = zclock_usecs() - t0;
    }
    qsort(rounds, 5, sizeof(int64_t), s_cmp);
    printf("%.1f\n", (double) rounds[2] / 400.0);
    return 0;
}

int
main(int argc, char **argv)
{
    bly_assert(sodium_init() >= 0);
    zsys_init();
    if (argc == 2 && strcmp(argv[1], "calibrate") == 0)
        return s_calibrate();
    if (argc == 4 && strcmp(argv[1], "prepare") == 0) {
        int n = atoi(argv[3]);
        return n > 0 && n <= S_CLIENTS_MAX ? s_prepare(argv[2], n) : 2;
    }
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "run") == 0) {
        int n = atoi(argv[3]);
        double rate = atof(argv[4]), seconds = atof(argv[5]);
        if (n > 0 && n <= S_CLIENTS_MAX && rate > 0 && seconds > 0)
            return s_run(argv[2], n, rate, seconds, argc == 7 ? atoi(argv[6]) : 0);
    }
    fprintf(stderr, "usage: cons_bench prepare DIR CLIENTS | run DIR CLIENTS RATE SECONDS [SKIP] "
                    "| calibrate\n");
    return 2;
}
