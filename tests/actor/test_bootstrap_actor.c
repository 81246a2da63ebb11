/*  test_bootstrap_actor - the bootstrap over real CURVE tcp on 127.0.0.1: register,
    peers, identity mismatch, hostile frames (garbage, truncated, wrong frame count,
    oversize) answered or dropped while the actor keeps serving, and a member actor
    that joins, heartbeats and leaves. */

#include "bly_actor.h"
#include "bly_bootstrap_actor.h"
#include "bly_bootstrap_msg.h"
#include "bly_identity.h"
#include "bly_limits.h"
#include "bly_manifest.h"
#include "bly_member_actor.h"
#include "bly_node.h"
#include "bly_node_status.h"
#include "bly_sock.h"
#include "bly_zap.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <string.h>

typedef struct {
    zactor_t *zap;
    bly_identity_t *identity;      //  The bootstrap node.
    bly_manifest_t *manifest;
    bly_actor_args_t args;
    zactor_t *actor;
    char endpoint[64];
    char server_z85[BLY_IDENTITY_Z85_SIZE];
} s_fixture_t;

//  A free loopback port: the kernel picks an ephemeral one, we release it.
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

static bly_manifest_t *
s_manifest(const char *text)
{
    char err[2048];
    bly_manifest_t *m = bly_manifest_parse(text, strlen(text), "test.zpl", "/tmp",
                                           bly_node_schema(), err, sizeof(err));
    ck_assert_msg(m, "%s", err);
    return m;
}

static void
s_start(s_fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    f->zap = bly_zap_new();
    ck_assert_ptr_nonnull(f->zap);
    ck_assert_int_eq(bly_zap_open(f->zap, "open"), 0);
    f->identity = bly_identity_new_random();
    snprintf(f->server_z85, sizeof(f->server_z85), "%s",
             bly_identity_curve_public_z85(f->identity));
    snprintf(f->endpoint, sizeof(f->endpoint), "tcp://127.0.0.1:%d", s_free_port());
    char text[1024];
    snprintf(text, sizeof(text),
             "node\n    name = boot\n    key_file = k\n"
             "actor\n    role = bootstrap\n    endpoint = %s\n"
             "    heartbeat_ms = 100\n    expiry_ms = 1000\n",
             f->endpoint);
    f->manifest = s_manifest(text);
    f->args = (bly_actor_args_t){"bootstrap", f->manifest, 0, f->identity, NULL};
    char err[512];
    f->actor = bly_actor_start(bly_bootstrap_actor, &f->args, err, sizeof(err));
    ck_assert_msg(f->actor, "%s", err);
}

static void
s_stop(s_fixture_t *f)
{
    zactor_destroy(&f->actor);
    bly_manifest_destroy(&f->manifest);
    bly_identity_destroy(&f->identity);
    bly_zap_destroy(&f->zap);
}

//  Bootstrap counters: peers, handled, refused, dropped.
static void
s_stats(s_fixture_t *f, uint64_t out[4])
{
    zstr_send(f->actor, "STATS");
    ck_assert_int_eq(zsock_recv(f->actor, "8888", &out[0], &out[1], &out[2], &out[3]), 0);
}

static zsock_t *
s_client(s_fixture_t *f, const bly_identity_t *id)
{
    char err[256];
    zsock_t *sock = bly_sock_client(ZMQ_DEALER, id, f->server_z85, f->endpoint, err, sizeof(err));
    ck_assert_msg(sock, "%s", err);
    zsock_set_rcvtimeo(sock, 3000);
    return sock;
}

static bly_bootstrap_msg_t *
s_exchange(zsock_t *sock, const bly_bootstrap_msg_t *request)
{
    ck_assert_int_eq(bly_bootstrap_msg_send(request, sock), 0);
    char err[256];
    bly_bootstrap_msg_t *reply = bly_bootstrap_msg_recv(sock, err, sizeof(err));
    ck_assert_msg(reply, "no reply: %s", err);
    return reply;
}

static size_t
s_peer_count(zsock_t *sock)
{
    bly_bootstrap_msg_t *request = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_PEERS_REQUEST);
    bly_bootstrap_msg_t *reply = s_exchange(sock, request);
    ck_assert_int_eq(bly_bootstrap_msg_id(reply), BLY_BOOTSTRAP_MSG_PEERS);
    size_t count = bly_bootstrap_msg_peers_count(reply);
    bly_bootstrap_msg_destroy(&reply);
    bly_bootstrap_msg_destroy(&request);
    return count;
}

static bly_bootstrap_msg_t *
s_register_msg(const bly_identity_t *signer)
{
    bly_bootstrap_msg_t *msg = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_REGISTER);
    ck_assert_int_eq(bly_bootstrap_msg_set_node_id(msg, bly_identity_public_key(signer), 32), 0);
    ck_assert_int_eq(bly_bootstrap_msg_set_name(msg, "node1"), 0);
    bly_bootstrap_msg_set_timestamp_ms(msg, (uint64_t) zclock_time());
    bly_bootstrap_msg_set_seq(msg, 1);
    ck_assert_int_eq(bly_bootstrap_msg_sign(msg, bly_identity_secret_key(signer)), 0);
    return msg;
}

START_TEST(test_register_and_peers)
{
    s_fixture_t f;
    s_start(&f);
    bly_identity_t *node = bly_identity_new_random();
    zsock_t *sock = s_client(&f, node);
    ck_assert_uint_eq(s_peer_count(sock), 0);
    //  Changed after signing: refused, nothing registered.
    bly_bootstrap_msg_t *msg = s_register_msg(node);
    ck_assert_int_eq(bly_bootstrap_msg_set_name(msg, "forged"), 0);
    bly_bootstrap_msg_t *reply = s_exchange(sock, msg);
    ck_assert_int_eq(bly_bootstrap_msg_id(reply), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(bly_bootstrap_msg_code(reply), BLY_BOOTSTRAP_ERROR_BAD_SIGNATURE);
    bly_bootstrap_msg_destroy(&reply);
    bly_bootstrap_msg_destroy(&msg);
    ck_assert_uint_eq(s_peer_count(sock), 0);
    msg = s_register_msg(node);
    reply = s_exchange(sock, msg);
    ck_assert_int_eq(bly_bootstrap_msg_id(reply), BLY_BOOTSTRAP_MSG_REGISTER_OK);
    ck_assert_uint_eq(bly_bootstrap_msg_heartbeat_ms(reply), 100);
    bly_bootstrap_msg_destroy(&reply);
    //  The same message again is a replay.
    reply = s_exchange(sock, msg);
    ck_assert_int_eq(bly_bootstrap_msg_id(reply), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(bly_bootstrap_msg_code(reply), BLY_BOOTSTRAP_ERROR_REPLAY);
    bly_bootstrap_msg_destroy(&reply);
    bly_bootstrap_msg_destroy(&msg);
    ck_assert_uint_eq(s_peer_count(sock), 1);
    zsock_destroy(&sock);
    bly_identity_destroy(&node);
    s_stop(&f);
}
END_TEST

START_TEST(test_identity_mismatch)
{
    s_fixture_t f;
    s_start(&f);
    bly_identity_t *victim = bly_identity_new_random();
    bly_identity_t *mallory = bly_identity_new_random();
    zsock_t *sock = s_client(&f, mallory);
    //  Correctly signed by the victim, but sent over mallory's CURVE connection.
    bly_bootstrap_msg_t *msg = s_register_msg(victim);
    bly_bootstrap_msg_t *reply = s_exchange(sock, msg);
    ck_assert_int_eq(bly_bootstrap_msg_id(reply), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(bly_bootstrap_msg_code(reply), BLY_BOOTSTRAP_ERROR_NOT_ALLOWED);
    bly_bootstrap_msg_destroy(&reply);
    bly_bootstrap_msg_destroy(&msg);
    ck_assert_uint_eq(s_peer_count(sock), 0);
    zsock_destroy(&sock);
    bly_identity_destroy(&victim);
    bly_identity_destroy(&mallory);
    s_stop(&f);
}
END_TEST

//  Send raw frames; expect an error reply with code BAD_MESSAGE.
static void
s_expect_bad_message(zsock_t *sock, zmsg_t **msg_p)
{
    ck_assert_int_eq(zmsg_send(msg_p, sock), 0);
    char err[256];
    bly_bootstrap_msg_t *reply = bly_bootstrap_msg_recv(sock, err, sizeof(err));
    ck_assert_msg(reply, "no reply: %s", err);
    ck_assert_int_eq(bly_bootstrap_msg_id(reply), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(bly_bootstrap_msg_code(reply), BLY_BOOTSTRAP_ERROR_BAD_MESSAGE);
    bly_bootstrap_msg_destroy(&reply);
}

START_TEST(test_hostile_frames)
{
    s_fixture_t f;
    s_start(&f);
    bly_identity_t *node = bly_identity_new_random();
    zsock_t *sock = s_client(&f, node);
    //  Random bytes.
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, "\xc1\xff\x00garbage", 10);
    s_expect_bad_message(sock, &msg);
    //  An empty frame.
    msg = zmsg_new();
    zmsg_addmem(msg, "", 0);
    s_expect_bad_message(sock, &msg);
    //  A truncated register.
    bly_bootstrap_msg_t *reg = s_register_msg(node);
    uint8_t *buf = NULL;
    size_t size = 0;
    ck_assert_int_eq(bly_bootstrap_msg_encode(reg, &buf, &size), 0);
    msg = zmsg_new();
    zmsg_addmem(msg, buf, size - 7);
    s_expect_bad_message(sock, &msg);
    //  Trailing bytes after a valid message.
    msg = zmsg_new();
    uint8_t *longer = malloc(size + 1);
    memcpy(longer, buf, size);
    longer[size] = 0;
    zmsg_addmem(msg, longer, size + 1);
    s_expect_bad_message(sock, &msg);
    free(longer);
    //  An array header claiming 2^32-1 elements (must not allocate).
    msg = zmsg_new();
    zmsg_addmem(msg, "\xdd\xff\xff\xff\xff\x01\x05", 7);
    s_expect_bad_message(sock, &msg);
    //  Too many frames.
    msg = zmsg_new();
    for (int i = 0; i < BLY_FRAME_COUNT_MAX + 1; i++)
        zmsg_addmem(msg, buf, size);
    s_expect_bad_message(sock, &msg);
    free(buf);
    bly_bootstrap_msg_destroy(&reg);
    //  Still serving, and none of that registered anyone.
    ck_assert_uint_eq(s_peer_count(sock), 0);
    uint64_t stats[4];
    s_stats(&f, stats);
    ck_assert_uint_ge(stats[2], 6);
    zsock_destroy(&sock);
    bly_identity_destroy(&node);
    s_stop(&f);
}
END_TEST

START_TEST(test_oversize_frame)
{
    //  Encrypting and checking 64 MiB under valgrind's emulation takes minutes; the
    //  bound is the same code path either way, so valgrind runs skip this one.
    if (getenv("BLY_VALGRIND"))
        return;
    s_fixture_t f;
    s_start(&f);
    bly_identity_t *node = bly_identity_new_random();
    zsock_t *big = s_client(&f, node);
    //  One byte over ZMQ_MAXMSGSIZE: the server drops the connection, never the frame
    //  into memory, and never answers.
    size_t size = (size_t) BLY_FRAME_SIZE_MAX + 1;
    zframe_t *frame = zframe_new(NULL, size);
    ck_assert_ptr_nonnull(frame);
    memset(zframe_data(frame), 0x90, size);
    zsock_set_sndtimeo(big, 3000);
    ck_assert_int_eq(zframe_send(&frame, big, 0), 0);
    zsock_set_rcvtimeo(big, 500);
    zmsg_t *none = zmsg_recv(big);
    ck_assert_ptr_null(none);
    zsock_destroy(&big);
    //  Another client is served.
    zsock_t *sock = s_client(&f, node);
    ck_assert_uint_eq(s_peer_count(sock), 0);
    zsock_destroy(&sock);
    bly_identity_destroy(&node);
    s_stop(&f);
}
END_TEST

START_TEST(test_member_joins_and_leaves)
{
    s_fixture_t f;
    s_start(&f);
    char text[1024];
    snprintf(text, sizeof(text),
             "node\n    name = member1\n    key_file = k\n    bootstrap = %s\n"
             "    bootstrap_key = %s\n    endpoints = tcp://127.0.0.1:7101\n"
             "    stages = 1-14\n    model = m\n    device = cpu\n",
             f.endpoint, bly_identity_id_hex(f.identity));
    bly_manifest_t *m = s_manifest(text);
    bly_identity_t *node = bly_identity_new_random();
    bly_actor_args_t args = {"member", m, BLY_MANIFEST_NODE, node, NULL};
    char err[512];
    zactor_t *member = bly_actor_start(bly_member_actor, &args, err, sizeof(err));
    ck_assert_msg(member, "%s", err);
    //  Wait (bounded) for the registration and a few heartbeats.
    uint64_t stats[4] = {0};
    for (int i = 0; i < 250 && (stats[0] < 1 || stats[1] < 4); i++) {
        zclock_sleep(20);
        s_stats(&f, stats);
    }
    ck_assert_uint_eq(stats[0], 1);
    ck_assert_uint_ge(stats[1], 4);    //  register + heartbeats handled.
    ck_assert_uint_eq(stats[2], 0);
    zsock_t *sock = s_client(&f, node);
    bly_bootstrap_msg_t *request = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_PEERS_REQUEST);
    bly_bootstrap_msg_t *reply = s_exchange(sock, request);
    const bly_bootstrap_peer_t *peer = bly_bootstrap_msg_peers_at(reply, 0);
    ck_assert_str_eq(peer->name, "member1");
    ck_assert_str_eq(peer->endpoints[0], "tcp://127.0.0.1:7101");
    ck_assert_uint_eq(peer->stage_first, 1);
    ck_assert_uint_eq(peer->stage_last, 14);
    bly_bootstrap_msg_destroy(&reply);
    bly_bootstrap_msg_destroy(&request);
    //  Stopping the member sends leave: the registry empties before any expiry.
    zactor_destroy(&member);
    for (int i = 0; i < 40 && stats[0] > 0; i++) {
        zclock_sleep(10);
        s_stats(&f, stats);
    }
    ck_assert_uint_eq(stats[0], 0);
    zsock_destroy(&sock);
    bly_identity_destroy(&node);
    bly_manifest_destroy(&m);
    s_stop(&f);
}
END_TEST

//  The peer entry of the bootstrap's only peer, read into *out.
static void
s_only_peer(zsock_t *sock, bly_bootstrap_peer_t *out)
{
    bly_bootstrap_msg_t *request = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_PEERS_REQUEST);
    bly_bootstrap_msg_t *reply = s_exchange(sock, request);
    ck_assert_uint_eq(bly_bootstrap_msg_peers_count(reply), 1);
    *out = *bly_bootstrap_msg_peers_at(reply, 0);
    bly_bootstrap_msg_destroy(&reply);
    bly_bootstrap_msg_destroy(&request);
}

//  What a shard of the node publishes reaches the registry: its measured
//  speed (not the manifest's) in the register, its load in heartbeats, and
//  a speed that moved by more than a quarter through a new register.
START_TEST(test_member_announces_status)
{
    s_fixture_t f;
    s_start(&f);
    char text[1024];
    snprintf(text, sizeof(text),
             "node\n    name = member2\n    key_file = k\n    bootstrap = %s\n"
             "    bootstrap_key = %s\n    endpoints = tcp://127.0.0.1:7102\n"
             "    stages = 0-3\n    model = m\n    speed_milli = 777\n",
             f.endpoint, bly_identity_id_hex(f.identity));
    bly_manifest_t *m = s_manifest(text);
    bly_identity_t *node = bly_identity_new_random();
    const uint8_t *id = bly_identity_public_key(node);
    bly_node_status_set(id, 5000, 300);
    bly_actor_args_t args = {"member", m, BLY_MANIFEST_NODE, node, NULL};
    char err[512];
    zactor_t *member = bly_actor_start(bly_member_actor, &args, err, sizeof(err));
    ck_assert_msg(member, "%s", err);
    zsock_t *sock = NULL;
    bly_bootstrap_peer_t peer = {0};
    uint64_t stats[4] = {0};
    for (int i = 0; i < 250 && stats[0] < 1; i++) {
        zclock_sleep(20);
        s_stats(&f, stats);
    }
    sock = s_client(&f, node);
    for (int i = 0; i < 100 && peer.load_milli != 300; i++) {
        zclock_sleep(20);
        s_only_peer(sock, &peer);
    }
    ck_assert_uint_eq(peer.speed_milli, 5000);
    ck_assert_uint_eq(peer.load_milli, 300);
    //  Four times faster, lightly loaded: a new register, then heartbeats.
    bly_node_status_set(id, 20000, 10);
    for (int i = 0; i < 100 && (peer.speed_milli != 20000 || peer.load_milli != 10); i++) {
        zclock_sleep(20);
        s_only_peer(sock, &peer);
    }
    ck_assert_uint_eq(peer.speed_milli, 20000);
    ck_assert_uint_eq(peer.load_milli, 10);
    //  A move of 5 %: heartbeats only (the new load arrives, no register).
    uint64_t registered = 0, registrations = 0, refused = 0, after = 0;
    zstr_send(member, "STATS");
    ck_assert_int_eq(zsock_recv(member, "888", &registered, &registrations, &refused), 0);
    bly_node_status_set(id, 21000, 20);
    for (int i = 0; i < 100 && peer.load_milli != 20; i++) {
        zclock_sleep(20);
        s_only_peer(sock, &peer);
    }
    ck_assert_uint_eq(peer.load_milli, 20);
    ck_assert_uint_eq(peer.speed_milli, 20000);
    zstr_send(member, "STATS");
    ck_assert_int_eq(zsock_recv(member, "888", &registered, &after, &refused), 0);
    ck_assert_uint_eq(after, registrations);
    zactor_destroy(&member);
    bly_node_status_clear(id);
    uint32_t speed, load;
    ck_assert(!bly_node_status_get(id, &speed, &load));
    zsock_destroy(&sock);
    bly_identity_destroy(&node);
    bly_manifest_destroy(&m);
    s_stop(&f);
}
END_TEST

START_TEST(test_start_failure_reported)
{
    s_fixture_t f;
    s_start(&f);
    //  A second bootstrap on the same endpoint cannot bind: it reports and stops.
    char err[512] = "";
    bly_actor_args_t args = f.args;
    zactor_t *second = bly_actor_start(bly_bootstrap_actor, &args, err, sizeof(err));
    ck_assert_ptr_null(second);
    ck_assert_ptr_nonnull(strstr(err, "cannot bind"));
    s_stop(&f);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("bootstrap_actor");
    TCase *tc = tcase_create("bootstrap_actor");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_register_and_peers);
    tcase_add_test(tc, test_identity_mismatch);
    tcase_add_test(tc, test_hostile_frames);
    tcase_add_test(tc, test_oversize_frame);
    tcase_add_test(tc, test_member_joins_and_leaves);
    tcase_add_test(tc, test_member_announces_status);
    tcase_add_test(tc, test_start_failure_reported);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? 1 : 0;
}
