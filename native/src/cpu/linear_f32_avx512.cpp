// fp32 linear layer, AVX-512 register tile: R rows (R <= 12) × one 32-column panel of packed W.
//
// Per k: two 16-float loads of the panel row, R broadcasts of X[r][k], 2R FMAs into 2R zmm
// accumulators (24 at R = 12, plus 2 for W and 1 broadcast: 27 of 32 registers, no spills). The
// FMA:load ratio 24:14 keeps the two FMA pipes busy. Epilogue: + bias, GELU (erf, Abramowitz &
// Stegun 7.1.26, |error| < 1.5e-7), + residual, masked stores for a partial last panel.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "linear_f32_kernels.h"

namespace tw {
namespace {

/// e^x for x <= 0 (here x = -z²): 2^(x·log2 e) split as 2^n · 2^f, |f| <= 1/2, 2^f by a degree-6
/// polynomial (relative error ~1e-7), scaled with vscalefps; very negative x gives 0.
inline __m512 exp_nonpositive(__m512 x) {
    __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    t = _mm512_max_ps(t, _mm512_set1_ps(-150.0f));
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(t, n);
    __m512 poly = _mm512_set1_ps(1.5403530393381606e-4f);
    poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(1.3333558146428443e-3f));
    poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(9.6181291076284770e-3f));
    poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(5.5504108664821580e-2f));
    poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(2.4022650695910071e-1f));
    poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(6.9314718055994531e-1f));
    poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(poly, n);
}

/// GELU(v) = v/2 · (1 + erf(v/√2)), erf(z) = 1 − (a1·t + … + a5·t⁵)·e^(−z²), t = 1/(1 + p·|z|).
inline __m512 gelu(__m512 v) {
    const __m512 z = _mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f));
    const __m512 az = _mm512_abs_ps(z);
    const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                                   _mm512_fmadd_ps(az, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
    __m512 poly = _mm512_set1_ps(1.061405429f);
    poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-1.453152027f));
    poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(1.421413741f));
    poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-0.284496736f));
    poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(0.254829592f));
    poly = _mm512_mul_ps(poly, t);
    const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(az, az)));
    const __m512 erf_abs = _mm512_fnmadd_ps(poly, e, _mm512_set1_ps(1.0f));
    // erf is odd: copy z's sign onto erf(|z|).
    const __m512 sign = _mm512_and_ps(z, _mm512_set1_ps(-0.0f));
    const __m512 erf = _mm512_or_ps(erf_abs, sign);
    return _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(0.5f)),
                         _mm512_add_ps(erf, _mm512_set1_ps(1.0f)));
}

/// Stores one 16-column half of a row through the epilogue; `valid` columns (1..16) are written.
inline void store_half(const tw_f32_linear_params& p, int64_t row, int64_t col, int valid,
                       __m512 acc) {
    const __mmask16 mask = valid >= 16 ? __mmask16(0xffff) : __mmask16((1u << valid) - 1);
    if (p.bias) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(mask, p.bias + col));
    if (p.gelu) acc = gelu(acc);
    if (p.residual) {
        acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(mask, p.residual + row * p.ld_residual + col));
    }
    _mm512_mask_storeu_ps(p.y + row * p.ldy + col, mask, acc);
}

/// The micro-kernel: R rows, full k, then the epilogue.
template <int R>
__attribute__((always_inline)) inline void tile_rows(const tw_f32_linear_params& p, int64_t m0,
                                                     int64_t panel) {
    const float* w = p.packed + panel * p.k * TW_F32_PANEL;
    const float* x[R];
    __m512 lo[R];
    __m512 hi[R];
    for (int r = 0; r < R; ++r) {
        x[r] = p.x + (m0 + r) * p.ldx;
        lo[r] = _mm512_setzero_ps();
        hi[r] = _mm512_setzero_ps();
    }
    for (int64_t kk = 0; kk < p.k; ++kk) {
        const __m512 b0 = _mm512_loadu_ps(w + kk * TW_F32_PANEL);
        const __m512 b1 = _mm512_loadu_ps(w + kk * TW_F32_PANEL + 16);
        for (int r = 0; r < R; ++r) {
            const __m512 a = _mm512_set1_ps(x[r][kk]);
            lo[r] = _mm512_fmadd_ps(a, b0, lo[r]);
            hi[r] = _mm512_fmadd_ps(a, b1, hi[r]);
        }
    }
    const int64_t n0 = panel * TW_F32_PANEL;
    const int cols = static_cast<int>(std::min<int64_t>(TW_F32_PANEL, p.n - n0));
    for (int r = 0; r < R; ++r) {
        store_half(p, m0 + r, n0, std::min(cols, 16), lo[r]);
        if (cols > 16) store_half(p, m0 + r, n0 + 16, cols - 16, hi[r]);
    }
}

}  // namespace

void linear_f32_tile_avx512(const tw_f32_linear_params& p, int64_t m0, int rows, int64_t panel) {
    switch (rows) {
        case 12: tile_rows<12>(p, m0, panel); break;
        case 11: tile_rows<11>(p, m0, panel); break;
        case 10: tile_rows<10>(p, m0, panel); break;
        case 9: tile_rows<9>(p, m0, panel); break;
        case 8: tile_rows<8>(p, m0, panel); break;
        case 7: tile_rows<7>(p, m0, panel); break;
        case 6: tile_rows<6>(p, m0, panel); break;
        case 5: tile_rows<5>(p, m0, panel); break;
        case 4: tile_rows<4>(p, m0, panel); break;
        case 3: tile_rows<3>(p, m0, panel); break;
        case 2: tile_rows<2>(p, m0, panel); break;
        case 1: tile_rows<1>(p, m0, panel); break;
        default: break;
    }
}

}  // namespace tw
