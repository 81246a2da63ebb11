/*  =========================================================================
    bly_node - one blyan-node process: identity, ZAP, and its actors
    ========================================================================= */

#include "bly_node.h"

#include "bly_limits.h"
#include "bly_zap.h"
#include "bootstrap/bly_bootstrap_actor.h"
#include "consensus/bly_consensus_actor.h"
#include "ledger/bly_ledger_actor.h"
#include "member/bly_member_actor.h"
#include "router/bly_router_actor.h"
#include "shard/bly_shard_actor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  Role name -> entry point and start order. The bootstrap starts before the
//  member so a node that is its own bootstrap can join itself.
static const bly_node_role_t s_role_table[] = {
    {"bootstrap", bly_bootstrap_actor, 10, false},
    {"ledger", bly_ledger_actor, 30, false},
    {"layer-shard", bly_shard_actor, 40, false},
    {"router", bly_router_actor, 50, false},
    {"consensus", bly_consensus_actor, 40, false},
    {"member", bly_member_actor, 90, true},
};

#define S_ROLE_COUNT (sizeof(s_role_table) / sizeof(s_role_table[0]))

typedef struct {
    const bly_node_role_t *role;   //  Table entry.
    bly_actor_args_t args;         //  Arguments (live as long as the actor).
    zactor_t *actor;               //  Running actor, or NULL.
} s_slot_t;

struct bly_node_t {
    bly_manifest_t *manifest;                 //  Owned.
    bly_identity_t *identity;                 //  Owned.
    zactor_t *zap;                            //  ZAP handler.
    s_slot_t slots[BLY_NODE_ACTORS_MAX];      //  Actors in start order.
    size_t slot_count;
    size_t started;                           //  Slots started so far.
};

static const bly_node_role_t *
s_role(const char *name)
{
    for (size_t i = 0; i < S_ROLE_COUNT; i++)
        if (strcmp(s_role_table[i].role, name) == 0)
            return &s_role_table[i];
    return NULL;
}

//  Fill the slots from the manifest, sorted by start order.
static int
s_plan(bly_node_t *self, char *err, size_t err_size)
{
    const bly_manifest_t *m = self->manifest;
    for (size_t i = 0; i < bly_manifest_actor_count(m); i++) {
        const bly_node_role_t *role = s_role(bly_manifest_actor_role(m, i));
        if (!role || role->automatic) {
            snprintf(err, err_size, "role %s has no actor", bly_manifest_actor_role(m, i));
            return -1;
        }
        self->slots[self->slot_count++] = (s_slot_t){role, {role->role, m, (int) i, NULL, NULL}, NULL};
    }
    if (bly_manifest_get(m, BLY_MANIFEST_NODE, "bootstrap")) {
        if (self->slot_count >= BLY_NODE_ACTORS_MAX) {
            snprintf(err, err_size, "too many actors");
            return -1;
        }
        const bly_node_role_t *member = s_role("member");
        self->slots[self->slot_count++]
            = (s_slot_t){member, {"member", m, BLY_MANIFEST_NODE, NULL, NULL}, NULL};
    }
    //  Insertion sort by order (a handful of slots).
    for (size_t i = 1; i < self->slot_count; i++)
        for (size_t j = i; j > 0 && self->slots[j - 1].role->order > self->slots[j].role->order;
             j--) {
            s_slot_t tmp = self->slots[j];
            self->slots[j] = self->slots[j - 1];
            self->slots[j - 1] = tmp;
        }
    return 0;
}

bly_node_t *
bly_node_new(bly_manifest_t **manifest_p, char *err, size_t err_size)
{
    bly_assert(manifest_p && *manifest_p);
    bly_assert(err);
    bly_node_t *self = calloc(1, sizeof(*self));
    bly_assert(self);
    self->manifest = *manifest_p;
    *manifest_p = NULL;
    char path[BLY_PATH_MAX];
    if (bly_manifest_get_path(self->manifest, BLY_MANIFEST_NODE, "key_file", path, sizeof(path))
        != 0) {
        snprintf(err, err_size, "key_file path too long");
        goto out_fail;
    }
    self->identity = bly_identity_load_or_create(path, err, err_size);
    if (!self->identity)
        goto out_fail;
    self->zap = bly_zap_new();
    if (!self->zap) {
        snprintf(err, err_size, "cannot start the ZAP handler");
        goto out_fail;
    }
    if (s_plan(self, err, err_size) != 0)
        goto out_fail;
    for (size_t i = 0; i < self->slot_count; i++) {
        self->slots[i].args.identity = self->identity;
        self->slots[i].args.zap = self->zap;
    }
    return self;
out_fail:
    bly_node_destroy(&self);
    return NULL;
}

int
bly_node_start(bly_node_t *self, char *err, size_t err_size)
{
    bly_assert(self);
    bly_assert(self->started == 0);
    //  Every node serves CURVE clients on the "open" domain; allow-listed
    //  domains are added by the actors that need them.
    if (bly_zap_open(self->zap, "open") != 0) {
        snprintf(err, err_size, "cannot configure the ZAP handler");
        return -1;
    }
    for (size_t i = 0; i < self->slot_count; i++) {
        s_slot_t *slot = &self->slots[i];
        slot->actor = bly_actor_start(slot->role->entry, &slot->args, err, err_size);
        if (!slot->actor)
            return -1;
        self->started = i + 1;
        bly_log_notice("node: actor %s started (%zu of %zu)", slot->role->role, i + 1,
                       self->slot_count);
    }
    return 0;
}

void
bly_node_destroy(bly_node_t **self_p)
{
    bly_assert(self_p);
    bly_node_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = self->slot_count; i > 0; i--) {
        s_slot_t *slot = &self->slots[i - 1];
        if (slot->actor) {
            zactor_destroy(&slot->actor);
            bly_log_notice("node: actor %s stopped", slot->role->role);
        }
    }
    bly_zap_destroy(&self->zap);
    bly_identity_destroy(&self->identity);
    bly_manifest_destroy(&self->manifest);
    free(self);
    *self_p = NULL;
}

const bly_identity_t *
bly_node_identity(const bly_node_t *self)
{
    bly_assert(self);
    return self->identity;
}

size_t
bly_node_actor_count(const bly_node_t *self)
{
    bly_assert(self);
    return self->started;
}
