package io.github.tilewise.djl.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.attention.AttentionOptions;
import io.github.tilewise.djl.attention.FusedAttention;
import io.github.tilewise.djl.attention.ReferenceAttention;
import io.github.tilewise.djl.encoder.linear.LinearOperator;
import io.github.tilewise.djl.encoder.linear.PackedLinear;
import io.github.tilewise.djl.encoder.linear.PackedWeights;
import io.github.tilewise.djl.jni.LinearNative;
import io.github.tilewise.djl.jni.SharedMemory;
import io.github.tilewise.djl.lowp.Precision;
import java.lang.reflect.Proxy;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * NaN and infinity in inputs give the answers fp32 arithmetic gives, on every path: values that a
 * mask hides never reach the output (native kernel and DJL reference alike), a non-finite value
 * that is used makes exactly the outputs that depend on it non-finite (INT8 included, which once
 * coded NaN as 0 and returned a finite number), and neighbouring rows are untouched. Buffers the
 * kernels cannot read correctly (big-endian, off the CPU) are refused with a message.
 */
class NonFiniteInputsTest {

    private static final float[] POISON = {
        Float.NaN, Float.POSITIVE_INFINITY, -Float.MAX_VALUE * 4
    };

    private NDManager manager;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    @Test
    void maskedKeysAndValuesNeverReachTheOutput() {
        int b = 2;
        int h = 2;
        int n = 37;
        int d = 16;
        Random random = new Random(5);
        for (float poison : POISON) {
            NDArray q = manager.randomNormal(new Shape(b, h, n, d));
            NDArray k = manager.randomNormal(new Shape(b, h, n, d));
            NDArray v = manager.randomNormal(new Shape(b, h, n, d));
            // Batch 1 masks its keys from 20 on; put the poison exactly there, in K and in V.
            int[] valid = {n, 20};
            float[] mask = new float[b * n];
            for (int i = 0; i < b * n; i++) {
                mask[i] = i / n == 0 || i % n < 20 ? 1 : 0;
            }
            float[] kPoisoned = k.toFloatArray();
            float[] vPoisoned = v.toFloatArray();
            for (int head = 0; head < h; head++) {
                for (int key = 20; key < n; key++) {
                    int at = ((1 * h + head) * n + key) * d + random.nextInt(d);
                    kPoisoned[at] = poison;
                    vPoisoned[at] = poison;
                }
            }
            NDArray kBad = manager.create(kPoisoned, k.getShape());
            NDArray vBad = manager.create(vPoisoned, v.getShape());
            AttentionOptions byMask =
                    AttentionOptions.builder()
                            .optKeyPaddingMask(
                                    manager.create(mask, new Shape(b, n))
                                            .toType(DataType.INT64, false))
                            .build();
            AttentionOptions byLengths =
                    AttentionOptions.builder().optKeyValidLengths(valid).build();
            for (AttentionOptions options : new AttentionOptions[] {byMask, byLengths}) {
                for (Path path : Path.values()) {
                    if (path == Path.NATIVE && !Tilewise.isNativeAvailable()) {
                        continue;
                    }
                    float[] clean = path.run(q, k, v, options).toFloatArray();
                    float[] got = path.run(q, kBad, vBad, options).toFloatArray();
                    for (int i = 0; i < clean.length; i++) {
                        assertEquals(
                                clean[i],
                                got[i],
                                1e-5f,
                                path + " with " + poison + " in masked keys: element " + i);
                    }
                }
            }
        }
    }

    @Test
    void aUsedNonFiniteValuePoisonsExactlyTheRowsThatSeeIt() {
        int n = 29;
        int d = 8;
        int poisonedKey = 11;
        for (float poison : new float[] {Float.NaN, Float.POSITIVE_INFINITY}) {
            NDArray q = manager.randomNormal(new Shape(1, 1, n, d));
            NDArray k = manager.randomNormal(new Shape(1, 1, n, d));
            float[] vValues = manager.randomNormal(new Shape(1, 1, n, d)).toFloatArray();
            vValues[poisonedKey * d + 3] = poison;
            NDArray v = manager.create(vValues, new Shape(1, 1, n, d));
            AttentionOptions causal = AttentionOptions.builder().optCausal(true).build();
            for (Path path : Path.values()) {
                if (path == Path.NATIVE && !Tilewise.isNativeAvailable()) {
                    continue;
                }
                float[] out = path.run(q, k, v, causal).toFloatArray();
                for (int row = 0; row < n; row++) {
                    boolean sees = row >= poisonedKey;
                    boolean finite = Float.isFinite(out[row * d + 3]);
                    assertEquals(
                            !sees,
                            finite,
                            path + ": row " + row + " (poisoned key " + poisonedKey + ")");
                    assertTrue(
                            Float.isFinite(out[row * d + 2]),
                            path + ": row " + row + " column 2 saw no poison");
                }
            }
        }
    }

    @Test
    void everyLinearPrecisionPropagatesNonFiniteRowsOnly() {
        org.junit.jupiter.api.Assumptions.assumeTrue(Tilewise.isNativeAvailable());
        int rows = 6;
        int in = 70;
        int out = 45;
        Random random = new Random(9);
        float[] w = new float[out * in];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) random.nextGaussian() * 0.1f;
        }
        for (Precision precision : Precision.values()) {
            LinearOperator op =
                    PackedLinear.builder()
                            .setWeights(PackedWeights.pack(w, out, in, precision))
                            .build();
            try (op) {
                for (float poison : POISON) {
                    float[] x = new float[rows * in];
                    for (int i = 0; i < x.length; i++) {
                        x[i] = (float) random.nextGaussian();
                    }
                    float[] clean =
                            op.forward(manager.create(x, new Shape(rows, in)), null).toFloatArray();
                    x[2 * in + in - 1] = poison; // row 2, last column
                    x[4 * in] = poison; // row 4, first column
                    float[] got =
                            op.forward(manager.create(x, new Shape(rows, in)), null).toFloatArray();
                    for (int r = 0; r < rows; r++) {
                        for (int c = 0; c < out; c++) {
                            float value = got[r * out + c];
                            if (r == 2 || r == 4) {
                                assertFalse(
                                        Float.isFinite(value),
                                        precision
                                                + " "
                                                + poison
                                                + ": row "
                                                + r
                                                + " col "
                                                + c
                                                + " is finite: "
                                                + value);
                            } else {
                                assertEquals(
                                        clean[r * out + c], value, 0f, precision + " row " + r);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void bigEndianBuffersAreRefusedByTheLayerNorm() {
        org.junit.jupiter.api.Assumptions.assumeTrue(Tilewise.isNativeAvailable());
        int m = 3;
        int k = 8;
        ByteBuffer little = ByteBuffer.allocateDirect(m * k * 4).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer big = ByteBuffer.allocateDirect(m * k * 4); // big-endian by default
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                LinearNative.get()
                                        .layerNorm(m, k, big, null, null, null, 1e-5f, little));
        assertTrue(e.getMessage().contains("big-endian"), e.getMessage());
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                LinearNative.get()
                                        .layerNorm(m, k, little, null, null, null, 1e-5f, big));
        assertTrue(e.getMessage().contains("big-endian"), e.getMessage());
    }

    /**
     * An array on another device: its {@code toByteBuffer} would be a host copy that the kernel
     * writes in vain. No GPU engine runs here, so a stand-in array reports a GPU device.
     */
    @Test
    void arraysOffTheCpuAreRefused() {
        NDArray real = manager.zeros(new Shape(2, 3));
        NDArray onGpu =
                (NDArray)
                        Proxy.newProxyInstance(
                                NDArray.class.getClassLoader(),
                                new Class<?>[] {NDArray.class},
                                (proxy, method, args) ->
                                        "getDevice".equals(method.getName())
                                                ? Device.gpu()
                                                : method.invoke(real, args));
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class, () -> SharedMemory.of(onGpu, "x", null));
        assertTrue(e.getMessage().contains("x is on gpu"), e.getMessage());
    }

    /** The two attention implementations. */
    private enum Path {
        NATIVE(FusedAttention::forward),
        REFERENCE(ReferenceAttention::forward);

        private final Attention attention;

        Path(Attention attention) {
            this.attention = attention;
        }

        NDArray run(NDArray q, NDArray k, NDArray v, AttentionOptions options) {
            return attention.apply(q, k, v, options);
        }
    }

    @FunctionalInterface
    private interface Attention {
        NDArray apply(NDArray q, NDArray k, NDArray v, AttentionOptions options);
    }
}
