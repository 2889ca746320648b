// fp32 linear layer, AVX2 + FMA: a block of rows × one 32-column panel of TW_F32 weights, as 6-row
// × 16-column micro-tiles. Each 16-column half of the panel is swept over all the block's rows (the
// half's 64 bytes per k, 24 KiB at k = 384, stay in L1 while rows of X stream past).
//
//   Y[r, c] = epilogue(sum_k X[r, k] · W[c, k] + b[c])
//
// Per k a micro-tile loads the half-panel's 16 weights (two ymm), broadcasts X[r][k] for each of
// its 6 rows and issues 2 FMAs per row: 12 accumulators + 2 weights + 1 broadcast = 15 of the 16
// ymm registers, 12 FMAs per 8 loads (Zen 3 and Haswell-class cores load 2-3 per cycle and retire
// 2 FMAs per cycle), and 12 independent FMA chains cover the 4-5 cycle FMA latency on two pipes.
// Wider tiles do not fit: 4 rows × 4 ymm leaves no register for the broadcast, and 3 × 4 with the
// weights as FMA memory operands needs 15 loads per 12 FMAs. Broadcast and FMAs are asm so GCC 12
// cannot copy or spill the accumulators in the unrolled loop (check objdump after any change).
// Epilogue: the shared finish_store_avx2 (+ bias, GELU, + residual, masked stores for a partial
// last panel).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "gemm_epilogue_avx2.h"

namespace tw {
namespace {

/// Rows per micro-tile (see the top of the file).
constexpr int kMicroRows = 6;
/// Columns per micro-tile: half a packed panel, two ymm.
constexpr int kMicroCols = 16;

/// The micro-kernel: R rows × 16 columns starting at column `col`, `w` the half-panel's first
/// weight, full k, then the epilogue.
template <int R>
void micro_tile(const GemmArgs& a, int64_t m0, const float* w, int64_t col) {
    const float* x[kMicroRows];
    __m256 acc[kMicroRows][2];
    tile_rows<kMicroRows, R>(a.x, a.ldx, m0, x);
    zero_tile(acc);
    const int64_t k = a.w->k;
    for (int64_t kk = 0; kk < k; ++kk, w += kPanel) {
        const __m256 w0 = _mm256_loadu_ps(w);
        const __m256 w1 = _mm256_loadu_ps(w + 8);
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) fma_row(acc[r][0], acc[r][1], x[r] + kk, w0, w1);
    }
    const int64_t n = a.w->n;
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
        finish_store_avx2(a, m0 + r, col, n, acc[r][0]);
        finish_store_avx2(a, m0 + r, col + 8, n, acc[r][1]);
    }
}

}  // namespace

void f32_block_avx2(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    const tw_packed_weights& pw = *a.w;
    for (int64_t p = p0; p < p1; ++p) {
        const float* w = reinterpret_cast<const float*>(static_cast<const uint8_t*>(pw.data) +
                                                        p * pw.panel_bytes);
        for (int half = 0; half < 2; ++half) {
            const int64_t col = p * kPanel + half * kMicroCols;
            if (col >= pw.n) break;
            for (int64_t m = m0; m < m1; m += kMicroRows) {
                with_rows(std::min<int64_t>(kMicroRows, m1 - m), [&](auto r) {
                    micro_tile<decltype(r)::value>(a, m, w + half * kMicroCols, col);
                });
            }
        }
    }
}

}  // namespace tw
