package io.github.tilewise.tribuo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.github.tilewise.djl.lowp.Precision;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.tribuo.Feature;
import org.tribuo.classification.Label;
import org.tribuo.classification.LabelFactory;
import org.tribuo.interop.onnx.extractors.BERTFeatureExtractor.OutputPooling;

/** One shared instance, 8 threads × 300 calls: exactly the single-threaded features. */
class ConcurrencyTest {

    private static final int THREADS = 8;
    private static final int CALLS = 300;

    @ParameterizedTest
    @EnumSource(
            value = Precision.class,
            names = {"FP32", "INT8"})
    void sharedInstanceGivesTheSingleThreadedResults(Precision precision) throws Exception {
        List<String> texts = TestTexts.all();
        try (TilewiseBERTFeatureExtractor<Label> extractor =
                new TilewiseBERTFeatureExtractor<>(
                        new LabelFactory(),
                        TestModels.tinyBert(),
                        TestModels.tinyBertTokenizer(),
                        OutputPooling.CLS_AND_MEAN,
                        512,
                        false,
                        precision,
                        32)) {
            double[][] expected = new double[texts.size()][];
            for (int i = 0; i < texts.size(); i++) {
                expected[i] =
                        TinyBertParityTest.values(extractor.extract(new Label("x"), texts.get(i)));
            }
            ExecutorService pool = Executors.newFixedThreadPool(THREADS);
            try {
                List<Future<Integer>> futures = new ArrayList<>();
                for (int t = 0; t < THREADS; t++) {
                    int thread = t;
                    futures.add(
                            pool.submit(
                                    () -> {
                                        for (int c = 0; c < CALLS; c++) {
                                            int i = (thread * 31 + c * 7) % texts.size();
                                            double[] actual;
                                            if (c % 3 == 2) {
                                                // The tagged path too, through process.
                                                List<Feature> f =
                                                        extractor.process("t", texts.get(i));
                                                actual = new double[f.size()];
                                                for (int k = 0; k < f.size(); k++) {
                                                    actual[k] = f.get(k).getValue();
                                                }
                                            } else {
                                                actual =
                                                        TinyBertParityTest.values(
                                                                extractor.extract(
                                                                        new Label("x"),
                                                                        texts.get(i)));
                                            }
                                            assertArrayEquals(
                                                    expected[i], actual, 0.0, texts.get(i));
                                        }
                                        return CALLS;
                                    }));
                }
                int done = 0;
                for (Future<Integer> f : futures) {
                    done += f.get(5, TimeUnit.MINUTES);
                }
                assertEquals(THREADS * CALLS, done);
            } finally {
                pool.shutdownNow();
            }
        }
    }
}
