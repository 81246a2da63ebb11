/*  =========================================================================
    bly_cli_model - `blyan model hashes --model M`

    Prints "TENSOR_NAME BLAKE2B_HEX" for every tensor of the model, the
    format a layer-shard manifest's `hashes` file takes: a shard refuses to
    serve when a tensor of its stages is missing from the file or differs.
    ========================================================================= */

#include "bly_cli.h"
#include "bly_model.h"
#include "shard/bly_shard_actor.h"

#include <stdio.h>
#include <string.h>

int
bly_cli_model(int argc, char **argv)
{
    static const char *const known[] = {"--model=", NULL};
    const char *path = argc > 1 && strcmp(argv[1], "hashes") == 0 ? bly_cli_opt(argc, argv, "--model")
                                                                  : NULL;
    if (!path || bly_cli_check_options(argc, argv, known) != 0) {
        fprintf(stderr, "usage: blyan model hashes --model M\n");
        return 2;
    }
    char err[512];
    bly_model_t *model = bly_model_load(path, err, sizeof(err));
    if (!model) {
        fprintf(stderr, "blyan model: %s\n", err);
        return 1;
    }
    const bly_gguf_t *g = bly_model_gguf(model);
    for (uint64_t i = 0; i < bly_gguf_tensor_count(g); i++) {
        const bly_gguf_tensor_t *t = bly_gguf_tensor_at(g, i);
        char hex[65];
        bly_shard_tensor_hash(t, hex);
        printf("%s %s\n", t->name, hex);
    }
    bly_model_destroy(&model);
    return 0;
}
