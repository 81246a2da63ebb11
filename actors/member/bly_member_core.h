/*  =========================================================================
    bly_member_core - a node's side of the mesh join, as a pure state machine

    Decides when the member actor sends a register or a heartbeat, and reacts
    to the bootstrap's replies. No sockets, no clock: the shell passes the
    time and builds, signs and sends what tick() asks for.

    - Unregistered: send register now, then again after a backoff that
      doubles from BLY_MEMBER_RETRY_MS_MIN up to BLY_MEMBER_RETRY_MS_MAX.
    - register_ok: registered; heartbeat every heartbeat_ms it names.
    - error "unknown node" (the bootstrap restarted or dropped us): register
      again at once.
    - No reply at all for expiry_ms (the bootstrap is gone or lost our
      messages): fall back to registering.
    Sequence numbers start from the caller's `first_seq` (the shell uses the
    wall clock in microseconds, so they keep increasing across restarts).
    ========================================================================= */

#ifndef BLY_MEMBER_CORE_H_INCLUDED
#define BLY_MEMBER_CORE_H_INCLUDED

#include "bly_bootstrap_msg.h"

#include <stdbool.h>
#include <stdint.h>

#define BLY_MEMBER_RETRY_MS_MIN 100      //  First register retry.
#define BLY_MEMBER_RETRY_MS_MAX 5000     //  Backoff cap for register retries.

typedef enum {
    BLY_MEMBER_NOTHING = 0,     //  Nothing due.
    BLY_MEMBER_REGISTER = 1,    //  Send a register now.
    BLY_MEMBER_HEARTBEAT = 2,   //  Send a heartbeat now.
} bly_member_action_t;

typedef struct bly_member_core_t bly_member_core_t;

bly_member_core_t *bly_member_core_new(uint64_t first_seq);
void bly_member_core_destroy(bly_member_core_t **self_p);

//  What to send at `now_ms`; sets the next deadline. Call again until it
//  returns NOTHING or after bly_member_core_next_ms.
bly_member_action_t bly_member_core_tick(bly_member_core_t *self, uint64_t now_ms);

//  The seq for the message being built (each call returns a higher one).
uint64_t bly_member_core_next_seq(bly_member_core_t *self);

//  Apply a reply from the bootstrap at `now_ms`.
void bly_member_core_handle(bly_member_core_t *self, const bly_bootstrap_msg_t *reply,
                            uint64_t now_ms);

//  True once register_ok arrived (until the bootstrap forgets us).
bool bly_member_core_registered(const bly_member_core_t *self);

//  When tick wants to run next (ms, same clock as now_ms).
uint64_t bly_member_core_next_ms(const bly_member_core_t *self);

//  Registers sent, and times the node registered (register_ok received).
uint64_t bly_member_core_registers_sent(const bly_member_core_t *self);
uint64_t bly_member_core_registrations(const bly_member_core_t *self);

#endif
