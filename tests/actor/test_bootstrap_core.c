/*  test_bootstrap_core - the registry state machine on virtual time: register,
    heartbeat, expiry, leave, peer queries, and every refusal (bad signature,
    replay by seq and by timestamp, full registry, identity mismatch, strangers). */

#include "bly_bootstrap_core.h"
#include "bly_identity.h"
#include "bly_limits.h"

#include <check.h>
#include <string.h>

#define T0 1764086400000ull    //  Virtual Unix time in ms.

static bly_bootstrap_core_t *
s_core(uint32_t max_peers)
{
    bly_bootstrap_config_t config;
    bly_bootstrap_config_defaults(&config);
    config.heartbeat_ms = 200;
    config.expiry_ms = 1000;
    config.max_peers = max_peers;
    config.timestamp_window_ms = 5000;
    bly_bootstrap_core_t *core = bly_bootstrap_core_new(&config);
    ck_assert_ptr_nonnull(core);
    return core;
}

//  A signed request from `id`, as the ZAP handler would attribute it.
static bly_bootstrap_msg_t *
s_signed(int msg_id, const bly_identity_t *id, uint64_t stamp, uint64_t seq)
{
    bly_bootstrap_msg_t *msg = bly_bootstrap_msg_new(msg_id);
    ck_assert_int_eq(bly_bootstrap_msg_set_node_id(msg, bly_identity_public_key(id), 32), 0);
    if (msg_id == BLY_BOOTSTRAP_MSG_REGISTER) {
        ck_assert_int_eq(bly_bootstrap_msg_set_name(msg, "node"), 0);
        ck_assert_int_eq(bly_bootstrap_msg_endpoints_append(msg, "tcp://127.0.0.1:7101"), 0);
        ck_assert_int_eq(bly_bootstrap_msg_roles_append(msg, "layer-shard"), 0);
        ck_assert_int_eq(bly_bootstrap_msg_set_device(msg, "cpu"), 0);
        bly_bootstrap_msg_set_stage_first(msg, 1);
        bly_bootstrap_msg_set_stage_last(msg, 14);
    }
    bly_bootstrap_msg_set_timestamp_ms(msg, stamp);
    bly_bootstrap_msg_set_seq(msg, seq);
    ck_assert_int_eq(bly_bootstrap_msg_sign(msg, bly_identity_secret_key(id)), 0);
    bly_bootstrap_msg_set_peer_key(msg, bly_identity_curve_public_z85(id));
    return msg;
}

//  Handle and return the reply id (0 for no reply); the error code in *code.
static int
s_handle(bly_bootstrap_core_t *core, bly_bootstrap_msg_t **msg_p, uint64_t now, uint16_t *code)
{
    bly_bootstrap_msg_t *reply = bly_bootstrap_core_handle(core, *msg_p, now, now);
    bly_bootstrap_msg_destroy(msg_p);
    int id = reply ? bly_bootstrap_msg_id(reply) : 0;
    if (code)
        *code = id == BLY_BOOTSTRAP_MSG_ERROR ? bly_bootstrap_msg_code(reply) : 0;
    bly_bootstrap_msg_destroy(&reply);
    return id;
}

static int
s_register(bly_bootstrap_core_t *core, const bly_identity_t *id, uint64_t now, uint64_t seq,
           uint16_t *code)
{
    bly_bootstrap_msg_t *msg = s_signed(BLY_BOOTSTRAP_MSG_REGISTER, id, now, seq);
    return s_handle(core, &msg, now, code);
}

//  Expiry counts on the monotonic clock: the wall clock stepping an hour ahead (or back)
//  neither expires a node that keeps heartbeating nor keeps one that fell silent; peers
//  replies still report Unix time.
START_TEST(test_wall_clock_step)
{
    const uint64_t M0 = 5000;                   //  Monotonic ms since some boot.
    const uint64_t HOUR = 3600000;
    bly_bootstrap_core_t *core = s_core(8);
    bly_identity_t *a = bly_identity_new_random();
    bly_identity_t *b = bly_identity_new_random();
    bly_bootstrap_msg_t *msg = s_signed(BLY_BOOTSTRAP_MSG_REGISTER, a, T0, 1);
    bly_bootstrap_msg_t *reply = bly_bootstrap_core_handle(core, msg, T0, M0);
    ck_assert_int_eq(bly_bootstrap_msg_id(reply), BLY_BOOTSTRAP_MSG_REGISTER_OK);
    bly_bootstrap_msg_destroy(&reply);
    bly_bootstrap_msg_destroy(&msg);
    msg = s_signed(BLY_BOOTSTRAP_MSG_REGISTER, b, T0, 1);
    reply = bly_bootstrap_core_handle(core, msg, T0, M0);
    bly_bootstrap_msg_destroy(&reply);
    bly_bootstrap_msg_destroy(&msg);
    //  The wall clock jumps an hour ahead; a heartbeats (stamped with the new wall time)
    //  500 ms later on the monotonic clock: nobody has expired.
    msg = s_signed(BLY_BOOTSTRAP_MSG_HEARTBEAT, a, T0 + HOUR, 2);
    reply = bly_bootstrap_core_handle(core, msg, T0 + HOUR, M0 + 500);
    ck_assert_int_eq(bly_bootstrap_msg_id(reply), BLY_BOOTSTRAP_MSG_HEARTBEAT_OK);
    bly_bootstrap_msg_destroy(&reply);
    bly_bootstrap_msg_destroy(&msg);
    ck_assert_uint_eq(bly_bootstrap_core_tick(core, M0 + 500), 0);
    ck_assert_uint_eq(bly_bootstrap_core_peer_count(core), 2);
    ck_assert_uint_eq(bly_bootstrap_core_peer(core, 0)->last_seen_ms, T0 + HOUR);
    ck_assert_uint_eq(bly_bootstrap_core_next_expiry_ms(core), M0 + 1001);
    //  b stays silent: it expires after expiry_ms of monotonic time, whatever the wall says.
    ck_assert_uint_eq(bly_bootstrap_core_tick(core, M0 + 1000), 0);
    ck_assert_uint_eq(bly_bootstrap_core_tick(core, M0 + 1001), 1);
    ck_assert_uint_eq(bly_bootstrap_core_peer_count(core), 1);
    //  The wall clock steps back two hours: a's heartbeat within the timestamp window of the
    //  new wall time still counts, on the monotonic clock.
    msg = s_signed(BLY_BOOTSTRAP_MSG_HEARTBEAT, a, T0 - HOUR, 3);
    reply = bly_bootstrap_core_handle(core, msg, T0 - HOUR, M0 + 1400);
    ck_assert_int_eq(bly_bootstrap_msg_id(reply), BLY_BOOTSTRAP_MSG_HEARTBEAT_OK);
    bly_bootstrap_msg_destroy(&reply);
    bly_bootstrap_msg_destroy(&msg);
    ck_assert_uint_eq(bly_bootstrap_core_tick(core, M0 + 2400), 0);
    ck_assert_uint_eq(bly_bootstrap_core_tick(core, M0 + 2401), 1);
    bly_identity_destroy(&a);
    bly_identity_destroy(&b);
    bly_bootstrap_core_destroy(&core);
}
END_TEST

START_TEST(test_register_heartbeat_expire)
{
    bly_bootstrap_core_t *core = s_core(8);
    bly_identity_t *a = bly_identity_new_random();
    bly_identity_t *b = bly_identity_new_random();
    bly_bootstrap_msg_t *msg = s_signed(BLY_BOOTSTRAP_MSG_REGISTER, a, T0, 1);
    bly_bootstrap_msg_t *reply = bly_bootstrap_core_handle(core, msg, T0, T0);
    ck_assert_int_eq(bly_bootstrap_msg_id(reply), BLY_BOOTSTRAP_MSG_REGISTER_OK);
    ck_assert_uint_eq(bly_bootstrap_msg_heartbeat_ms(reply), 200);
    ck_assert_uint_eq(bly_bootstrap_msg_expiry_ms(reply), 1000);
    bly_bootstrap_msg_destroy(&reply);
    bly_bootstrap_msg_destroy(&msg);
    ck_assert_int_eq(s_register(core, b, T0 + 100, 1, NULL), BLY_BOOTSTRAP_MSG_REGISTER_OK);
    ck_assert_uint_eq(bly_bootstrap_core_peer_count(core), 2);
    const bly_bootstrap_peer_t *peer = bly_bootstrap_core_peer(core, 0);
    ck_assert_mem_eq(peer->node_id, bly_identity_public_key(a), 32);
    ck_assert_str_eq(peer->endpoints[0], "tcp://127.0.0.1:7101");
    ck_assert_uint_eq(peer->stage_last, 14);

    //  a heartbeats, b falls silent: at T0 + 1100 only b has expired.
    for (uint64_t t = T0 + 200, seq = 2; t <= T0 + 1000; t += 200, seq++) {
        msg = s_signed(BLY_BOOTSTRAP_MSG_HEARTBEAT, a, t, seq);
        ck_assert_int_eq(s_handle(core, &msg, t, NULL), BLY_BOOTSTRAP_MSG_HEARTBEAT_OK);
        ck_assert_uint_eq(bly_bootstrap_core_tick(core, t), 0);
    }
    ck_assert_uint_eq(bly_bootstrap_core_tick(core, T0 + 1100), 0);   //  Exactly expiry: kept.
    ck_assert_uint_eq(bly_bootstrap_core_tick(core, T0 + 1101), 1);
    ck_assert_uint_eq(bly_bootstrap_core_peer_count(core), 1);
    ck_assert_mem_eq(bly_bootstrap_core_peer(core, 0)->node_id, bly_identity_public_key(a), 32);
    ck_assert_uint_eq(bly_bootstrap_core_next_expiry_ms(core), T0 + 1000 + 1001);
    //  b's heartbeat now meets "unknown node"; registering again works.
    uint16_t code = 0;
    msg = s_signed(BLY_BOOTSTRAP_MSG_HEARTBEAT, b, T0 + 1200, 2);
    ck_assert_int_eq(s_handle(core, &msg, T0 + 1200, &code), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(code, BLY_BOOTSTRAP_ERROR_UNKNOWN_NODE);
    ck_assert_int_eq(s_register(core, b, T0 + 1200, 3, NULL), BLY_BOOTSTRAP_MSG_REGISTER_OK);
    //  a leaves: no reply, dropped at once.
    msg = s_signed(BLY_BOOTSTRAP_MSG_LEAVE, a, T0 + 1300, 99);
    ck_assert_int_eq(s_handle(core, &msg, T0 + 1300, NULL), 0);
    ck_assert_uint_eq(bly_bootstrap_core_peer_count(core), 1);
    const bly_bootstrap_stats_t *stats = bly_bootstrap_core_stats(core);
    ck_assert_uint_eq(stats->registered, 3);
    ck_assert_uint_eq(stats->expired, 1);
    ck_assert_uint_eq(stats->left, 1);
    ck_assert_uint_eq(stats->unknown_node, 1);
    bly_identity_destroy(&a);
    bly_identity_destroy(&b);
    bly_bootstrap_core_destroy(&core);
}
END_TEST

START_TEST(test_bad_signature)
{
    bly_bootstrap_core_t *core = s_core(8);
    bly_identity_t *a = bly_identity_new_random();
    bly_bootstrap_msg_t *msg = s_signed(BLY_BOOTSTRAP_MSG_REGISTER, a, T0, 1);
    //  Change a signed field after signing.
    ck_assert_int_eq(bly_bootstrap_msg_set_name(msg, "mallory"), 0);
    uint16_t code = 0;
    ck_assert_int_eq(s_handle(core, &msg, T0, &code), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(code, BLY_BOOTSTRAP_ERROR_BAD_SIGNATURE);
    //  Unsigned (zero signature).
    msg = s_signed(BLY_BOOTSTRAP_MSG_REGISTER, a, T0, 1);
    uint8_t zero[64] = {0};
    ck_assert_int_eq(bly_bootstrap_msg_set_signature(msg, zero, 64), 0);
    ck_assert_int_eq(s_handle(core, &msg, T0, &code), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(code, BLY_BOOTSTRAP_ERROR_BAD_SIGNATURE);
    ck_assert_uint_eq(bly_bootstrap_core_peer_count(core), 0);
    ck_assert_uint_eq(bly_bootstrap_core_stats(core)->bad_signature, 2);
    bly_identity_destroy(&a);
    bly_bootstrap_core_destroy(&core);
}
END_TEST

START_TEST(test_replay)
{
    bly_bootstrap_core_t *core = s_core(8);
    bly_identity_t *a = bly_identity_new_random();
    uint16_t code = 0;
    ck_assert_int_eq(s_register(core, a, T0, 5, NULL), BLY_BOOTSTRAP_MSG_REGISTER_OK);
    //  The same seq again, and a lower one: replays.
    ck_assert_int_eq(s_register(core, a, T0 + 10, 5, &code), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(code, BLY_BOOTSTRAP_ERROR_REPLAY);
    bly_bootstrap_msg_t *msg = s_signed(BLY_BOOTSTRAP_MSG_HEARTBEAT, a, T0 + 10, 4);
    ck_assert_int_eq(s_handle(core, &msg, T0 + 10, &code), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(code, BLY_BOOTSTRAP_ERROR_REPLAY);
    //  A stamp outside the window (limit: 5000 ms is fine, 5001 is not), both ways.
    msg = s_signed(BLY_BOOTSTRAP_MSG_HEARTBEAT, a, T0 + 10000 - 5000, 6);
    ck_assert_int_eq(s_handle(core, &msg, T0 + 10000, &code), BLY_BOOTSTRAP_MSG_HEARTBEAT_OK);
    msg = s_signed(BLY_BOOTSTRAP_MSG_HEARTBEAT, a, T0 + 10000 - 5001, 7);
    ck_assert_int_eq(s_handle(core, &msg, T0 + 10000, &code), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(code, BLY_BOOTSTRAP_ERROR_REPLAY);
    bly_bootstrap_core_destroy(&core);
    core = s_core(8);
    ck_assert_int_eq(s_register(core, a, T0 - 5000, 1, NULL), BLY_BOOTSTRAP_MSG_REGISTER_OK);
    ck_assert_int_eq(s_register(core, a, T0 - 5001 + 10000, 2, NULL),
                     BLY_BOOTSTRAP_MSG_REGISTER_OK);   //  4999 ahead: fine.
    msg = s_signed(BLY_BOOTSTRAP_MSG_REGISTER, a, T0 - 5001, 3);
    ck_assert_int_eq(s_handle(core, &msg, T0, &code), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(code, BLY_BOOTSTRAP_ERROR_REPLAY);
    msg = s_signed(BLY_BOOTSTRAP_MSG_REGISTER, a, T0 + 5001, 4);
    ck_assert_int_eq(s_handle(core, &msg, T0, &code), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(code, BLY_BOOTSTRAP_ERROR_REPLAY);
    ck_assert_uint_eq(bly_bootstrap_core_stats(core)->replay, 2);
    bly_identity_destroy(&a);
    bly_bootstrap_core_destroy(&core);
}
END_TEST

START_TEST(test_full)
{
    bly_bootstrap_core_t *core = s_core(2);
    bly_identity_t *ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = bly_identity_new_random();
    uint16_t code = 0;
    ck_assert_int_eq(s_register(core, ids[0], T0, 1, NULL), BLY_BOOTSTRAP_MSG_REGISTER_OK);
    ck_assert_int_eq(s_register(core, ids[1], T0, 1, NULL), BLY_BOOTSTRAP_MSG_REGISTER_OK);
    ck_assert_int_eq(s_register(core, ids[2], T0, 1, &code), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(code, BLY_BOOTSTRAP_ERROR_FULL);
    //  A known node may still refresh when full.
    ck_assert_int_eq(s_register(core, ids[1], T0 + 1, 2, NULL), BLY_BOOTSTRAP_MSG_REGISTER_OK);
    ck_assert_uint_eq(bly_bootstrap_core_peer_count(core), 2);
    for (int i = 0; i < 3; i++)
        bly_identity_destroy(&ids[i]);
    bly_bootstrap_core_destroy(&core);
    //  Config out of bounds is refused.
    bly_bootstrap_config_t config;
    bly_bootstrap_config_defaults(&config);
    config.max_peers = BLY_PEERS_MAX + 1;
    ck_assert_ptr_null(bly_bootstrap_core_new(&config));
    config.max_peers = 0;
    ck_assert_ptr_null(bly_bootstrap_core_new(&config));
}
END_TEST

START_TEST(test_identity_mismatch)
{
    bly_bootstrap_core_t *core = s_core(8);
    bly_identity_t *victim = bly_identity_new_random();
    bly_identity_t *mallory = bly_identity_new_random();
    //  A message validly signed by the victim, replayed over mallory's connection.
    bly_bootstrap_msg_t *msg = s_signed(BLY_BOOTSTRAP_MSG_REGISTER, victim, T0, 1);
    bly_bootstrap_msg_set_peer_key(msg, bly_identity_curve_public_z85(mallory));
    uint16_t code = 0;
    ck_assert_int_eq(s_handle(core, &msg, T0, &code), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(code, BLY_BOOTSTRAP_ERROR_NOT_ALLOWED);
    //  No transport key at all.
    msg = s_signed(BLY_BOOTSTRAP_MSG_REGISTER, victim, T0, 1);
    bly_bootstrap_msg_set_peer_key(msg, NULL);
    ck_assert_int_eq(s_handle(core, &msg, T0, &code), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(code, BLY_BOOTSTRAP_ERROR_NOT_ALLOWED);
    //  Mallory cannot make the victim leave either (no reply, nothing changes).
    ck_assert_int_eq(s_register(core, victim, T0, 2, NULL), BLY_BOOTSTRAP_MSG_REGISTER_OK);
    msg = s_signed(BLY_BOOTSTRAP_MSG_LEAVE, victim, T0 + 1, 3);
    bly_bootstrap_msg_set_peer_key(msg, bly_identity_curve_public_z85(mallory));
    ck_assert_int_eq(s_handle(core, &msg, T0 + 1, NULL), 0);
    ck_assert_uint_eq(bly_bootstrap_core_peer_count(core), 1);
    ck_assert_uint_eq(bly_bootstrap_core_stats(core)->not_allowed, 3);
    bly_identity_destroy(&victim);
    bly_identity_destroy(&mallory);
    bly_bootstrap_core_destroy(&core);
}
END_TEST

START_TEST(test_peers_and_bad_content)
{
    bly_bootstrap_core_t *core = s_core(8);
    bly_identity_t *a = bly_identity_new_random();
    bly_identity_t *b = bly_identity_new_random();
    ck_assert_int_eq(s_register(core, a, T0, 1, NULL), BLY_BOOTSTRAP_MSG_REGISTER_OK);
    //  b registers without roles.
    bly_bootstrap_msg_t *msg = s_signed(BLY_BOOTSTRAP_MSG_REGISTER, b, T0, 1);
    bly_bootstrap_msg_roles_clear(msg);
    ck_assert_int_eq(bly_bootstrap_msg_sign(msg, bly_identity_secret_key(b)), 0);
    ck_assert_int_eq(s_handle(core, &msg, T0, NULL), BLY_BOOTSTRAP_MSG_REGISTER_OK);
    const char *roles[] = {"", "layer-shard", "router"};
    size_t expect[] = {2, 1, 0};
    for (int i = 0; i < 3; i++) {
        bly_bootstrap_msg_t *request = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_PEERS_REQUEST);
        ck_assert_int_eq(bly_bootstrap_msg_set_role(request, roles[i]), 0);
        bly_bootstrap_msg_t *reply = bly_bootstrap_core_handle(core, request, T0, T0);
        ck_assert_int_eq(bly_bootstrap_msg_id(reply), BLY_BOOTSTRAP_MSG_PEERS);
        ck_assert_uint_eq(bly_bootstrap_msg_peers_count(reply), expect[i]);
        bly_bootstrap_msg_destroy(&reply);
        bly_bootstrap_msg_destroy(&request);
    }
    //  Bad content in a validly signed register: bad endpoint, stages reversed, no name.
    uint16_t code = 0;
    bly_identity_t *c = bly_identity_new_random();
    for (int i = 0; i < 3; i++) {
        msg = s_signed(BLY_BOOTSTRAP_MSG_REGISTER, c, T0, (uint64_t) i + 1);
        if (i == 0) {
            bly_bootstrap_msg_endpoints_clear(msg);
            ck_assert_int_eq(bly_bootstrap_msg_endpoints_append(msg, "udp://x:1"), 0);
        } else if (i == 1) {
            bly_bootstrap_msg_set_stage_first(msg, 20);
        } else {
            ck_assert_int_eq(bly_bootstrap_msg_set_name(msg, ""), 0);
        }
        ck_assert_int_eq(bly_bootstrap_msg_sign(msg, bly_identity_secret_key(c)), 0);
        ck_assert_int_eq(s_handle(core, &msg, T0, &code), BLY_BOOTSTRAP_MSG_ERROR);
        ck_assert_uint_eq(code, BLY_BOOTSTRAP_ERROR_BAD_MESSAGE);
    }
    //  Replies sent to a bootstrap are refused.
    msg = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_REGISTER_OK);
    ck_assert_int_eq(s_handle(core, &msg, T0, &code), BLY_BOOTSTRAP_MSG_ERROR);
    ck_assert_uint_eq(code, BLY_BOOTSTRAP_ERROR_BAD_MESSAGE);
    ck_assert_uint_eq(bly_bootstrap_core_peer_count(core), 2);
    bly_identity_destroy(&a);
    bly_identity_destroy(&b);
    bly_identity_destroy(&c);
    bly_bootstrap_core_destroy(&core);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("bootstrap_core");
    TCase *tc = tcase_create("bootstrap_core");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_register_heartbeat_expire);
    tcase_add_test(tc, test_wall_clock_step);
    tcase_add_test(tc, test_bad_signature);
    tcase_add_test(tc, test_replay);
    tcase_add_test(tc, test_full);
    tcase_add_test(tc, test_identity_mismatch);
    tcase_add_test(tc, test_peers_and_bad_content);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? 1 : 0;
}
