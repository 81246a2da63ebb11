/*  test_identity - key files: create, reload, refuse bad ones; signatures; Curve keys. */

#include "bly_identity.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char s_dir[256];
static char s_path[300];

static void
s_setup(void)
{
    snprintf(s_dir, sizeof(s_dir), "/tmp/bly-identity-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
    snprintf(s_path, sizeof(s_path), "%s/node.key", s_dir);
}

static void
s_teardown(void)
{
    unlink(s_path);
    rmdir(s_dir);
}

START_TEST(test_create_and_reload)
{
    char err[512] = "";
    bly_identity_t *first = bly_identity_load_or_create(s_path, err, sizeof(err));
    ck_assert_msg(first, "%s", err);
    struct stat st;
    ck_assert_int_eq(stat(s_path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(st.st_size, 64);
    bly_identity_t *second = bly_identity_load_or_create(s_path, err, sizeof(err));
    ck_assert_msg(second, "%s", err);
    ck_assert_str_eq(bly_identity_id_hex(first), bly_identity_id_hex(second));
    ck_assert_str_eq(bly_identity_curve_public_z85(first), bly_identity_curve_public_z85(second));
    ck_assert_int_eq(strlen(bly_identity_id_hex(first)), 64);
    bly_identity_destroy(&first);
    bly_identity_destroy(&second);
    bly_identity_destroy(&second);   //  Twice is harmless.
    ck_assert_ptr_null(second);
}
END_TEST

START_TEST(test_refuse_group_readable)
{
    char err[512] = "";
    bly_identity_t *id = bly_identity_load_or_create(s_path, err, sizeof(err));
    ck_assert_ptr_nonnull(id);
    bly_identity_destroy(&id);
    ck_assert_int_eq(chmod(s_path, 0640), 0);
    ck_assert_ptr_null(bly_identity_load(s_path, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "group or others"));
    ck_assert_ptr_null(bly_identity_load_or_create(s_path, err, sizeof(err)));
    ck_assert_int_eq(chmod(s_path, 0604), 0);
    ck_assert_ptr_null(bly_identity_load(s_path, err, sizeof(err)));
    ck_assert_int_eq(chmod(s_path, 0600), 0);
    id = bly_identity_load(s_path, err, sizeof(err));
    ck_assert_ptr_nonnull(id);
    bly_identity_destroy(&id);
}
END_TEST

static void
s_write(const void *data, size_t size)
{
    unlink(s_path);
    int fd = open(s_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, size), (ssize_t) size);
    close(fd);
}

START_TEST(test_refuse_wrong_size_and_corrupt)
{
    char err[512] = "";
    uint8_t bytes[65];
    memset(bytes, 7, sizeof(bytes));
    s_write(bytes, 63);
    ck_assert_ptr_null(bly_identity_load(s_path, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "63 bytes"));
    s_write(bytes, 65);
    ck_assert_ptr_null(bly_identity_load(s_path, err, sizeof(err)));
    s_write(bytes, 0);
    ck_assert_ptr_null(bly_identity_load(s_path, err, sizeof(err)));
    //  Right size, but the public half does not match the seed.
    s_write(bytes, 64);
    ck_assert_ptr_null(bly_identity_load(s_path, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "corrupt"));
    //  A good file with one flipped bit in the public half.
    unlink(s_path);
    bly_identity_t *id = bly_identity_load_or_create(s_path, err, sizeof(err));
    ck_assert_ptr_nonnull(id);
    memcpy(bytes, bly_identity_secret_key(id), 64);
    bly_identity_destroy(&id);
    bytes[40] ^= 1;
    s_write(bytes, 64);
    ck_assert_ptr_null(bly_identity_load(s_path, err, sizeof(err)));
    //  Missing file, and a folder instead of a file.
    unlink(s_path);
    ck_assert_ptr_null(bly_identity_load(s_path, err, sizeof(err)));
    ck_assert_ptr_null(bly_identity_load(s_dir, err, sizeof(err)));
    ck_assert_int_eq(bly_identity_check_file(s_path, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_sign_verify)
{
    bly_identity_t *a = bly_identity_new_random();
    bly_identity_t *b = bly_identity_new_random();
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_ne(bly_identity_id_hex(a), bly_identity_id_hex(b));
    const uint8_t data[] = "register node1";
    uint8_t sig[64];
    ck_assert_int_eq(bly_identity_sign(a, data, sizeof(data), sig), 0);
    ck_assert(bly_identity_verify(bly_identity_public_key(a), data, sizeof(data), sig));
    ck_assert(!bly_identity_verify(bly_identity_public_key(b), data, sizeof(data), sig));
    ck_assert(!bly_identity_verify(bly_identity_public_key(a), data, sizeof(data) - 1, sig));
    sig[3] ^= 0x10;
    ck_assert(!bly_identity_verify(bly_identity_public_key(a), data, sizeof(data), sig));
    bly_identity_destroy(&a);
    bly_identity_destroy(&b);
}
END_TEST

START_TEST(test_curve_from_id_and_hex)
{
    bly_identity_t *a = bly_identity_new_random();
    char z85[BLY_IDENTITY_Z85_SIZE];
    ck_assert_int_eq(bly_identity_curve_z85_from_id(bly_identity_public_key(a), z85), 0);
    ck_assert_str_eq(z85, bly_identity_curve_public_z85(a));
    uint8_t pk[32];
    ck_assert_int_eq(bly_identity_id_from_hex(bly_identity_id_hex(a), pk), 0);
    ck_assert_mem_eq(pk, bly_identity_public_key(a), 32);
    char hex[BLY_IDENTITY_HEX_SIZE];
    bly_identity_id_to_hex(pk, hex);
    ck_assert_str_eq(hex, bly_identity_id_hex(a));
    //  Bad hex: short, long, non-hex.
    ck_assert_int_eq(bly_identity_id_from_hex("abcd", pk), -1);
    char bad[70];
    memset(bad, 'a', 65);
    bad[65] = 0;
    ck_assert_int_eq(bly_identity_id_from_hex(bad, pk), -1);
    bad[64] = 0;
    bad[10] = 'g';
    ck_assert_int_eq(bly_identity_id_from_hex(bad, pk), -1);
    //  A key that is not a curve point (all 0xff) has no Curve form.
    memset(pk, 0xff, sizeof(pk));
    ck_assert_int_eq(bly_identity_curve_z85_from_id(pk, z85), -1);
    bly_identity_destroy(&a);
}
END_TEST

START_TEST(test_save_refuses_existing)
{
    char err[512];
    bly_identity_t *a = bly_identity_new_random();
    ck_assert_int_eq(bly_identity_save(a, s_path, err, sizeof(err)), 0);
    ck_assert_int_eq(bly_identity_save(a, s_path, err, sizeof(err)), -1);
    bly_identity_destroy(&a);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("identity");
    TCase *tc = tcase_create("identity");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_create_and_reload);
    tcase_add_test(tc, test_refuse_group_readable);
    tcase_add_test(tc, test_refuse_wrong_size_and_corrupt);
    tcase_add_test(tc, test_sign_verify);
    tcase_add_test(tc, test_curve_from_id_and_hex);
    tcase_add_test(tc, test_save_refuses_existing);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? 1 : 0;
}
