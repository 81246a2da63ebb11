/*  =========================================================================
    bly_unicode - code point classes and UTF-8 for the tokenizer

    Classes come from tables generated at build time from Python's
    unicodedata (tools/gen_unicode_tables.py): letters (L*), numbers (N*)
    and whitespace (the White_Space property).
    ========================================================================= */

#ifndef BLY_UNICODE_H_INCLUDED
#define BLY_UNICODE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define BLY_UNICODE_LETTER 1u
#define BLY_UNICODE_NUMBER 2u
#define BLY_UNICODE_WHITESPACE 4u
#define BLY_UNICODE_REPLACEMENT 0xFFFDu

typedef struct {
    uint32_t first;     //  First code point of the range.
    uint32_t last;      //  Last code point, inclusive.
    uint32_t flags;     //  BLY_UNICODE_* bits.
} bly_unicode_range_t;

//  Class bits of a code point (0 for anything else, and past U+10FFFF).
uint32_t bly_unicode_flags(uint32_t cp);

//  Unicode version the tables were generated from.
const char *bly_unicode_version(void);

//  Decode one code point at text[*pos], advancing *pos. As llama.cpp does,
//  a byte that does not start a complete sequence decodes to U+FFFD and
//  advances one byte; overlong forms and surrogates are taken as they are.
//  Sequences past U+10FFFF are invalid too.
uint32_t bly_utf8_decode(const char *text, size_t size, size_t *pos);

//  Encode a code point (<= U+10FFFF) into out (4 bytes room). Returns bytes.
size_t bly_utf8_encode(uint32_t cp, char *out);

#endif
