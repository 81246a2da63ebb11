/*  =========================================================================
    blyan-sim - run the deterministic consensus simulator over many seeds

    blyan-sim [--seeds N] [--seed S] [--broken] [--verbose]
    Runs seeds S .. S+N-1 (default S=1, N=1). A failing seed is printed with
    the command that replays it exactly. --broken runs the cores with the
    deliberately broken 2f quorum: the run is expected to FAIL some seed.
    Exit status: 0 when every seed passed, 1 when any failed, 2 on usage.
    ========================================================================= */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bly_sim.h"

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
        else if (strcmp(argv[i], "--verbose") == 0)
            opt.verbose = true;
        else {
            fprintf(stderr, "usage: blyan-sim [--seeds N] [--seed S] [--broken] [--verbose]\n");
            return 2;
        }
    }
    if (seeds == 0 || seeds > 10000000) {
        fprintf(stderr, "blyan-sim: --seeds must be 1..10000000\n");
        return 2;
    }
    unsigned long long failed = 0, heights = 0, crashes = 0, equivocations = 0, evidence = 0;
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
        equivocations += res.equivocations;
        evidence += res.evidence;
    }
    printf("blyan-sim: %llu seeds from %llu, %llu failed; %llu heights, %llu crashes, "
           "%llu equivocations sent, %llu offences committed%s\n",
           seeds, first, failed, heights, crashes, equivocations, evidence,
           opt.quorum_broken ? " (broken 2f quorum)" : "");
    return failed > 0 ? 1 : 0;
}
