// FlashAttention-2 style forward kernel on mma.sync tensor-core instructions (sm_80 and later).
//
// The math, for one (batch b, query head h) and a block of query rows i:
//   S_ij = scale * q_i . k_j                      (masked entries -inf)
//   m_i  = max_j S_ij,  l_i = sum_j exp(S_ij - m_i),  O_i = (1 / l_i) sum_j exp(S_ij - m_i) v_j
// computed over key tiles j0..j0+kBlockN with the online rescaling (log2 domain, exp2):
//   m' = max(m, rowmax(S_tile)),  alpha = 2^(c (m - m')),  P = 2^(c (S_tile - m'))   (c = log2 e)
//   l' = alpha l + rowsum(P),     O' = alpha O + P V_tile
// and at the end O /= l, lse = m + ln l (m in scaled units). The score tile S and P never leave registers.
//
// Work split: a thread block owns kBlockM = 16 * kWarps query rows of one (b, h); each warp owns
// 16 of them, the size of one m16n8k16 A operand, so the warp's Q rows live in registers for the
// whole kernel and the softmax row statistics are reduced within 4 lanes. Key/value tiles of
// kBlockN rows are shared by all warps and double-buffered in shared memory with cp.async: the
// copy of tile t+1 runs while tile t is multiplied.
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

// ---- PTX wrappers --------------------------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/// 16-byte global -> shared copy; src_bytes = 0 fills the 16 bytes with zeros and reads nothing.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
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

// ---- tile configuration --------------------------------------------------------------------------

template <typename T, int kHeadDim_, int kWarps_, int kBlockN_, int kMinBlocks_>
struct FwdTile {
    using Element = T;
    // Blocks per SM the register allocation must allow (65536 / (threads * this) registers each).
    static constexpr int kMinBlocks = kMinBlocks_;
    static constexpr int kHeadDim = kHeadDim_;
    static constexpr int kWarps = kWarps_;
    static constexpr int kThreads = 32 * kWarps;
    // One m16 MMA tile of query rows per warp: Q fragments fit in registers (kHeadDim / 2 regs).
    static constexpr int kBlockM = 16 * kWarps;
    // Keys per tile: large enough that a tile's mma work hides the next tile's copy, small enough
    // that the score tile (kBlockN / 2 fp32 registers per thread) leaves room for the O accumulator.
    static constexpr int kBlockN = kBlockN_;
    static constexpr int kChunks = kHeadDim / 8;  // 16-byte chunks per row
    static constexpr int kTileElems = kBlockN * kHeadDim;
    // Two stages of K and V. Q is staged once through stage 1 before that stage's first use.
    static constexpr int kSmemBytes = 2 * 2 * kTileElems * static_cast<int>(sizeof(T));
    static_assert(kHeadDim % 16 == 0 && kBlockN % 16 == 0, "mma shapes");
    static_assert(kBlockM * kHeadDim <= 2 * kTileElems, "Q must fit in one K/V stage");
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
__global__ void __launch_bounds__(Tile::kThreads, Tile::kMinBlocks) attention_fwd_kernel(const AttentionArgs args) {
    constexpr int D = Tile::kHeadDim;
    constexpr int BM = Tile::kBlockM;
    constexpr int BN = Tile::kBlockN;
    constexpr int kChunks = Tile::kChunks;
    constexpr int kKSteps = D / 16;    // k16 steps of Q K^T
    constexpr int kSTiles = BN / 8;    // n8 tiles of a warp's 16 x BN score tile
    constexpr int kOTiles = D / 8;     // n8 tiles of a warp's 16 x D output
    constexpr int kPVSteps = BN / 16;  // k16 steps of P V

    extern __shared__ __align__(128) unsigned char smem_raw[];
    T* const smem = reinterpret_cast<T*>(smem_raw);
    // stage s: K at smem + 2 s kTileElems, V right after.
    auto k_stage = [&](int s) { return smem + (2 * s) * Tile::kTileElems; };
    auto v_stage = [&](int s) { return smem + (2 * s + 1) * Tile::kTileElems; };
    T* const q_smem = k_stage(1);

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

    // The warp's 16 Q rows as A fragments: matrices (rows 0-7 | 8-15) x (cols 0-7 | 8-15).
    uint32_t qf[kKSteps][4];
    {
        const int row = warp * 16 + (lane & 15);
#pragma unroll
        for (int kk = 0; kk < kKSteps; ++kk) {
            ldmatrix_x4(qf[kk], smem_addr(q_smem + swizzle<kChunks>(row, kk * 2 + (lane >> 4))));
        }
    }
    __syncthreads();  // stage 1 is free for tile 1

    float acc_o[kOTiles][4];
#pragma unroll
    for (int j = 0; j < kOTiles; ++j) acc_o[j][0] = acc_o[j][1] = acc_o[j][2] = acc_o[j][3] = 0.f;
    // Rows g and g + 8 of the warp's 16 (g = lane / 4): running max of the raw scores and this
    // lane's part of the running sum (the 4 lanes of a row are summed once at the end).
    float row_max[2] = {-INFINITY, -INFINITY};
    float row_sum[2] = {0.f, 0.f};
    const int row_in_block = warp * 16 + (lane >> 2);
    const int q_row0 = m0 + row_in_block;  // absolute query index of this lane's first row
    const int col_in_tile = 2 * (lane & 3);
    const float scale_log2 = args.scale_log2;

    // Per-lane ldmatrix offsets (elements) inside a stage; rows advance in multiples of 8, which
    // keeps the swizzle term (row & 7) equal to (lane & 7).
    const int k_ld_row = (lane & 7) + ((lane >> 4) << 3);
    const int k_ld_chunk = (lane >> 3) & 1;
    const int v_ld_row = (lane & 7) + (((lane >> 3) & 1) << 3);
    const int v_ld_chunk = lane >> 4;
    // Byte offsets per k16 step (K) and per pair of n8 tiles (V); the tile loops add only
    // compile-time multiples of 8 rows on top, which ptxas folds into the instruction.
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

        // S = Q K^T for the warp's 16 rows x BN keys (raw dot products).
        float acc_s[kSTiles][4];
#pragma unroll
        for (int j = 0; j < kSTiles; ++j) acc_s[j][0] = acc_s[j][1] = acc_s[j][2] = acc_s[j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < kKSteps; ++kk) {
#pragma unroll
            for (int j = 0; j < kSTiles; j += 2) {
                uint32_t bfrag[4];
                ldmatrix_x4(bfrag, ks_addr + k_ld_off[kk] + j * 8 * D * sizeof(T));
                Elem<T>::mma(acc_s[j], qf[kk], bfrag[0], bfrag[1]);
                Elem<T>::mma(acc_s[j + 1], qf[kk], bfrag[2], bfrag[3]);
            }
        }

        if constexpr (kMask) {
            const int n0 = t * BN;
#pragma unroll
            for (int j = 0; j < kSTiles; ++j) {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int key = n0 + j * 8 + col_in_tile + (e & 1);
                    const int qi = q_row0 + ((e >> 1) << 3);
                    if (key >= kv_end || (args.causal && key > qi + causal_offset)) {
                        acc_s[j][e] = -INFINITY;
                    }
                }
            }
        }

        // Online softmax on the two rows this lane holds. The max is taken on raw scores (the
        // scale is positive), so scaling folds into one FFMA per score: p = 2^(s c - m c).
        float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < kSTiles; ++j) {
            tile_max[0] = fmaxf(tile_max[0], fmaxf(acc_s[j][0], acc_s[j][1]));
            tile_max[1] = fmaxf(tile_max[1], fmaxf(acc_s[j][2], acc_s[j][3]));
        }
        float alpha[2], shift[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
            tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
            const float new_max = fmaxf(row_max[r], tile_max[r]);
            // A row with no visible key yet keeps max -inf; shift by 0 so exp2 gives 0, not NaN.
            shift[r] = new_max == -INFINITY ? 0.f : new_max * scale_log2;
            alpha[r] = fast_exp2(row_max[r] * scale_log2 - shift[r]);
            row_max[r] = new_max;
            row_sum[r] *= alpha[r];
        }
        // Once the running max settles (most tiles of long rows) alpha is 1 for every row of the
        // warp: skip the D/2 multiplies of the rescale.
        if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
            for (int j = 0; j < kOTiles; ++j) {
                acc_o[j][0] *= alpha[0];
                acc_o[j][1] *= alpha[0];
                acc_o[j][2] *= alpha[1];
                acc_o[j][3] *= alpha[1];
            }
        }
#pragma unroll
        for (int j = 0; j < kSTiles; ++j) {
            acc_s[j][0] = fast_exp2(fmaf(acc_s[j][0], scale_log2, -shift[0]));
            acc_s[j][1] = fast_exp2(fmaf(acc_s[j][1], scale_log2, -shift[0]));
            acc_s[j][2] = fast_exp2(fmaf(acc_s[j][2], scale_log2, -shift[1]));
            acc_s[j][3] = fast_exp2(fmaf(acc_s[j][3], scale_log2, -shift[1]));
            row_sum[0] += acc_s[j][0] + acc_s[j][1];
            row_sum[1] += acc_s[j][2] + acc_s[j][3];
        }

        // O += P V. The accumulator layout of two adjacent n8 score tiles is exactly the A-operand
        // layout of one k16 step, so P goes from registers to the tensor cores without shuffles.
#pragma unroll
        for (int kk = 0; kk < kPVSteps; ++kk) {
            uint32_t pa[4];
            pa[0] = Elem<T>::pack(acc_s[2 * kk][0], acc_s[2 * kk][1]);
            pa[1] = Elem<T>::pack(acc_s[2 * kk][2], acc_s[2 * kk][3]);
            pa[2] = Elem<T>::pack(acc_s[2 * kk + 1][0], acc_s[2 * kk + 1][1]);
            pa[3] = Elem<T>::pack(acc_s[2 * kk + 1][2], acc_s[2 * kk + 1][3]);
#pragma unroll
            for (int j = 0; j < kOTiles; j += 2) {
                uint32_t bfrag[4];
                ldmatrix_x4_trans(bfrag, vs_addr + v_ld_off[j / 2] + kk * 16 * D * sizeof(T));
                Elem<T>::mma(acc_o[j], pa, bfrag[0], bfrag[1]);
                Elem<T>::mma(acc_o[j + 1], pa, bfrag[2], bfrag[3]);
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
    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 1);
        row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 2);
        inv[r] = row_sum[r] > 0.f ? 1.f / row_sum[r] : 0.f;
    }
    T* const o_smem = smem + warp * 16 * D;  // each warp stages its own 16 rows
#pragma unroll
    for (int j = 0; j < kOTiles; ++j) {
        const int r = lane >> 2;
        const int c = j * 8 + col_in_tile;
        *reinterpret_cast<uint32_t*>(o_smem + swizzle<kChunks>(r, c >> 3) + (c & 7)) =
            Elem<T>::pack(acc_o[j][0] * inv[0], acc_o[j][1] * inv[0]);
        *reinterpret_cast<uint32_t*>(o_smem + swizzle<kChunks>(r + 8, c >> 3) + (c & 7)) =
            Elem<T>::pack(acc_o[j][2] * inv[1], acc_o[j][3] * inv[1]);
    }
    __syncwarp();
    T* o = static_cast<T*>(args.o) + b * args.o_strides[0] + h * args.o_strides[1];
#pragma unroll
    for (int it = 0; it < 16 * kChunks / 32; ++it) {
        const int idx = it * 32 + lane;
        const int r = idx / kChunks;
        const int c = idx % kChunks;
        const int qi = m0 + warp * 16 + r;
        if (qi < args.q_len) {
            *reinterpret_cast<uint4*>(o + qi * args.o_strides[2] + c * 8) =
                *reinterpret_cast<const uint4*>(o_smem + swizzle<kChunks>(r, c));
        }
    }
    if (args.lse != nullptr && (lane & 3) == 0) {
        float* lse = args.lse + (static_cast<int64_t>(b) * args.q_heads + h) * args.q_len;
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int qi = q_row0 + 8 * r;
            if (qi < args.q_len) {
                lse[qi] = row_sum[r] > 0.f ? row_max[r] * scale_log2 * 0.69314718055994531f +
                                                 logf(row_sum[r])
                                           : -INFINITY;
            }
        }
    }
}

}  // namespace twcuda
