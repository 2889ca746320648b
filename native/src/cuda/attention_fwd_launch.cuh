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

/// Tile configurations selectable through tw_cuda_attention_set_config (0 picks per device and
/// head dim). Variants measured slower everywhere were removed (native/bench/cuda/NOTES.md).
enum class FwdConfig {
    kAuto = 0,
    kWarps4 = 1,           // sm80: 4 warps x 16 query rows
    kWarps4Rows32 = 2,     // sm80: 4 warps x 32 query rows
    kHopperWgmma = 3,      // sm90a: 2 warpgroups x 64 rows, 1 block per SM
    kHopperWgmmaSmall = 4,  // sm90a: 1 warpgroup x 64 rows, 2-3 blocks per SM
    kHopperWgmmaSingleStage = 5  // sm90a: 1 warpgroup, 128-key tiles, one K and one V buffer
};
constexpr int kFwdConfigs = 5;

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
///  kWarps4:           4 warps x 16 query rows, 2 blocks per SM (up to 255 registers).
///  kWarps4Rows32:     4 warps x 32 query rows (two m16 tiles each): every K/V fragment read from
///                     shared memory feeds two MMAs; at D=128 Q is re-read from shared memory
///                     (FlashAttention-2's choice) to leave registers for O and S.
///  kHopperWgmma:      attention_fwd_sm90.cuh, two warpgroups x 64 rows, 128-key tiles, one block
///                     per SM (up to 255 registers).
///  kHopperWgmmaSmall: one warpgroup x 64 rows per block and 2 (D=128, 64-key tiles) or 3 (D=64,
///                     128-key tiles) blocks per SM, whose softmax and GEMM phases interleave.
///  kHopperWgmmaSingleStage: one warpgroup, 128-key tiles, single K and V buffers loaded in
///                     turn (80 KiB at D=128): 2 blocks per SM at D=128, 3 at D=64.
/// The sm90a kernels need compute capability 9.x, which the caller checks.
template <typename T>
tw_status launch_attention_fwd(const AttentionArgs& args, int head_dim, FwdConfig config,
                               int q_heads, int batch, cudaStream_t stream) {
    const bool d64 = head_dim == 64;
    switch (config) {
        case FwdConfig::kHopperWgmma:
            if (d64) return launch_tile<Sm90Tile<T, 64, 2, 128, 1>, true>(args, q_heads, batch, stream);
            return launch_tile<Sm90Tile<T, 128, 2, 128, 1>, true>(args, q_heads, batch, stream);
        case FwdConfig::kHopperWgmmaSmall:
            if (d64) return launch_tile<Sm90Tile<T, 64, 1, 128, 3>, true>(args, q_heads, batch, stream);
            return launch_tile<Sm90Tile<T, 128, 1, 64, 2>, true>(args, q_heads, batch, stream);
        case FwdConfig::kHopperWgmmaSingleStage:
            if (d64) {
                return launch_tile<Sm90Tile<T, 64, 1, 128, 3, true>, true>(args, q_heads, batch, stream);
            }
            return launch_tile<Sm90Tile<T, 128, 1, 128, 2, true>, true>(args, q_heads, batch, stream);
        case FwdConfig::kWarps4:
            if (d64) return launch_tile<FwdTile<T, 64, 4, 1, 128, 2>>(args, q_heads, batch, stream);
            return launch_tile<FwdTile<T, 128, 4, 1, 64, 2>>(args, q_heads, batch, stream);
        default:  // kWarps4Rows32
            if (d64) return launch_tile<FwdTile<T, 64, 4, 2, 64, 2>>(args, q_heads, batch, stream);
            return launch_tile<FwdTile<T, 128, 4, 2, 64, 2, false>>(args, q_heads, batch, stream);
    }
}

tw_status launch_attention_fwd_f16(const AttentionArgs& args, int head_dim, FwdConfig config,
                                   int q_heads, int batch, cudaStream_t stream);
tw_status launch_attention_fwd_bf16(const AttentionArgs& args, int head_dim, FwdConfig config,
                                    int q_heads, int batch, cudaStream_t stream);

}  // namespace twcuda
