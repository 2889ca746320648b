// Hopper (sm_90a) forward kernel: the same online-softmax algorithm as attention_fwd_sm80.cuh
// (see the math there), with both GEMMs on warpgroup MMA (wgmma) instead of mma.sync.
//
// Work split: a block of kWarpgroups warpgroups owns 64 * kWarpgroups query rows; each warpgroup
// (4 consecutive warps, 128 threads) issues m64 wgmma instructions for its 64 rows:
//   S[64 x kBlockN] = Q K^T   A = Q and B = K from shared memory (both K-major),
//   O[64 x D]      += P V     A = P from registers (the S accumulator converted in place, as in
//                             the sm80 kernel), B = V from shared memory read N-major.
// One wgmma covers 64 x N x 16 per instruction and runs asynchronously, so a warp issues ~16x
// fewer matrix instructions than with mma.sync and the tensor cores run at Hopper's full rate.
//
// Shared memory holds tiles in the layout wgmma reads with 128-byte swizzling: a [rows, D] tile is
// stored as D/64 column blocks of [rows][64] elements (128-byte rows), and 16-byte chunk c of row
// r sits at chunk c ^ (r & 7) of its row; every block starts on a 1024-byte boundary. Descriptors:
// K-major (Q, K): stride between 8-row groups 1024 bytes, a k16 step advances 32 bytes inside a
// 128-byte row and a new column block every 4 steps. N-major (V): the k16 step (16 keys) advances
// 16 rows = 2048 bytes; the leading-dimension offset (next 64 columns of D) is one column block.
// K/V tiles are double-buffered with cp.async, written through the generic proxy, so every writing
// thread fences the async proxy before the barrier that precedes the wgmma reading them.
#pragma once

#include "attention_fwd_sm80.cuh"
#include "wgmma_sm90.cuh"

namespace twcuda {

template <typename T>
struct Wgmma;

template <>
struct Wgmma<__half> {
    __device__ __forceinline__ static void ss(float (&d)[32], uint64_t a, uint64_t b, int acc) {
        wgmma::ss_f16_n64(d, a, b, acc);
    }
    __device__ __forceinline__ static void ss(float (&d)[64], uint64_t a, uint64_t b, int acc) {
        wgmma::ss_f16_n128(d, a, b, acc);
    }
    __device__ __forceinline__ static void ss(float (&d)[96], uint64_t a, uint64_t b, int acc) {
        wgmma::ss_f16_n192(d, a, b, acc);
    }
    __device__ __forceinline__ static void rs(float (&d)[32], const uint32_t (&a)[4], uint64_t b) {
        wgmma::rs_f16_n64_tb(d, a, b);
    }
    __device__ __forceinline__ static void rs(float (&d)[64], const uint32_t (&a)[4], uint64_t b) {
        wgmma::rs_f16_n128_tb(d, a, b);
    }
};

template <>
struct Wgmma<__nv_bfloat16> {
    __device__ __forceinline__ static void ss(float (&d)[32], uint64_t a, uint64_t b, int acc) {
        wgmma::ss_bf16_n64(d, a, b, acc);
    }
    __device__ __forceinline__ static void ss(float (&d)[64], uint64_t a, uint64_t b, int acc) {
        wgmma::ss_bf16_n128(d, a, b, acc);
    }
    __device__ __forceinline__ static void ss(float (&d)[96], uint64_t a, uint64_t b, int acc) {
        wgmma::ss_bf16_n192(d, a, b, acc);
    }
    __device__ __forceinline__ static void rs(float (&d)[32], const uint32_t (&a)[4], uint64_t b) {
        wgmma::rs_bf16_n64_tb(d, a, b);
    }
    __device__ __forceinline__ static void rs(float (&d)[64], const uint32_t (&a)[4], uint64_t b) {
        wgmma::rs_bf16_n128_tb(d, a, b);
    }
};

template <typename T, int kHeadDim_, int kWarpgroups_, int kBlockN_, int kMinBlocks_,
          bool kSingleStage_ = false>
struct Sm90Tile {
    // One K and one V buffer instead of two (K, V) stages: K_(t+1) loads during the softmax and
    // P V of tile t, V_(t+1) during S_(t+1); half the shared memory, so more blocks fit per SM.
    static constexpr bool kSingleStage = kSingleStage_;
    using Element = T;
    static constexpr int kHeadDim = kHeadDim_;
    static constexpr int kWarpgroups = kWarpgroups_;
    static constexpr int kThreads = 128 * kWarpgroups;
    static constexpr int kBlockM = 64 * kWarpgroups;
    // wgmma N of Q K^T: S takes kBlockN / 2 registers per thread, O kHeadDim / 2.
    static constexpr int kBlockN = kBlockN_;
    static constexpr int kMinBlocks = kMinBlocks_;
    static constexpr int kChunks = kHeadDim / 8;
    static constexpr int kTileBytes = kBlockN * kHeadDim * static_cast<int>(sizeof(T));
    static constexpr int kQBytes = kBlockM * kHeadDim * static_cast<int>(sizeof(T));
    // Q, then stages 0 and 1 of (K, V) (or one K and one V); 1024 bytes of slack to align the
    // base for the swizzle.
    static constexpr int kSmemBytes = kQBytes + (kSingleStage ? 2 : 4) * kTileBytes + 1024;
    static_assert(kHeadDim % 64 == 0, "column blocks of 64");
    static_assert(kBlockN == 64 || kBlockN == 128, "wgmma N");
    static_assert(kQBytes % 1024 == 0 && kTileBytes % 1024 == 0, "1024-byte aligned blocks");
};

/// Byte offset of (row, 16-byte chunk) in a [kRows, 8 * kChunks] tile stored as 64-column blocks.
template <int kRows>
__device__ __forceinline__ uint32_t block_swizzle(int row, int chunk) {
    return (chunk >> 3) * (kRows * 128) + row * 128 + (((chunk & 7) ^ (row & 7)) << 4);
}

/// copy_tile for the column-block layout: each thread keeps one chunk column, rows advance by
/// kThreads / kChunks (a multiple of 8) per round, so the swizzled offset advances by a constant.
template <typename Tile, int kRows, typename T>
__device__ __forceinline__ void copy_tile_blocks(uint32_t smem, const T* gmem, int64_t row_stride,
                                                 int valid, int tid) {
    constexpr int kRowsPerRound = Tile::kThreads / Tile::kChunks;
    static_assert(Tile::kThreads % Tile::kChunks == 0 && kRowsPerRound % 8 == 0, "rounds");
    static_assert(kRows % kRowsPerRound == 0, "whole rounds");
    const int row = tid / Tile::kChunks;
    const int chunk = tid % Tile::kChunks;
    const uint32_t dst = smem + block_swizzle<kRows>(row, chunk);
    const T* src = gmem + row * row_stride + chunk * 8;
    const int64_t step = kRowsPerRound * row_stride;
#pragma unroll
    for (int it = 0; it < kRows / kRowsPerRound; ++it) {
        const bool ok = row + it * kRowsPerRound < valid;
        cp_async_16(dst + it * kRowsPerRound * 128, ok ? src : gmem, ok ? 16 : 0);
        src += step;
    }
}

/// wgmma shared-memory descriptor: 128-byte swizzle, the given leading/stride byte offsets.
__device__ __forceinline__ uint64_t make_desc(uint32_t addr, uint32_t lead, uint32_t stride) {
    return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>(lead >> 4) << 16) |
           (static_cast<uint64_t>(stride >> 4) << 32) | (uint64_t{1} << 62);
}

template <typename T, typename Tile>
__global__ void __launch_bounds__(Tile::kThreads, Tile::kMinBlocks)
    attention_fwd_sm90_kernel(const AttentionArgs args) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int D = Tile::kHeadDim;
    constexpr int BM = Tile::kBlockM;
    constexpr int BN = Tile::kBlockN;
    constexpr int kChunks = Tile::kChunks;
    constexpr int kKSteps = D / 16;
    constexpr int kSTiles = BN / 8;
    constexpr int kOTiles = D / 8;
    constexpr int kPVSteps = BN / 16;

    extern __shared__ __align__(128) unsigned char smem_raw[];
    const uint32_t raw_addr = smem_addr(smem_raw);
    const uint32_t base = (raw_addr + 1023) & ~1023u;
    unsigned char* const smem = smem_raw + (base - raw_addr);
    const uint32_t q_addr = base;
    auto k_addr = [&](int s) { return base + Tile::kQBytes + (2 * s) * Tile::kTileBytes; };
    auto v_addr = [&](int s) { return base + Tile::kQBytes + (2 * s + 1) * Tile::kTileBytes; };

    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int lane = tid & 31;
    const int wg = warp >> 2;
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

    int kv_end = args.kv_len;
    if (args.kv_valid_lengths != nullptr) {
        kv_end = min(max(args.kv_valid_lengths[b], 0), args.kv_len);
    }
    const int causal_offset = args.kv_len - args.q_len;
    int n_end = kv_end;
    if (args.causal) n_end = min(n_end, max(m0 + BM + causal_offset, 0));
    const int n_tiles = (n_end + BN - 1) / BN;

    copy_tile_blocks<Tile, BM>(q_addr, q, args.q_strides[2], args.q_len - m0, tid);
    copy_tile_blocks<Tile, BN>(k_addr(0), k, k_row, n_end, tid);
    copy_tile_blocks<Tile, BN>(v_addr(0), v, v_row, n_end, tid);
    cp_async_commit();

    float acc_o[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; ++i) acc_o[i] = 0.f;
    float row_max[2] = {-INFINITY, -INFINITY};
    float row_sum[2] = {0.f, 0.f};
    const int row0 = m0 + warp * 16 + (lane >> 2);  // this lane's first query row
    const int col_in_tile = 2 * (lane & 3);
    const float scale_log2 = args.scale_log2;
    const uint32_t q_wg_addr = q_addr + wg * 64 * 128;

    // S = Q K^T of the tile in `stage`, issued asynchronously on the tensor cores.
    auto issue_s = [&](float(&acc_s)[BN / 2], const int stage) {
        wgmma::fence();
#pragma unroll
        for (int kk = 0; kk < kKSteps; ++kk) {
            // 32 bytes per k16 step inside a 128-byte row, a column block every 4 steps.
            const uint32_t in_row = (kk & 3) * 32;
            const uint64_t da = make_desc(q_wg_addr + in_row + (kk >> 2) * (BM * 128), 16, 1024);
            const uint64_t db =
                make_desc(k_addr(stage) + in_row + (kk >> 2) * (BN * 128), 16, 1024);
            Wgmma<T>::ss(acc_s, da, db, kk > 0);
        }
        wgmma::commit();
    };

    // Mask (tiles crossing the diagonal or the valid length only), online softmax, rescale O,
    // and P as the A operand of P V.
    auto softmax = [&](float(&acc_s)[BN / 2], const int t, const bool masked,
                       uint32_t(&pa)[kPVSteps][4]) {
        if (masked) {
            const int n0 = t * BN;
#pragma unroll
            for (int j = 0; j < kSTiles; ++j) {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int key = n0 + j * 8 + col_in_tile + (e & 1);
                    const int qi = row0 + ((e >> 1) << 3);
                    if (key >= kv_end || (args.causal && key > qi + causal_offset)) {
                        acc_s[4 * j + e] = -INFINITY;
                    }
                }
            }
        }
        float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < kSTiles; ++j) {
            tile_max[0] = fmaxf(tile_max[0], fmaxf(acc_s[4 * j], acc_s[4 * j + 1]));
            tile_max[1] = fmaxf(tile_max[1], fmaxf(acc_s[4 * j + 2], acc_s[4 * j + 3]));
        }
        float alpha[2], shift[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float m = tile_max[r];
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
            const float new_max = fmaxf(row_max[r], m);
            shift[r] = new_max == -INFINITY ? 0.f : new_max * scale_log2;
            alpha[r] = fast_exp2(row_max[r] * scale_log2 - shift[r]);
            row_max[r] = new_max;
            row_sum[r] *= alpha[r];
        }
        if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
            for (int j = 0; j < kOTiles; ++j) {
                acc_o[4 * j] *= alpha[0];
                acc_o[4 * j + 1] *= alpha[0];
                acc_o[4 * j + 2] *= alpha[1];
                acc_o[4 * j + 3] *= alpha[1];
            }
        }
#pragma unroll
        for (int j = 0; j < kSTiles; ++j) {
            float* sv = acc_s + 4 * j;
            sv[0] = fast_exp2(fmaf(sv[0], scale_log2, -shift[0]));
            sv[1] = fast_exp2(fmaf(sv[1], scale_log2, -shift[0]));
            sv[2] = fast_exp2(fmaf(sv[2], scale_log2, -shift[1]));
            sv[3] = fast_exp2(fmaf(sv[3], scale_log2, -shift[1]));
            row_sum[0] += sv[0] + sv[1];
            row_sum[1] += sv[2] + sv[3];
            // Tiles 2kk and 2kk + 1 form the A operand of k16 step kk (same order as mma.sync).
            pa[j >> 1][(j & 1) * 2] = Elem<T>::pack(sv[0], sv[1]);
            pa[j >> 1][(j & 1) * 2 + 1] = Elem<T>::pack(sv[2], sv[3]);
        }
    };

    // O += P V: V read N-major; a k16 step is 16 key rows = 2048 bytes; the next 64 columns of D
    // are one column block (BN rows of 128 bytes) further.
    auto issue_pv = [&](const uint32_t(&pa)[kPVSteps][4], const int stage) {
        wgmma::fence();
#pragma unroll
        for (int kk = 0; kk < kPVSteps; ++kk) {
            Wgmma<T>::rs(acc_o, pa[kk], make_desc(v_addr(stage) + kk * 2048, BN * 128, 1024));
        }
        wgmma::commit();
    };

    auto load_tile = [&](const int t) {
        const int n0 = t * BN;
        copy_tile_blocks<Tile, BN>(k_addr(t & 1), k + n0 * k_row, k_row, n_end - n0, tid);
        copy_tile_blocks<Tile, BN>(v_addr(t & 1), v + n0 * v_row, v_row, n_end - n0, tid);
    };

    cp_async_wait<0>();
    wgmma::fence_proxy_async();
    __syncthreads();

    int n_full = kv_end;
    if (args.causal) n_full = min(n_full, max(m0 + causal_offset + 1, 0));
    const int n_unmasked = min(n_full / BN, n_tiles);

    if constexpr (Tile::kSingleStage) {
        // The prologue's group held Q, K_0 and V_0 (all waited for above). Per tile: S_t; then
        // K_(t+1) loads into the K buffer during the softmax and P V_t; V_(t+1) loads into the V
        // buffer during S_(t+1) and its softmax. cp.async groups complete in order, so waiting
        // for "all but the newest group" always yields the buffer needed next.
        for (int t = 0; t < n_tiles; ++t) {
            const bool has_next = t + 1 < n_tiles;
            const int n_next = (t + 1) * BN;
            float acc_s[BN / 2];
            issue_s(acc_s, 0);
            wgmma::wait<0>();
            __syncthreads();  // every warpgroup is done reading K_t
            if (has_next) {
                copy_tile_blocks<Tile, BN>(k_addr(0), k + n_next * k_row, k_row, n_end - n_next,
                                           tid);
            }
            cp_async_commit();
            uint32_t pa[kPVSteps][4];
            softmax(acc_s, t, t >= n_unmasked, pa);
            cp_async_wait<1>();  // V_t (everything but K_(t+1))
            wgmma::fence_proxy_async();
            __syncthreads();
            issue_pv(pa, 0);
            wgmma::wait<0>();
            __syncthreads();  // every warpgroup is done reading V_t
            if (has_next) {
                copy_tile_blocks<Tile, BN>(v_addr(0), v + n_next * v_row, v_row, n_end - n_next,
                                           tid);
            }
            cp_async_commit();
            cp_async_wait<1>();  // K_(t+1) (everything but V_(t+1))
            wgmma::fence_proxy_async();
            __syncthreads();
        }
    } else {
        // Tile t: prefetch t + 1, S_t, softmax, P V_t. The tensor cores idle during this
        // warpgroup's softmax unless another warpgroup (of this block or another block on the SM)
        // fills them. A software-pipelined variant (S_{t+1} issued before the softmax of t, two
        // score buffers) was measured slower here: docs/history/cuda-notes.md, v5.
        for (int t = 0; t < n_tiles; ++t) {
            const int stage = t & 1;
            if (t + 1 < n_tiles) load_tile(t + 1);
            cp_async_commit();
            cp_async_wait<1>();
            wgmma::fence_proxy_async();
            __syncthreads();
            float acc_s[BN / 2];
            issue_s(acc_s, stage);
            wgmma::wait<0>();
            uint32_t pa[kPVSteps][4];
            softmax(acc_s, t, t >= n_unmasked, pa);
            issue_pv(pa, stage);
            wgmma::wait<0>();
            __syncthreads();  // this stage is refilled by the next tile's copy
        }
    }
    cp_async_wait<0>();
    __syncthreads();

    // Epilogue as in the sm80 kernel: each warp stages its 16 rows (row-swizzled, D per row).
    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 1);
        row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 2);
        inv[r] = row_sum[r] > 0.f ? 1.f / row_sum[r] : 0.f;
    }
    T* const o_smem = reinterpret_cast<T*>(smem) + warp * 16 * D;
#pragma unroll
    for (int j = 0; j < kOTiles; ++j) {
        const int r = lane >> 2;
        const int c = j * 8 + col_in_tile;
        *reinterpret_cast<uint32_t*>(o_smem + swizzle<kChunks>(r, c >> 3) + (c & 7)) =
            Elem<T>::pack(acc_o[4 * j] * inv[0], acc_o[4 * j + 1] * inv[0]);
        *reinterpret_cast<uint32_t*>(o_smem + swizzle<kChunks>(r + 8, c >> 3) + (c & 7)) =
            Elem<T>::pack(acc_o[4 * j + 2] * inv[1], acc_o[4 * j + 3] * inv[1]);
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
            const int qi = row0 + 8 * r;
            if (qi < args.q_len) {
                lse[qi] = row_sum[r] > 0.f
                              ? row_max[r] * scale_log2 * 0.69314718055994531f + logf(row_sum[r])
                              : -INFINITY;
            }
        }
    }
#else
    __trap();  // launched only on compute capability 9.x, where the sm_90a image exists
#endif
}

}  // namespace twcuda
