/*  =========================================================================
    bly_gguf - read GGUF model files (version 3; 2 is accepted too)

    The file is memory-mapped read-only. Every offset, size, count and
    dimension is checked against the file and the limits before use; a
    truncated or lying file gives a clear error naming what is wrong.
    Tensor data is never copied: bly_gguf_tensor_t.data points into the map.
    ========================================================================= */

#ifndef BLY_GGUF_H_INCLUDED
#define BLY_GGUF_H_INCLUDED

#include "bly_log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  ggml tensor types (values as in the GGUF format).
typedef enum {
    BLY_TYPE_F32 = 0,
    BLY_TYPE_F16 = 1,
    BLY_TYPE_Q4_0 = 2,
    BLY_TYPE_Q4_1 = 3,
    BLY_TYPE_Q5_0 = 6,
    BLY_TYPE_Q5_1 = 7,
    BLY_TYPE_Q8_0 = 8,
    BLY_TYPE_Q8_1 = 9,
    BLY_TYPE_Q2_K = 10,
    BLY_TYPE_Q3_K = 11,
    BLY_TYPE_Q4_K = 12,
    BLY_TYPE_Q5_K = 13,
    BLY_TYPE_Q6_K = 14,
    BLY_TYPE_Q8_K = 15,
    BLY_TYPE_BF16 = 30,
} bly_type_t;

//  GGUF metadata value types.
typedef enum {
    BLY_GGUF_UINT8 = 0,
    BLY_GGUF_INT8 = 1,
    BLY_GGUF_UINT16 = 2,
    BLY_GGUF_INT16 = 3,
    BLY_GGUF_UINT32 = 4,
    BLY_GGUF_INT32 = 5,
    BLY_GGUF_FLOAT32 = 6,
    BLY_GGUF_BOOL = 7,
    BLY_GGUF_STRING = 8,
    BLY_GGUF_ARRAY = 9,
    BLY_GGUF_UINT64 = 10,
    BLY_GGUF_INT64 = 11,
    BLY_GGUF_FLOAT64 = 12,
} bly_gguf_value_type_t;

#define BLY_GGUF_DIMS_MAX 4

//  One tensor, borrowed from the reader (valid until bly_gguf_destroy).
typedef struct {
    const char *name;               //  NUL-terminated copy of the name.
    bly_type_t type;                //  Element type.
    uint32_t n_dims;                //  1..BLY_GGUF_DIMS_MAX.
    uint64_t ne[BLY_GGUF_DIMS_MAX]; //  Elements per dimension, ne[0] fastest; unused are 1.
    uint64_t n_elements;            //  Product of ne.
    uint64_t size;                  //  Bytes of data.
    uint64_t offset;                //  Offset of data from the start of the file.
    const void *data;               //  Into the map; aligned to the file's alignment.
} bly_gguf_tensor_t;

typedef struct bly_gguf_t bly_gguf_t;

//  Open and validate a GGUF file. Returns NULL on any problem and writes a
//  one-line reason (naming the field, tensor or key) into `error`.
BLY_MUST_USE bly_gguf_t *bly_gguf_open(const char *path, char *error, size_t error_size);

//  Parse a GGUF image held in memory (fuzzing, tests). The buffer is
//  borrowed: it must outlive the reader. Same checks as bly_gguf_open.
BLY_MUST_USE bly_gguf_t *bly_gguf_open_memory(const void *data, size_t size, char *error,
                                              size_t error_size);

//  Unmap and free. Harmless on NULL *self_p.
void bly_gguf_destroy(bly_gguf_t **self_p);

//  Format version (2 or 3), tensor count, metadata count, alignment.
uint32_t bly_gguf_version(const bly_gguf_t *self);
uint64_t bly_gguf_tensor_count(const bly_gguf_t *self);
uint64_t bly_gguf_kv_count(const bly_gguf_t *self);
uint64_t bly_gguf_alignment(const bly_gguf_t *self);
//  File offset where the data section (the first tensor's data) starts.
uint64_t bly_gguf_data_offset(const bly_gguf_t *self);

//  Tensor by index or by name (NULL when absent).
const bly_gguf_tensor_t *bly_gguf_tensor_at(const bly_gguf_t *self, uint64_t index);
const bly_gguf_tensor_t *bly_gguf_tensor_find(const bly_gguf_t *self, const char *name);

//  Metadata. Index of a key, or -1 when absent.
int64_t bly_gguf_find_key(const bly_gguf_t *self, const char *key);
const char *bly_gguf_key_at(const bly_gguf_t *self, int64_t index);
bly_gguf_value_type_t bly_gguf_value_type(const bly_gguf_t *self, int64_t index);
//  The value of pair `index` exactly as serialized in the file (after its
//  type field), for copying metadata into another file. 0 or -1.
BLY_MUST_USE int bly_gguf_kv_raw(const bly_gguf_t *self, int64_t index, const void **data,
                                 size_t *size);

//  Typed getters. Each returns 0 and sets *value when the key exists with a
//  compatible type (any integer type that fits for the integer getters,
//  float32/float64 for the float getter); -1 otherwise, leaving *value.
BLY_MUST_USE int bly_gguf_get_u64(const bly_gguf_t *self, const char *key, uint64_t *value);
BLY_MUST_USE int bly_gguf_get_u32(const bly_gguf_t *self, const char *key, uint32_t *value);
BLY_MUST_USE int bly_gguf_get_f32(const bly_gguf_t *self, const char *key, float *value);
BLY_MUST_USE int bly_gguf_get_bool(const bly_gguf_t *self, const char *key, bool *value);
//  String values point into the map: not NUL-terminated, `*size` bytes.
BLY_MUST_USE int bly_gguf_get_str(const bly_gguf_t *self, const char *key, const char **value,
                                  size_t *size);

//  Arrays: element type and count; -1 when the key is absent or not an array.
BLY_MUST_USE int bly_gguf_get_array(const bly_gguf_t *self, const char *key,
                                    bly_gguf_value_type_t *type, uint64_t *count);
//  String element `i` of a string array (into the map, `*size` bytes).
BLY_MUST_USE int bly_gguf_array_str(const bly_gguf_t *self, const char *key, uint64_t i,
                                    const char **value, size_t *size);
//  Raw data of a numeric array (little-endian elements, into the map).
BLY_MUST_USE int bly_gguf_array_data(const bly_gguf_t *self, const char *key, const void **data);

//  Bytes of one fixed-size metadata value (uint8 .. float64); 0 for
//  string, array and unknown types.
size_t bly_gguf_value_size(bly_gguf_value_type_t type);

//  Bytes per block and elements per block of a tensor type; 0 for types
//  this build does not support.
size_t bly_type_block_size(bly_type_t type);
size_t bly_type_block_elements(bly_type_t type);
const char *bly_type_name(bly_type_t type);

//  Advise the kernel on the mapped range of a tensor (load ahead).
void bly_gguf_prefetch(const bly_gguf_t *self, const bly_gguf_tensor_t *tensor);

#endif
