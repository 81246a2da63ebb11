/*  =========================================================================
    bly_member_core - a node's side of the mesh join, as a pure state machine
    ========================================================================= */

#include "bly_member_core.h"

#include "bly_log.h"

#include <stdlib.h>

struct bly_member_core_t {
    bool registered;            //  register_ok seen, not forgotten since.
    uint64_t seq;               //  Last seq handed out.
    uint64_t next_ms;           //  When tick acts next.
    uint64_t retry_ms;          //  Current register backoff.
    uint64_t heartbeat_ms;      //  From register_ok.
    uint64_t expiry_ms;         //  From register_ok.
    uint64_t last_reply_ms;     //  Last reply of any kind while registered.
    bool started;               //  First tick seen.
    uint64_t registers_sent;    //  Counter.
    uint64_t registrations;     //  Counter.
};

bly_member_core_t *
bly_member_core_new(uint64_t first_seq)
{
    bly_member_core_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->seq = first_seq;
    self->retry_ms = BLY_MEMBER_RETRY_MS_MIN;
    return self;
}

void
bly_member_core_destroy(bly_member_core_t **self_p)
{
    bly_assert(self_p);
    free(*self_p);
    *self_p = NULL;
}

static void
s_unregister(bly_member_core_t *self, uint64_t now_ms)
{
    self->registered = false;
    self->retry_ms = BLY_MEMBER_RETRY_MS_MIN;
    self->next_ms = now_ms;
}

bly_member_action_t
bly_member_core_tick(bly_member_core_t *self, uint64_t now_ms)
{
    bly_assert(self);
    if (!self->started) {
        self->started = true;
        self->next_ms = now_ms;
    }
    if (self->registered && now_ms > self->last_reply_ms + self->expiry_ms)
        s_unregister(self, now_ms);    //  The bootstrap stopped answering.
    if (now_ms < self->next_ms)
        return BLY_MEMBER_NOTHING;
    if (self->registered) {
        self->next_ms = now_ms + self->heartbeat_ms;
        return BLY_MEMBER_HEARTBEAT;
    }
    self->next_ms = now_ms + self->retry_ms;
    self->retry_ms = self->retry_ms * 2 > BLY_MEMBER_RETRY_MS_MAX ? BLY_MEMBER_RETRY_MS_MAX
                                                                   : self->retry_ms * 2;
    self->registers_sent++;
    return BLY_MEMBER_REGISTER;
}

uint64_t
bly_member_core_next_seq(bly_member_core_t *self)
{
    bly_assert(self);
    return ++self->seq;
}

void
bly_member_core_handle(bly_member_core_t *self, const bly_bootstrap_msg_t *reply, uint64_t now_ms)
{
    bly_assert(self);
    bly_assert(reply);
    switch (bly_bootstrap_msg_id(reply)) {
    case BLY_BOOTSTRAP_MSG_REGISTER_OK: {
        uint64_t heartbeat = bly_bootstrap_msg_heartbeat_ms(reply);
        uint64_t expiry = bly_bootstrap_msg_expiry_ms(reply);
        //  Keep our own bounds whatever the bootstrap says.
        self->heartbeat_ms = heartbeat < 50 ? 50 : heartbeat > 600000 ? 600000 : heartbeat;
        self->expiry_ms = expiry < self->heartbeat_ms * 2 ? self->heartbeat_ms * 2 : expiry;
        self->registered = true;
        self->registrations++;
        self->last_reply_ms = now_ms;
        self->next_ms = now_ms + self->heartbeat_ms;
        break;
    }
    case BLY_BOOTSTRAP_MSG_HEARTBEAT_OK:
        if (self->registered)
            self->last_reply_ms = now_ms;
        break;
    case BLY_BOOTSTRAP_MSG_ERROR:
        //  Forgotten (or our seq fell behind): register again at once. While
        //  unregistered, refusals just wait for the backoff.
        if (self->registered
            && (bly_bootstrap_msg_code(reply) == BLY_BOOTSTRAP_ERROR_UNKNOWN_NODE
                || bly_bootstrap_msg_code(reply) == BLY_BOOTSTRAP_ERROR_REPLAY))
            s_unregister(self, now_ms);
        break;
    default:
        break;    //  Anything else is not for us; the shell counts it.
    }
}

bool
bly_member_core_registered(const bly_member_core_t *self)
{
    bly_assert(self);
    return self->registered;
}

uint64_t
bly_member_core_next_ms(const bly_member_core_t *self)
{
    bly_assert(self);
    if (self->registered && self->last_reply_ms + self->expiry_ms + 1 < self->next_ms)
        return self->last_reply_ms + self->expiry_ms + 1;
    return self->next_ms;
}

uint64_t
bly_member_core_registers_sent(const bly_member_core_t *self)
{
    bly_assert(self);
    return self->registers_sent;
}

uint64_t
bly_member_core_registrations(const bly_member_core_t *self)
{
    bly_assert(self);
    return self->registrations;
}
