/*  =========================================================================
    blyan testnet - a local mesh of blyan-node processes on loopback

    blyan testnet init --dir D --nodes N [--base-port P] [--heartbeat-ms H]
                       [--expiry-ms E]
    blyan testnet start|stop|status --dir D
    blyan testnet kill|restart --dir D NAME

    `init` writes, for a bootstrap and N nodes, D/NAME/manifest.zpl and
    D/NAME/node.key, plus D/nodes.json (name, role, endpoints, public key,
    manifest, pid file, log file of each). The bootstrap listens on port P,
    node i advertises port P+i. The manifests are the source of truth for
    the other commands: `start` spawns one daemonised blyan-node per
    manifest (bootstraps first; logs in D/NAME/node.log) and waits until
    each has written its pid file; `stop` sends SIGTERM, then SIGKILL after
    a bound, and removes the pid files; `kill` sends SIGKILL to one node;
    `restart` stops and starts one node. A pid is only signalled when
    /proc says it is a blyan-node running that manifest.

    The kinds of testnet member (bootstrap, node) are a table; later issues
    add router, layer-shard and validator kinds there.

    With --validators V (1..BLY_TESTNET_VALIDATORS_MAX) init also writes V
    consensus replicas validator1..V (role "consensus", docs/CONSENSUS.md)
    and D/genesis.conf, the shared genesis that stakes their node keys (and
    funds them). Replica k serves the ledger protocol on port
    P + BLY_TESTNET_NODES_MAX + 2k - 1 and listens to the other replicas
    on the next port; nodes.json gives each its "ledger_endpoint". Append
    funded accounts to D/genesis.conf before the first start if needed.
    ========================================================================= */

#include "bly_bootstrap_msg.h"
#include "bly_cli.h"
#include "bly_cli_backend.h"
#include "bly_identity.h"
#include "bly_ledger.h"
#include "bly_limits.h"
#include "bly_manifest.h"
#include "bly_model.h"
#include "bly_node.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_START_WAIT_MS 15000    //  A node that is not serving by then failed.
#define S_TERM_WAIT_MS 5000      //  SIGTERM grace before SIGKILL.
#define S_KILL_WAIT_MS 3000      //  SIGKILL to gone.
#define S_POLL_MS 20

typedef struct {
    char dir[BLY_PATH_MAX];       //  Testnet folder (absolute).
    long nodes;                   //  Nodes besides the bootstrap.
    long base_port;               //  Bootstrap port; node i uses base_port + i.
    long heartbeat_ms;            //  Heartbeat interval.
    long expiry_ms;               //  Expiry after silence.
    char bootstrap_hex[BLY_IDENTITY_HEX_SIZE];   //  Bootstrap node id.
    long shards;                  //  Layer-shards (0: no inference mesh).
    long spares;                  //  Spare shards duplicating shard ranges.
    char model[BLY_PATH_MAX];     //  Model file (absolute) of router and shards.
    const char *backend;          //  cpu or vulkan (--backend as given).
    long device;                  //  vulkan:N, else -1 (the preferred device).
    uint32_t n_stages;            //  Layers + 2 of the model.
    long validators;              //  Consensus replicas.
    char validator_hex[BLY_TESTNET_VALIDATORS_MAX][BLY_IDENTITY_HEX_SIZE];
} s_init_t;

//  Client and replica ports of validator k (1-based).
#define S_VAL_CLIENT_PORT(init, k) ((init)->base_port + BLY_TESTNET_NODES_MAX + 2 * (k)-1)
#define S_VAL_LISTEN_PORT(init, k) ((init)->base_port + BLY_TESTNET_NODES_MAX + 2 * (k))

//  Members before the validators: plain nodes, router, shards and spares.
static long
s_mesh_members(const s_init_t *init)
{
    return init->nodes + (init->shards ? 1 + init->shards + init->spares : 0);
}

typedef struct {
    const char *kind;     //  Kind of member; also its role in nodes.json.
    //  Write the actor sections (and extra node keys) of member `index`.
    void (*write)(FILE *file, const s_init_t *init, long index);
} s_kind_t;

static void
s_write_bootstrap(FILE *file, const s_init_t *init, long index)
{
    (void) index;
    fprintf(file,
            "    endpoints = tcp://127.0.0.1:%ld\n\n"
            "# The registry every node joins through.\n"
            "actor\n"
            "    role = bootstrap\n"
            "    endpoint = tcp://127.0.0.1:%ld\n"
            "    heartbeat_ms = %ld\n"
            "    expiry_ms = %ld\n",
            init->base_port, init->base_port, init->heartbeat_ms, init->expiry_ms);
}

//  The node section's endpoint, advertised device (cpu, or a shard's backend) and bootstrap.
static void
s_write_member(FILE *file, const s_init_t *init, long index, const char *device)
{
    fprintf(file,
            "    endpoints = tcp://127.0.0.1:%ld\n"
            "    device = %s\n"
            "    # Joining the mesh starts the member actor (register, heartbeat, leave).\n"
            "    bootstrap = tcp://127.0.0.1:%ld\n"
            "    bootstrap_key = %s\n",
            init->base_port + index, device, init->base_port, init->bootstrap_hex);
}

static void
s_write_node(FILE *file, const s_init_t *init, long index)
{
    s_write_member(file, init, index, "cpu");
}

//  The model's short name for registrations (the file name, cut to fit).
static void
s_model_name(const s_init_t *init, char *name, size_t size)
{
    const char *slash = strrchr(init->model, '/');
    snprintf(name, size, "%.*s", (int) (size - 1 < 63 ? size - 1 : 63),
             slash ? slash + 1 : init->model);
}

static void
s_write_router(FILE *file, const s_init_t *init, long index)
{
    char name[64];
    s_model_name(init, name, sizeof(name));
    s_write_node(file, init, index);
    fprintf(file, "    # The router plans only over shards that registered this model.\n"
                  "    model = %s\n", name);
    fprintf(file,
            "\n# Takes client requests, plans paths over the shards, streams tokens.\n"
            "actor\n"
            "    role = router\n"
            "    endpoint = tcp://127.0.0.1:%ld\n"
            "    model = \"%s\"\n"
            "    n_ctx = 1024\n",
            init->base_port + index, init->model);
    if (strncmp(init->backend, "vulkan", 6) == 0)
        fprintf(file, "    # Vulkan shards may run on a CPU driver (lavapipe), where one step of\n"
                      "    # several sessions takes seconds: a longer stall deadline.\n"
                      "    step_ms = 10000\n");
}

//  Stages of shard `k` (0-based; spares k >= shards copy shard k % shards).
static void
s_shard_stages(const s_init_t *init, long k, uint32_t *first, uint32_t *last)
{
    long i = k % init->shards;
    *first = (uint32_t) (i * init->n_stages / init->shards);
    *last = (uint32_t) ((i + 1) * init->n_stages / init->shards - 1);
}

static void
s_write_shard(FILE *file, const s_init_t *init, long index)
{
    uint32_t first, last;
    char name[64];
    s_shard_stages(init, index - init->nodes - 2, &first, &last);
    s_model_name(init, name, sizeof(name));
    s_write_member(file, init, index, init->backend);
    fprintf(file,
            "    model = %s\n"
            "    stages = %u-%u\n"
            "    speed_milli = 1000\n\n"
            "# Serves stages %u-%u: its layers' KV caches, activations to the next hop.\n"
            "actor\n"
            "    role = layer-shard\n"
            "    endpoint = tcp://127.0.0.1:%ld\n"
            "    model = \"%s\"\n"
            "    stages = %u-%u\n"
            "    backend = %s\n"
            "    sessions = 20\n"
            "    kv_budget_mb = 1024\n"
            "    n_ctx = 1024\n",
            name, first, last, first, last, init->base_port + index, init->model, first, last,
            strncmp(init->backend, "vulkan", 6) == 0 ? "vulkan" : "cpu");
    if (init->device >= 0)
        fprintf(file, "    device = %ld\n", init->device);
}

//  A consensus replica: a mesh node plus the consensus actor.
static void
s_write_validator(FILE *file, const s_init_t *init, long index)
{
    long k = index - s_mesh_members(init);
    s_write_node(file, init, index);
    fprintf(file,
            "\n# A Tendermint replica of the testnet chain (docs/CONSENSUS.md); it also\n"
            "# answers `blyan tx/balance/chain --node tcp://127.0.0.1:%ld`.\n"
            "actor\n"
            "    role = consensus\n"
            "    endpoint = tcp://127.0.0.1:%ld\n"
            "    listen = tcp://127.0.0.1:%ld\n"
            "    genesis = ../genesis.conf\n",
            S_VAL_CLIENT_PORT(init, k), S_VAL_CLIENT_PORT(init, k), S_VAL_LISTEN_PORT(init, k));
    const char *sep = "    peers = ";
    for (long j = 1; j <= init->validators; j++)
        if (j != k) {
            fprintf(file, "%stcp://127.0.0.1:%ld", sep, S_VAL_LISTEN_PORT(init, j));
            sep = ",";
        }
    sep = "\n    peer_ids = ";
    for (long j = 1; j <= init->validators; j++)
        if (j != k) {
            fprintf(file, "%s%s", sep, init->validator_hex[j - 1]);
            sep = ",";
        }
    fprintf(file, "\n");
}

static const s_kind_t s_kinds[] = {
    {"bootstrap", s_write_bootstrap},
    {"node", s_write_node},
    {"router", s_write_router},
    {"layer-shard", s_write_shard},
    {"consensus", s_write_validator},
};

//  Members: 0 bootstrap, 1..nodes plain nodes, then the router, then shards,
//  then the validators.
static const s_kind_t *
s_kind_of(const s_init_t *init, long index, char *name, size_t size)
{
    if (index > s_mesh_members(init)) {
        snprintf(name, size, "validator%ld", index - s_mesh_members(init));
        return &s_kinds[4];
    }
    if (index == 0) {
        snprintf(name, size, "bootstrap");
        return &s_kinds[0];
    }
    if (index <= init->nodes) {
        snprintf(name, size, "node%ld", index);
        return &s_kinds[1];
    }
    if (index == init->nodes + 1) {
        snprintf(name, size, "router");
        return &s_kinds[2];
    }
    long k = index - init->nodes - 2;
    if (k < init->shards)
        snprintf(name, size, "shard%ld", k + 1);
    else
        snprintf(name, size, "spare%ld", k - init->shards + 1);
    return &s_kinds[3];
}

//  ---------------------------------------------------------------------
//  init

static int
s_mkdir(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    fprintf(stderr, "blyan testnet: cannot create %s: %s\n", path, strerror(errno));
    return -1;
}

//  Write one JSON string value (names and paths; escapes what JSON needs).
static void
s_json_string(FILE *file, const char *text)
{
    fputc('"', file);
    for (const unsigned char *c = (const unsigned char *) text; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(file, "\\%c", *c);
        else if (*c < 0x20)
            fprintf(file, "\\u%04x", *c);
        else
            fputc(*c, file);
    }
    fputc('"', file);
}

//  Create member `index` (0 = bootstrap): key, manifest, its nodes.json entry.
static int
s_init_member(s_init_t *init, long index, FILE *json)
{
    char name[BLY_NAME_MAX], dir[BLY_PATH_MAX + BLY_NAME_MAX + 2], path[sizeof(dir) + 32];
    char err[512];
    const s_kind_t *kind = s_kind_of(init, index, name, sizeof(name));
    snprintf(dir, sizeof(dir), "%s/%s", init->dir, name);
    if (s_mkdir(dir) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/node.key", dir);
    bly_identity_t *identity = bly_identity_load_or_create(path, err, sizeof(err));
    if (!identity) {
        fprintf(stderr, "blyan testnet: %s\n", err);
        return -1;
    }
    char id_hex[BLY_IDENTITY_HEX_SIZE];
    snprintf(id_hex, sizeof(id_hex), "%s", bly_identity_id_hex(identity));
    bly_identity_destroy(&identity);
    if (index == 0)
        snprintf(init->bootstrap_hex, sizeof(init->bootstrap_hex), "%s", id_hex);

    snprintf(path, sizeof(path), "%s/manifest.zpl", dir);
    FILE *file = fopen(path, "w");
    if (!file) {
        fprintf(stderr, "blyan testnet: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(file,
            "# Testnet %s %s, written by `blyan testnet init`. See docs/MANIFEST.md.\n"
            "node\n"
            "    name = %s\n"
            "    key_file = node.key\n"
            "    pid_file = node.pid\n"
            "    data_dir = data\n"
            "    log_level = info\n",
            kind->kind, name, name);
    kind->write(file, init, index);
    bool ok = fclose(file) == 0;

    fprintf(json, "%s    {\"name\": ", index ? ",\n" : "");
    s_json_string(json, name);
    fprintf(json, ", \"role\": \"%s\", \"endpoints\": [\"tcp://127.0.0.1:%ld\"], ", kind->kind,
            init->base_port + index);
    if (kind == &s_kinds[4])
        fprintf(json, "\"ledger_endpoint\": \"tcp://127.0.0.1:%ld\", ",
                S_VAL_CLIENT_PORT(init, index - s_mesh_members(init)));
    fprintf(json, "\"public_key\": \"%s\", \"manifest\": ", id_hex);
    s_json_string(json, path);
    snprintf(path, sizeof(path), "%s/node.pid", dir);
    fprintf(json, ", \"pid_file\": ");
    s_json_string(json, path);
    snprintf(path, sizeof(path), "%s/node.log", dir);
    fprintf(json, ", \"log_file\": ");
    s_json_string(json, path);
    fprintf(json, "}");
    return ok ? 0 : -1;
}

//  The validators' keys (their manifests name each other) and the shared
//  genesis staking them. Parameters as in config/genesis.conf.
static int
s_init_validators(s_init_t *init)
{
    char dir[BLY_PATH_MAX + BLY_NAME_MAX + 2], path[sizeof(dir) + 32], err[512];
    for (long k = 1; k <= init->validators; k++) {
        snprintf(dir, sizeof(dir), "%s/validator%ld", init->dir, k);
        snprintf(path, sizeof(path), "%s/node.key", dir);
        bly_identity_t *identity = s_mkdir(dir) == 0
                                       ? bly_identity_load_or_create(path, err, sizeof(err))
                                       : NULL;
        if (!identity)
            return -1;
        snprintf(init->validator_hex[k - 1], BLY_IDENTITY_HEX_SIZE, "%s",
                 bly_identity_id_hex(identity));
        bly_identity_destroy(&identity);
    }
    if (init->validators == 0)
        return 0;
    snprintf(path, sizeof(path), "%s/genesis.conf", init->dir);
    FILE *file = fopen(path, "w");
    if (!file)
        return -1;
    fprintf(file, "# Testnet genesis written by `blyan testnet init` (docs/LEDGER.md).\n"
                  "chain_id blyan-testnet-1\ngenesis_time_ms 1764086400000\n"
                  "reward_pool 1000000000000\nprice_per_token 10\nmin_fee 1\n"
                  "delta_reward 1000000\nvalidator_reward 10000\nburn_bps 1000\n"
                  "share_router_bps 1000\nshare_validators_bps 2000\nslash_bps 500\n"
                  "delta_norm_cap 10.0\n# The validators: equal stake, funded.\n");
    for (long k = 1; k <= init->validators; k++) {
        uint8_t key[BLY_IDENTITY_PUBLIC_SIZE];
        char address[128];
        if (bly_identity_id_from_hex(init->validator_hex[k - 1], key) != 0)
            return fclose(file), -1;
        bly_ledger_address_format(key, address);
        fprintf(file, "account %s 1000000000000 1000000\n", address);
    }
    return fclose(file) == 0 ? 0 : -1;
}

//  --backend cpu | vulkan | vulkan:N, as `blyan generate` takes it (vulkan only when built
//  with Vulkan). Returns 0 or -1 (printed).
static int
s_parse_backend(s_init_t *init)
{
    init->device = -1;
    if (!bly_cli_backend_valid(init->backend)) {
        fprintf(stderr, "blyan testnet: backend %s is not available in this build (cpu, "
                        "vulkan, vulkan:N)\n", init->backend);
        return -1;
    }
    const char *colon = strchr(init->backend, ':');
    if (colon && bly_cli_parse_long(colon + 1, 0, BLY_VK_DEVICES_MAX - 1, &init->device) != 0)
        return -1;
    return 0;
}

//  --shards K --model M [--spares S] [--backend cpu|vulkan[:N]]: the model's
//  stage count for the split. Returns 0 or -1 (printed).
static int
s_parse_mesh(int argc, char **argv, s_init_t *init)
{
    const char *shards = bly_cli_opt(argc, argv, "--shards");
    const char *spares = bly_cli_opt(argc, argv, "--spares");
    const char *model = bly_cli_opt(argc, argv, "--model");
    init->backend = bly_cli_opt(argc, argv, "--backend") ? bly_cli_opt(argc, argv, "--backend")
                                                         : "cpu";
    if (!shards)
        return model || spares ? -1 : 0;
    if (bly_cli_parse_long(shards, 1, BLY_ROUTER_PATH_MAX, &init->shards) != 0 || !model
        || (spares && bly_cli_parse_long(spares, 0, BLY_ROUTER_PATH_MAX, &init->spares) != 0)
        || s_parse_backend(init) != 0 || !realpath(model, init->model))
        return -1;
    char err[512];
    bly_model_t *m = bly_model_load(init->model, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "blyan testnet: %s\n", err);
        return -1;
    }
    init->n_stages = bly_model_hparams(m)->n_layer + 2;
    bly_model_destroy(&m);
    if ((uint32_t) init->shards > init->n_stages) {
        fprintf(stderr, "blyan testnet: %ld shards for %u stages\n", init->shards, init->n_stages);
        return -1;
    }
    return 0;
}

static long
s_member_count(const s_init_t *init)
{
    return s_mesh_members(init) + init->validators;
}

static int
s_parse_init(int argc, char **argv, s_init_t *init)
{
    static const char *const known[]
        = {"--dir=", "--nodes=", "--validators=", "--base-port=", "--heartbeat-ms=",
           "--expiry-ms=", "--shards=", "--spares=", "--model=", "--backend=", NULL};
    if (bly_cli_check_options(argc, argv, known) != 0)
        return -1;
    const char *dir = bly_cli_opt(argc, argv, "--dir");
    const char *nodes = bly_cli_opt(argc, argv, "--nodes");
    const char *validators = bly_cli_opt(argc, argv, "--validators");
    const char *base = bly_cli_opt(argc, argv, "--base-port");
    const char *hb = bly_cli_opt(argc, argv, "--heartbeat-ms");
    const char *expiry = bly_cli_opt(argc, argv, "--expiry-ms");
    init->base_port = 17400;
    init->heartbeat_ms = 1000;
    init->expiry_ms = 3000;
    if (!dir || s_parse_mesh(argc, argv, init) != 0
        || (!nodes && init->shards == 0 && !validators)
        || (nodes && bly_cli_parse_long(nodes, 0, BLY_TESTNET_NODES_MAX, &init->nodes) != 0)
        || (validators && bly_cli_parse_long(validators, 1, BLY_TESTNET_VALIDATORS_MAX,
                                             &init->validators) != 0)
        || s_member_count(init) < 1 || s_mesh_members(init) > BLY_TESTNET_NODES_MAX
        || (base && bly_cli_parse_long(base, 1024,
                                       65535 - BLY_TESTNET_NODES_MAX
                                           - 2 * BLY_TESTNET_VALIDATORS_MAX,
                                       &init->base_port) != 0)
        || (hb && bly_cli_parse_long(hb, BLY_HEARTBEAT_MS_MIN, BLY_HEARTBEAT_MS_MAX,
                                     &init->heartbeat_ms) != 0)
        || (expiry && bly_cli_parse_long(expiry, BLY_EXPIRY_MS_MIN, BLY_EXPIRY_MS_MAX,
                                         &init->expiry_ms) != 0)) {
        fprintf(stderr, "usage: blyan testnet init --dir D [--nodes N] [--shards K --model M "
                        "[--spares S] [--backend cpu|vulkan[:N]]] [--validators V(1-%d)] "
                        "[--base-port P] [--heartbeat-ms H] [--expiry-ms E] "
                        "(at most %d mesh members)\n",
                BLY_TESTNET_VALIDATORS_MAX, BLY_TESTNET_NODES_MAX);
        return -1;
    }
    if (s_mkdir(dir) != 0 || !realpath(dir, init->dir)) {
        fprintf(stderr, "blyan testnet: cannot use folder %s\n", dir);
        return -1;
    }
    return 0;
}

static int
s_init(int argc, char **argv)
{
    s_init_t init = {0};
    if (s_parse_init(argc, argv, &init) != 0)
        return 2;
    char path[BLY_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/nodes.json", init.dir);
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "blyan testnet: %s exists; use a fresh folder\n", path);
        return 1;
    }
    FILE *json = fopen(path, "w");
    if (!json) {
        fprintf(stderr, "blyan testnet: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(json, "{\"bootstrap\": \"tcp://127.0.0.1:%ld\",\n \"nodes\": [\n", init.base_port);
    int rc = s_init_validators(&init);
    for (long i = 0; i <= s_member_count(&init) && rc == 0; i++)
        rc = s_init_member(&init, i, json);
    fprintf(json, "\n ]}\n");
    if (fclose(json) != 0 || rc != 0) {
        fprintf(stderr, "blyan testnet: init failed\n");
        return 1;
    }
    printf("testnet: %ld nodes, %ld validators and a bootstrap (tcp://127.0.0.1:%ld) in %s\n",
           s_mesh_members(&init), init.validators, init.base_port, init.dir);
    return 0;
}

//  ---------------------------------------------------------------------
//  Members found on disk

typedef struct {
    char name[BLY_NAME_MAX];             //  Node name.
    char manifest[BLY_PATH_MAX];         //  Its manifest (absolute).
    char pid_file[BLY_PATH_MAX];         //  Its pid file.
    char log_file[BLY_PATH_MAX + 16];    //  Its log.
    bool seed;                           //  Has no bootstrap: starts first.
    char key_file[BLY_PATH_MAX];         //  Its identity key file.
    char serves[BLY_ENDPOINT_MAX];       //  Its bootstrap actor's endpoint, or "".
} s_member_t;

typedef struct {
    s_member_t members[BLY_TESTNET_NODES_MAX + BLY_TESTNET_VALIDATORS_MAX + 1];
    size_t count;
} s_net_t;

static int
s_load_member(s_member_t *member, const char *manifest_path)
{
    char err[2048];
    bly_manifest_t *m = bly_manifest_load(manifest_path, bly_node_schema(), err, sizeof(err));
    if (!m) {
        fprintf(stderr, "blyan testnet: %s\n", err);
        return -1;
    }
    snprintf(member->name, sizeof(member->name), "%s",
             bly_manifest_get(m, BLY_MANIFEST_NODE, "name"));
    snprintf(member->manifest, sizeof(member->manifest), "%s", manifest_path);
    int rc = bly_manifest_get_path(m, BLY_MANIFEST_NODE, "pid_file", member->pid_file,
                                   sizeof(member->pid_file));
    bool has_pid_file = rc == 0;
    member->seed = bly_manifest_get(m, BLY_MANIFEST_NODE, "bootstrap") == NULL;
    if (bly_manifest_get_path(m, BLY_MANIFEST_NODE, "key_file", member->key_file,
                              sizeof(member->key_file))
        != 0)
        rc = -1;
    member->serves[0] = 0;
    for (size_t i = 0; i < bly_manifest_actor_count(m); i++)
        if (strcmp(bly_manifest_actor_role(m, i), "bootstrap") == 0)
            snprintf(member->serves, sizeof(member->serves), "%s",
                     bly_manifest_get(m, (int) i, "endpoint"));
    bly_manifest_destroy(&m);
    snprintf(member->log_file, sizeof(member->log_file), "%s", manifest_path);
    char *slash = strrchr(member->log_file, '/');
    bly_assert(slash);
    snprintf(slash, sizeof(member->log_file) - (size_t) (slash - member->log_file), "/node.log");
    if (!has_pid_file)
        fprintf(stderr, "blyan testnet: %s has no pid_file\n", manifest_path);
    return rc;
}

//  Find D/*/manifest.zpl; seeds (bootstraps) first, then by name.
static int
s_net_load(s_net_t *net, const char *dir_arg)
{
    char dir[PATH_MAX], pattern[PATH_MAX + 32];
    if (!dir_arg || !realpath(dir_arg, dir)) {
        fprintf(stderr, "blyan testnet: no testnet folder %s\n", dir_arg ? dir_arg : "(none)");
        return -1;
    }
    snprintf(pattern, sizeof(pattern), "%s/*/manifest.zpl", dir);
    glob_t found;
    if (glob(pattern, 0, NULL, &found) != 0) {
        fprintf(stderr, "blyan testnet: no manifests in %s (run blyan testnet init)\n", dir);
        return -1;
    }
    net->count = 0;
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++)
        for (size_t i = 0; i < found.gl_pathc && rc == 0; i++) {
            s_member_t member;
            if (net->count >= BLY_TESTNET_NODES_MAX + BLY_TESTNET_VALIDATORS_MAX + 1 || s_load_member(&member, found.gl_pathv[i]) != 0) {
                rc = -1;
                break;
            }
            if (member.seed == (pass == 0))
                net->members[net->count++] = member;
        }
    globfree(&found);
    return rc;
}

static s_member_t *
s_net_find(s_net_t *net, const char *name)
{
    for (size_t i = 0; i < net->count; i++)
        if (strcmp(net->members[i].name, name) == 0)
            return &net->members[i];
    fprintf(stderr, "blyan testnet: no node named '%s'\n", name);
    return NULL;
}

//  The member running the bootstrap actor, its endpoint and node id.
static int
s_net_bootstrap(const s_net_t *net, char *endpoint, size_t endpoint_size, char *server_hex)
{
    for (size_t i = 0; i < net->count; i++) {
        const s_member_t *member = &net->members[i];
        if (!member->serves[0])
            continue;
        char err[512];
        bly_identity_t *identity = bly_identity_load(member->key_file, err, sizeof(err));
        if (!identity) {
            fprintf(stderr, "blyan testnet: %s\n", err);
            return -1;
        }
        snprintf(server_hex, BLY_IDENTITY_HEX_SIZE, "%s", bly_identity_id_hex(identity));
        bly_identity_destroy(&identity);
        snprintf(endpoint, endpoint_size, "%s", member->serves);
        return 0;
    }
    fprintf(stderr, "blyan testnet: no member runs a bootstrap actor\n");
    return -1;
}

int
bly_cli_testnet_bootstrap(const char *dir, char *endpoint, size_t endpoint_size, char *server_hex)
{
    s_net_t *net = calloc(1, sizeof(*net));
    bly_assert(net);
    int rc = s_net_load(net, dir);
    if (rc == 0)
        rc = s_net_bootstrap(net, endpoint, endpoint_size, server_hex);
    free(net);
    return rc;
}

//  Registered nodes the bootstrap reports, or -1 when it does not answer.
static long
s_mesh_count(const s_net_t *net, int timeout_ms)
{
    char endpoint[BLY_ENDPOINT_MAX], hex[BLY_IDENTITY_HEX_SIZE], err[512];
    if (s_net_bootstrap(net, endpoint, sizeof(endpoint), hex) != 0)
        return -1;
    bly_bootstrap_msg_t *peers = bly_cli_fetch_peers(endpoint, hex, NULL, timeout_ms, err,
                                                     sizeof(err));
    long count = peers ? (long) bly_bootstrap_msg_peers_count(peers) : -1;
    bly_bootstrap_msg_destroy(&peers);
    return count;
}

//  ---------------------------------------------------------------------
//  Processes

static void
s_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static pid_t
s_read_pid(const char *path)
{
    FILE *file = fopen(path, "r");
    if (!file)
        return 0;
    long pid = 0;
    if (fscanf(file, "%ld", &pid) != 1 || pid <= 1 || pid > INT_MAX)
        pid = 0;
    fclose(file);
    return (pid_t) pid;
}

//  True when `pid` is a live (not zombie) blyan-node running `manifest`.
static bool
s_is_our_node(pid_t pid, const char *manifest)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    FILE *file = fopen(path, "r");
    if (!file)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, file);
    fclose(file);
    buf[n] = 0;
    const char *close = strrchr(buf, ')');
    if (!close || close[1] != ' ' || close[2] == 'Z' || close[2] == 'X')
        return false;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
    file = fopen(path, "r");
    if (!file)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, file);
    fclose(file);
    buf[n] = 0;
    //  argv is NUL-separated: argv[0] ends in blyan-node, one argument is the manifest.
    bool program = strstr(buf, "blyan-node") != NULL;
    bool uses_manifest = false;
    for (size_t at = 0; at < n; at += strlen(buf + at) + 1)
        if (strcmp(buf + at, manifest) == 0)
            uses_manifest = true;
    return program && uses_manifest;
}

//  The running pid of a member, or 0.
static pid_t
s_running(const s_member_t *member)
{
    pid_t pid = s_read_pid(member->pid_file);
    return pid && s_is_our_node(pid, member->manifest) ? pid : 0;
}

//  Signal and wait until gone. Returns true when the process is gone.
static bool
s_signal_and_wait(pid_t pid, const s_member_t *member, int sig, long wait_ms)
{
    if (kill(pid, sig) != 0 && errno == ESRCH)
        return true;
    for (long waited = 0; waited <= wait_ms; waited += S_POLL_MS) {
        if (!s_is_our_node(pid, member->manifest))
            return true;
        s_sleep_ms(S_POLL_MS);
    }
    return false;
}

//  Stop one member: SIGTERM, then SIGKILL after a bound. Returns 0 or -1.
static int
s_stop_member(const s_member_t *member, bool hard)
{
    pid_t pid = s_running(member);
    if (!pid) {
        unlink(member->pid_file);
        return 0;
    }
    bool gone = !hard && s_signal_and_wait(pid, member, SIGTERM, S_TERM_WAIT_MS);
    if (!gone && !hard)
        printf("testnet: %s (pid %d) ignored SIGTERM, sending SIGKILL\n", member->name, (int) pid);
    if (!gone)
        gone = s_signal_and_wait(pid, member, SIGKILL, S_KILL_WAIT_MS);
    if (!gone) {
        fprintf(stderr, "blyan testnet: %s (pid %d) does not die\n", member->name, (int) pid);
        return -1;
    }
    unlink(member->pid_file);
    printf("testnet: %s (pid %d) %s\n", member->name, (int) pid, hard ? "killed" : "stopped");
    return 0;
}

//  blyan-node next to this executable.
static int
s_node_binary(char *path, size_t size)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    bly_assert(slash);
    *slash = 0;
    if (snprintf(path, size, "%s/blyan-node", self) >= (int) size)
        return -1;
    return access(path, X_OK);
}

static void
s_print_log_tail(const char *path)
{
    FILE *file = fopen(path, "r");
    if (!file)
        return;
    char line[BLY_LOG_LINE_MAX + 64];
    char tail[5][sizeof(line)];
    int count = 0;
    while (fgets(line, sizeof(line), file))
        snprintf(tail[count++ % 5], sizeof(line), "%s", line);
    fclose(file);
    for (int i = count > 5 ? count - 5 : 0; i < count; i++)
        fprintf(stderr, "  %s", tail[i % 5]);
}

//  Child side of a start: detach, redirect, exec. Never returns.
static void
s_exec_node(const char *binary, const s_member_t *member)
{
    setsid();
    int null_fd = open("/dev/null", O_RDONLY);
    int log_fd = open(member->log_file, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (null_fd < 0 || log_fd < 0)
        _exit(127);
    dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    close(null_fd);
    close(log_fd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execl(binary, binary, "--manifest", member->manifest, (char *) NULL);
    _exit(127);
}

//  Start one member and wait until its pid file names it. Returns 0 or -1.
static int
s_start_member(const s_member_t *member, const char *binary)
{
    pid_t running = s_running(member);
    if (running) {
        printf("testnet: %s already running (pid %d)\n", member->name, (int) running);
        return 0;
    }
    unlink(member->pid_file);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "blyan testnet: fork failed: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0)
        s_exec_node(binary, member);
    for (long waited = 0; waited <= S_START_WAIT_MS; waited += S_POLL_MS) {
        if (s_read_pid(member->pid_file) == pid) {
            printf("testnet: %s started (pid %d, log %s)\n", member->name, (int) pid,
                   member->log_file);
            return 0;
        }
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "blyan testnet: %s exited with status %d during start; log tail:\n",
                    member->name, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            s_print_log_tail(member->log_file);
            return -1;
        }
        s_sleep_ms(S_POLL_MS);
    }
    fprintf(stderr, "blyan testnet: %s did not come up in %d ms; killing it\n", member->name,
            S_START_WAIT_MS);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

//  ---------------------------------------------------------------------
//  Commands

static int
s_start(s_net_t *net)
{
    char binary[PATH_MAX];
    if (s_node_binary(binary, sizeof(binary)) != 0) {
        fprintf(stderr, "blyan testnet: no blyan-node next to this blyan executable\n");
        return 1;
    }
    for (size_t i = 0; i < net->count; i++)
        if (s_start_member(&net->members[i], binary) != 0) {
            //  Leave nothing half-started behind.
            for (size_t j = i; j > 0; j--)
                (void) s_stop_member(&net->members[j - 1], false);
            return 1;
        }
    //  Up means registered: wait (bounded) until the bootstrap lists every
    //  member that joins through it.
    size_t joining = 0;
    for (size_t i = 0; i < net->count; i++)
        joining += !net->members[i].seed;
    long seen = -1;
    for (long waited = 0; waited <= S_START_WAIT_MS && seen < (long) joining;
         waited += 10 * S_POLL_MS) {
        seen = s_mesh_count(net, 1000);
        if (seen < (long) joining)
            s_sleep_ms(10 * S_POLL_MS);
    }
    printf("testnet: %zu processes running, %ld of %zu nodes registered\n", net->count, seen,
           joining);
    return seen >= (long) joining ? 0 : 1;
}

static int
s_stop(s_net_t *net)
{
    int rc = 0;
    for (size_t i = net->count; i > 0; i--)
        if (s_stop_member(&net->members[i - 1], false) != 0)
            rc = 1;
    return rc;
}

static int
s_status(s_net_t *net)
{
    printf("%-12s %-8s %-8s %s\n", "NAME", "PID", "STATE", "MANIFEST");
    size_t running = 0;
    for (size_t i = 0; i < net->count; i++) {
        const s_member_t *member = &net->members[i];
        pid_t pid = s_running(member);
        running += pid != 0;
        char pid_text[16] = "-";
        if (pid)
            snprintf(pid_text, sizeof(pid_text), "%d", (int) pid);
        printf("%-12s %-8s %-8s %s\n", member->name, pid_text, pid ? "running" : "stopped",
               member->manifest);
    }
    printf("testnet: %zu of %zu running\n", running, net->count);
    long registered = s_mesh_count(net, 1000);
    if (registered >= 0)
        printf("testnet: the bootstrap lists %ld registered nodes (blyan status --dir for "
               "details)\n",
               registered);
    else
        printf("testnet: the bootstrap does not answer\n");
    return 0;
}

static int
s_one(s_net_t *net, const char *command, const char *name)
{
    s_member_t *member = name ? s_net_find(net, name) : NULL;
    if (!member)
        return name ? 1 : 2;
    if (strcmp(command, "kill") == 0) {
        if (!s_running(member)) {
            fprintf(stderr, "blyan testnet: %s is not running\n", name);
            return 1;
        }
        return s_stop_member(member, true) == 0 ? 0 : 1;
    }
    char binary[PATH_MAX];
    if (s_node_binary(binary, sizeof(binary)) != 0) {
        fprintf(stderr, "blyan testnet: no blyan-node next to this blyan executable\n");
        return 1;
    }
    if (s_stop_member(member, false) != 0)
        return 1;
    return s_start_member(member, binary) == 0 ? 0 : 1;
}

//  The positional argument after the subcommand (a node name), or NULL.
static const char *
s_positional(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0) {
            i++;
            continue;
        }
        if (strncmp(argv[i], "--", 2) != 0)
            return argv[i];
    }
    return NULL;
}

int
bly_cli_testnet(int argc, char **argv)
{
    const char *command = argc >= 2 ? argv[1] : "";
    if (strcmp(command, "init") == 0)
        return s_init(argc - 1, argv + 1);
    static const char *const known[] = {"--dir=", NULL};
    bool known_command = strcmp(command, "start") == 0 || strcmp(command, "stop") == 0
                         || strcmp(command, "status") == 0 || strcmp(command, "kill") == 0
                         || strcmp(command, "restart") == 0;
    if (!known_command || bly_cli_check_options(argc - 1, argv + 1, known) != 0) {
        fprintf(stderr, "usage: blyan testnet init --dir D --nodes N [--base-port P]\n"
                        "       blyan testnet start|stop|status --dir D\n"
                        "       blyan testnet kill|restart --dir D NAME\n");
        return 2;
    }
    s_net_t *net = calloc(1, sizeof(*net));
    bly_assert(net);
    int rc = 1;
    if (s_net_load(net, bly_cli_opt(argc, argv, "--dir")) != 0)
        rc = 1;
    else if (strcmp(command, "start") == 0)
        rc = s_start(net);
    else if (strcmp(command, "stop") == 0)
        rc = s_stop(net);
    else if (strcmp(command, "status") == 0)
        rc = s_status(net);
    else
        rc = s_one(net, command, s_positional(argc, argv));
    free(net);
    return rc;
}
