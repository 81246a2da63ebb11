/*  =========================================================================
    bly_shard_engine - a layer-shard's compute: one set of weights, one
    context per session slot, on the CPU or a Vulkan device

    Backends (manifest `backend`, `device`):
      cpu     the model's mmap is the weights; a bly_model_ctx_t per slot
              (KV cache, work buffers, threads) and one for the head.
      vulkan  the served stages' weights are uploaded once
              (bly_vk_weights_t); a bly_vk_model_t per slot (KV cache and
              device buffers) and one for the head, all on those weights.
    The embedding is a row lookup in the mmap on either backend.

    Slots are made at creation, up to `sessions`, while the budget lasts:
    KV bytes (cpu) or every device byte of a session (vulkan) against
    `budget`; on Vulkan also while the device has memory. At least one slot
    must fit. Steps of different slots may interleave freely; each slot's
    KV cache is its own. One thread uses an engine.
    ========================================================================= */

#ifndef BLY_SHARD_ENGINE_H_INCLUDED
#define BLY_SHARD_ENGINE_H_INCLUDED

#include "bly_model.h"

typedef struct {
    const char *backend;      //  "cpu" (or NULL) or "vulkan".
    int device;               //  Vulkan device index, -1: the preferred one.
    uint32_t layer_first;     //  Layers [layer_first, layer_end) served.
    uint32_t layer_end;
    bool head;                //  The head is served.
    size_t sessions;          //  Slots wanted (1..BLY_SHARD_SESSIONS_MAX).
    uint64_t budget;          //  Bytes for all slots together.
    size_t n_ctx;             //  KV positions per slot.
    size_t n_batch;           //  Tokens per step.
    size_t threads;           //  CPU threads per context.
} bly_shard_engine_config_t;

typedef struct bly_shard_engine_t bly_shard_engine_t;

//  Contexts for `model` (borrowed; it must outlive the engine). NULL with a reason in `err`
//  when the backend is unknown or not built, the device cannot be opened, the weights do
//  not fit, or not one slot fits the budget.
BLY_MUST_USE bly_shard_engine_t *bly_shard_engine_new(const bly_model_t *model,
                                                      const bly_shard_engine_config_t *config,
                                                      char *err, size_t err_size);
void bly_shard_engine_destroy(bly_shard_engine_t **self_p);

//  Slots made (<= config.sessions), and bytes they hold together.
size_t bly_shard_engine_slots(const bly_shard_engine_t *self);
uint64_t bly_shard_engine_bytes(const bly_shard_engine_t *self);

//  "cpu", or "vulkan:INDEX (device name)"; borrowed.
const char *bly_shard_engine_device(const bly_shard_engine_t *self);

//  Layers [first, end) on slot `slot`: as bly_model_run_layers. Returns 0 or -1.
BLY_MUST_USE int bly_shard_engine_run_layers(bly_shard_engine_t *self, int slot, size_t first,
                                             size_t end, float *x, size_t n_tokens,
                                             size_t pos);

//  One decode token of each of n slots (distinct) in one pass: row t of x is slots[t]'s token
//  at pos[t]. CPU: bly_model_run_layers_multi (weights read once, rows bit-identical to
//  single steps); Vulkan: one step per row, in order. n <= BLY_SHARD_BATCH_MAX. Returns 0 or
//  -1.
BLY_MUST_USE int bly_shard_engine_run_layers_multi(bly_shard_engine_t *self, const int *slots,
                                                   const size_t *pos, size_t n, size_t first,
                                                   size_t end, float *x);

//  The head on n rows (n x n_vocab logits; CPU: the output matrix read once).
//  n <= BLY_SHARD_BATCH_MAX. Returns 0 or -1.
BLY_MUST_USE int bly_shard_engine_head_rows(bly_shard_engine_t *self, const float *x, size_t n,
                                            float *logits);

//  The head on one activation row: as bly_model_head. Returns 0 or -1.
BLY_MUST_USE int bly_shard_engine_head(bly_shard_engine_t *self, const float *x,
                                       float *logits);

#endif
