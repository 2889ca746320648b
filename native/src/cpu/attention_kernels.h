// Per-ISA entry points of the fused attention, called by attention.cpp after validation.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tilewise/tilewise.h"

namespace tw {

/// Portable C++ (any CPU). Parameters are already validated.
tw_status attention_portable(const tw_attention_params& p);
/// AVX2 + FMA + F16C.
tw_status attention_avx2(const tw_attention_params& p);
/// AVX-512; bf16 compute (p.compute == TW_BF16) rounds to bf16 and multiplies in fp32.
tw_status attention_avx512(const tw_attention_params& p);
/// AVX-512 on a CPU with AVX512-BF16: bf16 compute runs as vdpbf16ps dot products.
tw_status attention_avx512_bf16_dot(const tw_attention_params& p);

/// A 64-byte aligned buffer of at least `bytes` for one call's own buffers (converted K/V, split-KV
/// partials), owned by the calling thread and reused by its next call; nullptr if out of memory.
/// Not for tasks: workers use tw::thread_scratch. Call attention_workspace_trim() after the call.
void* attention_workspace(size_t bytes);
/// Frees the calling thread's workspace if it is larger than the size worth keeping between calls.
void attention_workspace_trim();

/// True if query row i of a causal attention can see key j (bottom-right alignment).
static inline bool causal_visible(int64_t i, int64_t j, int64_t q_len, int64_t kv_len) {
    return j <= i + (kv_len - q_len);
}

}  // namespace tw
