// The gated epilogue (TW_EPILOGUE_GATED_*), AVX2 + FMA: one 8-lane vector per half of a gated
// panel and row.
//
//   y[r, j] = act(u[r, j] + bu[j]) * (g[r, j] + bg[j])
//
// u and g come from a task tile in the gated panel layout (gemm_kernels.h): output j's u at column
// (j / 16) * 32 + j % 16, its g 16 columns later. act as in gemm_gate_avx512.cpp: exact GELU
// (gelu_avx2), tanh GELU as u / (1 + e^(-2z)), or SiLU u / (1 + e^-u).
#include <immintrin.h>

#include <cstdint>

#include "gemm_epilogue_avx2.h"

namespace tw {
namespace {

/// act(u) for one TW_EPILOGUE_GATED_* flag.
inline __m256 gate_activation(__m256 u, int gate) {
    if (gate == TW_EPILOGUE_GATED_GELU) return gelu_avx2(u);
    __m256 e;
    if (gate == TW_EPILOGUE_GATED_GELU_TANH) {
        const __m256 u3 = _mm256_mul_ps(_mm256_mul_ps(u, u), u);
        const __m256 inner = _mm256_fmadd_ps(u3, _mm256_set1_ps(0.044715f), u);
        e = exp_avx2(_mm256_mul_ps(inner, _mm256_set1_ps(-1.5957691216f)));  // e^(-2z)
    } else {
        e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), u));  // e^-u
    }
    return _mm256_div_ps(u, _mm256_add_ps(e, _mm256_set1_ps(1.0f)));
}

}  // namespace

void gate_rows_avx2(const float* s, int64_t lds, int64_t rows, int64_t count, const float* bu,
                    const float* bg, int gate, float* y, int64_t ldy) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* row = s + r * lds;
        float* out = y + r * ldy;
        for (int64_t j = 0; j < count; j += 8) {
            const float* pu = row + (j / 16) * kPanel + j % 16;
            if (j + 8 <= count) {
                __m256 u = _mm256_loadu_ps(pu);
                __m256 g = _mm256_loadu_ps(pu + 16);
                if (bu != nullptr) u = _mm256_add_ps(u, _mm256_loadu_ps(bu + j));
                if (bg != nullptr) g = _mm256_add_ps(g, _mm256_loadu_ps(bg + j));
                _mm256_storeu_ps(out + j, _mm256_mul_ps(gate_activation(u, gate), g));
                continue;
            }
            const __m256i mask = column_mask_avx2(j, count);
            __m256 u = _mm256_maskload_ps(pu, mask);
            __m256 g = _mm256_maskload_ps(pu + 16, mask);
            if (bu != nullptr) u = _mm256_add_ps(u, _mm256_maskload_ps(bu + j, mask));
            if (bg != nullptr) g = _mm256_add_ps(g, _mm256_maskload_ps(bg + j, mask));
            _mm256_maskstore_ps(out + j, mask, _mm256_mul_ps(gate_activation(u, gate), g));
        }
    }
}

}  // namespace tw
