package io.github.tilewise.djl.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Options of one attention call. Build with {@link #builder()}; every option has a default, so
 * {@code AttentionOptions.builder().build()} is plain non-causal attention in {@link
 * AttentionLayout#BATCH_HEADS_SEQ_DIM} layout with scale {@code 1/sqrt(headDim)}.
 *
 * <p>Masks combine: a key is hidden from a query if any mask hides it. A query row that sees no key
 * at all gets zeros (and log-sum-exp {@code -inf}), never NaN.
 *
 * <p>Positions: causal masking, the sliding window ({@link Builder#optSlidingWindow}) and the
 * relative-position bias ({@link Builder#optRelativeBias}) align queries to the bottom right: query
 * {@code i} sits at key position {@code i' = i + (kvLen - qLen)}. In packed calls ({@link
 * FusedAttention#forwardPacked}) positions count within each sequence.
 */
public final class AttentionOptions {

    private final AttentionLayout layout;
    private final Float scale;
    private final boolean causal;
    private final int[] keyValidLengths;
    private final NDArray keyPaddingMask;
    private final NDArray bias;
    private final ComputePrecision computePrecision;
    private final boolean slidingWindow;
    private final int windowLeft;
    private final int windowRight;
    private final NDArray relativeBias;

    private AttentionOptions(Builder builder) {
        layout = builder.layout;
        scale = builder.scale;
        causal = builder.causal;
        keyValidLengths = builder.keyValidLengths == null ? null : builder.keyValidLengths.clone();
        keyPaddingMask = builder.keyPaddingMask;
        bias = builder.bias;
        computePrecision = builder.computePrecision;
        slidingWindow = builder.slidingWindow;
        windowLeft = builder.windowLeft;
        windowRight = builder.windowRight;
        relativeBias = builder.relativeBias;
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

    /**
     * Returns whether a sliding window applies (set by {@link Builder#optSlidingWindow}).
     *
     * @return true if a window is set
     */
    public boolean hasSlidingWindow() {
        return slidingWindow;
    }

    /**
     * Returns how many keys before its own (aligned) position a query sees, or -1 for unlimited
     * (also when no window is set).
     *
     * @return the left extent of the window, or -1
     */
    public int getWindowLeft() {
        return slidingWindow ? windowLeft : -1;
    }

    /**
     * Returns how many keys after its own (aligned) position a query sees, or -1 for unlimited
     * (also when no window is set).
     *
     * @return the right extent of the window, or -1
     */
    public int getWindowRight() {
        return slidingWindow ? windowRight : -1;
    }

    /**
     * Returns the relative-position bias table {@code [heads, 2R + 1]} (FLOAT32), or null.
     *
     * @return the table, or null
     */
    public NDArray getRelativeBias() {
        return relativeBias;
    }

    /**
     * Returns the radius {@code R} of the relative-position bias table (its width is {@code 2R +
     * 1}), or -1 without a table.
     *
     * @return the radius, or -1
     */
    public int getRelativeBiasRadius() {
        return relativeBias == null ? -1 : (int) ((relativeBias.getShape().get(1) - 1) / 2);
    }

    /**
     * Throws if a sliding window or a relative-position bias is set: for attention paths that do
     * not implement them (the CUDA kernels).
     *
     * @param path the path's name, for the message
     * @throws UnsupportedOperationException naming the option
     */
    void requireNoWindowOrRelativeBias(String path) {
        if (slidingWindow) {
            throw new UnsupportedOperationException(
                    path + " does not support optSlidingWindow (sliding-window attention)");
        }
        if (relativeBias != null) {
            throw new UnsupportedOperationException(
                    path + " does not support optRelativeBias (relative-position bias tables)");
        }
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
                        .optComputePrecision(computePrecision)
                        .optRelativeBias(relativeBias);
        if (scale != null) {
            builder.optScale(scale);
        }
        if (slidingWindow) {
            builder.optSlidingWindow(windowLeft, windowRight);
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
        private boolean slidingWindow;
        private int windowLeft = -1;
        private int windowRight = -1;
        private NDArray relativeBias;

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
         * Sets a sliding (local) window: query {@code i}, at aligned position {@code i' = i +
         * (kvLen - qLen)}, sees key {@code j} iff {@code i' - left <= j <= i' + right}, combined
         * with every other mask. A negative side is unlimited; 0 is a real limit ({@code (0, 0)}:
         * each query sees only its own position). ModernBERT's local layers ({@code local_attention
         * = 128}) use {@code optSlidingWindow(64, 64)}. The kernel visits only the key tiles inside
         * each query tile's window, so a window of {@code w} costs about {@code O(N·w)} rather than
         * {@code O(N²)}.
         *
         * @param left keys before the query's position it may see; negative for unlimited
         * @param right keys after it; negative for unlimited
         * @return this builder
         */
        public Builder optSlidingWindow(int left, int right) {
            this.slidingWindow = true;
            this.windowLeft = Math.max(left, -1);
            this.windowRight = Math.max(right, -1);
            return this;
        }

        /**
         * Sets a relative-position bias from a per-head table of distances (MPNet / T5 style,
         * without an {@code N×N} tensor): with {@code R} = (width - 1) / 2, {@code score(h, i, j)
         * += table[h, clamp(j - i', -R, R) + R]}, added to the scaled scores ({@code scale·q·k +
         * bias}, Hugging Face MPNet's convention). {@code -inf} entries mask. Bucketed tables (T5,
         * MPNet's log buckets) are expanded to one entry per distance by the caller.
         *
         * @param table FLOAT32 {@code [heads, 2R + 1]} on the CPU (heads = the query heads, or 1 to
         *     share one table), or null to clear
         * @return this builder
         * @throws IllegalArgumentException if the table is not a FLOAT32 matrix with an odd number
         *     of columns
         * @throws IllegalStateException if the table has been closed
         */
        public Builder optRelativeBias(NDArray table) {
            if (table != null) {
                if (table.isReleased()) {
                    throw new IllegalStateException("relative bias table has been closed");
                }
                Shape shape = table.getShape();
                if (shape.dimension() != 2 || shape.get(0) < 1 || shape.get(1) % 2 != 1) {
                    throw new IllegalArgumentException(
                            "relative bias table must be [heads, 2R + 1] with an odd width, got "
                                    + shape);
                }
                if (shape.get(1) > (1L << 30)) {
                    throw new IllegalArgumentException(
                            "relative bias table width " + shape.get(1) + " exceeds 2^30");
                }
                if (table.getDataType() != DataType.FLOAT32) {
                    throw new IllegalArgumentException(
                            "relative bias table must be FLOAT32, got "
                                    + table.getDataType().name());
                }
            }
            this.relativeBias = table;
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
