/*  =========================================================================
    bly_bootstrap_core - the bootstrap's registry as a pure state machine

    No sockets, no clock, no threads: the shell (bly_bootstrap_actor) feeds
    it decoded requests with the current time and sends back what it
    returns; the deterministic simulator can drive it the same way.

    - register (signed): the sender's transport key (peer_key, the CURVE key
      the ZAP handler attributed) must be the Curve form of node_id, so no
      node registers another's id; the signature must verify; the timestamp
      must lie within the window of now; seq must exceed the last seen for
      that node. New nodes take a free slot (error "full" at the cap).
    - heartbeat (signed): same checks; the node must be registered (error
      "unknown node" tells it to register again).
    - leave (signed): same checks; the node is dropped. No reply.
    - peers_request: the registered nodes, optionally only those running
      a role, in registration order.
    - tick(mono): drops nodes silent for longer than expiry_ms, counted on a
      monotonic clock (a step of the wall clock changes nothing).

    Every refusal is an error reply (where a reply is possible) and a counter;
    a refused request never changes the registry.
    ========================================================================= */

#ifndef BLY_BOOTSTRAP_CORE_H_INCLUDED
#define BLY_BOOTSTRAP_CORE_H_INCLUDED

#include "bly_bootstrap_msg.h"
#include "bly_log.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t heartbeat_ms;          //  Interval asked of members.
    uint32_t expiry_ms;             //  Silence after which a member is dropped.
    uint32_t max_peers;             //  Registry size, at most BLY_PEERS_MAX.
    uint32_t timestamp_window_ms;   //  Signed messages must be this close to now.
} bly_bootstrap_config_t;

typedef struct {
    uint64_t registered;      //  New nodes.
    uint64_t refreshed;       //  Registers of nodes already known.
    uint64_t heartbeats;      //  Heartbeats accepted.
    uint64_t left;            //  Nodes that said leave.
    uint64_t expired;         //  Nodes dropped for silence.
    uint64_t peer_requests;   //  Peer lists served.
    uint64_t bad_message;     //  Refused: unexpected id or bad content.
    uint64_t bad_signature;   //  Refused: signature does not verify.
    uint64_t replay;          //  Refused: stale timestamp or old seq.
    uint64_t full;            //  Refused: registry full.
    uint64_t unknown_node;    //  Refused: heartbeat/leave from a stranger.
    uint64_t not_allowed;     //  Refused: transport key is not the node id's.
} bly_bootstrap_stats_t;

typedef struct bly_bootstrap_core_t bly_bootstrap_core_t;

//  Defaults: heartbeat 1000 ms, expiry 5000 ms, BLY_PEERS_MAX, 60 s window.
void bly_bootstrap_config_defaults(bly_bootstrap_config_t *config);

//  A new core (registry allocated here, once). NULL when the config is out
//  of bounds or memory is short.
bly_bootstrap_core_t *bly_bootstrap_core_new(const bly_bootstrap_config_t *config);

void bly_bootstrap_core_destroy(bly_bootstrap_core_t **self_p);

//  Handle one request at `now_ms` (Unix time in ms: signed timestamps are checked against
//  it and peers replies report it as last_seen_ms) and `mono_ms` (a monotonic clock in ms:
//  expiry counts on it, so a step of the wall clock neither expires live nodes nor keeps
//  dead ones). Returns a fresh reply (the caller sends and destroys it), or NULL when none
//  is due (leave). The request's routing id is copied onto the reply.
bly_bootstrap_msg_t *bly_bootstrap_core_handle(bly_bootstrap_core_t *self,
                                               const bly_bootstrap_msg_t *request,
                                               uint64_t now_ms, uint64_t mono_ms);

//  An error reply (for requests that did not decode); fresh, caller destroys.
bly_bootstrap_msg_t *bly_bootstrap_core_error(uint16_t code, const char *reason);

//  Drop nodes silent for longer than expiry_ms at monotonic time mono_ms. Returns how many.
size_t bly_bootstrap_core_tick(bly_bootstrap_core_t *self, uint64_t mono_ms);

//  Registered nodes.
size_t bly_bootstrap_core_peer_count(const bly_bootstrap_core_t *self);

//  Registered node `index` in registration order (borrowed).
const bly_bootstrap_peer_t *bly_bootstrap_core_peer(const bly_bootstrap_core_t *self,
                                                    size_t index);

//  When the next node would expire (monotonic ms), or UINT64_MAX when empty.
uint64_t bly_bootstrap_core_next_expiry_ms(const bly_bootstrap_core_t *self);

//  Counters (borrowed).
const bly_bootstrap_stats_t *bly_bootstrap_core_stats(const bly_bootstrap_core_t *self);

#endif
