/*  =========================================================================
    blyan-node - run the actors a role manifest names

    blyan-node --manifest FILE [--check]

    --check validates the manifest (and the key file) and exits: 0 when it
    is good, 2 with "FILE:LINE: reason" lines on stderr when it is not.
    Without --check the node starts its actors in dependency order, writes
    its pid file (node.pid_file) once all are serving, and on SIGINT or
    SIGTERM stops them in reverse order, removes the pid file and exits 0.
    Exit 1: the node could not start.
    ========================================================================= */

#include "bly_limits.h"
#include "bly_log.h"
#include "bly_node.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
s_usage(void)
{
    fprintf(stderr, "usage: blyan-node --manifest FILE [--check]\n");
}

static int
s_write_pid_file(const char *path)
{
    char tmp[BLY_PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *file = fopen(tmp, "w");
    if (!file)
        return -1;
    int ok = fprintf(file, "%d\n", (int) getpid()) > 0;
    ok = (fclose(file) == 0) && ok;
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

//  Parse argv. Returns 0, or 2 for bad usage.
static int
s_parse_args(int argc, char **argv, const char **manifest, bool *check)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--manifest") == 0 && i + 1 < argc)
            *manifest = argv[++i];
        else if (strncmp(argv[i], "--manifest=", 11) == 0)
            *manifest = argv[i] + 11;
        else if (strcmp(argv[i], "--check") == 0)
            *check = true;
        else {
            fprintf(stderr, "blyan-node: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    return *manifest ? 0 : 2;
}

//  Start the node, wait for a signal, stop it. Returns the exit code.
static int
s_run(bly_manifest_t *manifest)
{
    char err[BLY_LOG_LINE_MAX] = "";
    char pid_file[BLY_PATH_MAX] = "";
    bool has_pid_file
        = bly_manifest_get_path(manifest, BLY_MANIFEST_NODE, "pid_file", pid_file,
                                sizeof(pid_file))
          == 0;
    char name[BLY_NAME_MAX];
    snprintf(name, sizeof(name), "%s", bly_manifest_get(manifest, BLY_MANIFEST_NODE, "name"));

    //  Block the stop signals in every thread (CZMQ's threads inherit the
    //  mask); this thread collects them with sigwait.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    bly_node_t *node = bly_node_new(&manifest, err, sizeof(err));
    if (!node) {
        bly_log_error("node: %s cannot start: %s", name, err);
        bly_manifest_destroy(&manifest);
        return 1;
    }
    if (bly_node_start(node, err, sizeof(err)) != 0) {
        bly_log_error("node: %s cannot start: %s", name, err);
        bly_node_destroy(&node);
        return 1;
    }
    if (has_pid_file && s_write_pid_file(pid_file) != 0)
        bly_log_warn("node: cannot write pid file %s: %s", pid_file, strerror(errno));
    bly_log_notice("node: %s (id %.16s...) serving with %zu actors, pid %d", name,
                   bly_identity_id_hex(bly_node_identity(node)), bly_node_actor_count(node),
                   (int) getpid());
    int signal_number = 0;
    sigwait(&stop, &signal_number);
    bly_log_notice("node: %s got %s, stopping", name, strsignal(signal_number));
    bly_node_destroy(&node);
    if (has_pid_file)
        unlink(pid_file);
    bly_log_notice("node: %s stopped", name);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *path = NULL;
    bool check = false;
    if (s_parse_args(argc, argv, &path, &check) != 0) {
        s_usage();
        return 2;
    }
    zsys_handler_set(NULL);    //  We handle SIGINT/SIGTERM ourselves (sigwait).
    char err[4096] = "";
    bly_manifest_t *manifest = bly_node_check(path, err, sizeof(err));
    if (!manifest) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (check) {
        printf("%s: ok\n", path);
        bly_manifest_destroy(&manifest);
        return 0;
    }
    bly_log_level_t level = BLY_LOG_NOTICE;
    const char *level_text = bly_manifest_get(manifest, BLY_MANIFEST_NODE, "log_level");
    if (level_text && bly_log_level_parse(level_text, &level) == 0)
        bly_log_set_level(level);
    bly_log_set_actor("main");
    return s_run(manifest);
}
