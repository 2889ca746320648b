// Scalar fp16/bf16 <-> fp32 conversions for portable code. Everything here has internal linkage
// (static inline) so ISA-specific files can include it without sharing symbols with other files.
#pragma once

#include <cstdint>
#include <cstring>

namespace tw {

static inline float bits_to_float(uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
}

static inline uint32_t float_to_bits(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof(bits));
    return bits;
}

static inline float bf16_to_float(uint16_t h) {
    return bits_to_float(static_cast<uint32_t>(h) << 16);
}

/// Round to nearest even; NaN stays NaN.
static inline uint16_t float_to_bf16(float f) {
    uint32_t bits = float_to_bits(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return static_cast<uint16_t>(bits >> 16);
}

static inline float fp16_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1f) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));
    if (exponent == 0) {
        if (mantissa == 0) return bits_to_float(sign);
        // Subnormal: value = mantissa * 2^-24.
        float value = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
        return sign ? -value : value;
    }
    return bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

/// Round to nearest even, with overflow to infinity and gradual underflow.
static inline uint16_t float_to_fp16(float f) {
    const uint32_t bits = float_to_bits(f);
    const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    const uint32_t abs = bits & 0x7fffffffu;
    if (abs > 0x7f800000u) return sign | 0x7e00u;   // NaN
    if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: infinity
    if (abs < 0x38800000u) {                        // below the smallest normal 2^-14
        // Subnormal or zero: value in units of 2^-24, rounded to nearest even.
        float scaled = bits_to_float(abs) * 16777216.0f;  // exact: multiplies by 2^24
        uint32_t q = static_cast<uint32_t>(scaled);
        float rest = scaled - static_cast<float>(q);
        if (rest > 0.5f || (rest == 0.5f && (q & 1u))) ++q;
        return sign | static_cast<uint16_t>(q);
    }
    uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
    return sign | static_cast<uint16_t>((rounded - (112u << 23)) >> 13);
}

}  // namespace tw
