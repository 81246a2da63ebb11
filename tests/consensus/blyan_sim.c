/*  =========================================================================
    blyan-sim - run the deterministic consensus simulator over many seeds

    blyan-sim [--seeds N] [--seed S] [--broken] [--verbose]
    Runs seeds S .. S+N-1 (default S=1, N=1). A failing seed is printed with
    the command that replays it exactly. --broken runs the cores with the
    deliberately broken 2f quorum: the run is expected to FAIL some seed.
    Exit status: 0 when every seed passed, 1 when any failed, 2 on usage.
    ========================================================================= */

#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "bly_sim.h"

//  Benchmark: one run, virtual-time finality and the CPU it cost here.
static int
s_bench(bly_sim_options_t *opt)
{
    if (opt->bench_ms <= 0)
        opt->bench_ms = 10000;
    bly_sim_result_t res;
    clock_t start = clock();
    int rc = bly_sim_run(opt, &res);
    double cpu_s = (double) (clock() - start) / CLOCKS_PER_SEC;
    printf("blyan-sim bench: 4 replicas%s, %u tx/s offered for %lld ms virtual: %llu accepted, "
           "%llu committed (%.0f tx/s virtual), %llu heights; finality p50 %lld ms, p99 %lld ms, "
           "max %lld ms (virtual); %.2f s CPU for all 4 replicas = %.0f committed tx per CPU s%s\n",
           opt->bench_dead ? " (replica 0 dead)" : "", opt->bench_rate,
           (long long) opt->bench_ms, (unsigned long long) res.submitted,
           (unsigned long long) res.transfers,
           (double) res.transfers * 1000.0 / (double) opt->bench_ms,
           (unsigned long long) res.height, (long long) res.finality_p50_ms,
           (long long) res.finality_p99_ms, (long long) res.finality_max_ms, cpu_s,
           cpu_s > 0 ? (double) res.transfers / cpu_s : 0.0, rc == 0 ? "" : " [FAILED]");
    if (rc != 0)
        printf("  %s\n", res.reason);
    return rc == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
    bly_sim_options_t opt = {.seed = 1};
    unsigned long long seeds = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc)
            seeds = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            opt.seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--broken") == 0)
            opt.quorum_broken = true;
        else if (strcmp(argv[i], "--bench") == 0 && i + 1 < argc)
            opt.bench_rate = (uint32_t) strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--bench-ms") == 0 && i + 1 < argc)
            opt.bench_ms = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--dead") == 0)
            opt.bench_dead = true;
        else if (strcmp(argv[i], "--verbose") == 0)
            opt.verbose = true;
        else {
            fprintf(stderr, "usage: blyan-sim [--seeds N] [--seed S] [--broken] [--verbose]\n"
                            "       blyan-sim --bench TX_PER_S [--bench-ms MS] [--dead]\n");
            return 2;
        }
    }
    if (seeds == 0 || seeds > 10000000) {
        fprintf(stderr, "blyan-sim: --seeds must be 1..10000000\n");
        return 2;
    }
    if (opt.bench_rate > 0)
        return s_bench(&opt);
    unsigned long long failed = 0, heights = 0, crashes = 0, wipes = 0, equivocations = 0, evidence = 0;
    unsigned long long tombstoned = 0, unstaked = 0;
    unsigned long long first = opt.seed;
    for (unsigned long long k = 0; k < seeds; k++) {
        opt.seed = first + k;
        bly_sim_result_t res;
        if (bly_sim_run(&opt, &res) != 0) {
            failed++;
            printf("FAIL seed %llu (n=%u, byzantine=%u): %s\n", (unsigned long long) opt.seed,
                   res.validators, res.byzantine, res.reason);
            printf("  replay: blyan-sim --seed %llu%s --verbose\n", (unsigned long long) opt.seed,
                   opt.quorum_broken ? " --broken" : "");
        }
        heights += res.height;
        crashes += res.crashes;
        wipes += res.wipes;
        equivocations += res.equivocations;
        evidence += res.evidence;
        tombstoned += res.tombstoned;
        unstaked += res.unstaked;
    }
    printf("blyan-sim: %llu seeds from %llu, %llu failed; %llu heights, %llu crashes (%llu wiped), "
           "%llu equivocations sent, %llu offences committed, %llu validators tombstoned, "
           "%llu stake unstaked%s\n",
           seeds, first, failed, heights, crashes, wipes, equivocations, evidence, tombstoned,
           unstaked,
           opt.quorum_broken ? " (broken 2f quorum)" : "");
    return failed > 0 ? 1 : 0;
}
