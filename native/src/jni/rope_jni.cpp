// JNI for io.github.tilewise.djl.jni.RotaryNative: checks the buffer against the rows it spans,
// copies the positions out of the Java array and calls tw_rope_apply. No math here.
#include <jni.h>

#include <cstdint>
#include <string>
#include <vector>

#include "jni_util.h"
#include "tilewise/tilewise.h"

extern "C" {

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_RotaryNative_apply0(
    JNIEnv* env, jobject, jobject x, jlong tokens, jlong heads, jlong head_dim, jlong token_stride,
    jintArray positions, jfloat theta) {
    using twjni::throw_illegal_argument;
    if (tokens < 0 || tokens > (int64_t{1} << 40) || heads < 1 || heads > (int64_t{1} << 30) ||
        head_dim < 2 || head_dim % 2 != 0 || head_dim > (int64_t{1} << 20)) {
        throw_illegal_argument(env, "rotary: tokens=" + std::to_string(tokens) +
                                        " heads=" + std::to_string(heads) +
                                        " headDim=" + std::to_string(head_dim) +
                                        ": need tokens >= 0, heads >= 1, an even headDim >= 2");
        return;
    }
    const int64_t width = heads * head_dim;
    if (tokens > 1 && (token_stride < width || token_stride > (int64_t{1} << 40))) {
        throw_illegal_argument(env, "rotary: row stride " + std::to_string(token_stride) +
                                        " is below heads * headDim = " + std::to_string(width) +
                                        " or out of range");
        return;
    }
    if (positions == nullptr || env->GetArrayLength(positions) != tokens) {
        throw_illegal_argument(
            env, "rotary: positions must hold one entry per token (" + std::to_string(tokens) +
                     "), got " +
                     (positions == nullptr ? std::string("null")
                                           : std::to_string(env->GetArrayLength(positions))));
        return;
    }
    if (tokens == 0) return;
    // Highest element touched: (tokens - 1) * stride + width - 1, in 128 bits.
    const __int128 elements = static_cast<__int128>(tokens - 1) * token_stride + width;
    if (elements * 4 > INT64_MAX) {
        throw_illegal_argument(env, "rotary: the rows span more than 2^63 bytes");
        return;
    }
    void* address = twjni::writable_address(env, x, static_cast<int64_t>(elements * 4), "rotary x");
    if (address == nullptr) return;
    if (reinterpret_cast<uintptr_t>(address) % 4 != 0) {
        throw_illegal_argument(env, "rotary: x buffer is not aligned to 4 bytes");
        return;
    }
    std::vector<int32_t> pos(static_cast<size_t>(tokens));
    env->GetIntArrayRegion(positions, 0, static_cast<jsize>(tokens),
                           reinterpret_cast<jint*>(pos.data()));
    if (env->ExceptionCheck()) return;
    twjni::check(env, tw_rope_apply(static_cast<float*>(address), tokens, heads, head_dim,
                                    token_stride, pos.data(), theta));
}

}  // extern "C"
