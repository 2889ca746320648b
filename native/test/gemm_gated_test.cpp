// Gated linear layers (tw_pack_weights_gated + TW_EPILOGUE_GATED_*) against float64, for every
// weight format and ISA variant:
//   y[m, j] = act(x . W[j] + b[j]) * (x . W[ff + j] + b[ff + j]),  j < ff,  W [2 ff, k]
// Two references per case: (1) the same format's plain kernel (tw_pack_weights, no epilogue) with
// the gate applied in float64: the gated path must reproduce it to the activation's rounding (same
// accumulations, activation quantization included); (2) the float64 product of the weights the
// kernel uses (tw_unpack_weights) for formats with fp32 activations, and of the caller's weights
// for fp32. Shapes: ff not a multiple of 16 (a partial last gated panel), ff over one task's 4
// panels, M = 1, M = 37 and M past one block of rows, K not a multiple of the int8 / bf16 groups.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/runtime.h"
#include "test_util.h"
#include "tilewise/tilewise_gemm.h"

namespace {

struct Variant {
    const char* label;
    tw_dtype format;
    tw_activation_quant quant;
    int32_t weight_max;
    bool bf16_dot;  // allow AVX512-BF16 dot products
};

const Variant kVariants[] = {
    {"f32", TW_F32, TW_QUANT_NONE, 127, true},
    {"int8-weight-only", TW_I8, TW_QUANT_NONE, 127, true},
    {"int8-asymmetric", TW_I8, TW_QUANT_ASYMMETRIC, 127, true},
    {"int8-symmetric", TW_I8, TW_QUANT_SYMMETRIC, 127, true},
    {"int8-reduced-range", TW_I8, TW_QUANT_ASYMMETRIC, TW_INT8_REDUCED_WEIGHT_MAX, true},
    {"bf16", TW_BF16, TW_QUANT_NONE, 127, true},
    {"bf16-widen", TW_BF16, TW_QUANT_NONE, 127, false},
    {"f16", TW_F16, TW_QUANT_NONE, 127, true},
};

const int kGates[] = {TW_EPILOGUE_GATED_GELU, TW_EPILOGUE_GATED_GELU_TANH, TW_EPILOGUE_GATED_SILU};

double act64(int gate, double u) {
    switch (gate) {
        case TW_EPILOGUE_GATED_GELU: return 0.5 * u * (1.0 + std::erf(u / std::sqrt(2.0)));
        case TW_EPILOGUE_GATED_GELU_TANH:
            return 0.5 * u * (1.0 + std::tanh(0.79788456080286536 * (u + 0.044715 * u * u * u)));
        default: return u / (1.0 + std::exp(-u));
    }
}

/// Plain (ungated) packing of the same format.
tw_packed_weights* pack_plain(const Variant& v, int64_t n, int64_t k, const float* w) {
    tw_packed_weights* p = nullptr;
    const tw_status s = v.format == TW_I8 && v.weight_max != 127
                            ? tw_pack_weights_int8_range(n, k, w, k, v.weight_max, &p)
                            : tw_pack_weights(v.format, n, k, w, k, &p);
    TW_CHECK(s == TW_OK, "plain pack: %s", tw_last_error());
    return p;
}

void check_case(const Variant& v, int gate, int64_t m, int64_t ff, int64_t k, bool bias,
                bool prequantized) {
    const int64_t n = 2 * ff;
    std::vector<float> w(n * k), x(m * k), b(n);
    for (auto& e : w) e = twtest::uniform(-1.0f, 1.0f) / std::sqrt(static_cast<float>(k));
    for (auto& e : x) e = twtest::uniform(-2.0f, 2.0f);
    for (auto& e : b) e = twtest::uniform(-0.5f, 0.5f);

    tw_packed_weights* gw = nullptr;
    TW_CHECK(tw_pack_weights_gated(v.format, n, k, w.data(), k, v.weight_max, &gw) == TW_OK,
             "gated pack: %s", tw_last_error());
    tw_packed_weights* pw = pack_plain(v, n, k, w.data());
    if (gw == nullptr || pw == nullptr) return;
    TW_CHECK(tw_packed_weights_gated(gw) == 1 && tw_packed_weights_gated(pw) == 0, "gated flag");
    int64_t info_n = 0, info_k = 0;
    tw_packed_weights_info(gw, nullptr, &info_n, &info_k, nullptr);
    TW_CHECK(info_n == n && info_k == k, "info %lld x %lld", (long long)info_n, (long long)info_k);
    // The pairing is internal: both unpack to the same weights, in the caller's row order.
    std::vector<float> wg(n * k), wp(n * k);
    tw_unpack_weights(gw, wg.data(), k);
    tw_unpack_weights(pw, wp.data(), k);
    TW_CHECK(wg == wp, "%s: gated and plain weights unpack differently", v.label);

    twtest::QuantizedRows xq(m, k);
    if (prequantized) {
        TW_CHECK(tw_quantize_rows(x.data(), k, v.quant, &xq.rows) == TW_OK, "quantize: %s",
                 tw_last_error());
    }
    // Reference 1: the plain kernel, no epilogue.
    std::vector<float> z(m * n);
    tw_linear_params pz = twtest::linear_params(m, x.data(), k, pw, z.data(), n);
    pz.act_quant = v.quant;
    if (prequantized) pz.xq = &xq.rows;
    TW_CHECK(tw_linear(&pz) == TW_OK, "plain linear: %s", tw_last_error());

    const int64_t ldy = ff + 3;
    std::vector<float> y(m * ldy, -777.0f);
    tw_linear_params p = twtest::linear_params(m, x.data(), k, gw, y.data(), ldy);
    p.act_quant = v.quant;
    p.bias = bias ? b.data() : nullptr;
    p.epilogue = gate;
    if (prequantized) p.xq = &xq.rows;
    const tw_status s = tw_linear(&p);
    TW_CHECK(s == TW_OK, "%s gated linear: %s", v.label, tw_last_error());
    if (s != TW_OK) {
        tw_packed_weights_free(gw);
        tw_packed_weights_free(pw);
        return;
    }
    const bool fp32_activations =
        v.quant == TW_QUANT_NONE && !(v.format == TW_BF16 && tw::bf16_uses_dot_products());
    const bool f32 = v.format == TW_F32;
    double worst1 = 0, worst2 = 0;
    for (int64_t r = 0; r < m; ++r) {
        for (int64_t j = 0; j < ff; ++j) {
            const double bu = bias ? b[j] : 0.0, bg = bias ? b[ff + j] : 0.0;
            const double got = y[r * ldy + j];
            // (1) same accumulations, gate in float64.
            const double u1 = z[r * n + j] + bu, g1 = z[r * n + ff + j] + bg;
            const double ref1 = act64(gate, u1) * g1;
            const double err1 =
                std::fabs(got - ref1) / ((1.0 + std::fabs(u1)) * (1.0 + std::fabs(g1)));
            worst1 = std::max(worst1, err1);
            TW_CHECK(err1 <= 2e-6, "%s gate %d m=%lld ff=%lld k=%lld [%lld, %lld]: %g vs %g",
                     v.label, gate, (long long)m, (long long)ff, (long long)k, (long long)r,
                     (long long)j, got, ref1);
            // (2) float64 products of the kernel's weights (fp32 activations only).
            if (!fp32_activations || prequantized) continue;
            const std::vector<float>& wt = f32 ? w : wg;
            double u = bu, g = bg, scale_u = 0, scale_g = 0;
            for (int64_t i = 0; i < k; ++i) {
                const double xi = x[r * k + i];
                u += xi * wt[j * k + i];
                g += xi * wt[(ff + j) * k + i];
                scale_u += std::fabs(xi * wt[j * k + i]);
                scale_g += std::fabs(xi * wt[(ff + j) * k + i]);
            }
            const double ref2 = act64(gate, u) * g;
            const double err2 = std::fabs(got - ref2) /
                                ((1.0 + std::fabs(u) + scale_u) * (1.0 + std::fabs(g) + scale_g));
            worst2 = std::max(worst2, err2);
            TW_CHECK(err2 <= 3e-6,
                     "%s gate %d float64 m=%lld ff=%lld k=%lld [%lld, %lld]: %g vs %g", v.label,
                     gate, (long long)m, (long long)ff, (long long)k, (long long)r, (long long)j,
                     got, ref2);
        }
        for (int64_t j = ff; j < ldy; ++j) {
            TW_CHECK(y[r * ldy + j] == -777.0f, "%s wrote past ff at [%lld, %lld]", v.label,
                     (long long)r, (long long)j);
        }
    }
    tw_packed_weights_free(gw);
    tw_packed_weights_free(pw);
}

void check_validation() {
    const int64_t ff = 5, n = 10, k = 3, m = 2;
    std::vector<float> w(n * k, 0.25f), x(m * k, 1.0f), y(m * n), r(m * n);
    tw_packed_weights *gw = nullptr, *pw = nullptr, *bad = nullptr;
    TW_CHECK(tw_pack_weights_gated(TW_F32, 9, k, w.data(), k, 127, &bad) != TW_OK && !bad, "odd n");
    TW_CHECK(tw_pack_weights_gated(TW_I8, n, k, w.data(), k, 0, &bad) != TW_OK && !bad,
             "weight_max 0");
    TW_CHECK(tw_pack_weights_gated(TW_F32, n, k, w.data(), k, 127, &gw) == TW_OK, "pack");
    TW_CHECK(tw_pack_weights(TW_F32, n, k, w.data(), k, &pw) == TW_OK, "pack");
    tw_linear_params p = twtest::linear_params(m, x.data(), k, pw, y.data(), n);
    p.epilogue = TW_EPILOGUE_GATED_GELU;
    TW_CHECK(tw_linear(&p) != TW_OK, "gated epilogue on plain weights");
    p.w = gw;
    p.epilogue = TW_EPILOGUE_NONE;
    TW_CHECK(tw_linear(&p) != TW_OK, "gated weights without a gated epilogue");
    p.epilogue = TW_EPILOGUE_GATED_GELU | TW_EPILOGUE_GATED_SILU;
    TW_CHECK(tw_linear(&p) != TW_OK, "two gated flags");
    p.epilogue = TW_EPILOGUE_GATED_SILU | TW_EPILOGUE_RESIDUAL;
    p.residual = r.data();
    p.ld_residual = n;
    TW_CHECK(tw_linear(&p) != TW_OK, "gated + residual");
    p.epilogue = TW_EPILOGUE_GATED_SILU | TW_EPILOGUE_LAYERNORM;
    TW_CHECK(tw_linear(&p) != TW_OK, "gated + LayerNorm");
    p.epilogue = TW_EPILOGUE_GATED_SILU;
    p.ldy = ff - 1;
    TW_CHECK(tw_linear(&p) != TW_OK, "ldy < ff");
    p.ldy = ff;
    TW_CHECK(tw_linear(&p) == TW_OK, "ldy = ff: %s", tw_last_error());
    // x (0.75 per product) times 0.25 weights: u = g = 0.75, silu(0.75) * 0.75.
    const double want = 0.75 / (1.0 + std::exp(-0.75)) * 0.75;
    TW_CHECK(std::fabs(y[0] - want) < 1e-6 && std::fabs(y[2 * ff - 1] - want) < 1e-6, "values");
    tw_packed_weights_free(gw);
    tw_packed_weights_free(pw);
}

}  // namespace

int main() {
    twtest::rng();
    check_validation();
    // (m, ff, k): ff = 1, 20, 37 and 100 leave a partial last gated panel (16 outputs), ff = 100
    // spans two tasks of 4 panels; 130 rows span two row blocks; k = 37, 130 and 5 are not
    // multiples of the int8 group of 4 (nor k = 37, 5 of bf16's pair).
    const int64_t shapes[][3] = {{1, 1, 1},      {1, 20, 37},   {37, 37, 64},
                                 {37, 100, 130}, {130, 48, 96}, {13, 16, 5}};
    for (tw_isa isa : {TW_ISA_PORTABLE, TW_ISA_AVX2, TW_ISA_AVX512}) {
        if (tw_set_isa(isa) != TW_OK) {
            std::printf("skipping isa %d: %s\n", int(isa), tw_last_error());
            continue;
        }
        int cases = 0;
        for (const Variant& v : kVariants) {
            tw::allow_bf16_dot_products(v.bf16_dot);
            for (const auto& s : shapes) {
                for (int gate : kGates) {
                    check_case(v, gate, s[0], s[1], s[2], true, false);
                    ++cases;
                }
                check_case(v, TW_EPILOGUE_GATED_SILU, s[0], s[1], s[2], false, false);
                if (v.format == TW_I8 && v.quant != TW_QUANT_NONE) {
                    check_case(v, TW_EPILOGUE_GATED_GELU, s[0], s[1], s[2], true, true);
                }
                cases += 2;
            }
            std::printf("isa %d %s: %s, gate %s\n", int(isa), v.label,
                        tw_linear_kernel_name(v.format, v.quant), tw::kernels().gate.name);
        }
        tw::allow_bf16_dot_products(tw::bf16_dot_outruns_fma());
        std::printf("isa %d: %d cases\n", int(isa), cases);
    }
    // The AVX2 int8 kernels this CPU would not pick (maddubs with the sign trick, reduced range).
    if (tw_isa_detected() >= TW_ISA_AVX2 && tw_set_isa(TW_ISA_AVX2) == TW_OK) {
        for (tw::Int8Kernel kernel : {tw::Int8Kernel::kAvx2Maddubs, tw::Int8Kernel::kAvx2Reduced}) {
            if (!tw::force_int8_kernel(kernel)) continue;
            for (const Variant& v : kVariants) {
                const bool reduced = v.weight_max <= TW_INT8_REDUCED_WEIGHT_MAX;
                if (v.format != TW_I8 || v.quant == TW_QUANT_NONE ||
                    (kernel == tw::Int8Kernel::kAvx2Reduced && !reduced)) {
                    continue;
                }
                for (const auto& s : shapes) {
                    for (int gate : kGates) check_case(v, gate, s[0], s[1], s[2], true, false);
                    check_case(v, TW_EPILOGUE_GATED_GELU, s[0], s[1], s[2], true, true);
                }
                std::printf("forced %s: %s\n", v.label, tw_linear_kernel_name(TW_I8, v.quant));
            }
        }
        tw::force_int8_kernel(tw::Int8Kernel::kAuto);
    }
    tw_set_isa(tw_isa_detected());
    return twtest::finish("gemm_gated_test");
}
