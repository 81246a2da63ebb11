/*  =========================================================================
    bly_ledger_evidence - slashing from committed consensus evidence

    A consensus block carries evidence: two conflicting votes signed by one
    validator, in the consensus wire encoding (actors/consensus/
    bly_cons_msg.h). The ledger checks such a pair itself, inside the apply
    of the block that commits it (bly_ledger_block_begin_ev): it does not
    trust the consensus core's own check, and it punishes each offence
    (offender, height, round, step) at most once, whether it arrives as
    evidence or as a slash transaction. The first offence committed as
    evidence also tombstones the offender (a 'T' key in the replay set, so
    it is part of the app hash and the store): its voting power is 0 from
    the next height on, forever, and later evidence against it is skipped.
    ========================================================================= */

#include "bly_ledger_internal.h"
#include "consensus/bly_cons_msg.h"

#include <string.h>

static void
s_tombstone_key(const uint8_t key[BLY_LEDGER_KEY_SIZE], uint8_t out[32])
{
    bly_ledger_seen_key('T', key, BLY_LEDGER_KEY_SIZE, out);
}

bool
bly_ledger_tombstoned(const bly_ledger_t *self, const uint8_t key[BLY_LEDGER_KEY_SIZE])
{
    bly_assert(self && key);
    uint8_t tomb[32];
    s_tombstone_key(key, tomb);
    return bly_ledger_seen_has(self, tomb);
}

uint64_t
bly_ledger_voting_stake(const bly_ledger_t *self, const uint8_t key[BLY_LEDGER_KEY_SIZE])
{
    bly_assert(self && key);
    int64_t at = bly_ledger_find(self, key);
    if (at < 0 || bly_ledger_tombstoned(self, key))
        return 0;
    return self->slots[at].a.stake;
}

void
bly_ledger_offence_key(const uint8_t offender[32], uint64_t height, uint32_t round, uint8_t step,
                       uint8_t out[32])
{
    uint8_t ev[32 + 8 + 4 + 1];
    memcpy(ev, offender, 32);
    bly_ledger_be64(ev + 32, height);
    ev[40] = (uint8_t) (round >> 24);
    ev[41] = (uint8_t) (round >> 16);
    ev[42] = (uint8_t) (round >> 8);
    ev[43] = (uint8_t) round;
    ev[44] = step;
    bly_ledger_seen_key('E', ev, sizeof(ev), out);
}

//  The two votes form an equivocation: same signer, type, height and round,
//  different values. Fills the ledger step.
static int
s_conflict(const bly_ledger_t *self, const bly_cons_vote_t *a, const bly_cons_vote_t *b,
           uint8_t *step, char *err, size_t es)
{
    if (a->type != b->type || (a->type != BLY_CONS_PREVOTE && a->type != BLY_CONS_PRECOMMIT))
        return bly_ledger_fail(err, es, "the votes are not two prevotes or two precommits");
    if (a->height != b->height || a->round != b->round || a->validator != b->validator)
        return bly_ledger_fail(err, es, "the votes differ in height, round or signer");
    if (a->round < 0 || a->pol_round != -1 || b->pol_round != -1)
        return bly_ledger_fail(err, es, "a vote has a bad round");
    if (a->height == 0 || a->height > self->open_height)
        return bly_ledger_fail(err, es, "evidence from a future height");
    if (a->has_id == b->has_id && (!a->has_id || memcmp(a->id, b->id, BLY_CONS_ID_SIZE) == 0))
        return bly_ledger_fail(err, es, "the votes are for the same block");
    *step = a->type == BLY_CONS_PREVOTE ? BLY_LEDGER_STEP_PREVOTE : BLY_LEDGER_STEP_PRECOMMIT;
    return 0;
}

int
bly_ledger_evidence_apply(bly_ledger_t *self, const bly_ledger_evidence_t *ev, char *err,
                          size_t es)
{
    bly_assert(self && ev);
    bly_assert(self->open);
    bly_cons_vote_t a, b;
    uint8_t step = 0, seen[32];
    if (!ev->vote_a || !ev->vote_b || bly_cons_vote_get(&a, ev->vote_a) != 0 ||
        bly_cons_vote_get(&b, ev->vote_b) != 0)
        return bly_ledger_fail(err, es, "a vote does not decode");
    if (s_conflict(self, &a, &b, &step, err, es))
        return -1;
    int64_t at = bly_ledger_find(self, ev->offender);
    if (at < 0 || self->slots[at].a.stake == 0)
        return bly_ledger_fail(err, es, "offender has no stake");
    if (bly_ledger_tombstoned(self, ev->offender))
        return bly_ledger_fail(err, es, "offender is tombstoned (punished before)");
    bly_ledger_offence_key(ev->offender, a.height, (uint32_t) a.round, step, seen);
    if (bly_ledger_seen_has(self, seen))
        return bly_ledger_fail(err, es, "offence already punished");
    if (!bly_cons_vote_verify(&a, self->genesis.chain_id, ev->offender) ||
        !bly_cons_vote_verify(&b, self->genesis.chain_id, ev->offender))
        return bly_ledger_fail(err, es, "a vote signature does not verify");
    //  bly_ledger_block_begin_ev reserved two replay-set entries per evidence item.
    uint64_t cut = bly_ledger_mul_bps(self->slots[at].a.stake, self->genesis.slash_bps);
    bly_ledger_account_t *acc = bly_ledger_touch(self, ev->offender);
    acc->stake -= cut;
    self->total_stake -= cut;
    self->burned += cut;
    bly_ledger_seen_add(self, seen);
    uint8_t tomb[32];
    s_tombstone_key(ev->offender, tomb);
    bly_ledger_seen_add(self, tomb);
    return 0;
}
