/*  =========================================================================
    test_cons_power - voting power follows the application's stake

    The stake-to-power scaling and the proposer over a height's powers
    (pure functions), then four replicas of the core over the transfer app
    on an in-test network: a committed unstake changes power, a committed
    equivocation tombstones the offender (its votes stop counting, also where
    they would have made the quorum), a validator with power 0 never
    proposes, a replica that catches up verifies certificates with the
    powers of each height, and a restarted replica replays to the same
    powers.
    ========================================================================= */

#include <check.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/bly_cons_core.h"
#include "consensus/bly_kvapp.h"

#define S_N 4
#define S_STAKE 1000
#define S_COMMITS_MAX 256
#define S_QUEUE_MAX 65536

//  --------------------------------------------------------------------------
//  Pure functions

START_TEST(test_powers_scale)
{
    uint64_t powers[BLY_CONS_VALIDATORS_MAX];
    //  Stakes that fit are the powers.
    uint64_t small[4] = {1, 0, BLY_CONS_POWER_MAX, 7};
    ck_assert_uint_eq(bly_cons_powers_scale(small, 4, powers), 1 + BLY_CONS_POWER_MAX + 7);
    ck_assert_uint_eq(powers[0], 1);
    ck_assert_uint_eq(powers[1], 0);
    ck_assert_uint_eq(powers[2], BLY_CONS_POWER_MAX);
    //  One past the limit: halved, rounded up (a non-zero stake keeps power).
    uint64_t over[3] = {BLY_CONS_POWER_MAX + 1, 1, 3};
    ck_assert_uint_eq(bly_cons_powers_scale(over, 3, powers), 513 + 1 + 2);
    ck_assert_uint_eq(powers[0], 513);
    //  Ledger-sized stakes: ratios kept for powers of two, every power in range.
    uint64_t big[BLY_CONS_VALIDATORS_MAX];
    for (uint32_t i = 0; i < BLY_CONS_VALIDATORS_MAX; i++)
        big[i] = UINT64_MAX - i;
    big[1] = 1ull << 62;
    big[2] = 1ull << 61;
    big[3] = 0;
    big[4] = 1;
    uint64_t total = bly_cons_powers_scale(big, BLY_CONS_VALIDATORS_MAX, powers);
    ck_assert_uint_le(total, (uint64_t) BLY_CONS_VALIDATORS_MAX * BLY_CONS_POWER_MAX);
    ck_assert_uint_eq(powers[0], BLY_CONS_POWER_MAX);
    ck_assert_uint_eq(powers[1], BLY_CONS_POWER_MAX / 4);
    ck_assert_uint_eq(powers[2], BLY_CONS_POWER_MAX / 8);
    ck_assert_uint_eq(powers[3], 0);
    ck_assert_uint_eq(powers[4], 1);
    //  The proposer over the largest total there can be is computed (65,536 steps).
    uint32_t who = bly_cons_proposer(powers, BLY_CONS_VALIDATORS_MAX, UINT64_MAX - 5, 1000);
    ck_assert_uint_lt(who, BLY_CONS_VALIDATORS_MAX);
    ck_assert_uint_ne(who, 3);
    //  No stake at all: total 0 (the core then keeps the previous powers).
    uint64_t none[2] = {0, 0};
    ck_assert_uint_eq(bly_cons_powers_scale(none, 2, powers), 0);
}
END_TEST

START_TEST(test_proposer_skips_power_zero)
{
    uint64_t powers[5] = {3, 0, 2, 0, 1};
    //  Any window of `total` positions: each proposes its power's share, never 1 or 3.
    for (uint64_t start = 1; start < 40; start += 7) {
        uint32_t counts[5] = {0};
        for (uint64_t k = 0; k < 6; k++)
            counts[bly_cons_proposer(powers, 5, start + k, 0)]++;
        ck_assert_uint_eq(counts[0], 3);
        ck_assert_uint_eq(counts[1], 0);
        ck_assert_uint_eq(counts[2], 2);
        ck_assert_uint_eq(counts[3], 0);
        ck_assert_uint_eq(counts[4], 1);
    }
    for (int32_t r = 0; r < 50; r++)
        ck_assert_uint_eq(bly_cons_proposer(powers, 5, 9, r) % 2, 0);
}
END_TEST

//  The transfer app's side: genesis stakes, unstake transactions, tombstones.
START_TEST(test_kvapp_unstake_and_tombstone)
{
    bly_kvapp_t *app = bly_kvapp_new(8, 1000, 4, 100, 50, 64, 16);
    ck_assert_ptr_nonnull(app);
    uint64_t stakes[4] = {10, 20, 0, 40}, zero[4] = {0};
    ck_assert_int_eq(bly_kvapp_set_stakes(app, zero), -1);    //  No power at all.
    ck_assert_int_eq(bly_kvapp_set_stakes(app, stakes), 0);
    //  Validator 1 unstakes 15 (account 1 gets it); more than the stake, a non-validator
    //  account, or nothing are refused.
    bly_kvapp_tx_t tx = {.from = 1, .to = BLY_KVAPP_UNSTAKE, .amount = 21};
    ck_assert_int_eq(bly_kvapp_submit(app, &tx), BLY_KVAPP_ERR_FUNDS);
    tx.amount = 0;
    ck_assert_int_eq(bly_kvapp_submit(app, &tx), BLY_KVAPP_ERR_MALFORMED);
    tx = (bly_kvapp_tx_t){.from = 5, .to = BLY_KVAPP_UNSTAKE, .amount = 1};
    ck_assert_int_eq(bly_kvapp_submit(app, &tx), BLY_KVAPP_ERR_MALFORMED);
    tx = (bly_kvapp_tx_t){.from = 1, .to = BLY_KVAPP_UNSTAKE, .amount = 15};
    ck_assert_int_eq(bly_kvapp_submit(app, &tx), BLY_KVAPP_OK);
    uint8_t payload[1024], hash[32];
    uint32_t size = bly_kvapp_build(app, 1, payload, sizeof(payload));
    ck_assert_uint_eq(size, BLY_KVAPP_TX_SIZE);
    uint64_t supply = bly_kvapp_supply(app);
    //  The same block also punishes validator 3: half its stake burned, tombstoned.
    uint16_t offender = 3;
    ck_assert_int_eq(bly_kvapp_apply(app, 1, payload, size, &offender, 1, hash), 0);
    ck_assert_uint_eq(bly_kvapp_stake(app, 1), 5);
    ck_assert_uint_eq(bly_kvapp_balance(app, 1), 1015);
    ck_assert_uint_eq(bly_kvapp_stake(app, 3), 20);
    ck_assert(bly_kvapp_tombstoned(app, 3));
    ck_assert(!bly_kvapp_tombstoned(app, 1));
    ck_assert_uint_eq(bly_kvapp_supply(app), supply);
    uint64_t out[BLY_CONS_VALIDATORS_MAX];
    ck_assert_uint_eq(bly_kvapp_powers(app, out), 4);
    ck_assert_uint_eq(out[0], 10);
    ck_assert_uint_eq(out[1], 5);
    ck_assert_uint_eq(out[2], 0);
    ck_assert_uint_eq(out[3], 0);    //  Tombstoned: 20 staked, no power.
    ck_assert_int_eq(bly_kvapp_set_stakes(app, stakes), -1);    //  Only before block 1.
    //  A block that unstakes more than is left does not check.
    tx = (bly_kvapp_tx_t){.from = 1, .to = BLY_KVAPP_UNSTAKE, .amount = 6, .nonce = 1};
    bly_kvapp_tx_put(&tx, payload);
    ck_assert_int_eq(bly_kvapp_check(app, 2, payload, BLY_KVAPP_TX_SIZE), -1);
    tx.amount = 5;
    bly_kvapp_tx_put(&tx, payload);
    ck_assert_int_eq(bly_kvapp_check(app, 2, payload, BLY_KVAPP_TX_SIZE), 0);
    bly_kvapp_destroy(&app);
}
END_TEST

//  --------------------------------------------------------------------------
//  Four replicas of the core over the transfer app

static uint8_t s_pk[S_N][32];
static uint8_t s_sk[S_N][64];

typedef struct {
    bly_kvapp_t *app;
    bly_cons_core_t *core;
    uint8_t *commits[S_COMMITS_MAX];
    size_t sizes[S_COMMITS_MAX];
    uint32_t count;
    bool armed[6];                 //  One pending timer per kind, the newest.
    bly_cons_timer_t timers[6];
    int64_t due[6];
    bool down;                     //  Cut off: nothing in or out.
} s_rep_t;

typedef struct {
    int32_t to;
    int32_t from;
    uint8_t *data;
    size_t size;
} s_msg_t;

static s_rep_t s_reps[S_N];
static s_msg_t *s_queue;
static uint32_t s_head, s_tail;
static int64_t s_now;

static uint32_t
s_load(void *self, uint64_t h, uint8_t *buf, uint32_t max)
{
    s_rep_t *r = self;
    if (h == 0 || h > r->count || r->sizes[h - 1] > max)
        return 0;
    memcpy(buf, r->commits[h - 1], r->sizes[h - 1]);
    return (uint32_t) r->sizes[h - 1];
}

static bly_cons_config_t
s_config(int32_t self_index)
{
    bly_cons_config_t cfg = {.validator_count = S_N, .self_index = self_index,
                             .block_size_max = 8192, .timeout_propose_ms = 300,
                             .timeout_prevote_ms = 100, .timeout_precommit_ms = 100,
                             .timeout_delta_ms = 50, .gossip_ms = 40, .timeout_commit_ms = 10};
    strcpy(cfg.chain_id, "power-chain");
    for (uint32_t i = 0; i < S_N; i++) {
        memcpy(cfg.pubkeys[i], s_pk[i], 32);
        cfg.powers[i] = S_STAKE;
    }
    return cfg;
}

//  (Re)create replica i from genesis and replay its stored commits (a restart).
static void
s_boot(int32_t i)
{
    s_rep_t *r = &s_reps[i];
    r->app = bly_kvapp_new(8, 1000, S_N, S_STAKE, 10, 64, 16);
    ck_assert_ptr_nonnull(r->app);
    bly_cons_app_t app = bly_kvapp_app(r->app, s_load, r);
    bly_cons_config_t cfg = s_config(i);
    r->core = bly_cons_core_new(&cfg, s_sk[i], app);
    ck_assert_ptr_nonnull(r->core);
    for (uint32_t h = 0; h < r->count; h++)
        ck_assert_int_eq(bly_cons_core_replay_commit(r->core, r->commits[h], r->sizes[h]), 0);
    memset(r->armed, 0, sizeof(r->armed));
}

static void
s_send(int32_t from, int32_t to, const uint8_t *data, size_t size)
{
    if (s_reps[from].down || s_reps[to].down)
        return;
    ck_assert_uint_lt(s_tail - s_head, S_QUEUE_MAX);
    s_msg_t *m = &s_queue[s_tail++ % S_QUEUE_MAX];
    *m = (s_msg_t){.to = to, .from = from, .data = malloc(size), .size = size};
    memcpy(m->data, data, size);
}

static void
s_exec(int32_t i, const bly_cons_effects_t *fx)
{
    s_rep_t *r = &s_reps[i];
    for (uint32_t k = 0; k < fx->count; k++) {
        const bly_cons_effect_t *e = &fx->items[k];
        if (e->kind == BLY_CONS_FX_COMMIT) {
            ck_assert_uint_lt(r->count, S_COMMITS_MAX);
            r->commits[r->count] = malloc(e->size);
            memcpy(r->commits[r->count], e->data, e->size);
            r->sizes[r->count++] = e->size;
        } else if (e->kind == BLY_CONS_FX_TIMER) {
            r->armed[e->timer.kind] = true;
            r->timers[e->timer.kind] = e->timer;
            r->due[e->timer.kind] = s_now + e->delay_ms;
        } else if (e->kind == BLY_CONS_FX_BROADCAST || e->kind == BLY_CONS_FX_SEND) {
            for (int32_t j = 0; j < S_N; j++)
                if (j != i && (e->kind == BLY_CONS_FX_BROADCAST || j == e->peer))
                    s_send(i, j, e->data, e->size);
        }
    }
}

static void
s_setup(void)
{
    ck_assert_int_ge(sodium_init(), 0);
    for (int i = 0; i < S_N; i++) {
        uint8_t seed[32] = {(uint8_t) (i + 11)};
        crypto_sign_seed_keypair(s_pk[i], s_sk[i], seed);
    }
    memset(s_reps, 0, sizeof(s_reps));
    s_queue = calloc(S_QUEUE_MAX, sizeof(*s_queue));
    ck_assert_ptr_nonnull(s_queue);
    s_head = s_tail = 0;
    s_now = 0;
    for (int32_t i = 0; i < S_N; i++)
        s_boot(i);
    for (int32_t i = 0; i < S_N; i++)
        s_exec(i, bly_cons_core_start(s_reps[i].core, 0));
}

static void
s_teardown(void)
{
    for (int32_t i = 0; i < S_N; i++) {
        bly_cons_core_destroy(&s_reps[i].core);
        bly_kvapp_destroy(&s_reps[i].app);
        for (uint32_t h = 0; h < s_reps[i].count; h++)
            free(s_reps[i].commits[h]);
    }
    while (s_head != s_tail)
        free(s_queue[s_head++ % S_QUEUE_MAX].data);
    free(s_queue);
}

//  One event: the next message, else the earliest timer of a running replica.
static void
s_step(void)
{
    if (s_head != s_tail) {
        s_msg_t m = s_queue[s_head++ % S_QUEUE_MAX];
        if (!s_reps[m.to].down)
            s_exec(m.to, bly_cons_core_on_message(s_reps[m.to].core, m.data, m.size, m.from,
                                                  s_now));
        free(m.data);
        return;
    }
    int32_t bi = -1;
    int bk = 0;
    for (int32_t i = 0; i < S_N; i++)
        for (int k = 1; k < 6; k++)
            if (!s_reps[i].down && s_reps[i].armed[k] &&
                (bi < 0 || s_reps[i].due[k] < s_reps[bi].due[bk])) {
                bi = i;
                bk = k;
            }
    ck_assert_int_ge(bi, 0);
    s_rep_t *r = &s_reps[bi];
    r->armed[bk] = false;
    if (r->due[bk] > s_now)
        s_now = r->due[bk];
    s_exec(bi, bly_cons_core_on_timer(r->core, &r->timers[bk], s_now));
}

static uint64_t
s_height(int32_t i)
{
    return bly_cons_core_height(s_reps[i].core);
}

//  Run until every running replica is at `height` or more; false when the
//  virtual clock passes `limit_ms` first.
static bool
s_run_until(uint64_t height, int64_t limit_ms)
{
    int64_t end = s_now + limit_ms;
    while (s_now <= end) {
        bool done = true;
        for (int32_t i = 0; i < S_N; i++)
            done = done && (s_reps[i].down || s_height(i) >= height);
        if (done)
            return true;
        s_step();
    }
    return false;
}

//  Offer a transaction to every running replica's mempool (as relaying would).
static void
s_submit(const bly_kvapp_tx_t *tx)
{
    for (int32_t i = 0; i < S_N; i++)
        if (!s_reps[i].down)
            ck_assert_int_eq(bly_kvapp_submit(s_reps[i].app, tx), BLY_KVAPP_OK);
}

static void
s_unstake(uint32_t validator, uint64_t amount)
{
    bly_kvapp_tx_t tx = {.from = validator, .to = BLY_KVAPP_UNSTAKE, .amount = amount,
                         .nonce = bly_kvapp_next_nonce(s_reps[0].app, validator)};
    s_submit(&tx);
}

//  Every running replica holds these voting powers.
static void
s_assert_powers(const uint64_t *want)
{
    uint64_t total = 0;
    for (uint32_t v = 0; v < S_N; v++)
        total += want[v];
    for (int32_t i = 0; i < S_N; i++) {
        if (s_reps[i].down)
            continue;
        for (uint32_t v = 0; v < S_N; v++)
            ck_assert_msg(bly_cons_core_power(s_reps[i].core, v) == want[v],
                          "replica %d: validator %u has power %llu, want %llu", i, v,
                          (unsigned long long) bly_cons_core_power(s_reps[i].core, v),
                          (unsigned long long) want[v]);
        ck_assert_uint_eq(bly_cons_core_total_power(s_reps[i].core), total);
    }
}

//  Round of the COMMIT of `height` in replica i's store.
static int32_t
s_commit_round(int32_t i, uint64_t height)
{
    bly_cons_msg_t msg;
    ck_assert_int_eq(bly_cons_msg_decode(&msg, s_reps[i].commits[height - 1],
                                         s_reps[i].sizes[height - 1]), 0);
    return msg.vote.round;
}

//  A committed unstake lowers the power from the next height; a validator
//  unstaked to 0 has power 0 and never proposes (with it cut off, every
//  later height is decided in round 0: no round waits for its proposal).
START_TEST(test_power_follows_stake)
{
    s_setup();
    ck_assert(s_run_until(3, 10000));
    s_unstake(2, 600);
    ck_assert(s_run_until(s_height(0) + 3, 10000));
    uint64_t want[S_N] = {1000, 1000, 400, 1000};
    s_assert_powers(want);
    s_unstake(3, 1000);
    ck_assert(s_run_until(s_height(0) + 3, 10000));
    want[3] = 0;
    s_assert_powers(want);
    ck_assert_uint_eq(bly_kvapp_stake(s_reps[1].app, 3), 0);
    s_reps[3].down = true;
    uint64_t from = s_height(0);
    ck_assert(s_run_until(from + 20, 20000));
    for (uint64_t h = from; h < from + 20; h++)
        ck_assert_int_eq(s_commit_round(0, h), 0);
    //  Its votes are dropped unchecked: it cannot help a quorum.
    ck_assert_uint_eq(bly_cons_core_power(s_reps[0].core, 3), 0);
    s_teardown();
}
END_TEST

//  Stakes that leave no power are refused: the genesis powers apply. Here
//  0, 1 and 2 unstake everything (3 alone decides), then 3 does too.
START_TEST(test_zero_total_refused)
{
    s_setup();
    ck_assert(s_run_until(2, 10000));
    for (uint32_t v = 0; v < 3; v++)
        s_unstake(v, S_STAKE);
    ck_assert(s_run_until(s_height(0) + 3, 10000));
    uint64_t want[S_N] = {0, 0, 0, S_STAKE};
    s_assert_powers(want);
    s_unstake(3, S_STAKE);
    ck_assert(s_run_until(s_height(0) + 3, 10000));
    for (uint32_t v = 0; v < S_N; v++) {
        ck_assert_uint_eq(bly_kvapp_stake(s_reps[0].app, v), 0);
        want[v] = S_STAKE;
    }
    s_assert_powers(want);
    //  The chain goes on with them, and a restart replays to the same powers.
    ck_assert(s_run_until(s_height(0) + 3, 10000));
    bly_cons_core_destroy(&s_reps[2].core);
    bly_kvapp_destroy(&s_reps[2].app);
    s_boot(2);
    s_assert_powers(want);
    s_teardown();
}
END_TEST

//  Validator 3 signs two conflicting prevotes at the current height.
static void
s_equivocate(void)
{
    uint64_t h = s_height(0);
    for (uint8_t k = 1; k <= 2; k++) {
        bly_cons_msg_t pv = {.type = BLY_CONS_PREVOTE,
                             .vote = {.type = BLY_CONS_PREVOTE, .height = h, .pol_round = -1,
                                      .validator = 3, .has_id = true, .id = {k, 0xee}}};
        bly_cons_vote_sign(&pv.vote, "power-chain", s_sk[3]);
        uint8_t wire[256];
        size_t n = bly_cons_msg_encode(&pv, wire, sizeof(wire));
        ck_assert_uint_gt(n, 0);
        for (int32_t to = 0; to < 3; to++)
            s_send(3, to, wire, n);
    }
}

//  A committed equivocation tombstones validator 3: power 0 from the next
//  height on, the other three keep committing; and with replica 2 cut off,
//  replicas 0, 1 and 3 (3/4 of the genesis power, a quorum if 3 still
//  counted) decide nothing until 2 is back.
START_TEST(test_tombstoned_votes_ignored)
{
    s_setup();
    ck_assert(s_run_until(2, 10000));
    s_equivocate();
    for (int k = 0; k < 100 && bly_kvapp_burned(s_reps[0].app) == 0; k++)
        ck_assert(s_run_until(s_height(0) + 1, 10000));
    ck_assert(bly_kvapp_tombstoned(s_reps[0].app, 3));
    ck_assert(s_run_until(s_height(0) + 1, 10000));
    uint64_t want[S_N] = {1000, 1000, 1000, 0};
    s_assert_powers(want);
    ck_assert_uint_eq(bly_kvapp_stake(s_reps[0].app, 3), 900);    //  10 % burned.
    ck_assert_uint_eq(bly_cons_core_evidence_pending(s_reps[0].core), 0);
    //  The same votes again: evidence against a validator without power is ignored.
    s_equivocate();
    ck_assert(s_run_until(s_height(0) + 5, 10000));
    ck_assert_uint_eq(bly_kvapp_stake(s_reps[0].app, 3), 900);
    s_reps[2].down = true;
    (void) s_run_until(UINT64_MAX, 1000);    //  What was in flight lands.
    uint64_t stuck = s_height(0);
    ck_assert(!s_run_until(stuck + 1, 3000));
    ck_assert_uint_eq(s_height(0), stuck);
    ck_assert_uint_eq(s_height(1), stuck);
    ck_assert_uint_eq(s_height(3), stuck);
    s_reps[2].down = false;
    ck_assert(s_run_until(stuck + 3, 30000));
    s_teardown();
}
END_TEST

//  Replica 3 is cut off while the others commit unstakes that leave powers
//  {1000, 1000, 200, 0}; then replica 2 is cut off too and 0 and 1 commit
//  alone (2000 of 2200). Replica 3 and 2 come back and catch up by sync:
//  those certificates verify only with the powers of their heights (under
//  the genesis powers 2000 of 4000 is no quorum). A restarted replica
//  replays its block store to the same powers.
START_TEST(test_catch_up_across_power_change)
{
    s_setup();
    s_reps[3].down = true;
    ck_assert(s_run_until(2, 10000));
    s_unstake(3, 1000);
    s_unstake(2, 800);
    ck_assert(s_run_until(s_height(0) + 3, 10000));
    uint64_t want[S_N] = {1000, 1000, 200, 0};
    s_assert_powers(want);
    s_reps[2].down = true;
    uint64_t top = s_height(0) + 6;
    ck_assert(s_run_until(top, 20000));
    //  The newest certificate: signed by 0 and 1 only.
    bly_cons_msg_t msg;
    ck_assert_int_eq(bly_cons_msg_decode(&msg, s_reps[0].commits[top - 2],
                                         s_reps[0].sizes[top - 2]), 0);
    uint64_t genesis_power = 0;
    for (uint32_t e = 0; e < msg.cert_count; e++) {
        uint16_t v = bly_cons_get_u16(msg.cert + (size_t) e * BLY_CONS_CERT_ENTRY_SIZE);
        ck_assert_uint_lt(v, 2);
        genesis_power += S_STAKE;
    }
    ck_assert(!bly_cons_is_quorum(genesis_power, S_N * S_STAKE, false));
    s_reps[2].down = false;
    s_reps[3].down = false;
    //  Both catch up (at the next gossip they ask for the blocks they lack).
    ck_assert(s_run_until(top + 2, 30000));
    ck_assert_uint_gt(bly_cons_core_stats(s_reps[3].core)->synced, 0);
    s_assert_powers(want);
    //  Restart: a fresh core and app replay the block store to the same powers.
    uint64_t height = s_height(1);
    bly_cons_core_destroy(&s_reps[1].core);
    bly_kvapp_destroy(&s_reps[1].app);
    s_boot(1);
    ck_assert_uint_eq(s_height(1), height);
    s_assert_powers(want);
    s_teardown();
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("cons_power");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, test_powers_scale);
    tcase_add_test(tc, test_proposer_skips_power_zero);
    tcase_add_test(tc, test_kvapp_unstake_and_tombstone);
    suite_add_tcase(suite, tc);
    tc = tcase_create("cluster");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_power_follows_stake);
    tcase_add_test(tc, test_tombstoned_votes_ignored);
    tcase_add_test(tc, test_catch_up_across_power_change);
    tcase_add_test(tc, test_zero_total_refused);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
