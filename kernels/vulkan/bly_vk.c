/*  =========================================================================
    bly_vk - Vulkan device layer (see bly_vk.h)
    ========================================================================= */

#include "bly_vk.h"
#include "bly_vk_spv.h"

#include <vulkan/vulkan.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"
#define S_WG_FALLBACK 64u       //  Workgroup size without subgroup arithmetic (power of two).
#define S_WG_WIDE 128u          //  Workgroup size of the reducing kernels (power of two).
#define S_WG_MATMUL 64u         //  Workgroup size of the matrix products (power of two).
#define S_MATMUL_ROWS 1u        //  Rows per workgroup of the decode mat-vec.

_Static_assert(BLY_VK_BINDINGS_MAX <= 32, "a kernel binds few buffers");
_Static_assert(BLY_VK_PUSH_MAX == 128, "128 bytes is the push-constant minimum of Vulkan");
_Static_assert(sizeof(s_spv) / sizeof(s_spv[0]) == BLY_VK_KERNEL_COUNT, "kernel table");

struct bly_vk_buf_t {
    bly_vk_t *vk;                       //  Owning device.
    VkBuffer buffer;
    VkDeviceMemory memory;
    uint64_t size;                      //  Bytes (multiple of 4).
    void *mapped;                       //  Host pointer when the memory is mapped, else NULL.
};

//  A cached descriptor set: the bindings it was written with.
typedef struct {
    uint64_t hash;
    uint32_t n;
    VkBuffer buffers[BLY_VK_BINDINGS_MAX];
    uint64_t offsets[BLY_VK_BINDINGS_MAX];
    uint64_t ranges[BLY_VK_BINDINGS_MAX];
    VkDescriptorSet set;
} s_dset_t;

#define S_DSET_SLOTS (2u * BLY_VK_DSET_CACHE)
_Static_assert(BLY_VK_DSET_CACHE > 2 * BLY_VK_DISPATCH_MAX, "a submission fits the cache");

struct bly_vk_t {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger; //  VK_NULL_HANDLE without validation.
    VkPhysicalDevice physical;
    VkDevice device;
    VkQueue queue;
    uint32_t queue_family;
    bly_vk_info_t info;                 //  Probe of the chosen device.
    VkPhysicalDeviceMemoryProperties memory;
    bool subgroups;                     //  Reductions use subgroup arithmetic.
    uint32_t wg_size;                   //  Workgroup size of the element-wise kernels.
    uint32_t wg_wide;                   //  Of rmsnorm.
    uint32_t wg_attention;              //  Of attention (holds a head: >= head_dim / 2).
    uint32_t wg_argmax;                 //  Of argmax (one workgroup for the whole vocabulary).
    uint32_t wg_matmul;                 //  Of the matrix products.
    uint32_t matmul_rows;               //  Rows per workgroup of the decode mat-vec.
    bool map_device_memory;             //  Device-local memory is mapped directly.
    uint64_t split_bytes;               //  Largest range of one binding.
    VkDescriptorSetLayout set_layouts[BLY_VK_BINDINGS_MAX + 1]; //  By binding count.
    VkPipelineLayout pipe_layouts[BLY_VK_BINDINGS_MAX + 1];
    VkPipelineCache pipeline_cache;
    VkPipeline pipelines[BLY_VK_KERNEL_COUNT];          //  Made on first use.
    uint32_t pipeline_binds[BLY_VK_KERNEL_COUNT];       //  Binding count each was made for.
    VkDescriptorPool pool;              //  Sets of the cache below; reset when it fills.
    s_dset_t *dsets;                    //  Cached descriptor sets (BLY_VK_DSET_CACHE).
    uint32_t *dset_slots;               //  Open-addressing table: index + 1, 0 = empty.
    uint32_t dset_count;
    bool dset_stale;                    //  A buffer was destroyed: empty at the next begin.
    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;                //  The step's command buffer.
    VkCommandBuffer xfer_cmd;           //  Staging copies.
    VkFence fence;
    VkQueryPool queries;                //  Two timestamps (profiling: one more per dispatch);
                                        //  VK_NULL_HANDLE without.
    bool profile;                       //  BLY_VK_PROFILE=1: a timestamp after each dispatch.
    uint32_t query_count;               //  Timestamps the pool holds.
    uint16_t record_kernels[BLY_VK_DISPATCH_MAX];       //  Kernel of each recorded dispatch.
    uint64_t profile_ns[BLY_VK_KERNEL_COUNT];           //  Summed device time per kernel.
    uint64_t profile_calls[BLY_VK_KERNEL_COUNT];
    uint64_t profile_steps;
    uint64_t profile_ts[BLY_VK_DISPATCH_MAX];           //  Read-back scratch.
    bly_vk_buf_t *staging;              //  Host-visible, made on first staged copy.
    bool recording;
    bool record_failed;                 //  A dispatch failed: the submission will fail.
    uint32_t dispatches;                //  In the current recording.
    uint32_t last_dispatches;
    uint64_t last_gpu_ns;
};

static _Atomic uint64_t s_validation_errors;

static void s_profile_print(const bly_vk_t *self);

static bool
s_is_matmul(bly_vk_kernel_t kernel)
{
    return strncmp(s_spv[kernel].name, "matmul_", 7) == 0;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
s_on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
             VkDebugUtilsMessageTypeFlagsEXT types,
             const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void) types;
    (void) user;
    const char *text = data && data->pMessage ? data->pMessage : "(no message)";
    if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
        atomic_fetch_add(&s_validation_errors, 1);
        bly_log_error("vulkan validation error: %s", text);
    } else if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
        bly_log_warn("vulkan validation warning: %s", text);
    }
    return VK_FALSE;
}

uint64_t
bly_vk_validation_errors(void)
{
    return atomic_load(&s_validation_errors);
}

static bool
s_have_layer(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkLayerProperties *props = calloc(n, sizeof(*props));
    if (!props)
        return false;
    bool found = false;
    if (vkEnumerateInstanceLayerProperties(&n, props) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(props[i].layerName, name) == 0;
    free(props);
    return found;
}

static const VkDebugUtilsMessengerCreateInfoEXT s_messenger_info = {
    .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
    .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT
                       | VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT,
    .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT
                   | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT
                   | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
    .pfnUserCallback = s_on_message,
};

//  Make an instance, with the validation layer and a messenger when asked.
static int
s_instance_new(bool validation, VkInstance *instance, VkDebugUtilsMessengerEXT *messenger,
               char *error, size_t error_size)
{
    *messenger = VK_NULL_HANDLE;
    if (validation && !s_have_layer(S_VALIDATION_LAYER)) {
        snprintf(error, error_size, "validation requested but %s is not installed",
                 S_VALIDATION_LAYER);
        return -1;
    }
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "blyan",
        .pEngineName = "blyan",
        .apiVersion = VK_API_VERSION_1_2,
    };
    const char *layers[] = {S_VALIDATION_LAYER};
    const char *exts[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = validation ? &s_messenger_info : NULL,
        .pApplicationInfo = &app,
        .enabledLayerCount = validation ? 1 : 0,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = validation ? 1 : 0,
        .ppEnabledExtensionNames = exts,
    };
    VkResult rc = vkCreateInstance(&ci, NULL, instance);
    if (rc != VK_SUCCESS) {
        snprintf(error, error_size, "vkCreateInstance failed (VkResult %d)", (int) rc);
        return -1;
    }
    if (!validation)
        return 0;
    PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)
        vkGetInstanceProcAddr(*instance, "vkCreateDebugUtilsMessengerEXT");
    if (!create || create(*instance, &s_messenger_info, NULL, messenger) != VK_SUCCESS) {
        vkDestroyInstance(*instance, NULL);
        snprintf(error, error_size, "cannot create the validation messenger");
        return -1;
    }
    return 0;
}

static void
s_instance_destroy(VkInstance instance, VkDebugUtilsMessengerEXT messenger)
{
    if (messenger != VK_NULL_HANDLE) {
        PFN_vkDestroyDebugUtilsMessengerEXT destroy = (PFN_vkDestroyDebugUtilsMessengerEXT)
            vkGetInstanceProcAddr(instance, "vkDestroyDebugUtilsMessengerEXT");
        if (destroy)
            destroy(instance, messenger, NULL);
    }
    vkDestroyInstance(instance, NULL);
}

static bool
s_has_device_extension(VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkExtensionProperties *props = calloc(n, sizeof(*props));
    if (!props)
        return false;
    bool found = false;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, props) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(props[i].extensionName, name) == 0;
    free(props);
    return found;
}

//  Preference order of device types: the rank is the index here.
static const struct {
    VkPhysicalDeviceType type;
    const char *name;
} s_types[] = {
    {VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, "discrete"},
    {VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU, "integrated"},
    {VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU, "virtual"},
    {VK_PHYSICAL_DEVICE_TYPE_CPU, "cpu"},
};

static void
s_probe_type(bly_vk_info_t *info, VkPhysicalDeviceType type)
{
    uint32_t n = sizeof(s_types) / sizeof(s_types[0]);
    info->type_name = "other";
    info->type_rank = n;
    for (uint32_t i = 0; i < n; i++)
        if (s_types[i].type == type) {
            info->type_name = s_types[i].name;
            info->type_rank = i;
        }
}

static void
s_probe_memory(VkPhysicalDevice pd, bly_vk_info_t *info)
{
    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(pd, &mem);
    for (uint32_t h = 0; h < mem.memoryHeapCount; h++)
        if ((mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            && mem.memoryHeaps[h].size > info->device_local_bytes)
            info->device_local_bytes = mem.memoryHeaps[h].size;
    VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT
                                 | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT
                                 | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    //  Unified only when the mappable device-local type lives on the largest device-local
    //  heap (integrated GPUs, lavapipe), not a small BAR window of a discrete card.
    for (uint32_t t = 0; t < mem.memoryTypeCount; t++)
        if ((mem.memoryTypes[t].propertyFlags & want) == want
            && mem.memoryHeaps[mem.memoryTypes[t].heapIndex].size >= info->device_local_bytes)
            info->unified = true;
}

static void
s_probe_queue(VkPhysicalDevice pd, bly_vk_info_t *info, uint32_t *family)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties props[16];
    if (n > 16)
        n = 16;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, props);
    *family = UINT32_MAX;
    for (uint32_t i = 0; i < n && *family == UINT32_MAX; i++)
        if (props[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
            *family = i;
            info->timestamps = info->timestamps && props[i].timestampValidBits > 0;
        }
}

//  Fill `info` for one physical device; *family gets its compute queue family.
static void
s_probe(VkPhysicalDevice pd, uint32_t index, bly_vk_info_t *info, uint32_t *family)
{
    memset(info, 0, sizeof(*info));
    VkPhysicalDeviceSubgroupProperties sub = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 props = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sub};
    vkGetPhysicalDeviceProperties2(pd, &props);
    const VkPhysicalDeviceLimits *lim = &props.properties.limits;
    bool v13 = props.properties.apiVersion >= VK_API_VERSION_1_3;
    VkPhysicalDeviceShaderIntegerDotProductFeatures dot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &f12};
    bool dot_ext = v13 || s_has_device_extension(pd, "VK_KHR_shader_integer_dot_product");
    if (dot_ext)
        f12.pNext = &dot;
    VkPhysicalDeviceFeatures2 feats = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
    vkGetPhysicalDeviceFeatures2(pd, &feats);

    info->index = index;
    snprintf(info->name, sizeof(info->name), "%s", props.properties.deviceName);
    s_probe_type(info, props.properties.deviceType);
    info->vendor_id = props.properties.vendorID;
    info->device_id = props.properties.deviceID;
    info->api_version = props.properties.apiVersion;
    info->float16 = f12.shaderFloat16;
    info->storage8 = f12.storageBuffer8BitAccess;
    info->storage16 = f11.storageBuffer16BitAccess;
    info->int_dot = dot_ext && dot.shaderIntegerDotProduct;
    bool compute = sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT;
    info->subgroup_arith = compute
                           && (sub.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    info->subgroup_shuffle = compute
                             && (sub.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
    info->subgroup_size = sub.subgroupSize;
    info->max_storage_range = lim->maxStorageBufferRange;
    info->max_shared_bytes = lim->maxComputeSharedMemorySize;
    info->max_push_bytes = lim->maxPushConstantsSize;
    info->max_invocations = lim->maxComputeWorkGroupInvocations;
    for (int i = 0; i < 3; i++)
        info->max_groups[i] = lim->maxComputeWorkGroupCount[i];
    info->storage_align = lim->minStorageBufferOffsetAlignment;
    info->timestamps = lim->timestampComputeAndGraphics || lim->timestampPeriod > 0;
    info->timestamp_period_ns = lim->timestampPeriod;
    s_probe_memory(pd, info);
    s_probe_queue(pd, info, family);
}

static int
s_physical_devices(VkInstance instance, VkPhysicalDevice *pds, uint32_t max, uint32_t *count)
{
    uint32_t n = max;
    VkResult rc = vkEnumeratePhysicalDevices(instance, &n, pds);
    if (rc != VK_SUCCESS && rc != VK_INCOMPLETE)
        return -1;
    *count = n;
    return 0;
}

bool
bly_vk_available(void)
{
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    char error[128];
    if (s_instance_new(false, &instance, &messenger, error, sizeof(error)) != 0)
        return false;
    VkPhysicalDevice pds[BLY_VK_DEVICES_MAX];
    uint32_t n = 0;
    bool ok = s_physical_devices(instance, pds, BLY_VK_DEVICES_MAX, &n) == 0 && n > 0;
    s_instance_destroy(instance, messenger);
    return ok;
}

int
bly_vk_list(bly_vk_info_t *infos, uint32_t max, uint32_t *count)
{
    bly_assert(infos);
    bly_assert(count);
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    char error[256];
    if (s_instance_new(false, &instance, &messenger, error, sizeof(error)) != 0) {
        bly_log_error("vulkan: %s", error);
        return -1;
    }
    VkPhysicalDevice pds[BLY_VK_DEVICES_MAX];
    uint32_t n = 0;
    int rc = s_physical_devices(instance, pds, BLY_VK_DEVICES_MAX, &n);
    *count = 0;
    for (uint32_t i = 0; rc == 0 && i < n && i < max; i++) {
        uint32_t family;
        s_probe(pds[i], i, &infos[i], &family);
        *count = i + 1;
    }
    s_instance_destroy(instance, messenger);
    return rc;
}

uint32_t
bly_vk_choose(const bly_vk_info_t *infos, uint32_t count)
{
    bly_assert(infos);
    bly_assert(count > 0);
    uint32_t best = 0;
    for (uint32_t i = 1; i < count; i++)
        if (infos[i].type_rank < infos[best].type_rank)
            best = i;
    return best;
}

int
bly_vk_parse_backend(const char *text, int *index)
{
    bly_assert(index);
    if (!text || strncmp(text, "vulkan", 6) != 0)
        return -1;
    if (text[6] == 0) {
        *index = -1;
        return 0;
    }
    if (text[6] != ':' || text[7] < '0' || text[7] > '9')
        return -1;
    char *end = NULL;
    long v = strtol(text + 7, &end, 10);
    if (*end || v < 0 || v >= BLY_VK_DEVICES_MAX)
        return -1;
    *index = (int) v;
    return 0;
}

//  Choose the device per options; fills self->physical, info, queue_family.
static int
s_pick_device(bly_vk_t *self, const bly_vk_options_t *options, char *error, size_t error_size)
{
    VkPhysicalDevice pds[BLY_VK_DEVICES_MAX];
    uint32_t n = 0;
    if (s_physical_devices(self->instance, pds, BLY_VK_DEVICES_MAX, &n) != 0 || n == 0) {
        snprintf(error, error_size, "no Vulkan device found");
        return -1;
    }
    bly_vk_info_t infos[BLY_VK_DEVICES_MAX];
    uint32_t families[BLY_VK_DEVICES_MAX];
    for (uint32_t i = 0; i < n; i++)
        s_probe(pds[i], i, &infos[i], &families[i]);
    uint32_t pick;
    if (!options->by_index || options->device_index < 0) {
        pick = bly_vk_choose(infos, n);
    } else if ((uint32_t) options->device_index < n) {
        pick = (uint32_t) options->device_index;
    } else {
        snprintf(error, error_size, "no Vulkan device %d (%u found)", options->device_index, n);
        return -1;
    }
    if (families[pick] == UINT32_MAX) {
        snprintf(error, error_size, "device %u (%s) has no compute queue", pick,
                 infos[pick].name);
        return -1;
    }
    if (infos[pick].api_version < VK_API_VERSION_1_2) {
        snprintf(error, error_size, "device %u (%s) lacks Vulkan 1.2", pick, infos[pick].name);
        return -1;
    }
    self->physical = pds[pick];
    self->info = infos[pick];
    self->queue_family = families[pick];
    vkGetPhysicalDeviceMemoryProperties(self->physical, &self->memory);
    return 0;
}

//  A power of two from the environment variable `name` (tuning), else `dflt`, clamped to
//  [lo, hi] and rounded down to a power of two.
static uint32_t
s_env_pow2(const char *name, uint32_t dflt, uint32_t lo, uint32_t hi)
{
    const char *env = getenv(name);
    long v = env ? strtol(env, NULL, 10) : (long) dflt;
    if (v < (long) lo)
        v = (long) lo;
    if (v > (long) hi)
        v = (long) hi;
    uint32_t p = 1;
    while (p * 2 <= (uint32_t) v)
        p *= 2;
    return p;
}

//  Decide the workgroup size, reduction path, mapping and split bound.
static void
s_plan(bly_vk_t *self, const bly_vk_options_t *options)
{
    const bly_vk_info_t *info = &self->info;
    uint32_t sg = info->subgroup_size;
    bool pow2 = sg >= 4 && (sg & (sg - 1)) == 0;
    self->subgroups = info->subgroup_arith && !options->no_subgroup && pow2 && sg <= 256
                      && sg <= info->max_invocations;
    self->wg_size = self->subgroups ? sg : S_WG_FALLBACK;
    //  Kernels that reduce a row, or hold one head, are latency-bound with one subgroup per
    //  workgroup on large GPUs; they run several (bly_wg_sum sums across subgroups, and the
    //  shared-memory tree takes any power of two up to 256).
    //  CPU implementations (lavapipe) run a workgroup's subgroups one after another and pay
    //  for every barrier: they keep one subgroup per workgroup.
    bool cpu = info->type_rank >= 3;
    uint32_t max256 = info->max_invocations < 256 ? info->max_invocations : 256;
    self->wg_wide = s_env_pow2("BLY_VK_WIDE_WG", cpu ? self->wg_size : S_WG_WIDE,
                               self->wg_size, max256);
    self->wg_attention = s_env_pow2("BLY_VK_ATTENTION_WG", S_WG_WIDE, S_WG_WIDE, max256);
    self->wg_argmax = s_env_pow2("BLY_VK_ARGMAX_WG", cpu ? self->wg_size : 1024, self->wg_size,
                                 info->max_invocations < 1024 ? info->max_invocations : 1024);
    self->wg_matmul = s_env_pow2("BLY_VK_MATMUL_WG", cpu ? self->wg_size : S_WG_MATMUL,
                                 self->wg_size, max256);
    self->matmul_rows = s_env_pow2("BLY_VK_MATMUL_ROWS", cpu ? 4 : S_MATMUL_ROWS, 1, 4);
    self->map_device_memory = info->unified && !options->force_staging;
    self->split_bytes = info->max_storage_range;
    if (options->split_bytes && options->split_bytes < self->split_bytes)
        self->split_bytes = options->split_bytes;
    self->split_bytes &= ~(uint64_t) 3;
}

static int
s_device_new(bly_vk_t *self, char *error, size_t error_size)
{
    float priority = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = self->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &priority,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
    };
    VkResult rc = vkCreateDevice(self->physical, &dci, NULL, &self->device);
    if (rc != VK_SUCCESS) {
        snprintf(error, error_size, "vkCreateDevice failed (VkResult %d)", (int) rc);
        return -1;
    }
    vkGetDeviceQueue(self->device, self->queue_family, 0, &self->queue);
    return 0;
}

static int
s_layouts_new(bly_vk_t *self)
{
    VkDescriptorSetLayoutBinding b[BLY_VK_BINDINGS_MAX];
    for (uint32_t i = 0; i < BLY_VK_BINDINGS_MAX; i++)
        b[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkPushConstantRange push = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
                                .offset = 0, .size = BLY_VK_PUSH_MAX};
    for (uint32_t n = 1; n <= BLY_VK_BINDINGS_MAX; n++) {
        VkDescriptorSetLayoutCreateInfo lci = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
            .bindingCount = n, .pBindings = b};
        if (vkCreateDescriptorSetLayout(self->device, &lci, NULL, &self->set_layouts[n]))
            return -1;
        VkPipelineLayoutCreateInfo pci = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
            .setLayoutCount = 1, .pSetLayouts = &self->set_layouts[n],
            .pushConstantRangeCount = 1, .pPushConstantRanges = &push};
        if (vkCreatePipelineLayout(self->device, &pci, NULL, &self->pipe_layouts[n]))
            return -1;
    }
    VkPipelineCacheCreateInfo cci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    if (vkCreatePipelineCache(self->device, &cci, NULL, &self->pipeline_cache))
        return -1;
    self->dsets = calloc(BLY_VK_DSET_CACHE, sizeof(*self->dsets));
    self->dset_slots = calloc(S_DSET_SLOTS, sizeof(*self->dset_slots));
    if (!self->dsets || !self->dset_slots)
        return -1;
    VkDescriptorPoolSize size = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                 .descriptorCount = BLY_VK_DSET_CACHE * BLY_VK_BINDINGS_MAX};
    VkDescriptorPoolCreateInfo dpi = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = BLY_VK_DSET_CACHE, .poolSizeCount = 1, .pPoolSizes = &size};
    return vkCreateDescriptorPool(self->device, &dpi, NULL, &self->pool) ? -1 : 0;
}

static int
s_commands_new(bly_vk_t *self)
{
    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = self->queue_family};
    if (vkCreateCommandPool(self->device, &pci, NULL, &self->cmd_pool))
        return -1;
    VkCommandBuffer cmds[2];
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = self->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 2};
    if (vkAllocateCommandBuffers(self->device, &ai, cmds))
        return -1;
    self->cmd = cmds[0];
    self->xfer_cmd = cmds[1];
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if (vkCreateFence(self->device, &fci, NULL, &self->fence))
        return -1;
    if (!self->info.timestamps)
        return 0;
    const char *env = getenv("BLY_VK_PROFILE");
    self->profile = env && strcmp(env, "1") == 0;
    self->query_count = self->profile ? BLY_VK_DISPATCH_MAX + 2 : 2;
    VkQueryPoolCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                 .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                 .queryCount = self->query_count};
    return vkCreateQueryPool(self->device, &qci, NULL, &self->queries) ? -1 : 0;
}

bly_vk_t *
bly_vk_new(const bly_vk_options_t *options, char *error, size_t error_size)
{
    bly_assert(options);
    bly_assert(error);
    bly_vk_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    const char *env = getenv("BLY_VK_VALIDATION");
    bool validation = options->validation || (env && strcmp(env, "1") == 0);
    if (s_instance_new(validation, &self->instance, &self->messenger, error, error_size)) {
        free(self);
        return NULL;
    }
    if (s_pick_device(self, options, error, error_size) || s_device_new(self, error, error_size))
        goto out_destroy;
    s_plan(self, options);
    if (s_layouts_new(self) || s_commands_new(self)) {
        snprintf(error, error_size, "cannot create Vulkan layouts, pools or fences");
        goto out_destroy;
    }
    bly_log_info("vulkan: device %u '%s' (%s), workgroup %u, %s reductions, %s memory",
                 self->info.index, self->info.name, self->info.type_name, self->wg_size,
                 self->subgroups ? "subgroup" : "shared-memory",
                 self->map_device_memory ? "mapped" : "staged");
    return self;
out_destroy:
    bly_vk_destroy(&self);
    return NULL;
}

void
bly_vk_destroy(bly_vk_t **self_p)
{
    bly_assert(self_p);
    bly_vk_t *self = *self_p;
    if (!self)
        return;
    if (self->device) {
        vkDeviceWaitIdle(self->device);
        s_profile_print(self);
        bly_vk_buf_destroy(&self->staging);
        for (uint32_t k = 0; k < BLY_VK_KERNEL_COUNT; k++)
            vkDestroyPipeline(self->device, self->pipelines[k], NULL);
        vkDestroyPipelineCache(self->device, self->pipeline_cache, NULL);
        for (uint32_t n = 1; n <= BLY_VK_BINDINGS_MAX; n++) {
            vkDestroyPipelineLayout(self->device, self->pipe_layouts[n], NULL);
            vkDestroyDescriptorSetLayout(self->device, self->set_layouts[n], NULL);
        }
        vkDestroyDescriptorPool(self->device, self->pool, NULL);
        free(self->dsets);
        free(self->dset_slots);
        vkDestroyQueryPool(self->device, self->queries, NULL);
        vkDestroyFence(self->device, self->fence, NULL);
        vkDestroyCommandPool(self->device, self->cmd_pool, NULL);
        vkDestroyDevice(self->device, NULL);
    }
    s_instance_destroy(self->instance, self->messenger);
    free(self);
    *self_p = NULL;
}

const bly_vk_info_t *
bly_vk_info(const bly_vk_t *self)
{
    bly_assert(self);
    return &self->info;
}

uint32_t
bly_vk_kernel_wg(const bly_vk_t *self, bly_vk_kernel_t kernel)
{
    bly_assert(self);
    bly_assert(kernel < BLY_VK_KERNEL_COUNT);
    if (kernel == BLY_VK_K_ARGMAX)
        return self->wg_argmax;
    if (s_is_matmul(kernel))
        return self->wg_matmul;
    if (kernel == BLY_VK_K_ATTENTION)
        return self->wg_attention;
    if (kernel == BLY_VK_K_RMSNORM)
        return self->wg_wide;
    return self->wg_size;
}

uint32_t
bly_vk_kernel_rows(const bly_vk_t *self, bly_vk_kernel_t kernel)
{
    bly_assert(self);
    return s_is_matmul(kernel) && strstr(s_spv[kernel].name, "_tb1") ? self->matmul_rows : 4;
}

uint32_t
bly_vk_wg_size(const bly_vk_t *self)
{
    bly_assert(self);
    return self->wg_size;
}

bool
bly_vk_uses_subgroups(const bly_vk_t *self)
{
    bly_assert(self);
    return self->subgroups;
}

uint64_t
bly_vk_split_bytes(const bly_vk_t *self)
{
    bly_assert(self);
    return self->split_bytes;
}

uint64_t
bly_vk_offset_align(const bly_vk_t *self)
{
    bly_assert(self);
    return self->info.storage_align ? self->info.storage_align : 4;
}

const char *
bly_vk_kernel_name(bly_vk_kernel_t kernel)
{
    bly_assert(kernel < BLY_VK_KERNEL_COUNT);
    return s_spv[kernel].name;
}

/* ---- Buffers --------------------------------------------------------------------------- */

static uint32_t
s_memory_type(const bly_vk_t *self, uint32_t bits, VkMemoryPropertyFlags want)
{
    for (uint32_t t = 0; t < self->memory.memoryTypeCount; t++)
        if ((bits & (1u << t)) && (self->memory.memoryTypes[t].propertyFlags & want) == want)
            return t;
    return UINT32_MAX;
}

//  A buffer whose memory is mapped when `host` (staging) or when device memory is unified.
static bly_vk_buf_t *
s_buf_new(bly_vk_t *vk, uint64_t size, bool host)
{
    bly_vk_buf_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->vk = vk;
    self->size = (size + 3) & ~(uint64_t) 3;
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = self->size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT
                 | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    if (vkCreateBuffer(vk->device, &bci, NULL, &self->buffer))
        goto out_free;
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(vk->device, self->buffer, &req);
    VkMemoryPropertyFlags host_flags = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT
                                       | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    bool map = host || vk->map_device_memory;
    VkMemoryPropertyFlags want = host ? host_flags
                                      : map ? host_flags | VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT
                                            : VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    uint32_t type = s_memory_type(vk, req.memoryTypeBits, want);
    if (type == UINT32_MAX && !map)
        type = s_memory_type(vk, req.memoryTypeBits, 0);
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                .allocationSize = req.size, .memoryTypeIndex = type};
    bool allocated = type != UINT32_MAX
                     && vkAllocateMemory(vk->device, &mai, NULL, &self->memory) == VK_SUCCESS;
    if (!allocated && map && !host) {
        //  Mappable device memory ran out: plain device memory, reached by staging.
        map = false;
        mai.memoryTypeIndex = s_memory_type(vk, req.memoryTypeBits,
                                            VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
        allocated = mai.memoryTypeIndex != UINT32_MAX
                    && vkAllocateMemory(vk->device, &mai, NULL, &self->memory) == VK_SUCCESS;
    }
    if (!allocated)
        goto out_buffer;
    if (vkBindBufferMemory(vk->device, self->buffer, self->memory, 0))
        goto out_memory;
    if (map && vkMapMemory(vk->device, self->memory, 0, VK_WHOLE_SIZE, 0, &self->mapped))
        goto out_memory;
    return self;
out_memory:
    vkFreeMemory(vk->device, self->memory, NULL);
out_buffer:
    vkDestroyBuffer(vk->device, self->buffer, NULL);
out_free:
    bly_log_error("vulkan: cannot allocate a buffer of %llu bytes", (unsigned long long) size);
    free(self);
    return NULL;
}

void
bly_vk_buf_destroy(bly_vk_buf_t **self_p)
{
    bly_assert(self_p);
    bly_vk_buf_t *self = *self_p;
    if (!self)
        return;
    VkDevice device = self->vk->device;
    self->vk->dset_stale = true;        //  A cached set may name this buffer.
    if (self->mapped)
        vkUnmapMemory(device, self->memory);
    vkDestroyBuffer(device, self->buffer, NULL);
    vkFreeMemory(device, self->memory, NULL);
    free(self);
    *self_p = NULL;
}

uint64_t
bly_vk_buf_size(const bly_vk_buf_t *self)
{
    bly_assert(self);
    return self->size;
}

//  Global memory barrier between two stages.
static void
s_barrier(VkCommandBuffer cmd, VkPipelineStageFlags src, VkAccessFlags src_access,
          VkPipelineStageFlags dst, VkAccessFlags dst_access)
{
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = src_access, .dstAccessMask = dst_access};
    vkCmdPipelineBarrier(cmd, src, dst, 0, 1, &mb, 0, NULL, 0, NULL);
}

static int
s_submit_wait(bly_vk_t *self, VkCommandBuffer cmd)
{
    if (vkResetFences(self->device, 1, &self->fence))
        return -1;
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = 1, .pCommandBuffers = &cmd};
    VkResult rc = vkQueueSubmit(self->queue, 1, &si, self->fence);
    if (rc == VK_SUCCESS)
        rc = vkWaitForFences(self->device, 1, &self->fence, VK_TRUE,
                             (uint64_t) BLY_VK_FENCE_TIMEOUT_MS * 1000000u);
    if (rc != VK_SUCCESS) {
        bly_log_error("vulkan: submission failed or timed out (VkResult %d)", (int) rc);
        return -1;
    }
    return 0;
}

//  One staged copy between `self` and the staging buffer: to_device or back.
static int
s_staged_copy(bly_vk_buf_t *self, uint64_t offset, uint64_t size, bool to_device)
{
    bly_vk_t *vk = self->vk;
    VkCommandBuffer cmd = vk->xfer_cmd;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    if (vkResetCommandBuffer(cmd, 0) || vkBeginCommandBuffer(cmd, &bi))
        return -1;
    s_barrier(cmd, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_ACCESS_MEMORY_WRITE_BIT,
              VK_PIPELINE_STAGE_TRANSFER_BIT,
              VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT);
    VkBufferCopy region = {.srcOffset = to_device ? 0 : offset,
                           .dstOffset = to_device ? offset : 0, .size = size};
    if (to_device)
        vkCmdCopyBuffer(cmd, vk->staging->buffer, self->buffer, 1, &region);
    else
        vkCmdCopyBuffer(cmd, self->buffer, vk->staging->buffer, 1, &region);
    s_barrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
              VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_ALL_COMMANDS_BIT,
              VK_ACCESS_HOST_READ_BIT | VK_ACCESS_MEMORY_READ_BIT);
    if (vkEndCommandBuffer(cmd))
        return -1;
    return s_submit_wait(vk, cmd);
}

//  Write (to_device) or read `size` bytes at `offset`, mapped or staged in pieces.
static int
s_transfer(bly_vk_buf_t *self, uint64_t offset, void *data, uint64_t size, bool to_device)
{
    bly_vk_t *vk = self->vk;
    bly_assert(!vk->recording);
    if (offset > self->size || size > self->size - offset) {
        bly_log_error("vulkan: transfer of %llu bytes at %llu outside a %llu-byte buffer",
                      (unsigned long long) size, (unsigned long long) offset,
                      (unsigned long long) self->size);
        return -1;
    }
    if (self->mapped) {
        if (to_device)
            memcpy((char *) self->mapped + offset, data, size);
        else
            memcpy(data, (char *) self->mapped + offset, size);
        return 0;
    }
    if (!vk->staging && !(vk->staging = s_buf_new(vk, BLY_VK_STAGING_BYTES, true)))
        return -1;
    for (uint64_t done = 0; done < size;) {
        uint64_t n = size - done < BLY_VK_STAGING_BYTES ? size - done : BLY_VK_STAGING_BYTES;
        if (to_device)
            memcpy(vk->staging->mapped, (char *) data + done, n);
        //  vkCmdCopyBuffer needs no 4-byte alignment; sizes here are whole bytes.
        if (s_staged_copy(self, offset + done, n, to_device))
            return -1;
        if (!to_device)
            memcpy((char *) data + done, vk->staging->mapped, n);
        done += n;
    }
    return 0;
}

bly_vk_buf_t *
bly_vk_buf_new(bly_vk_t *vk, uint64_t size)
{
    bly_assert(vk);
    bly_assert(size > 0);
    bly_vk_buf_t *self = s_buf_new(vk, size, false);
    if (!self)
        return NULL;
    if (self->mapped) {
        memset(self->mapped, 0, self->size);
        return self;
    }
    //  Zero-fill on the device through the transfer command buffer.
    VkCommandBuffer cmd = vk->xfer_cmd;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    int rc = vkResetCommandBuffer(cmd, 0) || vkBeginCommandBuffer(cmd, &bi) ? -1 : 0;
    if (rc == 0) {
        vkCmdFillBuffer(cmd, self->buffer, 0, VK_WHOLE_SIZE, 0);
        s_barrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
                  VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_ACCESS_MEMORY_READ_BIT);
        rc = vkEndCommandBuffer(cmd) ? -1 : s_submit_wait(vk, cmd);
    }
    if (rc)
        bly_vk_buf_destroy(&self);
    return self;
}

int
bly_vk_buf_write(bly_vk_buf_t *self, uint64_t offset, const void *data, uint64_t size)
{
    bly_assert(self);
    bly_assert(data || size == 0);
    return s_transfer(self, offset, (void *) data, size, true);
}

int
bly_vk_buf_read(bly_vk_buf_t *self, uint64_t offset, void *data, uint64_t size)
{
    bly_assert(self);
    bly_assert(data || size == 0);
    return s_transfer(self, offset, data, size, false);
}

/* ---- Pipelines and recording ----------------------------------------------------------- */

static VkPipeline
s_pipeline(bly_vk_t *self, bly_vk_kernel_t kernel, uint32_t n_binds)
{
    if (self->pipelines[kernel]) {
        bly_assert(self->pipeline_binds[kernel] == n_binds);
        return self->pipelines[kernel];
    }
    const s_spv_t *spv = &s_spv[kernel];
    VkShaderModuleCreateInfo mci = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = self->subgroups ? spv->size_sg : spv->size_sh,
        .pCode = self->subgroups ? spv->code_sg : spv->code_sh};
    VkShaderModule module;
    if (vkCreateShaderModule(self->device, &mci, NULL, &module))
        return VK_NULL_HANDLE;
    //  Constant 0: workgroup size; 1: rows per workgroup (matmul).
    uint32_t data[2] = {bly_vk_kernel_wg(self, kernel), bly_vk_kernel_rows(self, kernel)};
    VkSpecializationMapEntry entries[2] = {
        {.constantID = 0, .offset = 0, .size = sizeof(uint32_t)},
        {.constantID = 1, .offset = sizeof(uint32_t), .size = sizeof(uint32_t)}};
    VkSpecializationInfo spec = {.mapEntryCount = 2, .pMapEntries = entries,
                                 .dataSize = sizeof(data), .pData = data};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT, .module = module, .pName = "main",
                  .pSpecializationInfo = &spec},
        .layout = self->pipe_layouts[n_binds]};
    VkPipeline pipeline = VK_NULL_HANDLE;
    if (vkCreateComputePipelines(self->device, self->pipeline_cache, 1, &ci, NULL, &pipeline))
        pipeline = VK_NULL_HANDLE;
    vkDestroyShaderModule(self->device, module, NULL);
    self->pipelines[kernel] = pipeline;
    self->pipeline_binds[kernel] = n_binds;
    return pipeline;
}

//  Profiling (BLY_VK_PROFILE=1): the time between the timestamp after a dispatch and the
//  one before it (the previous dispatch's, or the submission's start) is charged to that
//  dispatch's kernel. Barriers serialise dispatches, so the times add up to the step.
static void
s_profile_add(bly_vk_t *self, uint64_t start)
{
    uint64_t *ts = self->profile_ts;
    uint32_t n = self->last_dispatches;
    if (!self->profile || n == 0
        || vkGetQueryPoolResults(self->device, self->queries, 2, n, n * sizeof(ts[0]), ts,
                                 sizeof(ts[0]), VK_QUERY_RESULT_64_BIT) != VK_SUCCESS)
        return;
    uint64_t prev = start;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t d = ts[i] >= prev ? ts[i] - prev : 0;
        uint32_t k = self->record_kernels[i];
        self->profile_ns[k] += (uint64_t) ((double) d * self->info.timestamp_period_ns);
        self->profile_calls[k]++;
        prev = ts[i] > prev ? ts[i] : prev;
    }
    self->profile_steps++;
}

static void
s_profile_print(const bly_vk_t *self)
{
    if (!self->profile || self->profile_steps == 0)
        return;
    uint64_t total = 0;
    for (uint32_t k = 0; k < BLY_VK_KERNEL_COUNT; k++)
        total += self->profile_ns[k];
    fprintf(stderr, "vulkan profile: %llu submissions, %.3f ms of device time\n",
            (unsigned long long) self->profile_steps, (double) total / 1e6);
    for (uint32_t k = 0; k < BLY_VK_KERNEL_COUNT; k++) {
        if (!self->profile_calls[k])
            continue;
        fprintf(stderr, "  %-28s %8llu calls %10.3f ms %5.1f%% %8.2f us/call\n",
                s_spv[k].name, (unsigned long long) self->profile_calls[k],
                (double) self->profile_ns[k] / 1e6,
                total ? 100.0 * (double) self->profile_ns[k] / (double) total : 0.0,
                (double) self->profile_ns[k] / 1e3 / (double) self->profile_calls[k]);
    }
}

int
bly_vk_begin(bly_vk_t *self)
{
    bly_assert(self);
    bly_assert(!self->recording);
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    //  The previous submission has completed (bly_vk_submit waits), so its sets may go.
    if (self->dset_stale || self->dset_count > BLY_VK_DSET_CACHE - BLY_VK_DISPATCH_MAX) {
        if (vkResetDescriptorPool(self->device, self->pool, 0))
            return -1;
        memset(self->dset_slots, 0, S_DSET_SLOTS * sizeof(*self->dset_slots));
        self->dset_count = 0;
        self->dset_stale = false;
    }
    if (vkResetCommandBuffer(self->cmd, 0) || vkBeginCommandBuffer(self->cmd, &bi))
        return -1;
    if (self->queries) {
        vkCmdResetQueryPool(self->cmd, self->queries, 0, self->query_count);
        vkCmdWriteTimestamp(self->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, self->queries, 0);
    }
    //  Host writes and staged copies before this submission are visible to the kernels.
    s_barrier(self->cmd, VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
              VK_ACCESS_HOST_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
              VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
              VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
    self->recording = true;
    self->record_failed = false;
    self->dispatches = 0;
    return 0;
}

//  Check a dispatch's arguments against the device; logs and returns -1 when bad.
static int
s_check_dispatch(bly_vk_t *self, bly_vk_kernel_t kernel, const bly_vk_bind_t *binds,
                 uint32_t n_binds, uint32_t gx, uint32_t gy, uint32_t gz)
{
    const char *name = s_spv[kernel].name;
    if (self->dispatches >= BLY_VK_DISPATCH_MAX) {
        bly_log_error("vulkan: more than %d dispatches in one submission", BLY_VK_DISPATCH_MAX);
        return -1;
    }
    const uint32_t *max = self->info.max_groups;
    if (gx > max[0] || gy > max[1] || gz > max[2]) {
        bly_log_error("vulkan: %s grid %ux%ux%u exceeds the device", name, gx, gy, gz);
        return -1;
    }
    for (uint32_t i = 0; i < n_binds; i++) {
        const bly_vk_bind_t *b = &binds[i];
        bly_assert(b->buf);
        uint64_t range = b->range ? b->range : b->buf->size - b->offset;
        if (b->offset >= b->buf->size || range > b->buf->size - b->offset
            || range > self->info.max_storage_range || b->offset % bly_vk_offset_align(self)) {
            bly_log_error("vulkan: %s binding %u (offset %llu, range %llu) is out of range",
                          name, i, (unsigned long long) b->offset, (unsigned long long) range);
            return -1;
        }
    }
    return 0;
}

//  The binding key of a dispatch, resolved ranges included.
static void
s_dset_key(s_dset_t *key, const bly_vk_bind_t *binds, uint32_t n)
{
    memset(key, 0, sizeof(*key));
    key->n = n;
    uint64_t h = 1469598103934665603ull ^ n;
    for (uint32_t i = 0; i < n; i++) {
        key->buffers[i] = binds[i].buf->buffer;
        key->offsets[i] = binds[i].offset;
        key->ranges[i] = binds[i].range ? binds[i].range : binds[i].buf->size - binds[i].offset;
        uint64_t parts[3] = {(uint64_t) (uintptr_t) key->buffers[i], key->offsets[i],
                             key->ranges[i]};
        for (int k = 0; k < 3; k++)
            h = (h ^ parts[k]) * 1099511628211ull;
    }
    key->hash = h;
}

static bool
s_dset_equal(const s_dset_t *a, const s_dset_t *b)
{
    if (a->hash != b->hash || a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (a->buffers[i] != b->buffers[i] || a->offsets[i] != b->offsets[i]
            || a->ranges[i] != b->ranges[i])
            return false;
    return true;
}

//  The descriptor set for these bindings: from the cache, else allocated, written and cached
//  (bly_vk_begin leaves room for a whole submission).
static int
s_bind_set(bly_vk_t *self, VkDescriptorSet *set, const bly_vk_bind_t *binds, uint32_t n)
{
    s_dset_t key;
    s_dset_key(&key, binds, n);
    uint32_t slot = (uint32_t) (key.hash % S_DSET_SLOTS);
    for (uint32_t probe = 0; probe < S_DSET_SLOTS; probe++, slot = (slot + 1) % S_DSET_SLOTS) {
        uint32_t at = self->dset_slots[slot];
        if (at == 0)
            break;
        if (s_dset_equal(&self->dsets[at - 1], &key)) {
            *set = self->dsets[at - 1].set;
            return 0;
        }
    }
    bly_assert(self->dset_count < BLY_VK_DSET_CACHE);
    bly_assert(self->dset_slots[slot] == 0);
    VkDescriptorSetAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = self->pool, .descriptorSetCount = 1,
        .pSetLayouts = &self->set_layouts[n]};
    if (vkAllocateDescriptorSets(self->device, &ai, set))
        return -1;
    VkDescriptorBufferInfo infos[BLY_VK_BINDINGS_MAX];
    VkWriteDescriptorSet writes[BLY_VK_BINDINGS_MAX];
    for (uint32_t i = 0; i < n; i++) {
        infos[i] = (VkDescriptorBufferInfo){
            .buffer = key.buffers[i], .offset = key.offsets[i], .range = key.ranges[i]};
        writes[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = *set, .dstBinding = i,
            .descriptorCount = 1, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &infos[i]};
    }
    vkUpdateDescriptorSets(self->device, n, writes, 0, NULL);
    key.set = *set;
    self->dsets[self->dset_count++] = key;
    self->dset_slots[slot] = self->dset_count;
    return 0;
}

int
bly_vk_dispatch(bly_vk_t *self, bly_vk_kernel_t kernel, const bly_vk_bind_t *binds,
                uint32_t n_binds, const void *push, uint32_t push_size, uint32_t gx,
                uint32_t gy, uint32_t gz)
{
    bly_assert(self);
    bly_assert(self->recording);
    bly_assert(kernel < BLY_VK_KERNEL_COUNT);
    bly_assert(n_binds >= 1 && n_binds <= BLY_VK_BINDINGS_MAX);
    bly_assert(push_size <= BLY_VK_PUSH_MAX && push_size % 4 == 0);
    bly_assert(gx > 0 && gy > 0 && gz > 0);
    if (self->record_failed)
        return -1;
    VkDescriptorSet set;
    VkPipeline pipeline = VK_NULL_HANDLE;
    if (s_check_dispatch(self, kernel, binds, n_binds, gx, gy, gz)
        || !(pipeline = s_pipeline(self, kernel, n_binds))
        || s_bind_set(self, &set, binds, n_binds)) {
        self->record_failed = true;
        return -1;
    }
    if (self->dispatches > 0)
        s_barrier(self->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                  VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                  VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
    vkCmdBindPipeline(self->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
    vkCmdBindDescriptorSets(self->cmd, VK_PIPELINE_BIND_POINT_COMPUTE,
                            self->pipe_layouts[n_binds], 0, 1, &set, 0, NULL);
    if (push_size)
        vkCmdPushConstants(self->cmd, self->pipe_layouts[n_binds],
                           VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
    vkCmdDispatch(self->cmd, gx, gy, gz);
    if (self->profile) {
        vkCmdWriteTimestamp(self->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, self->queries,
                            2 + self->dispatches);
        self->record_kernels[self->dispatches] = (uint16_t) kernel;
    }
    self->dispatches++;
    return 0;
}

void
bly_vk_fail(bly_vk_t *self)
{
    bly_assert(self);
    bly_assert(self->recording);
    self->record_failed = true;
}

int
bly_vk_submit(bly_vk_t *self)
{
    bly_assert(self);
    bly_assert(self->recording);
    s_barrier(self->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
              VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
              VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT);
    if (self->queries)
        vkCmdWriteTimestamp(self->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, self->queries, 1);
    self->recording = false;
    if (vkEndCommandBuffer(self->cmd) || self->record_failed)
        return -1;
    if (s_submit_wait(self, self->cmd))
        return -1;
    self->last_dispatches = self->dispatches;
    self->last_gpu_ns = 0;
    uint64_t ts[2];
    if (self->queries
        && vkGetQueryPoolResults(self->device, self->queries, 0, 2, sizeof(ts), ts,
                                 sizeof(ts[0]), VK_QUERY_RESULT_64_BIT) == VK_SUCCESS
        && ts[1] >= ts[0])
        self->last_gpu_ns = (uint64_t) ((double) (ts[1] - ts[0])
                                        * self->info.timestamp_period_ns);
    s_profile_add(self, ts[0]);
    return 0;
}

uint64_t
bly_vk_last_gpu_ns(const bly_vk_t *self)
{
    bly_assert(self);
    return self->last_gpu_ns;
}

uint32_t
bly_vk_last_dispatches(const bly_vk_t *self)
{
    bly_assert(self);
    return self->last_dispatches;
}
