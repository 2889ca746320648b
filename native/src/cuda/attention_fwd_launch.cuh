// Host-side launch of one attention_fwd_kernel instantiation: raise its shared-memory limit once
// per device, launch on the caller's stream, check the launch.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "attention_fwd_sm80.cuh"
#include "attention_fwd_sm90.cuh"
#include "cuda_status.h"

namespace twcuda {

/// Tile configurations selectable through tw_cuda_attention_set_config (0 picks per head dim).
enum class FwdConfig {
    kAuto = 0,
    kWarps4 = 1,
    kWarps4Rows32 = 2,
    kWarps8 = 3,
    kWarps4Rows32Narrow = 4,
    kHopperWgmma = 5,
    kHopperWgmmaOneGroup = 6,
    kHopperWgmmaPipelined = 7
};
constexpr int kFwdConfigs = 7;

template <typename Tile, bool kHopper = false>
tw_status launch_tile(const AttentionArgs& args, int q_heads, int batch, cudaStream_t stream) {
    const auto kernel = [] {
        if constexpr (kHopper) {
            return attention_fwd_sm90_kernel<typename Tile::Element, Tile>;
        } else {
            return attention_fwd_kernel<typename Tile::Element, Tile>;
        }
    }();
    static std::atomic<uint64_t> configured_devices{0};
    int device = 0;
    TWC_CHECK(cudaGetDevice(&device));
    const uint64_t bit = uint64_t{1} << (device & 63);
    if ((configured_devices.load(std::memory_order_relaxed) & bit) == 0) {
        TWC_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       Tile::kSmemBytes));
        configured_devices.fetch_or(bit, std::memory_order_relaxed);
    }
    AttentionArgs a = args;
    a.num_m_blocks = static_cast<int>((static_cast<int64_t>(args.q_len) + Tile::kBlockM - 1) /
                                      Tile::kBlockM);
    const dim3 grid(static_cast<unsigned>(a.num_m_blocks), static_cast<unsigned>(q_heads),
                    static_cast<unsigned>(batch));
    kernel<<<grid, Tile::kThreads, Tile::kSmemBytes, stream>>>(a);
    TWC_CHECK(cudaGetLastError());
    return TW_OK;
}

/// Picks the tile for (head_dim, config) of element type T and launches it.
///  kWarps4:       4 warps x 16 query rows, 2 blocks per SM (up to 255 registers).
///  kWarps4Rows32: 4 warps x 32 query rows (two m16 tiles each): every K/V fragment read from
///                 shared memory feeds two MMAs; at D=128 Q is re-read from shared memory
///                 (FlashAttention-2's choice) to leave registers for O and S.
///  kWarps8:       8 warps x 16 query rows share each K/V tile: half the L2 traffic per flop.
///  kWarps4Rows32Narrow: 4 warps x 32 rows with Q re-read from shared memory and 32-key tiles
///                 at D=128 (fewest registers), 64-key tiles at D=64.
///  kHopperWgmma*: attention_fwd_sm90.cuh (wgmma; compute capability 9.x only, checked by the
///                 caller): two warpgroups per block; one warpgroup and 2-3 blocks per SM; two
///                 warpgroups with the next tile's Q K^T issued before this tile's softmax.
template <typename T>
tw_status launch_attention_fwd(const AttentionArgs& args, int head_dim, FwdConfig config,
                               int q_heads, int batch, cudaStream_t stream) {
    if (config == FwdConfig::kHopperWgmma) {
        // Two warpgroups x 64 rows, 128-key tiles; one block per SM (up to 255 registers).
        if (head_dim == 64) {
            return launch_tile<Sm90Tile<T, 64, 2, 128, 1>, true>(args, q_heads, batch, stream);
        }
        return launch_tile<Sm90Tile<T, 128, 2, 128, 1>, true>(args, q_heads, batch, stream);
    }
    if (config == FwdConfig::kHopperWgmmaOneGroup) {
        // One warpgroup x 64 rows per block and several blocks per SM, whose softmax and GEMM
        // phases interleave on their own.
        if (head_dim == 64) {
            return launch_tile<Sm90Tile<T, 64, 1, 128, 3>, true>(args, q_heads, batch, stream);
        }
        return launch_tile<Sm90Tile<T, 128, 1, 64, 2>, true>(args, q_heads, batch, stream);
    }
    if (config == FwdConfig::kHopperWgmmaPipelined) {
        if (head_dim == 64) {
            return launch_tile<Sm90Tile<T, 64, 2, 64, 1, true>, true>(args, q_heads, batch, stream);
        }
        return launch_tile<Sm90Tile<T, 128, 2, 64, 1, true>, true>(args, q_heads, batch, stream);
    }
    if (head_dim == 64) {
        switch (config) {
            case FwdConfig::kWarps4Rows32:
                return launch_tile<FwdTile<T, 64, 4, 2, 64, 2>>(args, q_heads, batch, stream);
            case FwdConfig::kWarps8:
                return launch_tile<FwdTile<T, 64, 8, 1, 64, 2>>(args, q_heads, batch, stream);
            case FwdConfig::kWarps4Rows32Narrow:
                return launch_tile<FwdTile<T, 64, 4, 2, 64, 2, false>>(args, q_heads, batch, stream);
            default:
                return launch_tile<FwdTile<T, 64, 4, 1, 128, 2>>(args, q_heads, batch, stream);
        }
    }
    switch (config) {
        case FwdConfig::kWarps4Rows32:
            return launch_tile<FwdTile<T, 128, 4, 2, 64, 2, false>>(args, q_heads, batch, stream);
        case FwdConfig::kWarps4Rows32Narrow:
            return launch_tile<FwdTile<T, 128, 4, 2, 32, 2, false>>(args, q_heads, batch, stream);
        case FwdConfig::kWarps8:
            return launch_tile<FwdTile<T, 128, 8, 1, 64, 1>>(args, q_heads, batch, stream);
        default:
            return launch_tile<FwdTile<T, 128, 4, 1, 64, 2>>(args, q_heads, batch, stream);
    }
}

tw_status launch_attention_fwd_f16(const AttentionArgs& args, int head_dim, FwdConfig config,
                                   int q_heads, int batch, cudaStream_t stream);
tw_status launch_attention_fwd_bf16(const AttentionArgs& args, int head_dim, FwdConfig config,
                                    int q_heads, int batch, cudaStream_t stream);

}  // namespace twcuda
