/*  test_gguf - the GGUF reader on the shared test models and on files that lie. */

#include "bly_gguf.h"
#include "bly_gguf_writer.h"
#include "bly_limits.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
s_model_path(char *path, size_t size, const char *name)
{
    const char *shared = getenv("BLY_SHARED_DIR");
    snprintf(path, size, "%s/testdata/models/%s", shared ? shared : "../shared", name);
}

static bly_gguf_t *
s_open_model(const char *name)
{
    char path[BLY_PATH_MAX];
    char error[256] = "";
    s_model_path(path, sizeof(path), name);
    bly_gguf_t *gguf = bly_gguf_open(path, error, sizeof(error));
    ck_assert_msg(gguf, "%s: %s", path, error);
    return gguf;
}

static void
s_check_shape(const bly_gguf_t *gguf, const char *name, bly_type_t type, uint64_t ne0,
              uint64_t ne1)
{
    const bly_gguf_tensor_t *t = bly_gguf_tensor_find(gguf, name);
    ck_assert_msg(t, "tensor %s missing", name);
    ck_assert_int_eq(t->type, type);
    ck_assert_uint_eq(t->ne[0], ne0);
    ck_assert_uint_eq(t->ne[1], ne1);
    ck_assert_uint_eq(t->n_dims, ne1 == 1 ? 1 : 2);
    ck_assert_uint_eq(t->n_elements, ne0 * ne1);
    ck_assert_uint_eq(t->size, ne0 * ne1 / bly_type_block_elements(type) *
                      bly_type_block_size(type));
    ck_assert_uint_eq((uintptr_t) t->data % bly_gguf_alignment(gguf), 0);
}

//  Header and metadata values of a shared test model.
static void
s_check_metadata(const bly_gguf_t *gguf, uint32_t layers, uint64_t kv_heads)
{
    ck_assert_uint_eq(bly_gguf_version(gguf), 3);
    ck_assert_uint_eq(bly_gguf_alignment(gguf), 32);
    ck_assert_uint_eq(bly_gguf_tensor_count(gguf), 2 + 11 * (uint64_t) layers);
    const char *arch;
    size_t arch_size;
    ck_assert_int_eq(bly_gguf_get_str(gguf, "general.architecture", &arch, &arch_size), 0);
    ck_assert_uint_eq(arch_size, 5);
    ck_assert_int_eq(memcmp(arch, "qwen3", 5), 0);
    uint32_t value = 0;
    ck_assert_int_eq(bly_gguf_get_u32(gguf, "qwen3.block_count", &value), 0);
    ck_assert_uint_eq(value, layers);
    ck_assert_int_eq(bly_gguf_get_u32(gguf, "qwen3.attention.head_count_kv", &value), 0);
    ck_assert_uint_eq(value, kv_heads);
    ck_assert_int_eq(bly_gguf_get_u32(gguf, "tokenizer.ggml.bos_token_id", &value), 0);
    ck_assert_uint_eq(value, 151643);
    ck_assert_int_eq(bly_gguf_get_u32(gguf, "tokenizer.ggml.eos_token_id", &value), 0);
    ck_assert_uint_eq(value, 151645);
    float eps = 0, base = 0;
    ck_assert_int_eq(bly_gguf_get_f32(gguf, "qwen3.attention.layer_norm_rms_epsilon", &eps), 0);
    ck_assert_float_eq_tol(eps, 1e-6f, 1e-12f);
    ck_assert_int_eq(bly_gguf_get_f32(gguf, "qwen3.rope.freq_base", &base), 0);
    ck_assert_float_eq(base, 1e6f);
    bool add_bos = true;
    ck_assert_int_eq(bly_gguf_get_bool(gguf, "tokenizer.ggml.add_bos_token", &add_bos), 0);
    ck_assert(!add_bos);
    //  Wrong-type lookups fail and leave the value alone.
    ck_assert_int_eq(bly_gguf_get_f32(gguf, "qwen3.block_count", &eps), -1);
    ck_assert_int_eq(bly_gguf_get_u32(gguf, "general.architecture", &value), -1);
    ck_assert_int_eq(bly_gguf_get_u32(gguf, "no.such.key", &value), -1);
    ck_assert_uint_eq(value, 151645);
}

//  The tokenizer arrays: strings by index, numeric data in place.
static void
s_check_arrays(const bly_gguf_t *gguf)
{
    bly_gguf_value_type_t type;
    uint64_t count;
    ck_assert_int_eq(bly_gguf_get_array(gguf, "tokenizer.ggml.tokens", &type, &count), 0);
    ck_assert_int_eq(type, BLY_GGUF_STRING);
    ck_assert_uint_eq(count, 151936);
    const char *token;
    size_t size;
    ck_assert_int_eq(bly_gguf_array_str(gguf, "tokenizer.ggml.tokens", 151644, &token, &size), 0);
    ck_assert_uint_eq(size, 12);
    ck_assert_int_eq(memcmp(token, "<|im_start|>", 12), 0);
    ck_assert_int_eq(bly_gguf_array_str(gguf, "tokenizer.ggml.tokens", 0, &token, &size), 0);
    ck_assert_uint_eq(size, 1);
    ck_assert_int_eq(token[0], '!');
    ck_assert_int_eq(bly_gguf_array_str(gguf, "tokenizer.ggml.tokens", count, &token, &size), -1);
    ck_assert_int_eq(bly_gguf_get_array(gguf, "tokenizer.ggml.token_type", &type, &count), 0);
    ck_assert_int_eq(type, BLY_GGUF_INT32);
    const void *data;
    ck_assert_int_eq(bly_gguf_array_data(gguf, "tokenizer.ggml.token_type", &data), 0);
    int32_t token_type;
    memcpy(&token_type, (const int32_t *) data + 151644, 4);
    ck_assert_int_eq(token_type, 3);   //  Control.
    ck_assert_int_eq(bly_gguf_array_data(gguf, "tokenizer.ggml.tokens", &data), -1);
}

//  Shapes from the test models' README table.
static void
s_check_model(const char *file, uint32_t layers, uint64_t embd, uint64_t heads,
              uint64_t kv_heads, uint64_t head_dim, uint64_t ff, bly_type_t wtype)
{
    bly_gguf_t *gguf = s_open_model(file);
    s_check_metadata(gguf, layers, kv_heads);
    s_check_arrays(gguf);
    s_check_shape(gguf, "token_embd.weight", wtype, embd, 151936);
    s_check_shape(gguf, "output_norm.weight", BLY_TYPE_F32, embd, 1);
    ck_assert_ptr_null(bly_gguf_tensor_find(gguf, "output.weight"));
    for (uint32_t l = 0; l < layers; l++) {
        char name[64];
#define S_NAME(suffix) (snprintf(name, sizeof(name), "blk.%u." suffix, l), name)
        s_check_shape(gguf, S_NAME("attn_norm.weight"), BLY_TYPE_F32, embd, 1);
        s_check_shape(gguf, S_NAME("attn_q.weight"), wtype, embd, heads * head_dim);
        s_check_shape(gguf, S_NAME("attn_k.weight"), wtype, embd, kv_heads * head_dim);
        s_check_shape(gguf, S_NAME("attn_v.weight"), wtype, embd, kv_heads * head_dim);
        s_check_shape(gguf, S_NAME("attn_output.weight"), wtype, heads * head_dim, embd);
        s_check_shape(gguf, S_NAME("attn_q_norm.weight"), BLY_TYPE_F32, head_dim, 1);
        s_check_shape(gguf, S_NAME("attn_k_norm.weight"), BLY_TYPE_F32, head_dim, 1);
        s_check_shape(gguf, S_NAME("ffn_norm.weight"), BLY_TYPE_F32, embd, 1);
        s_check_shape(gguf, S_NAME("ffn_gate.weight"), wtype, embd, ff);
        s_check_shape(gguf, S_NAME("ffn_up.weight"), wtype, embd, ff);
        s_check_shape(gguf, S_NAME("ffn_down.weight"), wtype, ff, embd);
#undef S_NAME
    }
    bly_gguf_prefetch(gguf, bly_gguf_tensor_at(gguf, 0));
    ck_assert_ptr_null(bly_gguf_tensor_at(gguf, bly_gguf_tensor_count(gguf)));
    bly_gguf_destroy(&gguf);
    ck_assert_ptr_null(gguf);
    bly_gguf_destroy(&gguf);
}

START_TEST(test_model_f32)
{
    s_check_model("qwen3-tiny-f32.gguf", 2, 64, 4, 2, 16, 192, BLY_TYPE_F32);
}
END_TEST

START_TEST(test_model_q8)
{
    s_check_model("qwen3-tiny-q8.gguf", 3, 128, 4, 1, 32, 384, BLY_TYPE_Q8_0);
}
END_TEST

START_TEST(test_missing_file)
{
    char error[256] = "";
    bly_gguf_t *gguf = bly_gguf_open("/nonexistent/model.gguf", error, sizeof(error));
    ck_assert_ptr_null(gguf);
    ck_assert_ptr_nonnull(strstr(error, "cannot open"));
    gguf = bly_gguf_open("/", error, sizeof(error));
    ck_assert_ptr_null(gguf);
    ck_assert_ptr_nonnull(strstr(error, "not a regular file"));
}
END_TEST

/* ---- A raw byte builder for files that lie ---------------------------- */

typedef struct {
    uint8_t data[8192];
    size_t size;
} s_buf_t;

static void
s_put(s_buf_t *buf, const void *data, size_t size)
{
    ck_assert_uint_le(buf->size + size, sizeof(buf->data));
    memcpy(buf->data + buf->size, data, size);
    buf->size += size;
}

static void
s_u32(s_buf_t *buf, uint32_t value)
{
    s_put(buf, &value, 4);
}

static void
s_u64(s_buf_t *buf, uint64_t value)
{
    s_put(buf, &value, 8);
}

static void
s_str(s_buf_t *buf, const char *text)
{
    s_u64(buf, strlen(text));
    s_put(buf, text, strlen(text));
}

static void
s_header(s_buf_t *buf, uint32_t version, uint64_t tensors, uint64_t kvs)
{
    s_put(buf, "GGUF", 4);
    s_u32(buf, version);
    s_u64(buf, tensors);
    s_u64(buf, kvs);
}

static void
s_kv_u32(s_buf_t *buf, const char *key, uint32_t value)
{
    s_str(buf, key);
    s_u32(buf, BLY_GGUF_UINT32);
    s_u32(buf, value);
}

static void
s_tensor(s_buf_t *buf, const char *name, uint32_t n_dims, uint64_t ne0, uint64_t ne1,
         uint32_t type, uint64_t offset)
{
    s_str(buf, name);
    s_u32(buf, n_dims);
    s_u64(buf, ne0);
    if (n_dims > 1)
        s_u64(buf, ne1);
    for (uint32_t d = 2; d < n_dims && d < 8; d++)
        s_u64(buf, 1);
    s_u32(buf, type);
    s_u64(buf, offset);
}

static void
s_data(s_buf_t *buf, size_t size)
{
    while (buf->size % 32)
        buf->data[buf->size++] = 0;
    ck_assert_uint_le(buf->size + size, sizeof(buf->data));
    for (size_t i = 0; i < size; i++)
        buf->data[buf->size++] = (uint8_t) i;
}

//  Opens from memory and from a file: both must fail naming `expected`.
static void
s_expect_error(const s_buf_t *buf, const char *expected)
{
    char error[256] = "";
    bly_gguf_t *gguf = bly_gguf_open_memory(buf->data, buf->size, error, sizeof(error));
    ck_assert_msg(!gguf, "accepted a file that should fail with '%s'", expected);
    ck_assert_msg(strstr(error, expected), "error '%s' does not name '%s'", error, expected);
    char path[] = "/tmp/bly_gguf_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, buf->data, buf->size), (ssize_t) buf->size);
    close(fd);
    error[0] = 0;
    gguf = bly_gguf_open(path, error, sizeof(error));
    unlink(path);
    ck_assert_ptr_null(gguf);
    ck_assert_msg(strstr(error, expected), "file error '%s' does not name '%s'", error,
                  expected);
}

//  A small valid file: two F32 tensors, one u32 key.
static void
s_valid(s_buf_t *buf)
{
    buf->size = 0;
    s_header(buf, 3, 2, 1);
    s_kv_u32(buf, "a.b", 7);
    s_tensor(buf, "x", 2, 4, 2, BLY_TYPE_F32, 0);
    s_tensor(buf, "y", 1, 8, 1, BLY_TYPE_F32, 32);
    s_data(buf, 64);
}

START_TEST(test_valid_raw)
{
    s_buf_t buf;
    s_valid(&buf);
    char error[256] = "";
    bly_gguf_t *gguf = bly_gguf_open_memory(buf.data, buf.size, error, sizeof(error));
    ck_assert_msg(gguf, "%s", error);
    ck_assert_uint_eq(bly_gguf_tensor_count(gguf), 2);
    ck_assert_uint_eq(bly_gguf_tensor_find(gguf, "y")->offset, bly_gguf_data_offset(gguf) + 32);
    ck_assert_uint_eq(((const uint8_t *) bly_gguf_tensor_find(gguf, "y")->data)[1], 33);
    bly_gguf_destroy(&gguf);
    //  Version 2 has the same layout.
    buf.data[4] = 2;
    gguf = bly_gguf_open_memory(buf.data, buf.size, error, sizeof(error));
    ck_assert_msg(gguf, "%s", error);
    ck_assert_uint_eq(bly_gguf_version(gguf), 2);
    bly_gguf_destroy(&gguf);
}
END_TEST

START_TEST(test_truncated_everywhere)
{
    s_buf_t buf;
    s_valid(&buf);
    char error[256];
    for (size_t size = 0; size < buf.size; size++) {
        error[0] = 0;
        bly_gguf_t *gguf = bly_gguf_open_memory(buf.data, size, error, sizeof(error));
        ck_assert_msg(!gguf, "accepted a file truncated to %zu of %zu bytes", size, buf.size);
        ck_assert_msg(strlen(error) > 10, "no error text at size %zu", size);
    }
}
END_TEST

START_TEST(test_header_lies)
{
    s_buf_t buf;
    s_valid(&buf);
    memcpy(buf.data, "GGML", 4);
    s_expect_error(&buf, "bad magic");
    buf.size = 0;
    s_expect_error(&buf, "empty");
    for (uint32_t version = 0; version < 6; version++) {
        if (version == 2 || version == 3)
            continue;
        s_valid(&buf);
        buf.data[4] = (uint8_t) version;
        s_expect_error(&buf, "unsupported GGUF version");
    }
    s_valid(&buf);
    memcpy(buf.data + 4, "\0\0\0\3", 4);
    s_expect_error(&buf, "big-endian");
    buf.size = 0;
    s_header(&buf, 3, BLY_GGUF_TENSORS_MAX + 1, 0);
    s_expect_error(&buf, "tensor count");
    buf.size = 0;
    s_header(&buf, 3, UINT64_MAX, 0);
    s_expect_error(&buf, "tensor count");
    buf.size = 0;
    s_header(&buf, 3, 0, BLY_GGUF_KV_MAX + 1);
    s_expect_error(&buf, "metadata count");
    buf.size = 0;
    s_header(&buf, 3, 1000, 0);   //  Fewer bytes than 1000 tensor infos need.
    s_expect_error(&buf, "cannot fit");
    buf.size = 0;
    s_header(&buf, 3, 0, 3);      //  Promises three pairs, has none.
    s_expect_error(&buf, "truncated");
}
END_TEST

START_TEST(test_metadata_lies)
{
    s_buf_t buf = {.size = 0};
    s_header(&buf, 3, 0, 1);
    s_u64(&buf, UINT64_MAX);      //  Key length.
    s_expect_error(&buf, "over the limit");
    buf.size = 0;
    s_header(&buf, 3, 0, 1);
    s_u64(&buf, 100);             //  Key length past the end.
    s_put(&buf, "abc", 3);
    s_expect_error(&buf, "runs past the end");
    buf.size = 0;
    s_header(&buf, 3, 0, 1);
    s_str(&buf, "k");
    s_u32(&buf, 13);              //  Unknown value type.
    s_u32(&buf, 0);
    s_expect_error(&buf, "unknown value type 13");
    buf.size = 0;
    s_header(&buf, 3, 0, 1);
    s_str(&buf, "k");
    s_u32(&buf, BLY_GGUF_STRING);
    s_u64(&buf, BLY_GGUF_STRING_MAX + 1ull);
    s_expect_error(&buf, "over the limit");
    buf.size = 0;
    s_header(&buf, 3, 0, 1);
    s_str(&buf, "k");
    s_u32(&buf, BLY_GGUF_ARRAY);
    s_u32(&buf, BLY_GGUF_UINT32);
    s_u64(&buf, BLY_GGUF_ARRAY_MAX + 1ull);
    s_expect_error(&buf, "over the limit");
    buf.size = 0;
    s_header(&buf, 3, 0, 1);
    s_str(&buf, "k");
    s_u32(&buf, BLY_GGUF_ARRAY);
    s_u32(&buf, BLY_GGUF_STRING);
    s_u64(&buf, 1000000);         //  Strings cannot fit: rejected before allocating.
    s_expect_error(&buf, "cannot fit");
    buf.size = 0;
    s_header(&buf, 3, 0, 1);
    s_str(&buf, "k");
    s_u32(&buf, BLY_GGUF_ARRAY);
    s_u32(&buf, BLY_GGUF_UINT64);
    s_u64(&buf, 3);
    s_u64(&buf, 1);               //  Two elements missing.
    s_expect_error(&buf, "runs past the end");
    buf.size = 0;
    s_header(&buf, 3, 0, 2);
    s_kv_u32(&buf, "twice", 1);
    s_kv_u32(&buf, "twice", 2);
    s_expect_error(&buf, "'twice' appears twice");
    buf.size = 0;
    s_header(&buf, 3, 0, 1);
    s_u64(&buf, 2);
    s_put(&buf, "a\0", 2);
    s_u32(&buf, BLY_GGUF_UINT8);
    s_put(&buf, "x", 1);
    s_expect_error(&buf, "NUL");
}
END_TEST

START_TEST(test_nested_arrays)
{
    //  Arrays of arrays are valid up to the depth limit, then refused.
    for (int depth = 1; depth <= BLY_GGUF_ARRAY_DEPTH_MAX + 1; depth++) {
        s_buf_t buf = {.size = 0};
        s_header(&buf, 3, 0, 2);
        s_str(&buf, "nested");
        s_u32(&buf, BLY_GGUF_ARRAY);
        for (int d = 1; d < depth; d++) {
            s_u32(&buf, BLY_GGUF_ARRAY);
            s_u64(&buf, 1);
        }
        s_u32(&buf, BLY_GGUF_INT16);
        s_u64(&buf, 2);
        s_put(&buf, "\1\0\2\0", 4);
        s_kv_u32(&buf, "after", 5);
        char error[256] = "";
        bly_gguf_t *gguf = bly_gguf_open_memory(buf.data, buf.size, error, sizeof(error));
        if (depth <= BLY_GGUF_ARRAY_DEPTH_MAX) {
            ck_assert_msg(gguf, "depth %d: %s", depth, error);
            bly_gguf_value_type_t type;
            uint64_t count;
            ck_assert_int_eq(bly_gguf_get_array(gguf, "nested", &type, &count), 0);
            ck_assert_int_eq(type, depth == 1 ? BLY_GGUF_INT16 : BLY_GGUF_ARRAY);
            uint32_t after = 0;
            ck_assert_int_eq(bly_gguf_get_u32(gguf, "after", &after), 0);
            ck_assert_uint_eq(after, 5);
            bly_gguf_destroy(&gguf);
        } else {
            ck_assert_ptr_null(gguf);
            ck_assert_ptr_nonnull(strstr(error, "nested deeper"));
        }
    }
}
END_TEST

START_TEST(test_alignment_lies)
{
    uint32_t bad[] = {0, 3, 48, BLY_GGUF_ALIGNMENT_MAX * 2};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s_buf_t buf = {.size = 0};
        s_header(&buf, 3, 0, 1);
        s_kv_u32(&buf, "general.alignment", bad[i]);
        s_expect_error(&buf, "general.alignment");
    }
    s_buf_t buf = {.size = 0};
    s_header(&buf, 3, 0, 1);
    s_str(&buf, "general.alignment");
    s_u32(&buf, BLY_GGUF_FLOAT32);
    s_u32(&buf, 0);
    s_expect_error(&buf, "general.alignment");
    //  A tensor offset off the alignment.
    buf.size = 0;
    s_header(&buf, 3, 1, 0);
    s_tensor(&buf, "x", 1, 8, 1, BLY_TYPE_F32, 4);
    s_data(&buf, 64);
    s_expect_error(&buf, "not a multiple of the alignment");
}
END_TEST

START_TEST(test_tensor_lies)
{
    struct {
        uint32_t n_dims;
        uint64_t ne0, ne1;
        uint32_t type;
        uint64_t offset;
        const char *expected;
    } cases[] = {
        {0, 8, 1, BLY_TYPE_F32, 0, "dimensions"},
        {5, 8, 1, BLY_TYPE_F32, 0, "dimensions"},
        {1, 0, 1, BLY_TYPE_F32, 0, "dimension 0 is 0"},
        {2, 8, BLY_GGUF_DIM_VALUE_MAX + 1, BLY_TYPE_F32, 0, "dimension 1"},
        {2, BLY_GGUF_DIM_VALUE_MAX, BLY_GGUF_DIM_VALUE_MAX, BLY_TYPE_F32, 0, "overflows"},
        {1, 8, 1, 99, 0, "unknown type 99"},
        {1, 8, 1, 4, 0, "unknown type 4"},
        {1, 40, 1, BLY_TYPE_Q8_0, 0, "whole number"},
        {1, 8, 1, BLY_TYPE_F32, 64, "runs past the end"},
        {1, 8, 1, BLY_TYPE_F32, UINT64_MAX - 31, "runs past the end"},
        {1, 1024, 1, BLY_TYPE_F32, 0, "runs past the end"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s_buf_t buf = {.size = 0};
        s_header(&buf, 3, 1, 0);
        s_tensor(&buf, "t", cases[i].n_dims, cases[i].ne0, cases[i].ne1, cases[i].type,
                 cases[i].offset);
        s_data(&buf, 64);
        s_expect_error(&buf, cases[i].expected);
    }
    s_buf_t buf = {.size = 0};
    s_header(&buf, 3, 2, 0);
    s_tensor(&buf, "a", 1, 16, 1, BLY_TYPE_F32, 0);
    s_tensor(&buf, "b", 1, 8, 1, BLY_TYPE_F32, 32);
    s_data(&buf, 128);
    s_expect_error(&buf, "overlaps");
    buf.size = 0;
    s_header(&buf, 3, 2, 0);
    s_tensor(&buf, "a", 1, 8, 1, BLY_TYPE_F32, 0);
    s_tensor(&buf, "a", 1, 8, 1, BLY_TYPE_F32, 32);
    s_data(&buf, 128);
    s_expect_error(&buf, "'a' appears twice");
}
END_TEST

//  Every byte of a valid file set to a few values: opens or fails, never
//  crashes, and what opens is consistent.
START_TEST(test_byte_flips)
{
    s_buf_t valid;
    s_valid(&valid);
    uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    for (size_t at = 0; at < valid.size; at++) {
        for (size_t v = 0; v < sizeof(values); v++) {
            s_buf_t buf = valid;
            buf.data[at] = values[v];
            char error[256] = "";
            bly_gguf_t *gguf = bly_gguf_open_memory(buf.data, buf.size, error, sizeof(error));
            if (!gguf) {
                ck_assert_uint_gt(strlen(error), 0);
                continue;
            }
            for (uint64_t t = 0; t < bly_gguf_tensor_count(gguf); t++) {
                const bly_gguf_tensor_t *tensor = bly_gguf_tensor_at(gguf, t);
                ck_assert_uint_le(tensor->offset + tensor->size, buf.size);
            }
            bly_gguf_destroy(&gguf);
        }
    }
}
END_TEST

/* ---- The writer -------------------------------------------------------- */

static uint8_t *
s_write_image(bly_gguf_writer_t *writer, const float *data, size_t count, size_t *size)
{
    char *image = NULL;
    FILE *out = open_memstream(&image, size);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(bly_gguf_writer_begin(writer, out), 0);
    //  Pieces that split and span tensors.
    for (size_t i = 0; i < count; i += 5) {
        size_t n = count - i < 5 ? count - i : 5;
        ck_assert_int_eq(bly_gguf_writer_write(writer, data + i, n * sizeof(float)), 0);
    }
    ck_assert_int_eq(bly_gguf_writer_finish(writer), 0);
    ck_assert_int_eq(bly_gguf_writer_write(writer, data, 4), -1);   //  Past the end.
    fclose(out);
    return (uint8_t *) image;
}

static void s_check_raw_copy(const bly_gguf_t *gguf);

START_TEST(test_writer_round_trip)
{
    bly_gguf_writer_t *writer = bly_gguf_writer_new(64);
    ck_assert_ptr_nonnull(writer);
    ck_assert_int_eq(bly_gguf_writer_set_u32(writer, "u32", 42), 0);
    ck_assert_int_eq(bly_gguf_writer_set_u32(writer, "u32", 43), -1);   //  Duplicate.
    ck_assert_int_eq(bly_gguf_writer_set_i32(writer, "i32", -5), 0);
    ck_assert_int_eq(bly_gguf_writer_set_u64(writer, "u64", 1ull << 40), 0);
    ck_assert_int_eq(bly_gguf_writer_set_f32(writer, "f32", 0.5f), 0);
    ck_assert_int_eq(bly_gguf_writer_set_bool(writer, "bool", true), 0);
    ck_assert_int_eq(bly_gguf_writer_set_str(writer, "str", "hello", 5), 0);
    double f64 = 2.25;
    ck_assert_int_eq(bly_gguf_writer_set_scalar(writer, "f64", BLY_GGUF_FLOAT64, &f64), 0);
    int16_t i16 = 300;
    ck_assert_int_eq(bly_gguf_writer_set_scalar(writer, "i16", BLY_GGUF_INT16, &i16), 0);
    int32_t ints[3] = {1, -2, 3};
    ck_assert_int_eq(bly_gguf_writer_set_array(writer, "ints", BLY_GGUF_INT32, ints, 3), 0);
    const char *strings[] = {"a", "", "ccc"};
    size_t sizes[] = {1, 0, 3};
    ck_assert_int_eq(bly_gguf_writer_set_str_array(writer, "strs", strings, sizes, 3), 0);
    ck_assert_int_eq(bly_gguf_writer_set_scalar(writer, "bad", BLY_GGUF_STRING, &f64), -1);
    uint64_t ne_a[2] = {3, 2}, ne_b[1] = {5}, ne_bad[1] = {33};
    ck_assert_int_eq(bly_gguf_writer_add_tensor(writer, "a", BLY_TYPE_F32, 2, ne_a), 0);
    ck_assert_int_eq(bly_gguf_writer_add_tensor(writer, "a", BLY_TYPE_F32, 1, ne_b), -1);
    ck_assert_int_eq(bly_gguf_writer_add_tensor(writer, "q", BLY_TYPE_Q8_0, 1, ne_bad), -1);
    ck_assert_int_eq(bly_gguf_writer_add_tensor(writer, "b", BLY_TYPE_F32, 1, ne_b), 0);
    float data[11];
    for (int i = 0; i < 11; i++)
        data[i] = (float) i * 1.5f;
    size_t size = 0;
    uint8_t *image = s_write_image(writer, data, 11, &size);
    bly_gguf_writer_destroy(&writer);

    char error[256] = "";
    bly_gguf_t *gguf = bly_gguf_open_memory(image, size, error, sizeof(error));
    ck_assert_msg(gguf, "%s", error);
    ck_assert_uint_eq(bly_gguf_alignment(gguf), 64);
    ck_assert_uint_eq(bly_gguf_kv_count(gguf), 11);   //  With general.alignment.
    uint64_t u64 = 0;
    ck_assert_int_eq(bly_gguf_get_u64(gguf, "u64", &u64), 0);
    ck_assert_uint_eq(u64, 1ull << 40);
    uint32_t u32 = 0;
    ck_assert_int_eq(bly_gguf_get_u32(gguf, "u64", &u32), -1);   //  Does not fit.
    ck_assert_int_eq(bly_gguf_get_u32(gguf, "i32", &u32), -1);   //  Negative.
    ck_assert_int_eq(bly_gguf_get_u32(gguf, "i16", &u32), 0);
    ck_assert_uint_eq(u32, 300);
    float f32 = 0;
    ck_assert_int_eq(bly_gguf_get_f32(gguf, "f64", &f32), 0);
    ck_assert_float_eq(f32, 2.25f);
    bool flag = false;
    ck_assert_int_eq(bly_gguf_get_bool(gguf, "bool", &flag), 0);
    ck_assert(flag);
    const char *text;
    size_t text_size;
    ck_assert_int_eq(bly_gguf_get_str(gguf, "str", &text, &text_size), 0);
    ck_assert_uint_eq(text_size, 5);
    ck_assert_int_eq(bly_gguf_array_str(gguf, "strs", 1, &text, &text_size), 0);
    ck_assert_uint_eq(text_size, 0);
    ck_assert_int_eq(bly_gguf_array_str(gguf, "strs", 2, &text, &text_size), 0);
    ck_assert_int_eq(memcmp(text, "ccc", 3), 0);
    const void *raw;
    ck_assert_int_eq(bly_gguf_array_data(gguf, "ints", &raw), 0);
    ck_assert_int_eq(memcmp(raw, ints, sizeof(ints)), 0);
    const bly_gguf_tensor_t *b = bly_gguf_tensor_find(gguf, "b");
    ck_assert_uint_eq(b->offset % 64, 0);
    ck_assert_int_eq(memcmp(b->data, data + 6, 5 * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(bly_gguf_tensor_find(gguf, "a")->data, data, 6 * sizeof(float)), 0);
    s_check_raw_copy(gguf);
    bly_gguf_destroy(&gguf);
    free(image);
}
END_TEST

//  Copying every pair raw into a second file gives the same values.
static void
s_check_raw_copy(const bly_gguf_t *gguf)
{
    char error[256] = "";
    const void *raw;
    const char *text;
    size_t text_size;
    float data[1] = {0};
    bly_gguf_writer_t *copy = bly_gguf_writer_new(32);
    for (int64_t i = 0; i < (int64_t) bly_gguf_kv_count(gguf); i++) {
        size_t raw_size;
        ck_assert_int_eq(bly_gguf_kv_raw(gguf, i, &raw, &raw_size), 0);
        ck_assert_int_eq(bly_gguf_writer_set_raw(copy, bly_gguf_key_at(gguf, i),
                                                 bly_gguf_value_type(gguf, i), raw, raw_size), 0);
    }
    size_t copy_size = 0;
    uint8_t *copy_image = s_write_image(copy, data, 0, &copy_size);
    bly_gguf_writer_destroy(&copy);
    bly_gguf_t *again = bly_gguf_open_memory(copy_image, copy_size, error, sizeof(error));
    ck_assert_msg(again, "%s", error);
    ck_assert_int_eq(bly_gguf_array_str(again, "strs", 2, &text, &text_size), 0);
    ck_assert_int_eq(memcmp(text, "ccc", 3), 0);
    bly_gguf_destroy(&again);
    free(copy_image);
}

START_TEST(test_writer_refuses)
{
    ck_assert_ptr_null(bly_gguf_writer_new(0));
    ck_assert_ptr_null(bly_gguf_writer_new(48));
    bly_gguf_writer_t *writer = bly_gguf_writer_new(32);
    ck_assert_int_eq(bly_gguf_writer_set_u32(writer, "", 1), -1);
    uint64_t ne[2] = {4, 4};
    ck_assert_int_eq(bly_gguf_writer_add_tensor(writer, "t", BLY_TYPE_F32, 5, ne), -1);
    ck_assert_int_eq(bly_gguf_writer_add_tensor(writer, "t", (bly_type_t) 4, 2, ne), -1);
    ck_assert_int_eq(bly_gguf_writer_add_tensor(writer, "t", BLY_TYPE_F32, 2, ne), 0);
    char *image = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&image, &size);
    ck_assert_int_eq(bly_gguf_writer_begin(writer, out), 0);
    ck_assert_int_eq(bly_gguf_writer_set_u32(writer, "late", 1), -1);
    float half[8] = {0};
    ck_assert_int_eq(bly_gguf_writer_write(writer, half, sizeof(half)), 0);
    ck_assert_int_eq(bly_gguf_writer_finish(writer), -1);   //  Half the data missing.
    fclose(out);
    free(image);
    bly_gguf_writer_destroy(&writer);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *suite = suite_create("gguf");
    TCase *tc = tcase_create("models");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_model_f32);
    tcase_add_test(tc, test_model_q8);
    tcase_add_test(tc, test_missing_file);
    suite_add_tcase(suite, tc);
    tc = tcase_create("lies");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_valid_raw);
    tcase_add_test(tc, test_truncated_everywhere);
    tcase_add_test(tc, test_header_lies);
    tcase_add_test(tc, test_metadata_lies);
    tcase_add_test(tc, test_nested_arrays);
    tcase_add_test(tc, test_alignment_lies);
    tcase_add_test(tc, test_tensor_lies);
    tcase_add_test(tc, test_byte_flips);
    suite_add_tcase(suite, tc);
    tc = tcase_create("writer");
    tcase_add_test(tc, test_writer_round_trip);
    tcase_add_test(tc, test_writer_refuses);
    suite_add_tcase(suite, tc);
    return suite;
}

int
main(void)
{
    SRunner *runner = srunner_create(s_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
