/*  ledger_corpus - write the seed corpus of the ledger_tx fuzz target into DIR:
    valid signed transactions of every kind for the fuzz target's ledger (prefix byte
    0) and valid blocks at height 1 (prefix byte 1). Usage: ledger_corpus DIR */

#include "ledger_fixture.h"

#include <sys/stat.h>

static void
s_write(const char *dir, const char *name, uint8_t kind, const uint8_t *data, size_t size)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    bly_assert(f);
    bly_assert(fwrite(&kind, 1, 1, f) == 1);
    bly_assert(fwrite(data, 1, size, f) == size);
    fclose(f);
}

int
main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    mkdir(argv[1], 0755);
    fx_keys_t k;
    bly_ledger_genesis_t g;
    fx_keys(&k, 1);
    fx_genesis(&g, &k, 8, 2);
    bly_ledger_t *l = bly_ledger_new(&g);
    uint8_t *txs[4], *b;
    size_t sizes[4], bs, used;
    bly_assert(fx_transfer(&k, 1, 2, 5, 1, &txs[0], &sizes[0]) == 0);
    bly_assert(bly_ledger_make_stake(k.sk[2], FX_CHAIN, BLY_LEDGER_MSG_STAKE, 1, 1, 9, &txs[1],
                                     &sizes[1]) == 0);
    bly_assert(bly_ledger_make_stake(k.sk[1], FX_CHAIN, BLY_LEDGER_MSG_UNSTAKE, 2, 1, 9,
                                     &txs[2], &sizes[2]) == 0);
    bly_ledger_msg_t *m = bly_ledger_msg_new(BLY_LEDGER_MSG_RECEIPT);
    bly_ledger_node_key_t nk;
    memcpy(nk.key, k.pk[5], 32);
    bly_assert(bly_ledger_msg_set_request_id(m, k.pk[6], 32) == 0);
    bly_assert(bly_ledger_msg_set_router(m, k.pk[4], 32) == 0);
    bly_assert(bly_ledger_msg_shards_append(m, &nk) == 0);
    bly_ledger_msg_set_tokens(m, 100);
    bly_ledger_msg_set_price(m, 10);
    bly_assert(bly_ledger_make_tx(&m, k.sk[3], FX_CHAIN, 1, 1, &txs[3], &sizes[3]) == 0);
    const char *names[] = {"tx-transfer", "tx-stake", "tx-unstake", "tx-receipt"};
    for (int i = 0; i < 4; i++)
        s_write(argv[1], names[i], 0, txs[i], sizes[i]);
    bly_assert(bly_ledger_block_build(l, (const uint8_t *const *) txs, sizes, 4, 1000, k.pk[0],
                                      &b, &bs, &used) == 0);
    bly_assert(used == 4);
    s_write(argv[1], "block-4tx", 1, b, bs);
    free(b);
    bly_assert(bly_ledger_block_build(l, NULL, NULL, 0, 1000, k.pk[0], &b, &bs, &used) == 0);
    s_write(argv[1], "block-empty", 1, b, bs);
    free(b);
    for (int i = 0; i < 4; i++)
        free(txs[i]);
    bly_ledger_destroy(&l);
    return 0;
}
