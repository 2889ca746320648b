package io.github.tilewise.djl.encoder.text;

import ai.djl.MalformedModelException;
import io.github.tilewise.djl.encoder.EncoderConfig;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.checkpoint.SentenceTransformerConfig;
import java.util.Optional;
import java.util.OptionalInt;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The settings a user leaves out, taken from the model: pooling, normalisation and the tokenizer's
 * maximum length, shared by {@link TextEncoder}, the DJL {@code Criteria} path and the Tribuo
 * extractor.
 *
 * <p>An explicit choice always wins. Otherwise, with sentence-transformers files ({@link
 * SentenceTransformerConfig}): the Pooling module's mode, L2 normalisation when a Normalize module
 * follows it, and at most {@code max_seq_length} tokens. Without them: {@link #DEFAULT_POOLING}, no
 * normalisation, and the model's whole position table. Each choice is logged with its reason.
 */
public final class ModelDefaults {

    /** The pooling of a model without sentence-transformers files. */
    public static final Pooling DEFAULT_POOLING = Pooling.MEAN;

    private static final Logger logger = LoggerFactory.getLogger(ModelDefaults.class);

    private ModelDefaults() {}

    /**
     * Chooses the pooling.
     *
     * @param explicit the user's choice, or null
     * @param st the model's sentence-transformers files, if any
     * @param config the model's configuration
     * @param model the model, for the log
     * @return {@code explicit}, else the model's own pooling, else {@link #DEFAULT_POOLING}
     * @throws MalformedModelException if the Pooling module's {@code word_embedding_dimension}
     *     contradicts the model's hidden size
     * @throws UnsupportedOperationException naming the module when the model's own pooling is
     *     needed but Tilewise cannot compute it (several modes, a Dense module)
     */
    public static Pooling pooling(
            Pooling explicit,
            Optional<SentenceTransformerConfig> st,
            EncoderConfig config,
            Object model)
            throws MalformedModelException {
        if (st.isPresent()) {
            OptionalInt dim = st.get().getWordEmbeddingDimension();
            if (dim.isPresent() && dim.getAsInt() != config.getHiddenSize()) {
                throw new MalformedModelException(
                        st.get().getDirectory()
                                + ": the Pooling module's word_embedding_dimension "
                                + dim.getAsInt()
                                + " contradicts the encoder's hidden size "
                                + config.getHiddenSize());
            }
        }
        if (explicit != null) {
            if (st.isPresent() && !st.get().getUnsupportedModules().isEmpty()) {
                logger.warn(
                        "{}: pooling {} as asked; the model's sentence embedding also needs what"
                                + " Tilewise does not run: {}",
                        model,
                        explicit,
                        st.get().getUnsupportedModules());
            }
            logger.debug("{}: pooling {} (chosen by the user)", model, explicit);
            return explicit;
        }
        if (st.isPresent()) {
            Optional<Pooling> own = st.get().getPooling();
            if (own.isPresent()) {
                logger.info(
                        "{}: pooling {} (from the sentence-transformers Pooling module in {})",
                        model,
                        own.get(),
                        st.get().getDirectory());
                return own.get();
            }
            logger.info(
                    "{}: pooling {} (default: {} lists no Pooling module)",
                    model,
                    DEFAULT_POOLING,
                    SentenceTransformerConfig.MODULES_FILE);
            return DEFAULT_POOLING;
        }
        logger.info(
                "{}: pooling {} (default: no sentence-transformers {})",
                model,
                DEFAULT_POOLING,
                SentenceTransformerConfig.MODULES_FILE);
        return DEFAULT_POOLING;
    }

    /**
     * Chooses L2 normalisation of text vectors.
     *
     * @param explicit the user's choice, or null
     * @param st the model's sentence-transformers files, if any
     * @param model the model, for the log
     * @return {@code explicit}, else whether the model has a Normalize module (false without one)
     */
    public static boolean normalize(
            Boolean explicit, Optional<SentenceTransformerConfig> st, Object model) {
        if (explicit != null) {
            logger.debug("{}: normalize {} (chosen by the user)", model, explicit);
            return explicit;
        }
        boolean n = st.map(SentenceTransformerConfig::isNormalize).orElse(false);
        logger.info(
                "{}: normalize {} ({})",
                model,
                n,
                st.isPresent()
                        ? (n ? "a" : "no") + " sentence-transformers Normalize module"
                        : "default: no sentence-transformers "
                                + SentenceTransformerConfig.MODULES_FILE);
        return n;
    }

    /**
     * Chooses the tokenizer's maximum length.
     *
     * @param explicit the user's choice, or null
     * @param st the model's sentence-transformers files, if any
     * @param config the model's configuration
     * @param model the model, for the log
     * @return {@code explicit}, else {@link EncoderConfig#getMaxSequenceLength()} capped by {@code
     *     max_seq_length}
     * @throws IllegalArgumentException if {@code explicit} exceeds the position table
     */
    public static int maxLength(
            Integer explicit,
            Optional<SentenceTransformerConfig> st,
            EncoderConfig config,
            Object model) {
        int positions = config.getMaxSequenceLength();
        if (explicit != null) {
            if (explicit > positions) {
                throw new IllegalArgumentException(
                        "maxLength "
                                + explicit
                                + " exceeds the model's "
                                + positions
                                + " positions");
            }
            logger.debug("{}: maxLength {} (chosen by the user)", model, explicit);
            return explicit;
        }
        OptionalInt seq =
                st.map(SentenceTransformerConfig::getMaxSeqLength).orElse(OptionalInt.empty());
        if (seq.isPresent() && seq.getAsInt() < positions) {
            logger.info(
                    "{}: maxLength {} (sentence-transformers max_seq_length; the positions allow {})",
                    model,
                    seq.getAsInt(),
                    positions);
            return seq.getAsInt();
        }
        logger.info("{}: maxLength {} (the model's position table)", model, positions);
        return positions;
    }

    /**
     * Returns whether texts are lower-cased before tokenization ({@code do_lower_case}).
     *
     * @param st the model's sentence-transformers files, if any
     * @return true when {@code sentence_bert_config.json} asks for it
     */
    public static boolean lowerCase(Optional<SentenceTransformerConfig> st) {
        return st.map(SentenceTransformerConfig::isDoLowerCase).orElse(false);
    }
}
