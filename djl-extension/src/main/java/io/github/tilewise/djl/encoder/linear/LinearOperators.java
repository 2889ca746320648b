package io.github.tilewise.djl.encoder.linear;

import ai.djl.ndarray.NDArray;
import io.github.tilewise.djl.Tilewise;

/**
 * Chooses the default fp32 implementation of a linear layer: the native kernel ({@link
 * NativeFp32LinearOperator}) where the library is loaded and the CPU runs AVX-512 or AVX2 + FMA,
 * else PyTorch ({@link Fp32LinearOperator}). The system property {@code tilewise.linear} ({@code
 * auto}, {@code native} or {@code pytorch}) overrides the choice.
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
        String choice = System.getProperty("tilewise.linear", "auto");
        boolean nativeKernel;
        switch (choice) {
            case "native":
                nativeKernel = true;
                break;
            case "pytorch":
                nativeKernel = false;
                break;
            case "auto":
                nativeKernel =
                        Tilewise.isNativeAvailable()
                                && (Tilewise.activeIsa() == Tilewise.Isa.AVX512
                                        || Tilewise.activeIsa() == Tilewise.Isa.AVX2);
                break;
            default:
                throw new IllegalArgumentException(
                        "tilewise.linear must be auto, native or pytorch, got " + choice);
        }
        return nativeKernel
                ? new NativeFp32LinearOperator(weight, bias, activation)
                : new Fp32LinearOperator(weight, bias, activation);
    }
}
