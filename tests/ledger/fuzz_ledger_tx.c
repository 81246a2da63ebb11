/*  fuzz_ledger_tx - transaction and block decoding and validation on hostile bytes.

    The first input byte picks the path: even, the bytes are a transaction checked
    against a ledger (bly_ledger_tx_check); odd, a block begun and aborted
    (bly_ledger_block_begin). Invariants: nothing crashes, a rejected input leaves
    the app hash unchanged, an accepted block aborts back to it exactly, and any
    input that decodes re-encodes to the very same bytes (canonical only). */

#include "ledger_fixture.h"

static bly_ledger_t *s_ledger;
static fx_keys_t s_keys;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_ledger) {
        bly_ledger_genesis_t g;
        fx_keys(&s_keys, 1);
        fx_genesis(&g, &s_keys, 8, 2);
        s_ledger = bly_ledger_new(&g);
        bly_assert(s_ledger);
    }
    if (size < 1)
        return 0;
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    uint8_t app[32];
    memcpy(app, bly_ledger_app_hash(s_ledger), 32);
    bly_ledger_msg_t *m = NULL;
    if (bly_ledger_msg_decode(body, n, &m, NULL, 0) == 0) {
        uint8_t *again = NULL;
        size_t again_size = 0;
        bly_assert(bly_ledger_msg_encode(m, &again, &again_size) == 0);
        bly_assert(again_size == n && memcmp(again, body, n) == 0);
        free(again);
        bly_ledger_msg_destroy(&m);
    }
    char err[256];
    if ((data[0] & 1) == 0) {
        (void) !bly_ledger_tx_check(s_ledger, body, n, NULL, err, sizeof(err));
    } else if (bly_ledger_block_begin(s_ledger, body, n, err, sizeof(err)) == 0) {
        bly_ledger_block_abort(s_ledger);
    }
    bly_assert(!bly_ledger_block_is_open(s_ledger));
    bly_assert(memcmp(app, bly_ledger_app_hash(s_ledger), 32) == 0);
    return 0;
}
