/*  =========================================================================
    bly_cons_msg - consensus messages, blocks and their canonical bytes
    ========================================================================= */

#include "bly_cons_msg.h"
#include "bly_sha256.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void
bly_cons_put_u64(uint8_t *out, uint64_t value)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t) (value >> (8 * i));
}

uint64_t
bly_cons_get_u64(const uint8_t *in)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value |= (uint64_t) in[i] << (8 * i);
    return value;
}

void
bly_cons_put_u32(uint8_t *out, uint32_t value)
{
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t) (value >> (8 * i));
}

uint32_t
bly_cons_get_u32(const uint8_t *in)
{
    uint32_t value = 0;
    for (int i = 0; i < 4; i++)
        value |= (uint32_t) in[i] << (8 * i);
    return value;
}

void
bly_cons_put_u16(uint8_t *out, uint16_t value)
{
    out[0] = (uint8_t) value;
    out[1] = (uint8_t) (value >> 8);
}

uint16_t
bly_cons_get_u16(const uint8_t *in)
{
    return (uint16_t) (in[0] | (in[1] << 8));
}

static const char s_sign_tag[16] = "blyan-cons-v1";

size_t
bly_cons_sign_bytes(const char *chain_id, const bly_cons_vote_t *vote, uint8_t *out)
{
    bly_assert(chain_id);
    bly_assert(vote);
    size_t chain_len = strnlen(chain_id, BLY_CONS_CHAIN_ID_MAX + 1);
    bly_assert(chain_len <= BLY_CONS_CHAIN_ID_MAX);
    size_t at = 0;
    memcpy(out, s_sign_tag, sizeof(s_sign_tag));
    at += sizeof(s_sign_tag);
    out[at++] = (uint8_t) chain_len;
    memcpy(out + at, chain_id, chain_len);
    at += chain_len;
    //  Everything of the vote but the signature.
    uint8_t body[BLY_CONS_VOTE_SIZE];
    bly_cons_vote_put(vote, body);
    memcpy(out + at, body, BLY_CONS_VOTE_SIZE - BLY_CONS_SIG_SIZE);
    at += BLY_CONS_VOTE_SIZE - BLY_CONS_SIG_SIZE;
    bly_assert(at <= BLY_CONS_SIGN_BYTES_MAX);
    return at;
}

void
bly_cons_vote_sign(bly_cons_vote_t *vote, const char *chain_id,
                   const uint8_t seckey[BLY_CONS_SECKEY_SIZE])
{
    bly_assert(vote);
    bly_assert(seckey);
    uint8_t bytes[BLY_CONS_SIGN_BYTES_MAX];
    size_t size = bly_cons_sign_bytes(chain_id, vote, bytes);
    crypto_sign_ed25519_detached(vote->sig, NULL, bytes, size, seckey);
}

bool
bly_cons_vote_verify(const bly_cons_vote_t *vote, const char *chain_id,
                     const uint8_t pubkey[BLY_CONS_PUBKEY_SIZE])
{
    bly_assert(vote);
    bly_assert(pubkey);
    uint8_t bytes[BLY_CONS_SIGN_BYTES_MAX];
    size_t size = bly_cons_sign_bytes(chain_id, vote, bytes);
    return crypto_sign_ed25519_verify_detached(vote->sig, bytes, size, pubkey) == 0;
}

struct _bly_cons_sigcache_t {
    uint8_t digests[BLY_CONS_SIGCACHE_SIZE][32];    //  Direct-mapped; zero = empty.
    uint64_t hits;                                   //  Checks skipped.
};

bly_cons_sigcache_t *
bly_cons_sigcache_new(void)
{
    return calloc(1, sizeof(bly_cons_sigcache_t));
}

void
bly_cons_sigcache_destroy(bly_cons_sigcache_t **self_p)
{
    bly_assert(self_p);
    free(*self_p);
    *self_p = NULL;
}

bool
bly_cons_vote_verify_cached(bly_cons_sigcache_t *cache, const bly_cons_vote_t *vote,
                            const char *chain_id, const uint8_t pubkey[BLY_CONS_PUBKEY_SIZE])
{
    bly_assert(vote);
    bly_assert(pubkey);
    if (!cache)
        return bly_cons_vote_verify(vote, chain_id, pubkey);
    uint8_t bytes[BLY_CONS_SIGN_BYTES_MAX];
    size_t size = bly_cons_sign_bytes(chain_id, vote, bytes);
    uint8_t digest[32];
    bly_sha256_t st;
    bly_sha256_init(&st);
    bly_sha256_update(&st, pubkey, BLY_CONS_PUBKEY_SIZE);
    bly_sha256_update(&st, bytes, size);
    bly_sha256_update(&st, vote->sig, BLY_CONS_SIG_SIZE);
    bly_sha256_final(&st, digest);
    uint8_t *slot = cache->digests[bly_cons_get_u16(digest) % BLY_CONS_SIGCACHE_SIZE];
    if (memcmp(slot, digest, 32) == 0) {
        cache->hits++;
        return true;
    }
    if (crypto_sign_ed25519_verify_detached(vote->sig, bytes, size, pubkey) != 0)
        return false;
    memcpy(slot, digest, 32);
    return true;
}

void
bly_cons_vote_put(const bly_cons_vote_t *vote, uint8_t *out)
{
    bly_assert(vote);
    bly_assert(out);
    out[0] = vote->type;
    bly_cons_put_u64(out + 1, vote->height);
    bly_cons_put_u32(out + 9, (uint32_t) vote->round);
    bly_cons_put_u32(out + 13, (uint32_t) vote->pol_round);
    bly_cons_put_u16(out + 17, vote->validator);
    out[19] = vote->has_id ? 1 : 0;
    if (vote->has_id)
        memcpy(out + 20, vote->id, BLY_CONS_ID_SIZE);
    else
        memset(out + 20, 0, BLY_CONS_ID_SIZE);
    memcpy(out + 20 + BLY_CONS_ID_SIZE, vote->sig, BLY_CONS_SIG_SIZE);
}

int
bly_cons_vote_get(bly_cons_vote_t *vote, const uint8_t *in)
{
    bly_assert(vote);
    bly_assert(in);
    memset(vote, 0, sizeof(*vote));
    vote->type = in[0];
    vote->height = bly_cons_get_u64(in + 1);
    vote->round = (int32_t) bly_cons_get_u32(in + 9);
    vote->pol_round = (int32_t) bly_cons_get_u32(in + 13);
    vote->validator = bly_cons_get_u16(in + 17);
    if (vote->type < BLY_CONS_PROPOSAL || vote->type > BLY_CONS_PRECOMMIT)
        return -1;
    if (vote->height == 0 || vote->round < 0 || vote->round > BLY_CONS_ROUND_MAX)
        return -1;
    if (vote->validator >= BLY_CONS_VALIDATORS_MAX || in[19] > 1)
        return -1;
    if (vote->type == BLY_CONS_PROPOSAL) {
        //  A proposal names a value; its POL round lies before its round.
        if (in[19] != 1 || vote->pol_round < -1 || vote->pol_round >= vote->round)
            return -1;
    } else if (vote->pol_round != -1) {
        return -1;
    }
    vote->has_id = in[19] == 1;
    if (vote->has_id) {
        memcpy(vote->id, in + 20, BLY_CONS_ID_SIZE);
    } else {
        //  Canonical nil: the id bytes are zero.
        for (int i = 0; i < BLY_CONS_ID_SIZE; i++)
            if (in[20 + i] != 0)
                return -1;
    }
    memcpy(vote->sig, in + 20 + BLY_CONS_ID_SIZE, BLY_CONS_SIG_SIZE);
    return 0;
}

//  Encodes the body after the version and type bytes.
static size_t
s_body_encode(const bly_cons_msg_t *msg, uint8_t *out, size_t max)
{
    size_t need;
    switch (msg->type) {
    case BLY_CONS_PREVOTE:
    case BLY_CONS_PRECOMMIT:
        if (max < BLY_CONS_VOTE_SIZE)
            return 0;
        bly_cons_vote_put(&msg->vote, out);
        return BLY_CONS_VOTE_SIZE;
    case BLY_CONS_PROPOSAL:
        need = BLY_CONS_VOTE_SIZE + 4 + (size_t) msg->block_size;
        if (max < need)
            return 0;
        bly_cons_vote_put(&msg->vote, out);
        bly_cons_put_u32(out + BLY_CONS_VOTE_SIZE, msg->block_size);
        memcpy(out + BLY_CONS_VOTE_SIZE + 4, msg->block, msg->block_size);
        return need;
    case BLY_CONS_COMMIT:
        need = 8 + 4 + 4 + (size_t) msg->block_size + 2 +
               (size_t) msg->cert_count * BLY_CONS_CERT_ENTRY_SIZE;
        if (max < need)
            return 0;
        bly_cons_put_u64(out, msg->vote.height);
        bly_cons_put_u32(out + 8, (uint32_t) msg->vote.round);
        bly_cons_put_u32(out + 12, msg->block_size);
        memcpy(out + 16, msg->block, msg->block_size);
        bly_cons_put_u16(out + 16 + msg->block_size, msg->cert_count);
        memcpy(out + 18 + msg->block_size, msg->cert,
               (size_t) msg->cert_count * BLY_CONS_CERT_ENTRY_SIZE);
        return need;
    case BLY_CONS_EVIDENCE:
        if (max < 2 * BLY_CONS_VOTE_SIZE)
            return 0;
        bly_cons_vote_put(&msg->ev[0], out);
        bly_cons_vote_put(&msg->ev[1], out + BLY_CONS_VOTE_SIZE);
        return 2 * BLY_CONS_VOTE_SIZE;
    case BLY_CONS_SYNC_REQ:
        if (max < 8)
            return 0;
        bly_cons_put_u64(out, msg->sync_height);
        return 8;
    default:
        bly_assert(!"unknown consensus message type");
        return 0;
    }
}

size_t
bly_cons_msg_encode(const bly_cons_msg_t *msg, uint8_t *out, size_t max)
{
    bly_assert(msg);
    bly_assert(out);
    if (max < 2)
        return 0;
    out[0] = BLY_CONS_WIRE_VERSION;
    out[1] = msg->type;
    size_t body = s_body_encode(msg, out + 2, max - 2);
    return body == 0 ? 0 : body + 2;
}

static int
s_decode_commit(bly_cons_msg_t *msg, const uint8_t *in, size_t size)
{
    if (size < 18)
        return -1;
    msg->vote.type = BLY_CONS_PRECOMMIT;
    msg->vote.height = bly_cons_get_u64(in);
    msg->vote.round = (int32_t) bly_cons_get_u32(in + 8);
    msg->vote.pol_round = -1;
    msg->block_size = bly_cons_get_u32(in + 12);
    if (msg->vote.height == 0 || msg->vote.round < 0 || msg->vote.round > BLY_CONS_ROUND_MAX)
        return -1;
    if (msg->block_size > BLY_CONS_BLOCK_SIZE_MAX || size < 18 + (size_t) msg->block_size)
        return -1;
    msg->block = in + 16;
    msg->cert_count = bly_cons_get_u16(in + 16 + msg->block_size);
    if (msg->cert_count == 0 || msg->cert_count > BLY_CONS_VALIDATORS_MAX)
        return -1;
    if (size != 18 + (size_t) msg->block_size + (size_t) msg->cert_count * BLY_CONS_CERT_ENTRY_SIZE)
        return -1;
    msg->cert = in + 18 + msg->block_size;
    msg->vote.has_id = true;
    bly_cons_block_id(msg->block, msg->block_size, msg->vote.id);
    return 0;
}

int
bly_cons_msg_decode(bly_cons_msg_t *msg, const uint8_t *in, size_t size)
{
    bly_assert(msg);
    bly_assert(in);
    memset(msg, 0, sizeof(*msg));
    if (size < 2 || in[0] != BLY_CONS_WIRE_VERSION)
        return -1;
    msg->type = in[1];
    in += 2;
    size -= 2;
    switch (msg->type) {
    case BLY_CONS_PREVOTE:
    case BLY_CONS_PRECOMMIT:
        if (size != BLY_CONS_VOTE_SIZE || bly_cons_vote_get(&msg->vote, in) != 0)
            return -1;
        return msg->vote.type == msg->type ? 0 : -1;
    case BLY_CONS_PROPOSAL:
        if (size < BLY_CONS_VOTE_SIZE + 4 || bly_cons_vote_get(&msg->vote, in) != 0)
            return -1;
        msg->block_size = bly_cons_get_u32(in + BLY_CONS_VOTE_SIZE);
        if (msg->vote.type != BLY_CONS_PROPOSAL || msg->block_size > BLY_CONS_BLOCK_SIZE_MAX)
            return -1;
        if (size != BLY_CONS_VOTE_SIZE + 4 + (size_t) msg->block_size)
            return -1;
        msg->block = in + BLY_CONS_VOTE_SIZE + 4;
        return 0;
    case BLY_CONS_COMMIT:
        return s_decode_commit(msg, in, size);
    case BLY_CONS_EVIDENCE:
        if (size != 2 * BLY_CONS_VOTE_SIZE)
            return -1;
        if (bly_cons_vote_get(&msg->ev[0], in) != 0 ||
            bly_cons_vote_get(&msg->ev[1], in + BLY_CONS_VOTE_SIZE) != 0)
            return -1;
        return 0;
    case BLY_CONS_SYNC_REQ:
        if (size != 8)
            return -1;
        msg->sync_height = bly_cons_get_u64(in);
        return msg->sync_height == 0 ? -1 : 0;
    default:
        return -1;
    }
}

size_t
bly_cons_block_encode(const bly_cons_block_t *hdr, uint8_t *out, size_t max)
{
    bly_assert(hdr);
    bly_assert(out);
    size_t ev_bytes = (size_t) hdr->evidence_count * 2 * BLY_CONS_VOTE_SIZE;
    size_t need = BLY_CONS_BLOCK_HEADER_SIZE + ev_bytes + 4 + hdr->payload_size;
    if (need > max || need > BLY_CONS_BLOCK_SIZE_MAX)
        return 0;
    out[0] = BLY_CONS_WIRE_VERSION;
    bly_cons_put_u64(out + 1, hdr->height);
    bly_cons_put_u64(out + 9, hdr->time_ms);
    memcpy(out + 17, hdr->prev_id, BLY_CONS_ID_SIZE);
    memcpy(out + 17 + BLY_CONS_ID_SIZE, hdr->app_hash, BLY_CONS_ID_SIZE);
    bly_cons_put_u16(out + 17 + 2 * BLY_CONS_ID_SIZE, hdr->evidence_count);
    size_t at = BLY_CONS_BLOCK_HEADER_SIZE;
    if (ev_bytes > 0)
        memcpy(out + at, hdr->evidence, ev_bytes);
    at += ev_bytes;
    bly_cons_put_u32(out + at, hdr->payload_size);
    at += 4;
    if (hdr->payload_size > 0)
        memcpy(out + at, hdr->payload, hdr->payload_size);
    return at + hdr->payload_size;
}

int
bly_cons_block_decode(bly_cons_block_t *hdr, const uint8_t *in, size_t size)
{
    bly_assert(hdr);
    bly_assert(in);
    memset(hdr, 0, sizeof(*hdr));
    if (size < BLY_CONS_BLOCK_HEADER_SIZE + 4 || size > BLY_CONS_BLOCK_SIZE_MAX)
        return -1;
    if (in[0] != BLY_CONS_WIRE_VERSION)
        return -1;
    hdr->height = bly_cons_get_u64(in + 1);
    hdr->time_ms = bly_cons_get_u64(in + 9);
    memcpy(hdr->prev_id, in + 17, BLY_CONS_ID_SIZE);
    memcpy(hdr->app_hash, in + 17 + BLY_CONS_ID_SIZE, BLY_CONS_ID_SIZE);
    hdr->evidence_count = bly_cons_get_u16(in + 17 + 2 * BLY_CONS_ID_SIZE);
    if (hdr->height == 0 || hdr->evidence_count > BLY_CONS_BLOCK_EVIDENCE_MAX)
        return -1;
    size_t ev_bytes = (size_t) hdr->evidence_count * 2 * BLY_CONS_VOTE_SIZE;
    if (size < BLY_CONS_BLOCK_HEADER_SIZE + ev_bytes + 4)
        return -1;
    hdr->evidence = in + BLY_CONS_BLOCK_HEADER_SIZE;
    hdr->payload_size = bly_cons_get_u32(in + BLY_CONS_BLOCK_HEADER_SIZE + ev_bytes);
    if (size != BLY_CONS_BLOCK_HEADER_SIZE + ev_bytes + 4 + (size_t) hdr->payload_size)
        return -1;
    hdr->payload = in + BLY_CONS_BLOCK_HEADER_SIZE + ev_bytes + 4;
    return 0;
}

void
bly_cons_block_id(const uint8_t *block, size_t size, uint8_t id[BLY_CONS_ID_SIZE])
{
    bly_assert(block);
    bly_assert(id);
    bly_sha256(id, block, size);
}
