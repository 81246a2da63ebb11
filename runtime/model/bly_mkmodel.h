/*  =========================================================================
    bly_mkmodel - write a random-weight Qwen3 GGUF of any shape

    All the metadata llama.cpp needs (qwen3.* hyperparameters and the
    tokenizer, copied from another GGUF or read from a tokenizer.json) and
    the tensors under llama.cpp's names. Weights are drawn as the shared
    test models' were: norms 1 + 0.02 N(0,1), layer matrices 0.1 N(0,1),
    token_embd 0.5 N(0,1); N(0,1) is approximated by a sum of four uniforms
    (bounded at +-3.46 sigma), from xoshiro256** seeded per tensor, so a
    seed gives the same file every time. Data is generated and written row
    by row: memory stays small whatever the model size.
    ========================================================================= */

#ifndef BLY_MKMODEL_H_INCLUDED
#define BLY_MKMODEL_H_INCLUDED

#include "bly_gguf.h"

typedef struct {
    const char *out_path;       //  File to write (via OUT.tmp, then renamed).
    const char *tokenizer;      //  A GGUF file or a tokenizer.json.
    const char *name;           //  general.name; NULL for "blyan-random".
    uint32_t layers;            //  Blocks.
    uint32_t embd;              //  Embedding width.
    uint32_t heads;             //  Query heads.
    uint32_t kv_heads;          //  Key/value heads (divides heads).
    uint32_t head_dim;          //  Per-head width (need not be embd / heads).
    uint32_t ff;                //  Feed-forward width.
    uint32_t vocab;             //  Vocabulary rows; 0: the tokenizer's (JSON: padded to 151936).
    uint32_t context;           //  qwen3.context_length.
    bool untied;                //  Write a separate output.weight.
    bly_type_t type;            //  F32, F16, BF16 or Q8_0 for the matrices and token_embd.
    uint64_t seed;              //  PRNG seed.
} bly_mkmodel_options_t;

//  Fill the shape fields for a named shape: "qwen3-0.6b", "qwen3-8b"
//  (untied, as the real model), "qwen3-tiny" (the shared F32 test model's
//  shape), "default" (the bundled default model). 0 or -1 when unknown.
BLY_MUST_USE int bly_mkmodel_shape(const char *like, bly_mkmodel_options_t *options);

//  Bytes of weights the options describe (tensor data, without padding).
uint64_t bly_mkmodel_weight_bytes(const bly_mkmodel_options_t *options, uint32_t vocab);

//  Write the model. 0, or -1 with the reason in `error`.
BLY_MUST_USE int bly_mkmodel_write(const bly_mkmodel_options_t *options, char *error,
                                   size_t error_size);

#endif
