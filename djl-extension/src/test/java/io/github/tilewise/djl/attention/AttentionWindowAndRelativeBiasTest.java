package io.github.tilewise.djl.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.Tilewise;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Sliding-window attention and relative-position bias tables ({@link
 * AttentionOptions.Builder#optSlidingWindow}, {@link AttentionOptions.Builder#optRelativeBias})
 * against float64 loops written here from the definitions, on every ISA and on the DJL reference:
 * padded batches (with causal, key padding, cross lengths, GQA), packed sequences and the packed
 * QKV projection (positions within each sequence); and bad arguments give clear exceptions.
 */
class AttentionWindowAndRelativeBiasTest {

    private static final int[] SIDES = {-1, 0, 1, 5, 63, 64, 100, 300};
    private static final int[] LENGTHS = {1, 2, 17, 63, 65, 130, 257};

    private NDManager manager;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
        if (Tilewise.isNativeAvailable()) {
            Tilewise.setIsa(Tilewise.detectedIsa());
        }
    }

    /** One attention problem in [B, N, H, D] layout with its local options. */
    private static final class Problem {
        int batch;
        int heads;
        int kvHeads;
        int qLen;
        int kvLen;
        int d;
        boolean causal;
        boolean window;
        int left;
        int right;
        int tableRows; // 0: no table
        int radius;
        float[] table;
        boolean[][] keep; // [batch][kvLen] or null
        float[] q;
        float[] k;
        float[] v;
    }

    @Test
    void paddedMatchesFloat64OnEveryIsaAndOnTheReference() {
        Random random = new Random(); // fresh data every run; the seed is in the messages
        long seed = random.nextLong();
        random.setSeed(seed);
        int checked = 0;
        for (int trial = 0; trial < 30; trial++) {
            Problem p = new Problem();
            p.batch = 1 + random.nextInt(2);
            p.kvHeads = 1 + random.nextInt(2);
            p.heads = p.kvHeads * (1 + random.nextInt(2));
            p.qLen = LENGTHS[random.nextInt(LENGTHS.length)];
            p.kvLen = random.nextInt(3) == 0 ? LENGTHS[random.nextInt(LENGTHS.length)] : p.qLen;
            p.d = new int[] {16, 40, 64}[random.nextInt(3)];
            p.causal = random.nextInt(3) == 0;
            p.window = trial % 5 != 4;
            p.left = SIDES[random.nextInt(SIDES.length)];
            p.right = SIDES[random.nextInt(SIDES.length)];
            p.tableRows = trial % 3 == 0 ? 0 : (trial % 3 == 1 ? p.heads : 1);
            p.radius = new int[] {0, 3, 40, 400}[random.nextInt(4)];
            p.table = gaussian(random, p.tableRows * (2 * p.radius + 1), 1.5f);
            if (random.nextInt(3) == 0) {
                p.keep = new boolean[p.batch][p.kvLen];
                for (boolean[] row : p.keep) {
                    for (int j = 0; j < row.length; j++) {
                        row[j] = random.nextInt(4) != 0;
                    }
                }
            }
            p.q = gaussian(random, p.batch * p.qLen * p.heads * p.d, 1f);
            p.k = gaussian(random, p.batch * p.kvLen * p.kvHeads * p.d, 1f);
            p.v = gaussian(random, p.batch * p.kvLen * p.kvHeads * p.d, 1f);
            double[] expected = padded64(p);
            NDArray q = manager.create(p.q, new Shape(p.batch, p.qLen, p.heads, p.d));
            NDArray k = manager.create(p.k, new Shape(p.batch, p.kvLen, p.kvHeads, p.d));
            NDArray v = manager.create(p.v, new Shape(p.batch, p.kvLen, p.kvHeads, p.d));
            AttentionOptions.Builder builder =
                    AttentionOptions.builder()
                            .optLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM)
                            .optCausal(p.causal);
            if (p.window) {
                builder.optSlidingWindow(p.left, p.right);
            }
            if (p.tableRows > 0) {
                builder.optRelativeBias(
                        manager.create(p.table, new Shape(p.tableRows, 2 * p.radius + 1)));
            }
            if (p.keep != null) {
                builder.optKeyPaddingMask(manager.create(p.keep));
            }
            AttentionOptions options = builder.build();
            String label = "seed " + seed + " trial " + trial + " " + describe(p);
            for (Tilewise.Isa isa : isas()) {
                Tilewise.setIsa(isa);
                assertClose(
                        expected,
                        FusedAttention.forward(q, k, v, options).toFloatArray(),
                        isa + " " + label);
                checked++;
            }
            assertClose(
                    expected,
                    ReferenceAttention.forward(q, k, v, options).toFloatArray(),
                    "reference " + label);
        }
        assertTrue(checked > 0 || !Tilewise.isNativeAvailable());
    }

    @Test
    void packedMatchesFloat64PerSequence() {
        Random random = new Random();
        long seed = random.nextLong();
        random.setSeed(seed);
        for (int trial = 0; trial < 12; trial++) {
            int heads = 2 + 2 * random.nextInt(2);
            int kvHeads = random.nextBoolean() ? heads : heads / 2;
            int d = random.nextBoolean() ? 32 : 24;
            int n = 1 + random.nextInt(5);
            int[] offsets = new int[n + 1];
            for (int s = 0; s < n; s++) {
                int len = random.nextBoolean() ? random.nextInt(6) : 50 + random.nextInt(200);
                offsets[s + 1] = offsets[s] + len;
            }
            int rows = offsets[n];
            if (rows == 0) {
                continue;
            }
            boolean causal = random.nextInt(3) == 0;
            int left = SIDES[random.nextInt(SIDES.length)];
            int right = SIDES[random.nextInt(SIDES.length)];
            int radius = new int[] {0, 2, 30, 300}[random.nextInt(4)];
            float[] table = gaussian(random, heads * (2 * radius + 1), 1.5f);
            AttentionOptions options =
                    AttentionOptions.builder()
                            .optCausal(causal)
                            .optSlidingWindow(left, right)
                            .optRelativeBias(
                                    manager.create(table, new Shape(heads, 2 * radius + 1)))
                            .build();
            String label =
                    "seed "
                            + seed
                            + " trial "
                            + trial
                            + " window ("
                            + left
                            + ", "
                            + right
                            + ") R="
                            + radius
                            + " causal "
                            + causal;
            // Separate Q, K, V [T, H, D].
            float[] q = gaussian(random, rows * heads * d, 1f);
            float[] k = gaussian(random, rows * kvHeads * d, 1f);
            float[] v = gaussian(random, rows * kvHeads * d, 1f);
            double[] expected =
                    packed64(
                            q, k, v, offsets, heads, kvHeads, d, causal, left, right, table,
                            radius);
            NDArray qa = manager.create(q, new Shape(rows, heads, d));
            NDArray ka = manager.create(k, new Shape(rows, kvHeads, d));
            NDArray va = manager.create(v, new Shape(rows, kvHeads, d));
            for (Tilewise.Isa isa : isas()) {
                Tilewise.setIsa(isa);
                assertClose(
                        expected,
                        FusedAttention.forwardPacked(qa, ka, va, offsets, offsets, options)
                                .toFloatArray(),
                        isa + " packed " + label);
                NDArray into = manager.full(new Shape(rows, heads, d), Float.NaN, DataType.FLOAT32);
                assertClose(
                        expected,
                        FusedAttention.forwardPacked(qa, ka, va, offsets, offsets, options, into)
                                .toFloatArray(),
                        isa + " packed into out " + label);
            }
            assertClose(
                    expected,
                    PackedSequences.reference(qa, ka, va, offsets, offsets, options, manager)
                            .toFloatArray(),
                    "reference packed " + label);
            // The fused projection [T, 3·H·D] (self-attention, H = Hkv).
            float[] qkv = gaussian(random, rows * 3 * heads * d, 1f);
            float[] qs = new float[rows * heads * d];
            float[] ks = new float[rows * heads * d];
            float[] vs = new float[rows * heads * d];
            for (int r = 0; r < rows; r++) {
                System.arraycopy(qkv, r * 3 * heads * d, qs, r * heads * d, heads * d);
                System.arraycopy(qkv, (r * 3 + 1) * heads * d, ks, r * heads * d, heads * d);
                System.arraycopy(qkv, (r * 3 + 2) * heads * d, vs, r * heads * d, heads * d);
            }
            double[] expectedQkv =
                    packed64(
                            qs, ks, vs, offsets, heads, heads, d, causal, left, right, table,
                            radius);
            NDArray packed = manager.create(qkv, new Shape(rows, 3L * heads * d));
            for (Tilewise.Isa isa : isas()) {
                Tilewise.setIsa(isa);
                assertClose(
                        expectedQkv,
                        FusedAttention.forwardPackedQkv(packed, heads, offsets, options)
                                .toFloatArray(),
                        isa + " packed qkv " + label);
                // Into a caller-owned output, NaN first so that every element must be written.
                NDArray into = manager.full(new Shape(rows, heads, d), Float.NaN, DataType.FLOAT32);
                assertClose(
                        expectedQkv,
                        FusedAttention.forwardPackedQkv(packed, heads, offsets, options, into)
                                .toFloatArray(),
                        isa + " packed qkv into out " + label);
            }
        }
    }

    @Test
    void optionsAreValidatedWithClearMessages() {
        AttentionOptions none = AttentionOptions.builder().build();
        assertFalse(none.hasSlidingWindow());
        assertEquals(-1, none.getWindowLeft());
        assertEquals(-1, none.getRelativeBiasRadius());
        AttentionOptions window = AttentionOptions.builder().optSlidingWindow(-7, 0).build();
        assertTrue(window.hasSlidingWindow());
        assertEquals(-1, window.getWindowLeft());
        assertEquals(0, window.getWindowRight());

        IllegalArgumentException even =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                AttentionOptions.builder()
                                        .optRelativeBias(manager.zeros(new Shape(2, 4))));
        assertTrue(even.getMessage().contains("odd"), even.getMessage());
        assertThrows(
                IllegalArgumentException.class,
                () -> AttentionOptions.builder().optRelativeBias(manager.zeros(new Shape(5))));
        IllegalArgumentException type =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                AttentionOptions.builder()
                                        .optRelativeBias(
                                                manager.zeros(new Shape(2, 5), DataType.INT32)));
        assertTrue(type.getMessage().contains("FLOAT32"), type.getMessage());
        NDArray closed = manager.zeros(new Shape(2, 5));
        closed.close();
        assertThrows(
                IllegalStateException.class,
                () -> AttentionOptions.builder().optRelativeBias(closed));

        AttentionOptions table =
                AttentionOptions.builder().optRelativeBias(manager.zeros(new Shape(3, 9))).build();
        assertEquals(4, table.getRelativeBiasRadius());
        NDArray q = manager.zeros(new Shape(1, 2, 8, 16));
        IllegalArgumentException heads =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> FusedAttention.forward(q, q, q, table));
        assertTrue(heads.getMessage().contains("relative bias"), heads.getMessage());
        assertThrows(
                IllegalArgumentException.class, () -> ReferenceAttention.forward(q, q, q, table));
        NDArray packed = manager.zeros(new Shape(8, 2, 16));
        assertThrows(
                IllegalArgumentException.class,
                () ->
                        FusedAttention.forwardPacked(
                                packed, packed, packed, new int[] {0, 8}, new int[] {0, 8}, table));
        assertThrows(
                IllegalArgumentException.class,
                () ->
                        FusedAttention.forwardPackedQkv(
                                manager.zeros(new Shape(8, 96)), 2, new int[] {0, 8}, table));

        // The CUDA kernels refuse both options by name (CudaAttention.requireSupported).
        for (AttentionOptions options : List.of(window, table)) {
            UnsupportedOperationException cuda =
                    assertThrows(
                            UnsupportedOperationException.class,
                            () ->
                                    io.github.tilewise.djl.cuda.CudaAttention.builder()
                                            .setDataType(ai.djl.ndarray.types.DataType.FLOAT16)
                                            .setShape(1, 2, 2, 8, 8, 64)
                                            .optOptions(options)
                                            .build());
            assertTrue(cuda.getMessage().contains("CUDA"), cuda.getMessage());
        }
    }

    /** Native ISA levels to test (none without the library). */
    private static List<Tilewise.Isa> isas() {
        List<Tilewise.Isa> isas = new ArrayList<>();
        if (Tilewise.isNativeAvailable()) {
            for (Tilewise.Isa isa : Tilewise.Isa.values()) {
                if (isa.ordinal() <= Tilewise.detectedIsa().ordinal()) {
                    isas.add(isa);
                }
            }
        }
        return isas;
    }

    private static String describe(Problem p) {
        return String.format(
                "B=%d H=%d Hkv=%d Nq=%d Nk=%d D=%d causal=%b window=%b(%d,%d) tableRows=%d R=%d"
                        + " mask=%b",
                p.batch,
                p.heads,
                p.kvHeads,
                p.qLen,
                p.kvLen,
                p.d,
                p.causal,
                p.window,
                p.left,
                p.right,
                p.tableRows,
                p.radius,
                p.keep != null);
    }

    /** Whether aligned query position {@code at} sees key {@code j} under causal and window. */
    private static boolean sees(
            int at, int j, boolean causal, boolean window, int left, int right) {
        if (causal && j > at) {
            return false;
        }
        if (window && left >= 0 && j < at - left) {
            return false;
        }
        return !(window && right >= 0 && j > at + right);
    }

    /** Float64 attention over [B, N, H, D] arrays, written from the definitions. */
    private static double[] padded64(Problem p) {
        double[] out = new double[p.batch * p.qLen * p.heads * p.d];
        double scale = 1.0 / Math.sqrt(p.d);
        for (int b = 0; b < p.batch; b++) {
            for (int h = 0; h < p.heads; h++) {
                int g = h / (p.heads / p.kvHeads);
                for (int i = 0; i < p.qLen; i++) {
                    int at = i + p.kvLen - p.qLen;
                    double[] w = new double[p.kvLen];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < p.kvLen; j++) {
                        w[j] = Double.NEGATIVE_INFINITY;
                        if (!sees(at, j, p.causal, p.window, p.left, p.right)
                                || (p.keep != null && !p.keep[b][j])) {
                            continue;
                        }
                        double dot = 0;
                        for (int e = 0; e < p.d; e++) {
                            dot +=
                                    (double) p.q[((b * p.qLen + i) * p.heads + h) * p.d + e]
                                            * p.k[((b * p.kvLen + j) * p.kvHeads + g) * p.d + e];
                        }
                        w[j] = dot * scale;
                        if (p.tableRows > 0) {
                            int dist = Math.max(-p.radius, Math.min(p.radius, j - at));
                            int row = p.tableRows == 1 ? 0 : h;
                            w[j] += p.table[row * (2 * p.radius + 1) + p.radius + dist];
                        }
                        max = Math.max(max, w[j]);
                    }
                    softmaxTimesV(
                            w,
                            max,
                            p.v,
                            p.kvHeads,
                            p.d,
                            b * p.kvLen,
                            g,
                            out,
                            ((b * p.qLen + i) * p.heads + h) * p.d);
                }
            }
        }
        return out;
    }

    /** Float64 packed attention ([T, H, D] rows), positions within each sequence. */
    private static double[] packed64(
            float[] q,
            float[] k,
            float[] v,
            int[] offsets,
            int heads,
            int kvHeads,
            int d,
            boolean causal,
            int left,
            int right,
            float[] table,
            int radius) {
        double[] out = new double[offsets[offsets.length - 1] * heads * d];
        double scale = 1.0 / Math.sqrt(d);
        for (int s = 0; s + 1 < offsets.length; s++) {
            int start = offsets[s];
            int len = offsets[s + 1] - start;
            for (int h = 0; h < heads; h++) {
                int g = h / (heads / kvHeads);
                for (int i = 0; i < len; i++) {
                    double[] w = new double[len];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < len; j++) {
                        w[j] = Double.NEGATIVE_INFINITY;
                        if (!sees(i, j, causal, true, left, right)) {
                            continue;
                        }
                        double dot = 0;
                        for (int e = 0; e < d; e++) {
                            dot +=
                                    (double) q[((start + i) * heads + h) * d + e]
                                            * k[((start + j) * kvHeads + g) * d + e];
                        }
                        int dist = Math.max(-radius, Math.min(radius, j - i));
                        w[j] = dot * scale + table[h * (2 * radius + 1) + radius + dist];
                        max = Math.max(max, w[j]);
                    }
                    softmaxTimesV(
                            w, max, v, kvHeads, d, start, g, out, ((start + i) * heads + h) * d);
                }
            }
        }
        return out;
    }

    /** out[at..at+d) = softmax(w)·V over key rows firstKey.., zeros if no key is visible. */
    private static void softmaxTimesV(
            double[] w,
            double max,
            float[] v,
            int kvHeads,
            int d,
            int firstKey,
            int g,
            double[] out,
            int at) {
        if (max == Double.NEGATIVE_INFINITY) {
            return;
        }
        double sum = 0;
        for (int j = 0; j < w.length; j++) {
            w[j] = w[j] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(w[j] - max);
            sum += w[j];
        }
        for (int e = 0; e < d; e++) {
            double acc = 0;
            for (int j = 0; j < w.length; j++) {
                acc += w[j] * v[((firstKey + j) * kvHeads + g) * d + e];
            }
            out[at + e] = acc / sum;
        }
    }

    private static void assertClose(double[] expected, float[] got, String label) {
        assertEquals(expected.length, got.length, label);
        for (int i = 0; i < expected.length; i++) {
            if (Math.abs(expected[i] - got[i]) > 3e-5) {
                assertEquals(expected[i], got[i], 3e-5, label + " element " + i);
            }
        }
    }

    private static float[] gaussian(Random random, int n, float sigma) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) random.nextGaussian() * sigma;
        }
        return x;
    }
}
