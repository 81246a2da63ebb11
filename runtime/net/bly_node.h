/*  =========================================================================
    bly_node - one blyan-node process: identity, ZAP, and its actors

    A static table (like nginx's ngx_modules[]) maps each role name to its
    actor entry point and start order. bly_node_start starts the actors a
    manifest names in that order (the member actor, which joins the mesh,
    is added whenever the node section names a bootstrap), and
    bly_node_destroy stops them in reverse.
    ========================================================================= */

#ifndef BLY_NODE_H_INCLUDED
#define BLY_NODE_H_INCLUDED

#include "bly_actor.h"
#include "bly_manifest.h"

typedef struct {
    const char *role;       //  Role name (manifest `role =`).
    zactor_fn *entry;       //  Actor entry point.
    int order;              //  Start order: lower starts first, stops last.
    bool automatic;         //  Started from node keys, never listed in a manifest.
} bly_node_role_t;

//  The manifest schema: node keys and every listed role's keys.
const bly_manifest_schema_t *bly_node_schema(void);

//  Load a manifest and check what the schema cannot: the key file is
//  usable (or can be created), bootstrap and bootstrap_key come together.
//  NULL with "FILE:LINE: reason" lines in `err`.
bly_manifest_t *bly_node_check(const char *path, char *err, size_t err_size);

typedef struct bly_node_t bly_node_t;

//  Load or create the identity and start the ZAP handler. NULL with a
//  reason in `err`. Takes ownership of the manifest.
bly_node_t *bly_node_new(bly_manifest_t **manifest_p, char *err, size_t err_size);

//  Start every actor in order. Returns 0, or -1 (after stopping those that
//  started) with a reason in `err`.
BLY_MUST_USE int bly_node_start(bly_node_t *self, char *err, size_t err_size);

//  Stop the actors in reverse order, then the ZAP handler.
void bly_node_destroy(bly_node_t **self_p);

//  The node identity (borrowed).
const bly_identity_t *bly_node_identity(const bly_node_t *self);

//  Actors running.
size_t bly_node_actor_count(const bly_node_t *self);

#endif
