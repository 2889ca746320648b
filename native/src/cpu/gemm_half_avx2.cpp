// 16-bit-weight linear layers, AVX2 variants (see gemm_half.cpp): bf16 weights widened with a
// shift / mask, fp16 weights with vcvtph2ps (F16C); fp32 activations, FMA, fp32 accumulation.
//
//   Y[m, c] = epilogue(sum_k X[m, k] · float(W[c, k]))
//
// Micro-kernel: R <= kRows rows × 16 columns (half a packed panel, two ymm per row). Per k it widens
// the half-panel's 16 weights once (two ymm), then broadcasts X[r][k] for each row and issues two
// FMAs per row: at R = 6 that is 12 FMAs per 2 widenings (bf16: 2 shifts or 2 ands; fp16: 2
// vcvtph2ps), so the integer / conversion uops stay off the critical path of the two FMA pipes.
// Registers: 12 accumulators + 2 weights + 1 broadcast (+ the bf16 high-half mask) = 15 (16) of 16.
// The raw bf16 pair vectors get no registers of their own: the even k is loaded into the weight
// register and shifted in place, the odd k is a vpand with a memory source. Broadcast and FMAs are
// asm (GCC 12 otherwise copies or spills the accumulators in the unrolled loop); check the inner
// loop with objdump after changing anything here.
#include <immintrin.h>

#include "gemm_epilogue_avx2.h"

namespace tw {
namespace {

/// Rows per micro-tile: 6 rows × 2 ymm = 12 accumulators, the most that leaves registers for the
/// two widened weight vectors, the broadcast and the bf16 mask. 12 independent FMA chains also
/// cover the FMA latency (4 cycles × 2 pipes = 8 chains needed).
constexpr int kRows = 6;

/// Widens the even k of 8 bf16 pairs: the low 16 bits shifted into the high half. (A VEX shift
/// cannot take a memory source; the EVEX form that can is AVX-512.)
inline __m256 bf16_even(const uint8_t* p) {
    __m256 w;
    asm("vmovdqu %1, %0\n\t"
        "vpslld $16, %0, %0"
        : "=x"(w)
        : "m"(*reinterpret_cast<const __m256i*>(p)));
    return w;
}

/// Widens the odd k of 8 bf16 pairs: the high 16 bits kept in place (vpand with a memory source).
inline __m256 bf16_odd(const uint8_t* p, __m256i high) {
    __m256 w;
    asm("vpand %1, %2, %0" : "=x"(w) : "m"(*reinterpret_cast<const __m256i*>(p)), "x"(high));
    return w;
}

/// Widens 8 fp16 weights.
inline __m256 f16_widen(const uint8_t* p) {
    __m256 w;
    asm("vcvtph2ps %1, %0" : "=x"(w) : "m"(*reinterpret_cast<const __m128i*>(p)));
    return w;
}

/// acc[r] += X[r][kk] · (w0, w1) for the tile's R rows.
template <int R>
__attribute__((always_inline)) inline void fma_rows(__m256 (&acc)[kRows][2], __m256 w0, __m256 w1,
                                                    const float* const (&x)[kRows], int64_t kk) {
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) fma_row(acc[r][0], acc[r][1], x[r] + kk, w0, w1);
}

/// R rows × 16 columns starting at column `col`: the k loop (`Widen` supplies the two weight
/// vectors of step kk), then the epilogue.
template <int R, typename Widen>
__attribute__((always_inline)) inline void run_tile(const GemmArgs& a, int64_t m, int64_t col,
                                                    int64_t steps, Widen widen) {
    const float* x[kRows];
    __m256 acc[kRows][2];
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r) {
        x[r] = a.x + (m + (r < R ? r : 0)) * a.ldx;
        acc[r][0] = _mm256_setzero_ps();
        acc[r][1] = _mm256_setzero_ps();
    }
    widen(acc, x, steps);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
        finish_store_avx2(a, m + r, col, a.w->n, acc[r][0]);
        finish_store_avx2(a, m + r, col + 8, a.w->n, acc[r][1]);
    }
}

template <int R>
void bf16_tile(const GemmArgs& a, int64_t m, int64_t p, int half) {
    const tw_packed_weights& w = *a.w;
    // Within a pair group the 32 columns take 128 bytes; this half's 16 columns are 64 of them.
    const uint8_t* panel = static_cast<const uint8_t*>(w.data) + p * w.panel_bytes + half * 64;
    run_tile<R>(a, m, p * kPanel + half * 16, w.k, [panel](auto& acc, const auto& x, int64_t k) {
        const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
        const int64_t full = k / 2;
        const uint8_t* g = panel;
        for (int64_t kk = 0; kk < 2 * full; kk += 2, g += 128) {
            fma_rows<R>(acc, bf16_even(g), bf16_even(g + 32), x, kk);
            fma_rows<R>(acc, bf16_odd(g, high), bf16_odd(g + 32, high), x, kk + 1);
        }
        // Odd k: the last pair's second half is padding (zero weights, and X has no column k).
        if (k & 1) fma_rows<R>(acc, bf16_even(g), bf16_even(g + 32), x, 2 * full);
    });
}

template <int R>
void f16_tile(const GemmArgs& a, int64_t m, int64_t p, int half) {
    const tw_packed_weights& w = *a.w;
    const uint8_t* panel = static_cast<const uint8_t*>(w.data) + p * w.panel_bytes + half * 32;
    run_tile<R>(a, m, p * kPanel + half * 16, w.k, [panel](auto& acc, const auto& x, int64_t k) {
        const uint8_t* row = panel;
        for (int64_t kk = 0; kk < k; ++kk, row += 64) {
            fma_rows<R>(acc, f16_widen(row), f16_widen(row + 16), x, kk);
        }
    });
}

/// Loop nest over one task: panels, then the two 16-column halves (a half-panel, k × 32 bytes
/// of fp16 or bf16 = 12 KiB at k = 384, stays in L1 while the block's rows stream past it), then
/// the 6-row micro-tiles, leftover rows last.
#define TW_HALF_TILES(TILE)                                                                 \
    [](const GemmArgs& a, int64_t m, int rows, int64_t p, int half) {                       \
        switch (rows) {                                                                     \
            case 6: TILE<6>(a, m, p, half); break;                                          \
            case 5: TILE<5>(a, m, p, half); break;                                          \
            case 4: TILE<4>(a, m, p, half); break;                                          \
            case 3: TILE<3>(a, m, p, half); break;                                          \
            case 2: TILE<2>(a, m, p, half); break;                                          \
            case 1: TILE<1>(a, m, p, half); break;                                          \
            default: break;                                                                 \
        }                                                                                   \
    }

template <typename Tiles>
inline void run_block(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1,
                      Tiles tiles) {
    for (int64_t p = p0; p < p1; ++p) {
        for (int half = 0; half < 2; ++half) {
            if (p * kPanel + half * 16 >= a.w->n) break;
            for (int64_t m = m0; m < m1; m += kRows) {
                tiles(a, m, static_cast<int>(m1 - m < kRows ? m1 - m : kRows), p, half);
            }
        }
    }
}

}  // namespace

void bf16_block_avx2(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    run_block(a, m0, m1, p0, p1, TW_HALF_TILES(bf16_tile));
}

void f16_block_avx2(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    run_block(a, m0, m1, p0, p1, TW_HALF_TILES(f16_tile));
}

#undef TW_HALF_TILES

}  // namespace tw
