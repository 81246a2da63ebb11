/*  =========================================================================
    bly_codec_rt - the hand-written runtime under every generated codec

    A canonical MessagePack writer and a bounded, canonical-only reader.
    The generated bly_<proto>_msg.c files call these; nothing else should.

    Writer: appends the smallest encoding of each item to a growing buffer
    capped at BLY_FRAME_SIZE_MAX; once it fails it stays failed.
    Reader: walks a borrowed buffer; every call checks the type marker,
    that the item is in its smallest form, that its length fits the limit
    given by the schema and what is left of the buffer, then advances.
    Nothing in the reader allocates. On failure it writes a reason into
    the caller's error buffer and returns -1.
    ========================================================================= */

#ifndef BLY_CODEC_RT_H_INCLUDED
#define BLY_CODEC_RT_H_INCLUDED

#include "bly_limits.h"
#include "bly_log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;    //  Owned, malloc'd; NULL until the first byte.
    size_t size;      //  Bytes written.
    size_t capacity;  //  Bytes allocated.
    bool failed;      //  Out of memory or over BLY_FRAME_SIZE_MAX.
} bly_codec_writer_t;

//  Start an empty writer. Plain data: bly_codec_writer_t w = {0} also works.
void bly_codec_writer_init(bly_codec_writer_t *self);

//  Free what the writer holds and reset it.
void bly_codec_writer_reset(bly_codec_writer_t *self);

//  Hand the bytes to the caller (who frees them). Returns 0, or -1 when the
//  writer failed (then nothing is handed over and the writer is reset).
BLY_MUST_USE int bly_codec_writer_take(bly_codec_writer_t *self, uint8_t **buf, size_t *size);

void bly_codec_put_array(bly_codec_writer_t *self, size_t count);
void bly_codec_put_uint(bly_codec_writer_t *self, uint64_t value);
//  Non-negative values take the unsigned forms, as msgpack-c and Python do.
void bly_codec_put_int(bly_codec_writer_t *self, int64_t value);
void bly_codec_put_bool(bly_codec_writer_t *self, bool value);
void bly_codec_put_str(bly_codec_writer_t *self, const char *text, size_t size);
void bly_codec_put_bin(bly_codec_writer_t *self, const uint8_t *data, size_t size);
//  Raw bytes (tests use it to build malformed input).
void bly_codec_put_raw(bly_codec_writer_t *self, const uint8_t *data, size_t size);

typedef struct {
    const uint8_t *data;  //  Borrowed input.
    size_t size;          //  Input size.
    size_t pos;           //  Next byte to read.
    char *err;            //  Caller's error buffer, may be NULL.
    size_t err_size;      //  Its size.
} bly_codec_reader_t;

//  Start reading `data`. `err` receives the reason of the first failure.
void bly_codec_reader_init(bly_codec_reader_t *self, const uint8_t *data, size_t size, char *err,
                           size_t err_size);

//  Bytes not read yet.
size_t bly_codec_reader_left(const bly_codec_reader_t *self);

//  Record a failure reason (printf format) and return -1.
int bly_codec_fail(bly_codec_reader_t *self, const char *format, ...) BLY_PRINTF(2, 3);

//  An array header with between `min` and `max` elements. Each element takes at least one
//  byte, so a count above what is left of the input is refused before anyone allocates.
BLY_MUST_USE int bly_codec_get_array(bly_codec_reader_t *self, const char *what, size_t min,
                                     size_t max, size_t *count);

//  An unsigned integer no larger than `max`.
BLY_MUST_USE int bly_codec_get_uint(bly_codec_reader_t *self, const char *what, uint64_t max,
                                    uint64_t *value);

//  A signed 64-bit integer (non-negative values must use the unsigned forms).
BLY_MUST_USE int bly_codec_get_int(bly_codec_reader_t *self, const char *what, int64_t *value);

BLY_MUST_USE int bly_codec_get_bool(bly_codec_reader_t *self, const char *what, bool *value);

//  A str of at most `max` bytes, valid UTF-8 without NUL. `*text` points into the input
//  (not NUL-terminated): copy it.
BLY_MUST_USE int bly_codec_get_str(bly_codec_reader_t *self, const char *what, size_t max,
                                   const char **text, size_t *size);

//  A bin of `min` to `max` bytes; `*data` points into the input: copy it.
BLY_MUST_USE int bly_codec_get_bin(bly_codec_reader_t *self, const char *what, size_t min,
                                   size_t max, const uint8_t **data, size_t *size);

//  True when `text` (of `size` bytes) is valid UTF-8 with no NUL, no overlong forms, no
//  surrogates and nothing above U+10FFFF.
bool bly_codec_utf8_valid(const char *text, size_t size);

//  Make `*items` (an array of `*capacity` items of `item_size` bytes) hold at least `need`
//  items, growing geometrically up to `max` items; new items are zeroed. Returns 0, or -1
//  when `need` is above `max` or memory runs out (then nothing changes).
BLY_MUST_USE int bly_codec_grow(void **items, size_t *capacity, size_t need, size_t max,
                                size_t item_size);

//  A malloc'd NUL-terminated copy of `size` bytes, or NULL when out of memory.
char *bly_codec_strndup(const char *text, size_t size);

#endif
