// The fused attention loop nest, written once over a SIMD "traits" type and instantiated by each
// ISA file (attention_avx512.cpp, attention_avx2.cpp). Include it only from those files, inside
// their anonymous namespace, so each ISA gets its own private copy; the includer includes the
// headers listed below first, so these includes are no-ops there.
//
// The math (FlashAttention-2 forward, one query tile against all key tiles):
//
//   for each key tile Kj, Vj that intersects the tile's sliding window (all tiles without one):
//     S   = Q·Kjᵀ · scale·log2(e) (+ (bias + rel_bias)·log2(e), masked entries -inf)
//     m'  = max(m, rowmax(S));  α = 2^(m - m')
//     P   = 2^(S - m');          l = α·l + rowsum(P)
//     O   = α·O + P·Vj;          m = m'
//   O /= l;  lse = (m + log2 l)·ln 2
//
// Working in base 2 turns each exponential into one exp2. Lazy rescaling (as FlashAttention-4's
// conditional rescale): once every query lane has a finite running max m, an unmasked tile keeps m
// as its reference unless one of its scores exceeds m by more than kLazyRescale (2^8: P and l stay
// far from overflow), so α = 1 and the exponentials are taken in the score micro-kernel's registers
// (max, exp2 and sum fused into its epilogue) instead of in extra passes over the stored tile; a
// tile that does exceed it (rare after the first) is scored again and takes the exact update. The
// layout choice that makes it fast: queries run along SIMD lanes everywhere. We compute Sᵀ = Kj·Qᵀ
// (a key row times the packed, pre-scaled Qᵀ tile), so the running max, sum and rescale factor of W
// queries are one vector and the online softmax needs no horizontal reduction; the accumulator is
// Oᵀ (head_dim rows of query lanes), so the α rescale is a vertical multiply folded into the P·V
// micro-kernel. K and V rows are read in place through their strides (fp32) or converted once per
// call (fp16/bf16 data, emulated bf16 compute). Q and O are transposed once per query tile, W x W
// blocks at a time in registers (pack_queries, write_output): at encoder lengths (N = 128) these
// per-tile costs are a large part of the whole, so they are vector code too.
//
// bf16 compute uses pair dot products (vdpbf16ps: acc += a[2i]·b[2i] + a[2i+1]·b[2i+1]): Qᵀ is
// packed as pairs along head_dim, K rows as bf16 pairs broadcast 32 bits at a time; for P·V, P is
// packed as pairs of consecutive keys and V as interleaved pairs of consecutive key rows. K and V
// are converted to those layouts once per call (O(N·D) memory, half of fp32 K and V), not once per
// query tile: converting in the loop nest cost as much as the dot products themselves. Where a
// task is the only reader of its K/V head (short sequences), it converts them itself instead.

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

template <class S>
struct FlashAttention {
    using V = typename S::V;
    static constexpr int W = S::W;  // lanes per vector
    static constexpr int kMaxVectors = S::kMaxQueryVectors;
    static constexpr int kKernelVectors = S::kKernelQueryVectors;  // query vectors per micro-kernel
    // Query rows per tile. A tile wider than one micro-kernel call (AVX-512: 2 x 64 queries) reads
    // each K and V tile once for twice the queries, halving the K/V traffic from L3 at long
    // sequence lengths; the second call finds the K/V rows in L1.
    static constexpr int Br = W * kMaxVectors;
    // Keys per tile. The Sᵀ tile is Bc·Br floats: 32 KB for AVX-512 (Br = 128), 6 KB for AVX2
    // (Br = 24); with the Qᵀ tile (D·Br floats) it stays in L1/L2 while the P·V product re-reads Sᵀ
    // once per group of head-dim rows. A bigger tile only amortises the per-tile bookkeeping, which
    // lazy rescaling made small: Bc = 96 and 128 measured within run-to-run spread of 64 (Zen 5,
    // 2026-12-07, N = 512 and 2,048, fp32 and bf16).
    static constexpr int Bc = 64;
    static constexpr float kLog2e = 1.4426950408889634f;
    static constexpr float kLn2 = 0.6931471805599453f;
    // Lazy rescaling: a tile keeps the running max as its reference while no score exceeds it by
    // more than this (log2 units), so probabilities stay <= 2^8 and sums of them far from overflow.
    static constexpr float kLazyRescale = 8.0f;
    static constexpr float kInf = std::numeric_limits<float>::infinity();

    const tw_attention_params& p;
    bool bf16_dot;    // pair dot products on bf16 operands
    bool round_bf16;  // bf16 compute emulated: operands rounded to bf16, fp32 math
    // fp32 K and V the fp32 micro-kernels read: the inputs in place (fp32 data, fp32 compute), or
    // copies converted once per call (fp16/bf16 data, or bf16 compute emulated by rounding).
    const float* k_f32;
    const float* v_f32;
    int64_t k_f32_strides[3], v_f32_strides[3];
    float* kv_f32_copy;  // converted copy behind k_f32 / v_f32 (in the workspace), or nullptr
    int64_t query_tiles, splits, group;
    int64_t dp;         // head_dim rounded up to even (bf16 pairs)
    float* partials;    // split-KV partial results, or nullptr
    uint16_t* k_pairs;  // bf16 K rows [B][Hkv][kv_len][dp], or nullptr
    uint32_t* v_pairs;  // bf16 V pairs [B][Hkv][kv_pairs][D] of rows (2j, 2j+1), or nullptr
    int64_t kv_pairs;   // ceil(kv_len / 2)
    // bf16 K/V pairs converted by each task for its own keys, into its scratch, instead of once
    // per call into the workspace, when only one task reads each K/V head (one query tile, no
    // grouped heads: encoders at short lengths) and the pairs are small: the task then finds them
    // in L1/L2 rather than re-reading a call-wide copy from memory (encoder shape: -8%). With
    // several tiles per head the shared copy wins (N=512: +6% when converted per tile).
    bool local_pairs;
    static constexpr int64_t kLocalPairBytes = 256 * 1024;
    // Sliding window relative to the aligned query position (tw::window_span), and whether the
    // relative-position bias table holds -inf (a mask) within the distances this call reaches.
    tw::WindowSpan window;
    bool rel_bias_masks;

    // Per-task scratch, carved from tw::thread_scratch.
    struct Tiles {
        float* qt;     // [D][Br] fp32, or bf16 pairs [dp/2][Br][2] (as uint16)
        float* st;     // [Bc][Br]: scores, then probabilities
        float* ot;     // [D][Br]: unnormalised output
        float* m;      // [Br] running max (log2 units)
        float* l;      // [Br] running sum
        float* vc;     // converted V tile: [Bc][D] fp32 or [Bc/2][D] interleaved bf16 pairs
        uint16_t* pb;  // P as bf16 pairs [Bc/2][Br][2]
        float* tmp;    // [Br] bias gather
        float* tmax;   // [Br] lazy tiles: the tile's max score per query (log2 units)
        float* tsum;   // [Br] lazy tiles: the tile's sum of probabilities per query
        float* rb;     // [Br + Bc] relative-position bias of one tile by distance, log2 units
        uint16_t* kl;  // local_pairs: this task's bf16 K rows [kv_len][dp]
        uint32_t* vl;  // local_pairs: this task's bf16 V pairs [kv_pairs][D]
    };

    size_t local_pair_bytes() const {
        return sizeof(uint16_t) * size_t(p.kv_len * dp) +
               sizeof(uint32_t) * size_t(kv_pairs * p.head_dim);
    }

    size_t scratch_bytes() const {
        const int64_t D = p.head_dim;
        const size_t floats = size_t(dp) * Br + size_t(Bc) * Br + size_t(D) * Br + 5 * size_t(Br) +
                              2 * size_t(Bc) * size_t(dp) + size_t(Bc) * Br / 2 + size_t(Br + Bc) +
                              64;
        return floats * sizeof(float) + 8 * 64 + (local_pairs ? local_pair_bytes() : 0);
    }

    Tiles carve(void* base) const {
        auto align = [](char* ptr) {
            return reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(ptr) + 63) &
                                           ~uintptr_t(63));
        };
        char* c = align(static_cast<char*>(base));
        Tiles t;
        const int64_t D = p.head_dim;
        t.qt = reinterpret_cast<float*>(c);
        c = align(c + sizeof(float) * dp * Br);
        t.st = reinterpret_cast<float*>(c);
        c = align(c + sizeof(float) * Bc * Br);
        t.ot = reinterpret_cast<float*>(c);
        c = align(c + sizeof(float) * D * Br);
        t.m = reinterpret_cast<float*>(c);
        c += sizeof(float) * Br;
        t.l = reinterpret_cast<float*>(c);
        c += sizeof(float) * Br;
        t.tmp = reinterpret_cast<float*>(c);
        c = align(c + sizeof(float) * Br);
        t.tmax = reinterpret_cast<float*>(c);
        c = align(c + sizeof(float) * Br);
        t.tsum = reinterpret_cast<float*>(c);
        c = align(c + sizeof(float) * Br);
        t.rb = reinterpret_cast<float*>(c);
        c = align(c + sizeof(float) * (Br + Bc));
        t.vc = reinterpret_cast<float*>(c);
        c = align(c + sizeof(float) * Bc * dp);
        t.pb = reinterpret_cast<uint16_t*>(c);
        c = align(c + sizeof(uint16_t) * Bc * Br);
        t.kl = nullptr;
        t.vl = nullptr;
        if (local_pairs) {
            t.kl = reinterpret_cast<uint16_t*>(c);
            c = align(c + sizeof(uint16_t) * p.kv_len * dp);
            t.vl = reinterpret_cast<uint32_t*>(c);
        }
        return t;
    }

    // ---- micro-kernels ------------------------------------------------------------------------

    /// Where a score micro-kernel's R x NV results go: stored as scores, or (kExp, a lazy tile)
    /// stored as probabilities P = 2^(S - m_ref) with their max per lane merged into tmax and their
    /// sum into tsum, while still in registers.
    struct LazyTile {
        const V* m_ref;  // [NV] reference max per lane vector
        float* tmax;     // [NV * W]
        float* tsum;     // [NV * W]
        LazyTile shifted(int vectors) const {
            return {m_ref + vectors, tmax + vectors * W, tsum + vectors * W};
        }
    };

    template <int R, int NV, bool kExp>
    static void finish_scores(V (&acc)[R][NV], float* st, const LazyTile& lazy) {
        if constexpr (!kExp) {
            for (int r = 0; r < R; ++r)
                for (int c = 0; c < NV; ++c) S::store(st + r * Br + c * W, acc[r][c]);
        } else {
            for (int c = 0; c < NV; ++c) {
                V top = acc[0][c];
                for (int r = 1; r < R; ++r) top = S::max(top, acc[r][c]);  // NaN propagates
                S::store(lazy.tmax + c * W, S::max(S::load(lazy.tmax + c * W), top));
                V sum = S::load(lazy.tsum + c * W);
                for (int r = 0; r < R; ++r) {
                    const V pr = S::exp2(S::sub(acc[r][c], lazy.m_ref[c]));
                    S::store(st + r * Br + c * W, pr);
                    sum = S::add(sum, pr);
                }
                S::store(lazy.tsum + c * W, sum);
            }
        }
    }

    /// Sᵀ rows for R keys: st[r][lanes] = Σ_d K[r][d] · Qᵀ[d][lanes] (kExp: finish_scores).
    template <int R, int NV, bool kExp>
    static void scores_f32(const float* qt, int64_t D, const float* const* k, float* st,
                           const LazyTile& lazy) {
        V acc[R][NV];
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < NV; ++c) acc[r][c] = S::zero();
        for (int64_t d = 0; d < D; ++d) {
            V q[NV];
            for (int c = 0; c < NV; ++c) q[c] = S::load(qt + d * Br + c * W);
            for (int r = 0; r < R; ++r) {
                const V kb = S::set1(k[r][d]);
                for (int c = 0; c < NV; ++c) acc[r][c] = S::fma(kb, q[c], acc[r][c]);
            }
        }
        finish_scores<R, NV, kExp>(acc, st, lazy);
    }

    /// Same with bf16 pairs: k[r] holds dp/2 packed pairs, qt holds [dp/2][Br] pairs.
    template <int R, int NV, bool kExp>
    static void scores_bf16(const uint32_t* qt, int64_t pairs, const uint32_t* const* k, float* st,
                            const LazyTile& lazy) {
        V acc[R][NV];
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < NV; ++c) acc[r][c] = S::zero();
        for (int64_t d2 = 0; d2 < pairs; ++d2) {
            typename S::VB q[NV];
            for (int c = 0; c < NV; ++c) q[c] = S::load_pairs(qt + d2 * Br + c * W);
            for (int r = 0; r < R; ++r) {
                const typename S::VB kb = S::broadcast_pair(k[r][d2]);
                for (int c = 0; c < NV; ++c) acc[r][c] = S::dot_pairs(acc[r][c], q[c], kb);
            }
        }
        finish_scores<R, NV, kExp>(acc, st, lazy);
    }

    /// Oᵀ rows d..d+R: ot[r] = α·ot[r] + Σ_j V[j][d+r] · Pᵀ[j][lanes]. With kMasked, lanes whose
    /// probability is exactly 0 (masked keys) skip the product, so a NaN or Inf in the value of a
    /// hidden key cannot reach a query that does not see it (0·NaN would be NaN). Only tiles that
    /// contain masked scores pay for the lane masks. alpha == nullptr: no rescale (α = 1).
    template <int R, int NV, bool kMasked>
    static void values_f32(float* ot, const V* alpha, const float* pt, int64_t nk, const float* v,
                           int64_t v_stride) {
        V acc[R][NV];
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < NV; ++c) acc[r][c] = rescaled(ot + r * Br + c * W, alpha, c);
        for (int64_t j = 0; j < nk; ++j) {
            V pj[NV];
            typename S::M visible[NV];
            for (int c = 0; c < NV; ++c) {
                pj[c] = S::load(pt + j * Br + c * W);
                if constexpr (kMasked) visible[c] = S::nonzero(pj[c]);
            }
            const float* vj = v + j * v_stride;
            for (int r = 0; r < R; ++r) {
                const V vb = S::set1(vj[r]);
                for (int c = 0; c < NV; ++c) {
                    if constexpr (kMasked) {
                        acc[r][c] = S::fma_where(visible[c], vb, pj[c], acc[r][c]);
                    } else {
                        acc[r][c] = S::fma(vb, pj[c], acc[r][c]);
                    }
                }
            }
        }
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < NV; ++c) S::store(ot + r * Br + c * W, acc[r][c]);
    }

    static V rescaled(const float* ot, const V* alpha, int c) {
        return alpha ? S::mul(S::load(ot), alpha[c]) : S::load(ot);
    }

    /// Same with bf16 pairs: pb holds [nk/2][Br] pairs of P, vil [nk/2][D] pairs of V (row d at
    /// +d).
    template <int R, int NV>
    static void values_bf16(float* ot, const V* alpha, const uint32_t* pb, int64_t pairs,
                            const uint32_t* vil, int64_t D) {
        V acc[R][NV];
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < NV; ++c) acc[r][c] = rescaled(ot + r * Br + c * W, alpha, c);
        for (int64_t j2 = 0; j2 < pairs; ++j2) {
            typename S::VB pj[NV];
            for (int c = 0; c < NV; ++c) pj[c] = S::load_pairs(pb + j2 * Br + c * W);
            const uint32_t* vj = vil + j2 * D;
            for (int r = 0; r < R; ++r) {
                const typename S::VB vb = S::broadcast_pair(vj[r]);
                for (int c = 0; c < NV; ++c) acc[r][c] = S::dot_pairs(acc[r][c], pj[c], vb);
            }
        }
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < NV; ++c) S::store(ot + r * Br + c * W, acc[r][c]);
    }

    // Row-count dispatch: the micro-kernels take their row count R as a template argument.
    /// Calls tile(std::integral_constant<int, R>{}, first) over rows [0, count): tiles of MR rows,
    /// then one tile of the leftover rows.
    template <int MR, class Tile>
    static void for_row_tiles(int64_t count, Tile&& tile) {
        int64_t first = 0;
        for (; first + MR <= count; first += MR) tile(std::integral_constant<int, MR>{}, first);
        leftover_tile<MR - 1>(count - first, first, tile);
    }

    template <int R, class Tile>
    static void leftover_tile(int64_t rows, int64_t first, Tile& tile) {
        if constexpr (R > 0) {
            if (rows == R) {
                tile(std::integral_constant<int, R>{}, first);
            } else {
                leftover_tile<R - 1>(rows, first, tile);
            }
        }
    }

    template <int NV, bool kExp>
    static void scores_rows_f32(int rows, const float* qt, int64_t D, const float* const* k,
                                float* st, const LazyTile& lazy) {
        if constexpr (NV > kKernelVectors) {
            scores_rows_f32<kKernelVectors, kExp>(rows, qt, D, k, st, lazy);
            scores_rows_f32<NV - kKernelVectors, kExp>(rows, qt + kKernelVectors * W, D, k,
                                                       st + kKernelVectors * W,
                                                       lazy.shifted(kKernelVectors));
            return;
        }
        for_row_tiles<S::kScoreRows>(rows, [&](auto tile_rows, int64_t r) {
            scores_f32<decltype(tile_rows)::value, NV, kExp>(qt, D, k + r, st + r * Br, lazy);
        });
    }

    template <int NV, bool kExp>
    static void scores_rows_bf16(int rows, const uint32_t* qt, int64_t pairs,
                                 const uint32_t* const* k, float* st, const LazyTile& lazy) {
        if constexpr (NV > kKernelVectors) {
            scores_rows_bf16<kKernelVectors, kExp>(rows, qt, pairs, k, st, lazy);
            scores_rows_bf16<NV - kKernelVectors, kExp>(rows, qt + kKernelVectors * W, pairs, k,
                                                        st + kKernelVectors * W,
                                                        lazy.shifted(kKernelVectors));
            return;
        }
        for_row_tiles<S::kScoreRows>(rows, [&](auto tile_rows, int64_t r) {
            scores_bf16<decltype(tile_rows)::value, NV, kExp>(qt, pairs, k + r, st + r * Br, lazy);
        });
    }

    template <int NV, bool kMasked>
    static void values_rows_f32(int64_t D, float* ot, const V* alpha, const float* pt, int64_t nk,
                                const float* v, int64_t v_stride) {
        if constexpr (NV > kKernelVectors) {
            values_rows_f32<kKernelVectors, kMasked>(D, ot, alpha, pt, nk, v, v_stride);
            values_rows_f32<NV - kKernelVectors, kMasked>(D, ot + kKernelVectors * W,
                                                          alpha ? alpha + kKernelVectors : nullptr,
                                                          pt + kKernelVectors * W, nk, v, v_stride);
            return;
        }
        for_row_tiles<S::kValueRows>(D, [&](auto tile_rows, int64_t d) {
            values_f32<decltype(tile_rows)::value, NV, kMasked>(ot + d * Br, alpha, pt, nk, v + d,
                                                                v_stride);
        });
    }

    template <int NV>
    static void values_rows_f32(bool masked, int64_t D, float* ot, const V* alpha, const float* pt,
                                int64_t nk, const float* v, int64_t v_stride) {
        if (masked) {
            values_rows_f32<NV, true>(D, ot, alpha, pt, nk, v, v_stride);
        } else {
            values_rows_f32<NV, false>(D, ot, alpha, pt, nk, v, v_stride);
        }
    }

    template <int NV>
    static void values_rows_bf16(int64_t D, float* ot, const V* alpha, const uint32_t* pb,
                                 int64_t pairs, const uint32_t* vil) {
        if constexpr (NV > kKernelVectors) {
            values_rows_bf16<kKernelVectors>(D, ot, alpha, pb, pairs, vil);
            values_rows_bf16<NV - kKernelVectors>(D, ot + kKernelVectors * W,
                                                  alpha ? alpha + kKernelVectors : nullptr,
                                                  pb + kKernelVectors * W, pairs, vil);
            return;
        }
        for_row_tiles<S::kValueRows>(D, [&](auto tile_rows, int64_t d) {
            values_bf16<decltype(tile_rows)::value, NV>(ot + d * Br, alpha, pb, pairs, vil + d, D);
        });
    }

    /// True if none of the 2·count bf16 values in `v` is NaN or Inf (exponent bits all ones).
    static bool pairs_finite(const uint32_t* v, int64_t count) {
        uint32_t bad = 0;
        for (int64_t i = 0; i < count; ++i) {
            bad |= uint32_t((v[i] & 0x7f80u) == 0x7f80u) |
                   uint32_t((v[i] & 0x7f800000u) == 0x7f800000u);
        }
        return bad == 0;
    }

    // ---- data movement ------------------------------------------------------------------------

    /// Prefetches `count` rows of `bytes` bytes (none if count <= 0) at element `offset` of `base`,
    /// `stride` elements apart: the next block's strided Q or O rows, one block ahead, so their
    /// cache misses overlap the current block's transpose instead of following it.
    void prefetch_rows(const void* base, int64_t offset, int64_t stride, int64_t count,
                       int64_t bytes) const {
        if (count <= 0) return;
        const int64_t elem = p.dtype == TW_F32 ? 4 : 2;
        const char* row = static_cast<const char*>(base) + offset * elem;
        for (int64_t r = 0; r < count; ++r, row += stride * elem) {
            for (int64_t byte = 0; byte < bytes; byte += 64) S::prefetch(row + byte);
        }
    }

    /// Prefetches the fp32 K and V rows of keys [j0, j0 + nk) of K/V head (b, g).
    void prefetch_kv_f32(int64_t b, int64_t g, int64_t j0, int64_t nk) const {
        const int64_t bytes = 4 * p.head_dim;
        auto rows = [&](const float* base, const int64_t* strides) {
            const float* first = base + b * strides[0] + g * strides[1] + j0 * strides[2];
            const char* row = reinterpret_cast<const char*>(first);
            for (int64_t r = 0; r < nk; ++r, row += 4 * strides[2]) {
                for (int64_t byte = 0; byte < bytes; byte += 64) S::prefetch(row + byte);
            }
        };
        rows(k_f32, k_f32_strides);
        rows(v_f32, v_f32_strides);
    }

    /// Qᵀ tile, pre-scaled by scale·log2(e), for the ceil(nq / W) query vectors the tile uses
    /// (lanes past the last query are zero). Blocks of W queries x W head dims are loaded as rows
    /// (masked at the ends of D, converted from the storage type) and transposed in registers.
    void pack_queries(const Tiles& t, int64_t b, int64_t h, int64_t i0, int64_t nq) const {
        const int64_t D = p.head_dim;
        const V factor = S::set1(p.scale * kLog2e);
        const int64_t q_base = b * p.q_strides[0] + h * p.q_strides[1] + i0 * p.q_strides[2];
        const int64_t row_bytes = D * (p.dtype == TW_F32 ? 4 : 2);
        for (int64_t ig = 0; ig < nq; ig += W) {
            const int64_t rows = std::min<int64_t>(W, nq - ig);
            const int64_t row_base = q_base + ig * p.q_strides[2];
            prefetch_rows(p.q, row_base + W * p.q_strides[2], p.q_strides[2],
                          std::min<int64_t>(W, nq - ig - W), row_bytes);
            V block[W];
            if (bf16_dot) {
                // Pairs along head_dim: pair row d/2, lane i holds (d, d+1) of query i, pre-scaled
                // before rounding so the scores come out of the dot products in log2 units. A block
                // covers 2W dims; an odd D leaves a zero in the high half of its last pair.
                uint32_t* qt = reinterpret_cast<uint32_t*>(t.qt);
                for (int64_t d0 = 0; d0 < D; d0 += 2 * W) {
                    const int low = int(std::min<int64_t>(W, D - d0));
                    const int high = int(std::min<int64_t>(W, std::max<int64_t>(D - d0 - W, 0)));
                    for (int r = 0; r < W; ++r) {
                        if (r >= rows) {
                            block[r] = S::zero();
                            continue;
                        }
                        const int64_t offset = row_base + r * p.q_strides[2] + d0;
                        const V first = S::mul(S::load_row(p.q, p.dtype, offset, low), factor);
                        const V second =
                            high > 0 ? S::mul(S::load_row(p.q, p.dtype, offset + W, high), factor)
                                     : S::zero();
                        block[r] = S::to_pairs(first, second);
                    }
                    S::transpose(block);
                    const int pairs = (low + high + 1) / 2;
                    for (int c = 0; c < pairs; ++c) {
                        S::store(reinterpret_cast<float*>(qt + (d0 / 2 + c) * Br + ig), block[c]);
                    }
                }
                continue;
            }
            for (int64_t d0 = 0; d0 < D; d0 += W) {
                const int count = int(std::min<int64_t>(W, D - d0));
                for (int r = 0; r < W; ++r) {
                    if (r >= rows) {
                        block[r] = S::zero();
                        continue;
                    }
                    V x = S::load_row(p.q, p.dtype, row_base + r * p.q_strides[2] + d0, count);
                    if (round_bf16) x = S::round_to_bf16(x);  // emulated bf16: round, then scale
                    block[r] = S::mul(x, factor);
                }
                S::transpose(block);
                for (int c = 0; c < count; ++c) S::store(t.qt + (d0 + c) * Br + ig, block[c]);
            }
        }
    }

    /// K rows of a tile as pointers for the score micro-kernel: fp32 rows or bf16 pair rows (from
    /// k_head, the bf16 row of key `key0`).
    void key_rows(int64_t b, int64_t g, int64_t j0, int64_t nk, const uint16_t* k_head,
                  int64_t key0, const float** rows, const uint32_t** pair_rows) const {
        if (bf16_dot) {
            const uint16_t* k = k_head + (j0 - key0) * dp;
            for (int64_t j = 0; j < nk; ++j) {
                pair_rows[j] = reinterpret_cast<const uint32_t*>(k + j * dp);
            }
            return;
        }
        const float* k = k_f32 + b * k_f32_strides[0] + g * k_f32_strides[1];
        for (int64_t j = 0; j < nk; ++j) rows[j] = k + (j0 + j) * k_f32_strides[2];
    }

    /// Masks, bias and the online-softmax update of one Sᵀ tile; returns α per lane group in alpha,
    /// and whether any score of the tile was masked.
    template <int NV>
    bool softmax_update(const Tiles& t, int64_t b, int64_t h, int64_t i0, int64_t j0, int64_t nk,
                        V* alpha) const {
        const V neg_inf = S::set1(-std::numeric_limits<float>::infinity());
        const int64_t causal_offset = p.kv_len - p.q_len;
        V block_max[NV];
        for (int c = 0; c < NV; ++c) block_max[c] = neg_inf;
        bool masked = p.bias != nullptr || rel_bias_masks;  // a bias may hold -inf anywhere
        if (p.rel_bias) {
            // The tile's relative-position bias by distance, so that key row j reads its query
            // lanes as one contiguous run: query i0 + i, key j0 + j has distance
            // d = (j0 + j) - (i0 + i + offset), stored at rb[Bc - 1 - j + i] (reversed).
            const int64_t R = p.rel_bias_radius;
            const float* table = p.rel_bias + h * p.rel_bias_head_stride + R;
            const int64_t top = j0 + Bc - 1 - causal_offset - i0;
            for (int64_t y = 0; y < Br + Bc - 1; ++y) {
                t.rb[y] = table[std::min(std::max(top - y, -R), R)] * kLog2e;
            }
        }
        for (int64_t j = 0; j < nk; ++j) {
            float* row = t.st + j * Br;
            const int64_t key = j0 + j;
            if (p.key_padding_mask && p.key_padding_mask[b * p.kv_len + key] == 0) {
                for (int c = 0; c < NV; ++c) S::store(row + c * W, neg_inf);
                masked = true;
                continue;
            }
            if (p.bias) {
                const int64_t nq = std::min<int64_t>(Br, p.q_len - i0);
                const float* bias = p.bias + b * p.bias_strides[0] + h * p.bias_strides[1] +
                                    i0 * p.bias_strides[2] + key * p.bias_strides[3];
                for (int64_t i = 0; i < NV * W; ++i) {
                    t.tmp[i] = i < nq ? bias[i * p.bias_strides[2]] * kLog2e : 0.0f;
                }
                for (int c = 0; c < NV; ++c) {
                    S::store(row + c * W, S::add(S::load(row + c * W), S::load(t.tmp + c * W)));
                }
            }
            if (p.rel_bias) {
                const float* rb = t.rb + (Bc - 1 - j);
                for (int c = 0; c < NV; ++c) {
                    S::store(row + c * W, S::add(S::load(row + c * W), S::loadu(rb + c * W)));
                }
            }
            // Causal: query i sees key iff i >= key - offset; a window's right limit moves that
            // bound by window.right, its left limit hides queries i > key - offset + left. Only
            // tiles that cross a bound need lane masks.
            int64_t first_visible_query = std::numeric_limits<int64_t>::min();
            if (p.causal) first_visible_query = key - causal_offset;
            if (window.right < tw::kUnlimitedWindow) {
                first_visible_query =
                    std::max(first_visible_query, key - causal_offset - window.right);
            }
            if (first_visible_query > i0) {
                masked = true;
                for (int c = 0; c < NV; ++c) {
                    S::store(row + c * W, S::mask_lanes_below(S::load(row + c * W), i0 + c * W,
                                                              first_visible_query));
                }
            }
            if (window.left < tw::kUnlimitedWindow) {
                const int64_t last_visible_query = key - causal_offset + window.left;
                if (last_visible_query < i0 + NV * W - 1) {
                    masked = true;
                    for (int c = 0; c < NV; ++c) {
                        S::store(row + c * W, S::mask_lanes_above(S::load(row + c * W), i0 + c * W,
                                                                  last_visible_query));
                    }
                }
            }
            for (int c = 0; c < NV; ++c) block_max[c] = S::max(block_max[c], S::load(row + c * W));
        }
        // m' = max(m, block max). Lanes that have seen no visible key keep m = -inf; they use 0 as
        // the reference so that 2^(-inf - 0) = 0 rather than NaN.
        V m_ref[NV], sum[NV];
        for (int c = 0; c < NV; ++c) {
            const V m_old = S::load(t.m + c * W);
            const V m_new = S::max(m_old, block_max[c]);
            m_ref[c] = S::zero_if_neg_inf(m_new);
            alpha[c] = S::exp2(S::sub(m_old, m_ref[c]));
            S::store(t.m + c * W, m_new);
            sum[c] = S::zero();
        }
        for (int64_t j = 0; j < nk; ++j) {
            float* row = t.st + j * Br;
            for (int c = 0; c < NV; ++c) {
                const V pj = S::exp2(S::sub(S::load(row + c * W), m_ref[c]));
                S::store(row + c * W, pj);
                sum[c] = S::add(sum[c], pj);
            }
        }
        for (int c = 0; c < NV; ++c) {
            S::store(t.l + c * W, S::fma(S::load(t.l + c * W), alpha[c], sum[c]));
        }
        return masked;
    }

    /// True if every query lane of the tile sees every key of [j0, j0 + nk) with nothing added:
    /// no bias, no padding mask, and the tile inside the causal limit and the window.
    template <int NV>
    bool unmasked_tile(int64_t i0, int64_t j0, int64_t nk) const {
        if (p.bias || p.rel_bias || p.key_padding_mask) return false;
        const int64_t offset = p.kv_len - p.q_len;
        const int64_t last_key = j0 + nk - 1;
        if (p.causal && last_key - offset > i0) return false;
        if (window.right < tw::kUnlimitedWindow && last_key - offset - window.right > i0) {
            return false;
        }
        if (window.left < tw::kUnlimitedWindow && j0 - offset + window.left < i0 + NV * W - 1) {
            return false;
        }
        return true;
    }

    /// Scores a lazy tile (see the file's header): P = 2^(S - m) against the running max m, α = 1,
    /// l += rowsum(P). Returns false, leaving the tile to the exact update, if a score exceeds m by
    /// more than kLazyRescale.
    template <int NV>
    bool lazy_scores(const Tiles& t, int nk, const float* const* rows,
                     const uint32_t* const* pair_rows) const {
        V m_ref[NV];
        for (int c = 0; c < NV; ++c) {
            m_ref[c] = S::load(t.m + c * W);
            S::store(t.tmax + c * W, S::set1(-kInf));
            S::store(t.tsum + c * W, S::zero());
        }
        const LazyTile lazy{m_ref, t.tmax, t.tsum};
        if (bf16_dot) {
            scores_rows_bf16<NV, true>(nk, reinterpret_cast<const uint32_t*>(t.qt), dp / 2,
                                       pair_rows, t.st, lazy);
        } else {
            scores_rows_f32<NV, true>(nk, t.qt, p.head_dim, rows, t.st, lazy);
        }
        for (int i = 0; i < NV * W; ++i) {
            if (t.tmax[i] > t.m[i] + kLazyRescale) return false;
        }
        for (int c = 0; c < NV; ++c) {
            S::store(t.l + c * W, S::add(S::load(t.l + c * W), S::load(t.tsum + c * W)));
        }
        return true;
    }

    // ---- one task -----------------------------------------------------------------------------

    template <int NV>
    void run(const Tiles& t, int64_t b, int64_t h, int64_t tile, int64_t split,
             float* partial) const {
        const int64_t D = p.head_dim;
        const int64_t g = h / group;
        const int64_t i0 = tile * Br;
        const int64_t nq = std::min<int64_t>(Br, p.q_len - i0);

        // Keys this tile can see: valid length, causal limit of its last query, the sliding
        // window of its first and last queries (only key tiles inside it are visited), then this
        // split. The first key is even, so bf16 pairs of keys stay whole.
        const int64_t offset = p.kv_len - p.q_len;
        int64_t kv_end = p.kv_len;
        if (p.kv_valid_lengths) kv_end = std::min<int64_t>(kv_end, p.kv_valid_lengths[b]);
        if (p.causal) kv_end = std::min<int64_t>(kv_end, i0 + nq + offset);
        if (window.right < tw::kUnlimitedWindow) {
            kv_end = std::min<int64_t>(kv_end, i0 + nq + offset + window.right);
        }
        int64_t kv_first = 0;
        if (window.left < tw::kUnlimitedWindow) {
            kv_first = std::max<int64_t>(0, i0 + offset - window.left) / 2 * 2;
        }
        kv_end = std::max<int64_t>(kv_end, kv_first);
        const int64_t per_split = ((kv_end - kv_first + splits - 1) / splits + Bc - 1) / Bc * Bc;
        const int64_t kv_begin = std::min(kv_end, kv_first + split * per_split);
        kv_end = std::min(kv_end, kv_begin + per_split);

        // Keys far apart in memory (sequence-major layouts, fused QKV buffers) arrive as one cache
        // miss per row: ask for a key tile's K and V rows one step ahead (encoder shape: -3%).
        // Contiguous rows ([B, H, N, D]) are left to the hardware prefetcher (N=8192: +2-3% with).
        const bool prefetch_kv = !bf16_dot && (k_f32_strides[2] != D || v_f32_strides[2] != D);
        if (prefetch_kv) prefetch_kv_f32(b, g, kv_begin, std::min<int64_t>(Bc, kv_end - kv_begin));
        pack_queries(t, b, h, i0, nq);
        std::memset(t.ot, 0, sizeof(float) * D * Br);
        for (int i = 0; i < Br; ++i) {
            t.m[i] = -std::numeric_limits<float>::infinity();
            t.l[i] = 0.0f;
        }
        const int64_t v_base = b * p.v_strides[0] + g * p.v_strides[1];
        const int64_t bg = b * p.kv_heads + g;  // index of this K/V head in the converted copies
        const float* rows[Bc];
        const uint32_t* pair_rows[Bc];
        V alpha[NV];
        bool lazy_ready = false;  // every lane's running max finite: lazy tiles may start
        // bf16 pairs: K row of key `key0` and V pair of keys (key0, key0 + 1); key0 is even.
        const uint16_t* k_head = nullptr;
        const uint32_t* v_head = nullptr;
        int64_t key0 = 0;
        if (bf16_dot && local_pairs) {
            convert_pairs(b, g, kv_begin, kv_end, t.kl, t.vl);
            k_head = t.kl;
            v_head = t.vl;
            key0 = kv_begin;
        } else if (bf16_dot) {
            k_head = k_pairs + bg * p.kv_len * dp;
            v_head = v_pairs + bg * kv_pairs * D;
        }
        tw::count_key_tiles((kv_end - kv_begin + Bc - 1) / Bc);
        for (int64_t j0 = kv_begin; j0 < kv_end; j0 += Bc) {
            const int64_t nk = std::min<int64_t>(Bc, kv_end - j0);
            if (prefetch_kv && j0 + Bc < kv_end) {
                prefetch_kv_f32(b, g, j0 + Bc, std::min<int64_t>(Bc, kv_end - j0 - Bc));
            }
            key_rows(b, g, j0, nk, k_head, key0, rows, pair_rows);
            const V* tile_alpha = nullptr;  // lazy tiles: no rescale
            bool masked = false;
            if (!lazy_ready || !unmasked_tile<NV>(i0, j0, nk) ||
                !lazy_scores<NV>(t, int(nk), rows, pair_rows)) {
                if (bf16_dot) {
                    scores_rows_bf16<NV, false>(int(nk), reinterpret_cast<const uint32_t*>(t.qt),
                                                dp / 2, pair_rows, t.st, {});
                } else {
                    scores_rows_f32<NV, false>(int(nk), t.qt, D, rows, t.st, {});
                }
                masked = softmax_update<NV>(t, b, h, i0, j0, nk, alpha);
                tile_alpha = alpha;
                lazy_ready = true;
                for (int i = 0; i < NV * W; ++i) lazy_ready &= t.m[i] > -kInf;
            }
            // Pair dot products cannot skip single masked lanes: a masked key's zero probability
            // times a NaN or Inf value would be NaN. The call-wide V pairs also hold the key after
            // an odd visible end (valid length, causal limit) in the odd half of the last pair.
            // Such tiles still take the pair product when the tile's V pairs are all finite
            // (then 0·v = 0 exactly: sliding-window and causal edge tiles keep the bf16 rate);
            // otherwise they take the fp32 product of their own rows below.
            const bool pair_past_end = bf16_dot && !local_pairs && (nk & 1) && j0 + nk < p.kv_len;
            const int64_t pairs = (nk + 1) / 2;
            const uint32_t* vil = bf16_dot ? v_head + (j0 - key0) / 2 * D : nullptr;  // j0 even
            if (bf16_dot && ((!masked && !pair_past_end) || pairs_finite(vil, pairs * D))) {
                for (int64_t j2 = 0; j2 < pairs; ++j2) {
                    const float* even = t.st + (2 * j2) * Br;
                    const float* odd = (2 * j2 + 1 < nk) ? even + Br : nullptr;
                    for (int c = 0; c < NV; ++c) {
                        S::pack_pairs(even + c * W, odd ? odd + c * W : nullptr,
                                      t.pb + (j2 * Br + c * W) * 2);
                    }
                }
                values_rows_bf16<NV>(D, t.ot, tile_alpha, reinterpret_cast<const uint32_t*>(t.pb),
                                     pairs, vil);
            } else if (!bf16_dot) {
                values_rows_f32<NV>(
                    masked, D, t.ot, tile_alpha, t.st, nk,
                    v_f32 + b * v_f32_strides[0] + g * v_f32_strides[1] + j0 * v_f32_strides[2],
                    v_f32_strides[2]);
            } else {
                // Masked tiles under bf16 compute whose V pairs hold a NaN or Inf: V (with its
                // bf16 rounding) goes through the fp32 masked product.
                for (int64_t j = 0; j < nk; ++j) {
                    S::convert_row_f32(p.v, p.dtype, v_base + (j0 + j) * p.v_strides[2], D, true,
                                       t.vc + j * D);
                }
                values_rows_f32<NV>(masked, D, t.ot, tile_alpha, t.st, nk, t.vc, D);
            }
        }

        if (partial != nullptr) {
            // Split-KV: keep m, l and the unnormalised Oᵀ for the combine step.
            std::memcpy(partial, t.m, sizeof(float) * Br);
            std::memcpy(partial + Br, t.l, sizeof(float) * Br);
            std::memcpy(partial + 2 * Br, t.ot, sizeof(float) * D * Br);
            return;
        }
        write_output(b, h, i0, nq, t.m, t.l, t.ot);
    }

    /// O rows from Oᵀ: O[i][d] = Oᵀ[d][i] / l[i]; rows that saw no key get zeros. Blocks of W
    /// head dims x W queries are scaled by 1/l (a lane vector), transposed in registers and
    /// stored as query rows (masked at the ends of D, converted to the storage type).
    void write_output(int64_t b, int64_t h, int64_t i0, int64_t nq, const float* m, const float* l,
                      const float* ot) const {
        const int64_t D = p.head_dim;
        const int64_t o_base = b * p.o_strides[0] + h * p.o_strides[1] + i0 * p.o_strides[2];
        const int64_t row_bytes = D * (p.dtype == TW_F32 ? 4 : 2);
        for (int64_t ig = 0; ig < nq; ig += W) {
            const int64_t rows = std::min<int64_t>(W, nq - ig);
            prefetch_rows(p.o, o_base + (ig + W) * p.o_strides[2], p.o_strides[2],
                          std::min<int64_t>(W, nq - ig - W), row_bytes);
            const V inv_l = S::inverse_or_zero(S::load(l + ig), S::load(m + ig));
            for (int64_t d0 = 0; d0 < D; d0 += W) {
                const int count = int(std::min<int64_t>(W, D - d0));
                V block[W];
                for (int c = 0; c < W; ++c) {
                    block[c] =
                        c < count ? S::mul(S::load(ot + (d0 + c) * Br + ig), inv_l) : S::zero();
                }
                S::transpose(block);
                for (int r = 0; r < rows; ++r) {
                    S::store_row(p.o, p.dtype, o_base + (ig + r) * p.o_strides[2] + d0, block[r],
                                 count);
                }
            }
        }
        if (p.lse) {
            const float neg_inf = -std::numeric_limits<float>::infinity();
            for (int64_t i = 0; i < nq; ++i) {
                p.lse[(b * p.q_heads + h) * p.q_len + i0 + i] =
                    m[i] == neg_inf ? neg_inf : (m[i] + std::log2(l[i])) * kLn2;
            }
        }
    }

    // ---- scheduling ---------------------------------------------------------------------------

    static void task_entry(void* ctx, int64_t task, int) {
        auto& self = *static_cast<FlashAttention*>(ctx);
        const tw_attention_params& p = self.p;
        // Consecutive tasks are neighbouring query tiles of one head, so the workers stream the
        // same K and V through the shared cache; within a head the heaviest tiles come first (with
        // causal masking the last query tiles see the most keys).
        const int64_t per_head = self.query_tiles * self.splits;
        const int64_t bh = task / per_head;
        const int64_t rest = task % per_head;
        const int64_t tile = self.query_tiles - 1 - rest / self.splits;
        const int64_t split = rest % self.splits;
        const int64_t h = bh % p.q_heads;
        const int64_t b = bh / p.q_heads;
        void* scratch = tw::thread_scratch(self.scratch_bytes());
        if (scratch == nullptr) return;  // checked up front; cannot happen for a smaller request
        Tiles t = self.carve(scratch);
        float* partial = nullptr;
        if (self.partials) {
            const int64_t index =
                ((b * p.q_heads + h) * self.query_tiles + tile) * self.splits + split;
            partial = self.partials + index * self.partial_floats();
        }
        const int64_t nq = std::min<int64_t>(Br, p.q_len - tile * Br);
        const int vectors = int((nq + W - 1) / W);
        self.template run_vectors<kMaxVectors>(vectors, t, b, h, tile, split, partial);
    }

    /// run<NV> for the tile's vector count (its last tile may be narrower).
    template <int NV>
    void run_vectors(int vectors, const Tiles& t, int64_t b, int64_t h, int64_t tile, int64_t split,
                     float* partial) const {
        if (vectors == NV) {
            run<NV>(t, b, h, tile, split, partial);
        } else if constexpr (NV > 1) {
            run_vectors<NV - 1>(vectors, t, b, h, tile, split, partial);
        }
    }

    int64_t partial_floats() const { return 2 * Br + p.head_dim * Br; }

    // Keys from which strided fp32 K/V are gathered into a contiguous copy (execute): measured on
    // Zen 5 (2026-12-07, [B, S, H, D] fp32, 8 heads, interleaved): N = 2,048 +4% (D = 64) and +7%
    // (D = 128), N = 8,192 +18% and +8%; at N = 512 the copy is not repaid (-12%).
    static constexpr int64_t kGatherKeys = 2048;
    // Shorter K/V are gathered too when their rows are a multiple of 4 KiB apart (D = 128 with 8
    // heads): such rows all fall into the same few L1 sets, so a key tile cannot stay in L1 between
    // its micro-kernel calls. It pays once each row is read by at least this many query tiles
    // (Zen 5, 2026-12-07, [B, S, H, D] fp32, H = 8, D = 128, three interleaved rounds: AVX2,
    // 24-query tiles, N = 512 +8% and N = 1,024 +14%; AVX-512 at N = 1,024, 8 tiles, -5%).
    static constexpr int64_t kGatherAliasedReads = 16;
    // The largest such copy (K and V together): beyond it the strided reads stay, so very long
    // calls keep their small extra memory (8 heads of 64 at N = 8,192 copy 32 MiB, ModernBERT-base
    // at 8,192 tokens 48 MiB; N = 32,768 is not gathered).
    static constexpr size_t kGatherMaxBytes = size_t(64) << 20;

    static constexpr int64_t kConvertKeys =
        256;  // keys per conversion task (even: pairs stay whole)

    /// A conversion task's keys: K/V head bg (batch · kv_heads + head), keys [j_begin, j_end).
    struct KeyChunk {
        int64_t bg, j_begin, j_end;
    };

    KeyChunk key_chunk(int64_t task) const {
        const int64_t chunks = (p.kv_len + kConvertKeys - 1) / kConvertKeys;
        const int64_t j_begin = (task % chunks) * kConvertKeys;
        return {task / chunks, j_begin, std::min(p.kv_len, j_begin + kConvertKeys)};
    }

    /// Converts one chunk of keys of one K/V head to fp32 (rounded to bf16 when emulating bf16).
    static void convert_f32_entry(void* ctx, int64_t task, int) {
        auto& self = *static_cast<FlashAttention*>(ctx);
        const tw_attention_params& p = self.p;
        const auto [bg, j_begin, j_end] = self.key_chunk(task);
        const int64_t b = bg / p.kv_heads, g = bg % p.kv_heads, D = p.head_dim;
        float* k_dst = self.kv_f32_copy;
        float* v_dst = self.kv_f32_copy + p.batch * p.kv_heads * p.kv_len * D;
        for (int64_t j = j_begin; j < j_end; ++j) {
            S::convert_row_f32(p.k, p.dtype,
                               b * p.k_strides[0] + g * p.k_strides[1] + j * p.k_strides[2], D,
                               self.round_bf16, k_dst + (bg * p.kv_len + j) * D);
            S::convert_row_f32(p.v, p.dtype,
                               b * p.v_strides[0] + g * p.v_strides[1] + j * p.v_strides[2], D,
                               self.round_bf16, v_dst + (bg * p.kv_len + j) * D);
        }
    }

    /// Converts keys [j_begin, j_end) of K/V head (b, g) to the bf16 pair layouts: K row j at
    /// k_dst + (j - j_begin)·dp (odd D padded with a zero), V rows (j, j+1) interleaved at
    /// v_dst + (j - j_begin)/2·D, the odd half zero past j_end. j_begin is even.
    void convert_pairs(int64_t b, int64_t g, int64_t j_begin, int64_t j_end, uint16_t* k_dst,
                       uint32_t* v_dst) const {
        const int64_t D = p.head_dim;
        const int64_t k_base = b * p.k_strides[0] + g * p.k_strides[1];
        const int64_t v_base = b * p.v_strides[0] + g * p.v_strides[1];
        for (int64_t j = j_begin; j < j_end; ++j) {
            uint16_t* dst = k_dst + (j - j_begin) * dp;
            S::convert_row_bf16(p.k, p.dtype, k_base + j * p.k_strides[2], D, dst);
            if (dp != D) dst[D] = 0;
        }
        for (int64_t j = j_begin; j < j_end; j += 2) {
            const int64_t even = v_base + j * p.v_strides[2];
            const int64_t odd = (j + 1 < j_end) ? even + p.v_strides[2] : -1;
            S::interleave_rows_bf16(p.v, p.dtype, even, odd, D, v_dst + (j - j_begin) / 2 * D);
        }
    }

    /// Converts one chunk of keys of one K/V head to the call-wide bf16 pair layouts. Chunks hold
    /// an even number of keys, so a pair never straddles two chunks.
    static void convert_entry(void* ctx, int64_t task, int) {
        auto& self = *static_cast<FlashAttention*>(ctx);
        const tw_attention_params& p = self.p;
        const auto [bg, j_begin, j_end] = self.key_chunk(task);
        self.convert_pairs(bg / p.kv_heads, bg % p.kv_heads, j_begin, j_end,
                           self.k_pairs + (bg * p.kv_len + j_begin) * self.dp,
                           self.v_pairs + (bg * self.kv_pairs + j_begin / 2) * p.head_dim);
    }

    /// Merges the splits of one query tile: weights 2^(m_s - m*) rescale each split's l and Oᵀ.
    static void combine_entry(void* ctx, int64_t index, int) {
        auto& self = *static_cast<FlashAttention*>(ctx);
        const tw_attention_params& p = self.p;
        const int64_t D = p.head_dim;
        const int64_t tile = index % self.query_tiles;
        const int64_t h = (index / self.query_tiles) % p.q_heads;
        const int64_t b = index / (self.query_tiles * p.q_heads);
        const float* first = self.partials + index * self.splits * self.partial_floats();
        float* merged =
            static_cast<float*>(tw::thread_scratch(sizeof(float) * self.partial_floats()));
        if (merged == nullptr) return;
        float* m = merged;
        float* l = merged + Br;
        float* ot = merged + 2 * Br;
        const float neg_inf = -std::numeric_limits<float>::infinity();
        for (int i = 0; i < Br; ++i) {
            float best = neg_inf;
            for (int64_t s = 0; s < self.splits; ++s) {
                const float ms = first[s * self.partial_floats() + i];
                if (ms > best || ms != ms) best = ms;
            }
            m[i] = best;
            l[i] = 0.0f;
            for (int64_t d = 0; d < D; ++d) ot[d * Br + i] = 0.0f;
            if (best == neg_inf) continue;
            for (int64_t s = 0; s < self.splits; ++s) {
                const float* part = first + s * self.partial_floats();
                if (part[i] == neg_inf) continue;
                const float w = std::exp2(part[i] - best);
                l[i] += w * part[Br + i];
                for (int64_t d = 0; d < D; ++d) ot[d * Br + i] += w * part[2 * Br + d * Br + i];
            }
        }
        const int64_t nq = std::min<int64_t>(Br, p.q_len - tile * Br);
        self.write_output(b, h, tile * Br, nq, m, l, ot);
    }

    tw_status execute() {
        const int64_t D = p.head_dim;
        dp = (D + 1) / 2 * 2;
        group = p.q_heads / p.kv_heads;
        query_tiles = (p.q_len + Br - 1) / Br;
        // Split the keys when there are too few (batch, head, query tile) tasks to keep every
        // worker busy (decoding, single sequences): each split handles >= 4 key tiles.
        const int64_t tasks = p.batch * p.q_heads * query_tiles;
        const int64_t workers = tw::num_workers();
        splits = 1;
        // Keys one query tile can see at most: all of them, or its sliding window.
        const int64_t span =
            std::min<int64_t>(p.kv_len, std::min<int64_t>(window.left, p.kv_len) +
                                            std::min<int64_t>(window.right, p.kv_len) + Br + 2);
        if (tasks < 2 * workers) {
            splits = std::min<int64_t>((4 * workers + tasks - 1) / tasks,
                                       (span + 4 * Bc - 1) / (4 * Bc));
            splits = std::max<int64_t>(splits, 1);
        }
        kv_pairs = (p.kv_len + 1) / 2;
        local_pairs =
            bf16_dot && query_tiles * group == 1 && local_pair_bytes() <= size_t(kLocalPairBytes);
        if (tw::thread_scratch(scratch_bytes()) == nullptr) {
            return tw::fail(TW_ERR_OUT_OF_MEMORY, "attention: cannot allocate %zu bytes of scratch",
                            scratch_bytes());
        }
        // Per-call buffers (split-KV partials, converted K and V) come from one workspace the
        // calling thread keeps between calls: a fresh allocation per call page-faults on first
        // touch, which cost more than the conversion itself at encoder sizes.
        const int64_t heads = p.batch * p.kv_heads;
        // Long fp32 K/V read through row strides (sequence-major layouts, fused QKV buffers):
        // every query tile walks all of a head's key rows, each in its own stretch of memory
        // (D = 128, 8 heads: one 4 KiB page per row), so they are gathered into a contiguous copy
        // once per call when several tiles share each head.
        const int64_t row_readers = query_tiles * group;  // query tiles that read each K/V row
        const bool aliased_rows =
            (p.k_strides[2] * 4) % 4096 == 0 || (p.v_strides[2] * 4) % 4096 == 0;
        const bool gather_kv =
            p.dtype == TW_F32 && !bf16_dot && !round_bf16 &&
            (p.k_strides[2] != D || p.v_strides[2] != D) && row_readers > 1 &&
            (p.kv_len >= kGatherKeys || (aliased_rows && row_readers >= kGatherAliasedReads)) &&
            2 * sizeof(float) * size_t(p.batch * p.kv_heads * p.kv_len * D) <= kGatherMaxBytes;
        const bool convert_f32 = !bf16_dot && (p.dtype != TW_F32 || round_bf16 || gather_kv);
        auto padded = [](size_t bytes) { return (bytes + 63) / 64 * 64; };
        const size_t partial_bytes =
            splits > 1 ? padded(sizeof(float) * size_t(tasks * splits * partial_floats())) : 0;
        const bool global_pairs = bf16_dot && !local_pairs;
        const size_t kv_f32_bytes =
            convert_f32 ? padded(2 * sizeof(float) * size_t(heads * p.kv_len * D)) : 0;
        const size_t k_pair_bytes =
            global_pairs ? padded(sizeof(uint16_t) * size_t(heads * p.kv_len * dp)) : 0;
        const size_t v_pair_bytes =
            global_pairs ? padded(sizeof(uint32_t) * size_t(heads * kv_pairs * D)) : 0;
        const size_t workspace_bytes = partial_bytes + kv_f32_bytes + k_pair_bytes + v_pair_bytes;
        char* workspace = nullptr;
        if (workspace_bytes > 0) {
            workspace = static_cast<char*>(tw::attention_workspace(workspace_bytes));
            if (workspace == nullptr) {
                return tw::fail(TW_ERR_OUT_OF_MEMORY,
                                "attention: cannot allocate %zu bytes of workspace",
                                workspace_bytes);
            }
        }
        partials = splits > 1 ? reinterpret_cast<float*>(workspace) : nullptr;
        kv_f32_copy = convert_f32 ? reinterpret_cast<float*>(workspace + partial_bytes) : nullptr;
        char* pair_base = workspace + partial_bytes + kv_f32_bytes;
        k_pairs = global_pairs ? reinterpret_cast<uint16_t*>(pair_base) : nullptr;
        v_pairs = global_pairs ? reinterpret_cast<uint32_t*>(pair_base + k_pair_bytes) : nullptr;
        k_f32 = static_cast<const float*>(p.k);
        v_f32 = static_cast<const float*>(p.v);
        std::memcpy(k_f32_strides, p.k_strides, sizeof(k_f32_strides));
        std::memcpy(v_f32_strides, p.v_strides, sizeof(v_f32_strides));
        const int64_t chunks = (p.kv_len + kConvertKeys - 1) / kConvertKeys;
        if (convert_f32) {
            k_f32 = kv_f32_copy;
            v_f32 = kv_f32_copy + heads * p.kv_len * D;
            const int64_t strides[3] = {p.kv_heads * p.kv_len * D, p.kv_len * D, D};
            std::memcpy(k_f32_strides, strides, sizeof(strides));
            std::memcpy(v_f32_strides, strides, sizeof(strides));
            tw::parallel_for(heads * chunks, &FlashAttention::convert_f32_entry, this);
        }
        if (global_pairs) tw::parallel_for(heads * chunks, &FlashAttention::convert_entry, this);
        tw::parallel_for(tasks * splits, &FlashAttention::task_entry, this);
        if (partials) tw::parallel_for(tasks, &FlashAttention::combine_entry, this);
        if (workspace) tw::attention_workspace_trim();
        return tw::ok();
    }

    FlashAttention(const tw_attention_params& params, bool has_bf16_dot) : p(params) {
        const bool want_bf16 = p.compute == TW_BF16;
        bf16_dot = want_bf16 && has_bf16_dot;
        round_bf16 = want_bf16 && !has_bf16_dot;
        window = tw::window_span(p);
        rel_bias_masks = false;
        if (p.rel_bias) {
            // Distances stay below q_len + kv_len either way: with a larger radius the entries
            // past that (the clamped ends included) are never read.
            const int64_t R = p.rel_bias_radius;
            const int64_t reach = std::min<int64_t>(R, p.q_len + p.kv_len);
            for (int64_t h = 0; h < p.q_heads && !rel_bias_masks; ++h) {
                const float* table = p.rel_bias + h * p.rel_bias_head_stride + R;
                for (int64_t d = -reach; d <= reach; ++d) {
                    if (table[d] == -std::numeric_limits<float>::infinity()) {
                        rel_bias_masks = true;
                        break;
                    }
                }
            }
        }
    }
};
