/*  =========================================================================
    bly_consensus_actor - one Tendermint replica as a zactor (see the header)
    ========================================================================= */

#include "bly_consensus_actor.h"

#include "bly_cons_core.h"
#include "bly_cons_ledger.h"
#include "bly_limits.h"
#include "bly_sock.h"
#include "bly_zap.h"
#include "ledger/bly_ledger_serve.h"
#include "ledger/bly_ledger_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define S_DOMAIN "consensus"       //  ZAP domain of the replica link (allow-listed).
#define S_TIMERS_MAX 8             //  One pending timer per kind (5 kinds) is enough.
#define S_REC_HEADER 12            //  Record: u32 size, 8-byte BLAKE2b of the data.
#define S_PEER_IDS_MAX (BLY_CONS_VALIDATORS_MAX * 65)
#define S_RELAY_BYTES (64 * 1024)  //  Client transactions relayed to peers in one frame.

typedef struct {
    bool used;
    bly_cons_timer_t timer;
    int64_t due;                   //  Monotonic ms.
} s_timer_t;

typedef struct {
    zsock_t *pipe;
    zsock_t *client;                                //  ROUTER, domain "open".
    zsock_t *replica;                               //  ROUTER, domain "consensus".
    zsock_t *peers[BLY_CONS_VALIDATORS_MAX];        //  DEALER per other replica.
    char peer_z85[BLY_CONS_VALIDATORS_MAX][BLY_IDENTITY_Z85_SIZE];
    zpoller_t *poller;
    bly_ledger_store_t *store;                      //  LMDB: state, blocks, queries.
    bly_ledger_t *ledger;                           //  The one ledger (store follows it).
    bly_cons_ledger_t *app;
    bly_cons_sigcache_t *sigcache;
    bly_cons_core_t *core;
    bly_cons_config_t cfg;
    uint64_t powers[BLY_CONS_VALIDATORS_MAX];       //  Voting powers last logged.
    bly_ledger_serve_t serve;
    int wal_fd, log_fd;                             //  WAL, commit log.
    int guard_fd;                                   //  <dir>.guard: last signing record.
    uint64_t log_end;                               //  Commit log size.
    uint64_t *offsets;                              //  Record offset of height h at [h-1].
    uint32_t *sizes;
    uint64_t heights, cap;                          //  Records, capacity.
    uint8_t *buf;                                   //  One record (BLY_CONS_MSG_SIZE_MAX).
    const uint8_t *flush_blocks[BLY_CONS_EFFECTS_MAX];  //  Ledger blocks committed in
    size_t flush_sizes[BLY_CONS_EFFECTS_MAX];           //  this core call, not in LMDB yet.
    uint32_t flush_count;
    uint8_t *relay;                                 //  Client transactions to relay.
    size_t relay_size;
    s_timer_t timers[S_TIMERS_MAX];
    uint64_t relayed, refused_frames;
    bly_ratelimit_t log_limit;
    bool verbose, terminated, failed;
    bool pending_new;                               //  A transaction entered the mempool.
} s_cons_t;

//  ---------------------------------------------------------------------
//  Record files: [u32 size LE][8-byte BLAKE2b(data)][data]

static int
s_rec_append(int fd, uint64_t *end, const uint8_t *data, size_t size, bool sync)
{
    uint8_t hdr[S_REC_HEADER];
    hdr[0] = (uint8_t) size;
    hdr[1] = (uint8_t) (size >> 8);
    hdr[2] = (uint8_t) (size >> 16);
    hdr[3] = (uint8_t) (size >> 24);
    crypto_generichash(hdr + 4, 8, data, size, NULL, 0);
    struct iovec iov[2] = {{hdr, S_REC_HEADER}, {(void *) data, size}};
    ssize_t n = pwritev(fd, iov, 2, (off_t) *end);
    if (n != (ssize_t) (S_REC_HEADER + size))
        return -1;
    *end += S_REC_HEADER + size;
    return sync && fdatasync(fd) != 0 ? -1 : 0;
}

//  Read the record at `off` into buf (capacity BLY_CONS_MSG_SIZE_MAX). Its
//  size, or 0 at the end or for a torn/corrupt record.
static uint32_t
s_rec_read(int fd, uint64_t off, uint8_t *buf)
{
    uint8_t hdr[S_REC_HEADER], check[8];
    if (pread(fd, hdr, S_REC_HEADER, (off_t) off) != S_REC_HEADER)
        return 0;
    uint32_t size = (uint32_t) hdr[0] | (uint32_t) hdr[1] << 8 | (uint32_t) hdr[2] << 16 |
                    (uint32_t) hdr[3] << 24;
    if (size == 0 || size > BLY_CONS_MSG_SIZE_MAX ||
        pread(fd, buf, size, (off_t) (off + S_REC_HEADER)) != (ssize_t) size)
        return 0;
    crypto_generichash(check, 8, buf, size, NULL, 0);
    return memcmp(check, hdr + 4, 8) == 0 ? size : 0;
}

//  Open (create) dir/name, or dir + name when name starts with '.'.
static int
s_open(const char *dir, const char *name, char *err, size_t es)
{
    char path[BLY_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s%s%s", dir, name[0] == '.' ? "" : "/", name);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        snprintf(err, es, "cannot open %.300s: %s", path, strerror(errno));
    return fd;
}

//  ---------------------------------------------------------------------
//  Block store (commit log) and the LMDB front

static int
s_index_add(s_cons_t *self, uint64_t off, uint32_t size)
{
    if (self->heights == self->cap) {
        uint64_t cap = self->cap ? self->cap * 2 : 1024;
        uint64_t *o = realloc(self->offsets, cap * sizeof(*o));
        if (o)
            self->offsets = o;
        uint32_t *s = realloc(self->sizes, cap * sizeof(*s));
        if (s)
            self->sizes = s;
        if (!o || !s)
            return -1;
        self->cap = cap;
    }
    self->offsets[self->heights] = off;
    self->sizes[self->heights++] = size;
    return 0;
}

static uint32_t
s_load(void *self_, uint64_t height, uint8_t *buf, uint32_t max)
{
    s_cons_t *self = self_;
    if (height == 0 || height > self->heights || self->sizes[height - 1] > max)
        return 0;
    return s_rec_read(self->log_fd, self->offsets[height - 1], buf);
}

//  Note a stored COMMIT's ledger block for the next flush, when the store lacks it.
static int
s_flush_add(s_cons_t *self, const uint8_t *data, size_t size)
{
    bly_cons_msg_t msg;
    bly_cons_block_t hdr;
    if (bly_cons_msg_decode(&msg, data, size) != 0 ||
        bly_cons_block_decode(&hdr, msg.block, msg.block_size) != 0)
        return -1;
    if (hdr.height <= bly_ledger_store_followed_height(self->ledger))
        return 0;
    bly_assert(self->flush_count < BLY_CONS_EFFECTS_MAX);
    self->flush_blocks[self->flush_count] = hdr.payload;
    self->flush_sizes[self->flush_count++] = hdr.payload_size;
    return 0;
}

//  The blocks the core committed into the ledger (in memory) since the last
//  flush, and the rows they changed: one LMDB write transaction.
static int
s_flush(s_cons_t *self)
{
    char err[256];
    int rc = bly_ledger_store_flush(self->store, self->ledger, self->flush_blocks,
                                    self->flush_sizes, self->flush_count, err, sizeof(err));
    self->flush_count = 0;
    if (rc != 0)
        bly_log_error("consensus: %s", err);
    return rc;
}

//  A decided block: durable in the commit log (the ledger applied it in memory;
//  LMDB gets it at the flush after this core call, and a crash before that
//  replays it from here); the WAL of the decided height is no longer needed.
static void
s_commit(s_cons_t *self, const uint8_t *data, size_t size)
{
    uint64_t off = self->log_end;
    if (s_rec_append(self->log_fd, &self->log_end, data, size, true) != 0 ||
        s_index_add(self, off, (uint32_t) size) != 0) {
        bly_log_error("consensus: cannot store a commit: %s", strerror(errno));
        self->failed = true;
        return;
    }
    if (s_flush_add(self, data, size) != 0)
        self->failed = true;
    //  No fsync: a WAL record of a decided height left over by a crash is skipped on replay.
    if (ftruncate(self->wal_fd, 0) != 0)
        bly_log_warn("consensus: cannot truncate the WAL: %s", strerror(errno));
    if (self->verbose)
        bly_log_info("consensus: committed height %" PRIu64, self->heights);
}

//  ---------------------------------------------------------------------
//  Effects

static void
s_send(s_cons_t *self, int32_t peer, const char *kind, const uint8_t *data, size_t size)
{
    if (peer < 0 || peer >= (int32_t) self->cfg.validator_count || !self->peers[peer])
        return;
    void *h = zsock_resolve(self->peers[peer]);
    if (zmq_send(h, kind, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 1)
        (void) zmq_send(h, data, size, ZMQ_DONTWAIT);
}

static void
s_broadcast(s_cons_t *self, const char *kind, const uint8_t *data, size_t size)
{
    for (uint32_t i = 0; i < self->cfg.validator_count; i++)
        s_send(self, (int32_t) i, kind, data, size);
}

//  Timers count from `base`: the moment the core's call returned, not the moment
//  the effect before it (an fsync) finished, so the commit's fsyncs overlap
//  timeoutCommit instead of adding to it.
static void
s_timer_set(s_cons_t *self, const bly_cons_timer_t *t, int64_t base, int64_t delay_ms)
{
    s_timer_t *slot = NULL;
    for (int i = 0; i < S_TIMERS_MAX && !slot; i++)
        if (self->timers[i].used && self->timers[i].timer.kind == t->kind)
            slot = &self->timers[i];   //  The newest timer of a kind replaces the older.
    for (int i = 0; i < S_TIMERS_MAX && !slot; i++)
        if (!self->timers[i].used)
            slot = &self->timers[i];
    bly_assert(slot);
    *slot = (s_timer_t){true, *t, base + (delay_ms > 0 ? delay_ms : 0)};
}

//  Log each change of a validator's voting power (a committed stake change, a
//  tombstone), once: the first 4 bytes of its key in hex name it.
static void
s_powers_note(s_cons_t *self)
{
    for (uint32_t v = 0; v < self->cfg.validator_count; v++) {
        uint64_t power = bly_cons_core_power(self->core, v);
        if (power == self->powers[v])
            continue;
        const uint8_t *key = self->cfg.pubkeys[v];
        bly_log_notice("consensus: validator %u (%02x%02x%02x%02x) has voting power %" PRIu64
                       " of %" PRIu64 " from height %" PRIu64,
                       v, key[0], key[1], key[2], key[3], power,
                       bly_cons_core_total_power(self->core), bly_cons_core_height(self->core));
        self->powers[v] = power;
    }
}

static void
s_effects(s_cons_t *self, const bly_cons_effects_t *fx)
{
    int64_t base = zclock_mono();
    for (uint32_t i = 0; i < fx->count && !self->failed; i++) {
        const bly_cons_effect_t *e = &fx->items[i];
        switch (e->kind) {
        case BLY_CONS_FX_PERSIST: {
            uint64_t end = (uint64_t) lseek(self->wal_fd, 0, SEEK_END);
            if (s_rec_append(self->wal_fd, &end, e->data, e->size, e->sync) != 0) {
                //  A vote that cannot be made durable must not leave.
                bly_log_error("consensus: WAL write failed: %s", strerror(errno));
                self->failed = true;
            }
            //  A synced record precedes every own signature: keep the latest outside
            //  `dir` too (no fsync: it guards against a wiped folder, not power loss).
            uint64_t zero = 0;
            if (e->sync && s_rec_append(self->guard_fd, &zero, e->data, e->size, false) != 0)
                bly_log_warn("consensus: cannot write the guard file: %s", strerror(errno));
            break;
        }
        case BLY_CONS_FX_BROADCAST:
            s_broadcast(self, "C", e->data, e->size);
            break;
        case BLY_CONS_FX_SEND:
            s_send(self, e->peer, "C", e->data, e->size);
            break;
        case BLY_CONS_FX_TIMER:
            s_timer_set(self, &e->timer, base, e->delay_ms);
            break;
        case BLY_CONS_FX_COMMIT:
            s_commit(self, e->data, e->size);
            break;
        default:
            bly_assert(!"unknown effect kind");
        }
    }
    bool committed = self->flush_count > 0;
    if (committed && !self->failed && s_flush(self) != 0)
        self->failed = true;
    self->flush_count = 0;
    if (committed)
        s_powers_note(self);
}

static void
s_timers_fire(s_cons_t *self)
{
    int64_t now = zclock_mono();
    for (int i = 0; i < S_TIMERS_MAX && !self->failed; i++) {
        if (!self->timers[i].used || self->timers[i].due > now)
            continue;
        bly_cons_timer_t t = self->timers[i].timer;
        self->timers[i].used = false;
        s_effects(self, bly_cons_core_on_timer(self->core, &t, zclock_time()));
    }
}

static int64_t
s_timer_wait(const s_cons_t *self)
{
    int64_t wait = 1000, now = zclock_mono();
    for (int i = 0; i < S_TIMERS_MAX; i++)
        if (self->timers[i].used && self->timers[i].due - now < wait)
            wait = self->timers[i].due - now;
    return wait < 0 ? 0 : wait;
}

//  ---------------------------------------------------------------------
//  Sockets

//  A batch of client transactions relayed by a peer: [u16 LE size][tx]...
//  Already pooled or no longer valid is fine; a malformed batch stops.
static void
s_relayed(s_cons_t *self, const uint8_t *data, size_t size)
{
    char err[160];
    for (size_t at = 0; at + 2 <= size;) {  //  Bounded by the frame size.
        size_t n = (size_t) data[at] | (size_t) data[at + 1] << 8;
        if (n == 0 || n > BLY_LEDGER_TX_SIZE_MAX || at + 2 + n > size) {
            self->refused_frames++;
            return;
        }
        if (bly_cons_ledger_submit(self->app, data + at + 2, n, err, sizeof(err)) == 0)
            self->pending_new = true;
        at += 2 + n;
    }
}

//  Send the pending client transactions to every replica in one frame.
static void
s_relay_flush(s_cons_t *self)
{
    if (self->relay_size == 0)
        return;
    s_broadcast(self, "B", self->relay, self->relay_size);
    self->relay_size = 0;
}

static void
s_relay_add(s_cons_t *self, const uint8_t *tx, size_t size)
{
    bly_assert(size > 0 && size <= BLY_LEDGER_TX_SIZE_MAX);
    if (self->relay_size + 2 + size > S_RELAY_BYTES)
        s_relay_flush(self);
    self->relay[self->relay_size] = (uint8_t) size;
    self->relay[self->relay_size + 1] = (uint8_t) (size >> 8);
    memcpy(self->relay + self->relay_size + 2, tx, size);
    self->relay_size += 2 + size;
    self->relayed++;
}

//  One frame from another replica: [rid][kind][data].
static void
s_replica_one(s_cons_t *self)
{
    zmsg_t *msg = zmsg_recv(self->replica);
    if (!msg)
        return;
    zframe_t *rid = zmsg_pop(msg), *kind = zmsg_pop(msg), *data = zmsg_pop(msg);
    const char *key = data ? bly_sock_peer_key(data) : NULL;
    int32_t from = -1;
    for (uint32_t i = 0; key && i < self->cfg.validator_count; i++)
        if (strcmp(self->peer_z85[i], key) == 0)
            from = (int32_t) i;
    if (from < 0 || !kind || zframe_size(kind) != 1 || zmsg_size(msg) != 0) {
        self->refused_frames++;
        if (bly_ratelimit_allow(&self->log_limit, zclock_mono(), 5, 10000))
            bly_log_warn("consensus: dropped a malformed replica frame (%" PRIu64 " so far)",
                         self->refused_frames);
    } else if (zframe_data(kind)[0] == 'C') {
        s_effects(self, bly_cons_core_on_message(self->core, zframe_data(data),
                                                 zframe_size(data), from, zclock_time()));
    } else if (zframe_data(kind)[0] == 'B') {
        s_relayed(self, zframe_data(data), zframe_size(data));
    }
    zframe_destroy(&rid);
    zframe_destroy(&kind);
    zframe_destroy(&data);
    zmsg_destroy(&msg);
}

//  A client submission: into our mempool, relayed to every replica.
static bly_ledger_msg_t *
s_submit(void *self_, const bly_ledger_msg_t *req)
{
    s_cons_t *self = self_;
    size_t size;
    const uint8_t *tx = bly_ledger_msg_tx(req, &size);
    char err[200];
    if (bly_cons_ledger_submit(self->app, tx, size, err, sizeof(err)) != 0)
        return bly_ledger_serve_error(strcmp(err, "mempool full") == 0 ? BLY_LEDGER_ERROR_FULL
                                                                      : BLY_LEDGER_ERROR_REJECTED,
                                      err);
    s_relay_add(self, tx, size);
    self->pending_new = true;
    uint8_t hash[32];
    bly_ledger_tx_hash(tx, size, hash);
    bly_ledger_msg_t *r = bly_ledger_msg_new(BLY_LEDGER_MSG_SUBMIT_OK);
    bly_assert(r && bly_ledger_msg_set_tx_hash(r, hash, 32) == 0);
    return r;
}

static void
s_handle_pipe(s_cons_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pipe);
    char *command = msg ? zmsg_popstr(msg) : NULL;
    if (!command || streq(command, "$TERM"))
        self->terminated = true;
    else if (streq(command, "VERBOSE"))
        self->verbose = true;
    else if (streq(command, "STATS"))
        zsock_send(self->pipe, "888", bly_cons_core_height(self->core),
                   (uint64_t) bly_cons_ledger_pending(self->app), self->refused_frames);
    else
        bly_log_warn("consensus: unknown pipe command %s", command);
    zstr_free(&command);
    zmsg_destroy(&msg);
}

//  ---------------------------------------------------------------------
//  Setup and recovery

static void
s_cons_destroy(s_cons_t **self_p)
{
    s_cons_t *self = *self_p;
    if (!self)
        return;
    zpoller_destroy(&self->poller);
    zsock_destroy(&self->client);
    zsock_destroy(&self->replica);
    for (uint32_t i = 0; i < BLY_CONS_VALIDATORS_MAX; i++)
        zsock_destroy(&self->peers[i]);
    bly_cons_core_destroy(&self->core);
    bly_cons_ledger_destroy(&self->app);
    bly_cons_sigcache_destroy(&self->sigcache);
    bly_ledger_store_destroy(&self->store);
    bly_ledger_destroy(&self->ledger);
    if (self->wal_fd >= 0)
        close(self->wal_fd);
    if (self->log_fd >= 0)
        close(self->log_fd);
    if (self->guard_fd >= 0)
        close(self->guard_fd);
    free(self->offsets);
    free(self->sizes);
    free(self->buf);
    free(self->relay);
    free(self);
    *self_p = NULL;
}

//  The storage folder: `dir`, else <data_dir>/consensus (created).
static int
s_dir(const bly_actor_args_t *args, char *dir, size_t size)
{
    const bly_manifest_t *m = args->manifest;
    if (bly_manifest_get(m, args->section, "dir")) {
        if (bly_manifest_get_path(m, args->section, "dir", dir, size))
            return -1;
    } else {
        char base[BLY_PATH_MAX];
        if (!bly_manifest_get(m, BLY_MANIFEST_NODE, "data_dir") ||
            bly_manifest_get_path(m, BLY_MANIFEST_NODE, "data_dir", base, sizeof(base)))
            return -1;
        mkdir(base, 0700);
        int n = snprintf(dir, size, "%s/consensus", base);
        if (n <= 0 || (size_t) n >= size)
            return -1;
    }
    return mkdir(dir, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

//  The validator set (the genesis's staked keys: membership is fixed; each
//  one's voting power then follows its ledger stake, bly_cons_app_t.powers),
//  our index, and the timeouts.
static int
s_config(s_cons_t *self, const bly_actor_args_t *args, const bly_ledger_genesis_t *g, char *err,
         size_t es)
{
    const bly_manifest_t *m = args->manifest;
    bly_cons_config_t *c = &self->cfg;
    bly_ledger_account_t *v = calloc(BLY_CONS_VALIDATORS_MAX, sizeof(*v));
    bly_ledger_t *genesis = bly_ledger_new(g);
    bly_assert(v && genesis);
    size_t n = bly_ledger_validators(genesis, v, BLY_CONS_VALIDATORS_MAX);
    bly_ledger_destroy(&genesis);
    snprintf(c->chain_id, sizeof(c->chain_id), "%s", bly_ledger_chain_id(self->ledger));
    c->validator_count = (uint32_t) (n > BLY_CONS_VALIDATORS_MAX ? 0 : n);
    c->self_index = -1;
    for (uint32_t i = 0; i < c->validator_count; i++) {
        memcpy(c->pubkeys[i], v[i].key, BLY_CONS_PUBKEY_SIZE);
        c->powers[i] = v[i].stake;
        if (memcmp(v[i].key, bly_identity_public_key(args->identity), 32) == 0)
            c->self_index = (int32_t) i;
        if (bly_identity_curve_z85_from_id(v[i].key, self->peer_z85[i]) != 0)
            c->validator_count = 0;
    }
    free(v);
    if (c->validator_count == 0) {
        snprintf(err, es, "the genesis has no usable validator set (1..%d staked node keys)",
                 BLY_CONS_VALIDATORS_MAX);
        return -1;
    }
    c->block_size_max = BLY_CONS_BLOCK_SIZE_MAX;   //  2,048 ledger transfers fit.
    c->timeout_propose_ms = bly_manifest_get_int(m, args->section, "timeout_propose_ms", 300);
    c->timeout_prevote_ms = c->timeout_propose_ms / 3 + 1;
    c->timeout_precommit_ms = c->timeout_prevote_ms;
    c->timeout_delta_ms = c->timeout_prevote_ms / 2 + 1;
    c->gossip_ms = bly_manifest_get_int(m, args->section, "gossip_ms", 50);
    c->timeout_commit_ms = bly_manifest_get_int(m, args->section, "timeout_commit_ms", 50);
    c->timeout_idle_ms = bly_manifest_get_int(m, args->section, "timeout_idle_ms", 1000);
    c->sigcache = self->sigcache;
    return 0;
}

//  The replica link: our allow-listed ROUTER, a DEALER to each peer.
static int
s_link(s_cons_t *self, const bly_actor_args_t *args, char *err, size_t es)
{
    const bly_manifest_t *m = args->manifest;
    const char *listen = bly_manifest_get(m, args->section, "listen");
    const char *peers = bly_manifest_get(m, args->section, "peers");
    const char *ids = bly_manifest_get(m, args->section, "peer_ids");
    if (!args->zap) {
        snprintf(err, es, "consensus needs the node's ZAP handler");
        return -1;
    }
    for (uint32_t i = 0; i < self->cfg.validator_count; i++)
        if (bly_zap_allow(args->zap, S_DOMAIN, self->peer_z85[i]) != 0) {
            snprintf(err, es, "cannot allow-list validator %u", i);
            return -1;
        }
    self->replica = bly_sock_server(ZMQ_ROUTER, args->identity, S_DOMAIN, listen, err, es);
    if (!self->replica)
        return -1;
    char ep[BLY_ENDPOINT_MAX], hex[65];
    const char *p = peers, *q = ids;
    for (int k = 0; p && *p; k++) {
        size_t el = strcspn(p, ","), hl = q ? strcspn(q, ",") : 0;
        uint8_t id[32];
        int32_t index = -1;
        if (el >= sizeof(ep) || hl != 64) {
            snprintf(err, es, "peer %d: bad endpoint or peer_ids entry", k + 1);
            return -1;
        }
        memcpy(ep, p, el), ep[el] = 0;
        memcpy(hex, q, 64), hex[64] = 0;
        if (bly_identity_id_from_hex(hex, id) == 0)
            for (uint32_t i = 0; i < self->cfg.validator_count; i++)
                if (memcmp(self->cfg.pubkeys[i], id, 32) == 0)
                    index = (int32_t) i;
        if (index < 0 || index == self->cfg.self_index || self->peers[index]) {
            snprintf(err, es, "peer %d: %s is not another validator of the genesis", k + 1, hex);
            return -1;
        }
        self->peers[index] = bly_sock_client(ZMQ_DEALER, args->identity, self->peer_z85[index],
                                             ep, err, es);
        if (!self->peers[index])
            return -1;
        p += el + (p[el] == ',');
        q += hl + (q[hl] == ',');
    }
    return 0;
}

//  Replay the commit log, then the WAL; bring the LMDB front up to date.
static int
s_recover(s_cons_t *self, const char *dir, char *err, size_t es)
{
    self->log_fd = s_open(dir, "commits", err, es);
    self->wal_fd = self->log_fd < 0 ? -1 : s_open(dir, "wal", err, es);
    self->guard_fd = self->wal_fd < 0 ? -1 : s_open(dir, ".guard", err, es);
    if (self->guard_fd < 0)
        return -1;
    //  LMDB may lag the commit log (a crash between the two), never lead it: blocks it
    //  holds are skipped by the application, later ones applied and written.
    for (uint32_t size; (size = s_rec_read(self->log_fd, self->log_end, self->buf)) > 0;) {
        if (bly_cons_core_replay_commit(self->core, self->buf, size) != 0 ||
            s_flush_add(self, self->buf, size) != 0 || s_flush(self) != 0) {
            snprintf(err, es, "commit log record %" PRIu64 " does not replay", self->heights + 1);
            return -1;
        }
        if (s_index_add(self, self->log_end, size) != 0) {
            snprintf(err, es, "out of memory");
            return -1;
        }
        self->log_end += S_REC_HEADER + size;
    }
    if (bly_ledger_height(self->ledger) > self->heights) {
        snprintf(err, es, "the ledger store (height %" PRIu64 ") is ahead of the commit log "
                 "(%" PRIu64 "): wipe %.300s to resync", bly_ledger_height(self->ledger),
                 self->heights, dir);
        return -1;
    }
    uint64_t off = 0, wal_records = 0;
    for (uint32_t size; (size = s_rec_read(self->wal_fd, off, self->buf)) > 0; wal_records++) {
        if (bly_cons_core_replay_wal(self->core, self->buf, size) != 0)
            break;
        off += S_REC_HEADER + size;
    }
    //  A wiped folder (no commits, no WAL): only the double-sign guard comes back.
    uint32_t gsize = s_rec_read(self->guard_fd, 0, self->buf);
    if (self->heights == 0 && wal_records == 0 && gsize > 0) {
        if (bly_cons_core_replay_guard(self->core, self->buf, gsize) != 0) {
            snprintf(err, es, "the guard file %.300s.guard does not replay", dir);
            return -1;
        }
        bly_log_notice("consensus: empty storage, double-sign guard restored; catching up");
    }
    //  Cut torn tails so appends continue after the last good record.
    if (ftruncate(self->log_fd, (off_t) self->log_end) != 0 ||
        ftruncate(self->wal_fd, (off_t) off) != 0) {
        snprintf(err, es, "cannot truncate in %.300s: %s", dir, strerror(errno));
        return -1;
    }
    bly_log_notice("consensus: recovered %" PRIu64 " commits and %" PRIu64 " WAL records",
                   self->heights, wal_records);
    return 0;
}

static s_cons_t *
s_cons_new(zsock_t *pipe, const bly_actor_args_t *args, char *err, size_t es)
{
    s_cons_t *self = calloc(1, sizeof(*self));
    bly_assert(self);
    self->pipe = pipe;
    self->wal_fd = self->log_fd = self->guard_fd = -1;
    const bly_manifest_t *m = args->manifest;
    char gpath[BLY_PATH_MAX], dir[BLY_PATH_MAX], ldir[BLY_PATH_MAX + 8];
    bly_ledger_genesis_t *g = malloc(sizeof(*g));
    const char *endpoint = bly_manifest_get(m, args->section, "endpoint");
    size_t map = (size_t) bly_manifest_get_int(m, args->section, "map_size_mb", 1024) << 20;
    self->buf = malloc(BLY_CONS_MSG_SIZE_MAX);
    self->relay = malloc(S_RELAY_BYTES);
    self->sigcache = bly_cons_sigcache_new();
    int rc = -1;
    if (!g || !self->buf || !self->relay || !self->sigcache)
        snprintf(err, es, "out of memory");
    else if (!endpoint || bly_manifest_get_path(m, args->section, "genesis", gpath, sizeof(gpath)))
        snprintf(err, es, "consensus needs endpoint and genesis");
    else if (s_dir(args, dir, sizeof(dir)))
        snprintf(err, es, "consensus needs dir, or data_dir in the node section");
    else if (bly_ledger_genesis_load(gpath, g, err, es) == 0) {
        snprintf(ldir, sizeof(ldir), "%s/ledger", dir);
        self->store = bly_ledger_store_open(ldir, g, map, &self->ledger, err, es);
        if (self->store && bly_ledger_store_relax(self->store) != 0)
            snprintf(err, es, "cannot set the ledger store's sync mode");
        else if (self->store)
            rc = s_config(self, args, g, err, es);
    }
    free(g);
    if (rc == 0) {
        //  The store follows the one ledger: one LMDB write per core call that commits.
        bly_ledger_store_follow(self->store, self->ledger);
        self->app = bly_cons_ledger_new(self->ledger, bly_identity_public_key(args->identity),
                                        s_load, self);
        //  The schema bounds mempool_max to 1..BLY_MEMPOOL_TX_MAX.
        int64_t pool_max = bly_manifest_get_int(args->manifest, args->section, "mempool_max",
                                                BLY_MEMPOOL_TX_MAX);
        if (self->app && bly_cons_ledger_set_pool_max(self->app, (uint32_t) pool_max) == 0) {
            bly_cons_ledger_set_validators(self->app, &self->cfg);
            self->core = bly_cons_core_new(&self->cfg, bly_identity_secret_key(args->identity),
                                           bly_cons_ledger_app(self->app));
        }
        if (!self->app || !self->core)
            snprintf(err, es, "bad consensus configuration");
        for (uint32_t v = 0; self->core && v < self->cfg.validator_count; v++)
            self->powers[v] = bly_cons_core_power(self->core, v);    //  Genesis.
        rc = self->core ? s_recover(self, dir, err, es) : -1;
        if (rc == 0)
            s_powers_note(self);    //  What the replayed blocks changed.
    }
    if (rc == 0 && s_link(self, args, err, es) == 0)
        self->client = bly_sock_server(ZMQ_ROUTER, args->identity, "open", endpoint, err, es);
    if (!self->client) {
        s_cons_destroy(&self);
        return NULL;
    }
    self->serve = (bly_ledger_serve_t){.name = "consensus", .store = self->store,
                                       .ledger = self->ledger, .submit = s_submit,
                                       .submit_self = self};
    self->poller = zpoller_new(pipe, self->replica, self->client, NULL);
    bly_assert(self->poller);
    bly_log_notice("consensus: chain %s, validator %d of %u at height %" PRIu64
                   ", clients on %s",
                   self->cfg.chain_id, self->cfg.self_index, self->cfg.validator_count,
                   bly_cons_core_height(self->core), endpoint);
    return self;
}

void
bly_consensus_actor(zsock_t *pipe, void *args)
{
    char err[512] = "";
    bly_log_set_actor("consensus");
    s_cons_t *self = s_cons_new(pipe, args, err, sizeof(err));
    if (!self) {
        bly_actor_fail(pipe, "consensus: %s", err);
        return;
    }
    bly_actor_ready(pipe);
    s_effects(self, bly_cons_core_start(self->core, zclock_time()));
    while (!self->terminated && !self->failed) {  //  The one unbounded loop.
        void *which = zpoller_wait(self->poller, (int) s_timer_wait(self));
        if (which == self->pipe) {
            s_handle_pipe(self);
        } else if (which == self->replica) {
            for (int i = 0; i < BLY_ACTOR_BATCH_MAX && !self->failed; i++) {
                s_replica_one(self);
                if (!(zsock_events(self->replica) & ZMQ_POLLIN))
                    break;
            }
        } else if (which == self->client) {
            for (int i = 0; i < BLY_ACTOR_BATCH_MAX; i++) {
                bly_ledger_serve_one(&self->serve, self->client);
                if (!(zsock_events(self->client) & ZMQ_POLLIN))
                    break;
            }
            s_relay_flush(self);
        } else if (zpoller_terminated(self->poller)) {
            break;
        }
        if (self->pending_new && !self->failed) {
            self->pending_new = false;    //  Ends an idle pause: round 0 starts now.
            s_effects(self, bly_cons_core_on_pending(self->core, zclock_time()));
        }
        s_timers_fire(self);
    }
    if (self->failed) {
        //  Storage failed: stop deciding, keep answering $TERM.
        bly_log_error("consensus: stopped after a storage failure");
        while (!self->terminated)
            s_handle_pipe(self);
    }
    s_cons_destroy(&self);
}
