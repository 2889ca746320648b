// AVX-512 pieces shared by the AVX-512 linear kernels: the fused epilogue (bias, GELU, residual,
// masked store) and the vector exp/erf it needs. Include only from *_avx512.cpp files: everything
// here is static inline, compiled with that file's flags.
#pragma once

#include <immintrin.h>

#include "gemm_kernels.h"

// GCC 12 warns that the _mm512_undefined_ps() inside its own intrinsic wrappers may be used
// uninitialized; it is not (every lane is written).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace tw {

// In-place accumulate steps. GCC 12 emits two register copies per vpdpbusd / FMA intrinsic inside
// unrolled micro-tiles (measured: 2x slower); these asm forms pin each accumulator to one register.
/// acc += dot4(u8 x, s8 w) per int32 lane (vpdpbusd).
static inline void dpbusd_acc(__m512i& acc, __m512i x, __m512i w) {
    asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
}
/// acc += x * w (vfmadd231ps).
static inline void fma_acc(__m512& acc, __m512 x, __m512 w) {
    asm("vfmadd231ps %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
}
/// acc += dot2(bf16 x, bf16 w) per fp32 lane (vdpbf16ps).
static inline void dpbf16_acc(__m512& acc, __m512i x, __m512i w) {
    asm("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
}

/// e^x for x in [-87.3, 88.3] (clamped): x = n ln2 + r, |r| <= ln2 / 2, e^r by its degree-7 Taylor
/// polynomial (truncation error < 1e-8 relative), times 2^n with vscalefps.
static inline __m512 exp_avx512(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3f)), _mm512_set1_ps(-87.3f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);  // ln2, high bits
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);       // ln2, low bits
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/// GELU(x) = x/2 (1 + erf(x / sqrt 2)), erf from Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
static inline __m512 gelu_avx512(__m512 x) {
    const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678f));
    const __m512 az = _mm512_abs_ps(z);
    const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                                   _mm512_fmadd_ps(az, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
    __m512 poly = _mm512_set1_ps(1.061405429f);
    poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-1.453152027f));
    poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(1.421413741f));
    poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-0.284496736f));
    poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(0.254829592f));
    poly = _mm512_mul_ps(poly, t);
    const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(az, az)));
    __m512 erf_abs = _mm512_fnmadd_ps(poly, e, _mm512_set1_ps(1.0f));
    // erf is odd: copy z's sign.
    const __m512 sign = _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(static_cast<int>(0x80000000u))));
    const __m512 erf = _mm512_or_ps(erf_abs, sign);
    return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)),
                         _mm512_add_ps(erf, _mm512_set1_ps(1.0f)));
}

/// Lanes of the 16 columns starting at `col` that exist (col < n).
static inline __mmask16 column_mask_avx512(int64_t col, int64_t n) {
    const int64_t valid = n - col;
    if (valid >= 16) return static_cast<__mmask16>(0xffff);
    if (valid <= 0) return 0;
    return static_cast<__mmask16>((1u << valid) - 1);
}

/// Adds the bias, applies GELU, adds the residual and stores row `row`, columns [col, col + 16).
static inline void finish_store_avx512(const GemmArgs& a, int64_t row, int64_t col, __mmask16 mask,
                                       __m512 v) {
    if (mask == 0) return;
    if (a.bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, a.bias + col));
    if (a.epilogue & TW_EPILOGUE_GELU) v = gelu_avx512(v);
    if (a.epilogue & TW_EPILOGUE_RESIDUAL) {
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, a.residual + row * a.ld_residual + col));
    }
    _mm512_mask_storeu_ps(a.y + row * a.ldy + col, mask, v);
}

}  // namespace tw
