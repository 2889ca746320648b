// Internal contract between the linear-layer driver (gemm.cpp), the per-format dispatch files
// (gemm_f32.cpp, gemm_int8.cpp, gemm_half.cpp) and their ISA variants. Not part of the C ABI.
//
// Packed weight layouts (all formats share panels of kPanel = 32 output columns; columns past N are
// zero with scale 0, so kernels always compute whole panels and mask only the store):
//   TW_F32  [panel][k][32 columns]                  fp32   - two 16-float zmm (four 8-float ymm)
//   per k TW_I8   [panel][k / 4 groups][32 columns][4 k]  int8   - one 64-byte load is 16 columns x
//   4 k, the
//                                                            operand of vpdpbusd; weight-only
//                                                            kernels extract k + j with a shift
//                                                            pair
//   TW_BF16 [panel][k / 2 pairs][32 columns][2 k]   bf16   - the operand of vdpbf16ps; without it,
//                                                            k and k + 1 are a shift and a mask
//                                                            away
//   TW_F16  [panel][k][32 columns]                  fp16   - 16 columns per vcvtph2ps
// K is zero-padded to the group size; padded activations meet zero weights.
// Gated weights (tw_pack_weights_gated, n = 2 ff): panel p holds up rows u_{16p..16p+15} in columns
// 0..15 and the gate rows g_{16p..16p+15} in columns 16..31 (packed_column in gemm.cpp), so one
// panel, one task and one per-thread tile hold both halves of each of its 16 outputs. The kernels
// are unchanged: run_gemm_blocks runs them on the whole panels into a task tile without epilogue,
// then the table's gate rows function writes act(u + b_u) * (g + b_g).
#pragma once

#include <cstdint>

#include "tilewise/tilewise_gemm.h"

struct tw_packed_weights {
    tw_dtype format;
    int64_t n, k;
    int64_t panels;       // ceil(n / kPanel)
    int64_t k_groups;     // k rounded up to the group (4 for I8, 2 for BF16, 1 for F16 and F32),
                          // divided by it
    int64_t panel_bytes;  // bytes between consecutive panels
    void* data;           // panels * panel_bytes, 64-byte aligned
    float* scales;        // [panels * kPanel] per-column dequantization scale (I8), else nullptr
    int32_t* col_sums;    // [panels * kPanel] sum_k Wq[n, k] (I8), else nullptr
    int32_t weight_max;   // max |Wq| over all weights (I8): <= TW_INT8_REDUCED_WEIGHT_MAX lets
                          // plain AVX2 run the reduced-range kernel
    int64_t bytes;        // everything this handle owns
    int32_t gated;        // 1: rows paired per panel for TW_EPILOGUE_GATED_* (see above), else 0
};

namespace tw {

/// Output columns per packed panel: two 16-lane AVX-512 vectors, four 8-lane AVX2 vectors.
constexpr int64_t kPanel = 32;
/// Rows of X per parallel task. An 8-row micro-tile re-reads its task's panels from L1/L2; 64 rows
/// of K = 1536 fp32 activations (384 KiB) still fit this CPU's 1 MiB L2, and 64 rows keep M = 4096
/// split into 64 row blocks, plenty of tasks for the pool.
constexpr int64_t kBlockRows = 64;
/// Rows of X per parallel task for fp32 weights: 8 of the AVX-512 kernel's 12-row register tiles
/// (16 of AVX2's 6-row micro-tiles), so no task ends in a short tile; a panel (128 bytes per k,
/// 48 KiB at K = 384) is re-read from L1/L2 by every tile of the block.
constexpr int64_t kF32BlockRows = 96;
/// Panels per parallel task (128 columns): a task's packed panels (128 x K = 48 KiB of int8 at
/// K = 384) stay in L2 across its row micro-tiles while the activation rows stream through L1;
/// narrow layers (N = 384, three tasks' worth of panels) still split across workers.
constexpr int64_t kBlockPanels = 4;

/// Everything one GEMM call needs, already validated. Exactly one activation form is set.
struct GemmArgs {
    const tw_packed_weights* w;
    int64_t m;
    const float* x;  // fp32 activations [m, ldx]
    int64_t ldx;
    const uint8_t* xq;  // u8 quantized activations [m, ldq], ldq >= 4 * k_groups
    int64_t ldq;
    const float* x_scale;   // [m]
    const int32_t* x_zero;  // [m]
    const uint16_t* xb;     // bf16 activations [m, ldb], ldb >= 2 * k_groups, padding zero
    int64_t ldb;
    const float* bias;  // [n] or nullptr
    int epilogue;
    const float* residual;
    int64_t ld_residual;
    float* y;
    int64_t ldy;
    const float* ln_gamma;  // TW_EPILOGUE_LAYERNORM: [n] or nullptr
    const float* ln_beta;   // [n] or nullptr
    float ln_eps;
    tw_quantized_rows* yq;  // quantized copy of Y, or nullptr (then y may be nullptr too)
    tw_activation_quant yq_mode;
    const float* yq_mult;  // [n] or nullptr
};

/// Computes rows [m0, m1) x panels [p0, p1) of Y. One per kernel variant.
using BlockFn = void (*)(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);

struct LinearKernel;  // kernels.h
struct KernelTable;

/// Runs kernel `k` over all (row block, panel block) tasks on the worker pool, k.block_rows rows
/// by kBlockPanels panels each. With TW_EPILOGUE_LAYERNORM or a quantized output a task spans
/// whole rows (every panel), then normalises and/or quantizes them while they are in cache, with
/// the LayerNorm rows and quantizer of table `t`.
tw_status run_gemm_blocks(const GemmArgs& a, const LinearKernel& k, const KernelTable& t);

/// 0.5 x (1 + erf(x / sqrt 2)): the GELU of every portable kernel.
float gelu_scalar(float x);

/// The gated epilogue over a task tile: for rows [0, rows) and outputs j in [0, count),
///   y[r * ldy + j] = act(s[r * lds + u(j)] + bu[j]) * (s[r * lds + u(j) + 16] + bg[j]),
/// u(j) = (j / 16) * 32 + j % 16 (the gated panel layout), bu / bg null for no bias, act the one
/// TW_EPILOGUE_GATED_* flag in `gate`. One per ISA (gemm_gate*.cpp).
using GateRowsFn = void (*)(const float* s, int64_t lds, int64_t rows, int64_t count,
                            const float* bu, const float* bg, int gate, float* y, int64_t ldy);
void gate_rows_portable(const float* s, int64_t lds, int64_t rows, int64_t count, const float* bu,
                        const float* bg, int gate, float* y, int64_t ldy);
void gate_rows_avx2(const float* s, int64_t lds, int64_t rows, int64_t count, const float* bu,
                    const float* bg, int gate, float* y, int64_t ldy);
void gate_rows_avx512(const float* s, int64_t lds, int64_t rows, int64_t count, const float* bu,
                      const float* bg, int gate, float* y, int64_t ldy);

/// Quantizes rows [m0, m1) of x; codes in [0, qmax]. One per ISA.
/// `mult` ([k] or nullptr) scales each column before quantization.
using QuantizeFn = void (*)(const float* x, int64_t ldx, const float* mult, int64_t m0, int64_t m1,
                            int64_t k, tw_activation_quant mode, int32_t qmax, uint8_t* q,
                            int64_t ldq, float* scales, int32_t* zeros);

/// Per-row quantization parameters from the row's min and max, shared by every ISA so that all
/// variants produce identical codes. Returns the multiplier 1 / scale.
float quant_params(float lo, float hi, tw_activation_quant mode, int32_t qmax, float* scale,
                   int32_t* zero);

/// A row holding NaN or ±infinity has no scale that codes it: its codes are the zero point and its
/// scale is NaN, so every output of the row is NaN (as in fp32) and no float-to-int conversion
/// sees a NaN. `nonfinite_probe` is the sum over the row of x - x: 0 for finite rows, else NaN.
bool quantize_nonfinite_row(float nonfinite_probe, tw_activation_quant mode, int32_t qmax,
                            int64_t k, uint8_t* q, int64_t ldq, float* scale, int32_t* zero);

// ---- fp32 variants (gemm_f32*.cpp) ----
void f32_block_portable(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void f32_block_avx512(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void f32_block_avx2(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);

// ---- int8 variants (gemm_int8*.cpp) ----
void int8_block_portable(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void int8_wo_block_portable(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void quantize_rows_portable(const float*, int64_t, const float*, int64_t, int64_t, int64_t,
                            tw_activation_quant, int32_t, uint8_t*, int64_t, float*, int32_t*);
void int8_block_avx512_vnni(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void int8_wo_block_avx512(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void quantize_rows_avx512(const float*, int64_t, const float*, int64_t, int64_t, int64_t,
                          tw_activation_quant, int32_t, uint8_t*, int64_t, float*, int32_t*);
void int8_block_avx_vnni(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void int8_block_avx2_maddubs(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void int8_block_avx2_reduced(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void int8_wo_block_avx2(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void quantize_rows_avx2(const float*, int64_t, const float*, int64_t, int64_t, int64_t,
                        tw_activation_quant, int32_t, uint8_t*, int64_t, float*, int32_t*);

/// Quantizes x with `mode` (times channel_scale, if set) to t's int8 activation codes, then runs
/// the dynamic int8 kernel `k` (validated arguments, fp32 x).
tw_status int8_dynamic_linear(GemmArgs a, tw_activation_quant mode, const float* channel_scale,
                              const LinearKernel& k, const KernelTable& t);
/// Runs the dynamic int8 kernel `k` on pre-quantized rows with codes up to qmax.
tw_status int8_quantized_linear(const GemmArgs& a, int32_t qmax, const LinearKernel& k,
                                const KernelTable& t);

// ---- 16-bit variants (gemm_half*.cpp) ----
void bf16_block_portable(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void f16_block_portable(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void bf16_dot_block_avx512(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void bf16_block_avx512(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void f16_block_avx512(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void to_bf16_rows_avx512(const float* x, int64_t ldx, int64_t m0, int64_t m1, int64_t k,
                         uint16_t* out, int64_t ldo);
void bf16_block_avx2(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void f16_block_avx2(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
/// Runs the bf16 kernel `k`, first rounding x to bf16 (t.linear.to_bf16) if k takes bf16 input.
tw_status bf16_linear(const GemmArgs& a, const LinearKernel& k, const KernelTable& t);

}  // namespace tw
