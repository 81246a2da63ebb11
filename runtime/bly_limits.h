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
/* ---- Model files (GGUF) ------------------------------------------------ */

/* Tensors in one GGUF file. Qwen3-8B has 399, a 64-layer model with
   separate experts a few thousand; each costs ~100 bytes of index. */
#define BLY_GGUF_TENSORS_MAX 65536

/* Metadata key/value pairs in one file (real models carry 20..60). Each
   costs ~64 bytes of index. */
#define BLY_GGUF_KV_MAX 4096

/* Key and tensor names, bytes (ggml itself caps tensor names at 63). */
#define BLY_GGUF_NAME_MAX 256

/* One metadata string, bytes (chat templates run to ~10 KiB; tokens are
   short). Strings stay in the map; this only bounds what we trust. */
#define BLY_GGUF_STRING_MAX (1u << 20)

/* Elements in one metadata array: Qwen3's vocabulary is 151,936 tokens and
   151,387 merges; string arrays cost 8 bytes of offset index per element. */
#define BLY_GGUF_ARRAY_MAX (1u << 24)

/* Nesting of arrays inside arrays (the format allows it; no model uses it). */
#define BLY_GGUF_ARRAY_DEPTH_MAX 4

/* Largest value of one tensor dimension (2^40 elements: far past any model). */
#define BLY_GGUF_DIM_VALUE_MAX (1ull << 40)

/* general.alignment: a power of two up to this many bytes (default 32). */
#define BLY_GGUF_ALIGNMENT_MAX 65536u

/* ---- Tokenizer ---------------------------------------------------------- */

/* Vocabulary entries (Qwen3 151,936; the largest common vocabularies are
   262,144). Costs ~40 bytes per token plus its text, twice (raw, decoded). */
#define BLY_TOKENIZER_VOCAB_MAX (1u << 20)

/* BPE merges (Qwen3 151,387). Costs 16 bytes per merge in the pair table. */
#define BLY_TOKENIZER_MERGES_MAX (1u << 21)

/* Bytes of one token's text (Qwen3's longest is 256). */
#define BLY_TOKEN_TEXT_MAX 1024

/* Bytes of text one encode call accepts (a 32k-token context is ~130 KiB).
   Work buffers grow with the longest pre-tokenizer piece, up to ~40 bytes
   per input byte, so 1 MiB of one letter costs ~40 MiB while encoding. */
#define BLY_TOKENIZER_TEXT_MAX (1u << 20)

/* Messages in one chat prompt rendered by the ChatML template. */
#define BLY_CHAT_MESSAGES_MAX 256

/* ---- Model shapes written by blyan mkmodel ------------------------------ */

/* Largest shapes mkmodel writes: past Qwen3-235B's widths, so any real
   shape fits; a row buffer of BLY_MKMODEL_WIDTH_MAX floats is 1 MiB. */
#define BLY_MKMODEL_LAYERS_MAX 256
#define BLY_MKMODEL_WIDTH_MAX (1u << 18)
#define BLY_MKMODEL_HEADS_MAX 1024
#define BLY_MKMODEL_HEAD_DIM_MAX 1024

/* ---- Ledger ------------------------------------------------------------- */

/* Accounts in a genesis file: the genesis struct holds them inline (56 bytes
   each, 57 KiB in all). */
#define BLY_LEDGER_GENESIS_ACCOUNTS_MAX 1024

/* Genesis file size: 1024 account lines of about 120 bytes plus parameters. */
#define BLY_LEDGER_GENESIS_FILE_MAX (256u * 1024u)

/* Accounts in the state. Kept in a sorted array (56 bytes + a 32-byte cached leaf
   hash each: 88 MiB at the cap); an insertion moves the tail, so the cap also
   bounds the worst insertion. Past it, transfers to new keys are refused. */
#define BLY_LEDGER_ACCOUNTS_MAX (1u << 20)

/* Entries of the replay sets (paid request ids, attestations, claimed rewards,
   slash evidence, delta hashes, layer blocks): 40 bytes each in an open-addressed
   table at most half full: 320 MiB at the cap. Past it, such transactions are
   refused. */
#define BLY_LEDGER_SEEN_MAX (1u << 22)

/* PoL DAG nodes (a model of 1024 layers with about 3 deltas each); matches
   max_count of pol.nodes in schemas/ledger.xml. About 230 bytes each. */
#define BLY_LEDGER_POL_NODES_MAX 4096

/* Layers of a model in the PoL DAG. */
#define BLY_LEDGER_POL_LAYERS_MAX 1024

/* Encoded transaction; matches tx and tx_blob.data in schemas/ledger.xml. The
   largest real one is a layer block: a Qwen3 layer has 11 tensors of about 57
   encoded bytes each (name + hash), 0.9 KiB with the header; 2 KiB leaves room for
   longer names. */
#define BLY_LEDGER_TX_SIZE_MAX 2048
//  Transaction ids whose signature one ledger has verified (direct-mapped, power of two):
//  a consensus replica checks a transaction on submission, in valid(v), on commit and when
//  pruning its mempool; only the first check verifies. Costs 32 bytes per entry (128 KiB).
#define BLY_LEDGER_SIGCACHE_SIZE 4096

/* Transactions per block; matches max_count of block.txs in schemas/ledger.xml.
   A decoded block holds count x (2 KiB + 8) bytes: 4 MiB at the cap. */
#define BLY_LEDGER_BLOCK_TXS_MAX 2048

/* Encoded block: every transaction at its largest plus the header. */
#define BLY_LEDGER_BLOCK_BYTES_MAX (BLY_LEDGER_BLOCK_TXS_MAX * (BLY_LEDGER_TX_SIZE_MAX + 3) + 512)

/* Depth of an account Merkle path: 2^64 leaves would need 64. */
#define BLY_LEDGER_PROOF_DEPTH_MAX 64

/* LMDB: default map size (config may lower it; tests use a tiny one), named
   databases (meta, accounts, pol, seen, layers, blocks, heights, txs) and reader
   slots (the actor thread plus query threads; each slot is a lock-file entry). */
#define BLY_LEDGER_MAP_SIZE_DEFAULT (1024ull * 1024u * 1024u)
#define BLY_LEDGER_MAX_DBS 8
#define BLY_LEDGER_MAX_READERS 16

/* Transactions waiting in a solo-mode ledger actor's mempool (1 KiB each at most). */
#define BLY_LEDGER_MEMPOOL_MAX 8192

/* ---- Strings ------------------------------------------------------------ */

/* ZeroMQ endpoint such as tcp://127.0.0.1:5555 (with ipc paths). */
#define BLY_ENDPOINT_MAX 256

/* Filesystem paths in manifests and on the command line. */
#define BLY_PATH_MAX 1024

/* ---- Node runtime and mesh (runtime/net, actors/bootstrap, member) ------ */

/* Node and peer names (manifest `name`, registry entries). Short enough to
   print in a status table, long enough for host-derived names. */
#define BLY_NAME_MAX 64

/* Endpoints one node advertises (router, shard data ports, gateway...). */
#define BLY_ADVERT_ENDPOINTS_MAX 4

/* Roles one node advertises; one per actor it runs. */
#define BLY_ADVERT_ROLES_MAX 8

/* Model names and device descriptions in registrations. */
#define BLY_MODEL_NAME_MAX 64
#define BLY_DEVICE_DESC_MAX 128

/* Peers one bootstrap keeps. Each registry entry is a fixed-size peer record
   (about 3 KiB: 8 endpoints of 256 bytes dominate), allocated at start: 256
   peers cost about 800 KiB. One peers reply carries them all (the schema's
   peers max_count is 256, checked at compile time in the bootstrap core). */
#define BLY_PEERS_MAX 256

/* Keys on one ZAP allow list (32 bytes each: 1024 keys cost 32 KiB) and
   domains one ZAP handler knows. */
#define BLY_ZAP_KEYS_MAX 1024
#define BLY_ZAP_DOMAINS_MAX 8

/* ZAP domain names (RFC 27 allows 254 characters; ours are short). */
#define BLY_ZAP_DOMAIN_MAX 32

/* Manifests: a line longer than this is an error, so is a file with more
   lines or more keys in one section. A manifest is a few dozen lines. */
#define BLY_MANIFEST_LINE_MAX 512
#define BLY_MANIFEST_LINES_MAX 4096
#define BLY_MANIFEST_KEYS_MAX 32
#define BLY_MANIFEST_SIZE_MAX (256u * 1024u)

/* Signed mesh messages (register, heartbeat, leave) must carry a timestamp
   within this window of the receiver's clock; older ones are replays. */
#define BLY_MESH_TIMESTAMP_WINDOW_MS 60000

/* Heartbeat interval and expiry bounds a manifest may choose. */
#define BLY_HEARTBEAT_MS_MIN 50
#define BLY_HEARTBEAT_MS_MAX 600000
#define BLY_EXPIRY_MS_MIN 200
#define BLY_EXPIRY_MS_MAX 3600000

/* How long blyan-node waits for one actor to report ready or failed. */
#define BLY_ACTOR_START_TIMEOUT_MS 5000

/* Testnet: nodes one `blyan testnet init` writes. */
#define BLY_TESTNET_NODES_MAX 64
//  Consensus replicas `blyan testnet init --validators` writes: each manifest lists the
//  others' node ids on one line (65 bytes each) under BLY_MANIFEST_LINE_MAX.
#define BLY_TESTNET_VALIDATORS_MAX 7

_Static_assert(BLY_NAME_MAX <= BLY_ENDPOINT_MAX, "names fit where endpoints fit");
_Static_assert(BLY_NODE_ACTORS_MAX >= BLY_ADVERT_ROLES_MAX, "one role per actor");
_Static_assert(BLY_MANIFEST_LINE_MAX >= BLY_PATH_MAX / 2, "a manifest line holds a long path");
_Static_assert(BLY_CODEC_STRUCT_SIZE_MAX < BLY_FRAME_SIZE_MAX, "a struct fits in a frame");
/* ---- Model engine ------------------------------------------------------ */

/* Threads of one CPU kernel pool (the caller included). */
#define BLY_THREADS_MAX 64

/* Transformer blocks in one model (Qwen3 and Llama go to 94). */
#define BLY_MODEL_LAYERS_MAX 256

/* Model width, feed-forward width, heads, head size and vocabulary: sized
   for the largest Qwen3/Llama models; a file beyond them is refused before
   any buffer is sized from it. */
#define BLY_MODEL_EMBD_MAX 16384
#define BLY_MODEL_FF_MAX 65536
#define BLY_MODEL_HEADS_MAX 256
#define BLY_MODEL_HEAD_DIM_MAX 512
#define BLY_MODEL_VOCAB_MAX (1u << 20)

/* KV positions of one context. The cache costs 2 * layers * positions *
   kv_heads * head_dim * 4 bytes: 0.6B shape (28 layers, 8 x 128) = 224 KiB
   per position, 4096 positions = 896 MiB. */
#define BLY_MODEL_CTX_MAX 32768

/* Bytes of KV cache one context may allocate (the budget checked at init). */
#define BLY_MODEL_KV_BYTES_MAX (8ull << 30)

/* Tokens in one prefill batch: activation buffers are sized for it
   (0.6B shape: about 90 KiB per token, 512 tokens = 45 MiB). */
#define BLY_MODEL_BATCH_MAX 512

/* Sampling: stop strings per request and bytes per stop string. */
#define BLY_SAMPLER_STOPS_MAX 8
#define BLY_SAMPLER_STOP_LEN_MAX 64

/* Tokens one `blyan generate` may predict. */
#define BLY_GENERATE_PREDICT_MAX 8192

_Static_assert(BLY_MODEL_BATCH_MAX <= BLY_MODEL_CTX_MAX, "a batch fits in a context");

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

/* Descriptor sets kept across submissions (a decode step binds the same buffer ranges every
   token, so its sets are made once and reused: the CPU's recording cost per dispatch drops
   to a bind). The pool holds this many sets; when a submission could overflow it, it is
   reset and the cache emptied. Costs ~200 B of key per set on the host plus the driver's
   sets (<= BLY_VK_BINDINGS_MAX descriptors each). Must exceed BLY_VK_DISPATCH_MAX. */
#define BLY_VK_DSET_CACHE 6144

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
_Static_assert(BLY_LEDGER_BLOCK_BYTES_MAX < 8388608, "a block fits in block_reply.data");
_Static_assert(BLY_LEDGER_BLOCK_BYTES_MAX < BLY_FRAME_SIZE_MAX, "a block fits in a frame");
_Static_assert(BLY_LEDGER_GENESIS_ACCOUNTS_MAX <= BLY_LEDGER_ACCOUNTS_MAX, "genesis fits");
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

/* Voting power of one validator after stake is scaled to power
   (bly_cons_powers_scale: a power-of-two unit, rounded up, so that the
   largest stake maps to at most this). The weighted round robin walks up to
   total = 64 x 1024 = 65536 positions of 64 additions each (about 4 M, a
   few ms) when the powers change; otherwise one position per height. */
#define BLY_CONS_POWER_MAX 1024u

/* Mempool: transactions held per replica (32 B each in the transfer app)
   and pending transactions one sender may hold before eviction favours
   others. */
#define BLY_MEMPOOL_TX_MAX 8192
#define BLY_MEMPOOL_SENDER_TX_MAX 64

_Static_assert(BLY_CONS_SYNC_BATCH_MAX * 2u * BLY_CONS_BLOCK_SIZE_MAX <= BLY_FRAME_SIZE_MAX,
               "a sync answer fits one frame");
_Static_assert(BLY_CONS_BLOCK_EVIDENCE_MAX <= BLY_CONS_EVIDENCE_POOL_MAX,
               "a block never holds more evidence than the pool");
/* ---- Distributed inference (actors/router, actors/shard) ---------------- */

/* Session slots of one router (running plus queued). Each slot holds its
   token history (n_ctx x 4 bytes, 16 KiB at 4096) and a sampler (n_vocab x
   8 bytes, 1.2 MiB for Qwen3's vocabulary): 256 slots cost about 300 MiB,
   so routers configure fewer (default 64 + 64 queued). */
#define BLY_ROUTER_SESSIONS_MAX 256

/* Client-chosen request ids, bytes (the schema's request_id max). */
#define BLY_ROUTER_REQUEST_ID_MAX 64

/* Hops in one planned path (the schema's hops max_count). A path of 32
   shards of a 94-layer model is already 3 layers per shard. */
#define BLY_ROUTER_PATH_MAX 32

/* Shards a router plans over (one bootstrap peers reply). */
#define BLY_ROUTER_NODES_MAX BLY_PEERS_MAX

/* Tokens of one session's history (prompt + generated) a router keeps;
   a manifest's n_ctx may lower it. The schema's prompt_ids max is 4096. */
#define BLY_ROUTER_CTX_MAX 8192

/* Sessions (KV caches) one shard holds. Each costs its layers' KV cache:
   2 x layers x n_ctx x kv_heads x head_dim x 4 bytes (a 9-layer slice of
   the 0.6B shape at 1024 positions: 72 MiB); the manifest's kv_budget_mb
   bounds the sum. */
#define BLY_SHARD_SESSIONS_MAX 256

/* Audits one router runs at once. Each holds two logit vectors (the held
   step's and the first auditor's: 2 x n_vocab x 4 bytes, 1.2 MiB for
   Qwen3's vocabulary); an audit due while all are busy is skipped. */
#define BLY_ROUTER_AUDITS_MAX 8

/* Nodes a router remembers as suspect (caught disagreeing in an audit);
   when full, the oldest mark is forgotten. 32 bytes each. */
#define BLY_ROUTER_SUSPECTS_MAX 256

/* Next-hop sockets one shard keeps open (least recently used closes). */
#define BLY_SHARD_LINKS_MAX 16

/* Decode steps of different sessions a shard runs as one pass (their messages were queued
   together): weights are read once per pass, so on memory-bound hardware the pass costs
   little more than one step. Costs BLY_SHARD_BATCH_MAX x n_vocab floats of logits on a head
   shard (~9.7 MB for 16 at Qwen3's vocabulary) and as many queued messages. */
#define BLY_SHARD_BATCH_MAX 16

/* Expected tensor hashes in one shard manifest file (one per tensor). */
#define BLY_SHARD_HASHES_MAX BLY_GGUF_TENSORS_MAX

_Static_assert(BLY_ROUTER_PATH_MAX <= 32, "the inference schema carries 32 hops at most");
_Static_assert(BLY_ROUTER_REQUEST_ID_MAX == 64, "equals the inference schema's request_id max");
_Static_assert(BLY_MODEL_BATCH_MAX <= 512, "a step's tokens fit the schema's tokens max_count");


#endif
