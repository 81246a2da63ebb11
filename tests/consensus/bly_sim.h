/*  =========================================================================
    bly_sim - deterministic simulator for the consensus core

    N replica cores in one thread with a virtual clock and a seeded network
    that delays, drops, duplicates and reorders messages, partitions and
    heals; replicas crash at any effect (losing unsynced WAL writes) and
    restart from their storage; replicas pause; clocks drift; byzantine
    replicas, some with their block store and WAL wiped (they keep only the
    last signing record, like a validator's key state, and resync); byzantine
    replicas (within f) equivocate votes, send conflicting proposals and
    mutate message bytes. Invariants are checked after every event:
    agreement, app-hash equality, token conservation, no honest double-sign;
    at the end, liveness after the faults stop and every detected
    equivocation committed as evidence. Everything derives from the seed, so
    a failing seed replays exactly.
    ========================================================================= */

#ifndef BLY_SIM_H_INCLUDED
#define BLY_SIM_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t seed;          //  Everything derives from it.
    bool quorum_broken;     //  Run the cores with the deliberately broken 2f quorum.
    bool verbose;           //  Print the event trace.
    //  Benchmark mode (bench_rate > 0): 4 equal replicas, no faults, 1 ms
    //  links, clients submitting bench_rate transfers/s for bench_ms of
    //  virtual time; bench_dead kills replica 0 (a proposer) for good.
    uint32_t bench_rate;
    int64_t bench_ms;
    bool bench_dead;
} bly_sim_options_t;

typedef struct {
    bool ok;                //  All invariants held.
    char reason[256];       //  First violated invariant.
    uint32_t validators;    //  N of this seed.
    uint32_t byzantine;     //  Byzantine replicas.
    uint64_t events;        //  Events processed.
    uint64_t height;        //  Lowest honest height at the end.
    uint64_t crashes;       //  Crashes injected.
    uint64_t wipes;         //  Of which also wiped the block store and WAL.
    uint64_t equivocations; //  Conflicting votes sent by byzantine replicas.
    uint64_t evidence;      //  Offences committed (slashes applied).
    uint64_t transfers;     //  Transfers committed.
    uint64_t tombstoned;    //  Validators tombstoned (power 0) by committed evidence.
    uint64_t unstaked;      //  Stake moved out by committed unstakes (power changes).
    int64_t end_ms;         //  Virtual time at the end.
    int64_t finality_p50_ms;   //  Bench: submit-to-commit, virtual time.
    int64_t finality_p99_ms;
    int64_t finality_max_ms;
    uint64_t submitted;        //  Bench: transfers accepted by a mempool.
} bly_sim_result_t;

//  Run one seed. Returns 0 when every invariant held, -1 otherwise (see
//  result->reason).
int bly_sim_run(const bly_sim_options_t *options, bly_sim_result_t *result);

#endif
