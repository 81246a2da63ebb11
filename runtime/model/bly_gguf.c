/*  =========================================================================
    bly_gguf - read GGUF model files (version 3; 2 is accepted too)

    Layout (little-endian): magic "GGUF", u32 version, u64 tensor count,
    u64 kv count, the kv pairs, the tensor infos, padding to the alignment,
    then the data section. Versions 2 and 3 share this layout (3 only adds
    big-endian files, which we refuse).

    Parsing never reads past the end: every read goes through s_take(),
    which checks the remaining bytes first. Strings and numeric arrays stay
    in the map; string arrays get an offset index so element i is O(1).
    ========================================================================= */

#include "bly_gguf.h"
#include "bly_limits.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAGIC 0x46554747u   //  "GGUF" read as a little-endian u32.
#define S_ALIGNMENT_DEFAULT 32u

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF values are read in place");

//  One metadata pair. Values point into the map.
typedef struct {
    char *key;                       //  NUL-terminated copy.
    bly_gguf_value_type_t type;      //  Value type.
    const uint8_t *value;            //  Scalar bytes, string bytes or array elements.
    uint64_t size;                   //  String length in bytes (strings only).
    bly_gguf_value_type_t elem_type; //  Arrays: element type.
    uint64_t count;                  //  Arrays: element count.
    uint64_t *str_offsets;           //  String arrays: offset of each element's length.
    const uint8_t *raw;              //  Serialized value as in the file (after the type).
    uint64_t raw_size;               //  Its size in bytes.
} s_kv_t;

struct bly_gguf_t {
    const uint8_t *base;            //  Start of the file (map or caller's buffer).
    size_t size;                    //  File size in bytes.
    bool mapped;                    //  True when base is our mmap.
    uint32_t version;               //  2 or 3.
    uint64_t alignment;             //  general.alignment or 32.
    uint64_t data_offset;           //  Start of the data section.
    uint64_t kv_count;              //  Entries in kvs.
    s_kv_t *kvs;                    //  Metadata, in file order.
    uint64_t tensor_count;          //  Entries in tensors.
    bly_gguf_tensor_t *tensors;     //  Tensor infos, in file order.
};

//  Parse cursor with the error buffer.
typedef struct {
    const uint8_t *base;            //  Start of the file.
    size_t size;                    //  File size.
    size_t pos;                     //  Next byte to read.
    char *error;                    //  Caller's buffer.
    size_t error_size;              //  Its size.
} s_cursor_t;

static int
s_fail(s_cursor_t *cur, const char *format, ...) BLY_PRINTF(2, 3);

static int
s_fail(s_cursor_t *cur, const char *format, ...)
{
    if (cur->error && cur->error_size > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(cur->error, cur->error_size, format, args);
        va_end(args);
    }
    return -1;
}

//  Pointer to the next `n` bytes, or NULL when fewer remain.
static const uint8_t *
s_take(s_cursor_t *cur, uint64_t n)
{
    if (n > cur->size - cur->pos)
        return NULL;
    const uint8_t *p = cur->base + cur->pos;
    cur->pos += (size_t) n;
    return p;
}

static int
s_read_u32(s_cursor_t *cur, uint32_t *value, const char *what)
{
    size_t at = cur->pos;
    const uint8_t *p = s_take(cur, 4);
    if (!p)
        return s_fail(cur, "truncated at byte %zu reading %s (file has %zu bytes)", at, what,
                      cur->size);
    memcpy(value, p, 4);
    return 0;
}

static int
s_read_u64(s_cursor_t *cur, uint64_t *value, const char *what)
{
    size_t at = cur->pos;
    const uint8_t *p = s_take(cur, 8);
    if (!p)
        return s_fail(cur, "truncated at byte %zu reading %s (file has %zu bytes)", at, what,
                      cur->size);
    memcpy(value, p, 8);
    return 0;
}

//  A length-prefixed string: *data points into the file.
static int
s_read_str(s_cursor_t *cur, uint64_t max, const uint8_t **data, uint64_t *len,
           const char *what)
{
    size_t at = cur->pos;
    if (s_read_u64(cur, len, what))
        return -1;
    if (*len > max)
        return s_fail(cur, "%s at byte %zu has length %llu, over the limit %llu", what, at,
                      (unsigned long long) *len, (unsigned long long) max);
    *data = s_take(cur, *len);
    if (!*data)
        return s_fail(cur, "truncated at byte %zu: %s of %llu bytes runs past the end (file has "
                      "%zu bytes)", at, what, (unsigned long long) *len, cur->size);
    return 0;
}

static char *
s_strndup(const uint8_t *data, uint64_t len)
{
    char *copy = malloc((size_t) len + 1);
    if (copy) {
        memcpy(copy, data, (size_t) len);
        copy[len] = 0;
    }
    return copy;
}

size_t
bly_gguf_value_size(bly_gguf_value_type_t type)
{
    switch (type) {
    case BLY_GGUF_UINT8: case BLY_GGUF_INT8: case BLY_GGUF_BOOL:
        return 1;
    case BLY_GGUF_UINT16: case BLY_GGUF_INT16:
        return 2;
    case BLY_GGUF_UINT32: case BLY_GGUF_INT32: case BLY_GGUF_FLOAT32:
        return 4;
    case BLY_GGUF_UINT64: case BLY_GGUF_INT64: case BLY_GGUF_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

static bool
s_value_type_known(uint32_t type)
{
    return type <= BLY_GGUF_FLOAT64;
}

static int s_skip_value(s_cursor_t *cur, uint32_t type, int depth, const char *key);

//  Array header (element type, count) then the elements. For string arrays
//  `offsets` (when non-NULL, `count` entries) receives each element's offset.
static int
s_skip_array(s_cursor_t *cur, int depth, const char *key, uint32_t *elem_type,
             uint64_t *count, uint64_t **offsets)
{
    if (depth >= BLY_GGUF_ARRAY_DEPTH_MAX)
        return s_fail(cur, "key '%s': arrays nested deeper than %d", key,
                      BLY_GGUF_ARRAY_DEPTH_MAX);
    if (s_read_u32(cur, elem_type, "array element type") ||
        s_read_u64(cur, count, "array element count"))
        return -1;
    if (!s_value_type_known(*elem_type))
        return s_fail(cur, "key '%s': unknown array element type %u", key, *elem_type);
    if (*count > BLY_GGUF_ARRAY_MAX)
        return s_fail(cur, "key '%s': array of %llu elements, over the limit %u", key,
                      (unsigned long long) *count, (unsigned) BLY_GGUF_ARRAY_MAX);
    size_t elem_size = bly_gguf_value_size((bly_gguf_value_type_t) *elem_type);
    if (elem_size > 0) {
        if (!s_take(cur, *count * elem_size))
            return s_fail(cur, "key '%s': array of %llu elements runs past the end of the file",
                          key, (unsigned long long) *count);
        return 0;
    }
    //  Every element takes at least 8 bytes: reject a lying count before allocating.
    if (*count > (cur->size - cur->pos) / 8)
        return s_fail(cur, "key '%s': array of %llu elements cannot fit in the rest of the file",
                      key, (unsigned long long) *count);
    if (offsets && *elem_type == BLY_GGUF_STRING) {
        *offsets = calloc(*count ? *count : 1, sizeof(**offsets));
        if (!*offsets)
            return s_fail(cur, "key '%s': out of memory for %llu strings", key,
                          (unsigned long long) *count);
    }
    for (uint64_t i = 0; i < *count; i++) {
        if (offsets && *offsets)
            (*offsets)[i] = cur->pos;
        if (s_skip_value(cur, *elem_type, depth + 1, key))
            return -1;
    }
    return 0;
}

static int
s_skip_value(s_cursor_t *cur, uint32_t type, int depth, const char *key)
{
    if (type == BLY_GGUF_STRING) {
        const uint8_t *data = NULL;
        uint64_t len;
        return s_read_str(cur, BLY_GGUF_STRING_MAX, &data, &len, "string value");
    }
    if (type == BLY_GGUF_ARRAY) {
        uint32_t elem_type = 0;
        uint64_t count = 0;
        return s_skip_array(cur, depth, key, &elem_type, &count, NULL);
    }
    size_t size = bly_gguf_value_size((bly_gguf_value_type_t) type);
    if (size == 0)
        return s_fail(cur, "key '%s': unknown value type %u", key, type);
    if (!s_take(cur, size))
        return s_fail(cur, "key '%s': value runs past the end of the file", key);
    return 0;
}

static int s_parse_value(s_cursor_t *cur, s_kv_t *kv, uint32_t type);

static int
s_parse_kv(s_cursor_t *cur, s_kv_t *kv)
{
    const uint8_t *name = NULL;
    uint64_t len = 0;
    size_t at = cur->pos;
    if (s_read_str(cur, BLY_GGUF_NAME_MAX, &name, &len, "metadata key"))
        return -1;
    if (len == 0)
        return s_fail(cur, "metadata key at byte %zu is empty", at);
    if (memchr(name, 0, (size_t) len))
        return s_fail(cur, "metadata key at byte %zu contains a NUL byte", at);
    kv->key = s_strndup(name, len);
    if (!kv->key)
        return s_fail(cur, "out of memory");
    uint32_t type = 0;
    if (s_read_u32(cur, &type, "metadata value type"))
        return -1;
    if (!s_value_type_known(type))
        return s_fail(cur, "key '%s': unknown value type %u", kv->key, type);
    kv->type = (bly_gguf_value_type_t) type;
    kv->raw = cur->base + cur->pos;
    int rc = s_parse_value(cur, kv, type);
    kv->raw_size = (uint64_t) (cur->base + cur->pos - kv->raw);
    return rc;
}

static int
s_parse_value(s_cursor_t *cur, s_kv_t *kv, uint32_t type)
{
    if (type == BLY_GGUF_STRING)
        return s_read_str(cur, BLY_GGUF_STRING_MAX, &kv->value, &kv->size, kv->key);
    if (type == BLY_GGUF_ARRAY) {
        uint32_t elem_type = 0;
        size_t start = cur->pos + 12;
        if (s_skip_array(cur, 0, kv->key, &elem_type, &kv->count, &kv->str_offsets))
            return -1;
        kv->elem_type = (bly_gguf_value_type_t) elem_type;
        kv->value = cur->base + start;
        return 0;
    }
    kv->value = cur->base + cur->pos;
    return s_skip_value(cur, type, 0, kv->key);
}

/* ---- Tensor types --------------------------------------------------------- */

typedef struct {
    bly_type_t type;        //  ggml type id.
    const char *name;       //  As ggml names it.
    size_t block_size;      //  Bytes per block.
    size_t block_elements;  //  Elements per block.
} s_type_info_t;

static const s_type_info_t s_types[] = {
    {BLY_TYPE_F32, "F32", 4, 1},        {BLY_TYPE_F16, "F16", 2, 1},
    {BLY_TYPE_Q4_0, "Q4_0", 18, 32},    {BLY_TYPE_Q4_1, "Q4_1", 20, 32},
    {BLY_TYPE_Q5_0, "Q5_0", 22, 32},    {BLY_TYPE_Q5_1, "Q5_1", 24, 32},
    {BLY_TYPE_Q8_0, "Q8_0", 34, 32},    {BLY_TYPE_Q8_1, "Q8_1", 36, 32},
    {BLY_TYPE_Q2_K, "Q2_K", 84, 256},   {BLY_TYPE_Q3_K, "Q3_K", 110, 256},
    {BLY_TYPE_Q4_K, "Q4_K", 144, 256},  {BLY_TYPE_Q5_K, "Q5_K", 176, 256},
    {BLY_TYPE_Q6_K, "Q6_K", 210, 256},  {BLY_TYPE_Q8_K, "Q8_K", 292, 256},
    {BLY_TYPE_BF16, "BF16", 2, 1},
};

static const s_type_info_t *
s_type_info(uint32_t type)
{
    for (size_t i = 0; i < sizeof(s_types) / sizeof(s_types[0]); i++)
        if ((uint32_t) s_types[i].type == type)
            return &s_types[i];
    return NULL;
}

size_t
bly_type_block_size(bly_type_t type)
{
    const s_type_info_t *info = s_type_info((uint32_t) type);
    return info ? info->block_size : 0;
}

size_t
bly_type_block_elements(bly_type_t type)
{
    const s_type_info_t *info = s_type_info((uint32_t) type);
    return info ? info->block_elements : 0;
}

const char *
bly_type_name(bly_type_t type)
{
    const s_type_info_t *info = s_type_info((uint32_t) type);
    return info ? info->name : "unknown";
}

/* ---- Tensor infos --------------------------------------------------------- */

//  Shape and type of one tensor: dimensions, element count and byte size.
static int
s_check_shape(s_cursor_t *cur, bly_gguf_tensor_t *t, uint32_t type)
{
    const s_type_info_t *info = s_type_info(type);
    if (!info)
        return s_fail(cur, "tensor '%s': unknown type %u", t->name, type);
    t->type = (bly_type_t) type;
    uint64_t n = 1;
    for (uint32_t d = 0; d < BLY_GGUF_DIMS_MAX; d++) {
        if (t->ne[d] == 0 || t->ne[d] > BLY_GGUF_DIM_VALUE_MAX)
            return s_fail(cur, "tensor '%s': dimension %u is %llu (must be 1..%llu)", t->name,
                          d, (unsigned long long) t->ne[d],
                          (unsigned long long) BLY_GGUF_DIM_VALUE_MAX);
        if (n > UINT64_MAX / t->ne[d])
            return s_fail(cur, "tensor '%s': element count overflows", t->name);
        n *= t->ne[d];
    }
    if (t->ne[0] % info->block_elements != 0)
        return s_fail(cur, "tensor '%s': row of %llu elements is not a whole number of %s "
                      "blocks of %zu", t->name, (unsigned long long) t->ne[0], info->name,
                      info->block_elements);
    uint64_t blocks = n / info->block_elements;
    if (blocks > UINT64_MAX / info->block_size)
        return s_fail(cur, "tensor '%s': byte size overflows", t->name);
    t->n_elements = n;
    t->size = blocks * info->block_size;
    return 0;
}

static int
s_parse_tensor(s_cursor_t *cur, bly_gguf_tensor_t *t, uint64_t index)
{
    const uint8_t *name = NULL;
    uint64_t len = 0;
    if (s_read_str(cur, BLY_GGUF_NAME_MAX, &name, &len, "tensor name"))
        return -1;
    if (len == 0 || memchr(name, 0, (size_t) len))
        return s_fail(cur, "tensor %llu: name is empty or contains a NUL byte",
                      (unsigned long long) index);
    t->name = s_strndup(name, len);
    if (!t->name)
        return s_fail(cur, "out of memory");
    if (s_read_u32(cur, &t->n_dims, "tensor dimension count"))
        return -1;
    if (t->n_dims < 1 || t->n_dims > BLY_GGUF_DIMS_MAX)
        return s_fail(cur, "tensor '%s': %u dimensions (must be 1..%d)", t->name, t->n_dims,
                      BLY_GGUF_DIMS_MAX);
    for (uint32_t d = 0; d < BLY_GGUF_DIMS_MAX; d++) {
        t->ne[d] = 1;
        if (d < t->n_dims && s_read_u64(cur, &t->ne[d], "tensor dimension"))
            return -1;
    }
    uint32_t type = 0;
    if (s_read_u32(cur, &type, "tensor type") || s_check_shape(cur, t, type))
        return -1;
    return s_read_u64(cur, &t->offset, "tensor data offset");
}

//  qsort comparators over arrays of tensor pointers.
static int
s_by_name(const void *a, const void *b)
{
    const bly_gguf_tensor_t *x = *(const bly_gguf_tensor_t *const *) a;
    const bly_gguf_tensor_t *y = *(const bly_gguf_tensor_t *const *) b;
    return strcmp(x->name, y->name);
}

static int
s_by_offset(const void *a, const void *b)
{
    const bly_gguf_tensor_t *x = *(const bly_gguf_tensor_t *const *) a;
    const bly_gguf_tensor_t *y = *(const bly_gguf_tensor_t *const *) b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

//  Duplicate names and overlapping data, via a sorted pointer array.
static int
s_check_tensor_set(s_cursor_t *cur, bly_gguf_t *self)
{
    uint64_t n = self->tensor_count;
    if (n < 2)
        return 0;
    const bly_gguf_tensor_t **order = calloc(n, sizeof(*order));
    if (!order)
        return s_fail(cur, "out of memory");
    for (uint64_t i = 0; i < n; i++)
        order[i] = &self->tensors[i];
    int rc = 0;
    qsort(order, n, sizeof(*order), s_by_name);
    for (uint64_t i = 1; i < n && rc == 0; i++)
        if (strcmp(order[i]->name, order[i - 1]->name) == 0)
            rc = s_fail(cur, "tensor '%s' appears twice", order[i]->name);
    qsort(order, n, sizeof(*order), s_by_offset);
    for (uint64_t i = 1; i < n && rc == 0; i++)
        if (order[i - 1]->offset + order[i - 1]->size > order[i]->offset)
            rc = s_fail(cur, "tensor '%s' overlaps tensor '%s'", order[i - 1]->name,
                        order[i]->name);
    free(order);
    return rc;
}

/* ---- Open ----------------------------------------------------------------- */

static int
s_parse_header(s_cursor_t *cur, bly_gguf_t *self)
{
    uint32_t magic = 0;
    if (cur->size == 0)
        return s_fail(cur, "file is empty");
    if (s_read_u32(cur, &magic, "magic"))
        return -1;
    if (magic != S_MAGIC)
        return s_fail(cur, "bad magic 0x%08x: not a GGUF file", magic);
    if (s_read_u32(cur, &self->version, "version"))
        return -1;
    if (self->version == 0x03000000u || self->version == 0x02000000u)
        return s_fail(cur, "big-endian GGUF files are not supported");
    if (self->version != 2 && self->version != 3)
        return s_fail(cur, "unsupported GGUF version %u (2 and 3 are supported)",
                      self->version);
    if (s_read_u64(cur, &self->tensor_count, "tensor count") ||
        s_read_u64(cur, &self->kv_count, "metadata count"))
        return -1;
    if (self->tensor_count > BLY_GGUF_TENSORS_MAX)
        return s_fail(cur, "tensor count %llu is over the limit %d",
                      (unsigned long long) self->tensor_count, BLY_GGUF_TENSORS_MAX);
    if (self->kv_count > BLY_GGUF_KV_MAX)
        return s_fail(cur, "metadata count %llu is over the limit %d",
                      (unsigned long long) self->kv_count, BLY_GGUF_KV_MAX);
    return 0;
}

static int
s_parse_kvs(s_cursor_t *cur, bly_gguf_t *self)
{
    self->kvs = calloc(self->kv_count ? self->kv_count : 1, sizeof(*self->kvs));
    if (!self->kvs)
        return s_fail(cur, "out of memory");
    for (uint64_t i = 0; i < self->kv_count; i++) {
        if (s_parse_kv(cur, &self->kvs[i]))
            return -1;
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(self->kvs[j].key, self->kvs[i].key) == 0)
                return s_fail(cur, "metadata key '%s' appears twice", self->kvs[i].key);
    }
    self->alignment = S_ALIGNMENT_DEFAULT;
    int64_t index = bly_gguf_find_key(self, "general.alignment");
    if (index >= 0) {
        uint64_t alignment = 0;
        if (bly_gguf_get_u64(self, "general.alignment", &alignment))
            return s_fail(cur, "general.alignment is not an unsigned integer");
        if (alignment == 0 || (alignment & (alignment - 1)) != 0 ||
            alignment > BLY_GGUF_ALIGNMENT_MAX)
            return s_fail(cur, "general.alignment %llu is not a power of two up to %u",
                          (unsigned long long) alignment, BLY_GGUF_ALIGNMENT_MAX);
        self->alignment = alignment;
    }
    return 0;
}

//  Tensor infos, the data section start, and each tensor's place in it.
static int
s_parse_tensors(s_cursor_t *cur, bly_gguf_t *self)
{
    //  Each info takes at least 8 + 1 + 4 + 8 + 4 + 8 bytes: check before allocating.
    if (self->tensor_count > (cur->size - cur->pos) / 33)
        return s_fail(cur, "tensor count %llu cannot fit in the rest of the file",
                      (unsigned long long) self->tensor_count);
    self->tensors = calloc(self->tensor_count ? self->tensor_count : 1, sizeof(*self->tensors));
    if (!self->tensors)
        return s_fail(cur, "out of memory");
    for (uint64_t i = 0; i < self->tensor_count; i++)
        if (s_parse_tensor(cur, &self->tensors[i], i))
            return -1;
    uint64_t pad = (self->alignment - cur->pos % self->alignment) % self->alignment;
    if (self->tensor_count > 0 && pad > cur->size - cur->pos)
        return s_fail(cur, "truncated: data section would start past the end of the file");
    self->data_offset = cur->pos + pad;
    uint64_t data_size = self->tensor_count > 0 ? cur->size - self->data_offset : 0;
    for (uint64_t i = 0; i < self->tensor_count; i++) {
        bly_gguf_tensor_t *t = &self->tensors[i];
        if (t->offset % self->alignment != 0)
            return s_fail(cur, "tensor '%s': data offset %llu is not a multiple of the "
                          "alignment %llu", t->name, (unsigned long long) t->offset,
                          (unsigned long long) self->alignment);
        if (t->offset > data_size || t->size > data_size - t->offset)
            return s_fail(cur, "tensor '%s': data [%llu, +%llu) runs past the end of the data "
                          "section (%llu bytes)", t->name, (unsigned long long) t->offset,
                          (unsigned long long) t->size, (unsigned long long) data_size);
        t->offset += self->data_offset;
        t->data = cur->base + t->offset;
    }
    return s_check_tensor_set(cur, self);
}

static bly_gguf_t *
s_open_buffer(const uint8_t *base, size_t size, bool mapped, char *error, size_t error_size)
{
    bly_gguf_t *self = calloc(1, sizeof(*self));
    s_cursor_t cur = {base, size, 0, error, error_size};
    if (!self) {
        s_fail(&cur, "out of memory");
        return NULL;
    }
    self->base = base;
    self->size = size;
    self->mapped = mapped;
    if (s_parse_header(&cur, self) || s_parse_kvs(&cur, self) || s_parse_tensors(&cur, self)) {
        bly_gguf_destroy(&self);
        return NULL;
    }
    bly_assert(self->data_offset <= size || self->tensor_count == 0);
    return self;
}

bly_gguf_t *
bly_gguf_open(const char *path, char *error, size_t error_size)
{
    bly_assert(path);
    s_cursor_t cur = {NULL, 0, 0, error, error_size};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        s_fail(&cur, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s_fail(&cur, "%s is not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_size == 0) {
        s_fail(&cur, "%s: file is empty", path);
        close(fd);
        return NULL;
    }
    void *map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        s_fail(&cur, "cannot map %s: %s", path, strerror(errno));
        return NULL;
    }
    bly_gguf_t *self = s_open_buffer(map, (size_t) st.st_size, true, error, error_size);
    if (!self)
        munmap(map, (size_t) st.st_size);
    return self;
}

bly_gguf_t *
bly_gguf_open_memory(const void *data, size_t size, char *error, size_t error_size)
{
    bly_assert(data || size == 0);
    static const uint8_t s_empty[1] = {0};
    return s_open_buffer(data ? data : s_empty, size, false, error, error_size);
}

void
bly_gguf_destroy(bly_gguf_t **self_p)
{
    bly_assert(self_p);
    bly_gguf_t *self = *self_p;
    if (!self)
        return;
    if (self->tensors)
        for (uint64_t i = 0; i < self->tensor_count; i++)
            free((char *) self->tensors[i].name);
    free(self->tensors);
    if (self->kvs)
        for (uint64_t i = 0; i < self->kv_count; i++) {
            free(self->kvs[i].key);
            free(self->kvs[i].str_offsets);
        }
    free(self->kvs);
    if (self->mapped)
        munmap((void *) self->base, self->size);
    free(self);
    *self_p = NULL;
}

/* ---- Accessors ------------------------------------------------------------ */

uint32_t
bly_gguf_version(const bly_gguf_t *self)
{
    bly_assert(self);
    return self->version;
}

uint64_t
bly_gguf_tensor_count(const bly_gguf_t *self)
{
    bly_assert(self);
    return self->tensor_count;
}

uint64_t
bly_gguf_kv_count(const bly_gguf_t *self)
{
    bly_assert(self);
    return self->kv_count;
}

uint64_t
bly_gguf_alignment(const bly_gguf_t *self)
{
    bly_assert(self);
    return self->alignment;
}

uint64_t
bly_gguf_data_offset(const bly_gguf_t *self)
{
    bly_assert(self);
    return self->data_offset;
}

const bly_gguf_tensor_t *
bly_gguf_tensor_at(const bly_gguf_t *self, uint64_t index)
{
    bly_assert(self);
    return index < self->tensor_count ? &self->tensors[index] : NULL;
}

const bly_gguf_tensor_t *
bly_gguf_tensor_find(const bly_gguf_t *self, const char *name)
{
    bly_assert(self);
    bly_assert(name);
    for (uint64_t i = 0; i < self->tensor_count; i++)
        if (strcmp(self->tensors[i].name, name) == 0)
            return &self->tensors[i];
    return NULL;
}

int64_t
bly_gguf_find_key(const bly_gguf_t *self, const char *key)
{
    bly_assert(self);
    bly_assert(key);
    for (uint64_t i = 0; i < self->kv_count && self->kvs[i].key; i++)
        if (strcmp(self->kvs[i].key, key) == 0)
            return (int64_t) i;
    return -1;
}

const char *
bly_gguf_key_at(const bly_gguf_t *self, int64_t index)
{
    bly_assert(self);
    if (index < 0 || (uint64_t) index >= self->kv_count)
        return NULL;
    return self->kvs[index].key;
}

bly_gguf_value_type_t
bly_gguf_value_type(const bly_gguf_t *self, int64_t index)
{
    bly_assert(self);
    bly_assert(index >= 0 && (uint64_t) index < self->kv_count);
    return self->kvs[index].type;
}

int
bly_gguf_kv_raw(const bly_gguf_t *self, int64_t index, const void **data, size_t *size)
{
    bly_assert(self);
    bly_assert(data);
    bly_assert(size);
    if (index < 0 || (uint64_t) index >= self->kv_count)
        return -1;
    *data = self->kvs[index].raw;
    *size = (size_t) self->kvs[index].raw_size;
    return 0;
}

static const s_kv_t *
s_kv(const bly_gguf_t *self, const char *key)
{
    int64_t index = bly_gguf_find_key(self, key);
    return index < 0 ? NULL : &self->kvs[index];
}

//  Any integer value: returns 0 and sets *value when the stored integer is
//  non-negative; -1 for negative values and non-integer types.
static int
s_kv_uint(const s_kv_t *kv, uint64_t *value)
{
    size_t size = bly_gguf_value_size(kv->type);
    bool is_signed = kv->type == BLY_GGUF_INT8 || kv->type == BLY_GGUF_INT16 ||
                     kv->type == BLY_GGUF_INT32 || kv->type == BLY_GGUF_INT64;
    bool is_unsigned = kv->type == BLY_GGUF_UINT8 || kv->type == BLY_GGUF_UINT16 ||
                       kv->type == BLY_GGUF_UINT32 || kv->type == BLY_GGUF_UINT64;
    if (!is_signed && !is_unsigned)
        return -1;
    uint64_t raw = 0;
    memcpy(&raw, kv->value, size);   //  Little-endian host: low bytes first.
    if (is_signed && (kv->value[size - 1] & 0x80))
        return -1;
    *value = raw;
    return 0;
}

int
bly_gguf_get_u64(const bly_gguf_t *self, const char *key, uint64_t *value)
{
    bly_assert(value);
    const s_kv_t *kv = s_kv(self, key);
    uint64_t v;
    if (!kv || s_kv_uint(kv, &v))
        return -1;
    *value = v;
    return 0;
}

int
bly_gguf_get_u32(const bly_gguf_t *self, const char *key, uint32_t *value)
{
    bly_assert(value);
    uint64_t v;
    if (bly_gguf_get_u64(self, key, &v) || v > UINT32_MAX)
        return -1;
    *value = (uint32_t) v;
    return 0;
}

int
bly_gguf_get_f32(const bly_gguf_t *self, const char *key, float *value)
{
    bly_assert(value);
    const s_kv_t *kv = s_kv(self, key);
    if (!kv)
        return -1;
    if (kv->type == BLY_GGUF_FLOAT32) {
        memcpy(value, kv->value, 4);
        return 0;
    }
    if (kv->type == BLY_GGUF_FLOAT64) {
        double v;
        memcpy(&v, kv->value, 8);
        *value = (float) v;
        return 0;
    }
    return -1;
}

int
bly_gguf_get_bool(const bly_gguf_t *self, const char *key, bool *value)
{
    bly_assert(value);
    const s_kv_t *kv = s_kv(self, key);
    if (!kv || kv->type != BLY_GGUF_BOOL)
        return -1;
    *value = kv->value[0] != 0;
    return 0;
}

int
bly_gguf_get_str(const bly_gguf_t *self, const char *key, const char **value, size_t *size)
{
    bly_assert(value);
    bly_assert(size);
    const s_kv_t *kv = s_kv(self, key);
    if (!kv || kv->type != BLY_GGUF_STRING)
        return -1;
    *value = (const char *) kv->value;
    *size = (size_t) kv->size;
    return 0;
}

int
bly_gguf_get_array(const bly_gguf_t *self, const char *key, bly_gguf_value_type_t *type,
                   uint64_t *count)
{
    bly_assert(type);
    bly_assert(count);
    const s_kv_t *kv = s_kv(self, key);
    if (!kv || kv->type != BLY_GGUF_ARRAY)
        return -1;
    *type = kv->elem_type;
    *count = kv->count;
    return 0;
}

int
bly_gguf_array_str(const bly_gguf_t *self, const char *key, uint64_t i, const char **value,
                   size_t *size)
{
    bly_assert(value);
    bly_assert(size);
    const s_kv_t *kv = s_kv(self, key);
    if (!kv || kv->type != BLY_GGUF_ARRAY || kv->elem_type != BLY_GGUF_STRING ||
        i >= kv->count)
        return -1;
    //  Offsets were checked during open: length and bytes lie inside the file.
    const uint8_t *p = self->base + kv->str_offsets[i];
    uint64_t len = 0;
    memcpy(&len, p, 8);
    *value = (const char *) p + 8;
    *size = (size_t) len;
    return 0;
}

int
bly_gguf_array_data(const bly_gguf_t *self, const char *key, const void **data)
{
    bly_assert(data);
    const s_kv_t *kv = s_kv(self, key);
    if (!kv || kv->type != BLY_GGUF_ARRAY || bly_gguf_value_size(kv->elem_type) == 0)
        return -1;
    *data = kv->value;
    return 0;
}

void
bly_gguf_prefetch(const bly_gguf_t *self, const bly_gguf_tensor_t *tensor)
{
    bly_assert(self);
    bly_assert(tensor);
    if (!self->mapped || tensor->size == 0)
        return;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t) tensor->data & ~((uintptr_t) page - 1);
    uintptr_t end = (uintptr_t) tensor->data + tensor->size;
    //  Advice only: a failure changes nothing but speed.
    (void) madvise((void *) start, end - start, MADV_WILLNEED);
}
