/*  =========================================================================
    bly_cons_core - a pure Tendermint replica (Algorithm 1, arXiv 1807.04938)

    Comments of the form "L22" name the line of Algorithm 1 that a function
    implements. docs/CONSENSUS.md has the full mapping.
    ========================================================================= */

#include "bly_cons_core_int.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>


//  --------------------------------------------------------------------------
//  Quorums and the proposer

bool
bly_cons_is_quorum(uint64_t power, uint64_t total, bool broken)
{
    if (broken) {
        //  The deliberate bug: 2f where f = floor((total - 1) / 3).
        uint64_t f = (total - 1) / 3;
        return power >= 2 * f && power > 0;
    }
    return 3 * power > 2 * total;
}

bool
bly_cons_is_skip(uint64_t power, uint64_t total)
{
    return 3 * power > total;
}

//  One step of Tendermint's weighted round robin: every priority grows by
//  its power, the highest (lowest index on ties) is chosen and pays total.
//  A power-0 validator's priority stays 0 and the highest is above 0 (the
//  priorities sum to `total` > 0 after the growth), so it is never chosen.
static uint32_t
s_rr_step(const uint64_t *powers, uint32_t count, int64_t *prio, uint64_t total)
{
    uint32_t best = 0;
    for (uint32_t i = 0; i < count; i++) {
        prio[i] += (int64_t) powers[i];
        if (prio[i] > prio[best])
            best = i;
    }
    prio[best] -= (int64_t) total;
    return best;
}

static uint64_t
s_ceil_shift(uint64_t value, unsigned shift)
{
    if (shift == 0)
        return value;
    if (shift >= 64)
        return value > 0;
    return (value >> shift) + ((value & ((1ull << shift) - 1)) != 0);
}

uint64_t
bly_cons_powers_scale(const uint64_t *stakes, uint32_t count, uint64_t *powers)
{
    bly_assert(stakes && powers);
    bly_assert(count <= BLY_CONS_VALIDATORS_MAX);
    uint64_t max = 0;
    for (uint32_t i = 0; i < count; i++)
        max = stakes[i] > max ? stakes[i] : max;
    unsigned shift = 0;
    while (s_ceil_shift(max, shift) > BLY_CONS_POWER_MAX)
        shift++;    //  At most 64 - 10 steps: ceil(2^64 / 2^54) = 1024.
    uint64_t total = 0;
    for (uint32_t i = 0; i < count; i++) {
        powers[i] = s_ceil_shift(stakes[i], shift);
        total += powers[i];
    }
    return total;
}

static uint64_t
s_sum(const uint64_t *powers, uint32_t count)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < count; i++)
        total += powers[i];
    return total;
}

uint32_t
bly_cons_proposer(const uint64_t *powers, uint32_t count, uint64_t height, int32_t round)
{
    bly_assert(powers);
    bly_assert(count > 0 && count <= BLY_CONS_VALIDATORS_MAX);
    bly_assert(round >= 0);
    for (uint32_t i = 0; i < count; i++)
        bly_assert(powers[i] <= BLY_CONS_POWER_MAX);
    //  The sequence is periodic with period total power (smooth weighted
    //  round robin returns every priority to zero after `total` steps).
    uint64_t total = s_sum(powers, count);
    bly_assert(total > 0);
    uint64_t steps = (height + (uint64_t) round) % total;
    int64_t prio[BLY_CONS_VALIDATORS_MAX] = {0};
    uint32_t chosen = 0;
    for (uint64_t k = 0; k <= steps; k++)
        chosen = s_rr_step(powers, count, prio, total);
    return chosen;
}

//  Same as bly_cons_proposer for the current height's powers, with a
//  checkpoint at the start of the height (reset when the powers change).
static uint32_t
s_proposer(bly_cons_core_t *self, uint64_t height, int32_t round)
{
    uint32_t n = self->cfg.validator_count;
    uint64_t base = height % self->total_power;
    if (self->pp_pos > base) {
        self->pp_pos = 0;
        memset(self->pp_prio, 0, sizeof(self->pp_prio));
    }
    //  pp_prio holds the priorities after pp_pos steps (positions 0..pp_pos-1).
    while (self->pp_pos < base) {
        s_rr_step(self->powers, n, self->pp_prio, self->total_power);
        self->pp_pos++;
    }
    int64_t prio[BLY_CONS_VALIDATORS_MAX];
    memcpy(prio, self->pp_prio, sizeof(prio));
    uint64_t extra = (uint64_t) round % self->total_power;
    uint64_t pos = base;
    uint32_t chosen = 0;
    for (uint64_t k = 0; k <= extra; k++, pos++) {
        if (pos == self->total_power) {
            pos = 0;
            memset(prio, 0, sizeof(prio));
        }
        chosen = s_rr_step(self->powers, n, prio, self->total_power);
    }
    return chosen;
}

//  The voting powers of the next height from the application's stakes.
//  Stakes that leave no power at all are refused: the genesis powers apply
//  instead. That depends on the stakes only, not on earlier heights, so
//  every replica, a restarted one included, computes the same.
void
bly_cons_core_powers_set(bly_cons_core_t *self, const uint64_t *stakes)
{
    uint64_t powers[BLY_CONS_VALIDATORS_MAX] = {0};
    uint32_t n = self->cfg.validator_count;
    uint64_t total = bly_cons_powers_scale(stakes, n, powers);
    if (total == 0) {
        if (bly_ratelimit_allow(&self->log_limit, self->now_ms, 5, 1000))
            bly_log_warn("consensus: no validator has stake after height %llu; the genesis "
                         "powers apply", (unsigned long long) self->height);
        total = bly_cons_powers_scale(self->cfg.powers, n, powers);
        bly_assert(total > 0);    //  Checked by bly_cons_core_new.
    }
    if (total == self->total_power && memcmp(powers, self->powers, n * sizeof(uint64_t)) == 0)
        return;
    memcpy(self->powers, powers, sizeof(powers));
    self->total_power = total;
    self->pp_pos = 0;
    memset(self->pp_prio, 0, sizeof(self->pp_prio));
}

//  --------------------------------------------------------------------------
//  Construction

static int
s_config_check(const bly_cons_config_t *cfg)
{
    if (cfg->validator_count == 0 || cfg->validator_count > BLY_CONS_VALIDATORS_MAX)
        return -1;
    if (cfg->self_index < -1 || cfg->self_index >= (int32_t) cfg->validator_count)
        return -1;
    if (cfg->block_size_max < BLY_CONS_BLOCK_HEADER_SIZE + 4 ||
        cfg->block_size_max > BLY_CONS_BLOCK_SIZE_MAX)
        return -1;
    if (strnlen(cfg->chain_id, sizeof(cfg->chain_id)) > BLY_CONS_CHAIN_ID_MAX)
        return -1;
    for (uint32_t i = 0; i < cfg->validator_count; i++)
        if (cfg->powers[i] == 0)
            return -1;
    if (cfg->timeout_propose_ms <= 0 || cfg->timeout_prevote_ms <= 0 ||
        cfg->timeout_precommit_ms <= 0 || cfg->timeout_delta_ms < 0 || cfg->gossip_ms <= 0 ||
        cfg->timeout_commit_ms < 0 || cfg->timeout_idle_ms < 0)
        return -1;
    return 0;
}

static int
s_slots_alloc(bly_cons_core_t *self)
{
    uint32_t n = self->cfg.validator_count;
    for (int i = 0; i < BLY_CONS_ROUND_SLOTS; i++) {
        s_slot_t *slot = &self->slots[i];
        slot->round = -1;
        slot->block = malloc(self->cfg.block_size_max);
        slot->prevotes = calloc(n, sizeof(*slot->prevotes));
        slot->precommits = calloc(n, sizeof(*slot->precommits));
        slot->has_prevote = calloc(n, sizeof(bool));
        slot->has_precommit = calloc(n, sizeof(bool));
        if (!slot->block || !slot->prevotes || !slot->precommits || !slot->has_prevote ||
            !slot->has_precommit)
            return -1;
    }
    return 0;
}

bly_cons_core_t *
bly_cons_core_new(const bly_cons_config_t *config, const uint8_t *seckey, bly_cons_app_t app)
{
    bly_assert(config);
    bly_assert(app.build && app.check && app.apply && app.hash && app.load_commit);
    if (s_config_check(config) != 0)
        return NULL;
    if (config->self_index >= 0 && !seckey)
        return NULL;
    bly_cons_core_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->cfg = *config;
    self->app = app;
    bly_cons_core_powers_set(self, config->powers);
    //  Arena: a proposal, a commit, WAL records with two values, a sync batch.
    self->arena_size = (size_t) (BLY_CONS_SYNC_BATCH_MAX + 6) *
                       ((size_t) config->block_size_max + 4096 +
                        BLY_CONS_VALIDATORS_MAX * BLY_CONS_CERT_ENTRY_SIZE);
    self->arena = malloc(self->arena_size);
    self->locked.block = malloc(config->block_size_max);
    self->valid.block = malloc(config->block_size_max);
    self->seen = calloc(BLY_CONS_EVIDENCE_SEEN_MAX, sizeof(*self->seen));
    self->polka = calloc(config->validator_count, sizeof(*self->polka));
    bool ok = self->arena && self->locked.block && self->valid.block && self->seen && self->polka;
    for (int t = BLY_CONS_PROPOSAL; ok && t <= BLY_CONS_PRECOMMIT; t++) {
        self->own[t].data = malloc(t == BLY_CONS_PROPOSAL ? BLY_CONS_MSG_SIZE_MAX : S_VOTE_MSG_SIZE);
        ok = self->own[t].data != NULL;
    }
    if (!ok || s_slots_alloc(self) != 0) {
        bly_cons_core_destroy(&self);
        return NULL;
    }
    if (seckey) {
        self->seckey = sodium_malloc(BLY_CONS_SECKEY_SIZE);
        if (!self->seckey) {
            bly_cons_core_destroy(&self);
            return NULL;
        }
        memcpy(self->seckey, seckey, BLY_CONS_SECKEY_SIZE);
    }
    self->height = 1;
    self->round = 0;
    self->step = BLY_CONS_STEP_PROPOSE;
    self->locked.round = -1;
    self->valid.round = -1;
    self->signed_round = -1;
    app.hash(app.self, self->app_hash);
    return self;
}

void
bly_cons_core_destroy(bly_cons_core_t **self_p)
{
    bly_assert(self_p);
    bly_cons_core_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < BLY_CONS_ROUND_SLOTS; i++) {
        free(self->slots[i].block);
        free(self->slots[i].prevotes);
        free(self->slots[i].precommits);
        free(self->slots[i].has_prevote);
        free(self->slots[i].has_precommit);
    }
    for (int t = 0; t < 4; t++)
        free(self->own[t].data);
    if (self->seckey)
        sodium_free(self->seckey);
    free(self->seen);
    free(self->guard);
    free(self->polka);
    free(self->valid.block);
    free(self->locked.block);
    free(self->arena);
    free(self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Effects

void
bly_cons_core_fx_reset(bly_cons_core_t *self, int64_t now_ms)
{
    self->fx.count = 0;
    self->arena_used = 0;
    self->now_ms = now_ms;
}

bly_cons_effect_t *
bly_cons_core_fx_add(bly_cons_core_t *self, uint8_t kind)
{
    //  The bound is structural: one call emits a handful of effects.
    bly_assert(self->fx.count < BLY_CONS_EFFECTS_MAX);
    bly_cons_effect_t *fx = &self->fx.items[self->fx.count++];
    memset(fx, 0, sizeof(*fx));
    fx->kind = kind;
    fx->peer = -1;
    return fx;
}

uint8_t *
bly_cons_core_arena_take(bly_cons_core_t *self, size_t size)
{
    bly_assert(self->arena_used + size <= self->arena_size);
    uint8_t *at = self->arena + self->arena_used;
    self->arena_used += size;
    return at;
}

//  Give back the unused tail of the last take.
void
bly_cons_core_arena_trim(bly_cons_core_t *self, uint8_t *at, size_t used)
{
    bly_assert(at >= self->arena);
    self->arena_used = (size_t) (at - self->arena) + used;
}

static void
s_fx_data(bly_cons_core_t *self, uint8_t kind, int32_t peer, const uint8_t *data, size_t size)
{
    bly_cons_effect_t *fx = bly_cons_core_fx_add(self, kind);
    fx->peer = peer;
    fx->data = data;
    fx->size = size;
}

void
bly_cons_core_fx_timer(bly_cons_core_t *self, uint8_t kind, int32_t round, int64_t delay_ms)
{
    bly_cons_effect_t *fx = bly_cons_core_fx_add(self, BLY_CONS_FX_TIMER);
    fx->timer.kind = kind;
    fx->timer.height = self->height;
    fx->timer.round = round;
    fx->delay_ms = delay_ms;
}

int64_t
bly_cons_core_timeout(const bly_cons_core_t *self, int64_t base_ms, int32_t round)
{
    return base_ms + (int64_t) round * self->cfg.timeout_delta_ms;
}


//  --------------------------------------------------------------------------
//  Round slots and vote sets

static void
s_slot_clear(bly_cons_core_t *self, s_slot_t *slot, int32_t round)
{
    uint32_t n = self->cfg.validator_count;
    slot->round = round;
    slot->has_proposal = false;
    slot->block_size = 0;
    slot->valid = -1;
    memset(slot->has_prevote, 0, n * sizeof(bool));
    memset(slot->has_precommit, 0, n * sizeof(bool));
    slot->fired_l34 = slot->fired_l36 = slot->fired_l47 = false;
}

static s_slot_t *
s_slot_find(bly_cons_core_t *self, int32_t round)
{
    for (int i = 0; i < BLY_CONS_ROUND_SLOTS; i++)
        if (self->slots[i].round == round && round >= 0)
            return &self->slots[i];
    return NULL;
}

//  The POL round of the current round's proposal: L28 needs its prevotes.
static int32_t
s_wanted_round(bly_cons_core_t *self)
{
    s_slot_t *cur = s_slot_find(self, self->round);
    return cur && cur->has_proposal ? cur->proposal.pol_round : -1;
}

static bool
s_slot_pinned(const bly_cons_core_t *self, int32_t round, int32_t wanted)
{
    return round == self->round || round == self->locked.round || round == self->valid.round ||
           round == wanted;
}

//  The slot for `round`, recycling one when all are taken: first the oldest
//  past round that is not pinned, else the highest future round above
//  `round`. The POL round of the current proposal may take any unpinned
//  slot. NULL when `round` is not worth a slot.
s_slot_t *
bly_cons_core_slot_get(bly_cons_core_t *self, int32_t round)
{
    s_slot_t *slot = s_slot_find(self, round);
    if (slot)
        return slot;
    int32_t wanted = s_wanted_round(self);
    s_slot_t *past = NULL, *future = NULL;
    for (int i = 0; i < BLY_CONS_ROUND_SLOTS; i++) {
        s_slot_t *s = &self->slots[i];
        if (s->round < 0) {
            s_slot_clear(self, s, round);
            return s;
        }
        if (s_slot_pinned(self, s->round, wanted))
            continue;
        if (s->round < self->round && (!past || s->round < past->round))
            past = s;
        if (s->round > self->round && (!future || s->round > future->round))
            future = s;
    }
    bool want = round == wanted || round == self->round;
    if (past && (want || round > past->round || round > self->round))
        slot = past;
    else if (future && (want || round < future->round))
        slot = future;
    if (slot)
        s_slot_clear(self, slot, round);
    return slot;
}

static void
s_slots_reset(bly_cons_core_t *self)
{
    for (int i = 0; i < BLY_CONS_ROUND_SLOTS; i++)
        self->slots[i].round = -1;
}

static bool
s_vote_same(const bly_cons_vote_t *a, const bly_cons_vote_t *b)
{
    if (a->has_id != b->has_id)
        return false;
    return !a->has_id || memcmp(a->id, b->id, BLY_CONS_ID_SIZE) == 0;
}

//  Voting power of `type` votes in `slot`: all of them (`any`), nil votes
//  (`id` NULL) or votes for `id`.
static uint64_t
s_power(const bly_cons_core_t *self, const s_slot_t *slot, uint8_t type, bool any,
        const uint8_t *id)
{
    const bool *has = type == BLY_CONS_PREVOTE ? slot->has_prevote : slot->has_precommit;
    const bly_cons_vote_t *votes = type == BLY_CONS_PREVOTE ? slot->prevotes : slot->precommits;
    uint64_t power = 0;
    for (uint32_t i = 0; i < self->cfg.validator_count; i++) {
        if (!has[i])
            continue;
        bool match = any || (id ? votes[i].has_id && memcmp(votes[i].id, id, BLY_CONS_ID_SIZE) == 0
                                : !votes[i].has_id);
        if (match)
            power += self->powers[i];
    }
    return power;
}

static bool
s_quorum(const bly_cons_core_t *self, uint64_t power)
{
    return bly_cons_is_quorum(power, self->total_power, self->cfg.quorum_broken);
}

//  --------------------------------------------------------------------------
//  Evidence

static bool
s_ev_seen(const bly_cons_core_t *self, const bly_cons_vote_t *v)
{
    for (uint32_t i = 0; i < self->seen_count; i++) {
        const s_ev_key_t *k = &self->seen[i];
        if (k->height == v->height && k->round == v->round && k->validator == v->validator &&
            k->type == v->type)
            return true;
    }
    return false;
}

static void
s_ev_mark_seen(bly_cons_core_t *self, const bly_cons_vote_t *v)
{
    if (s_ev_seen(self, v))
        return;
    s_ev_key_t *k = &self->seen[self->seen_next];
    k->height = v->height;
    k->round = v->round;
    k->validator = v->validator;
    k->type = v->type;
    self->seen_next = (self->seen_next + 1) % BLY_CONS_EVIDENCE_SEEN_MAX;
    if (self->seen_count < BLY_CONS_EVIDENCE_SEEN_MAX)
        self->seen_count++;
}

//  True when a and b prove that one validator equivocated, both signatures
//  included.
static bool
s_ev_valid(const bly_cons_core_t *self, const bly_cons_vote_t *a, const bly_cons_vote_t *b)
{
    if (a->type != b->type || a->type == BLY_CONS_PROPOSAL || a->height != b->height ||
        a->round != b->round || a->validator != b->validator)
        return false;
    if (a->validator >= self->cfg.validator_count || s_vote_same(a, b))
        return false;
    const uint8_t *key = self->cfg.pubkeys[a->validator];
    return bly_cons_vote_verify_cached(self->cfg.sigcache, a, self->cfg.chain_id, key) &&
           bly_cons_vote_verify_cached(self->cfg.sigcache, b, self->cfg.chain_id, key);
}

static bool
s_ev_pending(const bly_cons_core_t *self, const bly_cons_vote_t *v)
{
    for (uint32_t i = 0; i < self->pool_count; i++) {
        const bly_cons_vote_t *p = &self->pool[i].a;
        if (p->height == v->height && p->round == v->round && p->validator == v->validator &&
            p->type == v->type)
            return true;
    }
    return false;
}

//  True when exactly this pair is in the pool (its signatures were checked).
static bool
s_ev_in_pool(const bly_cons_core_t *self, const bly_cons_vote_t *a, const bly_cons_vote_t *b)
{
    for (uint32_t i = 0; i < self->pool_count; i++) {
        const s_evidence_t *e = &self->pool[i];
        if (memcmp(&e->a, a, sizeof(*a)) == 0 && memcmp(&e->b, b, sizeof(*b)) == 0)
            return true;
    }
    return false;
}

//  Add checked evidence to the pool and gossip it (item 4 of the issue).
static void
s_ev_add(bly_cons_core_t *self, const bly_cons_vote_t *a, const bly_cons_vote_t *b)
{
    if (s_ev_seen(self, a) || s_ev_pending(self, a) || self->powers[a->validator] == 0)
        return;    //  Known, or against a validator without power (nothing to punish).
    if (self->pool_count == BLY_CONS_EVIDENCE_POOL_MAX) {
        if (bly_ratelimit_allow(&self->log_limit, self->now_ms, 5, 1000))
            bly_log_warn("consensus: evidence pool full, dropping evidence against %u",
                         (unsigned) a->validator);
        return;
    }
    self->pool[self->pool_count].a = *a;
    self->pool[self->pool_count].b = *b;
    self->pool_count++;
    self->stats.equivocations++;
    bly_cons_msg_t msg = {.type = BLY_CONS_EVIDENCE, .ev = {*a, *b}};
    uint8_t *out = bly_cons_core_arena_take(self, 2 + 2 * BLY_CONS_VOTE_SIZE);
    size_t size = bly_cons_msg_encode(&msg, out, 2 + 2 * BLY_CONS_VOTE_SIZE);
    bly_assert(size > 0);
    s_fx_data(self, BLY_CONS_FX_BROADCAST, -1, out, size);
}

//  Store a vote of the current height. `trusted` skips the signature check
//  (own votes). Returns 1 when new, 0 when known or useless, -1 when bad.
int
bly_cons_core_vote_store(bly_cons_core_t *self, const bly_cons_vote_t *vote, bool trusted)
{
    if (vote->validator >= self->cfg.validator_count)
        return -1;
    if (self->powers[vote->validator] == 0 && !trusted)
        return 0;    //  Counts for nothing at this height: no slot, no check, no evidence.
    s_slot_t *slot = bly_cons_core_slot_get(self, vote->round);
    if (!slot)
        return 0;
    bool *has = vote->type == BLY_CONS_PREVOTE ? slot->has_prevote : slot->has_precommit;
    bly_cons_vote_t *held =
        &(vote->type == BLY_CONS_PREVOTE ? slot->prevotes : slot->precommits)[vote->validator];
    if (has[vote->validator] && s_vote_same(held, vote))
        return 0;    //  A repeat (Ed25519 signatures are deterministic).
    if (!trusted && !bly_cons_vote_verify_cached(self->cfg.sigcache, vote, self->cfg.chain_id,
                                          self->cfg.pubkeys[vote->validator]))
        return -1;
    if (has[vote->validator]) {
        if (!s_vote_same(held, vote))
            s_ev_add(self, held, vote);
        return 0;    //  The first vote counts; the second is only evidence.
    }
    *held = *vote;
    has[vote->validator] = true;
    return 1;
}

//  --------------------------------------------------------------------------
//  valid(v): a block that follows our last decision and whose evidence and
//  payload check out.

static int
s_block_check(bly_cons_core_t *self, const uint8_t *block, uint32_t size)
{
    bly_cons_block_t hdr;
    if (size > self->cfg.block_size_max || bly_cons_block_decode(&hdr, block, size) != 0)
        return -2;
    if (hdr.height != self->height || memcmp(hdr.prev_id, self->last_id, BLY_CONS_ID_SIZE) != 0 ||
        memcmp(hdr.app_hash, self->app_hash, BLY_CONS_ID_SIZE) != 0)
        return -3;
    for (uint32_t i = 0; i < hdr.evidence_count; i++) {
        bly_cons_vote_t a, b;
        const uint8_t *at = hdr.evidence + (size_t) i * 2 * BLY_CONS_VOTE_SIZE;
        if (bly_cons_vote_get(&a, at) != 0 || bly_cons_vote_get(&b, at + BLY_CONS_VOTE_SIZE) != 0)
            return -4;
        if (a.height > self->height || s_ev_seen(self, &a) ||
            (a.validator < self->cfg.validator_count && self->powers[a.validator] == 0) ||
            (!s_ev_in_pool(self, &a, &b) && !s_ev_valid(self, &a, &b)))
            return -5;    //  Bad, known, or against a validator without power now.
        for (uint32_t j = 0; j < i; j++) {
            bly_cons_vote_t c;
            if (bly_cons_vote_get(&c, hdr.evidence + (size_t) j * 2 * BLY_CONS_VOTE_SIZE) != 0)
                return -6;
            if (c.height == a.height && c.round == a.round && c.validator == a.validator &&
                c.type == a.type)
                return -7;    //  The same offence twice.
        }
    }
    return self->app.check(self->app.self, hdr.height, hdr.payload, hdr.payload_size);
}

static bool
s_slot_valid(bly_cons_core_t *self, s_slot_t *slot)
{
    bly_assert(slot->has_proposal);
    if (slot->valid < 0) {
        int rc = s_block_check(self, slot->block, slot->block_size);
        slot->valid = rc == 0 ? 1 : 0;
        if (rc != 0)
            bly_log_debug("consensus: replica %d finds the proposal of round %d invalid (%d)",
                          self->cfg.self_index, slot->round, rc);
    }
    return slot->valid == 1;
}

//  getValue(): a fresh block from the application and the evidence pool.
static uint32_t
s_block_build(bly_cons_core_t *self, uint8_t *out)
{
    uint32_t ev_count = self->pool_count < BLY_CONS_BLOCK_EVIDENCE_MAX ? self->pool_count
                                                                      : BLY_CONS_BLOCK_EVIDENCE_MAX;
    size_t ev_bytes = (size_t) ev_count * 2 * BLY_CONS_VOTE_SIZE;
    uint8_t *ev = bly_cons_core_arena_take(self, ev_bytes + 1);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < ev_count; i++) {
        if (self->pool[i].a.height > self->height)
            continue;
        bly_cons_vote_put(&self->pool[i].a, ev + (size_t) kept * 2 * BLY_CONS_VOTE_SIZE);
        bly_cons_vote_put(&self->pool[i].b, ev + ((size_t) kept * 2 + 1) * BLY_CONS_VOTE_SIZE);
        kept++;
    }
    size_t fixed = BLY_CONS_BLOCK_HEADER_SIZE + (size_t) kept * 2 * BLY_CONS_VOTE_SIZE + 4;
    bly_assert(fixed <= self->cfg.block_size_max);
    uint8_t *payload = bly_cons_core_arena_take(self, self->cfg.block_size_max - fixed + 1);
    uint32_t payload_size = self->app.build(self->app.self, self->height, payload,
                                            (uint32_t) (self->cfg.block_size_max - fixed));
    bly_assert(payload_size <= self->cfg.block_size_max - fixed);
    bly_cons_block_t hdr = {.height = self->height,
                            .time_ms = (uint64_t) (self->now_ms < 0 ? 0 : self->now_ms),
                            .evidence_count = (uint16_t) kept,
                            .evidence = ev,
                            .payload = payload,
                            .payload_size = payload_size};
    memcpy(hdr.prev_id, self->last_id, BLY_CONS_ID_SIZE);
    memcpy(hdr.app_hash, self->app_hash, BLY_CONS_ID_SIZE);
    size_t size = bly_cons_block_encode(&hdr, out, self->cfg.block_size_max);
    bly_assert(size > 0);
    bly_cons_core_arena_trim(self, ev, 0);
    return (uint32_t) size;
}

//  --------------------------------------------------------------------------
//  Signing and sending own messages

uint8_t
bly_cons_core_step_of(uint8_t type)
{
    return type == BLY_CONS_PROPOSAL   ? BLY_CONS_STEP_PROPOSE
           : type == BLY_CONS_PREVOTE ? BLY_CONS_STEP_PREVOTE
                                      : BLY_CONS_STEP_PRECOMMIT;
}

//  The double-sign guard: signing is allowed only strictly after the last
//  signed (height, round, step), which survives restarts through the WAL.
bool
bly_cons_core_may_sign(const bly_cons_core_t *self, uint64_t height, int32_t round, uint8_t step)
{
    if (height != self->signed_height)
        return height > self->signed_height;
    if (round != self->signed_round)
        return round > self->signed_round;
    return step > self->signed_step;
}

static void
s_own_keep(bly_cons_core_t *self, uint8_t type, const uint8_t *data, size_t size)
{
    s_own_t *own = &self->own[type];
    bly_assert(size <= (type == BLY_CONS_PROPOSAL ? BLY_CONS_MSG_SIZE_MAX : S_VOTE_MSG_SIZE));
    memcpy(own->data, data, size);
    own->size = size;
    own->height = self->height;
    own->round = self->round;
}

//  Sign `vote` (for the current height and round), persist, then send.
//  `block` is the proposed block for proposals. Returns false when the
//  guard refused (a restarted replica that already signed this step).
static bool
s_sign_send(bly_cons_core_t *self, bly_cons_vote_t *vote, const uint8_t *block, uint32_t size)
{
    if (self->cfg.self_index < 0)
        return false;
    uint8_t step = bly_cons_core_step_of(vote->type);
    if (!bly_cons_core_may_sign(self, vote->height, vote->round, step)) {
        bly_log_debug("consensus: replica %d refuses to sign type %u at height %llu round %d",
                      self->cfg.self_index, vote->type, (unsigned long long) vote->height,
                      vote->round);
        self->stats.refused_signs++;
        return false;
    }
    vote->validator = (uint16_t) self->cfg.self_index;
    bly_cons_vote_sign(vote, self->cfg.chain_id, self->seckey);
    bly_cons_msg_t msg = {.type = vote->type, .vote = *vote, .block = block, .block_size = size};
    size_t cap = 2 + BLY_CONS_VOTE_SIZE + 4 + (size_t) size;
    uint8_t *out = bly_cons_core_arena_take(self, cap);
    size_t used = bly_cons_msg_encode(&msg, out, cap);
    bly_assert(used > 0);
    bly_cons_core_arena_trim(self, out, used);
    self->signed_height = vote->height;
    self->signed_round = vote->round;
    self->signed_step = step;
    bly_cons_core_wal_state(self, out, used, true);
    s_fx_data(self, BLY_CONS_FX_BROADCAST, -1, out, used);
    s_own_keep(self, vote->type, out, used);
    return true;
}

static void
s_send_vote(bly_cons_core_t *self, uint8_t type, const uint8_t *id)
{
    bly_cons_vote_t vote = {.type = type, .height = self->height, .round = self->round,
                            .pol_round = -1, .has_id = id != NULL};
    if (id)
        memcpy(vote.id, id, BLY_CONS_ID_SIZE);
    bly_log_debug("consensus: replica %d votes type %u at height %llu round %d for %02x%02x",
                  self->cfg.self_index, type, (unsigned long long) self->height, self->round,
                  id ? id[0] : 0, id ? id[1] : 0);
    if (s_sign_send(self, &vote, NULL, 0)) {
        int stored = bly_cons_core_vote_store(self, &vote, true);
        bly_assert(stored >= 0);
    }
}

//  --------------------------------------------------------------------------
//  Algorithm 1

static void
s_value_set(s_value_t *value, int32_t round, const s_slot_t *slot)
{
    value->round = round;
    if (value->block != slot->block) {
        memcpy(value->block, slot->block, slot->block_size);
        value->block_size = slot->block_size;
    }
    bly_cons_block_id(slot->block, slot->block_size, value->id);
}

static bool
s_am_proposer(bly_cons_core_t *self, int32_t round)
{
    return self->cfg.self_index >= 0 &&
           s_proposer(self, self->height, round) == (uint32_t) self->cfg.self_index;
}

//  L11-L21 StartRound(round).
void
bly_cons_core_start_round(bly_cons_core_t *self, int32_t round)
{
    self->round = round;
    self->step = BLY_CONS_STEP_PROPOSE;
    s_slot_t *slot = bly_cons_core_slot_get(self, round);
    bly_assert(slot);
    //  L21 schedules timeoutPropose for the others only. The proposer sets
    //  it too: after a restart it may re-propose validValue without the
    //  polka that justified it (lost with the process), and then only the
    //  timeout moves it on. A timeout only ever leads to nil votes.
    bly_cons_core_fx_timer(self, BLY_CONS_TIMER_PROPOSE, round,
               bly_cons_core_timeout(self, self->cfg.timeout_propose_ms, round));
    if (!s_am_proposer(self, round))
        return;
    if (slot->has_proposal)
        return;    //  Restarted after proposing: the WAL copy is re-sent by gossip.
    //  L15-L18: propose validValue if there is one, else getValue().
    bly_cons_vote_t vote = {.type = BLY_CONS_PROPOSAL, .height = self->height, .round = round,
                            .pol_round = self->valid.round, .has_id = true};
    if (self->valid.round >= 0) {
        memcpy(slot->block, self->valid.block, self->valid.block_size);
        slot->block_size = self->valid.block_size;
    } else {
        slot->block_size = s_block_build(self, slot->block);
    }
    bly_cons_block_id(slot->block, slot->block_size, vote.id);
    if (!s_sign_send(self, &vote, slot->block, slot->block_size))
        return;
    slot->has_proposal = true;
    slot->proposal = vote;
    slot->valid = -1;
}

//  Apply a decided block (from consensus, sync or replay): punish the
//  evidence, run the application, move to the next height.
int
bly_cons_core_apply_commit(bly_cons_core_t *self, const bly_cons_msg_t *commit)
{
    bly_cons_block_t hdr;
    if (bly_cons_block_decode(&hdr, commit->block, commit->block_size) != 0 ||
        hdr.height != self->height)
        return -1;
    uint16_t offenders[BLY_CONS_BLOCK_EVIDENCE_MAX];
    for (uint32_t i = 0; i < hdr.evidence_count; i++) {
        bly_cons_vote_t a;
        int rc = bly_cons_vote_get(&a, hdr.evidence + (size_t) i * 2 * BLY_CONS_VOTE_SIZE);
        bly_assert(rc == 0);
        offenders[i] = a.validator;
        s_ev_mark_seen(self, &a);
    }
    uint8_t app_hash[BLY_CONS_ID_SIZE];
    if (self->app.apply(self->app.self, hdr.height, hdr.payload, hdr.payload_size, offenders,
                        hdr.evidence_count, hdr.evidence, app_hash) != 0) {
        bly_log_error("consensus: the application failed to apply committed block %llu",
                      (unsigned long long) hdr.height);
        return -1;
    }
    //  The next height's powers follow the stakes after this block.
    if (self->app.powers) {
        uint64_t stakes[BLY_CONS_VALIDATORS_MAX] = {0};
        uint32_t n = self->app.powers(self->app.self, stakes);
        bly_assert(n == self->cfg.validator_count);
        bly_cons_core_powers_set(self, stakes);
    }
    //  Pending evidence: drop what committed and what names a validator that
    //  has no power any more (tombstoned or unstaked: nothing left to punish).
    uint32_t kept = 0;
    for (uint32_t i = 0; i < self->pool_count; i++)
        if (!s_ev_seen(self, &self->pool[i].a) && self->powers[self->pool[i].a.validator] > 0)
            self->pool[kept++] = self->pool[i];
    self->pool_count = kept;
    memcpy(self->last_id, commit->vote.id, BLY_CONS_ID_SIZE);
    self->app_changed = memcmp(self->app_hash, app_hash, BLY_CONS_ID_SIZE) != 0;
    self->idle_wait = false;
    memcpy(self->app_hash, app_hash, BLY_CONS_ID_SIZE);
    self->height++;
    self->round = 0;
    self->step = BLY_CONS_STEP_NEW_HEIGHT;
    self->locked.round = -1;
    self->valid.round = -1;
    self->polka_count = 0;
    s_slots_reset(self);
    self->stats.commits++;
    return 0;
}

//  L49-L54: decide, apply, store, and start the next height.
static void
s_decide(bly_cons_core_t *self, s_slot_t *slot)
{
    bly_cons_block_t hdr;
    int rc = bly_cons_block_decode(&hdr, slot->block, slot->block_size);
    bly_assert(rc == 0);
    //  The commit record: block plus the precommits for it (the certificate).
    size_t cap = 18 + (size_t) slot->block_size +
                 (size_t) self->cfg.validator_count * BLY_CONS_CERT_ENTRY_SIZE + 2;
    uint8_t *cert = bly_cons_core_arena_take(self, (size_t) self->cfg.validator_count *
                                           BLY_CONS_CERT_ENTRY_SIZE);
    uint16_t count = 0;
    for (uint32_t i = 0; i < self->cfg.validator_count; i++) {
        const bly_cons_vote_t *v = &slot->precommits[i];
        if (!slot->has_precommit[i] || !v->has_id ||
            memcmp(v->id, slot->proposal.id, BLY_CONS_ID_SIZE) != 0)
            continue;
        bly_cons_put_u16(cert + (size_t) count * BLY_CONS_CERT_ENTRY_SIZE, (uint16_t) i);
        memcpy(cert + (size_t) count * BLY_CONS_CERT_ENTRY_SIZE + 2, v->sig, BLY_CONS_SIG_SIZE);
        count++;
    }
    bly_cons_msg_t msg = {.type = BLY_CONS_COMMIT, .block = slot->block,
                          .block_size = slot->block_size, .cert = cert, .cert_count = count};
    msg.vote.height = self->height;
    msg.vote.round = slot->round;
    uint8_t *out = bly_cons_core_arena_take(self, cap);
    size_t used = bly_cons_msg_encode(&msg, out, cap);
    bly_assert(used > 0);
    bly_cons_core_arena_trim(self, out, used);
    s_fx_data(self, BLY_CONS_FX_COMMIT, -1, out, used);
    //  Re-decode from the stored bytes: replay and sync take the same path.
    bly_cons_msg_t stored;
    rc = bly_cons_msg_decode(&stored, out, used);
    bly_assert(rc == 0);
    rc = bly_cons_core_apply_commit(self, &stored);
    bly_assert(rc == 0);
    //  Idle: nothing to put in a block and no new app hash to carry in a header.
    self->idle_wait = self->cfg.timeout_idle_ms > self->cfg.timeout_commit_ms &&
                      self->app.pending && self->app.pending(self->app.self) == 0 &&
                      self->pool_count == 0 && !self->app_changed;
    bly_cons_core_fx_timer(self, BLY_CONS_TIMER_COMMIT, 0,
                           self->idle_wait ? self->cfg.timeout_idle_ms
                                           : self->cfg.timeout_commit_ms);
}

//  L22-L27 and L28-L33: prevote for a proposal of the current round.
static bool
s_rule_prevote_proposal(bly_cons_core_t *self)
{
    s_slot_t *slot = s_slot_find(self, self->round);
    if (self->step != BLY_CONS_STEP_PROPOSE || !slot || !slot->has_proposal)
        return false;
    int32_t vr = slot->proposal.pol_round;
    const uint8_t *id = slot->proposal.id;
    bool accept;
    if (vr < 0) {
        //  L22: valid(v) and (lockedRound = -1 or lockedValue = v).
        accept = s_slot_valid(self, slot) &&
                 (self->locked.round == -1 || memcmp(self->locked.id, id, BLY_CONS_ID_SIZE) == 0);
    } else {
        //  L28: needs 2f+1 PREVOTE(h, vr, id(v)) with vr < round.
        s_slot_t *pol = s_slot_find(self, vr);
        if (!pol || !s_quorum(self, s_power(self, pol, BLY_CONS_PREVOTE, false, id)))
            return false;
        accept = s_slot_valid(self, slot) &&
                 (self->locked.round <= vr || memcmp(self->locked.id, id, BLY_CONS_ID_SIZE) == 0);
    }
    self->step = BLY_CONS_STEP_PREVOTE;
    bly_log_debug("consensus: replica %d prevotes %s at height %llu round %d (valid %d, locked %d, pol %d)",
                  self->cfg.self_index, accept ? "the proposal" : "nil",
                  (unsigned long long) self->height, self->round, slot->valid,
                  self->locked.round, vr);
    s_send_vote(self, BLY_CONS_PREVOTE, accept ? id : NULL);
    return true;
}

//  L34-L35: 2f+1 prevotes of any kind start timeoutPrevote, once.
static bool
s_rule_prevote_any(bly_cons_core_t *self)
{
    s_slot_t *slot = s_slot_find(self, self->round);
    if (self->step != BLY_CONS_STEP_PREVOTE || !slot || slot->fired_l34 ||
        !s_quorum(self, s_power(self, slot, BLY_CONS_PREVOTE, true, NULL)))
        return false;
    slot->fired_l34 = true;
    bly_cons_core_fx_timer(self, BLY_CONS_TIMER_PREVOTE, self->round,
               bly_cons_core_timeout(self, self->cfg.timeout_prevote_ms, self->round));
    return true;
}

//  L36-L43: a polka for the current proposal locks (in step prevote) and
//  always updates validValue, once per round.
static bool
s_rule_polka(bly_cons_core_t *self)
{
    s_slot_t *slot = s_slot_find(self, self->round);
    if (self->step < BLY_CONS_STEP_PREVOTE || !slot || !slot->has_proposal || slot->fired_l36)
        return false;
    if (!s_quorum(self, s_power(self, slot, BLY_CONS_PREVOTE, false, slot->proposal.id)) ||
        !s_slot_valid(self, slot))
        return false;
    slot->fired_l36 = true;
    s_value_set(&self->valid, self->round, slot);
    self->polka_count = 0;
    for (uint32_t i = 0; i < self->cfg.validator_count; i++) {
        const bly_cons_vote_t *v = &slot->prevotes[i];
        if (slot->has_prevote[i] && v->has_id &&
            memcmp(v->id, slot->proposal.id, BLY_CONS_ID_SIZE) == 0)
            self->polka[self->polka_count++] = *v;
    }
    if (self->step == BLY_CONS_STEP_PREVOTE) {
        s_value_set(&self->locked, self->round, slot);
        self->step = BLY_CONS_STEP_PRECOMMIT;
        s_send_vote(self, BLY_CONS_PRECOMMIT, slot->proposal.id);
    } else {
        //  Only validValue moved: persisted for liveness, not needed for safety.
        bly_cons_core_wal_state(self, NULL, 0, false);
    }
    return true;
}

//  L44-L46: a nil polka makes us precommit nil.
static bool
s_rule_prevote_nil(bly_cons_core_t *self)
{
    s_slot_t *slot = s_slot_find(self, self->round);
    if (self->step != BLY_CONS_STEP_PREVOTE || !slot ||
        !s_quorum(self, s_power(self, slot, BLY_CONS_PREVOTE, false, NULL)))
        return false;
    self->step = BLY_CONS_STEP_PRECOMMIT;
    s_send_vote(self, BLY_CONS_PRECOMMIT, NULL);
    return true;
}

//  L47-L48: 2f+1 precommits of any kind start timeoutPrecommit, once.
static bool
s_rule_precommit_any(bly_cons_core_t *self)
{
    s_slot_t *slot = s_slot_find(self, self->round);
    if (!slot || slot->fired_l47 ||
        !s_quorum(self, s_power(self, slot, BLY_CONS_PRECOMMIT, true, NULL)))
        return false;
    slot->fired_l47 = true;
    bly_cons_core_fx_timer(self, BLY_CONS_TIMER_PRECOMMIT, self->round,
               bly_cons_core_timeout(self, self->cfg.timeout_precommit_ms, self->round));
    return true;
}

//  L49: a proposal of any round with 2f+1 precommits for it decides.
static bool
s_rule_decide(bly_cons_core_t *self)
{
    for (int i = 0; i < BLY_CONS_ROUND_SLOTS; i++) {
        s_slot_t *slot = &self->slots[i];
        if (slot->round < 0 || !slot->has_proposal)
            continue;
        if (!s_quorum(self, s_power(self, slot, BLY_CONS_PRECOMMIT, false, slot->proposal.id)))
            continue;
        if (!s_slot_valid(self, slot)) {
            if (bly_ratelimit_allow(&self->log_limit, self->now_ms, 5, 1000))
                bly_log_error("consensus: 2f+1 precommits for an invalid block at height %llu round %d",
                              (unsigned long long) self->height, slot->round);
            continue;
        }
        s_decide(self, slot);
        return true;
    }
    return false;
}

//  L55-L56: f+1 validators already in a higher round pull us there.
static bool
s_rule_skip(bly_cons_core_t *self)
{
    int32_t best = -1;
    for (int i = 0; i < BLY_CONS_ROUND_SLOTS; i++) {
        const s_slot_t *slot = &self->slots[i];
        if (slot->round <= self->round || slot->round <= best)
            continue;
        uint64_t power = 0;
        for (uint32_t v = 0; v < self->cfg.validator_count; v++) {
            bool sent = slot->has_prevote[v] || slot->has_precommit[v] ||
                        (slot->has_proposal && slot->proposal.validator == v);
            if (sent)
                power += self->powers[v];
        }
        if (bly_cons_is_skip(power, self->total_power))
            best = slot->round;
    }
    if (best < 0)
        return false;
    bly_cons_core_start_round(self, best);
    return true;
}

//  Run the upon rules until none fires. Each firing moves the step, the
//  round or the height forward or sets a once-only flag, so this ends; the
//  bound is a backstop.
void
bly_cons_core_run_rules(bly_cons_core_t *self)
{
    for (int iter = 0; iter < 64; iter++) {
        if (self->step == BLY_CONS_STEP_NEW_HEIGHT)
            return;    //  Round 0 starts when timeoutCommit fires.
        bool fired = s_rule_decide(self) || s_rule_skip(self) || s_rule_prevote_proposal(self) ||
                     s_rule_prevote_any(self) || s_rule_polka(self) ||
                     s_rule_prevote_nil(self) || s_rule_precommit_any(self);
        if (!fired)
            return;
    }
    (void) BLY_NEVER(true);
}

//  L57-L65: the three timeouts.
static void
s_timeout_fire(bly_cons_core_t *self, const bly_cons_timer_t *timer)
{
    bly_log_debug("consensus: replica %d timer %u for height %llu round %d fires at round %d step %u",
                  self->cfg.self_index, timer->kind, (unsigned long long) timer->height,
                  timer->round, self->round, self->step);
    if (timer->height != self->height || timer->round != self->round)
        return;
    if (timer->kind == BLY_CONS_TIMER_PROPOSE && self->step == BLY_CONS_STEP_PROPOSE) {
        self->step = BLY_CONS_STEP_PREVOTE;
        s_send_vote(self, BLY_CONS_PREVOTE, NULL);
    } else if (timer->kind == BLY_CONS_TIMER_PREVOTE && self->step == BLY_CONS_STEP_PREVOTE) {
        self->step = BLY_CONS_STEP_PRECOMMIT;
        s_send_vote(self, BLY_CONS_PRECOMMIT, NULL);
    } else if (timer->kind == BLY_CONS_TIMER_PRECOMMIT && self->step != BLY_CONS_STEP_NEW_HEIGHT) {
        if (self->round < BLY_CONS_ROUND_MAX)
            bly_cons_core_start_round(self, self->round + 1);
    } else if (timer->kind == BLY_CONS_TIMER_COMMIT && self->step == BLY_CONS_STEP_NEW_HEIGHT) {
        self->idle_wait = false;
        bly_cons_core_enter_height(self);
    }
}

//  --------------------------------------------------------------------------
//  Incoming messages

//  A message of another height: note who lags (we serve them committed
//  blocks at the next gossip) or that we lag (we ask at the next gossip).
static void
s_other_height(bly_cons_core_t *self, uint64_t height, int32_t from)
{
    if (height > self->height) {
        self->behind = true;
    } else if (from >= 0 && (uint32_t) from < self->cfg.validator_count) {
        uint64_t *lacks = &self->peer_lacks[from];
        if (*lacks == 0 || height < *lacks)
            *lacks = height;
    }
}

static int
s_on_proposal(bly_cons_core_t *self, const bly_cons_msg_t *msg)
{
    const bly_cons_vote_t *vote = &msg->vote;
    if (vote->validator != s_proposer(self, vote->height, vote->round))
        return -1;    //  Only proposer(h, r) may propose.
    uint8_t id[BLY_CONS_ID_SIZE];
    bly_cons_block_id(msg->block, msg->block_size, id);
    if (memcmp(id, vote->id, BLY_CONS_ID_SIZE) != 0 || msg->block_size > self->cfg.block_size_max)
        return -1;
    s_slot_t *slot = bly_cons_core_slot_get(self, vote->round);
    if (!slot)
        return 0;
    if (slot->has_proposal)
        return 0;    //  The first proposal counts; a conflicting one is ignored.
    if (!bly_cons_vote_verify_cached(self->cfg.sigcache, vote, self->cfg.chain_id, self->cfg.pubkeys[vote->validator]))
        return -1;
    memcpy(slot->block, msg->block, msg->block_size);
    slot->block_size = msg->block_size;
    slot->proposal = *vote;
    slot->has_proposal = true;
    slot->valid = -1;
    return 0;
}

//  A commit (block plus 2f+1 precommits) for our height, from a peer that
//  is ahead: verify every signature and the block, then decide it.
static int
s_on_commit(bly_cons_core_t *self, const bly_cons_msg_t *msg, const uint8_t *data, size_t size)
{
    bool counted[BLY_CONS_VALIDATORS_MAX] = {false};
    uint64_t power = 0;
    bly_cons_vote_t pc = {.type = BLY_CONS_PRECOMMIT, .height = msg->vote.height,
                          .round = msg->vote.round, .pol_round = -1, .has_id = true};
    memcpy(pc.id, msg->vote.id, BLY_CONS_ID_SIZE);
    for (uint32_t i = 0; i < msg->cert_count; i++) {
        const uint8_t *entry = msg->cert + (size_t) i * BLY_CONS_CERT_ENTRY_SIZE;
        pc.validator = bly_cons_get_u16(entry);
        if (pc.validator >= self->cfg.validator_count || counted[pc.validator])
            return -1;
        memcpy(pc.sig, entry + 2, BLY_CONS_SIG_SIZE);
        if (!bly_cons_vote_verify_cached(self->cfg.sigcache, &pc, self->cfg.chain_id, self->cfg.pubkeys[pc.validator]))
            return -1;
        counted[pc.validator] = true;
        power += self->powers[pc.validator];
    }
    if (!s_quorum(self, power) || s_block_check(self, msg->block, msg->block_size) != 0)
        return -1;
    uint8_t *copy = bly_cons_core_arena_take(self, size);
    memcpy(copy, data, size);
    s_fx_data(self, BLY_CONS_FX_COMMIT, -1, copy, size);
    if (bly_cons_core_apply_commit(self, msg) != 0)
        return -1;
    self->stats.synced++;
    bly_cons_core_fx_timer(self, BLY_CONS_TIMER_COMMIT, 0, self->cfg.timeout_commit_ms);
    return 0;
}

static bool
s_fx_room(const bly_cons_core_t *self, size_t bytes)
{
    return self->fx.count + 8 < BLY_CONS_EFFECTS_MAX &&
           self->arena_used + bytes + 4096 <= self->arena_size;
}

//  Send up to SYNC_BATCH_MAX committed blocks to a peer that lacks them.
static void
s_serve_sync(bly_cons_core_t *self, int32_t peer)
{
    uint64_t from = self->peer_lacks[peer];
    self->peer_lacks[peer] = 0;
    size_t cap = 18 + (size_t) self->cfg.block_size_max +
                 (size_t) self->cfg.validator_count * BLY_CONS_CERT_ENTRY_SIZE;
    for (uint64_t h = from; h < from + BLY_CONS_SYNC_BATCH_MAX && h < self->height; h++) {
        if (!s_fx_room(self, cap))
            return;
        uint8_t *out = bly_cons_core_arena_take(self, cap);
        uint32_t used = self->app.load_commit(self->app.self, h, out, (uint32_t) cap);
        bly_cons_core_arena_trim(self, out, used);
        if (used == 0)
            return;
        s_fx_data(self, BLY_CONS_FX_SEND, peer, out, used);
    }
}

static int
s_dispatch(bly_cons_core_t *self, const bly_cons_msg_t *msg, const uint8_t *data, size_t size,
           int32_t from)
{
    switch (msg->type) {
    case BLY_CONS_PROPOSAL:
    case BLY_CONS_PREVOTE:
    case BLY_CONS_PRECOMMIT:
        if (msg->vote.validator >= self->cfg.validator_count)
            return -1;
        if (msg->vote.height != self->height) {
            s_other_height(self, msg->vote.height, from);
            return 0;
        }
        if (msg->type == BLY_CONS_PROPOSAL)
            return s_on_proposal(self, msg);
        return bly_cons_core_vote_store(self, &msg->vote, false) < 0 ? -1 : 0;
    case BLY_CONS_COMMIT:
        //  A commit of a lower height answers an earlier sync: the sender is ahead,
        //  not behind (marking it lagging made two replicas trade blocks forever).
        if (msg->vote.height != self->height) {
            if (msg->vote.height > self->height)
                s_other_height(self, msg->vote.height, from);
            return 0;
        }
        return s_on_commit(self, msg, data, size);
    case BLY_CONS_EVIDENCE:
        if (s_ev_seen(self, &msg->ev[0]) || s_ev_pending(self, &msg->ev[0]))
            return 0;    //  Known: no signature checks for gossip repeats.
        if (msg->ev[0].validator < self->cfg.validator_count &&
            self->powers[msg->ev[0].validator] == 0)
            return 0;    //  No power at this height: nothing to punish.
        if (msg->ev[0].height > self->height || !s_ev_valid(self, &msg->ev[0], &msg->ev[1]))
            return -1;
        s_ev_add(self, &msg->ev[0], &msg->ev[1]);
        return 0;
    case BLY_CONS_SYNC_REQ:
        if (from < 0 || (uint32_t) from >= self->cfg.validator_count)
            return -1;
        if (msg->sync_height < self->height) {
            self->peer_lacks[from] = msg->sync_height;
            s_serve_sync(self, from);
        }
        return 0;
    default:
        return -1;
    }
}

const bly_cons_effects_t *
bly_cons_core_on_message(bly_cons_core_t *self, const uint8_t *data, size_t size, int32_t from,
                         int64_t now_ms)
{
    bly_assert(self);
    bly_assert(data || size == 0);
    bly_cons_core_fx_reset(self, now_ms);
    bly_cons_msg_t msg;
    if (!self->started || size > BLY_CONS_MSG_SIZE_MAX ||
        bly_cons_msg_decode(&msg, data, size) != 0 ||
        s_dispatch(self, &msg, data, size, from) != 0) {
        self->stats.rejected++;
        return &self->fx;
    }
    //  Another replica proposed at our height (it had work), or evidence came in
    //  that must be committed: the pause ends.
    s_slot_t *first = self->idle_wait ? s_slot_find(self, 0) : NULL;
    if (self->idle_wait && self->step == BLY_CONS_STEP_NEW_HEIGHT &&
        ((first && first->has_proposal) || self->pool_count > 0)) {
        self->idle_wait = false;
        bly_cons_core_enter_height(self);
    }
    bly_cons_core_run_rules(self);
    return &self->fx;
}

const bly_cons_effects_t *
bly_cons_core_on_pending(bly_cons_core_t *self, int64_t now_ms)
{
    bly_assert(self);
    bly_cons_core_fx_reset(self, now_ms);
    if (self->started && self->idle_wait && self->step == BLY_CONS_STEP_NEW_HEIGHT) {
        self->idle_wait = false;
        bly_cons_core_enter_height(self);
        bly_cons_core_run_rules(self);
    }
    return &self->fx;
}

//  --------------------------------------------------------------------------
//  Gossip: re-send own latest messages of the current height (a lossy network
//  loses them), the polka that justifies a re-proposed value, sync requests
//  and committed blocks for peers that lag.

static void
s_gossip_polka(bly_cons_core_t *self)
{
    s_slot_t *slot = s_slot_find(self, self->round);
    if (!slot || !slot->has_proposal || slot->proposal.pol_round < 0 ||
        !s_am_proposer(self, self->round))
        return;
    s_slot_t *pol = s_slot_find(self, slot->proposal.pol_round);
    if (!pol)
        return;
    for (uint32_t i = 0; i < self->cfg.validator_count; i++) {
        const bly_cons_vote_t *v = &pol->prevotes[i];
        if (!pol->has_prevote[i] || !v->has_id ||
            memcmp(v->id, slot->proposal.id, BLY_CONS_ID_SIZE) != 0 || !s_fx_room(self, 256))
            continue;
        bly_cons_msg_t msg = {.type = BLY_CONS_PREVOTE, .vote = *v};
        uint8_t *out = bly_cons_core_arena_take(self, S_VOTE_MSG_SIZE);
        size_t used = bly_cons_msg_encode(&msg, out, S_VOTE_MSG_SIZE);
        bly_assert(used == S_VOTE_MSG_SIZE);
        s_fx_data(self, BLY_CONS_FX_BROADCAST, -1, out, used);
    }
}

//  Re-sends of the own proposal as single SENDs at most; more go as one broadcast.
#define S_GOSSIP_SENDS_MAX 8

//  Peer `p` showed it holds our proposal of `round`: it voted for its id there
//  (an honest replica votes for a block only after checking it).
static bool
s_peer_has_proposal(bly_cons_core_t *self, uint32_t p, int32_t round)
{
    const s_slot_t *slot = s_slot_find(self, round);
    if (!slot || !slot->has_proposal)
        return false;
    const bly_cons_vote_t *pv = &slot->prevotes[p], *pc = &slot->precommits[p];
    return (slot->has_prevote[p] && pv->has_id &&
            memcmp(pv->id, slot->proposal.id, BLY_CONS_ID_SIZE) == 0) ||
           (slot->has_precommit[p] && pc->has_id &&
            memcmp(pc->id, slot->proposal.id, BLY_CONS_ID_SIZE) == 0);
}

static void
s_gossip(bly_cons_core_t *self)
{
    for (int t = BLY_CONS_PROPOSAL; t <= BLY_CONS_PRECOMMIT; t++) {
        const s_own_t *own = &self->own[t];
        //  The latest of each type, even from an earlier round: a replica
        //  still in that round may need it for L47 (2f+1 precommits of any
        //  kind), and one in a lower round counts it for the f+1 skip.
        if (own->height != self->height || own->size == 0)
            continue;
        if (t != BLY_CONS_PROPOSAL) {
            s_fx_data(self, BLY_CONS_FX_BROADCAST, -1, own->data, own->size);
            continue;
        }
        //  A proposal carries the whole block: only to peers not known to hold it
        //  (one broadcast when many lack it: the effect list is bounded).
        uint32_t lack = 0;
        for (uint32_t p = 0; p < self->cfg.validator_count; p++)
            lack += (int32_t) p != self->cfg.self_index && !s_peer_has_proposal(self, p, own->round);
        if (lack > S_GOSSIP_SENDS_MAX || !s_fx_room(self, 0)) {
            s_fx_data(self, BLY_CONS_FX_BROADCAST, -1, own->data, own->size);
            continue;
        }
        for (uint32_t p = 0; p < self->cfg.validator_count && lack > 0; p++)
            if ((int32_t) p != self->cfg.self_index && !s_peer_has_proposal(self, p, own->round))
                s_fx_data(self, BLY_CONS_FX_SEND, (int32_t) p, own->data, own->size);
    }
    s_gossip_polka(self);
    //  Pending evidence again, a few items per tick, until it is committed.
    for (uint32_t i = 0; i < self->pool_count && i < 4 && s_fx_room(self, 512); i++) {
        bly_cons_msg_t msg = {.type = BLY_CONS_EVIDENCE, .ev = {self->pool[i].a, self->pool[i].b}};
        uint8_t *out = bly_cons_core_arena_take(self, 2 + 2 * BLY_CONS_VOTE_SIZE);
        size_t used = bly_cons_msg_encode(&msg, out, 2 + 2 * BLY_CONS_VOTE_SIZE);
        bly_assert(used == 2 + 2 * BLY_CONS_VOTE_SIZE);
        s_fx_data(self, BLY_CONS_FX_BROADCAST, -1, out, used);
    }
    if (self->behind) {
        self->behind = false;
        bly_cons_msg_t msg = {.type = BLY_CONS_SYNC_REQ, .sync_height = self->height};
        uint8_t *out = bly_cons_core_arena_take(self, 16);
        size_t used = bly_cons_msg_encode(&msg, out, 16);
        bly_assert(used == 10);
        s_fx_data(self, BLY_CONS_FX_BROADCAST, -1, out, used);
    }
    for (uint32_t p = 0; p < self->cfg.validator_count; p++)
        if (self->peer_lacks[p] > 0 && (int32_t) p != self->cfg.self_index)
            s_serve_sync(self, (int32_t) p);
    bly_cons_core_fx_timer(self, BLY_CONS_TIMER_GOSSIP, self->round, self->cfg.gossip_ms);
}

const bly_cons_effects_t *
bly_cons_core_on_timer(bly_cons_core_t *self, const bly_cons_timer_t *timer, int64_t now_ms)
{
    bly_assert(self);
    bly_assert(timer);
    bly_cons_core_fx_reset(self, now_ms);
    if (!self->started)
        return &self->fx;
    if (timer->kind == BLY_CONS_TIMER_GOSSIP)
        s_gossip(self);
    else
        s_timeout_fire(self, timer);
    bly_cons_core_run_rules(self);
    return &self->fx;
}
