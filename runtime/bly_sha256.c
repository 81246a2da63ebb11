/*  =========================================================================
    bly_sha256 - SHA-256 over libcrypto's low-level digest (see the header)

    The 1.1 API (SHA256_Init/Update/Final) is used on purpose: OpenSSL 3's
    EVP one-shot fetches an algorithm object per call, which costs more than
    hashing a 65-byte Merkle node.
    ========================================================================= */

#define OPENSSL_API_COMPAT 0x10100000L

#include "bly_sha256.h"
#include "bly_log.h"

#include <openssl/sha.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((bly_sha256_t *) 0)->opaque),
               "bly_sha256_t holds a SHA256_CTX");
_Static_assert(_Alignof(SHA256_CTX) <= 8, "bly_sha256_t is aligned for a SHA256_CTX");

void
bly_sha256(uint8_t out[BLY_SHA256_SIZE], const void *data, size_t size)
{
    bly_assert(out);
    bly_assert(data || size == 0);
    SHA256_CTX c;
    //  The low-level calls cannot fail on valid arguments (they return 1).
    int ok = SHA256_Init(&c) & SHA256_Update(&c, data, size) & SHA256_Final(out, &c);
    bly_assert(ok == 1);
}

void
bly_sha256_init(bly_sha256_t *self)
{
    bly_assert(self);
    int ok = SHA256_Init((SHA256_CTX *) (void *) self->opaque);
    bly_assert(ok == 1);
}

void
bly_sha256_update(bly_sha256_t *self, const void *data, size_t size)
{
    bly_assert(self);
    bly_assert(data || size == 0);
    int ok = SHA256_Update((SHA256_CTX *) (void *) self->opaque, data, size);
    bly_assert(ok == 1);
}

void
bly_sha256_final(bly_sha256_t *self, uint8_t out[BLY_SHA256_SIZE])
{
    bly_assert(self && out);
    int ok = SHA256_Final(out, (SHA256_CTX *) (void *) self->opaque);
    bly_assert(ok == 1);
}
