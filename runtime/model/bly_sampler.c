/*  =========================================================================
    bly_sampler - choose the next token from logits
    ========================================================================= */

#include "bly_sampler.h"

#include "bly_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_REPEAT_MAX 4096   //  Longest penalty window.

//  One candidate token.
typedef struct {
    int32_t id;      //  Token id.
    float logit;     //  Logit, later probability.
} s_candidate_t;

struct bly_sampler_t {
    bly_sampler_params_t params;   //  As given.
    size_t n_vocab;                //  Logits per call.
    s_candidate_t *cand;           //  n_vocab candidates.
    int32_t recent[S_REPEAT_MAX];  //  Ring of recent ids.
    size_t n_recent;               //  Ids recorded so far (capped at repeat_last_n).
    size_t recent_head;            //  Next slot of the ring.
    uint64_t state[2];             //  xorshift128+ state.
    uint8_t *seen;                 //  n_vocab flags for the penalty.
};

void
bly_sampler_params_default(bly_sampler_params_t *params)
{
    bly_assert(params);
    *params = (bly_sampler_params_t) {.temp = 0.8f, .top_k = 40, .top_p = 0.95f,
                                      .min_p = 0.05f, .repeat_penalty = 1.0f,
                                      .repeat_last_n = 64, .seed = 0};
}

static uint64_t
s_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

//  Uniform double in [0, 1) from xorshift128+.
static double
s_uniform(bly_sampler_t *self)
{
    uint64_t s1 = self->state[0];
    const uint64_t s0 = self->state[1];
    self->state[0] = s0;
    s1 ^= s1 << 23;
    self->state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return (double) ((self->state[1] + s0) >> 11) * 0x1.0p-53;
}

bly_sampler_t *
bly_sampler_new(const bly_sampler_params_t *params, size_t n_vocab)
{
    bly_assert(params);
    bly_assert(n_vocab > 0);
    const bly_sampler_params_t *p = params;
    if (!(p->temp >= 0.0f && p->temp <= 100.0f) || !(p->top_p >= 0.0f && p->top_p <= 1.0f)
        || !(p->min_p >= 0.0f && p->min_p <= 1.0f)
        || !(p->repeat_penalty > 0.0f && p->repeat_penalty <= 100.0f)
        || p->repeat_last_n > S_REPEAT_MAX) {
        bly_log_error("sampler: parameters out of range (temp %g, top_p %g, min_p %g, "
                      "repeat_penalty %g, repeat_last_n %u)", (double) p->temp,
                      (double) p->top_p, (double) p->min_p, (double) p->repeat_penalty,
                      p->repeat_last_n);
        return NULL;
    }
    bly_sampler_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->params = *params;
    self->n_vocab = n_vocab;
    self->cand = calloc(n_vocab, sizeof(*self->cand));
    self->seen = calloc(n_vocab, 1);
    if (!self->cand || !self->seen) {
        bly_sampler_destroy(&self);
        return NULL;
    }
    uint64_t x = params->seed;
    self->state[0] = s_splitmix(&x);
    self->state[1] = s_splitmix(&x);
    return self;
}

void
bly_sampler_destroy(bly_sampler_t **self_p)
{
    bly_assert(self_p);
    bly_sampler_t *self = *self_p;
    if (!self)
        return;
    free(self->seen);
    free(self->cand);
    free(self);
    *self_p = NULL;
}

void
bly_sampler_accept(bly_sampler_t *self, int32_t id)
{
    bly_assert(self);
    if (self->params.repeat_last_n == 0)
        return;
    self->recent[self->recent_head] = id;
    self->recent_head = (self->recent_head + 1) % self->params.repeat_last_n;
    if (self->n_recent < self->params.repeat_last_n)
        self->n_recent++;
}

static void
s_penalize(bly_sampler_t *self, float *logits)
{
    float penalty = self->params.repeat_penalty;
    if (penalty == 1.0f)
        return;
    for (size_t i = 0; i < self->n_recent; i++) {
        int32_t id = self->recent[i];
        if (id < 0 || (size_t) id >= self->n_vocab || self->seen[id])
            continue;
        self->seen[id] = 1;
        logits[id] = logits[id] > 0.0f ? logits[id] / penalty : logits[id] * penalty;
    }
    for (size_t i = 0; i < self->n_recent; i++)
        if (self->recent[i] >= 0 && (size_t) self->recent[i] < self->n_vocab)
            self->seen[self->recent[i]] = 0;
}

//  Descending logit, then ascending id: a total order, so results do not
//  depend on the sort algorithm.
static int
s_compare(const void *a, const void *b)
{
    const s_candidate_t *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

//  The k best candidates, sorted, at the front of cand. Keeps a sorted
//  window of k: O(n k) worst case, O(n) for typical logits and k = 40.
static size_t
s_top_k(bly_sampler_t *self, const float *logits, size_t k)
{
    size_t n = 0;
    for (size_t i = 0; i < self->n_vocab; i++) {
        s_candidate_t c = {(int32_t) i, logits[i]};
        if (isnan(c.logit))
            continue;
        if (n == k && s_compare(&c, &self->cand[n - 1]) >= 0)
            continue;
        size_t j = n < k ? n++ : n - 1;
        while (j > 0 && s_compare(&c, &self->cand[j - 1]) < 0) {
            self->cand[j] = self->cand[j - 1];
            j--;
        }
        self->cand[j] = c;
    }
    return n;
}

//  Softmax over the n candidates (sorted), into .logit as probabilities.
static void
s_probabilities(s_candidate_t *cand, size_t n, float temp)
{
    double sum = 0.0;
    float max = cand[0].logit;
    for (size_t i = 0; i < n; i++) {
        cand[i].logit = expf((cand[i].logit - max) / temp);
        sum += cand[i].logit;
    }
    for (size_t i = 0; i < n; i++)
        cand[i].logit = (float) (cand[i].logit / sum);
}

//  Number of leading candidates kept by top-p and min-p (probabilities).
static size_t
s_cut(const s_candidate_t *cand, size_t n, float top_p, float min_p)
{
    double cum = 0.0;
    size_t keep = n;
    for (size_t i = 0; i < n; i++) {
        cum += cand[i].logit;
        if (cum >= top_p && top_p < 1.0f) {
            keep = i + 1;
            break;
        }
    }
    for (size_t i = 1; i < keep; i++)
        if (cand[i].logit < min_p * cand[0].logit) {
            keep = i;
            break;
        }
    return keep;
}

int32_t
bly_sampler_sample(bly_sampler_t *self, float *logits)
{
    bly_assert(self);
    bly_assert(logits);
    s_penalize(self, logits);
    const bly_sampler_params_t *p = &self->params;
    if (p->temp <= 0.0f)
        return (int32_t) bly_ref_argmax(logits, self->n_vocab);
    size_t k = p->top_k == 0 || p->top_k > self->n_vocab ? self->n_vocab : p->top_k;
    size_t n;
    if (k < 1024) {
        n = s_top_k(self, logits, k);
    } else {
        n = 0;
        for (size_t i = 0; i < self->n_vocab; i++)
            if (!isnan(logits[i]))
                self->cand[n++] = (s_candidate_t) {(int32_t) i, logits[i]};
        qsort(self->cand, n, sizeof(*self->cand), s_compare);
        n = n < k ? n : k;
    }
    if (n == 0)
        return 0;
    //  top-p and min-p see the untempered distribution, as in llama.cpp;
    //  then the kept candidates get their logits back for the temperature.
    size_t keep = n;
    if (p->top_p < 1.0f || p->min_p > 0.0f) {
        s_probabilities(self->cand, n, 1.0f);
        keep = s_cut(self->cand, n, p->top_p, p->min_p);
        for (size_t i = 0; i < keep; i++)
            self->cand[i].logit = logits[self->cand[i].id];
    }
    s_probabilities(self->cand, keep, p->temp);
    double r = s_uniform(self), cum = 0.0;
    for (size_t i = 0; i < keep; i++) {
        cum += self->cand[i].logit;
        if (r < cum)
            return self->cand[i].id;
    }
    return self->cand[keep - 1].id;
}

int64_t
bly_sampler_find_stop(const char *text, size_t len, const char *const *stops, size_t n_stops)
{
    bly_assert(text || len == 0);
    int64_t best = -1;
    for (size_t s = 0; s < n_stops; s++) {
        size_t slen = stops[s] ? strlen(stops[s]) : 0;
        if (slen == 0 || slen > len)
            continue;
        for (size_t i = 0; i + slen <= len; i++) {
            if (best >= 0 && (int64_t) i >= best)
                break;
            if (memcmp(text + i, stops[s], slen) == 0) {
                best = (int64_t) i;
                break;
            }
        }
    }
    return best;
}
