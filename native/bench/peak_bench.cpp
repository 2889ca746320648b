// Peak arithmetic rate of this CPU's dot-product instructions, for the "% of peak" figures in
// docs/BENCHMARKS.md: independent accumulator chains, one thread per core, no memory traffic.
//  - AVX-512: vfmadd231ps (16 MACs per zmm instruction; the fp32 attention and linear kernels),
//    vpdpbusd (u8 x s8 -> int32, 64 MACs) and vdpbf16ps (bf16 pairs -> fp32, 32 MACs), 16 chains
//    each;
//  - AVX2 (what the AVX2 kernels can reach): vfmadd231ps ymm (8 MACs; the fp32, bf16 and fp16
//    linear kernels), the plain u8 x s8 sequence vpmaddubsw + vpmaddwd + vpaddd (32 MACs, the
//    saturating one ONNX Runtime uses), and the exact sign-trick sequence of the Tilewise kernel,
//    vpsignb + vpmaddubsw + vpmaddwd + vpaddd (32 MACs; see gemm_int8_avx2.cpp).
// Usage: peak_bench [threads] (default 2). Prints
//   peak instr=<name> threads=<t> gops=<2 x MACs per second / 1e9>
// Compiled with target attributes, so the binary runs anywhere and reports "unsupported" where the
// CPU lacks an instruction set.
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

__attribute__((target("avx512f"))) long fma512_loop() {
    __m512 acc[16];
    for (auto& a : acc) a = _mm512_set1_ps(0.0f);
    __m512 x = _mm512_set1_ps(1e-7f), w = x;
    for (long i = 0; i < kIterations; ++i) {
#pragma GCC unroll 16
        for (auto& a : acc) a = _mm512_fmadd_ps(x, w, a);
        asm volatile("" : "+v"(x));
    }
    float sum = 0;
    for (auto& a : acc) sum += _mm512_reduce_add_ps(a);
    return static_cast<long>(sum);
}

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

// AVX2 loops: 12 chains (the 16 ymm registers also hold the operands and a temporary). The integer
// sequences are asm so that the compiler cannot share one product among the chains.
constexpr int kAvx2Chains = 12;

__attribute__((target("avx2,fma"))) long fma_loop() {
    __m256 acc[kAvx2Chains];
    for (auto& a : acc) a = _mm256_set1_ps(0.0f);
    __m256 x = _mm256_set1_ps(1e-7f), w = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < kIterations; ++i) {
#pragma GCC unroll 12
        for (auto& a : acc) a = _mm256_fmadd_ps(x, w, a);
        asm volatile("" : "+x"(x));
    }
    float sum = 0;
    alignas(32) float lanes[8];
    for (auto& a : acc) {
        _mm256_store_ps(lanes, a);
        sum += lanes[0];
    }
    return static_cast<long>(sum);
}

__attribute__((target("avx2"))) long maddubs_loop(bool sign_trick) {
    __m256i acc[kAvx2Chains];
    for (auto& a : acc) a = _mm256_setzero_si256();
    const __m256i x = _mm256_set1_epi8(3), w = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
    for (long i = 0; i < kIterations; ++i) {
#pragma GCC unroll 12
        for (auto& a : acc) {
            __m256i t;
            if (sign_trick) {
                asm volatile(
                    "vpsignb %[w], %[x], %[t]\n\t"
                    "vpmaddubsw %[t], %[x], %[t]\n\t"
                    "vpmaddwd %[ones], %[t], %[t]\n\t"
                    "vpaddd %[t], %[a], %[a]"
                    : [a] "+x"(a), [t] "=&x"(t)
                    : [x] "x"(x), [w] "x"(w), [ones] "x"(ones));
            } else {
                asm volatile(
                    "vpmaddubsw %[w], %[x], %[t]\n\t"
                    "vpmaddwd %[ones], %[t], %[t]\n\t"
                    "vpaddd %[t], %[a], %[a]"
                    : [a] "+x"(a), [t] "=&x"(t)
                    : [x] "x"(x), [w] "x"(w), [ones] "x"(ones));
            }
        }
    }
    long sum = 0;
    alignas(32) int32_t lanes[8];
    for (auto& a : acc) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), a);
        sum += lanes[0];
    }
    return sum;
}

long maddubs_plain_loop() {
    return maddubs_loop(false);
}
long maddubs_sign_loop() {
    return maddubs_loop(true);
}

/// Runs `loop` on `threads` threads; each iteration of it issues `chains` dot-product steps of
/// `macs_per_step` multiply-accumulates.
void run(const char* name, long (*loop)(), double macs_per_step, int chains, int threads) {
    std::vector<std::thread> pool;
    std::vector<long> sink(threads);
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { sink[t] = loop(); });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double ops = 2.0 * macs_per_step * chains * kIterations * threads;
    std::printf("peak instr=%s threads=%d gops=%.1f (checksum %ld)\n", name, threads, ops / s / 1e9,
                sink[0] & 1);
}

}  // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        run("vfmadd231ps-zmm", fma512_loop, 16, 16, threads);
    } else {
        std::printf("peak instr=vfmadd231ps-zmm unsupported\n");
    }
    if (__builtin_cpu_supports("avx512vnni")) {
        run("vpdpbusd-zmm", vnni_loop, 64, 16, threads);
    } else {
        std::printf("peak instr=vpdpbusd-zmm unsupported\n");
    }
    if (__builtin_cpu_supports("avx512bf16")) {
        run("vdpbf16ps-zmm", bf16_loop, 32, 16, threads);
    } else {
        std::printf("peak instr=vdpbf16ps-zmm unsupported\n");
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        run("vfmadd231ps-ymm", fma_loop, 8, kAvx2Chains, threads);
        run("vpmaddubsw+vpmaddwd+vpaddd-ymm", maddubs_plain_loop, 32, kAvx2Chains, threads);
        run("vpsignb+vpmaddubsw+vpmaddwd+vpaddd-ymm", maddubs_sign_loop, 32, kAvx2Chains, threads);
    } else {
        std::printf("peak instr=avx2 unsupported\n");
    }
    return 0;
}
