/*  =========================================================================
    bly_pool - a small persistent thread pool for the CPU kernels

    n - 1 worker threads are created once; bly_pool_run runs one function
    on every thread (the caller is thread 0) and returns when all finished.
    Workers spin briefly between runs (a forward pass issues hundreds of
    runs per token), then sleep on a condition variable. No allocation per
    run. One caller at a time: a pool belongs to one model context.
    ========================================================================= */

#ifndef BLY_POOL_H_INCLUDED
#define BLY_POOL_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct bly_pool_t bly_pool_t;

//  Work function: called once per thread with its index in [0, n_threads).
typedef void (bly_pool_fn)(void *arg, size_t thread_index, size_t n_threads);

//  Start a pool of n_threads (1..BLY_THREADS_MAX) threads including the
//  caller. Returns NULL when a thread cannot be created.
bly_pool_t *bly_pool_new(size_t n_threads);

//  Stop and join the workers. Harmless on NULL *self_p.
void bly_pool_destroy(bly_pool_t **self_p);

//  Threads including the caller.
size_t bly_pool_size(const bly_pool_t *self);

//  Run fn(arg, i, n) on every thread; returns when all have returned.
void bly_pool_run(bly_pool_t *self, bly_pool_fn *fn, void *arg);

//  Like bly_pool_run for work that any thread can take (split with the
//  chunk counter below): fn runs on the caller and on the workers that
//  wake before the caller has finished; workers still asleep or
//  descheduled then are not waited for. On a busy machine this keeps one
//  late thread from stalling every kernel.
void bly_pool_run_dynamic(bly_pool_t *self, bly_pool_fn *fn, void *arg);

//  A shared work counter for dynamic splitting inside one run: reset by
//  the caller before bly_pool_run, then each thread takes the next chunk
//  index until it passes the count. Returns the chunk index.
size_t bly_pool_next_chunk(bly_pool_t *self);
void bly_pool_reset_chunks(bly_pool_t *self);

#endif
