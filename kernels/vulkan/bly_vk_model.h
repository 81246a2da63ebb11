/*  =========================================================================
    bly_vk_model - a stage range of a model executed on a Vulkan device

    The same stages as the CPU engine (bly_model.h): embedding, layers
    [first, end), head (final norm and LM head). As there, the weights and a
    session's state are separate objects:

      bly_vk_weights_t  the weights of the stages served, uploaded once per
                        device (a shard process makes one); read-only after
                        creation and shared by every session on it.
      bly_vk_model_t    one session's context on those weights: the KV cache
                        (one K and one V buffer per layer, at most
                        BLY_MODEL_KV_BYTES_MAX), every activation and
                        quantization buffer for batches of up to n_batch
                        tokens and the RoPE table of its n_ctx positions.

    Sessions are budgeted: a weight set has a session budget in bytes
    (device memory of every live session together: KV cache and buffers);
    a session that would pass it, or that the device has no memory for, is
    refused with a reason starting "busy:" and nothing else is touched.

    Lifetime: the weight set is reference-counted. Its creator holds one
    reference (dropped by bly_vk_weights_destroy), every session one more,
    so weights and sessions may be destroyed in any order; the device memory
    of the weights goes with the last of them. The bly_vk_t and the
    bly_model_t must outlive all of them.

    Command resources are the device's (bly_vk_t): a step records all its
    dispatches into one submission and waits for it, so the sessions of one
    device take turns on one thread. Nothing is allocated per token.

    Architectures: qwen3 (q/k norm, NeoX RoPE) and llama (normal RoPE).
    Numerics follow the CPU backend: quantized products quantize the
    activations to Q8_0/Q8_K as bly_ref does, so both give the same tokens.
    ========================================================================= */

#ifndef BLY_VK_MODEL_H_INCLUDED
#define BLY_VK_MODEL_H_INCLUDED

#include "bly_model.h"
#include "bly_vk.h"

typedef struct bly_vk_weights_t bly_vk_weights_t;
typedef struct bly_vk_model_t bly_vk_model_t;

//  Upload the weights of layers [layer_first, layer_end) of `model` to `vk` (both borrowed;
//  they must outlive the result and its sessions), plus the embedding when `embed` and the
//  head when `head`. `session_budget` bounds the device bytes of all live sessions together
//  (0: only the device bounds them). Returns NULL with a reason in `error` when the range is
//  out of range, a weight is missing or not supported, or the device runs out of memory.
BLY_MUST_USE bly_vk_weights_t *bly_vk_weights_new(bly_vk_t *vk, const bly_model_t *model,
                                                  size_t layer_first, size_t layer_end,
                                                  bool embed, bool head,
                                                  uint64_t session_budget, char *error,
                                                  size_t error_size);

//  Drop the creator's reference; the weights stay on the device while sessions hold them.
//  Harmless on NULL *self_p.
void bly_vk_weights_destroy(bly_vk_weights_t **self_p);

//  Bytes of weights on the device; device bytes and count of the live sessions.
uint64_t bly_vk_weights_bytes(const bly_vk_weights_t *self);
uint64_t bly_vk_weights_session_bytes(const bly_vk_weights_t *self);
size_t bly_vk_weights_sessions(const bly_vk_weights_t *self);

//  A session on `weights` with a KV cache of n_ctx positions and batches of up to n_batch
//  tokens. Returns NULL with a reason in `error` when an argument is out of range or the KV
//  cache exceeds BLY_MODEL_KV_BYTES_MAX, or (reason starting "busy:") when the session would
//  pass the weights' session budget or the device has no memory for it.
BLY_MUST_USE bly_vk_model_t *bly_vk_model_new(bly_vk_weights_t *weights, size_t n_ctx,
                                              size_t n_batch, char *error, size_t error_size);

//  Whole-model convenience (the CLI, tests): weights for every stage and one session on
//  them; the session holds the only reference, so bly_vk_model_destroy frees both.
BLY_MUST_USE bly_vk_model_t *bly_vk_model_new_whole(bly_vk_t *vk, const bly_model_t *model,
                                                    size_t n_ctx, size_t n_batch, char *error,
                                                    size_t error_size);

//  Free the session's device buffers and drop its reference. Harmless on NULL *self_p.
void bly_vk_model_destroy(bly_vk_model_t **self_p);

//  The session's weights (borrowed), KV cache bytes and device bytes in all.
bly_vk_weights_t *bly_vk_model_weights(const bly_vk_model_t *self);
uint64_t bly_vk_model_kv_bytes(const bly_vk_model_t *self);
uint64_t bly_vk_model_bytes(const bly_vk_model_t *self);

//  As bly_model_run_layers: layers [first, end) on n_tokens activation rows (host memory,
//  n_tokens x n_embd, updated in place) at positions pos..; one submission. Returns 0 or -1.
BLY_MUST_USE int bly_vk_model_run_layers(bly_vk_model_t *self, size_t first, size_t end,
                                         float *x, size_t n_tokens, size_t pos);

//  As bly_model_head: one activation row (n_embd) to logits (n_vocab). Returns 0 or -1.
BLY_MUST_USE int bly_vk_model_head(bly_vk_model_t *self, const float *x, float *logits);

//  As bly_model_eval, entirely on the device (the weights must cover every stage): embed n
//  tokens at positions pos.., run every layer, one submission per batch of n_batch; then the
//  last token's logits into `logits` and/or its greedy id (argmax, lowest id on ties) into
//  `argmax` (either may be NULL). Returns 0 or -1 (bad token id, context full, device lost).
BLY_MUST_USE int bly_vk_model_eval(bly_vk_model_t *self, const int32_t *tokens, size_t n,
                                   size_t pos, float *logits, int32_t *argmax);

#endif
