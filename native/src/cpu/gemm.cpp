// Linear layers: weight packing, argument validation, and the parallel loop nest shared by every
// weight format (the kernels themselves are in gemm_f32*.cpp, gemm_int8*.cpp and gemm_half*.cpp).
//
// Parallel decomposition: Y is cut into tasks of at most block_rows rows (kBlockRows, kF32BlockRows
// for fp32) x kBlockPanels panels; each task runs one kernel variant's block function, whose loop
// nest walks the panels and row micro-tiles. Row blocks are of near-equal height (see
// balanced_rows), so that one text of ~100 tokens does not split into a full block and a short one.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "half.h"
#include "kernels.h"
#include "runtime.h"

namespace tw {
namespace {

int64_t group_size(tw_dtype format) {
    switch (format) {
        case TW_I8: return 4;
        case TW_BF16: return 2;
        default: return 1;
    }
}

int64_t element_bytes(tw_dtype format) {
    switch (format) {
        case TW_I8: return 1;
        case TW_F32: return 4;
        default: return 2;
    }
}

/// Allocates an empty handle with zeroed 64-byte-aligned panels (and scales/sums for I8).
tw_packed_weights* allocate(tw_dtype format, int64_t n, int64_t k) {
    auto* w = new (std::nothrow) tw_packed_weights();
    if (w == nullptr) return nullptr;
    w->format = format;
    w->n = n;
    w->k = k;
    w->panels = (n + kPanel - 1) / kPanel;
    const int64_t g = group_size(format);
    w->k_groups = (k + g - 1) / g;
    w->panel_bytes = w->k_groups * g * kPanel * element_bytes(format);  // a multiple of 64
    const size_t data_bytes = static_cast<size_t>(w->panels * w->panel_bytes);
    w->data = std::aligned_alloc(64, data_bytes);
    w->bytes = static_cast<int64_t>(data_bytes) + static_cast<int64_t>(sizeof(tw_packed_weights));
    if (format == TW_I8) {
        const size_t columns = static_cast<size_t>(w->panels * kPanel);
        w->scales = static_cast<float*>(std::aligned_alloc(64, columns * sizeof(float)));
        w->col_sums = static_cast<int32_t*>(std::aligned_alloc(64, columns * sizeof(int32_t)));
        w->bytes += static_cast<int64_t>(columns * 8);
        if (w->scales) std::memset(w->scales, 0, columns * sizeof(float));
        if (w->col_sums) std::memset(w->col_sums, 0, columns * sizeof(int32_t));
    }
    if (w->data == nullptr ||
        (format == TW_I8 && (w->scales == nullptr || w->col_sums == nullptr))) {
        tw_packed_weights_free(w);
        return nullptr;
    }
    std::memset(w->data, 0, data_bytes);
    return w;
}

/// Panel column (panel * kPanel + column) of weight row i: i itself, except for gated weights,
/// whose up row j and gate row ff + j share the panel of output j (see gemm_kernels.h).
int64_t packed_column(const tw_packed_weights& w, int64_t i) {
    if (!w.gated) return i;
    const int64_t ff = w.n / 2;
    const int64_t j = i < ff ? i : i - ff;
    return (j / 16) * kPanel + (i < ff ? 0 : 16) + j % 16;
}

/// Byte offset of element (row i, k) in the packed layout (see gemm_kernels.h).
int64_t packed_offset(const tw_packed_weights& w, int64_t i, int64_t k) {
    const int64_t col = packed_column(w, i);
    const int64_t p = col / kPanel, c = col % kPanel;
    switch (w.format) {
        case TW_I8: return p * w.panel_bytes + (k / 4) * kPanel * 4 + c * 4 + k % 4;
        case TW_BF16: return p * w.panel_bytes + ((k / 2) * kPanel * 2 + c * 2 + k % 2) * 2;
        case TW_F32: return p * w.panel_bytes + (k * kPanel + c) * 4;
        default: return p * w.panel_bytes + (k * kPanel + c) * 2;
    }
}

tw_status check_shape(int64_t n, int64_t k, int64_t ld, const void* w, tw_packed_weights** out) {
    if (out == nullptr) return fail(TW_ERR_INVALID_ARGUMENT, "out must not be null");
    *out = nullptr;
    if (w == nullptr) return fail(TW_ERR_INVALID_ARGUMENT, "weights must not be null");
    if (n <= 0 || k <= 0 || ld < k) {
        return fail(
            TW_ERR_INVALID_ARGUMENT, "bad weight shape n=%lld k=%lld ld=%lld (n, k > 0, ld >= k)",
            static_cast<long long>(n), static_cast<long long>(k), static_cast<long long>(ld));
    }
    if (k > TW_INT8_MAX_K || n > (int64_t{1} << 31)) {
        return fail(TW_ERR_INVALID_ARGUMENT, "weight shape n=%lld k=%lld is too large (k <= %d)",
                    static_cast<long long>(n), static_cast<long long>(k), TW_INT8_MAX_K);
    }
    return TW_OK;
}

struct TaskGrid {
    const GemmArgs* a;
    BlockFn fn;
    int64_t rows_per_block, row_blocks, panel_blocks;
    int64_t group_panel_blocks;  // panel blocks per task group (see run_gemm_blocks)
    bool whole_rows;             // LayerNorm epilogue or quantized output: tasks own complete rows
    std::atomic<bool>* out_of_memory;  // set by a task that found no row scratch
    LayerNormRowsFn normalize;         // LayerNorm rows, or null
    QuantizeFn quantize;               // for a.yq
    int32_t qmax;
    const tw_packed_weights* all_columns;  // gated: a.w with n = every panel column, else null
    GateRowsFn gate;                       // gated: the table's gate rows
};

/// Rows per task for M rows and tasks of at most `limit` rows: as few row blocks as `limit` allows,
/// of near-equal height, rounded up to limit / 8 rows (a multiple of every kernel's micro-tile
/// height: 8 for int8 and half, 12 and 6 for fp32's AVX-512 and AVX2 tiles). With plain blocks of
/// `limit` rows, M = 106 fp32 rows split into 96 + 10: on two workers, N = 384 (three panel
/// blocks) ran 96 + 10 + 96 rows on one worker and 10 + 96 + 10 on the other, 79% of the pool's
/// time; 60 + 46 runs 166 vs 152 rows. Large M is unchanged (4096 = 64 x 64 or 43 x 96 rows).
int64_t balanced_rows(int64_t m, int64_t limit) {
    const int64_t micro = std::max<int64_t>(1, limit / 8);
    const int64_t blocks = std::max<int64_t>(1, (m + limit - 1) / limit);
    const int64_t rows = (m + blocks - 1) / blocks;
    return std::min(limit, (rows + micro - 1) / micro * micro);
}

/// The arguments restricted to rows [m0, m1), renumbered from 0.
GemmArgs rows_of(const GemmArgs& a, int64_t m0, int64_t m1) {
    GemmArgs r = a;
    r.m = m1 - m0;
    if (r.x) r.x += m0 * a.ldx;
    if (r.xq) r.xq += m0 * a.ldq;
    if (r.x_scale) r.x_scale += m0;
    if (r.x_zero) r.x_zero += m0;
    if (r.xb) r.xb += m0 * a.ldb;
    if (r.residual) r.residual += m0 * a.ld_residual;
    if (r.y) r.y += m0 * a.ldy;
    return r;
}

/// Columns of a gated task tile: the task's kBlockPanels panels.
constexpr int64_t kGateTileColumns = kBlockPanels * kPanel;

/// A gated task: the kernel computes rows [m0, m1) x panels [p0, p0 + kBlockPanels) of u and g
/// with no bias or epilogue into a per-thread tile, then the gate writes the task's outputs.
void gated_task(const TaskGrid& t, int64_t m0, int64_t m1, int64_t p0) {
    const GemmArgs& a = *t.a;
    const int64_t p1 = std::min(a.w->panels, p0 + kBlockPanels);
    const int64_t rows = m1 - m0;
    auto* tile = static_cast<float*>(thread_scratch(
        static_cast<size_t>(rows * kGateTileColumns) * sizeof(float), ScratchSlot::kGateTile));
    if (tile == nullptr) {
        t.out_of_memory->store(true);
        return;
    }
    GemmArgs r = rows_of(a, m0, m1);
    r.w = t.all_columns;  // every column of the panels is stored (u and g interleave)
    r.bias = nullptr;
    r.epilogue = TW_EPILOGUE_NONE;
    r.ldy = kGateTileColumns;
    // The kernel stores column c of row i at y + i * ldy + c, c from p0 * kPanel: point y so that
    // the task's first column lands at tile[0] (address arithmetic, never dereferenced outside).
    r.y = reinterpret_cast<float*>(reinterpret_cast<uintptr_t>(tile) -
                                   static_cast<uintptr_t>(p0 * kPanel) * sizeof(float));
    t.fn(r, 0, rows, p0, p1);
    const int64_t ff = a.w->n / 2;
    const int64_t j0 = p0 * (kPanel / 2);
    const int64_t count = std::min(ff, p1 * (kPanel / 2)) - j0;
    t.gate(tile, kGateTileColumns, rows, count, a.bias ? a.bias + j0 : nullptr,
           a.bias ? a.bias + ff + j0 : nullptr, a.epilogue & TW_EPILOGUE_GATED,
           a.y + m0 * a.ldy + j0, a.ldy);
}

void grid_task(void* ctx, int64_t task, int) {
    const auto& t = *static_cast<TaskGrid*>(ctx);
    const GemmArgs& a = *t.a;
    // Groups of group_panel_blocks panel blocks one after the other; within a group, panel blocks
    // vary fastest (the last group may be narrower).
    const int64_t per_group = t.row_blocks * t.group_panel_blocks;
    const int64_t group = task / per_group;
    const int64_t width =
        std::min(t.group_panel_blocks, t.panel_blocks - group * t.group_panel_blocks);
    const int64_t rb = (task % per_group) / width;
    const int64_t pb = group * t.group_panel_blocks + (task % per_group) % width;
    const int64_t m0 = rb * t.rows_per_block;
    const int64_t m1 = std::min(a.m, m0 + t.rows_per_block);
    if (t.gate != nullptr) {
        gated_task(t, m0, m1, pb * kBlockPanels);
        return;
    }
    if (!t.whole_rows) {
        const int64_t p0 = pb * kBlockPanels;
        t.fn(a, m0, m1, p0, std::min(a.w->panels, p0 + kBlockPanels));
        return;
    }
    // Whole rows: every panel, then LayerNorm and quantization while the rows are in L1/L2.
    GemmArgs r = rows_of(a, m0, m1);
    const int64_t rows = m1 - m0, n = a.w->n;
    if (r.y == nullptr) {
        r.ldy = n;
        r.y = static_cast<float*>(thread_scratch(static_cast<size_t>(rows * n) * sizeof(float),
                                                 ScratchSlot::kOutputRows));
        if (r.y == nullptr) {
            t.out_of_memory->store(true);
            return;
        }
    }
    t.fn(r, 0, rows, 0, a.w->panels);
    if (t.normalize != nullptr) {
        tw_layernorm_params ln{};
        ln.m = rows;
        ln.k = n;
        ln.x = r.y;
        ln.ldx = r.ldy;
        ln.gamma = a.ln_gamma;
        ln.beta = a.ln_beta;
        ln.eps = a.ln_eps;
        ln.y = r.y;
        ln.ldy = r.ldy;
        t.normalize(ln, 0, rows);
    }
    if (a.yq != nullptr) {
        tw_quantized_rows& q = *a.yq;
        t.quantize(r.y, r.ldy, a.yq_mult, 0, rows, n, a.yq_mode, t.qmax, q.q + m0 * q.ldq, q.ldq,
                   q.scales + m0, q.zero_points + m0);
    }
}

/// Rows of quantized activations that must be m x k with a usable stride and all three buffers.
tw_status check_quantized_rows(const tw_quantized_rows& q, int64_t m, int64_t k, const char* what) {
    if (q.m != m || q.k != k || q.ldq < tw_quantized_row_stride(k) || q.q == nullptr ||
        q.scales == nullptr || q.zero_points == nullptr) {
        return fail(TW_ERR_INVALID_ARGUMENT,
                    "%s m=%lld k=%lld ldq=%lld do not match m=%lld k=%lld (or a buffer is null)",
                    what, static_cast<long long>(q.m), static_cast<long long>(q.k),
                    static_cast<long long>(q.ldq), static_cast<long long>(m),
                    static_cast<long long>(k));
    }
    return TW_OK;
}

bool overlaps(const void* a, int64_t a_bytes, const void* b, int64_t b_bytes) {
    const auto* pa = static_cast<const char*>(a);
    const auto* pb = static_cast<const char*>(b);
    return pa < pb + b_bytes && pb < pa + a_bytes;
}

}  // namespace

/// Packed weights per task group (see run_gemm_blocks): 2 MiB, two L2s' worth. Before, row blocks
/// varied fastest over all of one panel block's tasks: its panels stayed in L2, but every task
/// fetched its rows of X anew from L3 as 8-12 short row streams (6-12 lines per row at K = 384-768,
/// little for a prefetcher to lock on to). Panel blocks fastest keeps a task's rows of X in L1/L2
/// and streams the weights in long sequential runs; the group bounds the weights re-read per row
/// block. Zen 5, M = 4096, budgets 512 KiB / 2 MiB / 8 MiB / unbounded tried in interleaved runs
/// of a scratch program (medians of 3, int8 kernel): 2304 x 768 1,211 / 1,317 / 1,269 / 1,281
/// GOP/s with row blocks fastest at 1,211, 768 x 3072 1,285 -> 1,397 (2 MiB). Unbounded costs fp32
/// at K = 768 (2304 x 768: 339 -> 316 GFLOP/s, 7 MB of fp32 weights per row block). gemm_bench,
/// six interleaved rounds (noisy): int8 with per-call quantization +5-9% on 1152 x 384 and the
/// K = 768 shapes, the int8 kernel and fp32 unchanged to +4%; AVX2 unchanged or better.
constexpr int64_t kGroupWeightBytes = int64_t{2} << 20;
/// Activations up to this size keep the plain order (row blocks fastest, one group per panel
/// block): half of Zen 5's 1 MiB L2. The groups are for rows of X that no longer stay in L2 between
/// the tasks that share them (M = 4096: 1.5-12 MB); at M = 106 (one text, 81 KB of bf16 rows)
/// grouped bf16 measured 2-7% slower (interleaved gemm_bench runs, about their noise), so small
/// M keeps the order it was tuned with.
constexpr int64_t kGroupActivationBytes = int64_t{512} << 10;

tw_status run_gemm_blocks(const GemmArgs& a, const LinearKernel& k, const KernelTable& t) {
    std::atomic<bool> out_of_memory{false};
    const BlockFn fn = k.block;
    const int64_t block_rows = balanced_rows(a.m, k.block_rows);
    // Task order: the panel blocks are cut into groups whose packed weights take at most
    // kGroupWeightBytes; group after group, each row block runs the group's panel blocks one after
    // the other (panel blocks vary fastest). A worker's consecutive tasks then share their rows of
    // X, which stay in its L1/L2 while the group's panels stream past in long sequential runs;
    // the group's weights are re-read once per row block, from L2/L3.
    TaskGrid grid{&a,
                  fn,
                  block_rows,
                  (a.m + block_rows - 1) / block_rows,
                  (a.w->panels + kBlockPanels - 1) / kBlockPanels,
                  1,
                  false,
                  &out_of_memory,
                  nullptr,
                  nullptr,
                  0,
                  nullptr,
                  nullptr};
    const int64_t activation_bytes = a.m * a.w->k * (a.xq != nullptr ? 1 : a.xb != nullptr ? 2 : 4);
    if (activation_bytes > kGroupActivationBytes) {
        const int64_t block_bytes = kBlockPanels * a.w->panel_bytes;
        grid.group_panel_blocks =
            std::min(grid.panel_blocks, std::max<int64_t>(1, kGroupWeightBytes / block_bytes));
    }
    tw_packed_weights all_columns;
    if (a.epilogue & TW_EPILOGUE_GATED) {
        all_columns = *a.w;
        all_columns.n = a.w->panels * kPanel;
        grid.all_columns = &all_columns;
        grid.gate = t.gate.fn;
    }
    if ((a.epilogue & TW_EPILOGUE_LAYERNORM) || a.yq != nullptr) {
        // One task per block of whole rows; smaller blocks when there are few rows, so that every
        // worker still gets about four tasks (8-row multiples: the micro-tile height).
        const int64_t workers = num_workers();
        const int64_t wanted = (a.m + 4 * workers - 1) / (4 * workers);
        grid.rows_per_block = std::max<int64_t>(8, std::min(block_rows, (wanted + 7) / 8 * 8));
        grid.row_blocks = (a.m + grid.rows_per_block - 1) / grid.rows_per_block;
        grid.panel_blocks = 1;
        grid.group_panel_blocks = 1;
        grid.whole_rows = true;
        if (a.epilogue & TW_EPILOGUE_LAYERNORM) grid.normalize = t.layernorm.fn;
        if (a.yq != nullptr) {
            grid.quantize = t.quantize.fn;
            grid.qmax = a.yq->qmax;
        }
    }
    parallel_for(grid.row_blocks * grid.panel_blocks, grid_task, &grid);
    if (out_of_memory.load()) {
        return fail(TW_ERR_OUT_OF_MEMORY, "no memory for %lld output rows of scratch",
                    static_cast<long long>(grid.rows_per_block));
    }
    return ok();
}

/// Clipping ratios tried for reduced-range weights: max|w| times 1, 0.99, ..., 0.60.
constexpr int kClipSteps = 40;

/// The per-channel scale of int8 weight codes in [-weight_max, weight_max].
float channel_scale(const float* row, int64_t k, int32_t weight_max) {
    float amax = 0.0f;
    for (int64_t j = 0; j < k; ++j) amax = std::max(amax, std::fabs(row[j]));
    if (amax == 0.0f) return 1.0f;
    const float limit = static_cast<float>(weight_max);
    if (weight_max >= 127) return amax / limit;
    // Fewer levels: the scale with the least squared rounding error over the clipping ratios
    // (measured on MiniLM at 64 levels: min cosine 0.98801 with the search, 0.98672 without).
    float best_scale = amax / limit;
    double best_error = HUGE_VAL;
    for (int step = 0; step <= kClipSteps; ++step) {
        const float scale = amax * (1.0f - 0.01f * static_cast<float>(step)) / limit;
        double error = 0.0;
        for (int64_t j = 0; j < k; ++j) {
            const float q = std::min(limit, std::max(-limit, std::nearbyint(row[j] / scale)));
            const double d = static_cast<double>(row[j]) - static_cast<double>(q) * scale;
            error += d * d;
        }
        if (error < best_error) {
            best_error = error;
            best_scale = scale;
        }
    }
    return best_scale;
}

float gelu_scalar(float x) {
    return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
}

void gate_rows_portable(const float* s, int64_t lds, int64_t rows, int64_t count, const float* bu,
                        const float* bg, int gate, float* y, int64_t ldy) {
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < count; ++j) {
            const int64_t c = (j / 16) * kPanel + j % 16;
            float u = s[r * lds + c] + (bu ? bu[j] : 0.0f);
            const float g = s[r * lds + c + 16] + (bg ? bg[j] : 0.0f);
            if (gate == TW_EPILOGUE_GATED_GELU) {
                u = gelu_scalar(u);
            } else if (gate == TW_EPILOGUE_GATED_GELU_TANH) {
                u = 0.5f * u * (1.0f + std::tanh(0.7978845608f * (u + 0.044715f * u * u * u)));
            } else {
                u = u / (1.0f + std::exp(-u));
            }
            y[r * ldy + j] = u * g;
        }
    }
}

/// tw_pack_weights with int8 codes in [-weight_max, weight_max].
static tw_status pack_float_weights(tw_dtype format, int64_t n, int64_t k, const float* w,
                                    int64_t ldw, int32_t weight_max, bool gated,
                                    tw_packed_weights** out) {
    if (tw_status s = tw::check_shape(n, k, ldw, w, out)) return s;
    if (gated && n % 2 != 0) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT,
                        "gated weights need an even n = 2 ff (up rows, then gate rows), got %lld",
                        static_cast<long long>(n));
    }
    if (format != TW_F32 && format != TW_I8 && format != TW_BF16 && format != TW_F16) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT,
                        "weights can be packed as TW_F32, TW_I8, TW_BF16 or TW_F16, not dtype %d",
                        static_cast<int>(format));
    }
    // fp32 weights are kept as they are (a non-finite one gives non-finite outputs, as in PyTorch);
    // the other formats need finite values to scale and round.
    for (int64_t i = 0; i < n && format != TW_F32; ++i) {
        for (int64_t j = 0; j < k; ++j) {
            if (!std::isfinite(w[i * ldw + j])) {
                return tw::fail(TW_ERR_INVALID_ARGUMENT, "weight [%lld, %lld] is not finite",
                                static_cast<long long>(i), static_cast<long long>(j));
            }
        }
    }
    tw_packed_weights* p = tw::allocate(format, n, k);
    if (p == nullptr)
        return tw::fail(TW_ERR_OUT_OF_MEMORY, "no memory to pack %lld x %lld weights",
                        static_cast<long long>(n), static_cast<long long>(k));
    p->gated = gated ? 1 : 0;
    auto* bytes = static_cast<uint8_t*>(p->data);
    for (int64_t i = 0; i < n; ++i) {
        const float* row = w + i * ldw;
        if (format == TW_I8) {
            // Symmetric per output channel, codes in [-weight_max, weight_max].
            const float scale = tw::channel_scale(row, k, weight_max);
            const float limit = static_cast<float>(weight_max);
            int32_t sum = 0;
            for (int64_t j = 0; j < k; ++j) {
                const int32_t q = static_cast<int32_t>(
                    std::min(limit, std::max(-limit, std::nearbyint(row[j] / scale))));
                reinterpret_cast<int8_t*>(bytes)[tw::packed_offset(*p, i, j)] =
                    static_cast<int8_t>(q);
                sum += q;
                p->weight_max = std::max(p->weight_max, std::abs(q));
            }
            p->scales[tw::packed_column(*p, i)] = scale;
            p->col_sums[tw::packed_column(*p, i)] = sum;
        } else if (format == TW_F32) {
            for (int64_t j = 0; j < k; ++j)
                std::memcpy(bytes + tw::packed_offset(*p, i, j), &row[j], 4);
        } else {
            for (int64_t j = 0; j < k; ++j) {
                const uint16_t h =
                    format == TW_BF16 ? tw::float_to_bf16(row[j]) : tw::float_to_fp16(row[j]);
                std::memcpy(bytes + tw::packed_offset(*p, i, j), &h, 2);
            }
        }
    }
    *out = p;
    return tw::ok();
}

}  // namespace tw

extern "C" {

tw_status tw_pack_weights(tw_dtype format, int64_t n, int64_t k, const float* w, int64_t ldw,
                          tw_packed_weights** out) {
    return tw::pack_float_weights(format, n, k, w, ldw, 127, false, out);
}

tw_status tw_pack_weights_gated(tw_dtype format, int64_t n, int64_t k, const float* w, int64_t ldw,
                                int32_t weight_max, tw_packed_weights** out) {
    if (format == TW_I8 && (weight_max < 1 || weight_max > 127)) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "weight_max is %d: int8 weight codes take 1..127",
                        static_cast<int>(weight_max));
    }
    return tw::pack_float_weights(format, n, k, w, ldw, format == TW_I8 ? weight_max : 127, true,
                                  out);
}

int tw_packed_weights_gated(const tw_packed_weights* w) {
    return w != nullptr && w->gated ? 1 : 0;
}

tw_status tw_pack_weights_int8_range(int64_t n, int64_t k, const float* w, int64_t ldw,
                                     int32_t weight_max, tw_packed_weights** out) {
    if (weight_max < 1 || weight_max > 127) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "weight_max is %d: int8 weight codes take 1..127",
                        static_cast<int>(weight_max));
    }
    return tw::pack_float_weights(TW_I8, n, k, w, ldw, weight_max, false, out);
}

tw_status tw_pack_weights_int8(int64_t n, int64_t k, const int8_t* wq, int64_t ldq,
                               const float* scales, tw_packed_weights** out) {
    if (tw_status s = tw::check_shape(n, k, ldq, wq, out)) return s;
    if (scales == nullptr) return tw::fail(TW_ERR_INVALID_ARGUMENT, "scales must not be null");
    for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(scales[i]) || scales[i] < 0.0f) {
            return tw::fail(TW_ERR_INVALID_ARGUMENT,
                            "scale %lld is %g: scales must be finite and >= 0",
                            static_cast<long long>(i), static_cast<double>(scales[i]));
        }
    }
    tw_packed_weights* p = tw::allocate(TW_I8, n, k);
    if (p == nullptr)
        return tw::fail(TW_ERR_OUT_OF_MEMORY, "no memory to pack %lld x %lld weights",
                        static_cast<long long>(n), static_cast<long long>(k));
    auto* data = static_cast<int8_t*>(p->data);
    for (int64_t i = 0; i < n; ++i) {
        int32_t sum = 0;
        for (int64_t j = 0; j < k; ++j) {
            data[tw::packed_offset(*p, i, j)] = wq[i * ldq + j];
            sum += wq[i * ldq + j];
            p->weight_max =
                std::max(p->weight_max, std::abs(static_cast<int32_t>(wq[i * ldq + j])));
        }
        p->scales[i] = scales[i];
        p->col_sums[i] = sum;
    }
    *out = p;
    return tw::ok();
}

void tw_packed_weights_free(tw_packed_weights* w) {
    if (w == nullptr) return;
    std::free(w->data);
    std::free(w->scales);
    std::free(w->col_sums);
    delete w;
}

tw_status tw_packed_weights_info(const tw_packed_weights* w, tw_dtype* format, int64_t* n,
                                 int64_t* k, int64_t* bytes) {
    if (w == nullptr) return tw::fail(TW_ERR_INVALID_ARGUMENT, "packed weights are null");
    if (format) *format = w->format;
    if (n) *n = w->n;
    if (k) *k = w->k;
    if (bytes) *bytes = w->bytes;
    return tw::ok();
}

tw_status tw_unpack_weights(const tw_packed_weights* w, float* out, int64_t ld) {
    if (w == nullptr || out == nullptr)
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "weights and out must not be null");
    if (ld < w->k)
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "ld %lld < k %lld", static_cast<long long>(ld),
                        static_cast<long long>(w->k));
    const auto* bytes = static_cast<const uint8_t*>(w->data);
    for (int64_t i = 0; i < w->n; ++i) {
        for (int64_t j = 0; j < w->k; ++j) {
            const int64_t off = tw::packed_offset(*w, i, j);
            float v;
            if (w->format == TW_I8) {
                v = w->scales[tw::packed_column(*w, i)] *
                    static_cast<float>(reinterpret_cast<const int8_t*>(bytes)[off]);
            } else if (w->format == TW_F32) {
                std::memcpy(&v, bytes + off, 4);
            } else {
                uint16_t h;
                std::memcpy(&h, bytes + off, 2);
                v = w->format == TW_BF16 ? tw::bf16_to_float(h) : tw::fp16_to_float(h);
            }
            out[i * ld + j] = v;
        }
    }
    return tw::ok();
}

const char* tw_linear_kernel_name(tw_dtype format, tw_activation_quant quant) {
    const tw::LinearKernel* k = tw::select_linear(tw::kernels(), format, quant, 127);
    return k != nullptr ? k->name : "unsupported";
}

const char* tw_linear_kernel_name_for(const tw_packed_weights* w, tw_activation_quant quant) {
    if (w == nullptr) return "unsupported";
    const tw::LinearKernel* k = tw::select_linear(tw::kernels(), w->format, quant, w->weight_max);
    return k != nullptr ? k->name : "unsupported";
}

tw_status tw_linear(const tw_linear_params* p) {
    if (p == nullptr) return tw::fail(TW_ERR_INVALID_ARGUMENT, "params must not be null");
    if (p->w == nullptr) return tw::fail(TW_ERR_INVALID_ARGUMENT, "weights must not be null");
    const tw_packed_weights& w = *p->w;
    const int64_t m = p->m;
    if (m < 0)
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "m=%lld must be >= 0", static_cast<long long>(m));
    const int gate = p->epilogue & TW_EPILOGUE_GATED;
    if (gate != 0 || w.gated) {
        if (!w.gated || (gate != TW_EPILOGUE_GATED_GELU && gate != TW_EPILOGUE_GATED_GELU_TANH &&
                         gate != TW_EPILOGUE_GATED_SILU)) {
            return tw::fail(TW_ERR_INVALID_ARGUMENT,
                            "gated weights (tw_pack_weights_gated) and exactly one "
                            "TW_EPILOGUE_GATED_* flag go together (weights %s, epilogue %d)",
                            w.gated ? "gated" : "not gated", p->epilogue);
        }
        if ((p->epilogue & ~TW_EPILOGUE_GATED) != 0 || p->yq != nullptr) {
            return tw::fail(TW_ERR_INVALID_ARGUMENT,
                            "a gated epilogue takes no GELU, residual, LayerNorm or yq (epilogue "
                            "%d)",
                            p->epilogue);
        }
    }
    // Output columns: n, or ff = n / 2 for a gated layer.
    const int64_t n_out = w.gated ? w.n / 2 : w.n;
    if ((p->y == nullptr && p->yq == nullptr) || (p->y != nullptr && p->ldy < n_out)) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT,
                        "y must not be null (unless yq is set) and ldy (%lld) >= %s (%lld)",
                        static_cast<long long>(p->ldy), w.gated ? "n / 2" : "n",
                        static_cast<long long>(n_out));
    }
    if (p->yq != nullptr) {
        const tw_quantized_rows& q = *p->yq;
        if (p->yq_mode != TW_QUANT_SYMMETRIC && p->yq_mode != TW_QUANT_ASYMMETRIC) {
            return tw::fail(TW_ERR_INVALID_ARGUMENT,
                            "yq needs yq_mode SYMMETRIC or ASYMMETRIC, got %d",
                            static_cast<int>(p->yq_mode));
        }
        if (tw_status s = tw::check_quantized_rows(q, m, w.n, "yq (the quantized output)"))
            return s;
    }
    if (p->epilogue &
        ~(TW_EPILOGUE_GELU | TW_EPILOGUE_RESIDUAL | TW_EPILOGUE_LAYERNORM | TW_EPILOGUE_GATED)) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "unknown epilogue flags %d", p->epilogue);
    }
    if ((p->epilogue & TW_EPILOGUE_LAYERNORM) &&
        (!(p->ln_eps >= 0.0f) || !std::isfinite(p->ln_eps))) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "a LayerNorm epilogue needs a finite ln_eps >= 0");
    }
    if ((p->epilogue & TW_EPILOGUE_RESIDUAL) && (p->residual == nullptr || p->ld_residual < w.n)) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT,
                        "a residual epilogue needs residual != null and ld_residual >= n");
    }
    if (m == 0) return tw::ok();
    // One table for the whole call: the kernel named by tw_linear_kernel_name_for is the one run.
    const tw::KernelTable& t = tw::kernels();
    tw::GemmArgs a{};
    a.w = p->w;
    a.m = m;
    a.bias = p->bias;
    a.epilogue = p->epilogue;
    a.residual = p->residual;
    a.ld_residual = p->ld_residual;
    a.y = p->y;
    a.ldy = p->ldy;
    a.ln_gamma = p->ln_gamma;
    a.ln_beta = p->ln_beta;
    a.ln_eps = p->ln_eps;
    const int64_t y_bytes = p->y == nullptr ? 0 : ((m - 1) * p->ldy + n_out) * 4;
    if (p->yq != nullptr) {
        tw_quantized_rows& q = *p->yq;
        q.qmax = t.linear.int8.input_qmax;
        const int64_t q_bytes = (m - 1) * q.ldq + w.n;
        if ((p->y != nullptr && tw::overlaps(q.q, q_bytes, p->y, y_bytes)) ||
            (p->x != nullptr && p->xq == nullptr &&
             tw::overlaps(q.q, q_bytes, p->x, ((m - 1) * p->ldx + w.k) * 4))) {
            return tw::fail(TW_ERR_INVALID_ARGUMENT, "yq overlaps x or y");
        }
        a.yq = p->yq;
        a.yq_mode = p->yq_mode;
        a.yq_mult = p->yq_channel_scale;
    }
    if (p->xq != nullptr) {
        const tw_quantized_rows& q = *p->xq;
        if (w.format != TW_I8) {
            return tw::fail(TW_ERR_INVALID_ARGUMENT,
                            "pre-quantized activations need TW_I8 weights");
        }
        if (tw_status s = tw::check_quantized_rows(q, m, w.k, "quantized activations")) return s;
        if (q.qmax < 1 || q.qmax > 255) {
            return tw::fail(TW_ERR_INVALID_ARGUMENT,
                            "quantized activations: qmax %d is outside [1, 255]",
                            static_cast<int>(q.qmax));
        }
        if (tw::overlaps(q.q, (m - 1) * q.ldq + w.k, p->y, y_bytes)) {
            return tw::fail(TW_ERR_INVALID_ARGUMENT, "y overlaps the quantized activations");
        }
        a.xq = q.q;
        a.ldq = q.ldq;
        a.x_scale = q.scales;
        a.x_zero = q.zero_points;
        return tw::int8_quantized_linear(
            a, q.qmax, *tw::select_linear(t, TW_I8, TW_QUANT_ASYMMETRIC, w.weight_max), t);
    }
    if (p->x == nullptr || p->ldx < w.k) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "x must not be null and ldx (%lld) >= k (%lld)",
                        static_cast<long long>(p->ldx), static_cast<long long>(w.k));
    }
    if (tw::overlaps(p->x, ((m - 1) * p->ldx + w.k) * 4, p->y, y_bytes)) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "y overlaps x");
    }
    a.x = p->x;
    a.ldx = p->ldx;
    if (p->x_channel_scale != nullptr && (w.format != TW_I8 || p->act_quant == TW_QUANT_NONE)) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "x_channel_scale applies to dynamic int8 only");
    }
    if (w.format == TW_I8) {
        const tw::LinearKernel& k = *tw::select_linear(t, TW_I8, p->act_quant, w.weight_max);
        switch (p->act_quant) {
            case TW_QUANT_NONE: return tw::run_gemm_blocks(a, k, t);
            case TW_QUANT_SYMMETRIC:
            case TW_QUANT_ASYMMETRIC:
                return tw::int8_dynamic_linear(a, p->act_quant, p->x_channel_scale, k, t);
            default:
                return tw::fail(TW_ERR_INVALID_ARGUMENT, "unknown activation quantization %d",
                                static_cast<int>(p->act_quant));
        }
    }
    if (p->act_quant != TW_QUANT_NONE) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "activation quantization needs TW_I8 weights");
    }
    const tw::LinearKernel& k = *tw::select_linear(t, w.format, TW_QUANT_NONE, w.weight_max);
    return w.format == TW_BF16 ? tw::bf16_linear(a, k, t) : tw::run_gemm_blocks(a, k, t);
}

}  // extern "C"
