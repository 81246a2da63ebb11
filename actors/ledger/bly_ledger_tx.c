/*  =========================================================================
    bly_ledger_tx - the rules of every transaction type

    Each rule checks everything first and changes the state only after every
    check passed, so a rejected transaction never changes anything (and a
    block builder can skip it without an undo point). One function per type
    serves both bly_ledger_tx_rules (check only, `apply` false, state const)
    and bly_ledger_tx_apply (`apply` true, inside an open block).
    Amounts are u64 with overflow checks; the genesis keeps the total supply
    within u64 and supply is conserved, so credits cannot overflow (asserted).
    ========================================================================= */

#include "bly_ledger_internal.h"
#include "bly_sha256.h"

#include <math.h>
#include <string.h>

__extension__ typedef unsigned __int128 s_u128;

//  Context of one transaction being checked or applied.
typedef struct {
    bly_ledger_t *self;            //  Writable only when apply.
    const bly_ledger_msg_t *tx;
    const uint8_t *hash;           //  Transaction id.
    const uint8_t *from;           //  Sender key.
    bly_ledger_account_t sender;   //  Sender before the transaction.
    uint64_t fee;
    uint64_t height;               //  Height of the block the transaction goes into.
    uint32_t window;               //  Mempool admission: nonces this far ahead pass.
    bool apply;
    char *err;
    size_t err_size;
} s_ctx_t;

static int
s_reject(s_ctx_t *c, const char *format, ...) BLY_PRINTF(2, 3);

static int
s_reject(s_ctx_t *c, const char *format, ...)
{
    if (c->err && c->err_size) {
        va_list ap;
        va_start(ap, format);
        vsnprintf(c->err, c->err_size, format, ap);
        va_end(ap);
    }
    return -1;
}

static const uint8_t *
s_bytes(const uint8_t *data)
{
    return data;
}

#define S_FIELD(c, name) s_bytes(bly_ledger_msg_##name((c)->tx, &(size_t){0}))

//  A key may own or receive tokens: an existing account's key was checked when the
//  account was created, so only new keys pay for the (costly) point validation.
static bool
s_key_ok(const bly_ledger_t *self, const uint8_t key[32])
{
    return bly_ledger_find(self, key) >= 0 || bly_ledger_key_valid(key);
}

static void
s_credit(bly_ledger_t *self, const uint8_t key[32], uint64_t amount)
{
    if (amount == 0)
        return;
    bly_ledger_account_t *a = bly_ledger_touch(self, key);
    bly_assert(!__builtin_add_overflow(a->balance, amount, &a->balance));
}

//  Debit the sender amount + fee and bump its nonce; split the fee.
static void
s_charge(s_ctx_t *c, uint64_t amount)
{
    bly_ledger_t *self = c->self;
    bly_ledger_account_t *a = bly_ledger_touch(self, c->from);
    bly_assert(a->balance >= amount && a->balance - amount >= c->fee);
    a->balance -= amount + c->fee;
    a->nonce++;
    uint64_t burn = bly_ledger_mul_bps(c->fee, self->genesis.burn_bps);
    self->burned += burn;
    s_credit(self, self->proposer, c->fee - burn);
}

//  Sender can pay amount + fee.
static int
s_can_pay(s_ctx_t *c, uint64_t amount)
{
    uint64_t total;
    if (__builtin_add_overflow(amount, c->fee, &total))
        return s_reject(c, "amount plus fee overflows");
    if (total > c->sender.balance)
        return s_reject(c, "balance %llu is below amount plus fee %llu",
                        (unsigned long long) c->sender.balance, (unsigned long long) total);
    return 0;
}

static int
s_transfer(s_ctx_t *c)
{
    const uint8_t *to = S_FIELD(c, to);
    uint64_t amount = bly_ledger_msg_amount(c->tx);
    if (!s_key_ok(c->self, to))
        return s_reject(c, "receiver is not a valid Ed25519 key (zero or small order)");
    if (memcmp(to, c->from, 32) == 0)
        return s_reject(c, "transfer to self");
    if (amount == 0)
        return s_reject(c, "amount is zero");
    if (s_can_pay(c, amount))
        return -1;
    if (c->apply) {
        s_charge(c, amount);
        s_credit(c->self, to, amount);
    }
    return 0;
}

static int
s_stake(s_ctx_t *c, bool bond)
{
    uint64_t amount = bly_ledger_msg_amount(c->tx);
    if (amount == 0)
        return s_reject(c, "amount is zero");
    if (s_can_pay(c, bond ? amount : 0))
        return -1;
    if (!bond && amount > c->sender.stake)
        return s_reject(c, "unstake above the stake");
    if (!c->apply)
        return 0;
    s_charge(c, bond ? amount : 0);
    bly_ledger_account_t *a = bly_ledger_touch(c->self, c->from);
    if (bond) {
        a->stake += amount;
        c->self->total_stake += amount;
    } else {
        a->stake -= amount;
        a->balance += amount;
        c->self->total_stake -= amount;
    }
    return 0;
}

//  Receipt checks; *cost receives tokens x price.
static int
s_receipt_check(s_ctx_t *c, uint8_t seen[32], uint64_t *cost)
{
    const bly_ledger_genesis_t *g = &c->self->genesis;
    bly_ledger_seen_key('R', S_FIELD(c, request_id), 32, seen);
    if (bly_ledger_seen_has(c->self, seen))
        return s_reject(c, "request id already paid");
    if (!s_key_ok(c->self, S_FIELD(c, router)))
        return s_reject(c, "router is not a valid Ed25519 key");
    size_t n = bly_ledger_msg_shards_count(c->tx);
    if (n == 0)
        return s_reject(c, "receipt names no shard");
    for (size_t i = 0; i < n; i++) {
        const uint8_t *k = bly_ledger_msg_shards_at(c->tx, i)->key;
        if (!s_key_ok(c->self, k))
            return s_reject(c, "shard %zu is not a valid Ed25519 key", i);
        for (size_t j = 0; j < i; j++) {
            if (memcmp(k, bly_ledger_msg_shards_at(c->tx, j)->key, 32) == 0)
                return s_reject(c, "shard %zu listed twice", i);
        }
    }
    uint64_t tokens = bly_ledger_msg_tokens(c->tx), price = bly_ledger_msg_price(c->tx);
    if (tokens == 0)
        return s_reject(c, "receipt for zero tokens");
    if (price < g->price_per_token)
        return s_reject(c, "price below the genesis price per token");
    if (__builtin_mul_overflow(tokens, price, cost))
        return s_reject(c, "tokens times price overflows");
    return s_can_pay(c, *cost);
}

static int
s_receipt(s_ctx_t *c)
{
    uint8_t seen[32];
    uint64_t cost = 0;
    if (s_receipt_check(c, seen, &cost))
        return -1;
    if (!c->apply)
        return 0;
    bly_ledger_t *self = c->self;
    const bly_ledger_genesis_t *g = &self->genesis;
    s_charge(c, cost);
    uint64_t burn = bly_ledger_mul_bps(cost, g->burn_bps);
    uint64_t rest = cost - burn;
    uint64_t router = bly_ledger_mul_bps(rest, g->share_router_bps);
    uint64_t validators = bly_ledger_mul_bps(rest, g->share_validators_bps);
    uint64_t shards = rest - router - validators;
    size_t n = bly_ledger_msg_shards_count(c->tx);
    uint64_t each = shards / n;
    self->burned += burn;
    s_credit(self, S_FIELD(c, router), router);
    s_credit(self, self->proposer, validators);
    for (size_t i = 0; i < n; i++) {
        //  The first shard also gets the rounding remainder.
        uint64_t part = each + (i == 0 ? shards - each * n : 0);
        s_credit(self, bly_ledger_msg_shards_at(c->tx, i)->key, part);
    }
    bly_ledger_seen_add(self, seen);
    return 0;
}

//  Digest of a tensor list: names only (shape) and names + hashes (content).
//  Names must be non-empty and unique. Returns 0 or -1.
static int
s_tensor_digest(s_ctx_t *c, uint8_t shape[32], uint8_t content[32])
{
    size_t n = bly_ledger_msg_tensors_count(c->tx);
    if (n == 0)
        return s_reject(c, "no tensors");
    bly_sha256_t s1, s2;
    bly_sha256_init(&s1);
    bly_sha256_init(&s2);
    for (size_t i = 0; i < n; i++) {
        const bly_ledger_tensor_hash_t *t = bly_ledger_msg_tensors_at(c->tx, i);
        size_t len = strlen(t->name);
        if (len == 0)
            return s_reject(c, "tensor %zu has no name", i);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t->name, bly_ledger_msg_tensors_at(c->tx, j)->name) == 0)
                return s_reject(c, "tensor %s listed twice", t->name);
        }
        bly_sha256_update(&s1, (const uint8_t *) t->name, len + 1);
        bly_sha256_update(&s2, (const uint8_t *) t->name, len + 1);
        bly_sha256_update(&s2, t->hash, 32);
    }
    bly_sha256_final(&s1, shape);
    bly_sha256_final(&s2, content);
    return 0;
}

//  A parent PoL node that exists, has the expected kind and is final before this block.
static const bly_ledger_pol_t *
s_final_parent(s_ctx_t *c, int kind_a, int kind_b)
{
    const bly_ledger_pol_t *p = bly_ledger_pol_find(c->self, S_FIELD(c, parent));
    if (!p) {
        s_reject(c, "parent PoL node does not exist");
        return NULL;
    }
    if (p->kind != kind_a && p->kind != kind_b) {
        s_reject(c, "parent PoL node has the wrong kind");
        return NULL;
    }
    if (!p->accepted || (p->kind != BLY_LEDGER_POL_GENESIS && p->height >= c->height)) {
        s_reject(c, "parent PoL node is not final");
        return NULL;
    }
    return p;
}

static void
s_add_node(s_ctx_t *c, uint8_t kind, uint32_t layer, const uint8_t content[32],
           const uint8_t shape[32], bool accepted, uint64_t version)
{
    bly_ledger_pol_t node;
    memset(&node, 0, sizeof(node));
    memcpy(node.id, c->hash, 32);
    memcpy(node.parent, S_FIELD(c, parent), 32);
    memcpy(node.author, c->from, 32);
    memcpy(node.content, content, 32);
    if (shape)
        memcpy(node.shape, shape, 32);
    node.kind = kind;
    node.layer = layer;
    node.accepted = accepted;
    node.version = version;
    node.height = c->height;
    bly_ledger_pol_append(c->self, &node);
}

static int
s_pol_meta(s_ctx_t *c)
{
    uint32_t layers = bly_ledger_msg_layer_count(c->tx);
    if (c->sender.stake == 0)
        return s_reject(c, "only a validator (stake above zero) may define the model");
    if (!s_final_parent(c, BLY_LEDGER_POL_GENESIS, BLY_LEDGER_POL_GENESIS))
        return -1;
    if (c->self->layer_count != 0)
        return s_reject(c, "the model is already defined by a meta block");
    if (bly_ledger_msg_arch(c->tx)[0] == '\0')
        return s_reject(c, "meta block without architecture");
    if (layers == 0 || layers > BLY_LEDGER_POL_LAYERS_MAX)
        return s_reject(c, "layer count %u outside 1..%u", layers, BLY_LEDGER_POL_LAYERS_MAX);
    if (!bly_ledger_pol_room(c->self))
        return s_reject(c, "PoL DAG is full");
    if (s_can_pay(c, 0))
        return -1;
    if (c->apply) {
        s_charge(c, 0);
        s_add_node(c, BLY_LEDGER_POL_META, layers, S_FIELD(c, tokenizer_hash), NULL, true, 0);
        c->self->layer_count = layers;
    }
    return 0;
}

static int
s_pol_layer(s_ctx_t *c)
{
    uint32_t layer = bly_ledger_msg_layer(c->tx);
    uint8_t shape[32], content[32], seen[32];
    if (c->sender.stake == 0)
        return s_reject(c, "only a validator (stake above zero) may commit layer blocks");
    if (!s_final_parent(c, BLY_LEDGER_POL_META, BLY_LEDGER_POL_META))
        return -1;
    if (layer >= c->self->layer_count)
        return s_reject(c, "layer %u outside the model", layer);
    uint8_t lbuf[4] = {(uint8_t) (layer >> 24), (uint8_t) (layer >> 16), (uint8_t) (layer >> 8),
                       (uint8_t) layer};
    bly_ledger_seen_key('L', lbuf, 4, seen);
    if (bly_ledger_seen_has(c->self, seen))
        return s_reject(c, "layer %u already has a layer block", layer);
    if (s_tensor_digest(c, shape, content) || s_can_pay(c, 0))
        return -1;
    if (!bly_ledger_pol_room(c->self))
        return s_reject(c, "PoL DAG is full");
    if (c->apply) {
        s_charge(c, 0);
        bly_ledger_log_layer(c->self, layer);
        c->self->layer_current[layer] = (int64_t) c->self->pol_count;
        s_add_node(c, BLY_LEDGER_POL_LAYER, layer, content, shape, true, 1);
        bly_ledger_seen_add(c->self, seen);
    }
    return 0;
}

static bool
s_float_ok(uint32_t bits, float *value)
{
    float f;
    memcpy(&f, &bits, 4);
    *value = f;
    return isfinite(f) && f >= 0.0f;
}

static int
s_pol_delta(s_ctx_t *c)
{
    uint32_t layer = bly_ledger_msg_layer(c->tx);
    uint8_t shape[32], content[32], seen[32];
    float norm;
    if (!s_final_parent(c, BLY_LEDGER_POL_LAYER, BLY_LEDGER_POL_DELTA))
        return -1;
    const bly_ledger_pol_t *parent = bly_ledger_pol_find(c->self, S_FIELD(c, parent));
    int64_t cur = layer < c->self->layer_count ? c->self->layer_current[layer] : -1;
    if (cur < 0 || memcmp(c->self->pol[cur].id, parent->id, 32) != 0)
        return s_reject(c, "parent is not the current version of layer %u", layer);
    if (!s_float_ok(bly_ledger_msg_norm_bits(c->tx), &norm))
        return s_reject(c, "delta norm is NaN, infinite or negative");
    if (norm > c->self->genesis.delta_norm_cap)
        return s_reject(c, "delta norm above the cap");
    bly_ledger_seen_key('D', S_FIELD(c, delta_hash), 32, seen);
    if (bly_ledger_seen_has(c->self, seen))
        return s_reject(c, "delta already submitted (duplicate delta hash)");
    if (s_tensor_digest(c, shape, content))
        return -1;
    if (memcmp(shape, parent->shape, 32) != 0)
        return s_reject(c, "delta tensors do not match the layer's tensors (wrong shape)");
    if (!bly_ledger_pol_room(c->self))
        return s_reject(c, "PoL DAG is full");
    if (s_can_pay(c, 0))
        return -1;
    if (c->apply) {
        s_charge(c, 0);
        s_add_node(c, BLY_LEDGER_POL_DELTA, layer, content, shape, false, 0);
        bly_ledger_seen_add(c->self, seen);
    }
    return 0;
}

//  A pending or accepted delta node named by target.
static int64_t
s_target_delta(s_ctx_t *c)
{
    int64_t at = bly_ledger_pol_index(c->self, S_FIELD(c, target));
    if (at < 0 || c->self->pol[at].kind != BLY_LEDGER_POL_DELTA)
        return s_reject(c, "target is not a delta"), -1;
    if (c->self->pol[at].height >= c->height)
        return s_reject(c, "target delta is not committed yet"), -1;
    return at;
}

static void
s_accept_delta(s_ctx_t *c, size_t at)
{
    bly_ledger_t *self = c->self;
    bly_ledger_pol_t *d = &self->pol[at];
    int64_t cur = self->layer_current[d->layer];
    bly_assert(cur >= 0);
    d->accepted = true;
    d->version = self->pol[cur].version + 1;
    bly_ledger_log_layer(self, d->layer);
    self->layer_current[d->layer] = (int64_t) at;
    uint64_t reward = self->genesis.delta_reward;
    if (reward > self->reward_pool)
        reward = self->reward_pool;
    self->reward_pool -= reward;
    s_credit(self, d->author, reward);
}

static int
s_attest(s_ctx_t *c)
{
    float before, after;
    uint8_t seen[32], good[32], pair[64];
    if (c->sender.stake == 0)
        return s_reject(c, "attester is not a validator");
    int64_t at = s_target_delta(c);
    if (at < 0)
        return -1;
    const bly_ledger_pol_t *d = &c->self->pol[at];
    if (d->accepted)
        return s_reject(c, "delta already accepted");
    int64_t cur = c->self->layer_current[d->layer];
    if (cur < 0 || memcmp(c->self->pol[cur].id, d->parent, 32) != 0)
        return s_reject(c, "delta is stale: its parent is no longer the current version");
    if (!s_float_ok(bly_ledger_msg_loss_before_bits(c->tx), &before)
        || !s_float_ok(bly_ledger_msg_loss_after_bits(c->tx), &after))
        return s_reject(c, "loss is NaN, infinite or negative");
    memcpy(pair, d->id, 32);
    memcpy(pair + 32, c->from, 32);
    bly_ledger_seen_key('A', pair, 64, seen);
    bly_ledger_seen_key('I', pair, 64, good);
    if (bly_ledger_seen_has(c->self, seen))
        return s_reject(c, "validator already attested this delta");
    if (s_can_pay(c, 0))
        return -1;
    if (!c->apply)
        return 0;
    s_charge(c, 0);
    bly_ledger_seen_add(c->self, seen);
    if (after < before) {
        bly_ledger_seen_add(c->self, good);
        bly_ledger_log_pol(c->self, (size_t) at);
        bly_ledger_pol_t *dw = &c->self->pol[at];
        dw->attest_stake += c->sender.stake;
        if ((s_u128) dw->attest_stake * 3 > (s_u128) c->self->total_stake * 2)
            s_accept_delta(c, (size_t) at);
    }
    return 0;
}

static int
s_reward(s_ctx_t *c)
{
    uint8_t good[32], claimed[32], pair[64];
    int64_t at = s_target_delta(c);
    if (at < 0)
        return -1;
    if (!c->self->pol[at].accepted)
        return s_reject(c, "delta not accepted");
    memcpy(pair, c->self->pol[at].id, 32);
    memcpy(pair + 32, c->from, 32);
    bly_ledger_seen_key('I', pair, 64, good);
    bly_ledger_seen_key('W', pair, 64, claimed);
    if (!bly_ledger_seen_has(c->self, good))
        return s_reject(c, "sender did not attest an improvement of this delta");
    if (bly_ledger_seen_has(c->self, claimed))
        return s_reject(c, "reward already claimed");
    uint64_t pay = c->self->genesis.validator_reward;
    if (pay > c->self->reward_pool)
        pay = c->self->reward_pool;
    if (pay == 0)
        return s_reject(c, "reward pool is empty");
    if (s_can_pay(c, 0))
        return -1;
    if (c->apply) {
        s_charge(c, 0);
        c->self->reward_pool -= pay;
        s_credit(c->self, c->from, pay);
        bly_ledger_seen_add(c->self, claimed);
    }
    return 0;
}

//  Verify one of the two votes of slash evidence.
static bool
s_vote_ok(s_ctx_t *c, const uint8_t *hash, const uint8_t *sig)
{
    bly_ledger_msg_t *v = bly_ledger_msg_new(BLY_LEDGER_MSG_VOTE);
    bool ok = v && bly_ledger_msg_set_chain_id(v, c->self->genesis.chain_id) == 0
              && bly_ledger_msg_set_validator(v, S_FIELD(c, offender), 32) == 0
              && bly_ledger_msg_set_block_hash(v, hash, 32) == 0
              && bly_ledger_msg_set_signature(v, sig, 64) == 0;
    if (ok) {
        bly_ledger_msg_set_height(v, bly_ledger_msg_height(c->tx));
        bly_ledger_msg_set_round(v, bly_ledger_msg_round(c->tx));
        bly_ledger_msg_set_step(v, bly_ledger_msg_step(c->tx));
        ok = bly_ledger_msg_verify(v);
    }
    bly_ledger_msg_destroy(&v);
    return ok;
}

static int
s_slash(s_ctx_t *c)
{
    const uint8_t *off = S_FIELD(c, offender);
    uint8_t seen[32];
    bly_ledger_account_t o;
    if (bly_ledger_account(c->self, off, &o) || o.stake == 0)
        return s_reject(c, "offender has no stake");
    uint8_t step = bly_ledger_msg_step(c->tx);
    if (step != BLY_LEDGER_STEP_PREVOTE && step != BLY_LEDGER_STEP_PRECOMMIT)
        return s_reject(c, "vote step is neither prevote nor precommit");
    if (memcmp(S_FIELD(c, hash_a), S_FIELD(c, hash_b), 32) == 0)
        return s_reject(c, "the two votes are for the same block");
    bly_ledger_offence_key(off, bly_ledger_msg_height(c->tx), bly_ledger_msg_round(c->tx), step,
                           seen);
    if (bly_ledger_seen_has(c->self, seen))
        return s_reject(c, "evidence already committed");
    if (!s_vote_ok(c, S_FIELD(c, hash_a), S_FIELD(c, sig_a))
        || !s_vote_ok(c, S_FIELD(c, hash_b), S_FIELD(c, sig_b)))
        return s_reject(c, "a vote signature does not verify");
    if (s_can_pay(c, 0))
        return -1;
    if (c->apply) {
        s_charge(c, 0);
        uint64_t cut = bly_ledger_mul_bps(o.stake, c->self->genesis.slash_bps);
        bly_ledger_account_t *a = bly_ledger_touch(c->self, off);
        a->stake -= cut;
        c->self->total_stake -= cut;
        c->self->burned += cut;
        bly_ledger_seen_add(c->self, seen);
    }
    return 0;
}

//  Checks shared by every type: kind, chain, sender, nonce, fee, signature.
//  The signature check, once per transaction id: the id is SHA-256 of the whole encoded
//  transaction, signature included, so an id seen verified is the same bytes verified.
static bool
s_verify(s_ctx_t *c)
{
    uint8_t *slot = c->self->sigcache[(c->hash[0] | (size_t) c->hash[1] << 8) &
                                      (BLY_LEDGER_SIGCACHE_SIZE - 1)];
    if (memcmp(slot, c->hash, 32) == 0 ||
        (c->self->verified && c->self->verified(c->self->verified_ctx, c->hash)))
        return true;
    if (!bly_ledger_msg_verify(c->tx))
        return false;
    memcpy(slot, c->hash, 32);
    return true;
}

static int
s_common(s_ctx_t *c)
{
    int id = bly_ledger_msg_id(c->tx);
    if (id < BLY_LEDGER_MSG_TRANSFER || id > BLY_LEDGER_MSG_SLASH)
        return s_reject(c, "message %s is not a transaction", bly_ledger_msg_command(c->tx));
    if (strcmp(bly_ledger_msg_chain_id(c->tx), c->self->genesis.chain_id) != 0)
        return s_reject(c, "transaction is for another chain id");
    c->from = S_FIELD(c, from);
    if (bly_ledger_account(c->self, c->from, &c->sender)) {
        if (!bly_ledger_key_valid(c->from))
            return s_reject(c, "sender is not a valid Ed25519 key (zero or small order)");
        return s_reject(c, "sender account does not exist");
    }
    uint64_t nonce = bly_ledger_msg_nonce(c->tx);
    if (nonce <= c->sender.nonce)
        return s_reject(c, "nonce %llu already used", (unsigned long long) nonce);
    if (nonce - c->sender.nonce - 1 > c->window)
        return s_reject(c, "nonce gap: %llu after %llu", (unsigned long long) nonce,
                        (unsigned long long) c->sender.nonce);
    c->fee = bly_ledger_msg_fee(c->tx);
    if (c->fee < c->self->genesis.min_fee)
        return s_reject(c, "fee below the minimum fee");
    if (c->fee > c->sender.balance)
        return s_reject(c, "fee above the balance");
    //  New accounts a transaction may create: receiver, router, 16 shards, proposer.
    if (bly_ledger_account_count(c->self) + 20 > BLY_LEDGER_ACCOUNTS_MAX)
        return s_reject(c, "account table is full");
    if (!s_verify(c))
        return s_reject(c, "signature does not verify");
    return 0;
}

static int
s_run(s_ctx_t *c)
{
    c->height = c->self->open ? c->self->open_height : c->self->height + 1;
    if (s_common(c))
        return -1;
    if (c->apply && bly_ledger_reserve(c->self, 20))
        return s_reject(c, "out of memory for accounts");
    switch (bly_ledger_msg_id(c->tx)) {
    case BLY_LEDGER_MSG_TRANSFER:
        return s_transfer(c);
    case BLY_LEDGER_MSG_STAKE:
        return s_stake(c, true);
    case BLY_LEDGER_MSG_UNSTAKE:
        return s_stake(c, false);
    case BLY_LEDGER_MSG_RECEIPT:
        return s_receipt(c);
    case BLY_LEDGER_MSG_POL_META:
        return s_pol_meta(c);
    case BLY_LEDGER_MSG_POL_LAYER:
        return s_pol_layer(c);
    case BLY_LEDGER_MSG_POL_DELTA:
        return s_pol_delta(c);
    case BLY_LEDGER_MSG_ATTEST:
        return s_attest(c);
    case BLY_LEDGER_MSG_REWARD:
        return s_reward(c);
    default:
        bly_assert(bly_ledger_msg_id(c->tx) == BLY_LEDGER_MSG_SLASH);
        return s_slash(c);
    }
}

int
bly_ledger_tx_apply(bly_ledger_t *self, const bly_ledger_msg_t *tx, const uint8_t hash[32],
                    char *err, size_t err_size)
{
    bly_assert(self);
    bly_assert(tx);
    bly_assert(self->open);
    s_ctx_t c = {.self = self, .tx = tx, .hash = hash, .apply = true, .err = err,
                 .err_size = err_size};
    return s_run(&c);
}

int
bly_ledger_tx_rules(const bly_ledger_t *self, const bly_ledger_msg_t *tx, const uint8_t hash[32],
                    char *err, size_t err_size)
{
    bly_assert(self);
    bly_assert(tx);
    //  apply is false: the rules only read through this pointer.
    s_ctx_t c = {.self = (bly_ledger_t *) self, .tx = tx, .hash = hash, .apply = false,
                 .err = err, .err_size = err_size};
    return s_run(&c);
}

int
bly_ledger_tx_check(const bly_ledger_t *self, const uint8_t *tx, size_t size,
                    uint8_t tx_hash[32], char *err, size_t err_size)
{
    return bly_ledger_tx_check_pool(self, tx, size, 0, tx_hash, NULL, err, err_size);
}

int
bly_ledger_tx_check_pool(const bly_ledger_t *self, const uint8_t *tx, size_t size,
                         uint32_t window, uint8_t tx_hash[32], uint8_t sender[32], char *err,
                         size_t err_size)
{
    bly_assert(self);
    bly_assert(tx);
    bly_ledger_msg_t *m = NULL;
    char why[160] = "";
    if (size > BLY_LEDGER_TX_SIZE_MAX) {
        if (err && err_size)
            snprintf(err, err_size, "transaction larger than %u bytes", BLY_LEDGER_TX_SIZE_MAX);
        return -1;
    }
    if (bly_ledger_msg_decode(tx, size, &m, why, sizeof(why))) {
        if (err && err_size)
            snprintf(err, err_size, "transaction does not decode: %s", why);
        return -1;
    }
    uint8_t hash[32];
    bly_ledger_tx_hash(tx, size, hash);
    if (tx_hash)
        memcpy(tx_hash, hash, 32);
    //  apply is false: the rules only read through this pointer.
    s_ctx_t c = {.self = (bly_ledger_t *) self, .tx = m, .hash = hash, .window = window,
                 .apply = false, .err = err, .err_size = err_size};
    int rc = s_run(&c);
    if (rc == 0 && sender)
        memcpy(sender, c.from, 32);
    bly_ledger_msg_destroy(&m);
    return rc;
}
