package io.github.tilewise.djl.encoder.linear;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.nn.Activation;
import io.github.tilewise.djl.encoder.HiddenActivation;

/**
 * The function a {@link LinearOperator} applies after {@code x·Wᵀ + b}: element-wise, or gated.
 *
 * <p>A gated activation ({@link #isGated()}: {@link #GATED_GELU} for GeGLU, {@link
 * #GATED_GELU_TANH}, {@link #GATED_SILU} for SwiGLU) reads the layer's {@code 2·ff} outputs as
 * {@code [u | g]}, {@code u} the first {@code ff} and {@code g} the last, and produces the {@code
 * ff} values {@code f(u) ⊙ g}, {@code f} its {@link #gateFunction()}: a gated feed-forward's first
 * projection in one layer, with the checkpoint's {@code [2·ff, in]} weight as it is.
 */
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
    TANH,
    /** SiLU (swish), {@code x·sigmoid(x)}. */
    SILU,
    /** GeGLU: {@code gelu(u) ⊙ g} with the exact GELU; halves the width. */
    GATED_GELU,
    /** {@code gelu_tanh(u) ⊙ g}; halves the width. */
    GATED_GELU_TANH,
    /** SwiGLU: {@code silu(u) ⊙ g}; halves the width. */
    GATED_SILU;

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
     * Returns the gated form of a feed-forward activation ({@code f(u) ⊙ g}).
     *
     * @param activation the function of the first half
     * @return {@link #GATED_GELU}, {@link #GATED_GELU_TANH} or {@link #GATED_SILU}
     * @throws IllegalArgumentException for an activation without a gated form (ReLU)
     */
    public static LinearActivation gated(HiddenActivation activation) {
        switch (activation) {
            case GELU:
                return GATED_GELU;
            case GELU_TANH:
                return GATED_GELU_TANH;
            default:
                throw new IllegalArgumentException("no gated form of " + activation);
        }
    }

    /**
     * Returns whether this activation is gated: the layer's {@code 2·ff} outputs become {@code ff}.
     *
     * @return true for the {@code GATED_*} values
     */
    public boolean isGated() {
        return this == GATED_GELU || this == GATED_GELU_TANH || this == GATED_SILU;
    }

    /**
     * Returns the function a gated activation applies to its first half.
     *
     * @return GELU, GELU_TANH or SILU for the gated values, else this activation itself
     */
    public LinearActivation gateFunction() {
        switch (this) {
            case GATED_GELU:
                return GELU;
            case GATED_GELU_TANH:
                return GELU_TANH;
            case GATED_SILU:
                return SILU;
            default:
                return this;
        }
    }

    /**
     * Returns the output width of a layer with {@code outFeatures} weight rows.
     *
     * @param outFeatures the weight's rows
     * @return {@code outFeatures / 2} for a gated activation, else {@code outFeatures}
     */
    public int outputWidth(int outFeatures) {
        return isGated() ? outFeatures / 2 : outFeatures;
    }

    /**
     * Applies the function with DJL ops: element-wise, or for a gated activation {@code f(u) ⊙ g}
     * over {@code x = [u | g]} along the last axis (the result has half its width). The result is
     * attached to {@code x}'s manager; {@code x} may be overwritten (it is the result when the
     * function works in place).
     *
     * @param x the pre-activations, consumed
     * @return the activations
     */
    public NDArray applyInPlace(NDArray x) {
        if (isGated()) {
            long width = x.getShape().get(x.getShape().dimension() - 1);
            long ff = width / 2;
            NDArray u = x.get(new NDIndex("..., :{}", ff));
            try (NDArray g = x.get(new NDIndex("..., {}:", ff))) {
                x.close(); // the slices keep what they use
                return gateFunction().applyInPlace(u).muli(g);
            }
        }
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
            case SILU:
                try (NDArray s = Activation.sigmoid(x)) {
                    return x.muli(s);
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
