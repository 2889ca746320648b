// Rotary position embeddings (tw_rope_apply), Hugging Face's "rotate_half" form, in place on fp32
// rows [tokens, heads, head_dim] a token stride apart:
//
//   inv_freq[i] = 1 / theta^(float(2i) / d)            i in [0, d/2), fp32 as torch computes it
//   f = float(pos) * inv_freq[i];   c = cos f,  s = sin f   (rounded to fp32)
//   x'[i] = x[i]·c - x[i + d/2]·s,   x'[i + d/2] = x[i + d/2]·c + x[i]·s
//
// Bit-compatibility with torch's eager path (q * cos + rotate_half(q) * sin) matters more here than
// speed: each product is rounded on its own (this file is compiled with -ffp-contract=off, see
// CMakeLists.txt), and pow, cos and sin are computed in double and rounded once (torch's fp32
// versions are within about 1 ulp of that). The rotation itself is memory-bound; the cost worth
// saving is the trigonometry, so when positions are small and non-negative (the usual case: a
// sequence's positions are 0..len-1, shared by every head and every packed sequence) cos and sin
// are tabulated once per distinct position instead of once per token.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <new>
#include <vector>

#include "runtime.h"
#include "tilewise/tilewise.h"

namespace tw {
namespace {

constexpr int64_t kTokensPerTask = 32;     // rows per task: enough tasks, little overhead
constexpr int64_t kPositionsPerTask = 64;  // table rows per task when tabulating cos and sin
// Positions past tokens + this are not tabulated (the table would cost more than it saves).
constexpr int64_t kTableSlack = 4096;

struct Rope {
    float* x;
    int64_t tokens, heads, head_dim, half, token_stride;
    const int32_t* positions;
    std::vector<float> inv_freq;  // [half]
    std::vector<float> table;     // [positions][2][half]: cos, then sin; empty when not tabulated

    void angles(int64_t position, float* cos_out, float* sin_out) const {
        const float pos = static_cast<float>(position);
        for (int64_t i = 0; i < half; ++i) {
            const float f = pos * inv_freq[i];
            cos_out[i] = static_cast<float>(std::cos(static_cast<double>(f)));
            sin_out[i] = static_cast<float>(std::sin(static_cast<double>(f)));
        }
    }

    void rotate_token(int64_t t, const float* c, const float* s) const {
        float* row = x + t * token_stride;
        for (int64_t h = 0; h < heads; ++h, row += head_dim) {
            float* lo = row;
            float* hi = row + half;
            for (int64_t i = 0; i < half; ++i) {
                const float a = lo[i], b = hi[i];
                lo[i] = a * c[i] - b * s[i];
                hi[i] = b * c[i] + a * s[i];
            }
        }
    }

    static void table_task(void* ctx, int64_t task, int) {
        auto& self = *static_cast<Rope*>(ctx);
        const int64_t count = static_cast<int64_t>(self.table.size()) / (2 * self.half);
        const int64_t end = std::min(count, (task + 1) * kPositionsPerTask);
        for (int64_t pos = task * kPositionsPerTask; pos < end; ++pos) {
            float* entry = self.table.data() + pos * 2 * self.half;
            self.angles(pos, entry, entry + self.half);
        }
    }

    static void rotate_task(void* ctx, int64_t task, int) {
        auto& self = *static_cast<Rope*>(ctx);
        const int64_t end = std::min(self.tokens, (task + 1) * kTokensPerTask);
        float* own = nullptr;
        if (self.table.empty()) {
            own = static_cast<float*>(thread_scratch(sizeof(float) * 2 * self.half));
            if (own == nullptr) return;  // checked by the caller
        }
        for (int64_t t = task * kTokensPerTask; t < end; ++t) {
            const float* c;
            if (own == nullptr) {
                c = self.table.data() + int64_t{self.positions[t]} * 2 * self.half;
            } else {
                self.angles(self.positions[t], own, own + self.half);
                c = own;
            }
            self.rotate_token(t, c, c + self.half);
        }
    }
};

}  // namespace
}  // namespace tw

extern "C" tw_status tw_rope_apply(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                                   int64_t token_stride, const int32_t* positions, float theta) {
    using tw::fail;
    if (tokens < 0 || heads < 1 || head_dim < 2 || head_dim % 2 != 0) {
        return fail(TW_ERR_INVALID_ARGUMENT,
                    "rope: tokens=%lld heads=%lld head_dim=%lld: need tokens >= 0, heads >= 1 and "
                    "an even head_dim >= 2",
                    (long long)tokens, (long long)heads, (long long)head_dim);
    }
    if (heads > (int64_t{1} << 30) || head_dim > (int64_t{1} << 20)) {
        return fail(TW_ERR_INVALID_ARGUMENT, "rope: heads=%lld head_dim=%lld are out of range",
                    (long long)heads, (long long)head_dim);
    }
    if (tokens > 1 && token_stride < heads * head_dim) {
        return fail(TW_ERR_INVALID_ARGUMENT,
                    "rope: token_stride %lld is smaller than heads * head_dim = %lld (rows would "
                    "overlap)",
                    (long long)token_stride, (long long)(heads * head_dim));
    }
    if (!(theta > 0.0f) || !std::isfinite(theta)) {
        return fail(TW_ERR_INVALID_ARGUMENT, "rope: theta %g must be positive and finite",
                    static_cast<double>(theta));
    }
    if (tokens == 0) return tw::ok();
    if (x == nullptr || positions == nullptr) {
        return fail(TW_ERR_INVALID_ARGUMENT, "rope: x and positions must not be null");
    }

    tw::Rope rope;
    rope.x = x;
    rope.tokens = tokens;
    rope.heads = heads;
    rope.head_dim = head_dim;
    rope.half = head_dim / 2;
    rope.token_stride = token_stride;
    rope.positions = positions;
    try {
        rope.inv_freq.resize(static_cast<size_t>(rope.half));
        for (int64_t i = 0; i < rope.half; ++i) {
            // torch: arange(0, d, 2).float() / d in fp32, base ** that in fp32, then 1.0 / it.
            const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
            const float power = static_cast<float>(
                std::pow(static_cast<double>(theta), static_cast<double>(exponent)));
            rope.inv_freq[i] = 1.0f / power;
        }
        int32_t lowest = positions[0], highest = positions[0];
        for (int64_t t = 1; t < tokens; ++t) {
            lowest = std::min(lowest, positions[t]);
            highest = std::max(highest, positions[t]);
        }
        if (lowest >= 0 && int64_t{highest} < tokens + tw::kTableSlack) {
            rope.table.resize(static_cast<size_t>((int64_t{highest} + 1) * 2 * rope.half));
        }
    } catch (const std::bad_alloc&) {
        rope.table.clear();
        if (rope.inv_freq.size() != static_cast<size_t>(rope.half)) {
            return fail(TW_ERR_OUT_OF_MEMORY, "rope: out of memory");
        }
    }
    if (rope.table.empty() && tw::thread_scratch(sizeof(float) * 2 * rope.half) == nullptr) {
        return fail(TW_ERR_OUT_OF_MEMORY, "rope: cannot allocate %lld bytes of scratch",
                    (long long)(sizeof(float) * 2 * rope.half));
    }
    if (!rope.table.empty()) {
        const int64_t count = static_cast<int64_t>(rope.table.size()) / (2 * rope.half);
        tw::parallel_for((count + tw::kPositionsPerTask - 1) / tw::kPositionsPerTask,
                         &tw::Rope::table_task, &rope);
    }
    tw::parallel_for((tokens + tw::kTokensPerTask - 1) / tw::kTokensPerTask, &tw::Rope::rotate_task,
                     &rope);
    return tw::ok();
}
