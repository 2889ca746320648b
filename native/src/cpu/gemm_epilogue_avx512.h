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

/// Prefetches into L2 the (up to three) lines of row `row`, columns [col, col + 32) of Y. A tile
/// issues this for its rows before its k loop, so that its stores at the end hit L2 instead of
/// waiting for memory in L1. Without it, rows of Y a multiple of 4 KiB apart (N = 1024, 2048, 3072,
/// 4096 fp32 columns) put all of a tile's output lines into one or two L1 sets, whose ways stay
/// held by those store misses while the panel's loads need them: Zen 5, M = 4096, N x K =
/// 3072 x 768 int8, 64-byte-aligned Y (interleaved runs of a scratch program), ran at 1,106-1,116
/// GOP/s, 1,268-1,318 with this (1,358 with the row stride padded by 64 bytes, no prefetch). Into
/// L2, not L1 (prefetchw): those same L1 sets could not hold the lines until the stores (measured:
/// no gain). Only for such strides: elsewhere the prefetches cost the short one-text products
/// (M = 106, int8 prequantized, 3 interleaved rounds: 1152 x 384 +4.8%, 384 x 384 +1.8% without).
static inline void prefetch_output_avx512(const GemmArgs& a, int64_t row, int64_t col) {
    if ((a.ldy * int64_t(sizeof(float))) % 4096 != 0) return;
    const char* first = reinterpret_cast<const char*>(a.y + row * a.ldy + col);
    _mm_prefetch(first, _MM_HINT_T1);
    _mm_prefetch(first + 64, _MM_HINT_T1);
    _mm_prefetch(first + 127, _MM_HINT_T1);  // the third line when the row is not 64-byte aligned
}

/// Adds the bias, applies GELU and adds the residual of row `row`, columns [col, col + 16).
static inline __m512 finish_avx512(const GemmArgs& a, int64_t row, int64_t col, __mmask16 mask,
                                   __m512 v) {
    if (a.bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, a.bias + col));
    if (a.epilogue & TW_EPILOGUE_GELU) v = gelu_avx512(v);
    if (a.epilogue & TW_EPILOGUE_RESIDUAL) {
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, a.residual + row * a.ld_residual + col));
    }
    return v;
}

/// Adds the bias, applies GELU, adds the residual and stores row `row`, columns [col, col + 16).
static inline void finish_store_avx512(const GemmArgs& a, int64_t row, int64_t col, __mmask16 mask,
                                       __m512 v) {
    if (mask == 0) return;
    _mm512_mask_storeu_ps(a.y + row * a.ldy + col, mask, finish_avx512(a, row, col, mask, v));
}

/// Stores 32 consecutive floats (lo then hi, lanes outside mask_lo / mask_hi not written) at `dst`
/// with cache-line-aligned stores. In a float row that is not 64-byte aligned (a std::vector's
/// large buffer starts 16 bytes past a page, as gemm_bench's Y does) each 16-float store would
/// straddle two lines; rotated by the misalignment, the 32 floats go out as a masked head, a full
/// line and a masked tail (two vpermps and a blend). Zen 5, M = 4096, 16-byte-offset Y,
/// interleaved runs of a scratch program, medians of 5: 1152 x 384 int8 1,225 -> 1,336 GOP/s,
/// 3072 x 768 fp32 352 -> 367 GFLOP/s, 1536 x 384 int8 unchanged. An aligned row (and a row not
/// even 4-byte aligned) keeps the two plain stores.
static inline void store_row32_avx512(float* dst, __mmask16 mask_lo, __mmask16 mask_hi, __m512 lo,
                                      __m512 hi) {
    const uintptr_t offset = reinterpret_cast<uintptr_t>(dst) & 63;
    if (offset == 0 || (offset & 3) != 0) {
        _mm512_mask_storeu_ps(dst, mask_lo, lo);
        _mm512_mask_storeu_ps(dst + 16, mask_hi, hi);
        return;
    }
    // s lanes into its line: lane j of a rotated vector holds element (j - s) mod 16.
    static const int32_t kRotation[32] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                          0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const unsigned s = static_cast<unsigned>(offset >> 2);
    const __m512i index = _mm512_loadu_si512(kRotation + 16 - s);
    const __m512 lo_r = _mm512_permutexvar_ps(index, lo);
    const __m512 hi_r = _mm512_permutexvar_ps(index, hi);
    // Column c of the 32 lands in lane (c + s) of the three lines from dst - s.
    const uint64_t columns = (static_cast<uint64_t>(mask_hi) << 16 | mask_lo) << s;
    const __mmask16 head = static_cast<__mmask16>(0xffffu << s);  // lanes of lo in the middle line
    // The first and last line may start before the row or end past the buffer: their lanes outside
    // it are masked off (never written, no fault), and the addresses are formed as integers.
    const uintptr_t line = reinterpret_cast<uintptr_t>(dst) - offset;
    _mm512_mask_store_ps(reinterpret_cast<void*>(line), static_cast<__mmask16>(columns), lo_r);
    _mm512_mask_store_ps(reinterpret_cast<void*>(line + 64), static_cast<__mmask16>(columns >> 16),
                         _mm512_mask_blend_ps(head, lo_r, hi_r));
    _mm512_mask_store_ps(reinterpret_cast<void*>(line + 128), static_cast<__mmask16>(columns >> 32),
                         hi_r);
}

/// finish_avx512 on both halves of row `row`, columns [col, col + 32), then store_row32_avx512.
static inline void finish_store_row32_avx512(const GemmArgs& a, int64_t row, int64_t col,
                                             __mmask16 mask_lo, __mmask16 mask_hi, __m512 lo,
                                             __m512 hi) {
    store_row32_avx512(a.y + row * a.ldy + col, mask_lo, mask_hi,
                       finish_avx512(a, row, col, mask_lo, lo),
                       finish_avx512(a, row, col + 16, mask_hi, hi));
}

}  // namespace tw
