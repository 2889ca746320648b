package io.github.tilewise.djl.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;

/**
 * Attention composed from DJL NDArray ops (matMul, softmax): materialises the full score matrix.
 * The test oracle of {@link FusedAttention} and its fallback where no native build exists.
 */
public final class ReferenceAttention {

    private ReferenceAttention() {}

    /**
     * Computes attention with DJL ops; same contract as {@link FusedAttention#forward}.
     *
     * @param q queries
     * @param k keys
     * @param v values
     * @param options layout, scale, masks and precision
     * @return the output, shaped like q
     */
    public static NDArray forward(NDArray q, NDArray k, NDArray v, AttentionOptions options) {
        throw new UnsupportedOperationException("not implemented yet");
    }

    /**
     * Computes attention and the log-sum-exp with DJL ops.
     *
     * @param q queries
     * @param k keys
     * @param v values
     * @param options layout, scale, masks and precision
     * @return output and log-sum-exp
     */
    public static NDList forwardWithLogSumExp(
            NDArray q, NDArray k, NDArray v, AttentionOptions options) {
        throw new UnsupportedOperationException("not implemented yet");
    }
}
