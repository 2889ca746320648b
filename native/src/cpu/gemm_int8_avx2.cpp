// INT8 linear layers, AVX2 variants (see gemm_int8.cpp for the math and the dispatch):
//  - AVX-VNNI: u8 x s8 dot products of 4 with vpdpbusd on ymm (Alder Lake+, Zen 5);
//  - plain AVX2: vpmaddubsw (u8 x s8 pairs summed into SATURATING int16) + vpmaddwd by ones +
//    vpaddd. u8 codes up to 255 times int8 weights could saturate a pair (2 * 255 * 127 > 32767),
//    so the kernel centres the codes, x' = x - 127 in [-127, 127] (codes 0..254: 255 levels, nearly
//    the 8-bit accuracy of the VNNI kernels; 7-bit codes cost 0.013 of MiniLM's min cosine), and
//    multiplies |w| (<= 128, unsigned) by sign(x', w) (|.| <= 127, signed) - the "sign trick":
//    a pair is at most 2 * 128 * 127 = 32512, exact for every int8 weight, -128 included;
//  - plain AVX2, reduced range: weights packed with |w| <= 64 (tw_pack_weights_int8_range) cannot
//    saturate a pair even with u8 codes 0..255 (2 * 255 * 64 = 32640), so the kernel runs the plain
//    vpmaddubsw(x, w) + vpmaddwd + vpaddd, one instruction less per 32 MACs than the sign trick and
//    no centring (measured 1.2-1.6x faster at the encoder shapes, gemm_bench);
//  - weight-only int8 with fp32 activations; per-row activation quantization.
// Micro-kernels cover kRows rows x 16 columns (half a packed panel: two ymm per row).
#include <immintrin.h>

#include <cstring>

#include "gemm_avx2_block.h"
#include "gemm_epilogue_avx2.h"
#include "runtime.h"

namespace tw {
namespace {

/// Codes of the plain-AVX2 kernel are in [0, 2 * kSignKernelCentre]; it computes with x - centre.
constexpr int kSignKernelCentre = 127;

/// Rows of the plain-AVX2 micro-tile: 5 rows x 2 vectors = 10 accumulators + 2 |w| + the centred
/// broadcast + ones + centre + a temporary = 16 registers.
constexpr int kSignRows = 5;

/// Rows of the reduced-range micro-tile: 6 rows x 2 vectors = 12 accumulators + the broadcast +
/// ones
/// + a temporary = 15 registers (weights are memory operands).
constexpr int kReducedRows = 6;

/// Rows per int8 micro-tile: 6 rows x 2 ymm = 12 accumulators + 2 weights + 1 broadcast = 15 of 16.
constexpr int kRows = 6;
/// Weight-only rows per micro-tile: 6 rows x 2 ymm = 12 accumulators + 2 weights + 1 broadcast,
/// as in the 16-bit kernels (the weights come widened to fp32, see int8_wo_block_avx2).
constexpr int kWeightOnlyRows = 6;

inline int32_t load_i32(const uint8_t* p) {
    int32_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

/// Dequantizes 8 int32 sums of row `row`, columns [col, col + 8), and stores them.
inline void int8_epilogue(const GemmArgs& a, int64_t row, int64_t col, __m256i acc, int32_t zero) {
    const tw_packed_weights& w = *a.w;
    const __m256i col_sums = _mm256_load_si256(reinterpret_cast<const __m256i*>(w.col_sums + col));
    const __m256i exact =
        _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(zero), col_sums));
    const __m256 scale =
        _mm256_mul_ps(_mm256_set1_ps(a.x_scale[row]), _mm256_load_ps(w.scales + col));
    finish_store_avx2(a, row, col, w.n, _mm256_mul_ps(_mm256_cvtepi32_ps(exact), scale));
}

/// half selects columns [16 * half, 16 * half + 16) of the 32-column panel.
template <int R>
void avx_vnni_tile(const GemmArgs& a, int64_t m, int64_t p, int half) {
    const tw_packed_weights& w = *a.w;
    const int8_t* panel = static_cast<const int8_t*>(w.data) + p * w.panel_bytes + half * 64;
    const uint8_t* x = a.xq + m * a.ldq;
    __m256i acc[R][2];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int64_t g = 0; g < w.k_groups; ++g) {
        const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + g * 128));
        const __m256i w1 =
            _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + g * 128 + 32));
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
            const __m256i xb = _mm256_set1_epi32(load_i32(x + r * a.ldq + 4 * g));
            dpbusd_acc(acc[r][0], xb, w0);
            dpbusd_acc(acc[r][1], xb, w1);
        }
    }
    const int64_t col = p * kPanel + half * 16;
    for (int r = 0; r < R; ++r) {
        int8_epilogue(a, m + r, col, acc[r][0], a.x_zero[m + r]);
        int8_epilogue(a, m + r, col + 8, acc[r][1], a.x_zero[m + r]);
    }
}

/// Sign-trick step (plain AVX2): acc += dot4(x', w) per int32 lane for signed x' and w, as
/// vpmaddubsw(|w|, sign(x', w)) - the unsigned operand |w| <= 128, the signed one |x'| <= 127, so a
/// pair is at most 2 * 128 * 127 = 32512 and never saturates - then vpmaddwd by ones and vpaddd.
/// `w` is read from memory by vpsignb (only its signs), `abs_w` holds |w|. One asm block with an
/// early-clobbered temporary, so GCC neither copies the accumulator nor spills it.
static inline void sign_dot_acc(__m256i& acc, __m256i xs, const int8_t* w, __m256i abs_w,
                                __m256i ones) {
    __m256i t;
    asm("vpsignb %[w], %[xs], %[t]\n\t"
        "vpmaddubsw %[t], %[aw], %[t]\n\t"
        "vpmaddwd %[ones], %[t], %[t]\n\t"
        "vpaddd %[t], %[acc], %[acc]"
        : [acc] "+x"(acc), [t] "=&x"(t)
        : [xs] "x"(xs), [w] "m"(*reinterpret_cast<const __m256i*>(w)), [aw] "x"(abs_w),
          [ones] "x"(ones));
}

/// R rows x 16 columns (half selects the panel's first or second 16) of the plain-AVX2 kernel.
/// Codes x in [0, 254] are centred as x' = x - 127 in [-127, 127] (vpsubb), so the int32 sums are
/// sum_k (x - 127) w and the zero-point correction uses (zero - 127).
template <int R>
void sign_tile(const GemmArgs& a, int64_t m, int64_t p, int half) {
    constexpr int C = 2;  // vectors of 8 columns
    const tw_packed_weights& w = *a.w;
    const int8_t* panel = static_cast<const int8_t*>(w.data) + p * w.panel_bytes + half * 64;
    const uint8_t* x = a.xq + m * a.ldq;
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i centre = _mm256_set1_epi8(kSignKernelCentre);
    __m256i acc[R][C];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_si256();
    }
    for (int64_t g = 0; g < w.k_groups; ++g) {
        const int8_t* wg = panel + g * 128;
        __m256i abs_w[C];
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) {
            abs_w[c] =
                _mm256_abs_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(wg + 32 * c)));
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m256i xs =
                _mm256_sub_epi8(_mm256_set1_epi32(load_i32(x + r * a.ldq + 4 * g)), centre);
#pragma GCC unroll 4
            for (int c = 0; c < C; ++c) sign_dot_acc(acc[r][c], xs, wg + 32 * c, abs_w[c], ones);
        }
    }
    const int64_t col = p * kPanel + half * 16;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) {
            int8_epilogue(a, m + r, col + 8 * c, acc[r][c], a.x_zero[m + r] - kSignKernelCentre);
        }
    }
}

/// Column `J` of each 4-byte k group, sign-extended to fp32: weights of step 4g + J.
/// Reduced-range step: acc += dot4(x, w) per int32 lane, x u8 (any code), w s8 with |w| <= 64 read
/// from memory: vpmaddubsw cannot saturate, then vpmaddwd by ones and vpaddd. One asm block, as in
/// sign_dot_acc.
static inline void plain_dot_acc(__m256i& acc, __m256i x, const int8_t* w, __m256i ones) {
    __m256i t;
    asm("vpmaddubsw %[w], %[x], %[t]\n\t"
        "vpmaddwd %[ones], %[t], %[t]\n\t"
        "vpaddd %[t], %[acc], %[acc]"
        : [acc] "+x"(acc), [t] "=&x"(t)
        : [x] "x"(x), [w] "m"(*reinterpret_cast<const __m256i*>(w)), [ones] "x"(ones));
}

/// R rows x 16 columns of the reduced-range kernel: codes as they are, weights from memory.
template <int R>
void reduced_tile(const GemmArgs& a, int64_t m, int64_t p, int half) {
    const tw_packed_weights& w = *a.w;
    const int8_t* panel = static_cast<const int8_t*>(w.data) + p * w.panel_bytes + half * 64;
    const uint8_t* x = a.xq + m * a.ldq;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[R][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int64_t g = 0; g < w.k_groups; ++g) {
        const int8_t* wg = panel + g * 128;
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m256i xb = _mm256_set1_epi32(load_i32(x + r * a.ldq + 4 * g));
            plain_dot_acc(acc[r][0], xb, wg, ones);
            plain_dot_acc(acc[r][1], xb, wg + 32, ones);
        }
    }
    const int64_t col = p * kPanel + half * 16;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        int8_epilogue(a, m + r, col, acc[r][0], a.x_zero[m + r]);
        int8_epilogue(a, m + r, col + 8, acc[r][1], a.x_zero[m + r]);
    }
}

template <int J>
inline __m256 widen(__m256i packed) {
    return _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(packed, 24 - 8 * J), 24));
}

/// Widens columns [16 * half, 16 * half + 16) of panel p to fp32 rows: out[kk * 16 + c] is
/// Wq[col + c, kk] for every padded step kk (the padding steps are zero weights).
void widen_half_panel(const tw_packed_weights& w, int64_t p, int half, float* out) {
    const int8_t* panel = static_cast<const int8_t*>(w.data) + p * w.panel_bytes + half * 64;
    for (int64_t g = 0; g < w.k_groups; ++g, out += 4 * 16) {
        const __m256i raw0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + g * 128));
        const __m256i raw1 =
            _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + g * 128 + 32));
        _mm256_store_ps(out + 0, widen<0>(raw0));
        _mm256_store_ps(out + 8, widen<0>(raw1));
        _mm256_store_ps(out + 16, widen<1>(raw0));
        _mm256_store_ps(out + 24, widen<1>(raw1));
        _mm256_store_ps(out + 32, widen<2>(raw0));
        _mm256_store_ps(out + 40, widen<2>(raw1));
        _mm256_store_ps(out + 48, widen<3>(raw0));
        _mm256_store_ps(out + 56, widen<3>(raw1));
    }
}

/// R rows x 16 columns from `col` of the weight-only product, against the widened half-panel `wf`:
/// per k two aligned weight loads and, per row, a broadcast and two FMAs (fma_row), as in the
/// 16-bit kernels; the per-channel scales are applied once, in the epilogue.
template <int R>
void weight_only_tile(const GemmArgs& a, int64_t m, int64_t col, const float* wf) {
    const float* x[kWeightOnlyRows];
    __m256 acc[kWeightOnlyRows][2];
    tile_rows<kWeightOnlyRows, R>(a.x, a.ldx, m, x);
    zero_tile(acc);
    const int64_t k = a.w->k;
    for (int64_t kk = 0; kk < k; ++kk, wf += 16) {
        const __m256 w0 = _mm256_load_ps(wf);
        const __m256 w1 = _mm256_load_ps(wf + 8);
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) fma_row(acc[r][0], acc[r][1], x[r] + kk, w0, w1);
    }
    const __m256 s0 = _mm256_load_ps(a.w->scales + col);
    const __m256 s1 = _mm256_load_ps(a.w->scales + col + 8);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
        finish_store_avx2(a, m + r, col, a.w->n, _mm256_mul_ps(acc[r][0], s0));
        finish_store_avx2(a, m + r, col + 8, a.w->n, _mm256_mul_ps(acc[r][1], s1));
    }
}

}  // namespace

/// Weight-only loop nest: each half-panel is widened to fp32 once per task (k x 64 bytes: 96 KiB
/// at k = 1536, L2), then the block's rows stream past it. Widening in the k loop instead cost
/// three integer ops per 8 weights next to the FMAs (55-65 GFLOP/s on Zen 3); once per 64 rows it
/// is about 2% of the FMAs.
void int8_wo_block_avx2(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    const tw_packed_weights& w = *a.w;
    auto* wf = static_cast<float*>(thread_scratch(
        static_cast<size_t>(w.k_groups * 4 * 16) * sizeof(float), ScratchSlot::kWidenedWeights));
    if (wf == nullptr) {  // no memory for the widened panel: the portable kernel needs none
        int8_wo_block_portable(a, m0, m1, p0, p1);
        return;
    }
    for (int64_t p = p0; p < p1; ++p) {
        for (int half = 0; half < 2; ++half) {
            const int64_t col = p * kPanel + half * 16;
            if (col >= w.n) break;
            widen_half_panel(w, p, half, wf);
            int64_t m = m0;
            for (; m + kWeightOnlyRows <= m1; m += kWeightOnlyRows) {
                weight_only_tile<kWeightOnlyRows>(a, m, col, wf);
            }
            with_rows(m1 - m, [&](auto r) { weight_only_tile<decltype(r)::value>(a, m, col, wf); });
        }
    }
}

TW_AVX2_BLOCK(int8_block_avx_vnni, avx_vnni_tile, kRows)
// (Measured on Zen 3, 2 threads: the 5-row sign tile beat 2 rows x 32 columns, 4 x 16 and 3 x 16
// by 5-15%.)
TW_AVX2_BLOCK(int8_block_avx2_maddubs, sign_tile, kSignRows)
TW_AVX2_BLOCK(int8_block_avx2_reduced, reduced_tile, kReducedRows)
#undef TW_AVX2_BLOCK

void quantize_rows_avx2(const float* x, int64_t ldx, const float* mult, int64_t m0, int64_t m1,
                        int64_t k, tw_activation_quant mode, int32_t qmax, uint8_t* q, int64_t ldq,
                        float* scales, int32_t* zeros) {
    for (int64_t m = m0; m < m1; ++m) {
        const float* row = x + m * ldx;
        __m256 lo = _mm256_setzero_ps();
        __m256 hi = _mm256_setzero_ps();
        __m256 probe = _mm256_setzero_ps();  // sums x - x: NaN once a value is NaN or infinite
        int64_t i = 0;
        for (; i + 8 <= k; i += 8) {
            __m256 v = _mm256_loadu_ps(row + i);
            if (mult) v = _mm256_mul_ps(v, _mm256_loadu_ps(mult + i));
            lo = _mm256_min_ps(lo, v);
            hi = _mm256_max_ps(hi, v);
            probe = _mm256_add_ps(probe, _mm256_sub_ps(v, v));
        }
        float lo_s = 0.0f, hi_s = 0.0f, probe_s = 0.0f;
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, lo);
        for (float v : lanes) lo_s = v < lo_s ? v : lo_s;
        _mm256_store_ps(lanes, hi);
        for (float v : lanes) hi_s = v > hi_s ? v : hi_s;
        _mm256_store_ps(lanes, probe);
        for (float v : lanes) probe_s += v;
        for (; i < k; ++i) {
            const float v = mult ? row[i] * mult[i] : row[i];
            lo_s = v < lo_s ? v : lo_s;
            hi_s = v > hi_s ? v : hi_s;
            probe_s += v - v;
        }
        if (quantize_nonfinite_row(probe_s, mode, qmax, k, q + m * ldq, ldq, &scales[m],
                                   &zeros[m])) {
            continue;
        }
        float scale;
        int32_t zero;
        const float inv = quant_params(lo_s, hi_s, mode, qmax, &scale, &zero);
        scales[m] = scale;
        zeros[m] = zero;
        const __m256 vinv = _mm256_set1_ps(inv);
        const __m256i vzero = _mm256_set1_epi32(zero);
        const __m256i vmax = _mm256_set1_epi32(qmax);
        uint8_t* out = q + m * ldq;
        for (i = 0; i < k; i += 8) {
            const __m256i mask = column_mask_avx2(i, k);
            __m256 v = _mm256_maskload_ps(row + i, mask);
            if (mult) v = _mm256_mul_ps(v, _mm256_maskload_ps(mult + i, mask));
            __m256i c = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v, vinv)), vzero);
            c = _mm256_min_epi32(_mm256_max_epi32(c, _mm256_setzero_si256()), vmax);
            // 8 int32 in [0, 255] -> 8 bytes: pack to 16 bits, then to 8 bits.
            const __m128i w16 =
                _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
            const __m128i b8 = _mm_packus_epi16(w16, w16);
            if (i + 8 <= k) {
                _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), b8);
            } else {
                alignas(16) uint8_t bytes[16];
                _mm_store_si128(reinterpret_cast<__m128i*>(bytes), b8);
                for (int64_t j = i; j < k; ++j) out[j] = bytes[j - i];
            }
        }
        for (i = k; i < ldq; ++i) out[i] = 0;
    }
}

}  // namespace tw
