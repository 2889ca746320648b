/*
 * Tilewise C ABI, part 2: linear layers (fp32 and low-precision weights) and the fused LayerNorm.
 *
 *   Y[m, n] = epilogue( sum_k X[m, k] W[n, k] + bias[n] )          (Y = X W^T + b, W is [N, K])
 *
 * Weights are packed ONCE (tw_pack_weights*) into the layout the micro-kernels read and owned by a
 * tw_packed_weights handle; each call then runs one GEMM with the epilogue fused into the store:
 *  - TW_F32 weights: the values as given, fp32 products and sums (the reference arithmetic).
 *  - TW_I8 weights, symmetric per output channel: W[n, k] = w_scale[n] * Wq[n, k], Wq in [-127,
 * 127]. With act_quant SYMMETRIC or ASYMMETRIC, each row of X is quantized at run time (per token)
 * to u8 with a scale and zero point, X[m, k] ~ x_scale[m] * (Xq[m, k] - x_zero[m]), the dot
 * products run in int32, and Y[m, n] = x_scale[m] * w_scale[n] * (sum_k Xq[m,k] Wq[n,k] - x_zero[m]
 * * sum_k Wq[n,k]) + b[n] (the column sums of Wq are precomputed at packing). With act_quant NONE
 * the same weights are used weight-only: dequantized on the fly, fp32 activations.
 *  - TW_BF16 / TW_F16 weights: stored at 16 bits, fp32 accumulation (AVX512-BF16 dot products on
 *    bf16-rounded activations where the CPU has them, else weights widened to fp32 and FMA).
 * Epilogue flags, applied in this order after the bias: TW_EPILOGUE_GELU (exact, erf form), then
 * TW_EPILOGUE_RESIDUAL (adds residual[m, n]), then TW_EPILOGUE_LAYERNORM (each finished row of Y is
 * layer-normalised in place with ln_gamma, ln_beta, ln_eps, as tw_layernorm does, while it is still
 * in cache: a post-LayerNorm Transformer's "dense + residual + LayerNorm" in one pass).
 *
 * Gated feed-forward (GeGLU, SwiGLU): W [2 ff, k] holds the up rows U = W[0, ff) and the gate rows
 * G = W[ff, 2 ff) (one checkpoint matrix, e.g. ModernBERT's Wi), packed by tw_pack_weights_gated so
 * that each 32-column panel holds U and G rows of the same 16 outputs. A TW_EPILOGUE_GATED_* flag
 * then writes ff outputs, Y[m, j] = act(XU^T[m, j] + b[j]) * (XG^T[m, j] + b[ff + j]), act the
 * flag's function of the first half: exact GELU (GeGLU), tanh GELU, or SiLU x / (1 + e^-x)
 * (SwiGLU). The 2 ff pre-activations of a task never leave its per-thread tile (L1/L2).
 *
 * Matrices are row-major with a row stride in elements (ld >= the row length). Every entry point
 * validates its arguments and returns a tw_status; tw_last_error() names the problem.
 */
#ifndef TILEWISE_TILEWISE_GEMM_H
#define TILEWISE_TILEWISE_GEMM_H

#include <stdint.h>

#include "tilewise/tilewise.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Weights packed for the micro-kernels; opaque. */
typedef struct tw_packed_weights tw_packed_weights;

/** Run-time quantization of activation rows. */
typedef enum tw_activation_quant {
    TW_QUANT_NONE = 0, /* fp32 activations (weight-only int8, or 16-bit weights) */
    TW_QUANT_SYMMETRIC =
        1, /* per row: scale = max|x| / 127, zero point qmax - 127 (128, or 127 when qmax is 254) */
    TW_QUANT_ASYMMETRIC =
        2, /* per row: [min(x, 0), max(x, 0)] mapped onto [0, qmax] with a zero point */
    TW_QUANT_MAX_ENUM = 0x7FFFFFFF /* any int a caller passes is a value (checked), never UB */
} tw_activation_quant;

/** Epilogue flags (combinable). */
enum {
    TW_EPILOGUE_NONE = 0,
    TW_EPILOGUE_GELU = 1,
    TW_EPILOGUE_RESIDUAL = 2,
    TW_EPILOGUE_LAYERNORM = 4,
    /* Gated epilogues (exactly one; gated weights only; not with the flags above or yq): */
    TW_EPILOGUE_GATED_GELU = 8,       /* gelu(u) * g, exact (erf) GELU: GeGLU */
    TW_EPILOGUE_GATED_GELU_TANH = 16, /* gelu_tanh(u) * g */
    TW_EPILOGUE_GATED_SILU = 32       /* silu(u) * g: SwiGLU */
};

/** Every gated epilogue flag. */
#define TW_EPILOGUE_GATED \
    (TW_EPILOGUE_GATED_GELU | TW_EPILOGUE_GATED_GELU_TANH | TW_EPILOGUE_GATED_SILU)

/** Largest K the int8 kernels accept (int32 accumulators cannot overflow below it). */
#define TW_INT8_MAX_K 65536

/**
 * Packs fp32 weights W [n, k] (row stride ldw) as `format`: TW_F32 (the values as they are), TW_I8
 * (quantized symmetric per output channel), TW_BF16 or TW_F16 (rounded to nearest even); every
 * format but TW_F32 needs finite weights. On success *out owns native memory that
 * tw_packed_weights_free releases.
 */
TW_API tw_status tw_pack_weights(tw_dtype format, int64_t n, int64_t k, const float* w, int64_t ldw,
                                 tw_packed_weights** out);

/**
 * The largest |code| of int8 weights that the reduced-range kernel of CPUs without VNNI takes:
 * u8 activations times |w| <= 64 cannot saturate vpmaddubsw's int16 pair sums
 * (2 * 255 * 64 = 32640 <= 32767), so that kernel needs no sign trick and runs ~1.3x faster.
 */
#define TW_INT8_REDUCED_WEIGHT_MAX 64

/**
 * Packs fp32 weights W [n, k] as TW_I8 with codes in [-weight_max, weight_max], weight_max in
 * 1..127 (tw_pack_weights(TW_I8) is weight_max 127, scale max|w| / 127). Below 127 each channel's
 * scale is the clipping of max|w| (ratios 1 down to 0.6) with the least squared rounding error.
 * With weight_max <= TW_INT8_REDUCED_WEIGHT_MAX, CPUs without VNNI run the reduced-range kernel
 * (see tw_linear_kernel_name_for).
 */
TW_API tw_status tw_pack_weights_int8_range(int64_t n, int64_t k, const float* w, int64_t ldw,
                                            int32_t weight_max, tw_packed_weights** out);

/**
 * Packs weights already quantized elsewhere (e.g. an ONNX Runtime export): Wq [n, k] int8 (row
 * stride ldq) with one scale per output channel, W[n, k] = scales[n] * Wq[n, k]. Values of -128 are
 * accepted (the kernels' int32 accumulation is exact for them too).
 */
TW_API tw_status tw_pack_weights_int8(int64_t n, int64_t k, const int8_t* wq, int64_t ldq,
                                      const float* scales, tw_packed_weights** out);

/**
 * Packs fp32 weights W [n, k] of a gated layer as `format` for the TW_EPILOGUE_GATED_* epilogues:
 * n = 2 ff is even, rows [0, ff) are the activated half u, rows [ff, n) the gate g. TW_I8 takes
 * codes within [-weight_max, weight_max] as tw_pack_weights_int8_range (127: as tw_pack_weights);
 * weight_max is ignored for the other formats. The pairing is internal: tw_packed_weights_info and
 * tw_unpack_weights report W [n, k] in the caller's row order.
 */
TW_API tw_status tw_pack_weights_gated(tw_dtype format, int64_t n, int64_t k, const float* w,
                                       int64_t ldw, int32_t weight_max, tw_packed_weights** out);

/** 1 if w was packed by tw_pack_weights_gated (tw_linear then writes n / 2 outputs), else 0. */
TW_API int tw_packed_weights_gated(const tw_packed_weights* w);

/** Releases packed weights (NULL is ignored). */
TW_API void tw_packed_weights_free(tw_packed_weights* w);

/** Describes packed weights: format (TW_F32, TW_I8, TW_BF16, TW_F16), n, k and resident bytes. */
TW_API tw_status tw_packed_weights_info(const tw_packed_weights* w, tw_dtype* format, int64_t* n,
                                        int64_t* k, int64_t* bytes);

/** Writes the weights the kernels actually use, dequantized/widened to fp32, as W [n, k] (row
 * stride ld). */
TW_API tw_status tw_unpack_weights(const tw_packed_weights* w, float* out, int64_t ld);

/** Rows of activations quantized to u8: X[m, k] ~ scales[m] * (q[m * ldq + k] - zero_points[m]). */
typedef struct tw_quantized_rows {
    int64_t m, k;
    uint8_t* q; /* [m, ldq]; ldq >= tw_quantized_row_stride(k); bytes past k are padding */
    int64_t ldq;
    float* scales;        /* [m] */
    int32_t* zero_points; /* [m] */
    int32_t qmax;         /* largest code used: 255, or 254 for the plain-AVX2 kernel */
} tw_quantized_rows;

/** The smallest row stride of quantized activations for K (K rounded up to the kernels' group of
 * 4). */
TW_API int64_t tw_quantized_row_stride(int64_t k);

/** The largest activation code (255, or 254 on plain AVX2) the int8 kernels of the active ISA
 * accept. */
TW_API int32_t tw_int8_activation_qmax(void);

/** Quantizes X [out->m, out->k] (row stride ldx) row by row with `mode` to
 * tw_int8_activation_qmax(). */
TW_API tw_status tw_quantize_rows(const float* x, int64_t ldx, tw_activation_quant mode,
                                  tw_quantized_rows* out);

/** One linear layer call. */
typedef struct tw_linear_params {
    int64_t m;      /* rows of X and Y */
    const float* x; /* [m, k] fp32, row stride ldx (ignored when xq is set) */
    int64_t ldx;
    const tw_quantized_rows* xq;   /* pre-quantized X for TW_I8 weights, or NULL */
    tw_activation_quant act_quant; /* TW_I8 weights with fp32 x: NONE = weight-only, else dynamic;
                                      NONE for the other formats */
    const float*
        x_channel_scale;        /* [k] or NULL: dynamic int8 quantizes x[m, k] * x_channel_scale[k]
                                   (SmoothQuant's 1/s, with W packed as W diag(s)) */
    const tw_packed_weights* w; /* [n, k] */
    const float* bias;          /* [n] or NULL (gated: [2 ff], u's then g's) */
    int epilogue;               /* TW_EPILOGUE_* flags */
    const float* residual;      /* [m, n], row stride ld_residual, with TW_EPILOGUE_RESIDUAL */
    int64_t ld_residual;
    float* y; /* [m, n] ([m, n / 2] gated), row stride ldy; must not overlap x (it may be the
                 residual) */
    int64_t ldy;
    const float* ln_gamma; /* [n] or NULL (ones), with TW_EPILOGUE_LAYERNORM */
    const float* ln_beta;  /* [n] or NULL (zeros), with TW_EPILOGUE_LAYERNORM */
    float ln_eps;          /* >= 0, with TW_EPILOGUE_LAYERNORM */
    /* Optional quantized copy of Y for a following int8 layer: each finished row (after the whole
       epilogue) is multiplied by yq_channel_scale (if set; the next layer's SmoothQuant 1/s) and
       quantized with yq_mode (SYMMETRIC or ASYMMETRIC) into *yq (m rows of n values; its qmax is
       set to tw_int8_activation_qmax()). With yq set, y may be NULL: the fp32 rows then only pass
       through per-thread scratch and are never written to memory. */
    tw_quantized_rows* yq;
    tw_activation_quant yq_mode;
    const float* yq_channel_scale;
} tw_linear_params;

TW_API tw_status tw_linear(const tw_linear_params* p);

/**
 * Names the kernel tw_linear runs for `format` (TW_F32, TW_I8, TW_BF16, TW_F16) and `quant` at the
 * active ISA on this CPU, for logs and fallback messages: "avx512-f32-12x32", "avx2-f32-6x16",
 * "avx512-vnni", "avx-vnni", "avx2-maddubs-sign", "avx512-int8-weight-only", "avx512-bf16-dot",
 * "avx512-bf16-widen", "avx2-fp16-f16c", "portable-...". A static string; "unsupported" for other
 * formats.
 */
TW_API const char* tw_linear_kernel_name(tw_dtype format, tw_activation_quant quant);

/**
 * Names the kernel tw_linear runs for these weights with `quant` on this CPU: as
 * tw_linear_kernel_name, except that int8 weights packed within TW_INT8_REDUCED_WEIGHT_MAX take the
 * reduced-range kernel where the CPU has no VNNI. "unsupported" for NULL weights.
 */
TW_API const char* tw_linear_kernel_name_for(const tw_packed_weights* w, tw_activation_quant quant);

/**
 * Fused LayerNorm over rows of length k:  h = x + residual (if given);
 *   y = (h - mean(h)) / sqrt(var(h) + eps) * gamma + beta      (biased variance, fp32)
 * y may alias x or residual. If yq is set, y is also quantized row by row into *yq with `quant`
 * (for the next int8 linear) in the same pass over the row.
 */
typedef struct tw_layernorm_params {
    int64_t m, k;
    const float* x;
    int64_t ldx;
    const float* residual; /* or NULL */
    int64_t ld_residual;
    const float* gamma; /* [k] or NULL (ones) */
    const float* beta;  /* [k] or NULL (zeros) */
    float eps;
    float* y;
    int64_t ldy;
    tw_quantized_rows* yq; /* or NULL */
    tw_activation_quant quant;
} tw_layernorm_params;

TW_API tw_status tw_layernorm(const tw_layernorm_params* p);

#ifdef __cplusplus
}
#endif

#endif /* TILEWISE_TILEWISE_GEMM_H */
