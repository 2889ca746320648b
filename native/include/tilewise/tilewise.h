/*
 * Tilewise C ABI.
 *
 * Plain pointers, shapes, element strides and status codes: no C++ types, no JNI. Every entry
 * point validates its arguments and returns a tw_status; on failure tw_last_error() returns a
 * thread-local message that names the problem. Kernels never abort the process.
 *
 * Here: library state (version, CPU features, ISA level, threads), the fused attention
 * (tw_attention_forward, tw_attention_varlen_forward: causal, valid lengths, key padding, dense
 * bias, sliding windows, per-head relative-position bias tables, GQA) and rotary embeddings
 * (tw_rope_apply). Linear layers and LayerNorm are in tilewise_gemm.h, CUDA in tilewise_cuda.h.
 *
 * Compatibility: tw_attention_params grows only at its end, and its zero-initialised fields
 * (`= {0}`, `{}`) always mean "no such option", so callers written against an older header keep
 * their behaviour by zero-initialising the struct.
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
 *  - sliding window (has_window != 0): with i' = i + (kv_len - q_len) (the causal alignment),
 *    query i sees key j iff i' - window_left <= j <= i' + window_right; a negative limit means
 *    unlimited on that side, 0 means none on that side (window_left = 0, window_right = 0: each
 *    query sees only its own position). has_window = 0 (a zero-initialised struct) ignores both
 *    limits. Only key tiles that intersect a query tile's window are visited, so the work is
 *    O(q_len * (window_left + window_right + tile)) rather than O(q_len * kv_len).
 *  - rel_bias (relative-position bias from a per-head table, MPNet/T5 style, no N x N tensor):
 *    with R = rel_bias_radius >= 0 and i' as above, score(h, i, j) +=
 *    rel_bias[h * rel_bias_head_stride + clamp(j - i', -R, R) + R]; each head's table has 2R + 1
 *    entries (rel_bias_head_stride 0 shares one table between heads). Like bias it is added AFTER
 *    scaling: scale * q.k + rel_bias[...] (Hugging Face MPNet's convention); -INFINITY masks.
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
    /* Fields added after the first release: zero keeps the earlier behaviour. */
    int has_window;               /* 0: no sliding window (window_left/right ignored) */
    int64_t window_left;          /* keys before the (aligned) query position; < 0: unlimited */
    int64_t window_right;         /* keys after it; < 0: unlimited */
    const float* rel_bias;        /* [q_heads or 1][2R + 1] relative-position bias, or NULL */
    int64_t rel_bias_radius;      /* R >= 0: distances beyond +-R use the end entries */
    int64_t rel_bias_head_stride; /* elements between heads' tables (0: one shared table) */
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
 * sequence may be empty, and one with queries but no keys gets zero rows. Valid lengths, masks,
 * dense bias and lse are not taken here (the offsets are the mask); a sliding window and a
 * relative-position bias table are, with i and j the positions within each sequence. Each
 * sequence runs on the kernel tw_attention_forward picks.
 */
TW_API tw_status tw_attention_varlen_forward(const tw_attention_params* p, int64_t num_seqs,
                                             const int32_t* cu_seqlens_q,
                                             const int32_t* cu_seqlens_k);

/* ---- rotary position embeddings ------------------------------------------------------------ */

/**
 * Rotates fp32 rows in place with rotary position embeddings, Hugging Face's "rotate_half" form
 * (Llama, ModernBERT, GPT-NeoX) over the whole head: for each token t, head h and i < d/2 (d =
 * head_dim, even), with x = row t's head h at x + t * token_stride + h * head_dim,
 *
 *   inv_freq[i] = 1 / theta^(float(2i) / d)       (fp32, as torch's default RoPE init)
 *   f = float(positions[t]) * inv_freq[i];  c = cos(f), s = sin(f)  (rounded to fp32)
 *   x'[i]       = x[i] * c - x[i + d/2] * s
 *   x'[i + d/2] = x[i + d/2] * c + x[i] * s
 *
 * in fp32 arithmetic with each product rounded (no fused multiply-add), as torch's eager
 * q * cos + rotate_half(q) * sin computes it; pow, cos and sin are evaluated in double and
 * rounded once (torch's fp32 versions are within about 1 ulp of that). The `heads` heads of a
 * token are contiguous, so one call rotates the Q and K parts of a fused [tokens, 3 * H * d]
 * projection together (x = its first element, heads = 2H, token_stride = 3 * H * d). positions
 * holds each token's position (within its own sequence for packed batches). Parallel over tokens.
 */
TW_API tw_status tw_rope_apply(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                               int64_t token_stride, const int32_t* positions, float theta);

#ifdef __cplusplus
}
#endif

#endif /* TILEWISE_TILEWISE_H */
