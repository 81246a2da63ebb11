/*  =========================================================================
    bly_sim - deterministic simulator for the consensus core

    One seed is one world: validators and powers, byzantine set, fault
    schedule, network behaviour and client load all come from a xoshiro
    generator seeded with it. Test code: it allocates freely.
    ========================================================================= */

#include "bly_sim.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/bly_cons_core.h"
#include "consensus/bly_kvapp.h"

#define S_NODES_MAX 7
#define S_ACCOUNTS 16
#define S_BENCH_ACCOUNTS 1024
#define S_BENCH_TRACK (1u << 21)
#define S_BALANCE 1000000ull
//  Stake per unit of genesis power (1..5 units). Small: the stakes are the
//  voting powers unscaled, and the test-only 2f quorum (f = (total - 1) / 3)
//  is only weaker than 2f+1 at such a granularity (2 of 4 equal validators).
#define S_STAKE 2ull
//  Unstakes are 1..2 of this; a committed offence burns half the stake.
#define S_UNSTAKE_UNIT 1ull
#define S_SLASH_PERCENT 50
#define S_HEIGHTS_MAX 4096
#define S_SIGNED_CAP (1u << 15)
#define S_LIVENESS_MS 60000
#define S_EVENTS_MAX 3000000

typedef enum {
    S_EV_DELIVER = 1,
    S_EV_TIMER,
    S_EV_CRASH,
    S_EV_RESTART,
    S_EV_PAUSE,
    S_EV_PARTITION,
    S_EV_HEAL_LINKS,
    S_EV_CLIENT,
    S_EV_HEAL_ALL,
} s_ev_kind_t;

typedef struct {
    int64_t t;               //  Virtual time (ms).
    uint64_t seq;            //  Tie-break: insertion order.
    uint8_t kind;
    int32_t node;            //  Destination / subject.
    int32_t from;            //  DELIVER: sender.
    uint32_t epoch;          //  TIMER: node incarnation that set it.
    bly_cons_timer_t timer;  //  TIMER.
    uint8_t *data;           //  DELIVER: owned bytes.
    size_t size;
} s_event_t;

typedef struct {
    uint8_t *data;
    size_t size;
    bool synced;
} s_record_t;

typedef struct {
    bly_cons_core_t *core;       //  NULL while crashed.
    bly_kvapp_t *app;
    uint8_t pk[32];
    uint8_t sk[64];
    bool byzantine;
    bool sly;                    //  Byzantine that never equivocates (never tombstoned):
                                 //  it votes for its alternative proposal instead.
    uint32_t epoch;              //  Incarnation: bumps at every crash.
    int64_t paused_until;        //  Deliveries and timers wait until then.
    int64_t clock_offset;        //  Local clock = offset + t * rate / 1000.
    int64_t clock_rate;          //  Per mille.
    int group;                   //  Partition side.
    //  Storage: the block store (durable) and the WAL (sync loses nothing).
    s_record_t *commits;
    uint32_t commit_count;
    s_record_t *wal;
    uint32_t wal_count;
    uint32_t wal_cap;
    //  The last synced WAL record (holds the last signature): survives a wipe.
    uint8_t *guard;
    size_t guard_size;
    //  Byzantine: the alternative proposal id per (height, round) it made.
    uint64_t alt_height;
    int32_t alt_round;
    uint8_t alt_id[32];
} s_node_t;

typedef struct {
    uint64_t key;            //  0 = empty; else a mix of validator/height/round/type.
    uint16_t validator;
    uint64_t height;
    int32_t round;
    uint8_t type;
    uint8_t id[33];          //  has_id + id.
} s_signed_t;

typedef struct {
    bly_sim_options_t opt;
    bly_sim_result_t *res;
    uint64_t rng[4];
    int64_t now;
    uint64_t seq;
    //  Event heap.
    s_event_t *heap;
    size_t heap_count;
    size_t heap_cap;
    //  World.
    uint32_t n;
    s_node_t nodes[S_NODES_MAX];
    bly_cons_config_t cfg;
    uint64_t supply;
    //  Faults now in force.
    bool faults;             //  Phase 1 (false after the heal).
    uint32_t drop_pm;        //  Drop probability, per mille.
    uint32_t dup_pm;
    int64_t delay_min_ms;
    int64_t delay_jitter_ms;
    bool partitioned;
    int64_t heal_at;
    uint64_t heal_height;    //  Target height for liveness.
    //  Stakes: genesis per validator, byzantine and honest sums, unstakes
    //  submitted so far (bounded so byzantine power stays below a third).
    uint64_t stakes[S_NODES_MAX];
    uint64_t byz_stake;
    uint64_t honest_stake;
    uint64_t unstake_submitted;
    bool unstaking;          //  This seed's clients also unstake honest validators.
    //  Invariant books.
    uint8_t decided[S_HEIGHTS_MAX][32];
    bool has_decided[S_HEIGHTS_MAX];
    uint8_t app_hashes[S_HEIGHTS_MAX][32];
    bool has_app_hash[S_HEIGHTS_MAX];
    s_signed_t *signed_votes;
    bool failed;
    bool bench_over;
    //  Benchmark books: submit time per (sender, nonce) and latencies.
    uint32_t accounts;
    uint64_t *track_keys;
    int64_t *track_times;
    int64_t *latencies;
    size_t latency_count;
    size_t latency_cap;
} s_sim_t;

//  --------------------------------------------------------------------------
//  Random numbers: xoshiro256** seeded by splitmix64.

static uint64_t
s_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t
s_rand(s_sim_t *sim)
{
    uint64_t *s = sim->rng;
    uint64_t result = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

//  Uniform in [0, bound).
static uint64_t
s_below(s_sim_t *sim, uint64_t bound)
{
    return bound == 0 ? 0 : s_rand(sim) % bound;
}

static bool
s_chance_pm(s_sim_t *sim, uint32_t per_mille)
{
    return s_below(sim, 1000) < per_mille;
}

//  --------------------------------------------------------------------------
//  Failure reporting

static void BLY_PRINTF(2, 3)
s_fail(s_sim_t *sim, const char *format, ...)
{
    if (sim->failed)
        return;
    sim->failed = true;
    va_list args;
    va_start(args, format);
    int used = snprintf(sim->res->reason, sizeof(sim->res->reason), "t=%lld ms: ",
                        (long long) sim->now);
    vsnprintf(sim->res->reason + used, sizeof(sim->res->reason) - (size_t) used, format, args);
    va_end(args);
}

#define S_TRACE(sim, ...)                                                                          \
    do {                                                                                           \
        if ((sim)->opt.verbose) {                                                                  \
            printf("%8lld ", (long long) (sim)->now);                                             \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

//  --------------------------------------------------------------------------
//  Event heap

static bool
s_ev_before(const s_event_t *a, const s_event_t *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void
s_push(s_sim_t *sim, s_event_t ev)
{
    if (sim->heap_count == sim->heap_cap) {
        sim->heap_cap = sim->heap_cap ? sim->heap_cap * 2 : 1024;
        sim->heap = realloc(sim->heap, sim->heap_cap * sizeof(s_event_t));
        bly_assert(sim->heap);
    }
    ev.seq = sim->seq++;
    size_t i = sim->heap_count++;
    while (i > 0 && s_ev_before(&ev, &sim->heap[(i - 1) / 2])) {
        sim->heap[i] = sim->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    sim->heap[i] = ev;
}

static s_event_t
s_pop(s_sim_t *sim)
{
    bly_assert(sim->heap_count > 0);
    s_event_t top = sim->heap[0];
    s_event_t last = sim->heap[--sim->heap_count];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= sim->heap_count)
            break;
        if (c + 1 < sim->heap_count && s_ev_before(&sim->heap[c + 1], &sim->heap[c]))
            c++;
        if (!s_ev_before(&sim->heap[c], &last))
            break;
        sim->heap[i] = sim->heap[c];
        i = c;
    }
    sim->heap[i] = last;
    return top;
}

static void
s_push_simple(s_sim_t *sim, int64_t t, uint8_t kind, int32_t node)
{
    s_event_t ev = {.t = t, .kind = kind, .node = node};
    s_push(sim, ev);
}

//  --------------------------------------------------------------------------
//  Storage

static void
s_records_free(s_record_t *records, uint32_t *count)
{
    for (uint32_t i = 0; i < *count; i++)
        free(records[i].data);
    *count = 0;
}

static void
s_wal_append(s_node_t *node, const uint8_t *data, size_t size, bool sync)
{
    if (node->wal_count == node->wal_cap) {
        node->wal_cap = node->wal_cap ? node->wal_cap * 2 : 16;
        node->wal = realloc(node->wal, node->wal_cap * sizeof(s_record_t));
        bly_assert(node->wal);
    }
    s_record_t *rec = &node->wal[node->wal_count++];
    rec->data = malloc(size);
    bly_assert(rec->data);
    memcpy(rec->data, data, size);
    rec->size = size;
    rec->synced = false;
    if (sync) {
        for (uint32_t i = 0; i < node->wal_count; i++)
            node->wal[i].synced = true;
        free(node->guard);
        node->guard = malloc(size);
        bly_assert(node->guard);
        memcpy(node->guard, data, size);
        node->guard_size = size;
    }
}

static uint32_t
s_load_commit(void *self, uint64_t height, uint8_t *buf, uint32_t max)
{
    s_node_t *node = self;
    if (height == 0 || height > node->commit_count)
        return 0;
    const s_record_t *rec = &node->commits[height - 1];
    if (rec->size > max)
        return 0;
    memcpy(buf, rec->data, rec->size);
    return (uint32_t) rec->size;
}

//  --------------------------------------------------------------------------
static int64_t
s_local_now(const s_node_t *node, int64_t t)
{
    return node->clock_offset + t * node->clock_rate / 1000;
}

static void s_exec(s_sim_t *sim, int32_t i, const bly_cons_effects_t *fx);
static void s_bench_commit(s_sim_t *sim, const uint8_t *data, size_t size);

//  Boot (or reboot) a node from its storage: replay the block store, then
//  the WAL, then start.
static void
s_boot(s_sim_t *sim, int32_t i)
{
    s_node_t *node = &sim->nodes[i];
    bly_assert(!node->core);
    bool bench = sim->opt.bench_rate > 0;
    node->app = bly_kvapp_new(sim->accounts, S_BALANCE, sim->n, S_STAKE, S_SLASH_PERCENT,
                              bench ? BLY_MEMPOOL_TX_MAX : 256, bench ? 4096 : 64);
    bly_assert(node->app);
    int rc = bly_kvapp_set_stakes(node->app, sim->stakes);
    bly_assert(rc == 0);
    bly_cons_app_t app = bly_kvapp_app(node->app, s_load_commit, node);
    bly_cons_config_t cfg = sim->cfg;
    cfg.self_index = i;
    node->core = bly_cons_core_new(&cfg, node->sk, app);
    bly_assert(node->core);
    for (uint32_t h = 0; h < node->commit_count; h++) {
        rc = bly_cons_core_replay_commit(node->core, node->commits[h].data,
                                             node->commits[h].size);
        if (rc != 0)
            s_fail(sim, "node %d: stored commit %u does not replay", i, h + 1);
    }
    //  The signing guard is always loaded first (a real shell keeps it in
    //  its own file); the WAL then restores the rest of the current height.
    if (node->guard) {
        rc = bly_cons_core_replay_guard(node->core, node->guard, node->guard_size);
        if (rc != 0)
            s_fail(sim, "node %d: its signing guard record does not replay", i);
    }
    for (uint32_t r = 0; r < node->wal_count; r++) {
        rc = bly_cons_core_replay_wal(node->core, node->wal[r].data, node->wal[r].size);
        if (rc != 0)
            s_fail(sim, "node %d: WAL record %u does not replay", i, r);
    }
    S_TRACE(sim, "node %d boots at height %llu (%u commits, %u WAL records)", i,
            (unsigned long long) bly_cons_core_height(node->core), node->commit_count,
            node->wal_count);
    s_exec(sim, i, bly_cons_core_start(node->core, s_local_now(node, sim->now)));
}

//  Crash: the process dies, unsynced WAL writes are lost.
static void
s_crash(s_sim_t *sim, int32_t i)
{
    s_node_t *node = &sim->nodes[i];
    if (!node->core)
        return;
    //  A replica with a third of the power or more may hold blocks no one else
    //  stored (tombstones and unstakes concentrate power): wiping it would
    //  lose decisions, which no protocol survives. Only the others are wiped.
    bool wipeable = 3 * bly_cons_core_power(node->core, (uint32_t) i) <
                    bly_cons_core_total_power(node->core);
    bly_cons_core_destroy(&node->core);
    bly_kvapp_destroy(&node->app);
    node->epoch++;
    uint32_t kept = 0;
    for (uint32_t r = 0; r < node->wal_count; r++) {
        if (node->wal[r].synced)
            node->wal[kept++] = node->wal[r];
        else
            free(node->wal[r].data);
    }
    S_TRACE(sim, "node %d crashes (%u of %u WAL records survive)", i, kept, node->wal_count);
    node->wal_count = kept;
    sim->res->crashes++;
    //  Sometimes the disk is wiped too (all but the signing guard): the node
    //  must resync every block with verified commits.
    if (sim->faults && s_chance_pm(sim, 250) && wipeable) {
        S_TRACE(sim, "node %d loses its block store and WAL", i);
        s_records_free(node->commits, &node->commit_count);
        s_records_free(node->wal, &node->wal_count);
        sim->res->wipes++;
    }
}

//  --------------------------------------------------------------------------
//  Network

static void
s_net_send(s_sim_t *sim, int32_t from, int32_t to, const uint8_t *data, size_t size)
{
    if (sim->partitioned && sim->nodes[from].group != sim->nodes[to].group)
        return;
    if (s_chance_pm(sim, sim->drop_pm))
        return;
    int copies = s_chance_pm(sim, sim->dup_pm) ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        s_event_t ev = {.kind = S_EV_DELIVER, .node = to, .from = from, .size = size};
        ev.t = sim->now + sim->delay_min_ms + (int64_t) s_below(sim, (uint64_t) sim->delay_jitter_ms + 1);
        ev.data = malloc(size);
        bly_assert(ev.data);
        memcpy(ev.data, data, size);
        s_push(sim, ev);
    }
}

//  --------------------------------------------------------------------------
//  Invariants

static uint64_t
s_signed_key(const bly_cons_vote_t *v)
{
    uint64_t x = v->height * 0x9e3779b97f4a7c15ull ^ ((uint64_t) v->round << 20) ^
                 ((uint64_t) v->validator << 8) ^ v->type;
    return x == 0 ? 1 : x;
}

//  No honest replica signs two different messages for one (h, r, type).
static void
s_check_signed(s_sim_t *sim, int32_t i, const uint8_t *data, size_t size)
{
    bly_cons_msg_t msg;
    if (bly_cons_msg_decode(&msg, data, size) != 0 || msg.type > BLY_CONS_PRECOMMIT)
        return;
    const bly_cons_vote_t *v = &msg.vote;
    if (v->validator != (uint16_t) i)
        return;    //  A relayed vote of someone else.
    uint8_t id[33] = {v->has_id};
    memcpy(id + 1, v->id, 32);
    uint64_t key = s_signed_key(v);
    for (uint32_t probe = 0; probe < S_SIGNED_CAP; probe++) {
        s_signed_t *e = &sim->signed_votes[(key + probe) & (S_SIGNED_CAP - 1)];
        if (e->key == 0) {
            *e = (s_signed_t){.key = key, .validator = v->validator, .height = v->height,
                              .round = v->round, .type = v->type};
            memcpy(e->id, id, 33);
            return;
        }
        if (e->key == key && e->validator == v->validator && e->height == v->height &&
            e->round == v->round && e->type == v->type) {
            if (memcmp(e->id, id, 33) != 0)
                s_fail(sim, "honest node %d double-signed type %u at height %llu round %d", i,
                       v->type, (unsigned long long) v->height, v->round);
            return;
        }
    }
    s_fail(sim, "simulator signed-vote table full");
}

//  Agreement: one block per height across honest replicas.
static void
s_check_commit(s_sim_t *sim, int32_t i, const uint8_t *data, size_t size)
{
    bly_cons_msg_t msg;
    if (bly_cons_msg_decode(&msg, data, size) != 0) {
        s_fail(sim, "node %d stored an undecodable commit", i);
        return;
    }
    uint64_t h = msg.vote.height;
    if (h >= S_HEIGHTS_MAX) {
        s_fail(sim, "height %llu past the simulator's books", (unsigned long long) h);
        return;
    }
    if (!sim->has_decided[h]) {
        memcpy(sim->decided[h], msg.vote.id, 32);
        sim->has_decided[h] = true;
    } else if (memcmp(sim->decided[h], msg.vote.id, 32) != 0) {
        s_fail(sim, "agreement violated at height %llu: node %d committed a different block",
               (unsigned long long) h, i);
    }
    S_TRACE(sim, "node %d commits height %llu round %d", i, (unsigned long long) h,
            msg.vote.round);
}

//  The core's voting powers are the application's stakes after the last
//  block, scaled (also after a restart, a replay or a sync), and the
//  byzantine replicas hold less than a third of them.
static void
s_check_powers(s_sim_t *sim, int32_t i)
{
    s_node_t *node = &sim->nodes[i];
    uint64_t stakes[BLY_CONS_VALIDATORS_MAX] = {0}, powers[BLY_CONS_VALIDATORS_MAX] = {0};
    uint32_t n = bly_kvapp_powers(node->app, stakes);
    uint64_t total = bly_cons_powers_scale(stakes, n, powers);
    uint64_t byz = 0;
    for (uint32_t v = 0; v < n; v++) {
        if (total > 0 && bly_cons_core_power(node->core, v) != powers[v])
            s_fail(sim, "node %d: power of validator %u is %llu, its stake says %llu", i, v,
                   (unsigned long long) bly_cons_core_power(node->core, v),
                   (unsigned long long) powers[v]);
        if (sim->nodes[v].byzantine)
            byz += bly_cons_core_power(node->core, v);
    }
    if (3 * byz >= bly_cons_core_total_power(node->core))
        s_fail(sim, "node %d: byzantine power %llu is a third of %llu or more", i,
               (unsigned long long) byz,
               (unsigned long long) bly_cons_core_total_power(node->core));
}

//  App hash equality and conservation on an honest node after each event.
static void
s_check_state(s_sim_t *sim, int32_t i)
{
    s_node_t *node = &sim->nodes[i];
    if (!node->core || node->byzantine)
        return;
    uint64_t h = bly_cons_core_height(node->core) - 1;
    uint8_t hash[32];
    bly_kvapp_hash(node->app, hash);
    if (h < S_HEIGHTS_MAX) {
        if (!sim->has_app_hash[h]) {
            memcpy(sim->app_hashes[h], hash, 32);
            sim->has_app_hash[h] = true;
        } else if (memcmp(sim->app_hashes[h], hash, 32) != 0) {
            s_fail(sim, "app hash differs at height %llu on node %d", (unsigned long long) h, i);
        }
    }
    if (bly_kvapp_supply(node->app) != sim->supply)
        s_fail(sim, "supply not conserved on node %d", i);
    s_check_powers(sim, i);
}

//  --------------------------------------------------------------------------
//  Byzantine behaviour: conflicting proposals, equivocating votes, mutated
//  bytes. Only while faults are on.

//  Send `a` to a random half of the others and `b` to the rest.
static void
s_send_split(s_sim_t *sim, int32_t i, const uint8_t *a, size_t a_size, const uint8_t *b,
             size_t b_size)
{
    for (uint32_t j = 0; j < sim->n; j++) {
        if ((int32_t) j == i)
            continue;
        if (s_below(sim, 2) == 0)
            s_net_send(sim, i, (int32_t) j, a, a_size);
        else
            s_net_send(sim, i, (int32_t) j, b, b_size);
    }
}

static bool
s_byz_proposal(s_sim_t *sim, int32_t i, const bly_cons_msg_t *msg, const uint8_t *data,
               size_t size)
{
    s_node_t *node = &sim->nodes[i];
    bly_cons_block_t hdr;
    if (bly_cons_block_decode(&hdr, msg->block, msg->block_size) != 0)
        return false;
    hdr.time_ms += 1 + s_below(sim, 1000);
    static uint8_t block[BLY_CONS_BLOCK_SIZE_MAX];
    static uint8_t out[BLY_CONS_MSG_SIZE_MAX];
    size_t block_size = bly_cons_block_encode(&hdr, block, sizeof(block));
    bly_assert(block_size > 0);
    bly_cons_msg_t alt = *msg;
    alt.block = block;
    alt.block_size = (uint32_t) block_size;
    bly_cons_block_id(block, block_size, alt.vote.id);
    bly_cons_vote_sign(&alt.vote, sim->cfg.chain_id, node->sk);
    size_t alt_size = bly_cons_msg_encode(&alt, out, sizeof(out));
    bly_assert(alt_size > 0);
    node->alt_height = alt.vote.height;
    node->alt_round = alt.vote.round;
    memcpy(node->alt_id, alt.vote.id, 32);
    S_TRACE(sim, "byzantine node %d sends conflicting proposals for height %llu round %d", i,
            (unsigned long long) alt.vote.height, alt.vote.round);
    s_send_split(sim, i, data, size, out, alt_size);
    return true;
}

static bool
s_byz_vote(s_sim_t *sim, int32_t i, const bly_cons_msg_t *msg, const uint8_t *data, size_t size)
{
    s_node_t *node = &sim->nodes[i];
    bly_cons_msg_t alt = *msg;
    bly_cons_vote_t *v = &alt.vote;
    bool have_alt = node->alt_height == v->height && node->alt_round == v->round;
    if (node->sly) {
        //  One vote to everyone: for the alternative proposal when there is one.
        if (!have_alt || (v->has_id && memcmp(v->id, node->alt_id, 32) == 0))
            return false;
        v->has_id = true;
        memcpy(v->id, node->alt_id, 32);
        bly_cons_vote_sign(v, sim->cfg.chain_id, node->sk);
        uint8_t out[2 + BLY_CONS_VOTE_SIZE];
        size_t alt_size = bly_cons_msg_encode(&alt, out, sizeof(out));
        bly_assert(alt_size > 0);
        S_TRACE(sim, "sly byzantine node %d votes type %u for its alternative at height %llu",
                i, v->type, (unsigned long long) v->height);
        s_send_split(sim, i, out, alt_size, out, alt_size);
        return true;
    }
    if (have_alt && (!v->has_id || memcmp(v->id, node->alt_id, 32) != 0)) {
        v->has_id = true;
        memcpy(v->id, node->alt_id, 32);
    } else if (v->has_id) {
        v->has_id = false;
        memset(v->id, 0, 32);
    } else {
        v->has_id = true;
        for (int k = 0; k < 4; k++)
            bly_cons_put_u64(v->id + 8 * k, s_rand(sim));
    }
    bly_cons_vote_sign(v, sim->cfg.chain_id, node->sk);
    uint8_t out[2 + BLY_CONS_VOTE_SIZE];
    size_t alt_size = bly_cons_msg_encode(&alt, out, sizeof(out));
    bly_assert(alt_size > 0);
    sim->res->equivocations++;
    S_TRACE(sim, "byzantine node %d equivocates type %u at height %llu round %d", i, v->type,
            (unsigned long long) v->height, v->round);
    s_send_split(sim, i, data, size, out, alt_size);
    return true;
}

//  Broadcast from a byzantine node: maybe equivocate, maybe mutate bytes.
static void
s_byz_broadcast(s_sim_t *sim, int32_t i, const uint8_t *data, size_t size)
{
    bly_cons_msg_t msg;
    if (bly_cons_msg_decode(&msg, data, size) == 0 && s_chance_pm(sim, 500)) {
        if (msg.type == BLY_CONS_PROPOSAL && s_byz_proposal(sim, i, &msg, data, size))
            return;
        if ((msg.type == BLY_CONS_PREVOTE || msg.type == BLY_CONS_PRECOMMIT) &&
            msg.vote.validator == (uint16_t) i && s_byz_vote(sim, i, &msg, data, size))
            return;
    }
    for (uint32_t j = 0; j < sim->n; j++) {
        if ((int32_t) j == i)
            continue;
        if (!s_chance_pm(sim, 100) || size == 0) {
            s_net_send(sim, i, (int32_t) j, data, size);
            continue;
        }
        uint8_t *copy = malloc(size);
        bly_assert(copy);
        memcpy(copy, data, size);
        copy[s_below(sim, size)] ^= (uint8_t) (1u << s_below(sim, 8));
        s_net_send(sim, i, (int32_t) j, copy, size);
        free(copy);
    }
}

//  --------------------------------------------------------------------------
//  Carrying out effects, in order; an honest node may crash between any two.

static void
s_exec_one(s_sim_t *sim, int32_t i, const bly_cons_effect_t *e)
{
    s_node_t *node = &sim->nodes[i];
    switch (e->kind) {
    case BLY_CONS_FX_PERSIST:
        s_wal_append(node, e->data, e->size, e->sync);
        break;
    case BLY_CONS_FX_BROADCAST:
        if (node->byzantine && sim->faults) {
            s_byz_broadcast(sim, i, e->data, e->size);
            break;
        }
        if (!node->byzantine)
            s_check_signed(sim, i, e->data, e->size);
        for (uint32_t j = 0; j < sim->n; j++)
            if ((int32_t) j != i)
                s_net_send(sim, i, (int32_t) j, e->data, e->size);
        break;
    case BLY_CONS_FX_SEND:
        bly_assert(e->peer >= 0 && (uint32_t) e->peer < sim->n);
        s_net_send(sim, i, e->peer, e->data, e->size);
        break;
    case BLY_CONS_FX_TIMER: {
        s_event_t ev = {.kind = S_EV_TIMER, .node = i, .epoch = node->epoch, .timer = e->timer};
        ev.t = sim->now + e->delay_ms * 1000 / node->clock_rate + 1;
        s_push(sim, ev);
        break;
    }
    case BLY_CONS_FX_COMMIT:
        bly_assert(node->commit_count < S_HEIGHTS_MAX);
        node->commits[node->commit_count].data = malloc(e->size);
        bly_assert(node->commits[node->commit_count].data);
        memcpy(node->commits[node->commit_count].data, e->data, e->size);
        node->commits[node->commit_count].size = e->size;
        node->commits[node->commit_count].synced = true;
        node->commit_count++;
        //  The decision is durable: the WAL of that height is no longer needed.
        s_records_free(node->wal, &node->wal_count);
        if (!node->byzantine)
            s_check_commit(sim, i, e->data, e->size);
        if (sim->opt.bench_rate > 0 && i == 1)
            s_bench_commit(sim, e->data, e->size);
        break;
    default:
        s_fail(sim, "node %d returned an unknown effect %u", i, e->kind);
    }
}

static void
s_exec(s_sim_t *sim, int32_t i, const bly_cons_effects_t *fx)
{
    s_node_t *node = &sim->nodes[i];
    uint32_t crash_at = UINT32_MAX;
    if (sim->faults && !node->byzantine && fx->count > 0 && s_chance_pm(sim, 3))
        crash_at = (uint32_t) s_below(sim, fx->count + 1);
    for (uint32_t k = 0; k < fx->count; k++) {
        if (k == crash_at)
            break;
        s_exec_one(sim, i, &fx->items[k]);
    }
    if (crash_at != UINT32_MAX) {
        S_TRACE(sim, "node %d crashes after effect %u of %u", i, crash_at, fx->count);
        s_crash(sim, i);
        s_push_simple(sim, sim->now + 50 + (int64_t) s_below(sim, 1000), S_EV_RESTART, i);
        return;
    }
    s_check_state(sim, i);
}

//  --------------------------------------------------------------------------
//  The world of one seed

static void
s_world_validators(s_sim_t *sim)
{
    sim->n = 4 + (uint32_t) s_below(sim, S_NODES_MAX - 3);
    bool equal = s_below(sim, 2) == 0;
    uint64_t total = 0;
    for (uint32_t i = 0; i < sim->n; i++) {
        sim->stakes[i] = S_STAKE * (equal ? 1 : 1 + s_below(sim, 5));
        sim->cfg.powers[i] = sim->stakes[i];
        total += sim->cfg.powers[i];
    }
    //  Byzantine replicas: at most two, strictly less than a third of the power.
    uint64_t byz_power = 0;
    uint32_t wanted = (uint32_t) s_below(sim, 3);
    uint32_t start = (uint32_t) s_below(sim, sim->n);
    for (uint32_t k = 0; k < sim->n && sim->res->byzantine < wanted; k++) {
        uint32_t i = (start + k) % sim->n;
        if (3 * (byz_power + sim->cfg.powers[i]) < total) {
            byz_power += sim->cfg.powers[i];
            sim->nodes[i].byzantine = true;
            sim->res->byzantine++;
        }
    }
    for (uint32_t i = 0; i < sim->n; i++)
        sim->nodes[i].sly = sim->nodes[i].byzantine && s_below(sim, 2) == 0;
    sim->byz_stake = byz_power;
    sim->honest_stake = total - byz_power;
    sim->unstaking = s_below(sim, 2) == 0;
    sim->cfg.validator_count = sim->n;
    sim->res->validators = sim->n;
    for (uint32_t i = 0; i < sim->n; i++) {
        s_node_t *node = &sim->nodes[i];
        uint8_t seed[32];
        for (int k = 0; k < 4; k++)
            bly_cons_put_u64(seed + 8 * k, s_rand(sim));
        crypto_sign_seed_keypair(node->pk, node->sk, seed);
        memcpy(sim->cfg.pubkeys[i], node->pk, 32);
        node->clock_offset = (int64_t) s_below(sim, 1000000);
        node->clock_rate = 900 + (int64_t) s_below(sim, 201);
        node->commits = calloc(S_HEIGHTS_MAX, sizeof(s_record_t));
        bly_assert(node->commits);
    }
}

static void
s_world_faults(s_sim_t *sim)
{
    sim->faults = true;
    sim->delay_min_ms = 1 + (int64_t) s_below(sim, 10);
    sim->delay_jitter_ms = (int64_t) s_below(sim, 60);
    sim->drop_pm = (uint32_t) s_below(sim, 250);
    sim->dup_pm = (uint32_t) s_below(sim, 100);
    sim->heal_at = 1000 + (int64_t) s_below(sim, 3000);
    uint32_t crashes = (uint32_t) s_below(sim, 4);
    for (uint32_t k = 0; k < crashes; k++) {
        int32_t i = (int32_t) s_below(sim, sim->n);
        int64_t t = (int64_t) s_below(sim, (uint64_t) sim->heal_at);
        s_push_simple(sim, t, S_EV_CRASH, i);
        s_push_simple(sim, t + 50 + (int64_t) s_below(sim, 2000), S_EV_RESTART, i);
    }
    uint32_t pauses = (uint32_t) s_below(sim, 3);
    for (uint32_t k = 0; k < pauses; k++)
        s_push_simple(sim, (int64_t) s_below(sim, (uint64_t) sim->heal_at), S_EV_PAUSE,
                      (int32_t) s_below(sim, sim->n));
    uint32_t partitions = (uint32_t) s_below(sim, 3);
    for (uint32_t k = 0; k < partitions; k++) {
        int64_t t = (int64_t) s_below(sim, (uint64_t) sim->heal_at);
        s_push_simple(sim, t, S_EV_PARTITION, -1);
        s_push_simple(sim, t + 100 + (int64_t) s_below(sim, 1500), S_EV_HEAL_LINKS, -1);
    }
    s_push_simple(sim, sim->heal_at, S_EV_HEAL_ALL, -1);
    s_push_simple(sim, 0, S_EV_CLIENT, -1);
}

static void
s_world_bench_validators(s_sim_t *sim)
{
    sim->n = 4;
    sim->cfg.validator_count = 4;
    sim->res->validators = 4;
    for (uint32_t i = 0; i < sim->n; i++) {
        s_node_t *node = &sim->nodes[i];
        sim->stakes[i] = S_STAKE;
        sim->cfg.powers[i] = S_STAKE;
        uint8_t seed[32] = {(uint8_t) (i + 1)};
        crypto_sign_seed_keypair(node->pk, node->sk, seed);
        memcpy(sim->cfg.pubkeys[i], node->pk, 32);
        node->clock_rate = 1000;
        node->commits = calloc(S_HEIGHTS_MAX, sizeof(s_record_t));
        bly_assert(node->commits);
    }
    sim->track_keys = calloc(S_BENCH_TRACK, sizeof(uint64_t));
    sim->track_times = calloc(S_BENCH_TRACK, sizeof(int64_t));
    bly_assert(sim->track_keys && sim->track_times);
}

//  Benchmark: no faults, 1 ms links; the heal (liveness target) comes at the end.
static void
s_world_bench(s_sim_t *sim)
{
    sim->faults = false;
    sim->delay_min_ms = 1;
    sim->delay_jitter_ms = 0;
    sim->heal_at = sim->opt.bench_ms;
    s_push_simple(sim, sim->opt.bench_ms, S_EV_HEAL_ALL, -1);
    s_push_simple(sim, 0, S_EV_CLIENT, -1);
    if (sim->opt.bench_dead)
        s_push_simple(sim, 0, S_EV_CRASH, 0);
}

static void
s_world_new(s_sim_t *sim)
{
    uint64_t x = sim->opt.seed;
    for (int k = 0; k < 4; k++)
        sim->rng[k] = s_splitmix(&x);
    snprintf(sim->cfg.chain_id, sizeof(sim->cfg.chain_id), "blyan-sim");
    sim->accounts = sim->opt.bench_rate > 0 ? S_BENCH_ACCOUNTS : S_ACCOUNTS;
    sim->cfg.block_size_max = sim->opt.bench_rate > 0 ? 128 * 1024 : 16384;
    sim->cfg.timeout_propose_ms = 300;
    sim->cfg.timeout_prevote_ms = 100;
    sim->cfg.timeout_precommit_ms = 100;
    sim->cfg.timeout_delta_ms = 50;
    sim->cfg.gossip_ms = 40;
    sim->cfg.timeout_commit_ms = 0;
    sim->cfg.quorum_broken = sim->opt.quorum_broken;
    //  Replicas share one signature cache (they live in one thread); the
    //  benchmark runs without it so each replica pays for every check.
    if (sim->opt.bench_rate == 0) {
        sim->cfg.sigcache = bly_cons_sigcache_new();
        bly_assert(sim->cfg.sigcache);
    }
    sim->signed_votes = calloc(S_SIGNED_CAP, sizeof(s_signed_t));
    bly_assert(sim->signed_votes);
    if (sim->opt.bench_rate > 0) {
        s_world_bench_validators(sim);
    } else {
        s_world_validators(sim);
    }
    sim->supply = sim->accounts * S_BALANCE;
    for (uint32_t i = 0; i < sim->n; i++)
        sim->supply += sim->stakes[i];
    if (sim->opt.bench_rate > 0)
        s_world_bench(sim);
    else
        s_world_faults(sim);
    for (uint32_t i = 0; i < sim->n; i++)
        s_boot(sim, (int32_t) i);
}

static void
s_world_destroy(s_sim_t *sim)
{
    for (size_t k = 0; k < sim->heap_count; k++)
        free(sim->heap[k].data);
    free(sim->heap);
    for (uint32_t i = 0; i < sim->n; i++) {
        s_node_t *node = &sim->nodes[i];
        bly_cons_core_destroy(&node->core);
        bly_kvapp_destroy(&node->app);
        s_records_free(node->commits, &node->commit_count);
        s_records_free(node->wal, &node->wal_count);
        free(node->commits);
        free(node->wal);
        free(node->guard);
    }
    free(sim->signed_votes);
    free(sim->track_keys);
    free(sim->track_times);
    free(sim->latencies);
    bly_cons_sigcache_destroy(&sim->cfg.sigcache);
}

//  --------------------------------------------------------------------------
//  Events

static uint64_t
s_track_slot(s_sim_t *sim, uint64_t key)
{
    uint64_t at = (key * 0x9e3779b97f4a7c15ull) >> 43;
    for (uint32_t probe = 0; probe < S_BENCH_TRACK; probe++, at = (at + 1) & (S_BENCH_TRACK - 1))
        if (sim->track_keys[at] == key || sim->track_keys[at] == 0)
            return at;
    return UINT64_MAX;
}

//  Benchmark clients: bench_rate transfers/s, a batch every millisecond.
static void
s_on_bench_client(s_sim_t *sim)
{
    uint64_t due = (uint64_t) sim->now * sim->opt.bench_rate / 1000;
    uint64_t next = (uint64_t) (sim->now + 1) * sim->opt.bench_rate / 1000;
    for (uint64_t k = due; k < next; k++) {
        int32_t i = 1 + (int32_t) s_below(sim, sim->n - 1);
        s_node_t *node = &sim->nodes[i];
        bly_kvapp_tx_t tx = {.from = (uint32_t) s_below(sim, sim->accounts), .amount = 1};
        tx.to = (tx.from + 1) % sim->accounts;
        tx.nonce = bly_kvapp_next_nonce(node->app, tx.from);
        if (bly_kvapp_submit(node->app, &tx) != BLY_KVAPP_OK)
            continue;
        uint64_t key = ((uint64_t) tx.from << 32 | tx.nonce) + 1;
        uint64_t at = s_track_slot(sim, key);
        if (at == UINT64_MAX)
            continue;
        sim->track_keys[at] = key;
        sim->track_times[at] = sim->now;
        sim->res->submitted++;
    }
    if (sim->now < sim->opt.bench_ms)
        s_push_simple(sim, sim->now + 1, S_EV_CLIENT, -1);
}

//  Benchmark: finality of each transfer in a block node 1 commits.
static void
s_bench_commit(s_sim_t *sim, const uint8_t *data, size_t size)
{
    bly_cons_msg_t msg;
    bly_cons_block_t hdr;
    if (bly_cons_msg_decode(&msg, data, size) != 0 ||
        bly_cons_block_decode(&hdr, msg.block, msg.block_size) != 0)
        return;
    for (uint32_t at = 0; at + BLY_KVAPP_TX_SIZE <= hdr.payload_size; at += BLY_KVAPP_TX_SIZE) {
        bly_kvapp_tx_t tx;
        bly_kvapp_tx_get(&tx, hdr.payload + at);
        uint64_t slot = s_track_slot(sim, ((uint64_t) tx.from << 32 | tx.nonce) + 1);
        if (slot == UINT64_MAX || sim->track_keys[slot] == 0)
            continue;
        if (sim->latency_count == sim->latency_cap) {
            sim->latency_cap = sim->latency_cap ? 2 * sim->latency_cap : 4096;
            sim->latencies = realloc(sim->latencies, sim->latency_cap * sizeof(int64_t));
            bly_assert(sim->latencies);
        }
        sim->latencies[sim->latency_count++] = sim->now - sim->track_times[slot];
    }
}

static int
s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

static void
s_bench_summarise(s_sim_t *sim)
{
    if (sim->latency_count == 0)
        return;
    qsort(sim->latencies, sim->latency_count, sizeof(int64_t), s_cmp_i64);
    sim->res->finality_p50_ms = sim->latencies[sim->latency_count / 2];
    sim->res->finality_p99_ms = sim->latencies[sim->latency_count * 99 / 100];
    sim->res->finality_max_ms = sim->latencies[sim->latency_count - 1];
}

//  An honest validator unstakes part of its stake through `node`'s mempool,
//  only while every unstake submitted so far (all of them committing, the
//  worst case) keeps 2 x byzantine < honest - unstaked: then the byzantine
//  power (never above its genesis share) stays below a third of the total
//  at every height. At most a third of the honest stake leaves (a validator
//  may reach stake 0: power 0).
static void
s_unstake(s_sim_t *sim, s_node_t *node)
{
    uint32_t v = (uint32_t) s_below(sim, sim->n);
    uint64_t amount = S_UNSTAKE_UNIT * (1 + s_below(sim, 2));
    if (!node->core || node->byzantine || sim->nodes[v].byzantine ||
        2 * sim->byz_stake + sim->unstake_submitted + amount >= sim->honest_stake ||
        3 * (sim->unstake_submitted + amount) > sim->honest_stake)
        return;
    bly_kvapp_tx_t tx = {.from = v, .to = BLY_KVAPP_UNSTAKE, .amount = amount};
    tx.nonce = bly_kvapp_next_nonce(node->app, v);
    if (bly_kvapp_submit(node->app, &tx) != BLY_KVAPP_OK)
        return;
    sim->unstake_submitted += amount;
    S_TRACE(sim, "validator %u unstakes %llu via node %d", v, (unsigned long long) amount,
            (int) (node - sim->nodes));
}

static void
s_on_client(s_sim_t *sim)
{
    if (sim->opt.bench_rate > 0) {
        s_on_bench_client(sim);
        return;
    }
    int32_t i = (int32_t) s_below(sim, sim->n);
    s_node_t *node = &sim->nodes[i];
    if (sim->unstaking && s_chance_pm(sim, 100)) {
        s_unstake(sim, node);
    } else if (node->core && !node->byzantine) {
        bly_kvapp_tx_t tx = {.from = (uint32_t) s_below(sim, sim->accounts),
                             .amount = 1 + s_below(sim, 100)};
        tx.to = (tx.from + 1 + (uint32_t) s_below(sim, sim->accounts - 1)) % sim->accounts;
        tx.nonce = bly_kvapp_next_nonce(node->app, tx.from);
        int rc = bly_kvapp_submit(node->app, &tx);
        if (rc != BLY_KVAPP_OK)
            S_TRACE(sim, "node %d refuses a transfer from %u: %d", i, tx.from, rc);
    }
    s_push_simple(sim, sim->now + 5 + (int64_t) s_below(sim, 25), S_EV_CLIENT, -1);
}

static void
s_on_heal_all(s_sim_t *sim)
{
    if (sim->opt.bench_rate > 0) {
        sim->bench_over = true;
        return;
    }
    S_TRACE(sim, "faults stop: links healed, crashed nodes restart, pauses end");
    sim->faults = false;
    sim->partitioned = false;
    sim->drop_pm = 0;
    sim->dup_pm = 0;
    uint64_t top = 0;
    for (uint32_t i = 0; i < sim->n; i++) {
        s_node_t *node = &sim->nodes[i];
        node->paused_until = 0;
        if (!node->core)
            s_boot(sim, (int32_t) i);
        if (node->core && bly_cons_core_height(node->core) > top)
            top = bly_cons_core_height(node->core);
    }
    sim->heal_height = top + 3;
}

//  True when the event must wait for a paused node.
static bool
s_deferred(s_sim_t *sim, s_event_t *ev)
{
    s_node_t *node = &sim->nodes[ev->node];
    if (sim->now >= node->paused_until)
        return false;
    ev->t = node->paused_until + (int64_t) s_below(sim, 5);
    s_push(sim, *ev);
    return true;
}

static void
s_handle(s_sim_t *sim, s_event_t *ev)
{
    s_node_t *node = ev->node >= 0 ? &sim->nodes[ev->node] : NULL;
    switch (ev->kind) {
    case S_EV_DELIVER:
        if (!node->core) {
            free(ev->data);
        } else if (!s_deferred(sim, ev)) {
            s_exec(sim, ev->node, bly_cons_core_on_message(node->core, ev->data, ev->size,
                                                           ev->from,
                                                           s_local_now(node, sim->now)));
            free(ev->data);
        }
        break;
    case S_EV_TIMER:
        S_TRACE(sim, "node %d timer %u h%llu r%d (epoch %u/%u, paused until %lld)", ev->node,
                ev->timer.kind, (unsigned long long) ev->timer.height, ev->timer.round, ev->epoch,
                node->epoch, (long long) node->paused_until);
        if (node->core && ev->epoch == node->epoch && !s_deferred(sim, ev))
            s_exec(sim, ev->node, bly_cons_core_on_timer(node->core, &ev->timer,
                                                         s_local_now(node, sim->now)));
        break;
    case S_EV_CRASH:
        if ((sim->faults || sim->opt.bench_dead) && !node->byzantine)
            s_crash(sim, ev->node);
        break;
    case S_EV_RESTART:
        if (!node->core)
            s_boot(sim, ev->node);
        break;
    case S_EV_PAUSE:
        if (sim->faults) {
            node->paused_until = sim->now + 50 + (int64_t) s_below(sim, 1500);
            S_TRACE(sim, "node %d pauses until %lld", ev->node, (long long) node->paused_until);
        }
        break;
    case S_EV_PARTITION:
        if (sim->faults) {
            sim->partitioned = true;
            for (uint32_t i = 0; i < sim->n; i++)
                sim->nodes[i].group = (int) s_below(sim, 2);
            S_TRACE(sim, "network partitions");
        }
        break;
    case S_EV_HEAL_LINKS:
        sim->partitioned = false;
        break;
    case S_EV_CLIENT:
        s_on_client(sim);
        break;
    case S_EV_HEAL_ALL:
        s_on_heal_all(sim);
        break;
    default:
        s_fail(sim, "unknown event %u", ev->kind);
    }
}

//  --------------------------------------------------------------------------
//  Run

//  After the heal: every honest replica reached the target height and has
//  no evidence left uncommitted.
static bool
s_done(s_sim_t *sim)
{
    if (sim->faults || sim->opt.bench_rate > 0)
        return false;
    for (uint32_t i = 0; i < sim->n; i++) {
        s_node_t *node = &sim->nodes[i];
        if (node->byzantine)
            continue;
        if (!node->core || bly_cons_core_height(node->core) < sim->heal_height ||
            bly_cons_core_evidence_pending(node->core) > 0)
            return false;
    }
    return true;
}

static void
s_summarise(s_sim_t *sim)
{
    uint64_t low = UINT64_MAX;
    for (uint32_t i = 0; i < sim->n; i++) {
        s_node_t *node = &sim->nodes[i];
        if (node->byzantine || !node->core)
            continue;
        uint64_t h = bly_cons_core_height(node->core);
        if (h < low) {
            low = h;
            sim->res->transfers = bly_kvapp_applied(node->app);
            uint64_t offences = 0;
            for (uint32_t c = 0; c < node->commit_count; c++) {
                bly_cons_msg_t msg;
                bly_cons_block_t hdr;
                if (bly_cons_msg_decode(&msg, node->commits[c].data, node->commits[c].size) == 0 &&
                    bly_cons_block_decode(&hdr, msg.block, msg.block_size) == 0)
                    offences += hdr.evidence_count;
            }
            sim->res->evidence = offences;
            sim->res->tombstoned = 0;
            sim->res->unstaked = 0;
            for (uint32_t v = 0; v < sim->n; v++) {
                sim->res->tombstoned += bly_kvapp_tombstoned(node->app, v);
                if (!sim->nodes[v].byzantine)
                    sim->res->unstaked += sim->stakes[v] - bly_kvapp_stake(node->app, v);
            }
        }
    }
    sim->res->height = low == UINT64_MAX ? 0 : low;
}

static void
s_liveness_report(s_sim_t *sim)
{
    char heights[128] = "";
    size_t used = 0;
    for (uint32_t i = 0; i < sim->n && used < sizeof(heights) - 24; i++) {
        s_node_t *node = &sim->nodes[i];
        used += (size_t) snprintf(heights + used, sizeof(heights) - used, " %u:%s%llu/r%d/s%d/e%u", i,
                                  node->byzantine ? "B" : "",
                                  node->core ? (unsigned long long) bly_cons_core_height(node->core) : 0ull,
                                  node->core ? bly_cons_core_round(node->core) : -1,
                                  node->core ? (int) bly_cons_core_step(node->core) : -1,
                                  node->core ? bly_cons_core_evidence_pending(node->core) : 0);
    }
    s_fail(sim, "liveness: target height %llu not reached by all honest replicas:%s",
           (unsigned long long) sim->heal_height, heights);
}

int
bly_sim_run(const bly_sim_options_t *options, bly_sim_result_t *result)
{
    bly_assert(options);
    bly_assert(result);
    if (sodium_init() < 0)
        return -1;
    s_sim_t *sim = calloc(1, sizeof(*sim));
    bly_assert(sim);
    memset(result, 0, sizeof(*result));
    sim->opt = *options;
    sim->res = result;
    bly_log_set_level(options->verbose ? BLY_LOG_DEBUG : BLY_LOG_ERROR);
    s_world_new(sim);
    while (!sim->failed && sim->heap_count > 0) {
        s_event_t ev = s_pop(sim);
        sim->now = ev.t;
        s_handle(sim, &ev);
        result->events++;
        if (s_done(sim) || sim->bench_over)
            break;
        if (!sim->faults && sim->now > sim->heal_at + S_LIVENESS_MS) {
            s_liveness_report(sim);
        } else if (result->events > S_EVENTS_MAX) {
            s_fail(sim, "event budget exhausted");
        }
    }
    s_summarise(sim);
    s_bench_summarise(sim);
    result->end_ms = sim->now;
    result->ok = !sim->failed;
    s_world_destroy(sim);
    free(sim);
    return result->ok ? 0 : -1;
}
