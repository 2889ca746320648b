package io.github.tilewise.it.reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.inference.Predictor;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.engine.EncoderTranslatorFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A sentence-transformers model moved from Python to Java gives the same vectors: the seeded
 * checkpoints saved by {@code SentenceTransformer.save} ({@code modules.json}, {@code
 * 1_Pooling/config.json}: CLS pooling for bert, mean for mpnet) are embedded by {@link TextEncoder}
 * and DJL's {@code Criteria} with no pooling, normalisation or length given, and each text's vector
 * must be within 1e-4 of {@code SentenceTransformer.encode}'s.
 */
class SentenceTransformersParityTest {

    @TempDir Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"bert", "mpnet"})
    void defaultsFromTheModelDirectoryGiveSentenceTransformersVectors(String arch)
            throws Exception {
        Path dir = SeededCheckpoint.load(arch).writeDirectory(tmp.resolve(arch));
        JsonObject reference =
                SeededCheckpoint.readJson(arch + "/sentence-transformers.json").getAsJsonObject();
        List<String> texts = new ArrayList<>();
        reference.getAsJsonArray("texts").forEach(t -> texts.add(t.getAsString()));
        JsonArray expected = reference.getAsJsonArray("embeddings");

        try (TextEncoder encoder = TextEncoder.builder().setModelPath(dir).build()) {
            float[][] vectors = encoder.embed(texts);
            for (int i = 0; i < texts.size(); i++) {
                assertClose(expected.get(i).getAsJsonArray(), vectors[i], arch, "TextEncoder", i);
            }
        }
        Criteria<String, float[]> criteria =
                Criteria.builder()
                        .setTypes(String.class, float[].class)
                        .optEngine("Tilewise")
                        .optModelPath(dir)
                        .optTranslatorFactory(new EncoderTranslatorFactory())
                        .build();
        try (ZooModel<String, float[]> model = criteria.loadModel();
                Predictor<String, float[]> predictor = model.newPredictor()) {
            List<float[]> vectors = predictor.batchPredict(texts);
            for (int i = 0; i < texts.size(); i++) {
                assertClose(expected.get(i).getAsJsonArray(), vectors.get(i), arch, "Criteria", i);
            }
        }
    }

    private static void assertClose(
            JsonArray expected, float[] actual, String arch, String route, int text) {
        assertEquals(expected.size(), actual.length, arch + " " + route + " text " + text);
        double worst = 0;
        for (int k = 0; k < actual.length; k++) {
            worst = Math.max(worst, Math.abs(expected.get(k).getAsDouble() - actual[k]));
        }
        System.out.printf(
                Locale.ROOT,
                "sentence-transformers arch=%s route=%s text=%d max_abs=%.3g%n",
                arch,
                route,
                text,
                worst);
        assertTrue(worst <= 1e-4, arch + " " + route + " text " + text + ": " + worst);
    }
}
