/*  =========================================================================
    bly_node_schema - the manifest keys of the node section and each role

    docs/MANIFEST.md describes the same keys for people; keep both in step.
    Roles are added here as their actors arrive (router, layer-shard,
    validator, ledger, consensus, gateway come with later issues).
    ========================================================================= */

#include "bly_node.h"

#include "bly_limits.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const bly_manifest_key_t s_node_keys[] = {
    {"name", BLY_MANIFEST_STRING, true, 1, BLY_NAME_MAX - 1, NULL,
     "the node's name in logs and peer lists"},
    {"key_file", BLY_MANIFEST_PATH, true, 0, 0, NULL,
     "the node's Ed25519 key file, created (mode 0600) on first start"},
    {"data_dir", BLY_MANIFEST_PATH, false, 0, 0, NULL, "folder for the node's stored state"},
    {"pid_file", BLY_MANIFEST_PATH, false, 0, 0, NULL, "file the node writes its process id to"},
    {"log_level", BLY_MANIFEST_CHOICE, false, 0, 0, "error|warn|notice|info|debug",
     "lowest level logged"},
    {"bootstrap", BLY_MANIFEST_ENDPOINT, false, 0, 0, NULL,
     "the bootstrap endpoint to join the mesh through"},
    {"bootstrap_key", BLY_MANIFEST_HEX32, false, 0, 0, NULL,
     "the bootstrap node's id (hex); required with bootstrap"},
    {"endpoints", BLY_MANIFEST_ENDPOINTS, false, 0, BLY_ADVERT_ENDPOINTS_MAX, NULL,
     "endpoints advertised to the mesh, comma-separated"},
    {"model", BLY_MANIFEST_STRING, false, 1, BLY_MODEL_NAME_MAX - 1, NULL,
     "the model this node serves"},
    {"stages", BLY_MANIFEST_RANGE, false, 0, 65535, NULL,
     "the model stages this node serves, FIRST-LAST"},
    {"device", BLY_MANIFEST_STRING, false, 1, BLY_DEVICE_DESC_MAX - 1, NULL,
     "the compute device description advertised"},
    {"speed_milli", BLY_MANIFEST_INT, false, 0, 1000000000, NULL,
     "relative speed advertised, in thousandths (1000 = reference)"},
};

static const bly_manifest_key_t s_bootstrap_keys[] = {
    {"endpoint", BLY_MANIFEST_ENDPOINT, true, 0, 0, NULL, "where the bootstrap listens (CURVE)"},
    {"heartbeat_ms", BLY_MANIFEST_INT, false, BLY_HEARTBEAT_MS_MIN, BLY_HEARTBEAT_MS_MAX, NULL,
     "heartbeat interval asked of members (default 1000)"},
    {"expiry_ms", BLY_MANIFEST_INT, false, BLY_EXPIRY_MS_MIN, BLY_EXPIRY_MS_MAX, NULL,
     "a member silent this long is dropped (default 5000)"},
    {"max_peers", BLY_MANIFEST_INT, false, 1, BLY_PEERS_MAX, NULL,
     "registry size (default BLY_PEERS_MAX)"},
    {"timestamp_window_ms", BLY_MANIFEST_INT, false, 1000, BLY_MESH_TIMESTAMP_WINDOW_MS, NULL,
     "signed messages must be this fresh (default 60000)"},
};

//  docs/LEDGER.md; actors/ledger/bly_ledger_actor.h.
static const bly_manifest_key_t s_ledger_keys[] = {
    {"endpoint", BLY_MANIFEST_ENDPOINT, true, 0, 0, NULL,
     "where the ledger serves queries and transactions (CURVE, any client key)"},
    {"genesis", BLY_MANIFEST_PATH, true, 0, 0, NULL, "the chain's genesis file (config/genesis.conf)"},
    {"dir", BLY_MANIFEST_PATH, false, 0, 0, NULL,
     "the LMDB folder (default <data_dir>/ledger)"},
    {"map_size_mb", BLY_MANIFEST_INT, false, 1, 65536, NULL, "LMDB map size in MiB (default 1024)"},
    {"block_ms", BLY_MANIFEST_INT, false, 0, 60000, NULL,
     "solo mode: build a block from the mempool this often; 0 when consensus drives blocks "
     "(default 1000)"},
};

//  docs/INFERENCE.md; actors/shard and actors/router.
static const bly_manifest_key_t s_shard_keys[] = {
    {"endpoint", BLY_MANIFEST_ENDPOINT, true, 0, 0, NULL, "where the shard serves (CURVE ROUTER)"},
    {"model", BLY_MANIFEST_PATH, true, 0, 0, NULL, "the GGUF model file"},
    {"stages", BLY_MANIFEST_RANGE, true, 0, BLY_MODEL_LAYERS_MAX + 1, NULL,
     "stages served, FIRST-LAST: 0 embedding, 1..L layers, L+1 head"},
    {"backend", BLY_MANIFEST_CHOICE, false, 0, 0, "cpu|vulkan", "compute backend (default cpu)"},
    {"device", BLY_MANIFEST_INT, false, 0, BLY_VK_DEVICES_MAX - 1, NULL,
     "vulkan: the device at this place in `blyan devices` (default: the preferred one)"},
    {"sessions", BLY_MANIFEST_INT, false, 1, BLY_SHARD_SESSIONS_MAX, NULL,
     "sessions (KV caches) held at most (default 16)"},
    {"kv_budget_mb", BLY_MANIFEST_INT, false, 1, 1 << 20, NULL,
     "KV cache memory for all sessions, MiB (default 1024)"},
    {"n_ctx", BLY_MANIFEST_INT, false, 1, BLY_MODEL_CTX_MAX, NULL,
     "KV positions per session (default 1024)"},
    {"threads", BLY_MANIFEST_INT, false, 1, BLY_THREADS_MAX, NULL,
     "threads per session context (default 1)"},
    {"batch_max", BLY_MANIFEST_INT, false, 1, BLY_SHARD_BATCH_MAX, NULL,
     "queued decode steps of different sessions run as one pass, at most (default 16; 1: off)"},
    {"idle_ms", BLY_MANIFEST_INT, false, 1000, 86400000, NULL,
     "a session idle this long may be dropped (default 600000)"},
    {"hashes", BLY_MANIFEST_PATH, false, 0, 0, NULL,
     "expected tensor hashes (blyan model hashes); refuse to serve on a mismatch"},
    {"fault_lie", BLY_MANIFEST_BOOL, false, 0, 0, NULL,
     "TESTS ONLY (fault injection): perturb every output, to test lying-shard detection"},
};

static const bly_manifest_key_t s_router_keys[] = {
    {"endpoint", BLY_MANIFEST_ENDPOINT, true, 0, 0, NULL,
     "where clients and shard replies reach the router (CURVE ROUTER)"},
    {"advertise", BLY_MANIFEST_ENDPOINT, false, 0, 0, NULL,
     "the endpoint shards reply to (default: endpoint)"},
    {"model", BLY_MANIFEST_PATH, true, 0, 0, NULL, "the GGUF model (tokenizer, shape)"},
    {"sessions", BLY_MANIFEST_INT, false, 1, BLY_ROUTER_SESSIONS_MAX / 2, NULL,
     "sessions running at most (default 64)"},
    {"queue", BLY_MANIFEST_INT, false, 0, BLY_ROUTER_SESSIONS_MAX / 2, NULL,
     "requests queued beyond them before busy (default 64)"},
    {"n_ctx", BLY_MANIFEST_INT, false, 1, BLY_ROUTER_CTX_MAX, NULL,
     "tokens per session, prompt and output (default 1024)"},
    {"step_ms", BLY_MANIFEST_INT, false, 10, 600000, NULL,
     "a step stalls after this plus step_token_ms per token (default 1000)"},
    {"step_token_ms", BLY_MANIFEST_INT, false, 0, 60000, NULL, "see step_ms (default 50)"},
    {"probe_ms", BLY_MANIFEST_INT, false, 10, 60000, NULL,
     "wait for pongs after a failure (default 300)"},
    {"peers_ms", BLY_MANIFEST_INT, false, 50, 60000, NULL,
     "how often the shard list is fetched (default 500)"},
    {"fail_ms", BLY_MANIFEST_INT, false, 0, 86400000, NULL,
     "a shard that failed a step is avoided this long while others serve (default 30000)"},
    {"audit_milli", BLY_MANIFEST_INT, false, 0, 1000, NULL,
     "logits steps audited on a second shard, per mille (default 0: none)"},
    {"audit_seed", BLY_MANIFEST_INT, false, 0, INT64_MAX, NULL,
     "which steps and hops are audited (default 1)"},
    {"audit_tol_ppm", BLY_MANIFEST_INT, false, 0, 999999, NULL,
     "audit tolerance, millionths of the largest logit magnitude (default 1000)"},
};

//  docs/CONSENSUS.md; actors/consensus/bly_consensus_actor.h.
static const bly_manifest_key_t s_consensus_keys[] = {
    {"endpoint", BLY_MANIFEST_ENDPOINT, true, 0, 0, NULL,
     "where the replica serves ledger queries and transactions (CURVE, any client key)"},
    {"listen", BLY_MANIFEST_ENDPOINT, true, 0, 0, NULL,
     "where the replica accepts the other replicas (CURVE, validator keys only)"},
    {"genesis", BLY_MANIFEST_PATH, true, 0, 0, NULL,
     "the chain's genesis file; its staked accounts are the validator set"},
    {"peers", BLY_MANIFEST_ENDPOINTS, false, 0, BLY_CONS_VALIDATORS_MAX, NULL,
     "the other replicas' listen endpoints, comma-separated"},
    {"peer_ids", BLY_MANIFEST_STRING, false, 1, BLY_MANIFEST_LINE_MAX, NULL,
     "their node ids (hex), comma-separated, in the order of peers"},
    {"dir", BLY_MANIFEST_PATH, false, 0, 0, NULL,
     "WAL, commit log and LMDB folder (default <data_dir>/consensus)"},
    {"map_size_mb", BLY_MANIFEST_INT, false, 1, 65536, NULL, "LMDB map size in MiB (default 1024)"},
    {"timeout_propose_ms", BLY_MANIFEST_INT, false, 10, 60000, NULL,
     "timeoutPropose of round 0; prevote/precommit timeouts are a third (default 300)"},
    {"timeout_commit_ms", BLY_MANIFEST_INT, false, 0, 60000, NULL,
     "pause after a decision before the next height (default 50)"},
    {"timeout_idle_ms", BLY_MANIFEST_INT, false, 0, 60000, NULL,
     "the pause instead while nothing is pending; a submission ends it (default 1000)"},
    {"gossip_ms", BLY_MANIFEST_INT, false, 5, 60000, NULL,
     "re-send own messages this often (default 50)"},
};

static const bly_manifest_role_t s_roles[] = {
    {"bootstrap", s_bootstrap_keys, S_COUNT(s_bootstrap_keys)},
    {"ledger", s_ledger_keys, S_COUNT(s_ledger_keys)},
    {"layer-shard", s_shard_keys, S_COUNT(s_shard_keys)},
    {"router", s_router_keys, S_COUNT(s_router_keys)},
    {"consensus", s_consensus_keys, S_COUNT(s_consensus_keys)},
};

static const bly_manifest_schema_t s_schema = {
    s_node_keys, S_COUNT(s_node_keys), s_roles, S_COUNT(s_roles),
};

const bly_manifest_schema_t *
bly_node_schema(void)
{
    return &s_schema;
}

static void
s_append_error(char *err, size_t err_size, const char *name, int line, const char *reason)
{
    size_t used = strlen(err);
    snprintf(err + used, err_size - used, "%s%s:%d: %s", used ? "\n" : "", name, line, reason);
}

//  A key file must load, or be creatable (its folder exists and is writable).
static void
s_check_key_file(const bly_manifest_t *m, char *err, size_t err_size)
{
    char path[BLY_PATH_MAX], reason[BLY_PATH_MAX + 256];
    int line = bly_manifest_line(m, BLY_MANIFEST_NODE, "key_file");
    if (bly_manifest_get_path(m, BLY_MANIFEST_NODE, "key_file", path, sizeof(path)) != 0) {
        s_append_error(err, err_size, bly_manifest_name(m), line, "key_file path too long");
        return;
    }
    if (access(path, F_OK) == 0 || errno != ENOENT) {
        if (bly_identity_check_file(path, reason, sizeof(reason)) != 0)
            s_append_error(err, err_size, bly_manifest_name(m), line, reason);
        return;
    }
    char dir[BLY_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    if (access(slash ? dir : ".", W_OK) != 0) {
        snprintf(reason, sizeof(reason), "key file %s does not exist and cannot be created", path);
        s_append_error(err, err_size, bly_manifest_name(m), line, reason);
    }
}

bly_manifest_t *
bly_node_check(const char *path, char *err, size_t err_size)
{
    bly_assert(path);
    bly_assert(err && err_size > 0);
    bly_manifest_t *m = bly_manifest_load(path, bly_node_schema(), err, err_size);
    if (!m)
        return NULL;
    s_check_key_file(m, err, err_size);
    bool has_bootstrap = bly_manifest_get(m, BLY_MANIFEST_NODE, "bootstrap") != NULL;
    bool has_key = bly_manifest_get(m, BLY_MANIFEST_NODE, "bootstrap_key") != NULL;
    if (has_bootstrap != has_key)
        s_append_error(err, err_size, bly_manifest_name(m),
                       bly_manifest_line(m, BLY_MANIFEST_NODE,
                                         has_bootstrap ? "bootstrap" : "bootstrap_key"),
                       "bootstrap and bootstrap_key must be given together");
    const char *key_hex = bly_manifest_get(m, BLY_MANIFEST_NODE, "bootstrap_key");
    uint8_t key[BLY_IDENTITY_PUBLIC_SIZE];
    char z85[BLY_IDENTITY_Z85_SIZE];
    if (key_hex
        && (bly_identity_id_from_hex(key_hex, key) != 0
            || bly_identity_curve_z85_from_id(key, z85) != 0))
        s_append_error(err, err_size, bly_manifest_name(m),
                       bly_manifest_line(m, BLY_MANIFEST_NODE, "bootstrap_key"),
                       "bootstrap_key is not a node id (not an Ed25519 public key)");
    if (err[0])
        bly_manifest_destroy(&m);
    return m;
}
