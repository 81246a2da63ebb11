/*  =========================================================================
    bly_cli_bench_batch - `blyan bench --sessions N` (see the .c file)
    ========================================================================= */

#ifndef BLY_CLI_BENCH_BATCH_H_INCLUDED
#define BLY_CLI_BENCH_BATCH_H_INCLUDED

#include "bly_model.h"

#include <stdbool.h>
#include <stddef.h>

//  Decode n sessions batched and one at a time, alternating, and print both rates (tokens
//  per second over all sessions) and their ratio. Returns the exit code.
int bly_cli_bench_sessions(const bly_model_t *model, size_t n, size_t threads, size_t n_gen,
                           bool json);

#endif
