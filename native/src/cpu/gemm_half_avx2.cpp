// 16-bit-weight linear layers, AVX2 variants (see gemm_half.cpp): bf16 weights widened with a
// shift / mask, fp16 weights with vcvtph2ps (F16C); fp32 activations, FMA, fp32 accumulation.
//
//   Y[m, c] = epilogue(sum_k X[m, k] · float(W[c, k]))
//
// Micro-kernel: R <= kRows rows × 16 columns (half a packed panel, two ymm per row). Per k it
// widens the half-panel's 16 weights once (two ymm), then broadcasts X[r][k] for each row and
// issues two FMAs per row: at R = 6 that is 12 FMAs per 2 widenings (bf16: 2 shifts or 2 ands;
// fp16: 2 vcvtph2ps), so the integer / conversion uops stay off the critical path of the two FMA
// pipes. Registers: 12 accumulators + 2 weights + 1 broadcast (+ the bf16 high-half mask) = 15 (16)
// of 16. The raw bf16 pair vectors get no registers of their own: the even k is loaded into the
// weight register and shifted in place, the odd k is a vpand with a memory source. Broadcast and
// FMAs are asm (GCC 12 otherwise copies or spills the accumulators in the unrolled loop); check the
// inner loop with objdump after changing anything here.
//
// bf16 packs X: each task first copies its rows into 6-row tiles laid out [k / 8][6 rows][8 k]
// (pack_rows), so a tile's broadcasts read one sequential stream at constant offsets from one
// pointer (instead of 6 strided row streams, each started cold from L3 on the first pass). The copy
// is one ymm load + store per 8 k per row, ~1.5% of a 64-row x 4-panel task at k = 384, and the
// packed block is reused by all 8 half-panel passes. (Measured on the Zen 3 VM, 2 threads, medians
// of interleaved runs: +4..20% at K = 384. fp16 and fp32 still read X rows in place.)
#include <immintrin.h>

#include <algorithm>

#include "gemm_epilogue_avx2.h"
#include "runtime.h"

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
    tile_rows<kRows, R>(a.x, a.ldx, m, x);
    zero_tile(acc);
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

/// Packed X: per 6-row tile, [k / 8][6 rows][8 k] floats (one stream, constant offsets).
constexpr int kPackK = 8;

float* pack_rows(const GemmArgs& a, int64_t m0, int64_t m1) {
    const int64_t tiles = (m1 - m0 + kRows - 1) / kRows;
    const int64_t groups = (a.w->k + kPackK - 1) / kPackK;
    auto* packed = static_cast<float*>(
        thread_scratch(static_cast<size_t>(tiles * groups * kRows * kPackK) * sizeof(float),
                       ScratchSlot::kPackedRows));
    if (packed == nullptr) return nullptr;
    const int64_t k = a.w->k, full = k / kPackK;
    for (int64_t t = 0; t < tiles; ++t) {
        float* out = packed + t * groups * kRows * kPackK;
        const int64_t rows = std::min<int64_t>(kRows, m1 - m0 - t * kRows);
        for (int64_t r = 0; r < rows; ++r) {
            const float* x = a.x + (m0 + t * kRows + r) * a.ldx;
            float* o = out + r * kPackK;
            for (int64_t g = 0; g < full; ++g) {
                _mm256_store_ps(o + g * kRows * kPackK, _mm256_loadu_ps(x + g * kPackK));
            }
            for (int64_t kk = full * kPackK; kk < k; ++kk)
                o[full * kRows * kPackK + kk % kPackK] = x[kk];
        }
    }
    return packed;
}

template <int R>
__attribute__((always_inline)) inline void fma_rows_p(__m256 (&acc)[kRows][2], __m256 w0, __m256 w1,
                                                      const float* xp) {
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) fma_row(acc[r][0], acc[r][1], xp + r * kPackK, w0, w1);
}

template <int R>
void bf16_tile_packed(const GemmArgs& a, const float* xp, int64_t m, int64_t p, int half) {
    const tw_packed_weights& w = *a.w;
    const uint8_t* g = static_cast<const uint8_t*>(w.data) + p * w.panel_bytes + half * 64;
    const int64_t col = p * kPanel + half * 16;
    __m256 acc[kRows][2];
    zero_tile(acc);
    const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
    const int64_t k = w.k, full = k / kPackK;
    for (int64_t gi = 0; gi < full; ++gi, xp += kRows * kPackK, g += 4 * 128) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
            fma_rows_p<R>(acc, bf16_even(g + j * 128), bf16_even(g + j * 128 + 32), xp + 2 * j);
            fma_rows_p<R>(acc, bf16_odd(g + j * 128, high), bf16_odd(g + j * 128 + 32, high),
                          xp + 2 * j + 1);
        }
    }
    for (int64_t kk = full * kPackK; kk < k; kk += 2, g += 128) {
        const int64_t o = kk - full * kPackK;
        fma_rows_p<R>(acc, bf16_even(g), bf16_even(g + 32), xp + o);
        if (kk + 1 < k) fma_rows_p<R>(acc, bf16_odd(g, high), bf16_odd(g + 32, high), xp + o + 1);
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
        finish_store_avx2(a, m + r, col, a.w->n, acc[r][0]);
        finish_store_avx2(a, m + r, col + 8, a.w->n, acc[r][1]);
    }
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
/// the 6-row micro-tiles, leftover rows last; tile(m, rows, p, half) runs one.
template <typename Tile>
inline void run_block(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1,
                      Tile tile) {
    for (int64_t p = p0; p < p1; ++p) {
        for (int half = 0; half < 2; ++half) {
            if (p * kPanel + half * 16 >= a.w->n) break;
            for (int64_t m = m0; m < m1; m += kRows) {
                tile(m, m1 - m < kRows ? m1 - m : kRows, p, half);
            }
        }
    }
}

}  // namespace

void bf16_block_avx2(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    const float* xp = pack_rows(a, m0, m1);
    if (xp == nullptr) {  // no memory for the packed rows: the strided tile needs none
        run_block(a, m0, m1, p0, p1, [&](int64_t m, int64_t rows, int64_t p, int half) {
            with_rows(rows, [&](auto r) { bf16_tile<decltype(r)::value>(a, m, p, half); });
        });
        return;
    }
    const int64_t tile_floats = (a.w->k + kPackK - 1) / kPackK * kRows * kPackK;
    run_block(a, m0, m1, p0, p1, [&](int64_t m, int64_t rows, int64_t p, int half) {
        const float* t = xp + (m - m0) / kRows * tile_floats;
        with_rows(rows, [&](auto r) { bf16_tile_packed<decltype(r)::value>(a, t, m, p, half); });
    });
}

void f16_block_avx2(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    run_block(a, m0, m1, p0, p1, [&](int64_t m, int64_t rows, int64_t p, int half) {
        with_rows(rows, [&](auto r) { f16_tile<decltype(r)::value>(a, m, p, half); });
    });
}

}  // namespace tw
