/*  =========================================================================
    bly_cli_devices - `blyan devices`: list the Vulkan devices and what they can do

    Index is what `--backend vulkan:INDEX` takes; the device `--backend vulkan`
    chooses is marked with '*'. Exit 0 with at least one device, 1 with none.
    ========================================================================= */

#include "bly_cli.h"
#include "bly_vk_config.h"

#include <stdio.h>

#if BLY_HAVE_VULKAN
#include "bly_vk.h"

static const char *
s_yes(bool v)
{
    return v ? "yes" : "no";
}

static void
s_print(const bly_vk_info_t *d, bool chosen)
{
    printf("%c %u: %s (%s, vendor 0x%04x device 0x%04x, Vulkan %u.%u.%u)\n", chosen ? '*' : ' ',
           d->index, d->name, d->type_name, d->vendor_id, d->device_id,
           (d->api_version >> 22) & 0x7f, (d->api_version >> 12) & 0x3ff,
           d->api_version & 0xfff);
    printf("    fp16 %s, 8-bit storage %s, 16-bit storage %s, integer dot %s\n",
           s_yes(d->float16), s_yes(d->storage8), s_yes(d->storage16), s_yes(d->int_dot));
    printf("    subgroup size %u, arithmetic %s, shuffle %s; timestamps %s\n", d->subgroup_size,
           s_yes(d->subgroup_arith), s_yes(d->subgroup_shuffle), s_yes(d->timestamps));
    printf("    maxStorageBufferRange %llu MiB, shared memory %u KiB, push constants %u B, "
           "workgroup %u invocations\n",
           (unsigned long long) (d->max_storage_range >> 20), d->max_shared_bytes >> 10,
           d->max_push_bytes, d->max_invocations);
    printf("    device-local memory %llu MiB, %s\n",
           (unsigned long long) (d->device_local_bytes >> 20),
           d->unified ? "host-visible (no staging)" : "staged uploads");
    printf("    kernels: %s reductions\n", d->subgroup_arith && d->subgroup_size >= 4
                                               ? "subgroup"
                                               : "shared-memory (fallback)");
}

int
bly_cli_devices(int argc, char **argv)
{
    static const char *const known[] = {NULL};
    if (bly_cli_check_options(argc, argv, known))
        return 2;
    bly_vk_info_t infos[BLY_VK_DEVICES_MAX];
    uint32_t n = 0;
    if (bly_vk_list(infos, BLY_VK_DEVICES_MAX, &n) || n == 0) {
        fprintf(stderr, "blyan devices: no Vulkan device found\n");
        return 1;
    }
    uint32_t chosen = bly_vk_choose(infos, n);
    for (uint32_t i = 0; i < n; i++)
        s_print(&infos[i], i == chosen);
    return 0;
}

#else

int
bly_cli_devices(int argc, char **argv)
{
    (void) argc;
    (void) argv;
    fprintf(stderr, "blyan devices: built without Vulkan (-Dvulkan=disabled or no loader)\n");
    return 1;
}

#endif
