/*  test_tokenizer - Qwen2 byte-level BPE against llama.cpp's vectors and the golden prompts. */

#include "bly_gguf.h"
#include "bly_gguf_writer.h"
#include "bly_limits.h"
#include "bly_tokenizer.h"
#include "bly_unicode.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bly_tokenizer_t *s_tok;   //  Built once in the parent (unchecked fixture).

static void
s_path(char *path, size_t size, const char *relative)
{
    const char *shared = getenv("BLY_SHARED_DIR");
    snprintf(path, size, "%s/testdata/%s", shared ? shared : "../shared", relative);
}

static bly_tokenizer_t *
s_load(const char *model)
{
    char path[BLY_PATH_MAX], error[256] = "";
    s_path(path, sizeof(path), model);
    bly_gguf_t *gguf = bly_gguf_open(path, error, sizeof(error));
    ck_assert_msg(gguf, "%s", error);
    bly_tokenizer_t *tok = bly_tokenizer_new_gguf(gguf, error, sizeof(error));
    ck_assert_msg(tok, "%s", error);
    bly_gguf_destroy(&gguf);
    return tok;
}

static void
s_setup(void)
{
    s_tok = s_load("models/qwen3-tiny-f32.gguf");
}

static void
s_teardown(void)
{
    bly_tokenizer_destroy(&s_tok);
}

static char *
s_read_file(const char *relative, size_t *size)
{
    char path[BLY_PATH_MAX];
    s_path(path, sizeof(path), relative);
    FILE *file = fopen(path, "rb");
    ck_assert_msg(file, "cannot open %s", path);
    fseek(file, 0, SEEK_END);
    long length = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *data = malloc((size_t) length + 1);
    ck_assert_uint_eq(fread(data, 1, (size_t) length, file), (size_t) length);
    fclose(file);
    data[length] = 0;
    *size = (size_t) length;
    return data;
}

//  Encode and compare with expected ids; decode back and compare with the text.
static void
s_check_encode(const bly_tokenizer_t *tok, const char *text, size_t size, unsigned flags,
               const int32_t *expected, size_t n_expected, const char *label)
{
    int32_t ids[4096];
    size_t n = 0;
    ck_assert_int_eq(bly_tokenizer_encode(tok, text, size, flags, ids, 4096, &n), 0);
    ck_assert_msg(n == n_expected, "%s: %zu ids, expected %zu", label, n, n_expected);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(ids[i] == expected[i], "%s: id %zu is %d, expected %d", label, i, ids[i],
                      expected[i]);
    static char decoded[65536];
    size_t decoded_size = 0;
    ck_assert_int_eq(bly_tokenizer_decode(tok, ids, n, true, decoded, sizeof(decoded),
                                          &decoded_size), 0);
    ck_assert_msg(decoded_size == size && memcmp(decoded, text, size) == 0,
                  "%s: decoding does not give the text back", label);
}

START_TEST(test_llama_cpp_vectors)
{
    size_t inp_size, out_size;
    char *inp = s_read_file("tokenizer/ggml-vocab-qwen2.gguf.inp", &inp_size);
    char *out = s_read_file("tokenizer/ggml-vocab-qwen2.gguf.out", &out_size);
    const char *separator = "\n__ggml_vocab_test__\n";
    size_t separator_size = strlen(separator);
    char *text = inp, *line = out;
    int cases = 0;
    while (text < inp + inp_size) {
        char *end = strstr(text, separator);
        ck_assert_ptr_nonnull(end);
        char *line_end = strchr(line, '\n');
        ck_assert_ptr_nonnull(line_end);
        *line_end = 0;
        int32_t expected[1024];
        size_t n_expected = 0;
        for (char *p = line; *p;) {
            char *next;
            long id = strtol(p, &next, 10);
            if (next == p)
                break;
            expected[n_expected++] = (int32_t) id;
            p = next;
        }
        char label[32];
        snprintf(label, sizeof(label), "vector %d", cases);
        s_check_encode(s_tok, text, (size_t) (end - text), 0, expected, n_expected, label);
        cases++;
        text = end + separator_size;
        line = line_end + 1;
    }
    ck_assert_int_eq(cases, 46);
    free(out);
    free(inp);
}
END_TEST

static void
s_check_golden(const bly_tokenizer_t *tok, const char *file)
{
    char path[BLY_PATH_MAX];
    s_path(path, sizeof(path), file);
    json_error_t json_error;
    json_t *root = json_load_file(path, 0, &json_error);
    ck_assert_msg(root, "%s: %s", path, json_error.text);
    json_t *prompts = json_object_get(root, "prompts");
    ck_assert_uint_eq(json_array_size(prompts), 3);
    for (size_t p = 0; p < json_array_size(prompts); p++) {
        json_t *prompt = json_array_get(prompts, p);
        const char *text = json_string_value(json_object_get(prompt, "text"));
        ck_assert_ptr_nonnull(text);
        bool special = json_is_true(json_object_get(prompt, "parse_special"));
        json_t *ids = json_object_get(prompt, "prompt_ids");
        int32_t expected[256];
        size_t n = json_array_size(ids);
        for (size_t i = 0; i < n; i++)
            expected[i] = (int32_t) json_integer_value(json_array_get(ids, i));
        char label[64];
        snprintf(label, sizeof(label), "%s prompt %zu", file, p + 1);
        s_check_encode(tok, text, strlen(text), special ? BLY_TOKENIZE_SPECIAL : 0, expected, n,
                       label);
        //  Adding special tokens changes nothing: Qwen3 adds no BOS.
        s_check_encode(tok, text, strlen(text),
                       BLY_TOKENIZE_ADD_SPECIAL | (special ? BLY_TOKENIZE_SPECIAL : 0u),
                       expected, n, label);
    }
    json_decref(root);
}

START_TEST(test_golden_prompts)
{
    s_check_golden(s_tok, "models/qwen3-tiny-f32.golden.json");
    bly_tokenizer_t *q8 = s_load("models/qwen3-tiny-q8.gguf");
    s_check_golden(q8, "models/qwen3-tiny-q8.golden.json");
    bly_tokenizer_destroy(&q8);
}
END_TEST

START_TEST(test_special_tokens)
{
    const char *text = "<|im_start|>user<|im_end|>";
    int32_t ids[64];
    size_t n = 0;
    ck_assert_int_eq(bly_tokenizer_encode(s_tok, text, strlen(text), BLY_TOKENIZE_SPECIAL, ids,
                                          64, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(ids[0], 151644);
    ck_assert_int_eq(ids[1], 872);
    ck_assert_int_eq(ids[2], 151645);
    //  Without --special the control tokens are plain text.
    ck_assert_int_eq(bly_tokenizer_encode(s_tok, text, strlen(text), 0, ids, 64, &n), 0);
    ck_assert_uint_gt(n, 3);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_lt(ids[i], 151643);
    //  User-defined tokens are split out either way, as llama.cpp does.
    const char *think = "a<think>b";
    ck_assert_int_eq(bly_tokenizer_encode(s_tok, think, strlen(think), 0, ids, 64, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(ids[1], 151667);
    ck_assert_int_eq(bly_tokenizer_type(s_tok, 151667), BLY_TOKEN_USER_DEFINED);
    ck_assert_int_eq(bly_tokenizer_type(s_tok, 151644), BLY_TOKEN_CONTROL);
    ck_assert_int_eq(bly_tokenizer_type(s_tok, 151935), BLY_TOKEN_UNUSED);
    ck_assert_int_eq(bly_tokenizer_type(s_tok, 151936), BLY_TOKEN_UNDEFINED);
    //  Adjacent and repeated special tokens.
    const char *many = "<|im_end|><|im_end|>x<|im_start|>";
    ck_assert_int_eq(bly_tokenizer_encode(s_tok, many, strlen(many), BLY_TOKENIZE_SPECIAL, ids,
                                          64, &n), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(ids[0], 151645);
    ck_assert_int_eq(ids[1], 151645);
    ck_assert_int_eq(ids[3], 151644);
    ck_assert(bly_tokenizer_is_eog(s_tok, 151645));
    ck_assert(bly_tokenizer_is_eog(s_tok, 151643));
    ck_assert(!bly_tokenizer_is_eog(s_tok, 151644));
    ck_assert_int_eq(bly_tokenizer_bos(s_tok), 151643);
    ck_assert_int_eq(bly_tokenizer_eos(s_tok), 151645);
    ck_assert_int_eq(bly_tokenizer_pad(s_tok), 151643);
    ck_assert_uint_eq(bly_tokenizer_vocab_size(s_tok), 151936);
    ck_assert_uint_eq(bly_tokenizer_merge_count(s_tok), 151387);
}
END_TEST

START_TEST(test_decode)
{
    char out[64];
    size_t size = 0;
    int32_t im_start = 151644, pad = 151900, think = 151667;
    ck_assert_int_eq(bly_tokenizer_decode(s_tok, &im_start, 1, false, out, sizeof(out), &size), 0);
    ck_assert_uint_eq(size, 0);
    ck_assert_int_eq(bly_tokenizer_decode(s_tok, &im_start, 1, true, out, sizeof(out), &size), 0);
    ck_assert_uint_eq(size, 12);
    ck_assert_int_eq(memcmp(out, "<|im_start|>", 12), 0);
    ck_assert_int_eq(bly_tokenizer_decode(s_tok, &pad, 1, true, out, sizeof(out), &size), 0);
    ck_assert_uint_eq(size, 0);
    ck_assert_int_eq(bly_tokenizer_decode(s_tok, &think, 1, false, out, sizeof(out), &size), 0);
    ck_assert_uint_eq(size, 7);
    int32_t bad[2] = {0, 151936};
    ck_assert_int_eq(bly_tokenizer_decode(s_tok, bad, 2, true, out, sizeof(out), &size), -1);
    bad[1] = -1;
    ck_assert_int_eq(bly_tokenizer_decode(s_tok, bad, 2, true, out, sizeof(out), &size), -1);
    //  Too small a buffer: -2 and the size needed.
    int32_t hello[2] = {9707, 1879};
    ck_assert_int_eq(bly_tokenizer_decode(s_tok, hello, 2, true, out, 4, &size), -2);
    ck_assert_uint_eq(size, 11);
    //  Every byte token decodes to its one byte, and ids split inside a
    //  UTF-8 sequence still concatenate to the exact bytes.
    for (int b = 0; b < 256; b++) {
        char byte = (char) b;
        int32_t id;
        size_t n;
        ck_assert_int_eq(bly_tokenizer_encode(s_tok, &byte, 1, 0, &id, 1, &n), b < 0x80 ? 0 : 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(bly_tokenizer_decode(s_tok, &id, 1, true, out, sizeof(out), &size), 0);
        if (b < 0x80) {
            ck_assert_uint_eq(size, 1);
            ck_assert_int_eq((uint8_t) out[0], b);
        }
    }
    size_t piece_size;
    ck_assert_ptr_null(bly_tokenizer_piece(s_tok, 151936, true, &piece_size));
    const char *text = bly_tokenizer_text(s_tok, 21927, &piece_size);
    ck_assert_uint_eq(piece_size, 7);   //  "ĠHello": Ġ is two bytes.
    ck_assert_int_eq(bly_tokenizer_find(s_tok, text, piece_size), 21927);
    ck_assert_int_eq(bly_tokenizer_find(s_tok, "no such token at all", 20), -1);
}
END_TEST

START_TEST(test_invalid_utf8)
{
    //  Each invalid byte becomes U+FFFD, as in llama.cpp.
    const char *replacement = "\xEF\xBF\xBD";
    int32_t expected[16], ids[16];
    size_t n_expected, n;
    ck_assert_int_eq(bly_tokenizer_encode(s_tok, replacement, 3, 0, expected, 16, &n_expected), 0);
    const char *cases[] = {"\xFF", "\x80", "\xC3", "\xE4\xBD", "\xF0\x9F\x98", "\xF8\x88\x80\x80"};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        ck_assert_int_eq(bly_tokenizer_encode(s_tok, cases[c], 1, 0, ids, 16, &n), 0);
        ck_assert_uint_eq(n, n_expected);
        ck_assert_int_eq(memcmp(ids, expected, n * sizeof(int32_t)), 0);
    }
    //  Overlong forms are decoded as llama.cpp does: C0 B0 is '0'.
    int32_t zero;
    ck_assert_int_eq(bly_tokenizer_encode(s_tok, "\xC0\xB0", 2, 0, ids, 16, &n), 0);
    ck_assert_int_eq(bly_tokenizer_encode(s_tok, "0", 1, 0, &zero, 1, &n_expected), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ids[0], zero);
    //  A truncated sequence in the middle: replacement, then the rest decoded normally.
    const char *mixed = "a\xE4\xBD" "b";
    ck_assert_int_eq(bly_tokenizer_encode(s_tok, mixed, 4, 0, ids, 16, &n), 0);
    char out[64];
    size_t size;
    ck_assert_int_eq(bly_tokenizer_decode(s_tok, ids, n, true, out, sizeof(out), &size), 0);
    ck_assert_uint_eq(size, 8);
    ck_assert_int_eq(memcmp(out, "a\xEF\xBF\xBD\xEF\xBF\xBD" "b", 8), 0);
    //  UTF-8 decoding itself.
    size_t pos = 0;
    ck_assert_uint_eq(bly_utf8_decode("\xF0\x9F\x98\x81", 4, &pos), 0x1F601);
    ck_assert_uint_eq(pos, 4);
    ck_assert(bly_unicode_flags('a') & BLY_UNICODE_LETTER);
    ck_assert(bly_unicode_flags(0x4E2D) & BLY_UNICODE_LETTER);
    ck_assert(bly_unicode_flags(0x0663) & BLY_UNICODE_NUMBER);
    ck_assert(bly_unicode_flags(0x3000) & BLY_UNICODE_WHITESPACE);
    ck_assert(bly_unicode_flags(0x85) & BLY_UNICODE_WHITESPACE);
    ck_assert_uint_eq(bly_unicode_flags(0x1C), 0);
    ck_assert_uint_eq(bly_unicode_flags(0x110000), 0);
}
END_TEST

START_TEST(test_empty_and_bounds)
{
    int32_t ids[8];
    size_t n = 99;
    ck_assert_int_eq(bly_tokenizer_encode(s_tok, "", 0, BLY_TOKENIZE_SPECIAL, ids, 8, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(bly_tokenizer_encode(s_tok, NULL, 0, 0, NULL, 0, &n), 0);
    ck_assert_uint_eq(n, 0);
    //  Not enough room: -2, the count needed, and the first ids written.
    const char *text = "Hello world, again and again";
    ck_assert_int_eq(bly_tokenizer_encode(s_tok, text, strlen(text), 0, ids, 2, &n), -2);
    ck_assert_uint_gt(n, 2);
    ck_assert_int_eq(ids[0], 9707);
    ck_assert_int_eq(ids[1], 1879);
}
END_TEST

START_TEST(test_long_input)
{
    //  The limit is accepted, one byte more is refused.
    size_t size = BLY_TOKENIZER_TEXT_MAX;
    char *text = malloc(size + 1);
    for (size_t i = 0; i < size + 1; i++)
        text[i] = "ab cd\n12"[i % 8];
    size_t max = size;
    int32_t *ids = malloc(max * sizeof(int32_t));
    size_t n = 0;
    ck_assert_int_eq(bly_tokenizer_encode(s_tok, text, size + 1, 0, ids, max, &n), -1);
    ck_assert_int_eq(bly_tokenizer_encode(s_tok, text, size, 0, ids, max, &n), 0);
    ck_assert_uint_gt(n, size / 8);
    char *back = malloc(size);
    size_t back_size = 0;
    ck_assert_int_eq(bly_tokenizer_decode(s_tok, ids, n, true, back, size, &back_size), 0);
    ck_assert_uint_eq(back_size, size);
    ck_assert_int_eq(memcmp(back, text, size), 0);
    //  One piece as long as the limit (a single run of letters).
    memset(text, 'q', size);
    ck_assert_int_eq(bly_tokenizer_encode(s_tok, text, size, 0, ids, max, &n), 0);
    ck_assert_int_eq(bly_tokenizer_decode(s_tok, ids, n, true, back, size, &back_size), 0);
    ck_assert_uint_eq(back_size, size);
    ck_assert_int_eq(memcmp(back, text, size), 0);
    free(back);
    free(ids);
    free(text);
}
END_TEST

START_TEST(test_round_trip_random)
{
    //  Random valid UTF-8 (ASCII, accents, CJK, emoji, whitespace) round-trips.
    static const char *const parts[] = {"a", "Z", " ", "  ", "\n", "\r\n", "\t", "7", "'s", "é",
                                        "中", "😀", "!", "...", "\xC2\xA0", "\xE3\x80\x80",
                                        "<|im_start|>", "<think>", "ÿ", "\x01"};
    uint64_t state = 12345;
    char text[512];
    for (int round = 0; round < 300; round++) {
        size_t size = 0;
        for (int k = 0; k < 40; k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            const char *part = parts[(state >> 33) % (sizeof(parts) / sizeof(parts[0]))];
            memcpy(text + size, part, strlen(part));
            size += strlen(part);
        }
        int32_t ids[512];
        size_t n;
        unsigned flags = round % 2 ? BLY_TOKENIZE_SPECIAL : 0;
        ck_assert_int_eq(bly_tokenizer_encode(s_tok, text, size, flags, ids, 512, &n), 0);
        char back[512];
        size_t back_size;
        ck_assert_int_eq(bly_tokenizer_decode(s_tok, ids, n, true, back, sizeof(back),
                                              &back_size), 0);
        ck_assert_uint_eq(back_size, size);
        ck_assert_int_eq(memcmp(back, text, size), 0);
    }
}
END_TEST

START_TEST(test_chat_template)
{
    bly_chat_message_t messages[2] = {{"system", "Be brief."}, {"user", "What is Blyan?"}};
    char out[256];
    size_t size = 0;
    ck_assert_int_eq(bly_chat_format_chatml(messages + 1, 1, true, out, sizeof(out), &size), 0);
    //  P3 of the golden files.
    ck_assert_str_eq(out, "<|im_start|>user\nWhat is Blyan?<|im_end|>\n<|im_start|>assistant\n");
    ck_assert_uint_eq(size, strlen(out));
    ck_assert_int_eq(bly_chat_format_chatml(messages, 2, false, out, sizeof(out), &size), 0);
    ck_assert_str_eq(out, "<|im_start|>system\nBe brief.<|im_end|>\n"
                          "<|im_start|>user\nWhat is Blyan?<|im_end|>\n");
    ck_assert_int_eq(bly_chat_format_chatml(messages, 2, true, out, 20, &size), -1);
    ck_assert_uint_eq(size, strlen(out) + strlen("<|im_start|>assistant\n"));
    ck_assert_int_eq(bly_chat_format_chatml(messages, BLY_CHAT_MESSAGES_MAX + 1, true, out,
                                            sizeof(out), &size), -1);
}
END_TEST

/* ---- A tokenizer from plain arrays --------------------------------------- */

typedef struct {
    char storage[300][8];
    const char *tokens[300];
    size_t sizes[300];
    int32_t types[300];
    uint32_t count;
} s_vocab_t;

//  GPT-2's byte-to-code-point table, written out independently of the library.
static void
s_byte_vocab(s_vocab_t *vocab)
{
    uint32_t extra = 0;
    for (uint32_t b = 0; b < 256; b++) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        uint32_t cp = printable ? b : 256 + extra++;
        size_t size = bly_utf8_encode(cp, vocab->storage[b]);
        vocab->tokens[b] = vocab->storage[b];
        vocab->sizes[b] = size;
        vocab->types[b] = BLY_TOKEN_NORMAL;
    }
    vocab->count = 256;
}

static void
s_vocab_add(s_vocab_t *vocab, const char *text, int32_t type)
{
    vocab->tokens[vocab->count] = text;
    vocab->sizes[vocab->count] = strlen(text);
    vocab->types[vocab->count] = type;
    vocab->count++;
}

START_TEST(test_from_arrays)
{
    s_vocab_t vocab;
    s_byte_vocab(&vocab);
    s_vocab_add(&vocab, "ab", BLY_TOKEN_NORMAL);      //  256
    s_vocab_add(&vocab, "bc", BLY_TOKEN_NORMAL);      //  257
    s_vocab_add(&vocab, "abab", BLY_TOKEN_NORMAL);    //  258
    s_vocab_add(&vocab, "<x>", BLY_TOKEN_CONTROL);    //  259
    s_vocab_add(&vocab, "<x>y", BLY_TOKEN_CONTROL);   //  260: longer, matched first
    const char *merges[] = {"b c", "a b", "ab ab", "q r"};
    size_t merge_sizes[] = {3, 3, 5, 3};
    bly_tokenizer_spec_t spec = {
        .token_count = vocab.count, .tokens = vocab.tokens, .token_sizes = vocab.sizes,
        .token_types = vocab.types, .merge_count = 4, .merges = merges,
        .merge_sizes = merge_sizes, .bos_id = 259, .eos_id = 260, .pad_id = -1,
        .add_bos = true, .pre = "qwen2"};
    char error[256] = "";
    bly_tokenizer_t *tok = bly_tokenizer_new(&spec, error, sizeof(error));
    ck_assert_msg(tok, "%s", error);
    ck_assert_uint_eq(bly_tokenizer_merge_count(tok), 3);   //  "q r" names no "qr" token.
    int32_t abc[] = {'a', 257};
    s_check_encode(tok, "abc", 3, 0, abc, 2, "abc");   //  b c has the lower rank.
    int32_t abab[] = {258};
    s_check_encode(tok, "abab", 4, 0, abab, 1, "abab");
    int32_t ababab[] = {258, 256};
    s_check_encode(tok, "ababab", 6, 0, ababab, 2, "ababab");   //  Leftmost pair first.
    int32_t special[] = {260, 'z', 259};
    s_check_encode(tok, "<x>yz<x>", 8, BLY_TOKENIZE_SPECIAL, special, 3, "specials");
    int32_t ids[4];
    size_t n = 0;
    ck_assert_int_eq(bly_tokenizer_encode(tok, "ab", 2, BLY_TOKENIZE_ADD_SPECIAL, ids, 4, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], 259);   //  BOS added: add_bos is set.
    ck_assert_int_eq(ids[1], 256);
    ck_assert(bly_tokenizer_is_eog(tok, 260));
    bly_tokenizer_destroy(&tok);
    ck_assert_ptr_null(tok);
}
END_TEST

//  Llama 3's pre-tokenizer: digits in threes, and a piece that is a token
//  is taken whole even when no merges lead to it.
START_TEST(test_llama3_pre)
{
    s_vocab_t vocab;
    s_byte_vocab(&vocab);
    s_vocab_add(&vocab, "abc", BLY_TOKEN_NORMAL);   //  256: no merge makes it.
    s_vocab_add(&vocab, "12", BLY_TOKEN_NORMAL);    //  257
    const char *merges[] = {"1 2"};
    size_t merge_sizes[] = {3};
    bly_tokenizer_spec_t spec = {
        .token_count = vocab.count, .tokens = vocab.tokens, .token_sizes = vocab.sizes,
        .token_types = vocab.types, .merge_count = 1, .merges = merges,
        .merge_sizes = merge_sizes, .bos_id = -1, .eos_id = -1, .pad_id = -1,
        .pre = "llama-bpe"};
    char error[256] = "";
    bly_tokenizer_t *llama = bly_tokenizer_new(&spec, error, sizeof(error));
    ck_assert_msg(llama, "%s", error);
    spec.pre = "qwen2";
    bly_tokenizer_t *qwen = bly_tokenizer_new(&spec, error, sizeof(error));
    ck_assert_msg(qwen, "%s", error);
    int32_t digits_llama[] = {257, '3', 257, '4', '5'};
    //  "1231245" splits as 123 | 124 | 5 under llama3: 12 3, 12 4, 5.
    s_check_encode(llama, "1231245", 7, 0, digits_llama, 5, "llama digits");
    int32_t digits_qwen[] = {'1', '2', '3', '1', '2', '4', '5'};
    s_check_encode(qwen, "1231245", 7, 0, digits_qwen, 7, "qwen digits");
    int32_t abc_llama[] = {256};
    s_check_encode(llama, "abc", 3, 0, abc_llama, 1, "llama whole piece");
    int32_t abc_qwen[] = {'a', 'b', 'c'};
    s_check_encode(qwen, "abc", 3, 0, abc_qwen, 3, "qwen merges only");
    bly_tokenizer_destroy(&qwen);
    bly_tokenizer_destroy(&llama);
}
END_TEST

START_TEST(test_bad_arrays)
{
    s_vocab_t vocab;
    s_byte_vocab(&vocab);
    const char *merges[] = {"ab"};
    size_t merge_sizes[] = {2};
    bly_tokenizer_spec_t good = {
        .token_count = vocab.count, .tokens = vocab.tokens, .token_sizes = vocab.sizes,
        .token_types = vocab.types, .bos_id = -1, .eos_id = -1, .pad_id = -1};
    char error[256];
    bly_tokenizer_spec_t spec = good;
    spec.token_count = 255;   //  Byte 0xff has no token.
    ck_assert_ptr_null(bly_tokenizer_new(&spec, error, sizeof(error)));
    ck_assert_ptr_nonnull(strstr(error, "no token for byte"));
    spec = good;
    spec.merge_count = 1;
    spec.merges = merges;
    spec.merge_sizes = merge_sizes;
    ck_assert_ptr_null(bly_tokenizer_new(&spec, error, sizeof(error)));
    ck_assert_ptr_nonnull(strstr(error, "merge 0"));
    spec = good;
    spec.eos_id = 256;
    ck_assert_ptr_null(bly_tokenizer_new(&spec, error, sizeof(error)));
    ck_assert_ptr_nonnull(strstr(error, "outside the vocabulary"));
    spec = good;
    spec.pre = "gpt-4o";
    ck_assert_ptr_null(bly_tokenizer_new(&spec, error, sizeof(error)));
    ck_assert_ptr_nonnull(strstr(error, "not supported"));
    spec = good;
    vocab.types[7] = 9;
    ck_assert_ptr_null(bly_tokenizer_new(&spec, error, sizeof(error)));
    ck_assert_ptr_nonnull(strstr(error, "unknown type"));
    vocab.types[7] = BLY_TOKEN_NORMAL;
    spec.token_count = 0;
    ck_assert_ptr_null(bly_tokenizer_new(&spec, error, sizeof(error)));
    spec.token_count = BLY_TOKENIZER_VOCAB_MAX + 1;
    ck_assert_ptr_null(bly_tokenizer_new(&spec, error, sizeof(error)));
    char long_token[BLY_TOKEN_TEXT_MAX + 1];
    memset(long_token, 'x', sizeof(long_token));
    spec = good;
    vocab.sizes[5] = sizeof(long_token);
    vocab.tokens[5] = long_token;
    ck_assert_ptr_null(bly_tokenizer_new(&spec, error, sizeof(error)));
    ck_assert_ptr_nonnull(strstr(error, "over the limit"));
}
END_TEST

//  A GGUF whose tokenizer metadata is wrong gives a clear error.
START_TEST(test_bad_gguf)
{
    const char *cases[][2] = {{"llama", "qwen2"}, {"gpt2", "gpt-4o"}};
    const char *expected[] = {"tokenizer.ggml.model", "tokenizer.ggml.pre"};
    for (int c = 0; c < 3; c++) {
        bly_gguf_writer_t *writer = bly_gguf_writer_new(32);
        if (c < 2) {
            ck_assert_int_eq(bly_gguf_writer_set_str(writer, "tokenizer.ggml.model", cases[c][0],
                                                     strlen(cases[c][0])), 0);
            ck_assert_int_eq(bly_gguf_writer_set_str(writer, "tokenizer.ggml.pre", cases[c][1],
                                                     strlen(cases[c][1])), 0);
        } else {
            ck_assert_int_eq(bly_gguf_writer_set_str(writer, "tokenizer.ggml.model", "gpt2", 4), 0);
            ck_assert_int_eq(bly_gguf_writer_set_str(writer, "tokenizer.ggml.pre", "qwen2", 5), 0);
        }
        char *image = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&image, &size);
        ck_assert_int_eq(bly_gguf_writer_begin(writer, out), 0);
        ck_assert_int_eq(bly_gguf_writer_finish(writer), 0);
        fclose(out);
        bly_gguf_writer_destroy(&writer);
        char error[256] = "";
        bly_gguf_t *gguf = bly_gguf_open_memory(image, size, error, sizeof(error));
        ck_assert_msg(gguf, "%s", error);
        ck_assert_ptr_null(bly_tokenizer_new_gguf(gguf, error, sizeof(error)));
        ck_assert_ptr_nonnull(strstr(error, c < 2 ? expected[c] : "tokenizer.ggml.tokens"));
        bly_gguf_destroy(&gguf);
        free(image);
    }
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *suite = suite_create("tokenizer");
    TCase *tc = tcase_create("qwen3");
    tcase_add_unchecked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_llama_cpp_vectors);
    tcase_add_test(tc, test_golden_prompts);
    tcase_add_test(tc, test_special_tokens);
    tcase_add_test(tc, test_decode);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_empty_and_bounds);
    tcase_add_test(tc, test_long_input);
    tcase_add_test(tc, test_round_trip_random);
    tcase_add_test(tc, test_chat_template);
    suite_add_tcase(suite, tc);
    tc = tcase_create("arrays");
    tcase_add_test(tc, test_from_arrays);
    tcase_add_test(tc, test_bad_arrays);
    tcase_add_test(tc, test_llama3_pre);
    tcase_add_test(tc, test_bad_gguf);
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
