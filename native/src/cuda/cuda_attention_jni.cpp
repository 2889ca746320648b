// JNI for io.github.tilewise.djl.jni.CudaNative: device queries, device memory and the CUDA
// attention. Thin: it re-checks what Java already validated (buffer kinds and capacities, value
// ranges) before anything touches memory, calls the tw_cuda_* C ABI, and turns a failed status
// into the matching Java exception carrying tw_cuda_last_error() (with the CUDA error text).
#include <jni.h>

#include <cstdint>
#include <string>

#include "../jni/jni_util.h"
#include "tilewise/tilewise_cuda.h"

namespace {

void throw_status(JNIEnv* env, tw_status status, const std::string& message) {
    twjni::throw_status(env, status, message.c_str());
}

/// Throws and returns true when status is not TW_OK.
bool failed(JNIEnv* env, tw_status status) {
    if (status == TW_OK) return false;
    throw_status(env, status, tw_cuda_last_error());
    return true;
}

/// Address of bytes [offset, offset + bytes) of a direct buffer, or nullptr after throwing.
void* direct_range(JNIEnv* env, jobject buffer, jlong offset, jlong bytes, const char* what) {
    if (buffer == nullptr) {
        throw_status(env, TW_ERR_INVALID_ARGUMENT, std::string(what) + " buffer is null");
        return nullptr;
    }
    auto* base = static_cast<unsigned char*>(env->GetDirectBufferAddress(buffer));
    if (base == nullptr) {
        throw_status(env, TW_ERR_INVALID_ARGUMENT, std::string(what) + " buffer is not direct");
        return nullptr;
    }
    const jlong capacity = env->GetDirectBufferCapacity(buffer);
    if (offset < 0 || bytes < 0 || offset > capacity || capacity - offset < bytes) {
        throw_status(env, TW_ERR_INVALID_ARGUMENT,
                     std::string(what) + " buffer holds " + std::to_string(capacity) +
                         " bytes; bytes [" + std::to_string(offset) + ", " +
                         std::to_string(offset + bytes) + ") were asked for");
        return nullptr;
    }
    return base + offset;
}

void* as_ptr(jlong address) {
    return reinterpret_cast<void*>(static_cast<intptr_t>(address));
}

}  // namespace

extern "C" {

JNIEXPORT jint JNICALL Java_io_github_tilewise_djl_jni_CudaNative_deviceCount(JNIEnv* env,
                                                                              jobject) {
    int count = 0;
    if (failed(env, tw_cuda_device_count(&count))) return 0;
    return count;
}

JNIEXPORT jstring JNICALL Java_io_github_tilewise_djl_jni_CudaNative_noDeviceReason(JNIEnv* env,
                                                                                    jobject) {
    int count = 0;
    tw_cuda_device_count(&count);
    if (count > 0) return nullptr;
    return env->NewStringUTF(tw_cuda_last_error());
}

JNIEXPORT jstring JNICALL Java_io_github_tilewise_djl_jni_CudaNative_describeDevice(JNIEnv* env,
                                                                                    jobject,
                                                                                    jint device) {
    char buf[256];
    if (failed(env, tw_cuda_describe_device(device, buf, sizeof buf))) return nullptr;
    return env->NewStringUTF(buf);
}

JNIEXPORT jlong JNICALL Java_io_github_tilewise_djl_jni_CudaNative_malloc(JNIEnv* env, jobject,
                                                                          jlong bytes) {
    if (bytes <= 0) {
        throw_status(env, TW_ERR_INVALID_ARGUMENT, "allocation size must be positive");
        return 0;
    }
    void* ptr = nullptr;
    if (failed(env, tw_cuda_malloc(&ptr, static_cast<size_t>(bytes)))) return 0;
    return static_cast<jlong>(reinterpret_cast<intptr_t>(ptr));
}

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_CudaNative_free(JNIEnv* env, jobject,
                                                                       jlong address) {
    failed(env, tw_cuda_free(as_ptr(address)));
}

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_CudaNative_copyToDevice(
    JNIEnv* env, jobject, jlong dst, jobject src, jlong src_offset, jlong bytes) {
    void* host = direct_range(env, src, src_offset, bytes, "source");
    if (host == nullptr) return;
    failed(env, tw_cuda_copy_to_device(as_ptr(dst), host, static_cast<size_t>(bytes)));
}

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_CudaNative_copyToHost(
    JNIEnv* env, jobject, jobject dst, jlong dst_offset, jlong src, jlong bytes) {
    if (dst != nullptr && !twjni::writable(env, dst, "destination")) return;
    void* host = direct_range(env, dst, dst_offset, bytes, "destination");
    if (host == nullptr) return;
    failed(env, tw_cuda_copy_to_host(host, as_ptr(src), static_cast<size_t>(bytes)));
}

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_CudaNative_synchronize(JNIEnv* env,
                                                                              jobject) {
    failed(env, tw_cuda_synchronize());
}

/// shape = {batch, q_heads, kv_heads, q_len, kv_len, head_dim};
/// strides = {q[3], k[3], v[3], o[3]} in elements; pointers are device addresses (0 = none for
/// kv_valid_lengths and lse). The C ABI validates shapes, strides, alignment and the scale.
JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_CudaNative_attentionForward(
    JNIEnv* env, jobject, jint dtype, jlongArray shape, jlong q, jlong k, jlong v, jlong o,
    jlongArray strides, jfloat scale, jboolean causal, jlong kv_valid_lengths, jlong lse) {
    if (shape == nullptr || env->GetArrayLength(shape) != 6) {
        throw_status(env, TW_ERR_INVALID_ARGUMENT, "shape must hold 6 values");
        return;
    }
    if (strides == nullptr || env->GetArrayLength(strides) != 12) {
        throw_status(env, TW_ERR_INVALID_ARGUMENT, "strides must hold 12 values");
        return;
    }
    jlong s[6], st[12];
    env->GetLongArrayRegion(shape, 0, 6, s);
    env->GetLongArrayRegion(strides, 0, 12, st);
    tw_cuda_attention_params p{};
    p.dtype = static_cast<tw_dtype>(dtype);
    p.batch = s[0], p.q_heads = s[1], p.kv_heads = s[2], p.q_len = s[3], p.kv_len = s[4];
    p.head_dim = s[5];
    p.q = as_ptr(q), p.k = as_ptr(k), p.v = as_ptr(v), p.o = as_ptr(o);
    for (int i = 0; i < 3; ++i) {
        p.q_strides[i] = st[i];
        p.k_strides[i] = st[3 + i];
        p.v_strides[i] = st[6 + i];
        p.o_strides[i] = st[9 + i];
    }
    p.scale = scale;
    p.causal = causal ? 1 : 0;
    p.kv_valid_lengths = static_cast<const int32_t*>(as_ptr(kv_valid_lengths));
    p.lse = static_cast<float*>(as_ptr(lse));
    p.stream = nullptr;  // the legacy default stream: ordered with the copies above
    failed(env, tw_cuda_attention_forward(&p));
}

}  // extern "C"
