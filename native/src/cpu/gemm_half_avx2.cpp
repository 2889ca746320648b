// 16-bit-weight linear layers, AVX2 variants (see gemm_half.cpp): bf16 weights widened with a
// shift / mask, fp16 weights with vcvtph2ps (F16C); fp32 activations, FMA, fp32 accumulation.
// Micro-kernel: kRows rows x 16 columns (half a packed panel: two ymm accumulators per row).
#include <immintrin.h>

#include "gemm_avx2_block.h"
#include "gemm_epilogue_avx2.h"

namespace tw {
namespace {

/// fp16: 6 rows x 2 ymm = 12 accumulators + 2 weights + 1 broadcast = 15 of 16 registers.
constexpr int kF16Rows = 6;
/// bf16 keeps the two raw pair vectors live as well: 4 rows x 2 = 8 accumulators.
constexpr int kBf16Rows = 4;

template <int R>
inline void fma_rows(__m256 (&acc)[R][2], __m256 w0, __m256 w1, const float* x, int64_t ldx) {
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
        const __m256 xb = _mm256_broadcast_ss(x + r * ldx);
        fma_acc(acc[r][0], xb, w0);
        fma_acc(acc[r][1], xb, w1);
    }
}

template <int R>
__attribute__((always_inline)) inline void store_tile(const GemmArgs& a, int64_t m, int64_t col, __m256 (&acc)[R][2]) {
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
    const float* x = a.x + m * a.ldx;
    const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
    __m256 acc[R][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const int64_t full = w.k / 2;
    for (int64_t g = 0; g < w.k_groups; ++g) {
        const __m256i raw0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + g * 128));
        const __m256i raw1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + g * 128 + 32));
        fma_rows<R>(acc, _mm256_castsi256_ps(_mm256_slli_epi32(raw0, 16)),
                    _mm256_castsi256_ps(_mm256_slli_epi32(raw1, 16)), x + 2 * g, a.ldx);
        if (g < full) {
            fma_rows<R>(acc, _mm256_castsi256_ps(_mm256_and_si256(raw0, high)),
                        _mm256_castsi256_ps(_mm256_and_si256(raw1, high)), x + 2 * g + 1, a.ldx);
        }
    }
    store_tile<R>(a, m, p * kPanel + half * 16, acc);
}

template <int R>
void f16_tile(const GemmArgs& a, int64_t m, int64_t p, int half) {
    const tw_packed_weights& w = *a.w;
    const uint8_t* panel = static_cast<const uint8_t*>(w.data) + p * w.panel_bytes + half * 32;
    const float* x = a.x + m * a.ldx;
    __m256 acc[R][2];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t i = 0; i < w.k; ++i) {
        const __m256 w0 = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(panel + i * 64)));
        const __m256 w1 = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(panel + i * 64 + 16)));
        fma_rows<R>(acc, w0, w1, x + i, a.ldx);
    }
    store_tile<R>(a, m, p * kPanel + half * 16, acc);
}

}  // namespace

TW_AVX2_BLOCK(bf16_block_avx2, bf16_tile, kBf16Rows)
TW_AVX2_BLOCK(f16_block_avx2, f16_tile, kF16Rows)
#undef TW_AVX2_BLOCK

}  // namespace tw
