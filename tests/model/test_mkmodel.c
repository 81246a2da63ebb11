/*  test_mkmodel - random-weight Qwen3 files: metadata, tensors, distributions,
    determinism, tokenizer sources (GGUF and tokenizer.json) and bad options. */

#include "bly_gguf.h"
#include "bly_limits.h"
#include "bly_mkmodel.h"
#include "bly_tokenizer.h"
#include "bly_unicode.h"
#include "bly_vocab.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char s_dir[64];          //  Scratch directory for this run.
static char s_json[128];        //  A small tokenizer.json written there.

//  GPT-2 byte-level text of byte b (independent of the library's table).
static void
s_byte_text(uint32_t b, char *out)
{
    uint32_t extra = 0;
    for (uint32_t i = 0; i < b; i++)
        if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174))
            extra++;
    bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    out[bly_utf8_encode(printable ? b : 256 + extra, out)] = 0;
}

//  256 byte tokens, "ab" (256), "abc" (257); merges "a b" and ["ab", "c"];
//  added: <|end|> special (258), <tool> not special (259), <|fim|> looks special (260).
static void
s_write_json(void)
{
    json_t *vocab = json_object();
    for (uint32_t b = 0; b < 256; b++) {
        char text[8];
        s_byte_text(b, text);
        json_object_set_new(vocab, text, json_integer(b));
    }
    json_object_set_new(vocab, "ab", json_integer(256));
    json_object_set_new(vocab, "abc", json_integer(257));
    json_t *merges = json_pack("[s, [s, s]]", "a b", "ab", "c");
    json_t *added = json_pack("[{s:i, s:s, s:b}, {s:i, s:s, s:b}, {s:i, s:s, s:b}]",
                              "id", 258, "content", "<|end|>", "special", 1,
                              "id", 259, "content", "<tool>", "special", 0,
                              "id", 260, "content", "<|fim|>", "special", 0);
    json_t *root = json_pack("{s:o, s:{s:s, s:o, s:o}}", "added_tokens", added, "model", "type",
                             "BPE", "vocab", vocab, "merges", merges);
    ck_assert_int_eq(json_dump_file(root, s_json, 0), 0);
    json_decref(root);
    char config[160];
    snprintf(config, sizeof(config), "%s/tokenizer_config.json", s_dir);
    json_t *cfg = json_pack("{s:s, s:s, s:b, s:s}", "eos_token", "<|end|>", "pad_token", "<|end|>",
                            "add_bos_token", 0, "chat_template", "{{ messages }}");
    ck_assert_int_eq(json_dump_file(cfg, config, 0), 0);
    json_decref(cfg);
}

static void
s_setup(void)
{
    snprintf(s_dir, sizeof(s_dir), "/tmp/bly_mkmodel_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
    snprintf(s_json, sizeof(s_json), "%s/tokenizer.json", s_dir);
    s_write_json();
}

static void
s_teardown(void)
{
    char command[128];
    snprintf(command, sizeof(command), "rm -rf %s", s_dir);
    ck_assert_int_eq(system(command), 0);
}

static bly_mkmodel_options_t
s_small(const char *file, bly_type_t type)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", s_dir, file);
    return (bly_mkmodel_options_t) {
        .out_path = path, .tokenizer = s_json, .layers = 2, .embd = 64, .heads = 4,
        .kv_heads = 2, .head_dim = 32, .ff = 96, .context = 512, .type = type, .seed = 5};
}

static bly_gguf_t *
s_write_and_open(const bly_mkmodel_options_t *options)
{
    char error[256] = "";
    ck_assert_msg(bly_mkmodel_write(options, error, sizeof(error)) == 0, "%s", error);
    bly_gguf_t *gguf = bly_gguf_open(options->out_path, error, sizeof(error));
    ck_assert_msg(gguf, "%s", error);
    return gguf;
}

//  Mean and standard deviation of a tensor, dequantized independently.
static void
s_stats(const bly_gguf_tensor_t *t, double *mean, double *std)
{
    double sum = 0, sum2 = 0;
    for (uint64_t i = 0; i < t->n_elements; i++) {
        double v;
        if (t->type == BLY_TYPE_F32) {
            float f;
            memcpy(&f, (const char *) t->data + 4 * i, 4);
            v = f;
        } else {
            const uint8_t *block = (const uint8_t *) t->data + (i / 32) * 34;
            uint16_t h;
            memcpy(&h, block, 2);
            double d = ldexp((h & 0x3FF) + ((h >> 10) & 0x1F ? 1024 : 0),
                             ((h >> 10) & 0x1F ? ((h >> 10) & 0x1F) : 1) - 25);
            v = d * (int8_t) block[2 + i % 32];
        }
        sum += v;
        sum2 += v * v;
    }
    *mean = sum / (double) t->n_elements;
    *std = sqrt(sum2 / (double) t->n_elements - *mean * *mean);
}

START_TEST(test_f32_model)
{
    bly_mkmodel_options_t o = s_small("f32.gguf", BLY_TYPE_F32);
    bly_gguf_t *gguf = s_write_and_open(&o);
    uint32_t value = 0;
    const struct {
        const char *key;
        uint32_t expected;
    } keys[] = {{"qwen3.block_count", 2}, {"qwen3.embedding_length", 64},
                {"qwen3.attention.head_count", 4}, {"qwen3.attention.head_count_kv", 2},
                {"qwen3.attention.key_length", 32}, {"qwen3.attention.value_length", 32},
                {"qwen3.feed_forward_length", 96}, {"qwen3.context_length", 512},
                {"general.file_type", 0}, {"tokenizer.ggml.eos_token_id", 258},
                {"tokenizer.ggml.padding_token_id", 258}};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        ck_assert_msg(bly_gguf_get_u32(gguf, keys[i].key, &value) == 0, "%s", keys[i].key);
        ck_assert_uint_eq(value, keys[i].expected);
    }
    float f = 0;
    ck_assert_int_eq(bly_gguf_get_f32(gguf, "qwen3.rope.freq_base", &f), 0);
    ck_assert_float_eq(f, 1e6f);
    ck_assert_int_eq(bly_gguf_get_f32(gguf, "qwen3.attention.layer_norm_rms_epsilon", &f), 0);
    ck_assert_float_eq(f, 1e-6f);
    const char *text;
    size_t size;
    ck_assert_int_eq(bly_gguf_get_str(gguf, "general.architecture", &text, &size), 0);
    ck_assert_int_eq(memcmp(text, "qwen3", 5), 0);
    ck_assert_int_eq(bly_gguf_get_str(gguf, "tokenizer.chat_template", &text, &size), 0);
    //  Vocabulary padded to Qwen3's 151936 rows; no output.weight (tied).
    ck_assert_uint_eq(bly_gguf_tensor_count(gguf), 2 + 11 * 2);
    ck_assert_ptr_null(bly_gguf_tensor_find(gguf, "output.weight"));
    const bly_gguf_tensor_t *embd = bly_gguf_tensor_find(gguf, "token_embd.weight");
    ck_assert_uint_eq(embd->ne[1], 151936);
    ck_assert_uint_eq(bly_gguf_tensor_find(gguf, "blk.1.attn_q.weight")->ne[1], 128);
    ck_assert_uint_eq(bly_gguf_tensor_find(gguf, "blk.1.attn_k.weight")->ne[1], 64);
    ck_assert_uint_eq(bly_gguf_tensor_find(gguf, "blk.1.attn_output.weight")->ne[0], 128);
    ck_assert_uint_eq(bly_gguf_tensor_find(gguf, "blk.0.attn_q_norm.weight")->ne[0], 32);
    ck_assert_uint_eq(bly_gguf_tensor_find(gguf, "blk.0.ffn_down.weight")->ne[0], 96);
    double mean, std;
    s_stats(embd, &mean, &std);
    ck_assert_double_lt(fabs(mean), 0.01);
    ck_assert_double_lt(fabs(std - 0.5), 0.01);
    s_stats(bly_gguf_tensor_find(gguf, "blk.0.ffn_up.weight"), &mean, &std);
    ck_assert_double_lt(fabs(mean), 0.01);
    ck_assert_double_lt(fabs(std - 0.1), 0.01);
    s_stats(bly_gguf_tensor_find(gguf, "blk.0.ffn_norm.weight"), &mean, &std);
    ck_assert_double_lt(fabs(mean - 1.0), 0.01);
    ck_assert_double_lt(fabs(std - 0.02), 0.006);
    bly_gguf_destroy(&gguf);
}
END_TEST

START_TEST(test_q8_untied)
{
    bly_mkmodel_options_t o = s_small("q8.gguf", BLY_TYPE_Q8_0);
    o.untied = true;
    o.vocab = 300;
    bly_gguf_t *gguf = s_write_and_open(&o);
    uint32_t value = 0;
    ck_assert_int_eq(bly_gguf_get_u32(gguf, "general.file_type", &value), 0);
    ck_assert_uint_eq(value, 7);
    const bly_gguf_tensor_t *out = bly_gguf_tensor_find(gguf, "output.weight");
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(out->type, BLY_TYPE_Q8_0);
    ck_assert_uint_eq(out->ne[1], 300);
    ck_assert_int_eq(bly_gguf_tensor_find(gguf, "token_embd.weight")->type, BLY_TYPE_Q8_0);
    ck_assert_int_eq(bly_gguf_tensor_find(gguf, "output_norm.weight")->type, BLY_TYPE_F32);
    double mean, std;
    s_stats(bly_gguf_tensor_find(gguf, "blk.1.ffn_gate.weight"), &mean, &std);
    ck_assert_double_lt(fabs(std - 0.1), 0.01);
    //  The tokenizer from this file: padding unused, types as llama.cpp's converter sets them.
    char error[256];
    bly_tokenizer_t *tok = bly_tokenizer_new_gguf(gguf, error, sizeof(error));
    ck_assert_msg(tok, "%s", error);
    ck_assert_uint_eq(bly_tokenizer_vocab_size(tok), 300);
    ck_assert_int_eq(bly_tokenizer_type(tok, 258), BLY_TOKEN_CONTROL);
    ck_assert_int_eq(bly_tokenizer_type(tok, 259), BLY_TOKEN_USER_DEFINED);
    ck_assert_int_eq(bly_tokenizer_type(tok, 260), BLY_TOKEN_CONTROL);   //  Looks special.
    ck_assert_int_eq(bly_tokenizer_type(tok, 299), BLY_TOKEN_UNUSED);
    int32_t ids[8];
    size_t n;
    ck_assert_int_eq(bly_tokenizer_encode(tok, "abc<|end|>", 10, BLY_TOKENIZE_SPECIAL, ids, 8,
                                          &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], 257);
    ck_assert_int_eq(ids[1], 258);
    ck_assert_int_eq(bly_tokenizer_eos(tok), 258);
    bly_tokenizer_destroy(&tok);
    bly_gguf_destroy(&gguf);
}
END_TEST

static char *
s_slurp(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    ck_assert_ptr_nonnull(file);
    fseek(file, 0, SEEK_END);
    *size = (size_t) ftell(file);
    fseek(file, 0, SEEK_SET);
    char *data = malloc(*size);
    ck_assert_uint_eq(fread(data, 1, *size, file), *size);
    fclose(file);
    return data;
}

START_TEST(test_deterministic)
{
    bly_type_t types[] = {BLY_TYPE_F16, BLY_TYPE_BF16};
    for (int t = 0; t < 2; t++) {
        bly_mkmodel_options_t a = s_small("a.gguf", types[t]);
        a.vocab = 264;
        char error[256];
        ck_assert_int_eq(bly_mkmodel_write(&a, error, sizeof(error)), 0);
        size_t size_a, size_b, size_c;
        char *first = s_slurp(a.out_path, &size_a);
        ck_assert_int_eq(bly_mkmodel_write(&a, error, sizeof(error)), 0);
        char *second = s_slurp(a.out_path, &size_b);
        a.seed = 6;
        ck_assert_int_eq(bly_mkmodel_write(&a, error, sizeof(error)), 0);
        char *third = s_slurp(a.out_path, &size_c);
        ck_assert_uint_eq(size_a, size_b);
        ck_assert_int_eq(memcmp(first, second, size_a), 0);
        ck_assert_uint_eq(size_a, size_c);
        ck_assert_int_ne(memcmp(first, third, size_a), 0);
        //  The size is header plus the weights the options describe.
        bly_gguf_t *gguf = bly_gguf_open(a.out_path, error, sizeof(error));
        ck_assert_ptr_nonnull(gguf);
        ck_assert_uint_eq(bly_gguf_tensor_at(gguf, 0)->type, types[t]);
        ck_assert_uint_ge(size_a - bly_gguf_data_offset(gguf), bly_mkmodel_weight_bytes(&a, 264));
        ck_assert_uint_lt(size_a - bly_gguf_data_offset(gguf),
                          bly_mkmodel_weight_bytes(&a, 264) + 32 * 30);
        bly_gguf_destroy(&gguf);
        free(third);
        free(second);
        free(first);
    }
}
END_TEST

START_TEST(test_tokenizer_from_gguf)
{
    const char *shared = getenv("BLY_SHARED_DIR");
    char source[BLY_PATH_MAX];
    snprintf(source, sizeof(source), "%s/testdata/models/qwen3-tiny-q8.gguf",
             shared ? shared : "../shared");
    bly_mkmodel_options_t o = s_small("copy.gguf", BLY_TYPE_Q8_0);
    o.tokenizer = source;
    o.layers = 1;
    bly_gguf_t *gguf = s_write_and_open(&o);
    char error[256];
    bly_gguf_t *original = bly_gguf_open(source, error, sizeof(error));
    ck_assert_ptr_nonnull(original);
    int copied = 0;
    for (int64_t i = 0; i < (int64_t) bly_gguf_kv_count(original); i++) {
        const char *key = bly_gguf_key_at(original, i);
        if (strncmp(key, "tokenizer.", 10) != 0)
            continue;
        const void *a, *b;
        size_t size_a, size_b;
        int64_t j = bly_gguf_find_key(gguf, key);
        ck_assert_msg(j >= 0, "%s not copied", key);
        ck_assert_int_eq(bly_gguf_kv_raw(original, i, &a, &size_a), 0);
        ck_assert_int_eq(bly_gguf_kv_raw(gguf, j, &b, &size_b), 0);
        ck_assert_uint_eq(size_a, size_b);
        ck_assert_int_eq(memcmp(a, b, size_a), 0);
        copied++;
    }
    ck_assert_int_ge(copied, 9);
    ck_assert_uint_eq(bly_gguf_tensor_find(gguf, "token_embd.weight")->ne[1], 151936);
    bly_gguf_destroy(&original);
    bly_gguf_destroy(&gguf);
    o.vocab = 1000;   //  A GGUF vocabulary cannot be resized.
    ck_assert_int_eq(bly_mkmodel_write(&o, error, sizeof(error)), -1);
    ck_assert_ptr_nonnull(strstr(error, "--vocab"));
}
END_TEST

START_TEST(test_bad_options)
{
    char error[256];
    bly_mkmodel_options_t o = s_small("bad.gguf", BLY_TYPE_Q8_0);
    o.embd = 48;
    ck_assert_int_eq(bly_mkmodel_write(&o, error, sizeof(error)), -1);
    ck_assert_ptr_nonnull(strstr(error, "multiples of 32"));
    o = s_small("bad.gguf", BLY_TYPE_F32);
    o.kv_heads = 3;
    ck_assert_int_eq(bly_mkmodel_write(&o, error, sizeof(error)), -1);
    ck_assert_ptr_nonnull(strstr(error, "--kv-heads"));
    o = s_small("bad.gguf", BLY_TYPE_Q4_K);
    ck_assert_int_eq(bly_mkmodel_write(&o, error, sizeof(error)), -1);
    ck_assert_ptr_nonnull(strstr(error, "--type"));
    o = s_small("bad.gguf", BLY_TYPE_F32);
    o.layers = BLY_MKMODEL_LAYERS_MAX + 1;
    ck_assert_int_eq(bly_mkmodel_write(&o, error, sizeof(error)), -1);
    o = s_small("bad.gguf", BLY_TYPE_F32);
    o.head_dim = 31;
    ck_assert_int_eq(bly_mkmodel_write(&o, error, sizeof(error)), -1);
    o = s_small("bad.gguf", BLY_TYPE_F32);
    o.tokenizer = "/nonexistent/tokenizer.json";
    ck_assert_int_eq(bly_mkmodel_write(&o, error, sizeof(error)), -1);
    ck_assert_ptr_nonnull(strstr(error, "/nonexistent/tokenizer.json"));
    o = s_small("bad.gguf", BLY_TYPE_F32);
    o.vocab = 100;   //  Smaller than the tokenizer.
    ck_assert_int_eq(bly_mkmodel_write(&o, error, sizeof(error)), -1);
    ck_assert_ptr_nonnull(strstr(error, "smaller"));
    o = s_small("bad.gguf", BLY_TYPE_F32);
    o.out_path = "/nonexistent/dir/model.gguf";
    o.vocab = 264;
    ck_assert_int_eq(bly_mkmodel_write(&o, error, sizeof(error)), -1);
    ck_assert_ptr_nonnull(strstr(error, "cannot create"));
    ck_assert_int_eq(access("/nonexistent/dir/model.gguf.tmp", F_OK), -1);
    ck_assert_int_eq(bly_mkmodel_shape("qwen3-70b", &o), -1);
    ck_assert_int_eq(bly_mkmodel_shape("qwen3-0.6b", &o), 0);
    ck_assert_uint_eq(o.layers, 28);
    ck_assert_uint_eq(o.head_dim, 128);
    //  Qwen3-0.6B in Q8_0, counted by hand: 595,984,384 matrix weights in 34-byte
    //  blocks of 32, plus 28 * 2304 + 1024 F32 norm weights.
    o.type = BLY_TYPE_Q8_0;
    ck_assert_uint_eq(bly_mkmodel_weight_bytes(&o, 151936), 595984384ull / 32 * 34 +
                                                               (28ull * 2304 + 1024) * 4);
    ck_assert_int_eq(bly_mkmodel_shape("qwen3-8b", &o), 0);
    ck_assert(o.untied);
    ck_assert_uint_eq(o.ff, 12288);
    //  Qwen3-8B: 36 layers of 4096x(4096 + 1024 + 1024) + 4096x4096 + 3 * 4096x12288,
    //  and separate embedding and output matrices of 151936 x 4096.
    uint64_t layer = 4096ull * 6144 + 4096ull * 4096 + 3ull * 4096 * 12288;
    uint64_t matrices = 36 * layer + 2ull * 151936 * 4096;
    ck_assert_uint_eq(bly_mkmodel_weight_bytes(&o, 151936), matrices / 32 * 34 +
                                                               (36ull * (2 * 4096 + 256) + 4096) * 4);
}
END_TEST

START_TEST(test_vocab_json_errors)
{
    char path[160], error[256];
    const char *bad[] = {"{\"model\": {\"type\": \"Unigram\"}}",
                         "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 1}, \"merges\": []}}",
                         "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [7]}}",
                         "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}}}",
                         "not json"};
    const char *expected[] = {"not BPE", "missing", "merges[0]", "integer", "line"};
    snprintf(path, sizeof(path), "%s/bad.json", s_dir);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        FILE *file = fopen(path, "w");
        fputs(bad[i], file);
        fclose(file);
        bly_vocab_t *vocab = bly_vocab_from_json(path, error, sizeof(error));
        ck_assert_ptr_null(vocab);
        ck_assert_msg(strstr(error, expected[i]), "'%s' lacks '%s'", error, expected[i]);
    }
    bly_vocab_t *vocab = bly_vocab_from_json(s_json, error, sizeof(error));
    ck_assert_msg(vocab, "%s", error);
    ck_assert_uint_eq(bly_vocab_size(vocab), 261);
    ck_assert_int_eq(bly_vocab_pad(vocab, 200), -1);
    ck_assert_int_eq(bly_vocab_pad(vocab, BLY_TOKENIZER_VOCAB_MAX + 1), -1);
    ck_assert_int_eq(bly_vocab_pad(vocab, 264), 0);
    bly_tokenizer_spec_t spec;
    bly_vocab_spec(vocab, &spec);
    bly_tokenizer_t *tok = bly_tokenizer_new(&spec, error, sizeof(error));
    ck_assert_msg(tok, "%s", error);
    size_t size;
    const char *text = bly_tokenizer_text(tok, 263, &size);
    ck_assert_int_eq(memcmp(text, "[PAD263]", size), 0);
    bly_tokenizer_destroy(&tok);
    bly_vocab_destroy(&vocab);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *suite = suite_create("mkmodel");
    TCase *tc = tcase_create("write");
    tcase_add_unchecked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_f32_model);
    tcase_add_test(tc, test_q8_untied);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_tokenizer_from_gguf);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_vocab_json_errors);
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
