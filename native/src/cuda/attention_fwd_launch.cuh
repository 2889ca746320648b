// Host-side launch of one attention_fwd_kernel instantiation: raise its shared-memory limit once
// per device, launch on the caller's stream, check the launch.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "attention_fwd_sm80.cuh"
#include "cuda_status.h"

namespace twcuda {

/// Tile configurations selectable through tw_cuda_attention_set_config (0 picks per head dim).
enum class FwdConfig { kAuto = 0, kWarps4 = 1, kWarps4Occupancy = 2, kWarps8 = 3 };
constexpr int kFwdConfigs = 3;

template <typename Tile>
tw_status launch_tile(const AttentionArgs& args, int q_heads, int batch, cudaStream_t stream) {
    const auto kernel = attention_fwd_kernel<typename Tile::Element, Tile>;
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
///  kWarps4:          64 query rows per block (4 warps), 2 blocks per SM (up to 255 registers).
///  kWarps4Occupancy: the same rows with 64-key tiles and a register cap for 3 (D=128) or 4
///                    (D=64) blocks per SM: more warps to hide the softmax between the two GEMMs.
///  kWarps8:          128 query rows per block share each K/V tile: half the L2 traffic per flop.
template <typename T>
tw_status launch_attention_fwd(const AttentionArgs& args, int head_dim, FwdConfig config,
                               int q_heads, int batch, cudaStream_t stream) {
    if (head_dim == 64) {
        switch (config) {
            case FwdConfig::kWarps4Occupancy:
                return launch_tile<FwdTile<T, 64, 4, 64, 4>>(args, q_heads, batch, stream);
            case FwdConfig::kWarps8:
                return launch_tile<FwdTile<T, 64, 8, 64, 2>>(args, q_heads, batch, stream);
            default:
                return launch_tile<FwdTile<T, 64, 4, 128, 2>>(args, q_heads, batch, stream);
        }
    }
    switch (config) {
        case FwdConfig::kWarps4Occupancy:
            return launch_tile<FwdTile<T, 128, 4, 64, 3>>(args, q_heads, batch, stream);
        case FwdConfig::kWarps8:
            return launch_tile<FwdTile<T, 128, 8, 64, 1>>(args, q_heads, batch, stream);
        default:
            return launch_tile<FwdTile<T, 128, 4, 64, 2>>(args, q_heads, batch, stream);
    }
}

tw_status launch_attention_fwd_f16(const AttentionArgs& args, int head_dim, FwdConfig config,
                                   int q_heads, int batch, cudaStream_t stream);
tw_status launch_attention_fwd_bf16(const AttentionArgs& args, int head_dim, FwdConfig config,
                                    int q_heads, int batch, cudaStream_t stream);

}  // namespace twcuda
