// Fused LayerNorm rows, AVX2 (math in layernorm.cpp): the same three passes as the AVX-512 variant,
// 8 lanes at a time with masked loads/stores for the row's tail.
#include <immintrin.h>

#include <cmath>

#include "gemm_epilogue_avx2.h"
#include "layernorm_kernels.h"

namespace tw {
namespace {

inline float sum_lanes(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

}  // namespace

void layernorm_rows_avx2(const tw_layernorm_params& p, int64_t m0, int64_t m1) {
    const int64_t k = p.k;
    const int64_t full = k / 8 * 8;  // whole vectors: plain loads and stores
    // The tail alone is masked: vmaskmovps stores are microcoded on AMD Zen (measured here: the
    // all-masked loops made LayerNorm ~3% of an INT8 MiniLM forward).
    const __m256i tail = column_mask_avx2(full, k);
    for (int64_t m = m0; m < m1; ++m) {
        const float* x = p.x + m * p.ldx;
        const float* res = p.residual ? p.residual + m * p.ld_residual : nullptr;
        float* y = p.y + m * p.ldy;
        __m256 sum = _mm256_setzero_ps();
        for (int64_t i = 0; i < full; i += 8) {
            __m256 h = _mm256_loadu_ps(x + i);
            if (res) h = _mm256_add_ps(h, _mm256_loadu_ps(res + i));
            _mm256_storeu_ps(y + i, h);
            sum = _mm256_add_ps(sum, h);
        }
        if (full < k) {
            __m256 h = _mm256_maskload_ps(x + full, tail);
            if (res) h = _mm256_add_ps(h, _mm256_maskload_ps(res + full, tail));
            _mm256_maskstore_ps(y + full, tail, h);
            sum = _mm256_add_ps(sum, h);
        }
        const float mean = sum_lanes(sum) / static_cast<float>(k);
        const __m256 vmean = _mm256_set1_ps(mean);
        __m256 sq = _mm256_setzero_ps();
        for (int64_t i = 0; i < full; i += 8) {
            const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(y + i), vmean);
            sq = _mm256_fmadd_ps(d, d, sq);
        }
        if (full < k) {
            const __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(y + full, tail), vmean),
                                           _mm256_castsi256_ps(tail));
            sq = _mm256_fmadd_ps(d, d, sq);
        }
        const float var = sum_lanes(sq) / static_cast<float>(k);
        const __m256 rstd = _mm256_set1_ps(1.0f / std::sqrt(var + p.eps));
        // (h - mean) * rstd * gamma + beta, given gamma and beta (or ones and zeros) for 8 columns.
        auto normalize = [&](__m256 h, __m256 gamma, __m256 beta) {
            return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_sub_ps(h, vmean), rstd), gamma, beta);
        };
        const __m256 ones = _mm256_set1_ps(1.0f), zeros = _mm256_setzero_ps();
        for (int64_t i = 0; i < full; i += 8) {
            const __m256 g = p.gamma ? _mm256_loadu_ps(p.gamma + i) : ones;
            const __m256 b = p.beta ? _mm256_loadu_ps(p.beta + i) : zeros;
            _mm256_storeu_ps(y + i, normalize(_mm256_loadu_ps(y + i), g, b));
        }
        if (full < k) {
            const __m256 g = p.gamma ? _mm256_maskload_ps(p.gamma + full, tail) : ones;
            const __m256 b = p.beta ? _mm256_maskload_ps(p.beta + full, tail) : zeros;
            _mm256_maskstore_ps(y + full, tail,
                                normalize(_mm256_maskload_ps(y + full, tail), g, b));
        }
    }
}

}  // namespace tw
