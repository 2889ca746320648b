// The kernel tables (cpu/kernels.h): every ISA level this CPU has gets a table of its own level,
// tw_linear_kernel_name* report the table's entries, the test overrides refill it, and an
// unsupported override changes nothing.
#include "cpu/kernels.h"

#include <cstring>

#include "cpu/runtime.h"
#include "test_util.h"
#include "tilewise/tilewise_gemm.h"

namespace {

const char* prefix(tw_isa isa) {
    return isa == TW_ISA_AVX512 ? "avx512" : isa == TW_ISA_AVX2 ? "avx2" : "portable";
}

bool starts_with(const char* s, const char* p) {
    return std::strncmp(s, p, std::strlen(p)) == 0;
}

}  // namespace

int main() {
    for (tw_isa isa : {TW_ISA_PORTABLE, TW_ISA_AVX2, TW_ISA_AVX512}) {
        if (tw_set_isa(isa) != TW_OK) {
            std::printf("skipping isa %d: %s\n", int(isa), tw_last_error());
            continue;
        }
        const tw::KernelTable& t = tw::kernels();
        TW_CHECK(t.isa == isa && tw_isa_active() == isa, "table of level %d for level %d",
                 int(t.isa), int(isa));
        TW_CHECK(std::strcmp(tw_linear_kernel_name(TW_F32, TW_QUANT_NONE), t.linear.f32.name) == 0,
                 "f32 name");
        TW_CHECK(
            std::strcmp(tw_linear_kernel_name(TW_I8, TW_QUANT_ASYMMETRIC), t.linear.int8.name) == 0,
            "int8 name");
        TW_CHECK(std::strcmp(tw_linear_kernel_name(TW_I8, TW_QUANT_NONE),
                             t.linear.int8_weight_only.name) == 0,
                 "int8 weight-only name");
        TW_CHECK(
            std::strcmp(tw_linear_kernel_name(TW_BF16, TW_QUANT_NONE), t.linear.bf16.name) == 0,
            "bf16 name");
        TW_CHECK(std::strcmp(tw_linear_kernel_name(TW_F16, TW_QUANT_NONE), t.linear.f16.name) == 0,
                 "fp16 name");
        TW_CHECK(std::strcmp(tw_linear_kernel_name(static_cast<tw_dtype>(42), TW_QUANT_NONE),
                             "unsupported") == 0,
                 "unknown format");
        for (const char* name :
             {t.linear.f32.name, t.linear.int8_weight_only.name, t.linear.bf16.name,
              t.linear.f16.name, t.quantize.name, t.layernorm.name, t.attention.name}) {
            TW_CHECK(starts_with(name, prefix(isa)), "level %s runs %s", prefix(isa), name);
        }
        TW_CHECK(tw_int8_activation_qmax() == t.linear.int8.input_qmax, "qmax");
        // Reduced-range weights are named (and run) by the table's reduced entry.
        float w[4] = {0.5f, -0.25f, 1.0f, 0.0f};
        tw_packed_weights* reduced = nullptr;
        TW_CHECK(
            tw_pack_weights_int8_range(2, 2, w, 2, TW_INT8_REDUCED_WEIGHT_MAX, &reduced) == TW_OK,
            "%s", tw_last_error());
        TW_CHECK(std::strcmp(tw_linear_kernel_name_for(reduced, TW_QUANT_ASYMMETRIC),
                             t.linear.int8_reduced.name) == 0,
                 "reduced name");
        tw_packed_weights_free(reduced);
        // Overrides refill the table; an unsupported one is refused and changes nothing.
        if (isa == TW_ISA_PORTABLE) {
            TW_CHECK(!tw::force_int8_kernel(tw::Int8Kernel::kAvx2Maddubs),
                     "avx2 kernel at portable");
            TW_CHECK(&tw::kernels() == &t, "a refused override changed the table");
        } else {
            TW_CHECK(tw::force_int8_kernel(tw::Int8Kernel::kAvx2Maddubs), "force avx2-maddubs");
            TW_CHECK(std::strcmp(tw::kernels().linear.int8.name, "avx2-maddubs-sign") == 0 &&
                         tw::kernels().linear.int8.input_qmax == 254 &&
                         tw_int8_activation_qmax() == 254,
                     "forced sign-trick kernel");
            TW_CHECK(tw::force_int8_kernel(tw::Int8Kernel::kAuto), "auto");
            TW_CHECK(&tw::kernels() == &t, "auto returns to the level's table");
        }
        tw::allow_bf16_dot_products(false);
        TW_CHECK(!tw::bf16_uses_dot_products() && !tw::kernels().linear.bf16.bf16_input,
                 "no dot products when disallowed");
        tw::allow_bf16_dot_products(tw::bf16_dot_outruns_fma());
        TW_CHECK(&tw::kernels() == &t, "the same table after the bf16 override is lifted");
    }
    tw_set_isa(tw_isa_detected());
    return twtest::finish("kernels_test");
}
