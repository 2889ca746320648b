package io.github.tilewise.djl.attention;

/** How Q, K, V and the output are laid out in memory. */
public enum AttentionLayout {
    /** {@code [batch, heads, seq, headDim]}: the layout most attention code uses. */
    BATCH_HEADS_SEQ_DIM,
    /**
     * {@code [batch, seq, heads, headDim]}: what a linear projection of {@code [batch, seq,
     * hidden]} gives after a reshape, read without a transpose or copy.
     */
    BATCH_SEQ_HEADS_DIM
}
