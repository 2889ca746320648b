// tw_f32_pack / tw_f32_linear (tilewise_linear_f32.h): the former fp32 entry points, kept until the
// JNI layer moves to tw_pack_weights(TW_F32) / tw_linear. Their packed layout is exactly TW_F32's
// panels, so tw_f32_linear runs tw_linear on a handle that borrows the caller's panels.
#include <cstdint>

#include "gemm_kernels.h"
#include "runtime.h"
#include "tilewise/tilewise_linear_f32.h"

extern "C" {

TW_API int64_t tw_f32_packed_bytes(int64_t n, int64_t k) {
    if (n <= 0 || k <= 0 || k > (int64_t(1) << 40) || n > (int64_t(1) << 40)) return -1;
    const int64_t panels = (n + TW_F32_PANEL - 1) / TW_F32_PANEL;
    const __int128 bytes = static_cast<__int128>(panels) * k * TW_F32_PANEL * sizeof(float);
    if (bytes > INT64_MAX) return -1;
    return static_cast<int64_t>(bytes);
}

TW_API tw_status tw_f32_pack(int64_t n, int64_t k, const float* w, int64_t ldw, float* packed) {
    if (tw_f32_packed_bytes(n, k) < 0) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "f32 pack: bad shape n=%lld k=%lld",
                        static_cast<long long>(n), static_cast<long long>(k));
    }
    if (w == nullptr || packed == nullptr) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "f32 pack: null pointer");
    }
    if (ldw < k) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "f32 pack: ldw %lld < k %lld",
                        static_cast<long long>(ldw), static_cast<long long>(k));
    }
    const int64_t panels = (n + TW_F32_PANEL - 1) / TW_F32_PANEL;
    for (int64_t panel = 0; panel < panels; ++panel) {
        float* out = packed + panel * k * TW_F32_PANEL;
        for (int64_t kk = 0; kk < k; ++kk) {
            for (int j = 0; j < TW_F32_PANEL; ++j) {
                const int64_t row = panel * TW_F32_PANEL + j;
                out[kk * TW_F32_PANEL + j] = row < n ? w[row * ldw + kk] : 0.0f;
            }
        }
    }
    return tw::ok();
}

TW_API tw_status tw_f32_linear(const tw_f32_linear_params* p) {
    if (p == nullptr) return tw::fail(TW_ERR_INVALID_ARGUMENT, "f32 linear: params is null");
    if (p->m <= 0 || tw_f32_packed_bytes(p->n, p->k) < 0) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "f32 linear: bad shape m=%lld n=%lld k=%lld",
                        static_cast<long long>(p->m), static_cast<long long>(p->n),
                        static_cast<long long>(p->k));
    }
    if (p->x == nullptr || p->packed == nullptr || p->y == nullptr) {
        return tw::fail(TW_ERR_INVALID_ARGUMENT, "f32 linear: x, packed weights and y are required");
    }
    tw_packed_weights w{};
    w.format = TW_F32;
    w.n = p->n;
    w.k = p->k;
    w.panels = (p->n + TW_F32_PANEL - 1) / TW_F32_PANEL;
    w.k_groups = p->k;
    w.panel_bytes = p->k * TW_F32_PANEL * 4;
    w.data = const_cast<float*>(p->packed);
    tw_linear_params lp{};
    lp.m = p->m;
    lp.x = p->x;
    lp.ldx = p->ldx;
    lp.w = &w;
    lp.bias = p->bias;
    lp.epilogue = (p->gelu ? TW_EPILOGUE_GELU : 0) | (p->residual ? TW_EPILOGUE_RESIDUAL : 0);
    lp.residual = p->residual;
    lp.ld_residual = p->ld_residual;
    lp.y = p->y;
    lp.ldy = p->ldy;
    return tw_linear(&lp);
}

}  // extern "C"
