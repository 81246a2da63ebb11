/*  =========================================================================
    blyan mkmodel - write a random-weight Qwen3 GGUF of any shape

    blyan mkmodel --out F (--like SHAPE | --layers N --embd N --heads N
                  --kv-heads N --head-dim N --ff N) [--vocab N] [--ctx N]
                  [--untied | --tied] --type F32|F16|BF16|Q8_0
                  --tokenizer SRC [--seed S] [--name NAME]
    SHAPE: qwen3-0.6b, qwen3-8b, qwen3-tiny, default. Explicit sizes
    override the shape's. SRC: a GGUF file or a tokenizer.json.
    ========================================================================= */

#include "bly_cli.h"
#include "bly_gguf.h"
#include "bly_limits.h"
#include "bly_mkmodel.h"

#include <stdio.h>
#include <string.h>

static int
s_parse_type(const char *text, bly_type_t *type)
{
    static const struct {
        const char *name;
        bly_type_t type;
    } types[] = {{"F32", BLY_TYPE_F32}, {"F16", BLY_TYPE_F16}, {"BF16", BLY_TYPE_BF16},
                 {"Q8_0", BLY_TYPE_Q8_0}};
    for (size_t i = 0; text && i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(types[i].name, text) == 0) {
            *type = types[i].type;
            return 0;
        }
    }
    return -1;
}

//  Each size option overrides the shape's value when given.
static int
s_parse_sizes(int argc, char **argv, bly_mkmodel_options_t *o)
{
    struct {
        const char *name;
        uint32_t *field;
        long max;
    } sizes[] = {
        {"--layers", &o->layers, BLY_MKMODEL_LAYERS_MAX},
        {"--embd", &o->embd, BLY_MKMODEL_WIDTH_MAX},
        {"--heads", &o->heads, BLY_MKMODEL_HEADS_MAX},
        {"--kv-heads", &o->kv_heads, BLY_MKMODEL_HEADS_MAX},
        {"--head-dim", &o->head_dim, BLY_MKMODEL_HEAD_DIM_MAX},
        {"--ff", &o->ff, BLY_MKMODEL_WIDTH_MAX},
        {"--vocab", &o->vocab, BLY_TOKENIZER_VOCAB_MAX},
        {"--ctx", &o->context, 1L << 24},
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        const char *text = bly_cli_opt(argc, argv, sizes[i].name);
        long value;
        if (!text)
            continue;
        if (bly_cli_parse_long(text, 1, sizes[i].max, &value)) {
            fprintf(stderr, "blyan mkmodel: %s must be 1..%ld\n", sizes[i].name, sizes[i].max);
            return -1;
        }
        *sizes[i].field = (uint32_t) value;
    }
    return 0;
}

static int
s_parse(int argc, char **argv, bly_mkmodel_options_t *o)
{
    const char *like = bly_cli_opt(argc, argv, "--like");
    if (like && bly_mkmodel_shape(like, o)) {
        fprintf(stderr, "blyan mkmodel: unknown shape '%s' (qwen3-0.6b, qwen3-8b, qwen3-tiny, "
                        "default)\n", like);
        return -1;
    }
    if (s_parse_sizes(argc, argv, o))
        return -1;
    if (!like && (!o->layers || !o->embd || !o->heads || !o->kv_heads || !o->head_dim || !o->ff)) {
        fprintf(stderr, "blyan mkmodel: give --like or all of --layers --embd --heads "
                        "--kv-heads --head-dim --ff\n");
        return -1;
    }
    if (s_parse_type(bly_cli_opt(argc, argv, "--type"), &o->type)) {
        fprintf(stderr, "blyan mkmodel: --type must be F32, F16, BF16 or Q8_0\n");
        return -1;
    }
    const char *seed = bly_cli_opt(argc, argv, "--seed");
    long value = 1;
    if (seed && bly_cli_parse_long(seed, 0, 0x7FFFFFFFL, &value)) {
        fprintf(stderr, "blyan mkmodel: --seed must be 0..2147483647\n");
        return -1;
    }
    o->seed = (uint64_t) value;
    if (bly_cli_flag(argc, argv, "--untied"))
        o->untied = true;
    if (bly_cli_flag(argc, argv, "--tied"))
        o->untied = false;
    o->out_path = bly_cli_opt(argc, argv, "--out");
    o->tokenizer = bly_cli_opt(argc, argv, "--tokenizer");
    o->name = bly_cli_opt(argc, argv, "--name");
    if (!o->out_path || !o->tokenizer) {
        fprintf(stderr, "blyan mkmodel: --out and --tokenizer are required\n");
        return -1;
    }
    return 0;
}

int
bly_cli_mkmodel(int argc, char **argv)
{
    static const char *const known[] = {
        "--out=", "--like=", "--layers=", "--embd=", "--heads=", "--kv-heads=", "--head-dim=",
        "--ff=", "--vocab=", "--ctx=", "--type=", "--tokenizer=", "--seed=", "--name=",
        "--untied", "--tied", NULL};
    if (bly_cli_check_options(argc, argv, known))
        return 2;
    bly_mkmodel_options_t options = {.context = 4096};
    if (s_parse(argc, argv, &options))
        return 2;
    char error[512] = "";
    if (bly_mkmodel_write(&options, error, sizeof(error))) {
        fprintf(stderr, "blyan mkmodel: %s\n", error);
        return 1;
    }
    printf("%s\n", options.out_path);
    return 0;
}
