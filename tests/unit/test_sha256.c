/*  test_sha256 - bly_sha256 (libcrypto) against published vectors and
    libsodium's independent implementation, one shot and incremental. */

#include "bly_sha256.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_hex(const uint8_t *d, char *out)
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

//  FIPS 180-2 examples.
START_TEST(test_vectors)
{
    uint8_t d[32];
    char hex[65];
    bly_sha256(d, NULL, 0);
    s_hex(d, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    bly_sha256(d, "abc", 3);
    s_hex(d, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    bly_sha256(d, two, strlen(two));
    s_hex(d, hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    //  One million 'a', fed in uneven pieces.
    bly_sha256_t st;
    bly_sha256_init(&st);
    char a[997];
    memset(a, 'a', sizeof(a));
    size_t left = 1000000;
    for (size_t piece = 1; left > 0; piece = piece % (sizeof(a) - 7) + 7) {
        size_t n = piece < left ? piece : left;
        bly_sha256_update(&st, a, n);
        left -= n;
    }
    bly_sha256_final(&st, d);
    s_hex(d, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

//  Every length 0..1100 (all padding cases around block edges) and a few large
//  ones, against libsodium; incremental with every split point of short inputs.
START_TEST(test_against_libsodium)
{
    enum { MAX = 70000 };
    uint8_t *buf = malloc(MAX), a[32], b[32];
    ck_assert_ptr_nonnull(buf);
    randombytes_buf_deterministic(buf, MAX, (const uint8_t[32]){7});
    size_t big[] = {4096, 65535, 65536, MAX};
    for (size_t len = 0; len < 1100 + 4; len++) {
        size_t n = len < 1100 ? len : big[len - 1100];
        bly_sha256(a, buf, n);
        crypto_hash_sha256(b, buf, n);
        ck_assert_msg(memcmp(a, b, 32) == 0, "length %zu", n);
    }
    for (size_t len = 0; len <= 200; len++) {
        crypto_hash_sha256(b, buf, len);
        for (size_t cut = 0; cut <= len; cut++) {
            bly_sha256_t st;
            bly_sha256_init(&st);
            bly_sha256_update(&st, buf, cut);
            bly_sha256_update(&st, buf + cut, len - cut);
            bly_sha256_final(&st, a);
            ck_assert_msg(memcmp(a, b, 32) == 0, "length %zu cut %zu", len, cut);
        }
    }
    free(buf);
}
END_TEST

int
main(void)
{
    if (sodium_init() < 0)
        return EXIT_FAILURE;
    Suite *suite = suite_create("sha256");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_vectors);
    tcase_add_test(tc, test_against_libsodium);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
