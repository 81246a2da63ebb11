/*  =========================================================================
    bly_ledger_genesis - the genesis file, addresses, keys, and signed
    transaction builders for clients and tests.

    Genesis format (config/genesis.conf documents every key): one
    "key value" pair per line, '#' starts a comment, every parameter exactly
    once, then one "account ADDRESS BALANCE STAKE" line per initial account.
    ========================================================================= */

#include "bly_ledger_internal.h"
#include "bly_sha256.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define s_fail bly_ledger_fail

//  ---- Addresses and keys ----

static void
s_checksum(const uint8_t key[32], uint8_t out[4])
{
    uint8_t buf[13 + 32], h[32];
    memcpy(buf, "blyan/address", 13);
    memcpy(buf + 13, key, 32);
    bly_sha256(h, buf, sizeof(buf));
    memcpy(out, h, 4);
}

void
bly_ledger_address_format(const uint8_t key[32], char *out)
{
    bly_assert(key);
    bly_assert(out);
    uint8_t sum[4];
    s_checksum(key, sum);
    memcpy(out, "bly1", 4);
    sodium_bin2hex(out + 4, 65, key, 32);
    sodium_bin2hex(out + 68, 9, sum, 4);
    bly_assert(strlen(out) == BLY_LEDGER_ADDRESS_LEN);
}

int
bly_ledger_address_parse(const char *text, uint8_t key[32])
{
    bly_assert(text);
    bly_assert(key);
    if (strnlen(text, BLY_LEDGER_ADDRESS_LEN + 1) != BLY_LEDGER_ADDRESS_LEN
        || memcmp(text, "bly1", 4) != 0)
        return -1;
    uint8_t k[32], sum[4], want[4];
    size_t n = 0;
    if (sodium_hex2bin(k, 32, text + 4, 64, NULL, &n, NULL) || n != 32)
        return -1;
    if (sodium_hex2bin(sum, 4, text + 68, 8, NULL, &n, NULL) || n != 4)
        return -1;
    //  Only lower-case hex is canonical: one key, one address.
    for (size_t i = 4; i < BLY_LEDGER_ADDRESS_LEN; i++) {
        if (text[i] >= 'A' && text[i] <= 'F')
            return -1;
    }
    s_checksum(k, want);
    if (memcmp(sum, want, 4) != 0)
        return -1;
    memcpy(key, k, 32);
    return 0;
}

bool
bly_ledger_key_valid(const uint8_t key[32])
{
    bly_assert(key);
    //  Canonical encoding, on the curve, in the main subgroup, not of small order
    //  (so not the all-zero or identity encodings).
    return crypto_core_ed25519_is_valid_point(key) == 1;
}

//  ---- Genesis ----

static int
s_parse_u64(const char *text, uint64_t *value)
{
    if (!text || text[0] < '0' || text[0] > '9')
        return -1;
    if (text[0] == '0' && text[1] != '\0')
        return -1;  //  No leading zeros: one spelling per value.
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || !end || *end != '\0')
        return -1;
    *value = v;
    return 0;
}

//  The u64 parameters by name (the u32 ones are read into u64 then range-checked).
typedef struct {
    const char *name;
    size_t offset;  //  Into bly_ledger_genesis_t.
    int bits;       //  32 or 64.
} s_param_t;

#define S_P(n, b) {#n, offsetof(bly_ledger_genesis_t, n), b}
static const s_param_t s_params[] = {
    S_P(genesis_time_ms, 64), S_P(reward_pool, 64),      S_P(price_per_token, 64),
    S_P(min_fee, 64),         S_P(delta_reward, 64),     S_P(validator_reward, 64),
    S_P(burn_bps, 32),        S_P(share_router_bps, 32), S_P(share_validators_bps, 32),
    S_P(slash_bps, 32),
};
#define S_PARAM_COUNT (sizeof(s_params) / sizeof(s_params[0]))

//  One "key value..." line; `seen` marks parameters already given.
static int
s_genesis_line(char *line, bly_ledger_genesis_t *g, bool *seen, char *err, size_t es)
{
    char *save = NULL;
    char *key = strtok_r(line, " \t", &save);
    char *v1 = strtok_r(NULL, " \t", &save);
    char *v2 = strtok_r(NULL, " \t", &save);
    char *v3 = strtok_r(NULL, " \t", &save);
    if (!key)
        return 0;
    if (strcmp(key, "account") == 0) {
        if (!v3 || strtok_r(NULL, " \t", &save))
            return s_fail(err, es, "account needs ADDRESS BALANCE STAKE");
        if (g->account_count == BLY_LEDGER_GENESIS_ACCOUNTS_MAX)
            return s_fail(err, es, "more than %u accounts", BLY_LEDGER_GENESIS_ACCOUNTS_MAX);
        bly_ledger_account_t *a = &g->accounts[g->account_count];
        memset(a, 0, sizeof(*a));
        if (bly_ledger_address_parse(v1, a->key))
            return s_fail(err, es, "account %s: bad address (checksum?)", v1);
        if (s_parse_u64(v2, &a->balance) || s_parse_u64(v3, &a->stake))
            return s_fail(err, es, "account %s: bad balance or stake", v1);
        g->account_count++;
        return 0;
    }
    if (!v1 || v2)
        return s_fail(err, es, "%s: expected exactly one value", key);
    if (strcmp(key, "chain_id") == 0 || strcmp(key, "delta_norm_cap") == 0) {
        bool is_chain = key[0] == 'c';
        if (seen[S_PARAM_COUNT + (is_chain ? 0 : 1)])
            return s_fail(err, es, "%s given twice", key);
        seen[S_PARAM_COUNT + (is_chain ? 0 : 1)] = true;
        if (is_chain) {
            if (strlen(v1) > BLY_LEDGER_CHAIN_ID_MAX)
                return s_fail(err, es, "chain_id longer than %d", BLY_LEDGER_CHAIN_ID_MAX);
            snprintf(g->chain_id, sizeof(g->chain_id), "%s", v1);
            return 0;
        }
        char *end = NULL;
        g->delta_norm_cap = strtof(v1, &end);
        return end && *end == '\0' ? 0 : s_fail(err, es, "delta_norm_cap: not a number");
    }
    for (size_t i = 0; i < S_PARAM_COUNT; i++) {
        if (strcmp(key, s_params[i].name) != 0)
            continue;
        uint64_t v;
        if (seen[i])
            return s_fail(err, es, "%s given twice", key);
        seen[i] = true;
        if (s_parse_u64(v1, &v) || (s_params[i].bits == 32 && v > UINT32_MAX))
            return s_fail(err, es, "%s: bad value %s", key, v1);
        char *field = (char *) g + s_params[i].offset;
        if (s_params[i].bits == 32)
            *(uint32_t *) (void *) field = (uint32_t) v;
        else
            *(uint64_t *) (void *) field = v;
        return 0;
    }
    return s_fail(err, es, "unknown key %s", key);
}

int
bly_ledger_genesis_parse(const char *text, size_t size, bly_ledger_genesis_t *g, char *err,
                         size_t err_size)
{
    bly_assert(text);
    bly_assert(g);
    memset(g, 0, sizeof(*g));
    if (size > BLY_LEDGER_GENESIS_FILE_MAX || memchr(text, '\0', size))
        return s_fail(err, err_size, "genesis too large or holds NUL");
    bool seen[S_PARAM_COUNT + 2] = {false};
    size_t pos = 0, line_no = 0;
    while (pos < size) {  //  Bounded by size.
        const char *nl = memchr(text + pos, '\n', size - pos);
        size_t len = nl ? (size_t) (nl - (text + pos)) : size - pos;
        char line[512];
        line_no++;
        if (len >= sizeof(line))
            return s_fail(err, err_size, "line %zu: longer than %zu", line_no, sizeof(line) - 1);
        memcpy(line, text + pos, len);
        line[len] = '\0';
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char why[200];
        if (s_genesis_line(line, g, seen, why, sizeof(why)))
            return s_fail(err, err_size, "line %zu: %s", line_no, why);
        pos += len + 1;
    }
    for (size_t i = 0; i < S_PARAM_COUNT + 2; i++) {
        if (!seen[i])
            return s_fail(err, err_size, "missing %s",
                          i < S_PARAM_COUNT ? s_params[i].name
                                            : (i == S_PARAM_COUNT ? "chain_id" : "delta_norm_cap"));
    }
    return bly_ledger_genesis_check(g, err, err_size);
}

int
bly_ledger_genesis_load(const char *path, bly_ledger_genesis_t *g, char *err, size_t err_size)
{
    bly_assert(path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return s_fail(err, err_size, "cannot open %s: %s", path, strerror(errno));
    char *buf = malloc(BLY_LEDGER_GENESIS_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, BLY_LEDGER_GENESIS_FILE_MAX + 1, f) : 0;
    fclose(f);
    int rc;
    if (!buf)
        rc = s_fail(err, err_size, "out of memory");
    else if (n > BLY_LEDGER_GENESIS_FILE_MAX)
        rc = s_fail(err, err_size, "%s: larger than %u bytes", path, BLY_LEDGER_GENESIS_FILE_MAX);
    else
        rc = bly_ledger_genesis_parse(buf, n, g, err, err_size);
    free(buf);
    return rc;
}

static bool
s_chain_id_ok(const char *id)
{
    size_t n = strnlen(id, BLY_LEDGER_CHAIN_ID_MAX + 1);
    if (n == 0 || n > BLY_LEDGER_CHAIN_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

int
bly_ledger_genesis_check(const bly_ledger_genesis_t *g, char *err, size_t es)
{
    bly_assert(g);
    if (!s_chain_id_ok(g->chain_id))
        return s_fail(err, es, "chain_id must be 1..%d of [A-Za-z0-9._-]", BLY_LEDGER_CHAIN_ID_MAX);
    if (g->burn_bps > BLY_LEDGER_BPS || g->slash_bps > BLY_LEDGER_BPS
        || g->share_router_bps > BLY_LEDGER_BPS
        || g->share_router_bps + g->share_validators_bps > BLY_LEDGER_BPS)
        return s_fail(err, es, "a fraction is above 10000 bps (router + validators at most 10000)");
    if (!isfinite(g->delta_norm_cap) || g->delta_norm_cap <= 0.0f)
        return s_fail(err, es, "delta_norm_cap must be finite and positive");
    if (g->account_count == 0 || g->account_count > BLY_LEDGER_GENESIS_ACCOUNTS_MAX)
        return s_fail(err, es, "genesis needs 1..%u accounts", BLY_LEDGER_GENESIS_ACCOUNTS_MAX);
    uint64_t total = g->reward_pool;
    for (size_t i = 0; i < g->account_count; i++) {
        const bly_ledger_account_t *a = &g->accounts[i];
        if (!bly_ledger_key_valid(a->key))
            return s_fail(err, es, "account %zu: key is not a valid Ed25519 point", i);
        if (a->nonce != 0)
            return s_fail(err, es, "account %zu: genesis nonce must be 0", i);
        for (size_t j = 0; j < i; j++) {
            if (memcmp(a->key, g->accounts[j].key, 32) == 0)
                return s_fail(err, es, "account %zu: duplicate key", i);
        }
        if (__builtin_add_overflow(total, a->balance, &total)
            || __builtin_add_overflow(total, a->stake, &total))
            return s_fail(err, es, "total supply overflows u64");
    }
    return 0;
}

//  ---- Signed transaction builders ----

int
bly_ledger_make_tx(bly_ledger_msg_t **m_p, const uint8_t secret[64], const char *chain_id,
                   uint64_t nonce, uint64_t fee, uint8_t **tx, size_t *size)
{
    bly_assert(m_p && *m_p);
    bly_assert(secret && chain_id && tx && size);
    bly_ledger_msg_t *m = *m_p;
    int rc = bly_ledger_msg_set_chain_id(m, chain_id);
    rc |= bly_ledger_msg_set_from(m, secret + 32, 32);
    bly_ledger_msg_set_nonce(m, nonce);
    bly_ledger_msg_set_fee(m, fee);
    if (rc == 0)
        rc = bly_ledger_msg_sign(m, secret);
    if (rc == 0)
        rc = bly_ledger_msg_encode(m, tx, size);
    bly_ledger_msg_destroy(m_p);
    return rc ? -1 : 0;
}

int
bly_ledger_make_transfer(const uint8_t secret[64], const char *chain_id, uint64_t nonce,
                         uint64_t fee, const uint8_t to[32], uint64_t amount, uint8_t **tx,
                         size_t *size)
{
    bly_assert(secret && chain_id && to && tx && size);
    bly_ledger_msg_t *m = bly_ledger_msg_new(BLY_LEDGER_MSG_TRANSFER);
    if (!m || bly_ledger_msg_set_to(m, to, 32)) {
        bly_ledger_msg_destroy(&m);
        return -1;
    }
    bly_ledger_msg_set_amount(m, amount);
    return bly_ledger_make_tx(&m, secret, chain_id, nonce, fee, tx, size);
}

int
bly_ledger_make_stake(const uint8_t secret[64], const char *chain_id, int kind, uint64_t nonce,
                      uint64_t fee, uint64_t amount, uint8_t **tx, size_t *size)
{
    bly_assert(secret && chain_id && tx && size);
    bly_assert(kind == BLY_LEDGER_MSG_STAKE || kind == BLY_LEDGER_MSG_UNSTAKE);
    bly_ledger_msg_t *m = bly_ledger_msg_new(kind);
    if (!m)
        return -1;
    bly_ledger_msg_set_amount(m, amount);
    return bly_ledger_make_tx(&m, secret, chain_id, nonce, fee, tx, size);
}
