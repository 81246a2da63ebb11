/*  test_gguf - the GGUF reader on the shared test models and on files that lie. */

#include "bly_gguf.h"
#include "bly_limits.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

//  Shapes from the test models' README table.
static void
s_check_model(const char *file, uint32_t layers, uint64_t embd, uint64_t heads,
              uint64_t kv_heads, uint64_t head_dim, uint64_t ff, bly_type_t wtype)
{
    bly_gguf_t *gguf = s_open_model(file);
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
