/*  test_manifest - every class of mistake gives "FILE:LINE: reason"; good manifests
    load and their values read back. */

#include "bly_limits.h"
#include "bly_manifest.h"
#include "bly_node.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const char *s_good
    = "# a node with a bootstrap actor\n"
      "node\n"
      "    name = node1            # comment after a value\n"
      "    key_file = \"keys/node1.key\"\n"
      "    log_level = info\n"
      "    endpoints = tcp://127.0.0.1:7101, tcp://127.0.0.1:7102\n"
      "    stages = 0-27\n"
      "    bootstrap = tcp://127.0.0.1:7000\n"
      "    bootstrap_key = " S_KEY "\n"
      "\n"
      "actor    # the registry\n"
      "    role = bootstrap\n"
      "    endpoint = tcp://127.0.0.1:7000\n"
      "    expiry_ms = 1000\n";

static bly_manifest_t *
s_parse(const char *text, char *err, size_t err_size)
{
    return bly_manifest_parse(text, strlen(text), "m.zpl", "/etc/blyan", bly_node_schema(), err,
                              err_size);
}

START_TEST(test_good)
{
    char err[2048];
    bly_manifest_t *m = s_parse(s_good, err, sizeof(err));
    ck_assert_msg(m, "%s", err);
    ck_assert_str_eq(bly_manifest_get(m, BLY_MANIFEST_NODE, "name"), "node1");
    ck_assert_str_eq(bly_manifest_get(m, BLY_MANIFEST_NODE, "key_file"), "keys/node1.key");
    char path[256];
    ck_assert_int_eq(bly_manifest_get_path(m, BLY_MANIFEST_NODE, "key_file", path, sizeof(path)),
                     0);
    ck_assert_str_eq(path, "/etc/blyan/keys/node1.key");
    ck_assert_int_eq(bly_manifest_get_path(m, BLY_MANIFEST_NODE, "data_dir", path, sizeof(path)),
                     -1);
    ck_assert_int_eq(bly_manifest_actor_count(m), 1);
    ck_assert_str_eq(bly_manifest_actor_role(m, 0), "bootstrap");
    ck_assert_int_eq(bly_manifest_get_int(m, 0, "expiry_ms", 5), 1000);
    ck_assert_int_eq(bly_manifest_get_int(m, 0, "heartbeat_ms", 77), 77);
    ck_assert_int_eq(bly_manifest_line(m, 0, "endpoint"), 13);
    ck_assert_int_eq(bly_manifest_line(m, 0, "absent"), 11);
    ck_assert_ptr_null(bly_manifest_get(m, BLY_MANIFEST_NODE, "model"));
    bly_manifest_destroy(&m);
    bly_manifest_destroy(&m);
}
END_TEST

typedef struct {
    const char *text;     //  Manifest.
    const char *where;    //  Expected "m.zpl:LINE:" prefix of the first mistake.
    const char *reason;   //  Expected words in it.
} s_bad_t;

#define NODE "node\n    name = n\n    key_file = k\n"
static const s_bad_t s_bad[] = {
    {NODE "actor\n    role = wizard\n", "m.zpl:5:", "unknown role 'wizard'"},
    {NODE "actor\n    endpoint = tcp://127.0.0.1:1\n", "m.zpl:4:", "lacks 'role'"},
    {NODE "actor\n    role = bootstrap\n", "m.zpl:4:", "required key 'endpoint'"},
    {"node\n    name = n\n", "m.zpl:1:", "required key 'key_file'"},
    {NODE "    colour = blue\n", "m.zpl:4:", "unknown key 'colour'"},
    {NODE "actor\n    role = bootstrap\n    endpoint = tcp://127.0.0.1:7\n    expiry_ms = soon\n",
     "m.zpl:7:", "integer"},
    {NODE "actor\n    role = bootstrap\n    endpoint = tcp://127.0.0.1:7\n    expiry_ms = 10\n",
     "m.zpl:7:", "[200,"},
    {NODE "actor\n    role = bootstrap\n    endpoint = tcp://127.0.0.1:7\n    heartbeat_ms = 1x\n",
     "m.zpl:7:", "integer"},
    {NODE "actor\n    role = bootstrap\n    endpoint = udp://127.0.0.1:7\n", "m.zpl:6:",
     "not a valid endpoint"},
    {NODE "actor\n    role = bootstrap\n    endpoint = tcp://127.0.0.1:70000\n", "m.zpl:6:",
     "not a valid endpoint"},
    {NODE "actor\n    role = bootstrap\n    endpoint = tcp://127.0.0.1\n", "m.zpl:6:",
     "not a valid endpoint"},
    {NODE "    bootstrap = tcp://host:\n", "m.zpl:4:", "not a valid endpoint"},
    {NODE "    endpoints = tcp://a:1,tcp://b:2,tcp://c:3,tcp://d:4,tcp://e:5\n", "m.zpl:4:",
     "comma-separated"},
    {NODE "    bootstrap_key = 1234\n", "m.zpl:4:", "64 hex"},
    {NODE "    stages = 5-2\n", "m.zpl:4:", "FIRST-LAST"},
    {NODE "    log_level = loud\n", "m.zpl:4:", "one of"},
    {NODE "    name = again\n", "m.zpl:4:", "duplicate key 'name' (first at line 2)"},
    {NODE "node\n", "m.zpl:4:", "duplicate node section"},
    {NODE "actor\n    role = bootstrap\n    endpoint = tcp://127.0.0.1:7\n"
          "actor\n    role = bootstrap\n    endpoint = tcp://127.0.0.1:8\n",
     "m.zpl:8:", "appears twice"},
    {NODE "  model = x\n", "m.zpl:4:", "bad indentation"},
    {NODE "\tmodel = x\n", "m.zpl:4:", "tab"},
    {NODE "    model x\n", "m.zpl:4:", "key = value"},
    {NODE "    model = \"x\n", "m.zpl:4:", "unterminated"},
    {NODE "    model = \"x\" y\n", "m.zpl:4:", "after a quoted"},
    {NODE "    model =\n", "m.zpl:4:", "empty value"},
    {"    name = n\n", "m.zpl:1:", "outside a section"},
    {"name = n\n", "m.zpl:1:", "outside a section"},
    {"nodes\n", "m.zpl:1:", "unknown section"},
    {"# nothing\n", "m.zpl:1:", "no 'node' section"},
    {"", "m.zpl:1:", "no 'node' section"},
    {NODE "    model = a\x01b\n", "m.zpl:4:", "control character"},
    {NODE "    averyveryveryveryverylongkeynamex = 1\n", "m.zpl:4:", "longer than"},
};

START_TEST(test_bad)
{
    const s_bad_t *bad = &s_bad[_i];
    char err[2048];
    bly_manifest_t *m = s_parse(bad->text, err, sizeof(err));
    ck_assert_msg(!m, "case %d accepted", _i);
    ck_assert_msg(strncmp(err, bad->where, strlen(bad->where)) == 0, "case %d: '%s' not at %s", _i,
                  err, bad->where);
    ck_assert_msg(strstr(err, bad->reason), "case %d: '%s' lacks '%s'", _i, err, bad->reason);
}
END_TEST

START_TEST(test_nul_and_long_lines)
{
    char err[2048];
    const char nul[] = "node\n    name = a\0b\n    key_file = k\n";
    ck_assert_ptr_null(bly_manifest_parse(nul, sizeof(nul) - 1, "m.zpl", ".", bly_node_schema(),
                                          err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "m.zpl:2: NUL byte"));
    //  A line of exactly the limit is read; one more character is refused.
    char *text = malloc(4 * BLY_MANIFEST_LINE_MAX);
    for (int extra = 0; extra < 2; extra++) {
        int prefix = snprintf(text, 64, "node\n    key_file = k\n    name = ");
        int value_len = BLY_MANIFEST_LINE_MAX - 11 + extra;   //  "    name = " is 11.
        memset(text + prefix, 'x', (size_t) value_len);
        text[prefix + value_len] = 0;
        bly_manifest_t *m = s_parse(text, err, sizeof(err));
        ck_assert_ptr_null(m);   //  The name is longer than BLY_NAME_MAX either way...
        ck_assert_ptr_nonnull(strstr(err, extra ? "line longer than" : "printable text"));
    }
    free(text);
}
END_TEST

START_TEST(test_many_mistakes_reported)
{
    char err[4096];
    const char *text = NODE "    colour = blue\n    size = 3\nactor\n    role = x\n";
    ck_assert_ptr_null(s_parse(text, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "m.zpl:4: unknown key 'colour'"));
    ck_assert_ptr_nonnull(strstr(err, "m.zpl:5: unknown key 'size'"));
    ck_assert_ptr_nonnull(strstr(err, "m.zpl:7: unknown role 'x'"));
    //  A tiny error buffer truncates, never overflows.
    char small[16];
    ck_assert_ptr_null(s_parse(text, small, sizeof(small)));
    ck_assert_int_lt(strlen(small), sizeof(small));
}
END_TEST

START_TEST(test_file_errors)
{
    char err[1024];
    ck_assert_ptr_null(bly_manifest_load("/nonexistent/m.zpl", bly_node_schema(), err,
                                         sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/m.zpl:0: cannot open"));
    ck_assert_ptr_null(bly_node_check("/nonexistent/m.zpl", err, sizeof(err)));
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("manifest");
    TCase *tc = tcase_create("manifest");
    tcase_add_test(tc, test_good);
    tcase_add_loop_test(tc, test_bad, 0, (int) (sizeof(s_bad) / sizeof(s_bad[0])));
    tcase_add_test(tc, test_nul_and_long_lines);
    tcase_add_test(tc, test_many_mistakes_reported);
    tcase_add_test(tc, test_file_errors);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? 1 : 0;
}
