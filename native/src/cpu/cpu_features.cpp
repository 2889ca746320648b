// CPUID feature detection, with the OS's support for the wider register state checked (XGETBV):
// a CPU with AVX-512 under an OS that does not save zmm registers must not run AVX-512 code.
#include <cstdlib>

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

bool detect_amd() {
#if defined(TILEWISE_X86)
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return false;
    // "AuthenticAMD" as the vendor registers hold it: EBX "Auth", EDX "enti", ECX "cAMD".
    return ebx == 0x68747541u && edx == 0x69746e65u && ecx == 0x444d4163u;
#else
    return false;
#endif
}

}  // namespace

int cpu_features() {
    static const int features = detect_features();
    return features;
}

bool bf16_dot_outruns_fma() {
    // AMD Zen 4 and 5 run vdpbf16ps (two products per fp32 lane) at the FMA's rate: twice the
    // fp32 flops (Zen 5, peak_bench 2: 825 vs 414 GFLOP/s). On a Sapphire Rapids Xeon it gave half
    // the FMA's flops (peak_bench 2: 108-117 vs 217-228), and attention with bf16 compute ran at
    // 0.62-0.89x (median 0.69x) of fp32 (2 cores of a Xeon with AMX, 2026-12-07,
    // native/bench/cpu_device.sh). TILEWISE_BF16_DOT=1 or 0 overrides.
    static const bool outruns = [] {
        if (const char* env = std::getenv("TILEWISE_BF16_DOT")) return env[0] == '1';
        return detect_amd();
    }();
    return outruns;
}

}  // namespace tw

extern "C" int tw_cpu_features(void) {
    return tw::cpu_features();
}
