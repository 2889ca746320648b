// The kernel tables (kernels.h): which variant of every kernel family runs at each ISA level on
// this CPU, and its name. The only place outside runtime.cpp that looks at the ISA level or the
// CPU feature bits.
//
//   level     linear fp32   int8 dynamic                        int8 weight-only  bf16         fp16
//   avx512    avx512 12x32  avx512-vnni > avx-vnni > avx2-sign  avx512            dot* > widen
//   avx512 avx2      avx2 6x16     avx-vnni > avx2-sign (reduced)      avx2              avx2 widen
//   avx2 portable  portable      portable                            portable          portable
//   portable
// The quantizer, the LayerNorm rows, the gated epilogue and attention follow the level (attention
// with bf16 dot products where the CPU has AVX512-BF16).
// *: AVX512-BF16 dot products (linear layers and attention) only where they outrun fp32 FMAs
// (bf16_dot_outruns_fma: AMD); elsewhere bf16 weights are widened and bf16 attention rounds its
// operands and multiplies in fp32.
// "(reduced)": weights packed within TW_INT8_REDUCED_WEIGHT_MAX take the reduced-range kernel
// where the choice is the sign-trick one.
#include "kernels.h"

#include <atomic>
#include <mutex>

#include "runtime.h"

namespace tw {
namespace {

constexpr int kLevels = TW_ISA_AVX512 + 1;
constexpr int kInt8Choices = static_cast<int>(Int8Kernel::kAvx512Vnni) + 1;

// Guards the overrides and the filling of tables; readers only load `active`.
std::mutex table_mutex;
Int8Kernel forced_int8 = Int8Kernel::kAuto;
// AVX512-BF16 dot products where they outrun fp32 FMAs (AMD); tests switch them either way.
bool bf16_dot_allowed = bf16_dot_outruns_fma();
// One table per (level, int8 override, bf16 override), filled on first use and never changed, so
// switching back and forth (tests) allocates nothing and a running call's table stays valid.
KernelTable tables[kLevels][kInt8Choices][2];
bool filled[kLevels][kInt8Choices][2];
std::atomic<const KernelTable*> active{nullptr};

bool cpu_has(int bits) {
    return (cpu_features() & bits) == bits;
}

bool int8_supported(Int8Kernel kernel, tw_isa isa) {
    switch (kernel) {
        case Int8Kernel::kAuto:
        case Int8Kernel::kPortable: return true;
        case Int8Kernel::kAvx2Maddubs:
        case Int8Kernel::kAvx2Reduced: return isa >= TW_ISA_AVX2;
        case Int8Kernel::kAvxVnni: return isa >= TW_ISA_AVX2 && cpu_has(TW_CPU_AVX_VNNI);
        case Int8Kernel::kAvx512Vnni: return isa >= TW_ISA_AVX512 && cpu_has(TW_CPU_AVX512_VNNI);
    }
    return false;
}

Int8Kernel automatic_int8(tw_isa isa) {
    switch (isa) {
        case TW_ISA_AVX512:
            if (cpu_has(TW_CPU_AVX512_VNNI)) return Int8Kernel::kAvx512Vnni;
            return cpu_has(TW_CPU_AVX_VNNI) ? Int8Kernel::kAvxVnni : Int8Kernel::kAvx2Maddubs;
        case TW_ISA_AVX2:
            return cpu_has(TW_CPU_AVX_VNNI) ? Int8Kernel::kAvxVnni : Int8Kernel::kAvx2Maddubs;
        default: return Int8Kernel::kPortable;
    }
}

/// A kernel on fp32 or 16-bit activations.
LinearKernel plain(BlockFn block, const char* name, int64_t block_rows = kBlockRows) {
    return LinearKernel{block, name, block_rows, false, 0, 0};
}

/// A dynamic int8 kernel. Every one but the sign-trick kernel takes codes 0..255 (that one centres
/// them on 127, see gemm_int8_avx2.cpp, so 0..254); every one but the reduced-range kernel is
/// exact for any int8 weight, -128 included.
LinearKernel int8_kernel(Int8Kernel kernel) {
    switch (kernel) {
#if defined(TILEWISE_X86)
        case Int8Kernel::kAvx512Vnni:
            return LinearKernel{int8_block_avx512_vnni, "avx512-vnni", kBlockRows, false, 255, 128};
        case Int8Kernel::kAvxVnni:
            return LinearKernel{int8_block_avx_vnni, "avx-vnni", kBlockRows, false, 255, 128};
        case Int8Kernel::kAvx2Maddubs:
            return LinearKernel{
                int8_block_avx2_maddubs, "avx2-maddubs-sign", kBlockRows, false, 254, 128};
        case Int8Kernel::kAvx2Reduced:
            return LinearKernel{
                int8_block_avx2_reduced,   "avx2-maddubs-reduced-range", kBlockRows, false, 255,
                TW_INT8_REDUCED_WEIGHT_MAX};
#endif
        default:
            return LinearKernel{int8_block_portable, "portable-int8", kBlockRows, false, 255, 128};
    }
}

void fill(KernelTable& t, tw_isa isa, Int8Kernel forced, bool bf16_dot) {
    t = KernelTable{};
    t.isa = isa;
    t.linear.f32 = plain(f32_block_portable, "portable-f32", kF32BlockRows);
    t.linear.int8_weight_only = plain(int8_wo_block_portable, "portable-int8-weight-only");
    t.linear.bf16 = plain(bf16_block_portable, "portable-bf16");
    t.linear.f16 = plain(f16_block_portable, "portable-fp16");
    t.quantize = {quantize_rows_portable, "portable"};
    t.layernorm = {layernorm_rows_portable, "portable"};
    t.gate = {gate_rows_portable, "portable"};
    t.attention = {attention_portable, "portable"};
#if defined(TILEWISE_X86)
    if (isa == TW_ISA_AVX512) {
        t.linear.f32 = plain(f32_block_avx512, "avx512-f32-12x32", kF32BlockRows);
        t.linear.int8_weight_only = plain(int8_wo_block_avx512, "avx512-int8-weight-only");
        if (bf16_dot && cpu_has(TW_CPU_AVX512_BF16)) {
            t.linear.bf16 = plain(bf16_dot_block_avx512, "avx512-bf16-dot");
            t.linear.bf16.bf16_input = true;
            t.linear.to_bf16 = to_bf16_rows_avx512;
        } else {
            t.linear.bf16 = plain(bf16_block_avx512, "avx512-bf16-widen");
        }
        t.linear.f16 = plain(f16_block_avx512, "avx512-fp16-f16c");
        t.quantize = {quantize_rows_avx512, "avx512"};
        t.layernorm = {layernorm_rows_avx512, "avx512"};
        t.gate = {gate_rows_avx512, "avx512"};
        t.attention = bf16_dot && cpu_has(TW_CPU_AVX512_BF16)
                          ? decltype(t.attention){attention_avx512_bf16_dot, "avx512-bf16-dot"}
                          : decltype(t.attention){attention_avx512, "avx512"};
    } else if (isa == TW_ISA_AVX2) {
        t.linear.f32 = plain(f32_block_avx2, "avx2-f32-6x16", kF32BlockRows);
        t.linear.int8_weight_only = plain(int8_wo_block_avx2, "avx2-int8-weight-only");
        t.linear.bf16 = plain(bf16_block_avx2, "avx2-bf16-widen");
        t.linear.f16 = plain(f16_block_avx2, "avx2-fp16-f16c");
        t.quantize = {quantize_rows_avx2, "avx2"};
        t.layernorm = {layernorm_rows_avx2, "avx2"};
        t.gate = {gate_rows_avx2, "avx2"};
        t.attention = {attention_avx2, "avx2"};
    }
#endif
    const Int8Kernel chosen =
        forced != Int8Kernel::kAuto && int8_supported(forced, isa) ? forced : automatic_int8(isa);
    t.linear.int8 = int8_kernel(chosen);
    // Reduced-range weights leave the sign trick for the plain kernel, unless a test forced one.
    t.linear.int8_reduced = chosen == Int8Kernel::kAvx2Maddubs && forced == Int8Kernel::kAuto
                                ? int8_kernel(Int8Kernel::kAvx2Reduced)
                                : t.linear.int8;
}

/// Publishes the table of the current level and overrides; the caller holds table_mutex.
const KernelTable& publish_locked() {
    const tw_isa isa = active_isa();
    const int level = static_cast<int>(isa);
    const int int8 = static_cast<int>(forced_int8);
    const int dot = bf16_dot_allowed ? 1 : 0;
    KernelTable& t = tables[level][int8][dot];
    if (!filled[level][int8][dot]) {
        fill(t, isa, forced_int8, bf16_dot_allowed);
        filled[level][int8][dot] = true;
    }
    active.store(&t, std::memory_order_release);
    return t;
}

// Filled at load (static initialization of the library), before any call.
[[maybe_unused]] const KernelTable& loaded = refresh_kernels();

}  // namespace

const KernelTable& refresh_kernels() {
    std::lock_guard<std::mutex> lock(table_mutex);
    return publish_locked();
}

const KernelTable& kernels() {
    const KernelTable* t = active.load(std::memory_order_acquire);
    return t != nullptr ? *t : refresh_kernels();
}

const LinearKernel* select_linear(const KernelTable& t, tw_dtype format, tw_activation_quant quant,
                                  int32_t weight_max) {
    switch (format) {
        case TW_F32: return &t.linear.f32;
        case TW_I8:
            if (quant == TW_QUANT_NONE) return &t.linear.int8_weight_only;
            return weight_max <= TW_INT8_REDUCED_WEIGHT_MAX ? &t.linear.int8_reduced
                                                            : &t.linear.int8;
        case TW_BF16: return &t.linear.bf16;
        case TW_F16: return &t.linear.f16;
        default: return nullptr;
    }
}

bool force_int8_kernel(Int8Kernel kernel) {
    std::lock_guard<std::mutex> lock(table_mutex);
    if (!int8_supported(kernel, active_isa())) return false;
    forced_int8 = kernel;
    publish_locked();
    return true;
}

void allow_bf16_dot_products(bool allowed) {
    std::lock_guard<std::mutex> lock(table_mutex);
    bf16_dot_allowed = allowed;
    publish_locked();
}

bool bf16_uses_dot_products() {
    return kernels().linear.bf16.bf16_input;
}

}  // namespace tw
