/*  =========================================================================
    bly_links - a bounded cache of CURVE DEALER links to mesh peers

    Shards forward activations to their next hop and results to routers;
    routers forward steps and pings to shards. Each keeps one DEALER per
    (endpoint, node id), opened on first use with the Curve key derived
    from the node id; when all `max` are open the least recently used one
    closes. An optional poller gets every link added (and removed), so
    replies on links (pongs) are read.
    ========================================================================= */

#ifndef BLY_LINKS_H_INCLUDED
#define BLY_LINKS_H_INCLUDED

#include "bly_identity.h"
#include "bly_log.h"

#include <czmq.h>

typedef struct bly_links_t bly_links_t;

//  `identity` and `poller` (may be NULL) are borrowed and must outlive the cache.
bly_links_t *bly_links_new(const bly_identity_t *identity, size_t max, zpoller_t *poller);
void bly_links_destroy(bly_links_t **self_p);

//  The link to (endpoint, node_id), opened when needed. NULL (logged,
//  rate-limited) when the endpoint or key is unusable. Borrowed.
zsock_t *bly_links_get(bly_links_t *self, const char *endpoint, const uint8_t *node_id);

#endif
