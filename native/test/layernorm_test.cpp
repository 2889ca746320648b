// Fused LayerNorm against a float64 reference on every ISA: with and without residual, gamma and
// beta, rows of any length (tails of the 16/8-lane vectors), y aliasing x, and the fused
// quantization, whose codes must be exactly the documented per-row quantization of y.
#include <algorithm>
#include <cmath>
#include <vector>

#include "test_util.h"
#include "tilewise/tilewise_gemm.h"

using twtest::Random;

namespace {

const char* isa_name(tw_isa isa) {
    return isa == TW_ISA_AVX512 ? "avx512" : isa == TW_ISA_AVX2 ? "avx2" : "portable";
}

void run_case(int64_t m, int64_t k, bool residual, bool affine, bool alias,
              tw_activation_quant quant, uint64_t seed, const char* isa) {
    Random rng(seed);
    const int64_t ld = k + 3;
    std::vector<float> x(m * ld), r(m * ld), g(k), b(k), y(m * ld);
    for (auto& v : x) v = rng.normal(2.0f) + 0.5f;
    for (auto& v : r) v = rng.normal(1.0f);
    for (auto& v : g) v = rng.uniform(0.5f, 1.5f);
    for (auto& v : b) v = rng.uniform(-0.2f, 0.2f);
    const std::vector<float> x0 = x;
    twtest::QuantizedRows quantized(m, k);
    tw_quantized_rows& rows = quantized.rows;
    tw_layernorm_params p{};
    p.m = m;
    p.k = k;
    p.x = x.data();
    p.ldx = ld;
    p.residual = residual ? r.data() : nullptr;
    p.ld_residual = ld;
    p.gamma = affine ? g.data() : nullptr;
    p.beta = affine ? b.data() : nullptr;
    p.eps = 1e-12f;
    p.y = alias ? x.data() : y.data();
    p.ldy = ld;
    p.yq = quant != TW_QUANT_NONE ? &rows : nullptr;
    p.quant = quant;
    TW_CHECK(tw_layernorm(&p) == TW_OK, "%s", tw_last_error());
    const float* out = alias ? x.data() : y.data();
    double worst = 0;
    for (int64_t i = 0; i < m; ++i) {
        double mean = 0, var = 0;
        for (int64_t j = 0; j < k; ++j) mean += x0[i * ld + j] + (residual ? r[i * ld + j] : 0.0);
        mean /= k;
        for (int64_t j = 0; j < k; ++j) {
            const double d = x0[i * ld + j] + (residual ? r[i * ld + j] : 0.0) - mean;
            var += d * d;
        }
        var /= k;
        for (int64_t j = 0; j < k; ++j) {
            double ref =
                (x0[i * ld + j] + (residual ? r[i * ld + j] : 0.0) - mean) / std::sqrt(var + 1e-12);
            if (affine) ref = ref * g[j] + b[j];
            worst = std::max(worst, std::fabs(out[i * ld + j] - ref));
        }
        if (quant != TW_QUANT_NONE) {
            // Codes: the documented rule applied to the fp32 output row.
            float lo = 0, hi = 0;
            for (int64_t j = 0; j < k; ++j)
                lo = std::min(lo, out[i * ld + j]), hi = std::max(hi, out[i * ld + j]);
            const int32_t qmax = rows.qmax;
            float scale;
            int32_t zero;
            if (quant == TW_QUANT_SYMMETRIC) {
                zero = qmax - qmax / 2;  // 128, or 127 when qmax is 254
                scale = hi > lo ? std::max(-lo, hi) / static_cast<float>(qmax / 2)
                                : 1.0f;  // all-zero row: 1
            } else {
                scale = hi > lo ? (hi - lo) / static_cast<float>(qmax) : 1.0f;
                zero = static_cast<int32_t>(
                    std::min(std::max(std::nearbyint(-lo / scale), 0.0f), (float)qmax));
            }
            bool same = scale == rows.scales[i] && zero == rows.zero_points[i];
            const float inv = 1.0f / scale;
            for (int64_t j = 0; j < k; ++j) {
                const float c = std::min(
                    std::max(std::nearbyint(out[i * ld + j] * inv) + zero, 0.0f), (float)qmax);
                same = same && static_cast<uint8_t>(c) == rows.q[i * rows.ldq + j];
            }
            TW_CHECK(same,
                     "%s: fused quantization of row %lld (k=%lld mode %d) differs from the rule: "
                     "scale %g vs %g zero %d vs %d",
                     isa, (long long)i, (long long)k, (int)quant, scale, rows.scales[i], zero,
                     rows.zero_points[i]);
        }
    }
    TW_CHECK(worst < 2e-5, "%s: m=%lld k=%lld residual=%d affine=%d alias=%d error %g", isa,
             (long long)m, (long long)k, residual, affine, alias, worst);
}

}  // namespace

int main() {
    {
        tw_layernorm_params p{};
        TW_CHECK(tw_layernorm(&p) == TW_ERR_INVALID_ARGUMENT, "empty params");
        TW_CHECK(tw_layernorm(nullptr) == TW_ERR_INVALID_ARGUMENT, "null params");
        float x[4] = {1, 2, 3, 4};
        p.m = 1;
        p.k = 4;
        p.x = x;
        p.ldx = 4;
        p.y = x;
        p.ldy = 4;
        p.eps = -1;
        TW_CHECK(tw_layernorm(&p) == TW_ERR_INVALID_ARGUMENT, "negative eps");
        p.eps = 1e-5f;
        uint8_t q[4];
        float s;
        int32_t z;
        tw_quantized_rows rows{1, 3, q, 4, &s, &z, 0};
        p.yq = &rows;
        p.quant = TW_QUANT_SYMMETRIC;
        TW_CHECK(tw_layernorm(&p) == TW_ERR_INVALID_ARGUMENT, "quantized k mismatch");
    }
    uint64_t seed = 5;
    for (int level = TW_ISA_PORTABLE; level <= TW_ISA_AVX512; ++level) {
        const tw_isa isa = static_cast<tw_isa>(level);
        if (tw_set_isa(isa) != TW_OK) {
            std::printf("skipping %s: not supported by this CPU\n", isa_name(isa));
            continue;
        }
        int cases = 0;
        for (int64_t k : {1, 7, 16, 33, 384, 1000}) {
            for (int64_t m : {1, 5, 70}) {
                for (int variant = 0; variant < 8; ++variant) {
                    const tw_activation_quant quant = static_cast<tw_activation_quant>(variant % 3);
                    run_case(m, k, variant & 1, variant & 2, variant & 4, quant, seed++,
                             isa_name(isa));
                    ++cases;
                }
            }
        }
        std::printf("%s: %d LayerNorm cases\n", isa_name(isa), cases);
    }
    return twtest::finish("layernorm_test");
}
