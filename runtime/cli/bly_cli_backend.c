/*  =========================================================================
    bly_cli_backend - CPU or Vulkan context for the CLI (see bly_cli_backend.h)
    ========================================================================= */

#include "bly_cli_backend.h"
#include "bly_ref.h"
#include "bly_vk_config.h"
#if BLY_HAVE_VULKAN
#include "bly_vk_model.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bly_cli_backend_t {
    bly_model_ctx_t *cpu;       //  CPU context, or NULL.
#if BLY_HAVE_VULKAN
    bly_vk_t *vk;               //  Vulkan device, or NULL.
    bly_vk_model_t *vk_model;   //  The model on it.
#endif
    char name[300];             //  For reports.
    size_t n_vocab;             //  Logits per position.
};

bool
bly_cli_backend_valid(const char *name)
{
    if (!name || strcmp(name, "cpu") == 0)
        return true;
#if BLY_HAVE_VULKAN
    int index;
    return bly_vk_parse_backend(name, &index) == 0;
#else
    return false;
#endif
}

#if BLY_HAVE_VULKAN
static int
s_vulkan_new(bly_cli_backend_t *self, const char *name, const bly_model_t *model, size_t n_ctx,
             size_t n_batch, char *error, size_t error_size)
{
    int index = -1;
    bly_assert(bly_vk_parse_backend(name, &index) == 0);
    bly_vk_options_t opt = {.by_index = index >= 0, .device_index = index};
    self->vk = bly_vk_new(&opt, error, error_size);
    if (!self->vk)
        return -1;
    self->vk_model = bly_vk_model_new_whole(self->vk, model, n_ctx, n_batch, error,
                                            error_size);
    if (!self->vk_model)
        return -1;
    snprintf(self->name, sizeof(self->name), "vulkan:%u (%s)", bly_vk_info(self->vk)->index,
             bly_vk_info(self->vk)->name);
    return 0;
}
#endif

bly_cli_backend_t *
bly_cli_backend_new(const char *name, const bly_model_t *model, size_t n_ctx, size_t n_batch,
                    size_t n_threads, char *error, size_t error_size)
{
    bly_assert(model);
    bly_assert(bly_cli_backend_valid(name));
    bly_cli_backend_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    self->n_vocab = bly_model_hparams(model)->n_vocab;
    if (!name || strcmp(name, "cpu") == 0) {
        const bly_model_hparams_t *hp = bly_model_hparams(model);
        self->cpu = bly_model_ctx_new(model, 0, hp->n_layer, n_ctx, n_batch, n_threads, error,
                                      error_size);
        snprintf(self->name, sizeof(self->name), "cpu");
        if (!self->cpu)
            bly_cli_backend_destroy(&self);
        return self;
    }
#if BLY_HAVE_VULKAN
    if (s_vulkan_new(self, name, model, n_ctx, n_batch, error, error_size) != 0)
        bly_cli_backend_destroy(&self);
#endif
    return self;
}

void
bly_cli_backend_destroy(bly_cli_backend_t **self_p)
{
    bly_assert(self_p);
    bly_cli_backend_t *self = *self_p;
    if (!self)
        return;
    bly_model_ctx_destroy(&self->cpu);
#if BLY_HAVE_VULKAN
    bly_vk_model_destroy(&self->vk_model);
    bly_vk_destroy(&self->vk);
#endif
    free(self);
    *self_p = NULL;
}

int
bly_cli_backend_eval(bly_cli_backend_t *self, const int32_t *tokens, size_t n, size_t pos,
                     float *logits)
{
    bly_assert(self);
    if (self->cpu)
        return bly_model_eval(self->cpu, tokens, n, pos, logits);
#if BLY_HAVE_VULKAN
    return bly_vk_model_eval(self->vk_model, tokens, n, pos, logits, NULL);
#else
    return -1;
#endif
}

int
bly_cli_backend_greedy(bly_cli_backend_t *self, const int32_t *tokens, size_t n, size_t pos,
                       float *logits, int32_t *next)
{
    bly_assert(self);
    bly_assert(next);
    if (self->cpu) {
        if (bly_model_eval(self->cpu, tokens, n, pos, logits) != 0)
            return -1;
        *next = (int32_t) bly_ref_argmax(logits, self->n_vocab);
        return 0;
    }
#if BLY_HAVE_VULKAN
    return bly_vk_model_eval(self->vk_model, tokens, n, pos, NULL, next);
#else
    return -1;
#endif
}

uint64_t
bly_cli_backend_device_ns(const bly_cli_backend_t *self)
{
    bly_assert(self);
#if BLY_HAVE_VULKAN
    if (self->vk)
        return bly_vk_last_gpu_ns(self->vk);
#endif
    return 0;
}

const char *
bly_cli_backend_name(const bly_cli_backend_t *self)
{
    bly_assert(self);
    return self->name;
}

uint64_t
bly_cli_backend_kv_bytes(const bly_cli_backend_t *self)
{
    bly_assert(self);
    if (self->cpu)
        return bly_model_ctx_kv_bytes(self->cpu);
#if BLY_HAVE_VULKAN
    return bly_vk_model_kv_bytes(self->vk_model);
#else
    return 0;
#endif
}
