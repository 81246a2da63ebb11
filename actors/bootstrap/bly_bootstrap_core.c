/*  =========================================================================
    bly_bootstrap_core - the bootstrap's registry as a pure state machine
    ========================================================================= */

#include "bly_bootstrap_core.h"

#include "bly_identity.h"
#include "bly_limits.h"
#include "bly_sock.h"

#include <string.h>

_Static_assert(BLY_PEERS_MAX <= BLY_BOOTSTRAP_PEERS_COUNT_MAX,
               "one peers reply must hold the whole registry");
_Static_assert(BLY_BOOTSTRAP_NODE_ID_SIZE == BLY_IDENTITY_PUBLIC_SIZE, "node ids are Ed25519 keys");

typedef struct {
    bly_bootstrap_peer_t peer;    //  What peers replies carry.
    uint64_t last_seq;            //  Highest seq accepted from this node.
    uint64_t seen_mono_ms;        //  Monotonic time of the last register or heartbeat.
} s_entry_t;

struct bly_bootstrap_core_t {
    bly_bootstrap_config_t config;   //  Checked at new.
    s_entry_t *entries;              //  Registry, config.max_peers slots, compact in
                                     //  registration order.
    size_t count;                    //  Slots in use.
    bly_bootstrap_stats_t stats;     //  Counters.
};

void
bly_bootstrap_config_defaults(bly_bootstrap_config_t *config)
{
    bly_assert(config);
    config->heartbeat_ms = 1000;
    config->expiry_ms = 5000;
    config->max_peers = BLY_PEERS_MAX;
    config->timestamp_window_ms = BLY_MESH_TIMESTAMP_WINDOW_MS;
}

bly_bootstrap_core_t *
bly_bootstrap_core_new(const bly_bootstrap_config_t *config)
{
    bly_assert(config);
    if (config->max_peers < 1 || config->max_peers > BLY_PEERS_MAX
        || config->heartbeat_ms < BLY_HEARTBEAT_MS_MIN || config->heartbeat_ms > BLY_HEARTBEAT_MS_MAX
        || config->expiry_ms < BLY_EXPIRY_MS_MIN || config->expiry_ms > BLY_EXPIRY_MS_MAX
        || config->timestamp_window_ms < 1
        || config->timestamp_window_ms > BLY_MESH_TIMESTAMP_WINDOW_MS)
        return NULL;
    bly_bootstrap_core_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->config = *config;
    self->entries = calloc(config->max_peers, sizeof(*self->entries));
    if (!self->entries) {
        free(self);
        return NULL;
    }
    return self;
}

void
bly_bootstrap_core_destroy(bly_bootstrap_core_t **self_p)
{
    bly_assert(self_p);
    bly_bootstrap_core_t *self = *self_p;
    if (!self)
        return;
    free(self->entries);
    free(self);
    *self_p = NULL;
}

bly_bootstrap_msg_t *
bly_bootstrap_core_error(uint16_t code, const char *reason)
{
    bly_assert(reason);
    bly_bootstrap_msg_t *reply = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_ERROR);
    bly_assert(reply);
    bly_bootstrap_msg_set_code(reply, code);
    if (bly_bootstrap_msg_set_reason(reply, reason) != 0)
        bly_assert(bly_bootstrap_msg_set_reason(reply, "refused") == 0);
    return reply;
}

static s_entry_t *
s_find(bly_bootstrap_core_t *self, const uint8_t *node_id)
{
    for (size_t i = 0; i < self->count; i++)
        if (memcmp(self->entries[i].peer.node_id, node_id, BLY_BOOTSTRAP_NODE_ID_SIZE) == 0)
            return &self->entries[i];
    return NULL;
}

static void
s_remove(bly_bootstrap_core_t *self, s_entry_t *entry)
{
    size_t index = (size_t) (entry - self->entries);
    bly_assert(index < self->count);
    memmove(&self->entries[index], &self->entries[index + 1],
            (self->count - index - 1) * sizeof(*entry));
    self->count--;
    memset(&self->entries[self->count], 0, sizeof(*entry));
}

//  The checks every signed request passes before it may change anything:
//  transport key, signature, timestamp window, and (for known nodes) seq.
//  Returns 0, or an error code with `why` set and the counter bumped.
static uint16_t
s_check_signed(bly_bootstrap_core_t *self, const bly_bootstrap_msg_t *request, uint64_t now_ms,
               s_entry_t *known, const char **why)
{
    size_t size = 0;
    const uint8_t *node_id = bly_bootstrap_msg_node_id(request, &size);
    char expected[BLY_IDENTITY_Z85_SIZE];
    const char *peer_key = bly_bootstrap_msg_peer_key(request);
    if (size != BLY_BOOTSTRAP_NODE_ID_SIZE || bly_identity_curve_z85_from_id(node_id, expected) != 0
        || !peer_key || strcmp(peer_key, expected) != 0) {
        self->stats.not_allowed++;
        *why = "transport key is not the node id's Curve key";
        return BLY_BOOTSTRAP_ERROR_NOT_ALLOWED;
    }
    if (!bly_bootstrap_msg_verify(request)) {
        self->stats.bad_signature++;
        *why = "signature does not verify";
        return BLY_BOOTSTRAP_ERROR_BAD_SIGNATURE;
    }
    uint64_t stamp = bly_bootstrap_msg_timestamp_ms(request);
    uint64_t skew = stamp > now_ms ? stamp - now_ms : now_ms - stamp;
    if (skew > self->config.timestamp_window_ms) {
        self->stats.replay++;
        *why = "timestamp outside the window";
        return BLY_BOOTSTRAP_ERROR_REPLAY;
    }
    if (known && bly_bootstrap_msg_seq(request) <= known->last_seq) {
        self->stats.replay++;
        *why = "seq not above the last one seen";
        return BLY_BOOTSTRAP_ERROR_REPLAY;
    }
    return 0;
}

//  Content checks of a register: a name, sane endpoints and stages.
static const char *
s_check_register(const bly_bootstrap_msg_t *request)
{
    if (bly_bootstrap_msg_name(request)[0] == 0)
        return "empty name";
    for (size_t i = 0; i < bly_bootstrap_msg_endpoints_count(request); i++)
        if (!bly_sock_endpoint_valid(bly_bootstrap_msg_endpoints_at(request, i), false))
            return "bad endpoint";
    for (size_t i = 0; i < bly_bootstrap_msg_roles_count(request); i++)
        if (bly_bootstrap_msg_roles_at(request, i)[0] == 0)
            return "empty role";
    if (bly_bootstrap_msg_stage_first(request) > bly_bootstrap_msg_stage_last(request))
        return "stage_first above stage_last";
    return NULL;
}

static void
s_fill_peer(bly_bootstrap_peer_t *peer, const bly_bootstrap_msg_t *request, uint64_t now_ms)
{
    size_t size = 0;
    uint32_t load = peer->load_milli;   //  Kept across re-registers.
    memset(peer, 0, sizeof(*peer));
    memcpy(peer->node_id, bly_bootstrap_msg_node_id(request, &size), sizeof(peer->node_id));
    snprintf(peer->name, sizeof(peer->name), "%s", bly_bootstrap_msg_name(request));
    peer->endpoints_count = bly_bootstrap_msg_endpoints_count(request);
    for (size_t i = 0; i < peer->endpoints_count; i++)
        snprintf(peer->endpoints[i], sizeof(peer->endpoints[i]), "%s",
                 bly_bootstrap_msg_endpoints_at(request, i));
    peer->roles_count = bly_bootstrap_msg_roles_count(request);
    for (size_t i = 0; i < peer->roles_count; i++)
        snprintf(peer->roles[i], sizeof(peer->roles[i]), "%s",
                 bly_bootstrap_msg_roles_at(request, i));
    snprintf(peer->model, sizeof(peer->model), "%s", bly_bootstrap_msg_model(request));
    snprintf(peer->device, sizeof(peer->device), "%s", bly_bootstrap_msg_device(request));
    peer->stage_first = bly_bootstrap_msg_stage_first(request);
    peer->stage_last = bly_bootstrap_msg_stage_last(request);
    peer->speed_milli = bly_bootstrap_msg_speed_milli(request);
    peer->load_milli = load;
    peer->last_seen_ms = now_ms;
}

static bly_bootstrap_msg_t *
s_handle_register(bly_bootstrap_core_t *self, const bly_bootstrap_msg_t *request, uint64_t now_ms,
                  uint64_t mono_ms)
{
    size_t size = 0;
    s_entry_t *entry = s_find(self, bly_bootstrap_msg_node_id(request, &size));
    const char *why = NULL;
    uint16_t code = s_check_signed(self, request, now_ms, entry, &why);
    if (code)
        return bly_bootstrap_core_error(code, why);
    why = s_check_register(request);
    if (why) {
        self->stats.bad_message++;
        return bly_bootstrap_core_error(BLY_BOOTSTRAP_ERROR_BAD_MESSAGE, why);
    }
    if (!entry) {
        if (self->count >= self->config.max_peers) {
            self->stats.full++;
            return bly_bootstrap_core_error(BLY_BOOTSTRAP_ERROR_FULL, "registry full");
        }
        entry = &self->entries[self->count++];
        memset(entry, 0, sizeof(*entry));
        self->stats.registered++;
    } else {
        self->stats.refreshed++;
    }
    s_fill_peer(&entry->peer, request, now_ms);
    entry->last_seq = bly_bootstrap_msg_seq(request);
    entry->seen_mono_ms = mono_ms;
    bly_bootstrap_msg_t *reply = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_REGISTER_OK);
    bly_assert(reply);
    bly_bootstrap_msg_set_heartbeat_ms(reply, self->config.heartbeat_ms);
    bly_bootstrap_msg_set_expiry_ms(reply, self->config.expiry_ms);
    return reply;
}

//  Heartbeat and leave: signed, from a registered node.
static bly_bootstrap_msg_t *
s_handle_known(bly_bootstrap_core_t *self, const bly_bootstrap_msg_t *request, uint64_t now_ms,
               uint64_t mono_ms)
{
    size_t size = 0;
    const uint8_t *node_id = bly_bootstrap_msg_node_id(request, &size);
    s_entry_t *entry = size == BLY_BOOTSTRAP_NODE_ID_SIZE ? s_find(self, node_id) : NULL;
    const char *why = NULL;
    uint16_t code = s_check_signed(self, request, now_ms, entry, &why);
    if (!code && !entry) {
        self->stats.unknown_node++;
        code = BLY_BOOTSTRAP_ERROR_UNKNOWN_NODE;
        why = "not registered; register again";
    }
    bool leave = bly_bootstrap_msg_id(request) == BLY_BOOTSTRAP_MSG_LEAVE;
    if (code)
        return leave ? NULL : bly_bootstrap_core_error(code, why);
    if (leave) {
        s_remove(self, entry);
        self->stats.left++;
        return NULL;
    }
    entry->last_seq = bly_bootstrap_msg_seq(request);
    entry->peer.last_seen_ms = now_ms;
    entry->seen_mono_ms = mono_ms;
    entry->peer.load_milli = bly_bootstrap_msg_load_milli(request);
    self->stats.heartbeats++;
    bly_bootstrap_msg_t *reply = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_HEARTBEAT_OK);
    bly_assert(reply);
    return reply;
}

static bool
s_has_role(const bly_bootstrap_peer_t *peer, const char *role)
{
    if (!role[0])
        return true;
    for (size_t i = 0; i < peer->roles_count; i++)
        if (strcmp(peer->roles[i], role) == 0)
            return true;
    return false;
}

static bly_bootstrap_msg_t *
s_handle_peers(bly_bootstrap_core_t *self, const bly_bootstrap_msg_t *request)
{
    bly_bootstrap_msg_t *reply = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_PEERS);
    bly_assert(reply);
    const char *role = bly_bootstrap_msg_role(request);
    for (size_t i = 0; i < self->count; i++)
        if (s_has_role(&self->entries[i].peer, role)
            && bly_bootstrap_msg_peers_append(reply, &self->entries[i].peer) != 0) {
            bly_bootstrap_msg_destroy(&reply);
            return bly_bootstrap_core_error(BLY_BOOTSTRAP_ERROR_INTERNAL, "peer list too long");
        }
    self->stats.peer_requests++;
    return reply;
}

bly_bootstrap_msg_t *
bly_bootstrap_core_handle(bly_bootstrap_core_t *self, const bly_bootstrap_msg_t *request,
                          uint64_t now_ms, uint64_t mono_ms)
{
    bly_assert(self);
    bly_assert(request);
    bly_bootstrap_msg_t *reply = NULL;
    switch (bly_bootstrap_msg_id(request)) {
    case BLY_BOOTSTRAP_MSG_REGISTER:
        reply = s_handle_register(self, request, now_ms, mono_ms);
        break;
    case BLY_BOOTSTRAP_MSG_HEARTBEAT:
    case BLY_BOOTSTRAP_MSG_LEAVE:
        reply = s_handle_known(self, request, now_ms, mono_ms);
        break;
    case BLY_BOOTSTRAP_MSG_PEERS_REQUEST:
        reply = s_handle_peers(self, request);
        break;
    default:
        self->stats.bad_message++;
        reply = bly_bootstrap_core_error(BLY_BOOTSTRAP_ERROR_BAD_MESSAGE,
                                         "not a request a bootstrap answers");
        break;
    }
    if (reply && bly_bootstrap_msg_routing_id(request))
        bly_bootstrap_msg_set_routing_id(reply, bly_bootstrap_msg_routing_id(request));
    return reply;
}

size_t
bly_bootstrap_core_tick(bly_bootstrap_core_t *self, uint64_t mono_ms)
{
    bly_assert(self);
    size_t dropped = 0;
    for (size_t i = self->count; i > 0; i--) {
        s_entry_t *entry = &self->entries[i - 1];
        if (mono_ms > entry->seen_mono_ms
            && mono_ms - entry->seen_mono_ms > self->config.expiry_ms) {
            s_remove(self, entry);
            dropped++;
        }
    }
    self->stats.expired += dropped;
    return dropped;
}

size_t
bly_bootstrap_core_peer_count(const bly_bootstrap_core_t *self)
{
    bly_assert(self);
    return self->count;
}

const bly_bootstrap_peer_t *
bly_bootstrap_core_peer(const bly_bootstrap_core_t *self, size_t index)
{
    bly_assert(self);
    bly_assert(index < self->count);
    return &self->entries[index].peer;
}

uint64_t
bly_bootstrap_core_next_expiry_ms(const bly_bootstrap_core_t *self)
{
    bly_assert(self);
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < self->count; i++) {
        uint64_t at = self->entries[i].seen_mono_ms + self->config.expiry_ms + 1;
        if (at < next)
            next = at;
    }
    return next;
}

const bly_bootstrap_stats_t *
bly_bootstrap_core_stats(const bly_bootstrap_core_t *self)
{
    bly_assert(self);
    return &self->stats;
}
