/*  =========================================================================
    bly_cons_core - a pure Tendermint replica (Algorithm 1 of "The latest
    gossip on BFT consensus", Buchman, Kwon, Milosevic 2018)

    The core is a state machine: each call takes one event (start, an
    encoded message, a timer) and the caller's clock reading, changes the
    replica state and returns a list of effects for the shell to carry out
    IN ORDER: persist a WAL record (fsync when `sync`), broadcast or send a
    message, set a timer, store a committed block. A PERSIST effect always
    precedes the broadcast of the vote it records, so a shell that carries
    out effects in order never lets a vote leave before it is durable. The
    core has no sockets, clock, threads or randomness. docs/CONSENSUS.md maps
    the paper's lines to the functions in bly_cons_core.c.

    The application (build, check and apply block payloads; load committed
    blocks for peers that catch up; the validators' stakes) is a small
    vtable, bly_cons_app_t. Membership is fixed (the config's validators);
    their voting powers follow the application's stakes: the powers of
    height h+1 are the stakes after block h, scaled (bly_cons_powers_scale),
    and every rule uses the current height's powers.
    ========================================================================= */

#ifndef BLY_CONS_CORE_H_INCLUDED
#define BLY_CONS_CORE_H_INCLUDED

#include "bly_cons_msg.h"

typedef struct _bly_cons_core_t bly_cons_core_t;

//  The application the core commits into. Every callback is deterministic.
typedef struct {
    void *self;
    //  Fill `payload` (capacity `max`) with transactions for a block at
    //  `height`; returns the size used.
    uint32_t (*build)(void *self, uint64_t height, uint8_t *payload, uint32_t max);
    //  0 when `payload` is valid on top of the current state, else -1.
    int (*check)(void *self, uint64_t height, const uint8_t *payload, uint32_t size);
    //  Apply a committed block's payload and punish `offenders` (validator
    //  indexes proven to equivocate; `evidence` holds the proofs, in the same
    //  order: offender_count x 2 encoded votes of BLY_CONS_VOTE_SIZE bytes).
    //  Writes the new app hash. 0 or -1 (-1 is fatal: the block was checked
    //  before).
    int (*apply)(void *self, uint64_t height, const uint8_t *payload, uint32_t size,
                 const uint16_t *offenders, uint32_t offender_count, const uint8_t *evidence,
                 uint8_t app_hash[BLY_CONS_ID_SIZE]);
    //  The current app hash (after the last applied block, or genesis).
    void (*hash)(void *self, uint8_t app_hash[BLY_CONS_ID_SIZE]);
    //  Copy the encoded COMMIT message of committed `height` into `buf`
    //  (capacity `max`); returns its size, 0 when unknown.
    uint32_t (*load_commit)(void *self, uint64_t height, uint8_t *buf, uint32_t max);
    //  Optional (NULL: never idle): how many transactions wait for a block.
    uint32_t (*pending)(void *self);
    //  The stake of each genesis validator (by index) in the current state,
    //  0 for one that is tombstoned (its equivocation was committed) or
    //  fully unstaked: the core calls it after every applied block and
    //  scales the stakes to the next height's voting powers
    //  (bly_cons_powers_scale; when every stake is 0 the genesis powers
    //  apply). Fills config.validator_count entries and returns that count.
    //  May be NULL: the genesis powers then stay.
    uint32_t (*powers)(void *self, uint64_t out[BLY_CONS_VALIDATORS_MAX]);
} bly_cons_app_t;

//  Static configuration. Plain data.
typedef struct {
    char chain_id[BLY_CONS_CHAIN_ID_MAX + 1];
    uint32_t validator_count;                                       //  1..VALIDATORS_MAX.
    uint8_t pubkeys[BLY_CONS_VALIDATORS_MAX][BLY_CONS_PUBKEY_SIZE];  //  Validator keys.
    uint64_t powers[BLY_CONS_VALIDATORS_MAX];  //  Genesis stakes, >= 1 (scaled to power).
    int32_t self_index;           //  This replica's validator index, -1 for an observer.
    uint32_t block_size_max;      //  <= BLY_CONS_BLOCK_SIZE_MAX.
    int64_t timeout_propose_ms;   //  timeoutPropose(r) = base + r * delta.
    int64_t timeout_prevote_ms;
    int64_t timeout_precommit_ms;
    int64_t timeout_delta_ms;
    int64_t gossip_ms;            //  Re-send own messages and sync requests this often.
    int64_t timeout_commit_ms;    //  Pause after a decision before round 0 of the next height.
    //  The pause instead when the chain is idle: nothing pending, no evidence, and the
    //  decided block left the app hash as it was (so the next header would repeat it).
    //  bly_cons_core_on_pending or a proposal of the next height ends it early. Values
    //  <= timeout_commit_ms turn it off (an empty block every timeoutCommit).
    int64_t timeout_idle_ms;
    bly_cons_sigcache_t *sigcache;  //  Borrowed, may be NULL; shared only within one thread.
    bool quorum_broken;           //  TESTS ONLY: quorum 2f instead of 2f+1 (must be caught).
} bly_cons_config_t;

typedef enum {
    BLY_CONS_FX_PERSIST = 1,    //  Append `data` to the WAL; fsync first when `sync`.
    BLY_CONS_FX_BROADCAST = 2,  //  Send `data` to every other replica.
    BLY_CONS_FX_SEND = 3,       //  Send `data` to replica `peer`.
    BLY_CONS_FX_TIMER = 4,      //  Call on_timer(timer) at now + delay_ms.
    BLY_CONS_FX_COMMIT = 5,     //  Store the encoded COMMIT `data` durably (block store).
} bly_cons_fx_kind_t;

typedef enum {
    BLY_CONS_TIMER_PROPOSE = 1,
    BLY_CONS_TIMER_PREVOTE = 2,
    BLY_CONS_TIMER_PRECOMMIT = 3,
    BLY_CONS_TIMER_GOSSIP = 4,
    BLY_CONS_TIMER_COMMIT = 5,
} bly_cons_timer_kind_t;

typedef struct {
    uint8_t kind;       //  bly_cons_timer_kind_t.
    uint64_t height;    //  Height and round it was set for.
    int32_t round;
} bly_cons_timer_t;

typedef struct {
    uint8_t kind;             //  bly_cons_fx_kind_t.
    bool sync;                //  PERSIST: fsync before anything after it.
    int32_t peer;             //  SEND: destination validator index.
    const uint8_t *data;      //  Bytes owned by the core, valid until its next call.
    size_t size;              //  Their size.
    bly_cons_timer_t timer;   //  TIMER.
    int64_t delay_ms;         //  TIMER.
} bly_cons_effect_t;

typedef struct {
    uint32_t count;
    bly_cons_effect_t items[BLY_CONS_EFFECTS_MAX];
} bly_cons_effects_t;

//  Step of the current round (the paper's step_p).
typedef enum {
    BLY_CONS_STEP_NEW_HEIGHT = 0,    //  Decided; waiting timeoutCommit to start round 0.
    BLY_CONS_STEP_PROPOSE = 1,
    BLY_CONS_STEP_PREVOTE = 2,
    BLY_CONS_STEP_PRECOMMIT = 3,
} bly_cons_step_t;

//  Counters for tests and metrics.
typedef struct {
    uint64_t rejected;          //  Messages dropped: malformed, bad signature, not ours.
    uint64_t refused_signs;     //  Signatures refused by the double-sign guard.
    uint64_t equivocations;     //  Conflicting vote pairs detected.
    uint64_t commits;           //  Blocks committed (by consensus or sync).
    uint64_t synced;            //  Of which via sync.
} bly_cons_stats_t;

//  Create a replica at height 1 of genesis. `seckey` (64 bytes, libsodium
//  form) is copied; NULL for an observer. Returns NULL on a bad config.
bly_cons_core_t *bly_cons_core_new(const bly_cons_config_t *config, const uint8_t *seckey,
                                   bly_cons_app_t app);

void bly_cons_core_destroy(bly_cons_core_t **self_p);

//  Before start: re-apply one stored COMMIT record (from the block store,
//  oldest first) without re-verifying. 0, or -1 when it does not follow.
BLY_MUST_USE int bly_cons_core_replay_commit(bly_cons_core_t *self, const uint8_t *data,
                                             size_t size);

//  Before start, after the commits: feed one WAL record (oldest first).
//  Records of old heights are skipped. 0, or -1 for a corrupt record.
BLY_MUST_USE int bly_cons_core_replay_wal(bly_cons_core_t *self, const uint8_t *data,
                                          size_t size);

//  Before start, for a replica whose block store and WAL were wiped: restore
//  only the double-sign guard from the last synced WAL record that carried
//  a signature (a shell keeps a copy of it outside the wiped storage, like
//  CometBFT's priv_validator_state). The replica then catches up by sync
//  and never signs at or before that (height, round, step) again.
BLY_MUST_USE int bly_cons_core_replay_guard(bly_cons_core_t *self, const uint8_t *data,
                                            size_t size);

//  Start (or resume after replay) at the current height.
const bly_cons_effects_t *bly_cons_core_start(bly_cons_core_t *self, int64_t now_ms);

//  Handle an encoded message from replica `from` (-1 when unknown).
const bly_cons_effects_t *bly_cons_core_on_message(bly_cons_core_t *self, const uint8_t *data,
                                                   size_t size, int32_t from, int64_t now_ms);

//  The application has new work (the shell calls this when a transaction entered
//  the mempool): an idle pause (timeout_idle_ms) ends and round 0 starts now.
const bly_cons_effects_t *bly_cons_core_on_pending(bly_cons_core_t *self, int64_t now_ms);

//  Handle a timer set by a TIMER effect.
const bly_cons_effects_t *bly_cons_core_on_timer(bly_cons_core_t *self,
                                                 const bly_cons_timer_t *timer, int64_t now_ms);

//  Accessors.
uint64_t bly_cons_core_height(const bly_cons_core_t *self);
int32_t bly_cons_core_round(const bly_cons_core_t *self);
bly_cons_step_t bly_cons_core_step(const bly_cons_core_t *self);
//  Id of the last committed block (zeros before height 1 commits).
const uint8_t *bly_cons_core_last_id(const bly_cons_core_t *self);
const bly_cons_stats_t *bly_cons_core_stats(const bly_cons_core_t *self);
//  Pending (not yet committed) evidence items.
uint32_t bly_cons_core_evidence_pending(const bly_cons_core_t *self);

//  Voting power of the current height: of one validator, and the total
//  (always > 0).
uint64_t bly_cons_core_power(const bly_cons_core_t *self, uint32_t validator);
uint64_t bly_cons_core_total_power(const bly_cons_core_t *self);

//  Scale `count` stakes (any uint64) to voting powers: power = stake / 2^s
//  rounded up, with the smallest s that keeps every power <= BLY_CONS_POWER_MAX
//  (s = 0 when they already fit). A non-zero stake keeps a power >= 1, a zero
//  stake has power 0. Returns the total power (0 when every stake is 0).
uint64_t bly_cons_powers_scale(const uint64_t *stakes, uint32_t count, uint64_t *powers);

//  Proposer of (height, round) for the voting powers of that height
//  (`count` of them, each <= BLY_CONS_POWER_MAX, total > 0): Tendermint's
//  weighted round robin at sequence position (height + round) mod total,
//  started from zero priorities. A validator of power 0 never proposes.
//  Deterministic, pure.
uint32_t bly_cons_proposer(const uint64_t *powers, uint32_t count, uint64_t height, int32_t round);

//  Quorum predicates over voting power (strictly more than 2/3 of total;
//  more than 1/3 for the skip rule). `broken` is the test-only 2f rule.
bool bly_cons_is_quorum(uint64_t power, uint64_t total, bool broken);
bool bly_cons_is_skip(uint64_t power, uint64_t total);

#endif
