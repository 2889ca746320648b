package io.github.tilewise.it;

import ai.djl.inference.Predictor;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.engine.EncoderTranslatorFactory;
import io.github.tilewise.it.models.OrtEncoder;
import io.github.tilewise.it.models.RealModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The encoder half of the README's demo: all-MiniLM-L6-v2 through DJL's usual Criteria/Predictor
 * code on the Tilewise engine, the cosine similarities of a few sentences, and a quick throughput
 * comparison with ONNX Runtime on the same ONNX file (32 texts × 128 tokens; the full benchmark is
 * {@link io.github.tilewise.it.bench.EmbeddingBenchmark}).
 */
public final class EncoderDemo {

    private static final List<String> SENTENCES =
            List.of(
                    "A man is eating food.",
                    "A man is eating a piece of bread.",
                    "The girl is carrying a baby.",
                    "A woman is holding a child.",
                    "A monkey is playing drums.",
                    "Stock markets fell sharply on Monday.");

    private EncoderDemo() {}

    /**
     * Runs the encoder demo.
     *
     * @throws Exception if a model fails to load or run
     */
    public static void run() throws Exception {
        Path dir = RealModels.miniLm();
        Path onnx = RealModels.onnxFile(dir);
        System.out.println();
        System.out.println("Sentence embeddings: all-MiniLM-L6-v2 (" + onnx.getFileName() + ")");
        System.out.println("through DJL's Criteria -> ZooModel -> Predictor, engine \"Tilewise\"");
        Criteria<String, float[]> criteria =
                Criteria.builder()
                        .setTypes(String.class, float[].class)
                        .optEngine("Tilewise")
                        .optModelPath(onnx)
                        .optTranslatorFactory(new EncoderTranslatorFactory())
                        .optArgument("pooling", "mean")
                        .optArgument("normalize", "true")
                        .build();
        try (ZooModel<String, float[]> model = criteria.loadModel();
                Predictor<String, float[]> predictor = model.newPredictor()) {
            List<float[]> vectors = predictor.batchPredict(SENTENCES);
            System.out.println("\n  cosine similarity");
            for (int i = 0; i < SENTENCES.size(); i++) {
                StringBuilder row = new StringBuilder();
                for (int j = 0; j < SENTENCES.size(); j++) {
                    row.append(
                            String.format(
                                    Locale.ROOT, " %5.2f", dot(vectors.get(i), vectors.get(j))));
                }
                System.out.printf(Locale.ROOT, "  %s   %s%n", row, SENTENCES.get(i));
            }
        }
        throughput(onnx);
    }

    private static void throughput(Path onnx) throws Exception {
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < 32; i++) {
            StringBuilder sb = new StringBuilder();
            for (int w = 0; w < 150; w++) {
                sb.append(SENTENCES.get((i + w) % SENTENCES.size()).split(" ")[w % 4]).append(' ');
            }
            texts.add(sb.toString());
        }
        try (TextEncoder tilewise =
                        TextEncoder.builder()
                                .setModelPath(onnx)
                                .optPooling(Pooling.MEAN)
                                .optMaxLength(128)
                                .build();
                OrtEncoder ort = new OrtEncoder(onnx, 2)) {
            var batch = tilewise.getTokenizer().encode(texts);
            double tw = bestMs(() -> tilewise.embed(texts));
            double rt = bestMs(() -> ort.run(tilewise.getTokenizer().encode(texts)));
            System.out.printf(
                    Locale.ROOT,
                    "%n  throughput, batch %d x %d tokens, fp32, 2 threads (best of 3):%n"
                            + "  Tilewise     %7.1f ms  %6.1f sentences/s%n"
                            + "  ONNX Runtime %7.1f ms  %6.1f sentences/s%n",
                    batch.getBatchSize(),
                    batch.getSequenceLength(),
                    tw,
                    32000 / tw,
                    rt,
                    32000 / rt);
        }
    }

    private interface Call {
        void run() throws Exception;
    }

    private static double bestMs(Call call) throws Exception {
        call.run();
        double best = Double.MAX_VALUE;
        for (int i = 0; i < 3; i++) {
            long t0 = System.nanoTime();
            call.run();
            best = Math.min(best, (System.nanoTime() - t0) / 1e6);
        }
        return best;
    }

    private static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }
}
