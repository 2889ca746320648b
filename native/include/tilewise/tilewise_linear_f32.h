/*
 * Tilewise C ABI: the fp32 linear layer of encoder blocks,
 *
 *     Y[m, n] = act(X[m, k] · W[n, k]ᵀ + bias[n]) + residual[m, n]
 *
 * with W packed once at load into column panels (tw_f32_pack) so the kernel streams it linearly.
 * Accumulation is fp32 in k order per output; act is the identity or the exact (erf) GELU.
 */
#ifndef TILEWISE_TILEWISE_LINEAR_F32_H
#define TILEWISE_TILEWISE_LINEAR_F32_H

#include <stdint.h>

#include "tilewise/tilewise.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Columns of W per packed panel: two 16-float vectors. */
#define TW_F32_PANEL 32

/**
 * Bytes of the packed form of a W [n, k]: ceil(n / 32) panels of k × 32 floats (the last panel
 * zero-padded), or -1 if n or k is not positive or the size overflows.
 */
TW_API int64_t tw_f32_packed_bytes(int64_t n, int64_t k);

/**
 * Packs W [n, k] (row stride ldw >= k) into `packed`, which holds tw_f32_packed_bytes(n, k) bytes:
 * panel p, row kk, lane j is W[32p + j, kk].
 */
TW_API tw_status tw_f32_pack(int64_t n, int64_t k, const float* w, int64_t ldw, float* packed);

/** Arguments of tw_f32_linear. */
typedef struct tw_f32_linear_params {
    int64_t m, n, k;
    const float* x; /* [m, k], row stride ldx >= k */
    int64_t ldx;
    const float* packed; /* W [n, k] from tw_f32_pack */
    const float* bias;   /* [n] or NULL */
    int gelu;            /* 1: exact GELU after the bias */
    const float* residual; /* [m, n], row stride ld_residual, added last; or NULL */
    int64_t ld_residual;
    float* y; /* [m, n], row stride ldy >= n; must not overlap x; may be the residual */
    int64_t ldy;
} tw_f32_linear_params;

/** Computes the linear layer on the worker pool. */
TW_API tw_status tw_f32_linear(const tw_f32_linear_params* p);

#ifdef __cplusplus
}
#endif

#endif /* TILEWISE_TILEWISE_LINEAR_F32_H */
