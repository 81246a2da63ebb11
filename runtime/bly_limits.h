/*  =========================================================================
    bly_limits - every limit in Blyan, in one place

    Each limit says why it has its value and what memory it costs. Config may
    lower a limit, never raise it past the hard maximum here. Relations
    between limits are checked at compile time at the bottom of this file.
    ========================================================================= */

#ifndef BLY_LIMITS_H_INCLUDED
#define BLY_LIMITS_H_INCLUDED

/* ---- Actors ------------------------------------------------------------ */

/* Messages an actor handles per wake-up before it polls all its sockets
   again: keeps one busy socket from starving the pipe and the timers. */
#define BLY_ACTOR_BATCH_MAX 64

/* Actors one node may start (a manifest names at most this many). */
#define BLY_NODE_ACTORS_MAX 16

/* ---- Logging ----------------------------------------------------------- */

/* One log line, formatted; longer lines are truncated with "...". */
#define BLY_LOG_LINE_MAX 1024

/* Actor names in log prefixes and the role table. */
#define BLY_ACTOR_NAME_MAX 32

/* ---- Messages and sockets ---------------------------------------------- */

/* Largest frame any socket accepts (ZMQ_MAXMSGSIZE on tcp; checked again
   by codecs because inproc ignores it). 64 MiB holds a prefill of 2048
   positions of a 8192-wide f32 activation. */
#define BLY_FRAME_SIZE_MAX (64u * 1024u * 1024u)

/* Frames in one multipart message (routing id, empty, body). */
#define BLY_FRAME_COUNT_MAX 4

/* High-water marks: messages queued per socket per peer before sends
   block (then time out) and receives stop reading. */
#define BLY_SOCKET_HWM 1000

/* Send timeout on every socket: a handler never blocks longer. */
#define BLY_SOCKET_SNDTIMEO_MS 100

/* ---- Strings ------------------------------------------------------------ */

/* ZeroMQ endpoint such as tcp://127.0.0.1:5555 (with ipc paths). */
#define BLY_ENDPOINT_MAX 256

/* Filesystem paths in manifests and on the command line. */
#define BLY_PATH_MAX 1024

/* ---- Consensus (actors/consensus) --------------------------------------- */

/* Validators in one set. Votes are kept per validator per round slot:
   2 x 64 x 120 B = 15 KiB per slot. */
#define BLY_CONS_VALIDATORS_MAX 64

/* Largest block (header, evidence, payload). Each round slot holds one
   proposal buffer of this size and the core keeps BLY_CONS_ROUND_SLOTS of
   them plus two value copies: about 14 MiB per replica at the maximum. */
#define BLY_CONS_BLOCK_SIZE_MAX (1024u * 1024u)

/* Rounds of one height whose proposal and votes are kept at once (the
   current round, the locked and valid rounds, a few future rounds for the
   f+1 skip rule); the oldest unpinned slot is recycled. */
#define BLY_CONS_ROUND_SLOTS 12

/* Highest round number accepted; timeouts grow linearly with the round, so
   this is reached only after weeks without a decision. */
#define BLY_CONS_ROUND_MAX (1 << 20)

/* Evidence items in one block (each 2 votes, 234 bytes). */
#define BLY_CONS_BLOCK_EVIDENCE_MAX 16

/* Pending (detected, not yet committed) evidence items per replica. */
#define BLY_CONS_EVIDENCE_POOL_MAX 64

/* Committed evidence keys remembered to reject duplicates (24 B each). */
#define BLY_CONS_EVIDENCE_SEEN_MAX 4096

/* Effects one core call may return (votes, timers, WAL records, commit). */
#define BLY_CONS_EFFECTS_MAX 48

/* Committed blocks sent in answer to one sync request. */
#define BLY_CONS_SYNC_BATCH_MAX 4

/* Chain id string length. */
#define BLY_CONS_CHAIN_ID_MAX 64

/* Voting power of one validator; 64 x 2^48 fits an int64 sum with room. */
#define BLY_CONS_POWER_MAX (1ull << 48)

/* Mempool: transactions held per replica (32 B each in the transfer app)
   and pending transactions one sender may hold before eviction favours
   others. */
#define BLY_MEMPOOL_TX_MAX 8192
#define BLY_MEMPOOL_SENDER_TX_MAX 64

_Static_assert(BLY_CONS_SYNC_BATCH_MAX * 2u * BLY_CONS_BLOCK_SIZE_MAX <= BLY_FRAME_SIZE_MAX,
               "a sync answer fits one frame");
_Static_assert(BLY_CONS_BLOCK_EVIDENCE_MAX <= BLY_CONS_EVIDENCE_POOL_MAX,
               "a block never holds more evidence than the pool");

#endif
