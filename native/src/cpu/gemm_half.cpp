// Linear layers with 16-bit weights (bf16 or fp16), fp32 accumulation: dispatch and portable kernels.
//
//   Y[m, n] = sum_k X[m, k] W16[n, k] + b[n]     (then GELU / + residual)
//
// W16 is stored at 16 bits (half the memory of fp32). With AVX512-BF16 the products run as bf16 dot
// products, vdpbf16ps: X is rounded to bf16 once per call (relative error 2^-9 per element), each
// pair of products is accumulated in fp32. Elsewhere the weights are widened to fp32 in registers and
// X stays fp32, so only the weights' rounding remains. fp16 weights (11-bit significand, range
// +-65504) are always widened (vcvtph2ps): this CPU has no AVX512-FP16 arithmetic.
#include <algorithm>

#include "gemm_kernels.h"
#include "half.h"
#include "runtime.h"

namespace tw {
namespace {

bool bf16_dot_allowed = true;

/// Rows converted to bf16 per parallel task.
constexpr int64_t kConvertRowsPerTask = 32;

struct ConvertTask {
    const float* x;
    int64_t ldx, m, k;
    uint16_t* out;
    int64_t ldo;
};

void convert_task(void* ctx, int64_t task, int) {
    const auto& t = *static_cast<ConvertTask*>(ctx);
    const int64_t m0 = task * kConvertRowsPerTask;
    const int64_t m1 = std::min(t.m, m0 + kConvertRowsPerTask);
#if defined(TILEWISE_X86)
    to_bf16_rows_avx512(t.x, t.ldx, m0, m1, t.k, t.out, t.ldo);
#endif
}

}  // namespace

/// Tests turn the AVX512-BF16 dot products off to reach the widening AVX-512 kernel on this CPU.
void allow_bf16_dot_products(bool allowed) { bf16_dot_allowed = allowed; }

bool bf16_uses_dot_products() {
    return bf16_dot_allowed && active_isa() == TW_ISA_AVX512 &&
           (cpu_features() & TW_CPU_AVX512_BF16) != 0;
}

void bf16_block_portable(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    const tw_packed_weights& w = *a.w;
    for (int64_t p = p0; p < p1; ++p) {
        const uint16_t* panel =
            reinterpret_cast<const uint16_t*>(static_cast<const uint8_t*>(w.data) + p * w.panel_bytes);
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
        const uint16_t* panel =
            reinterpret_cast<const uint16_t*>(static_cast<const uint8_t*>(w.data) + p * w.panel_bytes);
        for (int64_t m = m0; m < m1; ++m) {
            const float* x = a.x + m * a.ldx;
            for (int64_t c = 0; c < kPanel && p * kPanel + c < w.n; ++c) {
                const int64_t n = p * kPanel + c;
                float acc = 0.0f;
                for (int64_t i = 0; i < w.k; ++i) acc += x[i] * fp16_to_float(panel[i * kPanel + c]);
                float v = acc;
                if (a.bias) v += a.bias[n];
                if (a.epilogue & TW_EPILOGUE_GELU) v = gelu_scalar(v);
                if (a.epilogue & TW_EPILOGUE_RESIDUAL) v += a.residual[m * a.ld_residual + n];
                a.y[m * a.ldy + n] = v;
            }
        }
    }
}

tw_status half_linear(const GemmArgs& args) {
    GemmArgs a = args;
    const tw_isa isa = active_isa();
    if (a.w->format == TW_F16) {
        BlockFn fn = f16_block_portable;
#if defined(TILEWISE_X86)
        if (isa == TW_ISA_AVX512) fn = f16_block_avx512;
        if (isa == TW_ISA_AVX2) fn = f16_block_avx2;
#endif
        return run_gemm_blocks(a, fn);
    }
    BlockFn fn = bf16_block_portable;
#if defined(TILEWISE_X86)
    if (isa == TW_ISA_AVX2) fn = bf16_block_avx2;
    if (isa == TW_ISA_AVX512) fn = bf16_block_avx512;
    if (bf16_uses_dot_products()) {
        // Round X to bf16 once per call in the caller's scratch (block functions never use it).
        const int64_t ldb = 2 * a.w->k_groups;
        auto* xb = static_cast<uint16_t*>(thread_scratch(static_cast<size_t>(a.m * ldb) * 2));
        if (xb == nullptr) return fail(TW_ERR_OUT_OF_MEMORY, "no memory for bf16 activations");
        ConvertTask ct{a.x, a.ldx, a.m, a.w->k, xb, ldb};
        parallel_for((a.m + kConvertRowsPerTask - 1) / kConvertRowsPerTask, convert_task, &ct);
        a.xb = xb;
        a.ldb = ldb;
        fn = bf16_dot_block_avx512;
    }
#endif
    return run_gemm_blocks(a, fn);
}

}  // namespace tw
