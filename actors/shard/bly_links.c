/*  =========================================================================
    bly_links - a bounded cache of CURVE DEALER links to mesh peers
    ========================================================================= */

#include "bly_links.h"
#include "bly_limits.h"
#include "bly_sock.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char endpoint[BLY_ENDPOINT_MAX];
    uint8_t node_id[32];
    zsock_t *sock;                  //  NULL when the slot is free.
    uint64_t last_ms;               //  Last use (LRU).
} s_link_t;

struct bly_links_t {
    const bly_identity_t *identity;
    zpoller_t *poller;
    s_link_t *links;
    size_t max;
    bly_ratelimit_t ratelimit;
};

bly_links_t *
bly_links_new(const bly_identity_t *identity, size_t max, zpoller_t *poller)
{
    bly_assert(identity);
    bly_assert(max > 0);
    bly_links_t *self = calloc(1, sizeof(*self));
    bly_assert(self);
    self->identity = identity;
    self->poller = poller;
    self->max = max;
    self->links = calloc(max, sizeof(*self->links));
    bly_assert(self->links);
    return self;
}

void
bly_links_destroy(bly_links_t **self_p)
{
    bly_assert(self_p);
    bly_links_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->max; i++) {
        if (self->links[i].sock && self->poller)
            zpoller_remove(self->poller, self->links[i].sock);
        zsock_destroy(&self->links[i].sock);
    }
    free(self->links);
    free(self);
    *self_p = NULL;
}

zsock_t *
bly_links_get(bly_links_t *self, const char *endpoint, const uint8_t *node_id)
{
    bly_assert(self);
    bly_assert(endpoint && node_id);
    uint64_t now = (uint64_t) zclock_mono();
    s_link_t *lru = &self->links[0];
    for (size_t i = 0; i < self->max; i++) {
        s_link_t *l = &self->links[i];
        if (l->sock && strcmp(l->endpoint, endpoint) == 0 && memcmp(l->node_id, node_id, 32) == 0) {
            l->last_ms = now;
            return l->sock;
        }
        if (!l->sock || (lru->sock && l->last_ms < lru->last_ms))
            lru = l;
    }
    char z85[BLY_IDENTITY_Z85_SIZE], err[256] = "bad endpoint or node id";
    if (!bly_sock_endpoint_valid(endpoint, false) || bly_identity_curve_z85_from_id(node_id, z85) != 0)
        goto out_fail;
    if (lru->sock && self->poller)
        zpoller_remove(self->poller, lru->sock);
    zsock_destroy(&lru->sock);
    lru->sock = bly_sock_client(ZMQ_DEALER, self->identity, z85, endpoint, err, sizeof(err));
    if (!lru->sock)
        goto out_fail;
    snprintf(lru->endpoint, sizeof(lru->endpoint), "%s", endpoint);
    memcpy(lru->node_id, node_id, 32);
    lru->last_ms = now;
    if (self->poller && zpoller_add(self->poller, lru->sock) != 0)
        bly_log_warn("links: cannot poll the link to %s", endpoint);
    return lru->sock;
out_fail:
    if (bly_ratelimit_allow(&self->ratelimit, (int64_t) now, 10, 1000))
        bly_log_warn("links: cannot link to %s: %s", endpoint, err);
    return NULL;
}
