// fp32 linear layer, AVX2 + FMA: a block of rows × one 32-column panel of packed W, as 6-row ×
// 16-column micro-tiles. Each 16-column half of the panel is swept over all the block's rows (the
// half's 64 bytes per k, 24 KiB at k = 384, stay in L1 while rows of X stream past).
//
//   Y[r, c] = act(sum_k X[r, k] · W[c, k] + b[c]) + R[r, c]
//
// Per k a micro-tile loads the half-panel's 16 weights (two ymm), broadcasts X[r][k] for each of
// its 6 rows and issues 2 FMAs per row: 12 accumulators + 2 weights + 1 broadcast = 15 of the 16
// ymm registers, 12 FMAs per 8 loads (Zen 3 and Haswell-class cores load 2-3 per cycle and retire
// 2 FMAs per cycle), and 12 independent FMA chains cover the 4-5 cycle FMA latency on two pipes.
// Wider tiles do not fit: 4 rows × 4 ymm leaves no register for the broadcast, and 3 × 4 with the
// weights as FMA memory operands needs 15 loads per 12 FMAs. Broadcast and FMAs are asm so GCC 12
// cannot copy or spill the accumulators in the unrolled loop (check objdump after any change).
// Epilogue as in the AVX-512 tile: + bias, GELU (erf, Abramowitz & Stegun 7.1.26, |error| <
// 1.5e-7), + residual, masked stores for a partial last panel.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "gemm_epilogue_avx2.h"
#include "linear_f32_kernels.h"

namespace tw {
namespace {

/// Rows per micro-tile (see the top of the file).
constexpr int kMicroRows = 6;
/// Columns per micro-tile: half a packed panel, two ymm.
constexpr int kMicroCols = 16;

/// Stores 8 columns of one row through the epilogue; `valid` columns (1..8) are written.
inline void store8(const tw_f32_linear_params& p, int64_t row, int64_t col, int valid, __m256 v) {
    float* y = p.y + row * p.ldy + col;
    const float* res = p.residual ? p.residual + row * p.ld_residual + col : nullptr;
    if (valid >= 8) {
        if (p.bias) v = _mm256_add_ps(v, _mm256_loadu_ps(p.bias + col));
        if (p.gelu) v = gelu_avx2(v);
        if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res));
        _mm256_storeu_ps(y, v);
        return;
    }
    const __m256i mask = column_mask_avx2(0, valid);
    if (p.bias) v = _mm256_add_ps(v, _mm256_maskload_ps(p.bias + col, mask));
    if (p.gelu) v = gelu_avx2(v);
    if (res) v = _mm256_add_ps(v, _mm256_maskload_ps(res, mask));
    _mm256_maskstore_ps(y, mask, v);
}

/// The micro-kernel: R rows × 16 columns starting at column `col` (`cols` of them exist, 1..16),
/// `w` the half-panel's first weight, full k, then the epilogue.
template <int R>
void micro_tile(const tw_f32_linear_params& p, int64_t m0, const float* w, int64_t col, int cols) {
    const float* x[kMicroRows];
    __m256 acc[kMicroRows][2];
    tile_rows<kMicroRows, R>(p.x, p.ldx, m0, x);
    zero_tile(acc);
    for (int64_t kk = 0; kk < p.k; ++kk, w += TW_F32_PANEL) {
        const __m256 w0 = _mm256_loadu_ps(w);
        const __m256 w1 = _mm256_loadu_ps(w + 8);
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) fma_row(acc[r][0], acc[r][1], x[r] + kk, w0, w1);
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
        store8(p, m0 + r, col, std::min(cols, 8), acc[r][0]);
        if (cols > 8) store8(p, m0 + r, col + 8, cols - 8, acc[r][1]);
    }
}

}  // namespace

void linear_f32_rows_avx2(const tw_f32_linear_params& p, int64_t m_begin, int64_t m_end,
                          int64_t panel) {
    const float* w = p.packed + panel * p.k * TW_F32_PANEL;
    const int64_t n0 = panel * TW_F32_PANEL;
    for (int half = 0; half < 2; ++half) {
        const int64_t col = n0 + half * kMicroCols;
        if (col >= p.n) break;
        const int cols = static_cast<int>(std::min<int64_t>(kMicroCols, p.n - col));
        for (int64_t m = m_begin; m < m_end; m += kMicroRows) {
            with_rows(std::min<int64_t>(kMicroRows, m_end - m), [&](auto r) {
                micro_tile<decltype(r)::value>(p, m, w + half * kMicroCols, col, cols);
            });
        }
    }
}

}  // namespace tw
