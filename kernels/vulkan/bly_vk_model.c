/*  =========================================================================
    bly_vk_model - a stage range of a model executed on a Vulkan device
    (see bly_vk_model.h)
    ========================================================================= */

#include "bly_vk_model.h"
#include "bly_vk_ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  One transformer block's weights on the device.
typedef struct {
    bly_vk_weight_t wq, wk, wv, wo, gate, up, down;
    bly_vk_buf_t *attn_norm;    //  n_embd floats.
    bly_vk_buf_t *ffn_norm;     //  n_embd floats.
    bly_vk_buf_t *q_norm;       //  head_dim floats (qwen3), else NULL.
    bly_vk_buf_t *k_norm;
} s_layer_t;

struct bly_vk_weights_t {
    bly_vk_t *vk;               //  Borrowed device.
    const bly_model_t *model;   //  Borrowed model.
    bly_model_hparams_t hp;     //  Copy of the hyperparameters.
    size_t layer_first;         //  First layer served.
    size_t layer_end;           //  One past the last.
    bool embed;                 //  Serves the embedding.
    bool head;                  //  Serves the head.
    uint32_t q_dim;             //  n_head * head_dim.
    uint32_t kv_dim;            //  n_kv_head * head_dim.
    s_layer_t *layers;          //  layer_end - layer_first entries.
    bly_vk_weight_t tok_embd;   //  When embedding, or a tied head.
    bly_vk_weight_t output;     //  Untied head only.
    bly_vk_buf_t *output_norm;  //  n_embd floats (head).
    uint64_t weight_bytes;
    uint64_t budget;            //  Session bytes allowed, 0: no bound.
    uint64_t session_bytes;     //  Held by live sessions.
    size_t sessions;            //  Live sessions.
    size_t refs;                //  Creator (until destroyed) + sessions.
};

//  One layer's KV cache.
typedef struct {
    bly_vk_buf_t *k;            //  n_ctx x kv_dim floats.
    bly_vk_buf_t *v;
} s_cache_t;

struct bly_vk_model_t {
    bly_vk_weights_t *w;        //  Shared weights (one reference).
    bly_vk_t *vk;               //  w->vk.
    const bly_model_hparams_t *hp;  //  &w->hp.
    size_t n_ctx;               //  KV positions.
    size_t n_batch;             //  Tokens per submission.
    s_cache_t *cache;           //  layer_end - layer_first entries.
    bly_vk_buf_t *rope;         //  cos/sin table, n_ctx positions.
    bly_vk_buf_t *x;            //  Activations, n_batch x n_embd.
    bly_vk_buf_t *xn;           //  Normed activations, n_batch x n_embd.
    bly_vk_buf_t *q;            //  n_batch x q_dim.
    bly_vk_buf_t *k;            //  n_batch x kv_dim.
    bly_vk_buf_t *v;            //  n_batch x kv_dim.
    bly_vk_buf_t *attn;         //  n_batch x q_dim.
    bly_vk_buf_t *tmp;          //  n_batch x n_embd.
    bly_vk_buf_t *gate;         //  n_batch x n_ff.
    bly_vk_buf_t *up;           //  n_batch x n_ff.
    bly_vk_buf_t *ids;          //  n_batch token ids.
    bly_vk_buf_t *logits;       //  n_vocab floats (head).
    bly_vk_buf_t *argmax;       //  Index and value bits (head).
    bly_vk_qscratch_t qs;       //  Quantized activations, n_batch x max width.
    uint64_t kv_bytes;
    uint64_t bytes;             //  Device bytes of the session, counted in w->session_bytes.
};

/* ---- Weights ----------------------------------------------------------- */

//  Upload the 2-D tensor `name` as a weight (ne0 = cols, ne1 = rows).
static int
s_weight(bly_vk_weights_t *self, const char *name, bly_vk_weight_t *w, char *error,
         size_t error_size)
{
    const bly_gguf_tensor_t *t = bly_gguf_tensor_find(bly_model_gguf(self->model), name);
    if (!t || t->ne[0] > UINT32_MAX || t->ne[1] > UINT32_MAX
        || bly_vk_weight_init(self->vk, w, t->type, (uint32_t) t->ne[1], (uint32_t) t->ne[0],
                              t->data)) {
        snprintf(error, error_size, "vulkan: cannot upload tensor %s", name);
        return -1;
    }
    self->weight_bytes += t->size;
    return 0;
}

//  Upload the F32 vector `name` (norm weights).
static int
s_vector(bly_vk_weights_t *self, const char *name, bly_vk_buf_t **buf, char *error,
         size_t error_size)
{
    const bly_gguf_tensor_t *t = bly_gguf_tensor_find(bly_model_gguf(self->model), name);
    if (!t || t->type != BLY_TYPE_F32 || !(*buf = bly_vk_buf_new(self->vk, t->size))
        || bly_vk_buf_write(*buf, 0, t->data, t->size)) {
        snprintf(error, error_size, "vulkan: cannot upload tensor %s", name);
        return -1;
    }
    self->weight_bytes += t->size;
    return 0;
}

static int
s_layer_new(bly_vk_weights_t *self, size_t i, char *error, size_t error_size)
{
    s_layer_t *l = &self->layers[i - self->layer_first];
    static const char *mats[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate",
                                 "ffn_up", "ffn_down"};
    bly_vk_weight_t *dst[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->gate, &l->up, &l->down};
    char name[96];
    for (size_t m = 0; m < 7; m++) {
        snprintf(name, sizeof(name), "blk.%zu.%s.weight", i, mats[m]);
        if (s_weight(self, name, dst[m], error, error_size))
            return -1;
    }
    static const char *vecs[] = {"attn_norm", "ffn_norm", "attn_q_norm", "attn_k_norm"};
    bly_vk_buf_t **vdst[] = {&l->attn_norm, &l->ffn_norm, &l->q_norm, &l->k_norm};
    size_t n_vecs = self->hp.arch == BLY_ARCH_QWEN3 ? 4 : 2;
    for (size_t v = 0; v < n_vecs; v++) {
        snprintf(name, sizeof(name), "blk.%zu.%s.weight", i, vecs[v]);
        if (s_vector(self, name, vdst[v], error, error_size))
            return -1;
    }
    return 0;
}

//  Free the device memory of the weights (the last reference is gone).
static void
s_weights_free(bly_vk_weights_t *self)
{
    for (size_t i = 0; self->layers && i < self->layer_end - self->layer_first; i++) {
        s_layer_t *l = &self->layers[i];
        bly_vk_weight_t *ws[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->gate, &l->up, &l->down};
        for (size_t m = 0; m < 7; m++)
            bly_vk_weight_fini(ws[m]);
        bly_vk_buf_t **bs[] = {&l->attn_norm, &l->ffn_norm, &l->q_norm, &l->k_norm};
        for (size_t b = 0; b < 4; b++)
            bly_vk_buf_destroy(bs[b]);
    }
    free(self->layers);
    bly_vk_weight_fini(&self->tok_embd);
    bly_vk_weight_fini(&self->output);
    bly_vk_buf_destroy(&self->output_norm);
    free(self);
}

static void
s_weights_unref(bly_vk_weights_t *self)
{
    bly_assert(self->refs > 0);
    if (--self->refs == 0)
        s_weights_free(self);
}

//  Every tensor of the served stages onto the device.
static int
s_weights_upload(bly_vk_weights_t *self, char *error, size_t error_size)
{
    for (size_t i = self->layer_first; i < self->layer_end; i++)
        if (s_layer_new(self, i, error, error_size))
            return -1;
    if ((self->embed || (self->head && self->hp.tied_output))
        && s_weight(self, "token_embd.weight", &self->tok_embd, error, error_size))
        return -1;
    if (self->head
        && (s_vector(self, "output_norm.weight", &self->output_norm, error, error_size)
            || (!self->hp.tied_output
                && s_weight(self, "output.weight", &self->output, error, error_size))))
        return -1;
    return 0;
}

bly_vk_weights_t *
bly_vk_weights_new(bly_vk_t *vk, const bly_model_t *model, size_t layer_first,
                   size_t layer_end, bool embed, bool head, uint64_t session_budget,
                   char *error, size_t error_size)
{
    bly_assert(vk);
    bly_assert(model);
    const bly_model_hparams_t *hp = bly_model_hparams(model);
    if (layer_first > layer_end || layer_end > hp->n_layer
        || (layer_first == layer_end && !embed && !head)) {
        snprintf(error, error_size, "vulkan: layer range [%zu, %zu) is not in [0, %u]",
                 layer_first, layer_end, hp->n_layer);
        return NULL;
    }
    bly_vk_weights_t *self = calloc(1, sizeof(*self));
    if (!self || !(self->layers = calloc(layer_end - layer_first + 1, sizeof(s_layer_t)))) {
        free(self);
        snprintf(error, error_size, "vulkan: out of memory");
        return NULL;
    }
    *self = (bly_vk_weights_t) {.vk = vk, .model = model, .hp = *hp, .layer_first = layer_first,
                                .layer_end = layer_end, .embed = embed, .head = head,
                                .q_dim = hp->n_head * hp->head_dim,
                                .kv_dim = hp->n_kv_head * hp->head_dim, .layers = self->layers,
                                .budget = session_budget, .refs = 1};
    if (s_weights_upload(self, error, error_size)) {
        s_weights_free(self);
        return NULL;
    }
    bly_log_info("vulkan: model stages [%zu, %zu)%s%s on the device: %llu weight bytes",
                 layer_first, layer_end, embed ? " +embedding" : "", head ? " +head" : "",
                 (unsigned long long) self->weight_bytes);
    return self;
}

void
bly_vk_weights_destroy(bly_vk_weights_t **self_p)
{
    bly_assert(self_p);
    if (!*self_p)
        return;
    s_weights_unref(*self_p);
    *self_p = NULL;
}

uint64_t
bly_vk_weights_bytes(const bly_vk_weights_t *self)
{
    bly_assert(self);
    return self->weight_bytes;
}

uint64_t
bly_vk_weights_session_bytes(const bly_vk_weights_t *self)
{
    bly_assert(self);
    return self->session_bytes;
}

size_t
bly_vk_weights_sessions(const bly_vk_weights_t *self)
{
    bly_assert(self);
    return self->sessions;
}

/* ---- Sessions ---------------------------------------------------------- */

//  Check the arguments and the KV limit; fills n_ctx, n_batch, kv_bytes.
static int
s_plan(bly_vk_model_t *self, size_t n_ctx, size_t n_batch, char *error, size_t error_size)
{
    const bly_vk_weights_t *w = self->w;
    if (n_ctx == 0 || n_ctx > BLY_MODEL_CTX_MAX || n_ctx > BLY_VK_ROPE_POSITIONS_MAX
        || n_batch == 0 || n_batch > BLY_MODEL_BATCH_MAX || n_batch > n_ctx) {
        snprintf(error, error_size, "vulkan: context %zu / batch %zu out of range", n_ctx,
                 n_batch);
        return -1;
    }
    self->n_ctx = n_ctx;
    self->n_batch = n_batch;
    uint64_t layer_bytes = (uint64_t) n_ctx * w->kv_dim * sizeof(float);
    self->kv_bytes = 2ull * (w->layer_end - w->layer_first) * layer_bytes;
    if (self->kv_bytes > BLY_MODEL_KV_BYTES_MAX
        || layer_bytes > bly_vk_info(w->vk)->max_storage_range) {
        snprintf(error, error_size, "vulkan: a KV cache of %llu bytes exceeds the budget",
                 (unsigned long long) self->kv_bytes);
        return -1;
    }
    if (w->budget && w->session_bytes + self->kv_bytes > w->budget) {
        snprintf(error, error_size, "busy: a session of %llu KV bytes passes the session "
                 "budget (%llu of %llu bytes held)", (unsigned long long) self->kv_bytes,
                 (unsigned long long) w->session_bytes, (unsigned long long) w->budget);
        return -1;
    }
    return 0;
}

//  The KV cache, activation buffers and the rope table; sums their bytes into self->bytes.
static int
s_buffers_new(bly_vk_model_t *self)
{
    const bly_vk_weights_t *w = self->w;
    const bly_model_hparams_t *hp = self->hp;
    uint64_t nb = self->n_batch, f = sizeof(float);
    uint64_t widest = hp->n_ff > hp->n_embd ? hp->n_ff : hp->n_embd;
    widest = w->q_dim > widest ? w->q_dim : widest;
    bly_vk_t *vk = self->vk;
    for (size_t i = 0; i < w->layer_end - w->layer_first; i++) {
        s_cache_t *c = &self->cache[i];
        c->k = bly_vk_buf_new(vk, self->n_ctx * w->kv_dim * f);
        c->v = bly_vk_buf_new(vk, self->n_ctx * w->kv_dim * f);
        if (!c->k || !c->v)
            return -1;
        self->bytes += bly_vk_buf_size(c->k) + bly_vk_buf_size(c->v);
    }
    bly_vk_buf_t **bufs[] = {&self->x, &self->xn, &self->q, &self->k, &self->v, &self->attn,
                             &self->tmp, &self->gate, &self->up, &self->ids, &self->logits,
                             &self->argmax, &self->rope};
    const uint64_t sizes[] = {nb * hp->n_embd * f, nb * hp->n_embd * f, nb * w->q_dim * f,
                              nb * w->kv_dim * f, nb * w->kv_dim * f, nb * w->q_dim * f,
                              nb * hp->n_embd * f, nb * hp->n_ff * f, nb * hp->n_ff * f,
                              nb * sizeof(uint32_t), (uint64_t) hp->n_vocab * f,
                              2 * sizeof(uint32_t), (uint64_t) self->n_ctx * hp->head_dim * f};
    for (size_t b = 0; b < sizeof(bufs) / sizeof(bufs[0]); b++) {
        if (!(*bufs[b] = bly_vk_buf_new(vk, sizes[b])))
            return -1;
        self->bytes += bly_vk_buf_size(*bufs[b]);
    }
    if (bly_vk_qscratch_init(vk, &self->qs, nb * widest))
        return -1;
    self->bytes += bly_vk_buf_size(self->qs.q) + bly_vk_buf_size(self->qs.d);
    return bly_vk_rope_table(self->rope, hp->head_dim, (uint32_t) self->n_ctx, hp->rope_base);
}

//  Free the session's buffers (the session is not counted in its weights).
static void
s_session_free(bly_vk_model_t *self)
{
    for (size_t i = 0; self->cache && i < self->w->layer_end - self->w->layer_first; i++) {
        bly_vk_buf_destroy(&self->cache[i].k);
        bly_vk_buf_destroy(&self->cache[i].v);
    }
    free(self->cache);
    bly_vk_buf_t **bufs[] = {&self->rope, &self->x, &self->xn, &self->q, &self->k, &self->v,
                             &self->attn, &self->tmp, &self->gate, &self->up, &self->ids,
                             &self->logits, &self->argmax};
    for (size_t b = 0; b < sizeof(bufs) / sizeof(bufs[0]); b++)
        bly_vk_buf_destroy(bufs[b]);
    bly_vk_qscratch_fini(&self->qs);
    s_weights_unref(self->w);
    free(self);
}

bly_vk_model_t *
bly_vk_model_new(bly_vk_weights_t *weights, size_t n_ctx, size_t n_batch, char *error,
                 size_t error_size)
{
    bly_assert(weights);
    bly_assert(weights->refs > 0);
    bly_vk_model_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(error, error_size, "vulkan: out of memory");
        return NULL;
    }
    weights->refs++;
    *self = (bly_vk_model_t) {.w = weights, .vk = weights->vk, .hp = &weights->hp};
    if (s_plan(self, n_ctx, n_batch, error, error_size)) {
        s_session_free(self);
        return NULL;
    }
    self->cache = calloc(weights->layer_end - weights->layer_first + 1, sizeof(s_cache_t));
    if (!self->cache || s_buffers_new(self)) {
        snprintf(error, error_size, "busy: no device memory for a session of %zu positions",
                 n_ctx);
        s_session_free(self);
        return NULL;
    }
    if (weights->budget && weights->session_bytes + self->bytes > weights->budget) {
        snprintf(error, error_size, "busy: a session of %llu device bytes passes the session "
                 "budget (%llu of %llu bytes held)", (unsigned long long) self->bytes,
                 (unsigned long long) weights->session_bytes,
                 (unsigned long long) weights->budget);
        s_session_free(self);
        return NULL;
    }
    weights->session_bytes += self->bytes;
    weights->sessions++;
    return self;
}

bly_vk_model_t *
bly_vk_model_new_whole(bly_vk_t *vk, const bly_model_t *model, size_t n_ctx, size_t n_batch,
                       char *error, size_t error_size)
{
    bly_vk_weights_t *w = bly_vk_weights_new(vk, model, 0, bly_model_hparams(model)->n_layer,
                                             true, true, 0, error, error_size);
    if (!w)
        return NULL;
    bly_vk_model_t *self = bly_vk_model_new(w, n_ctx, n_batch, error, error_size);
    bly_vk_weights_destroy(&w);
    return self;
}

void
bly_vk_model_destroy(bly_vk_model_t **self_p)
{
    bly_assert(self_p);
    bly_vk_model_t *self = *self_p;
    if (!self)
        return;
    bly_vk_weights_t *w = self->w;
    bly_assert(w->sessions > 0 && w->session_bytes >= self->bytes);
    w->sessions--;
    w->session_bytes -= self->bytes;
    s_session_free(self);
    *self_p = NULL;
}

bly_vk_weights_t *
bly_vk_model_weights(const bly_vk_model_t *self)
{
    bly_assert(self);
    return self->w;
}

uint64_t
bly_vk_model_kv_bytes(const bly_vk_model_t *self)
{
    bly_assert(self);
    return self->kv_bytes;
}

uint64_t
bly_vk_model_bytes(const bly_vk_model_t *self)
{
    bly_assert(self);
    return self->bytes;
}

/* ---- Forward pass ------------------------------------------------------ */

//  Attention half of a block: norm, q/k/v, q/k norm, RoPE, cache append, attention, output
//  projection, residual.
static int
s_record_attention(bly_vk_model_t *self, const s_layer_t *l, const s_cache_t *c, uint32_t nt,
                   uint32_t pos)
{
    const bly_model_hparams_t *hp = self->hp;
    uint32_t kv_dim = self->w->kv_dim;
    bly_vk_t *vk = self->vk;
    uint32_t ne = hp->n_embd, hd = hp->head_dim;
    bool neox = hp->arch == BLY_ARCH_QWEN3;
    bly_vk_attn_t a = {.head_dim = hd, .n_head = hp->n_head, .n_head_kv = hp->n_kv_head,
                       .n_tok = nt, .pos0 = pos, .scale = 1.0f / sqrtf((float) hd)};
    if (bly_vk_op_rmsnorm(vk, self->x, 0, l->attn_norm, self->xn, 0, ne, nt, hp->rms_eps)
        || bly_vk_op_matmul(vk, &l->wq, self->xn, 0, nt, &self->qs, self->q, 0)
        || bly_vk_op_matmul(vk, &l->wk, self->xn, 0, nt, &self->qs, self->k, 0)
        || bly_vk_op_matmul(vk, &l->wv, self->xn, 0, nt, &self->qs, self->v, 0))
        return -1;
    if (l->q_norm
        && (bly_vk_op_rmsnorm(vk, self->q, 0, l->q_norm, self->q, 0, hd, nt * hp->n_head,
                              hp->rms_eps)
            || bly_vk_op_rmsnorm(vk, self->k, 0, l->k_norm, self->k, 0, hd,
                                 nt * hp->n_kv_head, hp->rms_eps)))
        return -1;
    uint32_t slot = pos * kv_dim;
    if (bly_vk_op_rope(vk, neox, self->q, 0, self->rope, self->q, 0, hd, hp->n_head, nt, pos)
        || bly_vk_op_rope(vk, neox, self->k, 0, self->rope, c->k, slot, hd,
                          hp->n_kv_head, nt, pos)
        || bly_vk_op_copy(vk, self->v, 0, c->v, slot, nt * kv_dim)
        || bly_vk_op_attention(vk, &a, self->q, 0, c->k, c->v, 0, self->attn, 0)
        || bly_vk_op_matmul(vk, &l->wo, self->attn, 0, nt, &self->qs, self->tmp, 0)
        || bly_vk_op_add(vk, self->x, 0, self->tmp, 0, self->x, 0, nt * ne))
        return -1;
    return 0;
}

//  Feed-forward half: norm, gate and up, SwiGLU, down, residual.
static int
s_record_ffn(bly_vk_model_t *self, const s_layer_t *l, uint32_t nt)
{
    const bly_model_hparams_t *hp = self->hp;
    bly_vk_t *vk = self->vk;
    uint32_t ne = hp->n_embd;
    if (bly_vk_op_rmsnorm(vk, self->x, 0, l->ffn_norm, self->xn, 0, ne, nt, hp->rms_eps)
        || bly_vk_op_matmul(vk, &l->gate, self->xn, 0, nt, &self->qs, self->gate, 0)
        || bly_vk_op_matmul(vk, &l->up, self->xn, 0, nt, &self->qs, self->up, 0)
        || bly_vk_op_swiglu(vk, self->gate, 0, self->up, 0, self->gate, 0, nt * hp->n_ff)
        || bly_vk_op_matmul(vk, &l->down, self->gate, 0, nt, &self->qs, self->tmp, 0)
        || bly_vk_op_add(vk, self->x, 0, self->tmp, 0, self->x, 0, nt * ne))
        return -1;
    return 0;
}

static int
s_record_layers(bly_vk_model_t *self, size_t first, size_t end, uint32_t nt, uint32_t pos)
{
    for (size_t i = first; i < end; i++) {
        size_t at = i - self->w->layer_first;
        const s_layer_t *l = &self->w->layers[at];
        if (s_record_attention(self, l, &self->cache[at], nt, pos) || s_record_ffn(self, l, nt))
            return -1;
    }
    return 0;
}

//  Final norm of activation row `row` and the LM head into logits; argmax when asked.
static int
s_record_head(bly_vk_model_t *self, uint32_t row, bool argmax)
{
    const bly_model_hparams_t *hp = self->hp;
    const bly_vk_weight_t *out = hp->tied_output ? &self->w->tok_embd : &self->w->output;
    if (bly_vk_op_rmsnorm(self->vk, self->x, row * hp->n_embd, self->w->output_norm, self->xn, 0,
                          hp->n_embd, 1, hp->rms_eps)
        || bly_vk_op_matmul(self->vk, out, self->xn, 0, 1, &self->qs, self->logits, 0))
        return -1;
    if (argmax && bly_vk_op_argmax(self->vk, self->logits, 0, hp->n_vocab, self->argmax, 0))
        return -1;
    return 0;
}

static int
s_check_step(const bly_vk_model_t *self, size_t n_tokens, size_t pos)
{
    if (n_tokens == 0 || n_tokens > self->n_batch) {
        bly_log_error("vulkan: batch of %zu tokens is not in 1..%zu", n_tokens, self->n_batch);
        return -1;
    }
    if (pos > self->n_ctx || n_tokens > self->n_ctx - pos) {
        bly_log_error("vulkan: positions %zu..%zu exceed the KV cache of %zu", pos,
                      pos + n_tokens - 1, self->n_ctx);
        return -1;
    }
    return 0;
}

//  Submit what is recorded (or abandon it after a recording error).
static int
s_finish(bly_vk_model_t *self, int recorded)
{
    if (recorded)
        bly_vk_fail(self->vk);
    return bly_vk_submit(self->vk) || recorded ? -1 : 0;
}

int
bly_vk_model_run_layers(bly_vk_model_t *self, size_t first, size_t end, float *x,
                        size_t n_tokens, size_t pos)
{
    bly_assert(self);
    bly_assert(x);
    if (first < self->w->layer_first || end > self->w->layer_end || first >= end) {
        bly_log_error("vulkan: layers [%zu, %zu) are not served here ([%zu, %zu))", first, end,
                      self->w->layer_first, self->w->layer_end);
        return -1;
    }
    if (s_check_step(self, n_tokens, pos))
        return -1;
    uint64_t bytes = (uint64_t) n_tokens * self->hp->n_embd * sizeof(float);
    if (bly_vk_buf_write(self->x, 0, x, bytes) || bly_vk_begin(self->vk))
        return -1;
    int rc = s_record_layers(self, first, end, (uint32_t) n_tokens, (uint32_t) pos);
    if (s_finish(self, rc))
        return -1;
    return bly_vk_buf_read(self->x, 0, x, bytes);
}

int
bly_vk_model_head(bly_vk_model_t *self, const float *x, float *logits)
{
    bly_assert(self);
    bly_assert(x);
    bly_assert(logits);
    if (!self->w->head) {
        bly_log_error("vulkan: this context does not serve the head");
        return -1;
    }
    if (bly_vk_buf_write(self->x, 0, x, self->hp->n_embd * sizeof(float))
        || bly_vk_begin(self->vk))
        return -1;
    if (s_finish(self, s_record_head(self, 0, false)))
        return -1;
    return bly_vk_buf_read(self->logits, 0, logits, self->hp->n_vocab * sizeof(float));
}

//  One batch of bly_vk_model_eval: embed, layers, and the head when `last`.
static int
s_eval_batch(bly_vk_model_t *self, const int32_t *tokens, size_t n, size_t pos, bool last,
             bool argmax)
{
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t) tokens[i] >= self->hp->n_vocab) {
            bly_log_error("vulkan: token id %d is outside the vocabulary", tokens[i]);
            return -1;
        }
    if (bly_vk_buf_write(self->ids, 0, tokens, n * sizeof(int32_t)) || bly_vk_begin(self->vk))
        return -1;
    uint32_t nt = (uint32_t) n;
    int rc = bly_vk_op_get_rows(self->vk, &self->w->tok_embd, self->ids, nt, self->x, 0)
             || s_record_layers(self, 0, self->hp->n_layer, nt, (uint32_t) pos)
             || (last && s_record_head(self, nt - 1, argmax));
    return s_finish(self, rc);
}

int
bly_vk_model_eval(bly_vk_model_t *self, const int32_t *tokens, size_t n, size_t pos,
                  float *logits, int32_t *argmax)
{
    bly_assert(self);
    bly_assert(tokens);
    bly_assert(self->w->embed && self->w->head);
    bly_assert(self->w->layer_first == 0 && self->w->layer_end == self->hp->n_layer);
    if (n == 0 || pos > self->n_ctx || n > self->n_ctx - pos) {
        bly_log_error("vulkan: %zu tokens at position %zu do not fit the context of %zu", n,
                      pos, self->n_ctx);
        return -1;
    }
    for (size_t done = 0; done < n;) {
        size_t batch = n - done < self->n_batch ? n - done : self->n_batch;
        bool last = done + batch == n;
        if (s_eval_batch(self, tokens + done, batch, pos + done, last, argmax != NULL))
            return -1;
        done += batch;
    }
    if (logits
        && bly_vk_buf_read(self->logits, 0, logits, self->hp->n_vocab * sizeof(float)))
        return -1;
    uint32_t best[2];
    if (argmax && bly_vk_buf_read(self->argmax, 0, best, sizeof(best)))
        return -1;
    if (argmax)
        *argmax = (int32_t) best[0];
    return 0;
}
