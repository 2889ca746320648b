// Native timing of the fused attention (no JVM): median of repeated calls, GFLOP/s counted as
// 4·B·H·Nq·Nk·D (half for causal). The Java benchmark in integration-tests compares against peers;
// this one is for kernel work. Usage: attention_bench [N ...] (default 2048 8192).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include <ctime>

#include "tilewise/tilewise.h"

static double cpu_time_ms() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
    std::vector<int64_t> lengths;
    for (int i = 1; i < argc; ++i) lengths.push_back(std::atoll(argv[i]));
    if (lengths.empty()) lengths = {2048, 8192};
    if (const char* threads = std::getenv("TILEWISE_THREADS")) tw_set_num_threads(std::atoi(threads));
    const int64_t B = 1, H = 8, D = 64;
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1, 1);
    for (int64_t N : lengths) {
        std::vector<float> q(B * H * N * D), k(q.size()), v(q.size()), o(q.size());
        for (auto* x : {&q, &k, &v})
            for (auto& e : *x) e = dist(rng);
        for (int causal = 0; causal <= 1; ++causal) {
            for (tw_dtype compute : {TW_F32, TW_BF16}) {
                tw_attention_params p{};
                p.dtype = TW_F32; p.compute = compute;
                p.batch = B; p.q_heads = p.kv_heads = H; p.q_len = p.kv_len = N; p.head_dim = D;
                p.q = q.data(); p.k = k.data(); p.v = v.data(); p.o = o.data();
                for (int64_t* s : {p.q_strides, p.k_strides, p.v_strides, p.o_strides}) {
                    s[0] = H * N * D; s[1] = N * D; s[2] = D;
                }
                p.scale = 0.125f;
                p.causal = causal;
                const int reps = N >= 8192 ? 5 : 20;
                std::vector<double> ms, cpu_ms;
                for (int r = 0; r < reps + 1; ++r) {
                    const double c0 = cpu_time_ms();
                    auto t0 = std::chrono::steady_clock::now();
                    if (tw_attention_forward(&p) != TW_OK) {
                        std::fprintf(stderr, "error: %s\n", tw_last_error());
                        return 1;
                    }
                    auto t1 = std::chrono::steady_clock::now();
                    if (r > 0) {
                        ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
                        cpu_ms.push_back(cpu_time_ms() - c0);
                    }
                }
                std::sort(ms.begin(), ms.end());
                std::sort(cpu_ms.begin(), cpu_ms.end());
                const double median = ms[ms.size() / 2];
                const double flops = 4.0 * B * H * N * N * D / (causal ? 2 : 1);
                // CPU time shows the kernel's own rate even when other processes share the cores.
                const double cpu = cpu_ms.front();  // the least-disturbed run
                std::printf("attention-native isa=%d compute=%s N=%lld causal=%d ms=%.2f gflops=%.1f "
                            "min_cpu_ms=%.2f gflops_per_core=%.1f\n",
                            tw_isa_active(), compute == TW_BF16 ? "bf16" : "fp32", (long long)N,
                            causal, median, flops / median / 1e6, cpu, flops / cpu / 1e6);
            }
        }
    }
    return 0;
}
