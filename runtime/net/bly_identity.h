/*  =========================================================================
    bly_identity - a node's Ed25519 identity, and the CurveZMQ keys from it

    A node is its Ed25519 public key: the node id (64 hex characters in
    text). The key pair lives in a file of exactly 64 bytes (the libsodium
    secret key: seed then public key), mode 0600, created on first start.
    A key file readable by group or others, of the wrong size, or whose
    public half does not match its seed is refused with a clear message.

    The CurveZMQ key pair is derived from the Ed25519 pair
    (crypto_sign_ed25519_{pk,sk}_to_curve25519), so one identity serves for
    signing and for transport; anyone can derive a peer's Curve public key
    from its node id. Secret keys live in sodium_malloc memory.
    ========================================================================= */

#ifndef BLY_IDENTITY_H_INCLUDED
#define BLY_IDENTITY_H_INCLUDED

#include "bly_log.h"

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLY_IDENTITY_PUBLIC_SIZE 32
#define BLY_IDENTITY_SECRET_SIZE 64
#define BLY_IDENTITY_SIGNATURE_SIZE 64
#define BLY_IDENTITY_HEX_SIZE 65     //  64 hex characters and a NUL.
#define BLY_IDENTITY_Z85_SIZE 41     //  40 Z85 characters and a NUL.

typedef struct bly_identity_t bly_identity_t;

//  A fresh random identity held in memory only (tests, ephemeral clients).
bly_identity_t *bly_identity_new_random(void);

//  Load the key file at `path`, creating it (mode 0600, exclusive) when it
//  does not exist. NULL on failure with a reason in `err`.
bly_identity_t *bly_identity_load_or_create(const char *path, char *err, size_t err_size);

//  Load an existing key file. NULL on failure with a reason in `err`.
bly_identity_t *bly_identity_load(const char *path, char *err, size_t err_size);

//  Check a key file without keeping the key: 0, or -1 with a reason.
BLY_MUST_USE int bly_identity_check_file(const char *path, char *err, size_t err_size);

//  Write this identity to a new file (mode 0600; fails if it exists).
BLY_MUST_USE int bly_identity_save(const bly_identity_t *self, const char *path, char *err,
                                   size_t err_size);

void bly_identity_destroy(bly_identity_t **self_p);

//  The Ed25519 public key (32 bytes) = the node id. Borrowed.
const uint8_t *bly_identity_public_key(const bly_identity_t *self);

//  The Ed25519 secret key (64 bytes, sodium memory) for codec _sign. Borrowed.
const uint8_t *bly_identity_secret_key(const bly_identity_t *self);

//  The node id as 64 lowercase hex characters. Borrowed.
const char *bly_identity_id_hex(const bly_identity_t *self);

//  The CurveZMQ public key in Z85 (40 characters). Borrowed.
const char *bly_identity_curve_public_z85(const bly_identity_t *self);

//  Sign `size` bytes (detached signature). Returns 0 or -1.
BLY_MUST_USE int bly_identity_sign(const bly_identity_t *self, const uint8_t *data, size_t size,
                                   uint8_t signature[BLY_IDENTITY_SIGNATURE_SIZE]);

//  Verify a detached signature by `public_key` over `size` bytes.
bool bly_identity_verify(const uint8_t public_key[BLY_IDENTITY_PUBLIC_SIZE], const uint8_t *data,
                         size_t size, const uint8_t signature[BLY_IDENTITY_SIGNATURE_SIZE]);

//  Make `sock` a CURVE server with this identity's Curve key pair.
BLY_MUST_USE int bly_identity_apply_curve_server(const bly_identity_t *self, zsock_t *sock);

//  Make `sock` a CURVE client of the server whose Curve public key is
//  `server_z85`, authenticating with this identity's Curve key pair.
BLY_MUST_USE int bly_identity_apply_curve_client(const bly_identity_t *self, zsock_t *sock,
                                                 const char *server_z85);

//  Derive the Curve public key (Z85) of the node whose id is `public_key`.
//  Returns 0, or -1 for a key that is not a valid Ed25519 point.
BLY_MUST_USE int bly_identity_curve_z85_from_id(const uint8_t public_key[BLY_IDENTITY_PUBLIC_SIZE],
                                                char z85[BLY_IDENTITY_Z85_SIZE]);

//  Parse 64 hex characters into a 32-byte node id. Returns 0 or -1.
BLY_MUST_USE int bly_identity_id_from_hex(const char *hex,
                                          uint8_t public_key[BLY_IDENTITY_PUBLIC_SIZE]);

//  Write a 32-byte node id as 64 hex characters.
void bly_identity_id_to_hex(const uint8_t public_key[BLY_IDENTITY_PUBLIC_SIZE],
                            char hex[BLY_IDENTITY_HEX_SIZE]);

#endif
