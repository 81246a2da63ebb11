/*  =========================================================================
    blyan tokenize - print the token ids of a text

    blyan tokenize --model M --text T [--special] [--json]
    Plain output: the ids separated by spaces. --json: {"ids":[...],
    "pieces":[...]}, each piece the bytes of its token (invalid UTF-8 shown
    as U+FFFD; control tokens by their text).
    ========================================================================= */

#include "bly_cli.h"
#include "bly_gguf.h"
#include "bly_limits.h"
#include "bly_tokenizer.h"
#include "bly_unicode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Print bytes as a JSON string: escapes, and U+FFFD for invalid UTF-8.
void
bly_cli_print_json_string(FILE *out, const char *text, size_t size)
{
    fputc('"', out);
    size_t pos = 0;
    while (pos < size) {
        size_t start = pos;
        uint32_t cp = bly_utf8_decode(text, size, &pos);
        bool replaced = cp == BLY_UNICODE_REPLACEMENT && pos - start != 3;
        if (cp == '"' || cp == '\\')
            fprintf(out, "\\%c", (char) cp);
        else if (cp == '\n')
            fputs("\\n", out);
        else if (cp == '\r')
            fputs("\\r", out);
        else if (cp == '\t')
            fputs("\\t", out);
        else if (cp < 0x20 || (cp >= 0xD800 && cp <= 0xDFFF) || replaced)
            fprintf(out, "\\u%04x", replaced || cp >= 0xD800 ? 0xFFFD : cp);
        else
            fwrite(text + start, 1, pos - start, out);
    }
    fputc('"', out);
}

static void
s_print(const bly_tokenizer_t *tok, const int32_t *ids, size_t n, bool json)
{
    if (!json) {
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
        return;
    }
    printf("{\"ids\":[");
    for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? "," : "", ids[i]);
    printf("],\"pieces\":[");
    for (size_t i = 0; i < n; i++) {
        size_t size;
        const char *piece = bly_tokenizer_piece(tok, ids[i], true, &size);
        if (i)
            printf(",");
        bly_cli_print_json_string(stdout, piece, size);
    }
    printf("]}\n");
}

int
bly_cli_tokenize(int argc, char **argv)
{
    static const char *const known[] = {"--model=", "--text=", "--special", "--json", NULL};
    if (bly_cli_check_options(argc, argv, known))
        return 2;
    const char *model = bly_cli_opt(argc, argv, "--model");
    const char *text = bly_cli_opt(argc, argv, "--text");
    if (!model || !text) {
        fprintf(stderr, "usage: blyan tokenize --model M --text T [--special] [--json]\n");
        return 2;
    }
    char error[512] = "";
    bly_gguf_t *gguf = bly_gguf_open(model, error, sizeof(error));
    bly_tokenizer_t *tok = gguf ? bly_tokenizer_new_gguf(gguf, error, sizeof(error)) : NULL;
    bly_gguf_destroy(&gguf);
    if (!tok) {
        fprintf(stderr, "blyan tokenize: %s: %s\n", model, error);
        return 2;
    }
    size_t size = strlen(text), n = 0;
    unsigned flags = bly_cli_flag(argc, argv, "--special") ? BLY_TOKENIZE_SPECIAL : 0;
    //  At most one id per byte, three for an invalid byte (it becomes U+FFFD), and BOS, EOS.
    size_t max = size <= BLY_TOKENIZER_TEXT_MAX ? 3 * size + 2 : 0;
    int32_t *ids = malloc((max ? max : 1) * sizeof(int32_t));
    int rc = ids ? bly_tokenizer_encode(tok, text, size, flags, ids, max, &n) : -3;
    if (rc == 0)
        s_print(tok, ids, n, bly_cli_flag(argc, argv, "--json"));
    else if (rc == -1)
        fprintf(stderr, "blyan tokenize: the text is over %u bytes\n", BLY_TOKENIZER_TEXT_MAX);
    else
        fprintf(stderr, "blyan tokenize: %s\n", rc == -2 ? "too many ids" : "out of memory");
    free(ids);
    bly_tokenizer_destroy(&tok);
    return rc == 0 ? 0 : rc == -1 ? 2 : 1;
}
