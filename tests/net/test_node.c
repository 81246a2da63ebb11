/*  test_node - the blyan-node binary: --check on every config example (exit 0) and on
    broken manifests (exit 2, "FILE:LINE: reason" on stderr); a real start that writes
    its pid file and stops cleanly on SIGTERM. */

#include "bly_identity.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char s_dir[256];

static void
s_setup(void)
{
    snprintf(s_dir, sizeof(s_dir), "/tmp/bly-node-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
}

static void
s_teardown(void)
{
    char command[512];
    snprintf(command, sizeof(command), "rm -rf '%s'", s_dir);
    ck_assert_int_eq(system(command), 0);
}

static const char *
s_env(const char *name)
{
    const char *value = getenv(name);
    ck_assert_msg(value, "%s is not set (run through meson test)", name);
    return value;
}

//  Run blyan-node with `args`; stderr into `err`. Returns the exit code.
static int
s_run(const char *args, char *err, size_t err_size)
{
    char command[2048], err_path[300];
    snprintf(err_path, sizeof(err_path), "%s/stderr.txt", s_dir);
    snprintf(command, sizeof(command), "'%s/blyan-node' %s >/dev/null 2>'%s'",
             s_env("BLY_BUILD_DIR"), args, err_path);
    int status = system(command);
    FILE *file = fopen(err_path, "r");
    size_t n = file ? fread(err, 1, err_size - 1, file) : 0;
    err[n] = 0;
    if (file)
        fclose(file);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void
s_write(const char *name, const char *text, char *path, size_t path_size)
{
    snprintf(path, path_size, "%s/%s", s_dir, name);
    FILE *file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    fputs(text, file);
    fclose(file);
}

START_TEST(test_examples_pass)
{
    const char *examples[] = {"main", "gpu", "validator", "bootstrap"};
    char args[1024], err[4096];
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof(args), "--manifest '%s/config/%s.zpl' --check",
                 s_env("BLY_SOURCE_DIR"), examples[i]);
        ck_assert_msg(s_run(args, err, sizeof(err)) == 0, "%s: %s", examples[i], err);
    }
}
END_TEST

typedef struct {
    const char *text;
    const char *expect;    //  In stderr after "FILE".
} s_case_t;

START_TEST(test_mistakes_exit_2)
{
    static const s_case_t cases[] = {
        {"node\n    name = n\n    key_file = k\nactor\n    role = wizard\n", ":5: unknown role"},
        {"node\n    name = n\n", ":1: node section lacks required key 'key_file'"},
        {"node\n    name = n\n    key_file = k\n    colour = red\n", ":4: unknown key"},
        {"node\n    name = n\n    key_file = k\nactor\n    role = bootstrap\n"
         "    endpoint = tcp://127.0.0.1:99999\n", ":6: 'endpoint' is not a valid endpoint"},
        {"node\n    name = n\n    key_file = k\nactor\n    role = bootstrap\n"
         "    endpoint = tcp://127.0.0.1:7000\n    expiry_ms = soon\n", ":7: 'expiry_ms' must be"},
        {"node\n    name = n\n    key_file = k\n    bootstrap = tcp://127.0.0.1:7000\n",
         ":4: bootstrap and bootstrap_key"},
        {"node\n    name = n\n    key_file = k\n    bootstrap = tcp://127.0.0.1:7000\n"
         "    bootstrap_key = ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n",
         ":5: bootstrap_key is not a node id"},
        {"node\n    name = n\n    key_file = missing-folder/k.key\n", ":3: key file"},
    };
    char path[300], args[512], err[4096];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s_write("bad.zpl", cases[i].text, path, sizeof(path));
        snprintf(args, sizeof(args), "--manifest '%s' --check", path);
        ck_assert_int_eq(s_run(args, err, sizeof(err)), 2);
        char expect[512];
        snprintf(expect, sizeof(expect), "%s%s", path, cases[i].expect);
        ck_assert_msg(strstr(err, expect), "case %zu: '%s' lacks '%s'", i, err, expect);
    }
    //  A missing manifest and bad usage.
    snprintf(args, sizeof(args), "--manifest '%s/none.zpl' --check", s_dir);
    ck_assert_int_eq(s_run(args, err, sizeof(err)), 2);
    ck_assert_int_eq(s_run("--bogus", err, sizeof(err)), 2);
    ck_assert_int_eq(s_run("", err, sizeof(err)), 2);
}
END_TEST

START_TEST(test_unreadable_key_file)
{
    char key[300], path[300], args[512], err[4096];
    snprintf(key, sizeof(key), "%s/node.key", s_dir);
    bly_identity_t *id = bly_identity_new_random();
    ck_assert_int_eq(bly_identity_save(id, key, err, sizeof(err)), 0);
    bly_identity_destroy(&id);
    s_write("node.zpl", "node\n    name = n\n    key_file = node.key\n", path, sizeof(path));
    snprintf(args, sizeof(args), "--manifest '%s' --check", path);
    ck_assert_int_eq(s_run(args, err, sizeof(err)), 0);
    ck_assert_int_eq(chmod(key, 0644), 0);
    ck_assert_int_eq(s_run(args, err, sizeof(err)), 2);
    ck_assert_ptr_nonnull(strstr(err, ":3: key file"));
    ck_assert_ptr_nonnull(strstr(err, "group or others"));
    //  Corrupt content.
    ck_assert_int_eq(chmod(key, 0600), 0);
    FILE *file = fopen(key, "w");
    fputs("not a key", file);
    fclose(file);
    ck_assert_int_eq(s_run(args, err, sizeof(err)), 2);
    ck_assert_ptr_nonnull(strstr(err, ":3: key file"));
}
END_TEST

static int
s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

START_TEST(test_start_and_sigterm)
{
    char text[512], path[300], pid_path[300], key_path[300], binary[512];
    snprintf(text, sizeof(text),
             "node\n    name = n\n    key_file = node.key\n    pid_file = node.pid\n"
             "actor\n    role = bootstrap\n    endpoint = tcp://127.0.0.1:%d\n",
             s_free_port());
    s_write("node.zpl", text, path, sizeof(path));
    snprintf(pid_path, sizeof(pid_path), "%s/node.pid", s_dir);
    snprintf(key_path, sizeof(key_path), "%s/node.key", s_dir);
    snprintf(binary, sizeof(binary), "%s/blyan-node", s_env("BLY_BUILD_DIR"));
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl(binary, binary, "--manifest", path, (char *) NULL);
        _exit(127);
    }
    //  The pid file appears once every actor serves (bounded wait).
    struct stat st;
    for (int i = 0; i < 500 && stat(pid_path, &st) != 0; i++)
        usleep(10000);
    ck_assert_int_eq(stat(pid_path, &st), 0);
    ck_assert_int_eq(stat(key_path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_int_ne(stat(pid_path, &st), 0);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("node");
    TCase *tc = tcase_create("node");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_examples_pass);
    tcase_add_test(tc, test_mistakes_exit_2);
    tcase_add_test(tc, test_unreadable_key_file);
    tcase_add_test(tc, test_start_and_sigterm);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? 1 : 0;
}
