package io.github.tilewise.djl.encoder.linear;

import ai.djl.ndarray.NDArray;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.lowp.Precision;

/**
 * Chooses the default fp32 implementation of a linear layer: the native fp32 kernel (a {@link
 * PackedLinear} on {@link Precision#FP32} weights) where the library is loaded and the CPU runs
 * AVX-512 or AVX2 + FMA, else PyTorch ({@link Fp32LinearOperator}). The system property {@code
 * tilewise.linear} ({@code auto}, {@code native} or {@code pytorch}) overrides the choice.
 */
public final class LinearOperators {

    private LinearOperators() {}

    /**
     * Creates the default fp32 operator over a layer's parameters.
     *
     * @param weight {@code [out, in]}
     * @param bias {@code [out]} or null
     * @param activation the activation after the bias
     * @return the operator
     */
    public static LinearOperator fp32(NDArray weight, NDArray bias, LinearActivation activation) {
        if (!nativeFp32()) {
            return new Fp32LinearOperator(weight, bias, activation);
        }
        PackedWeights packed =
                activation.isGated()
                        ? PackedWeights.packGated(
                                weight.toFloatArray(),
                                Math.toIntExact(weight.getShape().get(0)),
                                Math.toIntExact(weight.getShape().get(1)),
                                Precision.FP32,
                                127)
                        : PackedWeights.pack(weight, Precision.FP32);
        try {
            return PackedLinear.builder()
                    .setWeights(packed)
                    .optBias(bias == null ? null : bias.toFloatArray())
                    .optActivation(activation)
                    .build();
        } catch (RuntimeException e) {
            packed.close();
            throw e;
        }
    }

    /**
     * Returns whether {@link #fp32} makes native operators: the {@code tilewise.linear} property,
     * or by default whether the library is loaded and the CPU runs AVX-512 or AVX2 + FMA.
     *
     * @return true for the native fp32 kernel, false for PyTorch
     * @throws IllegalArgumentException if the property is not {@code auto}, {@code native} or
     *     {@code pytorch}
     */
    public static boolean nativeFp32() {
        String choice = System.getProperty("tilewise.linear", "auto");
        switch (choice) {
            case "native":
                return true;
            case "pytorch":
                return false;
            case "auto":
                return Tilewise.isNativeAvailable()
                        && (Tilewise.activeIsa() == Tilewise.Isa.AVX512
                                || Tilewise.activeIsa() == Tilewise.Isa.AVX2);
            default:
                throw new IllegalArgumentException(
                        "tilewise.linear must be auto, native or pytorch, got " + choice);
        }
    }
}
