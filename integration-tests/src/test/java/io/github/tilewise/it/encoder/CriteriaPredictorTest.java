package io.github.tilewise.it.encoder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.MalformedModelException;
import ai.djl.huggingface.translator.TextEmbeddingTranslatorFactory;
import ai.djl.inference.Predictor;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import io.github.tilewise.djl.encoder.text.EncoderTokenizer;
import io.github.tilewise.djl.engine.EncoderTranslatorFactory;
import io.github.tilewise.it.models.OrtEncoder;
import io.github.tilewise.it.models.RealModels;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The usual DJL code (Criteria → ZooModel → Predictor) on the Tilewise engine, changing only the
 * Criteria, gives ONNX Runtime's embeddings of all-MiniLM-L6-v2.
 */
class CriteriaPredictorTest {

    private static final List<String> TEXTS = ParityTexts.all(120).subList(0, 40);
    private static final int HIDDEN = 384;

    private static Path dir;
    private static double[][] expected;

    @BeforeAll
    static void reference() throws Exception {
        dir = RealModels.miniLm();
        try (OrtEncoder ort = new OrtEncoder(RealModels.onnxFile(dir), 2);
                EncoderTokenizer tokenizer =
                        EncoderTokenizer.load(dir.resolve("tokenizer.json"), 512, true)) {
            expected = OrtReference.meanPooled(ort, tokenizer, TEXTS, HIDDEN, true);
        }
    }

    @AfterAll
    static void release() {
        expected = null;
    }

    @Test
    void predictorWithTilewiseTranslatorFactory() throws Exception {
        Criteria<String, float[]> criteria =
                Criteria.builder()
                        .setTypes(String.class, float[].class)
                        .optEngine("Tilewise")
                        .optModelPath(RealModels.onnxFile(dir))
                        .optTranslatorFactory(new EncoderTranslatorFactory())
                        .optArgument("pooling", "mean")
                        .optArgument("normalize", "true")
                        .build();
        check("tilewise-factory", embed(criteria));
    }

    @Test
    void predictorWithFactoryNamedAsArgument() throws Exception {
        Criteria<String, float[]> criteria =
                Criteria.builder()
                        .setTypes(String.class, float[].class)
                        .optEngine("Tilewise")
                        .optModelPath(dir)
                        .optArgument("translatorFactory", EncoderTranslatorFactory.class.getName())
                        .optArgument("pooling", "mean")
                        .optArgument("normalize", "true")
                        .build();
        check("factory-argument", embed(criteria));
    }

    /**
     * What a DJL user runs today with a Hugging Face ONNX export (DJL's own translator from the
     * tokenizers extension); only optEngine changes.
     */
    @Test
    void unchangedDjlHuggingFaceTranslator() throws Exception {
        Criteria<String, float[]> criteria =
                Criteria.builder()
                        .setTypes(String.class, float[].class)
                        .optModelPath(dir)
                        .optEngine("Tilewise") // was "OnnxRuntime"
                        .optTranslatorFactory(new TextEmbeddingTranslatorFactory())
                        .optArgument("pooling", "mean")
                        .optArgument("normalize", "true")
                        .optArgument("maxLength", "512")
                        .build();
        check("djl-hf-translator", embed(criteria));
    }

    private static List<float[]> embed(Criteria<String, float[]> criteria) throws Exception {
        return embed(criteria, 1e-5);
    }

    /**
     * Embeds the texts as one batch, and text 3 alone, which must agree within {@code tolerance}
     * (with bf16 attention a padded batch rounds a few key tiles differently).
     */
    private static List<float[]> embed(Criteria<String, float[]> criteria, double tolerance)
            throws Exception {
        try (ZooModel<String, float[]> model = criteria.loadModel();
                Predictor<String, float[]> predictor = model.newPredictor()) {
            List<float[]> batch = predictor.batchPredict(TEXTS);
            // Single predictions go through the same path and agree with the batch.
            float[] single = predictor.predict(TEXTS.get(3));
            double diff = OrtReference.maxAbsDiff(toDouble(batch.get(3)), single);
            assertTrue(diff < tolerance, "batch vs single differ by " + diff);
            return batch;
        }
    }

    /**
     * {@code attentionPrecision=bf16} on the fp32 model: the attention's dot products in bf16 keep
     * every embedding within cosine 0.9999 of ONNX Runtime's; an unknown value is a {@link
     * MalformedModelException} naming the argument.
     */
    @Test
    void attentionPrecisionArgument() throws Exception {
        Criteria<String, float[]> criteria =
                Criteria.builder()
                        .setTypes(String.class, float[].class)
                        .optEngine("Tilewise")
                        .optModelPath(dir)
                        .optTranslatorFactory(new EncoderTranslatorFactory())
                        .optArgument("pooling", "mean")
                        .optArgument("normalize", "true")
                        .optArgument("attentionPrecision", "bf16")
                        .build();
        List<float[]> actual = embed(criteria, 1e-3);
        double minCos = 1;
        for (int i = 0; i < TEXTS.size(); i++) {
            minCos = Math.min(minCos, OrtReference.cosine(expected[i], actual.get(i)));
        }
        assertTrue(minCos >= 0.9999, "bf16 attention: min cosine " + minCos);
        Criteria<String, float[]> bad =
                Criteria.builder()
                        .setTypes(String.class, float[].class)
                        .optEngine("Tilewise")
                        .optModelPath(dir)
                        .optTranslatorFactory(new EncoderTranslatorFactory())
                        .optArgument("attentionPrecision", "int4")
                        .build();
        MalformedModelException e = assertThrows(MalformedModelException.class, bad::loadModel);
        assertTrue(e.getMessage().contains("attentionPrecision"), e.getMessage());
    }

    private static void check(String what, List<float[]> actual) {
        assertEquals(TEXTS.size(), actual.size());
        double minCos = 1;
        double maxDiff = 0;
        for (int i = 0; i < TEXTS.size(); i++) {
            assertEquals(HIDDEN, actual.get(i).length);
            minCos = Math.min(minCos, OrtReference.cosine(expected[i], actual.get(i)));
            maxDiff = Math.max(maxDiff, OrtReference.maxAbsDiff(expected[i], actual.get(i)));
        }
        System.out.printf(
                Locale.ROOT,
                "criteria %s texts=%d max_abs_diff=%.3e min_cosine=%.8f%n",
                what,
                TEXTS.size(),
                maxDiff,
                minCos);
        assertTrue(minCos >= 0.99999, what + ": min cosine " + minCos);
        assertTrue(maxDiff <= 1e-4, what + ": max |diff| " + maxDiff);
    }

    private static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }
}
