/*  test_zap - ZAP policy over real tcp on 127.0.0.1: allow-listed sockets refuse
    unknown keys and accept listed ones, open sockets attribute every key, unknown
    domains and a missing handler are refused. */

#include "bly_identity.h"
#include "bly_limits.h"
#include "bly_sock.h"
#include "bly_zap.h"

#include <check.h>
#include <string.h>

//  Watch a server socket's handshakes. Returns the PAIR end to read events from.
static zsock_t *
s_monitor(zsock_t *server, const char *name)
{
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "inproc://monitor-%s", name);
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                 | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
    ck_assert_int_eq(zmq_socket_monitor(zsock_resolve(server), endpoint, events), 0);
    zsock_t *pair = zsock_new_pair(endpoint);
    ck_assert_ptr_nonnull(pair);
    zsock_set_rcvtimeo(pair, 3000);
    return pair;
}

//  The next handshake event (ZMQ_EVENT_*), or 0 when none came.
static int
s_next_event(zsock_t *monitor)
{
    zmsg_t *msg = zmsg_recv(monitor);
    if (!msg)
        return 0;
    zframe_t *frame = zmsg_first(msg);
    uint16_t event = 0;
    if (zframe_size(frame) >= 2)
        memcpy(&event, zframe_data(frame), 2);
    zmsg_destroy(&msg);
    return event;
}

typedef struct {
    bly_identity_t *server_id;
    zsock_t *server;
    zsock_t *monitor;
    char endpoint[256];
} s_server_t;

static void
s_server_start(s_server_t *s, const char *domain, const char *name)
{
    char err[256];
    s->server_id = bly_identity_new_random();
    s->server = bly_sock_server(ZMQ_ROUTER, s->server_id, domain, "tcp://127.0.0.1:*", err,
                                sizeof(err));
    ck_assert_msg(s->server, "%s", err);
    snprintf(s->endpoint, sizeof(s->endpoint), "%s", zsock_endpoint(s->server));
    s->monitor = s_monitor(s->server, name);
}

static void
s_server_stop(s_server_t *s)
{
    zsock_destroy(&s->monitor);
    zsock_destroy(&s->server);
    bly_identity_destroy(&s->server_id);
}

//  Connect a client with `client_id`, send "hello"; returns the handshake event.
static int
s_try_client(s_server_t *s, bly_identity_t *client_id, zsock_t **client_p)
{
    char err[256];
    zsock_t *client = bly_sock_client(ZMQ_DEALER, client_id,
                                      bly_identity_curve_public_z85(s->server_id), s->endpoint,
                                      err, sizeof(err));
    ck_assert_msg(client, "%s", err);
    zstr_send(client, "hello");
    int event = s_next_event(s->monitor);
    *client_p = client;
    return event;
}

//  Receive one message on the server; returns its User-Id copy or NULL.
static char *
s_recv_user_id(zsock_t *server)
{
    zsock_set_rcvtimeo(server, 3000);
    zmsg_t *msg = zmsg_recv(server);
    if (!msg)
        return NULL;
    zframe_t *body = zmsg_last(msg);
    const char *key = bly_sock_peer_key(body);
    char *copy = key ? strdup(key) : NULL;
    ck_assert(zframe_streq(body, "hello"));
    zmsg_destroy(&msg);
    return copy;
}

START_TEST(test_allow_list)
{
    zactor_t *zap = bly_zap_new();
    ck_assert_ptr_nonnull(zap);
    bly_identity_t *listed = bly_identity_new_random();
    bly_identity_t *stranger = bly_identity_new_random();
    ck_assert_int_eq(bly_zap_allow(zap, "mesh", bly_identity_curve_public_z85(listed)), 0);
    s_server_t s;
    s_server_start(&s, "mesh", "allow");

    zsock_t *bad = NULL;
    ck_assert_int_eq(s_try_client(&s, stranger, &bad), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    ck_assert_uint_ge(bly_zap_denials(zap), 1);
    zsock_destroy(&bad);

    zsock_t *good = NULL;
    ck_assert_int_eq(s_try_client(&s, listed, &good), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    char *user_id = s_recv_user_id(s.server);
    ck_assert_ptr_nonnull(user_id);
    ck_assert_str_eq(user_id, bly_identity_curve_public_z85(listed));
    free(user_id);
    //  The stranger's "hello" never arrived: the next message is nothing.
    zsock_set_rcvtimeo(s.server, 0);
    zmsg_t *none = zmsg_recv(s.server);
    ck_assert_ptr_null(none);
    zsock_destroy(&good);
    s_server_stop(&s);
    bly_identity_destroy(&listed);
    bly_identity_destroy(&stranger);
    bly_zap_destroy(&zap);
}
END_TEST

START_TEST(test_open_attributes_key)
{
    zactor_t *zap = bly_zap_new();
    ck_assert_int_eq(bly_zap_open(zap, "open"), 0);
    s_server_t s;
    s_server_start(&s, "open", "open");
    bly_identity_t *anyone = bly_identity_new_random();
    zsock_t *client = NULL;
    ck_assert_int_eq(s_try_client(&s, anyone, &client), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    char *user_id = s_recv_user_id(s.server);
    ck_assert_ptr_nonnull(user_id);
    ck_assert_str_eq(user_id, bly_identity_curve_public_z85(anyone));
    free(user_id);
    ck_assert_uint_eq(bly_zap_denials(zap), 0);
    ck_assert_uint_eq(bly_zap_accepts(zap), 1);
    zsock_destroy(&client);
    s_server_stop(&s);
    bly_identity_destroy(&anyone);
    bly_zap_destroy(&zap);
}
END_TEST

START_TEST(test_unknown_domain_refused)
{
    zactor_t *zap = bly_zap_new();
    ck_assert_int_eq(bly_zap_open(zap, "open"), 0);
    s_server_t s;
    s_server_start(&s, "elsewhere", "unknown");
    bly_identity_t *anyone = bly_identity_new_random();
    zsock_t *client = NULL;
    ck_assert_int_eq(s_try_client(&s, anyone, &client), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    zsock_destroy(&client);
    s_server_stop(&s);
    bly_identity_destroy(&anyone);
    bly_zap_destroy(&zap);
}
END_TEST

START_TEST(test_no_handler_refuses)
{
    //  No ZAP handler runs: ZMQ_ZAP_ENFORCE_DOMAIN makes that a refusal.
    s_server_t s;
    s_server_start(&s, "open", "none");
    bly_identity_t *anyone = bly_identity_new_random();
    zsock_t *client = NULL;
    int event = s_try_client(&s, anyone, &client);
    ck_assert_int_ne(event, ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    ck_assert_int_ne(event, 0);
    zsock_destroy(&client);
    s_server_stop(&s);
    bly_identity_destroy(&anyone);
}
END_TEST

START_TEST(test_policy_bounds)
{
    zactor_t *zap = bly_zap_new();
    ck_assert_ptr_nonnull(zap);
    //  A second handler in one process cannot bind the ZAP endpoint.
    zactor_t *second = bly_zap_new();
    ck_assert_ptr_null(second);
    ck_assert_int_eq(bly_zap_allow(zap, "mesh", "too-short"), -1);
    ck_assert_int_eq(bly_zap_open(zap, ""), -1);
    ck_assert_int_eq(bly_zap_open(zap, "a-domain-name-that-is-far-too-long-for-us"), -1);
    ck_assert_int_eq(bly_zap_open(zap, "open"), 0);
    bly_identity_t *id = bly_identity_new_random();
    //  An open domain cannot become allow-listed, nor the reverse.
    ck_assert_int_eq(bly_zap_allow(zap, "open", bly_identity_curve_public_z85(id)), -1);
    ck_assert_int_eq(bly_zap_allow(zap, "mesh", bly_identity_curve_public_z85(id)), 0);
    ck_assert_int_eq(bly_zap_open(zap, "mesh"), -1);
    //  The domain table is bounded.
    int added = 2;
    char name[32];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "d%d", i);
        added += bly_zap_open(zap, name) == 0;
    }
    ck_assert_int_eq(added, BLY_ZAP_DOMAINS_MAX);
    bly_identity_destroy(&id);
    bly_zap_destroy(&zap);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("zap");
    TCase *tc = tcase_create("zap");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_allow_list);
    tcase_add_test(tc, test_open_attributes_key);
    tcase_add_test(tc, test_unknown_domain_refused);
    tcase_add_test(tc, test_no_handler_refuses);
    tcase_add_test(tc, test_policy_bounds);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    zsys_shutdown();
    return failed ? 1 : 0;
}
