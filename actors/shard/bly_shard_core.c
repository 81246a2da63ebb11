/*  =========================================================================
    bly_shard_core - a layer-shard's sessions as a pure state machine
    ========================================================================= */

#include "bly_shard_core.h"
#include "bly_limits.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    bool used;
    uint8_t router[32];       //  Router id.
    uint64_t session;         //  Its session id.
    uint32_t epoch;           //  Path generation the cache belongs to.
    uint32_t step;            //  Last step admitted.
    uint32_t pos;             //  Positions the cache holds.
    uint64_t last_ms;         //  Last step admitted at.
} s_slot_t;

struct bly_shard_core_t {
    bly_shard_config_t config;
    s_slot_t *slots;          //  sessions_max.
};

bly_shard_core_t *
bly_shard_core_new(const bly_shard_config_t *config)
{
    bly_assert(config);
    if (config->sessions_max == 0 || config->sessions_max > BLY_SHARD_SESSIONS_MAX
        || config->stage_first > config->stage_last || config->n_ctx == 0
        || config->n_batch == 0) {
        bly_log_error("shard: session configuration out of range");
        return NULL;
    }
    bly_shard_core_t *self = calloc(1, sizeof(*self));
    bly_assert(self);
    self->config = *config;
    self->slots = calloc(config->sessions_max, sizeof(*self->slots));
    bly_assert(self->slots);
    return self;
}

void
bly_shard_core_destroy(bly_shard_core_t **self_p)
{
    bly_assert(self_p);
    bly_shard_core_t *self = *self_p;
    if (!self)
        return;
    free(self->slots);
    free(self);
    *self_p = NULL;
}

static int
s_find(const bly_shard_core_t *self, const uint8_t *router, uint64_t session)
{
    for (size_t i = 0; i < self->config.sessions_max; i++) {
        const s_slot_t *s = &self->slots[i];
        if (s->used && s->session == session && memcmp(s->router, router, 32) == 0)
            return (int) i;
    }
    return -1;
}

//  A free slot, else the longest idle one past idle_ms, else -1.
static int
s_take(bly_shard_core_t *self, uint64_t now_ms)
{
    int idle = -1;
    for (size_t i = 0; i < self->config.sessions_max; i++) {
        const s_slot_t *s = &self->slots[i];
        if (!s->used)
            return (int) i;
        if (now_ms - s->last_ms >= self->config.idle_ms
            && (idle < 0 || s->last_ms < self->slots[idle].last_ms))
            idle = (int) i;
    }
    return idle;
}

static int
s_check_shape(const bly_shard_core_t *self, const bly_shard_step_t *st)
{
    const bly_shard_config_t *c = &self->config;
    if (st->run_first < c->stage_first || st->run_last > c->stage_last
        || st->run_first > st->run_last || st->n_tokens == 0 || st->n_tokens > c->n_batch)
        return BLY_SHARD_ERR_SHAPE;
    if ((uint64_t) st->pos + st->n_tokens > c->n_ctx)
        return BLY_SHARD_ERR_LIMIT;
    return 0;
}

int
bly_shard_core_admit(bly_shard_core_t *self, const bly_shard_step_t *st, uint64_t now_ms,
                     bool *reset)
{
    bly_assert(self);
    bly_assert(st && st->router && reset);
    *reset = false;
    int rc = s_check_shape(self, st);
    if (rc != 0)
        return rc;
    int slot = s_find(self, st->router, st->session);
    if (slot < 0) {
        if (st->pos != 0)
            return BLY_SHARD_ERR_UNKNOWN;
        slot = s_take(self, now_ms);
        if (slot < 0)
            return BLY_SHARD_ERR_BUSY;
        s_slot_t *s = &self->slots[slot];
        memset(s, 0, sizeof(*s));
        s->used = true;
        memcpy(s->router, st->router, 32);
        s->session = st->session;
        s->epoch = st->epoch;
        *reset = true;
    } else {
        s_slot_t *s = &self->slots[slot];
        if (st->epoch < s->epoch || (st->epoch == s->epoch && st->step <= s->step))
            return BLY_SHARD_DROP;
        if (st->epoch > s->epoch) {
            if (st->pos != 0)
                return BLY_SHARD_ERR_POSITION;
            s->epoch = st->epoch;
            s->pos = 0;
            *reset = true;
        } else if (st->pos != s->pos) {
            return BLY_SHARD_ERR_POSITION;
        }
    }
    self->slots[slot].step = st->step;
    self->slots[slot].last_ms = now_ms;
    return slot;
}

void
bly_shard_core_ran(bly_shard_core_t *self, int slot, uint32_t n_tokens)
{
    bly_assert(self);
    bly_assert(slot >= 0 && (size_t) slot < self->config.sessions_max);
    bly_assert(self->slots[slot].used);
    self->slots[slot].pos += n_tokens;
    bly_assert(self->slots[slot].pos <= self->config.n_ctx);
}

void
bly_shard_core_drop(bly_shard_core_t *self, int slot)
{
    bly_assert(self);
    bly_assert(slot >= 0 && (size_t) slot < self->config.sessions_max);
    self->slots[slot].used = false;
}

bool
bly_shard_core_close(bly_shard_core_t *self, const uint8_t *router, uint64_t session)
{
    bly_assert(self);
    bly_assert(router);
    int slot = s_find(self, router, session);
    if (slot < 0)
        return false;
    self->slots[slot].used = false;
    return true;
}

size_t
bly_shard_core_sessions(const bly_shard_core_t *self)
{
    bly_assert(self);
    size_t n = 0;
    for (size_t i = 0; i < self->config.sessions_max; i++)
        n += self->slots[i].used;
    return n;
}

size_t
bly_shard_core_expire(bly_shard_core_t *self, uint64_t now_ms)
{
    bly_assert(self);
    size_t n = 0;
    for (size_t i = 0; i < self->config.sessions_max; i++) {
        s_slot_t *s = &self->slots[i];
        if (s->used && now_ms - s->last_ms >= self->config.idle_ms) {
            s->used = false;
            n++;
        }
    }
    return n;
}
