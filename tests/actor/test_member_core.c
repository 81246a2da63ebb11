/*  test_member_core - the join state machine on virtual time: register backoff,
    heartbeats after register_ok, re-register when forgotten or unanswered. */

#include "bly_member_core.h"

#include <check.h>

static bly_bootstrap_msg_t *
s_register_ok(uint32_t heartbeat_ms, uint32_t expiry_ms)
{
    bly_bootstrap_msg_t *msg = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_REGISTER_OK);
    bly_bootstrap_msg_set_heartbeat_ms(msg, heartbeat_ms);
    bly_bootstrap_msg_set_expiry_ms(msg, expiry_ms);
    return msg;
}

static void
s_apply(bly_member_core_t *core, bly_bootstrap_msg_t *msg, uint64_t now)
{
    bly_member_core_handle(core, msg, now);
    bly_bootstrap_msg_destroy(&msg);
}

START_TEST(test_register_backoff)
{
    bly_member_core_t *core = bly_member_core_new(1000);
    ck_assert_int_eq(bly_member_core_tick(core, 0), BLY_MEMBER_REGISTER);
    ck_assert_int_eq(bly_member_core_tick(core, 0), BLY_MEMBER_NOTHING);
    //  Retries at 100, +200, +400, ... capped at BLY_MEMBER_RETRY_MS_MAX.
    uint64_t t = 0, gap = BLY_MEMBER_RETRY_MS_MIN;
    for (int i = 0; i < 12; i++) {
        ck_assert_int_eq(bly_member_core_tick(core, t + gap - 1), BLY_MEMBER_NOTHING);
        t += gap;
        ck_assert_int_eq(bly_member_core_tick(core, t), BLY_MEMBER_REGISTER);
        gap = gap * 2 > BLY_MEMBER_RETRY_MS_MAX ? BLY_MEMBER_RETRY_MS_MAX : gap * 2;
    }
    ck_assert_uint_eq(bly_member_core_registers_sent(core), 13);
    //  Sequence numbers grow from the first one.
    ck_assert_uint_eq(bly_member_core_next_seq(core), 1001);
    ck_assert_uint_eq(bly_member_core_next_seq(core), 1002);
    //  Refusals while unregistered keep the backoff (no tight loop).
    bly_bootstrap_msg_t *error = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_ERROR);
    bly_bootstrap_msg_set_code(error, BLY_BOOTSTRAP_ERROR_REPLAY);
    s_apply(core, error, t + 1);
    ck_assert_int_eq(bly_member_core_tick(core, t + 1), BLY_MEMBER_NOTHING);
    bly_member_core_destroy(&core);
    ck_assert_ptr_null(core);
}
END_TEST

START_TEST(test_heartbeats_and_forgotten)
{
    bly_member_core_t *core = bly_member_core_new(0);
    ck_assert_int_eq(bly_member_core_tick(core, 0), BLY_MEMBER_REGISTER);
    s_apply(core, s_register_ok(200, 1000), 10);
    ck_assert(bly_member_core_registered(core));
    ck_assert_uint_eq(bly_member_core_next_ms(core), 210);
    ck_assert_int_eq(bly_member_core_tick(core, 209), BLY_MEMBER_NOTHING);
    ck_assert_int_eq(bly_member_core_tick(core, 210), BLY_MEMBER_HEARTBEAT);
    s_apply(core, bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_HEARTBEAT_OK), 215);
    ck_assert_int_eq(bly_member_core_tick(core, 410), BLY_MEMBER_HEARTBEAT);
    //  The bootstrap restarted and forgot us: register again at once.
    bly_bootstrap_msg_t *error = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_ERROR);
    bly_bootstrap_msg_set_code(error, BLY_BOOTSTRAP_ERROR_UNKNOWN_NODE);
    s_apply(core, error, 420);
    ck_assert(!bly_member_core_registered(core));
    ck_assert_int_eq(bly_member_core_tick(core, 420), BLY_MEMBER_REGISTER);
    s_apply(core, s_register_ok(200, 1000), 430);
    ck_assert_uint_eq(bly_member_core_registrations(core), 2);
    bly_member_core_destroy(&core);
}
END_TEST

START_TEST(test_silence_means_register)
{
    bly_member_core_t *core = bly_member_core_new(0);
    ck_assert_int_eq(bly_member_core_tick(core, 0), BLY_MEMBER_REGISTER);
    s_apply(core, s_register_ok(200, 1000), 0);
    //  Heartbeats go out but nothing comes back.
    uint64_t t = 200;
    for (; t <= 1000; t += 200)
        ck_assert_int_eq(bly_member_core_tick(core, t), BLY_MEMBER_HEARTBEAT);
    ck_assert(bly_member_core_registered(core));
    ck_assert_uint_eq(bly_member_core_next_ms(core), 1001);
    ck_assert_int_eq(bly_member_core_tick(core, 1001), BLY_MEMBER_REGISTER);
    ck_assert(!bly_member_core_registered(core));
    //  A bootstrap asking for absurd timing is clamped.
    s_apply(core, s_register_ok(1, 1), 1100);
    ck_assert_uint_eq(bly_member_core_next_ms(core), 1150);
    bly_member_core_destroy(&core);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("member_core");
    TCase *tc = tcase_create("member_core");
    tcase_add_test(tc, test_register_backoff);
    tcase_add_test(tc, test_heartbeats_and_forgotten);
    tcase_add_test(tc, test_silence_means_register);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? 1 : 0;
}
