/*  ledger_bench - signed transfers validated and applied per second, and the LMDB
    commit cost per block, with a baseline measured in the same run (raw Ed25519
    verifications per second) so the numbers compare across machine moods.
    Usage: ledger_bench [BLOCKS] [TXS_PER_BLOCK]   (defaults 10 x 1000) */

#include "bly_ledger_store.h"
#include "ledger_fixture.h"

#include <time.h>
#include <unistd.h>

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

//  Pre-signed transfers for `blocks` blocks (senders round-robin over 64 keys).
static uint8_t **
s_sign_all(fx_keys_t *k, int total, size_t *sizes)
{
    uint8_t **txs = calloc((size_t) total, sizeof(*txs));
    bly_assert(txs);
    for (int i = 0; i < total; i++)
        bly_assert(fx_transfer(k, i % FX_KEYS, (i + 1) % FX_KEYS, 3, 1, &txs[i], &sizes[i]) == 0);
    return txs;
}

static double
s_baseline(const uint8_t *tx, size_t size, const uint8_t sk[64], const uint8_t pk[32], int n)
{
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, tx, size, sk);
    double t0 = s_now();
    for (int i = 0; i < n; i++)
        bly_assert(crypto_sign_verify_detached(sig, tx, size, pk) == 0);
    return n / (s_now() - t0);
}

//  LMDB: durable commit of the blocks, timed around the write alone. Seconds in all.
static double
s_bench_store(const bly_ledger_genesis_t *g, uint8_t **bl, const size_t *bls, int blocks)
{
    char err[256];
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/bly_ledger_bench_XXXXXX");
    bly_assert(mkdtemp(dir));
    bly_ledger_t *sl = NULL;
    bly_ledger_store_t *st = bly_ledger_store_open(dir, g, 0, &sl, err, sizeof(err));
    bly_assert(st);
    double write_s = 0;
    for (int b = 0; b < blocks; b++) {
        bly_assert(bly_ledger_block_begin(sl, bl[b], bls[b], err, sizeof(err)) == 0);
        double w0 = s_now();
        bly_assert(bly_ledger_store_write(st, sl, bl[b], bls[b], err, sizeof(err)) == 0);
        write_s += s_now() - w0;
        bly_ledger_block_commit(sl);
    }
    bly_ledger_store_destroy(&st);
    char path[128];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
    bly_ledger_destroy(&sl);
    return write_s;
}

int
main(int argc, char **argv)
{
    int blocks = argc > 1 ? atoi(argv[1]) : 10;
    int per = argc > 2 ? atoi(argv[2]) : 1000;
    if (blocks < 1 || per < 1 || per > BLY_LEDGER_BLOCK_TXS_MAX)
        return 2;
    fx_keys_t k;
    bly_ledger_genesis_t g;
    fx_keys(&k, 1);
    fx_genesis(&g, &k, FX_KEYS, 4);
    size_t *sizes = calloc((size_t) blocks * (size_t) per, sizeof(*sizes));
    uint8_t **txs = s_sign_all(&k, blocks * per, sizes);
    double verify = s_baseline(txs[0], sizes[0], k.sk[0], k.pk[0], 20000);
    //  Build the blocks on one ledger, apply them on a fresh one (timed).
    bly_ledger_t *builder = bly_ledger_new(&g), *l = bly_ledger_new(&g);
    uint8_t **bl = calloc((size_t) blocks, sizeof(*bl));
    size_t *bls = calloc((size_t) blocks, sizeof(*bls));
    char err[256];
    for (int b = 0; b < blocks; b++) {
        size_t used;
        bly_assert(bly_ledger_block_build(builder, (const uint8_t *const *) txs + b * per,
                                          sizes + b * per, (size_t) per, 1000u * (unsigned) (b + 1),
                                          k.pk[0], &bl[b], &bls[b], &used) == 0);
        bly_assert(used == (size_t) per);
        bly_assert(bly_ledger_block_apply(builder, bl[b], bls[b], err, sizeof(err)) == 0);
    }
    double t0 = s_now();
    for (int b = 0; b < blocks; b++)
        bly_assert(bly_ledger_block_apply(l, bl[b], bls[b], err, sizeof(err)) == 0);
    double apply = (double) blocks * per / (s_now() - t0);
    //  The CPU's speed here changes from minute to minute: take the baseline on both
    //  sides of the measurement and use their mean.
    double verify2 = s_baseline(txs[0], sizes[0], k.sk[0], k.pk[0], 20000);
    verify = (verify + verify2) / 2;
    double write_s = s_bench_store(&g, bl, bls, blocks);
    printf("raw Ed25519 verify (baseline):        %.0f /s (mean of before %.0f and after %.0f)\n",
           verify, 2 * verify - verify2, verify2);
    printf("signed transfers validated+applied:   %.0f tx/s (%d blocks x %d, in memory)\n", apply,
           blocks, per);
    printf("ratio applied / raw verify:           %.2f\n", apply / verify);
    printf("LMDB durable commit per block:        %.2f ms (%d txs per block)\n",
           write_s * 1000 / blocks, per);
    for (int b = 0; b < blocks; b++)
        free(bl[b]);
    for (int i = 0; i < blocks * per; i++)
        free(txs[i]);
    free(bl);
    free(bls);
    free(txs);
    free(sizes);
    bly_ledger_destroy(&l);
    bly_ledger_destroy(&builder);
    return 0;
}
