/*  test_codec_rt - the hand-written codec runtime: canonical writer, bounded reader.

    Every form boundary of every MessagePack family, both ways: the writer picks the
    smallest form, the reader accepts exactly that and refuses the wider ones. */

#include "bly_codec_rt.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

//  Bytes the writer produces for one call, compared with the expected encoding.
#define S_EXPECT(call, ...)                                                                        \
    do {                                                                                           \
        static const uint8_t expected[] = {__VA_ARGS__};                                           \
        bly_codec_writer_t w;                                                                      \
        bly_codec_writer_init(&w);                                                                 \
        call;                                                                                      \
        ck_assert(!w.failed);                                                                      \
        ck_assert_uint_ge(w.size, sizeof(expected));                                               \
        ck_assert(memcmp(w.data, expected, sizeof(expected)) == 0);                                \
        bly_codec_writer_reset(&w);                                                                \
    } while (0)

START_TEST(test_put_uint_forms)
{
    S_EXPECT(bly_codec_put_uint(&w, 0), 0x00);
    S_EXPECT(bly_codec_put_uint(&w, 127), 0x7f);
    S_EXPECT(bly_codec_put_uint(&w, 128), 0xcc, 0x80);
    S_EXPECT(bly_codec_put_uint(&w, 255), 0xcc, 0xff);
    S_EXPECT(bly_codec_put_uint(&w, 256), 0xcd, 0x01, 0x00);
    S_EXPECT(bly_codec_put_uint(&w, 65535), 0xcd, 0xff, 0xff);
    S_EXPECT(bly_codec_put_uint(&w, 65536), 0xce, 0x00, 0x01, 0x00, 0x00);
    S_EXPECT(bly_codec_put_uint(&w, UINT32_MAX), 0xce, 0xff, 0xff, 0xff, 0xff);
    S_EXPECT(bly_codec_put_uint(&w, (uint64_t) UINT32_MAX + 1), 0xcf, 0, 0, 0, 1, 0, 0, 0, 0);
    S_EXPECT(bly_codec_put_uint(&w, UINT64_MAX), 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
             0xff);
}
END_TEST

START_TEST(test_put_int_forms)
{
    S_EXPECT(bly_codec_put_int(&w, 5), 0x05);
    S_EXPECT(bly_codec_put_int(&w, 200), 0xcc, 0xc8);
    S_EXPECT(bly_codec_put_int(&w, -1), 0xff);
    S_EXPECT(bly_codec_put_int(&w, -32), 0xe0);
    S_EXPECT(bly_codec_put_int(&w, -33), 0xd0, 0xdf);
    S_EXPECT(bly_codec_put_int(&w, -128), 0xd0, 0x80);
    S_EXPECT(bly_codec_put_int(&w, -129), 0xd1, 0xff, 0x7f);
    S_EXPECT(bly_codec_put_int(&w, INT16_MIN), 0xd1, 0x80, 0x00);
    S_EXPECT(bly_codec_put_int(&w, INT16_MIN - 1), 0xd2, 0xff, 0xff, 0x7f, 0xff);
    S_EXPECT(bly_codec_put_int(&w, INT32_MIN), 0xd2, 0x80, 0x00, 0x00, 0x00);
    S_EXPECT(bly_codec_put_int(&w, (int64_t) INT32_MIN - 1), 0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f,
             0xff, 0xff, 0xff);
    S_EXPECT(bly_codec_put_int(&w, INT64_MIN), 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);
    S_EXPECT(bly_codec_put_bool(&w, true), 0xc3);
    S_EXPECT(bly_codec_put_bool(&w, false), 0xc2);
}
END_TEST

START_TEST(test_put_length_forms)
{
    static char text[70000];
    memset(text, 'a', sizeof(text));
    S_EXPECT(bly_codec_put_str(&w, text, 0), 0xa0);
    S_EXPECT(bly_codec_put_str(&w, text, 31), 0xbf);
    S_EXPECT(bly_codec_put_str(&w, text, 32), 0xd9, 0x20);
    S_EXPECT(bly_codec_put_str(&w, text, 255), 0xd9, 0xff);
    S_EXPECT(bly_codec_put_str(&w, text, 256), 0xda, 0x01, 0x00);
    S_EXPECT(bly_codec_put_str(&w, text, 65536), 0xdb, 0x00, 0x01, 0x00, 0x00);
    S_EXPECT(bly_codec_put_bin(&w, (const uint8_t *) text, 0), 0xc4, 0x00);
    S_EXPECT(bly_codec_put_bin(&w, (const uint8_t *) text, 256), 0xc5, 0x01, 0x00);
    S_EXPECT(bly_codec_put_bin(&w, (const uint8_t *) text, 65536), 0xc6, 0x00, 0x01, 0x00,
             0x00);
    S_EXPECT(bly_codec_put_array(&w, 15), 0x9f);
    S_EXPECT(bly_codec_put_array(&w, 16), 0xdc, 0x00, 0x10);
    S_EXPECT(bly_codec_put_array(&w, 65536), 0xdd, 0x00, 0x01, 0x00, 0x00);
}
END_TEST

START_TEST(test_writer_limits)
{
    bly_codec_writer_t w;
    bly_codec_writer_init(&w);
    uint8_t *buf = NULL;
    size_t size = 0;
    //  Nothing written: take refuses.
    ck_assert_int_eq(bly_codec_writer_take(&w, &buf, &size), -1);
    //  Past the frame limit: the writer fails and stays failed.
    static const uint8_t byte = 0;
    bly_codec_put_raw(&w, &byte, 1);
    bly_codec_put_bin(&w, &byte, BLY_FRAME_SIZE_MAX);
    ck_assert(w.failed);
    bly_codec_put_uint(&w, 1);
    ck_assert(w.failed);
    ck_assert_int_eq(bly_codec_writer_take(&w, &buf, &size), -1);
    ck_assert_ptr_null(w.data);
    bly_codec_put_uint(&w, 1);
    ck_assert_int_eq(bly_codec_writer_take(&w, &buf, &size), 0);
    ck_assert_uint_eq(size, 1);
    free(buf);
}
END_TEST

static void
s_in(bly_codec_reader_t *r, char *err, size_t err_size, const uint8_t *data, size_t size)
{
    bly_codec_reader_init(r, data, size, err, err_size);
}

//  Point the reader `r` at a literal (error buffer `err`), then evaluate `call`.
#define S_READ(bytes_init, call)                                                                   \
    (s_in(&r, err, sizeof(err), (const uint8_t[]) bytes_init,                                      \
          sizeof((const uint8_t[]) bytes_init)),                                                   \
     (call))
#define S_BYTES(...) {__VA_ARGS__}

START_TEST(test_get_uint)
{
    bly_codec_reader_t r;
    char err[128];
    uint64_t v = 0;
    static const struct {
        uint8_t bytes[9];
        size_t size;
        int rc;
        uint64_t value;
    } cases[] = {
        {{0x7f}, 1, 0, 127},
        {{0xcc, 0x80}, 2, 0, 128},
        {{0xcc, 0x7f}, 2, -1, 0},
        {{0xcd, 0x01, 0x00}, 3, 0, 256},
        {{0xcd, 0x00, 0xff}, 3, -1, 0},
        {{0xce, 0x00, 0x01, 0x00, 0x00}, 5, 0, 65536},
        {{0xce, 0x00, 0x00, 0xff, 0xff}, 5, -1, 0},
        {{0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, 9, 0, 1ull << 32},
        {{0xcf, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, 9, -1, 0},
        {{0xcf, 0, 0, 0, 1, 0, 0, 0}, 8, -1, 0},
        {{0xff}, 1, -1, 0},
        {{0xd0, 0x01}, 2, -1, 0},
        {{0xc2}, 1, -1, 0},
        {{0xa1, 0x31}, 2, -1, 0},
        {{0}, 0, -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bly_codec_reader_init(&r, cases[i].bytes, cases[i].size, err, sizeof(err));
        ck_assert_msg(bly_codec_get_uint(&r, "x", UINT64_MAX, &v) == cases[i].rc, "case %zu", i);
        if (cases[i].rc == 0) {
            ck_assert_uint_eq(v, cases[i].value);
            ck_assert_uint_eq(bly_codec_reader_left(&r), 0);
        } else {
            ck_assert_uint_gt(strlen(err), 0);
        }
    }
    //  The schema maximum.
    ck_assert_int_eq(S_READ(S_BYTES(0xcd, 0x01, 0x00), bly_codec_get_uint(&r, "x", 255, &v)), -1);
    ck_assert_ptr_nonnull(strstr(err, "above the maximum"));
    ck_assert_int_eq(S_READ(S_BYTES(0xcc, 0xff), bly_codec_get_uint(&r, "x", 255, &v)), 0);
}
END_TEST

START_TEST(test_get_int)
{
    bly_codec_reader_t r;
    char err[128];
    int64_t v = 0;
    static const struct {
        uint8_t bytes[9];
        size_t size;
        int rc;
        int64_t value;
    } cases[] = {
        {{0x05}, 1, 0, 5},
        {{0xcc, 0xc8}, 2, 0, 200},
        {{0xff}, 1, 0, -1},
        {{0xe0}, 1, 0, -32},
        {{0xd0, 0xdf}, 2, 0, -33},
        {{0xd0, 0xe0}, 2, -1, 0},            //  -32 fits a negative fixint
        {{0xd0, 0x05}, 2, -1, 0},            //  non-negative in a signed form
        {{0xd1, 0xff, 0x7f}, 3, 0, -129},
        {{0xd1, 0xff, 0x80}, 3, -1, 0},      //  -128 fits int8
        {{0xd2, 0xff, 0xff, 0x7f, 0xff}, 5, 0, INT16_MIN - 1},
        {{0xd2, 0xff, 0xff, 0x80, 0x00}, 5, -1, 0},
        {{0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff}, 9, 0, (int64_t) INT32_MIN - 1},
        {{0xd3, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0}, 9, -1, 0},
        {{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, 0, INT64_MIN},
        {{0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, -1, 0},  //  above INT64_MAX
        {{0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, 0, INT64_MAX},
        {{0xc3}, 1, -1, 0},
        {{0xd1, 0xff}, 2, -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bly_codec_reader_init(&r, cases[i].bytes, cases[i].size, err, sizeof(err));
        ck_assert_msg(bly_codec_get_int(&r, "x", &v) == cases[i].rc, "case %zu", i);
        if (cases[i].rc == 0)
            ck_assert_int_eq(v, cases[i].value);
    }
}
END_TEST

START_TEST(test_get_bool)
{
    bly_codec_reader_t r;
    char err[128];
    bool v = false;
    ck_assert_int_eq(S_READ(S_BYTES(0xc3), bly_codec_get_bool(&r, "b", &v)), 0);
    ck_assert(v);
    ck_assert_int_eq(S_READ(S_BYTES(0xc2), bly_codec_get_bool(&r, "b", &v)), 0);
    ck_assert(!v);
    ck_assert_int_eq(S_READ(S_BYTES(0x01), bly_codec_get_bool(&r, "b", &v)), -1);
    ck_assert_int_eq(S_READ(S_BYTES(0xc0), bly_codec_get_bool(&r, "b", &v)), -1);
    bly_codec_reader_init(&r, NULL, 0, err, sizeof(err));
    ck_assert_int_eq(bly_codec_get_bool(&r, "b", &v), -1);
    ck_assert_ptr_nonnull(strstr(err, "truncated"));
}
END_TEST

START_TEST(test_get_lengths)
{
    bly_codec_reader_t r;
    char err[128];
    const char *text = NULL;
    const uint8_t *data = NULL;
    size_t size = 0;
    ck_assert_int_eq(S_READ(S_BYTES(0xa2, 'h', 'i'), bly_codec_get_str(&r, "s", 2, &text, &size)),
                     0);
    ck_assert_uint_eq(size, 2);
    ck_assert(memcmp(text, "hi", 2) == 0);
    //  Over the schema limit, non-canonical str8, length beyond the input, wrong family.
    ck_assert_int_eq(S_READ(S_BYTES(0xa2, 'h', 'i'), bly_codec_get_str(&r, "s", 1, &text, &size)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "limit 1"));
    ck_assert_int_eq(
        S_READ(S_BYTES(0xd9, 0x02, 'h', 'i'), bly_codec_get_str(&r, "s", 9, &text, &size)), -1);
    ck_assert_ptr_nonnull(strstr(err, "non-canonical"));
    ck_assert_int_eq(
        S_READ(S_BYTES(0xdb, 0x7f, 0xff, 0xff, 0xff, 'h'), bly_codec_get_str(&r, "s", SIZE_MAX,
                                                                             &text, &size)),
        -1);
    ck_assert_int_eq(S_READ(S_BYTES(0xc4, 0x01, 'h'), bly_codec_get_str(&r, "s", 9, &text, &size)),
                     -1);
    //  UTF-8: NUL, lone continuation, overlong, surrogate, above U+10FFFF are refused.
    ck_assert_int_eq(S_READ(S_BYTES(0xa1, 0x00), bly_codec_get_str(&r, "s", 9, &text, &size)), -1);
    ck_assert_int_eq(S_READ(S_BYTES(0xa1, 0x80), bly_codec_get_str(&r, "s", 9, &text, &size)), -1);
    ck_assert_int_eq(S_READ(S_BYTES(0xa2, 0xc3, 0x28), bly_codec_get_str(&r, "s", 9, &text, &size)),
                     -1);
    ck_assert_int_eq(S_READ(S_BYTES(0xa2, 0xc0, 0xaf), bly_codec_get_str(&r, "s", 9, &text, &size)),
                     -1);
    ck_assert_int_eq(
        S_READ(S_BYTES(0xa3, 0xed, 0xa0, 0x80), bly_codec_get_str(&r, "s", 9, &text, &size)), -1);
    ck_assert_int_eq(S_READ(S_BYTES(0xa4, 0xf4, 0x90, 0x80, 0x80),
                            bly_codec_get_str(&r, "s", 9, &text, &size)),
                     -1);
    ck_assert_int_eq(S_READ(S_BYTES(0xa4, 0xf0, 0x9f, 0x98, 0x80),
                            bly_codec_get_str(&r, "s", 9, &text, &size)),
                     0);
    //  Bin: exact sizes, bin16 for a short one is non-canonical, truncated payload.
    ck_assert_int_eq(
        S_READ(S_BYTES(0xc4, 0x02, 1, 2), bly_codec_get_bin(&r, "b", 2, 2, &data, &size)), 0);
    ck_assert_int_eq(
        S_READ(S_BYTES(0xc4, 0x02, 1, 2), bly_codec_get_bin(&r, "b", 3, 3, &data, &size)), -1);
    ck_assert_ptr_nonnull(strstr(err, "expected 3"));
    ck_assert_int_eq(
        S_READ(S_BYTES(0xc5, 0x00, 0x02, 1, 2), bly_codec_get_bin(&r, "b", 0, 9, &data, &size)),
        -1);
    ck_assert_int_eq(S_READ(S_BYTES(0xc4, 0x05, 1, 2), bly_codec_get_bin(&r, "b", 0, 9, &data,
                                                                        &size)),
                     -1);
}
END_TEST

START_TEST(test_get_array)
{
    bly_codec_reader_t r;
    char err[128];
    size_t count = 0;
    ck_assert_int_eq(S_READ(S_BYTES(0x92, 1, 2), bly_codec_get_array(&r, "a", 0, 5, &count)), 0);
    ck_assert_uint_eq(count, 2);
    ck_assert_int_eq(S_READ(S_BYTES(0x92, 1, 2), bly_codec_get_array(&r, "a", 3, 5, &count)), -1);
    ck_assert_int_eq(S_READ(S_BYTES(0x92, 1, 2), bly_codec_get_array(&r, "a", 0, 1, &count)), -1);
    ck_assert_int_eq(
        S_READ(S_BYTES(0xdc, 0x00, 0x02, 1, 2), bly_codec_get_array(&r, "a", 0, 5, &count)), -1);
    ck_assert_ptr_nonnull(strstr(err, "non-canonical"));
    //  A count above the bytes left is refused before anyone allocates for it.
    ck_assert_int_eq(S_READ(S_BYTES(0xdd, 0x00, 0x10, 0x00, 0x00, 1),
                            bly_codec_get_array(&r, "a", 0, SIZE_MAX, &count)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "in 1 bytes"));
    ck_assert_int_eq(S_READ(S_BYTES(0x80), bly_codec_get_array(&r, "a", 0, 5, &count)), -1);
    //  The first failure's reason is the one kept.
    ck_assert_int_eq(bly_codec_fail(&r, "later"), -1);
    ck_assert_ptr_null(strstr(err, "later"));
}
END_TEST

START_TEST(test_grow_and_strndup)
{
    uint32_t *items = NULL;
    size_t capacity = 0;
    ck_assert_int_eq(bly_codec_grow((void **) &items, &capacity, 0, 4, sizeof(*items)), 0);
    ck_assert_ptr_null(items);
    ck_assert_int_eq(bly_codec_grow((void **) &items, &capacity, 1, 6, sizeof(*items)), 0);
    ck_assert_uint_eq(capacity, 4);
    ck_assert_uint_eq(items[3], 0);
    ck_assert_int_eq(bly_codec_grow((void **) &items, &capacity, 5, 6, sizeof(*items)), 0);
    ck_assert_uint_eq(capacity, 6);
    ck_assert_int_eq(bly_codec_grow((void **) &items, &capacity, 7, 6, sizeof(*items)), -1);
    ck_assert_uint_eq(capacity, 6);
    ck_assert_int_eq(bly_codec_grow((void **) &items, &capacity, 7, SIZE_MAX, 1u << 20), -1);
    free(items);
    char *copy = bly_codec_strndup("abcdef", 3);
    ck_assert_str_eq(copy, "abc");
    free(copy);
    ck_assert(bly_codec_utf8_valid("", 0));
    ck_assert(!bly_codec_utf8_valid("\xe2\x82", 2));
    ck_assert(bly_codec_utf8_valid("\xe2\x82\xac", 3));
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("codec_rt");
    TCase *tc = tcase_create("rt");
    tcase_add_test(tc, test_put_uint_forms);
    tcase_add_test(tc, test_put_int_forms);
    tcase_add_test(tc, test_put_length_forms);
    tcase_add_test(tc, test_writer_limits);
    tcase_add_test(tc, test_get_uint);
    tcase_add_test(tc, test_get_int);
    tcase_add_test(tc, test_get_bool);
    tcase_add_test(tc, test_get_lengths);
    tcase_add_test(tc, test_get_array);
    tcase_add_test(tc, test_grow_and_strndup);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
