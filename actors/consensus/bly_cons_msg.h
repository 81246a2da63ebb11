/*  =========================================================================
    bly_cons_msg - consensus messages, blocks and their canonical bytes

    Every consensus message has exactly one encoding: fixed-width
    little-endian fields in a fixed order, no optional parts, exact lengths.
    Decoders reject anything else (wrong version, unknown type, short or
    trailing bytes, out-of-range values), so the bytes a replica signs and
    hashes are the bytes every other replica sees. Signatures cover
    domain-separated sign bytes bound to the chain id, height, round and
    message type (see bly_cons_sign_bytes).

    Wire forms (after a version byte and a type byte):
      PREVOTE, PRECOMMIT  vote body
      PROPOSAL            vote body (pol_round set), u32 size, block
      COMMIT              u64 height, i32 round, u32 size, block,
                          u16 count, count x (u16 validator, 64 B signature)
      EVIDENCE            vote, vote (same signer, height, round, type)
      SYNC_REQ            u64 height (first height the sender lacks)
    ========================================================================= */

#ifndef BLY_CONS_MSG_H_INCLUDED
#define BLY_CONS_MSG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bly_limits.h"
#include "bly_log.h"

#define BLY_CONS_WIRE_VERSION 1
#define BLY_CONS_ID_SIZE 32
#define BLY_CONS_SIG_SIZE 64
#define BLY_CONS_PUBKEY_SIZE 32
#define BLY_CONS_SECKEY_SIZE 64

typedef enum {
    BLY_CONS_PROPOSAL = 1,
    BLY_CONS_PREVOTE = 2,
    BLY_CONS_PRECOMMIT = 3,
    BLY_CONS_COMMIT = 4,
    BLY_CONS_EVIDENCE = 5,
    BLY_CONS_SYNC_REQ = 6,
} bly_cons_type_t;

//  A signed vote or proposal header. Plain data.
typedef struct {
    uint8_t type;         //  PROPOSAL, PREVOTE or PRECOMMIT.
    uint64_t height;      //  Height, from 1.
    int32_t round;        //  Round, from 0.
    int32_t pol_round;    //  Proposals: the paper's validRound (-1 for none); votes: -1.
    uint16_t validator;   //  Signer's index in the validator set.
    bool has_id;          //  False for a nil vote.
    uint8_t id[BLY_CONS_ID_SIZE];    //  Block id (SHA-256 of the block) when has_id.
    uint8_t sig[BLY_CONS_SIG_SIZE];  //  Ed25519 over bly_cons_sign_bytes.
} bly_cons_vote_t;

//  Encoded vote size (type, height, round, pol_round, validator, has_id, id, sig).
#define BLY_CONS_VOTE_SIZE (1 + 8 + 4 + 4 + 2 + 1 + BLY_CONS_ID_SIZE + BLY_CONS_SIG_SIZE)
//  One entry of a commit certificate: validator index and signature.
#define BLY_CONS_CERT_ENTRY_SIZE (2 + BLY_CONS_SIG_SIZE)
//  Block header: version, height, time, previous id, app hash, evidence count.
#define BLY_CONS_BLOCK_HEADER_SIZE (1 + 8 + 8 + 2 * BLY_CONS_ID_SIZE + 2)
//  Largest encoded message: a commit with a full block and a full certificate.
#define BLY_CONS_MSG_SIZE_MAX                                                                      \
    (2 + 8 + 4 + 4 + BLY_CONS_BLOCK_SIZE_MAX + 2 +                                                 \
     BLY_CONS_VALIDATORS_MAX * BLY_CONS_CERT_ENTRY_SIZE)

//  A decoded message. Byte pointers borrow the input buffer.
typedef struct {
    uint8_t type;                 //  bly_cons_type_t.
    bly_cons_vote_t vote;         //  PROPOSAL header or vote; COMMIT: height/round/id.
    const uint8_t *block;         //  PROPOSAL, COMMIT: block bytes.
    uint32_t block_size;          //  Their size.
    bly_cons_vote_t ev[2];        //  EVIDENCE: the two conflicting votes.
    const uint8_t *cert;          //  COMMIT: cert_count entries of CERT_ENTRY_SIZE.
    uint16_t cert_count;          //  Entries in cert.
    uint64_t sync_height;         //  SYNC_REQ: first height wanted.
} bly_cons_msg_t;

//  A decoded block header. Evidence and payload borrow the block bytes.
typedef struct {
    uint64_t height;                     //  Height of this block.
    uint64_t time_ms;                    //  Proposer's clock (informational).
    uint8_t prev_id[BLY_CONS_ID_SIZE];   //  Id of the block at height - 1 (zeros at 1).
    uint8_t app_hash[BLY_CONS_ID_SIZE];  //  App hash after block height - 1.
    uint16_t evidence_count;             //  Evidence items (2 votes each).
    const uint8_t *evidence;             //  evidence_count x 2 x VOTE_SIZE bytes.
    const uint8_t *payload;              //  Application payload (transactions).
    uint32_t payload_size;               //  Its size.
} bly_cons_block_t;

//  Sign bytes of a vote or proposal: a domain tag, the chain id, and every
//  field but the signature. Writes at most BLY_CONS_SIGN_BYTES_MAX bytes to
//  `out`; returns the size.
#define BLY_CONS_SIGN_BYTES_MAX (16 + 1 + BLY_CONS_CHAIN_ID_MAX + BLY_CONS_VOTE_SIZE)
size_t bly_cons_sign_bytes(const char *chain_id, const bly_cons_vote_t *vote, uint8_t *out);

//  Sign `vote` in place with a libsodium Ed25519 secret key.
void bly_cons_vote_sign(bly_cons_vote_t *vote, const char *chain_id,
                        const uint8_t seckey[BLY_CONS_SECKEY_SIZE]);

//  True when the signature verifies against `pubkey`.
bool bly_cons_vote_verify(const bly_cons_vote_t *vote, const char *chain_id,
                          const uint8_t pubkey[BLY_CONS_PUBKEY_SIZE]);

//  A cache of signatures already verified, to skip repeat checks of the
//  same vote (replicas in one simulator, gossip repeats). Not thread-safe:
//  one per thread. Holds `BLY_CONS_SIGCACHE_SIZE` digests of (key, sign
//  bytes, signature); only successful checks are cached.
typedef struct _bly_cons_sigcache_t bly_cons_sigcache_t;
#define BLY_CONS_SIGCACHE_SIZE 8192
bly_cons_sigcache_t *bly_cons_sigcache_new(void);
void bly_cons_sigcache_destroy(bly_cons_sigcache_t **self_p);

//  bly_cons_vote_verify through `cache` (may be NULL).
bool bly_cons_vote_verify_cached(bly_cons_sigcache_t *cache, const bly_cons_vote_t *vote,
                                 const char *chain_id, const uint8_t pubkey[BLY_CONS_PUBKEY_SIZE]);

//  Encode/decode one vote body (BLY_CONS_VOTE_SIZE bytes).
void bly_cons_vote_put(const bly_cons_vote_t *vote, uint8_t *out);
BLY_MUST_USE int bly_cons_vote_get(bly_cons_vote_t *vote, const uint8_t *in);

//  Encode a message into `out` (capacity `max`). Returns the size, or 0
//  when it does not fit.
size_t bly_cons_msg_encode(const bly_cons_msg_t *msg, uint8_t *out, size_t max);

//  Decode a message. Returns 0, or -1 for anything not canonical. Pointers
//  in `msg` borrow `in`.
BLY_MUST_USE int bly_cons_msg_decode(bly_cons_msg_t *msg, const uint8_t *in, size_t size);

//  Encode a block: header fields from `hdr` (its pointers give the evidence
//  and payload). Returns the size, or 0 when it exceeds `max`.
size_t bly_cons_block_encode(const bly_cons_block_t *hdr, uint8_t *out, size_t max);

//  Decode a block strictly. Returns 0 or -1.
BLY_MUST_USE int bly_cons_block_decode(bly_cons_block_t *hdr, const uint8_t *in, size_t size);

//  Block id: SHA-256 of the block bytes.
void bly_cons_block_id(const uint8_t *block, size_t size, uint8_t id[BLY_CONS_ID_SIZE]);

//  Little-endian helpers shared by the consensus files.
void bly_cons_put_u64(uint8_t *out, uint64_t value);
uint64_t bly_cons_get_u64(const uint8_t *in);
void bly_cons_put_u32(uint8_t *out, uint32_t value);
uint32_t bly_cons_get_u32(const uint8_t *in);
void bly_cons_put_u16(uint8_t *out, uint16_t value);
uint16_t bly_cons_get_u16(const uint8_t *in);

#endif
