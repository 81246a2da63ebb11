/*  ledger_crash - kill -9 a process in the middle of block commits, again and again.

    Usage: ledger_crash [KILLS] [SEED]   (defaults: 100 kills, seed 1)

    Each round forks a child that opens the store in a fresh directory's LMDB
    environment and commits deterministic workload blocks as fast as it can,
    reporting each committed height on a pipe. The parent SIGKILLs it after a
    random 0-120 ms, reopens the store and checks that the state is exactly the
    one of the last committed block: its height is the last reported one or the
    one after (killed between the durable commit and the report), and its app
    hash, block hash and stored head block equal those of an in-memory
    reference ledger advanced through the same blocks. Nothing partial, nothing
    lost. Exit 0 when every round holds. */

#include "bly_ledger_store.h"
#include "ledger_fixture.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_FUNDED 16
#define S_PER_BLOCK 12
#define S_SEED 99

static fx_keys_t s_k;
static bly_ledger_genesis_t s_g;

static void
s_child(const char *dir, int fd)
{
    bly_ledger_t *l = NULL;
    char err[256];
    bly_ledger_store_t *st = bly_ledger_store_open(dir, &s_g, 0, &l, err, sizeof(err));
    if (!st) {
        fprintf(stderr, "child: %s\n", err);
        _exit(3);
    }
    for (int i = 0; i < 100000; i++) {
        uint8_t *b;
        size_t bs, used;
        if (fx_workload_block(l, &s_k, S_FUNDED, S_SEED, S_PER_BLOCK, &b, &bs, &used)
            || bly_ledger_store_apply(st, l, b, bs, err, sizeof(err))) {
            fprintf(stderr, "child: %s\n", err);
            _exit(4);
        }
        free(b);
        uint64_t h = bly_ledger_height(l);
        if (write(fd, &h, 8) != 8)
            _exit(5);
    }
    _exit(0);
}

//  Advance the reference to `height` through the same deterministic blocks.
static int
s_advance(bly_ledger_t *ref, uint64_t height)
{
    while (bly_ledger_height(ref) < height) {
        uint8_t *b;
        size_t bs, used;
        char err[256];
        if (fx_workload_block(ref, &s_k, S_FUNDED, S_SEED, S_PER_BLOCK, &b, &bs, &used)
            || bly_ledger_block_apply(ref, b, bs, err, sizeof(err))) {
            fprintf(stderr, "reference: %s\n", err);
            return -1;
        }
        free(b);
    }
    return 0;
}

//  Reopen and compare with the reference; `reported` is the last height the child said
//  it committed.
static int
s_check(const char *dir, bly_ledger_t *ref, uint64_t reported, uint64_t *height)
{
    bly_ledger_t *l = NULL;
    char err[256];
    bly_ledger_store_t *st = bly_ledger_store_open(dir, &s_g, 0, &l, err, sizeof(err));
    if (!st) {
        fprintf(stderr, "reopen: %s\n", err);
        return -1;
    }
    int rc = 0;
    *height = bly_ledger_height(l);
    if (*height < reported || *height > reported + 1) {
        fprintf(stderr, "height %llu after a report of %llu\n", (unsigned long long) *height,
                (unsigned long long) reported);
        rc = -1;
    }
    if (rc == 0 && bly_ledger_height(ref) > *height) {
        fprintf(stderr, "store went backwards\n");
        rc = -1;
    }
    if (rc == 0)
        rc = s_advance(ref, *height);
    uint8_t *b = NULL, hash[32];
    size_t bs;
    if (rc == 0 && (memcmp(bly_ledger_app_hash(l), bly_ledger_app_hash(ref), 32) != 0
                    || memcmp(bly_ledger_block_hash(l), bly_ledger_block_hash(ref), 32) != 0)) {
        fprintf(stderr, "state at height %llu differs from the reference\n",
                (unsigned long long) *height);
        rc = -1;
    }
    if (rc == 0 && *height > 0
        && (bly_ledger_store_block(st, *height, &b, &bs, hash)
            || memcmp(hash, bly_ledger_block_hash(ref), 32) != 0)) {
        fprintf(stderr, "head block %llu missing or different\n", (unsigned long long) *height);
        rc = -1;
    }
    free(b);
    bly_ledger_store_destroy(&st);
    bly_ledger_destroy(&l);
    return rc;
}

static int s_advanced;  //  Rounds in which the child committed at least one block.
static int s_unreported; //  Rounds killed between a durable commit and its report.

static int
s_round(const char *dir, bly_ledger_t *ref, uint64_t *rng, uint64_t *reported)
{
    uint64_t before = *reported;
    int fds[2];
    if (pipe(fds))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        s_child(dir, fds[1]);
    }
    close(fds[1]);
    usleep((useconds_t) (fx_rand(rng) % 120000));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    uint64_t h;
    while (read(fds[0], &h, 8) == 8)  //  Bounded: the child wrote finitely many.
        *reported = h;
    close(fds[0]);
    if (WIFEXITED(status)) {
        fprintf(stderr, "child exited with %d before the kill\n", WEXITSTATUS(status));
        return -1;
    }
    uint64_t height;
    if (s_check(dir, ref, *reported, &height))
        return -1;
    s_advanced += height > before;
    s_unreported += height == *reported + 1;
    *reported = height;
    return 0;
}

int
main(int argc, char **argv)
{
    int kills = argc > 1 ? atoi(argv[1]) : 100;
    uint64_t rng = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    if (kills < 1 || kills > 100000)
        return 2;
    fx_keys(&s_k, 1);
    fx_genesis(&s_g, &s_k, S_FUNDED, 4);
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/bly_ledger_crash_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    bly_ledger_t *ref = bly_ledger_new(&s_g);
    uint64_t reported = 0;
    int rc = 0;
    for (int i = 0; rc == 0 && i < kills; i++) {
        rc = s_round(dir, ref, &rng, &reported);
        if (rc)
            fprintf(stderr, "round %d failed (seed %s)\n", i, argc > 2 ? argv[2] : "1");
    }
    printf("ledger_crash: %d kills (%d after new commits, %d between a commit and its report), "
           "last committed height %llu, %s\n",
           kills, s_advanced, s_unreported, (unsigned long long) reported,
           rc ? "FAILED" : "state exact after every kill");
    bly_ledger_destroy(&ref);
    char path[128];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
    return rc ? 1 : 0;
}
