/*  =========================================================================
    bly_cons_core_int - private to the consensus core: its state and the
    helpers its two files share (bly_cons_core.c: rules, messages, gossip;
    bly_cons_core_wal.c: WAL records, recovery, start, accessors)
    ========================================================================= */

#ifndef BLY_CONS_CORE_INT_H_INCLUDED
#define BLY_CONS_CORE_INT_H_INCLUDED

#include "bly_cons_core.h"

//  WAL record kinds (the WAL format is private to the core).
#define S_REC_STATE 1
//  WAL state record: kind, height, round, step, locked round, valid round,
//  flags, then optional locked value, optional valid value, signed message.
#define S_REC_HEADER (1 + 8 + 4 + 1 + 4 + 4 + 1)
#define S_FLAG_LOCKED 1
#define S_FLAG_VALID 2
#define S_FLAG_VALID_IS_LOCKED 4

//  Largest encoded single vote message.
#define S_VOTE_MSG_SIZE (2 + BLY_CONS_VOTE_SIZE)

//  One round of the current height: the proposal and the votes.
typedef struct {
    int32_t round;                 //  -1 when the slot is free.
    bool has_proposal;             //  A proposal from proposer(h, round) arrived.
    bly_cons_vote_t proposal;      //  Its signed header.
    uint8_t *block;                //  Its block (capacity block_size_max).
    uint32_t block_size;           //  Block size.
    int8_t valid;                  //  valid(v) cache: -1 unknown, 0 no, 1 yes.
    bly_cons_vote_t *prevotes;     //  Per validator.
    bool *has_prevote;             //  Per validator.
    bly_cons_vote_t *precommits;   //  Per validator.
    bool *has_precommit;           //  Per validator.
    bool fired_l34;                //  "for the first time" flags of L34, L36, L47.
    bool fired_l36;
    bool fired_l47;
} s_slot_t;

//  A held value (lockedValue or validValue) with its bytes.
typedef struct {
    int32_t round;                 //  lockedRound / validRound, -1 for nil.
    uint8_t *block;                //  Capacity block_size_max.
    uint32_t block_size;
    uint8_t id[BLY_CONS_ID_SIZE];
} s_value_t;

//  Own signed message of the current height and round, kept for re-sending.
typedef struct {
    uint64_t height;               //  0 when empty.
    int32_t round;
    uint8_t *data;                 //  Encoded message.
    size_t size;
} s_own_t;

//  An evidence item: two conflicting votes by one validator.
typedef struct {
    bly_cons_vote_t a;
    bly_cons_vote_t b;
} s_evidence_t;

//  Key of committed evidence (one per validator, height, round, type).
typedef struct {
    uint64_t height;
    int32_t round;
    uint16_t validator;
    uint8_t type;
} s_ev_key_t;

struct _bly_cons_core_t {
    bly_cons_config_t cfg;           //  Static configuration (copied).
    uint8_t *seckey;                 //  sodium_malloc'd signing key, NULL for observers.
    bly_cons_app_t app;              //  The application.
    uint64_t powers[BLY_CONS_VALIDATORS_MAX];  //  Voting powers of the current height
    uint64_t total_power;            //  (scaled app stakes) and their sum, > 0.
    //  Algorithm 1 state (h_p, round_p, step_p, lockedValue/Round, validValue/Round).
    uint64_t height;
    int32_t round;
    uint8_t step;
    s_value_t locked;
    s_value_t valid;
    uint8_t *guard;                  //  Last signing WAL record kept across a wipe (or NULL),
    size_t guard_size;               //  restored in full when the replica reaches its height.
    uint64_t guard_height;
    bly_cons_vote_t *polka;          //  The 2f+1 prevotes that made validValue valid.
    uint16_t polka_count;            //  (kept in the WAL: they justify re-proposing it).
    uint8_t last_id[BLY_CONS_ID_SIZE];    //  Id of block height - 1 (decision_p[h-1]).
    uint8_t app_hash[BLY_CONS_ID_SIZE];   //  App hash after block height - 1.
    bool restored;                   //  State came from the WAL.
    bool started;
    bool idle_wait;                  //  New height paused for timeout_idle_ms.
    bool app_changed;                //  The last applied block changed the app hash.
    //  Double-sign guard: the highest (height, round, step) ever signed.
    uint64_t signed_height;
    int32_t signed_round;
    uint8_t signed_step;
    s_own_t own[4];                  //  Own PROPOSAL, PREVOTE, PRECOMMIT (by type).
    s_slot_t slots[BLY_CONS_ROUND_SLOTS];
    //  Evidence pool and committed evidence keys (a ring).
    s_evidence_t pool[BLY_CONS_EVIDENCE_POOL_MAX];
    uint32_t pool_count;
    s_ev_key_t *seen;
    uint32_t seen_count;
    uint32_t seen_next;
    //  Proposer priorities checkpoint at sequence position pp_pos (for the
    //  current powers: reset when they change).
    uint64_t pp_pos;
    int64_t pp_prio[BLY_CONS_VALIDATORS_MAX];
    //  Catch-up: first height each peer lacks (0: not behind); our own hint.
    uint64_t peer_lacks[BLY_CONS_VALIDATORS_MAX];
    bool behind;
    //  Effects of the current call and the arena their bytes live in.
    bly_cons_effects_t fx;
    uint8_t *arena;
    size_t arena_size;
    size_t arena_used;
    int64_t now_ms;
    bly_cons_stats_t stats;
    bly_ratelimit_t log_limit;
};

//  Shared helpers (see their definitions for what they do).
int bly_cons_core_apply_commit(bly_cons_core_t *self, const bly_cons_msg_t *commit);
void bly_cons_core_powers_set(bly_cons_core_t *self, const uint64_t *stakes);
uint8_t *bly_cons_core_arena_take(bly_cons_core_t *self, size_t size);
void bly_cons_core_arena_trim(bly_cons_core_t *self, uint8_t *at, size_t used);
void bly_cons_core_enter_height(bly_cons_core_t *self);
bly_cons_effect_t *bly_cons_core_fx_add(bly_cons_core_t *self, uint8_t kind);
void bly_cons_core_fx_reset(bly_cons_core_t *self, int64_t now_ms);
void bly_cons_core_fx_timer(bly_cons_core_t *self, uint8_t kind, int32_t round, int64_t delay_ms);
bool bly_cons_core_may_sign(const bly_cons_core_t *self, uint64_t height, int32_t round, uint8_t step);
void bly_cons_core_run_rules(bly_cons_core_t *self);
s_slot_t *bly_cons_core_slot_get(bly_cons_core_t *self, int32_t round);
void bly_cons_core_start_round(bly_cons_core_t *self, int32_t round);
uint8_t bly_cons_core_step_of(uint8_t type);
int64_t bly_cons_core_timeout(const bly_cons_core_t *self, int64_t base_ms, int32_t round);
int bly_cons_core_vote_store(bly_cons_core_t *self, const bly_cons_vote_t *vote, bool trusted);
void bly_cons_core_wal_state(bly_cons_core_t *self, const uint8_t *msg, size_t msg_size, bool sync);

#endif
