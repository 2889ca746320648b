package io.github.tilewise.spark;

import ai.djl.modality.Classifications;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.ml.linalg.SQLDataTypes;
import org.apache.spark.ml.linalg.Vectors;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;

/**
 * A Spark ML {@code Transformer} that classifies a string column with a checkpoint that has a
 * sequence-classification head ({@code classifier.weight}, labels from {@code id2label} in {@code
 * config.json}), as {@link TextEncoder#classify(List)} does in a single JVM.
 *
 * <pre>{@code
 * Dataset<Row> labelled = new TextClassifier()
 *         .setModelPath("/shared/models/sentiment")
 *         .setInputCol("review")
 *         .transform(reviews);      // + prediction: string, probability: vector
 * }</pre>
 *
 * <p>Columns appended: {@code predictionCol} ({@code prediction}: the most probable label's name)
 * and {@code probabilityCol} ({@code probability}: an MLlib {@code Vector} of the softmax
 * probabilities, in the order of the model's labels, {@code id2label} 0, 1, ...). Setting either to
 * the empty string leaves that column out. A null text gives nulls (or as {@code handleInvalid}
 * says). Every other parameter, the execution and the persistence are those of {@link
 * TextEmbedder}.
 */
public final class TextClassifier extends TextTransformer<TextClassifier> {

    private static final long serialVersionUID = 1L;

    private final Param<String> predictionCol;
    private final Param<String> probabilityCol;

    /** Creates a classifier with a random uid. */
    public TextClassifier() {
        this(randomUid("textClassifier"));
    }

    /**
     * Creates a classifier (the constructor Spark's reader calls).
     *
     * @param uid the stage's uid
     */
    public TextClassifier(String uid) {
        super(uid);
        predictionCol =
                new Param<>(this, "predictionCol", "the column of predicted labels (string)");
        probabilityCol =
                new Param<>(
                        this,
                        "probabilityCol",
                        "the column of label probabilities (vector, in the model's label order)");
        setDefault(predictionCol, "prediction");
        setDefault(probabilityCol, "probability");
    }

    /**
     * Returns a reader, for {@code Pipeline.load} and {@link #load(String)}.
     *
     * @return the reader
     */
    public static MLReader<TextClassifier> read() {
        return new DefaultParamsReader<>();
    }

    /**
     * Loads a classifier saved with {@code write().save(path)}.
     *
     * @param path the directory
     * @return the classifier
     */
    public static TextClassifier load(String path) {
        return read().load(path);
    }

    /**
     * Param: the column of predicted labels (default {@code prediction}; empty: none).
     *
     * @return the param
     */
    public Param<String> predictionCol() {
        return predictionCol;
    }

    /**
     * Param: the column of probabilities (default {@code probability}; empty: none).
     *
     * @return the param
     */
    public Param<String> probabilityCol() {
        return probabilityCol;
    }

    /**
     * Returns the prediction column.
     *
     * @return the column name
     */
    public String getPredictionCol() {
        return $(predictionCol);
    }

    /**
     * Sets the prediction column.
     *
     * @param value the column name, or empty for none
     * @return this stage
     */
    public TextClassifier setPredictionCol(String value) {
        set(predictionCol, value);
        return this;
    }

    /**
     * Returns the probability column.
     *
     * @return the column name
     */
    public String getProbabilityCol() {
        return $(probabilityCol);
    }

    /**
     * Sets the probability column.
     *
     * @param value the column name, or empty for none
     * @return this stage
     */
    public TextClassifier setProbabilityCol(String value) {
        set(probabilityCol, value);
        return this;
    }

    @Override
    protected List<StructField> outputFields() {
        List<StructField> fields = new ArrayList<>();
        if (!getPredictionCol().isEmpty()) {
            fields.add(DataTypes.createStructField(getPredictionCol(), DataTypes.StringType, true));
        }
        if (!getProbabilityCol().isEmpty()) {
            fields.add(
                    DataTypes.createStructField(
                            getProbabilityCol(), SQLDataTypes.VectorType(), true));
        }
        if (fields.isEmpty()) {
            throw new IllegalArgumentException(
                    uid() + ": predictionCol and probabilityCol are both empty: nothing to output");
        }
        return fields;
    }

    @Override
    TextPartitionFunction.Outputs outputs() {
        return new Labels(!getPredictionCol().isEmpty(), !getProbabilityCol().isEmpty());
    }

    @Override
    public TextClassifier copy(ParamMap extra) {
        return defaultCopy(extra);
    }

    /** The best label and the probability vector. */
    private static final class Labels implements TextPartitionFunction.Outputs {
        private static final long serialVersionUID = 1L;
        private final boolean prediction;
        private final boolean probability;

        Labels(boolean prediction, boolean probability) {
            this.prediction = prediction;
            this.probability = probability;
        }

        @Override
        public Object[][] compute(TextEncoder encoder, List<String> texts) {
            List<Classifications> result = encoder.classify(texts);
            Object[][] out = new Object[result.size()][];
            for (int i = 0; i < out.length; i++) {
                Classifications c = result.get(i);
                List<Object> row = new ArrayList<>(2);
                if (prediction) {
                    row.add(c.best().getClassName());
                }
                if (probability) {
                    List<Double> p = c.getProbabilities();
                    double[] d = new double[p.size()];
                    for (int j = 0; j < d.length; j++) {
                        d[j] = p.get(j);
                    }
                    row.add(Vectors.dense(d));
                }
                out[i] = row.toArray();
            }
            return out;
        }

        @Override
        public int width() {
            return (prediction ? 1 : 0) + (probability ? 1 : 0);
        }
    }
}
