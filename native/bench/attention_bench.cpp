// Native timing of the fused attention (no JVM): median of repeated calls, GFLOP/s counted as
// 4·B·H·Nq·Nk·D (half for causal). The Java benchmark in integration-tests compares against peers;
// this one is for kernel work.
//
// Usage:
//   attention_bench [N ...]    B=1 H=8 D=64, [B, H, N, D] fp32, causal and not (default: N = 2048
//                              and 8192)
//   attention_bench --bshd D [N ...]  as the Java attention-bench's plain case: B=1 H=8, head dim
//                              D, [B, N, H, D] fp32, non-causal
//   attention_bench --encoder  the MiniLM encoder's attention: B=32 H=12 N=128 D=32, non-causal,
//                              q/k/v read in place from one fused projection [B, N, 3, H, D], o
//                              written as [B, N, H, D]; where per-tile and per-call fixed costs
//                              dominate
//   attention_bench --window [W [N]]  a sliding-window layer against a global one: B=1 H=12
//                              N=8192 D=64 [B, H, N, D] fp32 data, window W = 128 keys (W/2 each
//                              side), non-causal; prints both medians and global / window (the
//                              issue's target: a window layer costs <= 1/16 of a global one)
// All modes time fp32 and bf16 compute on fp32 data. TILEWISE_THREADS sets the pool size.
// min_cpu_ms is the process CPU time of the least-disturbed call. With more than one worker it
// under-counts: the pool's workers stay running (spinning) after a call, and Linux folds a running
// thread's time into the process clock only at scheduler ticks, so a call of a few ms can miss most
// of the workers' share. Per-core figures for kernel work: TILEWISE_THREADS=1.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "tilewise/tilewise.h"

namespace {

double cpu_time_ms() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct Timing {
    double median_ms;   // wall clock
    double min_cpu_ms;  // process CPU time of the least-disturbed call
};

/// Times `reps` calls after one warm-up; false (error printed) if a call fails.
bool time_calls(const tw_attention_params& p, int reps, Timing* timing) {
    std::vector<double> ms, cpu_ms;
    for (int r = 0; r < reps + 1; ++r) {
        const double c0 = cpu_time_ms();
        auto t0 = std::chrono::steady_clock::now();
        if (tw_attention_forward(&p) != TW_OK) {
            std::fprintf(stderr, "error: %s\n", tw_last_error());
            return false;
        }
        auto t1 = std::chrono::steady_clock::now();
        if (r > 0) {
            ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            cpu_ms.push_back(cpu_time_ms() - c0);
        }
    }
    std::sort(ms.begin(), ms.end());
    std::sort(cpu_ms.begin(), cpu_ms.end());
    timing->median_ms = ms[ms.size() / 2];
    // CPU time shows the kernel's own rate even when other processes share the cores.
    timing->min_cpu_ms = cpu_ms.front();
    return true;
}

void fill(std::vector<float>& x, std::mt19937& rng) {
    std::uniform_real_distribution<float> dist(-1, 1);
    for (auto& e : x) e = dist(rng);
}

/// B=1 H=8 over the given lengths: head dim D, [B, H, N, D] layout (the original bench lines) or,
/// with seq_major, [B, N, H, D] (the Java attention-bench's layout, where each key row of a head
/// lies H·D floats from the next); causal and not unless plain_only.
int bench_lengths(const std::vector<int64_t>& lengths, int64_t D = 64, bool seq_major = false,
                  bool plain_only = false) {
    const int64_t B = 1, H = 8;
    std::mt19937 rng(1);
    for (int64_t N : lengths) {
        std::vector<float> q(B * H * N * D), k(q.size()), v(q.size()), o(q.size());
        for (auto* x : {&q, &k, &v}) fill(*x, rng);
        for (int causal = 0; causal <= (plain_only ? 0 : 1); ++causal) {
            for (tw_dtype compute : {TW_F32, TW_BF16}) {
                tw_attention_params p{};
                p.dtype = TW_F32;
                p.compute = compute;
                p.batch = B;
                p.q_heads = p.kv_heads = H;
                p.q_len = p.kv_len = N;
                p.head_dim = D;
                p.q = q.data();
                p.k = k.data();
                p.v = v.data();
                p.o = o.data();
                for (int64_t* s : {p.q_strides, p.k_strides, p.v_strides, p.o_strides}) {
                    s[0] = H * N * D;
                    s[1] = seq_major ? D : N * D;
                    s[2] = seq_major ? H * D : D;
                }
                p.scale = 1.0f / std::sqrt(float(D));
                p.causal = causal;
                Timing t;
                if (!time_calls(p, N >= 8192 ? 5 : 20, &t)) return 1;
                const double flops = 4.0 * B * H * N * N * D / (causal ? 2 : 1);
                std::printf(
                    "attention-native isa=%d layout=%s compute=%s D=%lld N=%lld causal=%d ms=%.2f "
                    "gflops=%.1f min_cpu_ms=%.2f gflops_per_core=%.1f\n",
                    tw_isa_active(), seq_major ? "bshd" : "bhsd",
                    compute == TW_BF16 ? "bf16" : "fp32", (long long)D, (long long)N, causal,
                    t.median_ms, flops / t.median_ms / 1e6, t.min_cpu_ms,
                    flops / t.min_cpu_ms / 1e6);
            }
        }
    }
    return 0;
}

/// The all-MiniLM-L6 encoder's attention as the encoder calls it: B=32 sequences of 128 tokens,
/// 12 heads of 32, q/k/v strided views of the fused QKV projection output.
int bench_encoder() {
    const int64_t B = 32, H = 12, N = 128, D = 32;
    std::mt19937 rng(1);
    std::vector<float> qkv(B * N * 3 * H * D), o(B * N * H * D);
    fill(qkv, rng);
    for (tw_dtype compute : {TW_F32, TW_BF16}) {
        tw_attention_params p{};
        p.dtype = TW_F32;
        p.compute = compute;
        p.batch = B;
        p.q_heads = p.kv_heads = H;
        p.q_len = p.kv_len = N;
        p.head_dim = D;
        p.q = qkv.data();
        p.k = qkv.data() + H * D;
        p.v = qkv.data() + 2 * H * D;
        p.o = o.data();
        for (int64_t* s : {p.q_strides, p.k_strides, p.v_strides}) {
            s[0] = N * 3 * H * D;
            s[1] = D;
            s[2] = 3 * H * D;
        }
        p.o_strides[0] = N * H * D;
        p.o_strides[1] = D;
        p.o_strides[2] = H * D;
        p.scale = 1.0f / std::sqrt(float(D));
        Timing t;
        if (!time_calls(p, 30, &t)) return 1;
        const double flops = 4.0 * B * H * N * N * D;
        std::printf(
            "attention-native shape=encoder layout=fused-qkv isa=%d compute=%s B=%lld "
            "H=%lld N=%lld D=%lld causal=0 ms=%.2f gflops=%.1f min_cpu_ms=%.2f "
            "gflops_per_core=%.1f\n",
            tw_isa_active(), compute == TW_BF16 ? "bf16" : "fp32", (long long)B, (long long)H,
            (long long)N, (long long)D, t.median_ms, flops / t.median_ms / 1e6, t.min_cpu_ms,
            flops / t.min_cpu_ms / 1e6);
    }
    return 0;
}

/// Global against sliding-window attention at one long length, fp32 and bf16 compute.
int bench_window(int64_t window, int64_t N) {
    const int64_t B = 1, H = 12, D = 64;
    std::mt19937 rng(1);
    std::vector<float> q(B * H * N * D), k(q.size()), v(q.size()), o(q.size());
    for (auto* x : {&q, &k, &v}) fill(*x, rng);
    for (tw_dtype compute : {TW_F32, TW_BF16}) {
        tw_attention_params p{};
        p.dtype = TW_F32;
        p.compute = compute;
        p.batch = B;
        p.q_heads = p.kv_heads = H;
        p.q_len = p.kv_len = N;
        p.head_dim = D;
        p.q = q.data();
        p.k = k.data();
        p.v = v.data();
        p.o = o.data();
        for (int64_t* s : {p.q_strides, p.k_strides, p.v_strides, p.o_strides}) {
            s[0] = H * N * D;
            s[1] = N * D;
            s[2] = D;
        }
        p.scale = 0.125f;
        Timing global, local;
        if (!time_calls(p, 5, &global)) return 1;
        p.has_window = 1;
        p.window_left = window / 2;
        p.window_right = window / 2;
        if (!time_calls(p, 21, &local)) return 1;
        std::printf(
            "attention-native window=%lld isa=%d compute=%s B=%lld H=%lld N=%lld D=%lld "
            "global_ms=%.2f window_ms=%.3f global_over_window=%.1f\n",
            (long long)window, tw_isa_active(), compute == TW_BF16 ? "bf16" : "fp32", (long long)B,
            (long long)H, (long long)N, (long long)D, global.median_ms, local.median_ms,
            global.median_ms / local.median_ms);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (const char* threads = std::getenv("TILEWISE_THREADS")) {
        tw_set_num_threads(std::atoi(threads));
    }
    if (argc == 2 && std::strcmp(argv[1], "--encoder") == 0) return bench_encoder();
    if (argc >= 2 && std::strcmp(argv[1], "--window") == 0) {
        const int64_t window = argc >= 3 ? std::atoll(argv[2]) : 128;
        const int64_t n = argc >= 4 ? std::atoll(argv[3]) : 8192;
        if (window < 0 || n < 1) {
            std::fprintf(stderr, "usage: attention_bench --window [W [N]]\n");
            return 2;
        }
        return bench_window(window, n);
    }
    // --bshd D N ...: the Java benchmark's plain case, [B, N, H, D] with head dim D.
    const bool seq_major = argc >= 3 && std::strcmp(argv[1], "--bshd") == 0;
    const int64_t D = seq_major ? std::atoll(argv[2]) : 64;
    if (D < 1 || D > TW_ATTENTION_MAX_HEAD_DIM) {
        std::fprintf(stderr, "attention_bench: head dim %lld is out of range\n", (long long)D);
        return 2;
    }
    std::vector<int64_t> lengths;
    for (int i = seq_major ? 3 : 1; i < argc; ++i) {
        const int64_t n = std::atoll(argv[i]);
        if (n < 1) {
            std::fprintf(stderr,
                         "usage: attention_bench [--encoder | --window [W [N]] | --bshd D N ... | "
                         "N ...]\n");
            return 2;
        }
        lengths.push_back(n);
    }
    if (lengths.empty()) lengths = {2048, 8192};
    return bench_lengths(lengths, D, seq_major, seq_major);
}
