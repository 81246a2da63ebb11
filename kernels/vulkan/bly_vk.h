/*  =========================================================================
    bly_vk - Vulkan device layer: instance, device choice, feature probing,
    buffers, pipelines and one-submission command recording

    Only core Vulkan 1.2 is required. Device choice: discrete GPU first, then
    integrated, then virtual, then CPU implementations such as lavapipe;
    `vulkan:INDEX` picks a device by its place in `blyan devices`.

    Feature fallbacks: weights are read as 32-bit words and converted in the
    shader (no 8/16-bit storage or shaderFloat16 needed); reductions use
    subgroup arithmetic when the device has it for compute, else a shared-
    memory tree (every kernel is compiled both ways); buffers are mapped
    directly when device memory is host-visible, else go through a staging
    buffer; matrices larger than maxStorageBufferRange are bound in pieces.

    Validation: with options.validation or env BLY_VK_VALIDATION=1 the
    Khronos validation layer and a debug messenger are enabled; every message
    of error severity is logged and counted (bly_vk_validation_errors).

    Not thread-safe: one thread owns a bly_vk_t and its buffers.
    ========================================================================= */

#ifndef BLY_VK_H_INCLUDED
#define BLY_VK_H_INCLUDED

#include "bly_limits.h"
#include "bly_log.h"
#include "bly_vk_kernels.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  What one physical device is and can do (filled by probing).
typedef struct {
    uint32_t index;                     //  Place in the driver's enumeration.
    char name[256];                     //  deviceName.
    const char *type_name;              //  "discrete", "integrated", "virtual", "cpu", "other".
    uint32_t type_rank;                 //  0 discrete .. 3 cpu, 4 other: lower is preferred.
    uint32_t vendor_id;
    uint32_t device_id;
    uint32_t api_version;               //  VK_MAKE_API_VERSION encoded.
    bool float16;                       //  shaderFloat16.
    bool storage8;                      //  storageBuffer8BitAccess.
    bool storage16;                     //  storageBuffer16BitAccess.
    bool int_dot;                       //  shaderIntegerDotProduct (1.3 or KHR extension).
    bool subgroup_arith;                //  Subgroup arithmetic in compute shaders.
    bool subgroup_shuffle;              //  Subgroup shuffle in compute shaders.
    bool timestamps;                    //  Compute queue writes timestamps.
    uint32_t subgroup_size;             //  Default subgroup size.
    uint64_t max_storage_range;         //  maxStorageBufferRange, bytes.
    uint32_t max_shared_bytes;          //  maxComputeSharedMemorySize.
    uint32_t max_push_bytes;            //  maxPushConstantsSize.
    uint32_t max_invocations;           //  maxComputeWorkGroupInvocations.
    uint32_t max_groups[3];             //  maxComputeWorkGroupCount.
    uint64_t storage_align;             //  minStorageBufferOffsetAlignment.
    uint64_t device_local_bytes;        //  Largest device-local heap.
    bool unified;                       //  A device-local memory type is host-visible+coherent.
    float timestamp_period_ns;          //  Nanoseconds per timestamp tick.
} bly_vk_info_t;

//  How to open a device. Zero-initialised means: best device, no validation unless
//  BLY_VK_VALIDATION=1, subgroups where available, direct mapping where possible, splits at
//  the device's maxStorageBufferRange.
typedef struct {
    bool by_index;                      //  Open device_index; false: choose (bly_vk_choose).
    int device_index;                   //  With by_index: place in the enumeration.
    bool validation;                    //  Enable the Khronos validation layer.
    bool no_subgroup;                   //  Force the shared-memory reduction kernels.
    bool force_staging;                 //  Never map device memory; use the staging path.
    uint64_t split_bytes;               //  0, or a smaller bound for one binding (tests).
} bly_vk_options_t;

typedef struct bly_vk_t bly_vk_t;
typedef struct bly_vk_buf_t bly_vk_buf_t;

//  A range of a buffer bound to one kernel binding; range 0 means to the end.
typedef struct {
    bly_vk_buf_t *buf;
    uint64_t offset;
    uint64_t range;
} bly_vk_bind_t;

//  True when a Vulkan loader and at least one device are present (no validation layer,
//  nothing kept). Tests skip (exit 77) only when this is false.
bool bly_vk_available(void);

//  Probe every device into `infos` (up to `max`), ordered as the driver enumerates them.
//  Returns 0 with *count set, or -1 when no Vulkan instance can be made.
BLY_MUST_USE int bly_vk_list(bly_vk_info_t *infos, uint32_t max, uint32_t *count);

//  Index of the preferred device among `count` infos (lowest type rank, then lowest index).
uint32_t bly_vk_choose(const bly_vk_info_t *infos, uint32_t count);

//  Parse a backend name: "vulkan" (choose, *index = -1) or "vulkan:N". Returns 0 or -1.
BLY_MUST_USE int bly_vk_parse_backend(const char *text, int *index);

//  Open a device. Returns NULL and a one-line reason in `error` when it cannot.
BLY_MUST_USE bly_vk_t *bly_vk_new(const bly_vk_options_t *options, char *error,
                                  size_t error_size);

//  Wait for the device, free everything. Buffers must have been destroyed first.
void bly_vk_destroy(bly_vk_t **self_p);

//  The chosen device's probe (borrowed).
const bly_vk_info_t *bly_vk_info(const bly_vk_t *self);

//  Workgroup size of the element-wise kernels, and whether reductions use subgroups.
uint32_t bly_vk_wg_size(const bly_vk_t *self);

//  Workgroup size `kernel` runs with: the element-wise size, or a wider one (several
//  subgroups) for argmax, attention, rmsnorm and the matrix products. Tuning: environment
//  BLY_VK_WIDE_WG (rmsnorm), BLY_VK_ATTENTION_WG, BLY_VK_ARGMAX_WG and BLY_VK_MATMUL_WG
//  (powers of two, clamped to the device; CPU implementations keep one subgroup).
uint32_t bly_vk_kernel_wg(const bly_vk_t *self, bly_vk_kernel_t kernel);

//  Output rows per workgroup of a matrix-product kernel (4 for prefill; the decode mat-vec
//  takes BLY_VK_MATMUL_ROWS = 1, 2 or 4 from the environment, default 1).
uint32_t bly_vk_kernel_rows(const bly_vk_t *self, bly_vk_kernel_t kernel);
bool bly_vk_uses_subgroups(const bly_vk_t *self);

//  Largest byte range a weight binding covers (maxStorageBufferRange, or options.split_bytes
//  to force the split path in tests), and the required alignment of binding offsets. Every
//  binding is checked against maxStorageBufferRange itself.
uint64_t bly_vk_split_bytes(const bly_vk_t *self);
uint64_t bly_vk_offset_align(const bly_vk_t *self);

//  Process-wide count of validation messages of error severity so far.
uint64_t bly_vk_validation_errors(void);

//  A device storage buffer of `size` bytes (rounded up to 4), zero-filled. NULL on failure.
BLY_MUST_USE bly_vk_buf_t *bly_vk_buf_new(bly_vk_t *vk, uint64_t size);
void bly_vk_buf_destroy(bly_vk_buf_t **self_p);
uint64_t bly_vk_buf_size(const bly_vk_buf_t *self);

//  Copy host memory into / out of a buffer. Not while recording. Returns 0 or -1.
BLY_MUST_USE int bly_vk_buf_write(bly_vk_buf_t *self, uint64_t offset, const void *data,
                                  uint64_t size);
BLY_MUST_USE int bly_vk_buf_read(bly_vk_buf_t *self, uint64_t offset, void *data,
                                 uint64_t size);

//  Start recording one submission. Returns 0 or -1.
BLY_MUST_USE int bly_vk_begin(bly_vk_t *self);

//  Record one dispatch of `kernel` with `n_binds` bindings (binding i = binds[i]) and
//  `push_size` bytes of push constants; a barrier orders it after the previous dispatch.
//  Returns 0, or -1 when the submission is full or a binding is out of range (the
//  submission then fails).
BLY_MUST_USE int bly_vk_dispatch(bly_vk_t *self, bly_vk_kernel_t kernel,
                                 const bly_vk_bind_t *binds, uint32_t n_binds,
                                 const void *push, uint32_t push_size, uint32_t groups_x,
                                 uint32_t groups_y, uint32_t groups_z);

//  Mark the open recording failed (an op refused its arguments): bly_vk_submit will fail.
void bly_vk_fail(bly_vk_t *self);

//  End recording, submit, and wait for completion. Returns 0, or -1 when recording failed
//  or the device was lost.
BLY_MUST_USE int bly_vk_submit(bly_vk_t *self);

//  Device time of the last submission in nanoseconds (0 without timestamps), and the
//  number of dispatches it held.
uint64_t bly_vk_last_gpu_ns(const bly_vk_t *self);
uint32_t bly_vk_last_dispatches(const bly_vk_t *self);

//  Kernel name ("matmul_q8_0_tb1") for logs.
const char *bly_vk_kernel_name(bly_vk_kernel_t kernel);

#endif
