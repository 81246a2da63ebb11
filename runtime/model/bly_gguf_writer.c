/*  =========================================================================
    bly_gguf_writer - write GGUF version 3 files

    Metadata is serialized into one growing buffer as it is set; tensor
    infos are kept until begin() writes them with their offsets.
    ========================================================================= */

#include "bly_gguf_writer.h"
#include "bly_limits.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;                     //  Copy of the name.
    bly_type_t type;                //  Element type.
    uint32_t n_dims;                //  Dimensions used.
    uint64_t ne[BLY_GGUF_DIMS_MAX]; //  Elements per dimension.
    uint64_t size;                  //  Data bytes.
    uint64_t offset;                //  Offset in the data section.
} s_tensor_t;

struct bly_gguf_writer_t {
    uint32_t alignment;             //  Data alignment.
    uint8_t *meta;                  //  Serialized metadata pairs.
    size_t meta_size;               //  Bytes used.
    size_t meta_capacity;           //  Bytes allocated.
    char **keys;                    //  Keys set so far (duplicate check).
    uint64_t kv_count;              //  Pairs in meta.
    s_tensor_t *tensors;            //  Declared tensors.
    uint64_t tensor_count;          //  How many.
    FILE *out;                      //  Set by begin().
    uint64_t current;               //  Tensor whose data is being written.
    uint64_t current_written;       //  Bytes of it written so far.
    bool failed;                    //  A write failed: the rest are refused.
};

bly_gguf_writer_t *
bly_gguf_writer_new(uint32_t alignment)
{
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 ||
        alignment > BLY_GGUF_ALIGNMENT_MAX)
        return NULL;
    bly_gguf_writer_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->alignment = alignment;
    self->keys = calloc(BLY_GGUF_KV_MAX, sizeof(*self->keys));
    self->tensors = calloc(BLY_GGUF_TENSORS_MAX, sizeof(*self->tensors));
    if (!self->keys || !self->tensors) {
        bly_gguf_writer_destroy(&self);
        return NULL;
    }
    if (alignment != 32 && bly_gguf_writer_set_u32(self, "general.alignment", alignment)) {
        bly_gguf_writer_destroy(&self);
        return NULL;
    }
    return self;
}

void
bly_gguf_writer_destroy(bly_gguf_writer_t **self_p)
{
    bly_assert(self_p);
    bly_gguf_writer_t *self = *self_p;
    if (!self)
        return;
    if (self->tensors)
        for (uint64_t i = 0; i < self->tensor_count; i++)
            free(self->tensors[i].name);
    free(self->tensors);
    if (self->keys)
        for (uint64_t i = 0; i < self->kv_count; i++)
            free(self->keys[i]);
    free(self->keys);
    free(self->meta);
    free(self);
    *self_p = NULL;
}

static int
s_append(bly_gguf_writer_t *self, const void *data, size_t size)
{
    if (size > SIZE_MAX / 2 - self->meta_size)
        return -1;
    if (self->meta_size + size > self->meta_capacity) {
        size_t capacity = self->meta_capacity ? self->meta_capacity : 4096;
        while (capacity < self->meta_size + size)
            capacity *= 2;
        uint8_t *meta = realloc(self->meta, capacity);
        if (!meta)
            return -1;
        self->meta = meta;
        self->meta_capacity = capacity;
    }
    if (size > 0)
        memcpy(self->meta + self->meta_size, data, size);
    self->meta_size += size;
    return 0;
}

static int
s_append_u32(bly_gguf_writer_t *self, uint32_t value)
{
    return s_append(self, &value, 4);
}

static int
s_append_str(bly_gguf_writer_t *self, const char *data, size_t size)
{
    uint64_t len = size;
    return s_append(self, &len, 8) || s_append(self, data, size);
}

//  Start a pair: check the key, record it, write it and the type.
static int
s_key(bly_gguf_writer_t *self, const char *key, bly_gguf_value_type_t type)
{
    bly_assert(self);
    bly_assert(key);
    size_t len = strlen(key);
    if (self->out || len == 0 || len > BLY_GGUF_NAME_MAX || self->kv_count >= BLY_GGUF_KV_MAX)
        return -1;
    for (uint64_t i = 0; i < self->kv_count; i++)
        if (strcmp(self->keys[i], key) == 0)
            return -1;
    self->keys[self->kv_count] = strdup(key);
    if (!self->keys[self->kv_count])
        return -1;
    self->kv_count++;
    return s_append_str(self, key, len) || s_append_u32(self, (uint32_t) type);
}

int
bly_gguf_writer_set_scalar(bly_gguf_writer_t *self, const char *key, bly_gguf_value_type_t type,
                           const void *value)
{
    bly_assert(value);
    size_t size = bly_gguf_value_size(type);
    if (size == 0)
        return -1;
    return s_key(self, key, type) || s_append(self, value, size) ? -1 : 0;
}

int
bly_gguf_writer_set_u32(bly_gguf_writer_t *self, const char *key, uint32_t value)
{
    return bly_gguf_writer_set_scalar(self, key, BLY_GGUF_UINT32, &value);
}

int
bly_gguf_writer_set_i32(bly_gguf_writer_t *self, const char *key, int32_t value)
{
    return bly_gguf_writer_set_scalar(self, key, BLY_GGUF_INT32, &value);
}

int
bly_gguf_writer_set_u64(bly_gguf_writer_t *self, const char *key, uint64_t value)
{
    return bly_gguf_writer_set_scalar(self, key, BLY_GGUF_UINT64, &value);
}

int
bly_gguf_writer_set_f32(bly_gguf_writer_t *self, const char *key, float value)
{
    return bly_gguf_writer_set_scalar(self, key, BLY_GGUF_FLOAT32, &value);
}

int
bly_gguf_writer_set_bool(bly_gguf_writer_t *self, const char *key, bool value)
{
    uint8_t byte = value ? 1 : 0;
    return bly_gguf_writer_set_scalar(self, key, BLY_GGUF_BOOL, &byte);
}

int
bly_gguf_writer_set_str(bly_gguf_writer_t *self, const char *key, const char *value, size_t size)
{
    bly_assert(value || size == 0);
    if (size > BLY_GGUF_STRING_MAX)
        return -1;
    return s_key(self, key, BLY_GGUF_STRING) || s_append_str(self, value, size) ? -1 : 0;
}

int
bly_gguf_writer_set_array(bly_gguf_writer_t *self, const char *key, bly_gguf_value_type_t type,
                          const void *data, uint64_t count)
{
    bly_assert(data || count == 0);
    size_t size = bly_gguf_value_size(type);
    if (size == 0 || count > BLY_GGUF_ARRAY_MAX)
        return -1;
    if (s_key(self, key, BLY_GGUF_ARRAY) || s_append_u32(self, (uint32_t) type) ||
        s_append(self, &count, 8) || s_append(self, data, (size_t) count * size))
        return -1;
    return 0;
}

int
bly_gguf_writer_set_str_array(bly_gguf_writer_t *self, const char *key,
                              const char *const *strings, const size_t *sizes, uint64_t count)
{
    bly_assert(strings || count == 0);
    bly_assert(sizes || count == 0);
    if (count > BLY_GGUF_ARRAY_MAX)
        return -1;
    for (uint64_t i = 0; i < count; i++)
        if (sizes[i] > BLY_GGUF_STRING_MAX)
            return -1;
    if (s_key(self, key, BLY_GGUF_ARRAY) || s_append_u32(self, BLY_GGUF_STRING) ||
        s_append(self, &count, 8))
        return -1;
    for (uint64_t i = 0; i < count; i++)
        if (s_append_str(self, strings[i], sizes[i]))
            return -1;
    return 0;
}

int
bly_gguf_writer_set_raw(bly_gguf_writer_t *self, const char *key, bly_gguf_value_type_t type,
                        const void *raw, size_t size)
{
    bly_assert(raw || size == 0);
    if ((uint32_t) type > BLY_GGUF_FLOAT64)
        return -1;
    return s_key(self, key, type) || s_append(self, raw, size) ? -1 : 0;
}

int
bly_gguf_writer_add_tensor(bly_gguf_writer_t *self, const char *name, bly_type_t type,
                           uint32_t n_dims, const uint64_t *ne)
{
    bly_assert(self);
    bly_assert(name);
    bly_assert(ne);
    size_t len = strlen(name);
    size_t block_elements = bly_type_block_elements(type);
    if (self->out || len == 0 || len > BLY_GGUF_NAME_MAX || n_dims < 1 ||
        n_dims > BLY_GGUF_DIMS_MAX || block_elements == 0 ||
        self->tensor_count >= BLY_GGUF_TENSORS_MAX || ne[0] % block_elements != 0)
        return -1;
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0 || ne[d] > BLY_GGUF_DIM_VALUE_MAX || n > UINT64_MAX / ne[d])
            return -1;
        n *= ne[d];
    }
    for (uint64_t i = 0; i < self->tensor_count; i++)
        if (strcmp(self->tensors[i].name, name) == 0)
            return -1;
    s_tensor_t *t = &self->tensors[self->tensor_count];
    t->name = strdup(name);
    if (!t->name)
        return -1;
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < BLY_GGUF_DIMS_MAX; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    t->size = n / block_elements * bly_type_block_size(type);
    self->tensor_count++;
    return 0;
}

uint64_t
bly_gguf_writer_tensor_size(const bly_gguf_writer_t *self, uint64_t index)
{
    bly_assert(self);
    bly_assert(index < self->tensor_count);
    return self->tensors[index].size;
}

static uint64_t
s_pad(uint64_t pos, uint32_t alignment)
{
    return (alignment - pos % alignment) % alignment;
}

static int
s_write(bly_gguf_writer_t *self, const void *data, size_t size)
{
    if (self->failed || (size > 0 && fwrite(data, 1, size, self->out) != size)) {
        self->failed = true;
        return -1;
    }
    return 0;
}

static int
s_write_zeros(bly_gguf_writer_t *self, uint64_t count)
{
    static const uint8_t zeros[BLY_GGUF_ALIGNMENT_MAX];
    bly_assert(count <= sizeof(zeros));
    return s_write(self, zeros, (size_t) count);
}

int
bly_gguf_writer_begin(bly_gguf_writer_t *self, FILE *out)
{
    bly_assert(self);
    bly_assert(out);
    if (self->out)
        return -1;
    self->out = out;
    uint32_t head[2] = {0x46554747u, 3};
    uint64_t counts[2] = {self->tensor_count, self->kv_count};
    uint64_t pos = 24 + self->meta_size;
    if (s_write(self, head, 8) || s_write(self, counts, 16) ||
        s_write(self, self->meta, self->meta_size))
        return -1;
    uint64_t offset = 0;
    for (uint64_t i = 0; i < self->tensor_count; i++) {
        s_tensor_t *t = &self->tensors[i];
        uint64_t len = strlen(t->name);
        uint32_t type = (uint32_t) t->type;
        t->offset = offset;
        if (s_write(self, &len, 8) || s_write(self, t->name, len) ||
            s_write(self, &t->n_dims, 4) || s_write(self, t->ne, 8 * t->n_dims) ||
            s_write(self, &type, 4) || s_write(self, &t->offset, 8))
            return -1;
        pos += 8 + len + 4 + 8 * t->n_dims + 4 + 8;
        offset += t->size + s_pad(t->size, self->alignment);
    }
    self->current = 0;
    self->current_written = 0;
    return s_write_zeros(self, s_pad(pos, self->alignment));
}

int
bly_gguf_writer_write(bly_gguf_writer_t *self, const void *data, size_t size)
{
    bly_assert(self);
    bly_assert(data || size == 0);
    if (!self->out)
        return -1;
    const uint8_t *p = data;
    while (size > 0) {
        if (self->current >= self->tensor_count)
            return -1;   //  More data than the tensors declared.
        const s_tensor_t *t = &self->tensors[self->current];
        uint64_t room = t->size - self->current_written;
        size_t n = size < room ? size : (size_t) room;
        if (s_write(self, p, n))
            return -1;
        p += n;
        size -= n;
        self->current_written += n;
        if (self->current_written == t->size) {
            if (s_write_zeros(self, s_pad(t->size, self->alignment)))
                return -1;
            self->current++;
            self->current_written = 0;
        }
    }
    return 0;
}

int
bly_gguf_writer_finish(bly_gguf_writer_t *self)
{
    bly_assert(self);
    if (!self->out || self->failed || self->current != self->tensor_count)
        return -1;
    return fflush(self->out) == 0 ? 0 : -1;
}
