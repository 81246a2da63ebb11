/*  =========================================================================
    bly_node_status - figures a node's actors measure, for its member actor
    ========================================================================= */

#include "bly_node_status.h"

#include "bly_log.h"

#include <pthread.h>
#include <string.h>

typedef struct {
    bool used;
    uint8_t node_id[32];
    uint32_t speed_milli, load_milli;
} s_entry_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static s_entry_t s_table[BLY_NODE_STATUS_MAX];

//  The node's entry, or a free one when `add`; NULL otherwise. Lock held.
static s_entry_t *
s_find(const uint8_t node_id[32], bool add)
{
    s_entry_t *free_entry = NULL;
    for (size_t i = 0; i < BLY_NODE_STATUS_MAX; i++) {
        if (s_table[i].used && memcmp(s_table[i].node_id, node_id, 32) == 0)
            return &s_table[i];
        if (!s_table[i].used && !free_entry)
            free_entry = &s_table[i];
    }
    if (!add || !free_entry)
        return NULL;
    free_entry->used = true;
    memcpy(free_entry->node_id, node_id, 32);
    return free_entry;
}

void
bly_node_status_set(const uint8_t node_id[32], uint32_t speed_milli, uint32_t load_milli)
{
    bly_assert(node_id);
    pthread_mutex_lock(&s_lock);
    s_entry_t *e = s_find(node_id, true);
    if (e) {
        e->speed_milli = speed_milli;
        e->load_milli = load_milli > 1000 ? 1000 : load_milli;
    }
    pthread_mutex_unlock(&s_lock);
}

bool
bly_node_status_get(const uint8_t node_id[32], uint32_t *speed_milli, uint32_t *load_milli)
{
    bly_assert(node_id && speed_milli && load_milli);
    pthread_mutex_lock(&s_lock);
    const s_entry_t *e = s_find(node_id, false);
    if (e) {
        *speed_milli = e->speed_milli;
        *load_milli = e->load_milli;
    }
    pthread_mutex_unlock(&s_lock);
    return e != NULL;
}

void
bly_node_status_clear(const uint8_t node_id[32])
{
    bly_assert(node_id);
    pthread_mutex_lock(&s_lock);
    s_entry_t *e = s_find(node_id, false);
    if (e)
        memset(e, 0, sizeof(*e));
    pthread_mutex_unlock(&s_lock);
}
