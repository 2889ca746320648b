// Host-side launch of one attention_fwd_kernel instantiation: raise its shared-memory limit once
// per device, launch on the caller's stream, check the launch.
#pragma once

#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "attention_fwd_sm80.cuh"
#include "attention_fwd_sm90.cuh"
#include "attention_fwd_sm90_ws.cuh"
#include "cuda_status.h"

namespace twcuda {

/// Tile configurations selectable through tw_cuda_attention_set_config (0 picks per device and
/// head dim). Variants measured slower everywhere were removed (docs/history/cuda-notes.md).
enum class FwdConfig {
    kAuto = 0,
    kWarps4 = 1,                  // sm80: 4 warps x 16 query rows
    kWarps4Rows32 = 2,            // sm80: 4 warps x 32 query rows
    kHopperWgmma = 3,             // sm90a: 2 warpgroups x 64 rows, 1 block per SM
    kHopperWgmmaSmall = 4,        // sm90a: 1 warpgroup x 64 rows, 2-3 blocks per SM
    kHopperWgmmaSingleStage = 5,  // sm90a: 1 warpgroup, 128-key tiles, one K and one V buffer
    kHopperWs = 6  // sm90a: TMA producer + 2 consumer warpgroups in ping-pong (FlashAttention-3)
};
constexpr int kFwdConfigs = 6;

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
    a.num_m_blocks =
        static_cast<int>((static_cast<int64_t>(args.q_len) + Tile::kBlockM - 1) / Tile::kBlockM);
    const dim3 grid(static_cast<unsigned>(a.num_m_blocks), static_cast<unsigned>(q_heads),
                    static_cast<unsigned>(batch));
    kernel<<<grid, Tile::kThreads, Tile::kSmemBytes, stream>>>(a);
    TWC_CHECK(cudaGetLastError());
    return TW_OK;
}

/// cuTensorMapEncodeTiled from the driver, found through the runtime (so that the library needs no
/// link against libcuda); null if the driver lacks it.
inline PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
    static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
        void* fn = nullptr;
        cudaDriverEntryPointQueryResult found{};
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                             cudaEnableDefault, &found) != cudaSuccess ||
            found != cudaDriverEntryPointSuccess) {
            (void)cudaGetLastError();
            return static_cast<PFN_cuTensorMapEncodeTiled_v12000>(nullptr);
        }
        return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
    }();
    return encode;
}

/// TMA map of a [batch, heads, len, D] tensor with element strides (batch, head, row), read in
/// boxes of [box_rows, 64] with 128-byte swizzling (the wgmma K-major layout of the kernels).
/// False when TMA cannot express it (a zero stride, strides past 2^40 bytes): the caller falls
/// back to a cp.async kernel.
template <typename T>
bool encode_tensor_map(CUtensorMap* map, const void* base, int64_t head_dim, int64_t len,
                       int64_t heads, int64_t batch, const int64_t (&strides)[3], int box_rows) {
    const auto encode = tensor_map_encoder();
    if (encode == nullptr) return false;
    for (int i = 0; i < 3; ++i) {
        if (strides[i] <= 0) return false;
    }
    const CUtensorMapDataType type = std::is_same<T, __half>::value
                                         ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16
                                         : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
    const cuuint64_t dims[4] = {static_cast<cuuint64_t>(head_dim), static_cast<cuuint64_t>(len),
                                static_cast<cuuint64_t>(heads), static_cast<cuuint64_t>(batch)};
    const cuuint64_t byte_strides[3] = {static_cast<cuuint64_t>(strides[2]) * sizeof(T),
                                        static_cast<cuuint64_t>(strides[1]) * sizeof(T),
                                        static_cast<cuuint64_t>(strides[0]) * sizeof(T)};
    const cuuint32_t box[4] = {64, static_cast<cuuint32_t>(box_rows), 1, 1};
    const cuuint32_t element_strides[4] = {1, 1, 1, 1};
    return encode(map, type, 4, const_cast<void*>(base), dims, byte_strides, box, element_strides,
                  CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                  CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

/// Launches the warp-specialised kernel (attention_fwd_sm90_ws.cuh): persistent, one block per
/// SM looping over the (m-block, head, batch) work items in pairs. *launched is false (and
/// nothing runs) when the tensors cannot be described by TMA maps.
template <typename Tile>
tw_status launch_ws_tile(const AttentionArgs& args, int q_heads, int batch, int head_dim,
                         cudaStream_t stream, bool* launched) {
    using T = typename Tile::Element;
    *launched = false;
    AttentionArgs a = args;
    a.num_m_blocks =
        static_cast<int>((static_cast<int64_t>(args.q_len) + Tile::kBlockM - 1) / Tile::kBlockM);
    const int64_t items = static_cast<int64_t>(a.num_m_blocks) * q_heads * batch;
    if (items > INT32_MAX / 2) return TW_OK;  // item indices stay far from int overflow
    const int kv_heads = q_heads / args.group;
    CUtensorMap tm_q, tm_k, tm_v;
    if (!encode_tensor_map<T>(&tm_q, args.q, head_dim, args.q_len, q_heads, batch, args.q_strides,
                              Tile::kBlockM) ||
        !encode_tensor_map<T>(&tm_k, args.k, head_dim, args.kv_len, kv_heads, batch, args.k_strides,
                              Tile::kBlockN) ||
        !encode_tensor_map<T>(&tm_v, args.v, head_dim, args.kv_len, kv_heads, batch, args.v_strides,
                              Tile::kBlockN)) {
        return TW_OK;
    }
    const auto kernel = attention_fwd_sm90_ws_kernel<T, Tile>;
    static std::atomic<uint64_t> configured_devices{0};
    int device = 0;
    TWC_CHECK(cudaGetDevice(&device));
    const uint64_t bit = uint64_t{1} << (device & 63);
    if ((configured_devices.load(std::memory_order_relaxed) & bit) == 0) {
        TWC_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       Tile::kSmemBytes));
        configured_devices.fetch_or(bit, std::memory_order_relaxed);
    }
    int sms = 0;
    TWC_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    // One block fits per SM; a block takes items in pairs.
    const int blocks = static_cast<int>(std::min<int64_t>((items + 1) / 2, sms));
    kernel<<<blocks, Tile::kThreads, Tile::kSmemBytes, stream>>>(a, static_cast<int>(items), tm_q,
                                                                 tm_k, tm_v);
    TWC_CHECK(cudaGetLastError());
    *launched = true;
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
///  kHopperWs:         FlashAttention-3's structure (attention_fwd_sm90_ws.cuh): a TMA producer
///                     warp, 2 ring slots of K and of V on mbarriers, two consumer warpgroups x 64
///                     rows in ping-pong, S_(t+1) overlapped with the softmax of t, persistent
///                     blocks; 128-key tiles (192 at D=64 without a causal mask). Tensors TMA
///                     cannot describe (a zero stride) run kHopperWgmmaSmall (D=64) or
///                     kHopperWgmmaSingleStage (D=128).
/// The sm90a kernels need compute capability 9.x, which the caller checks.
template <typename T>
tw_status launch_attention_fwd(const AttentionArgs& args, int head_dim, FwdConfig config,
                               int q_heads, int batch, cudaStream_t stream) {
    const bool d64 = head_dim == 64;
    if (config == FwdConfig::kHopperWs) {
        // Key tiles: 128, and 192 at D=64 without a causal mask (+2-5%, cuda-notes.md v11). Two
        // ring slots (three measured 2% slower at D=128, four no faster at D=64: v13), two Q slots.
        // Persistent blocks taking items in pairs (causal: longest with shortest) beat one block
        // per item by 0-9% (v15), and 176-key tiles without persistence (v14) by 1%.
        bool launched = false;
        tw_status s = TW_OK;
        if (!d64) {
            s = launch_ws_tile<Sm90WsTile<T, 128, 128, 2, 2>>(args, q_heads, batch, 128, stream,
                                                              &launched);
        } else if (!args.causal) {
            s = launch_ws_tile<Sm90WsTile<T, 64, 192, 2, 2>>(args, q_heads, batch, 64, stream,
                                                             &launched);
        } else {
            s = launch_ws_tile<Sm90WsTile<T, 64, 128, 2, 2>>(args, q_heads, batch, 64, stream,
                                                             &launched);
        }
        if (s != TW_OK || launched) return s;
        // Not expressible as TMA maps: the best cp.async kernel for the head dim.
        config = d64 ? FwdConfig::kHopperWgmmaSmall : FwdConfig::kHopperWgmmaSingleStage;
    }
    switch (config) {
        case FwdConfig::kHopperWgmma:
            if (d64)
                return launch_tile<Sm90Tile<T, 64, 2, 128, 1>, true>(args, q_heads, batch, stream);
            return launch_tile<Sm90Tile<T, 128, 2, 128, 1>, true>(args, q_heads, batch, stream);
        case FwdConfig::kHopperWgmmaSmall:
            if (d64)
                return launch_tile<Sm90Tile<T, 64, 1, 128, 3>, true>(args, q_heads, batch, stream);
            return launch_tile<Sm90Tile<T, 128, 1, 64, 2>, true>(args, q_heads, batch, stream);
        case FwdConfig::kHopperWgmmaSingleStage:
            if (d64) {
                return launch_tile<Sm90Tile<T, 64, 1, 128, 3, true>, true>(args, q_heads, batch,
                                                                           stream);
            }
            return launch_tile<Sm90Tile<T, 128, 1, 128, 2, true>, true>(args, q_heads, batch,
                                                                        stream);
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
