package io.github.tilewise.it.bench;

import java.util.Arrays;

/**
 * One benchmark shape: sizes, causal or not, and for the padded case the valid key length of each
 * sequence. Tensors are laid out {@code [batch, seq, heads, headDim]}, which is what ONNX Runtime's
 * {@code [batch, seq, hidden]} inputs are.
 */
public final class AttentionCase {

    /** Batch size. */
    public final int batch;

    /** Heads (of queries, keys and values alike). */
    public final int heads;

    /** Query rows. */
    public final int qLen;

    /** Keys. */
    public final int kvLen;

    /** Head dimension. */
    public final int headDim;

    /** Whether the attention is causal. */
    public final boolean causal;

    /** Valid keys per sequence (the rest is padding), or null when nothing is padded. */
    private final int[] validLengths;

    private AttentionCase(
            int batch, int heads, int n, int headDim, boolean causal, int[] validLengths) {
        this.batch = batch;
        this.heads = heads;
        this.qLen = n;
        this.kvLen = n;
        this.headDim = headDim;
        this.causal = causal;
        this.validLengths = validLengths;
    }

    /**
     * Returns self-attention over one sequence of n tokens.
     *
     * @param heads heads
     * @param n sequence length
     * @param headDim head dimension
     * @param causal whether causal
     * @return the case
     */
    public static AttentionCase single(int heads, int n, int headDim, boolean causal) {
        return new AttentionCase(1, heads, n, headDim, causal, null);
    }

    /**
     * Returns the padded case: a batch of four sequences of n, n/2, n/4 and n/8 valid tokens,
     * padded to n, with a key-padding mask.
     *
     * @param heads heads
     * @param n padded length
     * @param headDim head dimension
     * @return the case
     */
    public static AttentionCase padded(int heads, int n, int headDim) {
        int[] lengths = {n, Math.max(1, n / 2), Math.max(1, n / 4), Math.max(1, n / 8)};
        return new AttentionCase(4, heads, n, headDim, false, lengths);
    }

    /**
     * Returns whether the case has padding.
     *
     * @return true for the padded case
     */
    public boolean isPadded() {
        return validLengths != null;
    }

    /**
     * Returns the valid keys of each sequence.
     *
     * @return a copy of the lengths, or null
     */
    public int[] validLengths() {
        return validLengths == null ? null : validLengths.clone();
    }

    /**
     * Returns the useful floating-point work: {@code 4·B·H·Nq·Nk·D}, half of it when causal, and
     * only the valid keys when padded.
     *
     * @return flops
     */
    public double flops() {
        double perKey = 4.0 * heads * qLen * headDim;
        if (validLengths != null) {
            return perKey * Arrays.stream(validLengths).asLongStream().sum();
        }
        return perKey * batch * kvLen * (causal ? 0.5 : 1.0);
    }

    /**
     * Returns the bytes of one fp32 score matrix {@code [B, H, Nq, Nk]}, what a naive computation
     * materialises.
     *
     * @return bytes
     */
    public double scoreBytes() {
        return 4.0 * batch * heads * qLen * (double) kvLen;
    }
}
