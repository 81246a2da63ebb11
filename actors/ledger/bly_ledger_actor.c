/*  =========================================================================
    bly_ledger_actor - the ledger's zactor shell (see the header)
    ========================================================================= */

#include "bly_ledger_actor.h"

#include "bly_ledger_serve.h"
#include "bly_ledger_store.h"
#include "bly_limits.h"
#include "bly_sock.h"

#include <inttypes.h>
#include <string.h>

typedef struct {
    zsock_t *pipe;                   //  Actor pipe.
    zsock_t *router;                 //  CURVE ROUTER for clients.
    zpoller_t *poller;               //  Pipe and router.
    bly_ledger_store_t *store;       //  LMDB.
    bly_ledger_t *ledger;            //  State at the last committed block.
    uint8_t proposer[32];            //  Our node key (solo mode proposer).
    int64_t block_ms;                //  Solo block interval; 0 = none.
    int64_t next_block_at;           //  Monotonic ms of the next solo block.
    uint8_t *pool;                   //  Mempool: BLY_LEDGER_MEMPOOL_MAX x TX_SIZE_MAX.
    size_t pool_sizes[BLY_LEDGER_MEMPOOL_MAX];
    const uint8_t *pool_ptrs[BLY_LEDGER_MEMPOOL_MAX];
    uint8_t pool_from[BLY_LEDGER_MEMPOOL_MAX][32];  //  Sender of each pooled transaction.
    size_t pool_count;
    uint64_t blocks;
    bly_ledger_serve_t serve;        //  Queries; submissions go to s_submit.
    bool verbose;
    bool terminated;
} s_ledger_t;

static void
s_ledger_destroy(s_ledger_t **self_p)
{
    s_ledger_t *self = *self_p;
    if (!self)
        return;
    zpoller_destroy(&self->poller);
    zsock_destroy(&self->router);
    bly_ledger_store_destroy(&self->store);
    bly_ledger_destroy(&self->ledger);
    free(self->pool);
    free(self);
    *self_p = NULL;
}

//  The store folder: `dir`, else <data_dir>/ledger.
static int
s_dir(const bly_actor_args_t *args, char *dir, size_t size)
{
    const bly_manifest_t *m = args->manifest;
    if (bly_manifest_get(m, args->section, "dir"))
        return bly_manifest_get_path(m, args->section, "dir", dir, size);
    char base[BLY_PATH_MAX];
    if (!bly_manifest_get(m, BLY_MANIFEST_NODE, "data_dir")
        || bly_manifest_get_path(m, BLY_MANIFEST_NODE, "data_dir", base, sizeof(base)))
        return -1;
    int n = snprintf(dir, size, "%s/ledger", base);
    return n > 0 && (size_t) n < size ? 0 : -1;
}

static bly_ledger_msg_t *s_submit(void *self_, const bly_ledger_msg_t *req);

static s_ledger_t *
s_ledger_new(zsock_t *pipe, const bly_actor_args_t *args, char *err, size_t es)
{
    s_ledger_t *self = calloc(1, sizeof(*self));
    bly_assert(self);
    self->pipe = pipe;
    const bly_manifest_t *m = args->manifest;
    char genesis_path[BLY_PATH_MAX], dir[BLY_PATH_MAX];
    bly_ledger_genesis_t *g = malloc(sizeof(*g));
    const char *endpoint = bly_manifest_get(m, args->section, "endpoint");
    self->block_ms = bly_manifest_get_int(m, args->section, "block_ms", 1000);
    size_t map = (size_t) bly_manifest_get_int(m, args->section, "map_size_mb", 1024) << 20;
    self->pool = malloc((size_t) BLY_LEDGER_MEMPOOL_MAX * BLY_LEDGER_TX_SIZE_MAX);
    if (!g || !self->pool) {
        snprintf(err, es, "out of memory");
    } else if (!endpoint || bly_manifest_get_path(m, args->section, "genesis", genesis_path,
                                                  sizeof(genesis_path))) {
        snprintf(err, es, "ledger needs endpoint and genesis");
    } else if (s_dir(args, dir, sizeof(dir))) {
        snprintf(err, es, "ledger needs dir, or data_dir in the node section");
    } else if (bly_ledger_genesis_load(genesis_path, g, err, es) == 0) {
        self->store = bly_ledger_store_open(dir, g, map, &self->ledger, err, es);
        if (self->store)
            self->router = bly_sock_server(ZMQ_ROUTER, args->identity, "open", endpoint, err, es);
    }
    free(g);
    if (!self->router) {
        s_ledger_destroy(&self);
        return NULL;
    }
    memcpy(self->proposer, bly_identity_public_key(args->identity), 32);
    self->serve = (bly_ledger_serve_t){.name = "ledger", .store = self->store,
                                       .ledger = self->ledger, .submit = s_submit,
                                       .submit_self = self};
    self->poller = zpoller_new(pipe, self->router, NULL);
    bly_assert(self->poller);
    self->next_block_at = zclock_mono() + self->block_ms;
    bly_log_notice("ledger: chain %s at height %" PRIu64 ", serving on %s, %s",
                   bly_ledger_chain_id(self->ledger), bly_ledger_height(self->ledger), endpoint,
                   self->block_ms > 0 ? "solo block producer" : "blocks from consensus");
    return self;
}

static void
s_handle_pipe(s_ledger_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pipe);
    char *command = msg ? zmsg_popstr(msg) : NULL;
    if (!command || streq(command, "$TERM"))
        self->terminated = true;
    else if (streq(command, "VERBOSE"))
        self->verbose = true;
    else if (streq(command, "STATS"))
        zsock_send(self->pipe, "8888", bly_ledger_height(self->ledger), (uint64_t) self->pool_count,
                   self->serve.handled, self->serve.refused);
    else
        bly_log_warn("ledger: unknown pipe command %s", command);
    zstr_free(&command);
    zmsg_destroy(&msg);
}

static bly_ledger_msg_t *
s_submit(void *self_, const bly_ledger_msg_t *req)
{
    s_ledger_t *self = self_;
    size_t size;
    const uint8_t *tx = bly_ledger_msg_tx(req, &size);
    uint8_t hash[32];
    char err[200];
    if (bly_ledger_tx_check(self->ledger, tx, size, hash, err, sizeof(err)))
        return bly_ledger_serve_error(BLY_LEDGER_ERROR_REJECTED, err);
    //  Checked against the committed state, so one pending transaction per sender: a
    //  second would carry the same nonce and could never commit.
    bly_ledger_msg_t *m = NULL;
    uint8_t from[32];
    size_t n;
    bly_assert(bly_ledger_msg_decode(tx, size, &m, NULL, 0) == 0);
    memcpy(from, bly_ledger_msg_from(m, &n), 32);
    bly_ledger_msg_destroy(&m);
    for (size_t i = 0; i < self->pool_count; i++) {
        if (memcmp(self->pool_from[i], from, 32) == 0)
            return bly_ledger_serve_error(BLY_LEDGER_ERROR_REJECTED,
                           "sender already has a transaction waiting for the next block");
    }
    if (self->pool_count == BLY_LEDGER_MEMPOOL_MAX)
        return bly_ledger_serve_error(BLY_LEDGER_ERROR_FULL, "mempool full");
    uint8_t *slot = self->pool + self->pool_count * BLY_LEDGER_TX_SIZE_MAX;
    memcpy(slot, tx, size);
    self->pool_ptrs[self->pool_count] = slot;
    memcpy(self->pool_from[self->pool_count], from, 32);
    self->pool_sizes[self->pool_count++] = size;
    bly_ledger_msg_t *r = bly_ledger_msg_new(BLY_LEDGER_MSG_SUBMIT_OK);
    bly_assert(r && bly_ledger_msg_set_tx_hash(r, hash, 32) == 0);
    return r;
}

//  Drop mempool entries that were included or no longer validate.
static void
s_pool_prune(s_ledger_t *self)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->pool_count; i++) {
        const uint8_t *tx = self->pool_ptrs[i];
        if (bly_ledger_tx_check(self->ledger, tx, self->pool_sizes[i], NULL, NULL, 0) != 0)
            continue;
        uint8_t *slot = self->pool + kept * BLY_LEDGER_TX_SIZE_MAX;
        memmove(slot, tx, self->pool_sizes[i]);
        self->pool_ptrs[kept] = slot;
        memmove(self->pool_from[kept], self->pool_from[i], 32);
        self->pool_sizes[kept++] = self->pool_sizes[i];
    }
    self->pool_count = kept;
}

//  Solo mode: one block from the mempool.
static void
s_produce(s_ledger_t *self)
{
    self->next_block_at = zclock_mono() + self->block_ms;
    if (self->pool_count == 0)
        return;
    uint8_t *block = NULL;
    size_t size, used;
    char err[256];
    uint64_t now = (uint64_t) zclock_time();
    if (bly_ledger_block_build(self->ledger, self->pool_ptrs, self->pool_sizes, self->pool_count,
                               now, self->proposer, &block, &size, &used)) {
        bly_log_error("ledger: cannot build a block (out of memory)");
        return;
    }
    if (bly_ledger_store_apply(self->store, self->ledger, block, size, err, sizeof(err)) == 0) {
        self->blocks++;
        bly_log_info("ledger: committed block %" PRIu64 " with %zu transactions",
                     bly_ledger_height(self->ledger), used);
    } else {
        bly_log_error("ledger: block not committed: %s", err);
    }
    free(block);
    s_pool_prune(self);
}

void
bly_ledger_actor(zsock_t *pipe, void *args)
{
    char err[512] = "";
    bly_log_set_actor("ledger");
    s_ledger_t *self = s_ledger_new(pipe, args, err, sizeof(err));
    if (!self) {
        bly_actor_fail(pipe, "ledger: %s", err);
        return;
    }
    bly_actor_ready(pipe);
    while (!self->terminated) {  //  The one unbounded loop.
        int64_t wait = 1000;
        if (self->block_ms > 0) {
            wait = self->next_block_at - zclock_mono();
            wait = wait < 0 ? 0 : wait;
        }
        void *which = zpoller_wait(self->poller, (int) wait);
        if (which == self->pipe) {
            s_handle_pipe(self);
        } else if (which == self->router) {
            for (int i = 0; i < BLY_ACTOR_BATCH_MAX && !self->terminated; i++) {
                bly_ledger_serve_one(&self->serve, self->router);
                if (!(zsock_events(self->router) & ZMQ_POLLIN))
                    break;
            }
        } else if (zpoller_terminated(self->poller)) {
            break;
        }
        if (self->block_ms > 0 && zclock_mono() >= self->next_block_at)
            s_produce(self);
    }
    s_ledger_destroy(&self);
}
