package io.github.tilewise.tribuo;

import ai.djl.MalformedModelException;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.oracle.labs.mlrg.olcut.config.Config;
import com.oracle.labs.mlrg.olcut.config.PropertyException;
import com.oracle.labs.mlrg.olcut.provenance.ProvenanceUtil;
import io.github.tilewise.djl.CallGuard;
import io.github.tilewise.djl.encoder.EncoderConfig;
import io.github.tilewise.djl.encoder.TransformerEncoder;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import io.github.tilewise.djl.lowp.ConversionReport;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.tribuo.Example;
import org.tribuo.Feature;
import org.tribuo.Output;
import org.tribuo.OutputFactory;
import org.tribuo.data.text.TextFeatureExtractor;
import org.tribuo.data.text.TextPipeline;
import org.tribuo.impl.ArrayExample;
import org.tribuo.interop.onnx.extractors.BERTFeatureExtractor;
import org.tribuo.interop.onnx.extractors.BERTFeatureExtractor.OutputPooling;

/**
 * A drop-in replacement for Tribuo's {@link BERTFeatureExtractor}, running the BERT model with
 * Tilewise's encoder (fused attention, optional low precision) instead of ONNX Runtime.
 *
 * <p>An OLCUT configuration of {@code BERTFeatureExtractor} works unchanged after swapping its
 * {@code type=} attribute for this class: the {@code @Config} fields have the original's names,
 * types and defaults ({@code outputFactory}, {@code modelPath}, {@code tokenizerPath}, {@code
 * maxLength} 512, {@code pooling} CLS, {@code useCUDA} false), plus the optional {@code precision}
 * (FP32) and {@code batchSize} (32).
 *
 * <p><b>Same features.</b> Texts are split by the original's wordpiece tokenizer (see {@link
 * WordpieceVocabulary}), truncated to {@code maxLength - 2} pieces, wrapped in {@code [CLS]} and
 * {@code [SEP]}, and pooled as the original pools: {@code CLS} is the pooler output, {@code MEAN}
 * the average of the piece vectors (the last hidden state without {@code [CLS]} and {@code [SEP]}),
 * {@code CLS_AND_MEAN} the average of the two. Features are named {@code D=} plus the index
 * zero-padded to the digits of the dimension, and {@code process(tag, text)} prefixes them with
 * {@code tag-}. A Tribuo model trained on the original's features predicts the same on these.
 *
 * <p><b>Beyond the original.</b>
 *
 * <ul>
 *   <li>Any BERT-family ONNX export (or Hugging Face directory) loads: the old {@code
 *       output_0}/{@code output_1} exports and modern ones with {@code last_hidden_state}, with or
 *       without {@code pooler_output}. The weights are read, not the graph's outputs. When the
 *       model has no pooler (e.g. sentence-transformers exports such as all-MiniLM-L6-v2), {@code
 *       CLS} means the first token's last hidden state.
 *   <li>One instance is safe to share between threads: tokenization clones the tokenizer per call,
 *       and every forward pass runs in its own NDManager scope over read-only weights.
 *   <li>A batch API ({@link #embed(List)}, {@link #extract(List, List)}, {@link #process(String,
 *       List)}) runs {@code batchSize} texts per padded forward pass, texts of similar length
 *       together: the fast path for data sets.
 *   <li>{@code maxLength} is checked against the model's position table when configured. The
 *       default 512 is lowered to the table's size (with a logged warning) so that configurations
 *       written for the original keep working with smaller models; any other value beyond the table
 *       is refused.
 *   <li>An empty text (no word pieces) has defined features: {@code MEAN} then averages the only
 *       tokens there are, {@code [CLS]} and {@code [SEP]}, where the original returns NaN.
 *   <li>{@code precision} runs the linear layers in INT8 (int8 weights per output channel, int8
 *       activations per token), INT8_WEIGHT_ONLY, BF16 or FP16 through Tilewise's low-precision
 *       converter; FP32 gives the original's features.
 *   <li>Provenance records the precision and the SHA-256 of the model and tokenizer files.
 * </ul>
 *
 * <p>Close it when done: the weights live in native memory. {@code useCUDA} is accepted for
 * compatibility; this extractor runs on the CPU and logs a warning when it is set.
 *
 * @param <T> the output type
 */
public final class TilewiseBERTFeatureExtractor<T extends Output<T>>
        implements AutoCloseable, TextFeatureExtractor<T>, TextPipeline {

    private static final Logger logger =
            Logger.getLogger(TilewiseBERTFeatureExtractor.class.getName());

    /** The original's default {@code maxLength}, lowered to small models' position tables. */
    static final int DEFAULT_MAX_LENGTH = 512;

    @Config(mandatory = true, description = "Output factory to use.")
    private OutputFactory<T> outputFactory;

    @Config(
            mandatory = true,
            description = "Path to the BERT model: an ONNX file or a Hugging Face directory")
    private Path modelPath;

    @Config(mandatory = true, description = "Path to the tokenizer config")
    private Path tokenizerPath;

    @Config(description = "Maximum length in wordpieces")
    private int maxLength = DEFAULT_MAX_LENGTH;

    @Config(
            description =
                    "Type of pooling to use when returning a single embedding for the input"
                            + " sequence")
    private OutputPooling pooling = OutputPooling.CLS;

    @Config(description = "Use CUDA (accepted for compatibility; Tilewise runs on the CPU)")
    private boolean useCUDA = false;

    @Config(
            description =
                    "Arithmetic of the encoder's linear layers: FP32, INT8, INT8_WEIGHT_ONLY, BF16"
                            + " or FP16")
    private Precision precision = Precision.FP32;

    @Config(description = "Texts per forward pass in the batch methods")
    private int batchSize = 32;

    private WordpieceVocabulary vocabulary;
    private NDManager manager;
    private TransformerEncoder encoder;
    private boolean clsFromPooler;
    private boolean hasTokenTypes;
    private int dimension;
    private String[] featureNames;
    private TilewiseExtractorProvenance provenance;
    private volatile CallGuard guard;

    /** For OLCUT. */
    private TilewiseBERTFeatureExtractor() {}

    /**
     * Constructs an extractor with the original's defaults (CLS pooling, 512 pieces, fp32).
     *
     * @param outputFactory the factory of unknown outputs
     * @param modelPath the BERT model (ONNX file or Hugging Face directory)
     * @param tokenizerPath the Hugging Face {@code tokenizer.json}
     * @throws PropertyException naming the field if the configuration is invalid
     */
    public TilewiseBERTFeatureExtractor(
            OutputFactory<T> outputFactory, Path modelPath, Path tokenizerPath) {
        this(
                outputFactory,
                modelPath,
                tokenizerPath,
                OutputPooling.CLS,
                DEFAULT_MAX_LENGTH,
                false,
                Precision.FP32,
                32);
    }

    /**
     * Constructs an extractor with the original's options.
     *
     * @param outputFactory the factory of unknown outputs
     * @param modelPath the BERT model (ONNX file or Hugging Face directory)
     * @param tokenizerPath the Hugging Face {@code tokenizer.json}
     * @param pooling the pooling
     * @param maxLength the most word pieces per text, {@code [CLS]} and {@code [SEP]} included
     * @param useCUDA accepted for compatibility (runs on the CPU)
     * @throws PropertyException naming the field if the configuration is invalid
     */
    public TilewiseBERTFeatureExtractor(
            OutputFactory<T> outputFactory,
            Path modelPath,
            Path tokenizerPath,
            OutputPooling pooling,
            int maxLength,
            boolean useCUDA) {
        this(
                outputFactory,
                modelPath,
                tokenizerPath,
                pooling,
                maxLength,
                useCUDA,
                Precision.FP32,
                32);
    }

    /**
     * Constructs an extractor with every option.
     *
     * @param outputFactory the factory of unknown outputs
     * @param modelPath the BERT model (ONNX file or Hugging Face directory)
     * @param tokenizerPath the Hugging Face {@code tokenizer.json}
     * @param pooling the pooling
     * @param maxLength the most word pieces per text, {@code [CLS]} and {@code [SEP]} included
     * @param useCUDA accepted for compatibility (runs on the CPU)
     * @param precision the arithmetic of the linear layers
     * @param batchSize texts per forward pass in the batch methods
     * @throws PropertyException naming the field if the configuration is invalid
     */
    public TilewiseBERTFeatureExtractor(
            OutputFactory<T> outputFactory,
            Path modelPath,
            Path tokenizerPath,
            OutputPooling pooling,
            int maxLength,
            boolean useCUDA,
            Precision precision,
            int batchSize) {
        this.outputFactory = outputFactory;
        this.modelPath = modelPath;
        this.tokenizerPath = tokenizerPath;
        this.pooling = pooling;
        this.maxLength = maxLength;
        this.useCUDA = useCUDA;
        this.precision = precision;
        this.batchSize = batchSize;
        postConfig();
    }

    @Override
    public void postConfig() throws PropertyException {
        require(outputFactory != null, "outputFactory", "is required");
        require(modelPath != null, "modelPath", "is required");
        require(tokenizerPath != null, "tokenizerPath", "is required");
        require(pooling != null, "pooling", "is required (CLS, MEAN or CLS_AND_MEAN)");
        require(precision != null, "precision", "is required");
        require(batchSize > 0, "batchSize", "must be positive, got " + batchSize);
        require(
                maxLength >= 2,
                "maxLength",
                "must be at least 2 ([CLS] and [SEP]), got " + maxLength);
        require(Files.exists(modelPath), "modelPath", "no such file: " + modelPath);
        require(
                Files.isRegularFile(tokenizerPath),
                "tokenizerPath",
                "no such file: " + tokenizerPath);
        if (useCUDA) {
            logger.warning("useCUDA is set, but the Tilewise extractor runs on the CPU");
        }
        try {
            vocabulary = WordpieceVocabulary.load(tokenizerPath);
        } catch (IOException | IllegalArgumentException e) {
            throw new PropertyException(
                    e, "", "tokenizerPath", "Failed to load tokenizer: " + e.getMessage());
        }

        EncoderCheckpoint checkpoint;
        try {
            checkpoint = EncoderCheckpoint.read(modelPath);
        } catch (IOException | MalformedModelException | RuntimeException e) {
            throw new PropertyException(
                    e, "", "modelPath", "Failed to load model: " + e.getMessage());
        }
        EncoderConfig config = checkpoint.getConfig();
        checkMaxLength(config.getMaxSequenceLength());
        checkTokenizerMatches(config);

        NDManager m = NDManager.newBaseManager("PyTorch");
        try {
            TransformerEncoder e = checkpoint.createEncoder(m);
            manager = m;
            encoder = e;
        } catch (MalformedModelException | RuntimeException e) {
            m.close();
            throw new PropertyException(
                    e, "", "modelPath", "Failed to build the encoder: " + e.getMessage());
        }
        convert();
        clsFromPooler = config.hasPooler();
        hasTokenTypes = config.getTypeVocabSize() > 0;
        dimension = config.getHiddenSize();
        featureNames = featureNames(dimension);
        guard = new CallGuard("TilewiseBERTFeatureExtractor " + modelPath);
        // One forward pass before anyone shares the instance: builds every layer's operator (lazy
        // in the encoder) and proves the model runs.
        try {
            embedPieces(List.of(vocabulary.tokenize("warm up")));
        } catch (RuntimeException e) {
            close();
            throw new PropertyException(
                    e,
                    "",
                    "modelPath",
                    "The model failed its first forward pass: " + e.getMessage());
        }
        provenance =
                new TilewiseExtractorProvenance(
                        this,
                        ProvenanceUtil.hashResource(ProvenanceUtil.HashType.SHA256, modelFile()),
                        ProvenanceUtil.hashResource(ProvenanceUtil.HashType.SHA256, tokenizerPath),
                        clsFromPooler ? "pooler" : "first-token");
        logger.log(
                Level.INFO,
                "Loaded {0} ({1}, {2}, maxLength {3}, CLS pooling reads {4})",
                new Object[] {
                    modelPath,
                    config,
                    precision,
                    maxLength,
                    clsFromPooler ? "the pooler" : "the first token's hidden state"
                });
    }

    /** The default maxLength shrinks to the position table; any other excess is an error. */
    private void checkMaxLength(int positions) {
        if (maxLength <= positions) {
            return;
        }
        if (maxLength == DEFAULT_MAX_LENGTH) {
            logger.warning(
                    "maxLength is the default "
                            + DEFAULT_MAX_LENGTH
                            + " but the model has only "
                            + positions
                            + " positions: using "
                            + positions);
            maxLength = positions;
            return;
        }
        throw new PropertyException(
                "",
                "maxLength",
                "maxLength "
                        + maxLength
                        + " exceeds the model's position table ("
                        + positions
                        + " positions) in "
                        + modelPath);
    }

    private void checkTokenizerMatches(EncoderConfig config) {
        int maxId = vocabulary.maxId();
        if (maxId >= config.getVocabSize()) {
            throw new PropertyException(
                    "",
                    "tokenizerPath",
                    "tokenizer "
                            + tokenizerPath
                            + " does not match the model: it has token id "
                            + maxId
                            + " but the model's embedding table has "
                            + config.getVocabSize()
                            + " rows");
        }
        if (vocabulary.getIds().size() < config.getVocabSize()) {
            logger.warning(
                    "tokenizer has "
                            + vocabulary.getIds().size()
                            + " tokens, the model "
                            + config.getVocabSize()
                            + ": check that they belong together");
        }
    }

    /**
     * Packs the linear layers into the configured precision (Tilewise's low-precision converter:
     * int8 weights with dynamic per-token activation quantization, or 16-bit weights).
     */
    private void convert() {
        if (precision == Precision.FP32) {
            return;
        }
        try {
            ConversionReport report =
                    LowPrecisionConverter.builder()
                            .setPrecision(precision)
                            .build()
                            .convert(encoder);
            if (report.count(precision) == 0) {
                logger.warning(
                        "precision "
                                + precision
                                + " is not available here (no native kernels): the encoder stays"
                                + " fp32");
            }
            logger.info("Converted the encoder: " + report);
        } catch (RuntimeException e) {
            close();
            throw new PropertyException(
                    e,
                    "",
                    "precision",
                    "Failed to convert to " + precision + ": " + e.getMessage());
        }
    }

    private Path modelFile() {
        if (!Files.isDirectory(modelPath)) {
            return modelPath;
        }
        Path safetensors = modelPath.resolve("model.safetensors");
        return Files.isRegularFile(safetensors) ? safetensors : modelPath.resolve("config.json");
    }

    private static void require(boolean ok, String field, String message) {
        if (!ok) {
            throw new PropertyException("", field, field + " " + message);
        }
    }

    /** "D=" + the index zero-padded to the number of digits of the dimension, as the original. */
    private static String[] featureNames(int dimension) {
        String format = "D=%0" + Integer.toString(dimension).length() + "d";
        String[] names = new String[dimension];
        for (int i = 0; i < dimension; i++) {
            names[i] = String.format(format, i);
        }
        return names;
    }

    @Override
    public TilewiseExtractorProvenance getProvenance() {
        return provenance;
    }

    /**
     * Returns the most word pieces per text, {@code [CLS]} and {@code [SEP]} included (after any
     * lowering of the default to the model's position table).
     *
     * @return the maximum length
     */
    public int getMaxLength() {
        return maxLength;
    }

    /**
     * Returns the vocabulary of the tokenizer.
     *
     * @return the tokens
     */
    public Set<String> getVocab() {
        return Collections.unmodifiableSet(vocabulary.getIds().keySet());
    }

    /**
     * Returns the width of the features.
     *
     * @return the model's hidden size
     */
    public int getDimension() {
        return dimension;
    }

    /**
     * Returns the precision the encoder runs in.
     *
     * @return the precision
     */
    public Precision getPrecision() {
        return precision;
    }

    /**
     * Returns whether {@code CLS} pooling reads the model's pooler (else the first token's hidden
     * state, for models without a pooler).
     *
     * @return true if the model has a pooler
     */
    public boolean isClsFromPooler() {
        return clsFromPooler;
    }

    /**
     * Splits a text into word pieces as the original does, truncated to {@code maxLength - 2}.
     *
     * @param text the text
     * @return the word pieces, without {@code [CLS]} and {@code [SEP]}
     */
    public List<String> tokenize(String text) {
        List<String> pieces = vocabulary.tokenize(text);
        if (pieces.size() > maxLength - 2) {
            logger.fine("Truncating a text of " + pieces.size() + " pieces to " + (maxLength - 2));
            pieces = new ArrayList<>(pieces.subList(0, maxLength - 2));
        }
        return pieces;
    }

    @Override
    public Example<T> extract(T output, String data) {
        return new ArrayExample<>(output, featureNames, embed(data));
    }

    /**
     * Runs already split word pieces through the model, as the original's method of that name.
     *
     * @param tokens the word pieces (at most {@code maxLength - 2})
     * @param output the example's output
     * @return a dense example
     * @throws IllegalArgumentException if there are too many pieces
     */
    public Example<T> extractExample(List<String> tokens, T output) {
        if (tokens.size() > maxLength - 2) {
            throw new IllegalArgumentException(
                    "Too many tokens, expected " + (maxLength - 2) + " found " + tokens.size());
        }
        return new ArrayExample<>(output, featureNames, embedPieces(List.of(tokens))[0]);
    }

    /**
     * Runs already split word pieces through the model, with the unknown output.
     *
     * @param tokens the word pieces (at most {@code maxLength - 2})
     * @return a dense example
     */
    public Example<T> extractExample(List<String> tokens) {
        return extractExample(tokens, outputFactory.getUnknownOutput());
    }

    @Override
    public List<Feature> process(String tag, String data) {
        return features(tag, embed(data));
    }

    /**
     * Returns the feature values of one text.
     *
     * @param text the text
     * @return {@link #getDimension()} values
     */
    public double[] embed(String text) {
        return embedPieces(List.of(tokenize(text)))[0];
    }

    /**
     * Returns the feature values of many texts, {@code batchSize} texts per forward pass.
     *
     * @param texts the texts
     * @return one row of {@link #getDimension()} values per text, in order
     */
    public double[][] embed(List<String> texts) {
        List<List<String>> pieces = new ArrayList<>(texts.size());
        for (String text : texts) {
            pieces.add(tokenize(text));
        }
        return embedPieces(pieces);
    }

    /**
     * Builds examples for many texts in batches (the batch form of {@link #extract(Output,
     * String)}), e.g. for a data set read into memory.
     *
     * @param outputs the outputs, one per text
     * @param texts the texts
     * @return the examples, in order
     * @throws IllegalArgumentException if the lists differ in size
     */
    public List<Example<T>> extract(List<T> outputs, List<String> texts) {
        if (outputs.size() != texts.size()) {
            throw new IllegalArgumentException(
                    outputs.size() + " outputs for " + texts.size() + " texts");
        }
        double[][] values = embed(texts);
        List<Example<T>> examples = new ArrayList<>(values.length);
        for (int i = 0; i < values.length; i++) {
            examples.add(new ArrayExample<>(outputs.get(i), featureNames, values[i]));
        }
        return examples;
    }

    /**
     * Returns the tagged features of many texts in batches (the batch form of {@link
     * #process(String, String)}).
     *
     * @param tag the prefix of the feature names
     * @param texts the texts
     * @return the features of each text, in order
     */
    public List<List<Feature>> process(String tag, List<String> texts) {
        double[][] values = embed(texts);
        List<List<Feature>> out = new ArrayList<>(values.length);
        for (double[] row : values) {
            out.add(features(tag, row));
        }
        return out;
    }

    private List<Feature> features(String tag, double[] values) {
        List<Feature> features = new ArrayList<>(values.length);
        for (int i = 0; i < values.length; i++) {
            features.add(new Feature(tag + "-" + featureNames[i], values[i]));
        }
        return features;
    }

    /** Pools every text; texts of similar length share a padded batch. */
    private double[][] embedPieces(List<List<String>> pieces) {
        CallGuard current = guard;
        if (current == null) {
            throw new IllegalStateException("the extractor is not configured (postConfig not run)");
        }
        try (CallGuard.Lease lease = current.enter()) {
            return embedLive(pieces);
        }
    }

    private double[][] embedLive(List<List<String>> pieces) {
        int n = pieces.size();
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Arrays.sort(order, Comparator.comparingInt(i -> pieces.get(i).size()));
        double[][] out = new double[n][];
        for (int from = 0; from < n; from += batchSize) {
            int to = Math.min(n, from + batchSize);
            runBatch(pieces, Arrays.copyOfRange(order, from, to), out);
        }
        return out;
    }

    private void runBatch(List<List<String>> pieces, Integer[] rows, double[][] out) {
        int batch = rows.length;
        int seq = 2;
        for (Integer r : rows) {
            seq = Math.max(seq, pieces.get(r).size() + 2);
        }
        long[] ids = new long[batch * seq];
        long[] mask = new long[batch * seq];
        for (int b = 0; b < batch; b++) {
            List<String> p = pieces.get(rows[b]);
            vocabulary.writeIds(p, ids, b * seq);
            Arrays.fill(mask, b * seq, b * seq + p.size() + 2, 1L);
        }
        Shape shape = new Shape(batch, seq);
        try (NDManager scope = manager.newSubManager()) {
            NDArray idArray = scope.create(ids, shape);
            NDArray maskArray = scope.create(mask, shape);
            NDArray types = hasTokenTypes ? scope.zeros(shape, idArray.getDataType()) : null;
            NDList result = encoder.encode(idArray, maskArray, types);
            float[] hidden = result.get(TransformerEncoder.LAST_HIDDEN_STATE).toFloatArray();
            float[] pooled =
                    clsFromPooler
                            ? result.get(TransformerEncoder.POOLER_OUTPUT).toFloatArray()
                            : null;
            for (int b = 0; b < batch; b++) {
                out[rows[b]] = pool(hidden, pooled, b, seq, pieces.get(rows[b]).size());
            }
        }
    }

    /**
     * The original's pooling, for row {@code b} of a padded batch: CLS reads the pooler (or the
     * first token), MEAN averages the {@code pieces} vectors between {@code [CLS]} and {@code
     * [SEP]} in double precision.
     */
    private double[] pool(float[] hidden, float[] pooled, int b, int seq, int pieces) {
        int h = dimension;
        double[] cls = new double[h];
        int clsFrom = pooled != null ? b * h : b * seq * h;
        float[] clsSource = pooled != null ? pooled : hidden;
        for (int i = 0; i < h; i++) {
            cls[i] = clsSource[clsFrom + i];
        }
        if (pooling == OutputPooling.CLS) {
            return cls;
        }
        // Pieces sit at positions 1..pieces; an empty text averages [CLS] and [SEP] instead.
        int first = pieces > 0 ? 1 : 0;
        int count = pieces > 0 ? pieces : 2;
        double[] mean = new double[h];
        for (int t = first; t < first + count; t++) {
            int from = (b * seq + t) * h;
            for (int i = 0; i < h; i++) {
                mean[i] += hidden[from + i];
            }
        }
        for (int i = 0; i < h; i++) {
            mean[i] /= count;
        }
        if (pooling == OutputPooling.MEAN) {
            return mean;
        }
        double[] both = new double[h];
        for (int i = 0; i < h; i++) {
            both[i] = (cls[i] + mean[i]) / 2.0;
        }
        return both;
    }

    /**
     * Waits for the calls in flight, then frees the model's native memory (packed weights and
     * parameters); later calls throw {@link IllegalStateException}.
     */
    @Override
    public void close() {
        CallGuard current = guard;
        if (current != null) {
            current.close(
                    () -> {
                        encoder.close();
                        manager.close();
                    });
        }
    }
}
