/*  =========================================================================
    bly_manifest - role manifests: what one blyan-node runs

    Syntax (a subset of CZMQ's ZPL, read by our own reader so every mistake
    carries its line number; zconfig reports none):

        # comment
        node                          # a section name at column 0
            name = node1              # "key = value", indented 4 spaces
            key_file = "keys/node1.key"
        actor
            role = bootstrap
            endpoint = tcp://127.0.0.1:7000

    One `node` section, then one `actor` section per actor, each naming its
    `role`. Values are bare (up to a " #" comment) or "double quoted".
    Paths are relative to the manifest's folder. Keys are checked against
    a schema (a key table for the node section and one per role): unknown
    keys, missing required keys, mistyped values, bad endpoints, duplicates,
    bad indentation, tabs, NUL bytes and oversize lines are all errors,
    each reported as "FILE:LINE: reason". docs/MANIFEST.md lists every key.
    ========================================================================= */

#ifndef BLY_MANIFEST_H_INCLUDED
#define BLY_MANIFEST_H_INCLUDED

#include "bly_log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    BLY_MANIFEST_STRING,     //  Printable text, length in [1, max].
    BLY_MANIFEST_INT,        //  Decimal integer in [min, max].
    BLY_MANIFEST_BOOL,       //  true or false.
    BLY_MANIFEST_ENDPOINT,   //  One endpoint (bly_sock_endpoint_valid).
    BLY_MANIFEST_ENDPOINTS,  //  Comma-separated endpoints, at most max.
    BLY_MANIFEST_PATH,       //  A path, relative to the manifest's folder.
    BLY_MANIFEST_HEX32,      //  32 bytes as 64 hex characters (a node id).
    BLY_MANIFEST_RANGE,      //  "FIRST-LAST" with 0 <= FIRST <= LAST <= max.
    BLY_MANIFEST_CHOICE,     //  One of the '|'-separated words in `choices`.
} bly_manifest_type_t;

typedef struct {
    const char *name;           //  Key as written.
    bly_manifest_type_t type;   //  Value type.
    bool required;              //  Must be present.
    int64_t min;                //  INT: lowest value.
    int64_t max;                //  INT: highest; STRING: length; ENDPOINTS: count; RANGE: last.
    const char *choices;        //  CHOICE: "a|b|c".
    const char *help;           //  One line for docs and messages.
} bly_manifest_key_t;

typedef struct {
    const char *role;                //  Role name in `role = ...`.
    const bly_manifest_key_t *keys;  //  Its keys (besides `role`).
    size_t key_count;
} bly_manifest_role_t;

typedef struct {
    const bly_manifest_key_t *node_keys;   //  Keys of the node section.
    size_t node_key_count;
    const bly_manifest_role_t *roles;      //  Known roles.
    size_t role_count;
} bly_manifest_schema_t;

typedef struct bly_manifest_t bly_manifest_t;

//  The node section's index for the accessors below.
#define BLY_MANIFEST_NODE (-1)

//  Read and validate the manifest at `path`. NULL on any mistake, with one
//  "FILE:LINE: reason" line per mistake (up to a few dozen) in `err`.
bly_manifest_t *bly_manifest_load(const char *path, const bly_manifest_schema_t *schema, char *err,
                                  size_t err_size);

//  Validate manifest text; `name` is used in messages and `dir` resolves
//  relative paths. Same result as bly_manifest_load.
bly_manifest_t *bly_manifest_parse(const char *text, size_t size, const char *name,
                                   const char *dir, const bly_manifest_schema_t *schema,
                                   char *err, size_t err_size);

void bly_manifest_destroy(bly_manifest_t **self_p);

//  The file name given at load.
const char *bly_manifest_name(const bly_manifest_t *self);

//  Actor sections, in file order.
size_t bly_manifest_actor_count(const bly_manifest_t *self);
const char *bly_manifest_actor_role(const bly_manifest_t *self, size_t index);

//  A key's text in `section` (BLY_MANIFEST_NODE or an actor index); NULL
//  when absent. Borrowed from the manifest.
const char *bly_manifest_get(const bly_manifest_t *self, int section, const char *key);

//  A validated INT or BOOL key, or `fallback` when absent.
int64_t bly_manifest_get_int(const bly_manifest_t *self, int section, const char *key,
                             int64_t fallback);
bool bly_manifest_get_bool(const bly_manifest_t *self, int section, const char *key,
                           bool fallback);

//  A PATH key resolved against the manifest's folder, into `buf`. Returns
//  0, or -1 when absent or too long.
BLY_MUST_USE int bly_manifest_get_path(const bly_manifest_t *self, int section, const char *key,
                                       char *buf, size_t buf_size);

//  The line of a key (or of the section header when the key is absent).
int bly_manifest_line(const bly_manifest_t *self, int section, const char *key);

#endif
