/*  =========================================================================
    bly_vk_ops - record transformer operations as Vulkan dispatches

    Each bly_vk_op_* records into the submission opened by bly_vk_begin and
    returns 0 or -1 (the submission then fails). Activations are f32 buffers
    addressed by element offsets; weights stay in their GGUF block layout in
    a bly_vk_weight_t, which binds matrices larger than one storage range in
    row chunks (each chunk one dispatch). Numerics follow the CPU reference
    kernels (kernels/cpu/bly_ref.h): quantized products first quantize the
    activations to Q8_0 (Q8_0 weights) or Q8_K (Q4_K, Q6_K weights) with the
    CPU's rounding and multiply in integers, so both backends agree.
    ========================================================================= */

#ifndef BLY_VK_OPS_H_INCLUDED
#define BLY_VK_OPS_H_INCLUDED

#include "bly_vk.h"
#include "model/bly_gguf.h"

//  A weight matrix on the device: `rows` rows of `cols` elements of `type`.
typedef struct {
    bly_vk_buf_t *buf;          //  Owned: rows * row_bytes (+ 4 bytes of padding).
    bly_type_t type;
    uint32_t rows;
    uint32_t cols;
    uint64_t row_bytes;
    uint32_t chunk_rows;        //  Rows bound per dispatch (all rows when it fits).
} bly_vk_weight_t;

//  Bytes of one row of `cols` elements of `type`; 0 when the type is not supported here or
//  `cols` is not a whole number of its blocks.
uint64_t bly_vk_row_bytes(bly_type_t type, uint64_t cols);

//  Upload `data` (rows * row_bytes bytes, GGUF layout) into a new weight. Returns 0 or -1
//  (unsupported type or shape, a row larger than one binding, no memory).
BLY_MUST_USE int bly_vk_weight_init(bly_vk_t *vk, bly_vk_weight_t *w, bly_type_t type,
                                    uint32_t rows, uint32_t cols, const void *data);
void bly_vk_weight_fini(bly_vk_weight_t *w);

//  Scratch for activation quantization: words and scales for `n_values` activations.
typedef struct {
    bly_vk_buf_t *q;            //  n_values bytes of int8, packed 4 per word.
    bly_vk_buf_t *d;            //  n_values / 32 floats.
} bly_vk_qscratch_t;

BLY_MUST_USE int bly_vk_qscratch_init(bly_vk_t *vk, bly_vk_qscratch_t *s, uint64_t n_values);
void bly_vk_qscratch_fini(bly_vk_qscratch_t *s);

//  y[t][:] = dequant(w[ids[t]]) for t < n_ids (ids: uint32 buffer).
BLY_MUST_USE int bly_vk_op_get_rows(bly_vk_t *vk, const bly_vk_weight_t *w, bly_vk_buf_t *ids,
                                    uint32_t n_ids, bly_vk_buf_t *y, uint32_t y_off);

//  y[t][r] = sum_c w[r][c] x[t][c] for t < n_tok; x is [n_tok][cols] at x_off, y is
//  [n_tok][rows] at y_off. Quantized types quantize x into `qs` first.
BLY_MUST_USE int bly_vk_op_matmul(bly_vk_t *vk, const bly_vk_weight_t *w, bly_vk_buf_t *x,
                                  uint32_t x_off, uint32_t n_tok, const bly_vk_qscratch_t *qs,
                                  bly_vk_buf_t *y, uint32_t y_off);

//  Quantize n_tok * cols activations at x_off into `qs`: type BLY_TYPE_Q8_0 or BLY_TYPE_Q8_K.
BLY_MUST_USE int bly_vk_op_quantize(bly_vk_t *vk, bly_type_t type, bly_vk_buf_t *x,
                                    uint32_t x_off, uint64_t n_values,
                                    const bly_vk_qscratch_t *qs);

//  RMSNorm of n_rows rows of n values: y = x / sqrt(mean(x^2) + eps) * w (w: n floats).
//  x and y may be the same buffer and offset.
BLY_MUST_USE int bly_vk_op_rmsnorm(bly_vk_t *vk, bly_vk_buf_t *x, uint32_t x_off,
                                   bly_vk_buf_t *w, bly_vk_buf_t *y, uint32_t y_off,
                                   uint32_t n, uint32_t n_rows, float eps);

//  Element-wise over n values: y = a + b, y = silu(a) * b, y = a.
BLY_MUST_USE int bly_vk_op_add(bly_vk_t *vk, bly_vk_buf_t *a, uint32_t a_off, bly_vk_buf_t *b,
                               uint32_t b_off, bly_vk_buf_t *y, uint32_t y_off, uint32_t n);
BLY_MUST_USE int bly_vk_op_swiglu(bly_vk_t *vk, bly_vk_buf_t *a, uint32_t a_off,
                                  bly_vk_buf_t *b, uint32_t b_off, bly_vk_buf_t *y,
                                  uint32_t y_off, uint32_t n);
BLY_MUST_USE int bly_vk_op_copy(bly_vk_t *vk, bly_vk_buf_t *a, uint32_t a_off, bly_vk_buf_t *y,
                                uint32_t y_off, uint32_t n);

//  Fill `table` (positions x head_dim/2 pairs of cos, sin) for RoPE with `base`, using the
//  CPU reference's angles (the same for both layouts). Returns 0 or -1.
BLY_MUST_USE int bly_vk_rope_table(bly_vk_buf_t *table, uint32_t head_dim, uint32_t positions,
                                   float base);

//  RoPE of x [n_tok][n_heads][head_dim] at positions pos0.. into y (may alias x), in the
//  NeoX layout (qwen3) or, with !neox, the normal layout (llama).
BLY_MUST_USE int bly_vk_op_rope(bly_vk_t *vk, bool neox, bly_vk_buf_t *x, uint32_t x_off,
                                bly_vk_buf_t *table, bly_vk_buf_t *y, uint32_t y_off,
                                uint32_t head_dim, uint32_t n_heads, uint32_t n_tok,
                                uint32_t pos0);

//  Shape of one attention call.
typedef struct {
    uint32_t head_dim;
    uint32_t n_head;
    uint32_t n_head_kv;         //  Divides n_head (GQA).
    uint32_t n_tok;             //  Tokens of this step, at positions pos0..pos0+n_tok-1.
    uint32_t pos0;
    float scale;                //  Usually 1 / sqrt(head_dim).
} bly_vk_attn_t;

//  Causal attention of q [n_tok][n_head][head_dim] over the caches k, v
//  ([positions][n_head_kv][head_dim] from kv_off, already holding positions
//  0..pos0+n_tok-1) into o [n_tok][n_head][head_dim].
BLY_MUST_USE int bly_vk_op_attention(bly_vk_t *vk, const bly_vk_attn_t *a, bly_vk_buf_t *q,
                                     uint32_t q_off, bly_vk_buf_t *k, bly_vk_buf_t *v,
                                     uint32_t kv_off, bly_vk_buf_t *o, uint32_t o_off);

//  out[o_off] = index of the largest of n values at x_off (lowest index on ties), and
//  out[o_off + 1] = its float bits.
BLY_MUST_USE int bly_vk_op_argmax(bly_vk_t *vk, bly_vk_buf_t *x, uint32_t x_off, uint32_t n,
                                  bly_vk_buf_t *out, uint32_t o_off);

#endif
