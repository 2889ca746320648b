// 16-bit-weight linear layers, AVX-512 variants (see gemm_half.cpp for the math and dispatch):
//  - bf16 dot products (AVX512-BF16 vdpbf16ps) on activations rounded to bf16 beforehand;
//  - bf16 weights widened to fp32 in registers (a shift and a mask give k and k + 1), FMA;
//  - fp16 weights widened with vcvtph2ps (F16C), FMA.
// Micro-kernel: kRows rows x one 32-column panel (two zmm accumulators per row).
#include <immintrin.h>

#include <cstring>

#include "gemm_epilogue_avx512.h"

namespace tw {
namespace {

/// 8 rows x 2 vectors = 16 accumulator chains (FMA / vdpbf16ps latency x throughput); 21 of 32 zmm.
constexpr int kRows = 8;

/// Zeroes the accumulators and prefetches the tile's output lines into L2 (see
/// prefetch_output_avx512).
template <int R>
__attribute__((always_inline)) inline void start_tile(const GemmArgs& a, int64_t m, int64_t p,
                                                      __m512 (&acc)[R][2]) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        prefetch_output_avx512(a, m + r, p * kPanel);
    }
}

template <int R>
__attribute__((always_inline)) inline void store_tile(const GemmArgs& a, int64_t m, int64_t p,
                                                      __m512 (&acc)[R][2]) {
    const int64_t col = p * kPanel;
    const __mmask16 mask_lo = column_mask_avx512(col, a.w->n);
    const __mmask16 mask_hi = column_mask_avx512(col + 16, a.w->n);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
        finish_store_row32_avx512(a, m + r, col, mask_lo, mask_hi, acc[r][0], acc[r][1]);
}

template <int R>
void bf16_dot_tile(const GemmArgs& a, int64_t m, int64_t p) {
    const tw_packed_weights& w = *a.w;
    const uint8_t* panel = static_cast<const uint8_t*>(w.data) + p * w.panel_bytes;
    const uint16_t* x = a.xb + m * a.ldb;
    __m512 acc[R][2];
    start_tile<R>(a, m, p, acc);
    for (int64_t g = 0; g < w.k_groups; ++g) {
        const __m512i w0 = _mm512_load_si512(panel + g * 128);
        const __m512i w1 = _mm512_load_si512(panel + g * 128 + 64);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            int32_t pair;
            std::memcpy(&pair, x + r * a.ldb + 2 * g, sizeof(pair));
            const __m512i xb = _mm512_set1_epi32(pair);
            dpbf16_acc(acc[r][0], xb, w0);
            dpbf16_acc(acc[r][1], xb, w1);
        }
    }
    store_tile<R>(a, m, p, acc);
}

template <int R>
inline void fma_rows(__m512 (&acc)[R][2], __m512 w0, __m512 w1, const float* x, int64_t ldx) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        const __m512 xb = _mm512_set1_ps(x[r * ldx]);
        fma_acc(acc[r][0], xb, w0);
        fma_acc(acc[r][1], xb, w1);
    }
}

template <int R>
void bf16_widen_tile(const GemmArgs& a, int64_t m, int64_t p) {
    const tw_packed_weights& w = *a.w;
    const uint8_t* panel = static_cast<const uint8_t*>(w.data) + p * w.panel_bytes;
    const float* x = a.x + m * a.ldx;
    const __m512i high = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
    __m512 acc[R][2];
    start_tile<R>(a, m, p, acc);
    const int64_t full = w.k / 2;
    for (int64_t g = 0; g < w.k_groups; ++g) {
        const __m512i raw0 = _mm512_load_si512(panel + g * 128);
        const __m512i raw1 = _mm512_load_si512(panel + g * 128 + 64);
        // Each lane holds (k even | k odd << 16); bf16 -> fp32 is "append 16 zero bits".
        fma_rows<R>(acc, _mm512_castsi512_ps(_mm512_slli_epi32(raw0, 16)),
                    _mm512_castsi512_ps(_mm512_slli_epi32(raw1, 16)), x + 2 * g, a.ldx);
        if (g < full) {
            fma_rows<R>(acc, _mm512_castsi512_ps(_mm512_and_si512(raw0, high)),
                        _mm512_castsi512_ps(_mm512_and_si512(raw1, high)), x + 2 * g + 1, a.ldx);
        }
    }
    store_tile<R>(a, m, p, acc);
}

template <int R>
void f16_tile(const GemmArgs& a, int64_t m, int64_t p) {
    const tw_packed_weights& w = *a.w;
    const uint8_t* panel = static_cast<const uint8_t*>(w.data) + p * w.panel_bytes;
    const float* x = a.x + m * a.ldx;
    __m512 acc[R][2];
    start_tile<R>(a, m, p, acc);
    for (int64_t i = 0; i < w.k; ++i) {
        const __m512 w0 =
            _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(panel + i * 64)));
        const __m512 w1 = _mm512_cvtph_ps(
            _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + i * 64 + 32)));
        fma_rows<R>(acc, w0, w1, x + i, a.ldx);
    }
    store_tile<R>(a, m, p, acc);
}

}  // namespace

#define TW_AVX512_BLOCK(NAME, TILE)                                                \
    void NAME(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) { \
        for (int64_t p = p0; p < p1; ++p) {                                        \
            int64_t m = m0;                                                        \
            for (; m + kRows <= m1; m += kRows) TILE<kRows>(a, m, p);              \
            switch (m1 - m) {                                                      \
                case 1: TILE<1>(a, m, p); break;                                   \
                case 2: TILE<2>(a, m, p); break;                                   \
                case 3: TILE<3>(a, m, p); break;                                   \
                case 4: TILE<4>(a, m, p); break;                                   \
                case 5: TILE<5>(a, m, p); break;                                   \
                case 6: TILE<6>(a, m, p); break;                                   \
                case 7: TILE<7>(a, m, p); break;                                   \
                default: break;                                                    \
            }                                                                      \
        }                                                                          \
    }

TW_AVX512_BLOCK(bf16_dot_block_avx512, bf16_dot_tile)
TW_AVX512_BLOCK(bf16_block_avx512, bf16_widen_tile)
TW_AVX512_BLOCK(f16_block_avx512, f16_tile)
#undef TW_AVX512_BLOCK

// Rounds rows to bf16 (nearest even, vcvtneps2bf16), zero-padding each row to ldo elements.
void to_bf16_rows_avx512(const float* x, int64_t ldx, int64_t m0, int64_t m1, int64_t k,
                         uint16_t* out, int64_t ldo) {
    for (int64_t m = m0; m < m1; ++m) {
        const float* row = x + m * ldx;
        uint16_t* dst = out + m * ldo;
        for (int64_t i = 0; i < ldo; i += 16) {
            const __mmask16 mask = column_mask_avx512(i, k);
            const __mmask16 store = column_mask_avx512(i, ldo);
            const __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, row + i));
            _mm256_mask_storeu_epi16(dst + i, store, (__m256i)h);
        }
    }
}

}  // namespace tw
