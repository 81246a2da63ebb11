/*  =========================================================================
    bly_cli - the blyan command-line tool's subcommands

    Each subcommand lives in its own file bly_cli_<name>.c and is listed in
    the table in blyan_main.c. A subcommand gets argv starting at its own
    name and returns the process exit code: 0 success, 1 failure of the
    operation, 2 bad usage or bad input.
    ========================================================================= */

#ifndef BLY_CLI_H_INCLUDED
#define BLY_CLI_H_INCLUDED

#include "bly_sampler.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef int (bly_cli_fn)(int argc, char **argv);

//  Find the value of option `name` ("--model") in argv; NULL when absent.
//  Accepts "--model X" and "--model=X".
const char *bly_cli_opt(int argc, char **argv, const char *name);

//  True when the flag ("--json") is present.
bool bly_cli_flag(int argc, char **argv, const char *name);

//  Reject options not in `known` (NULL-terminated, each "--name" or
//  "--name=" for options taking a value). Prints the first unknown one.
//  Returns 0 or -1.
int bly_cli_check_options(int argc, char **argv, const char *const *known);

//  Parse a whole decimal integer in [min, max]. Returns 0 or -1.
int bly_cli_parse_long(const char *text, long min, long max, long *value);

//  Parse a finite double in [min, max]. Returns 0 or -1.
int bly_cli_parse_double(const char *text, double min, double max, double *value);

//  The sampling flags of `blyan generate` and `blyan chat` (--temp, --top-k, --top-p,
//  --min-p, --repeat-penalty, --seed; defaults otherwise, the seed from the clock) into *p.
//  Returns 0, or -1 when a value is malformed or out of range.
int bly_cli_parse_sampling(int argc, char **argv, bly_sampler_params_t *p);

//  Print `size` bytes as a JSON string literal: escapes control characters,
//  writes invalid UTF-8 and lone surrogates as \ufffd.
void bly_cli_print_json_string(FILE *out, const char *text, size_t size);

//  Subcommands (one file each).
int bly_cli_version(int argc, char **argv);
int bly_cli_keygen(int argc, char **argv);
//  Ledger client commands (bly_cli_ledger.c).
int bly_cli_tx(int argc, char **argv);
int bly_cli_balance(int argc, char **argv);
int bly_cli_chain(int argc, char **argv);
int bly_cli_pol(int argc, char **argv);
int bly_cli_address(int argc, char **argv);
int bly_cli_testnet(int argc, char **argv);
int bly_cli_status(int argc, char **argv);

//  Shared by status and testnet.
typedef struct _bly_bootstrap_msg_t bly_bootstrap_msg_t;

//  Ask the bootstrap at `endpoint` (node id `server_hex`) for its peer list,
//  optionally only nodes running `role`. A fresh peers message (caller
//  destroys), or NULL with a reason in `err` (no answer within timeout_ms,
//  refused, bad key).
bly_bootstrap_msg_t *bly_cli_fetch_peers(const char *endpoint, const char *server_hex,
                                         const char *role, int timeout_ms, char *err,
                                         size_t err_size);

//  The bootstrap endpoint and node id (hex, 65 bytes) of the testnet in `dir`.
//  Returns 0, or -1 after printing why.
int bly_cli_testnet_bootstrap(const char *dir, char *endpoint, size_t endpoint_size,
                              char *server_hex);
int bly_cli_devices(int argc, char **argv);
int bly_cli_generate(int argc, char **argv);
int bly_cli_chat(int argc, char **argv);
int bly_cli_model(int argc, char **argv);
int bly_cli_bench(int argc, char **argv);
int bly_cli_tokenize(int argc, char **argv);
int bly_cli_mkmodel(int argc, char **argv);

#endif
