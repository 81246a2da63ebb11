/*  =========================================================================
    bly_ledger_internal - the ledger's state, shared by the core's files and
    the LMDB store (which persists exactly what an open block changed).
    Nothing outside actors/ledger includes this.
    ========================================================================= */

#ifndef BLY_LEDGER_INTERNAL_H_INCLUDED
#define BLY_LEDGER_INTERNAL_H_INCLUDED

#include "bly_ledger.h"
#include "bly_ledger_msg.h"

//  One account slot of the sorted account array.
typedef struct {
    bly_ledger_account_t a;      //  The account.
    uint8_t leaf[32];            //  Cached Merkle leaf hash (valid unless touched).
    uint64_t touched;            //  Block generation that last logged it for undo.
} s_slot_t;

//  Undo log entry kinds.
enum { BLY_LEDGER_UNDO_ACCOUNT = 1, BLY_LEDGER_UNDO_POL, BLY_LEDGER_UNDO_LAYER, BLY_LEDGER_UNDO_SEEN };

typedef struct {
    int kind;                    //  BLY_LEDGER_UNDO_*.
    bool existed;                //  ACCOUNT: the account existed before.
    bly_ledger_account_t old;    //  ACCOUNT: its value before (key always set).
    uint8_t key[32];             //  SEEN: the inserted key.
    size_t index;                //  POL: node index; LAYER: layer.
    bool old_accepted;           //  POL: previous values.
    uint64_t old_version;
    uint64_t old_attest_stake;
    int64_t old_current;         //  LAYER: previous current node index.
} bly_ledger_undo_t;

//  Scalars saved when a block opens.
typedef struct {
    uint64_t reward_pool, burned, total_stake, height, time_ms;
    uint8_t block_hash[32], app_hash[32], seen_chain[32];
    uint32_t layer_count;
    size_t pol_count;
} bly_ledger_saved_t;

struct bly_ledger_t {
    bly_ledger_genesis_t genesis;    //  Copy of the genesis.
    uint8_t params_hash[32];         //  Hash of the economy parameters and chain id.
    s_slot_t *slots;                 //  Accounts, sorted by key.
    size_t slot_count;
    size_t slot_capacity;
    uint8_t *scratch;                //  Merkle level buffer (slot_capacity x 32).
    uint64_t shape;                  //  Bumped whenever a slot is inserted or removed.
    uint8_t *tree;                   //  Account tree, every level, leaves first.
    uint32_t *tree_dirty;            //  Node indexes to rehash (one level at a time).
    size_t tree_cap;                 //  Nodes `tree` and `tree_dirty` hold.
    size_t tree_leaves;              //  Leaves when the tree was built (0: not built).
    uint64_t tree_shape;             //  `shape` when the tree was built.
    bly_ledger_pol_t *pol;           //  PoL nodes in commit order.
    size_t pol_count;
    size_t pol_capacity;
    uint32_t layer_count;            //  Layers of the model (0 before meta).
    int64_t layer_current[BLY_LEDGER_POL_LAYERS_MAX];  //  Pol index per layer, -1.
    uint8_t (*seen)[32];             //  Open-addressed set; all-zero = empty slot.
    size_t seen_count;
    size_t seen_capacity;            //  Power of two.
    uint8_t seen_chain[32];          //  Running hash of insertions.
    uint8_t (*sigcache)[32];         //  Ids of verified transactions (BLY_LEDGER_SIGCACHE_SIZE).
    uint64_t reward_pool;
    uint64_t burned;
    uint64_t total_stake;
    uint64_t height;
    uint64_t time_ms;
    uint8_t block_hash[32];
    uint8_t app_hash[32];
    //  Open block.
    bool open;
    uint64_t generation;             //  Increments per opened block.
    bly_ledger_saved_t saved;
    bly_ledger_undo_t *undo;
    size_t undo_count;
    size_t undo_capacity;
    uint8_t open_hash[32];           //  Header hash of the open block.
    uint64_t open_height;
    uint64_t open_time_ms;
    uint8_t proposer[32];            //  Proposer of the block being applied.
    bool pol_dirty;                  //  PoL root needs recomputing.
    uint8_t pol_root[32];            //  Cached PoL root.
    //  Rows changed by committed blocks a following store has not written yet
    //  (bly_ledger_store_follow / _flush; off otherwise).
    bool journal_on;
    bly_ledger_undo_t *journal;      //  ACCOUNT (key), SEEN (key), POL (index) entries.
    size_t journal_count;
    size_t journal_capacity;
    size_t journal_pol_base;         //  PoL nodes below this index are stored.
    uint64_t journal_height;         //  Height the store holds.
    //  Transactions the caller knows verified (its mempool), or NULL.
    bly_ledger_verified_fn *verified;
    void *verified_ctx;
};

//  ---- bly_ledger.c helpers used by the transaction rules ----

//  Write a reason (printf format) into err (may be NULL) and return -1.
int bly_ledger_fail(char *err, size_t err_size, const char *format, ...) BLY_PRINTF(3, 4);

//  Slot index of a key, or -1.
int64_t bly_ledger_find(const bly_ledger_t *self, const uint8_t key[32]);
//  Reserve room for `accounts` more accounts; -1 past BLY_LEDGER_ACCOUNTS_MAX or OOM.
int bly_ledger_reserve(bly_ledger_t *self, size_t accounts);
//  The account of key for writing (created zero when absent, capacity reserved
//  before), logged for undo. Returns the slot's account (valid until the next insert).
bly_ledger_account_t *bly_ledger_touch(bly_ledger_t *self, const uint8_t key[32]);
bool bly_ledger_seen_has(const bly_ledger_t *self, const uint8_t key[32]);
//  Insert into the replay set (capacity reserved when the block opened).
void bly_ledger_seen_add(bly_ledger_t *self, const uint8_t key[32]);
//  Set key = SHA-256(tag || data).
void bly_ledger_seen_key(char tag, const void *data, size_t size, uint8_t out[32]);
void bly_ledger_log_pol(bly_ledger_t *self, size_t index);
void bly_ledger_log_layer(bly_ledger_t *self, uint32_t layer);
//  Append a PoL node (capacity checked by the caller via bly_ledger_pol_room).
void bly_ledger_pol_append(bly_ledger_t *self, const bly_ledger_pol_t *node);
bool bly_ledger_pol_room(const bly_ledger_t *self);
int64_t bly_ledger_pol_index(const bly_ledger_t *self, const uint8_t id[32]);
//  Store a big-endian u64.
void bly_ledger_be64(uint8_t out[8], uint64_t value);
//  floor(value * bps / 10000) without overflow.
uint64_t bly_ledger_mul_bps(uint64_t value, uint32_t bps);
//  Hash of params, counters and the replay-set chain (an app-hash input).
void bly_ledger_extra_root(const bly_ledger_t *self, uint8_t out[32]);
//  Recompute the app hash of the current (pending or committed) state.
void bly_ledger_compute_app_hash(bly_ledger_t *self, uint8_t out[32]);
//  Reset to the empty genesis-derived fields (used by new and by the store's load).
void bly_ledger_params_hash(const bly_ledger_genesis_t *g, uint8_t out[32]);
//  Id of the PoL genesis node of a chain.
void bly_ledger_pol_genesis_id(const char *chain_id, uint8_t out[32]);

//  Open a block of tx_count transactions (saves scalars, reserves room). 0 or -1.
int bly_ledger_open(bly_ledger_t *self, size_t tx_count);
//  Header hash of a decoded block (SHA-256 of its block_header message). 0 or -1.
int bly_ledger_header_hash(const bly_ledger_msg_t *block, uint8_t out[32]);

//  ---- bly_ledger_tx.c ----

//  Check then apply one decoded transaction (its encoded bytes give its hash). On -1
//  nothing changed. Needs an open block (the proposer and height come from it).
int bly_ledger_tx_apply(bly_ledger_t *self, const bly_ledger_msg_t *tx, const uint8_t hash[32],
                        char *err, size_t err_size);
//  Check only (no change): same rules as _apply.
int bly_ledger_tx_rules(const bly_ledger_t *self, const bly_ledger_msg_t *tx,
                        const uint8_t hash[32], char *err, size_t err_size);

//  ---- bly_ledger_evidence.c ----

//  Punish one consensus evidence item inside the open block (rules at
//  bly_ledger_block_begin_ev). 0 when slashed, -1 (reason in err, nothing changed)
//  when skipped.
int bly_ledger_evidence_apply(bly_ledger_t *self, const bly_ledger_evidence_t *ev, char *err,
                              size_t err_size);
//  Replay-set key of a punished (offender, height, round, step): shared by the slash
//  transaction and consensus evidence, so each offence is punished once.
void bly_ledger_offence_key(const uint8_t offender[32], uint64_t height, uint32_t round,
                            uint8_t step, uint8_t out[32]);

//  ---- The store rebuilds a ledger from its rows ----

//  A ledger with the genesis parameters but no accounts and no PoL node.
bly_ledger_t *bly_ledger_new_empty(const bly_ledger_genesis_t *g);

//  Insert a loaded account (keys must arrive in ascending order). Returns 0 or -1.
int bly_ledger_load_account(bly_ledger_t *self, const bly_ledger_account_t *account);
int bly_ledger_load_pol(bly_ledger_t *self, const bly_ledger_pol_t *node);
int bly_ledger_load_seen(bly_ledger_t *self, const uint8_t key[32]);
//  Finish loading: totals, layer table, hashes. Returns 0 or -1.
int bly_ledger_load_finish(bly_ledger_t *self);

#endif
