package io.github.tilewise.it.encoder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import io.github.tilewise.djl.encoder.BertEncoder;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.encoder.text.TokenBatch;
import io.github.tilewise.it.models.OrtEncoder;
import io.github.tilewise.it.models.RealModels;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Tilewise's encoder against ONNX Runtime running the same ONNX file, on real checkpoints: every
 * text is embedded by Tilewise inside a padded batch of mixed lengths and by ONNX Runtime alone (no
 * padding), so the test also proves that padding does not change a text's vectors.
 */
class EncoderParityTest {

    private static final int BATCH = 16;
    private static final double MAX_ABS_DIFF = 1e-4;
    private static final double MIN_COSINE = 0.99999;

    @ParameterizedTest
    @ValueSource(strings = {RealModels.MINILM, RealModels.TINYBERT})
    void tokenAndSentenceEmbeddingsMatchOnnxRuntime(String model) throws Exception {
        Path dir = RealModels.MINILM.equals(model) ? RealModels.miniLm() : RealModels.tinyBert();
        Path onnx = RealModels.onnxFile(dir);
        try (TextEncoder encoder =
                        TextEncoder.builder().setModelPath(onnx).optPooling(Pooling.MEAN).build();
                OrtEncoder ort = new OrtEncoder(onnx, 2)) {
            int hidden = encoder.getConfig().getHiddenSize();
            int positions = encoder.getConfig().getMaxPositions();
            boolean pooler = encoder.getConfig().hasPooler();
            List<String> texts = ParityTexts.all(positions + 20);
            assertTrue(texts.size() >= 100);
            double maxDiff = 0;
            double maxPoolerDiff = 0;
            double minCos = 1;
            int truncated = 0;
            for (int from = 0; from < texts.size(); from += BATCH) {
                List<String> chunk = texts.subList(from, Math.min(texts.size(), from + BATCH));
                TokenBatch batch = encoder.getTokenizer().encode(chunk);
                int seq = batch.getSequenceLength();
                float[] tokens;
                float[] sentences;
                float[] pooled = null;
                try (NDManager scope = encoder.getManager().newSubManager()) {
                    NDList in = batch.toNDList(scope);
                    NDList out = encoder.getBlock().run(in.get(0), in.get(1), in.get(2));
                    tokens = out.get(BertEncoder.LAST_HIDDEN_STATE).toFloatArray();
                    sentences = out.get(TextEncoderBlock.SENTENCE_EMBEDDING).toFloatArray();
                    if (pooler) {
                        pooled = out.get(BertEncoder.POOLER_OUTPUT).toFloatArray();
                    }
                }
                int[] lengths = batch.getLengths();
                for (int i = 0; i < chunk.size(); i++) {
                    if (lengths[i] == positions) {
                        truncated++;
                    }
                    TokenBatch alone = encoder.getTokenizer().encode(List.of(chunk.get(i)));
                    assertEquals(lengths[i], alone.getSequenceLength());
                    float[][] ref = ort.run(alone);
                    double[] refMean = new double[hidden];
                    for (int t = 0; t < lengths[i]; t++) {
                        for (int h = 0; h < hidden; h++) {
                            float expected = ref[0][t * hidden + h];
                            float actual = tokens[(i * seq + t) * hidden + h];
                            maxDiff = Math.max(maxDiff, Math.abs(expected - actual));
                            refMean[h] += expected / (double) lengths[i];
                        }
                    }
                    minCos = Math.min(minCos, cosine(refMean, sentences, i * hidden));
                    if (pooler) {
                        for (int h = 0; h < hidden; h++) {
                            maxPoolerDiff =
                                    Math.max(
                                            maxPoolerDiff,
                                            Math.abs(ref[1][h] - pooled[i * hidden + h]));
                        }
                    }
                }
            }
            System.out.printf(
                    Locale.ROOT,
                    "parity %s texts=%d truncated=%d max_abs_token_diff=%.3e"
                            + " max_abs_pooler_diff=%.3e min_sentence_cosine=%.8f%n",
                    model,
                    texts.size(),
                    truncated,
                    maxDiff,
                    maxPoolerDiff,
                    minCos);
            assertTrue(truncated >= 3, "texts over the position limit were truncated");
            assertTrue(maxDiff <= MAX_ABS_DIFF, "max |token diff| " + maxDiff);
            assertTrue(maxPoolerDiff <= MAX_ABS_DIFF, "max |pooler diff| " + maxPoolerDiff);
            assertTrue(minCos >= MIN_COSINE, "min sentence cosine " + minCos);
        }
    }

    private static double cosine(double[] a, float[] b, int offset) {
        double dot = 0;
        double na = 0;
        double nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += a[i] * b[offset + i];
            na += a[i] * a[i];
            nb += (double) b[offset + i] * b[offset + i];
        }
        return dot / Math.sqrt(na * nb);
    }
}
