/*  =========================================================================
    bly_vocab - a BPE vocabulary as plain arrays, read from tokenizer.json
    ========================================================================= */

#include "bly_vocab.h"
#include "bly_limits.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bly_vocab_t {
    uint32_t token_count;       //  Tokens, padding included.
    uint32_t token_capacity;    //  Room in the token arrays.
    char **tokens;              //  Owned copies.
    size_t *token_sizes;        //  Their sizes.
    int32_t *token_types;       //  bly_token_type_t each.
    uint32_t merge_count;       //  Merges.
    char **merges;              //  Owned "a b" strings.
    size_t *merge_sizes;        //  Their sizes.
    int32_t bos_id, eos_id, pad_id;  //  -1 when none.
    bool add_bos;               //  From tokenizer_config.json.
    char *chat_template;        //  From tokenizer_config.json, or NULL.
};

void
bly_vocab_destroy(bly_vocab_t **self_p)
{
    bly_assert(self_p);
    bly_vocab_t *self = *self_p;
    if (!self)
        return;
    for (uint32_t i = 0; self->tokens && i < self->token_capacity; i++)
        free(self->tokens[i]);
    for (uint32_t i = 0; self->merges && i < self->merge_count; i++)
        free(self->merges[i]);
    free(self->tokens);
    free(self->token_sizes);
    free(self->token_types);
    free(self->merges);
    free(self->merge_sizes);
    free(self->chat_template);
    free(self);
    *self_p = NULL;
}

static int
s_reserve(bly_vocab_t *self, uint32_t count)
{
    if (count <= self->token_capacity)
        return 0;
    char **tokens = realloc(self->tokens, count * sizeof(char *));
    if (tokens)
        self->tokens = tokens;
    size_t *sizes = realloc(self->token_sizes, count * sizeof(size_t));
    if (sizes)
        self->token_sizes = sizes;
    int32_t *types = realloc(self->token_types, count * sizeof(int32_t));
    if (types)
        self->token_types = types;
    if (!tokens || !sizes || !types)
        return -1;
    for (uint32_t i = self->token_capacity; i < count; i++) {
        self->tokens[i] = NULL;
        self->token_sizes[i] = 0;
        self->token_types[i] = BLY_TOKEN_UNDEFINED;
    }
    self->token_capacity = count;
    return 0;
}

static int
s_set_token(bly_vocab_t *self, int64_t id, const char *text, size_t size, int32_t type,
            char *error, size_t error_size)
{
    if (id < 0 || id >= BLY_TOKENIZER_VOCAB_MAX || size > BLY_TOKEN_TEXT_MAX) {
        bly_error_set(error, error_size, "token id %lld or its size %zu is out of range",
                (long long) id, size);
        return -1;
    }
    if (s_reserve(self, (uint32_t) id + 1)) {
        bly_error_set(error, error_size, "out of memory");
        return -1;
    }
    free(self->tokens[id]);   //  An added token may restate a vocabulary entry.
    self->tokens[id] = malloc(size + 1);
    if (!self->tokens[id]) {
        bly_error_set(error, error_size, "out of memory");
        return -1;
    }
    memcpy(self->tokens[id], text, size);
    self->tokens[id][size] = 0;
    self->token_sizes[id] = size;
    self->token_types[id] = type;
    if ((uint32_t) id + 1 > self->token_count)
        self->token_count = (uint32_t) id + 1;
    return 0;
}

static int
s_read_vocab(bly_vocab_t *self, json_t *model, char *error, size_t error_size)
{
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab) || json_object_size(vocab) > BLY_TOKENIZER_VOCAB_MAX) {
        bly_error_set(error, error_size, "model.vocab is not an object of at most %u tokens",
                BLY_TOKENIZER_VOCAB_MAX);
        return -1;
    }
    if (s_reserve(self, (uint32_t) json_object_size(vocab))) {
        bly_error_set(error, error_size, "out of memory");
        return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach(vocab, key, value) {
        if (!json_is_integer(value)) {
            bly_error_set(error, error_size, "model.vocab['%.64s'] is not an integer id", key);
            return -1;
        }
        if (s_set_token(self, json_integer_value(value), key, strlen(key), BLY_TOKEN_NORMAL,
                        error, error_size))
            return -1;
    }
    return 0;
}

static bool
s_ends_with(const char *text, const char *suffix)
{
    size_t size = strlen(text), suffix_size = strlen(suffix);
    return size >= suffix_size && strcmp(text + size - suffix_size, suffix) == 0;
}

//  llama.cpp's converter makes an added token a control token when it is
//  marked special or looks special (<|...|>, <｜...｜>, <unused...>, a few names).
static bool
s_looks_special(const char *text)
{
    static const char *const names[] = {"<pad>", "<mask>", "<2mass>", "[@BOS@]"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(text, names[i]) == 0)
            return true;
    return (strncmp(text, "<|", 2) == 0 && s_ends_with(text, "|>")) ||
           (strncmp(text, "<\xef\xbd\x9c", 4) == 0 && s_ends_with(text, "\xef\xbd\x9c>")) ||
           (strncmp(text, "<unused", 7) == 0 && s_ends_with(text, ">"));
}

static int
s_read_added(bly_vocab_t *self, json_t *root, char *error, size_t error_size)
{
    json_t *added = json_object_get(root, "added_tokens");
    size_t index;
    json_t *token;
    json_array_foreach(added, index, token) {
        json_t *id = json_object_get(token, "id");
        json_t *content = json_object_get(token, "content");
        if (!json_is_integer(id) || !json_is_string(content)) {
            bly_error_set(error, error_size, "added_tokens[%zu] lacks an id or content", index);
            return -1;
        }
        bool special = json_is_true(json_object_get(token, "special")) ||
                       s_looks_special(json_string_value(content));
        int32_t type = special ? BLY_TOKEN_CONTROL : BLY_TOKEN_USER_DEFINED;
        if (s_set_token(self, json_integer_value(id), json_string_value(content),
                        json_string_length(content), type, error, error_size))
            return -1;
    }
    for (uint32_t i = 0; i < self->token_count; i++) {
        if (!self->tokens[i]) {
            bly_error_set(error, error_size, "token id %u is missing from the vocabulary", i);
            return -1;
        }
    }
    return 0;
}

//  One merge as "a b", from either form tokenizer.json uses.
static char *
s_merge_text(json_t *merge, size_t *size)
{
    const char *left, *right;
    if (json_is_string(merge)) {
        *size = json_string_length(merge);
        return strdup(json_string_value(merge));
    }
    if (!json_is_array(merge) || json_array_size(merge) != 2)
        return NULL;
    left = json_string_value(json_array_get(merge, 0));
    right = json_string_value(json_array_get(merge, 1));
    if (!left || !right)
        return NULL;
    *size = strlen(left) + 1 + strlen(right);
    char *text = malloc(*size + 1);
    if (text)
        snprintf(text, *size + 1, "%s %s", left, right);
    return text;
}

static int
s_read_merges(bly_vocab_t *self, json_t *model, char *error, size_t error_size)
{
    json_t *merges = json_object_get(model, "merges");
    size_t count = json_array_size(merges);
    if (!json_is_array(merges) || count > BLY_TOKENIZER_MERGES_MAX) {
        bly_error_set(error, error_size, "model.merges is not an array of at most %u merges",
                BLY_TOKENIZER_MERGES_MAX);
        return -1;
    }
    self->merges = calloc(count ? count : 1, sizeof(char *));
    self->merge_sizes = calloc(count ? count : 1, sizeof(size_t));
    if (!self->merges || !self->merge_sizes) {
        bly_error_set(error, error_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        self->merges[i] = s_merge_text(json_array_get(merges, i), &self->merge_sizes[i]);
        if (!self->merges[i]) {
            bly_error_set(error, error_size, "model.merges[%zu] is not \"a b\" or [a, b]", i);
            return -1;
        }
        self->merge_count = (uint32_t) i + 1;
    }
    return 0;
}

static int32_t
s_find(const bly_vocab_t *self, const char *text)
{
    if (!text)
        return -1;
    for (uint32_t i = self->token_count; i-- > 0;)   //  Added tokens sit at the end.
        if (self->tokens[i] && strcmp(self->tokens[i], text) == 0)
            return (int32_t) i;
    return -1;
}

//  A config token entry: "text" or {"content": "text"}.
static const char *
s_config_token(json_t *config, const char *key)
{
    json_t *value = json_object_get(config, key);
    if (json_is_object(value))
        value = json_object_get(value, "content");
    return json_string_value(value);
}

//  Special ids and extras from tokenizer_config.json beside tokenizer.json.
static void
s_read_config(bly_vocab_t *self, const char *path)
{
    self->bos_id = s_find(self, "<|endoftext|>");
    self->pad_id = self->bos_id;
    self->eos_id = s_find(self, "<|im_end|>");
    if (self->eos_id < 0)
        self->eos_id = self->bos_id;
    char config_path[BLY_PATH_MAX];
    const char *slash = strrchr(path, '/');
    int dir = slash ? (int) (slash - path + 1) : 0;
    snprintf(config_path, sizeof(config_path), "%.*stokenizer_config.json", dir, path);
    json_t *config = json_load_file(config_path, 0, NULL);
    if (!config)
        return;
    int32_t eos = s_find(self, s_config_token(config, "eos_token"));
    int32_t pad = s_find(self, s_config_token(config, "pad_token"));
    int32_t bos = s_find(self, s_config_token(config, "bos_token"));
    self->eos_id = eos >= 0 ? eos : self->eos_id;
    self->pad_id = pad >= 0 ? pad : self->pad_id;
    self->bos_id = bos >= 0 ? bos : self->bos_id;
    self->add_bos = json_is_true(json_object_get(config, "add_bos_token"));
    const char *template = json_string_value(json_object_get(config, "chat_template"));
    if (template && strlen(template) <= BLY_GGUF_STRING_MAX)
        self->chat_template = strdup(template);
    json_decref(config);
}

bly_vocab_t *
bly_vocab_from_json(const char *path, char *error, size_t error_size)
{
    bly_assert(path);
    json_error_t json_error;
    json_t *root = json_load_file(path, 0, &json_error);
    if (!root) {
        bly_error_set(error, error_size, "%s: %s (line %d)", path, json_error.text, json_error.line);
        return NULL;
    }
    bly_vocab_t *self = calloc(1, sizeof(*self));
    json_t *model = json_object_get(root, "model");
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!self) {
        bly_error_set(error, error_size, "out of memory");
    } else if (!type || strcmp(type, "BPE") != 0) {
        bly_error_set(error, error_size, "%s: model.type is not BPE", path);
        bly_vocab_destroy(&self);
    } else if (s_read_vocab(self, model, error, error_size) ||
               s_read_added(self, root, error, error_size) ||
               s_read_merges(self, model, error, error_size)) {
        bly_vocab_destroy(&self);
    } else {
        s_read_config(self, path);
    }
    json_decref(root);
    return self;
}

uint32_t
bly_vocab_size(const bly_vocab_t *self)
{
    bly_assert(self);
    return self->token_count;
}

int
bly_vocab_pad(bly_vocab_t *self, uint32_t size)
{
    bly_assert(self);
    if (size < self->token_count || size > BLY_TOKENIZER_VOCAB_MAX)
        return -1;
    if (s_reserve(self, size))
        return -1;
    for (uint32_t i = self->token_count; i < size; i++) {
        char text[32];
        int length = snprintf(text, sizeof(text), "[PAD%u]", i);
        if (s_set_token(self, i, text, (size_t) length, BLY_TOKEN_UNUSED, NULL, 0))
            return -1;
    }
    return 0;
}

void
bly_vocab_spec(const bly_vocab_t *self, bly_tokenizer_spec_t *spec)
{
    bly_assert(self);
    bly_assert(spec);
    *spec = (bly_tokenizer_spec_t) {
        .token_count = self->token_count, .tokens = (const char *const *) self->tokens,
        .token_sizes = self->token_sizes, .token_types = self->token_types,
        .merge_count = self->merge_count, .merges = (const char *const *) self->merges,
        .merge_sizes = self->merge_sizes, .bos_id = self->bos_id, .eos_id = self->eos_id,
        .pad_id = self->pad_id, .add_bos = self->add_bos, .pre = "qwen2"};
}

int
bly_vocab_write(const bly_vocab_t *self, bly_gguf_writer_t *writer)
{
    bly_assert(self);
    bly_assert(writer);
    if (bly_gguf_writer_set_str(writer, "tokenizer.ggml.model", "gpt2", 4) ||
        bly_gguf_writer_set_str(writer, "tokenizer.ggml.pre", "qwen2", 5) ||
        bly_gguf_writer_set_str_array(writer, "tokenizer.ggml.tokens",
                                      (const char *const *) self->tokens, self->token_sizes,
                                      self->token_count) ||
        bly_gguf_writer_set_array(writer, "tokenizer.ggml.token_type", BLY_GGUF_INT32,
                                  self->token_types, self->token_count) ||
        bly_gguf_writer_set_str_array(writer, "tokenizer.ggml.merges",
                                      (const char *const *) self->merges, self->merge_sizes,
                                      self->merge_count))
        return -1;
    int32_t ids[3] = {self->eos_id, self->pad_id, self->bos_id};
    const char *keys[3] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id",
                           "tokenizer.ggml.bos_token_id"};
    for (int i = 0; i < 3; i++)
        if (ids[i] >= 0 && bly_gguf_writer_set_u32(writer, keys[i], (uint32_t) ids[i]))
            return -1;
    if (bly_gguf_writer_set_bool(writer, "tokenizer.ggml.add_bos_token", self->add_bos))
        return -1;
    if (self->chat_template &&
        bly_gguf_writer_set_str(writer, "tokenizer.chat_template", self->chat_template,
                                strlen(self->chat_template)))
        return -1;
    return 0;
}
