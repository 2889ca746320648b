package io.github.tilewise.djl.attention;

/**
 * Rounding of floats to IEEE fp16 and bfloat16 values (round to nearest, ties to even), written
 * from the formats' definitions so that the tests do not depend on the code under test.
 */
final class HalfFloats {

    private static final float FP16_MIN_NORMAL = 0x1p-14f;
    private static final float FP16_OVERFLOW = 65520f; // halfway between 65504 and 2^16

    private HalfFloats() {}

    /** The fp16 value nearest to x (ties to even), as a float. */
    static float roundToFp16(float x) {
        if (Float.isNaN(x) || Float.isInfinite(x)) {
            return x;
        }
        float abs = Math.abs(x);
        if (abs >= FP16_OVERFLOW) {
            return Math.copySign(Float.POSITIVE_INFINITY, x);
        }
        if (abs < FP16_MIN_NORMAL) {
            // Subnormals are multiples of 2^-24; the products and rint are exact in float.
            return (float) (Math.rint(x * 0x1p24) * 0x1p-24);
        }
        // Keep 10 of the 23 mantissa bits: add half an ulp (minus one on even) and truncate.
        int bits = Float.floatToRawIntBits(x);
        bits += 0xfff + ((bits >>> 13) & 1);
        return Float.intBitsToFloat(bits & ~0x1fff);
    }

    /** The bfloat16 value nearest to x (ties to even), as a float. */
    static float roundToBf16(float x) {
        if (Float.isNaN(x) || Float.isInfinite(x)) {
            return x;
        }
        int bits = Float.floatToRawIntBits(x);
        bits += 0x7fff + ((bits >>> 16) & 1);
        return Float.intBitsToFloat(bits & 0xffff0000);
    }
}
