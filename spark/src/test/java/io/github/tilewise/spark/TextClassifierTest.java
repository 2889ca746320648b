package io.github.tilewise.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.modality.Classifications;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.ml.linalg.Vector;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link TextClassifier} on tinybert with a random 3-label head, against TextEncoder.classify. */
class TextClassifierTest {

    @TempDir Path tmp;

    @Test
    void labelsAndProbabilitiesEqualSingleJvmClassify() throws Exception {
        List<String> texts = new java.util.ArrayList<>(TestModels.texts(50, 7));
        texts.set(3, "");
        texts.set(9, null);
        Dataset<Row> frame = SparkTests.frame(texts, 3);
        TextClassifier classifier =
                new TextClassifier()
                        .setModelPath(TestModels.classifier().toString())
                        .setBatchSize(6);
        PipelineModel model = new Pipeline().setStages(new PipelineStage[] {classifier}).fit(frame);
        String dir = tmp.resolve("classifier-pipeline").toString();
        model.write().overwrite().save(dir);
        List<Row> rows = PipelineModel.load(dir).transform(frame).collectAsList();
        assertEquals(texts.size(), rows.size());
        try (TextEncoder encoder =
                TextEncoder.builder().setModelPath(TestModels.classifier()).build()) {
            for (Row row : rows) {
                String text = texts.get(row.getInt(0));
                if (text == null) {
                    assertTrue(row.isNullAt(2) && row.isNullAt(3));
                    continue;
                }
                Classifications expected = encoder.classify(List.of(text)).get(0);
                assertEquals(expected.best().getClassName(), row.getString(2), text);
                Vector p = row.getAs("probability");
                assertEquals(TestModels.LABELS.length, p.size());
                for (int l = 0; l < TestModels.LABELS.length; l++) {
                    assertEquals(
                            expected.get(TestModels.LABELS[l]).getProbability(),
                            p.apply(l),
                            1e-5,
                            text);
                }
            }
        }
    }

    @Test
    void probabilityColumnCanBeLeftOut() {
        List<Row> rows =
                new TextClassifier()
                        .setModelPath(TestModels.classifier().toString())
                        .setProbabilityCol("")
                        .setPredictionCol("label")
                        .transform(SparkTests.frame(Arrays.asList("good", "bad"), 1))
                        .collectAsList();
        assertEquals(3, rows.get(0).length());
        assertTrue(Arrays.asList(TestModels.LABELS).contains(rows.get(1).getString(2)));
    }
}
