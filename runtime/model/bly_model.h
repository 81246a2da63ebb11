/*  =========================================================================
    bly_model - Qwen3 and Llama transformer forward pass on the CPU

    A model is a GGUF file mapped read-only: weights are used in place,
    never copied. Hyperparameters come from the file (`qwen3.*` or
    `llama.*` keys); every tensor's type and shape is checked against them
    at load, with an error naming the tensor.

    The forward pass is split into stages so a shard can run any contiguous
    range of layers and hand activations on:
        bly_model_embed       tokens -> activations (n_tokens x n_embd floats)
        bly_model_run_layers  layers [first, end) in place on activations
        bly_model_head        one activation row -> logits (n_vocab floats)
    A context (bly_model_ctx_t) holds everything one session needs: the KV
    cache of the layers it serves, every work buffer and a thread pool, all
    allocated at creation. The forward pass allocates nothing.

    Architectures: qwen3 (per-head RMSNorm of q and k, NeoX RoPE) and llama
    (no q/k norm, the normal RoPE layout, as llama.cpp's converter permutes
    q/k for). Both: RMSNorm, GQA attention, SwiGLU, tied or separate output.
    Quantized weights multiply activations quantized as llama.cpp does
    (see bly_ref.h), so logits agree with llama.cpp.
    ========================================================================= */

#ifndef BLY_MODEL_H_INCLUDED
#define BLY_MODEL_H_INCLUDED

#include "bly_gguf.h"
#include "bly_log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    BLY_ARCH_QWEN3 = 0,
    BLY_ARCH_LLAMA = 1,
} bly_arch_t;

//  Hyperparameters, plain data.
typedef struct {
    bly_arch_t arch;          //  Architecture.
    uint32_t n_layer;         //  Transformer blocks.
    uint32_t n_embd;          //  Model width.
    uint32_t n_ff;            //  Feed-forward width.
    uint32_t n_head;          //  Query heads.
    uint32_t n_kv_head;       //  Key/value heads (GQA).
    uint32_t head_dim;        //  Elements per head (key_length; may differ from n_embd/n_head).
    uint32_t n_vocab;         //  Rows of the token embedding.
    uint32_t n_ctx_train;     //  context_length from the file.
    float rope_base;          //  rope.freq_base.
    float rms_eps;            //  layer_norm_rms_epsilon.
    bool tied_output;         //  Logits use token_embd (no output.weight).
    uint64_t weight_bytes;    //  Bytes of all tensors the forward pass reads.
} bly_model_hparams_t;

typedef struct bly_model_t bly_model_t;
typedef struct bly_model_ctx_t bly_model_ctx_t;

//  Open a GGUF model and validate it. Returns NULL and writes a one-line
//  reason into `error` when the file, a key or a tensor is wrong.
BLY_MUST_USE bly_model_t *bly_model_load(const char *path, char *error, size_t error_size);

//  The same from an open GGUF, which the model takes over (*gguf_p is set
//  to NULL, and destroyed on failure too).
BLY_MUST_USE bly_model_t *bly_model_from_gguf(bly_gguf_t **gguf_p, char *error,
                                              size_t error_size);

//  Unmap and free. Harmless on NULL *self_p. Contexts must be destroyed first.
void bly_model_destroy(bly_model_t **self_p);

//  Borrowed hyperparameters.
const bly_model_hparams_t *bly_model_hparams(const bly_model_t *self);

//  The underlying GGUF (for the tokenizer), borrowed.
const bly_gguf_t *bly_model_gguf(const bly_model_t *self);

//  Dequantize the embedding rows of `n` tokens into out (n x n_embd).
//  Returns 0, or -1 when a token id is outside the vocabulary.
BLY_MUST_USE int bly_model_embed(const bly_model_t *self, const int32_t *tokens, size_t n,
                                 float *out);

//  Create a context serving layers [layer_first, layer_end) with a KV cache
//  of n_ctx positions, batches of up to n_batch tokens and n_threads
//  threads. Returns NULL with a reason in `error` when an argument is out
//  of range or the KV cache exceeds BLY_MODEL_KV_BYTES_MAX.
BLY_MUST_USE bly_model_ctx_t *bly_model_ctx_new(const bly_model_t *model, size_t layer_first,
                                                size_t layer_end, size_t n_ctx, size_t n_batch,
                                                size_t n_threads, char *error,
                                                size_t error_size);

//  Free the context. Harmless on NULL *self_p.
void bly_model_ctx_destroy(bly_model_ctx_t **self_p);

//  Bytes of KV cache the context holds.
uint64_t bly_model_ctx_kv_bytes(const bly_model_ctx_t *self);

//  KV positions and batch size of the context.
size_t bly_model_ctx_n_ctx(const bly_model_ctx_t *self);
size_t bly_model_ctx_n_batch(const bly_model_ctx_t *self);

//  Run layers [first, end) on `n_tokens` activation rows (n_tokens x
//  n_embd, updated in place) at positions pos..pos+n_tokens-1, writing
//  their keys and values into the cache; row t attends to cache positions
//  0..pos+t of earlier calls and this one. Returns 0, or -1 (logged) when
//  the layers are not served by this context, n_tokens is 0 or above
//  n_batch, or pos + n_tokens exceeds n_ctx.
BLY_MUST_USE int bly_model_run_layers(bly_model_ctx_t *self, size_t first, size_t end, float *x,
                                      size_t n_tokens, size_t pos);

//  One decode token for each of n sessions in one pass (a shard batching the sessions
//  that wait on it): row t of x (n x n_embd, updated in place) is the token of ctxs[t] at
//  position pos[t]; its key and value go into ctxs[t]'s cache and it attends to ctxs[t]'s
//  positions 0..pos[t]. The weights are read once for all rows, and every row's result is
//  bit-identical to bly_model_run_layers on its own context. The buffers and threads of
//  ctxs[0] are used, so every context must serve the same model, layers, n_ctx and thread
//  count; n <= ctxs[0]'s n_batch; no context twice. Returns 0 or -1 (logged).
BLY_MUST_USE int bly_model_run_layers_multi(bly_model_ctx_t *const *ctxs, const size_t *pos,
                                            size_t n, size_t first, size_t end, float *x);

//  Final RMSNorm and output projection of one activation row (n_embd,
//  left unchanged) into logits (n_vocab floats). Returns 0.
BLY_MUST_USE int bly_model_head(bly_model_ctx_t *self, const float *x, float *logits);

//  bly_model_head of n rows in one pass (the output matrix read once): logits is
//  n x n_vocab, row t bit-identical to bly_model_head of row t. n <= n_batch. Returns 0 or
//  -1 (logged).
BLY_MUST_USE int bly_model_head_rows(bly_model_ctx_t *self, const float *x, size_t n,
                                     float *logits);

//  The whole model: embed `n` tokens at positions pos.., run every layer in
//  batches of n_batch, and write the logits of the last token (when
//  logits is not NULL). The context must serve all layers. Returns 0 or -1
//  (bad token id, context full).
BLY_MUST_USE int bly_model_eval(bly_model_ctx_t *self, const int32_t *tokens, size_t n,
                                size_t pos, float *logits);

#endif
