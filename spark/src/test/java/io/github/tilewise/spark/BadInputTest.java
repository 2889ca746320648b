package io.github.tilewise.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Property;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a data engineer gets wrong, in local[2]: a model path the executors cannot see, a column of
 * the wrong type, and a precision the executor's CPU cannot run natively.
 */
class BadInputTest {

    @TempDir Path tmp;

    /** The WARN events of one logger, captured through Spark's log4j2 while open. */
    private static final class Warnings extends AbstractAppender implements AutoCloseable {
        private final String logger;
        private final List<String> messages = new CopyOnWriteArrayList<>();

        Warnings(Class<?> source) {
            super("warnings-" + source.getSimpleName(), null, null, true, Property.EMPTY_ARRAY);
            logger = source.getName();
            start();
            LoggerContext context = (LoggerContext) LogManager.getContext(false);
            context.getConfiguration().getRootLogger().addAppender(this, Level.WARN, null);
            context.updateLoggers();
        }

        @Override
        public void append(LogEvent event) {
            if (event.getLoggerName().equals(logger)) {
                messages.add(event.getMessage().getFormattedMessage());
            }
        }

        List<String> messages() {
            return messages;
        }

        @Override
        public void close() {
            LoggerContext context = (LoggerContext) LogManager.getContext(false);
            context.getConfiguration().getRootLogger().removeAppender(getName());
            context.updateLoggers();
            stop();
        }
    }

    /**
     * A model path that no executor has (not shared, not given to addFile) fails the job with a
     * message naming the path, the host and both ways to ship a model; so does a directory that
     * exists but holds no model. The failed loads are not cached, and the executor runs the next
     * job.
     */
    @Test
    void missingModelOnTheExecutorFailsTheJobWithTheRemedy() throws Exception {
        Dataset<Row> frame = SparkTests.frame(List.of("a text", "another"), 2);
        int cached = ModelCache.size();
        Exception missing =
                assertThrows(
                        Exception.class,
                        () ->
                                new TextEmbedder()
                                        .setModelPath("/nowhere/model-dir")
                                        .transform(frame)
                                        .collectAsList());
        String m = missing.getMessage();
        assertTrue(
                m.contains("modelPath /nowhere/model-dir does not exist on host")
                        && m.contains("was not distributed with SparkContext.addFile")
                        && m.contains("put the model on a path every executor shares"),
                m);

        Path empty = Files.createDirectories(tmp.resolve("not-a-model"));
        Exception notAModel =
                assertThrows(
                        Exception.class,
                        () ->
                                new TextClassifier()
                                        .setModelPath(empty.toString())
                                        .transform(frame)
                                        .collectAsList());
        assertTrue(
                notAModel.getMessage().contains("could not load the model")
                        && notAModel.getMessage().contains(empty.toString()),
                notAModel.getMessage());
        assertEquals(cached, ModelCache.size(), "failed loads are not cached");

        List<Row> rows =
                new TextEmbedder()
                        .setModelPath(TestModels.tinyBert().toString())
                        .transform(frame)
                        .collectAsList();
        assertEquals(2, rows.size(), "the executor goes on");
    }

    /** A non-string input column is refused on the driver, before any task, naming its type. */
    @Test
    void inputColumnOfAnotherTypeIsRefusedOnTheDriver() {
        DataType[] wrong = {
            DataTypes.LongType,
            DataTypes.BinaryType,
            DataTypes.createArrayType(DataTypes.StringType)
        };
        Object[] values = {7L, new byte[] {104, 105}, List.of("a", "b")};
        for (int i = 0; i < wrong.length; i++) {
            StructType schema = new StructType().add("text", wrong[i]);
            Dataset<Row> frame =
                    SparkTests.session()
                            .createDataFrame(List.of(RowFactory.create(values[i])), schema);
            List<TextTransformer<?>> stages = new ArrayList<>();
            stages.add(new TextEmbedder().setModelPath(TestModels.tinyBert().toString()));
            stages.add(new TextClassifier().setModelPath(TestModels.classifier().toString()));
            for (TextTransformer<?> stage : stages) {
                IllegalArgumentException e =
                        assertThrows(IllegalArgumentException.class, () -> stage.transform(frame));
                assertTrue(
                        e.getMessage()
                                .contains(
                                        "input column 'text' must be of type string but is "
                                                + wrong[i].catalogString()),
                        e.getMessage());
                assertTrue(e.getMessage().startsWith(stage.uid()), e.getMessage());
            }
        }
    }

    /**
     * BF16 on an executor whose CPU has no bf16 dot product (forced here: the AVX2 kernels, which
     * widen bf16 to fp32): the job runs on the slower kernel of the same format, the vectors stay
     * within the BF16 bound of the fp32 TextEncoder (cosine ≥ 0.999, as for MiniLM elsewhere), and
     * the executor logs the fallback once, though it loads two models in four tasks.
     */
    @Test
    void precisionWithoutNativeKernelFallsBackAndLogsOncePerExecutor() throws Exception {
        Assumptions.assumeTrue(Tilewise.isNativeAvailable(), "native library not built here");
        Assumptions.assumeTrue(
                Tilewise.detectedIsa().compareTo(Tilewise.Isa.AVX2) >= 0, "needs AVX2");
        Tilewise.Isa before = Tilewise.activeIsa();
        List<String> texts = TestModels.texts(32, 11);
        Dataset<Row> frame = SparkTests.frame(texts, 2);
        List<Row> first;
        List<Row> second;
        long loads = ModelCache.loadCount();
        try (Warnings warnings = new Warnings(LowPrecisionConverter.class)) {
            Tilewise.setIsa(Tilewise.Isa.AVX2);
            Assumptions.assumeFalse(Precision.BF16.isNativelySupported(), "bf16-dot on AVX2");
            TextEmbedder embedder =
                    new TextEmbedder()
                            .setModelPath(TestModels.miniLm().toString())
                            .setPrecision("bf16")
                            .setMaxLength(128);
            first = embedder.transform(frame).collectAsList();
            second =
                    embedder.copy(new ParamMap())
                            .setNormalize(true)
                            .transform(frame)
                            .collectAsList();
            assertEquals(loads + 2, ModelCache.loadCount(), "two specifications, two loads");
            List<String> fallbacks = new ArrayList<>();
            for (String w : warnings.messages()) {
                if (w.contains("is not native on this CPU")) {
                    fallbacks.add(w);
                }
            }
            assertEquals(1, fallbacks.size(), "logged once per executor: " + fallbacks);
            assertTrue(
                    fallbacks.get(0).startsWith("BF16 is not native on this CPU: layers run on the")
                            && fallbacks.get(0).contains("bf16-widen"),
                    fallbacks.get(0));
        } finally {
            ModelCache.evictUnused(); // packed for AVX2: not for the tests after this one
            Tilewise.setIsa(before);
        }
        try (TextEncoder fp32 =
                TextEncoder.builder().setModelPath(TestModels.miniLm()).optMaxLength(128).build()) {
            for (List<Row> rows : List.of(first, second)) {
                assertEquals(texts.size(), rows.size());
                for (Row row : rows) {
                    double cosine =
                            TestModels.cosine(
                                    fp32.embed(row.getString(1)),
                                    TestModels.floats(row, "embedding"));
                    assertTrue(cosine >= 0.999, "row " + row.getInt(0) + ": cosine " + cosine);
                }
            }
        }
    }
}
