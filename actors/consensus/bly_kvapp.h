/*  =========================================================================
    bly_kvapp - a small deterministic transfer application with a mempool

    The application the consensus core commits into until the ledger is
    merged, and the one the simulator uses: numbered accounts with balances
    and nonces, validator stakes, transfers, slashing of proven
    equivocators (burn slash_percent of the stake and tombstone them: power
    0 from the next height on, forever), unstaking. Supply is conserved: balances + stakes + burned never
    change. The mempool validates against state, bounds its size and the
    pending transactions per sender, and evicts fairly (from the sender
    holding the most) when full.

    Transaction (24 bytes, little-endian): u32 from, u32 to, u64 amount,
    u64 nonce. `to` = BLY_KVAPP_UNSTAKE makes it an unstake: validator
    `from` moves `amount` of its stake to account `from` (same index; the
    account's nonce). A block payload is a sequence of transactions.
    ========================================================================= */

#ifndef BLY_KVAPP_H_INCLUDED
#define BLY_KVAPP_H_INCLUDED

#include "bly_cons_core.h"

typedef struct _bly_kvapp_t bly_kvapp_t;

#define BLY_KVAPP_TX_SIZE 24
#define BLY_KVAPP_ACCOUNTS_MAX 4096
#define BLY_KVAPP_UNSTAKE UINT32_MAX

typedef struct {
    uint32_t from;
    uint32_t to;
    uint64_t amount;
    uint64_t nonce;
} bly_kvapp_tx_t;

typedef enum {
    BLY_KVAPP_OK = 0,
    BLY_KVAPP_ERR_MALFORMED = -1,   //  Bad account, zero amount, self transfer.
    BLY_KVAPP_ERR_NONCE = -2,       //  Nonce already used or too far ahead.
    BLY_KVAPP_ERR_FUNDS = -3,       //  Balance does not cover this and pending transfers.
    BLY_KVAPP_ERR_FULL = -4,        //  Mempool full and the sender holds its fair share.
    BLY_KVAPP_ERR_DUPLICATE = -5,   //  Same sender and nonce already pending.
} bly_kvapp_err_t;

//  Create with `account_count` accounts of `balance` each and
//  `validator_count` stakes of `stake` each; `slash_percent` of a stake is
//  burned per proven equivocation. `mempool_max` and `block_tx_max` bound
//  the mempool and blocks. NULL on bad arguments.
bly_kvapp_t *bly_kvapp_new(uint32_t account_count, uint64_t balance, uint32_t validator_count,
                           uint64_t stake, uint32_t slash_percent, uint32_t mempool_max,
                           uint32_t block_tx_max);
void bly_kvapp_destroy(bly_kvapp_t **self_p);

void bly_kvapp_tx_put(const bly_kvapp_tx_t *tx, uint8_t out[BLY_KVAPP_TX_SIZE]);
void bly_kvapp_tx_get(bly_kvapp_tx_t *tx, const uint8_t in[BLY_KVAPP_TX_SIZE]);

//  Offer a transaction to the mempool. Returns a bly_kvapp_err_t.
BLY_MUST_USE int bly_kvapp_submit(bly_kvapp_t *self, const bly_kvapp_tx_t *tx);

//  The consensus application callbacks (see bly_cons_app_t); `self` is a
//  bly_kvapp_t.
uint32_t bly_kvapp_build(void *self, uint64_t height, uint8_t *payload, uint32_t max);
int bly_kvapp_check(void *self, uint64_t height, const uint8_t *payload, uint32_t size);
int bly_kvapp_apply(void *self, uint64_t height, const uint8_t *payload, uint32_t size,
                    const uint16_t *offenders, uint32_t offender_count,
                    uint8_t app_hash[BLY_CONS_ID_SIZE]);
void bly_kvapp_hash(void *self, uint8_t app_hash[BLY_CONS_ID_SIZE]);
//  bly_cons_app_t.powers: each validator's stake, 0 when tombstoned.
uint32_t bly_kvapp_powers(void *self, uint64_t out[BLY_CONS_VALIDATORS_MAX]);
//  The whole bly_cons_app_t over this app (build, check, apply, hash, powers);
//  committed COMMIT messages for peers that catch up come from the caller's
//  block store: `load(store, ...)`.
bly_cons_app_t bly_kvapp_app(bly_kvapp_t *self, uint32_t (*load)(void *store, uint64_t height,
                                                                 uint8_t *buf, uint32_t max),
                             void *store);

//  Before the first block: per-validator genesis stakes (validator_count of
//  them, total > 0). 0, or -1 after a block or for a bad total.
BLY_MUST_USE int bly_kvapp_set_stakes(bly_kvapp_t *self, const uint64_t *stakes);
//  True once an equivocation of `validator` committed.
bool bly_kvapp_tombstoned(const bly_kvapp_t *self, uint32_t validator);

//  Queries.
uint64_t bly_kvapp_balance(const bly_kvapp_t *self, uint32_t account);
uint64_t bly_kvapp_nonce(const bly_kvapp_t *self, uint32_t account);
//  The nonce a new transfer from `account` needs to enter the mempool.
uint64_t bly_kvapp_next_nonce(const bly_kvapp_t *self, uint32_t account);
uint64_t bly_kvapp_stake(const bly_kvapp_t *self, uint32_t validator);
//  balances + stakes + burned (constant).
uint64_t bly_kvapp_supply(const bly_kvapp_t *self);
uint64_t bly_kvapp_burned(const bly_kvapp_t *self);
uint32_t bly_kvapp_pending(const bly_kvapp_t *self);
//  Transfers applied so far.
uint64_t bly_kvapp_applied(const bly_kvapp_t *self);

#endif
