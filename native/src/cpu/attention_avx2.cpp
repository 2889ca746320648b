// Fused attention, AVX2 + FMA variant: 8 query lanes per vector, 24-query tiles, 4x3 register
// tiles (12 ymm accumulators of 16). AVX2 has no bf16 dot product: bf16 compute rounds the
// operands to bf16 and multiplies in fp32, which gives the same products (a bf16 x bf16 product is
// exact in fp32) with fp32 accumulation.
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

namespace tw {
namespace {

struct Avx2 {
    using V = __m256;
    using VB = __m256i;
    using M = __m256;  // lane mask: all ones or all zeros per lane
    static constexpr int W = 8;
    static constexpr int kKernelQueryVectors =
        3;  // 24 queries: 3 vectors x 4 rows = 12 accumulators
    static constexpr int kMaxQueryVectors = 3;
    static constexpr int kScoreRows = 4;
    static constexpr int kValueRows = 4;

    static V zero() { return _mm256_setzero_ps(); }
    static V set1(float x) { return _mm256_set1_ps(x); }
    static V load(const float* ptr) { return _mm256_load_ps(ptr); }
    static V loadu(const float* ptr) { return _mm256_loadu_ps(ptr); }
    static void store(float* ptr, V x) { _mm256_store_ps(ptr, x); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
    // vmaxps returns its second operand when either is NaN: NaN scores propagate.
    static V max(V a, V b) { return _mm256_max_ps(a, b); }
    /// Lanes that are not exactly zero (NaN counts as non-zero, so NaN probabilities propagate).
    static M nonzero(V x) { return _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NEQ_UQ); }
    /// acc + a·b on the lanes of `lanes`, acc elsewhere.
    static V fma_where(M lanes, V a, V b, V acc) {
        return _mm256_blendv_ps(acc, _mm256_fmadd_ps(a, b, acc), lanes);
    }

    /// 2^x as in the AVX-512 variant, with 2^n built in the exponent field; inputs at or below -127
    /// give exactly 0.
    static V exp2(V x) {
        x = _mm256_max_ps(_mm256_set1_ps(-127.0f), x);
        const V n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const V f = _mm256_sub_ps(x, n);
        V poly = _mm256_set1_ps(1.5403530393381606e-4f);
        poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(1.3333558146428443e-3f));
        poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(9.6181291076284770e-3f));
        poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(5.5504108664821580e-2f));
        poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(2.4022650695910071e-1f));
        poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(6.9314718055994531e-1f));
        poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(1.0f));
        const __m256i exponent =
            _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
        return _mm256_mul_ps(poly, _mm256_castsi256_ps(exponent));
    }

    static V zero_if_neg_inf(V x) {
        const V is_neg_inf = _mm256_cmp_ps(x, _mm256_set1_ps(-__builtin_inff()), _CMP_EQ_OQ);
        return _mm256_blendv_ps(x, _mm256_setzero_ps(), is_neg_inf);
    }

    static V mask_lanes_below(V x, int64_t first, int64_t limit) {
        const int count =
            static_cast<int>(std::min<int64_t>(std::max<int64_t>(limit - first, 0), W));
        const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const V masked = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(count), lanes));
        return _mm256_blendv_ps(x, _mm256_set1_ps(-__builtin_inff()), masked);
    }

    /// Lanes whose query index (first + lane) is above `last` become -inf.
    static V mask_lanes_above(V x, int64_t first, int64_t last) {
        const int keep =
            static_cast<int>(std::min<int64_t>(std::max<int64_t>(last - first + 1, 0), W));
        const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const V kept = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(keep), lanes));
        return _mm256_blendv_ps(_mm256_set1_ps(-__builtin_inff()), x, kept);
    }

    // Pair dot products emulated with two FMAs (unused on this ISA: kept for completeness).
    static VB load_pairs(const uint32_t* ptr) {
        return _mm256_load_si256(reinterpret_cast<const __m256i*>(ptr));
    }
    static VB broadcast_pair(uint32_t pair) { return _mm256_set1_epi32(static_cast<int>(pair)); }
    static V dot_pairs(V acc, VB a, VB b) {
        const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
        const V a_even = _mm256_castsi256_ps(_mm256_slli_epi32(a, 16));
        const V b_even = _mm256_castsi256_ps(_mm256_slli_epi32(b, 16));
        const V a_odd = _mm256_castsi256_ps(_mm256_and_si256(a, high));
        const V b_odd = _mm256_castsi256_ps(_mm256_and_si256(b, high));
        return _mm256_fmadd_ps(a_odd, b_odd, _mm256_fmadd_ps(a_even, b_even, acc));
    }

    /// Up to 8 lanes of a row as fp32.
    static V load_row(const void* base, tw_dtype dtype, int64_t offset, int count) {
        if (count < W) {
            alignas(32) float tmp[W] = {};
            for (int i = 0; i < count; ++i) {
                switch (dtype) {
                    case TW_F16:
                        tmp[i] = fp16_to_float(static_cast<const uint16_t*>(base)[offset + i]);
                        break;
                    case TW_BF16:
                        tmp[i] = bf16_to_float(static_cast<const uint16_t*>(base)[offset + i]);
                        break;
                    default: tmp[i] = static_cast<const float*>(base)[offset + i]; break;
                }
            }
            return _mm256_load_ps(tmp);
        }
        switch (dtype) {
            case TW_F16:
                return _mm256_cvtph_ps(_mm_loadu_si128(
                    reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + offset)));
            case TW_BF16:
                return _mm256_castsi256_ps(_mm256_slli_epi32(
                    _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(
                        static_cast<const uint16_t*>(base) + offset))),
                    16));
            default: return _mm256_loadu_ps(static_cast<const float*>(base) + offset);
        }
    }

    /// Rounds to the nearest bf16 value (kept in fp32); NaN stays NaN.
    static V round_to_bf16(V x) {
        const __m256i bits = _mm256_castps_si256(x);
        const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
        const __m256i rounded =
            _mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
        const __m256i truncated =
            _mm256_and_si256(rounded, _mm256_set1_epi32(static_cast<int>(0xffff0000u)));
        return _mm256_blendv_ps(_mm256_castsi256_ps(truncated), x,
                                _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    }

    /// In-register transpose of an 8x8 block: lane c of rows[r] becomes lane r of rows[c].
    static void transpose(V* rows) {
        V t[W];
        for (int i = 0; i < W; i += 2) {
            t[i] = _mm256_unpacklo_ps(rows[i], rows[i + 1]);      // per 128-bit lane: a0 b0 a1 b1
            t[i + 1] = _mm256_unpackhi_ps(rows[i], rows[i + 1]);  //                    a2 b2 a3 b3
        }
        for (int j = 0; j < W; j += 4) {  // rows[j + k], 128-bit lane L: column 4L+k of rows j..j+3
            const __m256d lo0 = _mm256_castps_pd(t[j]), lo1 = _mm256_castps_pd(t[j + 2]);
            const __m256d hi0 = _mm256_castps_pd(t[j + 1]), hi1 = _mm256_castps_pd(t[j + 3]);
            rows[j] = _mm256_castpd_ps(_mm256_unpacklo_pd(lo0, lo1));
            rows[j + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(lo0, lo1));
            rows[j + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(hi0, hi1));
            rows[j + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(hi0, hi1));
        }
        for (int k = 0; k < 4; ++k) {
            t[k] = _mm256_permute2f128_ps(rows[k], rows[4 + k], 0x20);      // low lanes: column k
            t[4 + k] = _mm256_permute2f128_ps(rows[k], rows[4 + k], 0x31);  // high: column 4+k
        }
        for (int i = 0; i < W; ++i) rows[i] = t[i];
    }

    /// 8 bf16 pairs of 16 consecutive values x = (a, b): lane k holds bf16(x[2k]) low and
    /// bf16(x[2k+1]) high. Unused on this ISA (no pair dot product): kept scalar and simple.
    static V to_pairs(V a, V b) {
        alignas(32) float x[2 * W];
        alignas(32) uint32_t pairs[W];
        _mm256_store_ps(x, a);
        _mm256_store_ps(x + W, b);
        for (int k = 0; k < W; ++k) {
            pairs[k] = static_cast<uint32_t>(float_to_bf16(x[2 * k])) |
                       (static_cast<uint32_t>(float_to_bf16(x[2 * k + 1])) << 16);
        }
        return _mm256_load_ps(reinterpret_cast<const float*>(pairs));
    }

    /// Stores the first `count` lanes of x at base + offset in `dtype`, rounded to nearest even
    /// (bf16: integer arithmetic, NaN kept NaN as in float_to_bf16).
    static void store_row(void* base, tw_dtype dtype, int64_t offset, V x, int count) {
        if (dtype == TW_F32) {
            float* dst = static_cast<float*>(base) + offset;
            if (count == W) {
                _mm256_storeu_ps(dst, x);
            } else {
                const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                _mm256_maskstore_ps(dst, _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lanes), x);
            }
            return;
        }
        __m128i half;
        if (dtype == TW_F16) {
            half = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        } else {
            const __m256i bits = _mm256_castps_si256(x);
            const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
            const __m256i rounded = _mm256_srli_epi32(
                _mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
            const __m256i quiet_nan =
                _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
            const __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
            const __m256i value = _mm256_blendv_epi8(rounded, quiet_nan, is_nan);
            // 32 -> 16 bits: packus works within 128-bit lanes, the permute restores the order.
            half = _mm256_castsi256_si128(
                _mm256_permute4x64_epi64(_mm256_packus_epi32(value, value), 0x08));
        }
        uint16_t* dst = static_cast<uint16_t*>(base) + offset;
        if (count == W) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), half);
        } else {
            alignas(16) uint16_t tmp[W];
            _mm_store_si128(reinterpret_cast<__m128i*>(tmp), half);
            std::memcpy(dst, tmp, sizeof(uint16_t) * count);
        }
    }

    /// 1/l per lane, 0 on lanes whose running max is still -inf (rows that saw no key).
    static V inverse_or_zero(V l, V m) {
        const V seen = _mm256_cmp_ps(m, _mm256_set1_ps(-__builtin_inff()), _CMP_NEQ_UQ);
        return _mm256_and_ps(seen, _mm256_div_ps(_mm256_set1_ps(1.0f), l));
    }

    /// Starts bringing the cache line of `address` in (prefetcht0). An asm statement, not
    /// __builtin_prefetch: GCC treats that builtin as free of side effects and drops calls to
    /// functions that do nothing else.
    static void prefetch(const void* address) {
        asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(address)));
    }

    static void convert_row_f32(const void* base, tw_dtype dtype, int64_t offset, int64_t n,
                                bool round_bf16, float* dst) {
        int64_t d = 0;
        for (; d + W <= n; d += W) {
            V x = load_row(base, dtype, offset + d, W);
            _mm256_storeu_ps(dst + d, round_bf16 ? round_to_bf16(x) : x);
        }
        if (d < n) {
            alignas(32) float tmp[W];
            V x = load_row(base, dtype, offset + d, static_cast<int>(n - d));
            _mm256_store_ps(tmp, round_bf16 ? round_to_bf16(x) : x);
            std::memcpy(dst + d, tmp, sizeof(float) * (n - d));
        }
    }

    static void convert_row_bf16(const void* base, tw_dtype dtype, int64_t offset, int64_t n,
                                 uint16_t* dst) {
        for (int64_t d = 0; d < n; d += W) {
            const int count = static_cast<int>(std::min<int64_t>(W, n - d));
            alignas(32) float tmp[W];
            _mm256_store_ps(tmp, load_row(base, dtype, offset + d, count));
            for (int i = 0; i < count; ++i) dst[d + i] = float_to_bf16(tmp[i]);
        }
    }

    static void pack_pairs(const float* even, const float* odd, uint16_t* dst) {
        for (int i = 0; i < W; ++i) {
            dst[2 * i] = float_to_bf16(even[i]);
            dst[2 * i + 1] = odd ? float_to_bf16(odd[i]) : 0;
        }
    }

    static void interleave_rows_bf16(const void* base, tw_dtype dtype, int64_t even, int64_t odd,
                                     int64_t n, uint32_t* dst) {
        for (int64_t d = 0; d < n; d += W) {
            const int count = static_cast<int>(std::min<int64_t>(W, n - d));
            alignas(32) float a[W], b[W] = {};
            _mm256_store_ps(a, load_row(base, dtype, even + d, count));
            if (odd >= 0) _mm256_store_ps(b, load_row(base, dtype, odd + d, count));
            for (int i = 0; i < count; ++i) {
                dst[d + i] = static_cast<uint32_t>(float_to_bf16(a[i])) |
                             (static_cast<uint32_t>(float_to_bf16(b[i])) << 16);
            }
        }
    }
};

// The loop nest, privately instantiated for this ISA (its includes are already above).
#include "attention_tiles.h"

}  // namespace

tw_status attention_avx2(const tw_attention_params& p) {
    FlashAttention<Avx2> kernel(p, /*has_bf16_dot=*/false);
    return kernel.execute();
}

}  // namespace tw
