/*  =========================================================================
    fuzz_consensus_msg - libFuzzer target for consensus message and block
    decoding: no crash, and an accepted input re-encodes to the same bytes
    (one canonical form each).
    ========================================================================= */

#include <stdlib.h>
#include <string.h>

#include "consensus/bly_cons_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > BLY_CONS_MSG_SIZE_MAX)
        return 0;
    bly_cons_msg_t msg;
    if (bly_cons_msg_decode(&msg, data, size) == 0) {
        uint8_t *out = malloc(size);
        bly_assert(out);
        size_t used = bly_cons_msg_encode(&msg, out, size);
        bly_assert(used == size);
        bly_assert(memcmp(out, data, size) == 0);
        free(out);
        bly_cons_block_t hdr;
        if (msg.block && bly_cons_block_decode(&hdr, msg.block, msg.block_size) == 0) {
            uint8_t *again = malloc(msg.block_size);
            bly_assert(again);
            size_t block_size = bly_cons_block_encode(&hdr, again, msg.block_size);
            bly_assert(block_size == msg.block_size);
            bly_assert(memcmp(again, msg.block, block_size) == 0);
            free(again);
        }
    }
    //  The same bytes as a bare block.
    bly_cons_block_t hdr;
    if (bly_cons_block_decode(&hdr, data, size) == 0)
        bly_assert(hdr.payload_size <= size);
    return 0;
}
