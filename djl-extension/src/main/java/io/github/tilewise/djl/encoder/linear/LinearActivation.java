package io.github.tilewise.djl.encoder.linear;

import ai.djl.ndarray.NDArray;
import io.github.tilewise.djl.encoder.HiddenActivation;

/** The element-wise function a {@link LinearOperator} applies after {@code x·Wᵀ + b}. */
public enum LinearActivation {
    /** Identity. */
    NONE,
    /** Exact GELU, {@code x/2·(1 + erf(x/√2))}. */
    GELU,
    /** GELU's tanh approximation, {@code x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))}. */
    GELU_TANH,
    /** {@code max(0, x)}. */
    RELU,
    /** {@code tanh(x)} (BERT's pooler). */
    TANH;

    private static final float SQRT_2_OVER_PI = (float) Math.sqrt(2.0 / Math.PI);

    /**
     * Returns the linear activation for a feed-forward activation.
     *
     * @param activation the feed-forward activation
     * @return the same function
     */
    public static LinearActivation of(HiddenActivation activation) {
        switch (activation) {
            case GELU:
                return GELU;
            case GELU_TANH:
                return GELU_TANH;
            case RELU:
                return RELU;
            default:
                throw new AssertionError(activation);
        }
    }

    /**
     * Applies the function with DJL ops. The result is attached to {@code x}'s manager; {@code x}
     * may be overwritten (it is the result when the function works in place).
     *
     * @param x the pre-activations, consumed
     * @return the activations
     */
    public NDArray applyInPlace(NDArray x) {
        switch (this) {
            case NONE:
                return x;
            case GELU:
                {
                    // PyTorch's default gelu is the exact (erf) form.
                    NDArray y = x.getNDArrayInternal().gelu();
                    x.close();
                    return y;
                }
            case RELU:
                {
                    NDArray y = x.getNDArrayInternal().relu();
                    x.close();
                    return y;
                }
            case TANH:
                {
                    NDArray y = x.tanh();
                    x.close();
                    return y;
                }
            case GELU_TANH:
                try (NDArray cube = x.pow(3)) {
                    cube.muli(0.044715f).addi(x).muli(SQRT_2_OVER_PI);
                    try (NDArray t = cube.tanh()) {
                        return x.muli(t.addi(1f)).muli(0.5f);
                    }
                }
            default:
                throw new AssertionError(this);
        }
    }
}
