package io.github.tilewise.djl.encoder;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The shape of a BERT-family encoder, as read from a checkpoint: sizes, depth, the feed-forward
 * activation, the layer-norm epsilon, and which heads (pooler, classifier) it carries.
 *
 * <p>Build with {@link #builder()}; {@link Builder#build()} checks that every size lies in its
 * range (the {@code MAX_} constants, generous bounds well above any published encoder, so that a
 * corrupt or hostile {@code config.json} fails before layers are built), that the sizes agree with
 * each other (e.g. the hidden size divides into the heads), and that every weight matrix fits a
 * Java array. Messages use the Hugging Face {@code config.json} names of the fields.
 */
public final class EncoderConfig {

    /** The largest {@code hidden_size}. */
    public static final int MAX_HIDDEN_SIZE = 1 << 16;

    /** The largest {@code num_attention_heads}. */
    public static final int MAX_HEADS = 1 << 10;

    /** The largest {@code num_hidden_layers}. */
    public static final int MAX_LAYERS = 1 << 10;

    /** The largest {@code intermediate_size}. */
    public static final int MAX_INTERMEDIATE_SIZE = 1 << 18;

    /** The largest {@code max_position_embeddings}. */
    public static final int MAX_POSITIONS = 1 << 20;

    /** The largest {@code vocab_size} (multilingual vocabularies have about 250,000 entries). */
    public static final int MAX_VOCAB_SIZE = 1 << 22;

    /** The largest {@code type_vocab_size}. */
    public static final int MAX_TYPE_VOCAB_SIZE = 1 << 10;

    /** The largest number of classifier labels. */
    public static final int MAX_LABELS = 1 << 16;

    private final int hiddenSize;
    private final int numHeads;
    private final int numLayers;
    private final int intermediateSize;
    private final int maxPositions;
    private final int vocabSize;
    private final int typeVocabSize;
    private final float layerNormEps;
    private final HiddenActivation activation;
    private final boolean pooler;
    private final List<String> labels;

    private EncoderConfig(Builder b) {
        hiddenSize = b.hiddenSize;
        numHeads = b.numHeads;
        numLayers = b.numLayers;
        intermediateSize = b.intermediateSize;
        maxPositions = b.maxPositions;
        vocabSize = b.vocabSize;
        typeVocabSize = b.typeVocabSize;
        layerNormEps = b.layerNormEps;
        activation = b.activation;
        pooler = b.pooler;
        labels = Collections.unmodifiableList(new ArrayList<>(b.labels));
    }

    /**
     * Returns a new builder.
     *
     * @return the builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns the width of every token vector ({@code hidden_size}).
     *
     * @return the hidden size
     */
    public int getHiddenSize() {
        return hiddenSize;
    }

    /**
     * Returns the number of attention heads.
     *
     * @return the head count
     */
    public int getNumHeads() {
        return numHeads;
    }

    /**
     * Returns the width of one head, {@code hiddenSize / numHeads}.
     *
     * @return the head size
     */
    public int getHeadSize() {
        return hiddenSize / numHeads;
    }

    /**
     * Returns the number of encoder layers.
     *
     * @return the layer count
     */
    public int getNumLayers() {
        return numLayers;
    }

    /**
     * Returns the width of the feed-forward layer.
     *
     * @return the intermediate size
     */
    public int getIntermediateSize() {
        return intermediateSize;
    }

    /**
     * Returns the number of rows of the position table: the longest input the model can read.
     *
     * @return the maximum sequence length
     */
    public int getMaxPositions() {
        return maxPositions;
    }

    /**
     * Returns the number of rows of the word-embedding table.
     *
     * @return the vocabulary size
     */
    public int getVocabSize() {
        return vocabSize;
    }

    /**
     * Returns the number of token types (segments); 0 when the model has no token-type table.
     *
     * @return the token-type vocabulary size
     */
    public int getTypeVocabSize() {
        return typeVocabSize;
    }

    /**
     * Returns the epsilon of every layer norm.
     *
     * @return the epsilon
     */
    public float getLayerNormEps() {
        return layerNormEps;
    }

    /**
     * Returns the feed-forward activation.
     *
     * @return the activation
     */
    public HiddenActivation getActivation() {
        return activation;
    }

    /**
     * Returns whether the checkpoint has a pooler (dense + tanh on the first token).
     *
     * @return true if it has a pooler
     */
    public boolean hasPooler() {
        return pooler;
    }

    /**
     * Returns the class labels of a sequence-classification head, in logit order; empty when the
     * checkpoint has no classifier.
     *
     * @return the labels
     */
    public List<String> getLabels() {
        return labels;
    }

    /**
     * Returns whether the checkpoint has a sequence-classification head.
     *
     * @return true if it has a classifier
     */
    public boolean hasClassifier() {
        return !labels.isEmpty();
    }

    /**
     * Returns the number of weights (every table, layer, pooler and classifier value) this
     * configuration implies, for comparing with what a weights file holds before building layers.
     *
     * @return the parameter count (exact: the sizes' ranges keep it far below {@code
     *     Long.MAX_VALUE})
     */
    public long parameterCount() {
        long h = hiddenSize;
        long embeddings = ((long) vocabSize + maxPositions + typeVocabSize + 2) * h;
        long attention = 4 * (h * h + h) + 2 * h;
        long feedForward = 2 * h * intermediateSize + intermediateSize + h + 2 * h;
        long layers = numLayers * (attention + feedForward);
        long heads = (pooler ? h * h + h : 0) + (long) labels.size() * (h + 1);
        return embeddings + layers + heads;
    }

    @Override
    public String toString() {
        return "EncoderConfig{hidden="
                + hiddenSize
                + ", heads="
                + numHeads
                + ", layers="
                + numLayers
                + ", intermediate="
                + intermediateSize
                + ", maxPositions="
                + maxPositions
                + ", vocab="
                + vocabSize
                + ", typeVocab="
                + typeVocabSize
                + ", eps="
                + layerNormEps
                + ", activation="
                + activation
                + ", pooler="
                + pooler
                + ", labels="
                + labels.size()
                + '}';
    }

    /** Builder of {@link EncoderConfig}; every size is required. */
    public static final class Builder {

        private int hiddenSize;
        private int numHeads;
        private int numLayers;
        private int intermediateSize;
        private int maxPositions;
        private int vocabSize;
        private int typeVocabSize;
        private float layerNormEps = 1e-12f;
        private HiddenActivation activation = HiddenActivation.GELU;
        private boolean pooler;
        private List<String> labels = Collections.emptyList();

        private Builder() {}

        /**
         * Sets the hidden size.
         *
         * @param hiddenSize the width of token vectors
         * @return this builder
         */
        public Builder setHiddenSize(int hiddenSize) {
            this.hiddenSize = hiddenSize;
            return this;
        }

        /**
         * Sets the number of attention heads.
         *
         * @param numHeads the head count
         * @return this builder
         */
        public Builder setNumHeads(int numHeads) {
            this.numHeads = numHeads;
            return this;
        }

        /**
         * Sets the number of layers.
         *
         * @param numLayers the layer count
         * @return this builder
         */
        public Builder setNumLayers(int numLayers) {
            this.numLayers = numLayers;
            return this;
        }

        /**
         * Sets the feed-forward width.
         *
         * @param intermediateSize the intermediate size
         * @return this builder
         */
        public Builder setIntermediateSize(int intermediateSize) {
            this.intermediateSize = intermediateSize;
            return this;
        }

        /**
         * Sets the number of positions.
         *
         * @param maxPositions rows of the position table
         * @return this builder
         */
        public Builder setMaxPositions(int maxPositions) {
            this.maxPositions = maxPositions;
            return this;
        }

        /**
         * Sets the vocabulary size.
         *
         * @param vocabSize rows of the word-embedding table
         * @return this builder
         */
        public Builder setVocabSize(int vocabSize) {
            this.vocabSize = vocabSize;
            return this;
        }

        /**
         * Sets the number of token types (0: no token-type table).
         *
         * @param typeVocabSize rows of the token-type table
         * @return this builder
         */
        public Builder optTypeVocabSize(int typeVocabSize) {
            this.typeVocabSize = typeVocabSize;
            return this;
        }

        /**
         * Sets the layer-norm epsilon (default 1e-12, BERT's).
         *
         * @param eps a positive epsilon
         * @return this builder
         */
        public Builder optLayerNormEps(float eps) {
            this.layerNormEps = eps;
            return this;
        }

        /**
         * Sets the feed-forward activation (default GELU).
         *
         * @param activation the activation
         * @return this builder
         */
        public Builder optActivation(HiddenActivation activation) {
            this.activation = activation;
            return this;
        }

        /**
         * Sets whether the model has a pooler (default false).
         *
         * @param pooler true if it has one
         * @return this builder
         */
        public Builder optPooler(boolean pooler) {
            this.pooler = pooler;
            return this;
        }

        /**
         * Sets the labels of a classification head (default none: no classifier).
         *
         * @param labels the labels in logit order
         * @return this builder
         */
        public Builder optLabels(List<String> labels) {
            this.labels = labels == null ? Collections.emptyList() : labels;
            return this;
        }

        /**
         * Checks the sizes and builds the configuration.
         *
         * @return the configuration
         * @throws IllegalArgumentException naming the first inconsistent value
         */
        public EncoderConfig build() {
            range("hidden_size", hiddenSize, 1, MAX_HIDDEN_SIZE);
            range("num_attention_heads", numHeads, 1, MAX_HEADS);
            range("num_hidden_layers", numLayers, 1, MAX_LAYERS);
            range("intermediate_size", intermediateSize, 1, MAX_INTERMEDIATE_SIZE);
            range("max_position_embeddings", maxPositions, 1, MAX_POSITIONS);
            range("vocab_size", vocabSize, 1, MAX_VOCAB_SIZE);
            range("type_vocab_size", typeVocabSize, 0, MAX_TYPE_VOCAB_SIZE);
            range("number of labels", labels.size(), 0, MAX_LABELS);
            if (hiddenSize % numHeads != 0) {
                throw new IllegalArgumentException(
                        "hidden_size "
                                + hiddenSize
                                + " is not a multiple of num_attention_heads "
                                + numHeads);
            }
            // Each table becomes one Java array: the ranges alone allow vocab_size × hidden_size
            // beyond 2^31.
            fitsArray("vocab_size × hidden_size", (long) vocabSize * hiddenSize);
            fitsArray("max_position_embeddings × hidden_size", (long) maxPositions * hiddenSize);
            fitsArray("intermediate_size × hidden_size", (long) intermediateSize * hiddenSize);
            if (!(layerNormEps > 0f) || !Float.isFinite(layerNormEps)) {
                throw new IllegalArgumentException(
                        "layer_norm_eps must be positive and finite, got " + layerNormEps);
            }
            if (activation == null) {
                throw new IllegalArgumentException("activation must not be null");
            }
            if (!labels.isEmpty() && !pooler) {
                throw new IllegalArgumentException(
                        "a classification head needs the pooler it reads from");
            }
            return new EncoderConfig(this);
        }

        private static void range(String field, int value, int min, int max) {
            if (value < min || value > max) {
                throw new IllegalArgumentException(
                        field + " must be in [" + min + ", " + max + "], got " + value);
            }
        }

        private static void fitsArray(String what, long elements) {
            if (elements > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException(
                        what + " = " + elements + " values exceed what one Java array can hold");
            }
        }
    }
}
