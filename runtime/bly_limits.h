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

/* ---- Vulkan backend ----------------------------------------------------- */

/* Physical devices `blyan devices` lists and `vulkan:INDEX` can pick from; a machine with
   more GPUs than this is not a volunteer's. Costs one bly_vk_info_t (~400 B) each. */
#define BLY_VK_DEVICES_MAX 16

/* Storage buffers bound by one kernel (attention and quantized products use 4). */
#define BLY_VK_BINDINGS_MAX 8

/* Dispatches recorded into one submission (one step). A 64-layer model needs about 20 per
   layer plus a split head, ~1,400. Costs one descriptor set (<= BLY_VK_BINDINGS_MAX
   descriptors, ~64 B each on the driver side) per dispatch in a pool made at init. */
#define BLY_VK_DISPATCH_MAX 2048

/* Host-visible staging buffer for devices whose memory the CPU cannot map: uploads and
   readbacks go through it in pieces of this size. Costs this much host-visible memory. */
#define BLY_VK_STAGING_BYTES (16u * 1024u * 1024u)

/* Longest wait for one submission before the device is declared lost. lavapipe runs a
   prefill of a small model in well under a second; a real GPU is far faster. */
#define BLY_VK_FENCE_TIMEOUT_MS 120000u

/* Push-constant bytes a kernel may use: the Vulkan minimum every device guarantees. */
#define BLY_VK_PUSH_MAX 128

/* Rows of the rotary cos/sin table made on the host at model load (positions). Costs
   head_dim * 4 bytes per position: 2 MiB for head_dim 128 at 4,096 positions. */
#define BLY_VK_ROPE_POSITIONS_MAX 32768

#endif
