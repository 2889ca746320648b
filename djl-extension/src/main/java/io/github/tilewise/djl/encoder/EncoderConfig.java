package io.github.tilewise.djl.encoder;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The shape of an encoder, as read from a checkpoint: its family ({@link EncoderArchitecture}),
 * sizes, depth, the feed-forward activation, the layer-norm epsilon, how positions enter (a table,
 * counted after padding for RoBERTa-style models, MPNet's relative-position buckets, ModernBERT's
 * rotary angles and local attention windows), and which heads (pooler, classifier) it carries.
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
    private final EncoderArchitecture architecture;
    private final int padTokenId;
    private final int relativeBuckets;
    private final int relativeMaxDistance;
    private final boolean bias;
    private final boolean normBias;
    private final float ropeTheta;
    private final float localRopeTheta;
    private final int localWindow;
    private final boolean[] localLayers;

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
        architecture = b.architecture;
        padTokenId = b.padTokenId;
        relativeBuckets = b.relativeBuckets;
        relativeMaxDistance = b.relativeMaxDistance;
        bias = b.bias;
        normBias = b.normBias;
        ropeTheta = b.ropeTheta;
        localRopeTheta = b.localRopeTheta;
        localWindow = b.localWindow;
        localLayers = b.localLayers == null ? new boolean[numLayers] : b.localLayers.clone();
    }

    /**
     * Returns the family.
     *
     * @return the architecture ({@link EncoderArchitecture#BERT} unless set)
     */
    public EncoderArchitecture getArchitecture() {
        return architecture;
    }

    /**
     * Returns the padding token's id: RoBERTa-style positions count from it ({@link
     * EncoderArchitecture#positionsAfterPadding()}).
     *
     * @return {@code pad_token_id}
     */
    public int getPadTokenId() {
        return padTokenId;
    }

    /**
     * Returns the first position a text's tokens take: {@code pad_token_id + 1} for RoBERTa-style
     * models, else 0.
     *
     * @return the first position id
     */
    public int getFirstPosition() {
        return architecture.positionsAfterPadding() ? padTokenId + 1 : 0;
    }

    /**
     * Returns the most tokens one text may hold: the position table less the positions before the
     * first one (RoBERTa's 514-row table holds 512 tokens), or the trained context of a rotary
     * model.
     *
     * @return the longest sequence
     */
    public int getMaxSequenceLength() {
        return Math.max(1, maxPositions - getFirstPosition());
    }

    /**
     * Returns MPNet's number of relative-position buckets.
     *
     * @return {@code relative_attention_num_buckets}, 0 without a relative-position bias
     */
    public int getRelativeBuckets() {
        return relativeBuckets;
    }

    /**
     * Returns the distance from which MPNet's relative positions share one bucket.
     *
     * @return the maximum distance (128 in MPNet)
     */
    public int getRelativeMaxDistance() {
        return relativeMaxDistance;
    }

    /**
     * Whether linear layers carry biases (false for ModernBERT's {@code attention_bias = mlp_bias =
     * false}).
     *
     * @return true for the BERT families
     */
    public boolean hasBias() {
        return bias;
    }

    /**
     * Whether the layer norms carry biases ({@code norm_bias}).
     *
     * @return true for the BERT families
     */
    public boolean hasNormBias() {
        return normBias;
    }

    /**
     * Returns the rotary base of global-attention layers.
     *
     * @return the theta of rotary models, 0 for models with a position table
     */
    public float getRopeTheta() {
        return ropeTheta;
    }

    /**
     * Returns the rotary base of local-attention layers.
     *
     * @return the theta used where {@link #isLocalLayer} holds
     */
    public float getLocalRopeTheta() {
        return localRopeTheta;
    }

    /**
     * Returns how far a local-attention layer looks: a token sees the keys at most this many
     * positions before and after it (ModernBERT: {@code local_attention / 2}).
     *
     * @return the window's half width, 0 without local layers
     */
    public int getLocalWindow() {
        return localWindow;
    }

    /**
     * Whether a layer attends locally (a sliding window) rather than globally.
     *
     * @param layer the layer's index
     * @return true for ModernBERT's sliding-attention layers
     */
    public boolean isLocalLayer(int layer) {
        return localLayers[layer];
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
        if (architecture == EncoderArchitecture.MODERNBERT) {
            // Lower bound: no biases, and no attention norm in layer 0.
            long layer = 4 * h * h + 3 * h * intermediateSize + 2 * h;
            long heads = (long) labels.size() * (h + 1);
            return (long) vocabSize * h + numLayers * layer + heads;
        }
        long embeddings = ((long) vocabSize + maxPositions + typeVocabSize + 2) * h;
        long attention = 4 * (h * h + h) + 2 * h;
        long feedForward = 2 * h * intermediateSize + intermediateSize + h + 2 * h;
        long layers = numLayers * (attention + feedForward);
        long heads = (pooler ? h * h + h : 0) + (long) labels.size() * (h + 1);
        long relative = (long) relativeBuckets * numHeads;
        return embeddings + layers + heads + relative;
    }

    @Override
    public String toString() {
        return "EncoderConfig{"
                + architecture.getModelType()
                + ", hidden="
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
        private EncoderArchitecture architecture = EncoderArchitecture.BERT;
        private int padTokenId;
        private int relativeBuckets;
        private int relativeMaxDistance = 128;
        private boolean bias = true;
        private boolean normBias = true;
        private float ropeTheta;
        private float localRopeTheta;
        private int localWindow;
        private boolean[] localLayers;

        private Builder() {}

        /**
         * Sets the family (default {@link EncoderArchitecture#BERT}).
         *
         * @param architecture the family
         * @return this builder
         */
        public Builder optArchitecture(EncoderArchitecture architecture) {
            this.architecture = architecture;
            return this;
        }

        /**
         * Sets the padding token's id (default 0), from which RoBERTa-style positions count.
         *
         * @param padTokenId {@code pad_token_id}
         * @return this builder
         */
        public Builder optPadTokenId(int padTokenId) {
            this.padTokenId = padTokenId;
            return this;
        }

        /**
         * Sets MPNet's relative-position bias (default none).
         *
         * @param buckets {@code relative_attention_num_buckets}, 0 for none
         * @param maxDistance the distance from which positions share the outermost buckets
         * @return this builder
         */
        public Builder optRelativeBuckets(int buckets, int maxDistance) {
            this.relativeBuckets = buckets;
            this.relativeMaxDistance = maxDistance;
            return this;
        }

        /**
         * Sets whether linear layers and norms carry biases (default both true).
         *
         * @param linear biases on linear layers
         * @param norm biases on layer norms
         * @return this builder
         */
        public Builder optBiases(boolean linear, boolean norm) {
            this.bias = linear;
            this.normBias = norm;
            return this;
        }

        /**
         * Sets rotary positions and local attention (ModernBERT).
         *
         * @param globalTheta the rotary base of global layers
         * @param localTheta the rotary base of local layers
         * @param window how many positions before and after a token a local layer sees
         * @param localLayers which layers attend locally, one entry per layer
         * @return this builder
         */
        public Builder optRotary(
                float globalTheta, float localTheta, int window, boolean[] localLayers) {
            this.ropeTheta = globalTheta;
            this.localRopeTheta = localTheta;
            this.localWindow = window;
            this.localLayers = localLayers == null ? null : localLayers.clone();
            return this;
        }

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
            if (architecture == null) {
                throw new IllegalArgumentException("architecture must not be null");
            }
            range("pad_token_id", padTokenId, 0, MAX_VOCAB_SIZE);
            range("relative_attention_num_buckets", relativeBuckets, 0, 1 << 12);
            range("relative max distance", relativeMaxDistance, 1, MAX_POSITIONS);
            range("local_attention / 2", localWindow, 0, MAX_POSITIONS);
            if (architecture.positionsAfterPadding() && padTokenId + 1 >= maxPositions) {
                throw new IllegalArgumentException(
                        "pad_token_id "
                                + padTokenId
                                + " leaves no positions in a table of "
                                + maxPositions);
            }
            if (architecture == EncoderArchitecture.MODERNBERT) {
                if (!(ropeTheta > 0f && Float.isFinite(ropeTheta))
                        || !(localRopeTheta > 0f && Float.isFinite(localRopeTheta))) {
                    throw new IllegalArgumentException(
                            "rotary thetas must be positive and finite, got "
                                    + ropeTheta
                                    + " and "
                                    + localRopeTheta);
                }
                if ((hiddenSize / numHeads) % 2 != 0) {
                    throw new IllegalArgumentException(
                            "rotary positions need an even head size, got "
                                    + hiddenSize / numHeads);
                }
            }
            if (localLayers != null && localLayers.length != numLayers) {
                throw new IllegalArgumentException(
                        "layer types list "
                                + localLayers.length
                                + " layers, num_hidden_layers is "
                                + numLayers);
            }
            if (!labels.isEmpty() && !pooler && architecture.isBertLayout()) {
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
