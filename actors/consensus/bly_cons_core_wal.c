/*  =========================================================================
    bly_cons_core_wal - the consensus core's WAL records, crash recovery
    (block store and WAL replay, the signing guard), start and accessors
    ========================================================================= */

#include "bly_cons_core_int.h"

#include <stdlib.h>
#include <string.h>

static int s_wal_apply(bly_cons_core_t *self, const uint8_t *data, size_t size);

//  --------------------------------------------------------------------------
//  WAL records

static size_t
s_put_value(uint8_t *out, const s_value_t *value)
{
    bly_cons_put_u32(out, value->block_size);
    memcpy(out + 4, value->block, value->block_size);
    return 4 + (size_t) value->block_size;
}

//  Persist the replica state and the message about to be signed (`msg`,
//  may be empty). `sync` for records that must be durable before sending.
void
bly_cons_core_wal_state(bly_cons_core_t *self, const uint8_t *msg, size_t msg_size, bool sync)
{
    size_t cap = S_REC_HEADER + 2 * (4 + (size_t) self->cfg.block_size_max) + 2 +
                 (size_t) self->polka_count * BLY_CONS_VOTE_SIZE + 4 + msg_size;
    uint8_t *out = bly_cons_core_arena_take(self, cap);
    uint8_t flags = 0;
    if (self->locked.round >= 0)
        flags |= S_FLAG_LOCKED;
    if (self->valid.round >= 0)
        flags |= S_FLAG_VALID;
    if ((flags & S_FLAG_LOCKED) && (flags & S_FLAG_VALID) &&
        memcmp(self->locked.id, self->valid.id, BLY_CONS_ID_SIZE) == 0)
        flags |= S_FLAG_VALID_IS_LOCKED;
    out[0] = S_REC_STATE;
    bly_cons_put_u64(out + 1, self->height);
    bly_cons_put_u32(out + 9, (uint32_t) self->round);
    out[13] = self->step;
    bly_cons_put_u32(out + 14, (uint32_t) self->locked.round);
    bly_cons_put_u32(out + 18, (uint32_t) self->valid.round);
    out[22] = flags;
    size_t at = S_REC_HEADER;
    if (flags & S_FLAG_LOCKED)
        at += s_put_value(out + at, &self->locked);
    if ((flags & S_FLAG_VALID) && !(flags & S_FLAG_VALID_IS_LOCKED))
        at += s_put_value(out + at, &self->valid);
    uint16_t polka = (flags & S_FLAG_VALID) ? self->polka_count : 0;
    bly_cons_put_u16(out + at, polka);
    at += 2;
    for (uint16_t i = 0; i < polka; i++, at += BLY_CONS_VOTE_SIZE)
        bly_cons_vote_put(&self->polka[i], out + at);
    bly_cons_put_u32(out + at, (uint32_t) msg_size);
    at += 4;
    if (msg_size > 0)
        memcpy(out + at, msg, msg_size);
    at += msg_size;
    bly_cons_core_arena_trim(self, out, at);
    bly_cons_effect_t *fx = bly_cons_core_fx_add(self, BLY_CONS_FX_PERSIST);
    fx->data = out;
    fx->size = at;
    fx->sync = sync;
}

//  --------------------------------------------------------------------------
//  Start, replay and recovery

//  Put the replayed own messages of this round back into the vote sets.
static void
s_restore_own(bly_cons_core_t *self)
{
    for (uint16_t i = 0; i < self->polka_count && self->valid.round >= 0; i++) {
        if (self->polka[i].height != self->height || self->polka[i].round != self->valid.round)
            continue;
        int rc = bly_cons_core_vote_store(self, &self->polka[i], true);
        bly_assert(rc >= 0);
    }
    for (int t = BLY_CONS_PROPOSAL; t <= BLY_CONS_PRECOMMIT; t++) {
        const s_own_t *own = &self->own[t];
        bly_cons_msg_t msg;
        if (own->height != self->height || own->size == 0 ||
            bly_cons_msg_decode(&msg, own->data, own->size) != 0)
            continue;
        s_slot_t *slot = bly_cons_core_slot_get(self, msg.vote.round);
        if (!slot)
            continue;
        if (t == BLY_CONS_PROPOSAL) {
            memcpy(slot->block, msg.block, msg.block_size);
            slot->block_size = msg.block_size;
            slot->proposal = msg.vote;
            slot->has_proposal = true;
            slot->valid = -1;
        } else {
            int rc = bly_cons_core_vote_store(self, &msg.vote, true);
            bly_assert(rc >= 0);
        }
    }
}

//  Round 0 of the current height, or, when the WAL (or the guard record
//  kept across a wipe) holds state of this height, resume from it.
void
bly_cons_core_enter_height(bly_cons_core_t *self)
{
    if (self->guard && self->guard_height <= self->height) {
        if (!self->restored && self->guard_height == self->height &&
            s_wal_apply(self, self->guard, self->guard_size) != 0)
            bly_log_error("consensus: the signing guard record does not apply");
        free(self->guard);
        self->guard = NULL;
    }
    if (!self->restored) {
        bly_cons_core_start_round(self, 0);
        return;
    }
    self->restored = false;
    s_restore_own(self);
    if (self->step == BLY_CONS_STEP_PROPOSE)
        bly_cons_core_start_round(self, self->round);
    else if (self->step == BLY_CONS_STEP_PREVOTE)
        bly_cons_core_fx_timer(self, BLY_CONS_TIMER_PREVOTE, self->round,
                   bly_cons_core_timeout(self, self->cfg.timeout_prevote_ms, self->round));
    else
        bly_cons_core_fx_timer(self, BLY_CONS_TIMER_PRECOMMIT, self->round,
                   bly_cons_core_timeout(self, self->cfg.timeout_precommit_ms, self->round));
}

const bly_cons_effects_t *
bly_cons_core_start(bly_cons_core_t *self, int64_t now_ms)
{
    bly_assert(self);
    bly_assert(!self->started);
    bly_cons_core_fx_reset(self, now_ms);
    self->started = true;
    bly_cons_core_enter_height(self);
    bly_cons_core_fx_timer(self, BLY_CONS_TIMER_GOSSIP, self->round, self->cfg.gossip_ms);
    bly_cons_core_run_rules(self);
    return &self->fx;
}

int
bly_cons_core_replay_commit(bly_cons_core_t *self, const uint8_t *data, size_t size)
{
    bly_assert(self);
    bly_assert(!self->started);
    bly_cons_msg_t msg;
    if (bly_cons_msg_decode(&msg, data, size) != 0 || msg.type != BLY_CONS_COMMIT ||
        msg.vote.height != self->height)
        return -1;
    bly_cons_core_fx_reset(self, 0);
    return bly_cons_core_apply_commit(self, &msg);
}

static int
s_get_value(s_value_t *value, int32_t round, const uint8_t **at, const uint8_t *end,
            uint32_t size_max)
{
    if (end - *at < 4)
        return -1;
    uint32_t size = bly_cons_get_u32(*at);
    if (size > size_max || (size_t) (end - *at) < 4 + (size_t) size)
        return -1;
    value->round = round;
    value->block_size = size;
    memcpy(value->block, *at + 4, size);
    bly_cons_block_id(value->block, size, value->id);
    *at += 4 + size;
    return 0;
}

//  The signed message of a state record: it restores the double-sign guard
//  and the message to re-send.
static int
s_replay_signed(bly_cons_core_t *self, const uint8_t *data, size_t size)
{
    bly_cons_msg_t msg;
    if (bly_cons_msg_decode(&msg, data, size) != 0 || msg.type > BLY_CONS_PRECOMMIT ||
        msg.vote.validator != (uint16_t) self->cfg.self_index)
        return -1;
    uint8_t step = bly_cons_core_step_of(msg.type);
    if (bly_cons_core_may_sign(self, msg.vote.height, msg.vote.round, step)) {
        self->signed_height = msg.vote.height;
        self->signed_round = msg.vote.round;
        self->signed_step = step;
    }
    s_own_t *own = &self->own[msg.type];
    memcpy(own->data, data, size);
    own->size = size;
    own->height = msg.vote.height;
    own->round = msg.vote.round;
    return 0;
}

int
bly_cons_core_replay_wal(bly_cons_core_t *self, const uint8_t *data, size_t size)
{
    bly_assert(self);
    bly_assert(!self->started);
    return s_wal_apply(self, data, size);
}

static int
s_wal_apply(bly_cons_core_t *self, const uint8_t *data, size_t size)
{
    if (size < S_REC_HEADER || data[0] != S_REC_STATE)
        return -1;
    uint64_t height = bly_cons_get_u64(data + 1);
    int32_t round = (int32_t) bly_cons_get_u32(data + 9);
    uint8_t step = data[13];
    int32_t locked_round = (int32_t) bly_cons_get_u32(data + 14);
    int32_t valid_round = (int32_t) bly_cons_get_u32(data + 18);
    uint8_t flags = data[22];
    if (round < 0 || round > BLY_CONS_ROUND_MAX || step < BLY_CONS_STEP_PROPOSE ||
        step > BLY_CONS_STEP_PRECOMMIT || flags > 7 || locked_round < -1 || valid_round < -1)
        return -1;
    if (height < self->height)
        return 0;    //  An old height: its decision is in the block store.
    if (height > self->height)
        return -1;    //  Votes of a height whose predecessor was never stored.
    const uint8_t *at = data + S_REC_HEADER, *end = data + size;
    self->locked.round = -1;
    self->valid.round = -1;
    if ((flags & S_FLAG_LOCKED) &&
        s_get_value(&self->locked, locked_round, &at, end, self->cfg.block_size_max) != 0)
        return -1;
    if (flags & S_FLAG_VALID_IS_LOCKED) {
        memcpy(self->valid.block, self->locked.block, self->locked.block_size);
        self->valid.block_size = self->locked.block_size;
        memcpy(self->valid.id, self->locked.id, BLY_CONS_ID_SIZE);
        self->valid.round = valid_round;
    } else if ((flags & S_FLAG_VALID) &&
               s_get_value(&self->valid, valid_round, &at, end, self->cfg.block_size_max) != 0) {
        return -1;
    }
    if (end - at < 2)
        return -1;
    uint16_t polka = bly_cons_get_u16(at);
    at += 2;
    if (polka > self->cfg.validator_count || (size_t) (end - at) < (size_t) polka * BLY_CONS_VOTE_SIZE)
        return -1;
    for (uint16_t i = 0; i < polka; i++, at += BLY_CONS_VOTE_SIZE)
        if (bly_cons_vote_get(&self->polka[i], at) != 0 ||
            self->polka[i].type != BLY_CONS_PREVOTE)
            return -1;
    self->polka_count = polka;
    if (end - at < 4)
        return -1;
    uint32_t msg_size = bly_cons_get_u32(at);
    at += 4;
    if ((size_t) (end - at) != msg_size)
        return -1;
    if (msg_size > 0 && s_replay_signed(self, at, msg_size) != 0)
        return -1;
    self->round = round;
    self->step = step;
    self->restored = true;
    return 0;
}

int
bly_cons_core_replay_guard(bly_cons_core_t *self, const uint8_t *data, size_t size)
{
    bly_assert(self);
    bly_assert(!self->started);
    if (size < S_REC_HEADER + 4 || data[0] != S_REC_STATE)
        return -1;
    //  The signed message is the record's tail: [u32 size][message].
    bly_cons_msg_t msg;
    for (size_t msg_size = 2 + BLY_CONS_VOTE_SIZE; msg_size + 4 + S_REC_HEADER <= size;
         msg_size++) {
        const uint8_t *at = data + size - msg_size;
        if (bly_cons_get_u32(at - 4) != msg_size || bly_cons_msg_decode(&msg, at, msg_size) != 0)
            continue;
        if (msg.type > BLY_CONS_PRECOMMIT || msg.vote.validator != (uint16_t) self->cfg.self_index)
            return -1;
        uint8_t step = bly_cons_core_step_of(msg.type);
        if (bly_cons_core_may_sign(self, msg.vote.height, msg.vote.round, step)) {
            self->signed_height = msg.vote.height;
            self->signed_round = msg.vote.round;
            self->signed_step = step;
        }
        free(self->guard);
        self->guard = malloc(size);
        if (!self->guard)
            return -1;
        memcpy(self->guard, data, size);
        self->guard_size = size;
        self->guard_height = bly_cons_get_u64(data + 1);
        return 0;
    }
    return -1;
}

//  --------------------------------------------------------------------------
//  Accessors

uint64_t
bly_cons_core_height(const bly_cons_core_t *self)
{
    bly_assert(self);
    return self->height;
}

int32_t
bly_cons_core_round(const bly_cons_core_t *self)
{
    bly_assert(self);
    return self->round;
}

bly_cons_step_t
bly_cons_core_step(const bly_cons_core_t *self)
{
    bly_assert(self);
    return (bly_cons_step_t) self->step;
}

const uint8_t *
bly_cons_core_last_id(const bly_cons_core_t *self)
{
    bly_assert(self);
    return self->last_id;
}

const bly_cons_stats_t *
bly_cons_core_stats(const bly_cons_core_t *self)
{
    bly_assert(self);
    return &self->stats;
}

uint64_t
bly_cons_core_power(const bly_cons_core_t *self, uint32_t validator)
{
    bly_assert(self);
    return validator < self->cfg.validator_count ? self->powers[validator] : 0;
}

uint64_t
bly_cons_core_total_power(const bly_cons_core_t *self)
{
    bly_assert(self);
    return self->total_power;
}

uint32_t
bly_cons_core_evidence_pending(const bly_cons_core_t *self)
{
    bly_assert(self);
    return self->pool_count;
}

