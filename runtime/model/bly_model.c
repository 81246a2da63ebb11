/*  =========================================================================
    bly_model - Qwen3 and Llama transformer forward pass on the CPU
    ========================================================================= */

#include "bly_model.h"

#include "bly_kernels.h"
#include "bly_limits.h"
#include "bly_ref.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A weight matrix or vector inside the map.
typedef struct {
    bly_type_t type;      //  Element type.
    const void *data;     //  Into the map.
} s_weight_t;

//  One transformer block's tensors.
typedef struct {
    const float *attn_norm;   //  n_embd.
    const float *q_norm;      //  head_dim (qwen3 only).
    const float *k_norm;      //  head_dim (qwen3 only).
    const float *ffn_norm;    //  n_embd.
    s_weight_t wq;            //  n_embd -> n_head * head_dim.
    s_weight_t wk;            //  n_embd -> n_kv_head * head_dim.
    s_weight_t wv;            //  n_embd -> n_kv_head * head_dim.
    s_weight_t wo;            //  n_head * head_dim -> n_embd.
    s_weight_t gate;          //  n_embd -> n_ff.
    s_weight_t up;            //  n_embd -> n_ff.
    s_weight_t down;          //  n_ff -> n_embd.
} s_layer_t;

struct bly_model_t {
    bly_gguf_t *gguf;                 //  Owns the map.
    bly_model_hparams_t hp;           //  Hyperparameters.
    s_weight_t tok_embd;              //  n_embd x n_vocab.
    s_weight_t output;                //  n_embd -> n_vocab (token_embd when tied).
    const float *output_norm;         //  n_embd.
    s_layer_t *layers;                //  n_layer entries.
};

struct bly_model_ctx_t {
    const bly_model_t *model;   //  Borrowed.
    bly_pool_t *pool;           //  Kernel threads.
    size_t layer_first;         //  First layer served.
    size_t layer_end;           //  One past the last layer served.
    size_t n_ctx;               //  KV positions.
    size_t n_batch;             //  Tokens per batch.
    size_t kv_dim;              //  n_kv_head * head_dim.
    size_t q_dim;               //  n_head * head_dim.
    float *k_cache;             //  [layer - first][n_ctx][kv_dim].
    float *v_cache;             //  Same shape.
    float *xn;                  //  Normed activations, n_batch x n_embd.
    float *q;                   //  n_batch x q_dim.
    float *k;                   //  n_batch x kv_dim.
    float *v;                   //  n_batch x kv_dim.
    float *attn;                //  n_batch x q_dim.
    float *tmp;                 //  n_batch x n_embd.
    float *gate;                //  n_batch x n_ff.
    float *up;                  //  n_batch x n_ff.
    float *act;                 //  bly_model_eval's activations, n_batch x n_embd.
    float *scores;              //  Attention scores, n_threads x n_ctx.
    void *scratch;              //  Quantized activations for one matmul.
};

/* ---- Loading ----------------------------------------------------------- */

//  Read `<arch>.<key>` as u32 into *value; keeps *value (a default) when
//  absent and `required` is false.
static int
s_key_u32(const bly_gguf_t *gguf, const char *arch, const char *key, bool required,
          uint32_t max, uint32_t *value, char *error, size_t error_size)
{
    char name[128];
    snprintf(name, sizeof(name), "%s.%s", arch, key);
    if (bly_gguf_find_key(gguf, name) < 0) {
        if (!required)
            return 0;
        bly_error_set(error, error_size, "model: missing key %s", name);
        return -1;
    }
    if (bly_gguf_get_u32(gguf, name, value) != 0 || *value == 0 || *value > max) {
        bly_error_set(error, error_size, "model: key %s is not an integer in 1..%" PRIu32, name, max);
        return -1;
    }
    return 0;
}

static int
s_key_f32(const bly_gguf_t *gguf, const char *arch, const char *key, float *value,
          char *error, size_t error_size)
{
    char name[128];
    snprintf(name, sizeof(name), "%s.%s", arch, key);
    if (bly_gguf_find_key(gguf, name) < 0)
        return 0;   //  Keep the default.
    if (bly_gguf_get_f32(gguf, name, value) != 0 || !(*value > 0.0f) || *value > 1e12f) {
        bly_error_set(error, error_size, "model: key %s is not a positive float", name);
        return -1;
    }
    return 0;
}

static int
s_load_arch(bly_model_t *self, char *arch, size_t arch_size, char *error, size_t error_size)
{
    const char *value;
    size_t size;
    if (bly_gguf_get_str(self->gguf, "general.architecture", &value, &size) != 0) {
        bly_error_set(error, error_size, "model: missing key general.architecture");
        return -1;
    }
    if (size == 5 && memcmp(value, "qwen3", 5) == 0)
        self->hp.arch = BLY_ARCH_QWEN3;
    else if (size == 5 && memcmp(value, "llama", 5) == 0)
        self->hp.arch = BLY_ARCH_LLAMA;
    else {
        bly_error_set(error, error_size, "model: architecture '%.*s' is not supported (qwen3, llama)",
                (int) (size < 32 ? size : 32), value);
        return -1;
    }
    snprintf(arch, arch_size, "%.*s", (int) size, value);
    return 0;
}

static int
s_load_hparams(bly_model_t *self, char *error, size_t error_size)
{
    char arch[16];
    if (s_load_arch(self, arch, sizeof(arch), error, error_size) != 0)
        return -1;
    bly_model_hparams_t *hp = &self->hp;
    const bly_gguf_t *g = self->gguf;
    hp->n_ctx_train = 4096;
    hp->rope_base = 10000.0f;
    hp->rms_eps = 1e-6f;
    if (s_key_u32(g, arch, "block_count", true, BLY_MODEL_LAYERS_MAX, &hp->n_layer, error,
                  error_size)
        || s_key_u32(g, arch, "embedding_length", true, BLY_MODEL_EMBD_MAX, &hp->n_embd, error,
                     error_size)
        || s_key_u32(g, arch, "feed_forward_length", true, BLY_MODEL_FF_MAX, &hp->n_ff, error,
                     error_size)
        || s_key_u32(g, arch, "attention.head_count", true, BLY_MODEL_HEADS_MAX, &hp->n_head,
                     error, error_size))
        return -1;
    hp->n_kv_head = hp->n_head;
    hp->head_dim = hp->n_embd / hp->n_head;
    if (s_key_u32(g, arch, "attention.head_count_kv", false, BLY_MODEL_HEADS_MAX,
                  &hp->n_kv_head, error, error_size)
        || s_key_u32(g, arch, "attention.key_length", false, BLY_MODEL_HEAD_DIM_MAX,
                     &hp->head_dim, error, error_size)
        || s_key_u32(g, arch, "context_length", false, UINT32_MAX, &hp->n_ctx_train, error,
                     error_size)
        || s_key_f32(g, arch, "rope.freq_base", &hp->rope_base, error, error_size)
        || s_key_f32(g, arch, "attention.layer_norm_rms_epsilon", &hp->rms_eps, error,
                     error_size))
        return -1;
    uint32_t value_length = hp->head_dim;
    if (s_key_u32(g, arch, "attention.value_length", false, BLY_MODEL_HEAD_DIM_MAX,
                  &value_length, error, error_size))
        return -1;
    if (hp->n_head % hp->n_kv_head != 0 || hp->head_dim % 2 != 0 || hp->head_dim == 0
        || hp->head_dim > BLY_MODEL_HEAD_DIM_MAX || value_length != hp->head_dim) {
        bly_error_set(error, error_size,
                "model: heads %" PRIu32 "/%" PRIu32 " and head size %" PRIu32 "/%" PRIu32
                " are inconsistent (need n_head %% n_kv_head == 0, an even head size, "
                "key_length == value_length)",
                hp->n_head, hp->n_kv_head, hp->head_dim, value_length);
        return -1;
    }
    return 0;
}

//  Find `name`, check its type and 2-D (or 1-D when ne1 == 0) shape.
static int
s_tensor(bly_model_t *self, const char *name, uint64_t ne0, uint64_t ne1, bool f32_only,
         s_weight_t *out, char *error, size_t error_size)
{
    const bly_gguf_tensor_t *t = bly_gguf_tensor_find(self->gguf, name);
    if (!t) {
        bly_error_set(error, error_size, "model: missing tensor %s", name);
        return -1;
    }
    if (!bly_ref_type_supported(t->type) || (f32_only && t->type != BLY_TYPE_F32)) {
        bly_error_set(error, error_size, "model: tensor %s has type %s, need %s", name,
                bly_type_name(t->type),
                f32_only ? "F32" : "F32, F16, BF16, Q8_0, Q4_K or Q6_K");
        return -1;
    }
    uint64_t want1 = ne1 ? ne1 : 1;
    if (t->ne[0] != ne0 || t->ne[1] != want1 || t->ne[2] != 1 || t->ne[3] != 1) {
        bly_error_set(error, error_size,
                "model: tensor %s has shape [%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
                "], need [%" PRIu64 ", %" PRIu64 "]",
                name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], ne0, want1);
        return -1;
    }
    if ((uintptr_t) t->data % (t->type == BLY_TYPE_F32 ? 4 : 2) != 0) {
        bly_error_set(error, error_size, "model: tensor %s data is not aligned for %s", name,
                bly_type_name(t->type));
        return -1;
    }
    if (ne0 % bly_ref_block_elements(t->type) != 0
        || t->size != bly_ref_row_size(t->type, ne0) * want1) {
        bly_error_set(error, error_size, "model: tensor %s rows do not fit its %s blocks", name,
                bly_type_name(t->type));
        return -1;
    }
    out->type = t->type;
    out->data = t->data;
    self->hp.weight_bytes += t->size;
    return 0;
}

static int
s_layer_tensor(bly_model_t *self, size_t layer, const char *what, uint64_t ne0, uint64_t ne1,
               bool f32_only, s_weight_t *out, char *error, size_t error_size)
{
    char name[96];
    snprintf(name, sizeof(name), "blk.%zu.%s.weight", layer, what);
    return s_tensor(self, name, ne0, ne1, f32_only, out, error, error_size);
}

static int
s_load_layer(bly_model_t *self, size_t i, char *error, size_t error_size)
{
    const bly_model_hparams_t *hp = &self->hp;
    s_layer_t *l = &self->layers[i];
    uint64_t q_dim = (uint64_t) hp->n_head * hp->head_dim;
    uint64_t kv_dim = (uint64_t) hp->n_kv_head * hp->head_dim;
    s_weight_t an, fn, qn = {0}, kn = {0};
    if (s_layer_tensor(self, i, "attn_norm", hp->n_embd, 0, true, &an, error, error_size)
        || s_layer_tensor(self, i, "ffn_norm", hp->n_embd, 0, true, &fn, error, error_size)
        || s_layer_tensor(self, i, "attn_q", hp->n_embd, q_dim, false, &l->wq, error,
                          error_size)
        || s_layer_tensor(self, i, "attn_k", hp->n_embd, kv_dim, false, &l->wk, error,
                          error_size)
        || s_layer_tensor(self, i, "attn_v", hp->n_embd, kv_dim, false, &l->wv, error,
                          error_size)
        || s_layer_tensor(self, i, "attn_output", q_dim, hp->n_embd, false, &l->wo, error,
                          error_size)
        || s_layer_tensor(self, i, "ffn_gate", hp->n_embd, hp->n_ff, false, &l->gate, error,
                          error_size)
        || s_layer_tensor(self, i, "ffn_up", hp->n_embd, hp->n_ff, false, &l->up, error,
                          error_size)
        || s_layer_tensor(self, i, "ffn_down", hp->n_ff, hp->n_embd, false, &l->down, error,
                          error_size))
        return -1;
    if (hp->arch == BLY_ARCH_QWEN3
        && (s_layer_tensor(self, i, "attn_q_norm", hp->head_dim, 0, true, &qn, error,
                           error_size)
            || s_layer_tensor(self, i, "attn_k_norm", hp->head_dim, 0, true, &kn, error,
                              error_size)))
        return -1;
    l->attn_norm = an.data;
    l->ffn_norm = fn.data;
    l->q_norm = qn.data;
    l->k_norm = kn.data;
    return 0;
}

static int
s_load_tensors(bly_model_t *self, char *error, size_t error_size)
{
    bly_model_hparams_t *hp = &self->hp;
    const bly_gguf_tensor_t *emb = bly_gguf_tensor_find(self->gguf, "token_embd.weight");
    if (!emb || emb->ne[1] == 0 || emb->ne[1] > BLY_MODEL_VOCAB_MAX) {
        bly_error_set(error, error_size, "model: tensor token_embd.weight is missing or its "
                                   "vocabulary is not in 1..%u", BLY_MODEL_VOCAB_MAX);
        return -1;
    }
    hp->n_vocab = (uint32_t) emb->ne[1];
    s_weight_t norm;
    if (s_tensor(self, "token_embd.weight", hp->n_embd, hp->n_vocab, false, &self->tok_embd,
                 error, error_size)
        || s_tensor(self, "output_norm.weight", hp->n_embd, 0, true, &norm, error, error_size))
        return -1;
    self->output_norm = norm.data;
    hp->tied_output = bly_gguf_tensor_find(self->gguf, "output.weight") == NULL;
    if (hp->tied_output)
        self->output = self->tok_embd;
    else if (s_tensor(self, "output.weight", hp->n_embd, hp->n_vocab, false, &self->output,
                      error, error_size))
        return -1;
    self->layers = calloc(hp->n_layer, sizeof(*self->layers));
    if (!self->layers) {
        bly_error_set(error, error_size, "model: out of memory");
        return -1;
    }
    for (size_t i = 0; i < hp->n_layer; i++)
        if (s_load_layer(self, i, error, error_size) != 0)
            return -1;
    return 0;
}

bly_model_t *
bly_model_load(const char *path, char *error, size_t error_size)
{
    bly_assert(path);
    bly_gguf_t *gguf = bly_gguf_open(path, error, error_size);
    return gguf ? bly_model_from_gguf(&gguf, error, error_size) : NULL;
}

bly_model_t *
bly_model_from_gguf(bly_gguf_t **gguf_p, char *error, size_t error_size)
{
    bly_assert(gguf_p);
    bly_assert(*gguf_p);
    bly_model_t *self = calloc(1, sizeof(*self));
    if (!self) {
        bly_gguf_destroy(gguf_p);
        bly_error_set(error, error_size, "model: out of memory");
        return NULL;
    }
    self->gguf = *gguf_p;
    *gguf_p = NULL;
    if (s_load_hparams(self, error, error_size) != 0
        || s_load_tensors(self, error, error_size) != 0) {
        bly_model_destroy(&self);
        return NULL;
    }
    return self;
}

void
bly_model_destroy(bly_model_t **self_p)
{
    bly_assert(self_p);
    bly_model_t *self = *self_p;
    if (!self)
        return;
    free(self->layers);
    bly_gguf_destroy(&self->gguf);
    free(self);
    *self_p = NULL;
}

const bly_model_hparams_t *
bly_model_hparams(const bly_model_t *self)
{
    bly_assert(self);
    return &self->hp;
}

const bly_gguf_t *
bly_model_gguf(const bly_model_t *self)
{
    bly_assert(self);
    return self->gguf;
}

int
bly_model_embed(const bly_model_t *self, const int32_t *tokens, size_t n, float *out)
{
    bly_assert(self);
    bly_assert(tokens);
    bly_assert(out);
    size_t row = bly_ref_row_size(self->tok_embd.type, self->hp.n_embd);
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || (uint32_t) tokens[i] >= self->hp.n_vocab) {
            bly_log_error("model: token id %" PRId32 " is outside the vocabulary of %" PRIu32,
                          tokens[i], self->hp.n_vocab);
            return -1;
        }
        bly_ref_dequantize_row(self->tok_embd.type,
                               (const uint8_t *) self->tok_embd.data + (size_t) tokens[i] * row,
                               out + i * self->hp.n_embd, self->hp.n_embd);
    }
    return 0;
}

/* ---- Contexts ---------------------------------------------------------- */

//  calloc of n floats with an overflow check; adds the bytes to *total.
static float *
s_floats(size_t n, uint64_t *total)
{
    if (n == 0 || n > SIZE_MAX / sizeof(float))
        return NULL;
    *total += n * sizeof(float);
    return calloc(n, sizeof(float));
}

static int
s_ctx_check(const bly_model_t *model, size_t first, size_t end, size_t n_ctx, size_t n_batch,
            size_t n_threads, char *error, size_t error_size)
{
    const bly_model_hparams_t *hp = &model->hp;
    if (first >= end || end > hp->n_layer) {
        bly_error_set(error, error_size, "model: layer range [%zu, %zu) is not inside [0, %" PRIu32 ")",
                first, end, hp->n_layer);
        return -1;
    }
    if (n_ctx == 0 || n_ctx > BLY_MODEL_CTX_MAX || n_batch == 0 || n_batch > BLY_MODEL_BATCH_MAX
        || n_batch > n_ctx) {
        bly_error_set(error, error_size, "model: context %zu (1..%d) or batch %zu (1..%d, <= context)"
                " out of range", n_ctx, BLY_MODEL_CTX_MAX, n_batch, BLY_MODEL_BATCH_MAX);
        return -1;
    }
    if (n_threads == 0 || n_threads > BLY_THREADS_MAX) {
        bly_error_set(error, error_size, "model: threads %zu not in 1..%d", n_threads, BLY_THREADS_MAX);
        return -1;
    }
    uint64_t kv = 2ull * (end - first) * n_ctx * hp->n_kv_head * hp->head_dim * sizeof(float);
    if (kv > BLY_MODEL_KV_BYTES_MAX) {
        bly_error_set(error, error_size, "model: KV cache of %" PRIu64 " MiB for %zu positions exceeds "
                "the budget of %llu MiB", kv >> 20, n_ctx, BLY_MODEL_KV_BYTES_MAX >> 20);
        return -1;
    }
    return 0;
}

bly_model_ctx_t *
bly_model_ctx_new(const bly_model_t *model, size_t layer_first, size_t layer_end, size_t n_ctx,
                  size_t n_batch, size_t n_threads, char *error, size_t error_size)
{
    bly_assert(model);
    if (s_ctx_check(model, layer_first, layer_end, n_ctx, n_batch, n_threads, error,
                    error_size) != 0)
        return NULL;
    const bly_model_hparams_t *hp = &model->hp;
    bly_model_ctx_t *self = calloc(1, sizeof(*self));
    if (!self)
        goto out_nomem;
    *self = (bly_model_ctx_t) {.model = model, .layer_first = layer_first,
                               .layer_end = layer_end, .n_ctx = n_ctx, .n_batch = n_batch,
                               .kv_dim = (size_t) hp->n_kv_head * hp->head_dim,
                               .q_dim = (size_t) hp->n_head * hp->head_dim};
    uint64_t total = 0;
    size_t kv = (layer_end - layer_first) * n_ctx * self->kv_dim;
    size_t widest = hp->n_embd > self->q_dim ? hp->n_embd : self->q_dim;
    widest = widest > hp->n_ff ? widest : hp->n_ff;
    self->k_cache = s_floats(kv, &total);
    self->v_cache = s_floats(kv, &total);
    self->xn = s_floats(n_batch * hp->n_embd, &total);
    self->q = s_floats(n_batch * self->q_dim, &total);
    self->k = s_floats(n_batch * self->kv_dim, &total);
    self->v = s_floats(n_batch * self->kv_dim, &total);
    self->attn = s_floats(n_batch * self->q_dim, &total);
    self->tmp = s_floats(n_batch * hp->n_embd, &total);
    self->gate = s_floats(n_batch * hp->n_ff, &total);
    self->up = s_floats(n_batch * hp->n_ff, &total);
    self->act = s_floats(n_batch * hp->n_embd, &total);
    self->scores = s_floats(n_threads * n_ctx, &total);
    //  Widest activation row as F32: no vec-dot type takes more.
    self->scratch = s_floats(n_batch * widest, &total);
    self->pool = bly_pool_new(n_threads);
    if (!self->k_cache || !self->v_cache || !self->xn || !self->q || !self->k || !self->v
        || !self->attn || !self->tmp || !self->gate || !self->up || !self->act
        || !self->scores || !self->scratch || !self->pool)
        goto out_nomem;
    bly_log_debug("model: context layers [%zu, %zu), %zu positions, %" PRIu64 " MiB", layer_first,
                  layer_end, n_ctx, total >> 20);
    return self;
out_nomem:
    bly_error_set(error, error_size, "model: out of memory for a context of %zu positions", n_ctx);
    bly_model_ctx_destroy(&self);
    return NULL;
}

void
bly_model_ctx_destroy(bly_model_ctx_t **self_p)
{
    bly_assert(self_p);
    bly_model_ctx_t *self = *self_p;
    if (!self)
        return;
    bly_pool_destroy(&self->pool);
    free(self->scratch);
    free(self->scores);
    free(self->act);
    free(self->up);
    free(self->gate);
    free(self->tmp);
    free(self->attn);
    free(self->v);
    free(self->k);
    free(self->q);
    free(self->xn);
    free(self->v_cache);
    free(self->k_cache);
    free(self);
    *self_p = NULL;
}

uint64_t
bly_model_ctx_kv_bytes(const bly_model_ctx_t *self)
{
    bly_assert(self);
    return 2ull * (self->layer_end - self->layer_first) * self->n_ctx * self->kv_dim
           * sizeof(float);
}

size_t
bly_model_ctx_n_ctx(const bly_model_ctx_t *self)
{
    bly_assert(self);
    return self->n_ctx;
}

size_t
bly_model_ctx_n_batch(const bly_model_ctx_t *self)
{
    bly_assert(self);
    return self->n_batch;
}

/* ---- Forward pass ------------------------------------------------------ */

static void
s_matmul(bly_model_ctx_t *self, const s_weight_t *w, size_t n_in, size_t n_out, const float *x,
         size_t n_tokens, float *y)
{
    bly_kern_matmul(self->pool, w->type, w->data, n_in, n_out, x, n_tokens, y, self->scratch);
}

//  Matmuls of one input: one pass when the weight types agree.
static void
s_matmul_group(bly_model_ctx_t *self, const s_weight_t *const *w, const size_t *n_out,
               float *const *y, size_t n, size_t n_in, const float *x, size_t n_tokens)
{
    bly_kern_mat_t mats[BLY_KERN_MATS_MAX];
    bool same = true;
    for (size_t i = 0; i < n; i++) {
        mats[i] = (bly_kern_mat_t) {.type = w[i]->type, .w = w[i]->data, .n_out = n_out[i],
                                    .y = y[i]};
        same = same && w[i]->type == w[0]->type;
    }
    if (same) {
        bly_kern_matmul_multi(self->pool, mats, n, n_in, x, n_tokens, self->scratch);
        return;
    }
    for (size_t i = 0; i < n; i++)
        bly_kern_matmul_multi(self->pool, &mats[i], 1, n_in, x, n_tokens, self->scratch);
}

//  A row of a batch that mixes sessions: its own context (KV cache) and position.
typedef struct {
    bly_model_ctx_t *ctx;
    size_t pos;
} s_seq_t;

//  This layer's key and value cache of a context.
static void
s_layer_cache(bly_model_ctx_t *ctx, size_t layer, float **k_cache, float **v_cache)
{
    size_t offset = (layer - ctx->layer_first) * ctx->n_ctx * ctx->kv_dim;
    *k_cache = ctx->k_cache + offset;
    *v_cache = ctx->v_cache + offset;
}

//  Row-wise work of a layer, one token at a time: each row is computed whole
//  by one thread, so the split over the pool does not change a bit.
typedef enum {
    S_ROWS_ATTN_NORM,   //  xn = rmsnorm(x) with attn_norm.
    S_ROWS_QK,          //  q/k norm (qwen3), RoPE, new keys and values into the cache.
    S_ROWS_FFN_NORM,    //  xn = rmsnorm(x) with ffn_norm.
    S_ROWS_SWIGLU,      //  gate = silu(gate) * up.
} s_rows_kind_t;

typedef struct {
    bly_model_ctx_t *self;
    const s_layer_t *l;
    const float *x;       //  Layer input/residual rows (the norms).
    float *k_cache;       //  This layer's cache (S_ROWS_QK).
    float *v_cache;
    size_t n_tokens;
    size_t pos;           //  Position of row 0.
    s_rows_kind_t kind;
    const s_seq_t *seqs;  //  NULL, or row t's own session and position (S_ROWS_QK).
    size_t layer;
} s_rows_t;

static void
s_qk_prepare_one(bly_model_ctx_t *self, const s_layer_t *l, float *k_cache, float *v_cache,
                 size_t t, size_t pos)
{
    const bly_model_hparams_t *hp = &self->model->hp;
    size_t hd = hp->head_dim;
    float *q = self->q + t * self->q_dim, *k = self->k + t * self->kv_dim;
    if (hp->arch == BLY_ARCH_QWEN3) {
        for (size_t h = 0; h < hp->n_head; h++)
            bly_ref_rmsnorm(q + h * hd, q + h * hd, l->q_norm, hd, hp->rms_eps);
        for (size_t h = 0; h < hp->n_kv_head; h++)
            bly_ref_rmsnorm(k + h * hd, k + h * hd, l->k_norm, hd, hp->rms_eps);
        bly_ref_rope_neox(q, hp->n_head, hd, (int64_t) (pos + t), hp->rope_base);
        bly_ref_rope_neox(k, hp->n_kv_head, hd, (int64_t) (pos + t), hp->rope_base);
    } else {
        bly_ref_rope_normal(q, hp->n_head, hd, (int64_t) (pos + t), hp->rope_base);
        bly_ref_rope_normal(k, hp->n_kv_head, hd, (int64_t) (pos + t), hp->rope_base);
    }
    memcpy(k_cache + (pos + t) * self->kv_dim, k, self->kv_dim * sizeof(float));
    memcpy(v_cache + (pos + t) * self->kv_dim, self->v + t * self->kv_dim,
           self->kv_dim * sizeof(float));
}

static void
s_rows_one(const s_rows_t *job, size_t t)
{
    bly_model_ctx_t *self = job->self;
    const bly_model_hparams_t *hp = &self->model->hp;
    size_t n_embd = hp->n_embd, n_ff = hp->n_ff;
    switch (job->kind) {
    case S_ROWS_ATTN_NORM:
        bly_ref_rmsnorm(self->xn + t * n_embd, job->x + t * n_embd, job->l->attn_norm, n_embd,
                        hp->rms_eps);
        break;
    case S_ROWS_QK:
        if (job->seqs) {
            //  Row t of the shared buffers goes to its own session's cache at its position.
            float *kc, *vc;
            s_layer_cache(job->seqs[t].ctx, job->layer, &kc, &vc);
            s_qk_prepare_one(self, job->l, kc, vc, t, job->seqs[t].pos - t);
        } else {
            s_qk_prepare_one(self, job->l, job->k_cache, job->v_cache, t, job->pos);
        }
        break;
    case S_ROWS_FFN_NORM:
        bly_ref_rmsnorm(self->xn + t * n_embd, job->x + t * n_embd, job->l->ffn_norm, n_embd,
                        hp->rms_eps);
        break;
    case S_ROWS_SWIGLU:
        bly_ref_swiglu(self->gate + t * n_ff, self->gate + t * n_ff, self->up + t * n_ff, n_ff);
        break;
    }
}

static void
s_rows_worker(void *arg, size_t index, size_t n_threads)
{
    const s_rows_t *job = arg;
    (void) index;
    (void) n_threads;
    for (;;) {
        size_t t = bly_pool_next_chunk(job->self->pool);
        if (t >= job->n_tokens)
            break;
        s_rows_one(job, t);
    }
}

//  One kind of row work over every token: on the pool for a batch (in a
//  prefill these ran on one thread while the others waited), inline for one.
static void
s_rows(bly_model_ctx_t *self, s_rows_kind_t kind, const s_layer_t *l, const float *x,
       float *k_cache, float *v_cache, size_t n_tokens, size_t pos, const s_seq_t *seqs,
       size_t layer)
{
    s_rows_t job = {.self = self, .l = l, .x = x, .k_cache = k_cache, .v_cache = v_cache,
                    .n_tokens = n_tokens, .pos = pos, .kind = kind, .seqs = seqs,
                    .layer = layer};
    if (n_tokens < 2 || bly_pool_size(self->pool) < 2) {
        for (size_t t = 0; t < n_tokens; t++)
            s_rows_one(&job, t);
        return;
    }
    bly_pool_reset_chunks(self->pool);
    bly_pool_run_dynamic(self->pool, s_rows_worker, &job);
}

//  One layer on n_tokens rows in the buffers of `self`. seqs NULL: the rows are positions
//  pos.. of `self`'s session; else row t is one decode token of seqs[t] (its own cache and
//  position). Products and row work do not depend on the other rows, so a row's result is
//  the same bits whichever rows share its batch.
static void
s_layer(bly_model_ctx_t *self, size_t layer, float *x, size_t n_tokens, size_t pos,
        const s_seq_t *seqs)
{
    const bly_model_hparams_t *hp = &self->model->hp;
    const s_layer_t *l = &self->model->layers[layer];
    size_t n_embd = hp->n_embd;
    float *k_cache, *v_cache;
    s_layer_cache(self, layer, &k_cache, &v_cache);
    s_rows(self, S_ROWS_ATTN_NORM, l, x, NULL, NULL, n_tokens, pos, NULL, layer);
    const s_weight_t *qkv[3] = {&l->wq, &l->wk, &l->wv};
    const size_t qkv_out[3] = {self->q_dim, self->kv_dim, self->kv_dim};
    float *const qkv_y[3] = {self->q, self->k, self->v};
    s_matmul_group(self, qkv, qkv_out, qkv_y, 3, n_embd, self->xn, n_tokens);
    s_rows(self, S_ROWS_QK, l, x, k_cache, v_cache, n_tokens, pos, seqs, layer);
    if (!seqs) {
        bly_kern_attention(self->pool, self->attn, self->q, k_cache, v_cache, hp->n_head,
                           hp->n_kv_head, hp->head_dim, n_tokens, pos, self->scores,
                           self->n_ctx);
    } else {
        for (size_t t = 0; t < n_tokens; t++) {
            float *kc, *vc;
            s_layer_cache(seqs[t].ctx, layer, &kc, &vc);
            bly_kern_attention(self->pool, self->attn + t * self->q_dim,
                               self->q + t * self->q_dim, kc, vc, hp->n_head, hp->n_kv_head,
                               hp->head_dim, 1, seqs[t].pos, self->scores, self->n_ctx);
        }
    }
    s_matmul(self, &l->wo, self->q_dim, n_embd, self->attn, n_tokens, self->tmp);
    bly_ref_add(x, self->tmp, n_tokens * n_embd);
    s_rows(self, S_ROWS_FFN_NORM, l, x, NULL, NULL, n_tokens, pos, NULL, layer);
    const s_weight_t *ffn[2] = {&l->gate, &l->up};
    const size_t ffn_out[2] = {hp->n_ff, hp->n_ff};
    float *const ffn_y[2] = {self->gate, self->up};
    s_matmul_group(self, ffn, ffn_out, ffn_y, 2, n_embd, self->xn, n_tokens);
    s_rows(self, S_ROWS_SWIGLU, l, x, NULL, NULL, n_tokens, pos, NULL, layer);
    s_matmul(self, &l->down, hp->n_ff, n_embd, self->gate, n_tokens, self->tmp);
    bly_ref_add(x, self->tmp, n_tokens * n_embd);
}

int
bly_model_run_layers(bly_model_ctx_t *self, size_t first, size_t end, float *x, size_t n_tokens,
                     size_t pos)
{
    bly_assert(self);
    bly_assert(x);
    if (first < self->layer_first || end > self->layer_end || first >= end) {
        bly_log_error("model: layers [%zu, %zu) are not served by this context ([%zu, %zu))",
                      first, end, self->layer_first, self->layer_end);
        return -1;
    }
    if (n_tokens == 0 || n_tokens > self->n_batch) {
        bly_log_error("model: batch of %zu tokens is not in 1..%zu", n_tokens, self->n_batch);
        return -1;
    }
    if (pos > self->n_ctx || n_tokens > self->n_ctx - pos) {
        bly_log_error("model: positions %zu..%zu exceed the KV cache of %zu", pos,
                      pos + n_tokens - 1, self->n_ctx);
        return -1;
    }
    for (size_t layer = first; layer < end; layer++)
        s_layer(self, layer, x, n_tokens, pos, NULL);
    return 0;
}

int
bly_model_run_layers_multi(bly_model_ctx_t *const *ctxs, const size_t *pos, size_t n,
                           size_t first, size_t end, float *x)
{
    bly_assert(ctxs);
    bly_assert(pos);
    bly_assert(x);
    bly_model_ctx_t *self = ctxs[0];
    if (n == 0 || n > self->n_batch || n > BLY_MODEL_BATCH_MAX) {
        bly_log_error("model: %zu sessions in one batch is not in 1..%zu", n, self->n_batch);
        return -1;
    }
    if (first < self->layer_first || end > self->layer_end || first >= end) {
        bly_log_error("model: layers [%zu, %zu) are not served by this context ([%zu, %zu))",
                      first, end, self->layer_first, self->layer_end);
        return -1;
    }
    s_seq_t seqs[BLY_MODEL_BATCH_MAX];
    for (size_t t = 0; t < n; t++) {
        const bly_model_ctx_t *c = ctxs[t];
        //  Attention runs on the first context's threads and score rows.
        if (c->model != self->model || c->layer_first != self->layer_first
            || c->layer_end != self->layer_end || c->n_ctx != self->n_ctx
            || bly_pool_size(c->pool) != bly_pool_size(self->pool)) {
            bly_log_error("model: session %zu of a batch has another model, range, context "
                          "size or thread count", t);
            return -1;
        }
        for (size_t u = 0; u < t; u++) {
            if (ctxs[u] == c) {
                bly_log_error("model: session %zu appears twice in one batch", t);
                return -1;
            }
        }
        if (pos[t] >= c->n_ctx) {
            bly_log_error("model: position %zu exceeds the KV cache of %zu", pos[t], c->n_ctx);
            return -1;
        }
        seqs[t] = (s_seq_t) {.ctx = ctxs[t], .pos = pos[t]};
    }
    for (size_t layer = first; layer < end; layer++)
        s_layer(self, layer, x, n, 0, seqs);
    return 0;
}

int
bly_model_head(bly_model_ctx_t *self, const float *x, float *logits)
{
    return bly_model_head_rows(self, x, 1, logits);
}

int
bly_model_head_rows(bly_model_ctx_t *self, const float *x, size_t n, float *logits)
{
    bly_assert(self);
    bly_assert(x);
    bly_assert(logits);
    const bly_model_hparams_t *hp = &self->model->hp;
    if (n == 0 || n > self->n_batch) {
        bly_log_error("model: %zu head rows is not in 1..%zu", n, self->n_batch);
        return -1;
    }
    for (size_t t = 0; t < n; t++)
        bly_ref_rmsnorm(self->xn + t * hp->n_embd, x + t * hp->n_embd, self->model->output_norm,
                        hp->n_embd, hp->rms_eps);
    s_matmul(self, &self->model->output, hp->n_embd, hp->n_vocab, self->xn, n, logits);
    return 0;
}

int
bly_model_eval(bly_model_ctx_t *self, const int32_t *tokens, size_t n, size_t pos,
               float *logits)
{
    bly_assert(self);
    bly_assert(tokens);
    const bly_model_hparams_t *hp = &self->model->hp;
    bly_assert(self->layer_first == 0);
    bly_assert(self->layer_end == hp->n_layer);
    if (n == 0 || pos > self->n_ctx || n > self->n_ctx - pos) {
        bly_log_error("model: %zu tokens at position %zu do not fit the context of %zu", n, pos,
                      self->n_ctx);
        return -1;
    }
    size_t done = 0;
    while (done < n) {
        size_t batch = n - done < self->n_batch ? n - done : self->n_batch;
        if (bly_model_embed(self->model, tokens + done, batch, self->act) != 0
            || bly_model_run_layers(self, 0, hp->n_layer, self->act, batch, pos + done) != 0)
            return -1;
        done += batch;
        if (done == n && logits)
            return bly_model_head(self, self->act + (batch - 1) * hp->n_embd, logits);
    }
    return 0;
}
