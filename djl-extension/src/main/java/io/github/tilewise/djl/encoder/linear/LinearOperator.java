package io.github.tilewise.djl.encoder.linear;

import ai.djl.ndarray.NDArray;

/**
 * One implementation of a linear layer's arithmetic, {@code y = act(x·Wᵀ + b) + residual}: the
 * extension point for low precision. A {@link LinearBlock} owns the fp32 parameters and delegates
 * its forward to its operator; {@link Fp32LinearOperator} is the default, and a converter swaps in
 * other implementations (INT8, BF16, ...) per layer with {@link LinearBlock#setOperator}.
 *
 * <p>Contract: {@code x} is fp32 {@code [..., in]} on the CPU; the result is fp32 {@code [...,
 * out]} ({@code [..., out / 2]} for a {@link LinearActivation#isGated() gated} activation),
 * attached to {@code x}'s manager; {@code residual}, when given, has the result's shape and is
 * added after the activation. An operator that packs weights into native memory frees it in {@link
 * #close()}.
 */
public interface LinearOperator extends AutoCloseable {

    /**
     * Computes {@code act(x·Wᵀ + b) + residual}.
     *
     * @param x the input {@code [..., in]}
     * @param residual added to the result, or null
     * @return the output {@code [..., out]}
     */
    NDArray forward(NDArray x, NDArray residual);

    /**
     * Computes {@code act(x·Wᵀ + b) + residual} into {@code out} when the operator {@link
     * #writesInto() writes into} caller-owned arrays, else as {@link #forward(NDArray, NDArray)}
     * does (the default): an encoder reuses its activation memory from call to call this way.
     *
     * @param x the input {@code [..., in]}
     * @param residual added to the result, or null
     * @param out an open, contiguous FLOAT32 array of the result's shape on the CPU (the kernel
     *     writes all of it), or null for a new array
     * @return {@code out}, or a new array when {@code out} is null or the operator does not write
     *     into caller-owned arrays
     */
    default NDArray forward(NDArray x, NDArray residual, NDArray out) {
        return forward(x, residual);
    }

    /**
     * Returns whether {@link #forward(NDArray, NDArray, NDArray)} writes into the array it is given
     * (so a caller need not lend one to an operator that would ignore it).
     *
     * @return false by default
     */
    default boolean writesInto() {
        return false;
    }

    /**
     * Returns a short description for logs, e.g. {@code fp32} or {@code int8-per-channel}.
     *
     * @return the description
     */
    String describe();

    /** Frees what the operator owns (packed weights); the default owns nothing. */
    @Override
    default void close() {}
}
