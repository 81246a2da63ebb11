/*  =========================================================================
    blyan status - a bootstrap's view of the mesh

    blyan status --endpoint E --server-key HEX [--role R] [--json] [--timeout-ms N]
    blyan status --dir D [--role R] [--json] [--timeout-ms N]

    Connects over CURVE (an ephemeral client key; the server key is derived
    from the bootstrap's node id, HEX) and asks for the peer list. With
    --dir, the endpoint and the key come from the testnet folder D. Prints
    one line per registered node (name, id prefix, roles, endpoints,
    stages, device, last seen), or a JSON document with --json. Exit 0 on
    an answer, 1 when the bootstrap does not answer in time, 2 bad usage.
    ========================================================================= */

#include "bly_bootstrap_msg.h"
#include "bly_cli.h"
#include "bly_identity.h"
#include "bly_limits.h"
#include "bly_sock.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

bly_bootstrap_msg_t *
bly_cli_fetch_peers(const char *endpoint, const char *server_hex, const char *role,
                    int timeout_ms, char *err, size_t err_size)
{
    bly_assert(endpoint);
    bly_assert(server_hex);
    bly_assert(err);
    uint8_t server_id[BLY_IDENTITY_PUBLIC_SIZE];
    char server_z85[BLY_IDENTITY_Z85_SIZE];
    if (bly_identity_id_from_hex(server_hex, server_id) != 0
        || bly_identity_curve_z85_from_id(server_id, server_z85) != 0) {
        snprintf(err, err_size, "server key must be the bootstrap's node id (64 hex characters)");
        return NULL;
    }
    bly_identity_t *me = bly_identity_new_random();
    bly_assert(me);
    zsock_t *dealer = bly_sock_client(ZMQ_DEALER, me, server_z85, endpoint, err, err_size);
    bly_identity_destroy(&me);
    if (!dealer)
        return NULL;
    bly_bootstrap_msg_t *request = bly_bootstrap_msg_new(BLY_BOOTSTRAP_MSG_PEERS_REQUEST);
    bly_bootstrap_msg_t *reply = NULL;
    if (bly_bootstrap_msg_set_role(request, role ? role : "") != 0) {
        snprintf(err, err_size, "role name too long");
    } else if (bly_bootstrap_msg_send(request, dealer) != 0) {
        snprintf(err, err_size, "cannot send to %s", endpoint);
    } else {
        zsock_set_rcvtimeo(dealer, timeout_ms);
        reply = bly_bootstrap_msg_recv(dealer, err, err_size);
        if (!reply && zmq_errno() == EAGAIN)
            snprintf(err, err_size, "no answer from %s within %d ms (is the bootstrap running, "
                                    "and is the server key its node id?)",
                     endpoint, timeout_ms);
    }
    if (reply && bly_bootstrap_msg_id(reply) != BLY_BOOTSTRAP_MSG_PEERS) {
        snprintf(err, err_size, "bootstrap answered %s: %s", bly_bootstrap_msg_command(reply),
                 bly_bootstrap_msg_reason(reply));
        bly_bootstrap_msg_destroy(&reply);
    }
    bly_bootstrap_msg_destroy(&request);
    zsock_destroy(&dealer);
    return reply;
}

static void
s_json_string(const char *text)
{
    putchar('"');
    for (const unsigned char *c = (const unsigned char *) text; *c; c++) {
        if (*c == '"' || *c == '\\')
            printf("\\%c", *c);
        else if (*c < 0x20)
            printf("\\u%04x", *c);
        else
            putchar(*c);
    }
    putchar('"');
}

static void
s_json_strings(const char (*items)[BLY_BOOTSTRAP_PEER_ENDPOINTS_MAX + 1], size_t count)
{
    putchar('[');
    for (size_t i = 0; i < count; i++) {
        if (i)
            printf(", ");
        s_json_string(items[i]);
    }
    putchar(']');
}

static void
s_print_json(const bly_bootstrap_msg_t *peers, const char *endpoint)
{
    printf("{\"endpoint\": ");
    s_json_string(endpoint);
    printf(", \"count\": %zu, \"nodes\": [", bly_bootstrap_msg_peers_count(peers));
    for (size_t i = 0; i < bly_bootstrap_msg_peers_count(peers); i++) {
        const bly_bootstrap_peer_t *p = bly_bootstrap_msg_peers_at(peers, i);
        char hex[BLY_IDENTITY_HEX_SIZE];
        bly_identity_id_to_hex(p->node_id, hex);
        printf("%s\n  {\"name\": ", i ? "," : "");
        s_json_string(p->name);
        printf(", \"node_id\": \"%s\", \"roles\": [", hex);
        for (size_t r = 0; r < p->roles_count; r++) {
            printf("%s", r ? ", " : "");
            s_json_string(p->roles[r]);
        }
        printf("], \"endpoints\": ");
        s_json_strings(p->endpoints, p->endpoints_count);
        printf(", \"model\": ");
        s_json_string(p->model);
        printf(", \"stage_first\": %" PRIu32 ", \"stage_last\": %" PRIu32 ", \"device\": ",
               p->stage_first, p->stage_last);
        s_json_string(p->device);
        printf(", \"speed_milli\": %" PRIu32 ", \"load_milli\": %" PRIu32
               ", \"last_seen_ms\": %" PRIu64 "}",
               p->speed_milli, p->load_milli, p->last_seen_ms);
    }
    printf("\n]}\n");
}

static void
s_print_table(const bly_bootstrap_msg_t *peers, const char *endpoint)
{
    printf("%-16s %-16s %-20s %-26s %-9s %-12s %s\n", "NAME", "ID", "ROLES", "ENDPOINTS",
           "STAGES", "DEVICE", "LAST SEEN");
    uint64_t now = (uint64_t) zclock_time();
    for (size_t i = 0; i < bly_bootstrap_msg_peers_count(peers); i++) {
        const bly_bootstrap_peer_t *p = bly_bootstrap_msg_peers_at(peers, i);
        char hex[BLY_IDENTITY_HEX_SIZE], roles[128] = "", stages[32] = "-";
        bly_identity_id_to_hex(p->node_id, hex);
        for (size_t r = 0; r < p->roles_count; r++)
            snprintf(roles + strlen(roles), sizeof(roles) - strlen(roles), "%s%s", r ? "," : "",
                     p->roles[r]);
        if (p->model[0] || p->stage_last > 0)
            snprintf(stages, sizeof(stages), "%" PRIu32 "-%" PRIu32, p->stage_first,
                     p->stage_last);
        double ago = now > p->last_seen_ms ? (double) (now - p->last_seen_ms) / 1000.0 : 0.0;
        printf("%-16s %-16.16s %-20s %-26s %-9s %-12s %.1f s ago\n", p->name, hex,
               roles[0] ? roles : "-", p->endpoints_count ? p->endpoints[0] : "-", stages,
               p->device[0] ? p->device : "-", ago);
    }
    printf("%zu nodes registered at %s\n", bly_bootstrap_msg_peers_count(peers), endpoint);
}

int
bly_cli_status(int argc, char **argv)
{
    static const char *const known[]
        = {"--endpoint=", "--server-key=", "--dir=", "--role=", "--json", "--timeout-ms=", NULL};
    if (bly_cli_check_options(argc, argv, known) != 0)
        return 2;
    const char *endpoint = bly_cli_opt(argc, argv, "--endpoint");
    const char *key = bly_cli_opt(argc, argv, "--server-key");
    const char *dir = bly_cli_opt(argc, argv, "--dir");
    const char *timeout_text = bly_cli_opt(argc, argv, "--timeout-ms");
    long timeout_ms = 3000;
    char dir_endpoint[BLY_ENDPOINT_MAX], dir_key[BLY_IDENTITY_HEX_SIZE];
    if (dir && !endpoint && !key) {
        if (bly_cli_testnet_bootstrap(dir, dir_endpoint, sizeof(dir_endpoint), dir_key) != 0)
            return 1;
        endpoint = dir_endpoint;
        key = dir_key;
    }
    if (!endpoint || !key
        || (timeout_text && bly_cli_parse_long(timeout_text, 1, 600000, &timeout_ms) != 0)) {
        fprintf(stderr, "usage: blyan status --endpoint E --server-key HEX [--role R] [--json] "
                        "[--timeout-ms N]\n       blyan status --dir TESTNET_DIR [--json]\n");
        return 2;
    }
    char err[512] = "";
    bly_bootstrap_msg_t *peers = bly_cli_fetch_peers(
        endpoint, key, bly_cli_opt(argc, argv, "--role"), (int) timeout_ms, err, sizeof(err));
    if (!peers) {
        fprintf(stderr, "blyan status: %s\n", err);
        return 1;
    }
    if (bly_cli_flag(argc, argv, "--json"))
        s_print_json(peers, endpoint);
    else
        s_print_table(peers, endpoint);
    bly_bootstrap_msg_destroy(&peers);
    return 0;
}
