/*  test_log - levels, rate limiting, actor names. */

#include "bly_log.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_level_parse)
{
    bly_log_level_t level = BLY_LOG_ERROR;
    ck_assert_int_eq(bly_log_level_parse("debug", &level), 0);
    ck_assert_int_eq(level, BLY_LOG_DEBUG);
    ck_assert_int_eq(bly_log_level_parse("warn", &level), 0);
    ck_assert_int_eq(level, BLY_LOG_WARN);
    ck_assert_int_eq(bly_log_level_parse("loud", &level), -1);
    ck_assert_int_eq(level, BLY_LOG_WARN);
    ck_assert_int_eq(bly_log_level_parse("", &level), -1);
}
END_TEST

START_TEST(test_level_filter)
{
    bly_log_set_level(BLY_LOG_WARN);
    ck_assert(bly_log_enabled(BLY_LOG_ERROR));
    ck_assert(bly_log_enabled(BLY_LOG_WARN));
    ck_assert(!bly_log_enabled(BLY_LOG_NOTICE));
    ck_assert(!bly_log_enabled(BLY_LOG_DEBUG));
    bly_log_set_level(BLY_LOG_DEBUG);
    ck_assert(bly_log_enabled(BLY_LOG_DEBUG));
    bly_log_set_level(BLY_LOG_NOTICE);
}
END_TEST

START_TEST(test_ratelimit)
{
    bly_ratelimit_t limit = {0};
    int allowed = 0;
    for (int i = 0; i < 100; i++)
        allowed += bly_ratelimit_allow(&limit, 1000, 5, 1000);
    ck_assert_int_eq(allowed, 5);
    ck_assert_uint_eq(limit.suppressed, 95);
    //  A new window opens after the interval.
    ck_assert(bly_ratelimit_allow(&limit, 2000, 5, 1000));
    //  A clock going backwards opens a new window rather than locking out.
    ck_assert(bly_ratelimit_allow(&limit, 10, 5, 1000));
}
END_TEST

static void *
s_thread_actor(void *arg)
{
    bly_log_set_actor("router");
    return (void *) (strcmp(bly_log_actor(), "router") == 0 ? arg : NULL);
}

START_TEST(test_actor_name_per_thread)
{
    bly_log_set_actor("ledger");
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, s_thread_actor, (void *) 1), 0);
    void *result = NULL;
    ck_assert_int_eq(pthread_join(thread, &result), 0);
    ck_assert_ptr_eq(result, (void *) 1);
    ck_assert_str_eq(bly_log_actor(), "ledger");
    //  Over-long names are truncated, never overflow.
    char longname[200];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    bly_log_set_actor(longname);
    ck_assert_uint_lt(strlen(bly_log_actor()), 64);
    bly_log_error("a line with an over-long actor name and a value %d", 42);
}
END_TEST

START_TEST(test_assert_aborts)
{
    int zero = 0;
    bly_assert(zero == 1);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_level_parse);
    tcase_add_test(tc, test_level_filter);
    tcase_add_test(tc, test_ratelimit);
    tcase_add_test(tc, test_actor_name_per_thread);
    if (getenv("CK_FORK") == NULL || strcmp(getenv("CK_FORK"), "no") != 0)
        tcase_add_test_raise_signal(tc, test_assert_aborts, SIGABRT);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
