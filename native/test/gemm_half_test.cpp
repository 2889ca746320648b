// Linear layers with bf16 / fp16 weights against float64 references, on every ISA (and, on
// AVX-512, both the AVX512-BF16 dot-product kernel and the widening kernel):
//  - the test rounds W (and, for the dot-product kernel, X) to 16 bits with its own
//  round-to-nearest-
//    even and computes the result in float64; the kernel must agree to fp32 accumulation error;
//  - against the unrounded float64 product the error stays at 16-bit rounding level;
//  - odd K (a half-filled bf16 pair), N not a multiple of the 32-column panel, any M.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/runtime.h"
#include "test_util.h"
#include "tilewise/tilewise_gemm.h"

using twtest::Random;

namespace {

struct Shape {
    int64_t m, n, k;
};
const Shape kShapes[] = {{1, 1, 1},    {2, 3, 5},      {8, 32, 2},    {9, 33, 3},      {17, 47, 64},
                         {5, 64, 383}, {70, 129, 100}, {64, 96, 384}, {13, 200, 1031}, {23, 57, 7}};

double gelu(double x) {
    return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}

/// Round to nearest even at 8 significant bits (bf16), independent of the library's helper.
double round_bf16(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    const uint32_t lsb = (b >> 16) & 1u;
    b = (b + 0x7fffu + lsb) & 0xffff0000u;
    float r;
    std::memcpy(&r, &b, 4);
    return r;
}

/// Round to nearest even at 11 significant bits (fp16) for normal fp16 values (|f| in [2^-14,
/// 65504]); smaller values round to the fp16 subnormal grid of 2^-24.
double round_fp16(float f) {
    const double a = std::fabs(static_cast<double>(f));
    if (a == 0) return 0;
    int e;
    std::frexp(a, &e);  // a = m 2^e, m in [0.5, 1)
    const double ulp = std::ldexp(1.0, std::max(e - 11, -24));
    const double r = std::nearbyint(a / ulp) * ulp;
    return f < 0 ? -r : r;
}

const char* isa_name(tw_isa isa) {
    return isa == TW_ISA_AVX512 ? "avx512" : isa == TW_ISA_AVX2 ? "avx2" : "portable";
}

void run_case(tw_dtype format, const Shape& s, uint64_t seed, int epilogue, const char* label) {
    Random rng(seed);
    const int64_t ldx = s.k + 2, ldw = s.k, ldy = s.n + 1;
    std::vector<float> x(s.m * ldx), w(s.n * ldw), bias(s.n), res(s.m * ldy), y(s.m * ldy, -3.0f);
    for (auto& v : x) v = rng.normal(1.0f);
    for (auto& v : w) v = rng.normal(0.05f);
    for (auto& v : bias) v = rng.uniform(-0.5f, 0.5f);
    for (auto& v : res) v = rng.normal(1.0f);
    tw_packed_weights* packed = nullptr;
    TW_CHECK(tw_pack_weights(format, s.n, s.k, w.data(), ldw, &packed) == TW_OK, "%s",
             tw_last_error());
    if (!packed) return;
    // Packing rounds each weight exactly as the reference does.
    std::vector<float> unpacked(s.n * s.k);
    tw_unpack_weights(packed, unpacked.data(), s.k);
    int bad = 0;
    for (int64_t n = 0; n < s.n; ++n)
        for (int64_t k = 0; k < s.k; ++k) {
            const double r =
                format == TW_BF16 ? round_bf16(w[n * ldw + k]) : round_fp16(w[n * ldw + k]);
            if (unpacked[n * s.k + k] != r) ++bad;
        }
    TW_CHECK(bad == 0, "%s: %d packed weights are not the rounded fp32 weights", label, bad);
    int64_t bytes = 0;
    tw_packed_weights_info(packed, nullptr, nullptr, nullptr, &bytes);
    const int64_t padded = (s.n + 31) / 32 * 32 * (format == TW_BF16 ? (s.k + 1) / 2 * 2 : s.k) * 2;
    TW_CHECK(bytes >= padded && bytes < padded + 256, "%s: %lld bytes for 16-bit weights", label,
             (long long)bytes);

    tw_linear_params lp{};
    lp.m = s.m;
    lp.x = x.data();
    lp.ldx = ldx;
    lp.w = packed;
    lp.bias = bias.data();
    lp.epilogue = epilogue;
    lp.residual = res.data();
    lp.ld_residual = ldy;
    lp.y = y.data();
    lp.ldy = ldy;
    TW_CHECK(tw_linear(&lp) == TW_OK, "%s: %s", label, tw_last_error());
    const bool x_rounded = format == TW_BF16 && tw::bf16_uses_dot_products();
    double worst = 0, err2 = 0, ref2 = 0;
    for (int64_t m = 0; m < s.m; ++m) {
        for (int64_t n = 0; n < s.n; ++n) {
            double acc = 0, mag = 0, full = 0;
            for (int64_t k = 0; k < s.k; ++k) {
                const float xv = x[m * ldx + k];
                const double xr = x_rounded ? round_bf16(xv) : xv;
                const double wr = unpacked[n * s.k + k];
                acc += xr * wr;
                mag += std::fabs(xr * wr);
                full += static_cast<double>(xv) * w[n * ldw + k];
            }
            auto finish = [&](double v) {
                v += bias[n];
                if (epilogue & TW_EPILOGUE_GELU) v = gelu(v);
                if (epilogue & TW_EPILOGUE_RESIDUAL) v += res[m * ldy + n];
                return v;
            };
            const double ref = finish(acc);
            const double got = y[m * ldy + n];
            worst = std::max(worst, std::fabs(got - ref) / (1.0 + mag + std::fabs(ref)));
            const double f = finish(full);
            err2 += (got - f) * (got - f);
            ref2 += f * f;
        }
        TW_CHECK(y[m * ldy + s.n] == -3.0f, "%s: wrote past n", label);
    }
    TW_CHECK(worst < 2e-6, "%s: m=%lld n=%lld k=%lld error %g vs the 16-bit float64 reference",
             label, (long long)s.m, (long long)s.n, (long long)s.k, worst);
    const double rel = std::sqrt(err2 / std::max(ref2, 1e-30));
    const double bound = format == TW_F16 ? 2e-3 : (x_rounded ? 1.5e-2 : 8e-3);
    TW_CHECK(rel < bound, "%s: relative error %g vs the fp32 float64 product (bound %g)", label,
             rel, bound);
    tw_packed_weights_free(packed);
}

}  // namespace

int main() {
    uint64_t seed = 77;
    {
        tw_packed_weights* w = nullptr;
        const float big[2] = {70000.0f, 1.0f};
        // fp16 packing rounds to nearest; values beyond 65504 become infinity. The ABI accepts them
        // (finite input), and unpacking reports infinity, which is what the caller asked for.
        TW_CHECK(tw_pack_weights(TW_F16, 1, 2, big, 2, &w) == TW_OK, "%s", tw_last_error());
        float back[2];
        tw_unpack_weights(w, back, 2);
        TW_CHECK(std::isinf(back[0]) && back[1] == 1.0f, "fp16 overflow rounds to infinity");
        tw_packed_weights_free(w);
        float x[2] = {1, 1}, y[1];
        TW_CHECK(tw_pack_weights(TW_BF16, 1, 2, big, 2, &w) == TW_OK, "bf16 pack");
        tw_linear_params lp = twtest::linear_params(1, x, 2, w, y, 1);
        lp.act_quant = TW_QUANT_SYMMETRIC;
        TW_CHECK(tw_linear(&lp) == TW_ERR_INVALID_ARGUMENT,
                 "activation quantization with bf16 weights");
        tw_packed_weights_free(w);
    }
    for (int level = TW_ISA_PORTABLE; level <= TW_ISA_AVX512; ++level) {
        const tw_isa isa = static_cast<tw_isa>(level);
        if (tw_set_isa(isa) != TW_OK) {
            std::printf("skipping %s: not supported by this CPU\n", isa_name(isa));
            continue;
        }
        for (bool dot : {true, false}) {
            tw::allow_bf16_dot_products(dot);
            if (!dot && !(isa == TW_ISA_AVX512 && (tw_cpu_features() & TW_CPU_AVX512_BF16)))
                continue;
            for (tw_dtype format : {TW_BF16, TW_F16}) {
                if (!dot && format == TW_F16) continue;
                char label[96];
                std::snprintf(
                    label, sizeof label, "%s/%s%s", isa_name(isa),
                    format == TW_BF16 ? "bf16" : "fp16",
                    format == TW_BF16 ? (tw::bf16_uses_dot_products() ? "-dot" : "-widen") : "");
                int cases = 0;
                for (const Shape& s : kShapes) {
                    for (int epi :
                         {int{TW_EPILOGUE_NONE}, int{TW_EPILOGUE_GELU}, int{TW_EPILOGUE_RESIDUAL},
                          TW_EPILOGUE_GELU | TW_EPILOGUE_RESIDUAL}) {
                        run_case(format, s, seed++, epi, label);
                        ++cases;
                    }
                }
                std::printf("%s: %d cases\n", label, cases);
            }
        }
        tw::allow_bf16_dot_products(tw::bf16_dot_outruns_fma());
    }
    return twtest::finish("gemm_half_test");
}
