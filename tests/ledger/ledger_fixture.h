/*  ledger_fixture - keys, genesis and block helpers shared by the ledger tests, the
    crash test and the benchmark. Header-only (static functions). */

#ifndef LEDGER_FIXTURE_H_INCLUDED
#define LEDGER_FIXTURE_H_INCLUDED

#include "bly_ledger.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FX_KEYS 64
#define FX_CHAIN "blyan-test-1"
#define FX_BALANCE 1000000000ull
#define FX_POOL 1000000000ull

typedef struct {
    uint8_t pk[FX_KEYS][32];
    uint8_t sk[FX_KEYS][64];
    uint64_t nonce[FX_KEYS];   //  Next nonce to use is nonce + 1.
} fx_keys_t;

static inline void
fx_keys(fx_keys_t *k, uint32_t salt)
{
    bly_assert(sodium_init() >= 0);
    memset(k, 0, sizeof(*k));
    for (int i = 0; i < FX_KEYS; i++) {
        uint8_t seed[32] = {0};
        seed[0] = (uint8_t) i;
        memcpy(seed + 4, &salt, 4);
        crypto_sign_seed_keypair(k->pk[i], k->sk[i], seed);
    }
}

//  Genesis: the first `funded` keys have FX_BALANCE, the first `validators` also stake 1000.
static inline void
fx_genesis(bly_ledger_genesis_t *g, const fx_keys_t *k, int funded, int validators)
{
    memset(g, 0, sizeof(*g));
    snprintf(g->chain_id, sizeof(g->chain_id), "%s", FX_CHAIN);
    g->reward_pool = FX_POOL;
    g->price_per_token = 10;
    g->min_fee = 1;
    g->delta_reward = 5000;
    g->validator_reward = 100;
    g->burn_bps = 1000;
    g->share_router_bps = 1000;
    g->share_validators_bps = 2000;
    g->slash_bps = 500;
    g->delta_norm_cap = 10.0f;
    for (int i = 0; i < funded; i++) {
        memcpy(g->accounts[i].key, k->pk[i], 32);
        g->accounts[i].balance = FX_BALANCE;
        g->accounts[i].stake = i < validators ? 1000 : 0;
    }
    g->account_count = (size_t) funded;
}

//  Sum of everything: must stay equal to the genesis total.
static inline uint64_t
fx_total(const bly_ledger_t *l)
{
    bly_ledger_supply_t s;
    bly_ledger_supply(l, &s);
    return s.balances + s.stakes + s.reward_pool + s.burned;
}

//  Encode a block with a correct header over exactly these transactions (no validation:
//  used to feed bad transactions to block_begin). Fresh buffer.
static inline int
fx_raw_block(const bly_ledger_t *l, uint8_t *const *txs, const size_t *sizes, size_t n,
             const uint8_t proposer[32], uint8_t **out, size_t *out_size)
{
    bly_ledger_msg_t *b = bly_ledger_msg_new(BLY_LEDGER_MSG_BLOCK);
    uint8_t *level = calloc(n + 1, 32);
    int rc = (b && level) ? 0 : -1;
    rc |= bly_ledger_msg_set_chain_id(b, bly_ledger_chain_id(l));
    bly_ledger_msg_set_height(b, bly_ledger_height(l) + 1);
    bly_ledger_msg_set_time_ms(b, bly_ledger_time_ms(l) + 1000);
    rc |= bly_ledger_msg_set_prev_hash(b, bly_ledger_block_hash(l), 32);
    rc |= bly_ledger_msg_set_app_hash(b, bly_ledger_app_hash(l), 32);
    rc |= bly_ledger_msg_set_proposer(b, proposer, 32);
    static bly_ledger_tx_blob_t blob;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        memcpy(blob.data, txs[i], sizes[i]);
        blob.data_size = sizes[i];
        rc |= bly_ledger_msg_txs_append(b, &blob);
        crypto_hash_sha256(level + i * 32, txs[i], sizes[i]);
    }
    uint8_t root[32];
    bly_ledger_merkle_root(level, n, root);
    rc |= bly_ledger_msg_set_tx_root(b, root, 32);
    if (rc == 0)
        rc = bly_ledger_msg_encode(b, out, out_size);
    free(level);
    bly_ledger_msg_destroy(&b);
    return rc;
}

//  A signed transfer from key a to key b (uses and bumps a's nonce).
static inline int
fx_transfer(fx_keys_t *k, int a, int b, uint64_t amount, uint64_t fee, uint8_t **tx, size_t *size)
{
    return bly_ledger_make_transfer(k->sk[a], FX_CHAIN, ++k->nonce[a], fee, k->pk[b], amount, tx,
                                    size);
}

//  Simple deterministic generator (splitmix64).
static inline uint64_t
fx_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

//  The deterministic block at the ledger's next height for a seeded workload: up to
//  `per_block` transfers, stakes and unstakes among the funded keys, including some
//  that must be skipped (over balance, bad nonce). Nonces are read from the ledger.
static inline int
fx_workload_block(bly_ledger_t *l, const fx_keys_t *k, int funded,
                  uint64_t seed, int per_block, uint8_t **block, size_t *size, size_t *included)
{
    uint64_t st = seed ^ (bly_ledger_height(l) * 0x100000001b3ull);
    uint8_t *txs[64];
    size_t sizes[64];
    uint64_t next[FX_KEYS];
    bly_assert(per_block <= 64);
    for (int i = 0; i < funded; i++) {
        bly_ledger_account_t a;
        next[i] = bly_ledger_account(l, k->pk[i], &a) == 0 ? a.nonce + 1 : 1;
    }
    int n = 0, rc = 0;
    for (; rc == 0 && n < per_block; n++) {
        int a = (int) (fx_rand(&st) % (uint64_t) funded);
        int b = (int) (fx_rand(&st) % FX_KEYS);
        uint64_t r = fx_rand(&st) % 100;
        uint64_t amount = r < 3 ? UINT64_MAX - 1 : (fx_rand(&st) % 100000) + 1;
        uint64_t nonce = r == 4 ? next[a] + 1 : next[a];
        if (r >= 90 && r < 95)
            rc = bly_ledger_make_stake(k->sk[a], FX_CHAIN, BLY_LEDGER_MSG_STAKE, nonce, 2,
                                       amount % 5000 + 1, &txs[n], &sizes[n]);
        else if (r >= 95)
            rc = bly_ledger_make_stake(k->sk[a], FX_CHAIN, BLY_LEDGER_MSG_UNSTAKE, nonce, 2,
                                       amount % 700 + 1, &txs[n], &sizes[n]);
        else
            rc = bly_ledger_make_transfer(k->sk[a], FX_CHAIN, nonce, 1 + r % 7,
                                          k->pk[a == b ? (b + 1) % FX_KEYS : b], amount, &txs[n],
                                          &sizes[n]);
        if (r >= 5)
            next[a]++;
    }
    if (rc == 0)
        rc = bly_ledger_block_build(l, (const uint8_t *const *) txs, sizes, (size_t) n,
                                    bly_ledger_time_ms(l) + 1000, k->pk[0], block, size, included);
    for (int i = 0; i < n; i++)
        free(txs[i]);
    return rc;
}

#endif
