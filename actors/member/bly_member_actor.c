/*  =========================================================================
    bly_member_actor - joins the node to the mesh through its bootstrap
    ========================================================================= */

#include "bly_member_actor.h"

#include "bly_bootstrap_msg.h"
#include "bly_limits.h"
#include "bly_member_core.h"
#include "bly_node_status.h"
#include "bly_sock.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_LEAVE_LINGER_MS 500    //  How long a stopping node tries to deliver its leave.

typedef struct {
    zsock_t *pipe;                     //  Actor pipe.
    zsock_t *dealer;                   //  CURVE DEALER to the bootstrap.
    zpoller_t *poller;                 //  Pipe and dealer.
    const bly_identity_t *identity;    //  Node identity (borrowed).
    bly_member_core_t *core;           //  Timing and state.
    bly_bootstrap_msg_t *registration; //  Register template (signed per send).
    uint64_t refused;                  //  Error or unexpected replies.
    bly_ratelimit_t log_limit;         //  Refusal log lines.
    bool verbose;                      //  Trace every exchange.
    bool terminated;                   //  Set by $TERM.
    uint32_t manifest_speed;           //  speed_milli of the node section.
    uint32_t sent_speed;               //  Speed in the last register sent.
} s_member_t;

//  Fill the register template from the node section. Returns 0 or -1.
static int
s_build_registration(s_member_t *self, const bly_actor_args_t *args)
{
    const bly_manifest_t *m = args->manifest;
    bly_bootstrap_msg_t *msg = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_REGISTER);
    self->registration = msg;
    const char *name = bly_manifest_get(m, BLY_MANIFEST_NODE, "name");
    const char *model = bly_manifest_get(m, BLY_MANIFEST_NODE, "model");
    const char *device = bly_manifest_get(m, BLY_MANIFEST_NODE, "device");
    const char *endpoints = bly_manifest_get(m, BLY_MANIFEST_NODE, "endpoints");
    const char *stages = bly_manifest_get(m, BLY_MANIFEST_NODE, "stages");
    if (bly_bootstrap_msg_set_node_id(msg, bly_identity_public_key(self->identity), 32) != 0
        || bly_bootstrap_msg_set_name(msg, name ? name : "") != 0
        || bly_bootstrap_msg_set_model(msg, model ? model : "") != 0
        || bly_bootstrap_msg_set_device(msg, device ? device : "") != 0)
        return -1;
    if (endpoints) {
        char copy[BLY_MANIFEST_LINE_MAX];
        snprintf(copy, sizeof(copy), "%s", endpoints);
        char *save = NULL;
        for (char *e = strtok_r(copy, ", ", &save); e; e = strtok_r(NULL, ", ", &save))
            if (bly_bootstrap_msg_endpoints_append(msg, e) != 0)
                return -1;
    }
    for (size_t i = 0; i < bly_manifest_actor_count(m); i++)
        if (bly_bootstrap_msg_roles_append(msg, bly_manifest_actor_role(m, i)) != 0)
            return -1;
    if (stages) {
        const char *dash = strchr(stages, '-');
        bly_bootstrap_msg_set_stage_first(msg, (uint32_t) strtoul(stages, NULL, 10));
        bly_bootstrap_msg_set_stage_last(msg, dash ? (uint32_t) strtoul(dash + 1, NULL, 10) : 0);
    }
    self->manifest_speed = (uint32_t) bly_manifest_get_int(m, BLY_MANIFEST_NODE, "speed_milli",
                                                           1000);
    bly_bootstrap_msg_set_speed_milli(msg, self->manifest_speed);
    return 0;
}

static void
s_member_destroy(s_member_t **self_p)
{
    s_member_t *self = *self_p;
    if (!self)
        return;
    zpoller_destroy(&self->poller);
    zsock_destroy(&self->dealer);
    bly_bootstrap_msg_destroy(&self->registration);
    bly_member_core_destroy(&self->core);
    free(self);
    *self_p = NULL;
}

static s_member_t *
s_member_new(zsock_t *pipe, const bly_actor_args_t *args, char *err, size_t err_size)
{
    s_member_t *self = calloc(1, sizeof(*self));
    bly_assert(self);
    self->pipe = pipe;
    self->identity = args->identity;
    self->core = bly_member_core_new((uint64_t) zclock_time() * 1000);
    const char *endpoint = bly_manifest_get(args->manifest, BLY_MANIFEST_NODE, "bootstrap");
    const char *key_hex = bly_manifest_get(args->manifest, BLY_MANIFEST_NODE, "bootstrap_key");
    uint8_t key[BLY_IDENTITY_PUBLIC_SIZE];
    char server_z85[BLY_IDENTITY_Z85_SIZE];
    if (!self->core || !endpoint || !key_hex || bly_identity_id_from_hex(key_hex, key) != 0
        || bly_identity_curve_z85_from_id(key, server_z85) != 0) {
        snprintf(err, err_size, "bootstrap or bootstrap_key missing or unusable");
    } else if (s_build_registration(self, args) != 0) {
        snprintf(err, err_size, "node fields do not fit a registration");
    } else {
        self->dealer = bly_sock_client(ZMQ_DEALER, self->identity, server_z85, endpoint, err,
                                       err_size);
    }
    if (!self->dealer) {
        s_member_destroy(&self);
        return NULL;
    }
    self->poller = zpoller_new(pipe, self->dealer, NULL);
    bly_assert(self->poller);
    bly_log_notice("member: joining the mesh through %s (bootstrap %.16s...)", endpoint, key_hex);
    return self;
}

//  Stamp, sign and send a signed message. Returns 0 or -1.
static int
s_send_signed(s_member_t *self, bly_bootstrap_msg_t *msg)
{
    bly_bootstrap_msg_set_timestamp_ms(msg, (uint64_t) zclock_time());
    bly_bootstrap_msg_set_seq(msg, bly_member_core_next_seq(self->core));
    if (bly_bootstrap_msg_sign(msg, bly_identity_secret_key(self->identity)) != 0)
        return -1;
    return bly_bootstrap_msg_send(msg, self->dealer);
}

//  The speed to announce: the one a shard of this node measured, else the
//  manifest's.
static uint32_t
s_speed(const s_member_t *self, uint32_t *load_milli)
{
    uint32_t speed = 0, load = 0;
    if (!bly_node_status_get(bly_identity_public_key(self->identity), &speed, &load))
        speed = 0;
    *load_milli = load;
    return speed ? speed : self->manifest_speed;
}

//  A register, or a heartbeat with the current load. A registered node
//  whose measured speed moved by more than a quarter since its last
//  register registers again (the heartbeat carries no speed).
static int
s_send_action(s_member_t *self, bly_member_action_t action)
{
    uint32_t load = 0, speed = s_speed(self, &load);
    uint32_t low = self->sent_speed - self->sent_speed / 4;
    uint32_t high = self->sent_speed + self->sent_speed / 4;
    if (action == BLY_MEMBER_REGISTER || speed < low || speed > high) {
        bly_bootstrap_msg_set_speed_milli(self->registration, speed);
        self->sent_speed = speed;
        return s_send_signed(self, self->registration);
    }
    int rc = -1;
    bly_bootstrap_msg_t *beat = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_HEARTBEAT);
    bly_bootstrap_msg_set_load_milli(beat, load);
    if (bly_bootstrap_msg_set_node_id(beat, bly_identity_public_key(self->identity), 32) == 0)
        rc = s_send_signed(self, beat);
    bly_bootstrap_msg_destroy(&beat);
    return rc;
}

static void
s_send_due(s_member_t *self)
{
    //  At most two actions per wake-up (a fallback to register, then the send).
    for (int n = 0; n < 2; n++) {
        bly_member_action_t action = bly_member_core_tick(self->core, (uint64_t) zclock_time());
        if (action == BLY_MEMBER_NOTHING)
            return;
        int rc = s_send_action(self, action);
        if (rc != 0 && bly_ratelimit_allow(&self->log_limit, zclock_mono(), 5, 10000))
            bly_log_warn("member: cannot send a %s to the bootstrap (queue full or no peer)",
                         action == BLY_MEMBER_REGISTER ? "register" : "heartbeat");
    }
}

static void
s_handle_dealer(s_member_t *self)
{
    for (int n = 0; n < BLY_ACTOR_BATCH_MAX && (zsock_events(self->dealer) & ZMQ_POLLIN); n++) {
        char err[256] = "";
        bly_bootstrap_msg_t *reply = bly_bootstrap_msg_recv(self->dealer, err, sizeof(err));
        if (!reply) {
            self->refused++;
            if (bly_ratelimit_allow(&self->log_limit, zclock_mono(), 5, 10000))
                bly_log_warn("member: dropped a reply that did not decode: %s", err);
            continue;
        }
        bool was_registered = bly_member_core_registered(self->core);
        bly_member_core_handle(self->core, reply, (uint64_t) zclock_time());
        int id = bly_bootstrap_msg_id(reply);
        if (id == BLY_BOOTSTRAP_MSG_ERROR) {
            self->refused++;
            if (bly_ratelimit_allow(&self->log_limit, zclock_mono(), 5, 10000))
                bly_log_warn("member: bootstrap refused: %s (code %u)",
                             bly_bootstrap_msg_reason(reply), bly_bootstrap_msg_code(reply));
        } else if (id == BLY_BOOTSTRAP_MSG_REGISTER_OK && !was_registered) {
            bly_log_notice("member: registered (heartbeat %u ms, expiry %u ms)",
                           bly_bootstrap_msg_heartbeat_ms(reply), bly_bootstrap_msg_expiry_ms(reply));
        } else if (self->verbose) {
            bly_log_info("member: %s", bly_bootstrap_msg_command(reply));
        }
        bly_bootstrap_msg_destroy(&reply);
    }
}

static void
s_handle_pipe(s_member_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pipe);
    char *command = msg ? zmsg_popstr(msg) : NULL;
    if (!command || streq(command, "$TERM"))
        self->terminated = true;
    else if (streq(command, "VERBOSE"))
        self->verbose = true;
    else if (streq(command, "STATS"))
        zsock_send(self->pipe, "888", (uint64_t) bly_member_core_registered(self->core),
                   bly_member_core_registrations(self->core), self->refused);
    else
        bly_log_warn("member: unknown pipe command %s", command);
    zstr_free(&command);
    zmsg_destroy(&msg);
}

//  Say goodbye so the bootstrap drops us now rather than at expiry.
static void
s_leave(s_member_t *self)
{
    if (!bly_member_core_registered(self->core))
        return;
    bly_bootstrap_msg_t *leave = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_LEAVE);
    int rc = bly_bootstrap_msg_set_node_id(leave, bly_identity_public_key(self->identity), 32);
    if (rc == 0)
        rc = s_send_signed(self, leave);
    bly_bootstrap_msg_destroy(&leave);
    zsock_set_linger(self->dealer, S_LEAVE_LINGER_MS);
    bly_log_notice("member: %s", rc == 0 ? "sent leave" : "could not send leave");
}

static int
s_wait_ms(s_member_t *self)
{
    uint64_t next = bly_member_core_next_ms(self->core);
    uint64_t now = (uint64_t) zclock_time();
    if (next <= now)
        return 0;
    return next - now > 1000 ? 1000 : (int) (next - now);
}

void
bly_member_actor(zsock_t *pipe, void *args_ptr)
{
    bly_assert(pipe);
    bly_assert(args_ptr);
    const bly_actor_args_t *args = args_ptr;
    bly_log_set_actor("member");
    char err[512] = "";
    s_member_t *self = s_member_new(pipe, args, err, sizeof(err));
    if (!self) {
        bly_actor_fail(pipe, "%s", err);
        return;
    }
    bly_actor_ready(pipe);
    while (!self->terminated) {
        s_send_due(self);
        void *which = zpoller_wait(self->poller, s_wait_ms(self));
        if (which == pipe)
            s_handle_pipe(self);
        else if (which == self->dealer)
            s_handle_dealer(self);
        else if (zpoller_terminated(self->poller))
            break;
    }
    s_leave(self);
    s_member_destroy(&self);
}
