package io.github.tilewise.djl.lowp;

import io.github.tilewise.djl.jni.LinearNative;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * The code range of an INT8 layer's weights, chosen when a float model is converted.
 *
 * <p>CPUs with VNNI multiply any int8 weights at full speed. Plain AVX2 (AMD Zen 2/3, Intel before
 * Ice Lake) cannot: its {@code vpmaddubsw} sums pairs of u8×s8 products into saturating int16, so
 * full-range weights need an exact but slower "sign trick" kernel. Weights within ±64 cannot
 * saturate and run on the plain sequence, about 1.3 times faster at the encoder shapes ({@code
 * gemm_bench}), at the cost of one bit of weight precision (ONNX Runtime's {@code reduce_range}).
 * {@link #AUTO}, the default, takes that trade only where it is measured to keep the accuracy
 * targets (docs/BENCHMARKS.md).
 *
 * <p>Set with the system property {@code tilewise.int8.weightRange} ({@code auto}, {@code full} or
 * {@code reduced}); it applies to conversions from float weights, not to imported pre-quantized
 * checkpoints, whose codes are kept as they are.
 */
public enum Int8WeightRange {
    /** Codes in ±127: 8-bit weights, the most accurate; the sign-trick kernel on plain AVX2. */
    FULL,
    /** Codes in ±64 for every INT8 layer: the fastest on plain AVX2, slightly less accurate. */
    REDUCED,
    /**
     * {@link #REDUCED} for the encoder layers' attention projections and feed-forward input layers
     * where the CPU has no VNNI; {@link #FULL} for the feed-forward output projections (their
     * inputs, after GELU, carry the activation outliers that SmoothQuant moves into the weights:
     * reduced there, MiniLM's minimum cosine fell from 0.992 to 0.989), for other layers, and on
     * CPUs where reduced weights gain nothing.
     */
    AUTO;

    /** The system property that selects the range. */
    public static final String PROPERTY = "tilewise.int8.weightRange";

    /** Encoder layers whose inputs tolerate reduced weights (BertLayer's layer names). */
    private static final Pattern TOLERANT_LAYERS =
            Pattern.compile("encoder\\.layer\\.\\d+\\.(attention\\..*|intermediate\\.dense)");

    /**
     * Returns the range set by {@link #PROPERTY} (default {@link #AUTO}).
     *
     * @return the configured range
     * @throws IllegalArgumentException if the property names no range
     */
    public static Int8WeightRange configured() {
        String value = System.getProperty(PROPERTY, "auto");
        try {
            return valueOf(value.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(
                    PROPERTY + " must be auto, full or reduced, got '" + value + "'", e);
        }
    }

    /**
     * Returns the largest weight code a layer gets.
     *
     * @param layerName the layer's name, e.g. {@code encoder.layer.0.attention.self.qkv}
     * @return 127, or {@link LinearNative#REDUCED_WEIGHT_MAX}
     */
    public int weightMaxFor(String layerName) {
        switch (this) {
            case FULL:
                return 127;
            case REDUCED:
                return LinearNative.REDUCED_WEIGHT_MAX;
            default:
                return reducedIsFaster() && TOLERANT_LAYERS.matcher(layerName).matches()
                        ? LinearNative.REDUCED_WEIGHT_MAX
                        : 127;
        }
    }

    /** Whether full-range weights run on the sign-trick kernel here (plain AVX2, no VNNI). */
    private static boolean reducedIsFaster() {
        return Precision.INT8.kernelName().equals("avx2-maddubs-sign");
    }
}
