package io.github.tilewise.tribuo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.tilewise.djl.lowp.Precision;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.tribuo.classification.Label;
import org.tribuo.classification.LabelFactory;
import org.tribuo.interop.onnx.extractors.BERTFeatureExtractor.OutputPooling;

/**
 * One extractor shared by 8 threads × 300 calls, closed after a random number of them: every call
 * returns the single-threaded features or throws {@link IllegalStateException} (closed); the JVM
 * survives, and the close frees the packed weights of every precision.
 */
class CloseDuringExtractionTest {

    private static final int THREADS = 8;
    private static final int CALLS = 300;
    private static final int ROUNDS = 10;

    @ParameterizedTest
    @EnumSource(
            value = Precision.class,
            names = {"FP32", "INT8", "BF16"})
    void closeWaitsForCallsInFlightAndRefusesLaterOnes(Precision precision) throws Exception {
        List<String> texts = TestTexts.all();
        double[][] expected = new double[texts.size()][];
        try (TilewiseBERTFeatureExtractor<Label> reference = open(precision)) {
            for (int i = 0; i < texts.size(); i++) {
                expected[i] = reference.embed(texts.get(i));
            }
        }
        Random random = new Random(precision.ordinal());
        int refused = 0;
        int ok = 0;
        for (int round = 0; round < ROUNDS; round++) {
            TilewiseBERTFeatureExtractor<Label> extractor = open(precision);
            AtomicInteger returned = new AtomicInteger();
            AtomicInteger closed = new AtomicInteger();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CountDownLatch start = new CountDownLatch(1);
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int offset = t * 31;
                threads.add(
                        new Thread(
                                () -> {
                                    try {
                                        start.await();
                                        for (int c = 0; c < CALLS; c++) {
                                            int i = (offset + c * 7) % texts.size();
                                            try {
                                                double[] got = extractor.embed(texts.get(i));
                                                assertArrayEquals(expected[i], got, 0.0);
                                                returned.incrementAndGet();
                                            } catch (IllegalStateException e) {
                                                assertTrue(
                                                        e.getMessage().contains("closed"),
                                                        e.getMessage());
                                                closed.incrementAndGet();
                                            }
                                        }
                                    } catch (Throwable e) {
                                        failure.compareAndSet(null, e);
                                    }
                                }));
            }
            threads.forEach(Thread::start);
            start.countDown();
            int closeAfter = random.nextInt(THREADS * CALLS);
            while (returned.get() < closeAfter && failure.get() == null) {
                LockSupport.parkNanos(20_000);
            }
            extractor.close();
            for (Thread thread : threads) {
                thread.join(60_000);
                if (thread.isAlive()) {
                    fail("an extraction hung after the extractor was closed");
                }
            }
            if (failure.get() != null) {
                throw new AssertionError("a call failed other than as closed", failure.get());
            }
            assertEquals(THREADS * CALLS, returned.get() + closed.get());
            refused += closed.get();
            ok += returned.get();
        }
        java.util.logging.Logger.getLogger(CloseDuringExtractionTest.class.getName())
                .info(
                        String.format(
                                "close-during-extraction %s: rounds=%d calls=%d returned=%d"
                                        + " refused=%d",
                                precision, ROUNDS, ROUNDS * THREADS * CALLS, ok, refused));
        assertTrue(refused > 0, "no call ever saw the extractor closed");
    }

    private static TilewiseBERTFeatureExtractor<Label> open(Precision precision) {
        return new TilewiseBERTFeatureExtractor<>(
                new LabelFactory(),
                TestModels.tinyBert(),
                TestModels.tinyBertTokenizer(),
                OutputPooling.MEAN,
                512,
                false,
                precision,
                32);
    }
}
