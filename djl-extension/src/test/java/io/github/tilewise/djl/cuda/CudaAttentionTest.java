package io.github.tilewise.djl.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.ndarray.types.DataType;
import io.github.tilewise.djl.NativeLibraryUnavailableException;
import io.github.tilewise.djl.attention.AttentionLayout;
import io.github.tilewise.djl.attention.AttentionOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Argument validation and the unavailable path of the CUDA attention's buffer API, which run
 * everywhere, and one check of numbers against a float64 reference, which needs a usable GPU and is
 * skipped (JUnit assumption) elsewhere. On a machine with Java, Maven, nvcc and an NVIDIA GPU:
 * {@code mvn -B verify -pl native,djl-extension -Dtilewise.cuda.build=ON -Dtest='Cuda*'
 * -Dsurefire.failIfNoSpecifiedTests=false}. The lead's GPU machine has no Java: there the same
 * numbers are checked by {@code native/test/cuda/cuda_attention_test.cpp} and, through this API, by
 * {@code CudaAttentionBenchmark} ({@code native/bench/cuda/stage.sh} and {@code run_h200.sh}).
 */
class CudaAttentionTest {

    private static CudaAttention.Builder valid() {
        return CudaAttention.builder()
                .setDataType(DataType.FLOAT16)
                .setShape(2, 8, 2, 100, 130, 64);
    }

    @Test
    void builderRejectsMissingAndInvalidSettings() {
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> CudaAttention.builder().setShape(1, 1, 1, 1, 1, 64).build());
        assertTrue(e.getMessage().contains("setDataType"), e.getMessage());
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> CudaAttention.builder().setDataType(DataType.BFLOAT16).build());
        assertTrue(e.getMessage().contains("setShape"), e.getMessage());
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> valid().setShape(2, 8, 3, 100, 130, 64).build());
        assertTrue(e.getMessage().contains("kvHeads (3) must divide qHeads (8)"), e.getMessage());
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> valid().setShape(2, 8, 2, 0, 130, 64).build());
        assertTrue(e.getMessage().contains(">= 1"), e.getMessage());
        UnsupportedOperationException u =
                assertThrows(
                        UnsupportedOperationException.class,
                        () -> valid().setShape(2, 8, 2, 100, 130, 96).build());
        assertTrue(u.getMessage().contains("96"), u.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> valid().optOptions(null));
        assertTrue(e.getMessage().contains("options"), e.getMessage());
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> valid().optOptions(lengths(new int[] {5})).build());
        assertTrue(e.getMessage().contains("batch is 2"), e.getMessage());
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> valid().optOptions(lengths(new int[] {5, 131})).build());
        assertTrue(e.getMessage().contains("keyValidLengths[1] = 131"), e.getMessage());
    }

    @Test
    void sizesFollowTheShape() {
        AttentionOptions seqMajor =
                AttentionOptions.builder().optLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM).build();
        try (CudaAttention a = valid().optOptions(seqMajor).build()) {
            assertEquals(2L * 8 * 100 * 64 * 2, a.queryBytes());
            assertEquals(2L * 2 * 130 * 64 * 2, a.keyValueBytes());
            assertEquals(2L * 8 * 100 * 4, a.logSumExpBytes());
            assertEquals(AttentionLayout.BATCH_SEQ_HEADS_DIM, a.getLayout());
            assertEquals(DataType.FLOAT16, a.getDataType());
        }
    }

    @Test
    void hostBuffersAreCheckedBeforeAnyDeviceWork() {
        try (CudaAttention a = valid().build()) {
            ByteBuffer q = ByteBuffer.allocateDirect((int) a.queryBytes());
            ByteBuffer kv = ByteBuffer.allocateDirect((int) a.keyValueBytes());
            ByteBuffer out = ByteBuffer.allocateDirect((int) a.queryBytes());
            IllegalArgumentException e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () ->
                                    a.forward(
                                            ByteBuffer.allocate((int) a.queryBytes()),
                                            kv,
                                            kv,
                                            out));
            assertTrue(e.getMessage().contains("direct"), e.getMessage());
            ByteBuffer small = ByteBuffer.allocateDirect((int) a.keyValueBytes() - 2);
            e = assertThrows(IllegalArgumentException.class, () -> a.forward(q, kv, small, out));
            assertTrue(e.getMessage().contains("v buffer holds"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> a.forward(q, kv, kv, null));
            assertTrue(e.getMessage().contains("out buffer is null"), e.getMessage());
        }
    }

    @Test
    void closedOperatorRefusesWork() {
        CudaAttention a = valid().build();
        a.close();
        a.close(); // idempotent
        ByteBuffer buf = ByteBuffer.allocateDirect(16);
        assertThrows(IllegalStateException.class, () -> a.forward(buf, buf, buf, buf));
    }

    @Test
    void withoutGpuEveryCallFailsCleanly() {
        assumeFalse(CudaAttention.isAvailable(), "a GPU is present");
        String reason = CudaAttention.unavailableReason();
        assertNotNull(reason);
        assertFalse(reason.isBlank());
        NativeLibraryUnavailableException e =
                assertThrows(
                        NativeLibraryUnavailableException.class, () -> DeviceBuffer.allocate(64));
        assertTrue(e.getMessage().contains(reason), e.getMessage());
        try (CudaAttention a = valid().build()) {
            ByteBuffer q = ByteBuffer.allocateDirect((int) a.queryBytes());
            ByteBuffer kv = ByteBuffer.allocateDirect((int) a.keyValueBytes());
            assertThrows(NativeLibraryUnavailableException.class, () -> a.forward(q, kv, kv, q));
        }
        assertThrows(NativeLibraryUnavailableException.class, CudaAttention::describeDevice);
    }

    @Test
    void onGpuNumbersMatchFloat64() {
        assumeTrue(
                CudaAttention.isAvailable(), () -> "no GPU: " + CudaAttention.unavailableReason());
        // A GPU is present: fp16, causal, GQA, against float64 on the same rounded inputs.
        int b = 2, h = 4, hkv = 2, nq = 70, nk = 90, d = 64;
        try (CudaAttention a =
                CudaAttention.builder()
                        .setDataType(DataType.FLOAT16)
                        .setShape(b, h, hkv, nq, nk, d)
                        .optOptions(AttentionOptions.builder().optCausal(true).build())
                        .build()) {
            Random rng = new Random();
            float[] q = gaussians(rng, b * h * nq * d);
            float[] k = gaussians(rng, b * hkv * nk * d);
            float[] v = gaussians(rng, b * hkv * nk * d);
            ByteBuffer out =
                    ByteBuffer.allocateDirect((int) a.queryBytes()).order(ByteOrder.LITTLE_ENDIAN);
            a.forward(half(q), half(k), half(v), out);
            double err = 0;
            double norm = 0;
            double scale = 1 / Math.sqrt(d);
            for (int bi = 0; bi < b; bi++) {
                for (int hi = 0; hi < h; hi++) {
                    int hk = hi / (h / hkv);
                    for (int i = 0; i < nq; i++) {
                        int last = Math.min(nk - 1, i + nk - nq);
                        double[] s = new double[last + 1];
                        double max = Double.NEGATIVE_INFINITY;
                        for (int j = 0; j <= last; j++) {
                            for (int x = 0; x < d; x++) {
                                s[j] +=
                                        q[((bi * h + hi) * nq + i) * d + x]
                                                * k[((bi * hkv + hk) * nk + j) * d + x];
                            }
                            s[j] *= scale;
                            max = Math.max(max, s[j]);
                        }
                        double sum = 0;
                        for (int j = 0; j <= last; j++) {
                            sum += Math.exp(s[j] - max);
                        }
                        for (int x = 0; x < d; x++) {
                            double ref = 0;
                            for (int j = 0; j <= last; j++) {
                                ref +=
                                        Math.exp(s[j] - max)
                                                / sum
                                                * v[((bi * hkv + hk) * nk + j) * d + x];
                            }
                            int idx = ((bi * h + hi) * nq + i) * d + x;
                            double got = halfToFloat(out.getShort(2 * idx));
                            err += (got - ref) * (got - ref);
                            norm += ref * ref;
                        }
                    }
                }
            }
            assertTrue(Math.sqrt(err / norm) < 5e-3, "relative error " + Math.sqrt(err / norm));
        }
    }

    private static AttentionOptions lengths(int[] lengths) {
        return AttentionOptions.builder().optKeyValidLengths(lengths).build();
    }

    /** Gaussian values already rounded to fp16, so the reference sees the kernel's inputs. */
    private static float[] gaussians(Random rng, int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = halfToFloat(floatToHalf((float) rng.nextGaussian()));
        }
        return out;
    }

    private static ByteBuffer half(float[] values) {
        ByteBuffer buffer =
                ByteBuffer.allocateDirect(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < values.length; i++) {
            buffer.putShort(2 * i, floatToHalf(values[i]));
        }
        return buffer;
    }

    /** Round-to-nearest fp16 for normal values in (-65504, 65504) (all these tests produce). */
    private static short floatToHalf(float f) {
        int x = Float.floatToRawIntBits(f);
        int sign = (x >>> 16) & 0x8000;
        int exp = ((x >>> 23) & 0xff) - 127 + 15;
        if (exp <= 0) {
            return (short) sign; // |f| < 2^-14: flushed, far below the tolerance
        }
        int half = sign | (exp << 10) | ((x & 0x7fffff) >>> 13);
        int rem = x & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (half & 1) != 0)) {
            half++;
        }
        return (short) half;
    }

    private static float halfToFloat(short bits) {
        int h = bits & 0xffff;
        int exp = (h >>> 10) & 0x1f;
        float mag =
                exp == 0
                        ? (h & 0x3ff) * 0x1p-24f
                        : Math.scalb((float) ((h & 0x3ff) | 0x400), exp - 25);
        return (h & 0x8000) != 0 ? -mag : mag;
    }
}
