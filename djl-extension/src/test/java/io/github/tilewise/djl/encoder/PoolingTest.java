package io.github.tilewise.djl.encoder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Every token pooling against a float64 reference written here from sentence-transformers'
 * definitions, on random token vectors in right-padded batches with awkward lengths (a full row,
 * one token, no token at all, odd sizes).
 */
class PoolingTest {

    private static final Pooling[] TOKEN_MODES = {
        Pooling.CLS,
        Pooling.MEAN,
        Pooling.MAX,
        Pooling.MEAN_SQRT_LEN,
        Pooling.WEIGHTED_MEAN,
        Pooling.LAST_TOKEN
    };

    @Test
    void everyModeMatchesTheFloat64Reference() {
        int[][] shapes = {{1, 1, 1}, {3, 7, 5}, {4, 13, 33}, {2, 1, 384}, {5, 64, 17}};
        Random random = new Random(20240611);
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            for (int[] shape : shapes) {
                int b = shape[0];
                int s = shape[1];
                int h = shape[2];
                int[] lengths = new int[b];
                for (int i = 0; i < b; i++) {
                    // Row 0 full, row 1 one token, row 2 empty, the rest random.
                    lengths[i] = i == 0 ? s : i == 1 ? 1 : i == 2 ? 0 : 1 + random.nextInt(s);
                }
                float[] hidden = new float[b * s * h];
                long[] mask = new long[b * s];
                for (int i = 0; i < b; i++) {
                    for (int t = 0; t < s; t++) {
                        mask[i * s + t] = t < lengths[i] ? 1 : 0;
                        for (int k = 0; k < h; k++) {
                            // Padding holds garbage (as a model's padded rows may): it must not
                            // leak into any pooled value.
                            hidden[(i * s + t) * h + k] =
                                    (float) (t < lengths[i] ? random.nextGaussian() * 3 : 1e4);
                        }
                    }
                }
                NDArray x = manager.create(hidden, new Shape(b, s, h));
                NDArray m = manager.create(mask, new Shape(b, s));
                for (Pooling mode : TOKEN_MODES) {
                    float[] got = mode.apply(x, m, null).toFloatArray();
                    assertEquals(b * h, got.length, mode + " shape");
                    for (int i = 0; i < b; i++) {
                        double[] want = reference(mode, hidden, lengths[i], i, s, h);
                        for (int k = 0; k < h; k++) {
                            double tol = 1e-5 * Math.max(1, Math.abs(want[k]));
                            assertEquals(
                                    want[k],
                                    got[i * h + k],
                                    tol,
                                    mode
                                            + " "
                                            + b
                                            + "x"
                                            + s
                                            + "x"
                                            + h
                                            + " row "
                                            + i
                                            + " ["
                                            + k
                                            + "] length "
                                            + lengths[i]);
                        }
                    }
                }
            }
        }
    }

    /** sentence-transformers' Pooling.forward for one right-padded row, in float64. */
    private static double[] reference(Pooling mode, float[] x, int len, int row, int s, int h) {
        double[] out = new double[h];
        for (int k = 0; k < h; k++) {
            double sum = 0;
            double weighted = 0;
            double weights = 0;
            double max = -1e9;
            for (int t = 0; t < len; t++) {
                double v = x[(row * s + t) * h + k];
                sum += v;
                weighted += (t + 1) * v;
                weights += t + 1;
                max = Math.max(max, v);
            }
            switch (mode) {
                case CLS:
                    // The first position, valid or not, as sentence-transformers takes it.
                    out[k] = x[(row * s) * h + k];
                    break;
                case MEAN:
                    out[k] = sum / Math.max(len, 1e-9);
                    break;
                case MEAN_SQRT_LEN:
                    out[k] = sum / Math.sqrt(Math.max(len, 1e-9));
                    break;
                case WEIGHTED_MEAN:
                    out[k] = weighted / Math.max(weights, 1e-9);
                    break;
                case MAX:
                    out[k] = max;
                    break;
                case LAST_TOKEN:
                    out[k] = len == 0 ? 0 : x[(row * s + len - 1) * h + k];
                    break;
                default:
                    throw new AssertionError(mode);
            }
        }
        return out;
    }

    @Test
    void maskOfAnyNumericTypeAndNoneAndPooler() {
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            NDArray x = manager.arange(0f, 12f, 1f, DataType.FLOAT32).reshape(1, 4, 3);
            for (DataType type : new DataType[] {DataType.INT32, DataType.FLOAT32}) {
                NDArray m =
                        manager.create(new long[] {1, 1, 1, 0}, new Shape(1, 4))
                                .toType(type, false);
                assertArrayEquals(new float[] {6, 7, 8}, Pooling.LAST_TOKEN.apply(x, m, null));
                assertArrayEquals(new float[] {6, 7, 8}, Pooling.MAX.apply(x, m, null));
                assertArrayEquals(new float[] {3, 4, 5}, Pooling.MEAN.apply(x, m, null));
            }
            NDArray m = manager.ones(new Shape(1, 4), DataType.INT64);
            assertTrue(Pooling.NONE.apply(x, m, null) == x);
            assertThrows(IllegalStateException.class, () -> Pooling.POOLER.apply(x, m, null));
        }
    }

    private static void assertArrayEquals(float[] want, NDArray got) {
        org.junit.jupiter.api.Assertions.assertArrayEquals(want, got.toFloatArray(), 0f);
    }

    @Test
    void namesOfEveryMode() {
        assertEquals(Pooling.CLS, Pooling.fromName("cls_token"));
        assertEquals(Pooling.MEAN, Pooling.fromName(" Mean "));
        assertEquals(Pooling.MEAN, Pooling.fromName("mean_tokens"));
        assertEquals(Pooling.MAX, Pooling.fromName("max"));
        assertEquals(Pooling.MAX, Pooling.fromName("max_tokens"));
        assertEquals(Pooling.MEAN_SQRT_LEN, Pooling.fromName("mean_sqrt_len_tokens"));
        assertEquals(Pooling.MEAN_SQRT_LEN, Pooling.fromName("MEAN_SQRT_LEN"));
        assertEquals(Pooling.WEIGHTED_MEAN, Pooling.fromName("weightedmean"));
        assertEquals(Pooling.WEIGHTED_MEAN, Pooling.fromName("weighted_mean"));
        assertEquals(Pooling.LAST_TOKEN, Pooling.fromName("lasttoken"));
        assertEquals(Pooling.LAST_TOKEN, Pooling.fromName("last_token"));
        assertEquals(Pooling.NONE, Pooling.fromName("token_embeddings"));
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> Pooling.fromName("median"));
        assertTrue(e.getMessage().contains("median") && e.getMessage().contains("last_token"));
    }
}
