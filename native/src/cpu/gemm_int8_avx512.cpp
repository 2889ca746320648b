// INT8 linear layers, AVX-512 variants (see gemm_int8.cpp for the math and the dispatch):
//  - dynamic int8: u8 activations x s8 weights with vpdpbusd (AVX512-VNNI), int32 accumulators,
//    dequantization + zero-point correction + bias + GELU/residual fused into the store;
//  - weight-only int8: fp32 activations, int8 weights widened in registers, FMA;
//  - per-row activation quantization.
// Micro-kernel: kRows rows x one 32-column panel (two zmm per row).
#include <immintrin.h>

#include <cstring>

#include "gemm_epilogue_avx512.h"

namespace tw {
namespace {

/// Rows per micro-tile: 8 rows x 2 vectors = 16 independent accumulator chains, enough to cover
/// vpdpbusd / FMA latency at two per cycle; with 2 weight vectors and a broadcast, 19 of 32 zmm.
constexpr int kRows = 8;
// (Measured: a 6-row x 2-panel tile, fewer broadcasts per vpdpbusd, was ~10% slower here.)

inline int32_t load_i32(const uint8_t* p) {
    int32_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

template <int R>
void vnni_tile(const GemmArgs& a, int64_t m, int64_t p) {
    const tw_packed_weights& w = *a.w;
    const int8_t* panel = static_cast<const int8_t*>(w.data) + p * w.panel_bytes;
    const uint8_t* x = a.xq + m * a.ldq;
    __m512i acc[R][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) prefetch_output_avx512(a, m + r, p * kPanel);
    for (int64_t g = 0; g < w.k_groups; ++g) {
        const __m512i w0 = _mm512_load_si512(panel + g * 128);
        const __m512i w1 = _mm512_load_si512(panel + g * 128 + 64);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m512i xb = _mm512_set1_epi32(load_i32(x + r * a.ldq + 4 * g));
            dpbusd_acc(acc[r][0], xb, w0);
            dpbusd_acc(acc[r][1], xb, w1);
        }
    }
    const int64_t col = p * kPanel;
    const __mmask16 mask_lo = column_mask_avx512(col, w.n);
    const __mmask16 mask_hi = column_mask_avx512(col + 16, w.n);
    const __m512i col_sums_lo = _mm512_load_si512(w.col_sums + col);
    const __m512i col_sums_hi = _mm512_load_si512(w.col_sums + col + 16);
    const __m512 w_scale_lo = _mm512_load_ps(w.scales + col);
    const __m512 w_scale_hi = _mm512_load_ps(w.scales + col + 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        const __m512i zero = _mm512_set1_epi32(a.x_zero[m + r]);
        const __m512 x_scale = _mm512_set1_ps(a.x_scale[m + r]);
        const __m512i exact_lo = _mm512_sub_epi32(acc[r][0], _mm512_mullo_epi32(zero, col_sums_lo));
        const __m512i exact_hi = _mm512_sub_epi32(acc[r][1], _mm512_mullo_epi32(zero, col_sums_hi));
        finish_store_row32_avx512(
            a, m + r, col, mask_lo, mask_hi,
            _mm512_mul_ps(_mm512_cvtepi32_ps(exact_lo), _mm512_mul_ps(x_scale, w_scale_lo)),
            _mm512_mul_ps(_mm512_cvtepi32_ps(exact_hi), _mm512_mul_ps(x_scale, w_scale_hi)));
    }
}

/// Weight k-offset J of each int32 lane (4 packed int8), sign-extended and converted to fp32.
template <int J>
inline __m512 widen(__m512i packed) {
    return _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(packed, 24 - 8 * J), 24));
}

template <int R, int J>
inline void wo_step(__m512 (&acc)[R][2], __m512i raw0, __m512i raw1, const float* x, int64_t ldx,
                    int64_t k) {
    const __m512 w0 = widen<J>(raw0);
    const __m512 w1 = widen<J>(raw1);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        const __m512 xb = _mm512_set1_ps(x[r * ldx + k]);
        fma_acc(acc[r][0], xb, w0);
        fma_acc(acc[r][1], xb, w1);
    }
}

template <int R>
void weight_only_tile(const GemmArgs& a, int64_t m, int64_t p) {
    const tw_packed_weights& w = *a.w;
    const int8_t* panel = static_cast<const int8_t*>(w.data) + p * w.panel_bytes;
    const float* x = a.x + m * a.ldx;
    __m512 acc[R][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        prefetch_output_avx512(a, m + r, p * kPanel);
    }
    const int64_t full = w.k / 4;
    for (int64_t g = 0; g < full; ++g) {
        const __m512i raw0 = _mm512_load_si512(panel + g * 128);
        const __m512i raw1 = _mm512_load_si512(panel + g * 128 + 64);
        wo_step<R, 0>(acc, raw0, raw1, x, a.ldx, 4 * g);
        wo_step<R, 1>(acc, raw0, raw1, x, a.ldx, 4 * g + 1);
        wo_step<R, 2>(acc, raw0, raw1, x, a.ldx, 4 * g + 2);
        wo_step<R, 3>(acc, raw0, raw1, x, a.ldx, 4 * g + 3);
    }
    const int64_t rest = w.k - 4 * full;  // the last, partial group: never read x past k
    if (rest > 0) {
        const __m512i raw0 = _mm512_load_si512(panel + full * 128);
        const __m512i raw1 = _mm512_load_si512(panel + full * 128 + 64);
        wo_step<R, 0>(acc, raw0, raw1, x, a.ldx, 4 * full);
        if (rest > 1) wo_step<R, 1>(acc, raw0, raw1, x, a.ldx, 4 * full + 1);
        if (rest > 2) wo_step<R, 2>(acc, raw0, raw1, x, a.ldx, 4 * full + 2);
    }
    const int64_t col = p * kPanel;
    const __mmask16 mask_lo = column_mask_avx512(col, w.n);
    const __mmask16 mask_hi = column_mask_avx512(col + 16, w.n);
    const __m512 w_scale_lo = _mm512_load_ps(w.scales + col);
    const __m512 w_scale_hi = _mm512_load_ps(w.scales + col + 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        finish_store_row32_avx512(a, m + r, col, mask_lo, mask_hi,
                                  _mm512_mul_ps(acc[r][0], w_scale_lo),
                                  _mm512_mul_ps(acc[r][1], w_scale_hi));
    }
}

}  // namespace

// Loop nest of one task: panels outer (a 32 x K panel stays in L1 across the row micro-tiles),
// row micro-tiles inner; the last micro-tile takes the leftover rows.
void int8_block_avx512_vnni(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
        int64_t m = m0;
        for (; m + kRows <= m1; m += kRows) vnni_tile<kRows>(a, m, p);
        switch (m1 - m) {
            case 1: vnni_tile<1>(a, m, p); break;
            case 2: vnni_tile<2>(a, m, p); break;
            case 3: vnni_tile<3>(a, m, p); break;
            case 4: vnni_tile<4>(a, m, p); break;
            case 5: vnni_tile<5>(a, m, p); break;
            case 6: vnni_tile<6>(a, m, p); break;
            case 7: vnni_tile<7>(a, m, p); break;
            default: break;
        }
    }
}

void int8_wo_block_avx512(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
        int64_t m = m0;
        for (; m + kRows <= m1; m += kRows) weight_only_tile<kRows>(a, m, p);
        switch (m1 - m) {
            case 1: weight_only_tile<1>(a, m, p); break;
            case 2: weight_only_tile<2>(a, m, p); break;
            case 3: weight_only_tile<3>(a, m, p); break;
            case 4: weight_only_tile<4>(a, m, p); break;
            case 5: weight_only_tile<5>(a, m, p); break;
            case 6: weight_only_tile<6>(a, m, p); break;
            case 7: weight_only_tile<7>(a, m, p); break;
            default: break;
        }
    }
}

// Per row: min/max reduction, then q = clamp(round_even(x * inv) + zero, 0, qmax) 16 lanes at a
// time (vcvtps2dq rounds to nearest even, as the portable nearbyint does), padding bytes zero.
void quantize_rows_avx512(const float* x, int64_t ldx, const float* mult, int64_t m0, int64_t m1,
                          int64_t k, tw_activation_quant mode, int32_t qmax, uint8_t* q,
                          int64_t ldq, float* scales, int32_t* zeros) {
    // x[i] * mult[i] (or x[i]), lanes outside `mask` zero.
    auto load = [&](const float* row, int64_t i, __mmask16 mask) {
        const __m512 v = _mm512_maskz_loadu_ps(mask, row + i);
        return mult ? _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mask, mult + i)) : v;
    };
    for (int64_t m = m0; m < m1; ++m) {
        const float* row = x + m * ldx;
        __m512 lo = _mm512_setzero_ps();
        __m512 hi = _mm512_setzero_ps();
        __m512 probe = _mm512_setzero_ps();  // sums x - x: NaN once a value is NaN or infinite
        int64_t i = 0;
        for (; i + 16 <= k; i += 16) {
            const __m512 v = load(row, i, 0xffff);
            lo = _mm512_min_ps(lo, v);
            hi = _mm512_max_ps(hi, v);
            probe = _mm512_add_ps(probe, _mm512_sub_ps(v, v));
        }
        const __mmask16 tail = column_mask_avx512(i, k);
        if (tail) {
            const __m512 v = load(row, i, tail);  // zeros do not widen [min(x,0), max(x,0)]
            lo = _mm512_min_ps(lo, v);
            hi = _mm512_max_ps(hi, v);
            probe = _mm512_add_ps(probe, _mm512_sub_ps(v, v));
        }
        if (quantize_nonfinite_row(_mm512_reduce_add_ps(probe), mode, qmax, k, q + m * ldq, ldq,
                                   &scales[m], &zeros[m])) {
            continue;
        }
        float scale;
        int32_t zero;
        const float inv = quant_params(_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi), mode,
                                       qmax, &scale, &zero);
        scales[m] = scale;
        zeros[m] = zero;
        const __m512 vinv = _mm512_set1_ps(inv);
        const __m512i vzero = _mm512_set1_epi32(zero);
        const __m512i vmax = _mm512_set1_epi32(qmax);
        uint8_t* out = q + m * ldq;
        for (i = 0; i < k; i += 16) {
            const __mmask16 mask = column_mask_avx512(i, k);
            const __m512 v = load(row, i, mask);
            __m512i c = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, vinv)), vzero);
            c = _mm512_min_epi32(_mm512_max_epi32(c, _mm512_setzero_si512()), vmax);
            _mm512_mask_cvtepi32_storeu_epi8(out + i, mask, c);
        }
        for (i = k; i < ldq; ++i) out[i] = 0;
    }
}

}  // namespace tw
