// INT8 linear layers: the drivers (quantize, check, run) and the portable kernels (kernels.cpp
// picks the variant).
//
// Dynamic int8 (weights symmetric per output channel, activations quantized per row at run time):
//   W[n, k] = sw[n] Wq[n, k]            Wq in [-127, 127]                   (packed once)
//   X[m, k] ~ sx[m] (Xq[m, k] - zx[m])  Xq in [0, qmax], u8                 (every call)
//   Y[m, n] = sx[m] sw[n] (sum_k Xq[m, k] Wq[n, k] - zx[m] colsum[n]) + b[n],
//   colsum[n] = sum_k Wq[n, k]  (precomputed at packing).
// Unsigned activations times signed weights is exactly what vpdpbusd multiplies; symmetric
// activation quantization is the special case zx = 128 (codes q + 128), so one kernel serves both.
// The dot products are exact in int32 for K <= TW_INT8_MAX_K (255 * 128 * 65536 < 2^31).
//
// Weight-only int8: Y[m, n] = sw[n] sum_k X[m, k] Wq[n, k] + b[n], fp32 activations.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "kernels.h"
#include "runtime.h"

namespace tw {
namespace {

/// Kernel `k` refuses weights it would saturate on (the reduced-range kernel, forced by a test,
/// with full-range weights).
tw_status check_weight_range(const LinearKernel& k, const tw_packed_weights& w) {
    if (w.weight_max > k.weight_max) {
        return fail(TW_ERR_INVALID_ARGUMENT,
                    "int8 weights reach |%d|; the %s kernel takes at most %d (pack them "
                    "with tw_pack_weights_int8_range)",
                    static_cast<int>(w.weight_max), k.name, static_cast<int>(k.weight_max));
    }
    return TW_OK;
}

/// Rows of activations quantized per parallel task (small: quantization is cheap per row).
constexpr int64_t kQuantizeRowsPerTask = 32;

struct QuantizeTask {
    QuantizeFn fn;
    const float* x;
    const float* mult;
    int64_t ldx, m, k;
    tw_activation_quant mode;
    int32_t qmax;
    uint8_t* q;
    int64_t ldq;
    float* scales;
    int32_t* zeros;
};

void quantize_task(void* ctx, int64_t task, int) {
    const auto& t = *static_cast<QuantizeTask*>(ctx);
    const int64_t m0 = task * kQuantizeRowsPerTask;
    const int64_t m1 = std::min(t.m, m0 + kQuantizeRowsPerTask);
    t.fn(t.x, t.ldx, t.mult, m0, m1, t.k, t.mode, t.qmax, t.q, t.ldq, t.scales, t.zeros);
}

}  // namespace

float quant_params(float lo, float hi, tw_activation_quant mode, int32_t qmax, float* scale,
                   int32_t* zero) {
    lo = std::min(lo, 0.0f);
    hi = std::max(hi, 0.0f);
    if (mode == TW_QUANT_SYMMETRIC) {
        const int32_t half = qmax / 2;  // 127: codes zero +- half within [0, qmax]
        const float amax = std::max(-lo, hi);
        *zero = qmax - half;  // 128 for qmax 255, 127 for 254
        *scale = amax > 0.0f ? amax / static_cast<float>(half) : 1.0f;
    } else {
        *scale = hi > lo ? (hi - lo) / static_cast<float>(qmax) : 1.0f;
        const float z = std::nearbyint(-lo / *scale);
        *zero = static_cast<int32_t>(std::min(std::max(z, 0.0f), static_cast<float>(qmax)));
    }
    return 1.0f / *scale;
}

bool quantize_nonfinite_row(float nonfinite_probe, tw_activation_quant mode, int32_t qmax,
                            int64_t k, uint8_t* q, int64_t ldq, float* scale, int32_t* zero) {
    if (nonfinite_probe == 0.0f) return false;
    float unused;
    quant_params(0.0f, 0.0f, mode, qmax, &unused, zero);
    *scale = std::numeric_limits<float>::quiet_NaN();
    std::memset(q, *zero, static_cast<size_t>(k));
    std::memset(q + k, 0, static_cast<size_t>(ldq - k));
    return true;
}

void quantize_rows_portable(const float* x, int64_t ldx, const float* mult, int64_t m0, int64_t m1,
                            int64_t k, tw_activation_quant mode, int32_t qmax, uint8_t* q,
                            int64_t ldq, float* scales, int32_t* zeros) {
    for (int64_t m = m0; m < m1; ++m) {
        const float* row = x + m * ldx;
        auto value = [&](int64_t i) { return mult ? row[i] * mult[i] : row[i]; };
        float lo = 0.0f, hi = 0.0f, probe = 0.0f;
        for (int64_t i = 0; i < k; ++i) {
            lo = std::min(lo, value(i));
            hi = std::max(hi, value(i));
            probe += value(i) - value(i);
        }
        uint8_t* codes = q + m * ldq;
        if (quantize_nonfinite_row(probe, mode, qmax, k, codes, ldq, &scales[m], &zeros[m]))
            continue;
        const float inv = quant_params(lo, hi, mode, qmax, &scales[m], &zeros[m]);
        uint8_t* out = q + m * ldq;
        for (int64_t i = 0; i < k; ++i) {
            const float c = std::nearbyint(value(i) * inv) + static_cast<float>(zeros[m]);
            out[i] = static_cast<uint8_t>(std::min(std::max(c, 0.0f), static_cast<float>(qmax)));
        }
        for (int64_t i = k; i < ldq; ++i) out[i] = 0;
    }
}

void int8_block_portable(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    const tw_packed_weights& w = *a.w;
    for (int64_t p = p0; p < p1; ++p) {
        const int8_t* panel = static_cast<const int8_t*>(w.data) + p * w.panel_bytes;
        for (int64_t m = m0; m < m1; ++m) {
            const uint8_t* x = a.xq + m * a.ldq;
            for (int64_t c = 0; c < kPanel; ++c) {
                const int64_t n = p * kPanel + c;
                if (n >= w.n) break;
                int32_t acc = 0;
                for (int64_t g = 0; g < w.k_groups; ++g) {
                    const int8_t* wg = panel + g * kPanel * 4 + c * 4;
                    for (int j = 0; j < 4; ++j) acc += static_cast<int32_t>(x[4 * g + j]) * wg[j];
                }
                const int32_t exact = acc - a.x_zero[m] * w.col_sums[n];
                float v = static_cast<float>(exact) * (a.x_scale[m] * w.scales[n]);
                if (a.bias) v += a.bias[n];
                if (a.epilogue & TW_EPILOGUE_GELU) v = gelu_scalar(v);
                if (a.epilogue & TW_EPILOGUE_RESIDUAL) v += a.residual[m * a.ld_residual + n];
                a.y[m * a.ldy + n] = v;
            }
        }
    }
}

void int8_wo_block_portable(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    const tw_packed_weights& w = *a.w;
    for (int64_t p = p0; p < p1; ++p) {
        const int8_t* panel = static_cast<const int8_t*>(w.data) + p * w.panel_bytes;
        for (int64_t m = m0; m < m1; ++m) {
            const float* x = a.x + m * a.ldx;
            for (int64_t c = 0; c < kPanel; ++c) {
                const int64_t n = p * kPanel + c;
                if (n >= w.n) break;
                float acc = 0.0f;
                for (int64_t i = 0; i < w.k; ++i) {
                    acc += x[i] * static_cast<float>(panel[(i / 4) * kPanel * 4 + c * 4 + i % 4]);
                }
                float v = acc * w.scales[n];
                if (a.bias) v += a.bias[n];
                if (a.epilogue & TW_EPILOGUE_GELU) v = gelu_scalar(v);
                if (a.epilogue & TW_EPILOGUE_RESIDUAL) v += a.residual[m * a.ld_residual + n];
                a.y[m * a.ldy + n] = v;
            }
        }
    }
}

tw_status int8_quantized_linear(const GemmArgs& a, int32_t qmax, const LinearKernel& k,
                                const KernelTable& t) {
    if (tw_status s = check_weight_range(k, *a.w)) return s;
    if (qmax > k.input_qmax) {
        return fail(TW_ERR_INVALID_ARGUMENT,
                    "activations were quantized to codes up to %d but this CPU's int8 kernel takes "
                    "at most %d (quantize with tw_int8_activation_qmax())",
                    qmax, k.input_qmax);
    }
    return run_gemm_blocks(a, k, t);
}

tw_status int8_dynamic_linear(GemmArgs a, tw_activation_quant mode, const float* channel_scale,
                              const LinearKernel& k, const KernelTable& t) {
    if (tw_status s = check_weight_range(k, *a.w)) return s;
    const int64_t kk = a.w->k;
    const int64_t ldq = tw_quantized_row_stride(kk);
    // The calling thread's task scratch holds the quantized rows; the block functions never use it.
    const size_t q_bytes = static_cast<size_t>((a.m * ldq + 63) / 64 * 64);
    auto* base = static_cast<uint8_t*>(thread_scratch(q_bytes + static_cast<size_t>(a.m) * 8));
    if (base == nullptr)
        return fail(TW_ERR_OUT_OF_MEMORY, "no memory for %lld quantized rows",
                    static_cast<long long>(a.m));
    auto* scales = reinterpret_cast<float*>(base + q_bytes);
    auto* zeros = reinterpret_cast<int32_t*>(scales + a.m);
    // Codes to tw_int8_activation_qmax() (the full-range kernel's), as every producer of quantized
    // rows writes them (the reduced-range kernel takes any code).
    QuantizeTask qt{t.quantize.fn, a.x, channel_scale, a.ldx,
                    a.m,           kk,  mode,          t.linear.int8.input_qmax,
                    base,          ldq, scales,        zeros};
    parallel_for((a.m + kQuantizeRowsPerTask - 1) / kQuantizeRowsPerTask, quantize_task, &qt);
    a.xq = base;
    a.ldq = ldq;
    a.x_scale = scales;
    a.x_zero = zeros;
    return run_gemm_blocks(a, k, t);
}

}  // namespace tw

extern "C" {

int32_t tw_int8_activation_qmax(void) {
    return tw::kernels().linear.int8.input_qmax;
}

int64_t tw_quantized_row_stride(int64_t k) {
    return k <= 0 ? 0 : (k + 3) / 4 * 4;
}

tw_status tw_quantize_rows(const float* x, int64_t ldx, tw_activation_quant mode,
                           tw_quantized_rows* out) {
    if (out == nullptr || x == nullptr)
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "x and out must not be null");
    if (mode != TW_QUANT_SYMMETRIC && mode != TW_QUANT_ASYMMETRIC) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT,
                        "quantization mode %d is not symmetric or asymmetric",
                        static_cast<int>(mode));
    }
    if (out->m < 0 || out->k <= 0 || ldx < out->k || out->ldq < tw_quantized_row_stride(out->k)) {
        return tw::fail(
            TW_ERR_INVALID_ARGUMENT,
            "bad shapes: m=%lld k=%lld ldx=%lld ldq=%lld (ldx >= k, ldq >= %lld needed)",
            static_cast<long long>(out->m), static_cast<long long>(out->k),
            static_cast<long long>(ldx), static_cast<long long>(out->ldq),
            static_cast<long long>(tw_quantized_row_stride(out->k)));
    }
    if (out->q == nullptr || out->scales == nullptr || out->zero_points == nullptr) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "quantized output buffers must not be null");
    }
    const tw::KernelTable& t = tw::kernels();
    out->qmax = t.linear.int8.input_qmax;
    tw::QuantizeTask qt{t.quantize.fn, x,         nullptr, ldx,      out->m,      out->k,
                        mode,          out->qmax, out->q,  out->ldq, out->scales, out->zero_points};
    tw::parallel_for((out->m + tw::kQuantizeRowsPerTask - 1) / tw::kQuantizeRowsPerTask,
                     tw::quantize_task, &qt);
    return tw::ok();
}

}  // extern "C"
