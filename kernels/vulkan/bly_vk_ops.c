/*  =========================================================================
    bly_vk_ops - record transformer operations as Vulkan dispatches
    (see bly_vk_ops.h; the kernels are in shaders/)
    ========================================================================= */

#include "bly_vk_ops.h"
#include "cpu/bly_ref.h"

#include <stdlib.h>
#include <string.h>

//  Push-constant blocks, field for field as the shaders declare them.
typedef struct { uint32_t n_cols, n_ids, row_bytes, row0, n_rows, y_off; } s_get_rows_push_t;
typedef struct {
    uint32_t n_cols, n_rows, row_bytes, n_tok, row0, y_stride, x_off, y_off, x_round;
} s_matmul_push_t;
typedef struct { uint32_t n_blocks, x_off; } s_quant_push_t;
typedef struct { uint32_t n, n_rows, x_off, y_off; float eps; } s_rmsnorm_push_t;
typedef struct { uint32_t n, a_off, b_off, y_off; } s_elem_push_t;
typedef struct { uint32_t head_dim, n_heads, n_tok, pos0, x_off, y_off; } s_rope_push_t;
typedef struct {
    uint32_t head_dim, n_head, n_head_kv, n_tok, pos0, q_off, o_off, kv_off;
    float scale;
} s_attn_push_t;
typedef struct { uint32_t n, x_off, o_off; } s_argmax_push_t;

_Static_assert(sizeof(s_matmul_push_t) <= BLY_VK_PUSH_MAX, "push constants fit");
_Static_assert(sizeof(s_attn_push_t) <= BLY_VK_PUSH_MAX, "push constants fit");

#define S_GROUPS_X_MAX 65535u   //  Vulkan's guaranteed minimum of maxComputeWorkGroupCount

uint64_t
bly_vk_row_bytes(bly_type_t type, uint64_t cols)
{
    switch (type) {
    case BLY_TYPE_F32: return cols * 4;
    case BLY_TYPE_F16:
    case BLY_TYPE_BF16: return cols * 2;
    case BLY_TYPE_Q8_0: return cols % 32 ? 0 : cols / 32 * 34;
    case BLY_TYPE_Q4_K: return cols % 256 ? 0 : cols / 256 * 144;
    case BLY_TYPE_Q6_K: return cols % 256 ? 0 : cols / 256 * 210;
    default: return 0;
    }
}

static uint64_t
s_gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

int
bly_vk_weight_init(bly_vk_t *vk, bly_vk_weight_t *w, bly_type_t type, uint32_t rows,
                   uint32_t cols, const void *data)
{
    bly_assert(vk);
    bly_assert(w);
    bly_assert(data);
    memset(w, 0, sizeof(*w));
    uint64_t row_bytes = bly_vk_row_bytes(type, cols);
    if (row_bytes == 0 || rows == 0 || row_bytes > UINT32_MAX) {
        bly_log_error("vulkan: weight type %d with %u columns is not supported", (int) type, cols);
        return -1;
    }
    //  Chunk offsets must be aligned; chunks carry 4 bytes of padding for stitched loads.
    uint64_t align = bly_vk_offset_align(vk);
    uint64_t step = align / s_gcd(row_bytes, align);
    uint64_t fit = (bly_vk_split_bytes(vk) - 4) / row_bytes / step * step;
    if (fit == 0) {
        bly_log_error("vulkan: a row of %llu bytes exceeds one storage binding",
                      (unsigned long long) row_bytes);
        return -1;
    }
    w->type = type;
    w->rows = rows;
    w->cols = cols;
    w->row_bytes = row_bytes;
    w->chunk_rows = fit < rows ? (uint32_t) fit : rows;
    uint64_t size = (uint64_t) rows * row_bytes;
    w->buf = bly_vk_buf_new(vk, size + 4);
    if (!w->buf || bly_vk_buf_write(w->buf, 0, data, size)) {
        bly_vk_weight_fini(w);
        return -1;
    }
    return 0;
}

void
bly_vk_weight_fini(bly_vk_weight_t *w)
{
    bly_assert(w);
    bly_vk_buf_destroy(&w->buf);
}

int
bly_vk_qscratch_init(bly_vk_t *vk, bly_vk_qscratch_t *s, uint64_t n_values)
{
    bly_assert(vk);
    bly_assert(s);
    bly_assert(n_values > 0);
    s->q = bly_vk_buf_new(vk, n_values);
    s->d = bly_vk_buf_new(vk, (n_values / 32 + 1) * 4);
    if (!s->q || !s->d) {
        bly_vk_qscratch_fini(s);
        return -1;
    }
    return 0;
}

void
bly_vk_qscratch_fini(bly_vk_qscratch_t *s)
{
    bly_assert(s);
    bly_vk_buf_destroy(&s->q);
    bly_vk_buf_destroy(&s->d);
}

//  Split n workgroups into a grid x * y with x <= 65535 (shaders linearise x + y * x_count).
static void
s_grid(uint64_t n, uint32_t *gx, uint32_t *gy)
{
    bly_assert(n > 0);
    *gx = n < S_GROUPS_X_MAX ? (uint32_t) n : S_GROUPS_X_MAX;
    *gy = (uint32_t) ((n + *gx - 1) / *gx);
}

static uint32_t
s_div_up(uint64_t n, uint32_t d)
{
    return (uint32_t) ((n + d - 1) / d);
}

//  Binding of rows [r0, r0 + nr) of a weight.
static bly_vk_bind_t
s_chunk_bind(const bly_vk_weight_t *w, uint32_t r0, uint32_t nr)
{
    uint64_t offset = (uint64_t) r0 * w->row_bytes;
    uint64_t range = (uint64_t) nr * w->row_bytes + 4;
    return (bly_vk_bind_t){.buf = w->buf, .offset = offset, .range = range};
}

int
bly_vk_op_get_rows(bly_vk_t *vk, const bly_vk_weight_t *w, bly_vk_buf_t *ids, uint32_t n_ids,
                   bly_vk_buf_t *y, uint32_t y_off)
{
    bly_assert(vk);
    bly_assert(w && w->buf);
    bly_assert(n_ids > 0 && n_ids <= S_GROUPS_X_MAX);
    static const bly_vk_kernel_t kernels[] = {
        [BLY_TYPE_F32] = BLY_VK_K_GET_ROWS_F32, [BLY_TYPE_F16] = BLY_VK_K_GET_ROWS_F16,
        [BLY_TYPE_BF16] = BLY_VK_K_GET_ROWS_BF16, [BLY_TYPE_Q8_0] = BLY_VK_K_GET_ROWS_Q8_0,
        [BLY_TYPE_Q4_K] = BLY_VK_K_GET_ROWS_Q4_K, [BLY_TYPE_Q6_K] = BLY_VK_K_GET_ROWS_Q6_K};
    bly_assert((size_t) w->type < sizeof(kernels) / sizeof(kernels[0]));
    uint32_t gx = s_div_up(w->cols, bly_vk_wg_size(vk));
    for (uint32_t r0 = 0; r0 < w->rows; r0 += w->chunk_rows) {
        uint32_t nr = w->rows - r0 < w->chunk_rows ? w->rows - r0 : w->chunk_rows;
        s_get_rows_push_t push = {w->cols, n_ids, (uint32_t) w->row_bytes, r0, nr, y_off};
        bly_vk_bind_t b[3] = {s_chunk_bind(w, r0, nr), {.buf = ids}, {.buf = y}};
        if (bly_vk_dispatch(vk, kernels[w->type], b, 3, &push, sizeof(push), gx, n_ids, 1))
            return -1;
    }
    return 0;
}

int
bly_vk_op_quantize(bly_vk_t *vk, bly_type_t type, bly_vk_buf_t *x, uint32_t x_off,
                   uint64_t n_values, const bly_vk_qscratch_t *qs)
{
    bly_assert(vk);
    bly_assert(qs && qs->q && qs->d);
    bly_assert(type == BLY_TYPE_Q8_0 || type == BLY_TYPE_Q8_K);
    uint32_t qk = type == BLY_TYPE_Q8_0 ? 32 : 256;
    bly_assert(n_values % qk == 0);
    if (n_values > bly_vk_buf_size(qs->q)) {
        bly_log_error("vulkan: %llu activations exceed the quantization scratch",
                      (unsigned long long) n_values);
        bly_vk_fail(vk);
        return -1;
    }
    s_quant_push_t push = {(uint32_t) (n_values / qk), x_off};
    uint32_t gx, gy;
    s_grid(s_div_up(push.n_blocks, bly_vk_wg_size(vk)), &gx, &gy);
    bly_vk_bind_t b[3] = {{.buf = x}, {.buf = qs->q}, {.buf = qs->d}};
    bly_vk_kernel_t k = type == BLY_TYPE_Q8_0 ? BLY_VK_K_QUANT_Q8_0 : BLY_VK_K_QUANT_Q8_K;
    return bly_vk_dispatch(vk, k, b, 3, &push, sizeof(push), gx, gy, 1);
}

static bly_vk_kernel_t
s_matmul_kernel(bly_type_t type, bool tb4)
{
    switch (type) {
    case BLY_TYPE_F32: return tb4 ? BLY_VK_K_MATMUL_F32_TB4 : BLY_VK_K_MATMUL_F32_TB1;
    case BLY_TYPE_F16: return tb4 ? BLY_VK_K_MATMUL_F16_TB4 : BLY_VK_K_MATMUL_F16_TB1;
    case BLY_TYPE_BF16: return tb4 ? BLY_VK_K_MATMUL_BF16_TB4 : BLY_VK_K_MATMUL_BF16_TB1;
    case BLY_TYPE_Q8_0: return tb4 ? BLY_VK_K_MATMUL_Q8_0_TB4 : BLY_VK_K_MATMUL_Q8_0_TB1;
    case BLY_TYPE_Q4_K: return tb4 ? BLY_VK_K_MATMUL_Q4_K_TB4 : BLY_VK_K_MATMUL_Q4_K_TB1;
    case BLY_TYPE_Q6_K: return tb4 ? BLY_VK_K_MATMUL_Q6_K_TB4 : BLY_VK_K_MATMUL_Q6_K_TB1;
    default: bly_assert(!"weight type has no matmul kernel"); return BLY_VK_K_MATMUL_F32_TB1;
    }
}

int
bly_vk_op_matmul(bly_vk_t *vk, const bly_vk_weight_t *w, bly_vk_buf_t *x, uint32_t x_off,
                 uint32_t n_tok, const bly_vk_qscratch_t *qs, bly_vk_buf_t *y, uint32_t y_off)
{
    bly_assert(vk);
    bly_assert(w && w->buf);
    bly_assert(n_tok > 0);
    bool quant = w->type == BLY_TYPE_Q8_0 || w->type == BLY_TYPE_Q4_K
                 || w->type == BLY_TYPE_Q6_K;
    uint64_t n_values = (uint64_t) n_tok * w->cols;
    if (quant) {
        bly_assert(qs);
        bly_type_t qt = w->type == BLY_TYPE_Q8_0 ? BLY_TYPE_Q8_0 : BLY_TYPE_Q8_K;
        if (bly_vk_op_quantize(vk, qt, x, x_off, n_values, qs))
            return -1;
    }
    //  The CPU converts activations to the weight's float type before F16/BF16 products.
    uint32_t x_round = w->type == BLY_TYPE_F16 ? 1 : w->type == BLY_TYPE_BF16 ? 2 : 0;
    bool tb4 = n_tok > 1;
    uint32_t gz = s_div_up(n_tok, tb4 ? 4 : 1);
    bly_vk_kernel_t kernel = s_matmul_kernel(w->type, tb4);
    for (uint32_t r0 = 0; r0 < w->rows; r0 += w->chunk_rows) {
        uint32_t nr = w->rows - r0 < w->chunk_rows ? w->rows - r0 : w->chunk_rows;
        s_matmul_push_t push = {w->cols, nr, (uint32_t) w->row_bytes, n_tok, r0, w->rows,
                                x_off, y_off, x_round};
        uint32_t gx, gy;
        s_grid(s_div_up(nr, bly_vk_kernel_rows(vk, kernel)), &gx, &gy);
        bly_vk_bind_t b[4] = {s_chunk_bind(w, r0, nr)};
        uint32_t n = 0;
        if (quant) {
            b[1] = (bly_vk_bind_t){.buf = qs->q};
            b[2] = (bly_vk_bind_t){.buf = qs->d};
            b[3] = (bly_vk_bind_t){.buf = y};
            n = 4;
        } else {
            b[1] = (bly_vk_bind_t){.buf = x};
            b[2] = (bly_vk_bind_t){.buf = y};
            n = 3;
        }
        if (bly_vk_dispatch(vk, kernel, b, n, &push, sizeof(push), gx, gy, gz))
            return -1;
    }
    return 0;
}

int
bly_vk_op_rmsnorm(bly_vk_t *vk, bly_vk_buf_t *x, uint32_t x_off, bly_vk_buf_t *w,
                  bly_vk_buf_t *y, uint32_t y_off, uint32_t n, uint32_t n_rows, float eps)
{
    bly_assert(vk);
    bly_assert(n > 0 && n_rows > 0);
    s_rmsnorm_push_t push = {n, n_rows, x_off, y_off, eps};
    uint32_t gx, gy;
    s_grid(n_rows, &gx, &gy);
    bly_vk_bind_t b[3] = {{.buf = x}, {.buf = w}, {.buf = y}};
    return bly_vk_dispatch(vk, BLY_VK_K_RMSNORM, b, 3, &push, sizeof(push), gx, gy, 1);
}

static int
s_elementwise(bly_vk_t *vk, bly_vk_kernel_t k, bly_vk_buf_t *a, uint32_t a_off,
              bly_vk_buf_t *b, uint32_t b_off, bly_vk_buf_t *y, uint32_t y_off, uint32_t n)
{
    bly_assert(vk);
    bly_assert(n > 0);
    s_elem_push_t push = {n, a_off, b_off, y_off};
    uint32_t gx, gy;
    s_grid(s_div_up(n, bly_vk_wg_size(vk)), &gx, &gy);
    bly_vk_bind_t binds[3] = {{.buf = a}, {.buf = b}, {.buf = y}};
    return bly_vk_dispatch(vk, k, binds, 3, &push, sizeof(push), gx, gy, 1);
}

int
bly_vk_op_add(bly_vk_t *vk, bly_vk_buf_t *a, uint32_t a_off, bly_vk_buf_t *b, uint32_t b_off,
              bly_vk_buf_t *y, uint32_t y_off, uint32_t n)
{
    return s_elementwise(vk, BLY_VK_K_ADD, a, a_off, b, b_off, y, y_off, n);
}

int
bly_vk_op_swiglu(bly_vk_t *vk, bly_vk_buf_t *a, uint32_t a_off, bly_vk_buf_t *b,
                 uint32_t b_off, bly_vk_buf_t *y, uint32_t y_off, uint32_t n)
{
    return s_elementwise(vk, BLY_VK_K_SWIGLU, a, a_off, b, b_off, y, y_off, n);
}

int
bly_vk_op_copy(bly_vk_t *vk, bly_vk_buf_t *a, uint32_t a_off, bly_vk_buf_t *y, uint32_t y_off,
               uint32_t n)
{
    return s_elementwise(vk, BLY_VK_K_COPY, a, a_off, a, a_off, y, y_off, n);
}

int
bly_vk_rope_table(bly_vk_buf_t *table, uint32_t head_dim, uint32_t positions, float base)
{
    bly_assert(table);
    bly_assert(head_dim % 2 == 0 && head_dim > 0);
    bly_assert(positions > 0 && positions <= BLY_VK_ROPE_POSITIONS_MAX);
    uint32_t half = head_dim / 2;
    uint64_t bytes = (uint64_t) positions * half * 2 * sizeof(float);
    float *cs = malloc(bytes);
    float *unit = malloc(head_dim * sizeof(float));
    if (!cs || !unit) {
        free(cs);
        free(unit);
        return -1;
    }
    //  Rotating (1, .., 1, 0, .., 0) with the reference gives exactly its (cos, sin) pairs.
    for (uint32_t p = 0; p < positions; p++) {
        for (uint32_t k = 0; k < head_dim; k++)
            unit[k] = k < half ? 1.0f : 0.0f;
        bly_ref_rope_neox(unit, 1, head_dim, p, base);
        for (uint32_t k = 0; k < half; k++) {
            cs[((uint64_t) p * half + k) * 2] = unit[k];
            cs[((uint64_t) p * half + k) * 2 + 1] = unit[half + k];
        }
    }
    free(unit);
    int rc = bly_vk_buf_write(table, 0, cs, bytes);
    free(cs);
    return rc;
}

int
bly_vk_op_rope(bly_vk_t *vk, bool neox, bly_vk_buf_t *x, uint32_t x_off, bly_vk_buf_t *table,
               bly_vk_buf_t *y, uint32_t y_off, uint32_t head_dim, uint32_t n_heads,
               uint32_t n_tok, uint32_t pos0)
{
    bly_assert(vk);
    bly_assert(head_dim % 2 == 0 && n_heads > 0);
    bly_assert(n_tok > 0 && n_tok <= S_GROUPS_X_MAX);
    if ((uint64_t) pos0 + n_tok > bly_vk_buf_size(table) / (head_dim * sizeof(float))) {
        bly_log_error("vulkan: rope positions %u..%u exceed the table", pos0, pos0 + n_tok - 1);
        bly_vk_fail(vk);
        return -1;
    }
    s_rope_push_t push = {head_dim, n_heads, n_tok, pos0, x_off, y_off};
    uint32_t gx = s_div_up(head_dim / 2 * n_heads, bly_vk_wg_size(vk));
    bly_vk_bind_t b[3] = {{.buf = x}, {.buf = table}, {.buf = y}};
    bly_vk_kernel_t k = neox ? BLY_VK_K_ROPE : BLY_VK_K_ROPE_NORMAL;
    return bly_vk_dispatch(vk, k, b, 3, &push, sizeof(push), gx, n_tok, 1);
}

int
bly_vk_op_attention(bly_vk_t *vk, const bly_vk_attn_t *a, bly_vk_buf_t *q, uint32_t q_off,
                    bly_vk_buf_t *k, bly_vk_buf_t *v, uint32_t kv_off, bly_vk_buf_t *o,
                    uint32_t o_off)
{
    bly_assert(vk);
    bly_assert(a);
    bly_assert(a->n_head_kv > 0 && a->n_head % a->n_head_kv == 0);
    bly_assert(a->n_tok > 0 && a->n_tok <= S_GROUPS_X_MAX);
    if (a->head_dim == 0 || a->head_dim > 256
        || a->head_dim > 2 * bly_vk_kernel_wg(vk, BLY_VK_K_ATTENTION)) {
        bly_log_error("vulkan: head_dim %u is not supported by the attention kernel",
                      a->head_dim);
        bly_vk_fail(vk);
        return -1;
    }
    s_attn_push_t push = {a->head_dim, a->n_head, a->n_head_kv, a->n_tok, a->pos0,
                          q_off, o_off, kv_off, a->scale};
    bly_vk_bind_t b[4] = {{.buf = q}, {.buf = k}, {.buf = v}, {.buf = o}};
    return bly_vk_dispatch(vk, BLY_VK_K_ATTENTION, b, 4, &push, sizeof(push), a->n_head,
                           a->n_tok, 1);
}

int
bly_vk_op_argmax(bly_vk_t *vk, bly_vk_buf_t *x, uint32_t x_off, uint32_t n, bly_vk_buf_t *out,
                 uint32_t o_off)
{
    bly_assert(vk);
    bly_assert(n > 0);
    s_argmax_push_t push = {n, x_off, o_off};
    bly_vk_bind_t b[2] = {{.buf = x}, {.buf = out}};
    return bly_vk_dispatch(vk, BLY_VK_K_ARGMAX, b, 2, &push, sizeof(push), 1, 1, 1);
}
