// tw_cuda_attention_forward: validates the request on the host (nothing touches device memory
// before every check has passed), then launches the tile configuration for its dtype and head dim.
#include <cuda_runtime.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>

#include "attention_fwd_launch.cuh"
#include "cuda_status.h"
#include "tilewise/tilewise_cuda.h"

namespace twcuda {
namespace {

std::atomic<int> selected_config{static_cast<int>(FwdConfig::kAuto)};

constexpr int64_t kMaxGridYZ = 65535;  // q_heads and batch are grid dimensions y and z

bool aligned16(const void* p) {
    return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

tw_status check_strides(const char* name, const int64_t (&s)[3]) {
    for (int i = 0; i < 3; ++i) {
        if (s[i] < 0 || s[i] % 8 != 0) {
            return fail(TW_ERR_INVALID_ARGUMENT,
                        std::string(name) + "_strides[" + std::to_string(i) +
                            "] = " + std::to_string(s[i]) +
                            " must be a non-negative multiple of 8 elements (16-byte rows)");
        }
    }
    return TW_OK;
}

tw_status validate(const tw_cuda_attention_params& p) {
    if (p.dtype != TW_F16 && p.dtype != TW_BF16) {
        return fail(TW_ERR_UNSUPPORTED, "CUDA attention supports dtype TW_F16 and TW_BF16 only");
    }
    if (p.batch < 1 || p.q_heads < 1 || p.kv_heads < 1 || p.q_len < 1 || p.kv_len < 1) {
        return fail(TW_ERR_INVALID_ARGUMENT,
                    "batch, q_heads, kv_heads, q_len and kv_len must be >= 1 (got " +
                        std::to_string(p.batch) + ", " + std::to_string(p.q_heads) + ", " +
                        std::to_string(p.kv_heads) + ", " + std::to_string(p.q_len) + ", " +
                        std::to_string(p.kv_len) + ")");
    }
    if (p.batch > kMaxGridYZ || p.q_heads > kMaxGridYZ || p.q_len > INT32_MAX ||
        p.kv_len > INT32_MAX) {
        return fail(TW_ERR_UNSUPPORTED, "batch and q_heads must be <= 65535 and lengths < 2^31");
    }
    if (p.q_heads % p.kv_heads != 0) {
        return fail(TW_ERR_INVALID_ARGUMENT, "kv_heads (" + std::to_string(p.kv_heads) +
                                                 ") must divide q_heads (" +
                                                 std::to_string(p.q_heads) + ")");
    }
    if (p.head_dim != 64 && p.head_dim != 128) {
        return fail(TW_ERR_UNSUPPORTED, "CUDA attention supports head_dim 64 and 128, got " +
                                            std::to_string(p.head_dim));
    }
    if (p.q == nullptr || p.k == nullptr || p.v == nullptr || p.o == nullptr) {
        return fail(TW_ERR_INVALID_ARGUMENT, "q, k, v and o must be non-null device pointers");
    }
    if (!aligned16(p.q) || !aligned16(p.k) || !aligned16(p.v) || !aligned16(p.o)) {
        return fail(TW_ERR_INVALID_ARGUMENT, "q, k, v and o must be 16-byte aligned");
    }
    if (tw_status s = check_strides("q", p.q_strides)) return s;
    if (tw_status s = check_strides("k", p.k_strides)) return s;
    if (tw_status s = check_strides("v", p.v_strides)) return s;
    if (tw_status s = check_strides("o", p.o_strides)) return s;
    if (!(p.scale > 0.f) || !std::isfinite(p.scale)) {
        return fail(TW_ERR_INVALID_ARGUMENT, "scale must be positive and finite");
    }
    if (p.lse != nullptr && (reinterpret_cast<uintptr_t>(p.lse) & 3u) != 0) {
        return fail(TW_ERR_INVALID_ARGUMENT, "lse must be 4-byte aligned");
    }
    return TW_OK;
}

/// Compute capability major version of the current device.
tw_status device_major(int* major) {
    int device = 0;
    TWC_CHECK(cudaGetDevice(&device));
    TWC_CHECK(cudaDeviceGetAttribute(major, cudaDevAttrComputeCapabilityMajor, device));
    return TW_OK;
}

FwdConfig choose_config(const tw_cuda_attention_params& p) {
    const int selected = selected_config.load(std::memory_order_relaxed);
    if (selected != static_cast<int>(FwdConfig::kAuto)) return static_cast<FwdConfig>(selected);
    // Measured on an H200 (docs/history/cuda-notes.md, v14-v16): on Hopper the warp-specialised
    // TMA kernel wins at both head dims; elsewhere the sm80 kernel with 32 query rows per warp.
    int major = 0;
    if (device_major(&major) == TW_OK && major == 9) return FwdConfig::kHopperWs;
    return FwdConfig::kWarps4Rows32;
}

}  // namespace
}  // namespace twcuda

extern "C" {

TW_API tw_status tw_cuda_attention_forward(const tw_cuda_attention_params* p) {
    using namespace twcuda;
    if (p == nullptr) return fail(TW_ERR_INVALID_ARGUMENT, "params is null");
    if (tw_status s = validate(*p)) return s;
    if (tw_status s = require_device()) return s;

    AttentionArgs args{};
    args.q = p->q;
    args.k = p->k;
    args.v = p->v;
    args.o = p->o;
    args.lse = p->lse;
    args.kv_valid_lengths = p->kv_valid_lengths;
    for (int i = 0; i < 3; ++i) {
        args.q_strides[i] = p->q_strides[i];
        args.k_strides[i] = p->k_strides[i];
        args.v_strides[i] = p->v_strides[i];
        args.o_strides[i] = p->o_strides[i];
    }
    args.q_len = static_cast<int>(p->q_len);
    args.kv_len = static_cast<int>(p->kv_len);
    args.q_heads = static_cast<int>(p->q_heads);
    args.group = static_cast<int>(p->q_heads / p->kv_heads);
    args.scale_log2 = p->scale * 1.4426950408889634f;
    args.causal = p->causal != 0;

    const FwdConfig config = choose_config(*p);
    if (config >= FwdConfig::kHopperWgmma) {
        int major = 0;
        if (tw_status s = device_major(&major)) return s;
        if (major != 9) {
            return fail(TW_ERR_UNSUPPORTED,
                        "the wgmma configuration needs a compute capability 9.x GPU");
        }
    }
    const auto stream = static_cast<cudaStream_t>(p->stream);
    const int head_dim = static_cast<int>(p->head_dim);
    const int q_heads = static_cast<int>(p->q_heads);
    const int batch = static_cast<int>(p->batch);
    const tw_status s =
        p->dtype == TW_F16
            ? launch_attention_fwd_f16(args, head_dim, config, q_heads, batch, stream)
            : launch_attention_fwd_bf16(args, head_dim, config, q_heads, batch, stream);
    if (s != TW_OK) return s;
    return ok();
}

TW_API tw_status tw_cuda_attention_set_config(int config) {
    if (config < 0 || config > twcuda::kFwdConfigs) {
        return twcuda::fail(TW_ERR_INVALID_ARGUMENT, "config must be 0 (auto) to " +
                                                         std::to_string(twcuda::kFwdConfigs) +
                                                         ", got " + std::to_string(config));
    }
    twcuda::selected_config.store(config, std::memory_order_relaxed);
    return twcuda::ok();
}

}  // extern "C"
