/*  =========================================================================
    bly_codec_rt - canonical MessagePack writer and bounded reader

    See bly_codec_rt.h. The reader accepts exactly one encoding per value:
    the smallest one, which is also what the writer produces, so a decode
    followed by an encode gives back the input bytes.
    ========================================================================= */

#include "bly_codec_rt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
bly_codec_writer_init(bly_codec_writer_t *self)
{
    bly_assert(self);
    memset(self, 0, sizeof(*self));
}

void
bly_codec_writer_reset(bly_codec_writer_t *self)
{
    bly_assert(self);
    free(self->data);
    memset(self, 0, sizeof(*self));
}

int
bly_codec_writer_take(bly_codec_writer_t *self, uint8_t **buf, size_t *size)
{
    bly_assert(self);
    bly_assert(buf);
    bly_assert(size);
    if (self->failed || self->size == 0) {
        bly_codec_writer_reset(self);
        return -1;
    }
    *buf = self->data;
    *size = self->size;
    memset(self, 0, sizeof(*self));
    return 0;
}

//  Make room for `extra` more bytes; marks the writer failed when it cannot.
static bool
s_reserve(bly_codec_writer_t *self, size_t extra)
{
    if (self->failed)
        return false;
    if (extra > BLY_FRAME_SIZE_MAX || self->size > BLY_FRAME_SIZE_MAX - extra) {
        self->failed = true;
        return false;
    }
    size_t need = self->size + extra;
    if (need <= self->capacity)
        return true;
    size_t capacity = self->capacity ? self->capacity : 256;
    while (capacity < need)
        capacity *= 2;  //  need <= 64 MiB, so this ends well before overflow.
    uint8_t *data = realloc(self->data, capacity);
    if (!data) {
        self->failed = true;
        return false;
    }
    self->data = data;
    self->capacity = capacity;
    return true;
}

void
bly_codec_put_raw(bly_codec_writer_t *self, const uint8_t *data, size_t size)
{
    bly_assert(self);
    bly_assert(data || size == 0);
    if (size == 0 || !s_reserve(self, size))
        return;
    memcpy(self->data + self->size, data, size);
    self->size += size;
}

//  A marker byte followed by `width` big-endian bytes of `value`.
static void
s_put_marked(bly_codec_writer_t *self, uint8_t marker, uint64_t value, int width)
{
    uint8_t bytes[9];
    bytes[0] = marker;
    for (int i = 0; i < width; i++)
        bytes[1 + i] = (uint8_t) (value >> (8 * (width - 1 - i)));
    bly_codec_put_raw(self, bytes, (size_t) width + 1);
}

void
bly_codec_put_uint(bly_codec_writer_t *self, uint64_t value)
{
    if (value < 0x80)
        s_put_marked(self, (uint8_t) value, 0, 0);
    else if (value <= UINT8_MAX)
        s_put_marked(self, 0xcc, value, 1);
    else if (value <= UINT16_MAX)
        s_put_marked(self, 0xcd, value, 2);
    else if (value <= UINT32_MAX)
        s_put_marked(self, 0xce, value, 4);
    else
        s_put_marked(self, 0xcf, value, 8);
}

void
bly_codec_put_int(bly_codec_writer_t *self, int64_t value)
{
    if (value >= 0)
        bly_codec_put_uint(self, (uint64_t) value);
    else if (value >= -32)
        s_put_marked(self, (uint8_t) (int8_t) value, 0, 0);
    else if (value >= INT8_MIN)
        s_put_marked(self, 0xd0, (uint64_t) value, 1);
    else if (value >= INT16_MIN)
        s_put_marked(self, 0xd1, (uint64_t) value, 2);
    else if (value >= INT32_MIN)
        s_put_marked(self, 0xd2, (uint64_t) value, 4);
    else
        s_put_marked(self, 0xd3, (uint64_t) value, 8);
}

void
bly_codec_put_bool(bly_codec_writer_t *self, bool value)
{
    s_put_marked(self, value ? 0xc3 : 0xc2, 0, 0);
}

void
bly_codec_put_array(bly_codec_writer_t *self, size_t count)
{
    if (count <= 15)
        s_put_marked(self, (uint8_t) (0x90 | count), 0, 0);
    else if (count <= UINT16_MAX)
        s_put_marked(self, 0xdc, count, 2);
    else if (count <= UINT32_MAX)
        s_put_marked(self, 0xdd, count, 4);
    else
        self->failed = true;
}

void
bly_codec_put_str(bly_codec_writer_t *self, const char *text, size_t size)
{
    if (size <= 31)
        s_put_marked(self, (uint8_t) (0xa0 | size), 0, 0);
    else if (size <= UINT8_MAX)
        s_put_marked(self, 0xd9, size, 1);
    else if (size <= UINT16_MAX)
        s_put_marked(self, 0xda, size, 2);
    else if (size <= UINT32_MAX)
        s_put_marked(self, 0xdb, size, 4);
    else
        self->failed = true;
    bly_codec_put_raw(self, (const uint8_t *) text, size);
}

void
bly_codec_put_bin(bly_codec_writer_t *self, const uint8_t *data, size_t size)
{
    if (size <= UINT8_MAX)
        s_put_marked(self, 0xc4, size, 1);
    else if (size <= UINT16_MAX)
        s_put_marked(self, 0xc5, size, 2);
    else if (size <= UINT32_MAX)
        s_put_marked(self, 0xc6, size, 4);
    else
        self->failed = true;
    bly_codec_put_raw(self, data, size);
}

void
bly_codec_reader_init(bly_codec_reader_t *self, const uint8_t *data, size_t size, char *err,
                      size_t err_size)
{
    bly_assert(self);
    bly_assert(data || size == 0);
    self->data = data;
    self->size = size;
    self->pos = 0;
    self->err = err;
    self->err_size = err_size;
    if (err && err_size > 0)
        err[0] = 0;
}

size_t
bly_codec_reader_left(const bly_codec_reader_t *self)
{
    bly_assert(self);
    bly_assert(self->pos <= self->size);
    return self->size - self->pos;
}

int
bly_codec_fail(bly_codec_reader_t *self, const char *format, ...)
{
    bly_assert(self);
    //  Keep the first reason: it is the one nearest the fault.
    if (self->err && self->err_size > 0 && self->err[0] == 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(self->err, self->err_size, format, args);
        va_end(args);
    }
    return -1;
}

//  Read a big-endian number of `width` bytes after the marker at pos.
static int
s_get_be(bly_codec_reader_t *self, const char *what, int width, uint64_t *value)
{
    if (bly_codec_reader_left(self) < (size_t) width + 1)
        return bly_codec_fail(self, "%s: truncated at byte %zu", what, self->pos);
    uint64_t v = 0;
    for (int i = 0; i < width; i++)
        v = (v << 8) | self->data[self->pos + 1 + (size_t) i];
    self->pos += (size_t) width + 1;
    *value = v;
    return 0;
}

//  Smallest value each width may carry for its form to be canonical.
static int
s_canonical(bly_codec_reader_t *self, const char *what, uint64_t value, uint64_t min_value,
            size_t at)
{
    if (value < min_value)
        return bly_codec_fail(self, "%s: non-canonical encoding at byte %zu", what, at);
    return 0;
}

static int
s_marker(bly_codec_reader_t *self, const char *what, uint8_t *marker)
{
    if (bly_codec_reader_left(self) < 1)
        return bly_codec_fail(self, "%s: truncated at byte %zu", what, self->pos);
    *marker = self->data[self->pos];
    return 0;
}

//  A MessagePack family with a length or count: a fix form (markers fix_base to
//  fix_base + fix_max; none when fix_max is 0) and 8-, 16- and 32-bit forms (a zero
//  marker where the family has no such form).
typedef struct {
    const char *kind;    //  "array", "string", "bin": for error messages.
    const char *unit;    //  What the length counts.
    uint8_t fix_base;
    uint8_t fix_max;
    uint8_t markers[3];
} s_family_t;

static const s_family_t s_array = {"array", "elements", 0x90, 15, {0, 0xdc, 0xdd}};
static const s_family_t s_string = {"string", "bytes", 0xa0, 31, {0xd9, 0xda, 0xdb}};
static const s_family_t s_bin = {"bin", "bytes", 0, 0, {0xc4, 0xc5, 0xc6}};

//  The header of an item of this family, in its smallest form.
static int
s_get_header(bly_codec_reader_t *self, const char *what, const s_family_t *family,
             uint64_t *length)
{
    uint8_t marker = 0;
    size_t at = self->pos;
    if (s_marker(self, what, &marker))
        return -1;
    if (family->fix_max > 0 && marker >= family->fix_base
        && marker <= family->fix_base + family->fix_max) {
        self->pos++;
        *length = (uint64_t) (marker - family->fix_base);
        return 0;
    }
    //  The smallest length each wider form may carry and stay canonical.
    static const int widths[3] = {1, 2, 4};
    const uint64_t minimum[3] = {
        family->fix_max > 0 ? (uint64_t) family->fix_max + 1 : 0,
        family->markers[0] ? 0x100 : (uint64_t) family->fix_max + 1,
        0x10000,
    };
    for (int i = 0; i < 3; i++) {
        if (family->markers[i] == 0 || marker != family->markers[i])
            continue;
        if (s_get_be(self, what, widths[i], length))
            return -1;
        return s_canonical(self, what, *length, minimum[i], at);
    }
    return bly_codec_fail(self, "%s: expected %s %s, found byte 0x%02x at %zu", what,
                          family == &s_array ? "an" : "a", family->kind, marker, at);
}

//  A header whose length is within [min, max] and within what is left of the input (an
//  element takes at least one byte), so callers may allocate for it.
static int
s_get_sized(bly_codec_reader_t *self, const char *what, const s_family_t *family, size_t min,
            size_t max, size_t *length)
{
    uint64_t n = 0;
    if (s_get_header(self, what, family, &n))
        return -1;
    unsigned long long shown = (unsigned long long) n;
    if (n < min || n > max) {
        if (min == max)
            return bly_codec_fail(self, "%s: %s of %llu %s, expected %zu", what, family->kind,
                                  shown, family->unit, min);
        return bly_codec_fail(self, "%s: %s of %llu %s, limit %zu", what, family->kind, shown,
                              family->unit, n < min ? min : max);
    }
    if (n > bly_codec_reader_left(self))
        return bly_codec_fail(self, "%s: %s of %llu %s in %zu bytes", what, family->kind, shown,
                              family->unit, bly_codec_reader_left(self));
    *length = (size_t) n;
    return 0;
}

int
bly_codec_get_array(bly_codec_reader_t *self, const char *what, size_t min, size_t max,
                    size_t *count)
{
    bly_assert(self);
    bly_assert(count);
    return s_get_sized(self, what, &s_array, min, max, count);
}

int
bly_codec_get_uint(bly_codec_reader_t *self, const char *what, uint64_t max, uint64_t *value)
{
    bly_assert(self);
    bly_assert(value);
    uint8_t marker = 0;
    size_t at = self->pos;
    if (s_marker(self, what, &marker))
        return -1;
    uint64_t v = 0;
    if (marker < 0x80) {
        self->pos++;
        v = marker;
    } else if (marker >= 0xcc && marker <= 0xcf) {
        static const uint64_t minimum[4] = {0x80, 0x100, 0x10000, 0x100000000ull};
        int width = 1 << (marker - 0xcc);
        if (s_get_be(self, what, width, &v)
            || s_canonical(self, what, v, minimum[marker - 0xcc], at))
            return -1;
    } else {
        return bly_codec_fail(self, "%s: expected an unsigned integer, found byte 0x%02x at %zu",
                              what, marker, at);
    }
    if (v > max)
        return bly_codec_fail(self, "%s: %llu is above the maximum %llu", what,
                              (unsigned long long) v, (unsigned long long) max);
    *value = v;
    return 0;
}

int
bly_codec_get_int(bly_codec_reader_t *self, const char *what, int64_t *value)
{
    bly_assert(self);
    bly_assert(value);
    uint8_t marker = 0;
    size_t at = self->pos;
    if (s_marker(self, what, &marker))
        return -1;
    if (marker < 0x80 || (marker >= 0xcc && marker <= 0xcf)) {
        uint64_t v = 0;
        if (bly_codec_get_uint(self, what, INT64_MAX, &v))
            return -1;
        *value = (int64_t) v;
        return 0;
    }
    if (marker >= 0xe0) {
        self->pos++;
        *value = (int8_t) marker;
        return 0;
    }
    if (marker < 0xd0 || marker > 0xd3)
        return bly_codec_fail(self, "%s: expected an integer, found byte 0x%02x at %zu", what,
                              marker, at);
    static const int64_t minimum[4] = {-32, INT8_MIN, INT16_MIN, INT32_MIN};
    int width = 1 << (marker - 0xd0);
    uint64_t raw = 0;
    if (s_get_be(self, what, width, &raw))
        return -1;
    //  Sign-extend from `width` bytes.
    int shift = 64 - 8 * width;
    int64_t v = (int64_t) (raw << shift) >> shift;
    int index = marker - 0xd0;
    //  Canonical: negative, and below the range of the next smaller form.
    if (v >= 0 || v >= minimum[index])
        return bly_codec_fail(self, "%s: non-canonical encoding at byte %zu", what, at);
    *value = v;
    return 0;
}

int
bly_codec_get_bool(bly_codec_reader_t *self, const char *what, bool *value)
{
    bly_assert(self);
    bly_assert(value);
    uint8_t marker = 0;
    if (s_marker(self, what, &marker))
        return -1;
    if (marker != 0xc2 && marker != 0xc3)
        return bly_codec_fail(self, "%s: expected a boolean, found byte 0x%02x at %zu", what,
                              marker, self->pos);
    self->pos++;
    *value = marker == 0xc3;
    return 0;
}

int
bly_codec_get_str(bly_codec_reader_t *self, const char *what, size_t max, const char **text,
                  size_t *size)
{
    bly_assert(self);
    bly_assert(text);
    bly_assert(size);
    size_t n = 0;
    if (s_get_sized(self, what, &s_string, 0, max, &n))
        return -1;
    const char *start = (const char *) self->data + self->pos;
    if (!bly_codec_utf8_valid(start, n))
        return bly_codec_fail(self, "%s: string is not valid UTF-8 (or holds NUL)", what);
    self->pos += n;
    *text = start;
    *size = n;
    return 0;
}

int
bly_codec_get_bin(bly_codec_reader_t *self, const char *what, size_t min, size_t max,
                  const uint8_t **data, size_t *size)
{
    bly_assert(self);
    bly_assert(data);
    bly_assert(size);
    size_t n = 0;
    if (s_get_sized(self, what, &s_bin, min, max, &n))
        return -1;
    *data = self->data + self->pos;
    *size = n;
    self->pos += n;
    return 0;
}

//  Length of the UTF-8 sequence at `s` (of `left` bytes), or 0 when it is invalid.
static size_t
s_utf8_sequence(const uint8_t *s, size_t left)
{
    uint8_t c = s[0];
    if (c == 0)
        return 0;
    if (c < 0x80)
        return 1;
    size_t length = 0;
    uint32_t code = 0;
    uint32_t minimum = 0;
    if ((c & 0xe0) == 0xc0) {
        length = 2, code = c & 0x1f, minimum = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        length = 3, code = c & 0x0f, minimum = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        length = 4, code = c & 0x07, minimum = 0x10000;
    } else {
        return 0;
    }
    if (length > left)
        return 0;
    for (size_t i = 1; i < length; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        code = (code << 6) | (s[i] & 0x3f);
    }
    if (code < minimum || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
        return 0;
    return length;
}

bool
bly_codec_utf8_valid(const char *text, size_t size)
{
    bly_assert(text || size == 0);
    const uint8_t *s = (const uint8_t *) text;
    size_t pos = 0;
    while (pos < size) {
        size_t length = s_utf8_sequence(s + pos, size - pos);
        if (length == 0)
            return false;
        pos += length;
    }
    return true;
}

char *
bly_codec_strndup(const char *text, size_t size)
{
    bly_assert(text || size == 0);
    char *copy = malloc(size + 1);
    if (!copy)
        return NULL;
    if (size > 0)
        memcpy(copy, text, size);
    copy[size] = 0;
    return copy;
}

int
bly_codec_grow(void **items, size_t *capacity, size_t need, size_t max, size_t item_size)
{
    bly_assert(items);
    bly_assert(capacity);
    bly_assert(item_size > 0);
    if (need <= *capacity)
        return 0;
    if (need > max || max > SIZE_MAX / item_size)
        return -1;
    size_t grown = *capacity < 4 ? 4 : *capacity * 2;
    if (grown < need)
        grown = need;
    if (grown > max)
        grown = max;
    uint8_t *bigger = realloc(*items, grown * item_size);
    if (!bigger)
        return -1;
    memset(bigger + *capacity * item_size, 0, (grown - *capacity) * item_size);
    *items = bigger;
    *capacity = grown;
    return 0;
}
