/*  fuzz_gguf - the GGUF reader on arbitrary bytes: opens or fails, never crashes. */

#include "bly_gguf.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char error[256];
    bly_gguf_t *gguf = bly_gguf_open_memory(data, size, error, sizeof(error));
    if (!gguf)
        return 0;
    //  Touch everything the reader hands out: it must all lie inside the input.
    volatile uint8_t sink = 0;
    for (uint64_t i = 0; i < bly_gguf_tensor_count(gguf); i++) {
        const bly_gguf_tensor_t *t = bly_gguf_tensor_at(gguf, i);
        if (t->size > 0)
            sink ^= ((const uint8_t *) t->data)[0] ^ ((const uint8_t *) t->data)[t->size - 1];
        bly_assert(bly_gguf_tensor_find(gguf, t->name) == t);
    }
    for (int64_t i = 0; i < (int64_t) bly_gguf_kv_count(gguf); i++) {
        const char *key = bly_gguf_key_at(gguf, i);
        bly_gguf_value_type_t type;
        uint64_t count;
        const char *text;
        size_t text_size;
        uint64_t value;
        if (bly_gguf_get_array(gguf, key, &type, &count) == 0 && type == BLY_GGUF_STRING) {
            for (uint64_t j = 0; j < count && j < 64; j++)
                if (bly_gguf_array_str(gguf, key, j, &text, &text_size) == 0 && text_size > 0)
                    sink ^= (uint8_t) text[text_size - 1];
        } else if (bly_gguf_get_str(gguf, key, &text, &text_size) == 0 && text_size > 0) {
            sink ^= (uint8_t) text[text_size - 1];
        } else if (bly_gguf_get_u64(gguf, key, &value) == 0) {
            sink ^= (uint8_t) value;
        }
    }
    (void) sink;
    bly_gguf_destroy(&gguf);
    return 0;
}
