/*  =========================================================================
    bly_node_status - figures a node's actors measure, for its member actor

    A layer-shard measures its speed and load; the member actor, a separate
    actor of the same process, announces them to the bootstrap (speed in
    registers, load in heartbeats). This small table, keyed by the node's
    public key (a test process may hold several nodes), carries them across
    threads. Bounded (BLY_NODE_STATUS_MAX nodes); a full table drops new
    nodes' figures (the member then announces the manifest's speed_milli).
    ========================================================================= */

#ifndef BLY_NODE_STATUS_H_INCLUDED
#define BLY_NODE_STATUS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#define BLY_NODE_STATUS_MAX 64      //  Nodes per process (40 bytes each).

//  Publish the node's current figures: speed in tokens/s x 1000 (0: not
//  measured yet), load as a fraction x 1000 (0..1000).
void bly_node_status_set(const uint8_t node_id[32], uint32_t speed_milli, uint32_t load_milli);

//  The last published figures; false when none were published.
bool bly_node_status_get(const uint8_t node_id[32], uint32_t *speed_milli,
                         uint32_t *load_milli);

//  Forget the node's figures (its shard stopped).
void bly_node_status_clear(const uint8_t node_id[32]);

#endif
