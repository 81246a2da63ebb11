/*  =========================================================================
    test_consensus - messages, quorum and proposer rules, the transfer app,
    the core's durability and input checks, and the simulator (seeds,
    replay, and the deliberately broken quorum that must be caught)
    ========================================================================= */

#include <check.h>
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "bly_sim.h"
#include "consensus/bly_cons_core.h"
#include "consensus/bly_cons_ledger.h"
#include "consensus/bly_kvapp.h"

//  --------------------------------------------------------------------------
//  Helpers

static uint8_t s_pk[4][32];
static uint8_t s_sk[4][64];

static void
s_keys(void)
{
    ck_assert_int_ge(sodium_init(), 0);
    for (int i = 0; i < 4; i++) {
        uint8_t seed[32] = {(uint8_t) (i + 1)};
        crypto_sign_seed_keypair(s_pk[i], s_sk[i], seed);
    }
}

static bly_cons_vote_t
s_vote(uint8_t type, uint64_t height, int32_t round, uint16_t validator, bool has_id,
       uint8_t fill)
{
    bly_cons_vote_t v = {.type = type, .height = height, .round = round, .pol_round = -1,
                         .validator = validator, .has_id = has_id};
    if (has_id)
        memset(v.id, fill, 32);
    bly_cons_vote_sign(&v, "test-chain", s_sk[validator]);
    return v;
}

static size_t
s_vote_msg(const bly_cons_vote_t *v, uint8_t *out)
{
    bly_cons_msg_t msg = {.type = v->type, .vote = *v};
    return bly_cons_msg_encode(&msg, out, 2 + BLY_CONS_VOTE_SIZE);
}

//  A replica with its own transfer app and an in-memory block store.
typedef struct {
    bly_kvapp_t *app;
    uint8_t *commits[64];
    size_t commit_sizes[64];
    uint32_t commit_count;
    bly_cons_core_t *core;
} s_replica_t;

static uint32_t
s_r_load(void *self, uint64_t h, uint8_t *buf, uint32_t max)
{
    s_replica_t *r = self;
    if (h == 0 || h > r->commit_count || r->commit_sizes[h - 1] > max)
        return 0;
    memcpy(buf, r->commits[h - 1], r->commit_sizes[h - 1]);
    return (uint32_t) r->commit_sizes[h - 1];
}

static bly_cons_config_t
s_config(uint32_t n, int32_t self_index)
{
    bly_cons_config_t cfg = {.validator_count = n, .self_index = self_index,
                             .block_size_max = 8192, .timeout_propose_ms = 300,
                             .timeout_prevote_ms = 100, .timeout_precommit_ms = 100,
                             .timeout_delta_ms = 50, .gossip_ms = 40, .timeout_commit_ms = 0};
    strcpy(cfg.chain_id, "test-chain");
    for (uint32_t i = 0; i < n; i++) {
        memcpy(cfg.pubkeys[i], s_pk[i], 32);
        cfg.powers[i] = 1;
    }
    return cfg;
}

static void
s_replica_new(s_replica_t *r, const bly_cons_config_t *cfg)
{
    memset(r, 0, sizeof(*r));
    r->app = bly_kvapp_new(8, 1000, cfg->validator_count, 1000, 10, 64, 16);
    ck_assert_ptr_nonnull(r->app);
    bly_cons_app_t app = bly_kvapp_app(r->app, s_r_load, r);
    r->core = bly_cons_core_new(cfg, cfg->self_index >= 0 ? s_sk[cfg->self_index] : NULL, app);
    ck_assert_ptr_nonnull(r->core);
}

static void
s_replica_destroy(s_replica_t *r)
{
    bly_cons_core_destroy(&r->core);
    bly_kvapp_destroy(&r->app);
    for (uint32_t i = 0; i < r->commit_count; i++)
        free(r->commits[i]);
}

//  Store commits the way a shell does; returns the number of broadcasts.
static int
s_store(s_replica_t *r, const bly_cons_effects_t *fx)
{
    int broadcasts = 0;
    for (uint32_t i = 0; i < fx->count; i++) {
        const bly_cons_effect_t *e = &fx->items[i];
        if (e->kind == BLY_CONS_FX_COMMIT) {
            ck_assert_uint_lt(r->commit_count, 64);
            r->commits[r->commit_count] = malloc(e->size);
            memcpy(r->commits[r->commit_count], e->data, e->size);
            r->commit_sizes[r->commit_count++] = e->size;
        }
        if (e->kind == BLY_CONS_FX_BROADCAST)
            broadcasts++;
    }
    return broadcasts;
}

//  --------------------------------------------------------------------------
//  Messages

START_TEST(test_vote_roundtrip_and_strictness)
{
    s_keys();
    bly_cons_vote_t v = s_vote(BLY_CONS_PREVOTE, 7, 3, 2, true, 0xab);
    uint8_t buf[256];
    size_t size = s_vote_msg(&v, buf);
    ck_assert_uint_eq(size, 2 + BLY_CONS_VOTE_SIZE);
    bly_cons_msg_t msg;
    ck_assert_int_eq(bly_cons_msg_decode(&msg, buf, size), 0);
    ck_assert_int_eq(memcmp(&msg.vote.sig, v.sig, 64), 0);
    ck_assert(bly_cons_vote_verify(&msg.vote, "test-chain", s_pk[2]));
    //  Bound to the chain id, the signer, and every field.
    ck_assert(!bly_cons_vote_verify(&msg.vote, "other-chain", s_pk[2]));
    ck_assert(!bly_cons_vote_verify(&msg.vote, "test-chain", s_pk[1]));
    msg.vote.round = 4;
    ck_assert(!bly_cons_vote_verify(&msg.vote, "test-chain", s_pk[2]));
    //  Truncated, trailing, wrong version, unknown type.
    ck_assert_int_eq(bly_cons_msg_decode(&msg, buf, size - 1), -1);
    ck_assert_int_eq(bly_cons_msg_decode(&msg, buf, size + 1), -1);
    buf[0] = 2;
    ck_assert_int_eq(bly_cons_msg_decode(&msg, buf, size), -1);
    buf[0] = 1;
    buf[1] = 9;
    ck_assert_int_eq(bly_cons_msg_decode(&msg, buf, size), -1);
    //  Non-canonical nil: id bytes must be zero.
    bly_cons_vote_t nil = s_vote(BLY_CONS_PRECOMMIT, 7, 3, 2, false, 0);
    size = s_vote_msg(&nil, buf);
    ck_assert_int_eq(bly_cons_msg_decode(&msg, buf, size), 0);
    buf[2 + 20 + 5] = 1;
    ck_assert_int_eq(bly_cons_msg_decode(&msg, buf, size), -1);
    //  Height 0, negative round, round past the limit.
    bly_cons_vote_t bad = v;
    bad.height = 0;
    size = s_vote_msg(&bad, buf);
    ck_assert_int_eq(bly_cons_msg_decode(&msg, buf, size), -1);
    bad = v;
    bad.round = BLY_CONS_ROUND_MAX;
    size = s_vote_msg(&bad, buf);
    ck_assert_int_eq(bly_cons_msg_decode(&msg, buf, size), 0);
    bad.round = BLY_CONS_ROUND_MAX + 1;
    size = s_vote_msg(&bad, buf);
    ck_assert_int_eq(bly_cons_msg_decode(&msg, buf, size), -1);
}
END_TEST

START_TEST(test_block_and_proposal_codec)
{
    s_keys();
    uint8_t payload[48] = {1, 2, 3};
    bly_cons_block_t hdr = {.height = 5, .time_ms = 99, .payload = payload, .payload_size = 48};
    memset(hdr.prev_id, 7, 32);
    uint8_t block[512];
    size_t size = bly_cons_block_encode(&hdr, block, sizeof(block));
    ck_assert_uint_eq(size, BLY_CONS_BLOCK_HEADER_SIZE + 4 + 48);
    bly_cons_block_t back;
    ck_assert_int_eq(bly_cons_block_decode(&back, block, size), 0);
    ck_assert_uint_eq(back.height, 5);
    ck_assert_uint_eq(back.payload_size, 48);
    ck_assert_int_eq(bly_cons_block_decode(&back, block, size - 1), -1);
    ck_assert_int_eq(bly_cons_block_decode(&back, block, size + 1), -1);
    //  Evidence count past the limit.
    uint8_t copy[512];
    memcpy(copy, block, size);
    bly_cons_put_u16(copy + 17 + 64, BLY_CONS_BLOCK_EVIDENCE_MAX + 1);
    ck_assert_int_eq(bly_cons_block_decode(&back, copy, size), -1);
    //  Too small a buffer: encode refuses.
    ck_assert_uint_eq(bly_cons_block_encode(&hdr, block, size - 1), 0);
    //  A proposal's POL round must lie before its round.
    bly_cons_vote_t p = {.type = BLY_CONS_PROPOSAL, .height = 5, .round = 2, .pol_round = 2,
                         .has_id = true};
    bly_cons_msg_t msg = {.type = BLY_CONS_PROPOSAL, .vote = p, .block = block,
                          .block_size = (uint32_t) size};
    uint8_t out[1024];
    size_t used = bly_cons_msg_encode(&msg, out, sizeof(out));
    ck_assert_uint_gt(used, 0);
    bly_cons_msg_t dec;
    ck_assert_int_eq(bly_cons_msg_decode(&dec, out, used), -1);
    msg.vote.pol_round = 1;
    used = bly_cons_msg_encode(&msg, out, sizeof(out));
    ck_assert_int_eq(bly_cons_msg_decode(&dec, out, used), 0);
    ck_assert_uint_eq(dec.block_size, size);
    //  A declared block size past the limit is refused before anything else.
    bly_cons_put_u32(out + 2 + BLY_CONS_VOTE_SIZE, BLY_CONS_BLOCK_SIZE_MAX + 1);
    ck_assert_int_eq(bly_cons_msg_decode(&dec, out, used), -1);
}
END_TEST

//  The fuzz seed corpus holds one valid input of every message type; the
//  fuzz target's canonical re-encoding check passes on each.
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

START_TEST(test_fuzz_corpus_decodes)
{
    static const char *names[] = {"prevote", "precommit-nil", "proposal", "evidence", "commit",
                                  "sync_req"};
    const char *root = getenv("BLY_SOURCE_DIR");
    ck_assert_ptr_nonnull(root);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/consensus_msg/%s", root, names[i]);
        FILE *file = fopen(path, "rb");
        ck_assert_msg(file != NULL, "%s", path);
        uint8_t buf[4096];
        size_t size = fread(buf, 1, sizeof(buf), file);
        fclose(file);
        bly_cons_msg_t msg;
        ck_assert_msg(bly_cons_msg_decode(&msg, buf, size) == 0, "%s", names[i]);
        ck_assert_int_eq(LLVMFuzzerTestOneInput(buf, size), 0);
        //  Every truncation is refused.
        for (size_t cut = 0; cut < size; cut++)
            ck_assert_int_eq(bly_cons_msg_decode(&msg, buf, cut), -1);
    }
}
END_TEST

//  --------------------------------------------------------------------------
//  Quorum and proposer

START_TEST(test_quorum_rules)
{
    //  Strictly more than 2/3: 3 of 4, not 2 of 4; 2 of 3 is not enough.
    ck_assert(bly_cons_is_quorum(3, 4, false));
    ck_assert(!bly_cons_is_quorum(2, 4, false));
    ck_assert(!bly_cons_is_quorum(2, 3, false));
    ck_assert(bly_cons_is_quorum(3, 3, false));
    ck_assert(!bly_cons_is_quorum(66, 100, false));
    ck_assert(!bly_cons_is_quorum(200, 300, false));
    ck_assert(bly_cons_is_quorum(201, 300, false));
    //  The broken rule (2f) accepts 2 of 4: that is the bug the simulator must catch.
    ck_assert(bly_cons_is_quorum(2, 4, true));
    //  f+1 skip: more than 1/3.
    ck_assert(!bly_cons_is_skip(1, 4));
    ck_assert(bly_cons_is_skip(2, 4));
    ck_assert(!bly_cons_is_skip(1, 3));
}
END_TEST

START_TEST(test_proposer_weighted)
{
    s_keys();
    bly_cons_config_t cfg = s_config(3, 0);
    cfg.powers[0] = 1;
    cfg.powers[1] = 2;
    cfg.powers[2] = 3;
    //  Over any window of total power positions, each proposes its power's share.
    for (uint64_t start = 1; start < 20; start++) {
        uint32_t counts[3] = {0};
        for (uint64_t k = 0; k < 6; k++)
            counts[bly_cons_proposer(cfg.powers, cfg.validator_count, start + k, 0)]++;
        ck_assert_uint_eq(counts[0], 1);
        ck_assert_uint_eq(counts[1], 2);
        ck_assert_uint_eq(counts[2], 3);
    }
    //  Rounds rotate too, and the function is pure.
    ck_assert_uint_eq(bly_cons_proposer(cfg.powers, cfg.validator_count, 4, 1), bly_cons_proposer(cfg.powers, cfg.validator_count, 5, 0));
    ck_assert_uint_eq(bly_cons_proposer(cfg.powers, cfg.validator_count, 9, 2), bly_cons_proposer(cfg.powers, cfg.validator_count, 9, 2));
}
END_TEST

//  --------------------------------------------------------------------------
//  Transfer application and mempool

START_TEST(test_kvapp_mempool)
{
    bly_kvapp_t *app = bly_kvapp_new(4, 100, 2, 1000, 10, 4, 2);
    ck_assert_ptr_nonnull(app);
    ck_assert_ptr_null(bly_kvapp_new(1, 100, 2, 1000, 10, 4, 2));
    ck_assert_ptr_null(bly_kvapp_new(4, 100, 2, 1000, 101, 4, 2));
    ck_assert_ptr_null(bly_kvapp_new(4, 100, 2, 1000, 10, BLY_MEMPOOL_TX_MAX + 1, 2));
    uint64_t supply = bly_kvapp_supply(app);
    bly_kvapp_tx_t tx = {.from = 0, .to = 1, .amount = 60, .nonce = 0};
    ck_assert_int_eq(bly_kvapp_submit(app, &tx), BLY_KVAPP_OK);
    ck_assert_int_eq(bly_kvapp_submit(app, &tx), BLY_KVAPP_ERR_DUPLICATE);
    tx.nonce = 5;
    ck_assert_int_eq(bly_kvapp_submit(app, &tx), BLY_KVAPP_ERR_NONCE);
    tx.nonce = 1;    //  60 + 60 > 100.
    ck_assert_int_eq(bly_kvapp_submit(app, &tx), BLY_KVAPP_ERR_FUNDS);
    tx.amount = 40;
    ck_assert_int_eq(bly_kvapp_submit(app, &tx), BLY_KVAPP_OK);
    bly_kvapp_tx_t bad = {.from = 0, .to = 0, .amount = 1, .nonce = 2};
    ck_assert_int_eq(bly_kvapp_submit(app, &bad), BLY_KVAPP_ERR_MALFORMED);
    bad.to = 9;
    ck_assert_int_eq(bly_kvapp_submit(app, &bad), BLY_KVAPP_ERR_MALFORMED);
    bly_kvapp_tx_t t2 = {.from = 2, .to = 3, .amount = 1, .nonce = 0};
    ck_assert_int_eq(bly_kvapp_submit(app, &t2), BLY_KVAPP_OK);
    bly_kvapp_tx_t t3 = {.from = 0, .to = 3, .amount = 0, .nonce = 2};
    ck_assert_int_eq(bly_kvapp_submit(app, &t3), BLY_KVAPP_ERR_MALFORMED);
    t3.from = 1;
    t3.amount = 1;
    t3.nonce = 0;
    ck_assert_int_eq(bly_kvapp_submit(app, &t3), BLY_KVAPP_OK);
    //  Full (4): account 3's first transfer evicts account 0's newest (it holds 2).
    bly_kvapp_tx_t t4 = {.from = 3, .to = 0, .amount = 1, .nonce = 0};
    ck_assert_int_eq(bly_kvapp_submit(app, &t4), BLY_KVAPP_OK);
    ck_assert_uint_eq(bly_kvapp_pending(app), 4);
    ck_assert_uint_eq(bly_kvapp_next_nonce(app, 0), 1);
    //  Nobody holds more than one now: a second from account 3 is refused.
    t4.nonce = 1;
    ck_assert_int_eq(bly_kvapp_submit(app, &t4), BLY_KVAPP_ERR_FULL);
    //  Blocks hold at most block_tx_max (2) transfers and apply in order.
    uint8_t payload[256];
    uint32_t size = bly_kvapp_build(app, 1, payload, sizeof(payload));
    ck_assert_uint_eq(size, 2 * BLY_KVAPP_TX_SIZE);
    ck_assert_int_eq(bly_kvapp_check(app, 1, payload, size), 0);
    ck_assert_int_eq(bly_kvapp_check(app, 2, payload, size), -1);
    ck_assert_int_eq(bly_kvapp_check(app, 1, payload, size - 1), -1);
    //  Byte limit: a one-transfer budget builds one.
    ck_assert_uint_eq(bly_kvapp_build(app, 1, payload, BLY_KVAPP_TX_SIZE + 5), BLY_KVAPP_TX_SIZE);
    size = bly_kvapp_build(app, 1, payload, sizeof(payload));
    uint8_t hash[32];
    uint16_t offender = 1;
    ck_assert_int_eq(bly_kvapp_apply(app, 1, payload, size, &offender, 1, hash), 0);
    ck_assert_uint_eq(bly_kvapp_balance(app, 0), 40);
    ck_assert_uint_eq(bly_kvapp_stake(app, 1), 900);
    ck_assert_uint_eq(bly_kvapp_burned(app), 100);
    ck_assert_uint_eq(bly_kvapp_supply(app), supply);
    ck_assert_uint_eq(bly_kvapp_pending(app), 2);
    //  Replaying the same block at the next height fails: nonces are used.
    ck_assert_int_eq(bly_kvapp_apply(app, 2, payload, size, NULL, 0, hash), -1);
    bly_kvapp_destroy(&app);
    bly_kvapp_destroy(&app);
}
END_TEST

//  --------------------------------------------------------------------------
//  The core

static const bly_cons_effect_t *
s_find(const bly_cons_effects_t *fx, uint8_t kind, uint32_t from)
{
    for (uint32_t i = from; i < fx->count; i++)
        if (fx->items[i].kind == kind)
            return &fx->items[i];
    return NULL;
}

static void
s_fire(s_replica_t *r, const bly_cons_effects_t *fx, uint8_t timer_kind)
{
    for (uint32_t i = 0; i < fx->count; i++) {
        if (fx->items[i].kind == BLY_CONS_FX_TIMER && fx->items[i].timer.kind == timer_kind) {
            bly_cons_timer_t t = fx->items[i].timer;
            s_store(r, bly_cons_core_on_timer(r->core, &t, 0));
            return;
        }
    }
    ck_abort_msg("no timer of kind %u", timer_kind);
}

//  One validator decides alone: each height is proposal, prevote,
//  precommit, decision, with the previous app hash in the next header.
START_TEST(test_single_validator_chain)
{
    s_keys();
    bly_cons_config_t cfg = s_config(1, 0);
    s_replica_t r;
    s_replica_new(&r, &cfg);
    bly_kvapp_tx_t tx = {.from = 0, .to = 1, .amount = 5, .nonce = 0};
    ck_assert_int_eq(bly_kvapp_submit(r.app, &tx), BLY_KVAPP_OK);
    const bly_cons_effects_t *fx = bly_cons_core_start(r.core, 0);
    for (uint64_t h = 1; h <= 5; h++) {
        ck_assert_uint_eq(bly_cons_core_height(r.core), h + 1);
        const bly_cons_effect_t *commit = s_find(fx, BLY_CONS_FX_COMMIT, 0);
        ck_assert_ptr_nonnull(commit);
        //  Every vote is durable before it leaves.
        const bly_cons_effect_t *persist = s_find(fx, BLY_CONS_FX_PERSIST, 0);
        ck_assert_ptr_nonnull(persist);
        ck_assert(persist->sync);
        ck_assert(persist < s_find(fx, BLY_CONS_FX_BROADCAST, 0));
        s_store(&r, fx);
        uint8_t hash[32];
        bly_kvapp_hash(r.app, hash);
        bly_cons_timer_t next_height = {.kind = BLY_CONS_TIMER_COMMIT, .height = h + 1};
        fx = bly_cons_core_on_timer(r.core, &next_height, 0);
        //  The next block carries the app hash after this one.
        const bly_cons_effect_t *next = s_find(fx, BLY_CONS_FX_COMMIT, 0);
        ck_assert_ptr_nonnull(next);
        bly_cons_msg_t msg;
        bly_cons_block_t hdr;
        ck_assert_int_eq(bly_cons_msg_decode(&msg, next->data, next->size), 0);
        ck_assert_int_eq(bly_cons_block_decode(&hdr, msg.block, msg.block_size), 0);
        ck_assert_int_eq(memcmp(hdr.app_hash, hash, 32), 0);
        ck_assert_uint_eq(hdr.height, h + 1);
        if (h == 5)
            s_store(&r, fx);
    }
    ck_assert_uint_eq(bly_kvapp_balance(r.app, 1), 1005);
    ck_assert_uint_eq(bly_cons_core_stats(r.core)->commits, 6);
    s_replica_destroy(&r);
}
END_TEST

//  Proposal re-sends (gossip) of `fx`: the peers they go to, as a bit set; a
//  broadcast of the proposal counts as all three others.
static uint32_t
s_proposal_resends(const bly_cons_effects_t *fx, uint32_t self_index)
{
    uint32_t to = 0;
    for (uint32_t i = 0; i < fx->count; i++) {
        const bly_cons_effect_t *e = &fx->items[i];
        bly_cons_msg_t m;
        if ((e->kind != BLY_CONS_FX_SEND && e->kind != BLY_CONS_FX_BROADCAST) ||
            bly_cons_msg_decode(&m, e->data, e->size) != 0 || m.type != BLY_CONS_PROPOSAL)
            continue;
        to |= e->kind == BLY_CONS_FX_SEND ? 1u << e->peer : 0xfu & ~(1u << self_index);
    }
    return to;
}

//  Gossip re-sends the own proposal (a whole block) only to the peers that have
//  not voted for it yet.
START_TEST(test_gossip_proposal_to_lacking_peers)
{
    s_keys();
    bly_cons_config_t cfg = s_config(4, 0);
    cfg.self_index = (int32_t) bly_cons_proposer(cfg.powers, cfg.validator_count, 1, 0);
    uint32_t me = (uint32_t) cfg.self_index;
    s_replica_t r;
    s_replica_new(&r, &cfg);
    const bly_cons_effects_t *fx = bly_cons_core_start(r.core, 0);
    const bly_cons_effect_t *prop = s_find(fx, BLY_CONS_FX_BROADCAST, 0);
    ck_assert_ptr_nonnull(prop);
    bly_cons_msg_t pm;
    ck_assert_int_eq(bly_cons_msg_decode(&pm, prop->data, prop->size), 0);
    ck_assert_int_eq(pm.type, BLY_CONS_PROPOSAL);
    uint8_t id[32];
    memcpy(id, pm.vote.id, 32);
    bly_cons_timer_t gossip = {.kind = BLY_CONS_TIMER_GOSSIP, .height = 1};
    fx = bly_cons_core_on_timer(r.core, &gossip, 10);
    ck_assert_uint_eq(s_proposal_resends(fx, me), 0xfu & ~(1u << me));
    //  Two peers prevote for it: the next gossip skips them.
    uint32_t voted = 0;
    for (uint32_t v = 0, n = 0; v < 4 && n < 2; v++) {
        if (v == me)
            continue;
        bly_cons_msg_t pv = {.type = BLY_CONS_PREVOTE,
                             .vote = {.type = BLY_CONS_PREVOTE, .height = 1, .pol_round = -1,
                                      .validator = (uint16_t) v, .has_id = true}};
        memcpy(pv.vote.id, id, 32);
        bly_cons_vote_sign(&pv.vote, cfg.chain_id, s_sk[v]);
        uint8_t wire[256];
        size_t size = bly_cons_msg_encode(&pv, wire, sizeof(wire));
        ck_assert_uint_gt(size, 0);
        (void) bly_cons_core_on_message(r.core, wire, size, (int32_t) v, 20);
        voted |= 1u << v;
        n++;
    }
    fx = bly_cons_core_on_timer(r.core, &gossip, 60);
    ck_assert_uint_eq(s_proposal_resends(fx, me), 0xfu & ~(1u << me) & ~voted);
    s_replica_destroy(&r);
}
END_TEST

//  A block for height 1 of the 4-validator genesis, proposed by `proposer`,
//  with one deliberate defect (`defect` 0: none).
enum { S_OK, S_BAD_APP_HASH, S_BAD_PREV, S_BAD_HEIGHT, S_BAD_TX, S_BAD_EVIDENCE, S_DEFECTS };

static size_t
s_proposal_with(const bly_cons_config_t *cfg, uint32_t proposer, uint64_t time_ms, int defect,
                uint8_t *out)
{
    bly_kvapp_t *app = bly_kvapp_new(8, 1000, cfg->validator_count, 1000, 10, 64, 16);
    uint8_t payload[BLY_KVAPP_TX_SIZE];
    bly_kvapp_tx_t tx = {.from = 0, .to = 1, .amount = 5000, .nonce = 0};    //  Unfunded.
    bly_kvapp_tx_put(&tx, payload);
    bly_cons_block_t hdr = {.height = defect == S_BAD_HEIGHT ? 2 : 1, .time_ms = time_ms,
                            .payload = payload,
                            .payload_size = defect == S_BAD_TX ? BLY_KVAPP_TX_SIZE : 0};
    bly_kvapp_hash(app, hdr.app_hash);
    bly_kvapp_destroy(&app);
    if (defect == S_BAD_APP_HASH)
        hdr.app_hash[0] ^= 1;
    if (defect == S_BAD_PREV)
        hdr.prev_id[3] = 1;
    //  Evidence whose two votes agree: not an equivocation.
    uint8_t ev[2 * BLY_CONS_VOTE_SIZE];
    if (defect == S_BAD_EVIDENCE) {
        bly_cons_vote_t a = s_vote(BLY_CONS_PREVOTE, 1, 0, 2, true, 9);
        bly_cons_vote_put(&a, ev);
        bly_cons_vote_put(&a, ev + BLY_CONS_VOTE_SIZE);
        hdr.evidence = ev;
        hdr.evidence_count = 1;
    }
    uint8_t block[1024];
    size_t size = bly_cons_block_encode(&hdr, block, sizeof(block));
    bly_cons_vote_t v = {.type = BLY_CONS_PROPOSAL, .height = 1, .round = 0, .pol_round = -1,
                         .validator = (uint16_t) proposer, .has_id = true};
    bly_cons_block_id(block, size, v.id);
    bly_cons_vote_sign(&v, cfg->chain_id, s_sk[proposer]);
    bly_cons_msg_t msg = {.type = BLY_CONS_PROPOSAL, .vote = v, .block = block,
                          .block_size = (uint32_t) size};
    return bly_cons_msg_encode(&msg, out, 2048);
}

static size_t
s_proposal(const bly_cons_config_t *cfg, uint32_t proposer, uint64_t time_ms, uint8_t *out)
{
    return s_proposal_with(cfg, proposer, time_ms, S_OK, out);
}

//  valid(v) (L22): every defect of a proposed block makes the replica prevote
//  nil; the sound block gets a prevote for its id.
START_TEST(test_invalid_proposals_get_nil)
{
    s_keys();
    bly_cons_config_t probe = s_config(4, 0);
    uint32_t proposer = bly_cons_proposer(probe.powers, probe.validator_count, 1, 0);
    bly_cons_config_t cfg = s_config(4, (int32_t) ((proposer + 1) % 4));
    for (int defect = S_OK; defect < S_DEFECTS; defect++) {
        s_replica_t r;
        s_replica_new(&r, &cfg);
        s_store(&r, bly_cons_core_start(r.core, 0));
        uint8_t prop[2048];
        size_t size = s_proposal_with(&cfg, proposer, 1, defect, prop);
        const bly_cons_effects_t *fx = bly_cons_core_on_message(r.core, prop, size, -1, 2);
        const bly_cons_effect_t *send = s_find(fx, BLY_CONS_FX_BROADCAST, 0);
        ck_assert_msg(send != NULL, "defect %d", defect);
        bly_cons_msg_t msg;
        ck_assert_int_eq(bly_cons_msg_decode(&msg, send->data, send->size), 0);
        ck_assert_uint_eq(msg.type, BLY_CONS_PREVOTE);
        ck_assert_msg(msg.vote.has_id == (defect == S_OK), "defect %d", defect);
        s_replica_destroy(&r);
    }
}
END_TEST

//  The prevote is persisted (fsync) before it is broadcast; after a crash
//  the replica restores it from the WAL, re-sends the same bytes and never
//  signs a different prevote for that round.
START_TEST(test_wal_restart_no_double_sign)
{
    s_keys();
    bly_cons_config_t probe = s_config(4, 0);
    uint32_t proposer = bly_cons_proposer(probe.powers, probe.validator_count, 1, 0);
    int32_t me = (int32_t) ((proposer + 1) % 4);
    bly_cons_config_t cfg = s_config(4, me);
    s_replica_t r;
    s_replica_new(&r, &cfg);
    s_store(&r, bly_cons_core_start(r.core, 0));
    uint8_t prop[1024];
    size_t prop_size = s_proposal(&cfg, proposer, 1, prop);
    const bly_cons_effects_t *fx = bly_cons_core_on_message(r.core, prop, prop_size, -1, 5);
    const bly_cons_effect_t *persist = s_find(fx, BLY_CONS_FX_PERSIST, 0);
    const bly_cons_effect_t *send = s_find(fx, BLY_CONS_FX_BROADCAST, 0);
    ck_assert_ptr_nonnull(persist);
    ck_assert_ptr_nonnull(send);
    ck_assert(persist->sync);
    ck_assert(persist < send);
    uint8_t wal[4096], vote[256];
    size_t wal_size = persist->size, vote_size = send->size;
    memcpy(wal, persist->data, wal_size);
    memcpy(vote, send->data, vote_size);
    bly_cons_msg_t msg;
    ck_assert_int_eq(bly_cons_msg_decode(&msg, vote, vote_size), 0);
    ck_assert_uint_eq(msg.type, BLY_CONS_PREVOTE);
    ck_assert(msg.vote.has_id);
    s_replica_destroy(&r);

    //  Restart from the WAL: a corrupt record and a future height are refused.
    s_replica_new(&r, &cfg);
    uint8_t bad[4096];
    memcpy(bad, wal, wal_size);
    ck_assert_int_eq(bly_cons_core_replay_wal(r.core, bad, wal_size - 1), -1);
    bly_cons_put_u64(bad + 1, 9);
    ck_assert_int_eq(bly_cons_core_replay_wal(r.core, bad, wal_size), -1);
    ck_assert_int_eq(bly_cons_core_replay_wal(r.core, wal, wal_size), 0);
    ck_assert_uint_eq(bly_cons_core_step(r.core), BLY_CONS_STEP_PREVOTE);
    s_store(&r, bly_cons_core_start(r.core, 100));
    //  A conflicting proposal for the same round arrives: nothing new is signed.
    prop_size = s_proposal(&cfg, proposer, 2, prop);
    fx = bly_cons_core_on_message(r.core, prop, prop_size, -1, 101);
    ck_assert_ptr_null(s_find(fx, BLY_CONS_FX_BROADCAST, 0));
    //  Gossip re-sends exactly the WAL's prevote.
    fx = bly_cons_core_on_timer(r.core, &(bly_cons_timer_t){.kind = BLY_CONS_TIMER_GOSSIP}, 140);
    send = s_find(fx, BLY_CONS_FX_BROADCAST, 0);
    ck_assert_ptr_nonnull(send);
    ck_assert_uint_eq(send->size, vote_size);
    ck_assert_int_eq(memcmp(send->data, vote, vote_size), 0);
    //  timeoutPropose of that round finds the step moved on: no nil prevote.
    fx = bly_cons_core_on_timer(
        r.core, &(bly_cons_timer_t){.kind = BLY_CONS_TIMER_PROPOSE, .height = 1, .round = 0}, 400);
    ck_assert_ptr_null(s_find(fx, BLY_CONS_FX_BROADCAST, 0));
    s_replica_destroy(&r);
}
END_TEST

//  Hostile input: no effect, no state change, a counter.
START_TEST(test_core_rejects_bad_input)
{
    s_keys();
    bly_cons_config_t cfg = s_config(4, 0);
    s_replica_t r;
    s_replica_new(&r, &cfg);
    s_store(&r, bly_cons_core_start(r.core, 0));
    uint8_t junk[64] = {1, 2, 3};
    const bly_cons_effects_t *fx = bly_cons_core_on_message(r.core, junk, sizeof(junk), 1, 1);
    ck_assert_uint_eq(fx->count, 0);
    //  A vote signed by the wrong key.
    bly_cons_vote_t v = s_vote(BLY_CONS_PREVOTE, 1, 0, 2, true, 1);
    bly_cons_vote_sign(&v, "test-chain", s_sk[3]);
    uint8_t buf[256];
    size_t size = s_vote_msg(&v, buf);
    fx = bly_cons_core_on_message(r.core, buf, size, 2, 2);
    ck_assert_uint_eq(fx->count, 0);
    //  A validator index past the set.
    v = s_vote(BLY_CONS_PREVOTE, 1, 0, 2, true, 1);
    v.validator = 9;
    size = s_vote_msg(&v, buf);
    fx = bly_cons_core_on_message(r.core, buf, size, 2, 3);
    ck_assert_uint_eq(fx->count, 0);
    //  A proposal from someone who is not the proposer.
    uint32_t proposer = bly_cons_proposer(cfg.powers, cfg.validator_count, 1, 0);
    uint8_t prop[1024];
    size = s_proposal(&cfg, (proposer + 2) % 4, 1, prop);
    fx = bly_cons_core_on_message(r.core, prop, size, 1, 4);
    ck_assert_uint_eq(fx->count, 0);
    ck_assert_uint_eq(bly_cons_core_stats(r.core)->rejected, 4);
    ck_assert_uint_eq(bly_cons_core_step(r.core), BLY_CONS_STEP_PROPOSE);
    //  Two different signed prevotes by one validator: evidence, gossiped.
    bly_cons_vote_t a = s_vote(BLY_CONS_PREVOTE, 1, 0, 3, true, 1);
    bly_cons_vote_t b = s_vote(BLY_CONS_PREVOTE, 1, 0, 3, false, 0);
    size = s_vote_msg(&a, buf);
    bly_cons_core_on_message(r.core, buf, size, 3, 5);
    size = s_vote_msg(&b, buf);
    fx = bly_cons_core_on_message(r.core, buf, size, 3, 6);
    const bly_cons_effect_t *ev = s_find(fx, BLY_CONS_FX_BROADCAST, 0);
    ck_assert_ptr_nonnull(ev);
    bly_cons_msg_t msg;
    ck_assert_int_eq(bly_cons_msg_decode(&msg, ev->data, ev->size), 0);
    ck_assert_uint_eq(msg.type, BLY_CONS_EVIDENCE);
    ck_assert_uint_eq(bly_cons_core_evidence_pending(r.core), 1);
    ck_assert_uint_eq(bly_cons_core_stats(r.core)->equivocations, 1);
    s_replica_destroy(&r);
}
END_TEST

//  Catch-up: an observer applies commits only with a valid certificate.
START_TEST(test_sync_verifies_commits)
{
    s_keys();
    bly_cons_config_t cfg = s_config(1, 0);
    s_replica_t r;
    s_replica_new(&r, &cfg);
    const bly_cons_effects_t *fx = bly_cons_core_start(r.core, 0);
    s_store(&r, fx);
    s_fire(&r, fx, BLY_CONS_TIMER_COMMIT);
    ck_assert_uint_eq(r.commit_count, 2);
    bly_cons_timer_t third = {.kind = BLY_CONS_TIMER_COMMIT, .height = 3};
    s_store(&r, bly_cons_core_on_timer(r.core, &third, 0));
    ck_assert_uint_eq(r.commit_count, 3);
    bly_cons_config_t ocfg = s_config(1, -1);
    s_replica_t o;
    s_replica_new(&o, &ocfg);
    s_store(&o, bly_cons_core_start(o.core, 0));
    //  A forged certificate signature: refused.
    uint8_t bad[4096];
    memcpy(bad, r.commits[0], r.commit_sizes[0]);
    bad[r.commit_sizes[0] - 1] ^= 1;
    bly_cons_core_on_message(o.core, bad, r.commit_sizes[0], 0, 1);
    ck_assert_uint_eq(bly_cons_core_height(o.core), 1);
    //  Out of order: height 2 first is only a hint.
    bly_cons_core_on_message(o.core, r.commits[1], r.commit_sizes[1], 0, 1);
    ck_assert_uint_eq(bly_cons_core_height(o.core), 1);
    for (uint32_t i = 0; i < 3; i++) {
        fx = bly_cons_core_on_message(o.core, r.commits[i], r.commit_sizes[i], 0, 2);
        ck_assert_ptr_nonnull(s_find(fx, BLY_CONS_FX_COMMIT, 0));
        s_store(&o, fx);
    }
    ck_assert_uint_eq(bly_cons_core_height(o.core), 4);
    ck_assert_uint_eq(bly_cons_core_stats(o.core)->synced, 3);
    ck_assert_int_eq(memcmp(bly_cons_core_last_id(o.core), bly_cons_core_last_id(r.core), 32), 0);
    s_replica_destroy(&o);
    s_replica_destroy(&r);
}
END_TEST


//  --------------------------------------------------------------------------
//  Four replicas committing into the ledger, over an in-test network that
//  delivers every message in order and fires the earliest timer when idle.

#define S_LQ_MAX 4096

typedef struct {
    bly_ledger_t *ledger;
    bly_cons_ledger_t *app;
    bly_cons_core_t *core;
    bly_cons_config_t cfg;
    uint8_t *commits[64];
    size_t commit_sizes[64];
    uint32_t commit_count;
    bly_cons_timer_t timers[256];
    int64_t deadlines[256];
    uint32_t timer_count;
} s_lrep_t;

typedef struct {
    int32_t to;
    int32_t from;
    uint8_t *data;
    size_t size;
} s_lmsg_t;

static s_lmsg_t s_lq[S_LQ_MAX];
static uint32_t s_lq_head, s_lq_tail;
static uint32_t s_lq_commits;   //  COMMIT messages sent (catch-up answers).

static uint32_t
s_lrep_load(void *store, uint64_t h, uint8_t *buf, uint32_t max)
{
    s_lrep_t *r = store;
    if (h == 0 || h > r->commit_count || r->commit_sizes[h - 1] > max)
        return 0;
    memcpy(buf, r->commits[h - 1], r->commit_sizes[h - 1]);
    return (uint32_t) r->commit_sizes[h - 1];
}

static void
s_lrep_exec(s_lrep_t *reps, int32_t i, const bly_cons_effects_t *fx, int64_t now)
{
    for (uint32_t k = 0; k < fx->count; k++) {
        const bly_cons_effect_t *e = &fx->items[k];
        s_lrep_t *r = &reps[i];
        if (e->kind == BLY_CONS_FX_COMMIT) {
            ck_assert_uint_lt(r->commit_count, 64);
            r->commits[r->commit_count] = malloc(e->size);
            memcpy(r->commits[r->commit_count], e->data, e->size);
            r->commit_sizes[r->commit_count++] = e->size;
        } else if (e->kind == BLY_CONS_FX_TIMER && r->timer_count < 256) {
            r->timers[r->timer_count] = e->timer;
            r->deadlines[r->timer_count++] = now + e->delay_ms;
        } else if (e->kind == BLY_CONS_FX_BROADCAST || e->kind == BLY_CONS_FX_SEND) {
            s_lq_commits += e->size > 1 && e->data[1] == BLY_CONS_COMMIT;
            for (int32_t j = 0; j < 4; j++) {
                if (j == i || (e->kind == BLY_CONS_FX_SEND && j != e->peer))
                    continue;
                ck_assert_uint_lt(s_lq_tail - s_lq_head, S_LQ_MAX);
                s_lmsg_t *m = &s_lq[s_lq_tail++ % S_LQ_MAX];
                m->to = j;
                m->from = i;
                m->data = malloc(e->size);
                memcpy(m->data, e->data, e->size);
                m->size = e->size;
            }
        }
    }
}

//  Fire the earliest timer of any replica (on a tie, the one of the lowest
//  height: a replica left behind is not starved); returns its time.
static int64_t
s_lrep_fire(s_lrep_t *reps, int64_t now)
{
    int32_t bi = -1;
    uint32_t bk = 0;
    for (int32_t i = 0; i < 4; i++)
        for (uint32_t k = 0; k < reps[i].timer_count; k++)
            if (bi < 0 || reps[i].deadlines[k] < reps[bi].deadlines[bk] ||
                (reps[i].deadlines[k] == reps[bi].deadlines[bk] &&
                 reps[i].timers[k].height < reps[bi].timers[bk].height)) {
                bi = i;
                bk = k;
            }
    ck_assert_int_ge(bi, 0);
    s_lrep_t *r = &reps[bi];
    bly_cons_timer_t t = r->timers[bk];
    int64_t at = r->deadlines[bk] > now ? r->deadlines[bk] : now;
    r->timers[bk] = r->timers[--r->timer_count];
    r->deadlines[bk] = r->deadlines[r->timer_count];
    s_lrep_exec(reps, bi, bly_cons_core_on_timer(r->core, &t, at), at);
    return at;
}

//  Validator 3 equivocates: two prevotes for made-up blocks at height 1, round 0,
//  queued to every other replica (besides its real one).
static void
s_lrep_equivocate(void)
{
    for (uint8_t k = 1; k <= 2; k++) {
        bly_cons_msg_t pv = {.type = BLY_CONS_PREVOTE,
                             .vote = {.type = BLY_CONS_PREVOTE, .height = 1, .pol_round = -1,
                                      .validator = 3, .has_id = true, .id = {k, 0xee}}};
        bly_cons_vote_sign(&pv.vote, "ledger-chain", s_sk[3]);
        uint8_t wire[256];
        size_t n = bly_cons_msg_encode(&pv, wire, sizeof(wire));
        ck_assert_uint_gt(n, 0);
        for (int32_t to = 0; to < 3; to++) {
            s_lmsg_t *m = &s_lq[s_lq_tail++ % S_LQ_MAX];
            *m = (s_lmsg_t){.to = to, .from = 3, .data = malloc(n), .size = n};
            memcpy(m->data, wire, n);
        }
    }
}

//  The equivocation tombstoned validator 3: no voting power from the next
//  height on, on every replica; and a restarted replica (a fresh ledger from
//  genesis replaying replica 0's commit log) has the same state and powers.
static void
s_lrep_powers_check(s_lrep_t *reps)
{
    for (int32_t i = 0; i < 4; i++) {
        ck_assert(bly_ledger_tombstoned(reps[i].ledger, s_pk[3]));
        ck_assert_uint_eq(bly_cons_core_power(reps[i].core, 3), 0);
        ck_assert_uint_eq(bly_cons_core_power(reps[i].core, 0), 1000);
        ck_assert_uint_eq(bly_cons_core_total_power(reps[i].core), 3000);
    }
    s_lrep_t *r = &reps[0];
    s_lrep_t fresh = {.ledger = bly_ledger_new(bly_ledger_genesis(r->ledger)), .cfg = r->cfg};
    ck_assert_ptr_nonnull(fresh.ledger);
    fresh.app = bly_cons_ledger_new(fresh.ledger, s_pk[0], s_lrep_load, r);
    bly_cons_ledger_set_validators(fresh.app, &fresh.cfg);
    fresh.core = bly_cons_core_new(&fresh.cfg, s_sk[0], bly_cons_ledger_app(fresh.app));
    ck_assert_ptr_nonnull(fresh.core);
    for (uint32_t c = 0; c < r->commit_count; c++)
        ck_assert_int_eq(bly_cons_core_replay_commit(fresh.core, r->commits[c],
                                                     r->commit_sizes[c]), 0);
    ck_assert_int_eq(memcmp(bly_ledger_app_hash(fresh.ledger), bly_ledger_app_hash(r->ledger),
                            32), 0);
    for (uint32_t v = 0; v < 4; v++)
        ck_assert_uint_eq(bly_cons_core_power(fresh.core, v), v == 3 ? 0 : 1000);
    bly_cons_core_destroy(&fresh.core);
    bly_cons_ledger_destroy(&fresh.app);
    bly_ledger_destroy(&fresh.ledger);
}

//  The "ledger-chain" genesis of the ledger tests: first `validators` accounts with
//  the validators' keys (s_pk) and `stake` each, then `extra` accounts whose Ed25519
//  seeds are (i, i >> 8, tag), their secret keys into `sk` (may be NULL); all funded.
static bly_ledger_genesis_t *
s_genesis(uint32_t validators, uint64_t stake, uint32_t extra, uint8_t tag, uint8_t (*sk)[64])
{
    static bly_ledger_genesis_t g;
    memset(&g, 0, sizeof(g));
    strcpy(g.chain_id, "ledger-chain");
    g.min_fee = 1;
    g.slash_bps = 1000;
    g.delta_norm_cap = 1.0f;
    g.account_count = validators + extra;
    for (uint32_t i = 0; i < validators + extra; i++) {
        g.accounts[i].balance = 1000000;
        if (i < validators) {
            memcpy(g.accounts[i].key, s_pk[i], 32);
            g.accounts[i].stake = stake;
            continue;
        }
        uint32_t k = i - validators;
        uint8_t seed[32] = {(uint8_t) k, (uint8_t) (k >> 8), tag}, sec[64];
        crypto_sign_seed_keypair(g.accounts[i].key, sec, seed);
        if (sk)
            memcpy(sk[k], sec, 64);
    }
    return &g;
}

//  Four replicas over four ledgers of one genesis (validators funded and staked).
static void
s_lrep_setup(s_lrep_t reps[4], int64_t idle_ms)
{
    s_keys();
    const bly_ledger_genesis_t *g = s_genesis(4, 1000, 0, 0, NULL);
    memset(reps, 0, 4 * sizeof(*reps));
    s_lq_head = s_lq_tail = 0;
    for (int32_t i = 0; i < 4; i++) {
        reps[i].ledger = bly_ledger_new(g);
        ck_assert_ptr_nonnull(reps[i].ledger);
        reps[i].app = bly_cons_ledger_new(reps[i].ledger, s_pk[i], s_lrep_load, &reps[i]);
        ck_assert_ptr_nonnull(reps[i].app);
        reps[i].cfg = s_config(4, i);
        reps[i].cfg.block_size_max = 64 * 1024;
        reps[i].cfg.timeout_commit_ms = 50;
        reps[i].cfg.timeout_idle_ms = idle_ms;
        //  The ledger checks evidence signatures over its own chain id.
        strcpy(reps[i].cfg.chain_id, "ledger-chain");
        bly_cons_ledger_set_validators(reps[i].app, &reps[i].cfg);
        reps[i].core = bly_cons_core_new(&reps[i].cfg, s_sk[i], bly_cons_ledger_app(reps[i].app));
        ck_assert_ptr_nonnull(reps[i].core);
    }
}

static void
s_lrep_teardown(s_lrep_t reps[4])
{
    while (s_lq_head != s_lq_tail)
        free(s_lq[s_lq_head++ % S_LQ_MAX].data);
    for (int32_t i = 0; i < 4; i++) {
        bly_cons_core_destroy(&reps[i].core);
        bly_cons_ledger_destroy(&reps[i].app);
        bly_ledger_destroy(&reps[i].ledger);
        for (uint32_t c = 0; c < reps[i].commit_count; c++)
            free(reps[i].commits[c]);
    }
}

//  One event: the next queued message, or else the earliest timer. Returns the time.
static int64_t
s_lrep_step(s_lrep_t *reps, int64_t now)
{
    if (s_lq_head == s_lq_tail)
        return s_lrep_fire(reps, now);
    s_lmsg_t m = s_lq[s_lq_head++ % S_LQ_MAX];
    s_lrep_exec(reps, m.to, bly_cons_core_on_message(reps[m.to].core, m.data, m.size, m.from, now),
                now);
    free(m.data);
    return now;
}

START_TEST(test_ledger_cluster)
{
    s_lrep_t reps[4];
    s_lrep_setup(reps, 0);
    bly_ledger_supply_t before;
    bly_ledger_supply(reps[0].ledger, &before);
    //  Two signed transfers of one sender in flight together (consecutive nonces),
    //  offered to every replica (as gossip would).
    for (uint64_t nonce = 1; nonce <= 2; nonce++) {
        uint8_t *tx = NULL;
        size_t size = 0;
        ck_assert_int_eq(bly_ledger_make_transfer(s_sk[0], "ledger-chain", nonce, 1, s_pk[1],
                                                  100, &tx, &size),
                         0);
        char err[128];
        for (int32_t i = 0; i < 4; i++)
            ck_assert_int_eq(bly_cons_ledger_submit(reps[i].app, tx, size, err, sizeof(err)), 0);
        if (nonce == 1) {
            ck_assert_int_eq(bly_cons_ledger_submit(reps[0].app, tx, size, err, sizeof(err)), -1);
            ck_assert_ptr_nonnull(strstr(err, "already"));
        }
        free(tx);
    }
    int64_t now = 0;
    for (int32_t i = 0; i < 4; i++)
        s_lrep_exec(reps, i, bly_cons_core_start(reps[i].core, 0), 0);
    s_lrep_equivocate();
    for (int steps = 0; steps < 100000; steps++) {
        bool done = true;
        for (int32_t i = 0; i < 4; i++)
            done = done && bly_cons_core_height(reps[i].core) > 8;
        if (done)
            break;
        now = s_lrep_step(reps, now);
    }
    for (int32_t i = 0; i < 4; i++) {
        ck_assert_uint_gt(bly_cons_core_height(reps[i].core), 5);
        ck_assert_int_eq(memcmp(bly_ledger_app_hash(reps[i].ledger),
                                bly_ledger_app_hash(reps[0].ledger), 32), 0);
        bly_ledger_account_t acc;
        ck_assert_int_eq(bly_ledger_account(reps[i].ledger, s_pk[1], &acc), 0);
        //  Each transfer landed exactly once (a fee may come back to the proposer).
        ck_assert_uint_ge(acc.balance, 1000200);
        ck_assert_uint_le(acc.balance, 1000202);
        ck_assert_int_eq(bly_ledger_account(reps[i].ledger, s_pk[0], &acc), 0);
        ck_assert_uint_eq(acc.nonce, 2);
        bly_ledger_supply_t after;
        bly_ledger_supply(reps[i].ledger, &after);
        ck_assert_uint_eq(after.balances + after.stakes + after.reward_pool + after.burned,
                          before.balances + before.stakes + before.reward_pool + before.burned);
        ck_assert_uint_eq(bly_cons_ledger_pending(reps[i].app), 0);
        //  The equivocation was committed once and the ledger burned 10 % of the stake.
        ck_assert_uint_eq(bly_cons_ledger_offences(reps[i].app), 1);
        ck_assert_uint_eq(bly_cons_ledger_slashed(reps[i].app), 1);
        ck_assert_int_eq(bly_ledger_account(reps[i].ledger, s_pk[3], &acc), 0);
        ck_assert_uint_eq(acc.stake, 900);
        ck_assert_uint_eq(after.burned - before.burned >= 100, 1);
    }
    s_lrep_powers_check(reps);
    s_lrep_teardown(reps);
}
END_TEST

//  Run events until every replica reached `height`; returns the time.
static int64_t
s_lrep_until(s_lrep_t *reps, uint64_t height, int64_t now)
{
    for (int steps = 0; steps < 200000; steps++) {
        bool done = true;
        for (int32_t i = 0; i < 4; i++)
            done = done && bly_cons_core_height(reps[i].core) >= height;
        if (done)
            return now;
        now = s_lrep_step(reps, now);
    }
    ck_abort_msg("height %llu not reached", (unsigned long long) height);
    return now;
}

//  An idle chain pauses timeout_idle_ms between empty blocks; a submission ends the
//  pause at once; the block after a transaction's block (it carries the new app hash
//  in its header) comes after the short timeoutCommit. With the pause off, empty
//  blocks follow each other every timeoutCommit.
START_TEST(test_ledger_idle)
{
    for (int mode = 0; mode < 2; mode++) {
        s_lrep_t reps[4];
        s_lrep_setup(reps, mode == 0 ? 1000 : 0);
        int64_t now = 0;
        for (int32_t i = 0; i < 4; i++)
            s_lrep_exec(reps, i, bly_cons_core_start(reps[i].core, 0), 0);
        int64_t t2 = s_lrep_until(reps, 3, now);
        uint32_t commits = s_lq_commits;
        int64_t t3 = s_lrep_until(reps, 4, t2);
        //  Nobody lags: no catch-up answers go back and forth while idle.
        ck_assert_uint_le(s_lq_commits - commits, 4);
        //  Empty blocks: the app hash stays, nothing is pending.
        if (mode == 0)
            ck_assert_int_ge(t3 - t2, 1000);
        else
            ck_assert_int_lt(t3 - t2, 1000);
        //  A transfer enters every mempool; the shells report it.
        uint8_t *tx = NULL;
        size_t size = 0;
        char err[128];
        ck_assert_int_eq(bly_ledger_make_transfer(s_sk[0], "ledger-chain", 1, 1, s_pk[1], 100,
                                                  &tx, &size), 0);
        int64_t sent = t3 + 10;
        for (int32_t i = 0; i < 4; i++) {
            ck_assert_int_eq(bly_cons_ledger_submit(reps[i].app, tx, size, err, sizeof(err)), 0);
            s_lrep_exec(reps, i, bly_cons_core_on_pending(reps[i].core, sent), sent);
        }
        free(tx);
        //  Committed well before an idle pause would have ended (all in virtual time).
        int64_t t5 = s_lrep_until(reps, 5, sent);
        ck_assert_uint_eq(bly_cons_ledger_pending(reps[0].app), 0);
        ck_assert_int_lt(t5 - sent, 100);
        //  The next block follows after timeoutCommit (new app hash), then idle again.
        int64_t t6 = s_lrep_until(reps, 6, t5);
        ck_assert_int_lt(t6 - t5, 1000);
        int64_t t7 = s_lrep_until(reps, 7, t6);
        if (mode == 0)
            ck_assert_int_ge(t7 - t6, 1000);
        //  Evidence arriving in an idle pause ends it too: it goes into the next block.
        bly_cons_msg_t ev = {.type = BLY_CONS_EVIDENCE};
        for (int k = 0; k < 2; k++) {
            ev.ev[k] = (bly_cons_vote_t){.type = BLY_CONS_PREVOTE, .height = 5, .pol_round = -1,
                                         .validator = 3, .has_id = true, .id = {(uint8_t) k, 9}};
            bly_cons_vote_sign(&ev.ev[k], "ledger-chain", s_sk[3]);
        }
        uint8_t wire[512];
        size_t n = bly_cons_msg_encode(&ev, wire, sizeof(wire));
        ck_assert_uint_gt(n, 0);
        s_lrep_exec(reps, 0, bly_cons_core_on_message(reps[0].core, wire, n, 3, t7 + 5), t7 + 5);
        int64_t t8 = s_lrep_until(reps, 8, t7 + 5);
        ck_assert_int_lt(t8 - t7, 1000);
        for (int32_t i = 0; i < 4; i++)
            ck_assert_uint_eq(bly_cons_ledger_offences(reps[i].app), 1);
        s_lrep_teardown(reps);
    }
}
END_TEST

//  A transfer of s_sk[0] to s_pk[1] with `nonce` and `amount`, offered to `app`.
static int
s_pool_offer(bly_cons_ledger_t *app, uint64_t nonce, uint64_t amount, char *err, size_t es)
{
    uint8_t *tx = NULL;
    size_t size = 0;
    ck_assert_int_eq(bly_ledger_make_transfer(s_sk[0], "ledger-chain", nonce, 1, s_pk[1], amount,
                                              &tx, &size),
                     0);
    int rc = bly_cons_ledger_submit(app, tx, size, err, es);
    free(tx);
    return rc;
}

//  The mempool holds a sender's later nonces (out of order too) up to
//  BLY_MEMPOOL_SENDER_TX_MAX; blocks take them in nonce order; the rest stays.
START_TEST(test_ledger_mempool_pipeline)
{
    s_keys();
    bly_ledger_t *l = bly_ledger_new(s_genesis(2, 1000, 0, 0, NULL));
    ck_assert_ptr_nonnull(l);
    bly_cons_ledger_t *pool = bly_cons_ledger_new(l, s_pk[0], s_lrep_load, NULL);
    ck_assert_ptr_nonnull(pool);
    bly_cons_app_t app = bly_cons_ledger_app(pool);
    char err[160];
    //  Nonce 2 before nonce 1: both wait; a gap past the window is refused.
    ck_assert_int_eq(s_pool_offer(pool, 2, 10, err, sizeof(err)), 0);
    ck_assert_int_eq(s_pool_offer(pool, 1, 10, err, sizeof(err)), 0);
    ck_assert_int_eq(s_pool_offer(pool, 1 + BLY_MEMPOOL_SENDER_TX_MAX, 10, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "nonce gap"));
    for (uint64_t n = 3; n <= BLY_MEMPOOL_SENDER_TX_MAX; n++)
        ck_assert_int_eq(s_pool_offer(pool, n, 10, err, sizeof(err)), 0);
    //  A second transaction for a pooled nonce: over the sender's share.
    ck_assert_int_eq(s_pool_offer(pool, 5, 11, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "pending"));
    ck_assert_uint_eq(bly_cons_ledger_pending(pool), BLY_MEMPOOL_SENDER_TX_MAX);
    //  One block takes all of them in nonce order (the arrival order was 2, 1, 3, ...).
    static uint8_t payload[BLY_LEDGER_BLOCK_BYTES_MAX];
    uint32_t size = app.build(app.self, 1, payload, sizeof(payload));
    ck_assert_uint_gt(size, 0);
    ck_assert_int_eq(app.check(app.self, 1, payload, size), 0);
    uint8_t hash[BLY_CONS_ID_SIZE];
    ck_assert_int_eq(app.apply(app.self, 1, payload, size, NULL, 0, NULL, hash), 0);
    bly_ledger_account_t acc;
    ck_assert_int_eq(bly_ledger_account(l, s_pk[0], &acc), 0);
    ck_assert_uint_eq(acc.nonce, BLY_MEMPOOL_SENDER_TX_MAX);
    ck_assert_uint_eq(bly_cons_ledger_pending(pool), 0);
    //  After the commit the window moved: the next nonces pass, old ones are used.
    ck_assert_int_eq(s_pool_offer(pool, BLY_MEMPOOL_SENDER_TX_MAX + 2, 10, err, sizeof(err)), 0);
    ck_assert_int_eq(s_pool_offer(pool, 7, 10, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "already used"));
    //  Only the later nonce pooled: the block cannot take it yet, the pool keeps it.
    size = app.build(app.self, 2, payload, sizeof(payload));
    ck_assert_int_eq(app.apply(app.self, 2, payload, size, NULL, 0, NULL, hash), 0);
    ck_assert_uint_eq(bly_cons_ledger_pending(pool), 1);
    ck_assert_int_eq(s_pool_offer(pool, BLY_MEMPOOL_SENDER_TX_MAX + 1, 10, err, sizeof(err)), 0);
    size = app.build(app.self, 3, payload, sizeof(payload));
    ck_assert_int_eq(app.apply(app.self, 3, payload, size, NULL, 0, NULL, hash), 0);
    ck_assert_int_eq(bly_ledger_account(l, s_pk[0], &acc), 0);
    ck_assert_uint_eq(acc.nonce, BLY_MEMPOOL_SENDER_TX_MAX + 2);
    ck_assert_uint_eq(bly_cons_ledger_pending(pool), 0);
    bly_cons_ledger_destroy(&pool);
    bly_ledger_destroy(&l);
}
END_TEST

//  A full pool makes room fairly: a newcomer evicts the latest transaction of the
//  sender holding the most, until it would hold as many; the id set stays exact
//  through the removals (every pooled transaction is still found as a duplicate).
START_TEST(test_ledger_mempool_fair_eviction)
{
    enum { SENDERS = BLY_MEMPOOL_TX_MAX / BLY_MEMPOOL_SENDER_TX_MAX + 1 };
    static uint8_t sk[SENDERS + 1][64];
    //  The senders, then the sink.
    const bly_ledger_genesis_t *g = s_genesis(0, 0, SENDERS + 1, 0x5e, sk);
    bly_ledger_t *l = bly_ledger_new(g);
    ck_assert_ptr_nonnull(l);
    bly_cons_ledger_t *pool = bly_cons_ledger_new(l, g->accounts[SENDERS].key, s_lrep_load, NULL);
    ck_assert_ptr_nonnull(pool);
    static uint8_t *txs[SENDERS][BLY_MEMPOOL_SENDER_TX_MAX];
    static size_t sizes[SENDERS][BLY_MEMPOOL_SENDER_TX_MAX];
    char err[160];
    for (int i = 0; i < SENDERS; i++)
        for (int k = 0; k < BLY_MEMPOOL_SENDER_TX_MAX; k++)
            ck_assert_int_eq(bly_ledger_make_transfer(sk[i], "ledger-chain", (uint64_t) k + 1, 1,
                                                      g->accounts[SENDERS].key, 5, &txs[i][k],
                                                      &sizes[i][k]), 0);
    //  All senders but the last fill the pool, each to its share.
    for (int i = 0; i < SENDERS - 1; i++)
        for (int k = 0; k < BLY_MEMPOOL_SENDER_TX_MAX; k++)
            ck_assert_int_eq(bly_cons_ledger_submit(pool, txs[i][k], sizes[i][k], err,
                                                    sizeof(err)), 0);
    ck_assert_uint_eq(bly_cons_ledger_pending(pool), BLY_MEMPOOL_TX_MAX);
    //  The newcomer gets in until it holds one less than the biggest holders.
    int last = SENDERS - 1;
    for (int k = 0; k < BLY_MEMPOOL_SENDER_TX_MAX - 1; k++)
        ck_assert_int_eq(bly_cons_ledger_submit(pool, txs[last][k], sizes[last][k], err,
                                                sizeof(err)), 0);
    ck_assert_int_eq(bly_cons_ledger_submit(pool, txs[last][BLY_MEMPOOL_SENDER_TX_MAX - 1],
                                            sizes[last][BLY_MEMPOOL_SENDER_TX_MAX - 1], err,
                                            sizeof(err)), -1);
    ck_assert_str_eq(err, "mempool full");
    ck_assert_uint_eq(bly_cons_ledger_evicted(pool), BLY_MEMPOOL_SENDER_TX_MAX - 1);
    ck_assert_uint_eq(bly_cons_ledger_pending(pool), BLY_MEMPOOL_TX_MAX);
    //  Each eviction took one sender's latest nonce; every other one is still pooled.
    int pending = 0, full = 0;
    for (int i = 0; i < SENDERS; i++)
        for (int k = 0; k < BLY_MEMPOOL_SENDER_TX_MAX; k++) {
            ck_assert_int_eq(bly_cons_ledger_submit(pool, txs[i][k], sizes[i][k], err,
                                                    sizeof(err)), -1);
            pending += strcmp(err, "transaction already pending") == 0;
            full += strcmp(err, "mempool full") == 0;
            if (strcmp(err, "mempool full") == 0 && i < last)
                ck_assert_int_eq(k, BLY_MEMPOOL_SENDER_TX_MAX - 1);
            free(txs[i][k]);
        }
    ck_assert_int_eq(pending, BLY_MEMPOOL_TX_MAX);
    ck_assert_int_eq(full, BLY_MEMPOOL_SENDER_TX_MAX);
    bly_cons_ledger_destroy(&pool);
    bly_ledger_destroy(&l);
}
END_TEST

//  Random submissions (next nonces, nonces ahead, conflicting twins, repeats)
//  into a small pool, with blocks built and applied in between: the pool holds
//  exactly `pending` distinct findable ids, never one whose nonce is used, at
//  most the cap per sender, and the ledger keeps its supply.
START_TEST(test_ledger_mempool_random)
{
    enum { SENDERS = 12, NONCES = 48, POOL = 40, OPS = 3000 };
    static uint8_t sk[SENDERS + 1][64];
    //  The senders, then the sink.
    const bly_ledger_genesis_t *g = s_genesis(0, 0, SENDERS + 1, 0x77, sk);
    bly_ledger_t *l = bly_ledger_new(g);
    bly_cons_ledger_t *pool = bly_cons_ledger_new(l, g->accounts[SENDERS].key, s_lrep_load, NULL);
    ck_assert_ptr_nonnull(pool);
    ck_assert_int_eq(bly_cons_ledger_set_pool_max(pool, POOL), 0);
    bly_cons_app_t app = bly_cons_ledger_app(pool);
    //  Two versions (amounts 1 and 2) of every (sender, nonce).
    static uint8_t *txs[SENDERS][NONCES][2], ids[SENDERS][NONCES][2][32];
    static size_t sizes[SENDERS][NONCES][2];
    for (int i = 0; i < SENDERS; i++)
        for (int n = 0; n < NONCES; n++)
            for (int v = 0; v < 2; v++) {
                ck_assert_int_eq(bly_ledger_make_transfer(sk[i], "ledger-chain", (uint64_t) n + 1,
                                                          1, g->accounts[SENDERS].key,
                                                          (uint64_t) v + 1, &txs[i][n][v],
                                                          &sizes[i][n][v]), 0);
                bly_ledger_tx_hash(txs[i][n][v], sizes[i][n][v], ids[i][n][v]);
            }
    bly_ledger_supply_t s0;
    bly_ledger_supply(l, &s0);
    static uint8_t payload[BLY_LEDGER_BLOCK_BYTES_MAX];
    uint64_t height = 1, rng = 0x9e3779b97f4a7c15ull;
    char err[160];
    for (int op = 0; op < OPS; op++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t) (rng >> 33);
        int i = (int) (r % SENDERS), v = (int) ((r >> 8) & 1);
        bly_ledger_account_t acc;
        ck_assert_int_eq(bly_ledger_account(l, g->accounts[i].key, &acc), 0);
        int n = (int) acc.nonce + (int) ((r >> 9) % 6) - 1;   //  A used one now and then.
        if (r % 10 < 8 && n >= 0 && n < NONCES) {
            (void) !bly_cons_ledger_submit(pool, txs[i][n][v], sizes[i][n][v], err, sizeof(err));
        } else if (r % 10 >= 8) {
            uint32_t size = app.build(app.self, height, payload, sizeof(payload));
            ck_assert_uint_gt(size, 0);
            ck_assert_int_eq(app.check(app.self, height, payload, size), 0);
            uint8_t hash[BLY_CONS_ID_SIZE];
            ck_assert_int_eq(app.apply(app.self, height, payload, size, NULL, 0, NULL, hash), 0);
            height++;
        }
        //  The pool's ids: distinct, all findable, none with a used nonce, senders capped.
        uint32_t found = 0;
        for (int a = 0; a < SENDERS; a++) {
            ck_assert_int_eq(bly_ledger_account(l, g->accounts[a].key, &acc), 0);
            uint32_t mine = 0;
            for (int b = 0; b < NONCES; b++)
                for (int c = 0; c < 2; c++)
                    if (bly_cons_ledger_has(pool, ids[a][b][c])) {
                        ck_assert_int_ge(b, (int) acc.nonce);
                        mine++;
                    }
            ck_assert_uint_le(mine, BLY_MEMPOOL_SENDER_TX_MAX);
            found += mine;
        }
        ck_assert_uint_eq(found, bly_cons_ledger_pending(pool));
        ck_assert_uint_le(found, POOL);
    }
    ck_assert_uint_gt(bly_cons_ledger_evicted(pool), 0);
    ck_assert_uint_gt(height, 100);
    bly_ledger_supply_t s1;
    bly_ledger_supply(l, &s1);
    ck_assert_uint_eq(s1.balances + s1.stakes + s1.reward_pool + s1.burned,
                      s0.balances + s0.stakes + s0.reward_pool + s0.burned);
    for (int i = 0; i < SENDERS; i++)
        for (int n = 0; n < NONCES; n++)
            for (int v = 0; v < 2; v++)
                free(txs[i][n][v]);
    bly_cons_ledger_destroy(&pool);
    bly_ledger_destroy(&l);
}
END_TEST

//  --------------------------------------------------------------------------
//  The simulator

//  Seeds that once failed (liveness after crashes lost the polka, a
//  proposer stuck after restart); each must pass forever.
START_TEST(test_sim_regression_seeds)
{
    static const uint64_t seeds[] = {9, 13, 158, 171, 273, 527, 790, 835};
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        bly_sim_options_t opt = {.seed = seeds[i]};
        bly_sim_result_t res;
        int rc = bly_sim_run(&opt, &res);
        ck_assert_msg(rc == 0, "seed %llu: %s", (unsigned long long) seeds[i], res.reason);
        ck_assert_uint_gt(res.height, 3);
    }
}
END_TEST

//  The same seed replays exactly.
START_TEST(test_sim_replays_exactly)
{
    bly_sim_options_t opt = {.seed = 4242};
    bly_sim_result_t a, b;
    ck_assert_int_eq(bly_sim_run(&opt, &a), 0);
    ck_assert_int_eq(bly_sim_run(&opt, &b), 0);
    ck_assert_uint_eq(a.events, b.events);
    ck_assert_uint_eq(a.height, b.height);
    ck_assert_int_eq(a.end_ms, b.end_ms);
    ck_assert_uint_eq(a.crashes, b.crashes);
    ck_assert_uint_eq(a.transfers, b.transfers);
    ck_assert_uint_eq(a.equivocations, b.equivocations);
}
END_TEST

//  The checkers bite: the 2f quorum breaks agreement within a few seeds,
//  and the failing seed replays to the same failure.
START_TEST(test_sim_catches_broken_quorum)
{
    uint64_t failing = 0;
    bly_sim_result_t res;
    for (uint64_t seed = 1; seed <= 100 && failing == 0; seed++) {
        bly_sim_options_t opt = {.seed = seed, .quorum_broken = true};
        if (bly_sim_run(&opt, &res) != 0)
            failing = seed;
    }
    ck_assert_uint_ne(failing, 0);
    char reason[256];
    memcpy(reason, res.reason, sizeof(reason));
    ck_assert_ptr_nonnull(strstr(reason, "agreement"));
    bly_sim_options_t opt = {.seed = failing, .quorum_broken = true};
    ck_assert_int_eq(bly_sim_run(&opt, &res), -1);
    ck_assert_str_eq(res.reason, reason);
    //  The same seed with the correct quorum passes.
    opt.quorum_broken = false;
    ck_assert_int_eq(bly_sim_run(&opt, &res), 0);
}
END_TEST

//  A batch of seeds in the unit suite (the slow suite runs 1,000).
START_TEST(test_sim_seed_batch)
{
    for (uint64_t seed = 10001; seed <= 10040; seed++) {
        bly_sim_options_t opt = {.seed = seed};
        bly_sim_result_t res;
        int rc = bly_sim_run(&opt, &res);
        ck_assert_msg(rc == 0, "seed %llu: %s", (unsigned long long) seed, res.reason);
    }
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("consensus");
    TCase *tc = tcase_create("messages");
    tcase_add_test(tc, test_vote_roundtrip_and_strictness);
    tcase_add_test(tc, test_block_and_proposal_codec);
    tcase_add_test(tc, test_fuzz_corpus_decodes);
    tcase_add_test(tc, test_quorum_rules);
    tcase_add_test(tc, test_proposer_weighted);
    tcase_add_test(tc, test_kvapp_mempool);
    suite_add_tcase(suite, tc);
    tc = tcase_create("core");
    tcase_add_test(tc, test_single_validator_chain);
    tcase_add_test(tc, test_wal_restart_no_double_sign);
    tcase_add_test(tc, test_invalid_proposals_get_nil);
    tcase_add_test(tc, test_gossip_proposal_to_lacking_peers);
    tcase_add_test(tc, test_core_rejects_bad_input);
    tcase_add_test(tc, test_sync_verifies_commits);
    tcase_add_test(tc, test_ledger_cluster);
    tcase_add_test(tc, test_ledger_mempool_pipeline);
    tcase_add_test(tc, test_ledger_idle);
    tcase_add_test(tc, test_ledger_mempool_fair_eviction);
    tcase_add_test(tc, test_ledger_mempool_random);
    suite_add_tcase(suite, tc);
    tc = tcase_create("simulator");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sim_regression_seeds);
    tcase_add_test(tc, test_sim_replays_exactly);
    tcase_add_test(tc, test_sim_catches_broken_quorum);
    tcase_add_test(tc, test_sim_seed_batch);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
