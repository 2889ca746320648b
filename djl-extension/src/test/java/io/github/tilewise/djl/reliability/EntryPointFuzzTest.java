package io.github.tilewise.djl.reliability;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.jni.AttentionNative;
import io.github.tilewise.djl.jni.LinearNative;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Logger;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * A seeded random-argument fuzzer for the public native entry points (attention, packed attention
 * with sliding windows and relative-bias tables, rotary embeddings, the low-precision and fp32
 * linear layers, LayerNorm): shapes from negative to 2^62, strides from negative through zero to
 * huge, buffers null, heap, read-only, big-endian, misaligned, too small or just right, live, freed
 * and forged weight handles. Every call must return or throw {@link IllegalArgumentException} /
 * {@link IllegalStateException} / {@link UnsupportedOperationException} within 10 s; anything else
 * (a crash ends the JVM) fails with the iteration's seed.
 *
 * <p>{@code -Dtilewise.fuzz.entryPoints=N} sets the iterations (default 10,000).
 */
class EntryPointFuzzTest {

    private static final Logger logger = Logger.getLogger(EntryPointFuzzTest.class.getName());
    private static final long SEED = 20261207L;

    @Test
    void everyCallReturnsOrThrowsADocumentedException() throws Exception {
        Assumptions.assumeTrue(Tilewise.isNativeAvailable(), "needs the native library");
        int iterations = Integer.getInteger("tilewise.fuzz.entryPoints", 10_000);
        LinearNative lowp = LinearNative.get();
        long[] handles = liveHandles(lowp);
        long freed = lowp.packWeights(LinearNative.FORMAT_BF16, 3, 5, floats(15, new Random(1)));
        lowp.freeWeights(freed);
        ExecutorService runner = Executors.newSingleThreadExecutor();
        int[] outcomes = new int[2]; // returned, refused
        long start = System.nanoTime();
        try {
            for (int i = 0; i < iterations; i++) {
                long seed = SEED + i;
                Future<Boolean> call =
                        runner.submit(() -> oneCall(new Random(seed), lowp, handles, freed));
                try {
                    outcomes[call.get(10, TimeUnit.SECONDS) ? 0 : 1]++;
                } catch (TimeoutException e) {
                    throw new AssertionError("iteration seed " + seed + " ran over 10 s");
                } catch (ExecutionException e) {
                    throw new AssertionError(
                            "iteration seed " + seed + " threw " + e.getCause(), e.getCause());
                }
            }
        } finally {
            runner.shutdownNow();
            for (long h : handles) {
                lowp.freeWeights(h);
            }
        }
        logger.info(
                String.format(
                        "entry-point fuzz: iterations=%d returned=%d refused=%d crashes=0 s=%.1f",
                        iterations, outcomes[0], outcomes[1], (System.nanoTime() - start) / 1e9));
        assertTrue(outcomes[0] > iterations / 50, "too few calls were valid: " + outcomes[0]);
    }

    /** One random call; true if it returned, false if it was refused as documented. */
    private static boolean oneCall(Random r, LinearNative lowp, long[] handles, long freed) {
        try {
            switch (r.nextInt(6)) {
                case 0:
                    attention(r);
                    break;
                case 4:
                    packedAttention(r);
                    break;
                case 5:
                    rotary(r);
                    break;
                case 1:
                    lowPrecisionLinear(r, lowp, handles, freed);
                    break;
                case 2:
                    packWeights(r, lowp);
                    break;
                default:
                    layerNorm(r, lowp);
                    break;
            }
            return true;
        } catch (IllegalArgumentException
                | IllegalStateException
                | UnsupportedOperationException expected) {
            return false;
        }
    }

    private static void attention(Random r) {
        int dtype = pick(r, 0, 1, 2, 0, 0, 3, -1);
        int compute = pick(r, 0, 0, 2, 1, 7);
        long b = size(r);
        long h = size(r);
        long hkv = r.nextBoolean() ? h : size(r);
        long nq = size(r);
        long nk = r.nextBoolean() ? nq : size(r);
        long d = pick(r, 16, 32, 64, 8, 1, 0, 300, -4);
        long[] dims = {b, h, hkv, nq, nk, d};
        int elem = dtype == 0 ? 4 : 2;
        AttentionNative.get()
                .forward(
                        dtype,
                        compute,
                        r.nextInt(20) == 0 ? new long[] {b, h} : dims,
                        buffer(r, b * h * nq * d * elem),
                        strides(r, h, nq, d),
                        buffer(r, b * hkv * nk * d * elem),
                        strides(r, hkv, nk, d),
                        buffer(r, b * hkv * nk * d * elem),
                        strides(r, hkv, nk, d),
                        buffer(r, b * h * nq * d * elem),
                        strides(r, h, nq, d),
                        r.nextInt(10) == 0 ? Float.NaN : 0.125f,
                        r.nextBoolean(),
                        r.nextInt(3) == 0 ? validLengths(r, b, nk) : null,
                        r.nextInt(4) == 0 ? buffer(r, b * nk) : null,
                        r.nextInt(4) == 0 ? buffer(r, nq * nk * 4) : null,
                        new long[] {0, 0, pick(r, nk, 0, -1, 1L << 40), 1},
                        r.nextInt(3) == 0 ? buffer(r, b * h * nq * 4) : null);
    }

    /** Packed sequences with sliding windows and relative-position bias tables. */
    private static void packedAttention(Random r) {
        int dtype = pick(r, 0, 0, 1, 2, -1);
        long h = size(r);
        long hkv = r.nextBoolean() ? h : size(r);
        long t = size(r);
        long d = pick(r, 16, 64, 8, 0, 300, -4);
        int elem = dtype == 0 ? 4 : 2;
        int seqs = r.nextInt(4);
        int[] offsets = new int[seqs + 1];
        for (int s = 1; s <= seqs; s++) {
            offsets[s] = r.nextInt(10) == 0 ? -r.nextInt(5) : offsets[s - 1] + r.nextInt(20);
        }
        if (seqs > 0 && r.nextBoolean()) {
            offsets[seqs] = (int) Math.min(t, Integer.MAX_VALUE);
        }
        long radius = pick(r, 0, 1, 7, 64, -1, 1L << 40);
        long tableHeads = r.nextBoolean() ? h : pick(r, 1, 0, 3);
        AttentionNative.get()
                .forwardPacked(
                        dtype,
                        pick(r, 0, 0, 2, 7),
                        new long[] {1, h, hkv, t, t, d},
                        buffer(r, t * h * d * elem),
                        strides(r, 1, t, h * d),
                        buffer(r, t * hkv * d * elem),
                        strides(r, 1, t, hkv * d),
                        buffer(r, t * hkv * d * elem),
                        strides(r, 1, t, hkv * d),
                        buffer(r, t * h * d * elem),
                        strides(r, 1, t, h * d),
                        0.125f,
                        r.nextBoolean(),
                        r.nextInt(8) == 0 ? null : offsets,
                        r.nextInt(8) == 0 ? new int[] {0} : offsets,
                        r.nextBoolean()
                                ? null
                                : r.nextInt(10) == 0
                                        ? new long[] {3}
                                        : new long[] {
                                            pick(r, -1, 0, 3, 64, Long.MAX_VALUE, Long.MIN_VALUE),
                                            pick(r, -1, 0, 5, 64, Long.MAX_VALUE)
                                        },
                        r.nextBoolean() ? null : buffer(r, tableHeads * (2 * radius + 1) * 4),
                        radius,
                        pick(r, 2 * radius + 1, 0, -1, 1L << 40));
    }

    /** Rotary embeddings in place. */
    private static void rotary(Random r) {
        long t = size(r);
        long h = size(r);
        long d = pick(r, 64, 32, 2, 0, 1, 7, -2, 300);
        long stride = pick(r, h * d, 3 * h * d, 0, -1, h * d - 1, 1L << 50);
        int[] positions =
                r.nextInt(8) == 0
                        ? null
                        : new int[(int) Math.max(0, Math.min(t, 4096) - r.nextInt(2))];
        if (positions != null) {
            for (int i = 0; i < positions.length; i++) {
                positions[i] = r.nextInt(10) == 0 ? -r.nextInt(100) : r.nextInt(1 << 20);
            }
        }
        io.github.tilewise.djl.jni.RotaryNative.get()
                .apply(
                        buffer(r, Math.max(0, t) * Math.max(0, stride) * 4),
                        t,
                        h,
                        d,
                        stride,
                        positions,
                        pick(r, 10_000f, 160_000f, 0f, -1f, Float.NaN, Float.POSITIVE_INFINITY));
    }

    private static void lowPrecisionLinear(
            Random r, LinearNative lowp, long[] handles, long freed) {
        long handle =
                r.nextInt(8) == 0
                        ? pick(r, 0, freed, 12345, -1, Long.MAX_VALUE)
                        : handles[r.nextInt(handles.length)];
        long m = size(r);
        long k = pick(r, 5, 7, 64, 3);
        long n = pick(r, 3, 9, 33, 5);
        int quant = pick(r, 0, 1, 2, 0, 5, -3);
        int epilogue = pick(r, 0, 1, 2, 4, 3, 7, 64);
        lowp.linear(
                handle,
                m,
                buffer(r, m * k * 4),
                quant,
                r.nextInt(5) == 0 ? buffer(r, k * 4) : null,
                r.nextInt(2) == 0 ? buffer(r, n * 4) : null,
                epilogue,
                r.nextInt(3) == 0 ? buffer(r, m * n * 4) : null,
                r.nextInt(3) == 0 ? buffer(r, n * 4) : null,
                r.nextInt(3) == 0 ? buffer(r, n * 4) : null,
                r.nextInt(8) == 0 ? -1f : 1e-5f,
                buffer(r, m * n * 4),
                r.nextInt(6) == 0 ? buffer(r, m * LinearNative.quantizedRowStride(n)) : null,
                r.nextInt(6) == 0 ? buffer(r, m * 4) : null,
                r.nextInt(6) == 0 ? buffer(r, m * 4) : null,
                pick(r, 1, 2, 0, 9),
                r.nextInt(8) == 0 ? buffer(r, n * 4) : null);
    }

    /** tw_pack_weights with random formats, shapes and buffers; a packed handle is freed again. */
    private static void packWeights(Random r, LinearNative lowp) {
        int format =
                pick(
                        r,
                        LinearNative.FORMAT_F32,
                        LinearNative.FORMAT_I8,
                        LinearNative.FORMAT_BF16,
                        LinearNative.FORMAT_F16,
                        7,
                        -1);
        long n = pick(r, 1, 7, 33, 64, 0, -2, 1L << 40);
        long k = pick(r, 1, 5, 16, 100, 0, -1, 1L << 40);
        long handle = lowp.packWeights(format, n, k, buffer(r, n * k * 4));
        lowp.freeWeights(handle);
    }

    private static void layerNorm(Random r, LinearNative lowp) {
        long m = size(r);
        long k = pick(r, 1, 7, 64, 384, 0, -5);
        lowp.layerNorm(
                m,
                k,
                buffer(r, m * k * 4),
                r.nextBoolean() ? buffer(r, m * k * 4) : null,
                r.nextBoolean() ? buffer(r, k * 4) : null,
                r.nextBoolean() ? buffer(r, k * 4) : null,
                pick(r, 0, 1, 2) == 0 ? Float.NaN : 1e-5f,
                buffer(r, m * k * 4));
    }

    /** Mostly small sizes, sometimes 0, negative or absurd. */
    private static long size(Random r) {
        switch (r.nextInt(12)) {
            case 0:
                return 0;
            case 1:
                return -r.nextInt(3) - 1;
            case 2:
                return 1L << (20 + r.nextInt(43));
            default:
                return 1 + r.nextInt(r.nextBoolean() ? 4 : 40);
        }
    }

    /** Strides for [batch, heads, seq, dim]: mostly right, sometimes zero, negative or huge. */
    private static long[] strides(Random r, long heads, long seq, long dim) {
        long[] s = {heads * seq * dim, seq * dim, dim};
        if (r.nextInt(4) == 0) {
            s[r.nextInt(3)] = pick(r, 0, -1, 1L << 45, Long.MAX_VALUE);
        }
        return r.nextInt(30) == 0 ? new long[] {1} : s;
    }

    private static int[] validLengths(Random r, long batch, long nk) {
        int n = (int) Math.max(0, Math.min(batch + r.nextInt(3) - 1, 64));
        int[] lengths = new int[n];
        for (int i = 0; i < n; i++) {
            lengths[i] =
                    r.nextInt(8) == 0 ? -1 : (int) Math.min(Integer.MAX_VALUE, r.nextInt(40) * 1L);
        }
        return lengths;
    }

    /**
     * A buffer for {@code needed} bytes: usually exactly that (when it is small), sometimes short,
     * null, on the heap, read-only, big-endian or misaligned.
     */
    private static ByteBuffer buffer(Random r, long needed) {
        int size = (int) Math.max(0, Math.min(needed, 1 << 16));
        switch (r.nextInt(14)) {
            case 0:
                return null;
            case 1:
                return ByteBuffer.allocate(size);
            case 2:
                return direct(size).asReadOnlyBuffer().order(ByteOrder.nativeOrder());
            case 3:
                return direct(size).order(ByteOrder.BIG_ENDIAN);
            case 4:
                return direct(size + 1).position(1).slice().order(ByteOrder.nativeOrder());
            case 5:
                return direct(Math.max(0, size - 1 - r.nextInt(8)));
            default:
                return direct(size);
        }
    }

    private static ByteBuffer direct(int bytes) {
        ByteBuffer b = ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
        for (int i = 0; i + 4 <= bytes; i += 4) {
            b.putFloat(i, (i * 7919 % 97) / 50f - 1f);
        }
        return b;
    }

    private static long[] liveHandles(LinearNative lowp) {
        Random r = new Random(2);
        long[] handles = new long[8];
        int[] formats = {
            LinearNative.FORMAT_F32,
            LinearNative.FORMAT_I8,
            LinearNative.FORMAT_BF16,
            LinearNative.FORMAT_F16
        };
        long[][] shapes = {{3, 5}, {9, 7}, {33, 64}, {5, 3}};
        for (int i = 0; i < handles.length; i++) {
            long[] s = shapes[i % shapes.length];
            handles[i] =
                    lowp.packWeights(
                            formats[i % formats.length],
                            s[0],
                            s[1],
                            floats((int) (s[0] * s[1]), r));
        }
        return handles;
    }

    private static ByteBuffer floats(int n, Random r) {
        ByteBuffer b = ByteBuffer.allocateDirect(n * 4).order(ByteOrder.nativeOrder());
        for (int i = 0; i < n; i++) {
            b.putFloat(i * 4, (float) r.nextGaussian());
        }
        return b;
    }

    private static int pick(Random r, int... values) {
        return values[r.nextInt(values.length)];
    }

    private static float pick(Random r, float... values) {
        return values[r.nextInt(values.length)];
    }

    private static long pick(Random r, long... values) {
        return values[r.nextInt(values.length)];
    }
}
