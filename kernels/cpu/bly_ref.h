/*  =========================================================================
    bly_ref - plain scalar reference kernels (llama2.c style)

    The readable definition of every numerical operation of the model
    engine. Every optimised CPU kernel and every Vulkan shader is tested
    against these. Block layouts are ggml's, so GGUF tensor data is used in
    place. Quantized weights are multiplied with activations quantized the
    way llama.cpp does it (Q8_0 for Q8_0 weights, Q8_K for K-quants, F16 for
    F16 weights, BF16 for BF16 weights), with integer dot products inside
    each block, so results agree with llama.cpp.

    Function names here are stable: other backends refer to them.
    ========================================================================= */

#ifndef BLY_REF_H_INCLUDED
#define BLY_REF_H_INCLUDED

#include "model/bly_gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Block layouts (ggml) ---------------------------------------------- */

#define BLY_QK8_0 32  //  Elements per Q8_0 block.
#define BLY_QK_K 256  //  Elements per K-quant superblock.

//  Q8_0: one F16 scale and 32 signed 8-bit quants; x = d * q.
typedef struct {
    uint16_t d;             //  Scale, F16 bits.
    int8_t qs[BLY_QK8_0];   //  Quants.
} bly_block_q8_0_t;

//  Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins;
//  x = d * sc[j] * q - dmin * m[j], q in 0..15.
typedef struct {
    uint16_t d;               //  Super-scale of the scales, F16 bits.
    uint16_t dmin;            //  Super-scale of the mins, F16 bits.
    uint8_t scales[12];       //  8 scales and 8 mins, 6 bits each, packed.
    uint8_t qs[BLY_QK_K / 2]; //  4-bit quants: 64-element chunks, low nibbles first.
} bly_block_q4_k_t;

//  Q6_K: 16 sub-blocks of 16 with signed 8-bit scales; x = d * sc[j] * (q - 32).
typedef struct {
    uint8_t ql[BLY_QK_K / 2];  //  Low 4 bits of the quants.
    uint8_t qh[BLY_QK_K / 4];  //  High 2 bits of the quants.
    int8_t scales[BLY_QK_K / 16]; //  Sub-block scales.
    uint16_t d;                //  Super-scale, F16 bits.
} bly_block_q6_k_t;

//  Q8_K: activations for K-quant dot products; x = d * q.
typedef struct {
    float d;                        //  Scale.
    int8_t qs[BLY_QK_K];            //  Quants.
    int16_t bsums[BLY_QK_K / 16];   //  Sum of each group of 16 quants.
} bly_block_q8_k_t;

_Static_assert(sizeof(bly_block_q8_0_t) == 34, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(bly_block_q4_k_t) == 144, "Q4_K block is 144 bytes");
_Static_assert(sizeof(bly_block_q6_k_t) == 210, "Q6_K block is 210 bytes");
_Static_assert(sizeof(bly_block_q8_k_t) == 292, "Q8_K block is 292 bytes");

/* ---- Scalar conversions ------------------------------------------------ */

//  IEEE half <-> float. fp32 -> fp16 rounds to nearest even; NaN stays NaN.
float bly_fp16_to_fp32(uint16_t h);
uint16_t bly_fp32_to_fp16(float f);
//  bfloat16 <-> float. fp32 -> bf16 rounds to nearest even; NaN stays NaN.
float bly_bf16_to_fp32(uint16_t h);
uint16_t bly_fp32_to_bf16(float f);

/* ---- Types ------------------------------------------------------------- */

//  True for the weight types the engine computes with (F32, F16, BF16,
//  Q8_0, Q4_K, Q6_K).
bool bly_ref_type_supported(bly_type_t type);

//  Type the activations are converted to before a dot product with a
//  weight row of `type`: F32->F32, F16->F16, BF16->BF16, Q8_0->Q8_0,
//  Q4_K/Q6_K->Q8_K.
bly_type_t bly_ref_vec_dot_type(bly_type_t type);

//  Bytes of one row of `n` elements of a type (Q8_K included). `n` must be
//  a multiple of the type's block size.
size_t bly_ref_row_size(bly_type_t type, size_t n);

//  Elements per block of a type (Q8_K included); 0 when unsupported.
size_t bly_ref_block_elements(bly_type_t type);

/* ---- Dequantization and quantization ----------------------------------- */

//  Scale and min (6 bits each) of Q4_K sub-block j (0..7) from the 12
//  packed bytes: the first four pairs sit in the low 6 bits of bytes 0..7;
//  the last four keep their low 4 bits in bytes 8..11 and their high 2
//  bits in the top of bytes 0..7.
void bly_ref_q4_k_scale_min(size_t j, const uint8_t *packed, uint8_t *scale, uint8_t *min);

//  Dequantize `n` elements (a multiple of the block size) of a row.
void bly_ref_dequantize_row(bly_type_t type, const void *src, float *dst, size_t n);

//  Quantize an activation row to Q8_0 as llama.cpp's x86 path does:
//  d = max|x| / 127 (stored as F16), q = round-half-even(x * 127 / max|x|).
void bly_ref_quantize_row_q8_0(const float *x, bly_block_q8_0_t *y, size_t n);

//  Quantize an activation row to Q8_K: per 256, the element of largest
//  magnitude maps to -127 exactly; bsums hold the group sums.
void bly_ref_quantize_row_q8_k(const float *x, bly_block_q8_k_t *y, size_t n);

//  Convert a float row to the vec-dot type of weight type `wtype`.
void bly_ref_quantize_row(bly_type_t wtype, const float *x, void *y, size_t n);

/* ---- Dot products ------------------------------------------------------ */

//  Dot product of one weight row of `wtype` with one activation row
//  already converted by bly_ref_quantize_row(wtype, ...). Integer sums
//  within blocks, float across blocks.
float bly_ref_vec_dot(bly_type_t wtype, const void *w, const void *x, size_t n);

//  Bytes of scratch bly_ref_matmul needs for `n_tokens` rows of `n_in`.
size_t bly_ref_matmul_scratch_size(bly_type_t wtype, size_t n_in, size_t n_tokens);

//  y[t][o] = sum_i W[o][i] * x[t][i] for t < n_tokens, o < n_out. W is
//  `n_out` rows of `n_in` elements of `wtype` (ggml layout, ne0 = n_in).
//  `scratch` holds bly_ref_matmul_scratch_size bytes.
void bly_ref_matmul(bly_type_t wtype, const void *w, size_t n_in, size_t n_out, const float *x,
                    size_t n_tokens, float *y, void *scratch);

/* ---- Element-wise and attention ---------------------------------------- */

//  out = x / sqrt(mean(x^2) + eps) * w (w may be NULL). out may equal x.
void bly_ref_rmsnorm(float *out, const float *x, const float *w, size_t n, float eps);

//  Rotate `n_heads` heads of `head_dim` at position `pos` in place.
//  NeoX layout pairs element i with i + head_dim/2 (qwen3); the normal
//  layout pairs 2i with 2i+1 (llama). theta_i = pos * base^(-2i/head_dim).
void bly_ref_rope_neox(float *x, size_t n_heads, size_t head_dim, int64_t pos, float base);
void bly_ref_rope_normal(float *x, size_t n_heads, size_t head_dim, int64_t pos, float base);

//  In-place softmax of n values (max subtracted first).
void bly_ref_softmax(float *x, size_t n);

//  Causal GQA attention of one query position over cached keys/values at
//  positions 0..n_kv-1. q: n_head * head_dim. k_cache/v_cache: position-
//  major rows of n_kv_head * head_dim. Query head h uses kv head
//  h / (n_head / n_kv_head). out: n_head * head_dim. scores: n_kv floats.
void bly_ref_attention(float *out, const float *q, const float *k_cache, const float *v_cache,
                       size_t n_head, size_t n_kv_head, size_t head_dim, size_t n_kv,
                       float *scores);

//  out = silu(gate) * up; out may equal gate.
void bly_ref_swiglu(float *out, const float *gate, const float *up, size_t n);

//  y += x.
void bly_ref_add(float *y, const float *x, size_t n);

//  Index of the largest value; the lowest index on ties; NaN never wins.
size_t bly_ref_argmax(const float *x, size_t n);

#endif
