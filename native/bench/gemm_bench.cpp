// Linear-layer throughput per precision on the BERT-base-like shapes of issue 4:
//   gemm precision=<p> M=<m> N=<n> K=<k> ms=<median> gops=<2MNK / time>
// Usage: gemm_bench [reps] [M] [threads] [precisions] [shapes] [fresh]: `precisions` a
// comma-separated list of the names below (default all), e.g. `bf16,fp16,fp32`; `shapes` a
// comma-separated list of NxK (default 384x384,1536x384,384x1536,1152x384), e.g. the encoder grid
// of issue 18
// `384x384,1152x384,1536x384,384x1536,768x768,2304x768,3072x768,768x3072,1152x768,768x1152`. Each
// line is the median of `reps` timed calls after two warm-ups; the time includes the per-call
// activation quantization (int8) or bf16 rounding, except for the `int8_prequantized*` lines: rows
// quantized once beforehand (tw_quantize_rows), as an encoder's chained layers hand them over - the
// kernel alone, plain, with the GELU epilogue, and with the LayerNorm epilogue (whole-row tasks).
// `int8_reduced_range*` lines: weights packed with codes within +-64 (tw_pack_weights_int8_range),
// which CPUs without VNNI run on the plain vpmaddubsw kernel. `fp32` is the fp32 linear layer
// (TW_F32 weights), `fp32+gelu` with the GELU epilogue (FFN1), `fp32+layernorm` with the LayerNorm
// epilogue (attention output and FFN2: whole-row tasks).
// A sixth argument `fresh` gives every timed call a newly allocated Y (malloc, then free after the
// call), as an encoder forward that allocates its outputs anew: past glibc's largest mmap threshold
// (32 MiB) these are new pages, and the time includes their first-touch page faults. Zen 5 VM,
// M = 8192, 3 interleaved rounds, medians: 2304 x 768 (72 MiB of Y) fp32 368 GFLOP/s with Y reused,
// 121 fresh; int8 prequantized 1,433 and 182 GOP/s; 768 x 768 (24 MiB, recycled by malloc) the same
// either way. `fresh-huge`: the same with madvise(MADV_HUGEPAGE) on each new Y (for kernels whose
// transparent huge pages are in `madvise` mode, as on this VM): 2304 x 768 int8 187 -> 866 GOP/s,
// fp32 133 -> 320 GFLOP/s (reused: 1,332 and 378; 3 interleaved rounds).
// TILEWISE_BENCH_INT8=avx2-maddubs or avx2-reduced forces that int8 kernel (with TILEWISE_ISA=avx2:
// the kernels of an AVX2 CPU without VNNI, such as Zen 3, on a CPU that has AVX-VNNI, which the
// automatic choice would take); the line `# int8 kernel=...` says which one ran.
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cpu/kernels.h"
#include "tilewise/tilewise_gemm.h"

namespace {

struct Case {
    const char* name;
    tw_dtype format;
    tw_activation_quant quant;
    bool prequantized;  // rows quantized once beforehand (tw_quantize_rows): the kernel alone
    int epilogue;       // TW_EPILOGUE_* beyond the bias
    int weight_max;     // int8 weight codes within +-weight_max (127: tw_pack_weights)
};

/// Whether `name` is in the comma-separated `list` (null: every name).
bool selected(const char* list, const char* name) {
    if (list == nullptr) return true;
    const std::string l = std::string(",") + list + ",";
    return l.find(std::string(",") + name + ",") != std::string::npos;
}

double median_ms(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

/// Median ms of `reps` calls of `call` after two warm-ups; prints the failure and returns -1 if a
/// call fails.
template <typename Call>
double time_calls(int reps, Call call) {
    std::vector<double> times;
    for (int r = 0; r < reps + 2; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        if (call() != TW_OK) {
            std::fprintf(stderr, "linear failed: %s\n", tw_last_error());
            return -1;
        }
        const auto t1 = std::chrono::steady_clock::now();
        if (r >= 2) times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    return median_ms(times);
}

void print_line(const char* name, int64_t M, int64_t N, int64_t K, double ms) {
    std::printf("gemm precision=%s M=%lld N=%lld K=%lld ms=%.3f gops=%.1f\n", name,
                static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K), ms,
                2.0 * M * N * K / (ms * 1e6));
}

}  // namespace

int main(int argc, char** argv) {
    const int reps = argc > 1 ? std::atoi(argv[1]) : 20;
    const int64_t M = argc > 2 ? std::atoll(argv[2]) : 4096;
    if (argc > 3) tw_set_num_threads(std::atoi(argv[3]));
    const char* only = argc > 4 ? argv[4] : nullptr;
    const Case cases[] = {
        {"int8", TW_I8, TW_QUANT_ASYMMETRIC, false, 0, 127},
        {"int8_prequantized", TW_I8, TW_QUANT_ASYMMETRIC, true, 0, 127},
        {"int8_prequantized+gelu", TW_I8, TW_QUANT_ASYMMETRIC, true, TW_EPILOGUE_GELU, 127},
        {"int8_prequantized+layernorm", TW_I8, TW_QUANT_ASYMMETRIC, true, TW_EPILOGUE_LAYERNORM,
         127},
        {"int8_reduced_range", TW_I8, TW_QUANT_ASYMMETRIC, false, 0, TW_INT8_REDUCED_WEIGHT_MAX},
        {"int8_reduced_range_prequantized", TW_I8, TW_QUANT_ASYMMETRIC, true, 0,
         TW_INT8_REDUCED_WEIGHT_MAX},
        {"int8_weight_only", TW_I8, TW_QUANT_NONE, false, 0, 127},
        {"bf16", TW_BF16, TW_QUANT_NONE, false, 0, 127},
        {"fp16", TW_F16, TW_QUANT_NONE, false, 0, 127},
        {"fp32", TW_F32, TW_QUANT_NONE, false, 0, 127},
        {"fp32+gelu", TW_F32, TW_QUANT_NONE, false, TW_EPILOGUE_GELU, 127},
        {"fp32+layernorm", TW_F32, TW_QUANT_NONE, false, TW_EPILOGUE_LAYERNORM, 127}};
    // MiniLM / BERT-base-like layers: attention output (and the N = K = 384), FFN1, FFN2,
    // fused QKV.
    std::vector<std::pair<int64_t, int64_t>> shapes = {
        {384, 384}, {1536, 384}, {384, 1536}, {1152, 384}};
    if (argc > 5) {
        shapes.clear();
        for (const char* item = argv[5]; *item != '\0';) {
            char* end = nullptr;
            const long long n = std::strtoll(item, &end, 10);
            const long long k = *end == 'x' ? std::strtoll(end + 1, &end, 10) : 0;
            if (n <= 0 || k <= 0 || (*end != ',' && *end != '\0')) {
                std::fprintf(stderr, "bad shape list '%s': want NxK[,NxK...]\n", argv[5]);
                return 2;
            }
            shapes.emplace_back(n, k);
            item = *end == ',' ? end + 1 : end;
        }
    }
    if (const char* forced = std::getenv("TILEWISE_BENCH_INT8")) {
        const bool reduced = std::strcmp(forced, "avx2-reduced") == 0;
        if (!reduced && std::strcmp(forced, "avx2-maddubs") != 0) {
            std::fprintf(stderr, "TILEWISE_BENCH_INT8 must be avx2-maddubs or avx2-reduced\n");
            return 2;
        }
        if (!tw::force_int8_kernel(reduced ? tw::Int8Kernel::kAvx2Reduced
                                           : tw::Int8Kernel::kAvx2Maddubs)) {
            std::fprintf(stderr, "%s is not available on this CPU\n", forced);
            return 2;
        }
    }
    std::printf("# int8 kernel=%s\n", tw::kernels().linear.int8.name);
    const bool huge_y = argc > 6 && std::strcmp(argv[6], "fresh-huge") == 0;
    const bool fresh_y = huge_y || (argc > 6 && std::strcmp(argv[6], "fresh") == 0);
    std::printf("# isa=%d threads=%d y=%s\n", static_cast<int>(tw_isa_active()), tw_num_threads(),
                huge_y    ? "fresh-huge"
                : fresh_y ? "fresh"
                          : "reused");
    for (const auto& [N, K] : shapes) {
        std::vector<float> x(M * K), w(N * K), bias(N), y(M * N);
        uint64_t s = 42;
        auto rnd = [&s] {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            return static_cast<float>((s >> 40) & 0xffff) / 65536.0f - 0.5f;
        };
        for (auto& v : x) v = rnd();
        for (auto& v : w) v = rnd() * 0.1f;
        for (auto& v : bias) v = rnd();
        for (const Case& c : cases) {
            if (!selected(only, c.name)) continue;
            tw_packed_weights* packed = nullptr;
            const tw_status packed_ok =
                c.weight_max < 127
                    ? tw_pack_weights_int8_range(N, K, w.data(), K, c.weight_max, &packed)
                    : tw_pack_weights(c.format, N, K, w.data(), K, &packed);
            if (packed_ok != TW_OK) {
                std::fprintf(stderr, "pack failed: %s\n", tw_last_error());
                return 1;
            }
            tw_linear_params p{};
            p.m = M;
            p.x = x.data();
            p.ldx = K;
            p.act_quant = c.quant;
            p.w = packed;
            p.bias = bias.data();
            p.y = y.data();
            p.ldy = N;
            const int64_t ldq = tw_quantized_row_stride(K);
            std::vector<uint8_t> codes(M * ldq);
            std::vector<float> scales(M);
            std::vector<int32_t> zeros(M);
            tw_quantized_rows rows{M, K, codes.data(), ldq, scales.data(), zeros.data(), 0};
            p.epilogue = c.epilogue;
            p.ln_eps = 1e-12f;
            if (c.prequantized) {
                if (tw_quantize_rows(x.data(), K, c.quant, &rows) != TW_OK) {
                    std::fprintf(stderr, "quantize failed: %s\n", tw_last_error());
                    return 1;
                }
                p.xq = &rows;
            }
            const double ms = time_calls(reps, [&] {
                if (!fresh_y) return tw_linear(&p);
                tw_linear_params q = p;
                q.y = static_cast<float*>(std::malloc(sizeof(float) * M * N));
                if (q.y == nullptr) return TW_ERR_OUT_OF_MEMORY;
                if (huge_y) {
                    // From the page holding Y's start (malloc's header precedes it) to its end.
                    const uintptr_t first = reinterpret_cast<uintptr_t>(q.y) & ~uintptr_t{4095};
                    const size_t bytes = reinterpret_cast<uintptr_t>(q.y + M * N) - first;
                    madvise(reinterpret_cast<void*>(first), bytes, MADV_HUGEPAGE);
                }
                const tw_status status = tw_linear(&q);
                std::free(q.y);
                return status;
            });
            if (ms < 0) return 1;
            print_line(c.name, M, N, K, ms);
            tw_packed_weights_free(packed);
        }
    }
    return 0;
}
