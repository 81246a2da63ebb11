/*  =========================================================================
    bly_sha256 - SHA-256 for ids, Merkle trees and the ledger's replay set

    Transaction ids, block ids, tx roots and account trees hash every
    transaction about ten times per replica; libsodium's portable SHA-256
    made that ~11 % of a replica's CPU at 4,000 transfers/s. This wraps
    OpenSSL's libcrypto, which uses the CPU's SHA extensions where it has
    them (about 5x libsodium on the Zen 3 VMs: docs/BENCHMARKS.md). The
    digest is the same everywhere; only the speed differs.
    ========================================================================= */

#ifndef BLY_SHA256_H_INCLUDED
#define BLY_SHA256_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define BLY_SHA256_SIZE 32

//  Incremental state. Plain memory: may live on the stack, needs no destroy.
//  The storage is large enough for libcrypto's SHA256_CTX (checked at build).
typedef struct {
    _Alignas(8) uint8_t opaque[112];
} bly_sha256_t;

//  One shot: out = SHA-256(data[0..size)). `data` may be NULL when size is 0.
void bly_sha256(uint8_t out[BLY_SHA256_SIZE], const void *data, size_t size);

void bly_sha256_init(bly_sha256_t *self);
void bly_sha256_update(bly_sha256_t *self, const void *data, size_t size);
//  Writes the digest; the state must be initialized again before reuse.
void bly_sha256_final(bly_sha256_t *self, uint8_t out[BLY_SHA256_SIZE]);

#endif
