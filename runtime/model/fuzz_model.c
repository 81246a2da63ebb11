/*  fuzz_model - the model loader on arbitrary GGUF bytes: it loads or fails
    with a reason, never crashes; a model that loads runs a short forward
    pass (prefill of 3 tokens, one decode step) without fault. */

#include "bly_model.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    //  An aligned copy, as a file map would be.
    uint8_t *copy = aligned_alloc(64, (size + 63) & ~(size_t) 63);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    char error[256];
    bly_gguf_t *gguf = bly_gguf_open_memory(copy, size, error, sizeof(error));
    bly_model_t *model = gguf ? bly_model_from_gguf(&gguf, error, sizeof(error)) : NULL;
    if (model) {
        const bly_model_hparams_t *hp = bly_model_hparams(model);
        bly_model_ctx_t *ctx = NULL;
        //  Keep runs small: skip shapes whose forward pass would be slow.
        if ((uint64_t) hp->n_layer * hp->n_embd * hp->n_ff < (1u << 22) && hp->n_vocab < 4096)
            ctx = bly_model_ctx_new(model, 0, hp->n_layer, 8, 4, 1, error, sizeof(error));
        float *logits = ctx ? malloc(hp->n_vocab * sizeof(float)) : NULL;
        const int32_t ids[4] = {0, 1, 2, 3};
        if (logits && bly_model_eval(ctx, ids, hp->n_vocab >= 4 ? 3 : 1, 0, logits) == 0) {
            int rc = bly_model_eval(ctx, ids, 1, 3, logits);
            bly_assert(rc == 0);
        }
        free(logits);
        bly_model_ctx_destroy(&ctx);
        bly_model_destroy(&model);
    }
    free(copy);
    return 0;
}
