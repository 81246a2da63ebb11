/*  =========================================================================
    bly_ledger - the pure, deterministic ledger state machine

    Accounts (Ed25519 public key -> balance, nonce, stake), the PoL DAG,
    supply counters and the sets that stop replays (paid request ids,
    attestations, claimed rewards, slash evidence, delta hashes). No
    sockets, no clock, no files except the genesis reader: storage is
    bly_ledger_store, the zactor shell is bly_ledger_actor.

    Blocks go through begin -> commit | abort:
      - bly_ledger_block_begin() validates a whole encoded block against the
        committed state and applies it into a pending state (all or
        nothing: any bad transaction rejects the block, state unchanged);
      - bly_ledger_block_commit() makes the pending state the committed
        one; bly_ledger_block_abort() drops it.
    A consensus replica validates a proposal with begin + abort and commits
    a decided block with begin + commit (after storage persisted it). A
    simulator runs many bly_ledger_t in one thread: nothing here is global.
    Queries see the pending state while a block is open.

    The app hash (docs/LEDGER.md) is SHA-256 over the accounts Merkle root,
    the PoL Merkle root and the hash of the counters and replay sets; the
    block at height h carries the app hash after height h - 1.
    ========================================================================= */

#ifndef BLY_LEDGER_H_INCLUDED
#define BLY_LEDGER_H_INCLUDED

#include "bly_limits.h"
#include "bly_log.h"
#include "bly_ledger_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLY_LEDGER_KEY_SIZE 32
#define BLY_LEDGER_HASH_SIZE 32
#define BLY_LEDGER_CHAIN_ID_MAX 64
//  "bly1" + 64 hex key + 8 hex checksum.
#define BLY_LEDGER_ADDRESS_LEN 76
#define BLY_LEDGER_BPS 10000u

//  PoL node kinds.
#define BLY_LEDGER_POL_GENESIS 0
#define BLY_LEDGER_POL_META 1
#define BLY_LEDGER_POL_LAYER 2
#define BLY_LEDGER_POL_DELTA 3

//  Vote steps (slash evidence, consensus).
#define BLY_LEDGER_STEP_PREVOTE 1
#define BLY_LEDGER_STEP_PRECOMMIT 2

typedef struct bly_ledger_t bly_ledger_t;

//  One account (plain data).
typedef struct {
    uint8_t key[BLY_LEDGER_KEY_SIZE];  //  Ed25519 public key.
    uint64_t balance;                  //  Spendable base units.
    uint64_t nonce;                    //  Last used nonce (0: none used yet).
    uint64_t stake;                    //  Bonded base units (voting power).
} bly_ledger_account_t;

//  The genesis: chain id, economy parameters and initial accounts (plain data).
typedef struct {
    char chain_id[BLY_LEDGER_CHAIN_ID_MAX + 1];
    uint64_t genesis_time_ms;       //  Time of height 0; block times may not go below it.
    uint64_t reward_pool;           //  Minted into balances only by PoL rewards.
    uint64_t price_per_token;       //  Lowest price a receipt may carry.
    uint64_t min_fee;               //  Lowest fee of any transaction.
    uint64_t delta_reward;          //  Paid to a delta's author when it is accepted.
    uint64_t validator_reward;      //  Paid to each improving attester that claims it.
    uint32_t burn_bps;              //  Part of fees and receipt payments burned.
    uint32_t share_router_bps;      //  Part of the rest of a receipt to the router.
    uint32_t share_validators_bps;  //  Part of the rest to the block proposer.
    uint32_t slash_bps;             //  Part of the offender's stake burned per evidence.
    float delta_norm_cap;           //  Largest delta norm accepted.
    size_t account_count;
    bly_ledger_account_t accounts[BLY_LEDGER_GENESIS_ACCOUNTS_MAX];
} bly_ledger_genesis_t;

//  One PoL DAG node (plain data).
typedef struct {
    uint8_t id[BLY_LEDGER_HASH_SIZE];      //  SHA-256 of the committing transaction.
    uint8_t parent[BLY_LEDGER_HASH_SIZE];  //  Parent id (zero for the PoL genesis).
    uint8_t author[BLY_LEDGER_KEY_SIZE];   //  Submitter.
    uint8_t content[BLY_LEDGER_HASH_SIZE]; //  Meta: tokenizer hash; layer/delta: tensor digest.
    uint8_t shape[BLY_LEDGER_HASH_SIZE];   //  Layer/delta: digest of the tensor names.
    uint8_t kind;                          //  BLY_LEDGER_POL_*.
    bool accepted;                         //  Final (deltas: accepted by +2/3 stake).
    uint32_t layer;                        //  Layer (layer, delta); layer count (meta).
    uint64_t version;                      //  Layer version made current (0 if none).
    uint64_t height;                       //  Block that committed it.
    uint64_t attest_stake;                 //  Deltas: stake that attested an improvement.
} bly_ledger_pol_t;

//  A Merkle proof of one account against an app hash (plain data).
typedef struct {
    bly_ledger_account_t account;
    uint64_t leaf_index;
    uint64_t leaf_count;
    size_t path_count;
    uint8_t path[BLY_LEDGER_PROOF_DEPTH_MAX][BLY_LEDGER_HASH_SIZE];
    bool path_right[BLY_LEDGER_PROOF_DEPTH_MAX];  //  Sibling is on the right.
    uint8_t pol_root[BLY_LEDGER_HASH_SIZE];
    uint8_t extra_root[BLY_LEDGER_HASH_SIZE];
    uint8_t app_hash[BLY_LEDGER_HASH_SIZE];
    uint64_t height;
} bly_ledger_proof_t;

//  Supply counters: total = balances + stakes + reward_pool + burned, constant.
typedef struct {
    uint64_t balances;
    uint64_t stakes;
    uint64_t reward_pool;
    uint64_t burned;
} bly_ledger_supply_t;

//  ---- Genesis (bly_ledger_genesis.c) ----

//  Parse genesis text (format in config/genesis.conf and docs/LEDGER.md) into *g
//  and check it. Returns 0, or -1 with a reason in err.
BLY_MUST_USE int bly_ledger_genesis_parse(const char *text, size_t size, bly_ledger_genesis_t *g,
                                          char *err, size_t err_size);
//  Read and parse a genesis file (at most BLY_LEDGER_GENESIS_FILE_MAX bytes).
BLY_MUST_USE int bly_ledger_genesis_load(const char *path, bly_ledger_genesis_t *g, char *err,
                                         size_t err_size);
//  Check limits, shares, duplicate or invalid keys and that the total supply fits in u64.
BLY_MUST_USE int bly_ledger_genesis_check(const bly_ledger_genesis_t *g, char *err,
                                          size_t err_size);

//  ---- Addresses ----

//  Text form of a key: "bly1" + hex key + 4 checksum bytes in hex; out holds
//  BLY_LEDGER_ADDRESS_LEN + 1 bytes.
void bly_ledger_address_format(const uint8_t key[BLY_LEDGER_KEY_SIZE], char *out);
//  Parse an address (checksum checked; also accepts 64 hex digits without checksum
//  only when allow_raw). Returns 0 or -1.
BLY_MUST_USE int bly_ledger_address_parse(const char *text, uint8_t key[BLY_LEDGER_KEY_SIZE]);
//  True when the key is a canonical Ed25519 point of large order (not all-zero, not
//  small order): the only keys that may own or receive anything.
bool bly_ledger_key_valid(const uint8_t key[BLY_LEDGER_KEY_SIZE]);

//  ---- State ----

//  A ledger at height 0 holding the genesis (checked); NULL on a bad genesis.
bly_ledger_t *bly_ledger_new(const bly_ledger_genesis_t *g);
void bly_ledger_destroy(bly_ledger_t **self_p);

const char *bly_ledger_chain_id(const bly_ledger_t *self);
const bly_ledger_genesis_t *bly_ledger_genesis(const bly_ledger_t *self);
uint64_t bly_ledger_height(const bly_ledger_t *self);
uint64_t bly_ledger_time_ms(const bly_ledger_t *self);
//  Hash of the last block header (zero at height 0).
const uint8_t *bly_ledger_block_hash(const bly_ledger_t *self);
//  App hash of the current state (goes into the next block header).
const uint8_t *bly_ledger_app_hash(const bly_ledger_t *self);
//  Total stake (voting power) of all accounts.
uint64_t bly_ledger_total_stake(const bly_ledger_t *self);
void bly_ledger_supply(const bly_ledger_t *self, bly_ledger_supply_t *out);
//  The validator set: accounts with stake above zero, in key order, at most `max` of
//  them copied into out (key and stake are what consensus needs). Returns how many
//  validators there are (may be above max).
size_t bly_ledger_validators(const bly_ledger_t *self, bly_ledger_account_t *out, size_t max);
//  True once an equivocation of `key` was committed as consensus evidence
//  (bly_ledger_block_begin_ev): it is tombstoned for good.
bool bly_ledger_tombstoned(const bly_ledger_t *self, const uint8_t key[BLY_LEDGER_KEY_SIZE]);
//  The stake that votes: the account's stake, 0 when it has none, does not exist
//  or is tombstoned (consensus voting power follows it, bly_cons_app_t.powers).
uint64_t bly_ledger_voting_stake(const bly_ledger_t *self, const uint8_t key[BLY_LEDGER_KEY_SIZE]);

//  Copy an account into *out; 0 when it exists, -1 (and *out zeroed with the key)
//  when not.
int bly_ledger_account(const bly_ledger_t *self, const uint8_t key[BLY_LEDGER_KEY_SIZE],
                       bly_ledger_account_t *out);
size_t bly_ledger_account_count(const bly_ledger_t *self);
//  Account i in key order (borrowed, valid until the next change).
const bly_ledger_account_t *bly_ledger_account_at(const bly_ledger_t *self, size_t index);

//  ---- Transactions ----

//  Decode and check one encoded transaction against the current state (as if it were
//  the next transaction of the next block). Nothing changes. Returns 0, or -1 with
//  the reason in err. *tx_hash (may be NULL) receives its hash.
BLY_MUST_USE int bly_ledger_tx_check(const bly_ledger_t *self, const uint8_t *tx, size_t size,
                                     uint8_t tx_hash[BLY_LEDGER_HASH_SIZE], char *err,
                                     size_t err_size);

//  Mempool admission: bly_ledger_tx_check, except that the nonce may be up to `window`
//  past the next one (a sender's later transactions while its earlier ones are still
//  pending; balances are checked against the committed state only, the block decides).
//  *sender (may be NULL) receives the sender's key when the transaction passes.
BLY_MUST_USE int bly_ledger_tx_check_pool(const bly_ledger_t *self, const uint8_t *tx,
                                          size_t size, uint32_t window,
                                          uint8_t tx_hash[BLY_LEDGER_HASH_SIZE],
                                          uint8_t sender[BLY_LEDGER_KEY_SIZE], char *err,
                                          size_t err_size);

//  Merkle root of `n` 32-byte leaves in `level` (overwritten): inner nodes are
//  SHA-256(0x01 || left || right), a lone last node moves up unchanged, and no leaf gives
//  32 zero bytes. The tree of accounts, of PoL nodes and of a block's tx ids.
void bly_ledger_merkle_root(uint8_t *level, size_t n, uint8_t out[BLY_LEDGER_HASH_SIZE]);

//  SHA-256 of an encoded transaction (its id).
void bly_ledger_tx_hash(const uint8_t *tx, size_t size, uint8_t out[BLY_LEDGER_HASH_SIZE]);

//  ---- Blocks ----

//  Build the next block from candidate transactions in order, leaving out those that
//  fail (and logging nothing: *skipped counts them), up to BLY_LEDGER_BLOCK_TXS_MAX
//  and BLY_LEDGER_BLOCK_BYTES_MAX. The state is unchanged. *block is a fresh buffer
//  the caller frees. Returns 0 or -1 (out of memory, or a block is open).
BLY_MUST_USE int bly_ledger_block_build(bly_ledger_t *self, const uint8_t *const *txs,
                                        const size_t *sizes, size_t count, uint64_t time_ms,
                                        const uint8_t proposer[BLY_LEDGER_KEY_SIZE],
                                        uint8_t **block, size_t *size, size_t *included);

//  Validate an encoded block (chain id, height, prev hash, app hash, time, tx root,
//  every transaction) and apply it into a pending state. Returns 0 (then call
//  _commit or _abort), or -1 with a reason: state unchanged, no block open.
BLY_MUST_USE int bly_ledger_block_begin(bly_ledger_t *self, const uint8_t *block, size_t size,
                                        char *err, size_t err_size);
//  Validate an encoded block exactly as _begin does, then drop it (_abort): the
//  state is unchanged either way. Cheaper than _begin + _abort: the pending app hash
//  is not computed. Returns 0 when the block would apply, or -1 with a reason.
BLY_MUST_USE int bly_ledger_block_check(bly_ledger_t *self, const uint8_t *block, size_t size,
                                        char *err, size_t err_size);
//  Make the open block committed (new height, block hash, app hash).
void bly_ledger_block_commit(bly_ledger_t *self);
//  Drop the open block: the state is exactly as before _begin.
void bly_ledger_block_abort(bly_ledger_t *self);
//  True while a block is open.
bool bly_ledger_block_is_open(const bly_ledger_t *self);
//  _begin then _commit (memory only). Returns 0 or -1.
BLY_MUST_USE int bly_ledger_block_apply(bly_ledger_t *self, const uint8_t *block, size_t size,
                                        char *err, size_t err_size);
//  Hash of the open block (after _begin) or of a block header given by fields.
const uint8_t *bly_ledger_open_block_hash(const bly_ledger_t *self);

//  Consensus evidence: two conflicting signed consensus votes (the encoding of
//  actors/consensus/bly_cons_msg.h, BLY_CONS_VOTE_SIZE bytes each, borrowed) by the
//  validator whose key is `offender`.
typedef struct {
    uint8_t offender[BLY_LEDGER_KEY_SIZE];
    const uint8_t *vote_a;
    const uint8_t *vote_b;
} bly_ledger_evidence_t;

//  bly_ledger_block_begin, then the evidence items in order before the app hash: each
//  one that proves an equivocation (both votes decode, same type prevote or precommit,
//  same height <= this block, round and validator, different block ids or nil, both
//  signatures verify against `offender` over the consensus sign bytes of this chain) by
//  an account with stake that is not tombstoned, and whose (offender, height, round,
//  step) was never punished before (by evidence or by a slash transaction), burns
//  slash_bps of the offender's stake and tombstones it (bly_ledger_tombstoned: later
//  items against it are skipped, in this block too). Any other item is skipped (a committed block is never refused for it: every
//  replica skips the same items). *slashed (may be NULL) counts the punished items.
BLY_MUST_USE int bly_ledger_block_begin_ev(bly_ledger_t *self, const uint8_t *block,
                                           size_t size, const bly_ledger_evidence_t *evidence,
                                           size_t evidence_count, size_t *slashed, char *err,
                                           size_t err_size);

//  Transactions known verified: `fn(ctx, id)` true means the caller checked the
//  signature of the transaction with this id (SHA-256 of its encoded bytes, signature
//  included) already, e.g. when its mempool admitted it; the ledger then skips the
//  Ed25519 verification. NULL to unset.
typedef bool(bly_ledger_verified_fn)(void *ctx, const uint8_t id[BLY_LEDGER_HASH_SIZE]);
void bly_ledger_set_verified(bly_ledger_t *self, bly_ledger_verified_fn *fn, void *ctx);

//  ---- PoL DAG ----

size_t bly_ledger_pol_count(const bly_ledger_t *self);
//  Node i in topological (commit) order; node 0 is the PoL genesis.
const bly_ledger_pol_t *bly_ledger_pol_at(const bly_ledger_t *self, size_t index);
//  The node with this id, or NULL.
const bly_ledger_pol_t *bly_ledger_pol_find(const bly_ledger_t *self,
                                            const uint8_t id[BLY_LEDGER_HASH_SIZE]);
//  Layers of the model (0 before a meta block).
uint32_t bly_ledger_layer_count(const bly_ledger_t *self);
//  The current node of a layer and its version; -1 when the layer has none yet.
int bly_ledger_layer_current(const bly_ledger_t *self, uint32_t layer,
                             uint8_t id[BLY_LEDGER_HASH_SIZE], uint64_t *version);
//  Check the DAG: every parent appears earlier (so no cycle), kinds follow
//  genesis -> meta -> layer -> delta, finals have final parents. Returns 0 or -1.
BLY_MUST_USE int bly_ledger_pol_check(const bly_ledger_t *self, char *err, size_t err_size);

//  ---- Proofs ----

//  Merkle proof of an existing account against the current app hash. Returns 0 or -1.
BLY_MUST_USE int bly_ledger_proof(const bly_ledger_t *self, const uint8_t key[BLY_LEDGER_KEY_SIZE],
                                  bly_ledger_proof_t *out);
//  True when the proof's account and path give app_hash.
bool bly_ledger_proof_verify(const bly_ledger_proof_t *proof,
                             const uint8_t app_hash[BLY_LEDGER_HASH_SIZE]);

//  ---- Building signed transactions (clients, tests, tools) ----

//  Each encodes a signed transaction from the 64-byte libsodium secret key into a
//  fresh buffer the caller frees. Returns 0 or -1.
BLY_MUST_USE int bly_ledger_make_transfer(const uint8_t secret[64], const char *chain_id,
                                          uint64_t nonce, uint64_t fee,
                                          const uint8_t to[BLY_LEDGER_KEY_SIZE], uint64_t amount,
                                          uint8_t **tx, size_t *size);
//  Set chain id, sender (from the secret key), nonce and fee of any transaction
//  message, sign it and encode it; takes ownership of *msg_p (destroyed, nulled).
BLY_MUST_USE int bly_ledger_make_tx(bly_ledger_msg_t **msg_p, const uint8_t secret[64],
                                    const char *chain_id, uint64_t nonce, uint64_t fee,
                                    uint8_t **tx, size_t *size);
//  kind: BLY_LEDGER_MSG_STAKE or BLY_LEDGER_MSG_UNSTAKE.
BLY_MUST_USE int bly_ledger_make_stake(const uint8_t secret[64], const char *chain_id, int kind,
                                       uint64_t nonce, uint64_t fee, uint64_t amount,
                                       uint8_t **tx, size_t *size);

#endif
