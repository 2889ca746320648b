package io.github.tilewise.djl.encoder.text;

import ai.djl.MalformedModelException;
import ai.djl.modality.Classifications;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import io.github.tilewise.djl.CallGuard;
import io.github.tilewise.djl.encoder.EncoderConfig;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import io.github.tilewise.djl.encoder.TransformerEncoder;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import io.github.tilewise.djl.encoder.linear.LinearOperatorFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The plain Java face of the encoder: texts in, vectors (or class scores) out, without DJL's {@code
 * Criteria}.
 *
 * <pre>{@code
 * try (TextEncoder encoder = TextEncoder.builder()
 *         .setModelPath(Paths.get("all-MiniLM-L6-v2"))   // .onnx file or Hugging Face directory
 *         .optPooling(Pooling.MEAN)
 *         .optNormalize(true)
 *         .build()) {
 *     float[][] vectors = encoder.embed(List.of("first text", "second text"));
 * }
 * }</pre>
 *
 * Each call tokenizes its texts into one padded batch and runs it in one forward pass inside a
 * scoped sub-manager. Instances are thread-safe: calls may run concurrently, and {@link #close()}
 * waits for the calls in flight before it frees the model; later calls throw {@link
 * IllegalStateException}.
 */
public final class TextEncoder implements AutoCloseable {

    private final NDManager manager;
    private final boolean ownsManager;
    private final TextEncoderBlock block;
    private final EncoderTokenizer tokenizer;
    private final CallGuard guard;

    private TextEncoder(
            NDManager manager,
            boolean ownsManager,
            TextEncoderBlock block,
            EncoderTokenizer tok,
            String name) {
        this.guard = new CallGuard("TextEncoder " + name);
        this.manager = manager;
        this.ownsManager = ownsManager;
        this.block = block;
        this.tokenizer = tok;
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
     * Embeds texts as one padded batch.
     *
     * @param texts the texts
     * @return one vector per text, in order
     * @throws IllegalStateException if the pooling is {@link Pooling#NONE} (use {@link
     *     #embedTokens})
     */
    public float[][] embed(List<String> texts) {
        if (block.getPooling() == Pooling.NONE) {
            throw new IllegalStateException("pooling is NONE: use embedTokens for token vectors");
        }
        try (CallGuard.Lease lease = guard.enter();
                NDManager scope = manager.newSubManager()) {
            TokenBatch batch = tokenizer.encode(texts);
            NDList out = run(batch, scope);
            return rows(out.get(TextEncoderBlock.SENTENCE_EMBEDDING));
        }
    }

    /**
     * Embeds one text.
     *
     * @param text the text
     * @return its vector
     */
    public float[] embed(String text) {
        return embed(List.of(text))[0];
    }

    /**
     * Returns the token vectors of each text (the last hidden state over its valid tokens).
     *
     * @param texts the texts
     * @return per text, {@code [tokens][hidden]}
     */
    public float[][][] embedTokens(List<String> texts) {
        try (CallGuard.Lease lease = guard.enter();
                NDManager scope = manager.newSubManager()) {
            TokenBatch batch = tokenizer.encode(texts);
            NDArray hidden = run(batch, scope).get(TransformerEncoder.LAST_HIDDEN_STATE);
            float[] all = hidden.toFloatArray();
            int seq = batch.getSequenceLength();
            int h = getConfig().getHiddenSize();
            int[] lengths = batch.getLengths();
            float[][][] out = new float[lengths.length][][];
            for (int b = 0; b < lengths.length; b++) {
                out[b] = new float[lengths[b]][];
                for (int t = 0; t < lengths[b]; t++) {
                    int from = (b * seq + t) * h;
                    out[b][t] = Arrays.copyOfRange(all, from, from + h);
                }
            }
            return out;
        }
    }

    /**
     * Classifies texts with the checkpoint's sequence-classification head.
     *
     * @param texts the texts
     * @return softmax probabilities over the labels, per text
     * @throws IllegalStateException if the checkpoint has no classifier
     */
    public List<Classifications> classify(List<String> texts) {
        EncoderConfig config = getConfig();
        if (!config.hasClassifier()) {
            throw new IllegalStateException("the checkpoint has no classification head");
        }
        try (CallGuard.Lease lease = guard.enter();
                NDManager scope = manager.newSubManager()) {
            TokenBatch batch = tokenizer.encode(texts);
            NDArray probabilities = run(batch, scope).get(TextEncoderBlock.LOGITS).softmax(-1);
            float[][] p = rows(probabilities);
            List<Classifications> out = new ArrayList<>(p.length);
            for (float[] row : p) {
                List<Double> values = new ArrayList<>(row.length);
                for (float v : row) {
                    values.add((double) v);
                }
                out.add(new Classifications(config.getLabels(), values));
            }
            return out;
        }
    }

    private NDList run(TokenBatch batch, NDManager scope) {
        NDList inputs = batch.toNDList(scope);
        return block.run(inputs.get(0), inputs.get(1), inputs.get(2));
    }

    private static float[][] rows(NDArray matrix) {
        int n = (int) matrix.getShape().get(0);
        int d = (int) matrix.getShape().get(1);
        float[] all = matrix.toFloatArray();
        float[][] out = new float[n][];
        for (int i = 0; i < n; i++) {
            out[i] = Arrays.copyOfRange(all, i * d, (i + 1) * d);
        }
        return out;
    }

    /**
     * Returns the model's configuration.
     *
     * @return the configuration
     */
    public EncoderConfig getConfig() {
        return block.getEncoder().getConfig();
    }

    /**
     * Returns the model block (for converters and direct NDArray use).
     *
     * @return the block
     */
    public TextEncoderBlock getBlock() {
        return block;
    }

    /**
     * Returns the tokenizer.
     *
     * @return the tokenizer
     */
    public EncoderTokenizer getTokenizer() {
        return tokenizer;
    }

    /**
     * Returns the manager owning the weights.
     *
     * @return the manager
     */
    public NDManager getManager() {
        return manager;
    }

    @Override
    public void close() {
        guard.close(
                () -> {
                    block.close();
                    tokenizer.close();
                    if (ownsManager) {
                        manager.close();
                    }
                });
    }

    /** Builder of {@link TextEncoder}: {@code setModelPath} is required. */
    public static final class Builder {

        private Path modelPath;
        private Path tokenizerPath;
        private Pooling pooling = Pooling.MEAN;
        private boolean normalize;
        private Integer maxLength;
        private boolean truncation = true;
        private LinearOperatorFactory linearOperators;
        private NDManager manager;

        private Builder() {}

        /**
         * Sets the checkpoint: an ONNX file, or a directory with {@code config.json} + {@code
         * model.safetensors} (or with one {@code .onnx} file).
         *
         * @param modelPath the file or directory
         * @return this builder
         */
        public Builder setModelPath(Path modelPath) {
            this.modelPath = modelPath;
            return this;
        }

        /**
         * Sets the tokenizer file (default: {@code tokenizer.json} next to the model).
         *
         * @param tokenizerPath the {@code tokenizer.json}
         * @return this builder
         */
        public Builder optTokenizerPath(Path tokenizerPath) {
            this.tokenizerPath = tokenizerPath;
            return this;
        }

        /**
         * Sets the pooling (default {@link Pooling#MEAN}).
         *
         * @param pooling the pooling
         * @return this builder
         */
        public Builder optPooling(Pooling pooling) {
            this.pooling = pooling;
            return this;
        }

        /**
         * Sets L2 normalisation of text vectors (default false).
         *
         * @param normalize true to normalise
         * @return this builder
         */
        public Builder optNormalize(boolean normalize) {
            this.normalize = normalize;
            return this;
        }

        /**
         * Sets the most tokens per text (default: the model's position count).
         *
         * @param maxLength at most the model's positions
         * @return this builder
         */
        public Builder optMaxLength(int maxLength) {
            this.maxLength = maxLength;
            return this;
        }

        /**
         * Sets whether longer texts are truncated (default) or refused.
         *
         * @param truncation true to truncate
         * @return this builder
         */
        public Builder optTruncation(boolean truncation) {
            this.truncation = truncation;
            return this;
        }

        /**
         * Sets a factory replacing the fp32 arithmetic of linear layers (e.g. INT8): the one way to
         * plug operators into the encoder, as a {@link
         * io.github.tilewise.djl.lowp.LowPrecisionConverter} or an {@code OrtQuantizedImport} does.
         *
         * @param factory the factory
         * @return this builder
         */
        public Builder optLinearOperatorFactory(LinearOperatorFactory factory) {
            this.linearOperators = factory;
            return this;
        }

        /**
         * Sets the manager that owns the weights (default: a new PyTorch manager, closed with the
         * encoder).
         *
         * @param manager a PyTorch-engine manager
         * @return this builder
         */
        public Builder optManager(NDManager manager) {
            this.manager = manager;
            return this;
        }

        /**
         * Reads the checkpoint and the tokenizer.
         *
         * @return the encoder
         * @throws IOException if a file is missing or unreadable
         * @throws MalformedModelException naming the file and the problem otherwise
         */
        public TextEncoder build() throws IOException, MalformedModelException {
            if (modelPath == null) {
                throw new IllegalArgumentException("setModelPath is required");
            }
            EncoderCheckpoint checkpoint = EncoderCheckpoint.read(modelPath);
            EncoderConfig config = checkpoint.getConfig();
            int length = maxLength == null ? config.getMaxSequenceLength() : maxLength;
            if (length > config.getMaxSequenceLength()) {
                throw new IllegalArgumentException(
                        "maxLength "
                                + length
                                + " exceeds the model's "
                                + config.getMaxSequenceLength()
                                + " positions");
            }
            Path tok = tokenizerPath != null ? tokenizerPath : defaultTokenizer(modelPath);
            EncoderTokenizer tokenizer = EncoderTokenizer.load(tok, length, truncation);
            boolean owns = manager == null;
            NDManager m = owns ? NDManager.newBaseManager("PyTorch") : manager;
            try {
                TextEncoderBlock block = checkpoint.createBlock(m, pooling, normalize);
                if (linearOperators != null) {
                    block.getEncoder().replaceLinearOperators(linearOperators);
                }
                return new TextEncoder(m, owns, block, tokenizer, modelPath.toString());
            } catch (MalformedModelException | RuntimeException e) {
                tokenizer.close();
                if (owns) {
                    m.close();
                }
                throw e;
            }
        }

        /** {@code tokenizer.json} in the model directory (or next to the model file). */
        static Path defaultTokenizer(Path modelPath) {
            Path dir =
                    Files.isDirectory(modelPath)
                            ? modelPath
                            : modelPath.toAbsolutePath().getParent();
            return dir.resolve("tokenizer.json");
        }
    }
}
