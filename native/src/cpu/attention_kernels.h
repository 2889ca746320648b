// Per-ISA entry points of the fused attention, called by attention.cpp after validation.
#pragma once

#include <algorithm>
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

/// Test hook: key tiles (portable: key blocks) visited by attention tasks since the last reset,
/// summed once per task (one relaxed atomic add), so tests can check that a sliding window skips
/// the tiles outside it.
void count_key_tiles(int64_t tiles);
int64_t key_tiles_visited();
void reset_key_tiles_visited();

/// True if query row i of a causal attention can see key j (bottom-right alignment).
static inline bool causal_visible(int64_t i, int64_t j, int64_t q_len, int64_t kv_len) {
    return j <= i + (kv_len - q_len);
}

/// The sliding window of a call as closed key ranges relative to the aligned query position
/// i' = i + (kv_len - q_len): query i sees keys [i' - left, i' + right]. An unlimited side (or no
/// window) is a bound far beyond any sequence, so callers can clamp without special cases.
struct WindowSpan {
    int64_t left, right;
};
constexpr int64_t kUnlimitedWindow = int64_t{1} << 62;
static inline WindowSpan window_span(const tw_attention_params& p) {
    if (!p.has_window) return {kUnlimitedWindow, kUnlimitedWindow};
    return {p.window_left < 0 ? kUnlimitedWindow : p.window_left,
            p.window_right < 0 ? kUnlimitedWindow : p.window_right};
}

/// The relative-position bias of query i and key j of head h (0 without a table).
static inline float rel_bias_term(const tw_attention_params& p, int64_t h, int64_t i, int64_t j) {
    const int64_t R = p.rel_bias_radius;
    const int64_t d = std::min(std::max(j - (i + p.kv_len - p.q_len), -R), R);
    return p.rel_bias[h * p.rel_bias_head_stride + d + R];
}

}  // namespace tw
