/*  =========================================================================
    bly_tokenizer - byte-level BPE (GPT-2 style) with the Qwen2 pre-tokenizer

    Built from a GGUF file's tokenizer.ggml.* metadata, or from plain arrays
    (as parsed from a tokenizer.json). Llama 3's pre-tokenizer ("llama-bpe")
    is the same regex with \p{N}{1,3}, plus llama.cpp's ignore_merges.
    Encoding matches llama.cpp:
      1. special tokens are split out first, longest first (control tokens
         only when asked; user-defined tokens such as <think> always);
      2. the rest is split by the Qwen2 pre-tokenizer regex
         (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
         ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
         implemented by hand (ASCII-only case folding, as llama.cpp does);
      3. each piece's bytes are merged by rank (lowest first, leftmost on
         ties).
    Invalid UTF-8 bytes are replaced by U+FFFD before splitting, as in
    llama.cpp. Decoding maps each token back to its exact bytes, so the
    ids of valid UTF-8 text decode to that text.

    The tokenizer owns copies of everything; it is read-only after
    construction and may be shared by threads.
    ========================================================================= */

#ifndef BLY_TOKENIZER_H_INCLUDED
#define BLY_TOKENIZER_H_INCLUDED

#include "bly_gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Token types (tokenizer.ggml.token_type values).
typedef enum {
    BLY_TOKEN_UNDEFINED = 0,
    BLY_TOKEN_NORMAL = 1,
    BLY_TOKEN_UNKNOWN = 2,
    BLY_TOKEN_CONTROL = 3,
    BLY_TOKEN_USER_DEFINED = 4,
    BLY_TOKEN_UNUSED = 5,
    BLY_TOKEN_BYTE = 6,
} bly_token_type_t;

//  Everything needed to build a tokenizer, as plain arrays (borrowed).
typedef struct {
    uint32_t token_count;              //  Vocabulary size.
    const char *const *tokens;         //  Token texts in byte-level form ("Ġthe").
    const size_t *token_sizes;         //  Their sizes in bytes.
    const int32_t *token_types;        //  bly_token_type_t per token; NULL: all normal.
    uint32_t merge_count;              //  Merges, in rank order.
    const char *const *merges;         //  "left right".
    const size_t *merge_sizes;         //  Their sizes in bytes.
    int32_t bos_id;                    //  -1 when none.
    int32_t eos_id;                    //  -1 when none.
    int32_t pad_id;                    //  -1 when none.
    bool add_bos;                      //  Prepend BOS when special tokens are added.
    bool add_eos;                      //  Append EOS likewise.
    const char *pre;                   //  Pre-tokenizer (NULL = qwen2): qwen2, deepseek-r1-qwen,
                                       //  or llama-bpe, llama3, llama-v3 (digits in threes,
                                       //  whole-token pieces taken before merging).
} bly_tokenizer_spec_t;

typedef struct bly_tokenizer_t bly_tokenizer_t;

//  Build from a spec. NULL on bad input, with the reason in `error`.
BLY_MUST_USE bly_tokenizer_t *bly_tokenizer_new(const bly_tokenizer_spec_t *spec, char *error,
                                                size_t error_size);

//  Build from a GGUF file's tokenizer.ggml.* keys (model "gpt2", pre one
//  of the names above). NULL on missing or bad metadata, with the reason.
BLY_MUST_USE bly_tokenizer_t *bly_tokenizer_new_gguf(const bly_gguf_t *gguf, char *error,
                                                     size_t error_size);

void bly_tokenizer_destroy(bly_tokenizer_t **self_p);

//  Encode flags.
#define BLY_TOKENIZE_SPECIAL 1u       //  Parse control tokens such as <|im_start|>.
#define BLY_TOKENIZE_ADD_SPECIAL 2u   //  Add BOS/EOS where the model asks for them.

//  Encode `size` bytes of text into `ids` (room for `ids_max`). Sets
//  *n_ids to the number of ids the text needs even when they do not fit.
//  Returns 0; -1 when the text is over BLY_TOKENIZER_TEXT_MAX; -2 when
//  the ids do not fit (the first ids_max are written); -3 out of memory.
BLY_MUST_USE int bly_tokenizer_encode(const bly_tokenizer_t *self, const char *text, size_t size,
                                      unsigned flags, int32_t *ids, size_t ids_max,
                                      size_t *n_ids);

//  The bytes token `id` stands for (control and unknown tokens: their text
//  when `special`, else nothing; unused tokens: nothing). NULL for an id
//  out of range. Borrowed.
const char *bly_tokenizer_piece(const bly_tokenizer_t *self, int32_t id, bool special,
                                size_t *size);

//  Decode ids into out (room for out_size bytes, not NUL-terminated).
//  Sets *out_len to the bytes needed. Returns 0; -1 for an id out of
//  range; -2 when the text does not fit (out holds what fitted).
BLY_MUST_USE int bly_tokenizer_decode(const bly_tokenizer_t *self, const int32_t *ids,
                                      size_t n_ids, bool special, char *out, size_t out_size,
                                      size_t *out_len);

//  The token's vocabulary text (byte-level form), borrowed; NULL out of range.
const char *bly_tokenizer_text(const bly_tokenizer_t *self, int32_t id, size_t *size);

//  Id of a vocabulary text, or -1.
int32_t bly_tokenizer_find(const bly_tokenizer_t *self, const char *text, size_t size);

uint32_t bly_tokenizer_vocab_size(const bly_tokenizer_t *self);
uint32_t bly_tokenizer_merge_count(const bly_tokenizer_t *self);
bly_token_type_t bly_tokenizer_type(const bly_tokenizer_t *self, int32_t id);
int32_t bly_tokenizer_bos(const bly_tokenizer_t *self);
int32_t bly_tokenizer_eos(const bly_tokenizer_t *self);
int32_t bly_tokenizer_pad(const bly_tokenizer_t *self);

//  True for tokens that end generation: EOS and the end-of-turn tokens
//  (<|im_end|>, <|endoftext|>, <|eot_id|>, <|end|>, <end_of_turn>, <|eom_id|>).
bool bly_tokenizer_is_eog(const bly_tokenizer_t *self, int32_t id);

//  One chat message (borrowed strings).
typedef struct {
    const char *role;       //  "system", "user", "assistant".
    const char *content;    //  NUL-terminated text.
} bly_chat_message_t;

//  Render messages with the ChatML template:
//    <|im_start|>ROLE\nCONTENT<|im_end|>\n ... then <|im_start|>assistant\n
//  when `add_assistant`. Writes at most out_size bytes plus a NUL when it
//  fits; *out_len gets the length needed. Returns 0, or -1 when it does
//  not fit or there are more than BLY_CHAT_MESSAGES_MAX messages.
BLY_MUST_USE int bly_chat_format_chatml(const bly_chat_message_t *messages, size_t count,
                                        bool add_assistant, char *out, size_t out_size,
                                        size_t *out_len);

#endif
