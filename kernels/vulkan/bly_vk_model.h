/*  =========================================================================
    bly_vk_model - a stage range of a model executed on a Vulkan device

    The same stages as the CPU engine (bly_model.h): embedding, layers
    [first, end), head (final norm and LM head). A bly_vk_model_t uploads the
    weights of the stages it serves once, at creation, and allocates the KV
    cache (one K and one V buffer per layer, budgeted against
    BLY_MODEL_KV_BYTES_MAX) and every activation buffer for batches of up to
    n_batch tokens. A step records all its dispatches into one submission;
    nothing is allocated per token. One bly_vk_model_t is one session's
    context (its KV cache); several may share a bly_vk_t, one thread at a time.

    Architectures: qwen3 (q/k norm, NeoX RoPE) and llama (normal RoPE).
    Numerics follow the CPU backend: quantized products quantize the
    activations to Q8_0/Q8_K as bly_ref does, so both give the same tokens.
    ========================================================================= */

#ifndef BLY_VK_MODEL_H_INCLUDED
#define BLY_VK_MODEL_H_INCLUDED

#include "bly_model.h"
#include "bly_vk.h"

typedef struct bly_vk_model_t bly_vk_model_t;

//  Serve layers [layer_first, layer_end) of `model` on `vk` (both borrowed; they must outlive
//  the result), plus the embedding when `embed` and the head when `head`, with a KV cache of
//  n_ctx positions and batches of up to n_batch tokens. Returns NULL with a reason in `error`
//  when an argument is out of range, a weight is not supported, the KV cache exceeds its
//  budget or the device runs out of memory.
BLY_MUST_USE bly_vk_model_t *bly_vk_model_new(bly_vk_t *vk, const bly_model_t *model,
                                              size_t layer_first, size_t layer_end, bool embed,
                                              bool head, size_t n_ctx, size_t n_batch,
                                              char *error, size_t error_size);

//  Free the device buffers. Harmless on NULL *self_p.
void bly_vk_model_destroy(bly_vk_model_t **self_p);

//  Bytes of KV cache and of weights held on the device.
uint64_t bly_vk_model_kv_bytes(const bly_vk_model_t *self);
uint64_t bly_vk_model_weight_bytes(const bly_vk_model_t *self);

//  As bly_model_run_layers: layers [first, end) on n_tokens activation rows (host memory,
//  n_tokens x n_embd, updated in place) at positions pos..; one submission. Returns 0 or -1.
BLY_MUST_USE int bly_vk_model_run_layers(bly_vk_model_t *self, size_t first, size_t end,
                                         float *x, size_t n_tokens, size_t pos);

//  As bly_model_head: one activation row (n_embd) to logits (n_vocab). Returns 0 or -1.
BLY_MUST_USE int bly_vk_model_head(bly_vk_model_t *self, const float *x, float *logits);

//  As bly_model_eval, entirely on the device (the model must serve every stage): embed n
//  tokens at positions pos.., run every layer, one submission per batch of n_batch; then the
//  last token's logits into `logits` and/or its greedy id (argmax, lowest id on ties) into
//  `argmax` (either may be NULL). Returns 0 or -1 (bad token id, context full, device lost).
BLY_MUST_USE int bly_vk_model_eval(bly_vk_model_t *self, const int32_t *tokens, size_t n,
                                   size_t pos, float *logits, int32_t *argmax);

#endif
