/*  =========================================================================
    bly_pool - a small persistent thread pool for the CPU kernels
    ========================================================================= */

#include "bly_pool.h"

#include "bly_limits.h"
#include "bly_log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

//  Busy-wait iterations before a waiting thread sleeps: about 0.1-0.5 ms,
//  longer than the gap between two kernel runs in one forward pass.
#define S_SPIN_MAX 20000

struct bly_pool_t {
    size_t n_threads;                      //  Including the caller.
    pthread_t threads[BLY_THREADS_MAX];    //  Workers 1..n_threads-1.
    pthread_mutex_t mutex;                 //  Guards the sleeps below.
    pthread_cond_t wake;                   //  Workers sleep here between runs.
    pthread_cond_t done;                   //  The caller sleeps here for the last worker.
    atomic_uint_fast64_t generation;       //  Bumped once per run.
    atomic_size_t pending;                 //  Workers still running this run.
    atomic_size_t chunk;                   //  Dynamic work counter.
    atomic_bool stop;                      //  Set by destroy.
    bly_pool_fn *fn;                       //  This run's function.
    void *arg;                             //  This run's argument.
};

static inline void
s_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
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
                s_relax();
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
        seen = atomic_load_explicit(&self->generation, memory_order_acquire);
        self->fn(self->arg, index, self->n_threads);
        if (atomic_fetch_sub_explicit(&self->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&self->mutex);
            pthread_cond_signal(&self->done);
            pthread_mutex_unlock(&self->mutex);
        }
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

void
bly_pool_run(bly_pool_t *self, bly_pool_fn *fn, void *arg)
{
    bly_assert(self);
    bly_assert(fn);
    if (self->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    self->fn = fn;
    self->arg = arg;
    atomic_store(&self->pending, self->n_threads - 1);
    pthread_mutex_lock(&self->mutex);
    atomic_fetch_add_explicit(&self->generation, 1, memory_order_release);
    pthread_cond_broadcast(&self->wake);
    pthread_mutex_unlock(&self->mutex);
    fn(arg, 0, self->n_threads);
    int spins = 0;
    while (atomic_load_explicit(&self->pending, memory_order_acquire) != 0) {
        if (++spins < S_SPIN_MAX) {
            s_relax();
            continue;
        }
        pthread_mutex_lock(&self->mutex);
        while (atomic_load(&self->pending) != 0)
            pthread_cond_wait(&self->done, &self->mutex);
        pthread_mutex_unlock(&self->mutex);
    }
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
