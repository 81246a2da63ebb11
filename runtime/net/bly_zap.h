/*  =========================================================================
    bly_zap - our ZAP handler (RFC 27) with a policy per domain

    One per process (libzmq has one ZAP endpoint, inproc://zeromq.zap.01, per
    context). Unlike CZMQ's zauth, whose one allow list applies to every
    socket, each ZAP domain here has its own policy:

    - an *open* domain accepts any CURVE client key;
    - an *allow-listed* domain accepts only the keys added to it;
    - an unknown domain, or any mechanism other than CURVE, is refused.

    Every accepted CURVE client gets its Z85 public key as ZAP User-Id, so
    each message a socket receives carries the sender's key in its
    "User-Id" metadata. Sockets made by bly_sock also set
    ZMQ_ZAP_ENFORCE_DOMAIN, so a process without this handler refuses every
    client instead of admitting any key (libzmq's default).
    ========================================================================= */

#ifndef BLY_ZAP_H_INCLUDED
#define BLY_ZAP_H_INCLUDED

#include "bly_log.h"

#include <czmq.h>
#include <stdint.h>

//  The actor: start with zactor_new(bly_zap_actor, NULL), or bly_zap_new().
void bly_zap_actor(zsock_t *pipe, void *args);

//  Start the handler. NULL when the ZAP endpoint is taken (another handler
//  runs in this process) or the actor cannot start.
zactor_t *bly_zap_new(void);

//  Stop the handler.
void bly_zap_destroy(zactor_t **self_p);

//  Make `domain` open: any CURVE key is accepted and attributed. Returns 0
//  or -1 (bad name, too many domains, domain already allow-listed).
BLY_MUST_USE int bly_zap_open(zactor_t *self, const char *domain);

//  Add a Curve public key (Z85, 40 characters) to `domain`'s allow list,
//  creating the domain as allow-listed. Returns 0 or -1 (bad key, list
//  full, domain is open).
BLY_MUST_USE int bly_zap_allow(zactor_t *self, const char *domain, const char *key_z85);

//  ZAP requests refused so far.
uint64_t bly_zap_denials(zactor_t *self);

//  ZAP requests accepted so far.
uint64_t bly_zap_accepts(zactor_t *self);

#endif
