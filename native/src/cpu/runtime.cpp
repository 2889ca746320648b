// Library-wide state: last error per thread, version, and the ISA level chosen at load.
#include "runtime.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels.h"

#ifndef TILEWISE_VERSION
#define TILEWISE_VERSION "0.0.0"
#endif

namespace tw {
namespace {

thread_local char last_error[512] = "";

constexpr int kAvx2Required = TW_CPU_AVX2 | TW_CPU_FMA | TW_CPU_F16C;
constexpr int kAvx512Required =
    kAvx2Required | TW_CPU_AVX512F | TW_CPU_AVX512BW | TW_CPU_AVX512VL | TW_CPU_AVX512DQ;

bool supports(tw_isa isa) {
    const int f = cpu_features();
    switch (isa) {
        case TW_ISA_PORTABLE: return true;
        case TW_ISA_AVX2: return (f & kAvx2Required) == kAvx2Required;
        case TW_ISA_AVX512: return (f & kAvx512Required) == kAvx512Required;
        default: return false;  // a caller's out-of-range code
    }
}

tw_isa detect_isa() {
#if defined(TILEWISE_X86)
    if (supports(TW_ISA_AVX512)) return TW_ISA_AVX512;
    if (supports(TW_ISA_AVX2)) return TW_ISA_AVX2;
#endif
    return TW_ISA_PORTABLE;
}

// TILEWISE_ISA=portable|avx2|avx512 caps the level (the Java side sets it from a system property).
tw_isa initial_isa() {
    tw_isa isa = detect_isa();
    const char* env = std::getenv("TILEWISE_ISA");
    if (env == nullptr) return isa;
    tw_isa wanted = isa;
    if (std::strcmp(env, "portable") == 0) wanted = TW_ISA_PORTABLE;
    if (std::strcmp(env, "avx2") == 0) wanted = TW_ISA_AVX2;
    if (std::strcmp(env, "avx512") == 0) wanted = TW_ISA_AVX512;
    return supports(wanted) ? wanted : isa;
}

std::atomic<int>& isa_state() {
    static std::atomic<int> isa{static_cast<int>(initial_isa())};
    return isa;
}

}  // namespace

tw_status fail(tw_status status, const char* format, ...) {
    va_list args;
    va_start(args, format);
    std::vsnprintf(last_error, sizeof(last_error), format, args);
    va_end(args);
    return status;
}

tw_status ok() {
    last_error[0] = '\0';
    return TW_OK;
}

tw_isa active_isa() {
    return static_cast<tw_isa>(isa_state().load(std::memory_order_relaxed));
}

}  // namespace tw

extern "C" {

const char* tw_last_error(void) {
    return tw::last_error;
}

const char* tw_version(void) {
    return TILEWISE_VERSION;
}

tw_isa tw_isa_detected(void) {
    return tw::detect_isa();
}

tw_isa tw_isa_active(void) {
    return tw::active_isa();
}

tw_status tw_set_isa(tw_isa isa) {
    if (isa < TW_ISA_PORTABLE || isa > TW_ISA_AVX512) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "unknown ISA level %d", static_cast<int>(isa));
    }
    if (!tw::supports(isa)) {
        return tw::fail(TW_ERR_UNSUPPORTED, "this CPU does not support ISA level %d",
                        static_cast<int>(isa));
    }
    tw::isa_state().store(static_cast<int>(isa));
    tw::refresh_kernels();
    return tw::ok();
}

}  // extern "C"
