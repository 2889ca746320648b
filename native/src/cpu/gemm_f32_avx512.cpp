// fp32 linear layer, AVX-512 register tile: R rows (R <= 12) × one 32-column panel of TW_F32
// weights.
//
//   Y[r, c] = epilogue(sum_k X[r, k] · W[c, k] + b[c])
//
// Per k: two 16-float loads of the panel row, R broadcasts of X[r][k], 2R FMAs into 2R zmm
// accumulators (24 at R = 12, plus 2 for W and 1 broadcast: 27 of 32 registers, no spills). The
// FMA:load ratio 24:14 keeps the two FMA pipes busy. Epilogue: the shared finish_store_row32_avx512
// (+ bias, GELU, + residual, line-aligned masked stores; see gemm_epilogue_avx512.h).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "gemm_epilogue_avx512.h"
#include "tile_rows.h"

namespace tw {
namespace {

/// Rows per register tile (12 rows × 2 vectors = 24 accumulators of 32 zmm).
constexpr int kTileRows = 12;

/// The micro-kernel: R rows from m0, full k, then the epilogue.
template <int R>
__attribute__((always_inline)) inline void tile_rows(const GemmArgs& a, int64_t m0, int64_t p) {
    const tw_packed_weights& pw = *a.w;
    const float* w =
        reinterpret_cast<const float*>(static_cast<const uint8_t*>(pw.data) + p * pw.panel_bytes);
    const int64_t k = pw.k;
    const float* x[R];
    __m512 lo[R];
    __m512 hi[R];
    // Every loop over the rows is unrolled: a rolled one indexes lo / hi, which GCC then keeps in
    // memory (two rep stos to zero them and a store and reload of all 24 accumulators per tile:
    // 4% of the samples at 1536 x 384). Unrolled, 1152 x 384 / 1536 x 384 ran 1-3% faster
    // (interleaved gemm_bench runs).
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
        x[r] = a.x + (m0 + r) * a.ldx;
        lo[r] = _mm512_setzero_ps();
        hi[r] = _mm512_setzero_ps();
        prefetch_output_avx512(a, m0 + r, p * kPanel);
    }
    for (int64_t kk = 0; kk < k; ++kk) {
        const __m512 b0 = _mm512_loadu_ps(w + kk * kPanel);
        const __m512 b1 = _mm512_loadu_ps(w + kk * kPanel + 16);
#pragma GCC unroll 12
        for (int r = 0; r < R; ++r) {
            const __m512 v = _mm512_set1_ps(x[r][kk]);
            lo[r] = _mm512_fmadd_ps(v, b0, lo[r]);
            hi[r] = _mm512_fmadd_ps(v, b1, hi[r]);
        }
    }
    const int64_t n0 = p * kPanel;
    const __mmask16 mask_lo = column_mask_avx512(n0, pw.n);
    const __mmask16 mask_hi = column_mask_avx512(n0 + 16, pw.n);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r)
        finish_store_row32_avx512(a, m0 + r, n0, mask_lo, mask_hi, lo[r], hi[r]);
}

}  // namespace

void f32_block_avx512(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
        for (int64_t m = m0; m < m1; m += kTileRows) {
            with_rows_upto<kTileRows>(std::min<int64_t>(kTileRows, m1 - m),
                                      [&](auto r) { tile_rows<decltype(r)::value>(a, m, p); });
        }
    }
}

}  // namespace tw
