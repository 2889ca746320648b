// Fused attention: argument validation and the portable kernel (kernels.cpp picks the variant).
//
//   O[b,h,i,:] = sum_j P[i,j] V[b,g(h),j,:],   P[i,:] = softmax_j(scale * Q[b,h,i,:].K[b,g(h),j,:]
//   + mask[i,j])
//
// computed with the online softmax of FlashAttention: keys are visited in blocks; each query row
// keeps its running maximum m, running sum l and an unnormalised accumulator acc, and when a block
// raises the maximum from m to m', the old acc and l are rescaled by exp(m - m'). At the end
// O = acc / l and lse = m + log(l). Memory is O(block) per thread; no q_len x kv_len buffer exists.
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "half.h"
#include "kernels.h"
#include "runtime.h"

namespace tw {
namespace {

constexpr int64_t kPortableQueryRows = 16;  // query rows per task: enough tasks for load balance
constexpr int64_t kPortableKeyBlock = 64;   // scores held at once per row

/// n elements of a row at base + offset as fp32, rounded to bf16 when `round_bf16`. The storage
/// type is switched on once per row, not per element.
void load_row(const void* base, tw_dtype dtype, int64_t offset, int64_t n, bool round_bf16,
              float* dst) {
    const uint16_t* half = static_cast<const uint16_t*>(base) + offset;
    switch (dtype) {
        case TW_F16:
            for (int64_t d = 0; d < n; ++d) dst[d] = fp16_to_float(half[d]);
            break;
        case TW_BF16:
            for (int64_t d = 0; d < n; ++d) dst[d] = bf16_to_float(half[d]);
            break;
        default:
            std::memcpy(dst, static_cast<const float*>(base) + offset, sizeof(float) * n);
            break;
    }
    if (round_bf16) {
        for (int64_t d = 0; d < n; ++d) dst[d] = bf16_to_float(float_to_bf16(dst[d]));
    }
}

/// n fp32 values stored as a row at base + offset in `dtype` (rounded to nearest even).
void store_row(void* base, tw_dtype dtype, int64_t offset, int64_t n, const float* src) {
    uint16_t* half = static_cast<uint16_t*>(base) + offset;
    switch (dtype) {
        case TW_F16:
            for (int64_t d = 0; d < n; ++d) half[d] = float_to_fp16(src[d]);
            break;
        case TW_BF16:
            for (int64_t d = 0; d < n; ++d) half[d] = float_to_bf16(src[d]);
            break;
        default: std::memcpy(static_cast<float*>(base) + offset, src, sizeof(float) * n); break;
    }
}

/// Whether key j is visible to query i of batch b, and the additive term it gets.
/// (The sliding window is applied by the caller's key range.)
bool mask_term(const tw_attention_params& p, int64_t b, int64_t h, int64_t i, int64_t j,
               float* add) {
    if (p.causal && !causal_visible(i, j, p.q_len, p.kv_len)) return false;
    if (p.kv_valid_lengths && j >= p.kv_valid_lengths[b]) return false;
    if (p.key_padding_mask && p.key_padding_mask[b * p.kv_len + j] == 0) return false;
    *add = 0.0f;
    if (p.bias) {
        *add = p.bias[b * p.bias_strides[0] + h * p.bias_strides[1] + i * p.bias_strides[2] +
                      j * p.bias_strides[3]];
    }
    if (p.rel_bias) *add += rel_bias_term(p, h, i, j);
    if (*add == -std::numeric_limits<float>::infinity()) return false;
    return true;
}

std::atomic<int64_t> key_tiles{0};

struct PortableTask {
    const tw_attention_params* p;
    int64_t row_blocks;
};

void portable_task(void* ctx, int64_t task, int) {
    const auto& t = *static_cast<PortableTask*>(ctx);
    const auto& p = *t.p;
    const int64_t rb = task % t.row_blocks;
    const int64_t bh = task / t.row_blocks;
    const int64_t h = bh % p.q_heads;
    const int64_t b = bh / p.q_heads;
    const int64_t g = h / (p.q_heads / p.kv_heads);
    const int64_t D = p.head_dim;
    const bool bf16_compute = p.compute == TW_BF16;
    const WindowSpan window = window_span(p);

    float* scratch =
        static_cast<float*>(thread_scratch(sizeof(float) * (3 * D + kPortableKeyBlock)));
    if (scratch == nullptr) return;  // the caller checked this size up front
    float* q = scratch;
    float* acc = q + D;
    float* row = acc + D;  // one K or V row as fp32
    float* scores = row + D;
    const float neg_inf = -std::numeric_limits<float>::infinity();
    int64_t blocks = 0;

    for (int64_t i = rb * kPortableQueryRows; i < std::min(p.q_len, (rb + 1) * kPortableQueryRows);
         ++i) {
        const int64_t q_base = b * p.q_strides[0] + h * p.q_strides[1] + i * p.q_strides[2];
        load_row(p.q, p.dtype, q_base, D, bf16_compute, q);
        for (int64_t d = 0; d < D; ++d) acc[d] = 0.0f;
        float m = neg_inf, l = 0.0f;
        // Keys inside the sliding window only (all keys without one).
        const int64_t aligned = i + (p.kv_len - p.q_len);
        const int64_t first_key =
            window.left < kUnlimitedWindow ? std::max<int64_t>(0, aligned - window.left) : 0;
        const int64_t end_key = window.right < kUnlimitedWindow
                                    ? std::min<int64_t>(p.kv_len, aligned + window.right + 1)
                                    : p.kv_len;
        for (int64_t j0 = first_key; j0 < end_key; j0 += kPortableKeyBlock) {
            const int64_t j1 = std::min(end_key, j0 + kPortableKeyBlock);
            ++blocks;
            float block_max = neg_inf;
            for (int64_t j = j0; j < j1; ++j) {
                float add;
                if (!mask_term(p, b, h, i, j, &add)) {
                    scores[j - j0] = neg_inf;
                    continue;
                }
                const int64_t k_base = b * p.k_strides[0] + g * p.k_strides[1] + j * p.k_strides[2];
                load_row(p.k, p.dtype, k_base, D, bf16_compute, row);
                float dot = 0.0f;
                for (int64_t d = 0; d < D; ++d) dot += q[d] * row[d];
                float s = dot * p.scale + add;
                scores[j - j0] = s;
                // NaN scores propagate: a NaN maximum makes the whole row NaN, as in the naive
                // form.
                if (!(s <= block_max)) block_max = s;
            }
            if (block_max == neg_inf) continue;  // every key of this block is masked
            const float new_m = (m >= block_max) ? m : block_max;
            const float correction = (m == neg_inf) ? 0.0f : std::exp(m - new_m);
            l *= correction;
            for (int64_t d = 0; d < D; ++d) acc[d] *= correction;
            for (int64_t j = j0; j < j1; ++j) {
                const float s = scores[j - j0];
                if (s == neg_inf) continue;
                const float w = std::exp(s - new_m);
                l += w;
                const int64_t v_base = b * p.v_strides[0] + g * p.v_strides[1] + j * p.v_strides[2];
                load_row(p.v, p.dtype, v_base, D, false, row);
                for (int64_t d = 0; d < D; ++d) acc[d] += w * row[d];
            }
            m = new_m;
        }
        const int64_t o_base = b * p.o_strides[0] + h * p.o_strides[1] + i * p.o_strides[2];
        const float inv_l = (l > 0.0f) ? 1.0f / l : 0.0f;
        for (int64_t d = 0; d < D; ++d) acc[d] *= inv_l;
        store_row(p.o, p.dtype, o_base, D, acc);
        if (p.lse) {
            p.lse[(b * p.q_heads + h) * p.q_len + i] = (l > 0.0f) ? m + std::log(l) : neg_inf;
        }
    }
    count_key_tiles(blocks);
}

tw_status validate(const tw_attention_params* p) {
    if (p == nullptr) return fail(TW_ERR_INVALID_ARGUMENT, "attention: params is null");
    if (p->dtype != TW_F32 && p->dtype != TW_F16 && p->dtype != TW_BF16) {
        return fail(TW_ERR_INVALID_ARGUMENT, "attention: dtype must be f32, f16 or bf16, got %d",
                    static_cast<int>(p->dtype));
    }
    if (p->compute != TW_F32 && p->compute != TW_BF16) {
        return fail(TW_ERR_INVALID_ARGUMENT, "attention: compute precision must be f32 or bf16");
    }
    if (!p->q || !p->k || !p->v || !p->o) {
        return fail(TW_ERR_INVALID_ARGUMENT, "attention: q, k, v and o must not be null");
    }
    if (p->batch < 1 || p->q_heads < 1 || p->kv_heads < 1 || p->q_len < 1 || p->kv_len < 1) {
        return fail(TW_ERR_INVALID_ARGUMENT,
                    "attention: batch=%lld q_heads=%lld kv_heads=%lld q_len=%lld kv_len=%lld must "
                    "all be positive",
                    (long long)p->batch, (long long)p->q_heads, (long long)p->kv_heads,
                    (long long)p->q_len, (long long)p->kv_len);
    }
    if (p->head_dim < 1 || p->head_dim > TW_ATTENTION_MAX_HEAD_DIM) {
        return fail(TW_ERR_INVALID_ARGUMENT, "attention: head_dim %lld is outside [1, %d]",
                    (long long)p->head_dim, TW_ATTENTION_MAX_HEAD_DIM);
    }
    if (p->q_heads % p->kv_heads != 0) {
        return fail(TW_ERR_INVALID_ARGUMENT,
                    "attention: kv_heads %lld does not divide q_heads %lld", (long long)p->kv_heads,
                    (long long)p->q_heads);
    }
    const int64_t* all_strides[] = {p->q_strides, p->k_strides, p->v_strides, p->o_strides};
    for (const int64_t* s : all_strides) {
        for (int i = 0; i < 3; ++i) {
            if (s[i] < 0) return fail(TW_ERR_INVALID_ARGUMENT, "attention: negative stride");
        }
    }
    if (p->bias) {
        for (int i = 0; i < 4; ++i) {
            if (p->bias_strides[i] < 0) {
                return fail(TW_ERR_INVALID_ARGUMENT, "attention: negative bias stride");
            }
        }
    }
    if (p->rel_bias) {
        if (p->rel_bias_radius < 0 || p->rel_bias_radius > (int64_t{1} << 30)) {
            return fail(TW_ERR_INVALID_ARGUMENT,
                        "attention: rel_bias_radius %lld is outside [0, 2^30]",
                        (long long)p->rel_bias_radius);
        }
        if (p->rel_bias_head_stride < 0) {
            return fail(TW_ERR_INVALID_ARGUMENT, "attention: negative rel_bias_head_stride");
        }
    }
    if (!std::isfinite(p->scale))
        return fail(TW_ERR_INVALID_ARGUMENT, "attention: scale is not finite");
    if (p->kv_valid_lengths) {
        for (int64_t b = 0; b < p->batch; ++b) {
            if (p->kv_valid_lengths[b] < 0 || p->kv_valid_lengths[b] > p->kv_len) {
                return fail(TW_ERR_INVALID_ARGUMENT,
                            "attention: kv_valid_lengths[%lld] = %d is outside [0, %lld]",
                            (long long)b, p->kv_valid_lengths[b], (long long)p->kv_len);
            }
        }
    }
    return ok();
}

/// Workspaces up to this size stay with their thread between calls (the encoder's bf16 K/V pairs
/// take 6 MB; B=4 x N=8192 or N=32768 with bf16 compute ~64 MB); larger ones, from longer
/// sequences where one call dwarfs the page faults of a fresh allocation, are freed after the
/// call. Measured at B=4 H=8 N=8192 D=64 bf16 compute: freeing a 67 MB workspace after each call
/// (the first limit, 32 MiB) cost 40% of the call in page faults (222-325 vs 402 GFLOP/s).
constexpr size_t kRetainedWorkspaceBytes = size_t(128) << 20;

struct Workspace {
    void* data = nullptr;
    size_t bytes = 0;
    ~Workspace() { std::free(data); }
};
thread_local Workspace workspace;

}  // namespace

void count_key_tiles(int64_t tiles) {
    key_tiles.fetch_add(tiles, std::memory_order_relaxed);
}

int64_t key_tiles_visited() {
    return key_tiles.load(std::memory_order_relaxed);
}

void reset_key_tiles_visited() {
    key_tiles.store(0, std::memory_order_relaxed);
}

void* attention_workspace(size_t bytes) {
    if (bytes <= workspace.bytes) return workspace.data;
    std::free(workspace.data);
    const size_t rounded = (bytes + 63) / 64 * 64;
    workspace.data = std::aligned_alloc(64, rounded);
    workspace.bytes = workspace.data ? rounded : 0;
    return workspace.data;
}

void attention_workspace_trim() {
    if (workspace.bytes <= kRetainedWorkspaceBytes) return;
    std::free(workspace.data);
    workspace.data = nullptr;
    workspace.bytes = 0;
}

tw_status attention_portable(const tw_attention_params& p) {
    const size_t scratch_bytes = sizeof(float) * (3 * p.head_dim + kPortableKeyBlock);
    if (thread_scratch(scratch_bytes) == nullptr) {
        return fail(TW_ERR_OUT_OF_MEMORY, "attention: cannot allocate %zu bytes of scratch",
                    scratch_bytes);
    }
    PortableTask task{&p, (p.q_len + kPortableQueryRows - 1) / kPortableQueryRows};
    parallel_for(p.batch * p.q_heads * task.row_blocks, portable_task, &task);
    return ok();
}

}  // namespace tw

extern "C" tw_status tw_attention_forward(const tw_attention_params* p) {
    tw_status status = tw::validate(p);
    if (status != TW_OK) return status;
    return tw::kernels().attention.fn(*p);
}

namespace {

/// The offsets of one packed side: cu[0] = 0, non-decreasing, cu[num_seqs] = total.
tw_status check_offsets(const int32_t* cu, int64_t num_seqs, int64_t total, const char* side) {
    if (cu == nullptr)
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "attention: cu_seqlens_%s is null", side);
    if (cu[0] != 0)
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "attention: cu_seqlens_%s[0] is %d, not 0", side,
                        cu[0]);
    for (int64_t s = 0; s < num_seqs; ++s) {
        if (cu[s + 1] < cu[s]) {
            return tw::fail(TW_ERR_INVALID_ARGUMENT,
                            "attention: cu_seqlens_%s decreases at %lld (%d < %d)", side,
                            (long long)s + 1, cu[s + 1], cu[s]);
        }
    }
    if (cu[num_seqs] != total) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT,
                        "attention: cu_seqlens_%s ends at %d, the packed rows are %lld", side,
                        cu[num_seqs], (long long)total);
    }
    return TW_OK;
}

int64_t dtype_bytes(tw_dtype dtype) {
    return dtype == TW_F32 ? 4 : 2;
}

}  // namespace

extern "C" tw_status tw_attention_varlen_forward(const tw_attention_params* p, int64_t num_seqs,
                                                 const int32_t* cu_seqlens_q,
                                                 const int32_t* cu_seqlens_k) {
    tw_status status = tw::validate(p);
    if (status != TW_OK) return status;
    if (p->batch != 1) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT,
                        "attention: packed sequences are one batch entry, got batch=%lld",
                        (long long)p->batch);
    }
    if (p->kv_valid_lengths || p->key_padding_mask || p->bias || p->lse) {
        return tw::fail(
            TW_ERR_INVALID_ARGUMENT,
            "attention: packed sequences take no valid lengths, mask, dense bias or lse "
            "(the offsets are the mask; a window and rel_bias are allowed)");
    }
    if (num_seqs < 1)
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "attention: num_seqs %lld < 1",
                        (long long)num_seqs);
    if ((status = check_offsets(cu_seqlens_q, num_seqs, p->q_len, "q")) != TW_OK) return status;
    if ((status = check_offsets(cu_seqlens_k, num_seqs, p->kv_len, "k")) != TW_OK) return status;
    const int64_t elem = dtype_bytes(p->dtype);
    for (int64_t s = 0; s < num_seqs; ++s) {
        const int64_t q0 = cu_seqlens_q[s], nq = cu_seqlens_q[s + 1] - q0;
        const int64_t k0 = cu_seqlens_k[s], nk = cu_seqlens_k[s + 1] - k0;
        if (nq == 0) continue;
        if (nk == 0) {  // queries that see no key: zero rows, as everywhere
            for (int64_t h = 0; h < p->q_heads; ++h) {
                for (int64_t i = 0; i < nq; ++i) {
                    char* row = static_cast<char*>(p->o) +
                                ((q0 + i) * p->o_strides[2] + h * p->o_strides[1]) * elem;
                    std::memset(row, 0, static_cast<size_t>(p->head_dim * elem));
                }
            }
            continue;
        }
        tw_attention_params one = *p;
        one.q_len = nq;
        one.kv_len = nk;
        one.q = static_cast<const char*>(p->q) + q0 * p->q_strides[2] * elem;
        one.k = static_cast<const char*>(p->k) + k0 * p->k_strides[2] * elem;
        one.v = static_cast<const char*>(p->v) + k0 * p->v_strides[2] * elem;
        one.o = static_cast<char*>(p->o) + q0 * p->o_strides[2] * elem;
        if ((status = tw_attention_forward(&one)) != TW_OK) return status;
    }
    return TW_OK;
}
