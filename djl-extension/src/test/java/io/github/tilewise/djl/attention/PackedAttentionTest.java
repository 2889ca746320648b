package io.github.tilewise.djl.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.Tilewise;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Packed variable-length attention ({@link FusedAttention#forwardPacked}, {@link
 * FusedAttention#forwardPackedQkv}) against float64, on every ISA, with random length mixes (empty
 * sequences, single rows, one sequence taking nearly everything, sequences without keys), causal or
 * not, GQA; the DJL reference path against float64 too; and the packed rows equal the rows of the
 * padded batch with valid lengths.
 */
class PackedAttentionTest {

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

    @Test
    void packedMatchesFloat64OnEveryIsaAndOnTheReferencePath() {
        Random random = new Random(17);
        int checked = 0;
        List<Tilewise.Isa> isas = new ArrayList<>();
        if (Tilewise.isNativeAvailable()) {
            for (Tilewise.Isa isa : Tilewise.Isa.values()) {
                if (isa.ordinal() <= Tilewise.detectedIsa().ordinal()) {
                    isas.add(isa);
                }
            }
        }
        for (int trial = 0; trial < 24; trial++) {
            int[] lengthsQ = lengths(random);
            boolean causal = random.nextBoolean();
            int[] lengthsK = lengthsQ.clone();
            if (!causal) {
                for (int s = 0; s < lengthsK.length; s++) {
                    lengthsK[s] = random.nextInt(4) == 0 ? random.nextInt(3) : lengthsK[s];
                }
            }
            int heads = 4;
            int kvHeads = random.nextBoolean() ? 4 : 2;
            int d = random.nextBoolean() ? 64 : 40;
            int[] oq = offsets(lengthsQ);
            int[] ok = offsets(lengthsK);
            if (oq[oq.length - 1] == 0) {
                continue;
            }
            float[] q = gaussian(random, oq[oq.length - 1] * heads * d);
            float[] k = gaussian(random, ok[ok.length - 1] * kvHeads * d);
            float[] v = gaussian(random, ok[ok.length - 1] * kvHeads * d);
            double[] expected = reference(q, k, v, oq, ok, heads, kvHeads, d, causal);
            AttentionOptions options = AttentionOptions.builder().optCausal(causal).build();
            NDArray qa = manager.create(q, new Shape(oq[oq.length - 1], heads, d));
            NDArray ka = manager.create(k, new Shape(ok[ok.length - 1], kvHeads, d));
            NDArray va = manager.create(v, new Shape(ok[ok.length - 1], kvHeads, d));
            for (Tilewise.Isa isa : isas) {
                Tilewise.setIsa(isa);
                assertClose(
                        expected,
                        FusedAttention.forwardPacked(qa, ka, va, oq, ok, options).toFloatArray(),
                        isa + " trial " + trial);
                checked++;
            }
            assertClose(
                    expected,
                    PackedSequences.reference(qa, ka, va, oq, ok, options, manager).toFloatArray(),
                    "reference trial " + trial);
        }
        assertTrue(checked > 0 || !Tilewise.isNativeAvailable());
    }

    @Test
    void packedQkvReadsQkAndVInPlaceAndMatchesThePaddedBatch() {
        Random random = new Random(23);
        int heads = 3;
        int d = 32;
        int[] lengths = {5, 1, 17, 9};
        int[] offsets = offsets(lengths);
        int rows = offsets[offsets.length - 1];
        float[] qkv = gaussian(random, rows * 3 * heads * d);
        NDArray packed = manager.create(qkv, new Shape(rows, 3L * heads * d));
        for (boolean causal : new boolean[] {false, true}) {
            AttentionOptions options = AttentionOptions.builder().optCausal(causal).build();
            float[] got =
                    FusedAttention.forwardPackedQkv(packed, heads, offsets, options).toFloatArray();
            NDArray split = packed.reshape(rows, 3, heads, d);
            float[] separate =
                    FusedAttention.forwardPacked(
                                    split.get(":, 0"),
                                    split.get(":, 1"),
                                    split.get(":, 2"),
                                    offsets,
                                    offsets,
                                    options)
                            .toFloatArray();
            assertClose(toDouble(separate), got, "packed qkv vs separate, causal " + causal);
            // The same texts as a padded batch: each sequence's rows are its padded rows.
            int maxLen = 17;
            float[] padded = new float[lengths.length * maxLen * 3 * heads * d];
            for (int s = 0; s < lengths.length; s++) {
                System.arraycopy(
                        qkv,
                        offsets[s] * 3 * heads * d,
                        padded,
                        s * maxLen * 3 * heads * d,
                        lengths[s] * 3 * heads * d);
            }
            AttentionOptions byLength =
                    AttentionOptions.builder().optCausal(false).optKeyValidLengths(lengths).build();
            if (!causal) {
                float[] batch =
                        FusedAttention.forwardPackedQkv(
                                        manager.create(
                                                padded,
                                                new Shape(lengths.length, maxLen, 3L * heads * d)),
                                        heads,
                                        byLength)
                                .toFloatArray();
                for (int s = 0; s < lengths.length; s++) {
                    for (int i = 0; i < lengths[s] * heads * d; i++) {
                        assertEquals(
                                batch[s * maxLen * heads * d + i],
                                got[offsets[s] * heads * d + i],
                                2e-6f,
                                "sequence " + s + " element " + i);
                    }
                }
            }
        }
    }

    @Test
    void badOffsetsAndOptionsAreRefused() {
        NDArray q = manager.zeros(new Shape(6, 2, 8));
        AttentionOptions none = AttentionOptions.builder().build();
        assertThrows(
                IllegalArgumentException.class,
                () ->
                        FusedAttention.forwardPacked(
                                q, q, q, new int[] {0, 7}, new int[] {0, 7}, none));
        assertThrows(
                IllegalArgumentException.class,
                () ->
                        FusedAttention.forwardPacked(
                                q, q, q, new int[] {0, 4, 2, 6}, new int[] {0, 4, 2, 6}, none));
        assertThrows(
                IllegalArgumentException.class,
                () ->
                        FusedAttention.forwardPacked(
                                q, q, q, new int[] {1, 6}, new int[] {1, 6}, none));
        assertThrows(
                IllegalArgumentException.class,
                () ->
                        FusedAttention.forwardPacked(
                                q, q, q, new int[] {0, 6}, new int[] {0, 2, 6}, none));
        AttentionOptions masked =
                AttentionOptions.builder().optKeyValidLengths(new int[] {3}).build();
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                FusedAttention.forwardPacked(
                                        q, q, q, new int[] {0, 6}, new int[] {0, 6}, masked));
        assertTrue(e.getMessage().contains("offsets"), e.getMessage());
    }

    /** Random lengths: empty and single sequences, sometimes one long one. */
    private static int[] lengths(Random random) {
        int n = 1 + random.nextInt(7);
        int[] lengths = new int[n];
        for (int s = 0; s < n; s++) {
            switch (random.nextInt(6)) {
                case 0:
                    lengths[s] = 0;
                    break;
                case 1:
                    lengths[s] = 1;
                    break;
                case 2:
                    lengths[s] = 60 + random.nextInt(80);
                    break;
                default:
                    lengths[s] = 2 + random.nextInt(30);
                    break;
            }
        }
        return lengths;
    }

    private static int[] offsets(int[] lengths) {
        int[] offsets = new int[lengths.length + 1];
        for (int s = 0; s < lengths.length; s++) {
            offsets[s + 1] = offsets[s] + lengths[s];
        }
        return offsets;
    }

    private static double[] reference(
            float[] q,
            float[] k,
            float[] v,
            int[] oq,
            int[] ok,
            int heads,
            int kvHeads,
            int d,
            boolean causal) {
        double[] out = new double[oq[oq.length - 1] * heads * d];
        double scale = 1.0 / Math.sqrt(d);
        for (int s = 0; s + 1 < oq.length; s++) {
            int nq = oq[s + 1] - oq[s];
            int nk = ok[s + 1] - ok[s];
            for (int h = 0; h < heads; h++) {
                int g = h / (heads / kvHeads);
                for (int i = 0; i < nq; i++) {
                    double[] w = new double[nk];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < nk; j++) {
                        if (causal && j > i + (nk - nq)) {
                            continue;
                        }
                        double dot = 0;
                        for (int e = 0; e < d; e++) {
                            dot +=
                                    (double) q[((oq[s] + i) * heads + h) * d + e]
                                            * k[((ok[s] + j) * kvHeads + g) * d + e];
                        }
                        w[j] = dot * scale;
                        max = Math.max(max, w[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < nk; j++) {
                        w[j] = causal && j > i + (nk - nq) ? 0 : Math.exp(w[j] - max);
                        sum += w[j];
                    }
                    for (int e = 0; e < d; e++) {
                        double acc = 0;
                        for (int j = 0; j < nk; j++) {
                            acc += w[j] * v[((ok[s] + j) * kvHeads + g) * d + e];
                        }
                        out[((oq[s] + i) * heads + h) * d + e] = sum > 0 ? acc / sum : 0;
                    }
                }
            }
        }
        return out;
    }

    private static void assertClose(double[] expected, float[] got, String label) {
        assertEquals(expected.length, got.length, label);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], got[i], 2e-5, label + " element " + i);
        }
    }

    private static double[] toDouble(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = x[i];
        }
        return d;
    }

    private static float[] gaussian(Random random, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) random.nextGaussian();
        }
        return x;
    }
}
