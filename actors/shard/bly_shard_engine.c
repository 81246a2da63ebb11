/*  =========================================================================
    bly_shard_engine - a layer-shard's compute (see bly_shard_engine.h)
    ========================================================================= */

#include "bly_shard_engine.h"
#include "bly_limits.h"
#include "bly_vk_config.h"
#if BLY_HAVE_VULKAN
#include "bly_vk_model.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bly_shard_engine_t {
    const bly_model_t *model;
    bly_shard_engine_config_t config;
    size_t slots;                   //  Contexts made.
    uint64_t bytes;                 //  Their KV (cpu) or device (vulkan) bytes.
    bly_model_ctx_t **cpu;          //  cpu: one per slot (NULL without layers).
    bly_model_ctx_t *cpu_head;      //  cpu: the head's work buffers.
#if BLY_HAVE_VULKAN
    bly_vk_t *vk;                   //  vulkan: the device.
    bly_vk_weights_t *weights;      //  The served stages on it.
    bly_vk_model_t **vk_ctx;        //  One session per slot (NULL without layers).
    bly_vk_model_t *vk_head;        //  The head's buffers.
#endif
    char device[300];
};

static bool
s_has_layers(const bly_shard_engine_t *self)
{
    return self->config.layer_first < self->config.layer_end;
}

//  Slots on the CPU: as many contexts as `sessions` and the KV budget allow.
static int
s_cpu_new(bly_shard_engine_t *self, char *err, size_t err_size)
{
    const bly_shard_engine_config_t *c = &self->config;
    self->cpu = calloc(c->sessions, sizeof(*self->cpu));
    bly_assert(self->cpu);
    for (size_t i = 0; s_has_layers(self) && i < c->sessions; i++) {
        self->cpu[i] = bly_model_ctx_new(self->model, c->layer_first, c->layer_end, c->n_ctx,
                                         c->n_batch, c->threads, err, err_size);
        if (!self->cpu[i])
            return -1;
        uint64_t kv = bly_model_ctx_kv_bytes(self->cpu[i]);
        if (self->bytes + kv > c->budget) {
            bly_model_ctx_destroy(&self->cpu[i]);
            break;
        }
        self->bytes += kv;
        self->slots = i + 1;
    }
    if (c->head) {
        uint32_t l = bly_model_hparams(self->model)->n_layer;
        //  Head rows of a batch of decode steps: one layer's context of that many positions.
        self->cpu_head = bly_model_ctx_new(self->model, l - 1, l, BLY_SHARD_BATCH_MAX,
                                           BLY_SHARD_BATCH_MAX, c->threads, err, err_size);
        if (!self->cpu_head)
            return -1;
    }
    snprintf(self->device, sizeof(self->device), "cpu");
    return 0;
}

#if BLY_HAVE_VULKAN
//  The device and the served stages' weights; the head's context.
static int
s_vk_open(bly_shard_engine_t *self, char *err, size_t err_size)
{
    const bly_shard_engine_config_t *c = &self->config;
    bly_vk_options_t opt = {.by_index = c->device >= 0, .device_index = c->device};
    self->vk = bly_vk_new(&opt, err, err_size);
    if (!self->vk)
        return -1;
    self->weights = bly_vk_weights_new(self->vk, self->model, c->layer_first, c->layer_end,
                                       false, c->head, c->budget, err, err_size);
    if (!self->weights)
        return -1;
    if (c->head && !(self->vk_head = bly_vk_model_new(self->weights, 1, 1, err, err_size)))
        return -1;
    snprintf(self->device, sizeof(self->device), "vulkan:%u (%s)", bly_vk_info(self->vk)->index,
             bly_vk_info(self->vk)->name);
    return 0;
}

//  Slots on the device: one session each while the budget and the device memory last.
static int
s_vk_new(bly_shard_engine_t *self, char *err, size_t err_size)
{
    const bly_shard_engine_config_t *c = &self->config;
    if (!s_has_layers(self) && !c->head) {
        snprintf(self->device, sizeof(self->device),
                 "vulkan (no device opened: the embedding is a host row lookup)");
        return 0;
    }
    if (s_vk_open(self, err, err_size) != 0)
        return -1;
    self->vk_ctx = calloc(c->sessions, sizeof(*self->vk_ctx));
    bly_assert(self->vk_ctx);
    char why[256] = "";
    for (size_t i = 0; s_has_layers(self) && i < c->sessions; i++) {
        self->vk_ctx[i] = bly_vk_model_new(self->weights, c->n_ctx, c->n_batch, why,
                                           sizeof(why));
        if (!self->vk_ctx[i] && strncmp(why, "busy:", 5) != 0) {
            snprintf(err, err_size, "%s", why);
            return -1;
        }
        if (!self->vk_ctx[i]) {
            bly_log_notice("shard: %zu of %zu sessions fit on the device (%s)", i, c->sessions,
                           why);
            break;
        }
        self->slots = i + 1;
    }
    self->bytes = bly_vk_weights_session_bytes(self->weights);
    return 0;
}
#endif

bly_shard_engine_t *
bly_shard_engine_new(const bly_model_t *model, const bly_shard_engine_config_t *config,
                     char *err, size_t err_size)
{
    bly_assert(model && config);
    bly_assert(config->sessions > 0 && config->sessions <= BLY_SHARD_SESSIONS_MAX);
    bool cpu = !config->backend || strcmp(config->backend, "cpu") == 0;
    bool vulkan = config->backend && strcmp(config->backend, "vulkan") == 0;
    if (!cpu && !(vulkan && BLY_HAVE_VULKAN)) {
        snprintf(err, err_size, "backend %s is not available in this build",
                 config->backend);
        return NULL;
    }
    bly_shard_engine_t *self = calloc(1, sizeof(*self));
    bly_assert(self);
    self->model = model;
    self->config = *config;
    self->config.backend = NULL;    //  Not kept: the caller's string.
    int rc = -1;
    if (cpu)
        rc = s_cpu_new(self, err, err_size);
#if BLY_HAVE_VULKAN
    else
        rc = s_vk_new(self, err, err_size);
#endif
    if (rc == 0 && !s_has_layers(self))
        self->slots = config->sessions;    //  Nothing per session: the core's slots only.
    if (rc == 0 && self->slots == 0) {
        snprintf(err, err_size, "kv_budget_mb holds no session of %zu positions on %s",
                 config->n_ctx, self->device);
        rc = -1;
    }
    if (rc != 0)
        bly_shard_engine_destroy(&self);
    return self;
}

void
bly_shard_engine_destroy(bly_shard_engine_t **self_p)
{
    bly_assert(self_p);
    bly_shard_engine_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; self->cpu && i < self->config.sessions; i++)
        bly_model_ctx_destroy(&self->cpu[i]);
    free(self->cpu);
    bly_model_ctx_destroy(&self->cpu_head);
#if BLY_HAVE_VULKAN
    for (size_t i = 0; self->vk_ctx && i < self->config.sessions; i++)
        bly_vk_model_destroy(&self->vk_ctx[i]);
    free(self->vk_ctx);
    bly_vk_model_destroy(&self->vk_head);
    bly_vk_weights_destroy(&self->weights);
    bly_vk_destroy(&self->vk);
#endif
    free(self);
    *self_p = NULL;
}

size_t
bly_shard_engine_slots(const bly_shard_engine_t *self)
{
    bly_assert(self);
    return self->slots;
}

uint64_t
bly_shard_engine_bytes(const bly_shard_engine_t *self)
{
    bly_assert(self);
    return self->bytes;
}

const char *
bly_shard_engine_device(const bly_shard_engine_t *self)
{
    bly_assert(self);
    return self->device;
}

int
bly_shard_engine_run_layers(bly_shard_engine_t *self, int slot, size_t first, size_t end,
                            float *x, size_t n_tokens, size_t pos)
{
    bly_assert(self);
    bly_assert(slot >= 0 && (size_t) slot < self->slots && s_has_layers(self));
    if (self->cpu)
        return bly_model_run_layers(self->cpu[slot], first, end, x, n_tokens, pos);
#if BLY_HAVE_VULKAN
    return bly_vk_model_run_layers(self->vk_ctx[slot], first, end, x, n_tokens, pos);
#else
    return -1;
#endif
}

int
bly_shard_engine_head(bly_shard_engine_t *self, const float *x, float *logits)
{
    bly_assert(self);
    bly_assert(self->config.head);
    if (self->cpu)
        return bly_model_head(self->cpu_head, x, logits);
#if BLY_HAVE_VULKAN
    return bly_vk_model_head(self->vk_head, x, logits);
#else
    return -1;
#endif
}

int
bly_shard_engine_run_layers_multi(bly_shard_engine_t *self, const int *slots, const size_t *pos,
                                  size_t n, size_t first, size_t end, float *x)
{
    bly_assert(self);
    bly_assert(slots && pos && x);
    bly_assert(n >= 1 && n <= BLY_SHARD_BATCH_MAX && s_has_layers(self));
    if (self->cpu) {
        bly_model_ctx_t *ctxs[BLY_SHARD_BATCH_MAX];
        for (size_t t = 0; t < n; t++) {
            bly_assert(slots[t] >= 0 && (size_t) slots[t] < self->slots);
            ctxs[t] = self->cpu[slots[t]];
        }
        return bly_model_run_layers_multi(ctxs, pos, n, first, end, x);
    }
    size_t row = bly_model_hparams(self->model)->n_embd;
    for (size_t t = 0; t < n; t++)
        if (bly_shard_engine_run_layers(self, slots[t], first, end, x + t * row, 1, pos[t]) != 0)
            return -1;
    return 0;
}

int
bly_shard_engine_head_rows(bly_shard_engine_t *self, const float *x, size_t n, float *logits)
{
    bly_assert(self);
    bly_assert(n >= 1 && n <= BLY_SHARD_BATCH_MAX);
    if (self->cpu)
        return bly_model_head_rows(self->cpu_head, x, n, logits);
    const bly_model_hparams_t *hp = bly_model_hparams(self->model);
    for (size_t t = 0; t < n; t++)
        if (bly_shard_engine_head(self, x + t * hp->n_embd, logits + t * hp->n_vocab) != 0)
            return -1;
    return 0;
}
