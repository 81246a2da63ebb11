/*  =========================================================================
    bly_kernels - optimised CPU kernels: SIMD with runtime dispatch, threads

    Same contracts as the scalar references in bly_ref.h, which they are
    tested against. The instruction set is picked once at first use from
    what the CPU supports (AVX2+FMA+F16C, else portable C); tests can force
    the portable path. Matmuls and attention split rows (heads) over a
    bly_pool_t with a shared chunk counter, so a descheduled thread does not
    hold the others up. Nothing here allocates.
    ========================================================================= */

#ifndef BLY_KERNELS_H_INCLUDED
#define BLY_KERNELS_H_INCLUDED

#include "bly_pool.h"
#include "bly_ref.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    BLY_KERN_PORTABLE = 0,   //  Plain C (the references).
    BLY_KERN_AVX2 = 1,       //  AVX2 + FMA + F16C.
} bly_kern_isa_t;

//  The instruction set in use.
bly_kern_isa_t bly_kern_isa(void);
const char *bly_kern_isa_name(bly_kern_isa_t isa);

//  Use `isa` from now on, or the best the CPU has if it lacks it. Returns
//  the one in use. For tests and benchmarks; not thread-safe with kernels
//  running.
bly_kern_isa_t bly_kern_set_isa(bly_kern_isa_t isa);

//  As bly_ref_quantize_row; results are bit-identical to it.
void bly_kern_quantize_row(bly_type_t wtype, const float *x, void *y, size_t n);

//  As bly_ref_vec_dot (float rounding may differ).
float bly_kern_vec_dot(bly_type_t wtype, const void *w, const void *x, size_t n);

//  Bytes of scratch bly_kern_matmul needs (a little more than the
//  reference: Q8_0 activation scales are kept as floats too).
size_t bly_kern_matmul_scratch_size(bly_type_t wtype, size_t n_in, size_t n_tokens);

//  As bly_ref_matmul, on the pool's threads. scratch: as
//  bly_kern_matmul_scratch_size.
void bly_kern_matmul(bly_pool_t *pool, bly_type_t wtype, const void *w, size_t n_in,
                     size_t n_out, const float *x, size_t n_tokens, float *y, void *scratch);

//  One matrix of a bly_kern_matmul_multi call.
typedef struct {
    bly_type_t type;    //  Weight type (the same for all matrices of a call).
    const void *w;      //  n_out rows of n_in elements.
    size_t n_out;       //  Rows.
    float *y;           //  n_tokens rows of n_out.
} bly_kern_mat_t;

#define BLY_KERN_MATS_MAX 4   //  Matrices one multi call may share an input across.

//  Several matmuls of the same input (q/k/v, gate/up) in one pass over the
//  pool: the activations are quantized once and one synchronisation
//  covers all. Types must be equal. scratch: as bly_kern_matmul_scratch_size.
void bly_kern_matmul_multi(bly_pool_t *pool, const bly_kern_mat_t *mats, size_t n_mats,
                           size_t n_in, const float *x, size_t n_tokens, void *scratch);

//  Causal GQA attention for `n_tokens` query rows at positions pos..pos+
//  n_tokens-1 (row t attends to cache positions 0..pos+t), on the pool's
//  threads. q/out: n_tokens rows of n_head*head_dim. Caches: position-major
//  rows of n_kv_head*head_dim holding at least pos+n_tokens positions.
//  scores: bly_pool_size(pool) * scores_stride floats, scores_stride >=
//  pos + n_tokens.
void bly_kern_attention(bly_pool_t *pool, float *out, const float *q, const float *k_cache,
                        const float *v_cache, size_t n_head, size_t n_kv_head, size_t head_dim,
                        size_t n_tokens, size_t pos, float *scores, size_t scores_stride);

#endif
