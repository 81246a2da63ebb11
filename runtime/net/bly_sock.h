/*  =========================================================================
    bly_sock - CURVE sockets with every bound set

    Every tcp link in Blyan is CURVE. These helpers create a socket, set
    SNDHWM/RCVHWM, SNDTIMEO, ZMQ_MAXMSGSIZE (BLY_FRAME_SIZE_MAX), LINGER,
    the ZAP domain and ZMQ_ZAP_ENFORCE_DOMAIN (so a process without a ZAP
    handler refuses clients), the Curve keys, and only then bind or connect.
    ========================================================================= */

#ifndef BLY_SOCK_H_INCLUDED
#define BLY_SOCK_H_INCLUDED

#include "bly_identity.h"
#include "bly_log.h"

#include <czmq.h>

//  A CURVE server socket of `type` (ZMQ_ROUTER...) bound to `endpoint`,
//  authenticated by the ZAP handler under `zap_domain`. An endpoint ending
//  in ":*" binds an ephemeral port; read it with zsock_endpoint. NULL on
//  failure with a reason in `err`.
zsock_t *bly_sock_server(int type, const bly_identity_t *identity, const char *zap_domain,
                         const char *endpoint, char *err, size_t err_size);

//  A CURVE client socket of `type` (ZMQ_DEALER...) connected to `endpoint`,
//  whose server's Curve public key is `server_z85`. NULL on failure.
zsock_t *bly_sock_client(int type, const bly_identity_t *identity, const char *server_z85,
                         const char *endpoint, char *err, size_t err_size);

//  True when `endpoint` is one we accept in manifests: tcp://HOST:PORT
//  (port 1-65535, or "*" when `allow_wildcard`), ipc://PATH or
//  inproc://NAME, and shorter than BLY_ENDPOINT_MAX.
bool bly_sock_endpoint_valid(const char *endpoint, bool allow_wildcard);

//  The "User-Id" (the sender's Z85 Curve key) of a received frame, or NULL.
const char *bly_sock_peer_key(zframe_t *frame);

#endif
