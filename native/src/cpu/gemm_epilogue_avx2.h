// AVX2 pieces shared by the AVX2 linear kernels: the fused epilogue (bias, GELU, residual, masked
// store) and the vector exp/erf it needs. Include only from *_avx2.cpp files (static inline).
#pragma once

#include <immintrin.h>

#include <type_traits>

#include "gemm_kernels.h"

namespace tw {

// In-place accumulate steps: GCC 12 emits register copies around these intrinsics inside unrolled
// micro-tiles; the asm forms pin each accumulator to one register.
/// acc += dot4(u8 x, s8 w) per int32 lane (AVX-VNNI, VEX-encoded vpdpbusd).
static inline void dpbusd_acc(__m256i& acc, __m256i x, __m256i w) {
    asm("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(x), "x"(w));
}
/// acc += x * w (vfmadd231ps).
static inline void fma_acc(__m256& acc, __m256 x, __m256 w) {
    asm("vfmadd231ps %2, %1, %0" : "+x"(acc) : "x"(x), "x"(w));
}

/// acc0 += x · w0, acc1 += x · w1 for one row; the broadcast lives inside the asm so that GCC's
/// scheduler cannot keep two broadcasts live (it then runs out of the 16 registers and spills).
/// (The asm works on copies: with the array elements themselves as operands GCC keeps the whole
/// accumulator array in memory.)
static inline void fma_row(__m256& acc0, __m256& acc1, const float* x, __m256 w0, __m256 w1) {
    __m256 a0 = acc0, a1 = acc1, t;
    asm("vbroadcastss %3, %2\n\t"
        "vfmadd231ps %4, %2, %0\n\t"
        "vfmadd231ps %5, %2, %1"
        : "+x"(a0), "+x"(a1), "=&x"(t)
        : "m"(*x), "x"(w0), "x"(w1));
    acc0 = a0;
    acc1 = a1;
}

/// Zeroes a micro-tile's accumulators (rows x 2 vectors of 8 columns).
template <int kRows>
__attribute__((always_inline)) inline void zero_tile(__m256 (&acc)[kRows][2]) {
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
}

/// Row pointers of a micro-tile with R live rows from row m of x: the rows past R repeat row m
/// (they are read by no FMA and never stored), so the fixed-size array is always fully set.
template <int kRows, int R>
__attribute__((always_inline)) inline void tile_rows(const float* x, int64_t ldx, int64_t m,
                                                     const float* (&rows)[kRows]) {
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) rows[r] = x + (m + (r < R ? r : 0)) * ldx;
}

/// Calls tile(std::integral_constant<int, R>{}) for R = rows, 1..6: the micro-tiles take their
/// row count as a template argument.
template <typename Tile>
__attribute__((always_inline)) inline void with_rows(int64_t rows, Tile tile) {
    switch (rows) {
        case 6: tile(std::integral_constant<int, 6>{}); break;
        case 5: tile(std::integral_constant<int, 5>{}); break;
        case 4: tile(std::integral_constant<int, 4>{}); break;
        case 3: tile(std::integral_constant<int, 3>{}); break;
        case 2: tile(std::integral_constant<int, 2>{}); break;
        case 1: tile(std::integral_constant<int, 1>{}); break;
        default: break;
    }
}

/// e^x for x in [-87.3, 88.3] (clamped): x = n ln2 + r, e^r by its degree-7 Taylor polynomial,
/// times 2^n built in the exponent field (n stays within the normal range after the clamp).
static inline __m256 exp_avx2(__m256 x) {
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3f)), _mm256_set1_ps(-87.3f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i bits =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

/// GELU(x) = x/2 (1 + erf(x / sqrt 2)), erf from Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
static inline __m256 gelu_avx2(__m256 x) {
    const __m256 sign_bit = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
    const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678f));
    const __m256 az = _mm256_andnot_ps(sign_bit, z);
    // t = 1 / d, d in [1, inf): vrcpps (12 bits) and one Newton step (~23 bits) instead of vdivps.
    const __m256 d = _mm256_fmadd_ps(az, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f));
    const __m256 r0 = _mm256_rcp_ps(d);
    const __m256 t = _mm256_mul_ps(r0, _mm256_fnmadd_ps(d, r0, _mm256_set1_ps(2.0f)));
    __m256 poly = _mm256_set1_ps(1.061405429f);
    poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-1.453152027f));
    poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(1.421413741f));
    poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-0.284496736f));
    poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(0.254829592f));
    poly = _mm256_mul_ps(poly, t);
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(az, az)));
    const __m256 erf_abs = _mm256_fnmadd_ps(poly, e, _mm256_set1_ps(1.0f));
    const __m256 erf = _mm256_or_ps(erf_abs, _mm256_and_ps(z, sign_bit));
    return _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)),
                         _mm256_add_ps(erf, _mm256_set1_ps(1.0f)));
}

/// All-ones lanes for the columns of the 8 starting at `col` that exist (col < n).
static inline __m256i column_mask_avx2(int64_t col, int64_t n) {
    const int64_t valid = n - col;
    const int v = valid >= 8 ? 8 : (valid <= 0 ? 0 : static_cast<int>(valid));
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// Adds the bias, applies GELU, adds the residual and stores row `row`, columns [col, col + 8).
static inline void finish_store_avx2(const GemmArgs& a, int64_t row, int64_t col, int64_t n,
                                     __m256 v) {
    if (col >= n) return;
    if (col + 8 <= n) {
        if (a.bias) v = _mm256_add_ps(v, _mm256_loadu_ps(a.bias + col));
        if (a.epilogue & TW_EPILOGUE_GELU) v = gelu_avx2(v);
        if (a.epilogue & TW_EPILOGUE_RESIDUAL) {
            v = _mm256_add_ps(v, _mm256_loadu_ps(a.residual + row * a.ld_residual + col));
        }
        _mm256_storeu_ps(a.y + row * a.ldy + col, v);
        return;
    }
    const __m256i mask = column_mask_avx2(col, n);
    if (a.bias) v = _mm256_add_ps(v, _mm256_maskload_ps(a.bias + col, mask));
    if (a.epilogue & TW_EPILOGUE_GELU) v = gelu_avx2(v);
    if (a.epilogue & TW_EPILOGUE_RESIDUAL) {
        v = _mm256_add_ps(v, _mm256_maskload_ps(a.residual + row * a.ld_residual + col, mask));
    }
    _mm256_maskstore_ps(a.y + row * a.ldy + col, mask, v);
}

}  // namespace tw
