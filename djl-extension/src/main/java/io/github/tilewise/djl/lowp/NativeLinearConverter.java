package io.github.tilewise.djl.lowp;

import io.github.tilewise.djl.encoder.linear.LinearBlock;
import io.github.tilewise.djl.encoder.linear.LinearOperator;
import io.github.tilewise.djl.encoder.linear.PackedLinear;
import io.github.tilewise.djl.encoder.linear.PackedWeights;
import io.github.tilewise.djl.jni.LibUtils;

/**
 * The built-in converter: packs a layer's weights into native memory and returns a {@link
 * PackedLinear} (INT8, INT8_WEIGHT_ONLY, BF16, FP16). INT8 weights get the code range of {@link
 * Int8WeightRange#configured()}. Needs the native library.
 */
public final class NativeLinearConverter implements LinearConverter {

    /** Creates the converter (for {@link java.util.ServiceLoader}). */
    public NativeLinearConverter() {}

    @Override
    public String getName() {
        return "native";
    }

    @Override
    public boolean supports(Precision precision) {
        return precision.isLowPrecision() && LibUtils.isAvailable();
    }

    @Override
    public LinearOperator convert(LinearBlock layer, Precision precision, float[] smoothing) {
        int out = layer.getOutFeatures();
        int in = layer.getInFeatures();
        float[] w = layer.getWeightAsFloats();
        if (smoothing != null) {
            // W·diag(s): column i of every row scaled by s[i]; the layer divides its input by s.
            for (int o = 0; o < out; o++) {
                for (int i = 0; i < in; i++) {
                    w[o * in + i] *= smoothing[i];
                }
            }
        }
        PackedWeights packed =
                precision == Precision.INT8
                        ? PackedWeights.packInt8(
                                w,
                                out,
                                in,
                                Int8WeightRange.configured().weightMaxFor(layer.getName()))
                        : PackedWeights.pack(w, out, in, precision);
        return PackedLinear.builder()
                .setWeights(packed)
                .optBias(layer.getBiasAsFloats())
                .optActivation(layer.getActivation())
                .optInputScales(smoothing)
                .build();
    }
}
