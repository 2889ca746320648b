// Minimal test harness for native tests: CHECK macros that count failures (printing the first 30),
// random generators (fresh per run, or deterministic per seed), and the exit code ctest reads.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "tilewise/tilewise_gemm.h"

namespace twtest {

inline int& failures() {
    static int count = 0;
    return count;
}

inline int& checks() {
    static int count = 0;
    return count;
}

#define TW_CHECK(cond, ...)                                                        \
    do {                                                                           \
        ++twtest::checks();                                                        \
        if (!(cond) && ++twtest::failures() <= 30) {                               \
            std::fprintf(stderr, "FAILED %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            std::fprintf(stderr, __VA_ARGS__);                                     \
            std::fprintf(stderr, "\n");                                            \
        }                                                                          \
    } while (0)

/// splitmix64: deterministic per seed, different data for every case.
class Random {
   public:
    explicit Random(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    /// Uniform in [lo, hi).
    float uniform(float lo, float hi) {
        return lo + (hi - lo) * static_cast<float>((next() >> 40) * (1.0 / 16777216.0));
    }
    /// Roughly normal (sum of 4 uniforms), mean 0, standard deviation ~sigma.
    float normal(float sigma) {
        float s = 0;
        for (int i = 0; i < 4; ++i) s += uniform(-1.0f, 1.0f);
        return s * sigma * 0.866f;
    }

   private:
    uint64_t state_;
};

/// Owned buffers for m quantized rows of k values at the smallest stride, and the
/// tw_quantized_rows pointing into them (not copyable: `rows` points into the vectors).
struct QuantizedRows {
    QuantizedRows(int64_t m, int64_t k)
        : q(m * tw_quantized_row_stride(k)),
          scales(m),
          zeros(m),
          rows{m, k, q.data(), tw_quantized_row_stride(k), scales.data(), zeros.data(), 0} {}
    QuantizedRows(const QuantizedRows&) = delete;
    QuantizedRows& operator=(const QuantizedRows&) = delete;
    std::vector<uint8_t> q;
    std::vector<float> scales;
    std::vector<int32_t> zeros;
    tw_quantized_rows rows;
};

/// The tw_linear_params of y = x W^T with row strides ldx and ldy; the caller sets the rest.
inline tw_linear_params linear_params(int64_t m, const float* x, int64_t ldx,
                                      const tw_packed_weights* w, float* y, int64_t ldy) {
    tw_linear_params p{};
    p.m = m;
    p.x = x;
    p.ldx = ldx;
    p.w = w;
    p.y = y;
    p.ldy = ldy;
    return p;
}

/// Prints the summary line ctest users expect and returns the process exit code.
inline int finish(const char* name) {
    std::printf("%s: %d checks, %d passed, %d failed\n", name, checks(), checks() - failures(),
                failures());
    return failures() == 0 ? 0 : 1;
}

/// Fresh random data each run unless TILEWISE_TEST_SEED is set; the seed is printed so a failure
/// can be replayed.
inline std::mt19937_64& rng() {
    static std::mt19937_64 generator = [] {
        const char* env = std::getenv("TILEWISE_TEST_SEED");
        uint64_t seed = env ? std::strtoull(env, nullptr, 10) : std::random_device{}();
        std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
        return std::mt19937_64(seed);
    }();
    return generator;
}

inline float uniform(float lo, float hi) {
    return std::uniform_real_distribution<float>(lo, hi)(rng());
}

inline int64_t uniform_int(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng());
}

}  // namespace twtest
