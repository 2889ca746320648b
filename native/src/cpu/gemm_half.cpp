// Linear layers with 16-bit weights (bf16 or fp16), fp32 accumulation: the bf16 driver and the
// portable kernels (kernels.cpp picks the variant).
//
//   Y[m, n] = sum_k X[m, k] W16[n, k] + b[n]     (then GELU / + residual)
//
// W16 is stored at 16 bits (half the memory of fp32). With AVX512-BF16 the products run as bf16 dot
// products, vdpbf16ps: X is rounded to bf16 once per call (relative error 2^-9 per element), each
// pair of products is accumulated in fp32. Elsewhere the weights are widened to fp32 in registers
// and X stays fp32, so only the weights' rounding remains. fp16 weights (11-bit significand, range
// +-65504) are always widened (vcvtph2ps): this CPU has no AVX512-FP16 arithmetic.
#include <algorithm>

#include "half.h"
#include "kernels.h"
#include "runtime.h"

namespace tw {
namespace {

/// Rows converted to bf16 per parallel task.
constexpr int64_t kConvertRowsPerTask = 32;

struct ConvertTask {
    Bf16RowsFn fn;
    const float* x;
    int64_t ldx, m, k;
    uint16_t* out;
    int64_t ldo;
};

void convert_task(void* ctx, int64_t task, int) {
    const auto& t = *static_cast<ConvertTask*>(ctx);
    const int64_t m0 = task * kConvertRowsPerTask;
    const int64_t m1 = std::min(t.m, m0 + kConvertRowsPerTask);
    t.fn(t.x, t.ldx, m0, m1, t.k, t.out, t.ldo);
}

}  // namespace

void bf16_block_portable(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    const tw_packed_weights& w = *a.w;
    for (int64_t p = p0; p < p1; ++p) {
        const uint16_t* panel = reinterpret_cast<const uint16_t*>(
            static_cast<const uint8_t*>(w.data) + p * w.panel_bytes);
        for (int64_t m = m0; m < m1; ++m) {
            const float* x = a.x + m * a.ldx;
            for (int64_t c = 0; c < kPanel && p * kPanel + c < w.n; ++c) {
                const int64_t n = p * kPanel + c;
                float acc = 0.0f;
                for (int64_t i = 0; i < w.k; ++i) {
                    acc += x[i] * bf16_to_float(panel[(i / 2) * kPanel * 2 + c * 2 + i % 2]);
                }
                float v = acc;
                if (a.bias) v += a.bias[n];
                if (a.epilogue & TW_EPILOGUE_GELU) v = gelu_scalar(v);
                if (a.epilogue & TW_EPILOGUE_RESIDUAL) v += a.residual[m * a.ld_residual + n];
                a.y[m * a.ldy + n] = v;
            }
        }
    }
}

void f16_block_portable(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    const tw_packed_weights& w = *a.w;
    for (int64_t p = p0; p < p1; ++p) {
        const uint16_t* panel = reinterpret_cast<const uint16_t*>(
            static_cast<const uint8_t*>(w.data) + p * w.panel_bytes);
        for (int64_t m = m0; m < m1; ++m) {
            const float* x = a.x + m * a.ldx;
            for (int64_t c = 0; c < kPanel && p * kPanel + c < w.n; ++c) {
                const int64_t n = p * kPanel + c;
                float acc = 0.0f;
                for (int64_t i = 0; i < w.k; ++i)
                    acc += x[i] * fp16_to_float(panel[i * kPanel + c]);
                float v = acc;
                if (a.bias) v += a.bias[n];
                if (a.epilogue & TW_EPILOGUE_GELU) v = gelu_scalar(v);
                if (a.epilogue & TW_EPILOGUE_RESIDUAL) v += a.residual[m * a.ld_residual + n];
                a.y[m * a.ldy + n] = v;
            }
        }
    }
}

tw_status bf16_linear(const GemmArgs& args, const LinearKernel& k, const KernelTable& t) {
    if (!k.bf16_input) return run_gemm_blocks(args, k, t);
    // Round X to bf16 once per call in the caller's scratch (block functions never use it).
    GemmArgs a = args;
    const int64_t ldb = 2 * a.w->k_groups;
    auto* xb = static_cast<uint16_t*>(thread_scratch(static_cast<size_t>(a.m * ldb) * 2));
    if (xb == nullptr) return fail(TW_ERR_OUT_OF_MEMORY, "no memory for bf16 activations");
    ConvertTask ct{t.linear.to_bf16, a.x, a.ldx, a.m, a.w->k, xb, ldb};
    parallel_for((a.m + kConvertRowsPerTask - 1) / kConvertRowsPerTask, convert_task, &ct);
    a.xb = xb;
    a.ldb = ldb;
    return run_gemm_blocks(a, k, t);
}

}  // namespace tw
