/*  =========================================================================
    bly_bootstrap_actor - the bootstrap's zactor shell
    ========================================================================= */

#include "bly_bootstrap_actor.h"

#include "bly_bootstrap_core.h"
#include "bly_limits.h"
#include "bly_sock.h"

#include <inttypes.h>
#include <string.h>

typedef struct {
    zsock_t *pipe;                  //  Actor pipe.
    zsock_t *router;                //  CURVE ROUTER serving the mesh.
    zpoller_t *poller;              //  Pipe and router.
    bly_bootstrap_core_t *core;     //  The registry.
    uint64_t handled;               //  Requests answered or applied.
    uint64_t refused;               //  Requests answered with an error.
    uint64_t dropped;               //  Frames dropped without a reply.
    bly_ratelimit_t log_limit;      //  Refusal log lines.
    bool verbose;                   //  Trace every request.
    bool terminated;                //  Set by $TERM.
} s_bootstrap_t;

static int
s_config(const bly_actor_args_t *args, bly_bootstrap_config_t *config)
{
    bly_bootstrap_config_defaults(config);
    const bly_manifest_t *m = args->manifest;
    int s = args->section;
    config->heartbeat_ms = (uint32_t) bly_manifest_get_int(m, s, "heartbeat_ms", config->heartbeat_ms);
    config->expiry_ms = (uint32_t) bly_manifest_get_int(m, s, "expiry_ms", config->expiry_ms);
    config->max_peers = (uint32_t) bly_manifest_get_int(m, s, "max_peers", config->max_peers);
    config->timestamp_window_ms = (uint32_t) bly_manifest_get_int(m, s, "timestamp_window_ms",
                                                                  config->timestamp_window_ms);
    return 0;
}

static void
s_bootstrap_destroy(s_bootstrap_t **self_p)
{
    s_bootstrap_t *self = *self_p;
    if (!self)
        return;
    zpoller_destroy(&self->poller);
    zsock_destroy(&self->router);
    bly_bootstrap_core_destroy(&self->core);
    free(self);
    *self_p = NULL;
}

static s_bootstrap_t *
s_bootstrap_new(zsock_t *pipe, const bly_actor_args_t *args, char *err, size_t err_size)
{
    s_bootstrap_t *self = calloc(1, sizeof(*self));
    bly_assert(self);
    self->pipe = pipe;
    bly_bootstrap_config_t config;
    (void) s_config(args, &config);
    self->core = bly_bootstrap_core_new(&config);
    const char *endpoint = bly_manifest_get(args->manifest, args->section, "endpoint");
    if (!self->core) {
        snprintf(err, err_size, "bad bootstrap configuration");
    } else if (!endpoint) {
        snprintf(err, err_size, "no endpoint");
    } else {
        self->router = bly_sock_server(ZMQ_ROUTER, args->identity, "open", endpoint, err,
                                       err_size);
    }
    if (!self->router) {
        s_bootstrap_destroy(&self);
        return NULL;
    }
    self->poller = zpoller_new(pipe, self->router, NULL);
    bly_assert(self->poller);
    bly_log_notice("bootstrap: serving on %s (heartbeat %u ms, expiry %u ms, %u peers max)",
                   endpoint, config.heartbeat_ms, config.expiry_ms, config.max_peers);
    return self;
}

static void
s_handle_pipe(s_bootstrap_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pipe);
    char *command = msg ? zmsg_popstr(msg) : NULL;
    if (!command || streq(command, "$TERM")) {
        self->terminated = true;
    } else if (streq(command, "VERBOSE")) {
        self->verbose = true;
    } else if (streq(command, "STATS")) {
        zsock_send(self->pipe, "8888", (uint64_t) bly_bootstrap_core_peer_count(self->core),
                   self->handled, self->refused, self->dropped);
    } else {
        bly_log_warn("bootstrap: unknown pipe command %s", command);
    }
    zstr_free(&command);
    zmsg_destroy(&msg);
}

static void
s_log_refusal(s_bootstrap_t *self, const char *what, const char *reason)
{
    if (bly_ratelimit_allow(&self->log_limit, zclock_mono(), 10, 10000))
        bly_log_warn("bootstrap: refused %s: %s (%" PRIu64 " refused, %" PRIu64 " dropped)", what,
                     reason, self->refused, self->dropped);
}

//  A frame that did not decode: an error reply when we know who sent it.
static void
s_handle_bad(s_bootstrap_t *self, zframe_t **routing_id_p, const char *err)
{
    if (!*routing_id_p) {
        self->dropped++;
        s_log_refusal(self, "frames", err);
        return;
    }
    bly_bootstrap_msg_t *reply = bly_bootstrap_core_error(BLY_BOOTSTRAP_ERROR_BAD_MESSAGE, err);
    bly_bootstrap_msg_set_routing_id(reply, *routing_id_p);
    if (bly_bootstrap_msg_send(reply, self->router) != 0)
        self->dropped++;
    bly_bootstrap_msg_destroy(&reply);
    zframe_destroy(routing_id_p);
    self->refused++;
    s_log_refusal(self, "a message", err);
}

static void
s_log_change(s_bootstrap_t *self, const bly_bootstrap_msg_t *request,
             const bly_bootstrap_msg_t *reply)
{
    int id = bly_bootstrap_msg_id(request);
    if (id != BLY_BOOTSTRAP_MSG_REGISTER && id != BLY_BOOTSTRAP_MSG_LEAVE && !self->verbose)
        return;
    if (reply && bly_bootstrap_msg_id(reply) == BLY_BOOTSTRAP_MSG_ERROR)
        return;
    size_t size = 0;
    const uint8_t *node_id = bly_bootstrap_msg_node_id(request, &size);
    char hex[BLY_IDENTITY_HEX_SIZE] = "-";
    if (size == BLY_IDENTITY_PUBLIC_SIZE)
        bly_identity_id_to_hex(node_id, hex);
    if (id == BLY_BOOTSTRAP_MSG_REGISTER)
        bly_log_notice("bootstrap: register from node %s (id %.16s); %zu registered",
                       bly_bootstrap_msg_name(request), hex,
                       bly_bootstrap_core_peer_count(self->core));
    else
        bly_log_notice("bootstrap: %s from node id %.16s; %zu registered",
                       bly_bootstrap_msg_command(request), hex,
                       bly_bootstrap_core_peer_count(self->core));
}

//  Up to BLY_ACTOR_BATCH_MAX messages, then back to the poller.
static void
s_handle_router(s_bootstrap_t *self)
{
    for (int n = 0; n < BLY_ACTOR_BATCH_MAX && (zsock_events(self->router) & ZMQ_POLLIN); n++) {
        char err[256] = "";
        zframe_t *routing_id = NULL;
        bly_bootstrap_msg_t *request
            = bly_bootstrap_msg_recv_from(self->router, &routing_id, err, sizeof(err));
        if (!request) {
            s_handle_bad(self, &routing_id, err);
            continue;
        }
        zframe_destroy(&routing_id);
        bly_bootstrap_msg_t *reply
            = bly_bootstrap_core_handle(self->core, request, (uint64_t) zclock_time(),
                                        (uint64_t) zclock_mono());
        s_log_change(self, request, reply);
        if (reply && bly_bootstrap_msg_id(reply) == BLY_BOOTSTRAP_MSG_ERROR) {
            self->refused++;
            s_log_refusal(self, bly_bootstrap_msg_command(request), bly_bootstrap_msg_reason(reply));
        } else {
            self->handled++;
        }
        if (reply && bly_bootstrap_msg_send(reply, self->router) != 0)
            self->dropped++;
        bly_bootstrap_msg_destroy(&reply);
        bly_bootstrap_msg_destroy(&request);
    }
}

static void
s_tick(s_bootstrap_t *self)
{
    size_t before = bly_bootstrap_core_peer_count(self->core);
    size_t dropped = bly_bootstrap_core_tick(self->core, (uint64_t) zclock_mono());
    if (dropped)
        bly_log_notice("bootstrap: dropped %zu silent nodes; %zu of %zu remain", dropped,
                       before - dropped, before);
}

//  Poll timeout: until the next expiry, at most one second.
static int
s_wait_ms(s_bootstrap_t *self)
{
    uint64_t next = bly_bootstrap_core_next_expiry_ms(self->core);
    uint64_t now = (uint64_t) zclock_mono();
    if (next <= now)
        return 0;
    return next - now > 1000 ? 1000 : (int) (next - now);
}

void
bly_bootstrap_actor(zsock_t *pipe, void *args_ptr)
{
    bly_assert(pipe);
    bly_assert(args_ptr);
    const bly_actor_args_t *args = args_ptr;
    bly_log_set_actor("bootstrap");
    char err[512] = "";
    s_bootstrap_t *self = s_bootstrap_new(pipe, args, err, sizeof(err));
    if (!self) {
        bly_actor_fail(pipe, "%s", err);
        return;
    }
    bly_actor_ready(pipe);
    while (!self->terminated) {
        void *which = zpoller_wait(self->poller, s_wait_ms(self));
        if (which == pipe)
            s_handle_pipe(self);
        else if (which == self->router)
            s_handle_router(self);
        else if (zpoller_terminated(self->poller))
            break;
        s_tick(self);
    }
    s_bootstrap_destroy(&self);
}
