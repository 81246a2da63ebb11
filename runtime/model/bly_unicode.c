/*  =========================================================================
    bly_unicode - code point classes and UTF-8 for the tokenizer
    ========================================================================= */

#include "bly_unicode.h"
#include "bly_log.h"

#include "bly_unicode_table.h"   //  Generated: s_unicode_ranges.

uint32_t
bly_unicode_flags(uint32_t cp)
{
    size_t low = 0, high = BLY_UNICODE_RANGE_COUNT;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (cp < s_unicode_ranges[mid].first)
            high = mid;
        else if (cp > s_unicode_ranges[mid].last)
            low = mid + 1;
        else
            return s_unicode_ranges[mid].flags;
    }
    return 0;
}

const char *
bly_unicode_version(void)
{
    return BLY_UNICODE_VERSION;
}

static bool
s_continuation(const char *text, size_t size, size_t at)
{
    return at < size && ((uint8_t) text[at] & 0xC0) == 0x80;
}

uint32_t
bly_utf8_decode(const char *text, size_t size, size_t *pos)
{
    bly_assert(text);
    bly_assert(pos && *pos < size);
    size_t at = *pos;
    uint8_t lead = (uint8_t) text[at];
    size_t extra;
    uint32_t cp;
    if (lead < 0x80) {
        *pos = at + 1;
        return lead;
    } else if ((lead & 0xE0) == 0xC0) {
        extra = 1;
        cp = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
        extra = 2;
        cp = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
        extra = 3;
        cp = lead & 0x07;
    } else {
        *pos = at + 1;
        return BLY_UNICODE_REPLACEMENT;
    }
    for (size_t i = 1; i <= extra; i++) {
        if (!s_continuation(text, size, at + i)) {
            *pos = at + 1;
            return BLY_UNICODE_REPLACEMENT;
        }
        cp = (cp << 6) | ((uint8_t) text[at + i] & 0x3F);
    }
    if (cp > 0x10FFFF) {
        *pos = at + 1;
        return BLY_UNICODE_REPLACEMENT;
    }
    *pos = at + 1 + extra;
    return cp;
}

size_t
bly_utf8_encode(uint32_t cp, char *out)
{
    bly_assert(out);
    bly_assert(cp <= 0x10FFFF);
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char) (0xC0 | (cp >> 6));
        out[1] = (char) (0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char) (0xE0 | (cp >> 12));
        out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char) (0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char) (0xF0 | (cp >> 18));
    out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char) (0x80 | (cp & 0x3F));
    return 4;
}
