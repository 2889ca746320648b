// AVX-512 pieces shared by the AVX-512 linear kernels: the fused epilogue (bias, GELU, residual,
// masked store); the vector exp/GELU come from simd_math_avx512.h. Include only from *_avx512.cpp
// files: everything here is static inline, compiled with that file's flags.
#pragma once

#include <immintrin.h>

#include "gemm_kernels.h"
#include "simd_math_avx512.h"

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
