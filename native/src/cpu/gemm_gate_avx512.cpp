// The gated epilogue (TW_EPILOGUE_GATED_*), AVX-512: one 16-lane vector per gated panel and row.
//
//   y[r, j] = act(u[r, j] + bu[j]) * (g[r, j] + bg[j])
//
// u and g come from a task tile in the gated panel layout (gemm_kernels.h): the 16 u of panel p at
// columns 32p..32p+15, their 16 g right after, so both are one aligned-stride load each. act:
// exact GELU (gelu_avx512, |error| < 1.5e-7 from erf), tanh GELU as u / (1 + e^(-2z)) with
// z = sqrt(2/pi) (u + 0.044715 u^3) (0.5 (1 + tanh z) is the logistic of 2z), or SiLU u / (1 +
// e^-u).
#include <immintrin.h>

#include <cstdint>

#include "gemm_epilogue_avx512.h"

namespace tw {
namespace {

/// act(u) for one TW_EPILOGUE_GATED_* flag.
inline __m512 gate_activation(__m512 u, int gate) {
    if (gate == TW_EPILOGUE_GATED_GELU) return gelu_avx512(u);
    __m512 e;
    if (gate == TW_EPILOGUE_GATED_GELU_TANH) {
        const __m512 u3 = _mm512_mul_ps(_mm512_mul_ps(u, u), u);
        const __m512 inner = _mm512_fmadd_ps(u3, _mm512_set1_ps(0.044715f), u);
        e = exp_avx512(_mm512_mul_ps(inner, _mm512_set1_ps(-1.5957691216f)));  // e^(-2z)
    } else {
        e = exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), u));  // e^-u
    }
    return _mm512_div_ps(u, _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
}

}  // namespace

void gate_rows_avx512(const float* s, int64_t lds, int64_t rows, int64_t count, const float* bu,
                      const float* bg, int gate, float* y, int64_t ldy) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* row = s + r * lds;
        float* out = y + r * ldy;
        for (int64_t j = 0; j < count; j += 16) {
            const __mmask16 mask = column_mask_avx512(j, count);
            __m512 u = _mm512_maskz_loadu_ps(mask, row + 2 * j);
            __m512 g = _mm512_maskz_loadu_ps(mask, row + 2 * j + 16);
            if (bu != nullptr) u = _mm512_add_ps(u, _mm512_maskz_loadu_ps(mask, bu + j));
            if (bg != nullptr) g = _mm512_add_ps(g, _mm512_maskz_loadu_ps(mask, bg + j));
            _mm512_mask_storeu_ps(out + j, mask, _mm512_mul_ps(gate_activation(u, gate), g));
        }
    }
}

}  // namespace tw
