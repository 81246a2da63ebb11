/*  =========================================================================
    cons_equivocate - make a testnet validator equivocate (tests only)

    cons_equivocate DIR K HEIGHT
        With validatorK's own node key (DIR/validatorK/node.key of a
        `blyan testnet init --validators 4` folder), sign two conflicting
        prevotes for (HEIGHT, round 0) and send them as one EVIDENCE message
        over the replica link to every other validator of DIR. The replicas
        must commit the evidence and their ledgers slash validatorK once
        (tools/test.d/consensus.sh). Exit 0 when the message was handed to
        every link.
    ========================================================================= */

#include "bly_identity.h"
#include "bly_manifest.h"
#include "bly_node.h"
#include "bly_sock.h"
#include "consensus/bly_cons_msg.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_N 4

static bly_identity_t *
s_key(const char *dir, int k)
{
    char path[4096], err[512];
    snprintf(path, sizeof(path), "%s/validator%d/node.key", dir, k);
    bly_identity_t *id = bly_identity_load(path, err, sizeof(err));
    if (!id)
        fprintf(stderr, "cons_equivocate: %s\n", err);
    return id;
}

//  The replica-link endpoint of validator k (its manifest's `listen`).
static int
s_listen(const char *dir, int k, char *out, size_t size)
{
    char path[4096], err[2048];
    snprintf(path, sizeof(path), "%s/validator%d/manifest.zpl", dir, k);
    bly_manifest_t *m = bly_manifest_load(path, bly_node_schema(), err, sizeof(err));
    const char *listen = m && bly_manifest_actor_count(m) == 1 ? bly_manifest_get(m, 0, "listen")
                                                                : NULL;
    int rc = listen && strlen(listen) < size ? 0 : -1;
    if (rc == 0)
        snprintf(out, size, "%s", listen);
    else
        fprintf(stderr, "cons_equivocate: validator%d: no listen endpoint\n", k);
    bly_manifest_destroy(&m);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc != 4 || atoi(argv[2]) < 1 || atoi(argv[2]) > S_N || atoll(argv[3]) < 1) {
        fprintf(stderr, "usage: cons_equivocate DIR K(1..4) HEIGHT\n");
        return 2;
    }
    bly_assert(sodium_init() >= 0);
    zsys_init();
    const char *dir = argv[1];
    int k = atoi(argv[2]);
    bly_identity_t *ids[S_N + 1] = {NULL};
    for (int i = 1; i <= S_N; i++)
        if (!(ids[i] = s_key(dir, i)))
            return 1;
    //  Validator index = position of the key in key order (the genesis validator set).
    uint16_t index = 0;
    for (int i = 1; i <= S_N; i++)
        if (memcmp(bly_identity_public_key(ids[i]), bly_identity_public_key(ids[k]), 32) < 0)
            index++;
    bly_cons_msg_t ev = {.type = BLY_CONS_EVIDENCE};
    for (int v = 0; v < 2; v++) {
        ev.ev[v] = (bly_cons_vote_t){.type = BLY_CONS_PREVOTE, .height = (uint64_t) atoll(argv[3]),
                                     .pol_round = -1, .validator = index, .has_id = true};
        memset(ev.ev[v].id, 0xa0 + v, BLY_CONS_ID_SIZE);
        bly_cons_vote_sign(&ev.ev[v], "blyan-testnet-1", bly_identity_secret_key(ids[k]));
    }
    uint8_t wire[2 * BLY_CONS_VOTE_SIZE + 16];
    size_t size = bly_cons_msg_encode(&ev, wire, sizeof(wire));
    bly_assert(size > 0);
    int failed = 0;
    for (int i = 1; i <= S_N; i++) {
        char ep[BLY_ENDPOINT_MAX], err[512];
        if (i == k || s_listen(dir, i, ep, sizeof(ep)) != 0) {
            failed += i != k;
            continue;
        }
        zsock_t *s = bly_sock_client(ZMQ_DEALER, ids[k], bly_identity_curve_public_z85(ids[i]),
                                     ep, err, sizeof(err));
        if (!s) {
            fprintf(stderr, "cons_equivocate: validator%d: %s\n", i, err);
            failed++;
            continue;
        }
        //  The replica frame: ["C"][message] (bly_consensus_actor).
        void *h = zsock_resolve(s);
        if (zmq_send(h, "C", 1, ZMQ_SNDMORE) != 1 || zmq_send(h, wire, size, 0) != (int) size) {
            fprintf(stderr, "cons_equivocate: validator%d: send failed\n", i);
            failed++;
        }
        zsock_set_linger(s, 2000);   //  Deliver before the socket goes.
        zsock_destroy(&s);
    }
    for (int i = 1; i <= S_N; i++)
        bly_identity_destroy(&ids[i]);
    return failed ? 1 : 0;
}
