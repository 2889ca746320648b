// fp32 linear layer: argument checks, weight packing, the parallel loop nest, ISA dispatch (AVX-512
// and AVX2 tiles in linear_f32_avx512.cpp / linear_f32_avx2.cpp), and the portable tile.
//
//   Y = act(X·Wᵀ + b) + R, W packed as ceil(n/32) panels of [k][32].
//
// Loop nest: tasks are (block of kBlockRows rows) × (group of kPanelsPerTask panels); inside a task
// each panel is swept over the block's 12-row register tiles, so a panel (k·128 bytes: 48 KB at
// k = 384) stays in L1/L2 while the rows of X stream past it. Rows per block are chosen so there
// are several tasks per worker (load balance) but blocks stay long enough to reuse each panel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "linear_f32_kernels.h"
#include "runtime.h"
#include "tilewise/tilewise_linear_f32.h"

namespace tw {
namespace {

/// Rows per task: 8 register tiles. Long enough to amortise a panel's trip to L1, short enough
/// that a 4096-row batch gives dozens of tasks for the pool.
constexpr int64_t kBlockRows = 8 * kLinearF32Rows;

/// Panels per task: 4 (128 columns), so narrow layers (n = 384) still split across workers.
constexpr int64_t kPanelsPerTask = 4;

float gelu(float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f)); }

void tile_portable(const tw_f32_linear_params& p, int64_t m0, int rows, int64_t panel) {
    const float* w = p.packed + panel * p.k * TW_F32_PANEL;
    const int64_t n0 = panel * TW_F32_PANEL;
    const int cols = static_cast<int>(std::min<int64_t>(TW_F32_PANEL, p.n - n0));
    for (int r = 0; r < rows; ++r) {
        const float* x = p.x + (m0 + r) * p.ldx;
        float acc[TW_F32_PANEL] = {};
        for (int64_t kk = 0; kk < p.k; ++kk) {
            const float a = x[kk];
            const float* wk = w + kk * TW_F32_PANEL;
            for (int j = 0; j < TW_F32_PANEL; ++j) acc[j] += a * wk[j];
        }
        float* y = p.y + (m0 + r) * p.ldy + n0;
        const float* res = p.residual ? p.residual + (m0 + r) * p.ld_residual + n0 : nullptr;
        for (int j = 0; j < cols; ++j) {
            float v = acc[j] + (p.bias ? p.bias[n0 + j] : 0.0f);
            if (p.gelu) v = gelu(v);
            if (res) v += res[j];
            y[j] = v;
        }
    }
}

struct Job {
    const tw_f32_linear_params* p;
    LinearF32Tile tile;
    LinearF32Rows rows;  // if set, used instead of `tile`
    int64_t row_blocks;
    int64_t panel_groups;
    int64_t panels;
};

void run_task(void* ctx, int64_t task, int /*worker*/) {
    const Job& job = *static_cast<const Job*>(ctx);
    const tw_f32_linear_params& p = *job.p;
    const int64_t rb = task % job.row_blocks;
    const int64_t pg = task / job.row_blocks;
    const int64_t m_begin = rb * kBlockRows;
    const int64_t m_end = std::min(p.m, m_begin + kBlockRows);
    const int64_t p_end = std::min(job.panels, (pg + 1) * kPanelsPerTask);
    for (int64_t panel = pg * kPanelsPerTask; panel < p_end; ++panel) {
        if (job.rows) {
            job.rows(p, m_begin, m_end, panel);
            continue;
        }
        for (int64_t m0 = m_begin; m0 < m_end; m0 += kLinearF32Rows) {
            const int rows = static_cast<int>(std::min<int64_t>(kLinearF32Rows, m_end - m0));
            job.tile(p, m0, rows, panel);
        }
    }
}

}  // namespace
}  // namespace tw

extern "C" {

TW_API int64_t tw_f32_packed_bytes(int64_t n, int64_t k) {
    if (n <= 0 || k <= 0 || k > (int64_t(1) << 40) || n > (int64_t(1) << 40)) return -1;
    const int64_t panels = (n + TW_F32_PANEL - 1) / TW_F32_PANEL;
    const __int128 bytes = static_cast<__int128>(panels) * k * TW_F32_PANEL * sizeof(float);
    if (bytes > INT64_MAX) return -1;
    return static_cast<int64_t>(bytes);
}

TW_API tw_status tw_f32_pack(int64_t n, int64_t k, const float* w, int64_t ldw, float* packed) {
    if (tw_f32_packed_bytes(n, k) < 0) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "f32 pack: bad shape n=%lld k=%lld",
                        static_cast<long long>(n), static_cast<long long>(k));
    }
    if (w == nullptr || packed == nullptr) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "f32 pack: null pointer");
    }
    if (ldw < k) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "f32 pack: ldw %lld < k %lld",
                        static_cast<long long>(ldw), static_cast<long long>(k));
    }
    const int64_t panels = (n + TW_F32_PANEL - 1) / TW_F32_PANEL;
    for (int64_t panel = 0; panel < panels; ++panel) {
        float* out = packed + panel * k * TW_F32_PANEL;
        for (int64_t kk = 0; kk < k; ++kk) {
            for (int j = 0; j < TW_F32_PANEL; ++j) {
                const int64_t row = panel * TW_F32_PANEL + j;
                out[kk * TW_F32_PANEL + j] = row < n ? w[row * ldw + kk] : 0.0f;
            }
        }
    }
    return tw::ok();
}

TW_API tw_status tw_f32_linear(const tw_f32_linear_params* p) {
    if (p == nullptr) return tw::fail(TW_ERR_INVALID_ARGUMENT, "f32 linear: params is null");
    if (p->m <= 0 || tw_f32_packed_bytes(p->n, p->k) < 0) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "f32 linear: bad shape m=%lld n=%lld k=%lld",
                        static_cast<long long>(p->m), static_cast<long long>(p->n),
                        static_cast<long long>(p->k));
    }
    if (p->x == nullptr || p->packed == nullptr || p->y == nullptr) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "f32 linear: x, packed weights and y are required");
    }
    if (p->ldx < p->k || p->ldy < p->n || (p->residual && p->ld_residual < p->n)) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "f32 linear: a row stride is shorter than its row");
    }
    const char* x_begin = reinterpret_cast<const char*>(p->x);
    const char* x_end = reinterpret_cast<const char*>(p->x + (p->m - 1) * p->ldx + p->k);
    const char* y_begin = reinterpret_cast<const char*>(p->y);
    const char* y_end = reinterpret_cast<const char*>(p->y + (p->m - 1) * p->ldy + p->n);
    if (x_begin < y_end && y_begin < x_end) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "f32 linear: y overlaps x");
    }
    tw::Job job;
    job.p = p;
    job.rows = nullptr;
#ifdef TILEWISE_X86
    switch (tw::active_isa()) {
        case TW_ISA_AVX512: job.tile = tw::linear_f32_tile_avx512; break;
        case TW_ISA_AVX2: job.rows = tw::linear_f32_rows_avx2; break;
        default: job.tile = tw::tile_portable; break;
    }
#else
    job.tile = tw::tile_portable;
#endif
    job.row_blocks = (p->m + tw::kBlockRows - 1) / tw::kBlockRows;
    job.panels = (p->n + TW_F32_PANEL - 1) / TW_F32_PANEL;
    job.panel_groups = (job.panels + tw::kPanelsPerTask - 1) / tw::kPanelsPerTask;
    tw::parallel_for(job.row_blocks * job.panel_groups, tw::run_task, &job);
    return tw::ok();
}

}  // extern "C"
