/*  =========================================================================
    bly_tokenizer - byte-level BPE (GPT-2 style) with the Qwen2 pre-tokenizer

    Tokens are kept twice in two arenas: the vocabulary text (byte-level
    form, "Ġthe") and the bytes each token decodes to. Two open-addressing
    hash tables map texts to ids and (left id, right id) pairs to their
    merge. Encoding works on ids: a piece starts as one byte token per byte
    and merges by rank through a binary heap, invalidated lazily.
    ========================================================================= */

#include "bly_tokenizer.h"
#include "bly_limits.h"
#include "bly_unicode.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EOG_MAX 8

//  One merge in the pair table.
typedef struct {
    uint64_t key;       //  left id << 32 | right id; UINT64_MAX when empty.
    uint32_t rank;      //  Position in the merge list: lower merges first.
    int32_t result;     //  Id of the merged token.
} s_merge_t;

struct bly_tokenizer_t {
    uint32_t token_count;       //  Vocabulary size.
    char *text;                 //  Arena: vocabulary texts.
    uint64_t *text_offsets;     //  token_count + 1 offsets into text.
    char *piece;                //  Arena: decoded bytes per token.
    uint64_t *piece_offsets;    //  token_count + 1 offsets into piece.
    uint8_t *types;             //  bly_token_type_t per token.
    uint32_t *token_table;      //  Hash: text -> id + 1 (0 = empty slot).
    uint32_t token_mask;        //  Slots - 1 (a power of two minus one).
    s_merge_t *merge_table;     //  Hash: pair -> merge.
    uint32_t merge_mask;        //  Slots - 1.
    uint32_t merge_count;       //  Merges stored.
    int32_t byte_token[256];    //  Token of each single byte.
    int16_t cp_byte[324];       //  Byte of each mapped code point, or -1.
    uint16_t byte_cp[256];      //  Code point of each byte in the byte-level form.
    int32_t *specials;          //  Control, user-defined, unknown ids, longest first.
    uint32_t special_count;     //  Entries in specials.
    int32_t eog[S_EOG_MAX];     //  End-of-generation ids.
    uint32_t eog_count;         //  Entries in eog.
    int32_t bos_id, eos_id, pad_id;  //  -1 when none.
    bool add_bos, add_eos;      //  Added with BLY_TOKENIZE_ADD_SPECIAL.
    uint32_t digits_max;        //  Digits per pre-tokenizer piece: 1 (qwen2) or 3 (llama3).
    bool ignore_merges;         //  llama3: a piece that is a token is taken whole.
};

//  Pre-tokenizers: llama.cpp's names, and how their regexes differ. Both
//  regexes are the Qwen2 one with \p{N} repeated 1 or up to 3 times.
static const struct {
    const char *name;           //  tokenizer.ggml.pre value.
    uint32_t digits_max;        //  \p{N}{1,digits_max}.
    bool ignore_merges;         //  Whole-token lookup before merging.
} s_pre_tokenizers[] = {
    {"qwen2", 1, false},
    {"deepseek-r1-qwen", 1, false},
    {"llama-bpe", 3, true},
    {"llama3", 3, true},
    {"llama-v3", 3, true},
};

#define S_PRE_NAMES "qwen2, deepseek-r1-qwen, llama-bpe, llama3, llama-v3"

//  Index of a pre-tokenizer by name (NULL: qwen2), or -1.
static int
s_pre_find(const char *name, size_t size)
{
    if (!name)
        return 0;
    for (size_t i = 0; i < sizeof(s_pre_tokenizers) / sizeof(s_pre_tokenizers[0]); i++)
        if (strlen(s_pre_tokenizers[i].name) == size &&
            memcmp(s_pre_tokenizers[i].name, name, size) == 0)
            return (int) i;
    return -1;
}

/* ---- GPT-2 byte <-> code point mapping ------------------------------------ */

//  Printable Latin-1 bytes map to themselves; the other 68 to U+0100...
static uint32_t
s_byte_to_cp(uint8_t byte)
{
    if ((byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE)
        return byte;
    uint32_t n = 0;   //  Rank of this byte among the unprintable ones.
    for (uint32_t b = 0; b < byte; b++)
        if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE))
            n++;
    return 256 + n;
}

/* ---- Hash tables ---------------------------------------------------------- */

static uint64_t
s_hash_bytes(const char *data, size_t size)
{
    uint64_t h = 1469598103934665603ull;   //  FNV-1a.
    for (size_t i = 0; i < size; i++)
        h = (h ^ (uint8_t) data[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t
s_hash_u64(uint64_t x)
{
    x ^= x >> 33;   //  splitmix64's finaliser.
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static uint32_t
s_table_mask(uint64_t entries)
{
    uint64_t slots = 16;
    while (slots < entries * 2)
        slots *= 2;
    return (uint32_t) (slots - 1);
}

int32_t
bly_tokenizer_find(const bly_tokenizer_t *self, const char *text, size_t size)
{
    bly_assert(self);
    bly_assert(text || size == 0);
    uint32_t slot = (uint32_t) s_hash_bytes(text, size) & self->token_mask;
    for (uint32_t probe = 0; probe <= self->token_mask; probe++) {
        uint32_t entry = self->token_table[slot];
        if (entry == 0)
            return -1;
        uint32_t id = entry - 1;
        uint64_t start = self->text_offsets[id];
        if (self->text_offsets[id + 1] - start == size &&
            memcmp(self->text + start, text, size) == 0)
            return (int32_t) id;
        slot = (slot + 1) & self->token_mask;
    }
    return -1;
}

//  Insert id; a later id with the same text replaces the earlier one.
static void
s_token_insert(bly_tokenizer_t *self, uint32_t id)
{
    const char *text = self->text + self->text_offsets[id];
    size_t size = (size_t) (self->text_offsets[id + 1] - self->text_offsets[id]);
    uint32_t slot = (uint32_t) s_hash_bytes(text, size) & self->token_mask;
    while (self->token_table[slot] != 0) {
        uint32_t other = self->token_table[slot] - 1;
        uint64_t start = self->text_offsets[other];
        if (self->text_offsets[other + 1] - start == size &&
            memcmp(self->text + start, text, size) == 0)
            break;
        slot = (slot + 1) & self->token_mask;
    }
    self->token_table[slot] = id + 1;
}

static const s_merge_t *
s_merge_find(const bly_tokenizer_t *self, int32_t left, int32_t right)
{
    uint64_t key = (uint64_t) (uint32_t) left << 32 | (uint32_t) right;
    uint32_t slot = (uint32_t) s_hash_u64(key) & self->merge_mask;
    while (self->merge_table[slot].key != UINT64_MAX) {
        if (self->merge_table[slot].key == key)
            return &self->merge_table[slot];
        slot = (slot + 1) & self->merge_mask;
    }
    return NULL;
}

//  Insert a merge unless the pair has one already (the first rank wins).
static void
s_merge_insert(bly_tokenizer_t *self, int32_t left, int32_t right, uint32_t rank, int32_t result)
{
    uint64_t key = (uint64_t) (uint32_t) left << 32 | (uint32_t) right;
    uint32_t slot = (uint32_t) s_hash_u64(key) & self->merge_mask;
    while (self->merge_table[slot].key != UINT64_MAX) {
        if (self->merge_table[slot].key == key)
            return;
        slot = (slot + 1) & self->merge_mask;
    }
    self->merge_table[slot] = (s_merge_t) {key, rank, result};
    self->merge_count++;
}

/* ---- Construction --------------------------------------------------------- */

void
bly_tokenizer_destroy(bly_tokenizer_t **self_p)
{
    bly_assert(self_p);
    bly_tokenizer_t *self = *self_p;
    if (!self)
        return;
    free(self->specials);
    free(self->merge_table);
    free(self->token_table);
    free(self->types);
    free(self->piece_offsets);
    free(self->piece);
    free(self->text_offsets);
    free(self->text);
    free(self);
    *self_p = NULL;
}

//  Bytes a vocabulary text decodes to: each code point back to its byte
//  (anything else is copied as it is, so the result is never longer).
static size_t
s_decode_text(const bly_tokenizer_t *self, const char *text, size_t size, char *out)
{
    size_t pos = 0, written = 0;
    while (pos < size) {
        size_t start = pos;
        uint32_t cp = bly_utf8_decode(text, size, &pos);
        int byte = cp < 324 ? self->cp_byte[cp] : -1;
        if (byte >= 0) {
            out[written++] = (char) byte;
        } else {
            memcpy(out + written, text + start, pos - start);
            written += pos - start;
        }
    }
    return written;
}

//  Copy texts and types, and fill the decoded-piece arena.
static int
s_load_tokens(bly_tokenizer_t *self, const bly_tokenizer_spec_t *spec, char *error,
              size_t error_size)
{
    uint32_t n = spec->token_count;
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (spec->token_sizes[i] > BLY_TOKEN_TEXT_MAX) {
            bly_error_set(error, error_size, "token %u has %zu bytes, over the limit %d", i,
                    spec->token_sizes[i], BLY_TOKEN_TEXT_MAX);
            return -1;
        }
        int32_t type = spec->token_types ? spec->token_types[i] : BLY_TOKEN_NORMAL;
        if (type < BLY_TOKEN_UNDEFINED || type > BLY_TOKEN_BYTE) {
            bly_error_set(error, error_size, "token %u has unknown type %d", i, type);
            return -1;
        }
        total += spec->token_sizes[i];
    }
    self->text = malloc(total ? total : 1);
    self->piece = malloc(total ? total : 1);   //  Decoding never grows a text.
    self->text_offsets = calloc((size_t) n + 1, sizeof(uint64_t));
    self->piece_offsets = calloc((size_t) n + 1, sizeof(uint64_t));
    self->types = calloc(n ? n : 1, 1);
    if (!self->text || !self->piece || !self->text_offsets || !self->piece_offsets ||
        !self->types) {
        bly_error_set(error, error_size, "out of memory for %u tokens", n);
        return -1;
    }
    uint64_t text_at = 0, piece_at = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *text = spec->tokens[i];
        size_t size = spec->token_sizes[i];
        int32_t type = spec->token_types ? spec->token_types[i] : BLY_TOKEN_NORMAL;
        self->types[i] = (uint8_t) type;
        memcpy(self->text + text_at, text, size);
        self->text_offsets[i] = text_at;
        text_at += size;
        self->piece_offsets[i] = piece_at;
        if (type == BLY_TOKEN_NORMAL || type == BLY_TOKEN_BYTE) {
            piece_at += s_decode_text(self, text, size, self->piece + piece_at);
        } else if (type == BLY_TOKEN_CONTROL || type == BLY_TOKEN_USER_DEFINED ||
                   type == BLY_TOKEN_UNKNOWN) {
            memcpy(self->piece + piece_at, text, size);
            piece_at += size;
        }
    }
    self->text_offsets[n] = text_at;
    self->piece_offsets[n] = piece_at;
    return 0;
}

static int
s_build_token_table(bly_tokenizer_t *self, char *error, size_t error_size)
{
    self->token_mask = s_table_mask(self->token_count);
    self->token_table = calloc((size_t) self->token_mask + 1, sizeof(uint32_t));
    if (!self->token_table) {
        bly_error_set(error, error_size, "out of memory for the token table");
        return -1;
    }
    for (uint32_t i = 0; i < self->token_count; i++)
        s_token_insert(self, i);
    for (int b = 0; b < 256; b++) {
        char text[4];
        size_t size = bly_utf8_encode(s_byte_to_cp((uint8_t) b), text);
        self->byte_token[b] = bly_tokenizer_find(self, text, size);
        if (self->byte_token[b] < 0) {
            bly_error_set(error, error_size, "the vocabulary has no token for byte 0x%02x", b);
            return -1;
        }
    }
    return 0;
}

//  Merges "left right" (split at the first space after the first byte, as
//  llama.cpp does). Merges naming texts outside the vocabulary are skipped:
//  ids could not represent their results.
static int
s_build_merges(bly_tokenizer_t *self, const bly_tokenizer_spec_t *spec, char *error,
               size_t error_size)
{
    self->merge_mask = s_table_mask(spec->merge_count);
    self->merge_table = malloc(((size_t) self->merge_mask + 1) * sizeof(s_merge_t));
    if (!self->merge_table) {
        bly_error_set(error, error_size, "out of memory for %u merges", spec->merge_count);
        return -1;
    }
    for (uint32_t i = 0; i <= self->merge_mask; i++)
        self->merge_table[i].key = UINT64_MAX;
    char joined[2 * BLY_TOKEN_TEXT_MAX];
    for (uint32_t i = 0; i < spec->merge_count; i++) {
        const char *merge = spec->merges[i];
        size_t size = spec->merge_sizes[i];
        const char *space = size > 1 ? memchr(merge + 1, ' ', size - 1) : NULL;
        if (!space || size > sizeof(joined)) {
            bly_error_set(error, error_size, "merge %u is not two texts separated by a space", i);
            return -1;
        }
        size_t left_size = (size_t) (space - merge);
        size_t right_size = size - left_size - 1;
        int32_t left = bly_tokenizer_find(self, merge, left_size);
        int32_t right = bly_tokenizer_find(self, space + 1, right_size);
        memcpy(joined, merge, left_size);
        memcpy(joined + left_size, space + 1, right_size);
        int32_t result = bly_tokenizer_find(self, joined, left_size + right_size);
        if (left >= 0 && right >= 0 && result >= 0)
            s_merge_insert(self, left, right, i, result);
    }
    return 0;
}

//  Special token candidates sorted by text length (longest first), then id.
typedef struct {
    uint64_t size;      //  Text bytes.
    int32_t id;         //  Token id.
} s_special_t;

static int
s_by_length_desc(const void *a, const void *b)
{
    const s_special_t *x = a, *y = b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int
s_build_specials(bly_tokenizer_t *self, char *error, size_t error_size)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < self->token_count; i++) {
        uint8_t type = self->types[i];
        bool special = type == BLY_TOKEN_CONTROL || type == BLY_TOKEN_USER_DEFINED ||
                       type == BLY_TOKEN_UNKNOWN;
        if (special && self->text_offsets[i + 1] > self->text_offsets[i])
            count++;
    }
    s_special_t *sorted = calloc(count ? count : 1, sizeof(*sorted));
    self->specials = calloc(count ? count : 1, sizeof(*self->specials));
    if (!sorted || !self->specials) {
        free(sorted);
        bly_error_set(error, error_size, "out of memory for special tokens");
        return -1;
    }
    uint32_t at = 0;
    for (uint32_t i = 0; i < self->token_count && at < count; i++) {
        uint8_t type = self->types[i];
        uint64_t size = self->text_offsets[i + 1] - self->text_offsets[i];
        if ((type == BLY_TOKEN_CONTROL || type == BLY_TOKEN_USER_DEFINED ||
             type == BLY_TOKEN_UNKNOWN) && size > 0)
            sorted[at++] = (s_special_t) {size, (int32_t) i};
    }
    qsort(sorted, count, sizeof(*sorted), s_by_length_desc);
    for (uint32_t i = 0; i < count; i++)
        self->specials[i] = sorted[i].id;
    self->special_count = count;
    free(sorted);
    return 0;
}

static void
s_build_eog(bly_tokenizer_t *self)
{
    static const char *const names[] = {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>",
                                        "<end_of_turn>", "<|eom_id|>"};
    if (self->eos_id >= 0)
        self->eog[self->eog_count++] = self->eos_id;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int32_t id = bly_tokenizer_find(self, names[i], strlen(names[i]));
        if (id >= 0 && id != self->eos_id && self->eog_count < S_EOG_MAX)
            self->eog[self->eog_count++] = id;
    }
}

static int
s_check_spec(const bly_tokenizer_spec_t *spec, char *error, size_t error_size)
{
    if (s_pre_find(spec->pre, spec->pre ? strlen(spec->pre) : 0) < 0) {
        bly_error_set(error, error_size, "pre-tokenizer '%s' is not supported (%s)", spec->pre,
                S_PRE_NAMES);
        return -1;
    }
    if (spec->token_count == 0 || spec->token_count > BLY_TOKENIZER_VOCAB_MAX) {
        bly_error_set(error, error_size, "vocabulary of %u tokens (must be 1..%u)", spec->token_count,
                BLY_TOKENIZER_VOCAB_MAX);
        return -1;
    }
    if (spec->merge_count > BLY_TOKENIZER_MERGES_MAX) {
        bly_error_set(error, error_size, "%u merges, over the limit %u", spec->merge_count,
                BLY_TOKENIZER_MERGES_MAX);
        return -1;
    }
    int32_t ids[3] = {spec->bos_id, spec->eos_id, spec->pad_id};
    for (int i = 0; i < 3; i++) {
        if (ids[i] < -1 || ids[i] >= (int64_t) spec->token_count) {
            bly_error_set(error, error_size, "special token id %d is outside the vocabulary", ids[i]);
            return -1;
        }
    }
    return 0;
}

bly_tokenizer_t *
bly_tokenizer_new(const bly_tokenizer_spec_t *spec, char *error, size_t error_size)
{
    bly_assert(spec);
    bly_assert(spec->tokens || spec->token_count == 0);
    bly_assert(spec->merges || spec->merge_count == 0);
    if (s_check_spec(spec, error, error_size))
        return NULL;
    bly_tokenizer_t *self = calloc(1, sizeof(*self));
    if (!self) {
        bly_error_set(error, error_size, "out of memory");
        return NULL;
    }
    self->token_count = spec->token_count;
    self->bos_id = spec->bos_id;
    self->eos_id = spec->eos_id;
    self->pad_id = spec->pad_id;
    self->add_bos = spec->add_bos && spec->bos_id >= 0;
    self->add_eos = spec->add_eos && spec->eos_id >= 0;
    int pre = s_pre_find(spec->pre, spec->pre ? strlen(spec->pre) : 0);
    self->digits_max = s_pre_tokenizers[pre].digits_max;
    self->ignore_merges = s_pre_tokenizers[pre].ignore_merges;
    for (int i = 0; i < 324; i++)
        self->cp_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        self->byte_cp[b] = (uint16_t) s_byte_to_cp((uint8_t) b);
        self->cp_byte[self->byte_cp[b]] = (int16_t) b;
    }
    if (s_load_tokens(self, spec, error, error_size) ||
        s_build_token_table(self, error, error_size) ||
        s_build_merges(self, spec, error, error_size) ||
        s_build_specials(self, error, error_size)) {
        bly_tokenizer_destroy(&self);
        return NULL;
    }
    s_build_eog(self);
    return self;
}

//  A string array from the file as pointer and size arrays (freshly allocated).
static int
s_gguf_strings(const bly_gguf_t *gguf, const char *key, bool required, const char ***strings,
               size_t **sizes, uint32_t *count, uint32_t max, char *error, size_t error_size)
{
    bly_gguf_value_type_t type;
    uint64_t n = 0;
    *count = 0;
    if (bly_gguf_get_array(gguf, key, &type, &n)) {
        if (!required)
            return 0;
        bly_error_set(error, error_size, "%s is missing", key);
        return -1;
    }
    if (type != BLY_GGUF_STRING || n > max) {
        bly_error_set(error, error_size, "%s is not an array of at most %u strings", key, max);
        return -1;
    }
    *strings = calloc(n ? n : 1, sizeof(**strings));
    *sizes = calloc(n ? n : 1, sizeof(**sizes));
    if (!*strings || !*sizes) {
        bly_error_set(error, error_size, "out of memory reading %s", key);
        return -1;
    }
    for (uint64_t i = 0; i < n; i++)
        if (bly_gguf_array_str(gguf, key, i, &(*strings)[i], &(*sizes)[i]))
            return -1;   //  Cannot happen: the reader checked every element.
    *count = (uint32_t) n;
    return 0;
}

static int
s_gguf_str_equals(const bly_gguf_t *gguf, const char *key, const char *want, char *error,
                  size_t error_size)
{
    const char *value;
    size_t size;
    if (bly_gguf_get_str(gguf, key, &value, &size)) {
        bly_error_set(error, error_size, "%s is missing", key);
        return -1;
    }
    if (size != strlen(want) || memcmp(value, want, size) != 0) {
        bly_error_set(error, error_size, "%s is '%.*s'; only '%s' is supported", key,
                (int) (size > 64 ? 64 : size), value, want);
        return -1;
    }
    return 0;
}

//  tokenizer.ggml.pre: one of the supported names (a static string).
static int
s_gguf_pre(const bly_gguf_t *gguf, const char **pre, char *error, size_t error_size)
{
    const char *value;
    size_t size;
    if (bly_gguf_get_str(gguf, "tokenizer.ggml.pre", &value, &size)) {
        bly_error_set(error, error_size, "tokenizer.ggml.pre is missing");
        return -1;
    }
    int index = s_pre_find(value, size);
    if (index < 0) {
        bly_error_set(error, error_size, "tokenizer.ggml.pre is '%.*s'; supported: %s",
                (int) (size > 64 ? 64 : size), value, S_PRE_NAMES);
        return -1;
    }
    *pre = s_pre_tokenizers[index].name;
    return 0;
}

static int32_t
s_gguf_id(const bly_gguf_t *gguf, const char *key)
{
    uint32_t value;
    return bly_gguf_get_u32(gguf, key, &value) == 0 && value <= INT32_MAX ? (int32_t) value : -1;
}

//  Token types: int32 (or uint32) array of the vocabulary's length, optional.
static int
s_gguf_types(const bly_gguf_t *gguf, uint32_t count, const int32_t **types, char *error,
             size_t error_size)
{
    bly_gguf_value_type_t type;
    uint64_t n;
    *types = NULL;
    if (bly_gguf_get_array(gguf, "tokenizer.ggml.token_type", &type, &n))
        return 0;
    const void *data;
    if ((type != BLY_GGUF_INT32 && type != BLY_GGUF_UINT32) || n != count ||
        bly_gguf_array_data(gguf, "tokenizer.ggml.token_type", &data)) {
        bly_error_set(error, error_size, "tokenizer.ggml.token_type is not %u 32-bit integers", count);
        return -1;
    }
    int32_t *copy = malloc((size_t) count * sizeof(int32_t));
    if (!copy) {
        bly_error_set(error, error_size, "out of memory");
        return -1;
    }
    memcpy(copy, data, (size_t) count * sizeof(int32_t));   //  The map may be unaligned.
    *types = copy;
    return 0;
}

bly_tokenizer_t *
bly_tokenizer_new_gguf(const bly_gguf_t *gguf, char *error, size_t error_size)
{
    bly_assert(gguf);
    bly_tokenizer_spec_t spec = {.pre = NULL};
    const char **tokens = NULL, **merges = NULL;
    size_t *token_sizes = NULL, *merge_sizes = NULL;
    const int32_t *types = NULL;
    bly_tokenizer_t *self = NULL;
    if (s_gguf_str_equals(gguf, "tokenizer.ggml.model", "gpt2", error, error_size) ||
        s_gguf_pre(gguf, &spec.pre, error, error_size) ||
        s_gguf_strings(gguf, "tokenizer.ggml.tokens", true, &tokens, &token_sizes,
                       &spec.token_count, BLY_TOKENIZER_VOCAB_MAX, error, error_size) ||
        s_gguf_strings(gguf, "tokenizer.ggml.merges", false, &merges, &merge_sizes,
                       &spec.merge_count, BLY_TOKENIZER_MERGES_MAX, error, error_size) ||
        s_gguf_types(gguf, spec.token_count, &types, error, error_size))
        goto out_free;
    spec.tokens = tokens;
    spec.token_sizes = token_sizes;
    spec.token_types = types;
    spec.merges = merges;
    spec.merge_sizes = merge_sizes;
    spec.bos_id = s_gguf_id(gguf, "tokenizer.ggml.bos_token_id");
    spec.eos_id = s_gguf_id(gguf, "tokenizer.ggml.eos_token_id");
    spec.pad_id = s_gguf_id(gguf, "tokenizer.ggml.padding_token_id");
    if (bly_gguf_get_bool(gguf, "tokenizer.ggml.add_bos_token", &spec.add_bos))
        spec.add_bos = false;
    if (bly_gguf_get_bool(gguf, "tokenizer.ggml.add_eos_token", &spec.add_eos))
        spec.add_eos = false;
    self = bly_tokenizer_new(&spec, error, error_size);
out_free:
    free((void *) types);
    free(merge_sizes);
    free(merges);
    free(token_sizes);
    free(tokens);
    return self;
}

/* ---- Encoding ------------------------------------------------------------- */

//  A symbol of the piece being merged: a token id in a linked list.
typedef struct {
    int32_t id;         //  Token id; -1 once merged into its left neighbour.
    int32_t prev;       //  Index of the previous live symbol, or -1.
    int32_t next;       //  Index of the next live symbol, or -1.
} s_symbol_t;

//  A candidate merge of symbol `left` with its next symbol.
typedef struct {
    uint32_t rank;      //  Merge rank: lower first.
    uint32_t left;      //  Symbol index: leftmost first on equal ranks.
} s_candidate_t;

//  A stretch of input: raw text, or one special token.
typedef struct {
    size_t start;       //  Byte offset in the input.
    size_t size;        //  Bytes.
    int32_t token;      //  Special token id, or -1 for raw text.
} s_fragment_t;

//  Buffers for one encode call. They grow with the longest piece, never per token.
typedef struct {
    uint32_t *cps;              //  Code points of the current raw fragment.
    uint8_t *flags;             //  Their class bits.
    size_t cps_capacity;        //  Entries in cps and flags.
    char *bytes;                //  UTF-8 of the current piece.
    char *level;                //  Its byte-level form (2 bytes per byte at most).
    s_symbol_t *symbols;        //  One per byte of the current piece.
    s_candidate_t *heap;        //  Candidate merges, a binary min-heap.
    size_t piece_capacity;      //  Bytes in bytes; symbols; heap holds 3x.
    size_t heap_size;           //  Entries in heap.
    s_fragment_t *fragments;    //  Special-token partition of the input.
    s_fragment_t *spare;        //  Second buffer for re-partitioning.
    size_t fragment_count;      //  Entries in fragments.
    size_t fragment_capacity;   //  Room in fragments and spare.
    int32_t *ids;               //  Caller's output.
    size_t ids_max;             //  Its room.
    size_t n_ids;               //  Ids produced (may exceed ids_max).
    bool out_of_memory;         //  A buffer could not grow.
} s_work_t;

static void
s_emit(s_work_t *work, int32_t id)
{
    if (work->n_ids < work->ids_max)
        work->ids[work->n_ids] = id;
    work->n_ids++;
}

static void *
s_grow(void *buffer, size_t count, size_t item_size)
{
    return count > SIZE_MAX / item_size ? NULL : realloc(buffer, count * item_size);
}

static int
s_reserve_piece(s_work_t *work, size_t bytes)
{
    if (bytes <= work->piece_capacity)
        return 0;
    size_t capacity = work->piece_capacity ? work->piece_capacity : 256;
    while (capacity < bytes)
        capacity *= 2;
    char *b = s_grow(work->bytes, capacity, 1);
    if (b)
        work->bytes = b;
    char *l = s_grow(work->level, capacity, 2);
    if (l)
        work->level = l;
    s_symbol_t *s = s_grow(work->symbols, capacity, sizeof(s_symbol_t));
    if (s)
        work->symbols = s;
    s_candidate_t *h = s_grow(work->heap, capacity * 3, sizeof(s_candidate_t));
    if (h)
        work->heap = h;
    if (!b || !l || !s || !h) {
        work->out_of_memory = true;
        return -1;
    }
    work->piece_capacity = capacity;
    return 0;
}

static bool
s_candidate_less(s_candidate_t a, s_candidate_t b)
{
    return a.rank < b.rank || (a.rank == b.rank && a.left < b.left);
}

static void
s_heap_push(s_work_t *work, s_candidate_t item)
{
    bly_assert(work->heap_size < work->piece_capacity * 3);
    size_t at = work->heap_size++;
    while (at > 0) {
        size_t parent = (at - 1) / 2;
        if (!s_candidate_less(item, work->heap[parent]))
            break;
        work->heap[at] = work->heap[parent];
        at = parent;
    }
    work->heap[at] = item;
}

static s_candidate_t
s_heap_pop(s_work_t *work)
{
    bly_assert(work->heap_size > 0);
    s_candidate_t top = work->heap[0];
    s_candidate_t last = work->heap[--work->heap_size];
    size_t at = 0, n = work->heap_size;
    while (2 * at + 1 < n) {
        size_t child = 2 * at + 1;
        if (child + 1 < n && s_candidate_less(work->heap[child + 1], work->heap[child]))
            child++;
        if (!s_candidate_less(work->heap[child], last))
            break;
        work->heap[at] = work->heap[child];
        at = child;
    }
    if (n > 0)
        work->heap[at] = last;
    return top;
}

static void
s_push_pair(const bly_tokenizer_t *self, s_work_t *work, int32_t left)
{
    if (left < 0)
        return;
    int32_t right = work->symbols[left].next;
    if (right < 0)
        return;
    const s_merge_t *merge = s_merge_find(self, work->symbols[left].id, work->symbols[right].id);
    if (merge)
        s_heap_push(work, (s_candidate_t) {merge->rank, (uint32_t) left});
}

//  Merge the bytes of one piece by rank and emit the resulting ids.
static void
s_bpe(const bly_tokenizer_t *self, s_work_t *work, const char *bytes, size_t size)
{
    if (self->ignore_merges && size > 1) {   //  llama3: a whole piece that is a token.
        size_t level_size = 0;
        for (size_t i = 0; i < size; i++)
            level_size += bly_utf8_encode(self->byte_cp[(uint8_t) bytes[i]],
                                          work->level + level_size);
        int32_t id = bly_tokenizer_find(self, work->level, level_size);
        if (id >= 0) {
            s_emit(work, id);
            return;
        }
    }
    s_symbol_t *sym = work->symbols;
    for (size_t i = 0; i < size; i++)
        sym[i] = (s_symbol_t) {self->byte_token[(uint8_t) bytes[i]], (int32_t) i - 1,
                               i + 1 < size ? (int32_t) i + 1 : -1};
    work->heap_size = 0;
    for (size_t i = 0; i + 1 < size; i++)
        s_push_pair(self, work, (int32_t) i);
    while (work->heap_size > 0) {
        s_candidate_t top = s_heap_pop(work);
        s_symbol_t *left = &sym[top.left];
        if (left->id < 0 || left->next < 0)
            continue;   //  Stale: merged away, or nothing to its right.
        s_symbol_t *right = &sym[left->next];
        const s_merge_t *merge = s_merge_find(self, left->id, right->id);
        if (!merge || merge->rank != top.rank)
            continue;   //  Stale: a neighbour changed since this was queued.
        left->id = merge->result;
        right->id = -1;
        left->next = right->next;
        if (left->next >= 0)
            sym[left->next].prev = (int32_t) top.left;
        s_push_pair(self, work, left->prev);
        s_push_pair(self, work, (int32_t) top.left);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next)
        s_emit(work, sym[i].id);
}

static bool
s_is_newline(uint32_t cp)
{
    return cp == '\r' || cp == '\n';
}

static uint32_t
s_ascii_lower(uint32_t cp)
{
    return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
}

//  Contractions 's 't 're 've 'm 'll 'd (ASCII case-insensitive): length or 0.
static size_t
s_match_contraction(const uint32_t *cp, size_t n, size_t i)
{
    if (cp[i] != '\'' || i + 1 >= n)
        return 0;
    uint32_t a = s_ascii_lower(cp[i + 1]);
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (i + 2 >= n)
        return 0;
    uint32_t b = s_ascii_lower(cp[i + 2]);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

//  Length in code points of the pre-tokenizer piece starting at i: the
//  first alternative of the Qwen2 regex that matches, as a backtracking
//  regex engine picks it.
static size_t
s_piece_length(const uint32_t *cp, const uint8_t *fl, size_t n, size_t i, uint32_t digits_max)
{
    const uint8_t L = BLY_UNICODE_LETTER, N = BLY_UNICODE_NUMBER, S = BLY_UNICODE_WHITESPACE;
    size_t m = s_match_contraction(cp, n, i);
    if (m > 0)
        return m;
    //  [^\r\n\p{L}\p{N}]?\p{L}+
    size_t j = i;
    if (!(fl[j] & (L | N)) && !s_is_newline(cp[j]))
        j++;
    if (j < n && (fl[j] & L)) {
        while (j < n && (fl[j] & L))
            j++;
        return j - i;
    }
    //  \p{N}{1,digits_max}
    if (fl[i] & N) {
        j = i + 1;
        while (j < n && j - i < digits_max && (fl[j] & N))
            j++;
        return j - i;
    }
    //   ?[^\s\p{L}\p{N}]+[\r\n]*
    j = cp[i] == ' ' ? i + 1 : i;
    if (j < n && !(fl[j] & (S | L | N))) {
        while (j < n && !(fl[j] & (S | L | N)))
            j++;
        while (j < n && s_is_newline(cp[j]))
            j++;
        return j - i;
    }
    //  \s*[\r\n]+ : up to the last newline of the whitespace run.
    size_t end = i, last_newline = SIZE_MAX;
    while (end < n && (fl[end] & S)) {
        if (s_is_newline(cp[end]))
            last_newline = end;
        end++;
    }
    if (last_newline != SIZE_MAX)
        return last_newline + 1 - i;
    //  \s+(?!\S) leaves the run's last space to the next piece; \s+ otherwise.
    if (end > i + 1 && end < n)
        return end - 1 - i;
    return end > i ? end - i : 1;
}

//  Pre-tokenize one raw fragment and BPE each piece.
static void
s_encode_raw(const bly_tokenizer_t *self, s_work_t *work, const char *text, size_t size)
{
    if (size > work->cps_capacity) {
        uint32_t *cps = s_grow(work->cps, size, sizeof(uint32_t));
        if (cps)
            work->cps = cps;
        uint8_t *flags = s_grow(work->flags, size, 1);
        if (flags)
            work->flags = flags;
        if (!cps || !flags) {
            work->out_of_memory = true;
            return;
        }
        work->cps_capacity = size;
    }
    size_t n = 0, pos = 0;
    while (pos < size) {
        uint32_t cp = bly_utf8_decode(text, size, &pos);
        work->cps[n] = cp;
        work->flags[n++] = (uint8_t) bly_unicode_flags(cp);
    }
    for (size_t i = 0; i < n && !work->out_of_memory;) {
        size_t length = s_piece_length(work->cps, work->flags, n, i, self->digits_max);
        if (s_reserve_piece(work, length * 4))
            return;
        size_t bytes = 0;
        for (size_t k = i; k < i + length; k++)
            bytes += bly_utf8_encode(work->cps[k], work->bytes + bytes);
        s_bpe(self, work, work->bytes, bytes);
        i += length;
    }
}

//  Append to the spare list (the next partition), growing both lists.
static int
s_spare_add(s_work_t *work, size_t *spare_count, s_fragment_t fragment)
{
    if (*spare_count == work->fragment_capacity) {
        size_t capacity = work->fragment_capacity * 2;
        s_fragment_t *a = s_grow(work->fragments, capacity, sizeof(s_fragment_t));
        if (a)
            work->fragments = a;
        s_fragment_t *b = s_grow(work->spare, capacity, sizeof(s_fragment_t));
        if (b)
            work->spare = b;
        if (!a || !b) {
            work->out_of_memory = true;
            return -1;
        }
        work->fragment_capacity = capacity;
    }
    work->spare[(*spare_count)++] = fragment;
    return 0;
}

//  Split every raw fragment at each occurrence of special token `id`, left
//  to right (llama.cpp's order: one token at a time, longest first).
static int
s_partition(const bly_tokenizer_t *self, s_work_t *work, const char *text, int32_t id)
{
    const char *special = self->text + self->text_offsets[id];
    size_t special_size = (size_t) (self->text_offsets[id + 1] - self->text_offsets[id]);
    size_t spare_count = 0;
    for (size_t f = 0; f < work->fragment_count; f++) {
        s_fragment_t fragment = work->fragments[f];
        while (fragment.token < 0 && fragment.size >= special_size) {
            const char *found = memmem(text + fragment.start, fragment.size, special,
                                       special_size);
            if (!found)
                break;
            size_t at = (size_t) (found - text);
            if (at > fragment.start &&
                s_spare_add(work, &spare_count,
                            (s_fragment_t) {fragment.start, at - fragment.start, -1}))
                return -1;
            if (s_spare_add(work, &spare_count, (s_fragment_t) {at, special_size, id}))
                return -1;
            size_t end = fragment.start + fragment.size;
            fragment.start = at + special_size;
            fragment.size = end - fragment.start;
        }
        if ((fragment.token >= 0 || fragment.size > 0) &&
            s_spare_add(work, &spare_count, fragment))
            return -1;
    }
    s_fragment_t *swap = work->fragments;
    work->fragments = work->spare;
    work->spare = swap;
    work->fragment_count = spare_count;
    return 0;
}

static void
s_work_free(s_work_t *work)
{
    free(work->spare);
    free(work->fragments);
    free(work->heap);
    free(work->symbols);
    free(work->level);
    free(work->bytes);
    free(work->flags);
    free(work->cps);
}

static int
s_encode_fragments(const bly_tokenizer_t *self, s_work_t *work, const char *text, size_t size,
                   bool parse_special)
{
    work->fragment_capacity = 16;
    work->fragments = calloc(work->fragment_capacity, sizeof(s_fragment_t));
    work->spare = calloc(work->fragment_capacity, sizeof(s_fragment_t));
    if (!work->fragments || !work->spare)
        return -1;
    work->fragments[0] = (s_fragment_t) {0, size, -1};
    work->fragment_count = size > 0 ? 1 : 0;
    for (uint32_t i = 0; i < self->special_count; i++) {
        int32_t id = self->specials[i];
        uint8_t type = self->types[id];
        if (!parse_special && (type == BLY_TOKEN_CONTROL || type == BLY_TOKEN_UNKNOWN))
            continue;
        const char *special = self->text + self->text_offsets[id];
        size_t special_size = (size_t) (self->text_offsets[id + 1] - self->text_offsets[id]);
        if (special_size > size || !memmem(text, size, special, special_size))
            continue;   //  Cheap test first: most special tokens never occur.
        if (s_partition(self, work, text, id))
            return -1;
    }
    for (size_t f = 0; f < work->fragment_count && !work->out_of_memory; f++) {
        const s_fragment_t *fragment = &work->fragments[f];
        if (fragment->token >= 0)
            s_emit(work, fragment->token);
        else
            s_encode_raw(self, work, text + fragment->start, fragment->size);
    }
    return work->out_of_memory ? -1 : 0;
}

int
bly_tokenizer_encode(const bly_tokenizer_t *self, const char *text, size_t size, unsigned flags,
                     int32_t *ids, size_t ids_max, size_t *n_ids)
{
    bly_assert(self);
    bly_assert(text || size == 0);
    bly_assert(ids || ids_max == 0);
    bly_assert(n_ids);
    *n_ids = 0;
    if (size > BLY_TOKENIZER_TEXT_MAX)
        return -1;
    s_work_t work = {.ids = ids, .ids_max = ids_max};
    bool add_special = (flags & BLY_TOKENIZE_ADD_SPECIAL) != 0;
    if (add_special && self->add_bos)
        s_emit(&work, self->bos_id);
    int rc = s_encode_fragments(self, &work, text ? text : "", size,
                                (flags & BLY_TOKENIZE_SPECIAL) != 0);
    if (add_special && self->add_eos)
        s_emit(&work, self->eos_id);
    s_work_free(&work);
    *n_ids = work.n_ids;
    if (rc)
        return -3;
    return work.n_ids > ids_max ? -2 : 0;
}

/* ---- Decoding and accessors ----------------------------------------------- */

const char *
bly_tokenizer_piece(const bly_tokenizer_t *self, int32_t id, bool special, size_t *size)
{
    bly_assert(self);
    bly_assert(size);
    *size = 0;
    if (id < 0 || (uint32_t) id >= self->token_count)
        return NULL;
    const char *piece = self->piece + self->piece_offsets[id];
    uint8_t type = self->types[id];
    if (!special && (type == BLY_TOKEN_CONTROL || type == BLY_TOKEN_UNKNOWN))
        return piece;
    *size = (size_t) (self->piece_offsets[id + 1] - self->piece_offsets[id]);
    return piece;
}

int
bly_tokenizer_decode(const bly_tokenizer_t *self, const int32_t *ids, size_t n_ids, bool special,
                     char *out, size_t out_size, size_t *out_len)
{
    bly_assert(self);
    bly_assert(ids || n_ids == 0);
    bly_assert(out || out_size == 0);
    bly_assert(out_len);
    size_t total = 0;
    bool fits = true;
    for (size_t i = 0; i < n_ids; i++) {
        size_t size;
        const char *piece = bly_tokenizer_piece(self, ids[i], special, &size);
        if (!piece) {
            *out_len = total;
            return -1;
        }
        if (fits && size <= out_size - total)
            memcpy(out + total, piece, size);
        else
            fits = false;
        total += size;
    }
    *out_len = total;
    return fits ? 0 : -2;
}

const char *
bly_tokenizer_text(const bly_tokenizer_t *self, int32_t id, size_t *size)
{
    bly_assert(self);
    bly_assert(size);
    if (id < 0 || (uint32_t) id >= self->token_count) {
        *size = 0;
        return NULL;
    }
    *size = (size_t) (self->text_offsets[id + 1] - self->text_offsets[id]);
    return self->text + self->text_offsets[id];
}

uint32_t
bly_tokenizer_vocab_size(const bly_tokenizer_t *self)
{
    bly_assert(self);
    return self->token_count;
}

uint32_t
bly_tokenizer_merge_count(const bly_tokenizer_t *self)
{
    bly_assert(self);
    return self->merge_count;
}

bly_token_type_t
bly_tokenizer_type(const bly_tokenizer_t *self, int32_t id)
{
    bly_assert(self);
    if (id < 0 || (uint32_t) id >= self->token_count)
        return BLY_TOKEN_UNDEFINED;
    return (bly_token_type_t) self->types[id];
}

int32_t
bly_tokenizer_bos(const bly_tokenizer_t *self)
{
    bly_assert(self);
    return self->bos_id;
}

int32_t
bly_tokenizer_eos(const bly_tokenizer_t *self)
{
    bly_assert(self);
    return self->eos_id;
}

int32_t
bly_tokenizer_pad(const bly_tokenizer_t *self)
{
    bly_assert(self);
    return self->pad_id;
}

bool
bly_tokenizer_is_eog(const bly_tokenizer_t *self, int32_t id)
{
    bly_assert(self);
    for (uint32_t i = 0; i < self->eog_count; i++)
        if (self->eog[i] == id)
            return true;
    return false;
}

/* ---- Chat template -------------------------------------------------------- */

static void
s_put(char *out, size_t out_size, size_t *at, const char *text)
{
    size_t size = strlen(text);
    if (*at < out_size)
        memcpy(out + *at, text, size < out_size - *at ? size : out_size - *at);
    *at += size;
}

int
bly_chat_format_chatml(const bly_chat_message_t *messages, size_t count, bool add_assistant,
                       char *out, size_t out_size, size_t *out_len)
{
    bly_assert(messages || count == 0);
    bly_assert(out || out_size == 0);
    bly_assert(out_len);
    *out_len = 0;
    if (count > BLY_CHAT_MESSAGES_MAX)
        return -1;
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        bly_assert(messages[i].role);
        bly_assert(messages[i].content);
        s_put(out, out_size, &at, "<|im_start|>");
        s_put(out, out_size, &at, messages[i].role);
        s_put(out, out_size, &at, "\n");
        s_put(out, out_size, &at, messages[i].content);
        s_put(out, out_size, &at, "<|im_end|>\n");
    }
    if (add_assistant)
        s_put(out, out_size, &at, "<|im_start|>assistant\n");
    *out_len = at;
    if (at >= out_size)
        return -1;
    out[at] = 0;
    return 0;
}
