package io.github.tilewise.djl.reliability;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.encoder.linear.LinearActivation;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import io.github.tilewise.djl.encoder.linear.LinearOperator;
import io.github.tilewise.djl.encoder.linear.LinearOperators;
import io.github.tilewise.djl.encoder.linear.PackedLinear;
import io.github.tilewise.djl.encoder.linear.PackedWeights;
import io.github.tilewise.djl.jni.LinearNative;
import io.github.tilewise.djl.lowp.Precision;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Closing linear operators and packed weights while other threads run forward passes on them: each
 * call returns the exact result of an undisturbed call or is refused with an exception naming the
 * closed object; native memory is never freed under a running kernel (a crash would end the test
 * JVM). Also the JNI registry itself, with a raw handle freed under running calls.
 */
class LinearLifecycleTest {

    private static final int THREADS = 8;
    private static final int CALLS = 60;
    private static final int ROUNDS = 20;
    private static final int ROWS = 96;
    private static final int IN = 256;
    private static final int OUT = 320;

    @BeforeAll
    static void needsNative() {
        Assumptions.assumeTrue(Tilewise.isNativeAvailable(), "needs the native library");
    }

    /** An operator under test, with the manager its weights live on. */
    private interface Subject extends AutoCloseable {
        NDArray forward(NDArray x);

        @Override
        void close();
    }

    @Test
    void lowPrecisionLayersClosedDuringForward() throws Exception {
        for (Precision precision : Precision.values()) {
            if (!precision.isLowPrecision()) {
                continue;
            }
            Random random = new Random(precision.ordinal());
            float[] w = gaussian(random, OUT * IN, 0.05f);
            rounds(
                    precision.toString(),
                    () -> {
                        PackedLinear layer =
                                PackedLinear.builder()
                                        .setWeights(PackedWeights.pack(w, OUT, IN, precision))
                                        .optActivation(LinearActivation.GELU)
                                        .build();
                        return new Subject() {
                            @Override
                            public NDArray forward(NDArray x) {
                                return layer.forward(x, null);
                            }

                            @Override
                            public void close() {
                                layer.close();
                            }
                        };
                    });
        }
    }

    @Test
    void nativeFp32OperatorClosedDuringForward() throws Exception {
        Random random = new Random(7);
        float[] w = gaussian(random, OUT * IN, 0.05f);
        float[] b = gaussian(random, OUT, 0.1f);
        rounds(
                "fp32-native",
                () -> {
                    NDManager weights = NDManager.newBaseManager();
                    System.setProperty("tilewise.linear", "native");
                    LinearOperator op;
                    try {
                        op =
                                LinearOperators.fp32(
                                        weights.create(w, new Shape(OUT, IN)),
                                        weights.create(b),
                                        LinearActivation.GELU);
                    } finally {
                        System.clearProperty("tilewise.linear");
                    }
                    return new Subject() {
                        @Override
                        public NDArray forward(NDArray x) {
                            return op.forward(x, null);
                        }

                        @Override
                        public void close() {
                            op.close();
                            weights.close();
                        }
                    };
                });
    }

    /**
     * The JNI layer on its own: a handle freed while calls run on it is freed when they return;
     * calls that start after the free are refused as "not live".
     */
    @Test
    void rawHandleFreedUnderRunningCalls() throws Exception {
        LinearNative lib = LinearNative.get();
        Random random = new Random(3);
        ByteBuffer w = floats(gaussian(random, OUT * IN, 0.05f));
        ByteBuffer x = floats(gaussian(random, ROWS * IN, 1f));
        float[] expected = null;
        int refused = 0;
        int returned = 0;
        for (int round = 0; round < ROUNDS; round++) {
            long handle = lib.packWeights(LinearNative.FORMAT_BF16, OUT, IN, w);
            if (expected == null) {
                ByteBuffer y = floats(new float[ROWS * OUT]);
                linear(lib, handle, x, y);
                expected = toArray(y);
            }
            float[] reference = expected;
            AtomicInteger ok = new AtomicInteger();
            AtomicInteger notLive = new AtomicInteger();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CountDownLatch start = new CountDownLatch(1);
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                threads.add(
                        new Thread(
                                () -> {
                                    await(start);
                                    ByteBuffer y = floats(new float[ROWS * OUT]);
                                    for (int i = 0; i < CALLS; i++) {
                                        try {
                                            linear(lib, handle, x, y);
                                            assertArrayEquals(reference, toArray(y));
                                            ok.incrementAndGet();
                                        } catch (IllegalArgumentException e) {
                                            assertTrue(
                                                    e.getMessage().contains("not live"),
                                                    e.getMessage());
                                            notLive.incrementAndGet();
                                        } catch (Throwable e) {
                                            failure.compareAndSet(null, e);
                                            return;
                                        }
                                    }
                                }));
            }
            threads.forEach(Thread::start);
            start.countDown();
            Thread.sleep(random.nextInt(30));
            lib.freeWeights(handle);
            join(threads);
            if (failure.get() != null) {
                throw new AssertionError(failure.get());
            }
            returned += ok.get();
            refused += notLive.get();
        }
        assertTrue(refused > 0 && returned > 0, "returned " + returned + ", refused " + refused);
    }

    /** Concurrent first forwards of a layer pack its weights once and share that operator. */
    @Test
    void concurrentFirstUseBuildsOneOperator() throws Exception {
        Random random = new Random(11);
        for (int round = 0; round < ROUNDS; round++) {
            try (NDManager manager = NDManager.newBaseManager()) {
                LinearBlock block = new LinearBlock("l", IN, OUT, LinearActivation.NONE);
                block.setParameters(
                        manager.create(gaussian(random, OUT * IN, 0.05f), new Shape(OUT, IN)),
                        manager.create(new float[OUT]));
                List<LinearOperator> seen = new ArrayList<>();
                CountDownLatch start = new CountDownLatch(1);
                List<Thread> threads = new ArrayList<>();
                for (int t = 0; t < THREADS; t++) {
                    threads.add(
                            new Thread(
                                    () -> {
                                        await(start);
                                        LinearOperator op = block.getOperator();
                                        synchronized (seen) {
                                            seen.add(op);
                                        }
                                    }));
                }
                threads.forEach(Thread::start);
                start.countDown();
                join(threads);
                for (LinearOperator op : seen) {
                    assertSame(seen.get(0), op, "two operators were built for one layer");
                }
                block.setOperator(null);
            }
        }
    }

    private static void rounds(String label, Supplier<Subject> open) throws Exception {
        Random random = new Random(label.hashCode());
        float[] input = gaussian(random, ROWS * IN, 1f);
        float[] expected;
        try (Subject reference = open.get();
                NDManager manager = NDManager.newBaseManager()) {
            expected = reference.forward(manager.create(input, new Shape(ROWS, IN))).toFloatArray();
        }
        int returned = 0;
        int refused = 0;
        for (int round = 0; round < ROUNDS; round++) {
            Subject subject = open.get();
            AtomicInteger ok = new AtomicInteger();
            AtomicInteger closed = new AtomicInteger();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CountDownLatch start = new CountDownLatch(1);
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                threads.add(
                        new Thread(
                                () -> {
                                    await(start);
                                    try (NDManager mine = NDManager.newBaseManager()) {
                                        NDArray x = mine.create(input, new Shape(ROWS, IN));
                                        for (int i = 0; i < CALLS; i++) {
                                            try (NDManager call = mine.newSubManager()) {
                                                NDArray y = subject.forward(x);
                                                y.attach(call);
                                                assertArrayEquals(expected, y.toFloatArray());
                                                ok.incrementAndGet();
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
            Thread.sleep(random.nextInt(20));
            subject.close();
            join(threads);
            if (failure.get() != null) {
                throw new AssertionError(
                        label + ": a call failed other than as closed", failure.get());
            }
            returned += ok.get();
            refused += closed.get();
        }
        assertTrue(
                returned + refused == ROUNDS * THREADS * CALLS && refused > 0,
                label + ": returned " + returned + ", refused " + refused);
    }

    private static void linear(LinearNative lib, long handle, ByteBuffer x, ByteBuffer y) {
        lib.linear(
                handle,
                ROWS,
                x,
                LinearNative.QUANT_NONE,
                null,
                null,
                0,
                null,
                null,
                null,
                0f,
                y,
                null,
                null,
                null,
                0,
                null);
    }

    private static void join(List<Thread> threads) throws InterruptedException {
        for (Thread thread : threads) {
            thread.join(120_000);
            if (thread.isAlive()) {
                fail("a call hung after its object was closed");
            }
        }
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static float[] gaussian(Random random, int n, float std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (random.nextGaussian() * std);
        }
        return v;
    }

    private static ByteBuffer floats(float[] values) {
        ByteBuffer b = ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.nativeOrder());
        b.asFloatBuffer().put(values);
        return b;
    }

    private static float[] toArray(ByteBuffer b) {
        float[] v = new float[b.capacity() / 4];
        b.asFloatBuffer().get(v);
        return v;
    }
}
