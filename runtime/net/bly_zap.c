/*  =========================================================================
    bly_zap - our ZAP handler (RFC 27) with a policy per domain
    ========================================================================= */

#include "bly_zap.h"

#include "bly_limits.h"

#include <string.h>

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"

typedef struct {
    char name[BLY_ZAP_DOMAIN_MAX];    //  Domain name; empty when the slot is free.
    bool open;                        //  True: any key; false: allow list only.
    uint8_t (*keys)[32];              //  Allow list (BLY_ZAP_KEYS_MAX entries, allocated once).
    size_t key_count;                 //  Keys in use.
} s_domain_t;

typedef struct {
    zsock_t *pipe;                            //  Actor pipe.
    zsock_t *handler;                         //  REP bound to the ZAP endpoint.
    zpoller_t *poller;                        //  Pipe and handler.
    s_domain_t domains[BLY_ZAP_DOMAINS_MAX];  //  Policies.
    uint64_t accepts;                         //  Requests accepted.
    uint64_t denials;                         //  Requests refused.
    bly_ratelimit_t log_limit;                //  Refusal log lines.
    bool bound;                               //  The handler holds the ZAP endpoint.
    bool terminated;                          //  Set by $TERM.
} s_zap_t;

static s_domain_t *
s_domain_find(s_zap_t *self, const char *name)
{
    for (size_t i = 0; i < BLY_ZAP_DOMAINS_MAX; i++)
        if (self->domains[i].name[0] && strcmp(self->domains[i].name, name) == 0)
            return &self->domains[i];
    return NULL;
}

//  Find or add a domain. NULL when the name is bad or the table is full.
static s_domain_t *
s_domain_get(s_zap_t *self, const char *name, bool open)
{
    size_t len = strlen(name);
    if (len == 0 || len >= BLY_ZAP_DOMAIN_MAX)
        return NULL;
    s_domain_t *domain = s_domain_find(self, name);
    if (domain)
        return domain->open == open ? domain : NULL;
    for (size_t i = 0; i < BLY_ZAP_DOMAINS_MAX; i++) {
        domain = &self->domains[i];
        if (domain->name[0])
            continue;
        if (!open) {
            domain->keys = calloc(BLY_ZAP_KEYS_MAX, sizeof(*domain->keys));
            if (!domain->keys)
                return NULL;
        }
        memcpy(domain->name, name, len + 1);
        domain->open = open;
        return domain;
    }
    return NULL;
}

static int
s_allow(s_zap_t *self, const char *name, const char *z85)
{
    uint8_t key[32];
    if (!z85 || strlen(z85) != 40 || !zmq_z85_decode(key, z85))
        return -1;
    s_domain_t *domain = s_domain_get(self, name, false);
    if (!domain)
        return -1;
    for (size_t i = 0; i < domain->key_count; i++)
        if (memcmp(domain->keys[i], key, 32) == 0)
            return 0;
    if (domain->key_count >= BLY_ZAP_KEYS_MAX)
        return -1;
    memcpy(domain->keys[domain->key_count++], key, 32);
    return 0;
}

static void
s_handle_pipe(s_zap_t *self)
{
    char *command = NULL, *domain = NULL, *key = NULL;
    if (zsock_recv(self->pipe, "sss", &command, &domain, &key) != 0) {
        self->terminated = true;
        return;
    }
    if (streq(command, "$TERM"))
        self->terminated = true;
    else if (streq(command, "OPEN"))
        zsock_send(self->pipe, "i", domain && s_domain_get(self, domain, true) ? 0 : -1);
    else if (streq(command, "ALLOW"))
        zsock_send(self->pipe, "i", domain ? s_allow(self, domain, key) : -1);
    else if (streq(command, "STATS"))
        zsock_send(self->pipe, "88", self->accepts, self->denials);
    else
        bly_log_warn("zap: unknown pipe command %s", command);
    zstr_free(&command);
    zstr_free(&domain);
    zstr_free(&key);
}

//  Decide one request. Returns true to accept; sets `user_id` (Z85 key).
static bool
s_decide(s_zap_t *self, zmsg_t *request, char *user_id, const char **why)
{
    //  Frames: version, request id, domain, address, identity, mechanism, credentials.
    zframe_t *frames[7] = {NULL};
    if (zmsg_size(request) != 7) {
        *why = "malformed request";
        return false;
    }
    for (int i = 0; i < 7; i++)
        frames[i] = i == 0 ? zmsg_first(request) : zmsg_next(request);
    char domain[BLY_ZAP_DOMAIN_MAX] = "";
    size_t domain_size = zframe_size(frames[2]);
    if (domain_size < sizeof(domain))
        memcpy(domain, zframe_data(frames[2]), domain_size);
    if (!zframe_streq(frames[5], "CURVE") || zframe_size(frames[6]) != 32) {
        *why = "mechanism is not CURVE";
        return false;
    }
    s_domain_t *policy = domain_size < sizeof(domain) ? s_domain_find(self, domain) : NULL;
    if (!policy) {
        *why = "unknown ZAP domain";
        return false;
    }
    const uint8_t *key = zframe_data(frames[6]);
    zmq_z85_encode(user_id, key, 32);
    if (policy->open)
        return true;
    for (size_t i = 0; i < policy->key_count; i++)
        if (memcmp(policy->keys[i], key, 32) == 0)
            return true;
    *why = "key not on the allow list";
    return false;
}

static void
s_handle_request(s_zap_t *self)
{
    zmsg_t *request = zmsg_recv(self->handler);
    if (!request)
        return;
    char user_id[41] = "";
    const char *why = "";
    bool accept = s_decide(self, request, user_id, &why);
    zframe_t *request_id = NULL;
    if (zmsg_size(request) >= 2) {
        zmsg_first(request);
        request_id = zmsg_next(request);
    }
    zmsg_t *reply = zmsg_new();
    zmsg_addstr(reply, "1.0");
    if (request_id)
        zmsg_addmem(reply, zframe_data(request_id), zframe_size(request_id));
    else
        zmsg_addstr(reply, "");
    zmsg_addstr(reply, accept ? "200" : "400");
    zmsg_addstr(reply, accept ? "OK" : why);
    zmsg_addstr(reply, accept ? user_id : "");
    zmsg_addmem(reply, "", 0);
    if (accept) {
        self->accepts++;
    } else {
        self->denials++;
        if (bly_ratelimit_allow(&self->log_limit, zclock_mono(), 10, 10000))
            bly_log_warn("zap: refused a client (%s); %llu refusals so far", why,
                         (unsigned long long) self->denials);
    }
    zmsg_send(&reply, self->handler);
    zmsg_destroy(&request);
}

static void
s_zap_destroy(s_zap_t **self_p)
{
    s_zap_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < BLY_ZAP_DOMAINS_MAX; i++)
        free(self->domains[i].keys);
    zpoller_destroy(&self->poller);
    //  Unbind first: inproc endpoints are released at once, a closed socket's
    //  only when libzmq reaps it, and the next handler must be able to bind.
    if (self->bound)
        zsock_unbind(self->handler, "%s", S_ZAP_ENDPOINT);
    zsock_destroy(&self->handler);
    free(self);
    *self_p = NULL;
}

void
bly_zap_actor(zsock_t *pipe, void *args)
{
    bly_assert(pipe);
    (void) args;
    bly_log_set_actor("zap");
    s_zap_t *self = calloc(1, sizeof(*self));
    bly_assert(self);
    self->pipe = pipe;
    self->handler = zsock_new(ZMQ_REP);
    bly_assert(self->handler);
    int rc = zsock_bind(self->handler, "%s", S_ZAP_ENDPOINT);
    self->bound = rc == 0;
    zsock_signal(pipe, 0);                   //  Unblocks zactor_new().
    zsock_signal(pipe, rc == 0 ? 0 : 1);     //  Read by bly_zap_new().
    self->poller = zpoller_new(pipe, rc == 0 ? self->handler : NULL, NULL);
    bly_assert(self->poller);
    while (!self->terminated) {
        void *which = zpoller_wait(self->poller, -1);
        if (which == pipe)
            s_handle_pipe(self);
        else if (which == self->handler)
            s_handle_request(self);
        else if (zpoller_terminated(self->poller))
            break;
    }
    s_zap_destroy(&self);
}

zactor_t *
bly_zap_new(void)
{
    zactor_t *self = zactor_new(bly_zap_actor, NULL);
    if (!self)
        return NULL;
    if (zsock_wait(self) != 0) {
        bly_log_error("zap: cannot bind %s: another ZAP handler runs in this process",
                      S_ZAP_ENDPOINT);
        zactor_destroy(&self);
    }
    return self;
}

void
bly_zap_destroy(zactor_t **self_p)
{
    bly_assert(self_p);
    zactor_destroy(self_p);
}

int
bly_zap_open(zactor_t *self, const char *domain)
{
    bly_assert(self);
    bly_assert(domain);
    int rc = -1;
    if (zsock_send(self, "sss", "OPEN", domain, "") != 0 || zsock_recv(self, "i", &rc) != 0)
        return -1;
    return rc;
}

int
bly_zap_allow(zactor_t *self, const char *domain, const char *key_z85)
{
    bly_assert(self);
    bly_assert(domain);
    bly_assert(key_z85);
    int rc = -1;
    if (zsock_send(self, "sss", "ALLOW", domain, key_z85) != 0 || zsock_recv(self, "i", &rc) != 0)
        return -1;
    return rc;
}

static void
s_stats(zactor_t *self, uint64_t *accepts, uint64_t *denials)
{
    *accepts = *denials = 0;
    if (zsock_send(self, "sss", "STATS", "", "") == 0)
        (void) zsock_recv(self, "88", accepts, denials);
}

uint64_t
bly_zap_denials(zactor_t *self)
{
    bly_assert(self);
    uint64_t accepts, denials;
    s_stats(self, &accepts, &denials);
    return denials;
}

uint64_t
bly_zap_accepts(zactor_t *self)
{
    bly_assert(self);
    uint64_t accepts, denials;
    s_stats(self, &accepts, &denials);
    return accepts;
}
