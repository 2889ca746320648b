package io.github.tilewise.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.ml.linalg.Vector;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataTypes;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link TextEmbedder} in local[2] against {@link TextEncoder} in this JVM. */
class TextEmbedderTest {

    @TempDir Path tmp;

    private static float[] floats(Row row, String col) {
        return TestModels.floats(row, col);
    }

    private static void assertClose(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 1e-5, what + " [" + i + "]");
        }
    }

    /**
     * all-MiniLM-L6-v2 over 120 mixed-length texts in 3 partitions (2 tasks at once), in
     * length-sorted batches (the default) and in row-order ones: every row's vector equals
     * TextEncoder.embed of its text, rows keep their order, the model is loaded once in this JVM,
     * its native pool has spark.task.cpus (1) threads, and a second transform loads nothing.
     */
    @Test
    void embeddingsEqualSingleJvmTextEncoderRowByRow() throws Exception {
        List<String> texts = TestModels.texts(120, 1);
        Dataset<Row> frame = SparkTests.frame(texts, 3);
        TextEmbedder embedder =
                new TextEmbedder()
                        .setModelPath(TestModels.miniLm().toString())
                        .setBatchSize(8)
                        .setOutputCol("vec");
        long loads = ModelCache.loadCount();
        List<Row> rows = embedder.transform(frame).collectAsList();
        assertEquals(loads + 1, ModelCache.loadCount(), "one load for the whole job");
        if (Tilewise.isNativeAvailable()) {
            assertEquals(1, Tilewise.getNumThreads(), "native threads = spark.task.cpus");
        }
        assertEquals(
                DataTypes.createArrayType(DataTypes.FloatType, false),
                embedder.transform(frame).schema().apply("vec").dataType());
        List<Integer> inputOrder = new ArrayList<>();
        frame.collectAsList().forEach(r -> inputOrder.add(r.getInt(0)));
        List<Integer> outputOrder = new ArrayList<>();
        rows.forEach(r -> outputOrder.add(r.getInt(0)));
        assertEquals(inputOrder, outputOrder, "row order");
        assertEquals(texts.size(), rows.size());
        try (TextEncoder encoder =
                TextEncoder.builder().setModelPath(TestModels.miniLm()).build()) {
            for (Row row : rows) {
                String text = texts.get(row.getInt(0));
                assertEquals(text, row.getString(1));
                assertClose(encoder.embed(text), floats(row, "vec"), "row " + row.getInt(0));
            }
        }
        // Batches of consecutive rows (sortByLength off): the same vectors, in the same order.
        List<Row> unsorted = embedder.setSortByLength(false).transform(frame).collectAsList();
        assertEquals(rows.size(), unsorted.size());
        for (int i = 0; i < rows.size(); i++) {
            assertEquals(rows.get(i).getInt(0), unsorted.get(i).getInt(0), "row order, unsorted");
            assertClose(
                    floats(rows.get(i), "vec"), floats(unsorted.get(i), "vec"), "unsorted " + i);
        }
        embedder.transform(frame.limit(5)).collectAsList();
        assertEquals(loads + 1, ModelCache.loadCount(), "the executor's cached model is reused");
    }

    @Test
    void vectorOutputTypeHoldsTheSameValues() {
        List<String> texts = TestModels.texts(20, 2);
        TextEmbedder embedder =
                new TextEmbedder().setModelPath(TestModels.tinyBert().toString()).setBatchSize(4);
        List<Row> arrays = embedder.transform(SparkTests.frame(texts, 2)).collectAsList();
        List<Row> vectors =
                embedder.copy(new org.apache.spark.ml.param.ParamMap())
                        .setOutputType("vector")
                        .transform(SparkTests.frame(texts, 2))
                        .collectAsList();
        for (int i = 0; i < arrays.size(); i++) {
            float[] a = floats(arrays.get(i), "embedding");
            Vector v = vectors.get(i).getAs("embedding");
            assertEquals(a.length, v.size());
            for (int j = 0; j < a.length; j++) {
                assertEquals(a[j], v.apply(j), 0.0);
            }
        }
    }

    /** null texts: keep gives null, skip drops the row, error names it; "" is embedded. */
    @Test
    void nullAndEmptyTextsAsDocumented() throws Exception {
        List<String> texts = Arrays.asList("first text", null, "", "fourth", null, "last one");
        Dataset<Row> frame = SparkTests.frame(texts, 1);
        TextEmbedder embedder = new TextEmbedder().setModelPath(TestModels.tinyBert().toString());
        List<Row> kept = embedder.transform(frame).collectAsList();
        assertEquals(6, kept.size());
        try (TextEncoder encoder =
                TextEncoder.builder().setModelPath(TestModels.tinyBert()).build()) {
            for (Row row : kept) {
                String text = texts.get(row.getInt(0));
                if (text == null) {
                    assertTrue(row.isNullAt(2));
                } else {
                    assertClose(encoder.embed(text), floats(row, "embedding"), "'" + text + "'");
                }
            }
        }
        List<Row> skipped = embedder.setHandleInvalid("skip").transform(frame).collectAsList();
        assertEquals(4, skipped.size());
        Exception e =
                assertThrows(
                        Exception.class,
                        () -> embedder.setHandleInvalid("error").transform(frame).collectAsList());
        assertTrue(e.getMessage().contains("row 1 of partition 0 has a null text"), e.getMessage());
        assertNull(kept.get(1).get(2));
    }

    /**
     * A text longer than maxLength with truncation off fails with a message naming its row; the
     * executor (this JVM) runs the next job.
     */
    @Test
    void failingRowIsNamed() {
        List<String> texts = new ArrayList<>(TestModels.texts(40, 3));
        texts.set(25, "word ".repeat(60).trim());
        for (int i = 0; i < texts.size(); i++) {
            if (i != 25) {
                texts.set(i, "short text " + i);
            }
        }
        TextEmbedder embedder =
                new TextEmbedder()
                        .setModelPath(TestModels.tinyBert().toString())
                        .setMaxLength(20)
                        .setTruncation(false)
                        .setBatchSize(4);
        Exception e =
                assertThrows(
                        Exception.class,
                        () -> embedder.transform(SparkTests.frame(texts, 1)).collectAsList());
        String message = e.getMessage();
        assertTrue(message.contains("failed on row 25 of partition 0"), message);
        assertTrue(message.contains(embedder.uid()), message);
        assertTrue(message.contains("text of 299 characters: \"word word"), message);
        texts.set(25, "short again");
        assertEquals(40, embedder.transform(SparkTests.frame(texts, 2)).count());
    }

    @Test
    void savedAndLoadedPipelineGivesTheSameOutput() throws Exception {
        List<String> texts = TestModels.texts(30, 4);
        Dataset<Row> frame = SparkTests.frame(texts, 2);
        TextEmbedder embedder =
                new TextEmbedder()
                        .setModelPath(TestModels.miniLm().toString())
                        .setInputCol("text")
                        .setOutputCol("e")
                        .setPooling("cls")
                        .setNormalize(true)
                        .setMaxLength(64)
                        .setBatchSize(5);
        PipelineModel model = new Pipeline().setStages(new PipelineStage[] {embedder}).fit(frame);
        String dir = tmp.resolve("pipeline").toString();
        model.write().overwrite().save(dir);
        PipelineModel loaded = PipelineModel.load(dir);
        TextEmbedder reloaded = (TextEmbedder) loaded.stages()[0];
        assertEquals(embedder.uid(), reloaded.uid());
        assertEquals("cls", reloaded.getPooling());
        assertTrue(reloaded.getNormalize());
        assertEquals(64, reloaded.getMaxLength());
        assertEquals(5, reloaded.getBatchSize());
        assertEquals(embedder.encoderSpec(), reloaded.encoderSpec());
        List<Row> before = model.transform(frame).collectAsList();
        List<Row> after = loaded.transform(frame).collectAsList();
        assertEquals(before.size(), after.size());
        for (int i = 0; i < before.size(); i++) {
            assertArrayEquals(floats(before.get(i), "e"), floats(after.get(i), "e"));
        }
        String single = tmp.resolve("embedder").toString();
        embedder.save(single);
        assertEquals(embedder.encoderSpec(), TextEmbedder.load(single).encoderSpec());
    }

    @Test
    void badConfigurationsAreNamed() {
        TextEmbedder embedder = new TextEmbedder().setModelPath(TestModels.tinyBert().toString());
        Dataset<Row> frame = SparkTests.frame(List.of("a", "b"), 1);
        IllegalArgumentException column =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                embedder.copy(new org.apache.spark.ml.param.ParamMap())
                                        .setInputCol("body")
                                        .transform(frame));
        assertTrue(column.getMessage().contains("'body' does not exist"), column.getMessage());
        assertThrows(IllegalArgumentException.class, () -> embedder.setPrecision("int3"));
        assertThrows(IllegalArgumentException.class, () -> embedder.setPooling("median"));
        IllegalArgumentException unset =
                assertThrows(
                        IllegalArgumentException.class, () -> new TextEmbedder().transform(frame));
        assertTrue(unset.getMessage().contains("modelPath is not set"), unset.getMessage());
    }

    /** A model directory shipped with SparkContext.addFile is found by its name. */
    @Test
    void modelFromSparkContextAddFile() throws Exception {
        Path dir = TestModels.root().resolve("shipped-tinybert");
        java.nio.file.Files.createDirectories(dir);
        for (String f : new String[] {"tinybert.onnx", "tokenizer.json"}) {
            java.nio.file.Files.copy(TestModels.tinyBert().resolve(f), dir.resolve(f));
        }
        SparkTests.session().sparkContext().addFile(dir.toString(), true);
        List<String> texts = List.of("shipped to executors", "by addFile");
        List<Row> rows =
                new TextEmbedder()
                        .setModelPath("shipped-tinybert")
                        .transform(SparkTests.frame(texts, 1))
                        .collectAsList();
        try (TextEncoder encoder =
                TextEncoder.builder().setModelPath(TestModels.tinyBert()).build()) {
            for (Row row : rows) {
                assertClose(
                        encoder.embed(row.getString(1)),
                        floats(row, "embedding"),
                        row.getString(1));
            }
        }
    }

    /** INT8 (SmoothQuant-calibrated at load, on each executor) stays close to fp32. */
    @Test
    void int8PrecisionStaysCloseToFp32() throws Exception {
        List<String> texts = TestModels.texts(24, 5);
        TextEmbedder embedder =
                new TextEmbedder()
                        .setModelPath(TestModels.miniLm().toString())
                        .setPrecision("int8")
                        .setMaxLength(128);
        List<Row> rows = embedder.transform(SparkTests.frame(texts, 2)).collectAsList();
        try (TextEncoder encoder =
                TextEncoder.builder().setModelPath(TestModels.miniLm()).optMaxLength(128).build()) {
            for (Row row : rows) {
                double cosine =
                        TestModels.cosine(
                                encoder.embed(row.getString(1)), floats(row, "embedding"));
                assertTrue(cosine > 0.98, "cosine " + cosine);
            }
        }
    }
}
