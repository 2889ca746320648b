// fp32 linear layer throughput (TW_F32 weights, tw_linear) on the shapes of all-MiniLM-L6-v2 at
// batch 32 × 128 tokens, the FFN1 shape with its GELU epilogue.
// Prints: linear_f32 m=<m> n=<n> k=<k> gelu=<0|1> ms=<median> gflops=<x>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "tilewise/tilewise.h"
#include "tilewise/tilewise_gemm.h"

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 0;
    if (threads > 0) tw_set_num_threads(threads);
    const int64_t shapes[][4] = {{4096, 384, 384, 0}, {4096, 1536, 384, 1}, {4096, 384, 1536, 0}};
    for (const auto& s : shapes) {
        const int64_t m = s[0], n = s[1], k = s[2];
        std::vector<float> x(m * k, 0.5f), w(n * k, 0.25f), b(n, 0.1f), y(m * n);
        tw_packed_weights* packed = nullptr;
        if (tw_pack_weights(TW_F32, n, k, w.data(), k, &packed) != TW_OK) {
            std::fprintf(stderr, "pack failed: %s\n", tw_last_error());
            return 1;
        }
        tw_linear_params p{};
        p.m = m;
        p.x = x.data();
        p.ldx = k;
        p.w = packed;
        p.bias = b.data();
        p.epilogue = s[3] ? TW_EPILOGUE_GELU : 0;
        p.y = y.data();
        p.ldy = n;
        std::vector<double> ms;
        for (int rep = 0; rep < 12; ++rep) {
            auto t0 = std::chrono::steady_clock::now();
            if (tw_linear(&p) != TW_OK) {
                std::fprintf(stderr, "linear failed: %s\n", tw_last_error());
                return 1;
            }
            auto t1 = std::chrono::steady_clock::now();
            if (rep >= 2) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        }
        tw_packed_weights_free(packed);
        std::sort(ms.begin(), ms.end());
        const double med = ms[ms.size() / 2];
        std::printf("linear_f32 m=%lld n=%lld k=%lld gelu=%lld threads=%d ms=%.2f gflops=%.1f\n",
                    (long long)m, (long long)n, (long long)k, (long long)s[3], tw_num_threads(), med,
                    2.0 * m * n * k / (med * 1e6));
    }
    return 0;
}
