package io.github.tilewise.djl.lowp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.encoder.linear.PackedLinear;
import io.github.tilewise.djl.encoder.linear.PackedWeights;
import io.github.tilewise.djl.jni.LinearNative;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/**
 * Bad input to the low-precision API is a Java exception that names the problem, on the Java side
 * and, for callers that bypass it, in JNI; closed weights cannot be used; sizes are reported.
 */
class LowPrecisionValidationTest {

    private static ByteBuffer floats(int n) {
        return ByteBuffer.allocateDirect(n * 4).order(ByteOrder.LITTLE_ENDIAN);
    }

    @Test
    void javaSideRejectsBadShapesTypesAndClosedWeights() {
        float[] w = new float[6 * 4];
        java.util.Arrays.fill(w, 0.5f);
        assertThrows(
                IllegalArgumentException.class, () -> PackedWeights.pack(w, 6, 5, Precision.INT8));
        assertThrows(IllegalArgumentException.class, () -> PackedWeights.pack(w, 6, 4, null));
        assertThrows(
                IllegalArgumentException.class, () -> PackedWeights.pack(w, 0, 4, Precision.INT8));
        float[] nan = w.clone();
        nan[3] = Float.NaN;
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> PackedWeights.pack(nan, 6, 4, Precision.BF16));
        assertTrue(e.getMessage().contains("not finite"), e.getMessage());
        assertThrows(
                IllegalArgumentException.class,
                () -> PackedWeights.fromInt8(new byte[24], new float[5], 6, 4, Precision.INT8));
        assertThrows(
                IllegalArgumentException.class,
                () -> PackedWeights.fromInt8(new byte[24], new float[6], 6, 4, Precision.BF16));
        float[] negative = new float[6];
        negative[2] = -1f;
        assertThrows(
                IllegalArgumentException.class,
                () -> PackedWeights.fromInt8(new byte[24], negative, 6, 4, Precision.INT8));

        PackedWeights packed = PackedWeights.pack(w, 6, 4, Precision.INT8);
        assertThrows(
                IllegalArgumentException.class,
                () -> PackedLinear.builder().setWeights(packed).optBias(new float[5]).build());
        assertThrows(
                IllegalArgumentException.class,
                () ->
                        PackedLinear.builder()
                                .setWeights(packed)
                                .optInputScales(new float[4])
                                .build());
        assertThrows(IllegalArgumentException.class, () -> PackedLinear.builder().build());
        try (NDManager manager = NDManager.newBaseManager("PyTorch");
                PackedLinear layer = PackedLinear.builder().setWeights(packed).build()) {
            NDArray wrongWidth = manager.ones(new Shape(3, 5));
            assertThrows(IllegalArgumentException.class, () -> layer.forward(wrongWidth, null));
            NDArray wrongType = manager.ones(new Shape(3, 4), DataType.FLOAT64);
            assertThrows(IllegalArgumentException.class, () -> layer.forward(wrongType, null));
            NDArray x = manager.ones(new Shape(3, 4));
            NDArray badResidual = manager.ones(new Shape(3, 5));
            assertThrows(IllegalArgumentException.class, () -> layer.forward(x, badResidual));
            NDArray closed = manager.ones(new Shape(3, 4));
            closed.close();
            assertThrows(IllegalArgumentException.class, () -> layer.forward(closed, null));
            assertEquals(new Shape(3, 6), layer.forward(x, null).getShape());
            layer.close();
            IllegalStateException s =
                    assertThrows(IllegalStateException.class, () -> layer.forward(x, null));
            assertTrue(s.getMessage().contains("closed"), s.getMessage());
            assertTrue(packed.isClosed());
            layer.close(); // idempotent
        }
    }

    @Test
    void jniRejectsBadCallsOnItsOwn() {
        LinearNative jni = LinearNative.get();
        ByteBuffer w = floats(8 * 5);
        assertThrows(IllegalArgumentException.class, () -> jni.packWeights(7, 8, 5, w));
        assertThrows(
                IllegalArgumentException.class,
                () -> jni.packWeights(LinearNative.FORMAT_I8, 8, 6, w));
        assertThrows(
                IllegalArgumentException.class,
                () -> jni.packWeights(LinearNative.FORMAT_I8, 8, 5, ByteBuffer.allocate(160)));
        assertThrows(
                IllegalArgumentException.class,
                () -> jni.packWeights(LinearNative.FORMAT_I8, -1, 5, w));
        assertThrows(
                IllegalArgumentException.class,
                () -> jni.packWeights(LinearNative.FORMAT_I8, Long.MAX_VALUE / 2, 5, w));
        long handle = jni.packWeights(LinearNative.FORMAT_I8, 8, 5, w);
        try {
            ByteBuffer x = floats(3 * 5);
            ByteBuffer y = floats(3 * 8);
            jni.linear(
                    handle,
                    3,
                    x,
                    LinearNative.QUANT_ASYMMETRIC,
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
            assertThrows(
                    IllegalArgumentException.class,
                    () ->
                            jni.linear(
                                    handle,
                                    4,
                                    x,
                                    LinearNative.QUANT_ASYMMETRIC,
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
                                    null));
            assertThrows(
                    IllegalArgumentException.class,
                    () ->
                            jni.linear(
                                    handle, 3, x, 9, null, null, 0, null, null, null, 0f, y, null,
                                    null, null, 0, null));
            assertThrows(
                    IllegalArgumentException.class,
                    () ->
                            jni.linear(
                                    handle, 3, x, 0, null, floats(7), 0, null, null, null, 0f, y,
                                    null, null, null, 0, null));
            assertThrows(
                    IllegalArgumentException.class,
                    () ->
                            jni.linear(
                                    handle,
                                    3,
                                    x,
                                    0,
                                    null,
                                    null,
                                    LinearNative.EPILOGUE_RESIDUAL,
                                    null,
                                    null,
                                    null,
                                    0f,
                                    y,
                                    null,
                                    null,
                                    null,
                                    0,
                                    null));
            assertThrows(
                    IllegalArgumentException.class,
                    () ->
                            jni.linear(
                                    handle, 3, x, 0, null, null, 64, null, null, null, 0f, y, null,
                                    null, null, 0, null));
            assertThrows(
                    IllegalArgumentException.class,
                    () ->
                            jni.linear(
                                    handle + 8,
                                    3,
                                    x,
                                    0,
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
                                    null));
            assertThrows(
                    IllegalArgumentException.class,
                    () ->
                            jni.linear(
                                    0, 3, x, 0, null, null, 0, null, null, null, 0f, y, null, null,
                                    null, 0, null));
            assertThrows(
                    IllegalArgumentException.class,
                    () ->
                            jni.linear(
                                    handle, 3, x, 0, null, null, 0, null, null, null, 0f, x, null,
                                    null, null, 0, null));
            assertThrows(
                    IllegalArgumentException.class,
                    () -> jni.layerNorm(3, 5, x, null, floats(4), null, 1e-5f, x));
            assertThrows(
                    IllegalArgumentException.class,
                    () -> jni.layerNorm(3, 0, x, null, null, null, 1e-5f, x));
            assertThrows(
                    IllegalArgumentException.class, () -> jni.unpackWeights(handle, floats(39)));
            // Outputs must be writable: a read-only direct buffer has an address too.
            ByteBuffer readOnly = floats(3 * 8).asReadOnlyBuffer();
            IllegalArgumentException ro =
                    assertThrows(
                            IllegalArgumentException.class,
                            () ->
                                    jni.linear(
                                            handle,
                                            3,
                                            x,
                                            LinearNative.QUANT_ASYMMETRIC,
                                            null,
                                            null,
                                            0,
                                            null,
                                            null,
                                            null,
                                            0f,
                                            readOnly,
                                            null,
                                            null,
                                            null,
                                            0,
                                            null));
            assertTrue(ro.getMessage().contains("read-only"), ro.getMessage());
            assertThrows(
                    IllegalArgumentException.class,
                    () -> jni.layerNorm(3, 5, x, null, null, null, 1e-5f, x.asReadOnlyBuffer()));
            assertThrows(
                    IllegalArgumentException.class,
                    () -> jni.unpackWeights(handle, floats(40).asReadOnlyBuffer()));
            long[] info = jni.weightsInfo(handle);
            assertEquals(LinearNative.FORMAT_I8, info[0]);
            assertEquals(8, info[1]);
            assertEquals(5, info[2]);
        } finally {
            jni.freeWeights(handle);
        }
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> jni.freeWeights(handle));
        assertTrue(e.getMessage().contains("not live"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> jni.weightsInfo(handle));
    }

    @Test
    void residentSizesFollowThePrecision() {
        int out = 384;
        int in = 1536;
        float[] w = new float[out * in];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) Math.sin(i);
        }
        long fp32 = 4L * out * in;
        try (PackedWeights int8 = PackedWeights.pack(w, out, in, Precision.INT8);
                PackedWeights bf16 = PackedWeights.pack(w, out, in, Precision.BF16);
                PackedWeights fp16 = PackedWeights.pack(w, out, in, Precision.FP16)) {
            assertTrue(
                    int8.getByteSize() <= fp32 / 4 + 8L * out + 1024, "int8 " + int8.getByteSize());
            assertTrue(int8.getByteSize() >= (long) out * in);
            assertTrue(bf16.getByteSize() <= fp32 / 2 + 1024, "bf16 " + bf16.getByteSize());
            assertTrue(fp16.getByteSize() <= fp32 / 2 + 1024, "fp16 " + fp16.getByteSize());
        }
    }

    @Test
    void precisionNamesParseAndKernelsAreNamed() {
        assertEquals(Precision.INT8, Precision.fromName("int8"));
        assertEquals(Precision.INT8_WEIGHT_ONLY, Precision.fromName("int8-weight-only"));
        assertEquals(Precision.BF16, Precision.fromName("BF16"));
        assertEquals(Precision.FP32, Precision.fromName("float32"));
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> Precision.fromName("int4"));
        assertTrue(e.getMessage().contains("int4"));
        for (Precision p : Precision.values()) {
            assertFalse(p.kernelName().isEmpty());
        }
        System.setProperty("tilewise.linear", "pytorch");
        try {
            assertEquals("pytorch", Precision.FP32.kernelName());
        } finally {
            System.clearProperty("tilewise.linear");
        }
        if (Tilewise.isNativeAvailable() && Tilewise.activeIsa() == Tilewise.Isa.AVX512) {
            assertEquals("avx512-f32-12x32", Precision.FP32.kernelName());
        }
    }
}
