// Linear layers with fp32 weights (tw_pack_weights(TW_F32) + tw_linear) against a float64
// reference: awkward shapes (rows not a multiple of the 12-row AVX-512 tile or of AVX2's 6-row
// micro-tile, columns not a multiple of the 32-column panel or of its 16-column half, k = 1),
// every epilogue (GELU, residual, LayerNorm, and a quantized copy of Y), every ISA level the CPU
// has, strided rows, and the argument checks.
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "test_util.h"
#include "tilewise/tilewise.h"
#include "tilewise/tilewise_gemm.h"

namespace {

double gelu(double v) {
    return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
}

const int kEpilogues[] = {TW_EPILOGUE_NONE,
                          TW_EPILOGUE_GELU,
                          TW_EPILOGUE_RESIDUAL,
                          TW_EPILOGUE_GELU | TW_EPILOGUE_RESIDUAL,
                          TW_EPILOGUE_RESIDUAL | TW_EPILOGUE_LAYERNORM,
                          TW_EPILOGUE_GELU | TW_EPILOGUE_LAYERNORM};

void check_case(std::mt19937& rng, int64_t m, int64_t n, int64_t k, bool bias, int epilogue,
                bool quantized_copy, tw_isa isa) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t ldx = k + 3;
    const int64_t ldy = n + 5;
    const int64_t ldw = k + 1;
    std::vector<float> x(m * ldx), w(n * ldw), b(n), r(m * ldy), y(m * ldy, -7.0f), gamma(n),
        beta(n);
    for (auto& v : x) v = normal(rng);
    for (auto& v : w) v = normal(rng) / std::sqrt(static_cast<float>(k));
    for (auto& v : b) v = normal(rng);
    for (auto& v : r) v = normal(rng);
    for (auto& v : gamma) v = 1.0f + 0.1f * normal(rng);
    for (auto& v : beta) v = 0.1f * normal(rng);
    tw_packed_weights* packed = nullptr;
    TW_CHECK(tw_pack_weights(TW_F32, n, k, w.data(), ldw, &packed) == TW_OK, "pack: %s",
             tw_last_error());
    if (packed == nullptr) return;
    std::vector<float> back(n * k);
    TW_CHECK(tw_unpack_weights(packed, back.data(), k) == TW_OK, "unpack");
    int changed = 0;
    for (int64_t j = 0; j < n; ++j)
        for (int64_t kk = 0; kk < k; ++kk) changed += back[j * k + kk] != w[j * ldw + kk];
    TW_CHECK(changed == 0, "%d fp32 weights changed by packing", changed);
    twtest::QuantizedRows quantized(m, n);
    const tw_quantized_rows& yq = quantized.rows;
    tw_linear_params p = twtest::linear_params(m, x.data(), ldx, packed, y.data(), ldy);
    p.bias = bias ? b.data() : nullptr;
    p.epilogue = epilogue;
    p.residual = r.data();
    p.ld_residual = ldy;
    p.ln_gamma = gamma.data();
    p.ln_beta = beta.data();
    p.ln_eps = 1e-5f;
    if (quantized_copy) {
        p.yq = &quantized.rows;
        p.yq_mode = TW_QUANT_ASYMMETRIC;
    }
    TW_CHECK(tw_linear(&p) == TW_OK, "linear: %s", tw_last_error());
    tw_packed_weights_free(packed);
    double max_err = 0, max_code_err = 0;
    std::vector<double> row(n);
    for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
            double acc = bias ? b[j] : 0.0;
            for (int64_t kk = 0; kk < k; ++kk) acc += double(x[i * ldx + kk]) * w[j * ldw + kk];
            if (epilogue & TW_EPILOGUE_GELU) acc = gelu(acc);
            if (epilogue & TW_EPILOGUE_RESIDUAL) acc += r[i * ldy + j];
            row[j] = acc;
        }
        if (epilogue & TW_EPILOGUE_LAYERNORM) {
            double mean = 0, var = 0;
            for (double v : row) mean += v;
            mean /= n;
            for (double v : row) var += (v - mean) * (v - mean);
            const double rstd = 1.0 / std::sqrt(var / n + 1e-5);
            for (int64_t j = 0; j < n; ++j) row[j] = (row[j] - mean) * rstd * gamma[j] + beta[j];
        }
        for (int64_t j = 0; j < n; ++j) {
            max_err = std::max(max_err, std::fabs(row[j] - y[i * ldy + j]));
            if (quantized_copy) {
                const double scale = yq.scales[i];
                const double dq = scale * (double(yq.q[i * yq.ldq + j]) - yq.zero_points[i]);
                max_code_err = std::max(max_code_err, std::fabs(dq - y[i * ldy + j]) / scale);
            }
        }
        // Padding between rows is untouched.
        for (int64_t j = n; j < ldy; ++j) TW_CHECK(y[i * ldy + j] == -7.0f, "padding written");
    }
    // LayerNorm of a single column is (h - h) * rstd, pure rounding noise scaled by 1/sqrt(eps).
    const double bound = (epilogue & TW_EPILOGUE_LAYERNORM) && n == 1 ? 1e-2 : 3e-5;
    TW_CHECK(max_err < bound, "isa=%d m=%lld n=%lld k=%lld bias=%d epilogue=%d: max err %.3e",
             int(isa), (long long)m, (long long)n, (long long)k, bias, epilogue, max_err);
    TW_CHECK(max_code_err <= 0.5 + 1e-3, "isa=%d quantized copy of y off by %.3f codes", int(isa),
             max_code_err);
}

}  // namespace

int main() {
    std::mt19937 rng(static_cast<uint32_t>(twtest::rng()()));
    for (tw_isa isa : {TW_ISA_PORTABLE, TW_ISA_AVX2, TW_ISA_AVX512}) {
        if (tw_set_isa(isa) != TW_OK) {
            std::printf("skipping isa %d: %s\n", int(isa), tw_last_error());
            continue;
        }
        std::printf("isa %d: %s\n", int(isa), tw_linear_kernel_name(TW_F32, TW_QUANT_NONE));
        // AVX2 splits the panel into 6-row micro-tiles per 16-column half: 11 and 101 rows leave
        // 5-row micro-tiles, n = 57 and 24 a partial second and first half; 130 rows span two
        // 96-row blocks. 352 x 1400 x 392 has activations past kGroupActivationBytes: its 11 panel
        // blocks run in task groups of 10 and 1 (the narrower last group).
        const int64_t shapes[][3] = {{1, 1, 1},      {13, 33, 7},     {12, 32, 384},
                                     {97, 70, 50},   {25, 384, 384},  {130, 1536, 384},
                                     {7, 384, 1536}, {200, 17, 3},    {11, 57, 9},
                                     {101, 24, 65},  {352, 1400, 392}};
        int cases = 0;
        for (const auto& s : shapes) {
            for (int epilogue : kEpilogues) {
                for (bool bias : {false, true}) {
                    if (!bias && epilogue != TW_EPILOGUE_NONE) continue;
                    check_case(rng, s[0], s[1], s[2], bias, epilogue, false, isa);
                    ++cases;
                }
            }
            check_case(rng, s[0], s[1], s[2], true, TW_EPILOGUE_GELU, true, isa);
            ++cases;
        }
        std::printf("isa %d: %d cases\n", int(isa), cases);
    }
    tw_set_isa(tw_isa_detected());

    // fp32 weights are taken as they are: no finiteness check (a NaN weight gives NaN outputs).
    const float nan_w[2] = {std::numeric_limits<float>::quiet_NaN(), 1.0f};
    tw_packed_weights* w = nullptr;
    TW_CHECK(tw_pack_weights(TW_F32, 1, 2, nan_w, 2, &w) == TW_OK, "NaN fp32 weight: %s",
             tw_last_error());
    tw_dtype format = TW_I8;
    int64_t bytes = 0;
    tw_packed_weights_info(w, &format, nullptr, nullptr, &bytes);
    TW_CHECK(format == TW_F32 && bytes >= 32 * 2 * 4, "info: format %d, %lld bytes", int(format),
             (long long)bytes);
    // Argument checks.
    float x[2] = {1, 1}, y[2];
    tw_linear_params p = twtest::linear_params(1, x, 2, w, nullptr, 1);
    TW_CHECK(tw_linear(&p) == TW_ERR_INVALID_ARGUMENT, "null y");
    p.y = x;
    TW_CHECK(tw_linear(&p) == TW_ERR_INVALID_ARGUMENT, "y overlaps x");
    p.y = y;
    p.act_quant = TW_QUANT_ASYMMETRIC;
    TW_CHECK(tw_linear(&p) == TW_ERR_INVALID_ARGUMENT, "activation quantization of fp32 weights");
    p.act_quant = TW_QUANT_NONE;
    TW_CHECK(tw_linear(&p) == TW_OK, "%s", tw_last_error());
    TW_CHECK(std::isnan(y[0]), "NaN weight gives a NaN output");
    tw_packed_weights_free(w);
    TW_CHECK(tw_pack_weights(TW_F32, 3, 4, x, 2, &w) == TW_ERR_INVALID_ARGUMENT, "ldw < k");
    TW_CHECK(tw_pack_weights(TW_F32, 0, 4, x, 4, &w) == TW_ERR_INVALID_ARGUMENT, "n = 0");
    return twtest::finish("gemm_f32_test");
}
