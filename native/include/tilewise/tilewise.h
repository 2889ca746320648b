/*
 * Tilewise C ABI.
 *
 * Plain pointers, shapes, element strides and status codes: no C++ types, no JNI. Every entry
 * point validates its arguments and returns a tw_status; on failure tw_last_error() returns a
 * thread-local message that names the problem. Kernels never abort the process.
 */
#ifndef TILEWISE_TILEWISE_H
#define TILEWISE_TILEWISE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define TW_API __declspec(dllexport)
#else
#define TW_API __attribute__((visibility("default")))
#endif

/** Status codes. */
typedef enum tw_status {
    TW_OK = 0,
    TW_ERR_INVALID_ARGUMENT = 1, /* shapes, strides, null pointers, out-of-range values */
    TW_ERR_UNSUPPORTED = 2,      /* a valid request this build or CPU cannot run */
    TW_ERR_OUT_OF_MEMORY = 3,
    TW_ERR_INTERNAL = 4,
    TW_STATUS_MAX_ENUM = 0x7FFFFFFF /* every int is a value of the type: callers may pass any */
} tw_status;

/** Element types of tensors crossing the ABI. */
typedef enum tw_dtype {
    TW_F32 = 0,
    TW_F16 = 1,
    TW_BF16 = 2,
    TW_I8 = 3,
    TW_U8 = 4,
    TW_I32 = 5,
    TW_DTYPE_MAX_ENUM = 0x7FFFFFFF /* a caller's out-of-range code is a checked value, not UB */
} tw_dtype;

/** Instruction-set levels, from the most portable to the widest. */
typedef enum tw_isa {
    TW_ISA_PORTABLE = 0, /* plain C++, any x86-64 or other CPU */
    TW_ISA_AVX2 = 1,     /* AVX2 + FMA + F16C (AVX-VNNI used where present) */
    TW_ISA_AVX512 = 2,   /* AVX-512 F/BW/VL/DQ (VNNI and BF16 used where present) */
    TW_ISA_MAX_ENUM = 0x7FFFFFFF
} tw_isa;

/** CPU feature bits reported by tw_cpu_features(). */
enum {
    TW_CPU_AVX2 = 1 << 0,
    TW_CPU_FMA = 1 << 1,
    TW_CPU_F16C = 1 << 2,
    TW_CPU_AVX_VNNI = 1 << 3,
    TW_CPU_AVX512F = 1 << 4,
    TW_CPU_AVX512BW = 1 << 5,
    TW_CPU_AVX512VL = 1 << 6,
    TW_CPU_AVX512DQ = 1 << 7,
    TW_CPU_AVX512_VNNI = 1 << 8,
    TW_CPU_AVX512_BF16 = 1 << 9,
    TW_CPU_AVX512_FP16 = 1 << 10,
    TW_CPU_AMX = 1 << 11
};

/* ---- library ------------------------------------------------------------------------------ */

/** The message of the last failed call on this thread ("" if none). Valid until the next call. */
TW_API const char* tw_last_error(void);

/** Library version, "major.minor.patch". */
TW_API const char* tw_version(void);

/** Bitmask of TW_CPU_* features of the running CPU (from CPUID, with OS support checked). */
TW_API int tw_cpu_features(void);

/** The widest ISA level this CPU supports. */
TW_API tw_isa tw_isa_detected(void);

/** The ISA level kernels use now (starts as tw_isa_detected(), or TILEWISE_ISA env). */
TW_API tw_isa tw_isa_active(void);

/** Selects the ISA level; TW_ERR_UNSUPPORTED if the CPU lacks it. For tests and benchmarks. */
TW_API tw_status tw_set_isa(tw_isa isa);

/** Worker threads for kernels (including the caller). n <= 0 means all available cores. */
TW_API tw_status tw_set_num_threads(int n);
TW_API int tw_num_threads(void);

/* ---- fused attention ---------------------------------------------------------------------- */

/*
 * O = softmax(scale * Q K^T + mask) V, computed tile by tile with an online softmax; the
 * q_len x kv_len score matrix is never materialised.
 *
 * Tensors are addressed as [batch, head, seq, dim] through element strides (the dim stride is 1),
 * so both [B, H, S, D] and [B, S, H, D] layouts work without copies. kv_heads must divide
 * q_heads (grouped-query / multi-query attention): query head h reads K/V head
 * h / (q_heads / kv_heads).
 *
 * Masking, all optional and combined:
 *  - causal: query i sees key j iff j <= i + (kv_len - q_len) (aligned to the bottom right, so
 *    decoding against a cache works); fully masked key tiles are skipped.
 *  - kv_valid_lengths[b]: keys j >= kv_valid_lengths[b] are masked.
 *  - key_padding_mask[b * kv_len + j]: 0 masks key j of batch b.
 *  - bias: additive fp32 term, element (b, h, i, j) at b*s0 + h*s1 + i*s2 + j*s3; strides may be 0
 *    to broadcast. Use -INFINITY to mask.
 * A query row whose keys are all masked gets zeros (and lse = -INFINITY), never NaN.
 */
typedef struct tw_attention_params {
    tw_dtype dtype;   /* of q, k, v and o: TW_F32, TW_F16 or TW_BF16 */
    tw_dtype compute; /* TW_F32, or TW_BF16 for bf16 dot products on f32/bf16 data */
    int64_t batch, q_heads, kv_heads, q_len, kv_len, head_dim;
    const void* q;
    const void* k;
    const void* v;
    void* o;
    int64_t q_strides[3]; /* batch, head, seq strides in elements */
    int64_t k_strides[3];
    int64_t v_strides[3];
    int64_t o_strides[3];
    float scale; /* usually 1/sqrt(head_dim) */
    int causal;
    const int32_t* kv_valid_lengths; /* [batch] or NULL */
    const uint8_t* key_padding_mask; /* [batch, kv_len] or NULL */
    const float* bias;               /* or NULL */
    int64_t bias_strides[4];
    float* lse; /* [batch, q_heads, q_len] log-sum-exp of the scaled scores, or NULL */
} tw_attention_params;

/** Largest head dimension the CPU attention supports. */
#define TW_ATTENTION_MAX_HEAD_DIM 256

TW_API tw_status tw_attention_forward(const tw_attention_params* p);

/**
 * Variable-length attention over packed sequences (no padding anywhere): `p` describes Q, K, V and
 * O as one batch entry (`batch` = 1) of `q_len` = total query rows and `kv_len` = total key rows,
 * the sequences concatenated; sequence s owns query rows [cu_seqlens_q[s], cu_seqlens_q[s + 1]) and
 * key rows [cu_seqlens_k[s], cu_seqlens_k[s + 1]), and attends only within them (causal:
 * bottom-right aligned per sequence). Offsets are non-decreasing from 0 to q_len (kv_len); a
 * sequence may be empty, and one with queries but no keys gets zero rows. Masks, bias and lse are
 * not taken here (the offsets are the mask). Each sequence runs on the kernel tw_attention_forward
 * picks.
 */
TW_API tw_status tw_attention_varlen_forward(const tw_attention_params* p, int64_t num_seqs,
                                             const int32_t* cu_seqlens_q,
                                             const int32_t* cu_seqlens_k);

#ifdef __cplusplus
}
#endif

#endif /* TILEWISE_TILEWISE_H */
