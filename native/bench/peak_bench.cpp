// Peak arithmetic rate of this CPU's dot-product instructions, for the "% of peak" figures in
// docs/BENCHMARKS.md: 16 independent accumulator chains of vpdpbusd (u8 x s8 -> int32, 64 MACs per
// zmm instruction) and of vdpbf16ps (bf16 pairs -> fp32, 32 MACs), one thread per core, no memory
// traffic. Usage: peak_bench [threads] (default 2). Prints
//   peak instr=<name> threads=<t> gops=<2 x MACs per second / 1e9>
// Needs AVX512-VNNI / AVX512-BF16; compiled with target attributes, so the binary runs anywhere
// and reports "unsupported" where the CPU lacks them.
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

// GCC 12 warns about the _mm512_undefined_*() inside its own reduce intrinsics; every lane is set.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

constexpr long kIterations = 100000000;

__attribute__((target("avx512f,avx512vnni"))) long vnni_loop() {
    __m512i acc[16];
    for (auto& a : acc) a = _mm512_set1_epi32(1);
    __m512i x = _mm512_set1_epi32(0x01010101), w = _mm512_set1_epi32(0x02020202);
    for (long i = 0; i < kIterations; ++i) {
#pragma GCC unroll 16
        for (auto& a : acc) a = _mm512_dpbusd_epi32(a, x, w);
        asm volatile("" : "+v"(x));  // keeps the loop from being folded
    }
    long sum = 0;
    for (auto& a : acc) sum += _mm512_reduce_add_epi32(a);
    return sum;
}

__attribute__((target("avx512f,avx512bf16"))) long bf16_loop() {
    __m512 acc[16];
    for (auto& a : acc) a = _mm512_set1_ps(0.0f);
    __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), w = x;
    for (long i = 0; i < kIterations; ++i) {
#pragma GCC unroll 16
        for (auto& a : acc) a = _mm512_dpbf16_ps(a, x, w);
        asm volatile("" : "+v"(x));
    }
    float sum = 0;
    for (auto& a : acc) sum += _mm512_reduce_add_ps(a);
    return static_cast<long>(sum);
}

void run(const char* name, long (*loop)(), double macs_per_instruction, int threads) {
    std::vector<std::thread> pool;
    std::vector<long> sink(threads);
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { sink[t] = loop(); });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double ops = 2.0 * macs_per_instruction * 16.0 * kIterations * threads;
    std::printf("peak instr=%s threads=%d gops=%.1f (checksum %ld)\n", name, threads, ops / s / 1e9,
                sink[0] & 1);
}

}  // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni")) {
        run("vpdpbusd-zmm", vnni_loop, 64, threads);
    } else {
        std::printf("peak instr=vpdpbusd-zmm unsupported\n");
    }
    if (__builtin_cpu_supports("avx512bf16")) {
        run("vdpbf16ps-zmm", bf16_loop, 32, threads);
    } else {
        std::printf("peak instr=vdpbf16ps-zmm unsupported\n");
    }
    return 0;
}
