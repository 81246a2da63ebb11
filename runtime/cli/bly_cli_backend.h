/*  =========================================================================
    bly_cli_backend - the compute backend `blyan generate` and `blyan bench`
    run a whole model on: the CPU engine (bly_model_ctx_t) or a Vulkan device
    (bly_vk_model_t), chosen by `--backend cpu | vulkan | vulkan:INDEX`.
    ========================================================================= */

#ifndef BLY_CLI_BACKEND_H_INCLUDED
#define BLY_CLI_BACKEND_H_INCLUDED

#include "bly_model.h"

typedef struct bly_cli_backend_t bly_cli_backend_t;

//  True for NULL (the default, cpu), "cpu", "vulkan" and "vulkan:N" (when built with Vulkan).
bool bly_cli_backend_valid(const char *name);

//  A context for the whole model on backend `name` with n_ctx positions, batches of n_batch
//  and n_threads CPU threads (cpu only). NULL with a reason in `error` on failure.
BLY_MUST_USE bly_cli_backend_t *bly_cli_backend_new(const char *name, const bly_model_t *model,
                                                    size_t n_ctx, size_t n_batch,
                                                    size_t n_threads, char *error,
                                                    size_t error_size);
void bly_cli_backend_destroy(bly_cli_backend_t **self_p);

//  As bly_model_eval on the chosen backend. Returns 0 or -1.
BLY_MUST_USE int bly_cli_backend_eval(bly_cli_backend_t *self, const int32_t *tokens, size_t n,
                                      size_t pos, float *logits);

//  One greedy step: evaluate `tokens` and set *next to the argmax of the last position's
//  logits. The CPU computes the logits into `logits` (n_vocab floats); Vulkan takes the
//  argmax on the device and reads back only the id (`logits` untouched). Returns 0 or -1.
BLY_MUST_USE int bly_cli_backend_greedy(bly_cli_backend_t *self, const int32_t *tokens, size_t n,
                                        size_t pos, float *logits, int32_t *next);

//  Device time of the last step in nanoseconds (Vulkan with timestamps), else 0.
uint64_t bly_cli_backend_device_ns(const bly_cli_backend_t *self);

//  "cpu", or "vulkan:INDEX (device name)"; borrowed.
const char *bly_cli_backend_name(const bly_cli_backend_t *self);

//  Bytes of KV cache held.
uint64_t bly_cli_backend_kv_bytes(const bly_cli_backend_t *self);

#endif
