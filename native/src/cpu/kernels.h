// Dispatch: one table of kernels per kernel family (linear layers per weight format and
// activation quantization, the activation quantizer, the LayerNorm rows, fused attention), each
// entry a function pointer with its name side by side. The table is filled from the CPU features
// once at load and again by tw_set_isa (and the test overrides below); drivers read it and never
// test the ISA themselves, so the name a caller is told (tw_linear_kernel_name*) is, by
// construction, the kernel that runs. Not part of the C ABI.
//
// Tables are never modified once published: a change of ISA fills (or reuses) another table and
// publishes it atomically, so a call that took the previous one finishes on consistent kernels.
#pragma once

#include <cstdint>

#include "attention_kernels.h"
#include "gemm_kernels.h"
#include "layernorm_kernels.h"

namespace tw {

/// One linear-layer kernel: a block function for the shared loop nest (run_gemm_blocks) and what
/// the loop nest and driver need to know about it.
struct LinearKernel {
    BlockFn block;       // computes rows x panels of a task
    const char* name;    // reported by tw_linear_kernel_name*
    int64_t block_rows;  // rows of X per task: kBlockRows, kF32BlockRows for fp32
    bool bf16_input;     // reads X rounded to bf16 (GemmArgs::xb), converted once per call
    int32_t input_qmax;  // int8 with quantized activations: the largest activation code it takes
    int32_t weight_max;  // int8: the largest |weight code| it multiplies exactly
};

using LayerNormRowsFn = void (*)(const tw_layernorm_params& p, int64_t m0, int64_t m1);
using AttentionFn = tw_status (*)(const tw_attention_params& p);
using Bf16RowsFn = void (*)(const float* x, int64_t ldx, int64_t m0, int64_t m1, int64_t k,
                            uint16_t* out, int64_t ldo);

struct KernelTable {
    tw_isa isa;  // the level the table was filled for
    struct {
        LinearKernel f32;
        LinearKernel int8;          // dynamic activations, full-range weights
        LinearKernel int8_reduced;  // dynamic activations, |codes| <= TW_INT8_REDUCED_WEIGHT_MAX
        LinearKernel int8_weight_only;
        LinearKernel bf16;
        LinearKernel f16;
        Bf16RowsFn to_bf16;  // rounds X for kernels with bf16_input (null where none has it)
    } linear;
    struct {
        QuantizeFn fn;
        const char* name;
    } quantize;
    struct {
        LayerNormRowsFn fn;
        const char* name;
    } layernorm;
    struct {
        GateRowsFn fn;  // the TW_EPILOGUE_GATED_* epilogue of every linear kernel
        const char* name;
    } gate;
    struct {
        AttentionFn fn;
        const char* name;
    } attention;
};

/// The active table (filled at load).
const KernelTable& kernels();

/// Refills the active table from active_isa(), the CPU features and the test overrides; called
/// by tw_set_isa. Returns the new table.
const KernelTable& refresh_kernels();

/// The kernel tw_linear runs for weights of `format` whose largest |code| is `weight_max` (int8;
/// ignored otherwise), with activations quantized by `quant` (int8; TW_QUANT_NONE elsewhere).
/// nullptr for a format no kernel takes.
const LinearKernel* select_linear(const KernelTable& t, tw_dtype format, tw_activation_quant quant,
                                  int32_t weight_max);

// ---- test overrides: each refills the table ----

/// Kernel choice for int8 with dynamic activations; tests force each one. kAvx2Maddubs is the
/// exact sign-trick kernel, kAvx2Reduced the plain one for reduced-range weights.
enum class Int8Kernel { kAuto, kPortable, kAvx2Maddubs, kAvx2Reduced, kAvxVnni, kAvx512Vnni };
/// Forces an int8 kernel at every ISA level that has it (kAuto restores the automatic choice).
/// Returns false, changing nothing, if the active level or the CPU lacks it.
bool force_int8_kernel(Int8Kernel kernel);

/// Turns AVX512-BF16 dot products on or off (linear layers and attention); the default is
/// bf16_dot_outruns_fma(). Tests switch it to reach both AVX-512 bf16 paths on any CPU with them.
void allow_bf16_dot_products(bool allowed);

/// Whether the active bf16 kernel takes bf16-rounded activations (AVX512-BF16 dot products).
bool bf16_uses_dot_products();

}  // namespace tw
