package io.github.tilewise.djl.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link RotaryEmbedding} (native where loaded) against a float64 rotation written here from the
 * definition (with the fp32 angles torch computes) and against the DJL reference (torch's own fp32
 * ops): Q and K of fused projections rotated in place with V untouched, packed positions, odd and
 * large positions, column offsets, a non-contiguous view; bad arguments give clear exceptions.
 */
class RotaryEmbeddingTest {

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
    void rotatesQueryAndKeyLikeFloat64AndTorch() {
        Random random = new Random();
        long seed = random.nextLong();
        random.setSeed(seed);
        int[][] shapes = {{1, 1, 2}, {37, 2, 64}, {300, 3, 32}, {129, 4, 8}, {64, 12, 64}};
        float[] thetas = {10000f, 160000f, 10f, 500000f};
        for (int c = 0; c < shapes.length; c++) {
            int tokens = shapes[c][0];
            int heads = shapes[c][1];
            int d = shapes[c][2];
            float theta = thetas[c % thetas.length];
            int width = 3 * heads * d;
            float[] x = new float[tokens * width];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) random.nextGaussian() * 2f;
            }
            int[] positions = new int[tokens];
            for (int t = 0; t < tokens; t++) {
                positions[t] = c % 2 == 0 ? random.nextInt(4096) : (random.nextInt(1 << 20) | 1);
            }
            String label = "seed " + seed + " tokens " + tokens + " heads " + heads + " d " + d;
            NDArray qkv = manager.create(x.clone(), new Shape(tokens, width));
            RotaryEmbedding.applyToQueryKey(qkv, heads, positions, theta);
            float[] got = qkv.toFloatArray();
            NDArray viaTorch = manager.create(x.clone(), new Shape(tokens, width));
            RotaryEmbedding.reference(viaTorch, 0, 2 * heads, d, positions, theta);
            float[] torch = viaTorch.toFloatArray();
            double worst = 0;
            for (int t = 0; t < tokens; t++) {
                for (int h = 0; h < 2 * heads; h++) {
                    int base = t * width + h * d;
                    for (int i = 0; i < d / 2; i++) {
                        double[] cs = angles(positions[t], i, d, theta);
                        double lo = x[base + i] * cs[0] - x[base + i + d / 2] * cs[1];
                        double hi = x[base + i + d / 2] * cs[0] + x[base + i] * cs[1];
                        worst = Math.max(worst, Math.abs(lo - got[base + i]));
                        worst = Math.max(worst, Math.abs(hi - got[base + i + d / 2]));
                    }
                }
                for (int e = 2 * heads * d; e < width; e++) {
                    assertEquals(x[t * width + e], got[t * width + e], 0f, label + " V changed");
                }
            }
            assertTrue(worst < 5e-6, label + ": float64 error " + worst);
            for (int i = 0; i < got.length; i++) {
                // torch's fp32 pow and cos are within about 1 ulp of the correctly rounded ones.
                assertEquals(torch[i], got[i], 2e-6f * Math.max(1f, Math.abs(torch[i])), label);
            }
        }
    }

    @Test
    void packedPositionsOffsetsAndViews() {
        assertArrayEquals(
                new int[] {0, 1, 2, 0, 0, 1},
                RotaryEmbedding.packedPositions(new int[] {0, 3, 3, 4, 6}));
        assertArrayEquals(new int[0], RotaryEmbedding.packedPositions(new int[] {0}));
        Random random = new Random(5);
        int tokens = 20;
        int d = 16;
        float[] x = new float[tokens * 100];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
        }
        int[] positions = RotaryEmbedding.packedPositions(new int[] {0, 7, 20});
        // Columns [36, 68) of 100-wide rows: two heads at an offset, the rest untouched.
        NDArray rows = manager.create(x.clone(), new Shape(tokens, 100));
        RotaryEmbedding.apply(rows, 36, 2, d, positions, 10000f);
        NDArray expected = manager.create(x.clone(), new Shape(tokens, 100));
        RotaryEmbedding.reference(expected, 36, 2, d, positions, 10000f);
        float[] got = rows.toFloatArray();
        float[] want = expected.toFloatArray();
        for (int i = 0; i < got.length; i++) {
            int column = i % 100;
            if (column < 36 || column >= 68) {
                assertEquals(x[i], got[i], 0f, "column " + column + " changed");
            } else {
                assertEquals(want[i], got[i], 2e-6f * Math.max(1f, Math.abs(want[i])));
            }
        }
        // A non-contiguous view is rotated in its parent's memory.
        NDArray parent = manager.create(x.clone(), new Shape(tokens, 100));
        NDArray view = parent.get(":, 10:90");
        RotaryEmbedding.apply(view, 26, 2, d, positions, 10000f);
        float[] viaView = parent.toFloatArray();
        for (int i = 0; i < got.length; i++) {
            assertEquals(got[i], viaView[i], 2e-6f * Math.max(1f, Math.abs(got[i])), "view " + i);
        }
    }

    @Test
    void badArgumentsAreRefused() {
        NDArray rows = manager.zeros(new Shape(4, 48));
        int[] four = {0, 1, 2, 3};
        IllegalArgumentException odd =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> RotaryEmbedding.apply(rows, 0, 2, 7, four, 10000f));
        assertTrue(odd.getMessage().contains("even"), odd.getMessage());
        IllegalArgumentException past =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> RotaryEmbedding.apply(rows, 40, 1, 16, four, 10000f));
        assertTrue(past.getMessage().contains("width"), past.getMessage());
        assertThrows(
                IllegalArgumentException.class,
                () -> RotaryEmbedding.apply(rows, 0, 1, 16, new int[3], 10000f));
        assertThrows(
                IllegalArgumentException.class,
                () -> RotaryEmbedding.apply(rows, 0, 1, 16, four, 0f));
        assertThrows(
                IllegalArgumentException.class,
                () -> RotaryEmbedding.apply(rows, 0, 1, 16, four, Float.NaN));
        assertThrows(
                IllegalArgumentException.class,
                () -> RotaryEmbedding.apply(rows, -1, 1, 16, four, 10000f));
        assertThrows(
                IllegalArgumentException.class,
                () ->
                        RotaryEmbedding.apply(
                                manager.zeros(new Shape(4, 48), DataType.FLOAT16),
                                0,
                                1,
                                16,
                                four,
                                10000f));
        assertThrows(
                IllegalArgumentException.class,
                () -> RotaryEmbedding.applyToQueryKey(rows, 5, four, 10000f));
        assertThrows(
                IllegalArgumentException.class,
                () -> RotaryEmbedding.packedPositions(new int[] {0, 3, 2}));
        NDArray closed = manager.zeros(new Shape(4, 48));
        closed.close();
        assertThrows(
                IllegalStateException.class,
                () -> RotaryEmbedding.apply(closed, 0, 1, 16, four, 10000f));
    }

    /** cos and sin of torch's fp32 angle: inv_freq and the product rounded to fp32. */
    private static double[] angles(int position, int i, int d, float theta) {
        float exponent = (float) (2 * i) / (float) d;
        float invFreq = 1.0f / (float) Math.pow(theta, exponent);
        float angle = (float) position * invFreq;
        return new double[] {(float) Math.cos(angle), (float) Math.sin(angle)};
    }
}
