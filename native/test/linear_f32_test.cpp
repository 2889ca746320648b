// fp32 linear layer against a float64 reference: awkward shapes (rows not a multiple of the
// 12-row tile or of AVX2's 6-row micro-tile, columns not a multiple of the 32-column panel or of
// its 16-column half, k = 1), every epilogue, every ISA level the CPU has, strided rows, and the
// argument checks.
#include <cmath>
#include <cstdio>
#include <vector>

#include "test_util.h"
#include "tilewise/tilewise.h"
#include "tilewise/tilewise_linear_f32.h"

namespace {

double gelu(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }

void check_case(std::mt19937& rng, int64_t m, int64_t n, int64_t k, bool bias, bool act,
                bool residual, tw_isa isa) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t ldx = k + 3;
    const int64_t ldy = n + 5;
    std::vector<float> x(m * ldx), w(n * k), b(n), r(m * ldy), y(m * ldy, -7.0f);
    for (auto& v : x) v = normal(rng);
    for (auto& v : w) v = normal(rng) / std::sqrt(static_cast<float>(k));
    for (auto& v : b) v = normal(rng);
    for (auto& v : r) v = normal(rng);
    std::vector<float> packed(tw_f32_packed_bytes(n, k) / sizeof(float));
    TW_CHECK(tw_f32_pack(n, k, w.data(), k, packed.data()) == TW_OK, "pack: %s", tw_last_error());
    tw_f32_linear_params p{};
    p.m = m;
    p.n = n;
    p.k = k;
    p.x = x.data();
    p.ldx = ldx;
    p.packed = packed.data();
    p.bias = bias ? b.data() : nullptr;
    p.gelu = act ? 1 : 0;
    p.residual = residual ? r.data() : nullptr;
    p.ld_residual = ldy;
    p.y = y.data();
    p.ldy = ldy;
    TW_CHECK(tw_f32_linear(&p) == TW_OK, "linear: %s", tw_last_error());
    double max_err = 0;
    for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
            double acc = bias ? b[j] : 0.0;
            for (int64_t kk = 0; kk < k; ++kk) acc += double(x[i * ldx + kk]) * w[j * k + kk];
            if (act) acc = gelu(acc);
            if (residual) acc += r[i * ldy + j];
            max_err = std::max(max_err, std::fabs(acc - y[i * ldy + j]));
        }
        // Padding between rows is untouched.
        for (int64_t j = n; j < ldy; ++j) {
            TW_CHECK(y[i * ldy + j] == (residual ? y[i * ldy + j] : -7.0f), "padding written");
        }
    }
    TW_CHECK(max_err < 2e-5, "isa=%d m=%lld n=%lld k=%lld bias=%d gelu=%d res=%d: max err %.3e",
             int(isa), (long long)m, (long long)n, (long long)k, bias, act, residual, max_err);
}

}  // namespace

int main() {
    std::mt19937 rng(static_cast<uint32_t>(twtest::rng()()));
    for (tw_isa isa : {TW_ISA_PORTABLE, TW_ISA_AVX2, TW_ISA_AVX512}) {
        if (tw_set_isa(isa) != TW_OK) {
            std::printf("skipping isa %d: %s\n", int(isa), tw_last_error());
            continue;
        }
        // AVX2 splits the 12-row tile into 6-row micro-tiles per 16-column half: 11 and 101 rows
        // leave 5-row micro-tiles, n = 57 and 24 a partial second and first half.
        const int64_t shapes[][3] = {{1, 1, 1},     {13, 33, 7},      {12, 32, 384}, {97, 70, 50},
                                     {25, 384, 384}, {130, 1536, 384}, {7, 384, 1536}, {200, 17, 3},
                                     {11, 57, 9},    {101, 24, 65}};
        for (const auto& s : shapes) {
            for (int mode = 0; mode < 4; ++mode) {
                check_case(rng, s[0], s[1], s[2], mode != 0, mode == 2, mode == 3, isa);
            }
        }
    }
    tw_set_isa(tw_isa_detected());
    // Argument checks.
    float one = 1.0f;
    tw_f32_linear_params p{};
    TW_CHECK(tw_f32_linear(nullptr) == TW_ERR_INVALID_ARGUMENT, "null params");
    p.m = 1;
    p.n = 1;
    p.k = 1;
    p.x = &one;
    p.ldx = 1;
    p.packed = &one;
    p.y = nullptr;
    p.ldy = 1;
    TW_CHECK(tw_f32_linear(&p) == TW_ERR_INVALID_ARGUMENT, "null y");
    p.y = const_cast<float*>(&one);
    TW_CHECK(tw_f32_linear(&p) == TW_ERR_INVALID_ARGUMENT, "y overlaps x");
    TW_CHECK(tw_f32_packed_bytes(0, 5) == -1, "n = 0");
    TW_CHECK(tw_f32_pack(3, 4, &one, 2, &one) == TW_ERR_INVALID_ARGUMENT, "ldw < k");
    return twtest::finish("linear_f32_test");
}
