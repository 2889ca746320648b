// CPUID feature detection, with the OS's support for the wider register state checked (XGETBV):
// a CPU with AVX-512 under an OS that does not save zmm registers must not run AVX-512 code.
#include "runtime.h"

#if defined(TILEWISE_X86)
#include <cpuid.h>
#endif

namespace tw {
namespace {

int detect_features() {
#if defined(TILEWISE_X86)
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const bool osxsave = ecx & (1u << 27);
    const bool has_avx = ecx & (1u << 28);
    const bool has_fma = ecx & (1u << 12);
    const bool has_f16c = ecx & (1u << 29);
    if (!osxsave || !has_avx) return 0;
    unsigned xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    const bool os_ymm = (xcr0_lo & 0x6) == 0x6;    // SSE + AVX state
    const bool os_zmm = (xcr0_lo & 0xE6) == 0xE6;  // + opmask, ZMM_Hi256, Hi16_ZMM
    if (!os_ymm) return 0;

    int features = 0;
    if (has_fma) features |= TW_CPU_FMA;
    if (has_f16c) features |= TW_CPU_F16C;
    unsigned max_leaf = __get_cpuid_max(0, nullptr);
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, eax, ebx, ecx, edx);
        if (ebx & (1u << 5)) features |= TW_CPU_AVX2;
        if (os_zmm) {
            if (ebx & (1u << 16)) features |= TW_CPU_AVX512F;
            if (ebx & (1u << 17)) features |= TW_CPU_AVX512DQ;
            if (ebx & (1u << 30)) features |= TW_CPU_AVX512BW;
            if (ebx & (1u << 31)) features |= TW_CPU_AVX512VL;
            if (ecx & (1u << 11)) features |= TW_CPU_AVX512_VNNI;
            if (edx & (1u << 23)) features |= TW_CPU_AVX512_FP16;
        }
        if (edx & (1u << 24)) features |= TW_CPU_AMX;  // AMX-TILE (reported, not used)
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        if (a1 & (1u << 4)) features |= TW_CPU_AVX_VNNI;
        if (os_zmm && (a1 & (1u << 5))) features |= TW_CPU_AVX512_BF16;
    }
    return features;
#else
    return 0;
#endif
}

}  // namespace

int cpu_features() {
    static const int features = detect_features();
    return features;
}

}  // namespace tw

extern "C" int tw_cpu_features(void) {
    return tw::cpu_features();
}
