package io.github.tilewise.it.encoder;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.huggingface.translator.TextEmbeddingTranslatorFactory;
import ai.djl.inference.Predictor;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import io.github.tilewise.it.models.RealModels;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * On all-MiniLM-L6-v2 through DJL's own {@code TextEmbeddingTranslatorFactory}: a text embeds to
 * the same vector alone, in a batch computed packed (the default) and in the same batch computed
 * padded ({@code -Dtilewise.packed=false}), within 1e-5 cosine distance in fp32 (and within the
 * same bound for INT8 and BF16, whose arithmetic is per row too).
 */
class PackedBatchTest {

    @ParameterizedTest
    @ValueSource(strings = {"fp32", "int8", "bf16"})
    void aTextEmbedsTheSameAlonePackedAndPadded(String precision) throws Exception {
        List<String> texts = new ArrayList<>(ParityTexts.all(120).subList(0, 24));
        texts.add("");
        texts.add("a");
        Criteria<String, float[]> criteria =
                Criteria.builder()
                        .setTypes(String.class, float[].class)
                        .optEngine("Tilewise")
                        .optModelPath(RealModels.miniLm())
                        .optTranslatorFactory(new TextEmbeddingTranslatorFactory())
                        .optArgument("pooling", "mean")
                        .optArgument("normalize", "true")
                        .optArgument("includeTokenTypes", "true")
                        .optArgument("maxLength", "512")
                        .optArgument("precision", precision)
                        .build();
        try (ZooModel<String, float[]> model = criteria.loadModel();
                Predictor<String, float[]> predictor = model.newPredictor()) {
            List<float[]> packed = predictor.batchPredict(texts);
            List<float[]> padded;
            System.setProperty("tilewise.packed", "false");
            try {
                padded = predictor.batchPredict(texts);
            } finally {
                System.clearProperty("tilewise.packed");
            }
            double worst = 0;
            for (int i = 0; i < texts.size(); i++) {
                float[] alone = predictor.predict(texts.get(i));
                worst = Math.max(worst, 1 - cosine(packed.get(i), padded.get(i)));
                worst = Math.max(worst, 1 - cosine(packed.get(i), alone));
            }
            assertTrue(worst < 1e-5, precision + ": worst cosine distance " + worst);
        }
    }

    private static double cosine(float[] a, float[] b) {
        double dot = 0;
        double na = 0;
        double nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += (double) a[i] * b[i];
            na += (double) a[i] * a[i];
            nb += (double) b[i] * b[i];
        }
        return dot / Math.sqrt(na * nb);
    }
}
