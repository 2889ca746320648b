package io.github.tilewise.spark;

import io.github.tilewise.djl.encoder.text.TextEncoder;
import java.util.List;
import org.apache.spark.ml.linalg.SQLDataTypes;
import org.apache.spark.ml.linalg.Vectors;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;

/**
 * A Spark ML {@code Transformer} that embeds a string column with a Tilewise encoder: a sentence
 * vector per row, as {@link TextEncoder#embed(List)} computes it in a single JVM.
 *
 * <pre>{@code
 * TextEmbedder embedder = new TextEmbedder()
 *         .setModelPath("/shared/models/all-MiniLM-L6-v2")   // or a name given to SparkContext.addFile
 *         .setInputCol("text")
 *         .setOutputCol("embedding")
 *         .setPrecision("int8");
 * Dataset<Row> vectors = embedder.transform(documents);       // + embedding: array<float>
 * }</pre>
 *
 * <p><b>Parameters</b> (as MLlib's own stages take them; see each method): {@code inputCol} ({@code
 * text}), {@code outputCol} ({@code embedding}), {@code outputType} ({@code array}: {@code
 * array<float>}, the encoder's floats as they are, compact in Parquet and usable from Spark SQL's
 * array functions; {@code vector}: an MLlib {@code Vector} of doubles for MLlib estimators such as
 * {@code KMeans} or {@code BucketedRandomProjectionLSH}), {@code modelPath} (required), {@code
 * tokenizerPath}, {@code precision} ({@code fp32}), {@code pooling}, {@code normalize} and {@code
 * maxLength} (the model's sentence-transformers defaults when unset), {@code truncation} ({@code
 * true}), {@code batchSize} (32), {@code sortByLength} (true), {@code handleInvalid} ({@code keep}:
 * a null text gives a null vector; {@code skip}; {@code error}). An empty text is embedded (the
 * special tokens alone).
 *
 * <p><b>How it runs</b>: each executor JVM loads the model once ({@link ModelCache}, keyed by the
 * model path and every option) and shares it between its tasks; each partition runs in
 * length-sorted packed batches of {@code batchSize} rows (each window of 32 batches sorted by
 * length, no padding; see {@link #sortByLength()}), and the rows keep their order; the native
 * threads per task follow {@code spark.task.cpus}; a task's hold on the model is released by a task
 * completion listener. A row that fails (e.g. too long with truncation off) fails its task with a
 * {@link TextRowException} naming the row; the executor goes on.
 *
 * <p>Saved and loaded with {@code DefaultParamsWritable} / {@code DefaultParamsReadable}, alone or
 * inside a {@code Pipeline}: only the parameters are written, the model stays where {@code
 * modelPath} points.
 */
public final class TextEmbedder extends TextTransformer<TextEmbedder> {

    private static final long serialVersionUID = 1L;

    private final Param<String> outputCol;
    private final Param<String> outputType;

    /** Creates an embedder with a random uid. */
    public TextEmbedder() {
        this(randomUid("textEmbedder"));
    }

    /**
     * Creates an embedder (the constructor Spark's reader calls).
     *
     * @param uid the stage's uid
     */
    public TextEmbedder(String uid) {
        super(uid);
        outputCol = new Param<>(this, "outputCol", "the column of sentence vectors");
        outputType =
                new Param<>(
                        this,
                        "outputType",
                        "array (array<float>, default) or vector (MLlib Vector of doubles)");
        setDefault(outputCol, "embedding");
        setDefault(outputType, "array");
    }

    /**
     * Returns a reader, for {@code Pipeline.load} and {@link #load(String)}.
     *
     * @return the reader
     */
    public static MLReader<TextEmbedder> read() {
        return new DefaultParamsReader<>();
    }

    /**
     * Loads an embedder saved with {@code write().save(path)}.
     *
     * @param path the directory
     * @return the embedder
     */
    public static TextEmbedder load(String path) {
        return read().load(path);
    }

    /**
     * Param: the output column (default {@code embedding}).
     *
     * @return the param
     */
    public Param<String> outputCol() {
        return outputCol;
    }

    /**
     * Param: {@code array} ({@code array<float>}, default) or {@code vector} (MLlib {@code
     * Vector}).
     *
     * @return the param
     */
    public Param<String> outputType() {
        return outputType;
    }

    /**
     * Returns the output column.
     *
     * @return the column name
     */
    public String getOutputCol() {
        return $(outputCol);
    }

    /**
     * Sets the output column.
     *
     * @param value the column name
     * @return this stage
     */
    public TextEmbedder setOutputCol(String value) {
        set(outputCol, value);
        return this;
    }

    /**
     * Returns the output type.
     *
     * @return {@code array} or {@code vector}
     */
    public String getOutputType() {
        return $(outputType);
    }

    /**
     * Sets the output type.
     *
     * @param value {@code array} or {@code vector}
     * @return this stage
     * @throws IllegalArgumentException for another value
     */
    public TextEmbedder setOutputType(String value) {
        checkOutputType(value);
        set(outputType, value);
        return this;
    }

    private static void checkOutputType(String value) {
        if (!"array".equals(value) && !"vector".equals(value)) {
            throw new IllegalArgumentException(
                    "outputType must be array or vector, got '" + value + "'");
        }
    }

    @Override
    protected List<StructField> outputFields() {
        checkOutputType(getOutputType());
        DataType type =
                "vector".equals(getOutputType())
                        ? SQLDataTypes.VectorType()
                        : DataTypes.createArrayType(DataTypes.FloatType, false);
        return List.of(DataTypes.createStructField(getOutputCol(), type, true));
    }

    @Override
    TextPartitionFunction.Outputs outputs() {
        return new Embeddings("vector".equals(getOutputType()));
    }

    @Override
    public TextEmbedder copy(ParamMap extra) {
        return defaultCopy(extra);
    }

    /** Sentence vectors as {@code float[]} or a dense MLlib vector. */
    private static final class Embeddings implements TextPartitionFunction.Outputs {
        private static final long serialVersionUID = 1L;
        private final boolean vector;

        Embeddings(boolean vector) {
            this.vector = vector;
        }

        @Override
        public Object[][] compute(TextEncoder encoder, List<String> texts) {
            float[][] vectors = encoder.embed(texts);
            Object[][] out = new Object[vectors.length][];
            for (int i = 0; i < vectors.length; i++) {
                if (vector) {
                    double[] d = new double[vectors[i].length];
                    for (int j = 0; j < d.length; j++) {
                        d[j] = vectors[i][j];
                    }
                    out[i] = new Object[] {Vectors.dense(d)};
                } else {
                    out[i] = new Object[] {vectors[i]};
                }
            }
            return out;
        }

        @Override
        public int width() {
            return 1;
        }
    }
}
