// JNI for io.github.tilewise.djl.jni.TilewiseNative: library-level queries and settings.
#include <jni.h>

#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif

#include <string>

#include "jni_util.h"
#include "tilewise/tilewise.h"

extern "C" {

JNIEXPORT jstring JNICALL Java_io_github_tilewise_djl_jni_TilewiseNative_version(JNIEnv* env,
                                                                                 jobject) {
    return env->NewStringUTF(tw_version());
}

JNIEXPORT jint JNICALL Java_io_github_tilewise_djl_jni_TilewiseNative_cpuFeatures(JNIEnv*,
                                                                                  jobject) {
    return tw_cpu_features();
}

JNIEXPORT jstring JNICALL Java_io_github_tilewise_djl_jni_TilewiseNative_describeCpu(JNIEnv* env,
                                                                                     jobject) {
    static const struct {
        int bit;
        const char* name;
    } names[] = {{TW_CPU_AVX2, "avx2"},
                 {TW_CPU_FMA, "fma"},
                 {TW_CPU_F16C, "f16c"},
                 {TW_CPU_AVX_VNNI, "avx_vnni"},
                 {TW_CPU_AVX512F, "avx512f"},
                 {TW_CPU_AVX512BW, "avx512bw"},
                 {TW_CPU_AVX512VL, "avx512vl"},
                 {TW_CPU_AVX512DQ, "avx512dq"},
                 {TW_CPU_AVX512_VNNI, "avx512_vnni"},
                 {TW_CPU_AVX512_BF16, "avx512_bf16"},
                 {TW_CPU_AVX512_FP16, "avx512_fp16"},
                 {TW_CPU_AMX, "amx"}};
    const int features = tw_cpu_features();
    std::string out;
    for (const auto& n : names) {
        if (features & n.bit) {
            if (!out.empty()) out += ' ';
            out += n.name;
        }
    }
    return env->NewStringUTF(out.empty() ? "baseline" : out.c_str());
}

JNIEXPORT jint JNICALL Java_io_github_tilewise_djl_jni_TilewiseNative_isaDetected(JNIEnv*,
                                                                                  jobject) {
    return tw_isa_detected();
}

JNIEXPORT jint JNICALL Java_io_github_tilewise_djl_jni_TilewiseNative_isaActive(JNIEnv*, jobject) {
    return tw_isa_active();
}

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_TilewiseNative_setIsa(JNIEnv* env, jobject,
                                                                             jint isa) {
    twjni::check(env, tw_set_isa(static_cast<tw_isa>(isa)));
}

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_TilewiseNative_setNumThreads(JNIEnv* env,
                                                                                    jobject,
                                                                                    jint threads) {
    twjni::check(env, tw_set_num_threads(threads));
}

JNIEXPORT jint JNICALL Java_io_github_tilewise_djl_jni_TilewiseNative_numThreads(JNIEnv*, jobject) {
    return tw_num_threads();
}

// Keeps freed heap blocks in the process instead of returning them to the OS: blocks up to 32 MiB
// (glibc's limit) come from the heap, not from a fresh mmap, and up to `bytes` of free heap stay
// mapped. An encoder
// forward allocates and frees tens of MB of activations per layer; without this, glibc maps fresh
// pages for each and every first touch is a page fault (measured here: ~8,900 faults and 10% of the
// CPU time per batch-32 MiniLM forward). Returns false where the C library has no mallopt.
JNIEXPORT jboolean JNICALL
Java_io_github_tilewise_djl_jni_TilewiseNative_retainFreedMemory(JNIEnv*, jobject, jint bytes) {
#if defined(__GLIBC__)
    if (bytes <= 0) return JNI_FALSE;
    // glibc refuses mmap thresholds above half its 64 MiB arena heap size; blocks larger than that
    // are mapped and unmapped per call whatever the setting.
    constexpr int kLargestMmapThreshold = 32 << 20;
    const bool mmap_ok =
        mallopt(M_MMAP_THRESHOLD, bytes < kLargestMmapThreshold ? bytes : kLargestMmapThreshold) ==
        1;
    const bool trim_ok = mallopt(M_TRIM_THRESHOLD, bytes) == 1;
    return (mmap_ok && trim_ok) ? JNI_TRUE : JNI_FALSE;
#else
    (void)bytes;
    return JNI_FALSE;
#endif
}

// Returns the free memory the C library holds to the OS (glibc's malloc_trim: the top of each heap
// and whole free pages inside it), e.g. after a model is closed; false where there is none to give
// or no malloc_trim.
JNIEXPORT jboolean JNICALL
Java_io_github_tilewise_djl_jni_TilewiseNative_releaseFreedMemory(JNIEnv*, jobject) {
#if defined(__GLIBC__)
    return malloc_trim(0) == 1 ? JNI_TRUE : JNI_FALSE;
#else
    return JNI_FALSE;
#endif
}

}  // extern "C"
