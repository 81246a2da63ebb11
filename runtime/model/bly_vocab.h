/*  =========================================================================
    bly_vocab - a BPE vocabulary as plain arrays, read from tokenizer.json

    Reads a Hugging Face tokenizer.json (model.type "BPE": model.vocab,
    model.merges as "a b" strings or [a, b] pairs, added_tokens) and, when
    present beside it, tokenizer_config.json (eos/pad tokens, add_bos_token,
    chat_template). Token types follow llama.cpp's converter: added special
    tokens are control, other added tokens user-defined, padding unused.
    Special ids: BOS and padding <|endoftext|>, EOS the config's eos_token
    (or <|im_end|>), as in Qwen3's GGUF files.
    ========================================================================= */

#ifndef BLY_VOCAB_H_INCLUDED
#define BLY_VOCAB_H_INCLUDED

#include "bly_gguf_writer.h"
#include "bly_tokenizer.h"

typedef struct bly_vocab_t bly_vocab_t;

//  Read tokenizer.json at `path`. NULL on error, with the reason.
BLY_MUST_USE bly_vocab_t *bly_vocab_from_json(const char *path, char *error, size_t error_size);
void bly_vocab_destroy(bly_vocab_t **self_p);

//  Tokens in the vocabulary.
uint32_t bly_vocab_size(const bly_vocab_t *self);

//  Pad with unused "[PAD<id>]" tokens up to `size` tokens (as llama.cpp's
//  converter does to match the model's embedding rows). 0 or -1 when
//  `size` is smaller than the vocabulary or over the limit.
BLY_MUST_USE int bly_vocab_pad(bly_vocab_t *self, uint32_t size);

//  Fill a tokenizer spec that borrows the vocabulary's arrays.
void bly_vocab_spec(const bly_vocab_t *self, bly_tokenizer_spec_t *spec);

//  Write the tokenizer.ggml.* keys (and tokenizer.chat_template when
//  known) into a GGUF writer. 0 or -1.
BLY_MUST_USE int bly_vocab_write(const bly_vocab_t *self, bly_gguf_writer_t *writer);

#endif
