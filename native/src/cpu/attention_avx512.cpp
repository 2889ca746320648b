// Fused attention, AVX-512 variant: 16 query lanes per vector, 128-query tiles, 6x4 register
// tiles (24 zmm accumulators). bf16 compute uses vdpbf16ps where the CPU has AVX512-BF16;
// without it, operands are rounded to bf16 and multiplied in fp32.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>

#include "attention_kernels.h"
#include "half.h"
#include "runtime.h"
#include "simd_math_avx512.h"

namespace tw {
namespace {

struct Avx512 {
    using V = __m512;
    using VB = __m512bh;
    using M = __mmask16;  // lane mask
    static constexpr int W = 16;
    static constexpr int kKernelQueryVectors =
        4;  // 64 queries: 4 vectors x 6 rows = 24 accumulators
    static constexpr int kMaxQueryVectors =
        8;                                // 128-query tiles: two micro-kernel calls (256: no gain)
    static constexpr int kScoreRows = 6;  // keys per score micro-kernel
    static constexpr int kValueRows = 6;  // head-dim rows per P·V micro-kernel

    static V zero() { return _mm512_setzero_ps(); }
    static V set1(float x) { return _mm512_set1_ps(x); }
    static V load(const float* ptr) { return _mm512_load_ps(ptr); }
    static V loadu(const float* ptr) { return _mm512_loadu_ps(ptr); }
    static void store(float* ptr, V x) { _mm512_store_ps(ptr, x); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
    static V add(V a, V b) { return _mm512_add_ps(a, b); }
    static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
    // vmaxps returns its second operand when either is NaN: NaN scores propagate.
    static V max(V a, V b) { return _mm512_max_ps(a, b); }
    /// Lanes that are not exactly zero (NaN counts as non-zero, so NaN probabilities propagate).
    static M nonzero(V x) { return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NEQ_UQ); }
    /// acc + a·b on the lanes of `lanes`, acc elsewhere.
    static V fma_where(M lanes, V a, V b, V acc) { return _mm512_mask3_fmadd_ps(a, b, acc, lanes); }

    static V exp2(V x) { return exp2_avx512(x); }

    static V zero_if_neg_inf(V x) {
        const __mmask16 is_neg_inf =
            _mm512_cmp_ps_mask(x, _mm512_set1_ps(-__builtin_inff()), _CMP_EQ_OQ);
        return _mm512_mask_blend_ps(is_neg_inf, x, _mm512_setzero_ps());
    }

    /// Lanes whose query index (first + lane) is below `limit` become -inf.
    static V mask_lanes_below(V x, int64_t first, int64_t limit) {
        const int64_t count = std::min<int64_t>(std::max<int64_t>(limit - first, 0), W);
        const __mmask16 lanes = static_cast<__mmask16>((1u << count) - 1u);
        return _mm512_mask_mov_ps(x, lanes, _mm512_set1_ps(-__builtin_inff()));
    }

    /// Lanes whose query index (first + lane) is above `last` become -inf.
    static V mask_lanes_above(V x, int64_t first, int64_t last) {
        const int64_t keep = std::min<int64_t>(std::max<int64_t>(last - first + 1, 0), W);
        const __mmask16 lanes = static_cast<__mmask16>(~((1u << keep) - 1u));
        return _mm512_mask_mov_ps(x, lanes, _mm512_set1_ps(-__builtin_inff()));
    }

    static VB load_pairs(const uint32_t* ptr) { return (VB)_mm512_load_si512(ptr); }
    static VB broadcast_pair(uint32_t pair) {
        return (VB)_mm512_set1_epi32(static_cast<int>(pair));
    }
    static V dot_pairs(V acc, VB a, VB b) { return _mm512_dpbf16_ps(acc, a, b); }

    /// 16 lanes of a row as fp32, whatever the storage type; `count` <= 16 lanes are read.
    static V load_row(const void* base, tw_dtype dtype, int64_t offset, int count) {
        if (count == W) {
            switch (dtype) {
                case TW_F16:
                    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                        static_cast<const uint16_t*>(base) + offset)));
                case TW_BF16:
                    return _mm512_castsi512_ps(_mm512_slli_epi32(
                        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                            static_cast<const uint16_t*>(base) + offset))),
                        16));
                default: return _mm512_loadu_ps(static_cast<const float*>(base) + offset);
            }
        }
        const __mmask16 mask = static_cast<__mmask16>((1u << count) - 1u);
        switch (dtype) {
            case TW_F16:
                return _mm512_cvtph_ps(
                    _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(base) + offset));
            case TW_BF16:
                return _mm512_castsi512_ps(
                    _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(
                                          mask, static_cast<const uint16_t*>(base) + offset)),
                                      16));
            default: return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(base) + offset);
        }
    }

    /// Rounds to the nearest bf16 value (kept in fp32) with integer arithmetic only, so it runs on
    /// AVX-512 CPUs without AVX512-BF16. NaN inputs stay NaN.
    static V round_to_bf16(V x) {
        const __m512i bits = _mm512_castps_si512(x);
        const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
        const __m512i rounded =
            _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
        const __m512i truncated =
            _mm512_and_si512(rounded, _mm512_set1_epi32(static_cast<int>(0xffff0000u)));
        const __mmask16 is_nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
        return _mm512_mask_blend_ps(is_nan, _mm512_castsi512_ps(truncated), x);
    }

    /// In-register transpose of a 16x16 block: lane c of rows[r] becomes lane r of rows[c].
    /// Three shuffle stages: 32-bit interleave, 64-bit interleave, then 128-bit lanes (twice).
    static void transpose(V* rows) {
        V t[W];
        for (int i = 0; i < W; i += 2) {
            t[i] = _mm512_unpacklo_ps(rows[i], rows[i + 1]);      // per 128-bit lane: a0 b0 a1 b1
            t[i + 1] = _mm512_unpackhi_ps(rows[i], rows[i + 1]);  //                    a2 b2 a3 b3
        }
        for (int j = 0; j < W; j += 4) {  // rows[j + k], 128-bit lane L: column 4L+k of rows j..j+3
            const __m512d lo0 = _mm512_castps_pd(t[j]), lo1 = _mm512_castps_pd(t[j + 2]);
            const __m512d hi0 = _mm512_castps_pd(t[j + 1]), hi1 = _mm512_castps_pd(t[j + 3]);
            rows[j] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo0, lo1));
            rows[j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo0, lo1));
            rows[j + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(hi0, hi1));
            rows[j + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(hi0, hi1));
        }
        for (int k = 0; k < 4; ++k) {  // lanes 0 and 2 (0x88) or 1 and 3 (0xdd) of two vectors
            t[k] = _mm512_shuffle_f32x4(rows[k], rows[4 + k], 0x88);
            t[4 + k] = _mm512_shuffle_f32x4(rows[k], rows[4 + k], 0xdd);
            t[8 + k] = _mm512_shuffle_f32x4(rows[8 + k], rows[12 + k], 0x88);
            t[12 + k] = _mm512_shuffle_f32x4(rows[8 + k], rows[12 + k], 0xdd);
        }
        for (int k = 0; k < 4; ++k) {
            rows[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88);
            rows[8 + k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xdd);
            rows[4 + k] = _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0x88);
            rows[12 + k] = _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0xdd);
        }
    }

    /// 16 bf16 pairs of 32 consecutive values x = (a, b), as the bits of a vector: lane k holds
    /// bf16(x[2k]) in its low half and bf16(x[2k+1]) in its high half. Needs AVX512-BF16.
    static V to_pairs(V a, V b) { return _mm512_castsi512_ps((__m512i)_mm512_cvtne2ps_pbh(b, a)); }

    /// Stores the first `count` lanes of x at base + offset in `dtype`, rounded to nearest even.
    /// The bf16 rounding is integer arithmetic (any AVX-512 CPU), NaN kept NaN as in float_to_bf16.
    static void store_row(void* base, tw_dtype dtype, int64_t offset, V x, int count) {
        const __mmask16 mask = static_cast<__mmask16>((1u << count) - 1u);
        if (dtype == TW_F32) {
            float* dst = static_cast<float*>(base) + offset;
            // Masked stores are slow on some CPUs (AMD Zen 4/5): only partial rows use one.
            if (count == W) {
                _mm512_storeu_ps(dst, x);
            } else {
                _mm512_mask_storeu_ps(dst, mask, x);
            }
            return;
        }
        __m256i half;
        if (dtype == TW_F16) {
            half = _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        } else {
            const __m512i bits = _mm512_castps_si512(x);
            const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
            __m512i rounded = _mm512_srli_epi32(
                _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
            const __mmask16 is_nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
            rounded = _mm512_mask_or_epi32(rounded, is_nan, _mm512_srli_epi32(bits, 16),
                                           _mm512_set1_epi32(0x40));
            half = _mm512_cvtepi32_epi16(rounded);
        }
        uint16_t* dst = static_cast<uint16_t*>(base) + offset;
        if (count == W) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), half);
        } else {
            _mm256_mask_storeu_epi16(dst, mask, half);
        }
    }

    /// 1/l per lane, 0 on lanes whose running max is still -inf (rows that saw no key).
    static V inverse_or_zero(V l, V m) {
        const __mmask16 seen =
            _mm512_cmp_ps_mask(m, _mm512_set1_ps(-__builtin_inff()), _CMP_NEQ_UQ);
        return _mm512_maskz_div_ps(seen, _mm512_set1_ps(1.0f), l);
    }

    /// Starts bringing the cache line of `address` in (prefetcht0). An asm statement, not
    /// __builtin_prefetch: GCC treats that builtin as free of side effects and drops calls to
    /// functions that do nothing else.
    static void prefetch(const void* address) {
        asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(address)));
    }

    static void convert_row_f32(const void* base, tw_dtype dtype, int64_t offset, int64_t n,
                                bool round_bf16, float* dst) {
        for (int64_t d = 0; d < n; d += W) {
            const int count = static_cast<int>(std::min<int64_t>(W, n - d));
            V x = load_row(base, dtype, offset + d, count);
            if (round_bf16) x = round_to_bf16(x);
            // Masked stores are slow on some CPUs (AMD Zen 4/5): only the tail uses one.
            if (count == W) {
                _mm512_storeu_ps(dst + d, x);
            } else {
                _mm512_mask_storeu_ps(dst + d, static_cast<__mmask16>((1u << count) - 1u), x);
            }
        }
    }

    static void convert_row_bf16(const void* base, tw_dtype dtype, int64_t offset, int64_t n,
                                 uint16_t* dst) {
        for (int64_t d = 0; d < n; d += W) {
            const int count = static_cast<int>(std::min<int64_t>(W, n - d));
            const __mmask16 mask = static_cast<__mmask16>((1u << count) - 1u);
            const __m256i half =
                (__m256i)_mm512_cvtneps_pbh(load_row(base, dtype, offset + d, count));
            if (count == W) {
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + d), half);
            } else {
                _mm256_mask_storeu_epi16(dst + d, mask, half);
            }
        }
    }

    /// Interleaves bf16(a[i]), bf16(b[i]) into 16 pairs (b missing: zeros): each 32-bit lane gets
    /// bf16(a) in its low half and bf16(b) in its high half. Zero-extension and a shift, not a
    /// 16-bit permute, which is slow on some CPUs.
    static __m512i interleave(V a, V b) {
        const __m512i low = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(a));
        const __m512i high = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(b));
        return _mm512_or_si512(low, _mm512_slli_epi32(high, 16));
    }

    static void pack_pairs(const float* even, const float* odd, uint16_t* dst) {
        const V b = odd ? _mm512_load_ps(odd) : _mm512_setzero_ps();
        _mm512_store_si512(dst, interleave(_mm512_load_ps(even), b));
    }

    static void interleave_rows_bf16(const void* base, tw_dtype dtype, int64_t even, int64_t odd,
                                     int64_t n, uint32_t* dst) {
        for (int64_t d = 0; d < n; d += W) {
            const int count = static_cast<int>(std::min<int64_t>(W, n - d));
            const V a = load_row(base, dtype, even + d, count);
            const V b = odd >= 0 ? load_row(base, dtype, odd + d, count) : _mm512_setzero_ps();
            if (count == W) {
                _mm512_storeu_si512(dst + d, interleave(a, b));
            } else {
                _mm512_mask_storeu_epi32(dst + d, static_cast<__mmask16>((1u << count) - 1u),
                                         interleave(a, b));
            }
        }
    }
};

// The loop nest, privately instantiated for this ISA (its includes are already above).
#include "attention_tiles.h"

}  // namespace

tw_status attention_avx512(const tw_attention_params& p) {
    FlashAttention<Avx512> kernel(p, false);
    return kernel.execute();
}

tw_status attention_avx512_bf16_dot(const tw_attention_params& p) {
    FlashAttention<Avx512> kernel(p, true);
    return kernel.execute();
}

}  // namespace tw
