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

/* ---- Codecs ------------------------------------------------------------ */

/* Nesting of MessagePack arrays a schema may use: the message, a list of
   structs, a struct, an array inside the struct. Codecs read schema-shaped
   input only, so deeper input is refused at the first wrong type. The
   generator allows no list inside a struct, and each generated codec
   static-asserts its depth against this. Costs nothing at run time: the
   reader does not recurse on input, only along the schema. */
#define BLY_CODEC_DEPTH_MAX 4

/* Largest generated plain struct (a list element with fixed-size arrays).
   A decoded list allocates count x this, with count capped by the schema's
   max_count: 256 bootstrap peers of about 3 KiB each are 0.8 MiB. */
#define BLY_CODEC_STRUCT_SIZE_MAX (64u * 1024u)

/* ---- Strings ------------------------------------------------------------ */

/* ZeroMQ endpoint such as tcp://127.0.0.1:5555 (with ipc paths). */
#define BLY_ENDPOINT_MAX 256

/* Filesystem paths in manifests and on the command line. */
#define BLY_PATH_MAX 1024

_Static_assert(BLY_CODEC_STRUCT_SIZE_MAX < BLY_FRAME_SIZE_MAX, "a struct fits in a frame");

#endif
