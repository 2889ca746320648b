// Linear layers with fp32 weights (TW_F32): the portable kernel (kernels.cpp picks the variant).
//
//   Y[m, n] = epilogue(sum_k X[m, k] W[n, k] + b[n])      (fp32 products, fp32 sums in k order)
//
// The weights are the caller's values, only rearranged into the 32-column panels every format
// shares ([panel][k][32 columns], see gemm_kernels.h), so a kernel streams a panel linearly. The
// AVX-512 kernel (gemm_f32_avx512.cpp) is a 12 x 32 register tile, the AVX2 one
// (gemm_f32_avx2.cpp) 6 x 16 micro-tiles swept over the block per 16-column half panel.
#include <algorithm>

#include "gemm_kernels.h"

namespace tw {

void f32_block_portable(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    const tw_packed_weights& w = *a.w;
    for (int64_t p = p0; p < p1; ++p) {
        const float* panel =
            reinterpret_cast<const float*>(static_cast<const uint8_t*>(w.data) + p * w.panel_bytes);
        const int64_t n0 = p * kPanel;
        const int64_t cols = std::min<int64_t>(kPanel, w.n - n0);
        for (int64_t m = m0; m < m1; ++m) {
            const float* x = a.x + m * a.ldx;
            float acc[kPanel] = {};
            for (int64_t i = 0; i < w.k; ++i) {
                const float v = x[i];
                const float* wi = panel + i * kPanel;
                for (int64_t c = 0; c < kPanel; ++c) acc[c] += v * wi[c];
            }
            for (int64_t c = 0; c < cols; ++c) {
                const int64_t n = n0 + c;
                float v = acc[c];
                if (a.bias) v += a.bias[n];
                if (a.epilogue & TW_EPILOGUE_GELU) v = gelu_scalar(v);
                if (a.epilogue & TW_EPILOGUE_RESIDUAL) v += a.residual[m * a.ld_residual + n];
                a.y[m * a.ldy + n] = v;
            }
        }
    }
}

}  // namespace tw
