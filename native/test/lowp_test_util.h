// Minimal test helpers for the native tests: a seeded random generator and checks that count
// failures (a test executable exits non-zero if any check failed).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>

namespace twtest {

inline int& failures() {
    static int count = 0;
    return count;
}
inline int& checks() {
    static int count = 0;
    return count;
}

#define TW_CHECK(cond, ...)                                                  \
    do {                                                                     \
        ++twtest::checks();                                                  \
        if (!(cond)) {                                                       \
            ++twtest::failures();                                            \
            if (twtest::failures() <= 30) {                                  \
                std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
                std::fprintf(stderr, __VA_ARGS__);                           \
                std::fprintf(stderr, "\n");                                  \
            }                                                                \
        }                                                                    \
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

inline int finish(const char* name) {
    std::printf("%s: %d checks, %d failures\n", name, checks(), failures());
    return failures() == 0 ? 0 : 1;
}

}  // namespace twtest
