/*  =========================================================================
    blyan bench - prefill and decode speed, peak memory, and the memory
    bandwidth bound measured in the same run

    Decoding one token reads every weight once plus the KV cache, so its
    speed is bounded by memory bandwidth: bound = read GB/s / bytes per
    token. The read bandwidth is measured here with a streaming read of a
    buffer far larger than the caches, on the same number of threads.
    ========================================================================= */

#include "bly_cli.h"
#include "bly_cli_backend.h"
#include "bly_cli_bench_batch.h"
#include "bly_kernels.h"
#include "bly_limits.h"
#include "bly_model.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_BW_BYTES (512u << 20)   //  Bandwidth buffer: far above any L3.
#define S_BW_PASSES 4   //  Bandwidth passes, each followed by a decode round.

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

//  Peak resident set (VmHWM) in bytes, 0 when unknown.
static uint64_t
s_peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    uint64_t kib = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %" SCNu64 " kB", &kib) == 1)
            break;
    fclose(f);
    return kib * 1024;
}

//  One streaming read over the buffer, split across the pool.
typedef struct {
    const uint64_t *data;    //  The buffer.
    size_t words;            //  Its length in u64.
    uint64_t sums[64];       //  Per-thread results (kept so the reads happen).
} s_bw_t;

#if defined(__x86_64__)
__attribute__((target("avx2")))
#endif
static void
s_bw_worker(void *arg, size_t index, size_t n_threads)
{
    s_bw_t *job = arg;
    size_t per = job->words / n_threads;
    const uint64_t *p = job->data + index * per;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= per; i += 4) {
        a ^= p[i];
        b ^= p[i + 1];
        c ^= p[i + 2];
        d ^= p[i + 3];
    }
    job->sums[index % 64] = a ^ b ^ c ^ d;
}

//  One timed streaming read of the buffer; bytes per second.
static double
s_bandwidth_pass(bly_pool_t *pool, s_bw_t *job)
{
    double t0 = s_now();
    bly_pool_run(pool, s_bw_worker, job);
    return (double) job->words * 8 / (s_now() - t0);
}

//  What one bench run measured.
typedef struct {
    double prefill_s;        //  Seconds for the prompt.
    double prefill_cpu_s;    //  CPU seconds (all threads) spent on the prompt.
    double decode_s;         //  Seconds for the generated tokens.
    double bandwidth;        //  Bytes per second, mean of the interleaved passes.
    uint64_t peak_rss;       //  Bytes, before the bandwidth buffer.
    uint64_t kv_read;        //  KV bytes read per decoded token, averaged.
    double decode_cpu_s;     //  CPU seconds (all threads) spent decoding.
    double bw_cpu_s;         //  CPU seconds spent in the bandwidth passes.
    double bw_s;             //  Wall seconds of the bandwidth passes.
    int32_t next;            //  Next decode token (-1: take the argmax of the logits).
    uint64_t device_ns;      //  Device time of the decode steps (Vulkan timestamps), or 0.
} s_result_t;

//  CPU seconds used by the process so far (user + system, all threads).
static double
s_cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

//  Decode n tokens from position pos, feeding back the argmax (taken on the device by the
//  Vulkan backend, as `blyan generate` does for greedy decoding); sums the device time.
static int
s_decode(bly_cli_backend_t *ctx, size_t n_vocab, float *logits, size_t pos, size_t n,
         s_result_t *r)
{
    for (size_t i = 0; i < n; i++) {
        int32_t next = r->next >= 0 ? r->next : (int32_t) bly_ref_argmax(logits, n_vocab);
        if (bly_cli_backend_greedy(ctx, &next, 1, pos + i, logits, &r->next) != 0)
            return -1;
        r->device_ns += bly_cli_backend_device_ns(ctx);
    }
    return 0;
}

//  Decode in S_BW_PASSES rounds, each after one bandwidth pass, so both see
//  the same machine load; the buffer is allocated after the peak RSS of
//  the model alone was read.
static int
s_decode_rounds(bly_cli_backend_t *ctx, bly_pool_t *pool, size_t n_vocab, float *logits,
                size_t pos, size_t n_gen, s_result_t *r)
{
    r->peak_rss = s_peak_rss();
    uint64_t *buf = malloc(S_BW_BYTES);
    if (!buf)
        return -1;
    for (size_t i = 0; i < S_BW_BYTES / 8; i++)
        buf[i] = i * 0x9e3779b97f4a7c15ull;
    s_bw_t job = {.data = buf, .words = S_BW_BYTES / 8};
    size_t done = 0;
    for (size_t round = 0; round < S_BW_PASSES; round++) {
        double c0 = s_cpu_seconds(), t0 = s_now();
        r->bandwidth += s_bandwidth_pass(pool, &job) / S_BW_PASSES;
        r->bw_cpu_s += s_cpu_seconds() - c0;
        r->bw_s += s_now() - t0;
        size_t n = (n_gen * (round + 1)) / S_BW_PASSES - done;
        c0 = s_cpu_seconds();
        t0 = s_now();
        if (s_decode(ctx, n_vocab, logits, pos + done, n, r) != 0) {
            free(buf);
            return -1;
        }
        r->decode_s += s_now() - t0;
        r->decode_cpu_s += s_cpu_seconds() - c0;
        done += n;
    }
    free(buf);
    return 0;
}

static int
s_run(bly_cli_backend_t *ctx, bly_pool_t *pool, const bly_model_hparams_t *hp, size_t n_prompt,
      size_t n_gen, s_result_t *r)
{
    int32_t *ids = calloc(n_prompt, sizeof(int32_t));
    float *logits = calloc(hp->n_vocab, sizeof(float));
    int rc = -1;
    if (!ids || !logits)
        goto out;
    uint64_t x = 12345;
    for (size_t i = 0; i < n_prompt; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t) ((x >> 33) % hp->n_vocab);
    }
    //  Warm-up: fault the mapped weights in and start the threads.
    if (bly_cli_backend_eval(ctx, ids, n_prompt < 8 ? n_prompt : 8, 0, logits) != 0)
        goto out;
    double c0 = s_cpu_seconds(), t0 = s_now();
    if (bly_cli_backend_eval(ctx, ids, n_prompt, 0, logits) != 0)
        goto out;
    r->prefill_s = s_now() - t0;
    r->prefill_cpu_s = s_cpu_seconds() - c0;
    if (s_decode_rounds(ctx, pool, hp->n_vocab, logits, n_prompt, n_gen, r) != 0)
        goto out;
    r->kv_read = 2ull * hp->n_layer * hp->n_kv_head * hp->head_dim * sizeof(float)
                 * (n_prompt + (n_gen + 1) / 2);
    rc = 0;
out:
    free(logits);
    free(ids);
    return rc;
}

static void
s_report(const char *model_path, const char *backend, const bly_model_hparams_t *hp,
         size_t threads, size_t n_prompt, size_t n_gen, uint64_t kv_bytes, const s_result_t *r,
         bool json)
{
    double prefill = n_prompt / r->prefill_s, decode = n_gen / r->decode_s;
    double per_token = (double) hp->weight_bytes + (double) r->kv_read;
    double bound = r->bandwidth / per_token;
    //  Share of `threads` cores the process got: below 1 on a busy machine.
    double decode_share = r->decode_cpu_s / (r->decode_s * threads);
    double bw_share = r->bw_cpu_s / (r->bw_s * threads);
    //  Prefill is compute-bound: tokens per CPU second times the threads is
    //  what it would do with the cores to itself (the figure that compares
    //  across loads; SMT neighbours and frequency still move it).
    double prefill_share = r->prefill_cpu_s / (r->prefill_s * threads);
    double prefill_full = n_prompt / r->prefill_cpu_s * threads;
    if (json) {
        printf("{\"model\":\"%s\",\"backend\":\"%s\",\"threads\":%zu,\"isa\":\"%s\",\"prompt_tokens\":%zu,"
               "\"gen_tokens\":%zu,\"prefill_tok_s\":%.2f,\"prefill_cpu_share\":%.3f,"
               "\"prefill_tok_s_full_cores\":%.2f,\"decode_tok_s\":%.2f,"
               "\"read_gb_s\":%.3f,\"bytes_per_token\":%.0f,\"decode_bound_tok_s\":%.2f,"
               "\"decode_vs_bound\":%.3f,\"decode_vs_bound_per_cpu\":%.3f,"
               "\"decode_cpu_share\":%.3f,\"bandwidth_cpu_share\":%.3f,"
               "\"decode_device_us_per_token\":%.2f,\"peak_rss_bytes\":%" PRIu64
               ",\"weight_bytes\":%" PRIu64 ",\"kv_bytes\":%" PRIu64 "}\n",
               model_path, backend, threads, bly_kern_isa_name(bly_kern_isa()), n_prompt, n_gen,
               prefill, prefill_share, prefill_full, decode, r->bandwidth / 1e9, per_token, bound, decode / bound,
               decode / bound * bw_share / decode_share, decode_share, bw_share,
               (double) r->device_ns / 1e3 / (double) n_gen, r->peak_rss,
               hp->weight_bytes, kv_bytes);
        return;
    }
    printf("model       %s (%" PRIu32 " layers, n_embd %" PRIu32 ", %s)\n", model_path,
           hp->n_layer, hp->n_embd, bly_kern_isa_name(bly_kern_isa()));
    printf("backend     %s\n", backend);
    printf("threads     %zu\n", threads);
    printf("prefill     %zu tokens: %.2f tok/s (cpu share %.0f%% of %zu cores; %.2f tok/s per "
           "%zu full cores)\n",
           n_prompt, prefill, 100 * prefill_share, threads, prefill_full, threads);
    printf("decode      %zu tokens: %.2f tok/s\n", n_gen, decode);
    if (r->device_ns)
        printf("device      %.1f us per decoded token busy (%.0f%% of the wall time; the rest "
               "is recording, submission and waiting)\n",
               (double) r->device_ns / 1e3 / (double) n_gen,
               100.0 * (double) r->device_ns / 1e9 / r->decode_s);
    printf("bandwidth   %.2f GB/s read (mean of %d %u MiB streaming passes between decode "
           "rounds)\n",
           r->bandwidth / 1e9, S_BW_PASSES, S_BW_BYTES >> 20);
    printf("per token   %.1f MB (weights %.1f MB + KV %.2f MB)\n", per_token / 1e6,
           hp->weight_bytes / 1e6, r->kv_read / 1e6);
    printf("bound       %.2f tok/s decode; measured/bound = %.3f\n", bound, decode / bound);
    printf("cpu share   %.0f%% of %zu cores while decoding, %.0f%% while reading; "
           "measured/bound per CPU second = %.3f\n",
           100 * decode_share, threads, 100 * bw_share, decode / bound * bw_share / decode_share);
    printf("peak RSS    %.1f MiB (weights mapped %.1f MiB + KV cache %.1f MiB)\n",
           r->peak_rss / 1048576.0, hp->weight_bytes / 1048576.0, kv_bytes / 1048576.0);
}

int
bly_cli_bench(int argc, char **argv)
{
    static const char *const known[] = {"--model=", "--threads=", "--backend=",
                                        "--prompt-tokens=", "--gen-tokens=", "--sessions=",
                                        "--json", NULL};
    if (bly_cli_check_options(argc, argv, known) != 0)
        return 2;
    const char *model_path = bly_cli_opt(argc, argv, "--model");
    const char *backend = bly_cli_opt(argc, argv, "--backend");
    long threads = 2, n_prompt = 128, n_gen = 32, sessions = 0;
    if (!model_path || !bly_cli_backend_valid(backend)
        || (bly_cli_opt(argc, argv, "--threads")
            && bly_cli_parse_long(bly_cli_opt(argc, argv, "--threads"), 1, BLY_THREADS_MAX,
                                  &threads) != 0)
        || (bly_cli_opt(argc, argv, "--prompt-tokens")
            && bly_cli_parse_long(bly_cli_opt(argc, argv, "--prompt-tokens"), 1, 4096,
                                  &n_prompt) != 0)
        || (bly_cli_opt(argc, argv, "--gen-tokens")
            && bly_cli_parse_long(bly_cli_opt(argc, argv, "--gen-tokens"), 1, 4096, &n_gen)
                   != 0)
        || (bly_cli_opt(argc, argv, "--sessions")
            && (bly_cli_parse_long(bly_cli_opt(argc, argv, "--sessions"), 1, 64, &sessions)
                    != 0
                || (backend && strcmp(backend, "cpu") != 0)))) {
        fprintf(stderr, "usage: blyan bench --model M [--threads N] [--backend cpu|vulkan[:N]] "
                        "[--prompt-tokens 128] [--gen-tokens 32] [--sessions N (cpu, 1..64)] [--json]\n");
        return 2;
    }
    char error[256];
    bly_model_t *model = bly_model_load(model_path, error, sizeof(error));
    if (!model) {
        fprintf(stderr, "blyan bench: %s\n", error);
        return 1;
    }
    if (sessions > 0) {
        int src = bly_cli_bench_sessions(model, (size_t) sessions, (size_t) threads,
                                         (size_t) n_gen, bly_cli_flag(argc, argv, "--json"));
        bly_model_destroy(&model);
        return src;
    }
    const bly_model_hparams_t *hp = bly_model_hparams(model);
    size_t n_ctx = (size_t) (n_prompt + n_gen);
    size_t n_batch = n_prompt < BLY_MODEL_BATCH_MAX ? (size_t) n_prompt : BLY_MODEL_BATCH_MAX;
    bly_cli_backend_t *ctx = bly_cli_backend_new(backend, model, n_ctx, n_batch,
                                                 (size_t) threads, error, sizeof(error));
    bly_pool_t *pool = bly_pool_new((size_t) threads);
    s_result_t r = {.next = -1};
    int rc = 1;
    if (!ctx || !pool) {
        fprintf(stderr, "blyan bench: %s\n", ctx ? "cannot start threads" : error);
    } else if (s_run(ctx, pool, hp, (size_t) n_prompt, (size_t) n_gen, &r) == 0) {
        s_report(model_path, bly_cli_backend_name(ctx), hp, (size_t) threads, (size_t) n_prompt,
                 (size_t) n_gen, bly_cli_backend_kv_bytes(ctx), &r,
                 bly_cli_flag(argc, argv, "--json"));
        rc = 0;
    }
    bly_pool_destroy(&pool);
    bly_cli_backend_destroy(&ctx);
    bly_model_destroy(&model);
    return rc;
}
