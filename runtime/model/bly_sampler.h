/*  =========================================================================
    bly_sampler - choose the next token from logits

    Order as llama.cpp's default chain: repetition penalty, then (unless
    greedy) top-k, top-p, min-p on the untempered distribution, then
    temperature and a draw from the sampler's own PRNG. The same seed and
    the same logits give the same tokens on every machine. Buffers are
    allocated at creation; sampling allocates nothing.
    ========================================================================= */

#ifndef BLY_SAMPLER_H_INCLUDED
#define BLY_SAMPLER_H_INCLUDED

#include "bly_log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Sampling parameters, plain data. bly_sampler_params_default fills them.
typedef struct {
    float temp;              //  <= 0: greedy (argmax, lowest id on ties).
    uint32_t top_k;          //  0: off. Default 40.
    float top_p;             //  1: off. Default 0.95.
    float min_p;             //  0: off. Default 0.05.
    float repeat_penalty;    //  1: off. Logits of recent ids: >0 divided, <0 multiplied.
    uint32_t repeat_last_n;  //  Recent ids the penalty looks at. Default 64.
    uint64_t seed;           //  PRNG seed.
} bly_sampler_params_t;

typedef struct bly_sampler_t bly_sampler_t;

void bly_sampler_params_default(bly_sampler_params_t *params);

//  Create a sampler for n_vocab logits. Returns NULL (logged) when a
//  parameter is out of range (temp < 0 or > 100, top_p or min_p outside
//  [0, 1], repeat_penalty <= 0 or > 100, repeat_last_n > 4096).
BLY_MUST_USE bly_sampler_t *bly_sampler_new(const bly_sampler_params_t *params, size_t n_vocab);

void bly_sampler_destroy(bly_sampler_t **self_p);

//  Record a token (prompt or generated) for the repetition penalty.
void bly_sampler_accept(bly_sampler_t *self, int32_t id);

//  Choose the next id. `logits` (n_vocab) is modified (penalties).
int32_t bly_sampler_sample(bly_sampler_t *self, float *logits);

//  First position where one of `stops` occurs in text[0..len), or -1.
//  Empty stop strings never match.
int64_t bly_sampler_find_stop(const char *text, size_t len, const char *const *stops,
                              size_t n_stops);

#endif
