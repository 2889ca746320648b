package io.github.tilewise.it.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.inference.Predictor;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.engine.EncoderTranslatorFactory;
import io.github.tilewise.it.models.RealModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;

/**
 * Closing a shared model while other threads are inside forward passes with it: every call either
 * returns the right vector or throws {@link IllegalStateException} (closed), and the JVM survives
 * (a crash would end surefire's fork and fail the run). 8 threads × 300 calls per round, closed at
 * a random moment of the round, on Tribuo's real tinybert, for the {@code TextEncoder} and for
 * DJL's {@code ZooModel}/{@code Predictor} in each precision.
 *
 * <p>{@code -Dtilewise.closeRounds=N} sets the rounds per case (default 50 for the fp32 {@code
 * TextEncoder}, 10 for the others, so the whole class stays within a minute or two of CI).
 */
class CloseDuringForwardTest {

    private static final Logger logger = Logger.getLogger(CloseDuringForwardTest.class.getName());
    private static final int THREADS = 8;
    private static final int CALLS = 300;
    private static final List<String> TEXTS =
            List.of(
                    "the cat sat on the mat",
                    "a",
                    "",
                    "closing a model while it runs must never crash the virtual machine",
                    "short text",
                    "many words of different lengths to make the batch longer than the others");

    /** Something that embeds one text and can be closed: a model under test. */
    private interface Embedder extends AutoCloseable {
        float[] embed(String text) throws Exception;
    }

    /** Opens a fresh instance of the model under test. */
    private interface Opener {
        Embedder open() throws Exception;
    }

    @Test
    void textEncoderFp32() throws Exception {
        Path dir = RealModels.tinyBert();
        run(
                "TextEncoder fp32",
                rounds(50),
                () -> {
                    TextEncoder encoder =
                            TextEncoder.builder()
                                    .setModelPath(RealModels.onnxFile(dir))
                                    .optPooling(Pooling.MEAN)
                                    .build();
                    return new Embedder() {
                        @Override
                        public float[] embed(String text) {
                            return encoder.embed(text);
                        }

                        @Override
                        public void close() {
                            encoder.close();
                        }
                    };
                });
    }

    @Test
    void predictorFp32() throws Exception {
        run("Predictor fp32", rounds(10), predictor(null));
    }

    @Test
    void predictorInt8() throws Exception {
        run("Predictor int8", rounds(10), predictor("int8"));
    }

    @Test
    void predictorBf16() throws Exception {
        run("Predictor bf16", rounds(10), predictor("bf16"));
    }

    private static Opener predictor(String precision) {
        return () -> {
            Criteria.Builder<String, float[]> builder =
                    Criteria.builder()
                            .setTypes(String.class, float[].class)
                            .optEngine("Tilewise")
                            .optModelPath(RealModels.onnxFile(RealModels.tinyBert()))
                            .optTranslatorFactory(new EncoderTranslatorFactory())
                            .optArgument("pooling", "mean");
            if (precision != null) {
                builder.optArgument("precision", precision);
            }
            ZooModel<String, float[]> model = builder.build().loadModel();
            // One predictor shared by every thread, as a service would hold it.
            Predictor<String, float[]> predictor = model.newPredictor();
            return new Embedder() {
                @Override
                public float[] embed(String text) throws Exception {
                    return predictor.predict(text);
                }

                @Override
                public void close() {
                    model.close();
                    predictor.close();
                }
            };
        };
    }

    private static int rounds(int fallback) {
        return Integer.getInteger("tilewise.closeRounds", fallback);
    }

    private static void run(String label, int rounds, Opener opener) throws Exception {
        float[][] expected = new float[TEXTS.size()][];
        try (Embedder reference = opener.open()) {
            for (int i = 0; i < TEXTS.size(); i++) {
                expected[i] = reference.embed(TEXTS.get(i));
            }
        }
        Random random = new Random(42);
        int returned = 0;
        int refused = 0;
        for (int round = 0; round < rounds; round++) {
            // Closed once a random number of calls have returned: somewhere inside the round.
            int[] counts = round(opener.open(), expected, random.nextInt(THREADS * CALLS));
            returned += counts[0];
            refused += counts[1];
        }
        logger.info(
                String.format(
                        "close-during-forward %s: rounds=%d calls=%d returned=%d refused=%d",
                        label, rounds, rounds * THREADS * CALLS, returned, refused));
        assertEquals(rounds * THREADS * CALLS, returned + refused);
        assertTrue(refused > 0, label + ": no call ever saw the model closed");
    }

    /** One round; returns {calls that returned, calls refused as closed}. */
    private static int[] round(Embedder embedder, float[][] expected, int closeAfterCalls)
            throws Exception {
        AtomicInteger returned = new AtomicInteger();
        AtomicInteger refused = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CountDownLatch start = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
            int offset = t;
            threads.add(
                    new Thread(
                            () -> {
                                awaitQuietly(start);
                                for (int i = 0; i < CALLS; i++) {
                                    int text = (offset + i) % TEXTS.size();
                                    try {
                                        float[] got = embedder.embed(TEXTS.get(text));
                                        assertClose(expected[text], got, TEXTS.get(text));
                                        returned.incrementAndGet();
                                    } catch (IllegalStateException e) {
                                        assertTrue(
                                                e.getMessage().contains("closed"), e.getMessage());
                                        refused.incrementAndGet();
                                    } catch (Throwable e) {
                                        failure.compareAndSet(null, e);
                                        return;
                                    }
                                }
                            }));
        }
        threads.forEach(Thread::start);
        start.countDown();
        while (returned.get() < closeAfterCalls && failure.get() == null) {
            LockSupport.parkNanos(20_000);
        }
        embedder.close();
        for (Thread thread : threads) {
            thread.join(60_000);
            if (thread.isAlive()) {
                fail("a forward pass hung after the model was closed");
            }
        }
        if (failure.get() != null) {
            throw new AssertionError("a call failed other than as closed", failure.get());
        }
        return new int[] {returned.get(), refused.get()};
    }

    private static void assertClose(float[] expected, float[] got, String text) {
        assertEquals(expected.length, got.length);
        for (int i = 0; i < expected.length; i++) {
            if (Math.abs(expected[i] - got[i]) > 1e-5f * (1 + Math.abs(expected[i]))) {
                fail("'" + text + "' element " + i + ": " + got[i] + " vs " + expected[i]);
            }
        }
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
