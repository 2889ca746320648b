package io.github.tilewise.djl.encoder.checkpoint;

/** Widening of 16-bit floats (IEEE fp16 and bfloat16) stored in checkpoints to fp32. */
final class HalfFloats {

    private HalfFloats() {}

    /**
     * Widens an IEEE 754 binary16 value.
     *
     * @param h the 16 bits
     * @return the same value as fp32
     */
    static float fp16ToFloat(short h) {
        int bits = h & 0xffff;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x3ff;
        if (exp == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        }
        if (exp == 0) {
            if (mant == 0) {
                return Float.intBitsToFloat(sign);
            }
            // Subnormal: value = mant · 2^-24.
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    /**
     * Widens a bfloat16 value (the upper half of an fp32).
     *
     * @param b the 16 bits
     * @return the same value as fp32
     */
    static float bf16ToFloat(short b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }
}
