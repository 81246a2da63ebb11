/*  =========================================================================
    blyan generate - run a model on this machine and print what it writes

    Tokenizes the prompt (optionally as a ChatML user turn), prefills it in
    batches, then decodes one token at a time with the sampler until
    --n-predict tokens, an end-of-generation token (unless --ignore-eos) or
    a --stop string. With --json prints one object:
      {"prompt_ids":[...],"ids":[...],"text":"...",
       "top_logits":[[id,logit],...10 largest at the last prompt position],
       "timings":{...}}
    ========================================================================= */

#include "bly_cli.h"
#include "bly_cli_backend.h"
#include "bly_kernels.h"
#include "bly_limits.h"
#include "bly_model.h"
#include "bly_sampler.h"
#include "bly_tokenizer.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_TEXT_MAX (1u << 20)   //  Generated text kept for --json and stop strings.
#define S_TOP_N 10              //  top_logits entries.

//  Options of one run.
typedef struct {
    const char *model_path;          //  --model.
    const char *prompt;              //  --prompt.
    const char *stop;                //  --stop (one string).
    const char *backend;             //  --backend: cpu (default), vulkan, vulkan:N.
    long n_predict;                  //  --n-predict.
    long threads;                    //  --threads.
    bool special;                    //  --special: parse and print control tokens.
    bool chat;                       //  --chat: wrap the prompt as a ChatML user turn.
    bool ignore_eos;                 //  --ignore-eos.
    bool json;                       //  --json.
    bly_sampler_params_t sampling;   //  --temp, --top-k, ...
} s_options_t;

//  State of one run: everything allocated before the first token.
typedef struct {
    bly_model_t *model;          //  The model.
    bly_tokenizer_t *tok;        //  Its tokenizer.
    bly_cli_backend_t *ctx;      //  KV cache and buffers on the chosen backend.
    bly_sampler_t *sampler;      //  Sampling state.
    int32_t *prompt_ids;         //  Prompt tokens.
    size_t n_prompt;             //  Their count.
    int32_t *ids;                //  Generated tokens.
    size_t n_ids;                //  Their count.
    float *logits;               //  n_vocab.
    char *text;                  //  Generated text (S_TEXT_MAX).
    size_t text_len;             //  Its length.
    int32_t top_ids[S_TOP_N];    //  Largest logits at the last prompt position.
    float top_logits[S_TOP_N];   //  Their values.
    double prompt_s;             //  Prefill seconds.
    double predict_s;            //  Decode seconds.
} s_run_t;

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

int
bly_cli_parse_sampling(int argc, char **argv, bly_sampler_params_t *p)
{
    double v;
    long l;
    const char *o;
    bly_sampler_params_default(p);
    p->seed = (uint64_t) time(NULL);
    if ((o = bly_cli_opt(argc, argv, "--temp")) && bly_cli_parse_double(o, 0, 100, &v) != 0)
        return -1;
    p->temp = o ? (float) v : p->temp;
    if ((o = bly_cli_opt(argc, argv, "--top-k")) && bly_cli_parse_long(o, 0, 1 << 20, &l) != 0)
        return -1;
    p->top_k = o ? (uint32_t) l : p->top_k;
    if ((o = bly_cli_opt(argc, argv, "--top-p")) && bly_cli_parse_double(o, 0, 1, &v) != 0)
        return -1;
    p->top_p = o ? (float) v : p->top_p;
    if ((o = bly_cli_opt(argc, argv, "--min-p")) && bly_cli_parse_double(o, 0, 1, &v) != 0)
        return -1;
    p->min_p = o ? (float) v : p->min_p;
    if ((o = bly_cli_opt(argc, argv, "--repeat-penalty"))
        && bly_cli_parse_double(o, 0.01, 100, &v) != 0)
        return -1;
    p->repeat_penalty = o ? (float) v : p->repeat_penalty;
    if ((o = bly_cli_opt(argc, argv, "--seed")) && bly_cli_parse_long(o, 0, LONG_MAX, &l) != 0)
        return -1;
    p->seed = o ? (uint64_t) l : p->seed;
    return 0;
}

static int
s_parse(int argc, char **argv, s_options_t *opt)
{
    static const char *const known[] = {
        "--model=", "--prompt=", "--n-predict=", "--temp=", "--top-k=", "--top-p=", "--min-p=",
        "--repeat-penalty=", "--seed=", "--threads=", "--backend=", "--stop=", "--special",
        "--chat", "--ignore-eos", "--json", NULL};
    if (bly_cli_check_options(argc, argv, known) != 0)
        return -1;
    memset(opt, 0, sizeof(*opt));
    opt->model_path = bly_cli_opt(argc, argv, "--model");
    opt->prompt = bly_cli_opt(argc, argv, "--prompt");
    opt->stop = bly_cli_opt(argc, argv, "--stop");
    opt->special = bly_cli_flag(argc, argv, "--special");
    opt->chat = bly_cli_flag(argc, argv, "--chat");
    opt->ignore_eos = bly_cli_flag(argc, argv, "--ignore-eos");
    opt->json = bly_cli_flag(argc, argv, "--json");
    opt->n_predict = 128;
    opt->threads = 2;
    const char *o;
    opt->backend = bly_cli_opt(argc, argv, "--backend");
    if (!opt->model_path || !opt->prompt || !bly_cli_backend_valid(opt->backend))
        return -1;
    if ((o = bly_cli_opt(argc, argv, "--n-predict"))
        && bly_cli_parse_long(o, 0, BLY_GENERATE_PREDICT_MAX, &opt->n_predict) != 0)
        return -1;
    if ((o = bly_cli_opt(argc, argv, "--threads"))
        && bly_cli_parse_long(o, 1, BLY_THREADS_MAX, &opt->threads) != 0)
        return -1;
    if (opt->stop && strlen(opt->stop) > BLY_SAMPLER_STOP_LEN_MAX)
        return -1;
    return bly_cli_parse_sampling(argc, argv, &opt->sampling);
}

static void
s_run_destroy(s_run_t *run)
{
    bly_sampler_destroy(&run->sampler);
    bly_cli_backend_destroy(&run->ctx);
    bly_tokenizer_destroy(&run->tok);
    bly_model_destroy(&run->model);
    free(run->text);
    free(run->logits);
    free(run->ids);
    free(run->prompt_ids);
}

//  Prompt text -> ids (ChatML user turn with --chat).
static int
s_tokenize(const s_options_t *opt, s_run_t *run)
{
    const char *text = opt->prompt;
    size_t size = strlen(text), len = 0;
    char *chat = NULL;
    if (opt->chat) {
        bly_chat_message_t message = {"user", opt->prompt};
        size_t room = size + 128;
        chat = malloc(room);
        if (!chat || bly_chat_format_chatml(&message, 1, true, chat, room, &len) != 0) {
            free(chat);
            fprintf(stderr, "blyan generate: cannot format the chat prompt\n");
            return -1;
        }
        text = chat;
        size = len;
    }
    size_t ids_max = BLY_MODEL_CTX_MAX - (size_t) opt->n_predict;
    run->prompt_ids = calloc(ids_max, sizeof(int32_t));
    unsigned flags = BLY_TOKENIZE_ADD_SPECIAL | (opt->special || opt->chat ? BLY_TOKENIZE_SPECIAL
                                                                            : 0u);
    int rc = run->prompt_ids ? bly_tokenizer_encode(run->tok, text, size, flags,
                                                    run->prompt_ids, ids_max, &run->n_prompt)
                             : -3;
    free(chat);
    if (rc != 0 || run->n_prompt == 0) {
        fprintf(stderr, "blyan generate: the prompt %s\n",
                rc == 0 ? "is empty" : rc == -2 ? "does not fit the context" : "is too long");
        return -1;
    }
    return 0;
}

static int
s_prepare(const s_options_t *opt, s_run_t *run)
{
    char error[256];
    run->model = bly_model_load(opt->model_path, error, sizeof(error));
    if (!run->model || !(run->tok = bly_tokenizer_new_gguf(bly_model_gguf(run->model), error,
                                                           sizeof(error)))) {
        fprintf(stderr, "blyan generate: %s\n", error);
        return -1;
    }
    if (s_tokenize(opt, run) != 0)
        return -1;
    const bly_model_hparams_t *hp = bly_model_hparams(run->model);
    size_t n_ctx = run->n_prompt + (size_t) opt->n_predict;
    size_t n_batch = run->n_prompt < BLY_MODEL_BATCH_MAX ? run->n_prompt : BLY_MODEL_BATCH_MAX;
    run->ctx = bly_cli_backend_new(opt->backend, run->model, n_ctx, n_batch,
                                   (size_t) opt->threads, error, sizeof(error));
    if (!run->ctx) {
        fprintf(stderr, "blyan generate: %s\n", error);
        return -1;
    }
    run->sampler = bly_sampler_new(&opt->sampling, hp->n_vocab);
    run->ids = calloc((size_t) opt->n_predict + 1, sizeof(int32_t));
    run->logits = calloc(hp->n_vocab, sizeof(float));
    run->text = malloc(S_TEXT_MAX);
    if (!run->sampler || !run->ids || !run->logits || !run->text) {
        fprintf(stderr, "blyan generate: out of memory\n");
        return -1;
    }
    return 0;
}

//  The S_TOP_N largest logits, descending, lowest id first on ties.
static void
s_top_logits(s_run_t *run, size_t n_vocab)
{
    size_t n = 0;
    for (size_t i = 0; i < n_vocab; i++) {
        float v = run->logits[i];
        if (n == S_TOP_N && !(v > run->top_logits[n - 1]))
            continue;
        size_t j = n < S_TOP_N ? n++ : n - 1;
        while (j > 0 && v > run->top_logits[j - 1]) {
            run->top_logits[j] = run->top_logits[j - 1];
            run->top_ids[j] = run->top_ids[j - 1];
            j--;
        }
        run->top_logits[j] = v;
        run->top_ids[j] = (int32_t) i;
    }
}

//  Append a piece to the text; returns true when a stop string appeared
//  (the text is cut before it).
static bool
s_append(const s_options_t *opt, s_run_t *run, const char *piece, size_t size)
{
    if (size > S_TEXT_MAX - run->text_len)
        size = S_TEXT_MAX - run->text_len;
    memcpy(run->text + run->text_len, piece, size);
    run->text_len += size;
    if (!opt->stop)
        return false;
    const char *stops[1] = {opt->stop};
    int64_t at = bly_sampler_find_stop(run->text, run->text_len, stops, 1);
    if (at < 0)
        return false;
    run->text_len = (size_t) at;
    return true;
}

static int
s_generate(const s_options_t *opt, s_run_t *run)
{
    const bly_model_hparams_t *hp = bly_model_hparams(run->model);
    for (size_t i = 0; i < run->n_prompt; i++)
        bly_sampler_accept(run->sampler, run->prompt_ids[i]);
    double t0 = s_now();
    if (bly_cli_backend_eval(run->ctx, run->prompt_ids, run->n_prompt, 0, run->logits) != 0)
        return -1;
    run->prompt_s = s_now() - t0;
    s_top_logits(run, hp->n_vocab);
    t0 = s_now();
    for (long i = 0; i < opt->n_predict; i++) {
        int32_t id = bly_sampler_sample(run->sampler, run->logits);
        if (!opt->ignore_eos && bly_tokenizer_is_eog(run->tok, id))
            break;
        run->ids[run->n_ids++] = id;
        bly_sampler_accept(run->sampler, id);
        size_t size = 0;
        const char *piece = bly_tokenizer_piece(run->tok, id, opt->special, &size);
        bool stop = s_append(opt, run, piece ? piece : "", piece ? size : 0);
        if (!opt->json && piece && !stop) {
            fwrite(piece, 1, size, stdout);
            fflush(stdout);
        }
        if (stop || i + 1 == opt->n_predict)
            break;
        if (bly_cli_backend_eval(run->ctx, &id, 1, run->n_prompt + (size_t) i, run->logits)
            != 0)
            return -1;
    }
    run->predict_s = s_now() - t0;
    if (!opt->json)
        printf("\n");
    return 0;
}

static void
s_print_json(const s_options_t *opt, const s_run_t *run)
{
    printf("{\"prompt_ids\":[");
    for (size_t i = 0; i < run->n_prompt; i++)
        printf("%s%" PRId32, i ? "," : "", run->prompt_ids[i]);
    printf("],\"ids\":[");
    for (size_t i = 0; i < run->n_ids; i++)
        printf("%s%" PRId32, i ? "," : "", run->ids[i]);
    printf("],\"text\":");
    bly_cli_print_json_string(stdout, run->text, run->text_len);
    printf(",\"top_logits\":[");
    for (size_t i = 0; i < S_TOP_N; i++)
        printf("%s[%" PRId32 ",%.9g]", i ? "," : "", run->top_ids[i], (double) run->top_logits[i]);
    double pred = run->n_ids > 1 && run->predict_s > 0 ? (run->n_ids - 1) / run->predict_s : 0;
    printf("],\"timings\":{\"prompt_n\":%zu,\"prompt_ms\":%.3f,\"prompt_per_second\":%.2f,"
           "\"predicted_n\":%zu,\"predicted_ms\":%.3f,\"predicted_per_second\":%.2f,"
           "\"threads\":%ld,\"isa\":\"%s\",\"seed\":%" PRIu64 "}}\n",
           run->n_prompt, run->prompt_s * 1e3, run->n_prompt / run->prompt_s, run->n_ids,
           run->predict_s * 1e3, pred, opt->threads, bly_kern_isa_name(bly_kern_isa()),
           opt->sampling.seed);
}

int
bly_cli_generate(int argc, char **argv)
{
    s_options_t opt;
    if (s_parse(argc, argv, &opt) != 0) {
        fprintf(stderr,
                "usage: blyan generate --model M --prompt P [--n-predict N] [--temp T] "
                "[--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] "
                "[--threads N] [--backend cpu|vulkan[:N]] [--stop S] [--special] [--chat] "
                "[--ignore-eos] [--json]\n");
        return 2;
    }
    s_run_t run = {0};
    int rc = 1;
    if (s_prepare(&opt, &run) == 0 && s_generate(&opt, &run) == 0) {
        if (opt.json)
            s_print_json(&opt, &run);
        rc = 0;
    }
    s_run_destroy(&run);
    return rc;
}
