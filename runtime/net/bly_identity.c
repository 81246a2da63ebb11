/*  =========================================================================
    bly_identity - a node's Ed25519 identity, and the CurveZMQ keys from it
    ========================================================================= */

#include "bly_identity.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct bly_identity_t {
    uint8_t public_key[BLY_IDENTITY_PUBLIC_SIZE];     //  Ed25519 public key = node id.
    uint8_t *secret_key;                              //  Ed25519 secret (sodium_malloc, 64).
    uint8_t *curve_secret;                            //  Curve25519 secret (sodium_malloc, 32).
    uint8_t curve_public[32];                         //  Curve25519 public key.
    char id_hex[BLY_IDENTITY_HEX_SIZE];               //  Node id in hex.
    char curve_public_z85[BLY_IDENTITY_Z85_SIZE];     //  Curve public key in Z85.
};

//  Build an identity around a 64-byte secret key; derives everything else.
static bly_identity_t *
s_identity_from_secret(const uint8_t secret[BLY_IDENTITY_SECRET_SIZE])
{
    bly_assert(secret);
    if (sodium_init() < 0)
        return NULL;
    bly_identity_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->secret_key = sodium_malloc(BLY_IDENTITY_SECRET_SIZE);
    self->curve_secret = sodium_malloc(32);
    if (!self->secret_key || !self->curve_secret) {
        bly_identity_destroy(&self);
        return NULL;
    }
    memcpy(self->secret_key, secret, BLY_IDENTITY_SECRET_SIZE);
    crypto_sign_ed25519_sk_to_pk(self->public_key, self->secret_key);
    if (crypto_sign_ed25519_sk_to_curve25519(self->curve_secret, self->secret_key) != 0
        || crypto_sign_ed25519_pk_to_curve25519(self->curve_public, self->public_key) != 0) {
        bly_identity_destroy(&self);
        return NULL;
    }
    bly_identity_id_to_hex(self->public_key, self->id_hex);
    char *z = zmq_z85_encode(self->curve_public_z85, self->curve_public, 32);
    bly_assert(z);
    return self;
}

bly_identity_t *
bly_identity_new_random(void)
{
    if (sodium_init() < 0)
        return NULL;
    uint8_t *secret = sodium_malloc(BLY_IDENTITY_SECRET_SIZE);
    if (!secret)
        return NULL;
    uint8_t public_key[BLY_IDENTITY_PUBLIC_SIZE];
    crypto_sign_keypair(public_key, secret);
    bly_identity_t *self = s_identity_from_secret(secret);
    sodium_free(secret);
    return self;
}

//  Read and check a key file into `secret` (64 bytes). Returns 0 or -1.
static int
s_read_key_file(const char *path, uint8_t *secret, char *err, size_t err_size)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_size, "cannot open key file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        snprintf(err, err_size, "key file %s is not a regular file", path);
    else if (st.st_mode & (S_IRWXG | S_IRWXO))
        snprintf(err, err_size,
                 "key file %s is accessible by group or others (mode %04o); run chmod 600 %s",
                 path, (unsigned) (st.st_mode & 07777), path);
    else if (st.st_size != BLY_IDENTITY_SECRET_SIZE)
        snprintf(err, err_size, "key file %s has %lld bytes, expected %d", path,
                 (long long) st.st_size, BLY_IDENTITY_SECRET_SIZE);
    else if (read(fd, secret, BLY_IDENTITY_SECRET_SIZE) != BLY_IDENTITY_SECRET_SIZE)
        snprintf(err, err_size, "cannot read key file %s", path);
    else
        rc = 0;
    close(fd);
    if (rc != 0)
        return -1;
    //  The file holds seed || public key: the public half must match the seed.
    uint8_t pk[BLY_IDENTITY_PUBLIC_SIZE];
    uint8_t *check = sodium_malloc(BLY_IDENTITY_SECRET_SIZE);
    if (!check) {
        snprintf(err, err_size, "out of secure memory");
        return -1;
    }
    crypto_sign_seed_keypair(pk, check, secret);
    rc = sodium_memcmp(check, secret, BLY_IDENTITY_SECRET_SIZE) == 0 ? 0 : -1;
    sodium_free(check);
    if (rc != 0)
        snprintf(err, err_size, "key file %s is corrupt (public key does not match its seed)",
                 path);
    return rc;
}

bly_identity_t *
bly_identity_load(const char *path, char *err, size_t err_size)
{
    bly_assert(path);
    bly_assert(err);
    if (sodium_init() < 0) {
        snprintf(err, err_size, "libsodium failed to initialise");
        return NULL;
    }
    uint8_t *secret = sodium_malloc(BLY_IDENTITY_SECRET_SIZE);
    if (!secret) {
        snprintf(err, err_size, "out of secure memory");
        return NULL;
    }
    bly_identity_t *self = NULL;
    if (s_read_key_file(path, secret, err, err_size) == 0) {
        self = s_identity_from_secret(secret);
        if (!self)
            snprintf(err, err_size, "key file %s holds an unusable key", path);
    }
    sodium_free(secret);
    return self;
}

int
bly_identity_check_file(const char *path, char *err, size_t err_size)
{
    bly_identity_t *self = bly_identity_load(path, err, err_size);
    int rc = self ? 0 : -1;
    bly_identity_destroy(&self);
    return rc;
}

int
bly_identity_save(const bly_identity_t *self, const char *path, char *err, size_t err_size)
{
    bly_assert(self);
    bly_assert(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, err_size, "cannot create key file %s: %s", path, strerror(errno));
        return -1;
    }
    ssize_t n = write(fd, self->secret_key, BLY_IDENTITY_SECRET_SIZE);
    int rc = (n == BLY_IDENTITY_SECRET_SIZE && fsync(fd) == 0) ? 0 : -1;
    if (close(fd) != 0)
        rc = -1;
    if (rc != 0) {
        snprintf(err, err_size, "cannot write key file %s", path);
        unlink(path);
    }
    return rc;
}

bly_identity_t *
bly_identity_load_or_create(const char *path, char *err, size_t err_size)
{
    bly_assert(path);
    bly_assert(err);
    if (access(path, F_OK) == 0)
        return bly_identity_load(path, err, err_size);
    bly_identity_t *self = bly_identity_new_random();
    if (!self) {
        snprintf(err, err_size, "cannot generate a key pair");
        return NULL;
    }
    if (bly_identity_save(self, path, err, err_size) != 0)
        bly_identity_destroy(&self);
    return self;
}

void
bly_identity_destroy(bly_identity_t **self_p)
{
    bly_assert(self_p);
    bly_identity_t *self = *self_p;
    if (!self)
        return;
    if (self->curve_secret)
        sodium_free(self->curve_secret);       //  sodium_free wipes before freeing.
    if (self->secret_key)
        sodium_free(self->secret_key);
    free(self);
    *self_p = NULL;
}

const uint8_t *
bly_identity_public_key(const bly_identity_t *self)
{
    bly_assert(self);
    return self->public_key;
}

const uint8_t *
bly_identity_secret_key(const bly_identity_t *self)
{
    bly_assert(self);
    return self->secret_key;
}

const char *
bly_identity_id_hex(const bly_identity_t *self)
{
    bly_assert(self);
    return self->id_hex;
}

const char *
bly_identity_curve_public_z85(const bly_identity_t *self)
{
    bly_assert(self);
    return self->curve_public_z85;
}

int
bly_identity_sign(const bly_identity_t *self, const uint8_t *data, size_t size,
                  uint8_t signature[BLY_IDENTITY_SIGNATURE_SIZE])
{
    bly_assert(self);
    bly_assert(data || size == 0);
    bly_assert(signature);
    return crypto_sign_detached(signature, NULL, data, size, self->secret_key) == 0 ? 0 : -1;
}

bool
bly_identity_verify(const uint8_t public_key[BLY_IDENTITY_PUBLIC_SIZE], const uint8_t *data,
                    size_t size, const uint8_t signature[BLY_IDENTITY_SIGNATURE_SIZE])
{
    bly_assert(public_key);
    bly_assert(signature);
    bly_assert(data || size == 0);
    return crypto_sign_verify_detached(signature, data, size, public_key) == 0;
}

int
bly_identity_apply_curve_server(const bly_identity_t *self, zsock_t *sock)
{
    bly_assert(self);
    bly_assert(sock);
    void *handle = zsock_resolve(sock);
    int one = 1;
    if (zmq_setsockopt(handle, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0)
        return -1;
    if (zmq_setsockopt(handle, ZMQ_CURVE_SECRETKEY, self->curve_secret, 32) != 0)
        return -1;
    return 0;
}

int
bly_identity_apply_curve_client(const bly_identity_t *self, zsock_t *sock, const char *server_z85)
{
    bly_assert(self);
    bly_assert(sock);
    bly_assert(server_z85);
    if (strlen(server_z85) != 40)
        return -1;
    void *handle = zsock_resolve(sock);
    if (zmq_setsockopt(handle, ZMQ_CURVE_SERVERKEY, server_z85, 41) != 0)
        return -1;
    if (zmq_setsockopt(handle, ZMQ_CURVE_PUBLICKEY, self->curve_public, 32) != 0)
        return -1;
    if (zmq_setsockopt(handle, ZMQ_CURVE_SECRETKEY, self->curve_secret, 32) != 0)
        return -1;
    return 0;
}

int
bly_identity_curve_z85_from_id(const uint8_t public_key[BLY_IDENTITY_PUBLIC_SIZE],
                               char z85[BLY_IDENTITY_Z85_SIZE])
{
    bly_assert(public_key);
    bly_assert(z85);
    uint8_t curve[32];
    if (sodium_init() < 0 || crypto_sign_ed25519_pk_to_curve25519(curve, public_key) != 0)
        return -1;
    return zmq_z85_encode(z85, curve, 32) ? 0 : -1;
}

int
bly_identity_id_from_hex(const char *hex, uint8_t public_key[BLY_IDENTITY_PUBLIC_SIZE])
{
    bly_assert(hex);
    bly_assert(public_key);
    size_t bin_len = 0;
    const char *end = NULL;
    if (strlen(hex) != 2 * BLY_IDENTITY_PUBLIC_SIZE)
        return -1;
    if (sodium_hex2bin(public_key, BLY_IDENTITY_PUBLIC_SIZE, hex, strlen(hex), NULL, &bin_len,
                       &end) != 0
        || bin_len != BLY_IDENTITY_PUBLIC_SIZE || *end != 0)
        return -1;
    return 0;
}

void
bly_identity_id_to_hex(const uint8_t public_key[BLY_IDENTITY_PUBLIC_SIZE],
                       char hex[BLY_IDENTITY_HEX_SIZE])
{
    bly_assert(public_key);
    bly_assert(hex);
    sodium_bin2hex(hex, BLY_IDENTITY_HEX_SIZE, public_key, BLY_IDENTITY_PUBLIC_SIZE);
}
