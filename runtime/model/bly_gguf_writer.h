/*  =========================================================================
    bly_gguf_writer - write GGUF version 3 files

    Metadata is collected in memory (tokenizer arrays are a few MiB), then
    bly_gguf_writer_begin() writes the header, metadata and tensor infos, and
    the tensor data is streamed in declaration order with
    bly_gguf_writer_write(), so a large model is never held in memory.
    Each tensor's data is padded to the alignment.
    ========================================================================= */

#ifndef BLY_GGUF_WRITER_H_INCLUDED
#define BLY_GGUF_WRITER_H_INCLUDED

#include "bly_gguf.h"

#include <stdio.h>

typedef struct bly_gguf_writer_t bly_gguf_writer_t;

//  New writer with this data alignment (a power of two; 32 is the GGUF
//  default). Alignments other than 32 are recorded as general.alignment.
//  Returns NULL on a bad alignment or out of memory.
BLY_MUST_USE bly_gguf_writer_t *bly_gguf_writer_new(uint32_t alignment);
void bly_gguf_writer_destroy(bly_gguf_writer_t **self_p);

//  Metadata. Keys must be unique (a repeated key is an error), values are
//  copied. Each returns 0 or -1 (bad key, duplicate, limit, out of memory).
BLY_MUST_USE int bly_gguf_writer_set_u32(bly_gguf_writer_t *self, const char *key, uint32_t value);
BLY_MUST_USE int bly_gguf_writer_set_i32(bly_gguf_writer_t *self, const char *key, int32_t value);
BLY_MUST_USE int bly_gguf_writer_set_u64(bly_gguf_writer_t *self, const char *key, uint64_t value);
BLY_MUST_USE int bly_gguf_writer_set_f32(bly_gguf_writer_t *self, const char *key, float value);
BLY_MUST_USE int bly_gguf_writer_set_bool(bly_gguf_writer_t *self, const char *key, bool value);
BLY_MUST_USE int bly_gguf_writer_set_str(bly_gguf_writer_t *self, const char *key,
                                         const char *value, size_t size);
//  Any fixed-size scalar (uint8 .. float64) given as its little-endian bytes.
BLY_MUST_USE int bly_gguf_writer_set_scalar(bly_gguf_writer_t *self, const char *key,
                                            bly_gguf_value_type_t type, const void *value);
//  Array of fixed-size elements (`count` little-endian elements of `type`).
BLY_MUST_USE int bly_gguf_writer_set_array(bly_gguf_writer_t *self, const char *key,
                                           bly_gguf_value_type_t type, const void *data,
                                           uint64_t count);
//  Array of strings: `strings[i]` has `sizes[i]` bytes.
BLY_MUST_USE int bly_gguf_writer_set_str_array(bly_gguf_writer_t *self, const char *key,
                                               const char *const *strings, const size_t *sizes,
                                               uint64_t count);
//  A value given already serialized (as bly_gguf_kv_raw returns it): copies
//  metadata between files, and writes nested arrays.
BLY_MUST_USE int bly_gguf_writer_set_raw(bly_gguf_writer_t *self, const char *key,
                                         bly_gguf_value_type_t type, const void *raw,
                                         size_t size);

//  Declare a tensor; data offsets follow declaration order. 0 or -1 (bad
//  shape, type, name, duplicate, limit).
BLY_MUST_USE int bly_gguf_writer_add_tensor(bly_gguf_writer_t *self, const char *name,
                                            bly_type_t type, uint32_t n_dims,
                                            const uint64_t *ne);

//  Bytes of data tensor `index` takes (without padding).
uint64_t bly_gguf_writer_tensor_size(const bly_gguf_writer_t *self, uint64_t index);

//  Write the header, metadata and tensor infos to `out` (borrowed, left
//  open). After this only bly_gguf_writer_write and _finish are allowed.
BLY_MUST_USE int bly_gguf_writer_begin(bly_gguf_writer_t *self, FILE *out);

//  Append `size` bytes of tensor data; pieces may split or span tensors
//  freely, in declaration order. Padding is added between tensors.
BLY_MUST_USE int bly_gguf_writer_write(bly_gguf_writer_t *self, const void *data, size_t size);

//  Check that every tensor got all its data, and flush. 0 or -1.
BLY_MUST_USE int bly_gguf_writer_finish(bly_gguf_writer_t *self);

#endif
