// JNI for io.github.tilewise.djl.jni.TilewiseNative: library-level queries and settings.
#include <jni.h>

#include <string>

#include "jni_util.h"
#include "tilewise/tilewise.h"

extern "C" {

JNIEXPORT jstring JNICALL Java_io_github_tilewise_djl_jni_TilewiseNative_version(JNIEnv* env, jobject) {
    return env->NewStringUTF(tw_version());
}

JNIEXPORT jint JNICALL Java_io_github_tilewise_djl_jni_TilewiseNative_cpuFeatures(JNIEnv*, jobject) {
    return tw_cpu_features();
}

JNIEXPORT jstring JNICALL Java_io_github_tilewise_djl_jni_TilewiseNative_describeCpu(JNIEnv* env,
                                                                                    jobject) {
    static const struct {
        int bit;
        const char* name;
    } names[] = {{TW_CPU_AVX2, "avx2"},           {TW_CPU_FMA, "fma"},
                 {TW_CPU_F16C, "f16c"},           {TW_CPU_AVX_VNNI, "avx_vnni"},
                 {TW_CPU_AVX512F, "avx512f"},     {TW_CPU_AVX512BW, "avx512bw"},
                 {TW_CPU_AVX512VL, "avx512vl"},   {TW_CPU_AVX512DQ, "avx512dq"},
                 {TW_CPU_AVX512_VNNI, "avx512_vnni"}, {TW_CPU_AVX512_BF16, "avx512_bf16"},
                 {TW_CPU_AVX512_FP16, "avx512_fp16"}, {TW_CPU_AMX, "amx"}};
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

JNIEXPORT jint JNICALL Java_io_github_tilewise_djl_jni_TilewiseNative_isaDetected(JNIEnv*, jobject) {
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

}  // extern "C"
