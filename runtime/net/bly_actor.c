/*  =========================================================================
    bly_actor - the actor shell conventions over CZMQ zactor
    ========================================================================= */

#include "bly_actor.h"

#include "bly_limits.h"

#include <stdarg.h>
#include <stdio.h>

void
bly_actor_ready(zsock_t *pipe)
{
    bly_assert(pipe);
    zsock_signal(pipe, 0);
    zstr_sendx(pipe, "READY", "", NULL);
}

void
bly_actor_fail(zsock_t *pipe, const char *format, ...)
{
    bly_assert(pipe);
    bly_assert(format);
    char reason[BLY_LOG_LINE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(reason, sizeof(reason), format, args);
    va_end(args);
    zsock_signal(pipe, 0);
    zstr_sendx(pipe, "FAILED", reason, NULL);
    //  Wait for $TERM so zactor_destroy finds us.
    bool verbose = false;
    while (!bly_actor_pipe_command(pipe, &verbose)) {
    }
}

zactor_t *
bly_actor_start(zactor_fn *entry, bly_actor_args_t *args, char *err, size_t err_size)
{
    bly_assert(entry);
    bly_assert(args);
    bly_assert(err);
    zactor_t *actor = zactor_new(entry, args);
    if (!actor) {
        snprintf(err, err_size, "cannot start actor %s", args->name);
        return NULL;
    }
    zsock_set_rcvtimeo(actor, BLY_ACTOR_START_TIMEOUT_MS);
    char *status = NULL, *reason = NULL;
    int rc = zstr_recvx(actor, &status, &reason, NULL);
    zsock_set_rcvtimeo(actor, -1);
    if (rc != 2 || !streq(status, "READY")) {
        snprintf(err, err_size, "actor %s failed to start: %s", args->name,
                 rc == 2 ? reason : "no report in time");
        zactor_destroy(&actor);
    }
    zstr_free(&status);
    zstr_free(&reason);
    return actor;
}

bool
bly_actor_pipe_command(zsock_t *pipe, bool *verbose)
{
    bly_assert(pipe);
    bly_assert(verbose);
    zmsg_t *msg = zmsg_recv(pipe);
    if (!msg)
        return true;
    char *command = zmsg_popstr(msg);
    bool stop = !command || streq(command, "$TERM");
    if (command && streq(command, "VERBOSE"))
        *verbose = true;
    zstr_free(&command);
    zmsg_destroy(&msg);
    return stop;
}

bly_model_t *
bly_actor_load_model(const bly_manifest_t *m, int section, char *err, size_t err_size)
{
    bly_assert(m);
    char path[BLY_PATH_MAX];
    if (bly_manifest_get_path(m, section, "model", path, sizeof(path)) != 0) {
        snprintf(err, err_size, "model path missing or too long");
        return NULL;
    }
    return bly_model_load(path, err, err_size);
}
