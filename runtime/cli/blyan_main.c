/*  =========================================================================
    blyan - the command-line tool

    A static table maps subcommand names to their entry points.
    ========================================================================= */

#include "bly_cli.h"
#include "bly_log.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;   //  Subcommand as typed.
    bly_cli_fn *fn;     //  Entry point.
    const char *help;   //  One line for `blyan help`.
} s_command_t;

static const s_command_t s_commands[] = {
    {"version", bly_cli_version, "print the version"},
    {"status", bly_cli_status, "show a bootstrap's view of the mesh"},
    {"keygen", bly_cli_keygen, "create a node identity key file"},
    {"testnet", bly_cli_testnet, "init, start, stop, kill, restart a local mesh"},
    {"tokenize", bly_cli_tokenize, "print the token ids of a text"},
    {"mkmodel", bly_cli_mkmodel, "write a random-weight Qwen3 GGUF of any shape"},
    {"chat", bly_cli_chat, "ask a router of the mesh; stream the answer"},
    {"model", bly_cli_model, "model tools: hashes (BLAKE2b of each tensor)"},
    {"generate", bly_cli_generate, "generate text with a model on this machine"},
    {"bench", bly_cli_bench, "prefill and decode speed, peak memory, bandwidth bound"},
    {"devices", bly_cli_devices, "list Vulkan devices and their features"},
    {"tx", bly_cli_tx, "sign and submit a transaction (tx transfer ...)"},
    {"balance", bly_cli_balance, "an account's balance from a ledger"},
    {"chain", bly_cli_chain, "the chain head or a block from a ledger"},
    {"address", bly_cli_address, "the ledger address of a key file or node id"},
    {"pol", bly_cli_pol, "the Proof-of-Learning DAG from a ledger"},
};

static void
s_usage(FILE *out)
{
    fprintf(out, "usage: blyan COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(s_commands) / sizeof(s_commands[0]); i++)
        fprintf(out, "  %-12s %s\n", s_commands[i].name, s_commands[i].help);
}

const char *
bly_cli_opt(int argc, char **argv, const char *name)
{
    bly_assert(argv);
    bly_assert(name);
    size_t len = strlen(name);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return i + 1 < argc ? argv[i + 1] : NULL;
        if (strncmp(argv[i], name, len) == 0 && argv[i][len] == '=')
            return argv[i] + len + 1;
    }
    return NULL;
}

bool
bly_cli_flag(int argc, char **argv, const char *name)
{
    bly_assert(argv);
    bly_assert(name);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

int
bly_cli_check_options(int argc, char **argv, const char *const *known)
{
    bly_assert(argv);
    bly_assert(known);
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0)
            continue;
        bool found = false;
        for (const char *const *k = known; *k && !found; k++) {
            size_t len = strlen(*k);
            bool takes_value = len > 0 && (*k)[len - 1] == '=';
            size_t name_len = takes_value ? len - 1 : len;
            if (strncmp(argv[i], *k, name_len) != 0)
                continue;
            char next = argv[i][name_len];
            if (next == 0) {
                found = true;
                if (takes_value)
                    i++;   //  Skip the value.
            } else if (next == '=' && takes_value) {
                found = true;
            }
        }
        if (!found) {
            fprintf(stderr, "blyan %s: unknown option '%s'\n", argv[0], argv[i]);
            return -1;
        }
    }
    return 0;
}

int
bly_cli_parse_long(const char *text, long min, long max, long *value)
{
    bly_assert(value);
    if (!text || !*text)
        return -1;
    errno = 0;
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *value = v;
    return 0;
}

int
bly_cli_parse_double(const char *text, double min, double max, double *value)
{
    bly_assert(value);
    if (!text || !*text)
        return -1;
    errno = 0;
    char *end = NULL;
    double v = strtod(text, &end);
    if (errno || *end || !isfinite(v) || v < min || v > max)
        return -1;
    *value = v;
    return 0;
}

int
bly_cli_version(int argc, char **argv)
{
    (void) argc;
    (void) argv;
    printf("blyan %s\n", BLY_VERSION);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(s_commands) / sizeof(s_commands[0]); i++)
        if (strcmp(argv[1], s_commands[i].name) == 0)
            return s_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "blyan: unknown command '%s'\n", argv[1]);
    s_usage(stderr);
    return 2;
}
