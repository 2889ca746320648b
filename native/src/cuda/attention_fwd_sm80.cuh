// FlashAttention-2 style forward kernel on mma.sync tensor-core instructions (sm_80 and later).
//
// The math, for one (batch b, query head h) and a block of query rows i:
//   S_ij = scale * q_i . k_j                      (masked entries -inf)
//   m_i  = max_j S_ij,  l_i = sum_j exp(S_ij - m_i),  O_i = (1 / l_i) sum_j exp(S_ij - m_i) v_j
// computed over key tiles j0..j0+kBlockN with the online rescaling (log2 domain, exp2):
//   m' = max(m, rowmax(S_tile)),  alpha = 2^(c (m - m')),  P = 2^(c (S_tile - m'))   (c = log2 e)
//   l' = alpha l + rowsum(P),     O' = alpha O + P V_tile
// and at the end O /= l, lse = m + ln l (m in scaled units). The score tile S and P never leave
// registers.
//
// Work split: a thread block owns kBlockM = 16 * kMTiles * kWarps query rows of one (b, h); each
// warp owns 16 * kMTiles of them, one or two m16n8k16 A operands, so the warp's Q rows live in
// registers for the whole kernel and the softmax row statistics are reduced within 4 lanes.
// Key/value tiles of kBlockN rows are shared by all warps and double-buffered in shared memory with
// cp.async: the copy of tile t+1 runs while tile t is multiplied.
//
// Shared memory rows are head_dim halves (128 or 256 bytes) split in 16-byte chunks; chunk c of row
// r is stored at chunk c ^ (r & 7). ldmatrix reads 8 rows at one logical chunk, which this swizzle
// spreads over 8 distinct chunks, i.e. all 32 banks: conflict free without padding.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace twcuda {

/// Kernel arguments, already validated on the host (see attention_fwd.cu).
struct AttentionArgs {
    const void* q;
    const void* k;
    const void* v;
    void* o;
    float* lse;
    const int32_t* kv_valid_lengths;
    int64_t q_strides[3], k_strides[3], v_strides[3], o_strides[3];
    int q_len, kv_len, q_heads, group;  // group = q_heads / kv_heads
    int num_m_blocks;
    float scale_log2;  // scale * log2(e)
    int causal;
};

// ---- PTX wrappers
// --------------------------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/// 16-byte global -> shared copy; src_bytes = 0 fills the 16 bytes with zeros and reads nothing.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::);
}
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

/// Element-type specifics: the mma instruction and packing two floats into one register.
template <typename T>
struct Elem;

template <>
struct Elem<__half> {
    __device__ __forceinline__ static void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                               uint32_t b1) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
            "{%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    __device__ __forceinline__ static uint32_t pack(float lo, float hi) {
        __half2 h = __floats2half2_rn(lo, hi);
        return *reinterpret_cast<uint32_t*>(&h);
    }
};

template <>
struct Elem<__nv_bfloat16> {
    __device__ __forceinline__ static void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                               uint32_t b1) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
            "{%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    __device__ __forceinline__ static uint32_t pack(float lo, float hi) {
        __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
        return *reinterpret_cast<uint32_t*>(&h);
    }
};

template <bool kValue>
struct BoolTag {
    static constexpr bool value = kValue;
};

// ---- tile configuration
// --------------------------------------------------------------------------

template <typename T, int kHeadDim_, int kWarps_, int kMTiles_, int kBlockN_, int kMinBlocks_,
          bool kQInRegisters_ = true>
struct FwdTile {
    using Element = T;
    static constexpr int kHeadDim = kHeadDim_;
    static constexpr int kWarps = kWarps_;
    static constexpr int kThreads = 32 * kWarps;
    // Query rows per warp in m16 MMA tiles. Their Q fragments stay in registers (kMTiles *
    // kHeadDim / 2 per thread); every K/V fragment read from shared memory feeds kMTiles MMAs, so
    // two tiles halve the shared-memory reads and the per-tile bookkeeping per flop.
    static constexpr int kMTiles = kMTiles_;
    static constexpr int kWarpRows = 16 * kMTiles;
    static constexpr int kBlockM = kWarpRows * kWarps;
    // Keys per tile: large enough that a tile's mma work hides the next tile's copy, small enough
    // that the score tile (kMTiles * kBlockN / 2 fp32 registers per thread) leaves room for the
    // O accumulator (kMTiles * kHeadDim / 2).
    static constexpr int kBlockN = kBlockN_;
    // Blocks per SM the register allocation must allow (65536 / (threads * this) registers each).
    static constexpr int kMinBlocks = kMinBlocks_;
    static constexpr int kChunks = kHeadDim / 8;  // 16-byte chunks per row
    static constexpr int kTileElems = kBlockN * kHeadDim;
    // Q fragments in registers for the whole kernel, or (when two row tiles of Q would not leave
    // registers for O and S at D=128) re-read from shared memory at every k16 step, as
    // FlashAttention-2 does.
    static constexpr bool kQInRegisters = kQInRegisters_;
    // Stage 0 (K, V), then stage 1 (K, V), which Q uses once before tile 1 arrives when its
    // fragments live in registers; otherwise Q keeps a region of its own after the stages. The
    // epilogue stages the output through the same memory.
    static constexpr int kStage1Elems =
        !kQInRegisters || 2 * kTileElems > kBlockM* kHeadDim ? 2 * kTileElems : kBlockM* kHeadDim;
    static constexpr int kQElems = kQInRegisters ? 0 : kBlockM * kHeadDim;
    static constexpr int kSmemBytes =
        (2 * kTileElems + kStage1Elems + kQElems) * static_cast<int>(sizeof(T));
    static_assert(kHeadDim % 16 == 0 && kBlockN % 16 == 0, "mma shapes");
    static_assert((kBlockN * kChunks) % kThreads == 0, "whole copy rounds per tile");
};

/// Element offset of (row, 16-byte chunk) in a swizzled tile with kChunks chunks per row.
template <int kChunks>
__device__ __forceinline__ int swizzle(int row, int chunk) {
    return row * kChunks * 8 + ((chunk ^ (row & 7)) * 8);
}

/// Copies rows [0, kRows) of a [rows, kHeadDim] tile into swizzled shared memory; rows >= valid
/// are zero-filled (no global read), so padded keys contribute exact zeros to P V.
/// Each thread copies one fixed 16-byte chunk column of every kThreads / kChunks-th row, so its
/// swizzled chunk is the same in every round (rows advance by a multiple of 8) and the shared
/// address advances by a compile-time constant: one pointer add per round, no address table.
template <typename Tile, int kRows, typename T>
__device__ __forceinline__ void copy_tile(uint32_t smem, const T* gmem, int64_t row_stride,
                                          int valid, int tid) {
    constexpr int kRowsPerRound = Tile::kThreads / Tile::kChunks;
    static_assert(Tile::kThreads % Tile::kChunks == 0 && kRowsPerRound % 8 == 0, "swizzle rounds");
    static_assert(kRows % kRowsPerRound == 0, "whole copy rounds");
    const int row = tid / Tile::kChunks;
    const int chunk = tid % Tile::kChunks;
    const uint32_t dst = smem + swizzle<Tile::kChunks>(row, chunk) * sizeof(T);
    const T* src = gmem + row * row_stride + chunk * 8;
    const int64_t step = kRowsPerRound * row_stride;
#pragma unroll
    for (int it = 0; it < kRows / kRowsPerRound; ++it) {
        const bool ok = row + it * kRowsPerRound < valid;
        cp_async_16(dst + it * kRowsPerRound * Tile::kHeadDim * sizeof(T), ok ? src : gmem,
                    ok ? 16 : 0);
        src += step;
    }
}

// ---- the kernel ------------------------------------------------------------------------------

template <typename T, typename Tile>
__global__ void __launch_bounds__(Tile::kThreads, Tile::kMinBlocks)
    attention_fwd_kernel(const AttentionArgs args) {
    constexpr int D = Tile::kHeadDim;
    constexpr int BM = Tile::kBlockM;
    constexpr int BN = Tile::kBlockN;
    constexpr int MT = Tile::kMTiles;
    constexpr int kChunks = Tile::kChunks;
    constexpr int kKSteps = D / 16;    // k16 steps of Q K^T
    constexpr int kSTiles = BN / 8;    // n8 tiles of a 16 x BN score tile
    constexpr int kOTiles = D / 8;     // n8 tiles of a 16 x D output tile
    constexpr int kPVSteps = BN / 16;  // k16 steps of P V

    extern __shared__ __align__(128) unsigned char smem_raw[];
    T* const smem = reinterpret_cast<T*>(smem_raw);
    // stage s: K at smem + 2 s kTileElems, V right after.
    auto k_stage = [&](int s) { return smem + (2 * s) * Tile::kTileElems; };
    auto v_stage = [&](int s) { return smem + (2 * s + 1) * Tile::kTileElems; };
    T* const q_smem = Tile::kQInRegisters ? k_stage(1) : smem + 4 * Tile::kTileElems;

    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int lane = tid & 31;
    // Causal blocks with more keys run longer: hand out the last query blocks first.
    const int m_block = args.causal ? args.num_m_blocks - 1 - blockIdx.x : blockIdx.x;
    const int h = blockIdx.y;
    const int b = blockIdx.z;
    const int hk = h / args.group;
    const int m0 = m_block * BM;

    const T* q = static_cast<const T*>(args.q) + b * args.q_strides[0] + h * args.q_strides[1] +
                 m0 * args.q_strides[2];
    const T* k = static_cast<const T*>(args.k) + b * args.k_strides[0] + hk * args.k_strides[1];
    const T* v = static_cast<const T*>(args.v) + b * args.v_strides[0] + hk * args.v_strides[1];
    const int64_t k_row = args.k_strides[2];
    const int64_t v_row = args.v_strides[2];

    // Keys this block can see: [0, n_end). Beyond the valid length, or past the causal diagonal of
    // the block's last row, whole tiles are skipped.
    int kv_end = args.kv_len;
    if (args.kv_valid_lengths != nullptr) {
        kv_end = min(max(args.kv_valid_lengths[b], 0), args.kv_len);
    }
    const int causal_offset = args.kv_len - args.q_len;  // query i sees key j <= i + offset
    int n_end = kv_end;
    if (args.causal) n_end = min(n_end, max(m0 + BM + causal_offset, 0));
    const int n_tiles = (n_end + BN - 1) / BN;

    // Prologue: Q into stage 1, tile 0 into stage 0, one group.
    copy_tile<Tile, BM>(smem_addr(q_smem), q, args.q_strides[2], args.q_len - m0, tid);
    copy_tile<Tile, BN>(smem_addr(k_stage(0)), k, k_row, n_end, tid);
    copy_tile<Tile, BN>(smem_addr(v_stage(0)), v, v_row, n_end, tid);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();

    // The warp's Q rows as A fragments: per m16 tile, matrices (rows 0-7 | 8-15) x (cols 0-7 |
    // 8-15).
    constexpr int kQRegSteps = Tile::kQInRegisters ? kKSteps : 1;
    uint32_t qf[MT][kQRegSteps][4];
    // Byte address of this lane's ldmatrix row for Q, per row tile; k16 step kk reads chunk
    // (2 kk + lane / 16) ^ (lane & 7) of it.
    const uint32_t q_ld_row =
        smem_addr(q_smem) + (warp * Tile::kWarpRows + (lane & 15)) * D * sizeof(T);
    auto q_ld_addr = [&](int mt, int kk) {
        return q_ld_row + mt * 16 * D * sizeof(T) + (((kk * 2 + (lane >> 4)) ^ (lane & 7)) << 4);
    };
    if constexpr (Tile::kQInRegisters) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
            for (int kk = 0; kk < kKSteps; ++kk) ldmatrix_x4(qf[mt][kk], q_ld_addr(mt, kk));
        }
        __syncthreads();  // stage 1 is free for tile 1
    }

    float acc_o[MT][kOTiles][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int j = 0; j < kOTiles; ++j) {
            acc_o[mt][j][0] = acc_o[mt][j][1] = acc_o[mt][j][2] = acc_o[mt][j][3] = 0.f;
        }
    }
    // Rows g and g + 8 of each m16 tile (g = lane / 4), index 2 mt + r: running max of the raw
    // scores and this lane's part of the running sum (the 4 lanes of a row are summed at the end).
    float row_max[2 * MT];
    float row_sum[2 * MT];
#pragma unroll
    for (int r = 0; r < 2 * MT; ++r) row_max[r] = -INFINITY, row_sum[r] = 0.f;
    const int warp_row0 = m0 + warp * Tile::kWarpRows + (lane >> 2);  // query of row index 0
    const int col_in_tile = 2 * (lane & 3);
    const float scale_log2 = args.scale_log2;

    // Per-lane ldmatrix offsets (bytes) inside a stage; rows advance in multiples of 8, which
    // keeps the swizzle term (row & 7) equal to (lane & 7), so the tile loops add only
    // compile-time constants that ptxas folds into the instruction.
    const int k_ld_row = (lane & 7) + ((lane >> 4) << 3);
    const int k_ld_chunk = (lane >> 3) & 1;
    const int v_ld_row = (lane & 7) + (((lane >> 3) & 1) << 3);
    const int v_ld_chunk = lane >> 4;
    uint32_t k_ld_off[kKSteps];
    uint32_t v_ld_off[kOTiles / 2];
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
        k_ld_off[kk] = swizzle<kChunks>(k_ld_row, kk * 2 + k_ld_chunk) * sizeof(T);
    }
#pragma unroll
    for (int j = 0; j < kOTiles / 2; ++j) {
        v_ld_off[j] = swizzle<kChunks>(v_ld_row, 2 * j + v_ld_chunk) * sizeof(T);
    }

    // One key tile: copy the next tile, S = Q K^T, online softmax, O += P V. kMask is false for
    // tiles every row of the block sees in full (no per-element mask code), true for the tiles
    // that cross the causal diagonal or the valid length.
    auto step = [&](const int t, auto mask_tag) {
        constexpr bool kMask = decltype(mask_tag)::value;
        const int stage = t & 1;
        if (t + 1 < n_tiles) {
            const int n_next = (t + 1) * BN;
            copy_tile<Tile, BN>(smem_addr(k_stage(stage ^ 1)), k + n_next * k_row, k_row,
                                n_end - n_next, tid);
            copy_tile<Tile, BN>(smem_addr(v_stage(stage ^ 1)), v + n_next * v_row, v_row,
                                n_end - n_next, tid);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();

        const uint32_t ks_addr = smem_addr(k_stage(stage));
        const uint32_t vs_addr = smem_addr(v_stage(stage));

        // S = Q K^T (raw dot products); each K fragment feeds all MT row tiles.
        float acc_s[MT][kSTiles][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
            for (int j = 0; j < kSTiles; ++j) {
                acc_s[mt][j][0] = acc_s[mt][j][1] = acc_s[mt][j][2] = acc_s[mt][j][3] = 0.f;
            }
        }
#pragma unroll
        for (int kk = 0; kk < kKSteps; ++kk) {
            if constexpr (!Tile::kQInRegisters) {
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) ldmatrix_x4(qf[mt][0], q_ld_addr(mt, kk));
            }
            constexpr int kq = Tile::kQInRegisters ? 1 : 0;  // qf index: kk, or 0 when reloaded
#pragma unroll
            for (int j = 0; j < kSTiles; j += 2) {
                uint32_t bfrag[4];
                ldmatrix_x4(bfrag, ks_addr + k_ld_off[kk] + j * 8 * D * sizeof(T));
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    Elem<T>::mma(acc_s[mt][j], qf[mt][kk * kq], bfrag[0], bfrag[1]);
                    Elem<T>::mma(acc_s[mt][j + 1], qf[mt][kk * kq], bfrag[2], bfrag[3]);
                }
            }
        }

        if constexpr (kMask) {
            const int n0 = t * BN;
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
                for (int j = 0; j < kSTiles; ++j) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int key = n0 + j * 8 + col_in_tile + (e & 1);
                        const int qi = warp_row0 + mt * 16 + ((e >> 1) << 3);
                        if (key >= kv_end || (args.causal && key > qi + causal_offset)) {
                            acc_s[mt][j][e] = -INFINITY;
                        }
                    }
                }
            }
        }

        // Online softmax on the 2 MT rows this lane holds. The max is taken on raw scores (the
        // scale is positive), so scaling folds into one FFMA per score: p = 2^(s c - m c).
        float alpha[2 * MT], shift[2 * MT];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
            float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
            for (int j = 0; j < kSTiles; ++j) {
                tile_max[0] = fmaxf(tile_max[0], fmaxf(acc_s[mt][j][0], acc_s[mt][j][1]));
                tile_max[1] = fmaxf(tile_max[1], fmaxf(acc_s[mt][j][2], acc_s[mt][j][3]));
            }
#pragma unroll
            for (int rr = 0; rr < 2; ++rr) {
                const int r = 2 * mt + rr;
                float m = tile_max[rr];
                m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
                m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
                const float new_max = fmaxf(row_max[r], m);
                // A row with no visible key yet keeps max -inf; shift by 0 so exp2 gives 0, not
                // NaN.
                shift[r] = new_max == -INFINITY ? 0.f : new_max * scale_log2;
                alpha[r] = fast_exp2(row_max[r] * scale_log2 - shift[r]);
                row_max[r] = new_max;
                row_sum[r] *= alpha[r];
            }
        }
        // Once the running max settles (most tiles of long rows) alpha is 1 for every row of the
        // warp: skip the rescale of O.
        bool rescale = false;
#pragma unroll
        for (int r = 0; r < 2 * MT; ++r) rescale |= alpha[r] != 1.f;
        if (__any_sync(0xffffffffu, rescale)) {
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
                for (int j = 0; j < kOTiles; ++j) {
                    acc_o[mt][j][0] *= alpha[2 * mt];
                    acc_o[mt][j][1] *= alpha[2 * mt];
                    acc_o[mt][j][2] *= alpha[2 * mt + 1];
                    acc_o[mt][j][3] *= alpha[2 * mt + 1];
                }
            }
        }
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
            for (int j = 0; j < kSTiles; ++j) {
                float* sv = acc_s[mt][j];
                sv[0] = fast_exp2(fmaf(sv[0], scale_log2, -shift[2 * mt]));
                sv[1] = fast_exp2(fmaf(sv[1], scale_log2, -shift[2 * mt]));
                sv[2] = fast_exp2(fmaf(sv[2], scale_log2, -shift[2 * mt + 1]));
                sv[3] = fast_exp2(fmaf(sv[3], scale_log2, -shift[2 * mt + 1]));
                row_sum[2 * mt] += sv[0] + sv[1];
                row_sum[2 * mt + 1] += sv[2] + sv[3];
            }
        }

        // O += P V. The accumulator layout of two adjacent n8 score tiles is exactly the A-operand
        // layout of one k16 step, so P goes from registers to the tensor cores without shuffles;
        // each V fragment feeds all MT row tiles.
#pragma unroll
        for (int kk = 0; kk < kPVSteps; ++kk) {
            uint32_t pa[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                pa[mt][0] = Elem<T>::pack(acc_s[mt][2 * kk][0], acc_s[mt][2 * kk][1]);
                pa[mt][1] = Elem<T>::pack(acc_s[mt][2 * kk][2], acc_s[mt][2 * kk][3]);
                pa[mt][2] = Elem<T>::pack(acc_s[mt][2 * kk + 1][0], acc_s[mt][2 * kk + 1][1]);
                pa[mt][3] = Elem<T>::pack(acc_s[mt][2 * kk + 1][2], acc_s[mt][2 * kk + 1][3]);
            }
#pragma unroll
            for (int j = 0; j < kOTiles; j += 2) {
                uint32_t bfrag[4];
                ldmatrix_x4_trans(bfrag, vs_addr + v_ld_off[j / 2] + kk * 16 * D * sizeof(T));
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    Elem<T>::mma(acc_o[mt][j], pa[mt], bfrag[0], bfrag[1]);
                    Elem<T>::mma(acc_o[mt][j + 1], pa[mt], bfrag[2], bfrag[3]);
                }
            }
        }
        __syncthreads();  // this stage is refilled by the next step's copy
    };

    // Tiles before n_full are seen in full by every row of the block.
    int n_full = kv_end;
    if (args.causal) n_full = min(n_full, max(m0 + causal_offset + 1, 0));
    const int n_unmasked = min(n_full / BN, n_tiles);
    int t = 0;
    for (; t < n_unmasked; ++t) step(t, BoolTag<false>{});
    for (; t < n_tiles; ++t) step(t, BoolTag<true>{});
    cp_async_wait<0>();
    __syncthreads();

    // Epilogue: finish the row sums, normalise, write O (through shared memory for 16-byte stores)
    // and the log-sum-exp.
    float inv[2 * MT];
#pragma unroll
    for (int r = 0; r < 2 * MT; ++r) {
        row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 1);
        row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 2);
        inv[r] = row_sum[r] > 0.f ? 1.f / row_sum[r] : 0.f;
    }
    T* const o_smem = smem + warp * Tile::kWarpRows * D;  // each warp stages its own rows
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int j = 0; j < kOTiles; ++j) {
            const int r = mt * 16 + (lane >> 2);
            const int c = j * 8 + col_in_tile;
            *reinterpret_cast<uint32_t*>(o_smem + swizzle<kChunks>(r, c >> 3) + (c & 7)) =
                Elem<T>::pack(acc_o[mt][j][0] * inv[2 * mt], acc_o[mt][j][1] * inv[2 * mt]);
            *reinterpret_cast<uint32_t*>(o_smem + swizzle<kChunks>(r + 8, c >> 3) + (c & 7)) =
                Elem<T>::pack(acc_o[mt][j][2] * inv[2 * mt + 1], acc_o[mt][j][3] * inv[2 * mt + 1]);
        }
    }
    __syncwarp();
    T* o = static_cast<T*>(args.o) + b * args.o_strides[0] + h * args.o_strides[1];
#pragma unroll
    for (int it = 0; it < Tile::kWarpRows * kChunks / 32; ++it) {
        const int idx = it * 32 + lane;
        const int r = idx / kChunks;
        const int c = idx % kChunks;
        const int qi = m0 + warp * Tile::kWarpRows + r;
        if (qi < args.q_len) {
            *reinterpret_cast<uint4*>(o + qi * args.o_strides[2] + c * 8) =
                *reinterpret_cast<const uint4*>(o_smem + swizzle<kChunks>(r, c));
        }
    }
    if (args.lse != nullptr && (lane & 3) == 0) {
        float* lse = args.lse + (static_cast<int64_t>(b) * args.q_heads + h) * args.q_len;
#pragma unroll
        for (int r = 0; r < 2 * MT; ++r) {
            const int qi = warp_row0 + (r >> 1) * 16 + (r & 1) * 8;
            if (qi < args.q_len) {
                lse[qi] = row_sum[r] > 0.f
                              ? row_max[r] * scale_log2 * 0.69314718055994531f + logf(row_sum[r])
                              : -INFINITY;
            }
        }
    }
}

}  // namespace twcuda
