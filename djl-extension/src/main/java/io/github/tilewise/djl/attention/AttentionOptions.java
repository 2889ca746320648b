package io.github.tilewise.djl.attention;

import ai.djl.ndarray.NDArray;

/**
 * Options of one attention call. Build with {@link #builder()}; every option has a default, so
 * {@code AttentionOptions.builder().build()} is plain non-causal attention in {@link
 * AttentionLayout#BATCH_HEADS_SEQ_DIM} layout with scale {@code 1/sqrt(headDim)}.
 *
 * <p>Masks combine: a key is hidden from a query if any mask hides it. A query row that sees no key
 * at all gets zeros (and log-sum-exp {@code -inf}), never NaN.
 */
public final class AttentionOptions {

    private final AttentionLayout layout;
    private final Float scale;
    private final boolean causal;
    private final int[] keyValidLengths;
    private final NDArray keyPaddingMask;
    private final NDArray bias;
    private final ComputePrecision computePrecision;

    private AttentionOptions(Builder builder) {
        layout = builder.layout;
        scale = builder.scale;
        causal = builder.causal;
        keyValidLengths = builder.keyValidLengths == null ? null : builder.keyValidLengths.clone();
        keyPaddingMask = builder.keyPaddingMask;
        bias = builder.bias;
        computePrecision = builder.computePrecision;
    }

    /**
     * Returns a new builder with every option at its default.
     *
     * @return the builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns the memory layout of Q, K, V and the output.
     *
     * @return the layout
     */
    public AttentionLayout getLayout() {
        return layout;
    }

    /**
     * Returns the score scale for a head dimension: the configured one, else {@code
     * 1/sqrt(headDim)}.
     *
     * @param headDim the head dimension
     * @return the scale
     */
    public float getScale(long headDim) {
        return scale != null ? scale : (float) (1.0 / Math.sqrt(headDim));
    }

    /**
     * Returns whether causal masking applies: query {@code i} sees key {@code j} iff {@code j <= i
     * + (kvLen - qLen)} (aligned to the bottom right, so decoding against a cache works).
     *
     * @return true if causal
     */
    public boolean isCausal() {
        return causal;
    }

    /**
     * Returns the number of valid keys per batch entry, or null.
     *
     * @return a copy of the lengths, or null
     */
    public int[] getKeyValidLengths() {
        return keyValidLengths == null ? null : keyValidLengths.clone();
    }

    /**
     * Returns the key-padding mask {@code [batch, kvLen]} (boolean or integer; true/non-zero keeps
     * the key), or null.
     *
     * @return the mask, or null
     */
    public NDArray getKeyPaddingMask() {
        return keyPaddingMask;
    }

    /**
     * Returns the additive fp32 bias, broadcastable to {@code [batch, heads, qLen, kvLen]}, or
     * null.
     *
     * @return the bias, or null
     */
    public NDArray getBias() {
        return bias;
    }

    /**
     * Returns the precision of the dot products.
     *
     * @return the compute precision
     */
    public ComputePrecision getComputePrecision() {
        return computePrecision;
    }

    /** The same options with another layout. */
    AttentionOptions withLayout(AttentionLayout newLayout) {
        if (newLayout == layout) {
            return this;
        }
        Builder builder =
                builder()
                        .optLayout(newLayout)
                        .optCausal(causal)
                        .optKeyValidLengths(keyValidLengths)
                        .optKeyPaddingMask(keyPaddingMask)
                        .optBias(bias)
                        .optComputePrecision(computePrecision);
        if (scale != null) {
            builder.optScale(scale);
        }
        return builder.build();
    }

    /** Builder of {@link AttentionOptions}. */
    public static final class Builder {

        private AttentionLayout layout = AttentionLayout.BATCH_HEADS_SEQ_DIM;
        private Float scale;
        private boolean causal;
        private int[] keyValidLengths;
        private NDArray keyPaddingMask;
        private NDArray bias;
        private ComputePrecision computePrecision = ComputePrecision.DATA;

        private Builder() {}

        /**
         * Sets the memory layout (default {@link AttentionLayout#BATCH_HEADS_SEQ_DIM}).
         *
         * @param layout the layout
         * @return this builder
         */
        public Builder optLayout(AttentionLayout layout) {
            if (layout == null) {
                throw new IllegalArgumentException("layout must not be null");
            }
            this.layout = layout;
            return this;
        }

        /**
         * Sets the score scale (default {@code 1/sqrt(headDim)}).
         *
         * @param scale a finite scale
         * @return this builder
         */
        public Builder optScale(float scale) {
            if (!Float.isFinite(scale)) {
                throw new IllegalArgumentException("scale must be finite, got " + scale);
            }
            this.scale = scale;
            return this;
        }

        /**
         * Sets causal masking (default false).
         *
         * @param causal whether query i may only see keys up to i (bottom-right aligned)
         * @return this builder
         */
        public Builder optCausal(boolean causal) {
            this.causal = causal;
            return this;
        }

        /**
         * Sets the number of valid keys of each batch entry; keys at or past it are masked.
         *
         * @param lengths one length per batch entry, each in {@code [0, kvLen]}
         * @return this builder
         */
        public Builder optKeyValidLengths(int[] lengths) {
            this.keyValidLengths = lengths == null ? null : lengths.clone();
            return this;
        }

        /**
         * Sets a key-padding mask {@code [batch, kvLen]}: boolean or integer, where false/zero
         * masks the key (the convention of Hugging Face attention masks).
         *
         * @param mask the mask, on the CPU
         * @return this builder
         */
        public Builder optKeyPaddingMask(NDArray mask) {
            this.keyPaddingMask = mask;
            return this;
        }

        /**
         * Sets an additive fp32 bias broadcastable to {@code [batch, heads, qLen, kvLen]}; {@code
         * -inf} masks.
         *
         * @param bias the bias, on the CPU
         * @return this builder
         */
        public Builder optBias(NDArray bias) {
            this.bias = bias;
            return this;
        }

        /**
         * Sets the precision of the dot products (default {@link ComputePrecision#DATA}).
         *
         * @param precision the precision
         * @return this builder
         */
        public Builder optComputePrecision(ComputePrecision precision) {
            if (precision == null) {
                throw new IllegalArgumentException("compute precision must not be null");
            }
            this.computePrecision = precision;
            return this;
        }

        /**
         * Builds the options.
         *
         * @return the options
         */
        public AttentionOptions build() {
            return new AttentionOptions(this);
        }
    }
}
