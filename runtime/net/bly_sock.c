/*  =========================================================================
    bly_sock - CURVE sockets with every bound set
    ========================================================================= */

#include "bly_sock.h"

#include "bly_limits.h"

#include <stdio.h>
#include <string.h>

//  A socket with the options every socket gets before bind or connect. NULL
//  with a reason in `err`.
static zsock_t *
s_new_bounded(int type, char *err, size_t err_size)
{
    zsock_t *sock = zsock_new(type);
    if (!sock) {
        snprintf(err, err_size, "cannot create a socket");
        return NULL;
    }
    void *handle = zsock_resolve(sock);
    int hwm = BLY_SOCKET_HWM;
    int sndtimeo = BLY_SOCKET_SNDTIMEO_MS;
    int linger = 0;
    int64_t maxmsgsize = BLY_FRAME_SIZE_MAX;
    if (zmq_setsockopt(handle, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0
        || zmq_setsockopt(handle, ZMQ_RCVHWM, &hwm, sizeof(hwm)) != 0
        || zmq_setsockopt(handle, ZMQ_SNDTIMEO, &sndtimeo, sizeof(sndtimeo)) != 0
        || zmq_setsockopt(handle, ZMQ_LINGER, &linger, sizeof(linger)) != 0
        || zmq_setsockopt(handle, ZMQ_MAXMSGSIZE, &maxmsgsize, sizeof(maxmsgsize)) != 0) {
        snprintf(err, err_size, "cannot set socket options: %s", zmq_strerror(zmq_errno()));
        zsock_destroy(&sock);
    }
    return sock;
}

zsock_t *
bly_sock_server(int type, const bly_identity_t *identity, const char *zap_domain,
                const char *endpoint, char *err, size_t err_size)
{
    bly_assert(identity);
    bly_assert(zap_domain);
    bly_assert(endpoint);
    bly_assert(err);
    zsock_t *sock = s_new_bounded(type, err, err_size);
    if (!sock)
        return NULL;
    void *handle = zsock_resolve(sock);
    int enforce = 1;
    if (zmq_setsockopt(handle, ZMQ_ZAP_DOMAIN, zap_domain, strlen(zap_domain)) != 0
        || zmq_setsockopt(handle, 93 /* ZMQ_ZAP_ENFORCE_DOMAIN */, &enforce, sizeof(enforce))
               != 0
        || bly_identity_apply_curve_server(identity, sock) != 0)
        snprintf(err, err_size, "cannot set CURVE server options: %s", zmq_strerror(zmq_errno()));
    else if (zsock_bind(sock, "%s", endpoint) < 0)
        snprintf(err, err_size, "cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
    else
        return sock;
    zsock_destroy(&sock);
    return NULL;
}

zsock_t *
bly_sock_client(int type, const bly_identity_t *identity, const char *server_z85,
                const char *endpoint, char *err, size_t err_size)
{
    bly_assert(identity);
    bly_assert(server_z85);
    bly_assert(endpoint);
    bly_assert(err);
    zsock_t *sock = s_new_bounded(type, err, err_size);
    if (!sock)
        return NULL;
    if (bly_identity_apply_curve_client(identity, sock, server_z85) != 0)
        snprintf(err, err_size, "cannot set CURVE client options (server key must be 40 Z85 "
                                "characters)");
    else if (zsock_connect(sock, "%s", endpoint) != 0)
        snprintf(err, err_size, "cannot connect to %s: %s", endpoint, zmq_strerror(zmq_errno()));
    else
        return sock;
    zsock_destroy(&sock);
    return NULL;
}

static bool
s_port_valid(const char *port, bool allow_wildcard)
{
    if (strcmp(port, "*") == 0)
        return allow_wildcard;
    size_t len = strlen(port);
    if (len == 0 || len > 5 || strspn(port, "0123456789") != len)
        return false;
    long value = strtol(port, NULL, 10);
    return value >= 1 && value <= 65535;
}

bool
bly_sock_endpoint_valid(const char *endpoint, bool allow_wildcard)
{
    bly_assert(endpoint);
    size_t len = strlen(endpoint);
    if (len == 0 || len >= BLY_ENDPOINT_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (endpoint[i] <= ' ' || endpoint[i] > '~')
            return false;
    if (strncmp(endpoint, "ipc://", 6) == 0)
        return len > 6;
    if (strncmp(endpoint, "inproc://", 9) == 0)
        return len > 9;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6;
    const char *colon = strrchr(host, ':');
    if (!colon || colon == host)
        return false;
    //  Host: a name, an IPv4 address, "*", or a bracketed IPv6 address.
    size_t host_len = (size_t) (colon - host);
    if (host[0] == '[' ? host[host_len - 1] != ']'
                       : strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789.-*")
                             != host_len)
        return false;
    return s_port_valid(colon + 1, allow_wildcard);
}

const char *
bly_sock_peer_key(zframe_t *frame)
{
    bly_assert(frame);
    const char *key = zframe_meta(frame, "User-Id");
    return key && strlen(key) == 40 ? key : NULL;
}
