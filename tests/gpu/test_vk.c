/*  test_vk - the Vulkan device layer: listing and choice, backend names, buffers (mapped and
    staged), dispatch limits and binding checks, timestamps. The validation layer is on and
    its errors fail the test. */

#include "bly_vk.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static bly_vk_t *
s_open(const bly_vk_options_t *opt)
{
    char error[256] = "";
    bly_vk_t *vk = bly_vk_new(opt, error, sizeof(error));
    ck_assert_msg(vk != NULL, "cannot open a device: %s", error);
    return vk;
}

static void
s_close(bly_vk_t **vk)
{
    bly_vk_destroy(vk);
    ck_assert_ptr_null(*vk);
    bly_vk_destroy(vk);     //  twice is harmless
    ck_assert_msg(bly_vk_validation_errors() == 0, "validation errors: %llu",
                  (unsigned long long) bly_vk_validation_errors());
}

START_TEST(test_list)
{
    bly_vk_info_t infos[BLY_VK_DEVICES_MAX];
    uint32_t n = 0;
    ck_assert_int_eq(bly_vk_list(infos, BLY_VK_DEVICES_MAX, &n), 0);
    ck_assert_uint_ge(n, 1);
    for (uint32_t i = 0; i < n; i++) {
        ck_assert_uint_eq(infos[i].index, i);
        ck_assert(strlen(infos[i].name) > 0);
        ck_assert_uint_ge(infos[i].max_storage_range, 1u << 27);   //  Vulkan minimum 2^27
        ck_assert_uint_ge(infos[i].max_push_bytes, 128);
        ck_assert_uint_ge(infos[i].max_shared_bytes, 16384);
    }
    //  At most `max` are written.
    uint32_t one = 0;
    ck_assert_int_eq(bly_vk_list(infos, 1, &one), 0);
    ck_assert_uint_eq(one, 1);
}
END_TEST

START_TEST(test_choose)
{
    bly_vk_info_t infos[4] = {{.type_rank = 3}, {.type_rank = 1}, {.type_rank = 0},
                              {.type_rank = 0}};
    ck_assert_uint_eq(bly_vk_choose(infos, 4), 2);     //  first discrete GPU
    ck_assert_uint_eq(bly_vk_choose(infos, 2), 1);     //  integrated before CPU
    ck_assert_uint_eq(bly_vk_choose(infos, 1), 0);
    int index = 99;
    ck_assert_int_eq(bly_vk_parse_backend("vulkan", &index), 0);
    ck_assert_int_eq(index, -1);
    ck_assert_int_eq(bly_vk_parse_backend("vulkan:0", &index), 0);
    ck_assert_int_eq(index, 0);
    ck_assert_int_eq(bly_vk_parse_backend("vulkan:15", &index), 0);
    ck_assert_int_eq(index, 15);
    const char *bad[] = {"vulkan:16", "vulkan:", "vulkan:-1", "vulkan:1x", "vulkan1", "cpu",
                         "vulkan:+1", "", NULL};
    for (size_t i = 0; bad[i]; i++)
        ck_assert_msg(bly_vk_parse_backend(bad[i], &index) == -1, "'%s' accepted", bad[i]);
    ck_assert_int_eq(bly_vk_parse_backend(NULL, &index), -1);
}
END_TEST

START_TEST(test_open)
{
    bly_vk_options_t opt = {.validation = true};
    bly_vk_t *vk = s_open(&opt);
    const bly_vk_info_t *info = bly_vk_info(vk);
    ck_assert_uint_eq(bly_vk_split_bytes(vk), info->max_storage_range & ~(uint64_t) 3);
    ck_assert_uint_ge(bly_vk_wg_size(vk), 4);
    if (bly_vk_uses_subgroups(vk))
        ck_assert_uint_eq(bly_vk_wg_size(vk), info->subgroup_size);
    bly_vk_destroy(&vk);
    opt.split_bytes = 1001;
    vk = s_open(&opt);
    ck_assert_uint_eq(bly_vk_split_bytes(vk), 1000);
    s_close(&vk);
    //  By index: the last listed device, then one past the end.
    bly_vk_info_t infos[BLY_VK_DEVICES_MAX];
    uint32_t n = 0;
    ck_assert_int_eq(bly_vk_list(infos, BLY_VK_DEVICES_MAX, &n), 0);
    opt = (bly_vk_options_t){.by_index = true, .device_index = (int) n - 1, .validation = true};
    vk = s_open(&opt);
    ck_assert_str_eq(bly_vk_info(vk)->name, infos[n - 1].name);
    s_close(&vk);
    opt.device_index = (int) n;
    char error[256] = "";
    ck_assert_ptr_null(bly_vk_new(&opt, error, sizeof(error)));
    ck_assert_msg(strstr(error, "no Vulkan device") != NULL, "error: %s", error);
}
END_TEST

//  Round trip through a buffer, mapped (_i 0) or through the staging buffer (_i 1), larger
//  than one staging piece.
START_TEST(test_buffers)
{
    bly_vk_options_t opt = {.validation = true, .force_staging = _i == 1};
    bly_vk_t *vk = s_open(&opt);
    size_t n = BLY_VK_STAGING_BYTES + 4099;
    uint8_t *data = malloc(n), *back = malloc(n);
    ck_assert(data && back);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t) (i * 7 + (i >> 12));
    bly_vk_buf_t *buf = bly_vk_buf_new(vk, n);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(bly_vk_buf_size(buf), (n + 3) & ~(size_t) 3);
    //  New buffers are zero.
    ck_assert_int_eq(bly_vk_buf_read(buf, n - 100, back, 100), 0);
    for (size_t i = 0; i < 100; i++)
        ck_assert_uint_eq(back[i], 0);
    ck_assert_int_eq(bly_vk_buf_write(buf, 0, data, n), 0);
    memset(back, 0, n);
    ck_assert_int_eq(bly_vk_buf_read(buf, 0, back, n), 0);
    ck_assert(memcmp(data, back, n) == 0);
    //  Odd offsets and sizes, and the limits: end of buffer ok, one byte past refused.
    ck_assert_int_eq(bly_vk_buf_write(buf, 13, data + 1000, 77), 0);
    ck_assert_int_eq(bly_vk_buf_read(buf, 13, back, 77), 0);
    ck_assert(memcmp(back, data + 1000, 77) == 0);
    uint64_t size = bly_vk_buf_size(buf);
    ck_assert_int_eq(bly_vk_buf_read(buf, size - 4, back, 4), 0);
    ck_assert_int_eq(bly_vk_buf_read(buf, size - 4, back, 5), -1);
    ck_assert_int_eq(bly_vk_buf_write(buf, size + 1, data, 0), -1);
    bly_vk_buf_destroy(&buf);
    ck_assert_ptr_null(buf);
    free(data);
    free(back);
    s_close(&vk);
}
END_TEST

//  Records `count` copies of 8 floats; returns bly_vk_submit's result.
static int
s_copies(bly_vk_t *vk, bly_vk_buf_t *a, bly_vk_buf_t *y, uint32_t count)
{
    struct { uint32_t n, a_off, b_off, y_off; } push = {8, 0, 0, 0};
    bly_vk_bind_t b[3] = {{.buf = a}, {.buf = a}, {.buf = y}};
    ck_assert_int_eq(bly_vk_begin(vk), 0);
    int rc = 0;
    for (uint32_t i = 0; i < count && rc == 0; i++) {
        push.y_off = i % 2 ? 8 : 0;
        rc = bly_vk_dispatch(vk, BLY_VK_K_COPY, b, 3, &push, sizeof(push), 1, 1, 1);
    }
    int submitted = bly_vk_submit(vk);
    ck_assert(rc == 0 || submitted == -1);
    return submitted;
}

START_TEST(test_dispatch_limits)
{
    bly_vk_options_t opt = {.validation = true, .split_bytes = 64};
    //  split_bytes bounds weight chunks only; bindings are checked against the device.
    bly_vk_t *vk = s_open(&opt);
    float x[16] = {1, 2, 3, 4, 5, 6, 7, 8}, y[16];
    bly_vk_buf_t *a = bly_vk_buf_new(vk, sizeof(x)), *out = bly_vk_buf_new(vk, sizeof(y));
    ck_assert(a && out);
    ck_assert_int_eq(bly_vk_buf_write(a, 0, x, sizeof(x)), 0);
    //  The most dispatches one submission holds, then one more.
    ck_assert_int_eq(s_copies(vk, a, out, BLY_VK_DISPATCH_MAX), 0);
    ck_assert_uint_eq(bly_vk_last_dispatches(vk), BLY_VK_DISPATCH_MAX);
    if (bly_vk_info(vk)->timestamps)
        ck_assert_uint_gt(bly_vk_last_gpu_ns(vk), 0);
    ck_assert_int_eq(bly_vk_buf_read(out, 0, y, sizeof(y)), 0);
    ck_assert(memcmp(y, x, 8 * sizeof(float)) == 0 && memcmp(y + 8, x, 8 * sizeof(float)) == 0);
    ck_assert_int_eq(s_copies(vk, a, out, BLY_VK_DISPATCH_MAX + 1), -1);
    //  The device still works after a failed recording.
    ck_assert_int_eq(s_copies(vk, a, out, 3), 0);
    //  A binding starting at or running past the end of its buffer, or misaligned: refused.
    bly_vk_buf_t *big = bly_vk_buf_new(vk, 256);
    struct { uint32_t n, a_off, b_off, y_off; } push = {8, 0, 0, 0};
    bly_vk_bind_t cases[3][3] = {
        {{.buf = a, .offset = 64}, {.buf = a}, {.buf = out}},
        {{.buf = a, .offset = 32, .range = 64}, {.buf = a}, {.buf = out}},
        {{.buf = big, .offset = 2, .range = 32}, {.buf = a}, {.buf = out}}};
    for (int c = 0; c < 3; c++) {
        ck_assert_int_eq(bly_vk_begin(vk), 0);
        ck_assert_int_eq(bly_vk_dispatch(vk, BLY_VK_K_COPY, cases[c], 3, &push, sizeof(push),
                                         1, 1, 1), -1);
        ck_assert_int_eq(bly_vk_submit(vk), -1);
    }
    bly_vk_buf_destroy(&big);
    bly_vk_buf_destroy(&a);
    bly_vk_buf_destroy(&out);
    s_close(&vk);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("vk");
    TCase *tc = tcase_create("device");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_list);
    tcase_add_test(tc, test_choose);
    tcase_add_test(tc, test_open);
    tcase_add_loop_test(tc, test_buffers, 0, 2);
    tcase_add_test(tc, test_dispatch_limits);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    if (!bly_vk_available())
        return 77;      //  No Vulkan driver at all: skipped, not passed.
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
