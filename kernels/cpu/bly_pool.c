/*  =========================================================================
    bly_pool - a small persistent thread pool for the CPU kernels
    ========================================================================= */

#include "bly_pool.h"

#include "bly_limits.h"
#include "bly_log.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

//  A waiting thread first spins (S_SPIN_PAUSE pause instructions, a few
//  microseconds: the usual gap between two kernel runs of a forward pass),
//  then yields the core S_SPIN_YIELD times (on a busy machine the thread
//  it waits for may need this core), then sleeps on a condition variable.
#define S_SPIN_PAUSE 4000
#define S_SPIN_YIELD 200
#define S_SPIN_MAX (S_SPIN_PAUSE + S_SPIN_YIELD)

//  Set in `joined` when a dynamic run stops taking helpers: a worker that
//  wakes later skips the run instead of being waited for.
#define S_CLOSED (1ull << 63)
//  `joined` also carries the generation of its run (bits 16..62) next to the
//  count (bits 0..15, BLY_THREADS_MAX fits): a worker joins only the run whose
//  generation it read. Without it a worker that saw run g start but joined
//  while run g+1 was being published (count reset, generation not yet
//  bumped) ran g+1's function, then ran it again once the bump arrived.
#define S_COUNT_MASK 0xffffull
#define S_GEN_SHIFT 16
#define S_GEN_MASK ((1ull << 47) - 1)

_Static_assert(BLY_THREADS_MAX <= S_COUNT_MASK, "joined count field too small");

struct bly_pool_t {
    size_t n_threads;                      //  Including the caller.
    pthread_t threads[BLY_THREADS_MAX];    //  Workers 1..n_threads-1.
    pthread_mutex_t mutex;                 //  Guards the sleeps below.
    pthread_cond_t wake;                   //  Workers sleep here between runs.
    pthread_cond_t done;                   //  The caller sleeps here for the last worker.
    atomic_uint_fast64_t generation;       //  Bumped once per run.
    atomic_uint_fast64_t joined;           //  Workers that joined this run; S_CLOSED bit.
    atomic_size_t finished;                //  Workers that finished this run.
    atomic_size_t chunk;                   //  Dynamic work counter.
    atomic_bool stop;                      //  Set by destroy.
    bly_pool_fn *fn;                       //  This run's function.
    void *arg;                             //  This run's argument.
};

static inline void
s_relax(int spins)
{
    if (spins > S_SPIN_PAUSE) {
        sched_yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

//  Join run `gen` if it is still open and still the published one.
static bool
s_join(bly_pool_t *self, uint64_t gen)
{
    uint64_t j = atomic_load_explicit(&self->joined, memory_order_acquire);
    for (;;) {
        if ((j & S_CLOSED) || ((j >> S_GEN_SHIFT) & S_GEN_MASK) != (gen & S_GEN_MASK))
            return false;
        if (atomic_compare_exchange_weak_explicit(&self->joined, &j, j + 1,
                                                  memory_order_acq_rel, memory_order_acquire))
            return true;
    }
}

//  What a worker starts with (freed by the worker).
typedef struct {
    bly_pool_t *pool;   //  Owner.
    size_t index;       //  1..n_threads-1.
} s_start_t;

static void *
s_worker(void *arg_)
{
    s_start_t *start = arg_;
    bly_pool_t *self = start->pool;
    size_t index = start->index;
    free(start);
    uint64_t seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&self->generation, memory_order_acquire) == seen) {
            if (++spins < S_SPIN_MAX) {
                s_relax(spins);
                continue;
            }
            pthread_mutex_lock(&self->mutex);
            while (atomic_load(&self->generation) == seen && !atomic_load(&self->stop))
                pthread_cond_wait(&self->wake, &self->mutex);
            pthread_mutex_unlock(&self->mutex);
            break;
        }
        if (atomic_load(&self->stop))
            return NULL;
        //  Join the run just seen. A run cannot finish (nor fn/arg change)
        //  while a joined worker is in it.
        seen = atomic_load_explicit(&self->generation, memory_order_acquire);
        if (!s_join(self, seen))
            continue;
        self->fn(self->arg, index, self->n_threads);
        atomic_fetch_add_explicit(&self->finished, 1, memory_order_acq_rel);
        pthread_mutex_lock(&self->mutex);
        pthread_cond_signal(&self->done);
        pthread_mutex_unlock(&self->mutex);
    }
}

bly_pool_t *
bly_pool_new(size_t n_threads)
{
    bly_assert(n_threads >= 1);
    bly_assert(n_threads <= BLY_THREADS_MAX);
    bly_pool_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->n_threads = 1;
    pthread_mutex_init(&self->mutex, NULL);
    pthread_cond_init(&self->wake, NULL);
    pthread_cond_init(&self->done, NULL);
    for (size_t i = 1; i < n_threads; i++) {
        s_start_t *start = malloc(sizeof(*start));
        if (!start)
            goto out_destroy;
        start->pool = self;
        start->index = i;
        if (pthread_create(&self->threads[i], NULL, s_worker, start) != 0) {
            free(start);
            goto out_destroy;
        }
        self->n_threads = i + 1;
    }
    return self;
out_destroy:
    bly_log_error("pool: cannot start %zu threads", n_threads);
    bly_pool_destroy(&self);
    return NULL;
}

void
bly_pool_destroy(bly_pool_t **self_p)
{
    bly_assert(self_p);
    bly_pool_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock(&self->mutex);
    atomic_store(&self->stop, true);
    atomic_fetch_add(&self->generation, 1);
    pthread_cond_broadcast(&self->wake);
    pthread_mutex_unlock(&self->mutex);
    for (size_t i = 1; i < self->n_threads; i++)
        pthread_join(self->threads[i], NULL);
    pthread_cond_destroy(&self->done);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->mutex);
    free(self);
    *self_p = NULL;
}

size_t
bly_pool_size(const bly_pool_t *self)
{
    bly_assert(self);
    return self->n_threads;
}

//  Publish a run and wake the workers.
static void
s_dispatch(bly_pool_t *self, bly_pool_fn *fn, void *arg)
{
    self->fn = fn;
    self->arg = arg;
    atomic_store(&self->finished, 0);
    uint64_t next = atomic_load(&self->generation) + 1;
    atomic_store_explicit(&self->joined, (next & S_GEN_MASK) << S_GEN_SHIFT,
                          memory_order_release);
    pthread_mutex_lock(&self->mutex);
    atomic_fetch_add_explicit(&self->generation, 1, memory_order_release);
    pthread_cond_broadcast(&self->wake);
    pthread_mutex_unlock(&self->mutex);
}

//  Wait until `target` workers finished the run.
static void
s_wait(bly_pool_t *self, uint64_t target)
{
    int spins = 0;
    while (atomic_load_explicit(&self->finished, memory_order_acquire) < target) {
        if (++spins < S_SPIN_MAX) {
            s_relax(spins);
            continue;
        }
        pthread_mutex_lock(&self->mutex);
        while (atomic_load(&self->finished) < target)
            pthread_cond_wait(&self->done, &self->mutex);
        pthread_mutex_unlock(&self->mutex);
    }
}

void
bly_pool_run(bly_pool_t *self, bly_pool_fn *fn, void *arg)
{
    bly_assert(self);
    bly_assert(fn);
    if (self->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    s_dispatch(self, fn, arg);
    fn(arg, 0, self->n_threads);
    s_wait(self, self->n_threads - 1);
}

void
bly_pool_run_dynamic(bly_pool_t *self, bly_pool_fn *fn, void *arg)
{
    bly_assert(self);
    bly_assert(fn);
    if (self->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    s_dispatch(self, fn, arg);
    fn(arg, 0, self->n_threads);
    uint64_t joined = atomic_fetch_or_explicit(&self->joined, S_CLOSED, memory_order_acq_rel);
    s_wait(self, joined & S_COUNT_MASK);
}

size_t
bly_pool_next_chunk(bly_pool_t *self)
{
    bly_assert(self);
    return atomic_fetch_add_explicit(&self->chunk, 1, memory_order_relaxed);
}

void
bly_pool_reset_chunks(bly_pool_t *self)
{
    bly_assert(self);
    atomic_store(&self->chunk, 0);
}
