// JNI for io.github.tilewise.djl.jni.LinearF32Native: checks shapes and buffer capacities again
// (the Java side already did), unwraps the direct buffers and calls tw_f32_pack / tw_f32_linear.
// Rows are contiguous: ldx = k, ldy = ld_residual = n. No math here.
#include <jni.h>

#include <cstdint>
#include <string>

#include "jni_util.h"
#include "tilewise/tilewise_linear_f32.h"

namespace {

using twjni::throw_illegal_argument;

/// m·cols·4 bytes, or -1 (after throwing) when a size is not positive or overflows.
int64_t matrix_bytes(JNIEnv* env, const char* what, int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) {
        throw_illegal_argument(env, std::string(what) + ": rows and columns must be positive, got " +
                                        std::to_string(rows) + " x " + std::to_string(cols));
        return -1;
    }
    const __int128 bytes = static_cast<__int128>(rows) * cols * 4;
    if (bytes > INT64_MAX) {
        throw_illegal_argument(env, std::string(what) + ": size overflows");
        return -1;
    }
    return static_cast<int64_t>(bytes);
}

/// The float-aligned address of a direct buffer of at least `bytes` (not read-only when native code
/// writes it: `written`), or nullptr after throwing.
float* floats(JNIEnv* env, jobject buffer, int64_t bytes, const char* what, bool allow_null,
              bool written = false) {
    void* address = written ? twjni::writable_address(env, buffer, bytes, what, allow_null)
                            : twjni::direct_address(env, buffer, bytes, what, allow_null);
    if (address == nullptr) return nullptr;
    if (reinterpret_cast<uintptr_t>(address) % alignof(float) != 0) {
        throw_illegal_argument(env, std::string(what) + " buffer is not 4-byte aligned");
        return nullptr;
    }
    return static_cast<float*>(address);
}

}  // namespace

extern "C" {

JNIEXPORT jlong JNICALL Java_io_github_tilewise_djl_jni_LinearF32Native_packedBytes(JNIEnv*, jobject,
                                                                                   jlong n, jlong k) {
    return tw_f32_packed_bytes(n, k);
}

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_LinearF32Native_pack(JNIEnv* env, jobject,
                                                                           jlong n, jlong k,
                                                                           jobject w,
                                                                           jobject packed) {
    const int64_t w_bytes = matrix_bytes(env, "weight", n, k);
    if (w_bytes < 0) return;
    const int64_t packed_bytes = tw_f32_packed_bytes(n, k);
    const float* wp = floats(env, w, w_bytes, "weight", false);
    if (wp == nullptr) return;
    float* pp = floats(env, packed, packed_bytes, "packed", false, true);
    if (pp == nullptr) return;
    twjni::check(env, tw_f32_pack(n, k, wp, k, pp));
}

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_LinearF32Native_linear(
    JNIEnv* env, jobject, jlong m, jlong n, jlong k, jobject x, jobject packed, jobject bias,
    jboolean gelu, jobject residual, jobject y) {
    const int64_t x_bytes = matrix_bytes(env, "x", m, k);
    if (x_bytes < 0) return;
    const int64_t y_bytes = matrix_bytes(env, "y", m, n);
    if (y_bytes < 0) return;
    const int64_t packed_bytes = tw_f32_packed_bytes(n, k);
    tw_f32_linear_params p{};
    p.m = m;
    p.n = n;
    p.k = k;
    p.ldx = k;
    p.ld_residual = n;
    p.ldy = n;
    p.gelu = gelu ? 1 : 0;
    if ((p.x = floats(env, x, x_bytes, "x", false)) == nullptr) return;
    if ((p.packed = floats(env, packed, packed_bytes, "packed", false)) == nullptr) return;
    p.bias = floats(env, bias, n * 4, "bias", true);
    if (env->ExceptionCheck()) return;
    p.residual = floats(env, residual, y_bytes, "residual", true);
    if (env->ExceptionCheck()) return;
    if ((p.y = floats(env, y, y_bytes, "y", false, true)) == nullptr) return;
    twjni::check(env, tw_f32_linear(&p));
}

}  // extern "C"
