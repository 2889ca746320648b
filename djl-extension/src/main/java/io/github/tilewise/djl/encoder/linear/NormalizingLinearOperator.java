package io.github.tilewise.djl.encoder.linear;

import ai.djl.ndarray.NDArray;
import java.nio.ByteBuffer;

/**
 * A {@link LinearOperator} that can also layer-normalise its output rows in the same pass, {@code y
 * = LayerNorm(act(x·Wᵀ + b) + residual)}: a post-LayerNorm Transformer's "dense + residual +
 * LayerNorm" without writing and re-reading the un-normalised rows. {@link
 * io.github.tilewise.djl.encoder.LayerNormBlock#applyAfter} uses it when the layer's operator
 * offers it.
 */
public interface NormalizingLinearOperator extends LinearOperator {

    /**
     * Returns whether {@link #forwardNormalized} can run for this operator (e.g. its activation is
     * fused into the same pass).
     *
     * @return true if the LayerNorm can be fused
     */
    boolean fusesLayerNorm();

    /**
     * Computes {@code LayerNorm(act(x·Wᵀ + b) + residual)} over the last axis.
     *
     * @param x the input {@code [..., in]}
     * @param residual added before the normalisation, or null
     * @param gamma {@code out} fp32 scales (direct, little-endian), or null for ones
     * @param beta {@code out} fp32 shifts (direct, little-endian), or null for zeros
     * @param eps the epsilon under the square root
     * @return {@code [..., out]}, attached to {@code x}'s manager
     */
    NDArray forwardNormalized(
            NDArray x, NDArray residual, ByteBuffer gamma, ByteBuffer beta, float eps);

    /**
     * As {@link #forwardNormalized(NDArray, NDArray, ByteBuffer, ByteBuffer, float)}, into {@code
     * out} when the operator {@link #writesInto() writes into} caller-owned arrays.
     *
     * @param x the input {@code [..., in]}
     * @param residual added before the normalisation, or null
     * @param gamma {@code out} fp32 scales (direct, little-endian), or null for ones
     * @param beta {@code out} fp32 shifts (direct, little-endian), or null for zeros
     * @param eps the epsilon under the square root
     * @param out an open, contiguous FLOAT32 array of the result's shape on the CPU, or null
     * @return {@code out}, or a new array (the default ignores {@code out})
     */
    default NDArray forwardNormalized(
            NDArray x,
            NDArray residual,
            ByteBuffer gamma,
            ByteBuffer beta,
            float eps,
            NDArray out) {
        return forwardNormalized(x, residual, gamma, beta, eps);
    }

    /**
     * Computes {@code LayerNorm(next(x) + residual)} where {@code next} reads this operator's
     * output {@code act(x·Wᵀ + b)}, handing the hidden activations over in the pair's own form
     * (e.g. int8 rows that never exist in fp32 memory); null (the default) when this operator
     * cannot do that for {@code next}, and the caller runs the two steps.
     *
     * @param x the input {@code [..., in]}
     * @param next the following layer's operator
     * @param residual added to {@code next}'s output before the normalisation, or null
     * @param gamma LayerNorm scales (direct, little-endian), or null for ones
     * @param beta LayerNorm shifts (direct, little-endian), or null for zeros
     * @param eps the epsilon under the square root
     * @return the normalised output of {@code next}, or null
     */
    default NDArray forwardChainNormalized(
            NDArray x,
            LinearOperator next,
            NDArray residual,
            ByteBuffer gamma,
            ByteBuffer beta,
            float eps) {
        return forwardChainNormalized(x, next, residual, gamma, beta, eps, null, null);
    }

    /**
     * As {@link #forwardChainNormalized(NDArray, LinearOperator, NDArray, ByteBuffer, ByteBuffer,
     * float)}, writing the output into {@code out} and keeping the hidden activations, in the
     * pair's own form, in {@code hidden}'s memory (both caller-owned and reused from call to call,
     * so a forward touches no fresh pages); either may be null (a new array).
     *
     * @param x the input {@code [..., in]}
     * @param next the following layer's operator
     * @param residual added to {@code next}'s output before the normalisation, or null
     * @param gamma LayerNorm scales (direct, little-endian), or null for ones
     * @param beta LayerNorm shifts (direct, little-endian), or null for zeros
     * @param eps the epsilon under the square root
     * @param out an open FLOAT32 array of the output's shape {@code [..., next's out]}, or null
     * @param hidden an open FLOAT32 array of the hidden shape {@code [..., this operator's out]}
     *     whose memory the pair may use for the hidden rows, or null
     * @return the normalised output of {@code next} ({@code out} when given), or null
     */
    default NDArray forwardChainNormalized(
            NDArray x,
            LinearOperator next,
            NDArray residual,
            ByteBuffer gamma,
            ByteBuffer beta,
            float eps,
            NDArray out,
            NDArray hidden) {
        return null;
    }
}
