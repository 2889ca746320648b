// Fused LayerNorm: validation, the portable rows (kernels.cpp picks the variant), and the optional
// quantization of the result for the next int8 linear layer.
//
//   h = x + residual;  mean = sum(h) / K;  var = sum((h - mean)^2) / K;
//   y = (h - mean) / sqrt(var + eps) * gamma + beta            (all fp32, two-pass variance)
//   yq = per-row quantization of y (tw_quantize_rows' rules), while the rows are still in cache.
#include <algorithm>
#include <cmath>

#include "kernels.h"
#include "runtime.h"

namespace tw {
namespace {

/// Rows per task: 32 rows of K = 1024 fp32 (128 KiB) are still in L2 when they are quantized.
constexpr int64_t kLayerNormRowsPerTask = 32;

struct LayerNormTask {
    const tw_layernorm_params* p;
    LayerNormRowsFn rows;
    QuantizeFn quantize;
    int32_t qmax;
};

void layernorm_task(void* ctx, int64_t task, int) {
    const auto& t = *static_cast<LayerNormTask*>(ctx);
    const tw_layernorm_params& p = *t.p;
    const int64_t m0 = task * kLayerNormRowsPerTask;
    const int64_t m1 = std::min(p.m, m0 + kLayerNormRowsPerTask);
    t.rows(p, m0, m1);
    if (p.yq) {
        t.quantize(p.y, p.ldy, nullptr, m0, m1, p.k, p.quant, t.qmax, p.yq->q, p.yq->ldq,
                   p.yq->scales, p.yq->zero_points);
    }
}

}  // namespace

void layernorm_rows_portable(const tw_layernorm_params& p, int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
        const float* x = p.x + m * p.ldx;
        const float* res = p.residual ? p.residual + m * p.ld_residual : nullptr;
        float* y = p.y + m * p.ldy;
        float sum = 0.0f;
        for (int64_t i = 0; i < p.k; ++i) {
            y[i] = res ? x[i] + res[i] : x[i];
            sum += y[i];
        }
        const float mean = sum / static_cast<float>(p.k);
        float sq = 0.0f;
        for (int64_t i = 0; i < p.k; ++i) sq += (y[i] - mean) * (y[i] - mean);
        const float rstd = 1.0f / std::sqrt(sq / static_cast<float>(p.k) + p.eps);
        for (int64_t i = 0; i < p.k; ++i) {
            float v = (y[i] - mean) * rstd;
            if (p.gamma) v *= p.gamma[i];
            if (p.beta) v += p.beta[i];
            y[i] = v;
        }
    }
}

}  // namespace tw

extern "C" tw_status tw_layernorm(const tw_layernorm_params* p) {
    if (p == nullptr) return tw::fail(TW_ERR_INVALID_ARGUMENT, "params must not be null");
    if (p->m < 0 || p->k <= 0 || p->x == nullptr || p->y == nullptr || p->ldx < p->k ||
        p->ldy < p->k) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT,
                        "bad LayerNorm shapes m=%lld k=%lld ldx=%lld ldy=%lld (or x/y null)",
                        static_cast<long long>(p->m), static_cast<long long>(p->k),
                        static_cast<long long>(p->ldx), static_cast<long long>(p->ldy));
    }
    if (p->residual && p->ld_residual < p->k) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "ld_residual %lld < k %lld",
                        static_cast<long long>(p->ld_residual), static_cast<long long>(p->k));
    }
    if (!(p->eps >= 0.0f) || !std::isfinite(p->eps)) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "eps must be finite and >= 0");
    }
    const tw::KernelTable& table = tw::kernels();
    tw::LayerNormTask t{p, table.layernorm.fn, table.quantize.fn, table.linear.int8.input_qmax};
    if (p->yq) {
        const tw_quantized_rows& q = *p->yq;
        if (p->quant != TW_QUANT_SYMMETRIC && p->quant != TW_QUANT_ASYMMETRIC) {
            return tw::fail(TW_ERR_INVALID_ARGUMENT,
                            "quantized output needs a symmetric or asymmetric mode");
        }
        if (q.m != p->m || q.k != p->k || q.ldq < tw_quantized_row_stride(p->k) || q.q == nullptr ||
            q.scales == nullptr || q.zero_points == nullptr) {
            return tw::fail(TW_ERR_INVALID_ARGUMENT,
                            "quantized output shape m=%lld k=%lld ldq=%lld does "
                            "not match the LayerNorm (or a buffer is null)",
                            static_cast<long long>(q.m), static_cast<long long>(q.k),
                            static_cast<long long>(q.ldq));
        }
        p->yq->qmax = t.qmax;
    }
    tw::parallel_for((p->m + tw::kLayerNormRowsPerTask - 1) / tw::kLayerNormRowsPerTask,
                     tw::layernorm_task, &t);
    return tw::ok();
}
