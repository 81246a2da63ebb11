/*  =========================================================================
    bly_mkmodel - write a random-weight Qwen3 GGUF of any shape
    ========================================================================= */

#include "bly_mkmodel.h"
#include "bly_gguf_writer.h"
#include "bly_limits.h"
#include "bly_quant.h"
#include "bly_vocab.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_QWEN3_VOCAB 151936u   //  Qwen3's embedding rows (the tokenizer has 151,669).

//  How a tensor's values are drawn.
typedef enum {
    S_DRAW_NORM,        //  1 + 0.02 N(0,1).
    S_DRAW_MATRIX,      //  0.1 N(0,1).
    S_DRAW_EMBED,       //  0.5 N(0,1).
} s_draw_t;

//  One tensor to write.
typedef struct {
    char name[64];      //  llama.cpp's name.
    bly_type_t type;    //  Storage type.
    uint32_t n_dims;    //  1 or 2.
    uint64_t ne[2];     //  Row length, rows.
    s_draw_t draw;      //  Distribution.
} s_tensor_t;

//  xoshiro256** state.
typedef struct {
    uint64_t s[4];      //  State words.
} s_rng_t;

int
bly_mkmodel_shape(const char *like, bly_mkmodel_options_t *options)
{
    bly_assert(like);
    bly_assert(options);
    static const struct {
        const char *name;
        uint32_t layers, embd, heads, kv_heads, head_dim, ff;
        bool untied;
    } shapes[] = {
        {"qwen3-0.6b", 28, 1024, 16, 8, 128, 3072, false},
        {"qwen3-8b", 36, 4096, 32, 8, 128, 12288, true},
        {"qwen3-tiny", 2, 64, 4, 2, 16, 192, false},
        {"default", 8, 512, 8, 4, 64, 1536, false},
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        if (strcmp(shapes[i].name, like) != 0)
            continue;
        options->layers = shapes[i].layers;
        options->embd = shapes[i].embd;
        options->heads = shapes[i].heads;
        options->kv_heads = shapes[i].kv_heads;
        options->head_dim = shapes[i].head_dim;
        options->ff = shapes[i].ff;
        options->untied = shapes[i].untied;
        return 0;
    }
    return -1;
}

/* ---- Random numbers ------------------------------------------------------- */

static uint64_t
s_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void
s_rng_seed(s_rng_t *rng, uint64_t seed, const char *name)
{
    uint64_t x = seed;
    for (const char *p = name; *p; p++)
        x = (x ^ (uint8_t) *p) * 0x100000001B3ull;
    for (int i = 0; i < 4; i++)
        rng->s[i] = s_splitmix64(&x);
}

static uint64_t
s_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t
s_rng_next(s_rng_t *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = s_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl(s[3], 45);
    return result;
}

//  Approximately N(0,1): four 16-bit uniforms summed, centred and scaled to
//  unit variance (each uniform has variance 1/12).
static float
s_rng_normal(s_rng_t *rng)
{
    uint64_t bits = s_rng_next(rng);
    uint32_t sum = (uint32_t) (bits & 0xFFFF) + (uint32_t) ((bits >> 16) & 0xFFFF) +
                   (uint32_t) ((bits >> 32) & 0xFFFF) + (uint32_t) (bits >> 48);
    //  Each uniform is (k + 0.5) / 65536; the sum's mean is 2.
    float u = ((float) sum + 2.0f) * (1.0f / 65536.0f);
    return (u - 2.0f) * 1.7320508f;
}

/* ---- The tensor plan ------------------------------------------------------ */

static void
s_plan_add(s_tensor_t *plan, size_t *count, const char *name, bly_type_t type, uint64_t ne0,
           uint64_t ne1, s_draw_t draw)
{
    s_tensor_t *t = &plan[(*count)++];
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->type = type;
    t->n_dims = ne1 > 1 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->draw = draw;
}

//  Tensors in llama.cpp's order. `plan` has room for 3 + 11 * layers.
static size_t
s_plan(const bly_mkmodel_options_t *o, uint32_t vocab, s_tensor_t *plan)
{
    size_t n = 0;
    uint64_t q = (uint64_t) o->heads * o->head_dim, kv = (uint64_t) o->kv_heads * o->head_dim;
    bly_type_t w = o->type, f32 = BLY_TYPE_F32;
    s_plan_add(plan, &n, "token_embd.weight", w, o->embd, vocab, S_DRAW_EMBED);
    for (uint32_t l = 0; l < o->layers; l++) {
        char name[64];
#define S_ADD(suffix, type, ne0, ne1, draw)                                                        \
    (snprintf(name, sizeof(name), "blk.%u." suffix, l),                                            \
     s_plan_add(plan, &n, name, type, ne0, ne1, draw))
        S_ADD("attn_norm.weight", f32, o->embd, 1, S_DRAW_NORM);
        S_ADD("attn_q.weight", w, o->embd, q, S_DRAW_MATRIX);
        S_ADD("attn_k.weight", w, o->embd, kv, S_DRAW_MATRIX);
        S_ADD("attn_v.weight", w, o->embd, kv, S_DRAW_MATRIX);
        S_ADD("attn_q_norm.weight", f32, o->head_dim, 1, S_DRAW_NORM);
        S_ADD("attn_k_norm.weight", f32, o->head_dim, 1, S_DRAW_NORM);
        S_ADD("attn_output.weight", w, q, o->embd, S_DRAW_MATRIX);
        S_ADD("ffn_norm.weight", f32, o->embd, 1, S_DRAW_NORM);
        S_ADD("ffn_gate.weight", w, o->embd, o->ff, S_DRAW_MATRIX);
        S_ADD("ffn_up.weight", w, o->embd, o->ff, S_DRAW_MATRIX);
        S_ADD("ffn_down.weight", w, o->ff, o->embd, S_DRAW_MATRIX);
#undef S_ADD
    }
    s_plan_add(plan, &n, "output_norm.weight", f32, o->embd, 1, S_DRAW_NORM);
    if (o->untied)
        s_plan_add(plan, &n, "output.weight", w, o->embd, vocab, S_DRAW_MATRIX);
    return n;
}

static uint64_t
s_tensor_bytes(const s_tensor_t *t)
{
    return t->ne[0] * t->ne[1] / bly_type_block_elements(t->type) * bly_type_block_size(t->type);
}

uint64_t
bly_mkmodel_weight_bytes(const bly_mkmodel_options_t *options, uint32_t vocab)
{
    bly_assert(options);
    bly_assert(options->layers <= BLY_MKMODEL_LAYERS_MAX);
    s_tensor_t *plan = calloc(3 + 11 * (size_t) options->layers, sizeof(*plan));
    bly_assert(plan);
    size_t n = s_plan(options, vocab, plan);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += s_tensor_bytes(&plan[i]);
    free(plan);
    return total;
}

static int
s_check_options(const bly_mkmodel_options_t *o, char *error, size_t error_size)
{
    bool type_ok = o->type == BLY_TYPE_F32 || o->type == BLY_TYPE_F16 ||
                   o->type == BLY_TYPE_BF16 || o->type == BLY_TYPE_Q8_0;
    const char *bad = NULL;
    if (!o->out_path || !o->tokenizer)
        bad = "--out and --tokenizer are required";
    else if (!type_ok)
        bad = "--type must be F32, F16, BF16 or Q8_0";
    else if (o->layers < 1 || o->layers > BLY_MKMODEL_LAYERS_MAX)
        bad = "--layers is out of range";
    else if (o->embd < 1 || o->embd > BLY_MKMODEL_WIDTH_MAX || o->ff < 1 ||
             o->ff > BLY_MKMODEL_WIDTH_MAX || o->context < 1)
        bad = "--embd, --ff or the context length is out of range";
    else if (o->heads < 1 || o->heads > BLY_MKMODEL_HEADS_MAX || o->kv_heads < 1 ||
             o->heads % o->kv_heads != 0)
        bad = "--heads must be a multiple of --kv-heads, both 1..1024";
    else if (o->head_dim < 1 || o->head_dim > BLY_MKMODEL_HEAD_DIM_MAX || o->head_dim % 2 ||
             (uint64_t) o->heads * o->head_dim > BLY_MKMODEL_WIDTH_MAX)
        bad = "--head-dim must be even, and heads * head-dim in range";
    else if (o->type == BLY_TYPE_Q8_0 &&
             (o->embd % 32 || o->ff % 32 || (o->heads * o->head_dim) % 32))
        bad = "Q8_0 needs --embd, --ff and heads * head-dim to be multiples of 32";
    if (bad) {
        bly_error_set(error, error_size, "%s", bad);
        return -1;
    }
    return 0;
}

/* ---- Metadata ------------------------------------------------------------- */

static uint32_t
s_file_type(bly_type_t type)
{
    switch (type) {
    case BLY_TYPE_F16: return 1;     //  LLAMA_FTYPE_MOSTLY_F16
    case BLY_TYPE_Q8_0: return 7;    //  LLAMA_FTYPE_MOSTLY_Q8_0
    case BLY_TYPE_BF16: return 32;   //  LLAMA_FTYPE_MOSTLY_BF16
    default: return 0;               //  LLAMA_FTYPE_ALL_F32
    }
}

static int
s_write_hparams(bly_gguf_writer_t *w, const bly_mkmodel_options_t *o)
{
    const char *name = o->name ? o->name : "blyan-random";
    const struct {
        const char *key;
        uint32_t value;
    } u32s[] = {
        {"qwen3.block_count", o->layers},
        {"qwen3.context_length", o->context},
        {"qwen3.embedding_length", o->embd},
        {"qwen3.feed_forward_length", o->ff},
        {"qwen3.attention.head_count", o->heads},
        {"qwen3.attention.head_count_kv", o->kv_heads},
        {"qwen3.attention.key_length", o->head_dim},
        {"qwen3.attention.value_length", o->head_dim},
        {"general.file_type", s_file_type(o->type)},
        {"general.quantization_version", 2},
    };
    if (bly_gguf_writer_set_str(w, "general.architecture", "qwen3", 5) ||
        bly_gguf_writer_set_str(w, "general.type", "model", 5) ||
        bly_gguf_writer_set_str(w, "general.name", name, strlen(name)) ||
        bly_gguf_writer_set_f32(w, "qwen3.rope.freq_base", 1e6f) ||
        bly_gguf_writer_set_f32(w, "qwen3.attention.layer_norm_rms_epsilon", 1e-6f))
        return -1;
    for (size_t i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++)
        if (bly_gguf_writer_set_u32(w, u32s[i].key, u32s[i].value))
            return -1;
    return 0;
}

static bool
s_is_gguf(const char *path)
{
    FILE *file = fopen(path, "rb");
    char magic[4] = {0};
    bool gguf = file && fread(magic, 1, 4, file) == 4 && memcmp(magic, "GGUF", 4) == 0;
    if (file)
        fclose(file);
    return gguf;
}

//  Copy every tokenizer.* pair of a GGUF file as it is.
static int
s_tokenizer_from_gguf(bly_gguf_writer_t *w, const bly_mkmodel_options_t *o, uint32_t *vocab,
                      char *error, size_t error_size)
{
    bly_gguf_t *gguf = bly_gguf_open(o->tokenizer, error, error_size);
    if (!gguf)
        return -1;
    int rc = 0;
    bly_gguf_value_type_t type;
    uint64_t count = 0;
    if (bly_gguf_get_array(gguf, "tokenizer.ggml.tokens", &type, &count) || count == 0 ||
        count > BLY_TOKENIZER_VOCAB_MAX) {
        bly_error_set(error, error_size, "%s has no tokenizer.ggml.tokens", o->tokenizer);
        rc = -1;
    } else if (o->vocab && o->vocab != count) {
        bly_error_set(error, error_size, "--vocab %u differs from the %llu tokens of %s", o->vocab,
                (unsigned long long) count, o->tokenizer);
        rc = -1;
    }
    for (int64_t i = 0; rc == 0 && i < (int64_t) bly_gguf_kv_count(gguf); i++) {
        const char *key = bly_gguf_key_at(gguf, i);
        const void *raw;
        size_t size;
        if (strncmp(key, "tokenizer.", 10) != 0)
            continue;
        if (bly_gguf_kv_raw(gguf, i, &raw, &size) ||
            bly_gguf_writer_set_raw(w, key, bly_gguf_value_type(gguf, i), raw, size)) {
            bly_error_set(error, error_size, "cannot copy %s", key);
            rc = -1;
        }
    }
    *vocab = (uint32_t) count;
    bly_gguf_destroy(&gguf);
    return rc;
}

static int
s_tokenizer_from_json(bly_gguf_writer_t *w, const bly_mkmodel_options_t *o, uint32_t *vocab,
                      char *error, size_t error_size)
{
    bly_vocab_t *source = bly_vocab_from_json(o->tokenizer, error, error_size);
    if (!source)
        return -1;
    uint32_t size = bly_vocab_size(source);
    uint32_t target = o->vocab ? o->vocab : (size < S_QWEN3_VOCAB ? S_QWEN3_VOCAB : size);
    int rc = 0;
    if (bly_vocab_pad(source, target)) {
        bly_error_set(error, error_size, "--vocab %u is smaller than the %u tokens of %s", target,
                size, o->tokenizer);
        rc = -1;
    } else if (bly_vocab_write(source, w)) {
        bly_error_set(error, error_size, "cannot write the tokenizer metadata");
        rc = -1;
    }
    *vocab = target;
    bly_vocab_destroy(&source);
    return rc;
}

/* ---- Data ----------------------------------------------------------------- */

//  Draw and write one tensor, row by row.
static int
s_write_tensor(bly_gguf_writer_t *w, const s_tensor_t *t, uint64_t seed, float *row,
               void *packed)
{
    s_rng_t rng;
    s_rng_seed(&rng, seed, t->name);
    float scale = t->draw == S_DRAW_NORM ? 0.02f : t->draw == S_DRAW_MATRIX ? 0.1f : 0.5f;
    float offset = t->draw == S_DRAW_NORM ? 1.0f : 0.0f;
    size_t n = (size_t) t->ne[0];
    size_t row_bytes = n / bly_type_block_elements(t->type) * bly_type_block_size(t->type);
    for (uint64_t r = 0; r < t->ne[1]; r++) {
        for (size_t i = 0; i < n; i++)
            row[i] = offset + scale * s_rng_normal(&rng);
        const void *data = packed;
        if (t->type == BLY_TYPE_F32)
            data = row;
        else if (t->type == BLY_TYPE_F16)
            bly_quantize_row_f16(row, packed, n);
        else if (t->type == BLY_TYPE_BF16)
            bly_quantize_row_bf16(row, packed, n);
        else
            bly_quantize_row_q8_0(row, packed, n);
        if (bly_gguf_writer_write(w, data, row_bytes))
            return -1;
    }
    return 0;
}

static int
s_write_file(bly_gguf_writer_t *w, const bly_mkmodel_options_t *o, const s_tensor_t *plan,
             size_t count, const char *path, char *error, size_t error_size)
{
    FILE *file = fopen(path, "wb");
    if (!file) {
        bly_error_set(error, error_size, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    size_t buffer_size = 1u << 22;   //  Large writes: the disk, not the calls, sets the pace.
    char *buffer = malloc(buffer_size);
    if (buffer)
        setvbuf(file, buffer, _IOFBF, buffer_size);
    size_t width = o->embd > o->ff ? o->embd : o->ff;
    width = width > (size_t) o->heads * o->head_dim ? width : (size_t) o->heads * o->head_dim;
    float *row = malloc(width * sizeof(float));
    void *packed = malloc(width * sizeof(float));
    int rc = row && packed && bly_gguf_writer_begin(w, file) == 0 ? 0 : -1;
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = s_write_tensor(w, &plan[i], o->seed, row, packed);
    if (rc == 0)
        rc = bly_gguf_writer_finish(w);
    if (fclose(file) != 0)
        rc = -1;
    if (rc)
        bly_error_set(error, error_size, "cannot write %s: %s", path, strerror(errno));
    free(buffer);
    free(packed);
    free(row);
    return rc;
}

int
bly_mkmodel_write(const bly_mkmodel_options_t *options, char *error, size_t error_size)
{
    bly_assert(options);
    if (s_check_options(options, error, error_size))
        return -1;
    if (strlen(options->out_path) >= BLY_PATH_MAX) {
        bly_error_set(error, error_size, "--out path is too long");
        return -1;
    }
    char tmp_path[BLY_PATH_MAX + 8];
    snprintf(tmp_path, sizeof(tmp_path), "%s.tmp", options->out_path);
    bly_gguf_writer_t *w = bly_gguf_writer_new(32);
    s_tensor_t *plan = calloc(3 + 11 * (size_t) options->layers, sizeof(*plan));
    uint32_t vocab = 0;
    int rc = -1;
    if (!w || !plan) {
        bly_error_set(error, error_size, "out of memory");
        goto out_free;
    }
    if (s_write_hparams(w, options)) {
        bly_error_set(error, error_size, "cannot write the metadata");
        goto out_free;
    }
    rc = s_is_gguf(options->tokenizer)
             ? s_tokenizer_from_gguf(w, options, &vocab, error, error_size)
             : s_tokenizer_from_json(w, options, &vocab, error, error_size);
    if (rc)
        goto out_free;
    size_t count = s_plan(options, vocab, plan);
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = bly_gguf_writer_add_tensor(w, plan[i].name, plan[i].type, plan[i].n_dims,
                                        plan[i].ne);
    if (rc)
        bly_error_set(error, error_size, "cannot declare the tensors");
    else
        rc = s_write_file(w, options, plan, count, tmp_path, error, error_size);
    if (rc == 0 && rename(tmp_path, options->out_path) != 0) {
        bly_error_set(error, error_size, "cannot rename %s: %s", tmp_path, strerror(errno));
        rc = -1;
    }
    if (rc)
        remove(tmp_path);
out_free:
    free(plan);
    bly_gguf_writer_destroy(&w);
    return rc;
}
