// JNI for io.github.tilewise.djl.jni.CpuAttentionNative: the CPU attention (tw_attention_forward)
// on raw host buffers, used to cross-check the CUDA kernels from Java. Validates buffer kinds and
// capacities against the shapes and strides before the C ABI (which validates the rest) runs.
#include <jni.h>

#include <cstdint>
#include <string>

#include "jni_util.h"
#include "tilewise/tilewise.h"

namespace {

int64_t element_bytes(tw_dtype dtype) { return dtype == TW_F32 ? 4 : 2; }

/// Elements spanned by a [batch, heads, len, dim] view with these strides.
int64_t extent(int64_t batch, int64_t heads, int64_t len, int64_t dim, const int64_t* s) {
    return (batch - 1) * s[0] + (heads - 1) * s[1] + (len - 1) * s[2] + dim;
}

}  // namespace

extern "C" {

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_CpuAttentionNative_forward(
    JNIEnv* env, jclass, jint dtype, jlongArray shape, jobject q, jobject k, jobject v, jobject o,
    jlongArray strides, jfloat scale, jboolean causal, jintArray kv_valid_lengths, jobject lse) {
    if (shape == nullptr || env->GetArrayLength(shape) != 6 || strides == nullptr ||
        env->GetArrayLength(strides) != 12) {
        twjni::throw_illegal_argument(env, "shape must hold 6 values and strides 12");
        return;
    }
    jlong s[6], st[12];
    env->GetLongArrayRegion(shape, 0, 6, s);
    env->GetLongArrayRegion(strides, 0, 12, st);
    for (int i = 0; i < 6; ++i) {
        if (s[i] < 1) {
            twjni::throw_illegal_argument(env, "every shape value must be >= 1");
            return;
        }
    }
    for (int i = 0; i < 12; ++i) {
        if (st[i] < 0) {
            twjni::throw_illegal_argument(env, "strides must be non-negative");
            return;
        }
    }
    tw_attention_params p{};
    p.dtype = static_cast<tw_dtype>(dtype);
    if (p.dtype != TW_F32 && p.dtype != TW_F16 && p.dtype != TW_BF16) {
        twjni::throw_illegal_argument(env, "dtype must be TW_F32, TW_F16 or TW_BF16");
        return;
    }
    p.compute = TW_F32;
    p.batch = s[0], p.q_heads = s[1], p.kv_heads = s[2], p.q_len = s[3], p.kv_len = s[4];
    p.head_dim = s[5];
    for (int i = 0; i < 3; ++i) {
        p.q_strides[i] = st[i];
        p.k_strides[i] = st[3 + i];
        p.v_strides[i] = st[6 + i];
        p.o_strides[i] = st[9 + i];
    }
    const int64_t eb = element_bytes(p.dtype);
    const int64_t q_bytes = extent(p.batch, p.q_heads, p.q_len, p.head_dim, p.q_strides) * eb;
    const int64_t k_bytes = extent(p.batch, p.kv_heads, p.kv_len, p.head_dim, p.k_strides) * eb;
    const int64_t v_bytes = extent(p.batch, p.kv_heads, p.kv_len, p.head_dim, p.v_strides) * eb;
    const int64_t o_bytes = extent(p.batch, p.q_heads, p.q_len, p.head_dim, p.o_strides) * eb;
    p.q = twjni::direct_address(env, q, q_bytes, "q");
    if (p.q == nullptr) return;
    p.k = twjni::direct_address(env, k, k_bytes, "k");
    if (p.k == nullptr) return;
    p.v = twjni::direct_address(env, v, v_bytes, "v");
    if (p.v == nullptr) return;
    p.o = twjni::direct_address(env, o, o_bytes, "o");
    if (p.o == nullptr) return;
    if (lse != nullptr) {
        p.lse = static_cast<float*>(
            twjni::direct_address(env, lse, p.batch * p.q_heads * p.q_len * 4, "lse"));
        if (p.lse == nullptr) return;
    }
    p.scale = scale;
    p.causal = causal ? 1 : 0;
    jint* lengths = nullptr;
    if (kv_valid_lengths != nullptr) {
        if (env->GetArrayLength(kv_valid_lengths) != p.batch) {
            twjni::throw_illegal_argument(env, "kvValidLengths must hold batch values");
            return;
        }
        lengths = env->GetIntArrayElements(kv_valid_lengths, nullptr);
        if (lengths == nullptr) return;  // OutOfMemoryError pending
        p.kv_valid_lengths = reinterpret_cast<const int32_t*>(lengths);
    }
    const tw_status status = tw_attention_forward(&p);
    if (lengths != nullptr) env->ReleaseIntArrayElements(kv_valid_lengths, lengths, JNI_ABORT);
    twjni::check(env, status);
}

}  // extern "C"
