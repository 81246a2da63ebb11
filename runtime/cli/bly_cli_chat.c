/*  =========================================================================
    bly_cli_chat - `blyan chat`: ask a router, stream the answer

    blyan chat --router E --router-key K --prompt P [--n-predict N]
               [--temp T] [--top-k K] [--top-p P] [--min-p P]
               [--repeat-penalty R] [--seed S] [--special] [--chat]
               [--ignore-eos] [--json] [--timeout-ms T] [--request-id ID]

    K is the router node's id (64 hex characters) or its Curve key (40 Z85
    characters); without --router-key the BLY_ROUTER_KEY environment
    variable gives it (so `blyan chat --router E` is a complete prefix). Tokens print as they arrive; with --json one object like
    `blyan generate --json` prints (prompt_ids, ids, text, top_logits,
    timings). Exit 0 on done, 1 on an error reply or timeout, 2 on usage.
    ========================================================================= */

#include "bly_cli.h"
#include "bly_identity.h"
#include "bly_inference_msg.h"
#include "bly_limits.h"
#include "bly_sampler.h"
#include "bly_sock.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint32_t
s_bits(double v)
{
    float f = (float) v;
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static float
s_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

//  Sampling flags, as `blyan generate` reads them, into the request.
static int
s_sampling(int argc, char **argv, bly_inference_msg_t *m)
{
    bly_sampler_params_t p;
    if (bly_cli_parse_sampling(argc, argv, &p) != 0)
        return -1;
    bly_inference_msg_set_temp_bits(m, s_bits(p.temp));
    bly_inference_msg_set_top_k(m, p.top_k);
    bly_inference_msg_set_top_p_bits(m, s_bits(p.top_p));
    bly_inference_msg_set_min_p_bits(m, s_bits(p.min_p));
    bly_inference_msg_set_repeat_penalty_bits(m, s_bits(p.repeat_penalty));
    bly_inference_msg_set_repeat_last_n(m, p.repeat_last_n);
    bly_inference_msg_set_seed(m, p.seed);
    return 0;
}

static bly_inference_msg_t *
s_build(int argc, char **argv)
{
    const char *prompt = bly_cli_opt(argc, argv, "--prompt");
    const char *rid = bly_cli_opt(argc, argv, "--request-id");
    const char *o = bly_cli_opt(argc, argv, "--n-predict");
    long n = 128;
    if (!prompt || (o && bly_cli_parse_long(o, 1, BLY_GENERATE_PREDICT_MAX, &n) != 0))
        return NULL;
    bly_inference_msg_t *m = bly_inference_msg_new(BLY_INFERENCE_MSG_REQUEST);
    int rc = bly_inference_msg_set_request_id(m, rid ? rid : "chat-1");
    if (bly_cli_flag(argc, argv, "--chat"))
        rc |= bly_inference_msg_roles_append(m, "user")
              | bly_inference_msg_contents_append(m, prompt);
    else
        rc |= bly_inference_msg_set_prompt(m, prompt);
    bly_inference_msg_set_max_tokens(m, (uint32_t) n);
    bly_inference_msg_set_stream(m, true);
    bly_inference_msg_set_special(m, bly_cli_flag(argc, argv, "--special"));
    bly_inference_msg_set_ignore_eos(m, bly_cli_flag(argc, argv, "--ignore-eos"));
    if (rc != 0 || s_sampling(argc, argv, m) != 0)
        bly_inference_msg_destroy(&m);
    return m;
}

static void
s_print_json(const bly_inference_msg_t *d)
{
    printf("{\"prompt_ids\":[");
    for (size_t i = 0; i < bly_inference_msg_prompt_ids_count(d); i++)
        printf("%s%" PRIu32, i ? "," : "", bly_inference_msg_prompt_ids_at(d, i));
    printf("],\"ids\":[");
    size_t n_ids = bly_inference_msg_ids_count(d);
    for (size_t i = 0; i < n_ids; i++)
        printf("%s%" PRIu32, i ? "," : "", bly_inference_msg_ids_at(d, i));
    size_t size = 0;
    const uint8_t *text = bly_inference_msg_output(d, &size);
    printf("],\"text\":");
    bly_cli_print_json_string(stdout, (const char *) text, size);
    printf(",\"top_logits\":[");
    for (size_t i = 0; i < bly_inference_msg_top_ids_count(d); i++)
        printf("%s[%" PRIu32 ",%.9g]", i ? "," : "", bly_inference_msg_top_ids_at(d, i),
               (double) s_float(bly_inference_msg_top_logits_bits_at(d, i)));
    double prompt_ms = (double) bly_inference_msg_prefill_us(d) / 1e3;
    double pred_ms = (double) bly_inference_msg_decode_us(d) / 1e3;
    size_t n_prompt = bly_inference_msg_prompt_ids_count(d);
    printf("],\"timings\":{\"prompt_n\":%zu,\"prompt_ms\":%.3f,\"prompt_per_second\":%.2f,"
           "\"predicted_n\":%zu,\"predicted_ms\":%.3f,\"predicted_per_second\":%.2f,"
           "\"failovers\":%" PRIu32 "},\"finish\":\"%s\"}\n",
           n_prompt, prompt_ms, prompt_ms > 0 ? n_prompt / (prompt_ms / 1e3) : 0, n_ids, pred_ms,
           n_ids > 1 && pred_ms > 0 ? (n_ids - 1) / (pred_ms / 1e3) : 0,
           bly_inference_msg_failovers(d), bly_inference_msg_finish(d));
}

//  Receive until done or error. Returns the exit status.
static int
s_receive(zsock_t *sock, bool json, long timeout_ms)
{
    zpoller_t *poller = zpoller_new(sock, NULL);
    int64_t end = zclock_mono() + timeout_ms;
    int rc = 1;
    while (zclock_mono() < end) {
        if (!zpoller_wait(poller, (int) (end - zclock_mono())))
            break;
        char err[256];
        bly_inference_msg_t *m = bly_inference_msg_recv(sock, err, sizeof(err));
        if (!m)
            continue;
        int id = bly_inference_msg_id(m);
        if (id == BLY_INFERENCE_MSG_TOKEN && !json) {
            size_t size = 0;
            const uint8_t *piece = bly_inference_msg_piece(m, &size);
            fwrite(piece, 1, size, stdout);
            fflush(stdout);
        }
        bool last = id == BLY_INFERENCE_MSG_DONE || id == BLY_INFERENCE_MSG_ERROR;
        if (id == BLY_INFERENCE_MSG_DONE) {
            if (json)
                s_print_json(m);
            else
                printf("\n");
            rc = 0;
        } else if (id == BLY_INFERENCE_MSG_ERROR) {
            fprintf(stderr, "blyan chat: the router refused: %s (code %u)\n",
                    bly_inference_msg_reason(m), bly_inference_msg_code(m));
        }
        bly_inference_msg_destroy(&m);
        if (last) {
            zpoller_destroy(&poller);
            return rc;
        }
    }
    fprintf(stderr, "blyan chat: no answer from the router within %ld ms\n", timeout_ms);
    zpoller_destroy(&poller);
    return 1;
}

//  The router's Curve key from a hex node id or a Z85 key.
static int
s_router_key(const char *key, char z85[BLY_IDENTITY_Z85_SIZE])
{
    uint8_t id[32];
    if (strlen(key) == 40) {
        snprintf(z85, BLY_IDENTITY_Z85_SIZE, "%s", key);
        return 0;
    }
    return bly_identity_id_from_hex(key, id) == 0 ? bly_identity_curve_z85_from_id(id, z85) : -1;
}

int
bly_cli_chat(int argc, char **argv)
{
    static const char *const known[] = {"--router=", "--router-key=", "--prompt=", "--n-predict=",
        "--temp=", "--top-k=", "--top-p=", "--min-p=", "--repeat-penalty=", "--seed=",
        "--timeout-ms=", "--request-id=", "--special", "--chat", "--ignore-eos", "--json", NULL};
    const char *router = bly_cli_opt(argc, argv, "--router");
    const char *key = bly_cli_opt(argc, argv, "--router-key");
    if (!key)
        key = getenv("BLY_ROUTER_KEY");
    const char *o = bly_cli_opt(argc, argv, "--timeout-ms");
    long timeout_ms = 300000;
    char z85[BLY_IDENTITY_Z85_SIZE];
    bly_inference_msg_t *m = NULL;
    if (bly_cli_check_options(argc, argv, known) != 0 || !router || !key
        || s_router_key(key, z85) != 0
        || (o && bly_cli_parse_long(o, 1, 3600000, &timeout_ms) != 0)
        || !(m = s_build(argc, argv))) {
        fprintf(stderr, "usage: blyan chat --router E --router-key ID|Z85 --prompt P "
                        "[--n-predict N] [--temp T] [--top-k K] [--top-p P] [--min-p P] "
                        "[--repeat-penalty R] [--seed S] [--special] [--chat] [--ignore-eos] "
                        "[--json] [--timeout-ms T] [--request-id ID]\n");
        return 2;
    }
    bly_identity_t *me = bly_identity_new_random();
    char err[256];
    zsock_t *sock = bly_sock_client(ZMQ_DEALER, me, z85, router, err, sizeof(err));
    int rc = 1;
    if (!sock)
        fprintf(stderr, "blyan chat: %s\n", err);
    else if (bly_inference_msg_send(m, sock) != 0)
        fprintf(stderr, "blyan chat: cannot send the request\n");
    else
        rc = s_receive(sock, bly_cli_flag(argc, argv, "--json"), timeout_ms);
    zsock_destroy(&sock);
    bly_inference_msg_destroy(&m);
    bly_identity_destroy(&me);
    return rc;
}
