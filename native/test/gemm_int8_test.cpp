// INT8 linear layers against independent references, on every ISA and int8 kernel variant:
//  - dynamic int8: the test quantizes W (per channel) and X (per row) itself, computes the int32
//    dot products exactly and the dequantized result in float64; the kernel must agree to fp32
//    rounding, and stay within quantization error of the float64 product of the unquantized data;
//  - weight-only int8 against float64 with the dequantized weights;
//  - pre-quantized rows give the same result as the dynamic path; all ISAs quantize identically;
//  - the reduced-range kernel (|w| <= 64) with the test's own 64-level codes, exact at the int16
//    saturation edge; reduced-range packing (tw_pack_weights_int8_range) by its documented
//    properties;
//  - shapes not divisible by the tiles (rows, 32-column panels) and K not divisible by 4;
//  - bad arguments are errors with messages, never crashes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/kernels.h"
#include "test_util.h"
#include "tilewise/tilewise_gemm.h"

using twtest::Random;

namespace {

struct Shape {
    int64_t m, n, k;
};

const Shape kShapes[] = {{1, 1, 1},       {3, 5, 7},     {8, 32, 4},    {9, 33, 5},
                         {17, 31, 13},    {7, 64, 384},  {65, 130, 66}, {64, 96, 383},
                         {130, 40, 1030}, {33, 257, 129}};

double gelu(double x) {
    return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}

/// The documented activation quantization (tilewise_gemm.h), written out again for the reference.
void quantize_reference(const float* row, int64_t k, tw_activation_quant mode, int32_t qmax,
                        std::vector<int32_t>& q, float& scale, int32_t& zero) {
    float lo = 0, hi = 0;
    for (int64_t i = 0; i < k; ++i) lo = std::min(lo, row[i]), hi = std::max(hi, row[i]);
    if (mode == TW_QUANT_SYMMETRIC) {
        const int32_t half = qmax / 2;
        const float amax = std::max(-lo, hi);
        zero = qmax - half;
        scale = amax > 0 ? amax / static_cast<float>(half) : 1.0f;
    } else {
        scale = hi > lo ? (hi - lo) / static_cast<float>(qmax) : 1.0f;
        zero = static_cast<int32_t>(
            std::min(std::max(std::nearbyint(-lo / scale), 0.0f), static_cast<float>(qmax)));
    }
    const float inv = 1.0f / scale;
    q.resize(k);
    for (int64_t i = 0; i < k; ++i) {
        const float c = std::nearbyint(row[i] * inv) + static_cast<float>(zero);
        q[i] = static_cast<int32_t>(std::min(std::max(c, 0.0f), static_cast<float>(qmax)));
    }
}

struct Problem {
    Shape s;
    std::vector<float> x, w, bias, residual, gamma, beta;
    int64_t ldx, ldw, ldr;
    // Test-side weight quantization, codes in [-weight_max, weight_max].
    int32_t weight_max;
    std::vector<int32_t> wq;
    std::vector<float> wscale;

    Problem(Shape shape, uint64_t seed, int32_t wmax = 127) : s(shape), weight_max(wmax) {
        Random rng(seed);
        ldx = s.k + 3;  // strided rows
        ldw = s.k + 1;
        ldr = s.n + 2;
        x.resize(s.m * ldx);
        for (auto& v : x) v = rng.normal(1.0f);
        // An outlier channel, as real activations have.
        for (int64_t m = 0; m < s.m; ++m) x[m * ldx + (s.k / 2)] *= 8.0f;
        w.resize(s.n * ldw);
        for (auto& v : w) v = rng.normal(0.05f);
        bias.resize(s.n);
        for (auto& v : bias) v = rng.uniform(-0.5f, 0.5f);
        residual.resize(s.m * ldr);
        for (auto& v : residual) v = rng.normal(1.0f);
        gamma.resize(s.n);
        for (auto& v : gamma) v = rng.uniform(0.5f, 1.5f);
        beta.resize(s.n);
        for (auto& v : beta) v = rng.normal(0.1f);
        wq.resize(s.n * s.k);
        wscale.resize(s.n);
        for (int64_t n = 0; n < s.n; ++n) {
            float amax = 0;
            for (int64_t k = 0; k < s.k; ++k) amax = std::max(amax, std::fabs(w[n * ldw + k]));
            wscale[n] = amax > 0 ? amax / static_cast<float>(weight_max) : 1.0f;
            for (int64_t k = 0; k < s.k; ++k) {
                wq[n * s.k + k] = static_cast<int32_t>(std::nearbyint(w[n * ldw + k] / wscale[n]));
            }
        }
    }
};

double apply_epilogue(double v, int epilogue, double residual) {
    if (epilogue & TW_EPILOGUE_GELU) v = gelu(v);
    if (epilogue & TW_EPILOGUE_RESIDUAL) v += residual;
    return v;
}

const char* isa_name(tw_isa isa) {
    return isa == TW_ISA_AVX512 ? "avx512" : isa == TW_ISA_AVX2 ? "avx2" : "portable";
}

const char* kernel_name(tw::Int8Kernel k) {
    switch (k) {
        case tw::Int8Kernel::kAvx512Vnni: return "avx512-vnni";
        case tw::Int8Kernel::kAvxVnni: return "avx-vnni";
        case tw::Int8Kernel::kAvx2Maddubs: return "avx2-maddubs";
        case tw::Int8Kernel::kAvx2Reduced: return "avx2-reduced";
        default: return "portable";
    }
}

void test_packing(const Problem& p, tw_packed_weights* packed) {
    std::vector<float> unpacked(p.s.n * p.s.k);
    TW_CHECK(tw_unpack_weights(packed, unpacked.data(), p.s.k) == TW_OK, "%s", tw_last_error());
    int bad = 0;
    for (int64_t n = 0; n < p.s.n; ++n) {
        for (int64_t k = 0; k < p.s.k; ++k) {
            if (unpacked[n * p.s.k + k] != p.wscale[n] * static_cast<float>(p.wq[n * p.s.k + k]))
                ++bad;
        }
    }
    TW_CHECK(bad == 0, "%d packed weights differ from the reference quantization", bad);
    tw_dtype format;
    int64_t n, k, bytes;
    TW_CHECK(tw_packed_weights_info(packed, &format, &n, &k, &bytes) == TW_OK, "info");
    TW_CHECK(format == TW_I8 && n == p.s.n && k == p.s.k, "info shape");
    // int8 codes padded to panels and groups of 4, plus scales and sums: about a quarter of fp32.
    const int64_t padded = (p.s.n + 31) / 32 * 32 * ((p.s.k + 3) / 4 * 4);
    TW_CHECK(bytes >= padded && bytes <= padded + (p.s.n + 31) / 32 * 32 * 8 + 256, "bytes %lld",
             static_cast<long long>(bytes));
}

void test_dynamic(const Problem& p, tw_packed_weights* packed, tw_activation_quant mode,
                  int epilogue, bool with_bias, bool y_is_residual, const char* label) {
    const Shape s = p.s;
    const int32_t qmax = tw_int8_activation_qmax();
    const int64_t ldy = s.n + 5;
    std::vector<float> y(s.m * ldy, -7.0f);
    std::vector<float> res_copy = p.residual;
    const float* residual = p.residual.data();
    int64_t ld_res = p.ldr;
    if (y_is_residual) {  // the residual is read from, and the result written to, the same buffer
        for (int64_t m = 0; m < s.m; ++m)
            for (int64_t n = 0; n < s.n; ++n) y[m * ldy + n] = p.residual[m * p.ldr + n];
        residual = y.data();
        ld_res = ldy;
    }
    tw_linear_params lp{};
    lp.m = s.m;
    lp.x = p.x.data();
    lp.ldx = p.ldx;
    lp.act_quant = mode;
    lp.w = packed;
    lp.bias = with_bias ? p.bias.data() : nullptr;
    lp.epilogue = epilogue;
    lp.residual = residual;
    lp.ld_residual = ld_res;
    lp.y = y.data();
    lp.ldy = ldy;
    lp.ln_gamma = p.gamma.data();
    lp.ln_beta = p.beta.data();
    lp.ln_eps = 1e-5f;
    tw_status st = tw_linear(&lp);
    TW_CHECK(st == TW_OK, "%s: %s", label, tw_last_error());

    double worst_exact = 0, err2 = 0, ref2 = 0;
    std::vector<int32_t> q;
    std::vector<double> exact_row(s.n), full_row(s.n);
    // Row-wise LayerNorm of a reference row, in float64.
    auto normalize = [&](std::vector<double>& row) {
        double mean = 0, var = 0;
        for (double v : row) mean += v;
        mean /= static_cast<double>(s.n);
        for (double v : row) var += (v - mean) * (v - mean);
        var /= static_cast<double>(s.n);
        for (int64_t n = 0; n < s.n; ++n)
            row[n] = (row[n] - mean) / std::sqrt(var + 1e-5) * p.gamma[n] + p.beta[n];
    };
    for (int64_t m = 0; m < s.m; ++m) {
        float sx;
        int32_t zx;
        quantize_reference(&p.x[m * p.ldx], s.k, mode, qmax, q, sx, zx);
        for (int64_t n = 0; n < s.n; ++n) {
            int64_t acc = 0, col = 0;
            for (int64_t k = 0; k < s.k; ++k) {
                acc += static_cast<int64_t>(q[k]) * p.wq[n * s.k + k];
                col += p.wq[n * s.k + k];
            }
            const double dequant =
                static_cast<double>(sx) * p.wscale[n] * static_cast<double>(acc - zx * col);
            double exact = dequant + (with_bias ? p.bias[n] : 0.0);
            double full = 0;
            for (int64_t k = 0; k < s.k; ++k)
                full += static_cast<double>(p.x[m * p.ldx + k]) * p.w[n * p.ldw + k];
            full += with_bias ? p.bias[n] : 0.0;
            const double r = res_copy[m * p.ldr + n];
            exact_row[n] = apply_epilogue(exact, epilogue, r);
            full_row[n] = apply_epilogue(full, epilogue, r);
        }
        if (epilogue & TW_EPILOGUE_LAYERNORM) {
            normalize(exact_row);
            normalize(full_row);
        }
        for (int64_t n = 0; n < s.n; ++n) {
            const double got = y[m * ldy + n];
            worst_exact = std::max(worst_exact,
                                   std::fabs(got - exact_row[n]) / (1.0 + std::fabs(exact_row[n])));
            err2 += (got - full_row[n]) * (got - full_row[n]);
            ref2 += full_row[n] * full_row[n];
        }
        for (int64_t n = s.n; n < ldy; ++n) {
            if (!y_is_residual)
                TW_CHECK(y[m * ldy + n] == -7.0f, "%s: wrote past n at row %lld", label,
                         (long long)m);
        }
    }
    TW_CHECK(worst_exact < 2e-5,
             "%s: m=%lld n=%lld k=%lld differs from the exact int32 reference by %g", label,
             (long long)s.m, (long long)s.n, (long long)s.k, worst_exact);
    // Quantization error vs the unquantized float64 product: a few percent at 8 bits, more with
    // 254 activation codes or 64-level weights.
    const double rel = std::sqrt(err2 / std::max(ref2, 1e-30));
    const double bound = qmax == 255 && p.weight_max == 127 ? 0.03 : 0.06;
    TW_CHECK(s.k < 4 || rel < bound,
             "%s: relative error vs fp64 %g (bound %g) m=%lld n=%lld k=%lld", label, rel, bound,
             (long long)s.m, (long long)s.n, (long long)s.k);
}

void test_weight_only(const Problem& p, tw_packed_weights* packed, int epilogue,
                      const char* label) {
    const Shape s = p.s;
    std::vector<float> y(s.m * s.n);
    tw_linear_params lp{};
    lp.m = s.m;
    lp.x = p.x.data();
    lp.ldx = p.ldx;
    lp.act_quant = TW_QUANT_NONE;
    lp.w = packed;
    lp.bias = p.bias.data();
    lp.epilogue = epilogue;
    lp.residual = p.residual.data();
    lp.ld_residual = p.ldr;
    lp.y = y.data();
    lp.ldy = s.n;
    TW_CHECK(tw_linear(&lp) == TW_OK, "%s: %s", label, tw_last_error());
    double worst = 0;
    for (int64_t m = 0; m < s.m; ++m) {
        for (int64_t n = 0; n < s.n; ++n) {
            double acc = 0, mag = 0;
            for (int64_t k = 0; k < s.k; ++k) {
                const double wv = static_cast<double>(p.wscale[n]) * p.wq[n * s.k + k];
                acc += p.x[m * p.ldx + k] * wv;
                mag += std::fabs(p.x[m * p.ldx + k] * wv);
            }
            const double ref = apply_epilogue(acc + p.bias[n], epilogue, p.residual[m * p.ldr + n]);
            worst = std::max(worst, std::fabs(y[m * s.n + n] - ref) / (1.0 + mag + std::fabs(ref)));
        }
    }
    TW_CHECK(worst < 2e-6, "%s: weight-only error %g m=%lld n=%lld k=%lld", label, worst,
             (long long)s.m, (long long)s.n, (long long)s.k);
}

/// The quantized copy of Y (for a following int8 layer) against the documented quantization of
/// the same call's fp32 output, with and without storing y, with a channel multiplier, after a
/// GELU or a LayerNorm epilogue.
void test_quantized_output(const Problem& p, tw_packed_weights* packed, int epilogue,
                           const char* label) {
    const Shape s = p.s;
    std::vector<float> mult(s.n);
    Random rng(static_cast<uint64_t>(s.m * 131 + s.n));
    for (auto& v : mult) v = rng.uniform(0.25f, 4.0f);
    const int64_t ldq = tw_quantized_row_stride(s.n) + 3;
    for (bool store_y : {true, false}) {
        std::vector<float> plain(s.m * s.n), y(s.m * s.n, -7.0f);
        std::vector<uint8_t> q(s.m * ldq, 0xAB);
        std::vector<float> scales(s.m, -1.0f);
        std::vector<int32_t> zeros(s.m, -1);
        tw_quantized_rows rows{s.m, s.n, q.data(), ldq, scales.data(), zeros.data(), 0};
        tw_linear_params lp{};
        lp.m = s.m;
        lp.x = p.x.data();
        lp.ldx = p.ldx;
        lp.act_quant = TW_QUANT_ASYMMETRIC;
        lp.w = packed;
        lp.bias = p.bias.data();
        lp.epilogue = epilogue;
        lp.ln_gamma = p.gamma.data();
        lp.ln_beta = p.beta.data();
        lp.ln_eps = 1e-5f;
        lp.y = plain.data();
        lp.ldy = s.n;
        TW_CHECK(tw_linear(&lp) == TW_OK, "%s: %s", label, tw_last_error());
        lp.y = store_y ? y.data() : nullptr;
        lp.yq = &rows;
        lp.yq_mode = TW_QUANT_ASYMMETRIC;
        lp.yq_channel_scale = mult.data();
        TW_CHECK(tw_linear(&lp) == TW_OK, "%s: %s", label, tw_last_error());
        TW_CHECK(rows.qmax == tw_int8_activation_qmax(), "%s: qmax %d", label, rows.qmax);
        if (store_y)
            TW_CHECK(y == plain, "%s: y with a quantized copy differs from y alone", label);
        std::vector<float> scaled(s.n);
        std::vector<int32_t> ref;
        int worst_code = 0;
        for (int64_t m = 0; m < s.m; ++m) {
            for (int64_t n = 0; n < s.n; ++n) scaled[n] = plain[m * s.n + n] * mult[n];
            float sx;
            int32_t zx;
            quantize_reference(scaled.data(), s.n, TW_QUANT_ASYMMETRIC, rows.qmax, ref, sx, zx);
            TW_CHECK(std::fabs(scales[m] - sx) <= 1e-6f * std::fabs(sx) && zeros[m] == zx,
                     "%s: row %lld scale %g/%g zero %d/%d", label, (long long)m, scales[m], sx,
                     zeros[m], zx);
            for (int64_t n = 0; n < s.n; ++n) {
                worst_code =
                    std::max(worst_code, std::abs(static_cast<int>(q[m * ldq + n]) - ref[n]));
            }
        }
        // Codes may differ by one where a value sits on a rounding boundary (fused multiply order).
        TW_CHECK(worst_code <= 1, "%s: quantized output codes differ by %d (store_y=%d)", label,
                 worst_code, store_y);
    }
}

void test_prequantized(const Problem& p, tw_packed_weights* packed, const char* label) {
    const Shape s = p.s;
    const int64_t ldq = tw_quantized_row_stride(s.k) + 4;
    std::vector<uint8_t> q(s.m * ldq);
    std::vector<float> scales(s.m);
    std::vector<int32_t> zeros(s.m);
    tw_quantized_rows rows{s.m, s.k, q.data(), ldq, scales.data(), zeros.data(), 0};
    TW_CHECK(tw_quantize_rows(p.x.data(), p.ldx, TW_QUANT_ASYMMETRIC, &rows) == TW_OK, "%s",
             tw_last_error());
    std::vector<float> y1(s.m * s.n), y2(s.m * s.n);
    tw_linear_params lp{};
    lp.m = s.m;
    lp.xq = &rows;
    lp.w = packed;
    lp.bias = p.bias.data();
    lp.epilogue = TW_EPILOGUE_GELU;
    lp.y = y1.data();
    lp.ldy = s.n;
    TW_CHECK(tw_linear(&lp) == TW_OK, "%s: %s", label, tw_last_error());
    lp.xq = nullptr;
    lp.x = p.x.data();
    lp.ldx = p.ldx;
    lp.act_quant = TW_QUANT_ASYMMETRIC;
    lp.y = y2.data();
    TW_CHECK(tw_linear(&lp) == TW_OK, "%s: %s", label, tw_last_error());
    TW_CHECK(std::memcmp(y1.data(), y2.data(), y1.size() * 4) == 0, "%s: pre-quantized != dynamic",
             label);
}

void test_quantize_identical_across_isas(Random& rng) {
    const int64_t m = 37, k = 203, ldq = 208;
    std::vector<float> x(m * k);
    for (auto& v : x) v = rng.normal(2.0f);
    x[5] = 0;  // a zero row part and a constant row
    for (int64_t i = 0; i < k; ++i) x[3 * k + i] = 0.0f;
    for (auto mode : {TW_QUANT_SYMMETRIC, TW_QUANT_ASYMMETRIC}) {
        std::vector<uint8_t> ref(m * ldq);
        std::vector<float> rs(m);
        std::vector<int32_t> rz(m);
        tw::quantize_rows_portable(x.data(), k, nullptr, 0, m, k, mode, 255, ref.data(), ldq,
                                   rs.data(), rz.data());
        std::vector<int32_t> q;
        for (int64_t r = 0; r < m; ++r) {
            float s;
            int32_t z;
            quantize_reference(&x[r * k], k, mode, 255, q, s, z);
            bool same = s == rs[r] && z == rz[r];
            for (int64_t i = 0; i < k; ++i) same = same && q[i] == ref[r * ldq + i];
            TW_CHECK(same, "portable quantization of row %lld differs from the reference",
                     (long long)r);
        }
        for (tw::QuantizeFn fn : {tw::quantize_rows_avx2, tw::quantize_rows_avx512}) {
            if (fn == tw::quantize_rows_avx512 && tw_isa_detected() < TW_ISA_AVX512) continue;
            if (fn == tw::quantize_rows_avx2 && tw_isa_detected() < TW_ISA_AVX2) continue;
            std::vector<uint8_t> got(m * ldq, 99);
            std::vector<float> gs(m);
            std::vector<int32_t> gz(m);
            fn(x.data(), k, nullptr, 0, m, k, mode, 255, got.data(), ldq, gs.data(), gz.data());
            TW_CHECK(got == ref && gs == rs && gz == rz,
                     "SIMD quantization differs from portable (mode %d)", mode);
            // With per-column multipliers: identical to quantizing the pre-multiplied rows.
            std::vector<float> mult(k), xm(m * k);
            for (int64_t i = 0; i < k; ++i) mult[i] = 0.25f + static_cast<float>(i % 7);
            for (int64_t r = 0; r < m; ++r)
                for (int64_t i = 0; i < k; ++i) xm[r * k + i] = x[r * k + i] * mult[i];
            std::vector<uint8_t> want(m * ldq), have(m * ldq);
            std::vector<float> ws(m), hs(m);
            std::vector<int32_t> wz(m), hz(m);
            tw::quantize_rows_portable(xm.data(), k, nullptr, 0, m, k, mode, 255, want.data(), ldq,
                                       ws.data(), wz.data());
            fn(x.data(), k, mult.data(), 0, m, k, mode, 255, have.data(), ldq, hs.data(),
               hz.data());
            TW_CHECK(want == have && ws == hs && wz == hz,
                     "column multipliers differ from pre-multiplied rows (mode %d)", mode);
            tw::quantize_rows_portable(x.data(), k, mult.data(), 0, m, k, mode, 255, have.data(),
                                       ldq, hs.data(), hz.data());
            TW_CHECK(want == have && ws == hs && wz == hz, "portable column multipliers (mode %d)",
                     mode);
        }
    }
}

/// Packs the problem's weights: through tw_pack_weights at 127 levels (whose codes test_packing
/// checks against the test's), else the test's own codes through tw_pack_weights_int8.
/// Rows holding NaN or ±infinity: with fp32 arithmetic their outputs are NaN/infinite, so dynamic
/// int8 must give non-finite outputs there too (never a quiet finite number from a code of 0), and
/// the other rows must be untouched by them. Also each fused epilogue and the LayerNorm.
void test_nonfinite_rows(tw_packed_weights* packed, int64_t n, int64_t k, Random& rng,
                         const char* label) {
    const int64_t m = 5;
    const float poison[] = {std::nanf(""), INFINITY, -INFINITY};
    for (auto mode : {TW_QUANT_SYMMETRIC, TW_QUANT_ASYMMETRIC}) {
        for (int epilogue : {TW_EPILOGUE_NONE, TW_EPILOGUE_GELU, TW_EPILOGUE_LAYERNORM}) {
            for (float bad : poison) {
                std::vector<float> x(m * k), y(m * n, -7.0f), clean_y(m * n, -7.0f);
                std::vector<float> gamma(n, 1.0f), beta(n, 0.0f);
                for (auto& v : x) v = rng.normal(1.0f);
                std::vector<float> clean = x;
                x[1 * k + (k - 1)] = bad;  // row 1: poisoned in its last (tail) column
                x[3 * k + 0] = bad;        // row 3: in its first column
                tw_linear_params lp{};
                lp.m = m;
                lp.ldx = k;
                lp.act_quant = mode;
                lp.w = packed;
                lp.epilogue = epilogue;
                lp.ldy = n;
                lp.ln_gamma = gamma.data();
                lp.ln_beta = beta.data();
                lp.ln_eps = 1e-5f;
                lp.x = x.data();
                lp.y = y.data();
                TW_CHECK(tw_linear(&lp) == TW_OK, "%s: %s", label, tw_last_error());
                lp.x = clean.data();
                lp.y = clean_y.data();
                TW_CHECK(tw_linear(&lp) == TW_OK, "%s: %s", label, tw_last_error());
                for (int64_t r = 0; r < m; ++r) {
                    const bool poisoned = r == 1 || r == 3;
                    for (int64_t c = 0; c < n; ++c) {
                        const float got = y[r * n + c];
                        if (poisoned) {
                            TW_CHECK(!std::isfinite(got),
                                     "%s: mode %d epilogue %d: row %lld holds %g but its "
                                     "output %lld is finite (%g)",
                                     label, (int)mode, epilogue, (long long)r, (double)bad,
                                     (long long)c, (double)got);
                        } else {
                            TW_CHECK(got == clean_y[r * n + c],
                                     "%s: mode %d: clean row %lld changed by a "
                                     "non-finite neighbour (%g vs %g)",
                                     label, (int)mode, (long long)r, (double)got,
                                     (double)clean_y[r * n + c]);
                        }
                    }
                }
            }
        }
    }
}

tw_packed_weights* pack(const Problem& p) {
    tw_packed_weights* packed = nullptr;
    if (p.weight_max == 127) {
        TW_CHECK(tw_pack_weights(TW_I8, p.s.n, p.s.k, p.w.data(), p.ldw, &packed) == TW_OK, "%s",
                 tw_last_error());
        return packed;
    }
    std::vector<int8_t> codes(p.wq.begin(), p.wq.end());
    TW_CHECK(
        tw_pack_weights_int8(p.s.n, p.s.k, codes.data(), p.s.k, p.wscale.data(), &packed) == TW_OK,
        "%s", tw_last_error());
    return packed;
}

/// The reduced-range kernel at the int16 edge: codes 255 and 0 times weights of +-64 in every
/// pair (2 * 255 * 64 = 32640), against exact int64 sums.
void test_reduced_saturation_edge(Random& rng) {
    const int64_t m = 7, n = 40, k = 66;
    std::vector<int8_t> wq(n * k);
    for (int64_t i = 0; i < n * k; ++i) {
        wq[i] = static_cast<int8_t>(i % 5 == 0 ? (rng.uniform(0, 1) < 0.5f ? 64 : -64)
                                               : (i / k % 2 ? 64 : -64));
    }
    std::vector<float> scales(n, 1.0f);
    tw_packed_weights* packed = nullptr;
    TW_CHECK(tw_pack_weights_int8(n, k, wq.data(), k, scales.data(), &packed) == TW_OK, "%s",
             tw_last_error());
    const int64_t ldq = tw_quantized_row_stride(k);
    std::vector<uint8_t> q(m * ldq, 0);
    for (int64_t r = 0; r < m; ++r)
        for (int64_t i = 0; i < k; ++i)
            q[r * ldq + i] = r == 0 ? 255 : (rng.uniform(0, 1) < 0.8f ? 255 : 0);
    std::vector<float> xs(m, 1.0f);
    std::vector<int32_t> zeros(m, 0);
    tw_quantized_rows rows{m, k, q.data(), ldq, xs.data(), zeros.data(), 255};
    std::vector<float> y(m * n);
    tw_linear_params lp{};
    lp.m = m;
    lp.xq = &rows;
    lp.w = packed;
    lp.y = y.data();
    lp.ldy = n;
    TW_CHECK(tw_linear(&lp) == TW_OK, "reduced edge: %s", tw_last_error());
    int bad = 0;
    for (int64_t r = 0; r < m; ++r) {
        for (int64_t c = 0; c < n; ++c) {
            int64_t acc = 0;
            for (int64_t i = 0; i < k; ++i)
                acc += static_cast<int64_t>(q[r * ldq + i]) * wq[c * k + i];
            if (y[r * n + c] != static_cast<float>(acc)) ++bad;
        }
    }
    TW_CHECK(bad == 0, "reduced-range kernel: %d of %lld sums differ at the saturation edge", bad,
             static_cast<long long>(m * n));
    tw_packed_weights_free(packed);
}

/// tw_pack_weights_int8_range by its documented properties: codes within the range; per channel,
/// a squared rounding error no larger than the plain max|w| / weight_max scale gives, with a scale
/// in [0.6, 1] of that one; at 127 the same codes as tw_pack_weights(TW_I8); bad ranges refused.
void test_pack_range(Random& rng) {
    const int64_t n = 37, k = 203;
    std::vector<float> w(n * k);
    for (auto& v : w) v = rng.normal(0.05f);
    for (int64_t c = 0; c < n; c += 3) w[c * k + (c % k)] = 0.8f;  // outliers in some channels
    for (int32_t wmax : {64, 31, 127}) {
        tw_packed_weights* packed = nullptr;
        TW_CHECK(tw_pack_weights_int8_range(n, k, w.data(), k, wmax, &packed) == TW_OK, "%s",
                 tw_last_error());
        std::vector<float> got(n * k);
        TW_CHECK(tw_unpack_weights(packed, got.data(), k) == TW_OK, "%s", tw_last_error());
        for (int64_t c = 0; c < n; ++c) {
            double amax = 0;
            for (int64_t i = 0; i < k; ++i)
                amax = std::max(amax, std::fabs(static_cast<double>(w[c * k + i])));
            const double plain = amax / wmax;
            double plain_err = 0, err = 0, scale = 0;
            for (int64_t i = 0; i < k; ++i) {
                const double q = std::min<double>(
                    wmax, std::max<double>(-wmax, std::nearbyint(w[c * k + i] / plain)));
                plain_err += (w[c * k + i] - q * plain) * (w[c * k + i] - q * plain);
                err += (w[c * k + i] - got[c * k + i]) * (w[c * k + i] - got[c * k + i]);
                scale = std::max(scale, std::fabs(static_cast<double>(got[c * k + i])));
            }
            // The largest dequantized magnitude is scale * (largest code), at most scale * wmax.
            TW_CHECK(err <= plain_err * (1 + 1e-5) + 1e-12,
                     "weight_max %d channel %lld: error %g > max-abs %g", wmax, (long long)c, err,
                     plain_err);
            TW_CHECK(
                scale <= amax * (1 + 1e-6) && scale >= 0.6 * amax * (1 - 1e-6) - plain,
                "weight_max %d channel %lld: largest weight %g outside the clipping range of %g",
                wmax, (long long)c, scale, amax);
        }
        if (wmax == 127) {
            tw_packed_weights* ref = nullptr;
            TW_CHECK(tw_pack_weights(TW_I8, n, k, w.data(), k, &ref) == TW_OK, "%s",
                     tw_last_error());
            std::vector<float> want(n * k);
            TW_CHECK(tw_unpack_weights(ref, want.data(), k) == TW_OK, "%s", tw_last_error());
            TW_CHECK(want == got, "weight_max 127 differs from tw_pack_weights(TW_I8)");
            tw_packed_weights_free(ref);
        }
        tw_packed_weights_free(packed);
    }
    tw_packed_weights* none = nullptr;
    TW_CHECK(tw_pack_weights_int8_range(n, k, w.data(), k, 0, &none) == TW_ERR_INVALID_ARGUMENT &&
                 none == nullptr,
             "weight_max 0");
    TW_CHECK(tw_pack_weights_int8_range(n, k, w.data(), k, 128, &none) == TW_ERR_INVALID_ARGUMENT,
             "weight_max 128");
    TW_CHECK(std::strstr(tw_last_error(), "weight_max") != nullptr, "message names weight_max: %s",
             tw_last_error());
}

/// Which kernel runs: reduced-range weights take the reduced-range kernel exactly where the
/// full-range ones take the sign trick; forcing it onto full-range weights is an error.
void test_reduced_selection(Random& rng) {
    if (tw_isa_detected() < TW_ISA_AVX2 || tw_set_isa(TW_ISA_AVX2) != TW_OK) return;
    const int64_t n = 8, k = 12;
    std::vector<float> w(n * k);
    for (auto& v : w) v = rng.normal(1.0f);
    tw_packed_weights *full = nullptr, *reduced = nullptr;
    TW_CHECK(tw_pack_weights(TW_I8, n, k, w.data(), k, &full) == TW_OK, "%s", tw_last_error());
    TW_CHECK(tw_pack_weights_int8_range(n, k, w.data(), k, TW_INT8_REDUCED_WEIGHT_MAX, &reduced) ==
                 TW_OK,
             "%s", tw_last_error());
    const std::string full_name = tw_linear_kernel_name_for(full, TW_QUANT_ASYMMETRIC);
    const std::string reduced_name = tw_linear_kernel_name_for(reduced, TW_QUANT_ASYMMETRIC);
    TW_CHECK(full_name == tw_linear_kernel_name(TW_I8, TW_QUANT_ASYMMETRIC), "full-range name %s",
             full_name.c_str());
    const std::string expected =
        full_name == "avx2-maddubs-sign" ? "avx2-maddubs-reduced-range" : full_name;
    TW_CHECK(reduced_name == expected, "reduced-range weights run %s, expected %s",
             reduced_name.c_str(), expected.c_str());
    TW_CHECK(
        std::string(tw_linear_kernel_name_for(reduced, TW_QUANT_NONE)) == "avx2-int8-weight-only",
        "weight-only name");
    TW_CHECK(std::string(tw_linear_kernel_name_for(nullptr, TW_QUANT_NONE)) == "unsupported",
             "null weights name");
    TW_CHECK(tw::force_int8_kernel(tw::Int8Kernel::kAvx2Reduced), "force reduced");
    std::vector<float> x(3 * k, 0.5f), y(3 * n);
    tw_linear_params lp{};
    lp.m = 3;
    lp.x = x.data();
    lp.ldx = k;
    lp.act_quant = TW_QUANT_ASYMMETRIC;
    lp.w = full;
    lp.y = y.data();
    lp.ldy = n;
    TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT, "full-range weights on the reduced kernel");
    TW_CHECK(std::strstr(tw_last_error(), "reduced-range") != nullptr, "message: %s",
             tw_last_error());
    lp.w = reduced;
    TW_CHECK(tw_linear(&lp) == TW_OK, "reduced weights on the reduced kernel: %s", tw_last_error());
    tw::force_int8_kernel(tw::Int8Kernel::kAuto);
    tw_set_isa(tw_isa_detected());
    tw_packed_weights_free(full);
    tw_packed_weights_free(reduced);
}

void test_bad_arguments() {
    tw_packed_weights* w = nullptr;
    const float one = 1.0f;
    TW_CHECK(tw_pack_weights(TW_I8, 0, 4, &one, 4, &w) == TW_ERR_INVALID_ARGUMENT && w == nullptr,
             "n=0");
    TW_CHECK(std::strlen(tw_last_error()) > 0, "message for n=0");
    TW_CHECK(tw_pack_weights(TW_I8, 1, 4, nullptr, 4, &w) == TW_ERR_INVALID_ARGUMENT,
             "null weights");
    TW_CHECK(tw_pack_weights(TW_I32, 1, 1, &one, 1, &w) == TW_ERR_INVALID_ARGUMENT, "bad format");
    TW_CHECK(tw_pack_weights(TW_I8, 1, 2, &one, 1, &w) == TW_ERR_INVALID_ARGUMENT, "ld < k");
    const float nan_w[2] = {1.0f, NAN};
    TW_CHECK(tw_pack_weights(TW_I8, 1, 2, nan_w, 2, &w) == TW_ERR_INVALID_ARGUMENT, "NaN weight");
    const float ws[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    TW_CHECK(tw_pack_weights(TW_I8, 2, 4, ws, 4, &w) == TW_OK, "pack");
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[4];
    tw_linear_params lp = twtest::linear_params(2, x, 4, w, y, 1);  // ldy < n
    TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT, "ldy < n");
    lp.ldy = 2;
    lp.ldx = 3;
    TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT, "ldx < k");
    lp.ldx = 4;
    lp.epilogue = TW_EPILOGUE_RESIDUAL;
    TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT, "residual missing");
    lp.epilogue = 8;
    TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT, "unknown epilogue");
    lp.epilogue = TW_EPILOGUE_LAYERNORM;
    lp.ln_eps = -1.0f;
    TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT, "negative LayerNorm eps");
    TW_CHECK(std::strstr(tw_last_error(), "ln_eps") != nullptr, "message names ln_eps: %s",
             tw_last_error());
    lp.ln_eps = 0.0f;
    lp.epilogue = 0;
    {
        uint8_t codes[2 * 8];
        float scales[2];
        int32_t zeros[2];
        tw_quantized_rows out{2, 2, codes, 8, scales, zeros, 0};
        lp.yq = &out;
        lp.yq_mode = TW_QUANT_NONE;
        TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT, "yq without a quantization mode");
        lp.yq_mode = TW_QUANT_ASYMMETRIC;
        out.m = 3;
        TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT, "yq rows != m");
        TW_CHECK(std::strstr(tw_last_error(), "yq") != nullptr, "message names yq: %s",
                 tw_last_error());
        out.m = 2;
        lp.y = nullptr;
        TW_CHECK(tw_linear(&lp) == TW_OK, "y may be null with yq: %s", tw_last_error());
        lp.yq = nullptr;
        TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT, "y null without yq");
        lp.y = y;
        lp.yq_mode = TW_QUANT_NONE;
    }
    lp.act_quant = static_cast<tw_activation_quant>(9);
    TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT, "unknown quantization");
    lp.act_quant = TW_QUANT_SYMMETRIC;
    lp.y = x + 1;
    TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT, "y overlapping x");
    lp.y = y;
    TW_CHECK(tw_linear(&lp) == TW_OK, "valid call: %s", tw_last_error());
    lp.w = nullptr;
    TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT, "null weights");
    // Codes up to 255 cannot go to the plain-AVX2 kernel (it takes 0..254).
    if (tw_isa_detected() >= TW_ISA_AVX2 && tw_set_isa(TW_ISA_AVX2) == TW_OK &&
        tw::force_int8_kernel(tw::Int8Kernel::kAvx2Maddubs)) {
        uint8_t q[8] = {0};
        float s[2] = {1, 1};
        int32_t z[2] = {0, 0};
        tw_quantized_rows rows{2, 4, q, 4, s, z, 255};
        lp.w = w;
        lp.xq = &rows;
        TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT, "255 codes on the 254 kernel");
        rows.qmax = 254;
        TW_CHECK(tw_linear(&lp) == TW_OK, "254 codes on the 254 kernel: %s", tw_last_error());
        rows.k = 3;
        TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT, "quantized k mismatch");
        tw::force_int8_kernel(tw::Int8Kernel::kAuto);
        tw_set_isa(tw_isa_detected());
    }
    tw_packed_weights_free(w);
    tw_packed_weights_free(nullptr);
}

}  // namespace

int main() {
    uint64_t seed = 1234;
    Random rng(99);
    test_quantize_identical_across_isas(rng);
    test_bad_arguments();
    test_pack_range(rng);
    test_reduced_selection(rng);
    if (tw_isa_detected() >= TW_ISA_AVX2 && tw_set_isa(TW_ISA_AVX2) == TW_OK &&
        tw::force_int8_kernel(tw::Int8Kernel::kAvx2Reduced)) {
        test_reduced_saturation_edge(rng);
        tw::force_int8_kernel(tw::Int8Kernel::kAuto);
        tw_set_isa(tw_isa_detected());
    }
    for (int isa_level = TW_ISA_PORTABLE; isa_level <= TW_ISA_AVX512; ++isa_level) {
        const tw_isa isa = static_cast<tw_isa>(isa_level);
        if (tw_set_isa(isa) != TW_OK) {
            std::printf("skipping ISA %s: not supported by this CPU\n", isa_name(isa));
            continue;
        }
        std::vector<tw::Int8Kernel> kernels = {tw::Int8Kernel::kPortable};
        if (isa >= TW_ISA_AVX2) {
            kernels = {tw::Int8Kernel::kAvx2Maddubs, tw::Int8Kernel::kAvx2Reduced,
                       tw::Int8Kernel::kAvxVnni};
        }
        if (isa == TW_ISA_AVX512) kernels.push_back(tw::Int8Kernel::kAvx512Vnni);
        for (tw::Int8Kernel kernel : kernels) {
            if (!tw::force_int8_kernel(kernel)) {
                std::printf("skipping %s on %s: CPU lacks it\n", kernel_name(kernel),
                            isa_name(isa));
                continue;
            }
            int cases = 0;
            for (const Shape& s : kShapes) {
                // The reduced-range kernel takes weights within TW_INT8_REDUCED_WEIGHT_MAX only.
                const int32_t wmax =
                    kernel == tw::Int8Kernel::kAvx2Reduced ? TW_INT8_REDUCED_WEIGHT_MAX : 127;
                Problem p(s, seed++, wmax);
                tw_packed_weights* packed = pack(p);
                if (packed == nullptr) continue;
                test_packing(p, packed);
                char label[128];
                std::snprintf(label, sizeof label, "%s/%s", isa_name(isa), kernel_name(kernel));
                for (auto mode : {TW_QUANT_SYMMETRIC, TW_QUANT_ASYMMETRIC}) {
                    test_dynamic(p, packed, mode, TW_EPILOGUE_NONE, false, false, label);
                    test_dynamic(p, packed, mode, TW_EPILOGUE_NONE, true, false, label);
                    test_dynamic(p, packed, mode, TW_EPILOGUE_GELU, true, false, label);
                    test_dynamic(p, packed, mode, TW_EPILOGUE_RESIDUAL, true, true, label);
                    test_dynamic(p, packed, mode, TW_EPILOGUE_GELU | TW_EPILOGUE_RESIDUAL, true,
                                 false, label);
                    // Dense + residual + LayerNorm in one call, in place over the residual too.
                    // (n = 1 rows normalise to beta exactly; the exact-reference bound still
                    // holds.)
                    test_dynamic(p, packed, mode, TW_EPILOGUE_RESIDUAL | TW_EPILOGUE_LAYERNORM,
                                 true, true, label);
                    test_dynamic(p, packed, mode, TW_EPILOGUE_LAYERNORM, false, false, label);
                    cases += 7;
                }
                test_weight_only(p, packed, TW_EPILOGUE_NONE, label);
                test_weight_only(p, packed, TW_EPILOGUE_GELU | TW_EPILOGUE_RESIDUAL, label);
                test_prequantized(p, packed, label);
                if (s.k >= 2) test_nonfinite_rows(packed, s.n, s.k, rng, label);
                test_quantized_output(p, packed, TW_EPILOGUE_GELU, label);
                test_quantized_output(p, packed, TW_EPILOGUE_LAYERNORM, label);
                tw_packed_weights_free(packed);
            }
            std::printf("%s / %s: %d dynamic cases over %zu shapes\n", isa_name(isa),
                        kernel_name(kernel), cases, sizeof(kShapes) / sizeof(kShapes[0]));
        }
        tw::force_int8_kernel(tw::Int8Kernel::kAuto);
    }
    // Weights already quantized elsewhere (e.g. ONNX Runtime), including -128.
    {
        tw_set_isa(tw_isa_detected());
        Random r(7);
        const int64_t n = 45, k = 70, m = 11;
        std::vector<int8_t> wq(n * k);
        for (auto& v : wq) v = static_cast<int8_t>(static_cast<int>(r.next() % 256) - 128);
        std::vector<float> sc(n), x(m * k), y(m * n);
        for (auto& v : sc) v = r.uniform(0.001f, 0.02f);
        for (auto& v : x) v = r.normal(1.0f);
        tw_packed_weights* packed = nullptr;
        TW_CHECK(tw_pack_weights_int8(n, k, wq.data(), k, sc.data(), &packed) == TW_OK, "%s",
                 tw_last_error());
        tw_linear_params lp{};
        lp.m = m;
        lp.x = x.data();
        lp.ldx = k;
        lp.w = packed;
        lp.y = y.data();
        lp.ldy = n;
        lp.act_quant = TW_QUANT_ASYMMETRIC;
        TW_CHECK(tw_linear(&lp) == TW_OK, "%s", tw_last_error());
        std::vector<int32_t> q;
        double worst = 0;
        for (int64_t i = 0; i < m; ++i) {
            float s;
            int32_t z;
            quantize_reference(&x[i * k], k, TW_QUANT_ASYMMETRIC, tw_int8_activation_qmax(), q, s,
                               z);
            for (int64_t j = 0; j < n; ++j) {
                int64_t acc = 0;
                for (int64_t t = 0; t < k; ++t)
                    acc += static_cast<int64_t>(q[t] - z) * wq[j * k + t];
                const double ref = static_cast<double>(s) * sc[j] * acc;
                worst = std::max(worst, std::fabs(y[i * n + j] - ref) / (1 + std::fabs(ref)));
            }
        }
        TW_CHECK(worst < 2e-5, "pre-quantized weights with -128: error %g", worst);
        tw_packed_weights_free(packed);
    }
    return twtest::finish("gemm_int8_test");
}
