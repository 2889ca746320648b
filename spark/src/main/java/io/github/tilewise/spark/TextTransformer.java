package io.github.tilewise.spark;

import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.lowp.Precision;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * What {@link TextEmbedder} and {@link TextClassifier} share: the input column and the encoder's
 * parameters, the schema checks and the per-partition run (see {@link TextEmbedder} for the
 * parameters and how a DataFrame is processed).
 *
 * @param <T> the concrete stage, returned by the setters
 */
public abstract class TextTransformer<T extends TextTransformer<T>> extends Transformer
        implements DefaultParamsWritable {

    private static final long serialVersionUID = 1L;

    private static final List<String> HANDLE_INVALID = List.of("keep", "skip", "error");

    private final String uid;
    private final Param<String> inputCol;
    private final Param<String> modelPath;
    private final Param<String> tokenizerPath;
    private final Param<String> precision;
    private final Param<String> pooling;
    private final BooleanParam normalize;
    private final IntParam maxLength;
    private final BooleanParam truncation;
    private final IntParam batchSize;
    private final BooleanParam sortByLength;
    private final Param<String> handleInvalid;

    /**
     * Creates the shared parameters.
     *
     * @param uid the stage's uid
     */
    protected TextTransformer(String uid) {
        this.uid = uid;
        inputCol = new Param<>(this, "inputCol", "the string column holding the texts");
        modelPath =
                new Param<>(
                        this,
                        "modelPath",
                        "the checkpoint (.onnx file or Hugging Face directory) on a path every"
                                + " executor shares, or the name of a file given to"
                                + " SparkContext.addFile");
        tokenizerPath =
                new Param<>(
                        this,
                        "tokenizerPath",
                        "tokenizer.json (empty: the one next to the model), resolved like"
                                + " modelPath");
        precision =
                new Param<>(
                        this,
                        "precision",
                        "arithmetic of the linear layers: fp32, int8, int8_weight_only, bf16,"
                                + " fp16");
        pooling =
                new Param<>(
                        this,
                        "pooling",
                        "cls, mean, max, mean_sqrt_len, weighted_mean, last_token, pooler"
                                + " (unset: the model's sentence-transformers files, else mean)");
        normalize =
                new BooleanParam(
                        this, "normalize", "L2-normalise the vectors (unset: the model's own)");
        maxLength =
                new IntParam(
                        this,
                        "maxLength",
                        "most tokens per text (unset: the model's position table, capped by its"
                                + " max_seq_length)");
        truncation =
                new BooleanParam(
                        this,
                        "truncation",
                        "cut texts longer than maxLength (true) or fail on their row (false)");
        batchSize = new IntParam(this, "batchSize", "texts per forward pass");
        sortByLength =
                new BooleanParam(
                        this,
                        "sortByLength",
                        "sort the texts of each window of 32 batches by length before batching"
                                + " (default true; false: batches in row order)");
        handleInvalid =
                new Param<>(
                        this,
                        "handleInvalid",
                        "null texts: keep (null outputs), skip (drop the row), error (fail,"
                                + " naming the row)");
        setDefault(inputCol, "text");
        setDefault(tokenizerPath, "");
        setDefault(precision, "fp32");
        setDefault(pooling, "");
        setDefault(truncation, true);
        setDefault(batchSize, 32);
        setDefault(sortByLength, true);
        setDefault(handleInvalid, "keep");
    }

    /**
     * Returns a new uid with a prefix, as Spark's own stages make them.
     *
     * @param prefix the prefix
     * @return {@code prefix_} and 12 hexadecimal digits
     */
    protected static String randomUid(String prefix) {
        String u = UUID.randomUUID().toString();
        return prefix + "_" + u.substring(u.length() - 12);
    }

    /**
     * Returns this stage as its own type, for chained setters.
     *
     * @return this
     */
    @SuppressWarnings("unchecked")
    protected final T self() {
        return (T) this;
    }

    @Override
    public String uid() {
        return uid;
    }

    // ---- parameters ----

    /**
     * Param: the string column of texts (default {@code text}).
     *
     * @return the param
     */
    public Param<String> inputCol() {
        return inputCol;
    }

    /**
     * Param: the checkpoint, an {@code .onnx} file or a Hugging Face directory (required). A path
     * every executor sees, or the name of a file or directory given to {@code
     * SparkContext.addFile(path, true)}; see {@link ModelFiles}.
     *
     * @return the param
     */
    public Param<String> modelPath() {
        return modelPath;
    }

    /**
     * Param: the {@code tokenizer.json} (default empty: the one next to the model).
     *
     * @return the param
     */
    public Param<String> tokenizerPath() {
        return tokenizerPath;
    }

    /**
     * Param: the precision of the linear layers, {@code fp32} (default), {@code int8}, {@code
     * int8_weight_only}, {@code bf16} or {@code fp16}. On a CPU without the native instructions the
     * layers run on a slower kernel of the same format, logged once per executor.
     *
     * @return the param
     */
    public Param<String> precision() {
        return precision;
    }

    /**
     * Param: the pooling (default empty: the model's sentence-transformers Pooling module, else
     * {@code mean}).
     *
     * @return the param
     */
    public Param<String> pooling() {
        return pooling;
    }

    /**
     * Param: whether to L2-normalise the vectors (unset: as the model's {@code modules.json} says).
     *
     * @return the param
     */
    public BooleanParam normalize() {
        return normalize;
    }

    /**
     * Param: the most tokens per text (unset: the model's default).
     *
     * @return the param
     */
    public IntParam maxLength() {
        return maxLength;
    }

    /**
     * Param: whether longer texts are cut to {@code maxLength} tokens (default true) or fail their
     * row with a {@link TextRowException}.
     *
     * @return the param
     */
    public BooleanParam truncation() {
        return truncation;
    }

    /**
     * Param: texts per forward pass (default 32).
     *
     * @return the param
     */
    public IntParam batchSize() {
        return batchSize;
    }

    /**
     * Param: whether the texts of each window of {@code 32 × batchSize} rows are sorted by length
     * (in characters) before they are cut into batches of {@code batchSize} (default true; false:
     * batches of consecutive rows, as a plain loop over the rows would take them). Either way the
     * rows come out in their order. A batch runs packed, without padding, so sorting saves no
     * padded work: it groups texts of like length, so a batch of long texts runs in chunks of whole
     * texts ({@code tilewise.packedTokens}) and a batch of short ones in one. On the mixed corpus
     * of the module's benchmark sorted and row-order batches ran equally fast (see its README);
     * before the packed chunks were sized to stay off glibc's per-call mmaps, sorted ones were
     * 27–30% slower. With padded batches ({@code -Dtilewise.packed=false}) sorting saves the
     * padding.
     *
     * @return the param
     */
    public BooleanParam sortByLength() {
        return sortByLength;
    }

    /**
     * Param: what a null text gives: {@code keep} (default: null outputs), {@code skip} (the row is
     * dropped) or {@code error} (the task fails, naming the row). An empty text is a text: it gets
     * the vector or labels of the special tokens alone, as {@code TextEncoder.embed("")} does.
     *
     * @return the param
     */
    public Param<String> handleInvalid() {
        return handleInvalid;
    }

    // ---- getters and setters ----

    /**
     * Returns the input column.
     *
     * @return the column name
     */
    public String getInputCol() {
        return $(inputCol);
    }

    /**
     * Sets the input column.
     *
     * @param value a string column
     * @return this stage
     */
    public T setInputCol(String value) {
        set(inputCol, value);
        return self();
    }

    /**
     * Returns the model path.
     *
     * @return the path
     */
    public String getModelPath() {
        return $(modelPath);
    }

    /**
     * Sets the model path.
     *
     * @param value the path
     * @return this stage
     */
    public T setModelPath(String value) {
        set(modelPath, value);
        return self();
    }

    /**
     * Returns the tokenizer path (empty: next to the model).
     *
     * @return the path
     */
    public String getTokenizerPath() {
        return $(tokenizerPath);
    }

    /**
     * Sets the tokenizer path.
     *
     * @param value the path
     * @return this stage
     */
    public T setTokenizerPath(String value) {
        set(tokenizerPath, value);
        return self();
    }

    /**
     * Returns the precision.
     *
     * @return the precision's name
     */
    public String getPrecision() {
        return $(precision);
    }

    /**
     * Sets the precision.
     *
     * @param value fp32, int8, int8_weight_only, bf16 or fp16
     * @return this stage
     * @throws IllegalArgumentException for another name
     */
    public T setPrecision(String value) {
        set(precision, Precision.fromName(value).label());
        return self();
    }

    /**
     * Returns the pooling (empty: the model's).
     *
     * @return the pooling's name
     */
    public String getPooling() {
        return $(pooling);
    }

    /**
     * Sets the pooling.
     *
     * @param value a pooling name
     * @return this stage
     * @throws IllegalArgumentException for an unknown name
     */
    public T setPooling(String value) {
        Pooling.fromName(value);
        set(pooling, value);
        return self();
    }

    /**
     * Returns whether vectors are normalised; only when set.
     *
     * @return the setting
     */
    public boolean getNormalize() {
        return (Boolean) $(normalize);
    }

    /**
     * Sets L2 normalisation.
     *
     * @param value true to normalise
     * @return this stage
     */
    public T setNormalize(boolean value) {
        set(normalize, value);
        return self();
    }

    /**
     * Returns the most tokens per text; only when set.
     *
     * @return the length
     */
    public int getMaxLength() {
        return (Integer) $(maxLength);
    }

    /**
     * Sets the most tokens per text.
     *
     * @param value a positive length
     * @return this stage
     */
    public T setMaxLength(int value) {
        if (value < 1) {
            throw new IllegalArgumentException("maxLength must be positive, got " + value);
        }
        set(maxLength, value);
        return self();
    }

    /**
     * Returns whether longer texts are truncated.
     *
     * @return the setting
     */
    public boolean getTruncation() {
        return (Boolean) $(truncation);
    }

    /**
     * Sets whether longer texts are truncated.
     *
     * @param value true to truncate, false to fail their row
     * @return this stage
     */
    public T setTruncation(boolean value) {
        set(truncation, value);
        return self();
    }

    /**
     * Returns the batch size.
     *
     * @return texts per forward pass
     */
    public int getBatchSize() {
        return (Integer) $(batchSize);
    }

    /**
     * Sets the batch size.
     *
     * @param value texts per forward pass
     * @return this stage
     */
    public T setBatchSize(int value) {
        if (value < 1) {
            throw new IllegalArgumentException("batchSize must be positive, got " + value);
        }
        set(batchSize, value);
        return self();
    }

    /**
     * Returns whether the texts of a window are sorted by length before batching.
     *
     * @return the setting
     */
    public boolean getSortByLength() {
        return (Boolean) $(sortByLength);
    }

    /**
     * Sets whether the texts of a window are sorted by length before batching.
     *
     * @param value true to sort
     * @return this stage
     */
    public T setSortByLength(boolean value) {
        set(sortByLength, value);
        return self();
    }

    /**
     * Returns the null-text policy.
     *
     * @return keep, skip or error
     */
    public String getHandleInvalid() {
        return $(handleInvalid);
    }

    /**
     * Sets the null-text policy.
     *
     * @param value keep, skip or error
     * @return this stage
     */
    public T setHandleInvalid(String value) {
        checkHandleInvalid(value);
        set(handleInvalid, value);
        return self();
    }

    private static void checkHandleInvalid(String value) {
        if (!HANDLE_INVALID.contains(value)) {
            throw new IllegalArgumentException(
                    "handleInvalid must be one of " + HANDLE_INVALID + ", got '" + value + "'");
        }
    }

    // ---- the work ----

    /**
     * Returns the encoder this stage's parameters name (the model cache's key).
     *
     * @return the specification
     * @throws IllegalArgumentException if {@code modelPath} is not set or a value is invalid
     */
    public EncoderSpec encoderSpec() {
        if (!isDefined(modelPath)) {
            throw new IllegalArgumentException(uid + ": modelPath is not set");
        }
        String p = getPooling();
        return new EncoderSpec(
                getModelPath(),
                getTokenizerPath(),
                getPrecision(),
                p.isEmpty() ? null : p,
                isDefined(normalize) ? getNormalize() : null,
                isDefined(maxLength) ? getMaxLength() : null,
                getTruncation());
    }

    /**
     * Returns the columns this stage appends.
     *
     * @return the fields, in order
     */
    protected abstract List<StructField> outputFields();

    /**
     * Returns what the stage computes per batch of texts.
     *
     * @return the outputs, matching {@link #outputFields()}
     */
    abstract TextPartitionFunction.Outputs outputs();

    @Override
    public StructType transformSchema(StructType schema) {
        String in = getInputCol();
        if (!Arrays.asList(schema.fieldNames()).contains(in)) {
            throw new IllegalArgumentException(
                    uid
                            + ": input column '"
                            + in
                            + "' does not exist; columns: "
                            + String.join(", ", schema.fieldNames()));
        }
        StructField field = schema.apply(in);
        if (!field.dataType().equals(DataTypes.StringType)) {
            throw new IllegalArgumentException(
                    uid
                            + ": input column '"
                            + in
                            + "' must be of type string but is "
                            + field.dataType().catalogString());
        }
        checkHandleInvalid(getHandleInvalid());
        encoderSpec();
        StructType out = schema;
        for (StructField f : outputFields()) {
            if (Arrays.asList(schema.fieldNames()).contains(f.name())) {
                throw new IllegalArgumentException(
                        uid + ": output column '" + f.name() + "' already exists");
            }
            out = out.add(f);
        }
        return out;
    }

    @Override
    public Dataset<Row> transform(Dataset<?> dataset) {
        StructType outSchema = transformSchema(dataset.schema());
        Dataset<Row> df = dataset.toDF();
        TextPartitionFunction fn =
                new TextPartitionFunction(
                        uid,
                        encoderSpec(),
                        df.schema().fieldIndex(getInputCol()),
                        getBatchSize(),
                        getSortByLength(),
                        getHandleInvalid(),
                        outputs());
        return df.mapPartitions(fn, Encoders.row(outSchema));
    }
}
