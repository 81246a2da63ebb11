/*  =========================================================================
    bly_shard_core - a layer-shard's sessions as a pure state machine

    Decides whether a forward step may run, on which session slot, and
    keeps each session's KV position, epoch and last step. No sockets, no
    clock, no model: the shell runs the stages on the slot's context and
    reports back. Rules for a step (router id R, session S, epoch E, step N,
    position P, n tokens):
      - stages outside the served range, n = 0, n > batch, P + n > n_ctx:
        refused (shape or limit);
      - unknown (R, S): P must be 0; a free slot is taken (a slot idle past
        idle_ms is reclaimed first), else refused as busy;
      - E below the session's epoch, or E equal and N not above its last
        step: stale or duplicate, dropped without a reply;
      - E above: a new path prefills from 0; P must be 0, the cache resets;
      - same E, later N: P must equal the session's position.
    Slots are numbered 0..sessions_max-1 so the shell can keep one model
    context per slot, allocated at start.
    ========================================================================= */

#ifndef BLY_SHARD_CORE_H_INCLUDED
#define BLY_SHARD_CORE_H_INCLUDED

#include "bly_log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  bly_shard_core_admit results besides a slot index (>= 0).
#define BLY_SHARD_DROP (-1)           //  Stale or duplicate: no reply.
#define BLY_SHARD_ERR_BUSY (-2)       //  No free slot.
#define BLY_SHARD_ERR_LIMIT (-3)      //  Over n_ctx.
#define BLY_SHARD_ERR_UNKNOWN (-7)    //  Unknown session and position not 0.
#define BLY_SHARD_ERR_SHAPE (-8)      //  Stages not served, or a bad token count.
#define BLY_SHARD_ERR_POSITION (-9)   //  Position does not follow the cache.

typedef struct {
    uint32_t stage_first;     //  Stages served, inclusive.
    uint32_t stage_last;
    size_t sessions_max;      //  Slots (<= BLY_SHARD_SESSIONS_MAX).
    uint32_t n_ctx;           //  KV positions per slot.
    uint32_t n_batch;         //  Tokens per step at most.
    uint32_t idle_ms;         //  A session idle this long may be reclaimed.
} bly_shard_config_t;

//  One step as the wire gives it: plain data.
typedef struct {
    const uint8_t *router;    //  32-byte router id.
    uint64_t session;
    uint32_t epoch, step, pos, n_tokens;
    uint32_t run_first, run_last;   //  Stages this hop must run.
} bly_shard_step_t;

typedef struct bly_shard_core_t bly_shard_core_t;

BLY_MUST_USE bly_shard_core_t *bly_shard_core_new(const bly_shard_config_t *config);
void bly_shard_core_destroy(bly_shard_core_t **self_p);

//  Admit a step at `now_ms`: a slot index, or one of the results above.
//  *reset is set when the slot's cache starts over (a new session or epoch).
BLY_MUST_USE int bly_shard_core_admit(bly_shard_core_t *self, const bly_shard_step_t *step,
                                      uint64_t now_ms, bool *reset);

//  The admitted step ran: the slot's position advances by n_tokens.
void bly_shard_core_ran(bly_shard_core_t *self, int slot, uint32_t n_tokens);

//  Drop a slot (its step failed, or the router closed it).
void bly_shard_core_drop(bly_shard_core_t *self, int slot);

//  The router closes (R, S); unknown pairs are ignored. Returns true when
//  a session was dropped.
bool bly_shard_core_close(bly_shard_core_t *self, const uint8_t *router, uint64_t session);

//  Sessions held.
size_t bly_shard_core_sessions(const bly_shard_core_t *self);

//  Drop sessions idle for idle_ms; returns how many.
size_t bly_shard_core_expire(bly_shard_core_t *self, uint64_t now_ms);

#endif
