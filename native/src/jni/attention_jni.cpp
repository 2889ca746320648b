// JNI for io.github.tilewise.djl.jni.AttentionNative: checks every argument again (the Java side
// already did), unwraps the direct buffers, fills tw_attention_params and calls
// tw_attention_forward. No math here.
//
// A tensor reaches native code as a direct buffer plus element strides for (batch, head, seq); the
// dim stride is 1. Its highest element index is
//     (batch-1)*s0 + (heads-1)*s1 + (seq-1)*s2 + (dim-1),
// so the buffer must hold that many elements plus one: that is the capacity check below, done in
// 128-bit arithmetic so that absurd shapes cannot overflow into a small, passing number.
#include <jni.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "jni_util.h"
#include "tilewise/tilewise.h"

namespace {

using twjni::throw_illegal_argument;

// Index layout of the `dims` array passed from Java.
enum Dim { kBatch = 0, kQHeads, kKvHeads, kQLen, kKvLen, kHeadDim, kDimCount };

int64_t element_bytes(tw_dtype dtype) {
    switch (dtype) {
        case TW_F32: return 4;
        case TW_F16:
        case TW_BF16: return 2;
        default: return -1;
    }
}

/// Copies a Java long[] of exactly `count` entries; false after throwing.
bool read_longs(JNIEnv* env, jlongArray array, int count, const char* what, int64_t* out) {
    if (array == nullptr) {
        throw_illegal_argument(env, std::string(what) + " is null");
        return false;
    }
    if (env->GetArrayLength(array) != count) {
        throw_illegal_argument(env, std::string(what) + " must have " + std::to_string(count) +
                                        " entries, got " +
                                        std::to_string(env->GetArrayLength(array)));
        return false;
    }
    jlong values[8];
    env->GetLongArrayRegion(array, 0, count, values);
    for (int i = 0; i < count; ++i) out[i] = values[i];
    return !env->ExceptionCheck();
}

/// Bytes a strided tensor spans, or -1 (after throwing) when a stride is negative or the span
/// does not fit in 63 bits. `extents` and `strides` have `rank` entries.
int64_t span_bytes(JNIEnv* env, const char* what, int rank, const int64_t* extents,
                   const int64_t* strides, int64_t elem_bytes) {
    __int128 last = 0;
    for (int i = 0; i < rank; ++i) {
        if (strides[i] < 0) {
            throw_illegal_argument(env, std::string(what) + " stride " + std::to_string(i) +
                                            " is negative (" + std::to_string(strides[i]) + ")");
            return -1;
        }
        last += static_cast<__int128>(extents[i] - 1) * strides[i];
    }
    const __int128 bytes = (last + 1) * elem_bytes;
    if (bytes > INT64_MAX) {
        throw_illegal_argument(env, std::string(what) + " spans more than 2^63 bytes");
        return -1;
    }
    return static_cast<int64_t>(bytes);
}

/// a * b * c * d as a byte count, or -1 (after throwing) when it does not fit in 63 bits.
int64_t product_bytes(JNIEnv* env, const char* what, int64_t a, int64_t b, int64_t c, int64_t d) {
    const __int128 ab = static_cast<__int128>(a) * b;
    const __int128 cd = static_cast<__int128>(c) * d;
    if (ab > INT64_MAX || cd > INT64_MAX || ab * cd > INT64_MAX) {
        throw_illegal_argument(env, std::string(what) + " spans more than 2^63 bytes");
        return -1;
    }
    return static_cast<int64_t>(ab * cd);
}

/// The address of `buffer` after checking it is direct, large enough and aligned for
/// `align` bytes; nullptr after throwing (or, with allow_null, for a null buffer).
void* checked_address(JNIEnv* env, jobject buffer, int64_t needed_bytes, int64_t align,
                      const char* what, bool allow_null = false) {
    void* address = align == 1 ? twjni::direct_bytes(env, buffer, needed_bytes, what, allow_null)
                               : twjni::direct_address(env, buffer, needed_bytes, what, allow_null);
    if (address == nullptr) return nullptr;
    if (reinterpret_cast<uintptr_t>(address) % static_cast<uintptr_t>(align) != 0) {
        throw_illegal_argument(env, std::string(what) + " buffer is not aligned to " +
                                        std::to_string(align) + " bytes");
        return nullptr;
    }
    return address;
}

/// A tensor given as [batch, heads, seq, head_dim] with (batch, head, seq) element strides.
bool tensor_address(JNIEnv* env, jobject buffer, jlongArray strides_array, const char* what,
                    int64_t batch, int64_t heads, int64_t seq, int64_t head_dim, int64_t elem_bytes,
                    const void** address, int64_t* strides) {
    if (!read_longs(env, strides_array, 3, (std::string(what) + " strides").c_str(), strides)) {
        return false;
    }
    const int64_t extents[4] = {batch, heads, seq, head_dim};
    const int64_t all_strides[4] = {strides[0], strides[1], strides[2], 1};
    const int64_t bytes = span_bytes(env, what, 4, extents, all_strides, elem_bytes);
    if (bytes < 0) return false;
    // The buffer must also hold as many elements as the tensor has: zero or overlapping strides
    // would let a tiny buffer stand for a huge tensor, and the kernel's work grows with the shape.
    const int64_t elements = product_bytes(env, what, batch, heads, seq, head_dim);
    if (elements < 0) return false;
    if (elements > INT64_MAX / elem_bytes) {
        throw_illegal_argument(env, std::string(what) + " spans more than 2^63 bytes");
        return false;
    }
    const int64_t logical = elements * elem_bytes;
    *address = checked_address(env, buffer, std::max(bytes, logical), elem_bytes, what);
    return *address != nullptr;
}

/// Whether two direct buffers share any byte (null buffers share none).
bool buffers_overlap(JNIEnv* env, jobject a, jobject b) {
    if (a == nullptr || b == nullptr) return false;
    const char* a0 = static_cast<const char*>(env->GetDirectBufferAddress(a));
    const char* b0 = static_cast<const char*>(env->GetDirectBufferAddress(b));
    const jlong a_bytes = env->GetDirectBufferCapacity(a);
    const jlong b_bytes = env->GetDirectBufferCapacity(b);
    if (a0 == nullptr || b0 == nullptr || a_bytes <= 0 || b_bytes <= 0) return false;
    return a0 < b0 + b_bytes && b0 < a0 + a_bytes;
}

}  // namespace

extern "C" {

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_AttentionNative_forward0(
    JNIEnv* env, jobject, jint dtype, jint compute, jlongArray dims_array, jobject q,
    jlongArray q_strides, jobject k, jlongArray k_strides, jobject v, jlongArray v_strides,
    jobject o, jlongArray o_strides, jfloat scale, jboolean causal, jintArray valid_lengths,
    jobject key_padding_mask, jobject bias, jlongArray bias_strides, jobject lse,
    jintArray cu_seqlens_q, jintArray cu_seqlens_k, jlongArray window, jobject rel_bias,
    jlong rel_bias_radius, jlong rel_bias_head_stride) {
    tw_attention_params p{};

    // Data types.
    if (dtype != TW_F32 && dtype != TW_F16 && dtype != TW_BF16) {
        throw_illegal_argument(env, "attention: dtype code " + std::to_string(dtype) +
                                        " is not f32 (0), f16 (1) or bf16 (2)");
        return;
    }
    if (compute != TW_F32 && compute != TW_BF16) {
        throw_illegal_argument(env, "attention: compute precision code " + std::to_string(compute) +
                                        " is not f32 (0) or bf16 (2)");
        return;
    }
    if (compute == TW_BF16 && dtype == TW_F16) {
        throw_illegal_argument(env, "attention: bf16 compute precision needs f32 or bf16 data");
        return;
    }
    p.dtype = static_cast<tw_dtype>(dtype);
    p.compute = static_cast<tw_dtype>(compute);
    const int64_t elem = element_bytes(p.dtype);

    // Dimensions.
    int64_t dims[kDimCount];
    if (!read_longs(env, dims_array, kDimCount, "attention dims", dims)) return;
    const char* names[kDimCount] = {"batch", "q_heads", "kv_heads", "q_len", "kv_len", "head_dim"};
    for (int i = 0; i < kDimCount; ++i) {
        if (dims[i] < 1 || dims[i] > (int64_t{1} << 40)) {
            throw_illegal_argument(env, std::string("attention: ") + names[i] + " = " +
                                            std::to_string(dims[i]) + " is out of range");
            return;
        }
    }
    p.batch = dims[kBatch];
    p.q_heads = dims[kQHeads];
    p.kv_heads = dims[kKvHeads];
    p.q_len = dims[kQLen];
    p.kv_len = dims[kKvLen];
    p.head_dim = dims[kHeadDim];
    if (p.head_dim > TW_ATTENTION_MAX_HEAD_DIM) {
        throw_illegal_argument(env, "attention: head_dim " + std::to_string(p.head_dim) +
                                        " exceeds " + std::to_string(TW_ATTENTION_MAX_HEAD_DIM));
        return;
    }
    if (p.q_heads % p.kv_heads != 0) {
        throw_illegal_argument(env, "attention: kv_heads " + std::to_string(p.kv_heads) +
                                        " does not divide q_heads " + std::to_string(p.q_heads));
        return;
    }
    if (!(scale == scale) || scale > 3.4e38f || scale < -3.4e38f) {
        throw_illegal_argument(env, "attention: scale is not finite");
        return;
    }
    p.scale = scale;
    p.causal = causal ? 1 : 0;

    // Q, K, V, O.
    if (!tensor_address(env, q, q_strides, "q", p.batch, p.q_heads, p.q_len, p.head_dim, elem, &p.q,
                        p.q_strides) ||
        !tensor_address(env, k, k_strides, "k", p.batch, p.kv_heads, p.kv_len, p.head_dim, elem,
                        &p.k, p.k_strides) ||
        !tensor_address(env, v, v_strides, "v", p.batch, p.kv_heads, p.kv_len, p.head_dim, elem,
                        &p.v, p.v_strides)) {
        return;
    }
    const void* out = nullptr;
    if (!tensor_address(env, o, o_strides, "output", p.batch, p.q_heads, p.q_len, p.head_dim, elem,
                        &out, p.o_strides)) {
        return;
    }
    p.o = const_cast<void*>(out);
    // The kernel reads Q, K and V while it writes O: an output in their memory (a caller-owned
    // output that is also an input) would read rows it has already overwritten.
    for (jobject input : {q, k, v}) {
        if (buffers_overlap(env, o, input)) {
            throw_illegal_argument(env, "attention: the output shares memory with q, k or v");
            return;
        }
    }

    // Valid lengths: copied out of the Java array so the kernel never sees a moving heap.
    std::vector<int32_t> lengths;
    if (valid_lengths != nullptr) {
        const jsize count = env->GetArrayLength(valid_lengths);
        if (count != p.batch) {
            throw_illegal_argument(env, "attention: " + std::to_string(count) +
                                            " key valid lengths for a batch of " +
                                            std::to_string(p.batch));
            return;
        }
        lengths.resize(static_cast<size_t>(count));
        env->GetIntArrayRegion(valid_lengths, 0, count, reinterpret_cast<jint*>(lengths.data()));
        if (env->ExceptionCheck()) return;
        for (jsize b = 0; b < count; ++b) {
            if (lengths[b] < 0 || lengths[b] > p.kv_len) {
                throw_illegal_argument(env, "attention: key valid length " +
                                                std::to_string(lengths[b]) + " of batch entry " +
                                                std::to_string(b) + " is outside [0, " +
                                                std::to_string(p.kv_len) + "]");
                return;
            }
        }
        p.kv_valid_lengths = lengths.data();
    }

    // Key-padding mask: [batch, kv_len] bytes, 0 masks.
    if (key_padding_mask != nullptr) {
        const int64_t bytes = product_bytes(env, "key padding mask", p.batch, p.kv_len, 1, 1);
        if (bytes < 0) return;
        p.key_padding_mask = static_cast<const uint8_t*>(
            checked_address(env, key_padding_mask, bytes, 1, "key padding mask"));
        if (p.key_padding_mask == nullptr) return;
    }

    // Bias: fp32, four strides (0 broadcasts).
    if (bias != nullptr) {
        int64_t strides[4];
        if (!read_longs(env, bias_strides, 4, "bias strides", strides)) return;
        const int64_t extents[4] = {p.batch, p.q_heads, p.q_len, p.kv_len};
        const int64_t bytes = span_bytes(env, "bias", 4, extents, strides, 4);
        if (bytes < 0) return;
        p.bias = static_cast<const float*>(checked_address(env, bias, bytes, 4, "bias"));
        if (p.bias == nullptr) return;
        for (int i = 0; i < 4; ++i) p.bias_strides[i] = strides[i];
    }

    // Log-sum-exp output: [batch, q_heads, q_len] fp32.
    if (lse != nullptr) {
        const int64_t bytes = product_bytes(env, "log-sum-exp", p.batch, p.q_heads, p.q_len, 4);
        if (bytes < 0) return;
        p.lse = static_cast<float*>(checked_address(env, lse, bytes, 4, "log-sum-exp"));
        if (p.lse == nullptr) return;
    }

    // Sliding window: null, or {left, right} with negative = unlimited on that side.
    if (window != nullptr) {
        int64_t sides[2];
        if (!read_longs(env, window, 2, "attention window", sides)) return;
        p.has_window = 1;
        p.window_left = sides[0];
        p.window_right = sides[1];
    }

    // Relative-position bias table: fp32, 2R + 1 entries per head, heads rel_bias_head_stride
    // elements apart (0: one table for every head).
    if (rel_bias != nullptr) {
        if (rel_bias_radius < 0 || rel_bias_radius > (int64_t{1} << 30)) {
            throw_illegal_argument(env, "attention: relative bias radius " +
                                            std::to_string(rel_bias_radius) +
                                            " is outside [0, 2^30]");
            return;
        }
        if (rel_bias_head_stride < 0 || rel_bias_head_stride > (int64_t{1} << 40)) {
            throw_illegal_argument(env, "attention: relative bias head stride " +
                                            std::to_string(rel_bias_head_stride) +
                                            " is out of range");
            return;
        }
        const int64_t extents[2] = {p.q_heads, 2 * rel_bias_radius + 1};
        const int64_t strides[2] = {rel_bias_head_stride, 1};
        const int64_t bytes = span_bytes(env, "relative bias", 2, extents, strides, 4);
        if (bytes < 0) return;
        p.rel_bias =
            static_cast<const float*>(checked_address(env, rel_bias, bytes, 4, "relative bias"));
        if (p.rel_bias == nullptr) return;
        p.rel_bias_radius = rel_bias_radius;
        p.rel_bias_head_stride = rel_bias_head_stride;
    }

    if (cu_seqlens_q == nullptr && cu_seqlens_k == nullptr) {
        twjni::check(env, tw_attention_forward(&p));
        return;
    }
    // Packed sequences: the offsets are copied out of the Java arrays; the C ABI checks them
    // against the packed row counts before any row is read.
    if (cu_seqlens_q == nullptr || cu_seqlens_k == nullptr) {
        throw_illegal_argument(
            env, "attention: packed sequences need both cu_seqlens_q and cu_seqlens_k");
        return;
    }
    const jsize count = env->GetArrayLength(cu_seqlens_q);
    if (count < 2 || env->GetArrayLength(cu_seqlens_k) != count) {
        throw_illegal_argument(
            env,
            "attention: cu_seqlens_q and cu_seqlens_k must both hold num_seqs + 1 >= 2 "
            "offsets, got " +
                std::to_string(count) + " and " +
                std::to_string(env->GetArrayLength(cu_seqlens_k)));
        return;
    }
    std::vector<int32_t> cu_q(static_cast<size_t>(count)), cu_k(static_cast<size_t>(count));
    env->GetIntArrayRegion(cu_seqlens_q, 0, count, reinterpret_cast<jint*>(cu_q.data()));
    env->GetIntArrayRegion(cu_seqlens_k, 0, count, reinterpret_cast<jint*>(cu_k.data()));
    if (env->ExceptionCheck()) return;
    twjni::check(env, tw_attention_varlen_forward(&p, count - 1, cu_q.data(), cu_k.data()));
}

}  // extern "C"
