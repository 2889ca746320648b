// Fused LayerNorm rows, AVX-512 (math in layernorm.cpp): three passes over a row that stays in L1:
// h = x + residual (stored into y) and its sum; the sum of squared deviations; the affine map.
#include <immintrin.h>

#include <cmath>

#include "gemm_epilogue_avx512.h"
#include "layernorm_kernels.h"

namespace tw {

void layernorm_rows_avx512(const tw_layernorm_params& p, int64_t m0, int64_t m1) {
    const int64_t k = p.k;
    for (int64_t m = m0; m < m1; ++m) {
        const float* x = p.x + m * p.ldx;
        const float* res = p.residual ? p.residual + m * p.ld_residual : nullptr;
        float* y = p.y + m * p.ldy;
        __m512 sum = _mm512_setzero_ps();
        for (int64_t i = 0; i < k; i += 16) {
            const __mmask16 mask = column_mask_avx512(i, k);
            __m512 h = _mm512_maskz_loadu_ps(mask, x + i);
            if (res) h = _mm512_add_ps(h, _mm512_maskz_loadu_ps(mask, res + i));
            _mm512_mask_storeu_ps(y + i, mask, h);
            sum = _mm512_add_ps(sum, h);
        }
        const float mean = _mm512_reduce_add_ps(sum) / static_cast<float>(k);
        const __m512 vmean = _mm512_set1_ps(mean);
        __m512 sq = _mm512_setzero_ps();
        for (int64_t i = 0; i < k; i += 16) {
            const __mmask16 mask = column_mask_avx512(i, k);
            const __m512 d = _mm512_maskz_sub_ps(mask, _mm512_maskz_loadu_ps(mask, y + i), vmean);
            sq = _mm512_fmadd_ps(d, d, sq);
        }
        const float var = _mm512_reduce_add_ps(sq) / static_cast<float>(k);
        const __m512 rstd = _mm512_set1_ps(1.0f / std::sqrt(var + p.eps));
        for (int64_t i = 0; i < k; i += 16) {
            const __mmask16 mask = column_mask_avx512(i, k);
            __m512 v =
                _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, y + i), vmean), rstd);
            if (p.gamma) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mask, p.gamma + i));
            if (p.beta) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, p.beta + i));
            _mm512_mask_storeu_ps(y + i, mask, v);
        }
    }
}

}  // namespace tw
