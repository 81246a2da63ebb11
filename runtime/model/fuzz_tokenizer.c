/*  fuzz_tokenizer - encode arbitrary bytes with a small byte-level vocabulary:
    never crashes, ids stay in range, valid UTF-8 decodes back to itself. */

#include "bly_limits.h"
#include "bly_tokenizer.h"
#include "bly_unicode.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bly_tokenizer_t *s_tok;   //  Built on the first input, kept for the run.

static void
s_build(void)
{
    static char texts[270][16];
    static const char *tokens[270];
    static size_t sizes[270];
    static int32_t types[270];
    uint32_t extra = 0, n = 0;
    for (uint32_t b = 0; b < 256; b++, n++) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        sizes[n] = bly_utf8_encode(printable ? b : 256 + extra++, texts[n]);
        tokens[n] = texts[n];
        types[n] = BLY_TOKEN_NORMAL;
    }
    const char *more[] = {"ab", "Ġa", "Ġab", "<|s|>", "<u>", "<|s|><u>"};
    int32_t more_types[] = {1, 1, 1, 3, 4, 3};
    for (int i = 0; i < 6; i++, n++) {
        tokens[n] = more[i];
        sizes[n] = strlen(more[i]);
        types[n] = more_types[i];
    }
    const char *merges[] = {"a b", "Ġ a", "Ġa b", "Ġ ab"};
    size_t merge_sizes[] = {3, 4, 5, 5};
    bly_tokenizer_spec_t spec = {.token_count = n, .tokens = tokens, .token_sizes = sizes,
                                 .token_types = types, .merge_count = 4, .merges = merges,
                                 .merge_sizes = merge_sizes, .bos_id = 259, .eos_id = 259,
                                 .pad_id = -1, .add_bos = true};
    s_tok = bly_tokenizer_new(&spec, NULL, 0);
    bly_assert(s_tok);
}

//  True when every sequence decodes and re-encodes to the same bytes (no
//  invalid bytes, no overlong forms: those the tokenizer normalises).
static bool
s_canonical_utf8(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (pos < size) {
        size_t start = pos;
        uint32_t cp = bly_utf8_decode((const char *) data, size, &pos);
        char again[4];
        size_t length = bly_utf8_encode(cp, again);
        if (length != pos - start || memcmp(again, data + start, length) != 0)
            return false;
    }
    return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_tok)
        s_build();
    //  An invalid byte becomes U+FFFD: up to three ids per input byte.
    size_t max = 3 * size + 2, n = 0, back_size = 0;
    int32_t *ids = malloc(max * sizeof(int32_t));
    char *back = malloc(3 * size + 64);
    bly_assert(ids && back);
    for (unsigned flags = 0; flags < 4; flags++) {
        int rc = bly_tokenizer_encode(s_tok, (const char *) data, size, flags, ids, max, &n);
        bly_assert(rc == 0 || (rc == -1 && size > BLY_TOKENIZER_TEXT_MAX));
        if (rc)
            break;
        for (size_t i = 0; i < n; i++)
            bly_assert(ids[i] >= 0 && (uint32_t) ids[i] < bly_tokenizer_vocab_size(s_tok));
        rc = bly_tokenizer_decode(s_tok, ids, n, true, back, 3 * size + 64, &back_size);
        bly_assert(rc == 0);
        if (flags == BLY_TOKENIZE_SPECIAL && s_canonical_utf8(data, size))
            bly_assert(back_size == size && memcmp(back, data, size) == 0);
    }
    free(back);
    free(ids);
    return 0;
}
