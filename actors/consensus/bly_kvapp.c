/*  =========================================================================
    bly_kvapp - a small deterministic transfer application with a mempool
    ========================================================================= */

#include "bly_kvapp.h"
#include "bly_sha256.h"

#include <stdlib.h>
#include <string.h>

struct _bly_kvapp_t {
    uint32_t account_count;      //  Accounts 0..account_count-1.
    uint32_t validator_count;    //  Stakes 0..validator_count-1.
    uint32_t slash_percent;      //  Share of a stake burned per offence.
    uint64_t *balances;          //  Per account.
    uint64_t *nonces;            //  Per account: next nonce expected.
    uint64_t *stakes;            //  Per validator.
    uint8_t *tombstoned;         //  Per validator: 1 once an equivocation of it committed.
    uint64_t burned;             //  Slashed and destroyed.
    uint64_t applied;            //  Transfers applied.
    uint64_t height;             //  Last applied height.
    uint8_t hash[BLY_CONS_ID_SIZE];    //  App hash after `height`.
    //  Mempool in arrival order, with per-sender pending counts and amounts.
    bly_kvapp_tx_t *pool;
    uint32_t pool_count;
    uint32_t pool_max;
    uint32_t *sender_count;
    uint64_t *sender_amount;
    uint32_t block_tx_max;
    //  Scratch state for check and build (allocated once).
    uint64_t *scratch_balances;
    uint64_t *scratch_nonces;
    uint64_t *scratch_stakes;
    //  The caller's block store (bly_kvapp_app).
    uint32_t (*load)(void *store, uint64_t height, uint8_t *buf, uint32_t max);
    void *store;
};

static void
s_rehash(bly_kvapp_t *self)
{
    bly_sha256_t st;
    bly_sha256_init(&st);
    uint8_t word[8];
    bly_cons_put_u64(word, self->height);
    bly_sha256_update(&st, word, 8);
    for (uint32_t i = 0; i < self->account_count; i++) {
        bly_cons_put_u64(word, self->balances[i]);
        bly_sha256_update(&st, word, 8);
        bly_cons_put_u64(word, self->nonces[i]);
        bly_sha256_update(&st, word, 8);
    }
    for (uint32_t i = 0; i < self->validator_count; i++) {
        bly_cons_put_u64(word, self->stakes[i]);
        bly_sha256_update(&st, word, 8);
    }
    bly_sha256_update(&st, self->tombstoned, self->validator_count);
    bly_cons_put_u64(word, self->burned);
    bly_sha256_update(&st, word, 8);
    bly_sha256_final(&st, self->hash);
}

bly_kvapp_t *
bly_kvapp_new(uint32_t account_count, uint64_t balance, uint32_t validator_count, uint64_t stake,
              uint32_t slash_percent, uint32_t mempool_max, uint32_t block_tx_max)
{
    if (account_count < 2 || account_count > BLY_KVAPP_ACCOUNTS_MAX || validator_count == 0 ||
        validator_count > BLY_CONS_VALIDATORS_MAX || slash_percent > 100 || mempool_max == 0 ||
        mempool_max > BLY_MEMPOOL_TX_MAX || block_tx_max == 0)
        return NULL;
    //  Supply must fit a u64.
    if (balance > UINT64_MAX / 2 / account_count || stake > UINT64_MAX / 2 / validator_count)
        return NULL;
    bly_kvapp_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->account_count = account_count;
    self->validator_count = validator_count;
    self->slash_percent = slash_percent;
    self->pool_max = mempool_max;
    self->block_tx_max = block_tx_max;
    self->balances = calloc(account_count, sizeof(uint64_t));
    self->nonces = calloc(account_count, sizeof(uint64_t));
    self->stakes = calloc(validator_count, sizeof(uint64_t));
    self->tombstoned = calloc(validator_count, 1);
    self->pool = calloc(mempool_max, sizeof(bly_kvapp_tx_t));
    self->sender_count = calloc(account_count, sizeof(uint32_t));
    self->sender_amount = calloc(account_count, sizeof(uint64_t));
    self->scratch_balances = calloc(account_count, sizeof(uint64_t));
    self->scratch_nonces = calloc(account_count, sizeof(uint64_t));
    self->scratch_stakes = calloc(validator_count, sizeof(uint64_t));
    if (!self->balances || !self->nonces || !self->stakes || !self->tombstoned || !self->pool ||
        !self->sender_count || !self->sender_amount || !self->scratch_balances ||
        !self->scratch_nonces || !self->scratch_stakes) {
        bly_kvapp_destroy(&self);
        return NULL;
    }
    for (uint32_t i = 0; i < account_count; i++)
        self->balances[i] = balance;
    for (uint32_t i = 0; i < validator_count; i++)
        self->stakes[i] = stake;
    s_rehash(self);
    return self;
}

void
bly_kvapp_destroy(bly_kvapp_t **self_p)
{
    bly_assert(self_p);
    bly_kvapp_t *self = *self_p;
    if (!self)
        return;
    free(self->scratch_stakes);
    free(self->scratch_nonces);
    free(self->scratch_balances);
    free(self->sender_amount);
    free(self->sender_count);
    free(self->pool);
    free(self->tombstoned);
    free(self->stakes);
    free(self->nonces);
    free(self->balances);
    free(self);
    *self_p = NULL;
}

void
bly_kvapp_tx_put(const bly_kvapp_tx_t *tx, uint8_t out[BLY_KVAPP_TX_SIZE])
{
    bly_assert(tx);
    bly_cons_put_u32(out, tx->from);
    bly_cons_put_u32(out + 4, tx->to);
    bly_cons_put_u64(out + 8, tx->amount);
    bly_cons_put_u64(out + 16, tx->nonce);
}

void
bly_kvapp_tx_get(bly_kvapp_tx_t *tx, const uint8_t in[BLY_KVAPP_TX_SIZE])
{
    bly_assert(tx);
    tx->from = bly_cons_get_u32(in);
    tx->to = bly_cons_get_u32(in + 4);
    tx->amount = bly_cons_get_u64(in + 8);
    tx->nonce = bly_cons_get_u64(in + 16);
}

static bool
s_tx_wellformed(const bly_kvapp_t *self, const bly_kvapp_tx_t *tx)
{
    if (tx->to == BLY_KVAPP_UNSTAKE)
        return tx->from < self->validator_count && tx->from < self->account_count &&
               tx->amount > 0;
    return tx->from < self->account_count && tx->to < self->account_count &&
           tx->from != tx->to && tx->amount > 0;
}

//  What a pending transaction takes from its sender's balance.
static uint64_t
s_tx_spend(const bly_kvapp_tx_t *tx)
{
    return tx->to == BLY_KVAPP_UNSTAKE ? 0 : tx->amount;
}

//  Fair eviction: drop the newest pending transfer of the sender holding
//  the most, when that is more than `sender` would hold after adding one.
static bool
s_evict_for(bly_kvapp_t *self, uint32_t sender)
{
    uint32_t worst = 0;
    for (uint32_t a = 1; a < self->account_count; a++)
        if (self->sender_count[a] > self->sender_count[worst])
            worst = a;
    if (self->sender_count[worst] <= self->sender_count[sender] + 1)
        return false;
    for (uint32_t i = self->pool_count; i-- > 0;) {
        if (self->pool[i].from != worst)
            continue;
        //  Its highest nonce is the newest: later nonces depend on earlier ones.
        self->sender_count[worst]--;
        self->sender_amount[worst] -= s_tx_spend(&self->pool[i]);
        memmove(&self->pool[i], &self->pool[i + 1],
                (self->pool_count - i - 1) * sizeof(bly_kvapp_tx_t));
        self->pool_count--;
        return true;
    }
    (void) BLY_NEVER(true);
    return false;
}

int
bly_kvapp_submit(bly_kvapp_t *self, const bly_kvapp_tx_t *tx)
{
    bly_assert(self);
    bly_assert(tx);
    if (!s_tx_wellformed(self, tx))
        return BLY_KVAPP_ERR_MALFORMED;
    uint32_t from = tx->from;
    uint64_t expect = self->nonces[from] + self->sender_count[from];
    if (tx->nonce < expect && tx->nonce >= self->nonces[from])
        return BLY_KVAPP_ERR_DUPLICATE;
    if (tx->nonce != expect || self->sender_count[from] >= BLY_MEMPOOL_SENDER_TX_MAX)
        return BLY_KVAPP_ERR_NONCE;
    uint64_t need = self->sender_amount[from] + s_tx_spend(tx);
    if (need < self->sender_amount[from] || need > self->balances[from] ||
        (tx->to == BLY_KVAPP_UNSTAKE && tx->amount > self->stakes[from]))
        return BLY_KVAPP_ERR_FUNDS;
    if (self->pool_count == self->pool_max && !s_evict_for(self, from))
        return BLY_KVAPP_ERR_FULL;
    self->pool[self->pool_count++] = *tx;
    self->sender_count[from]++;
    self->sender_amount[from] = need;
    return BLY_KVAPP_OK;
}

static void
s_scratch_load(bly_kvapp_t *self)
{
    memcpy(self->scratch_balances, self->balances, self->account_count * sizeof(uint64_t));
    memcpy(self->scratch_nonces, self->nonces, self->account_count * sizeof(uint64_t));
    memcpy(self->scratch_stakes, self->stakes, self->validator_count * sizeof(uint64_t));
}

//  Apply `tx` to the scratch state; false when it does not apply.
static bool
s_scratch_apply(bly_kvapp_t *self, const bly_kvapp_tx_t *tx)
{
    if (!s_tx_wellformed(self, tx) || tx->nonce != self->scratch_nonces[tx->from])
        return false;
    if (tx->to == BLY_KVAPP_UNSTAKE) {
        //  Validator `from` moves part of its stake to account `from`.
        if (tx->amount > self->scratch_stakes[tx->from])
            return false;
        self->scratch_stakes[tx->from] -= tx->amount;
        self->scratch_balances[tx->from] += tx->amount;
        self->scratch_nonces[tx->from]++;
        return true;
    }
    if (tx->amount > self->scratch_balances[tx->from])
        return false;
    self->scratch_balances[tx->from] -= tx->amount;
    self->scratch_balances[tx->to] += tx->amount;
    self->scratch_nonces[tx->from]++;
    return true;
}

uint32_t
bly_kvapp_build(void *self_, uint64_t height, uint8_t *payload, uint32_t max)
{
    bly_kvapp_t *self = self_;
    bly_assert(self);
    bly_assert(payload);
    s_scratch_load(self);
    uint32_t size = 0, count = 0;
    for (uint32_t i = 0; i < self->pool_count && count < self->block_tx_max; i++) {
        if (size + BLY_KVAPP_TX_SIZE > max)
            break;
        if (!s_scratch_apply(self, &self->pool[i]))
            continue;
        bly_kvapp_tx_put(&self->pool[i], payload + size);
        size += BLY_KVAPP_TX_SIZE;
        count++;
    }
    return size;
}

int
bly_kvapp_check(void *self_, uint64_t height, const uint8_t *payload, uint32_t size)
{
    bly_kvapp_t *self = self_;
    bly_assert(self);
    if (size % BLY_KVAPP_TX_SIZE != 0 || size / BLY_KVAPP_TX_SIZE > self->block_tx_max)
        return -1;
    if (height != self->height + 1)
        return -1;
    s_scratch_load(self);
    for (uint32_t at = 0; at < size; at += BLY_KVAPP_TX_SIZE) {
        bly_kvapp_tx_t tx;
        bly_kvapp_tx_get(&tx, payload + at);
        if (!s_scratch_apply(self, &tx))
            return -1;
    }
    return 0;
}

//  Keep only pending transfers that still apply in order after a block.
static void
s_pool_prune(bly_kvapp_t *self)
{
    memset(self->sender_count, 0, self->account_count * sizeof(uint32_t));
    memset(self->sender_amount, 0, self->account_count * sizeof(uint64_t));
    uint32_t kept = 0;
    for (uint32_t i = 0; i < self->pool_count; i++) {
        const bly_kvapp_tx_t *tx = &self->pool[i];
        uint32_t from = tx->from;
        uint64_t need = self->sender_amount[from] + s_tx_spend(tx);
        if (tx->nonce != self->nonces[from] + self->sender_count[from] ||
            need > self->balances[from] ||
            (tx->to == BLY_KVAPP_UNSTAKE && tx->amount > self->stakes[from]))
            continue;
        self->sender_count[from]++;
        self->sender_amount[from] = need;
        self->pool[kept++] = *tx;
    }
    self->pool_count = kept;
}

int
bly_kvapp_apply(void *self_, uint64_t height, const uint8_t *payload, uint32_t size,
                const uint16_t *offenders, uint32_t offender_count,
                uint8_t app_hash[BLY_CONS_ID_SIZE])
{
    bly_kvapp_t *self = self_;
    bly_assert(self);
    bly_assert(app_hash);
    if (bly_kvapp_check(self, height, payload, size) != 0)
        return -1;
    //  check() left the result in the scratch state.
    memcpy(self->balances, self->scratch_balances, self->account_count * sizeof(uint64_t));
    memcpy(self->nonces, self->scratch_nonces, self->account_count * sizeof(uint64_t));
    memcpy(self->stakes, self->scratch_stakes, self->validator_count * sizeof(uint64_t));
    self->applied += size / BLY_KVAPP_TX_SIZE;
    for (uint32_t i = 0; i < offender_count; i++) {
        if (offenders[i] >= self->validator_count)
            return -1;
        uint64_t stake = self->stakes[offenders[i]];
        uint64_t cut = stake / 100 * self->slash_percent + stake % 100 * self->slash_percent / 100;
        self->stakes[offenders[i]] -= cut;
        self->burned += cut;
        self->tombstoned[offenders[i]] = 1;    //  Power 0 from the next height on.
    }
    self->height = height;
    s_rehash(self);
    s_pool_prune(self);
    memcpy(app_hash, self->hash, BLY_CONS_ID_SIZE);
    return 0;
}

void
bly_kvapp_hash(void *self_, uint8_t app_hash[BLY_CONS_ID_SIZE])
{
    bly_kvapp_t *self = self_;
    bly_assert(self);
    memcpy(app_hash, self->hash, BLY_CONS_ID_SIZE);
}

uint64_t
bly_kvapp_balance(const bly_kvapp_t *self, uint32_t account)
{
    bly_assert(self);
    return account < self->account_count ? self->balances[account] : 0;
}

uint64_t
bly_kvapp_nonce(const bly_kvapp_t *self, uint32_t account)
{
    bly_assert(self);
    return account < self->account_count ? self->nonces[account] : 0;
}

uint64_t
bly_kvapp_next_nonce(const bly_kvapp_t *self, uint32_t account)
{
    bly_assert(self);
    return account < self->account_count ? self->nonces[account] + self->sender_count[account]
                                         : 0;
}

uint64_t
bly_kvapp_stake(const bly_kvapp_t *self, uint32_t validator)
{
    bly_assert(self);
    return validator < self->validator_count ? self->stakes[validator] : 0;
}

int
bly_kvapp_set_stakes(bly_kvapp_t *self, const uint64_t *stakes)
{
    bly_assert(self && stakes);
    if (self->height != 0)
        return -1;
    uint64_t total = 0;
    for (uint32_t i = 0; i < self->validator_count; i++) {
        if (stakes[i] > UINT64_MAX / 2 / self->validator_count)
            return -1;
        total += stakes[i];
    }
    if (total == 0)
        return -1;
    memcpy(self->stakes, stakes, self->validator_count * sizeof(uint64_t));
    s_rehash(self);
    return 0;
}

bool
bly_kvapp_tombstoned(const bly_kvapp_t *self, uint32_t validator)
{
    bly_assert(self);
    return validator < self->validator_count && self->tombstoned[validator];
}

uint32_t
bly_kvapp_powers(void *self_, uint64_t out[BLY_CONS_VALIDATORS_MAX])
{
    bly_kvapp_t *self = self_;
    bly_assert(self && out);
    for (uint32_t i = 0; i < self->validator_count; i++)
        out[i] = self->tombstoned[i] ? 0 : self->stakes[i];
    return self->validator_count;
}

static int
s_app_apply(void *self, uint64_t height, const uint8_t *payload, uint32_t size,
            const uint16_t *offenders, uint32_t offender_count, const uint8_t *evidence,
            uint8_t app_hash[BLY_CONS_ID_SIZE])
{
    (void) evidence;    //  Offenders are punished by validator index.
    return bly_kvapp_apply(self, height, payload, size, offenders, offender_count, app_hash);
}

static uint32_t
s_app_load(void *self_, uint64_t height, uint8_t *buf, uint32_t max)
{
    bly_kvapp_t *self = self_;
    return self->load(self->store, height, buf, max);
}

bly_cons_app_t
bly_kvapp_app(bly_kvapp_t *self,
              uint32_t (*load)(void *store, uint64_t height, uint8_t *buf, uint32_t max),
              void *store)
{
    bly_assert(self && load);
    self->load = load;
    self->store = store;
    return (bly_cons_app_t){.self = self, .build = bly_kvapp_build, .check = bly_kvapp_check,
                            .apply = s_app_apply, .hash = bly_kvapp_hash,
                            .load_commit = s_app_load, .powers = bly_kvapp_powers};
}

uint64_t
bly_kvapp_supply(const bly_kvapp_t *self)
{
    bly_assert(self);
    uint64_t total = self->burned;
    for (uint32_t i = 0; i < self->account_count; i++)
        total += self->balances[i];
    for (uint32_t i = 0; i < self->validator_count; i++)
        total += self->stakes[i];
    return total;
}

uint64_t
bly_kvapp_burned(const bly_kvapp_t *self)
{
    bly_assert(self);
    return self->burned;
}

uint32_t
bly_kvapp_pending(const bly_kvapp_t *self)
{
    bly_assert(self);
    return self->pool_count;
}

uint64_t
bly_kvapp_applied(const bly_kvapp_t *self)
{
    bly_assert(self);
    return self->applied;
}
