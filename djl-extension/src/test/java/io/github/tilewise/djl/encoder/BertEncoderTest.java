package io.github.tilewise.djl.encoder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The encoder blocks against {@link NaiveBert} (float64 loops) on random weights, several shapes
 * (odd head sizes, one head, no token types, every activation), in padded batches of mixed lengths
 * while the oracle sees each sequence alone.
 */
class BertEncoderTest {

    private static final double TOLERANCE = 1e-4;

    static Stream<Arguments> configs() {
        return Stream.of(
                Arguments.of(config(48, 3, 2, 80, 40, 2, "gelu", true, 3), new int[] {7, 1, 13, 4}),
                Arguments.of(config(30, 5, 1, 44, 16, 2, "gelu_new", true, 0), new int[] {16, 2}),
                Arguments.of(config(64, 4, 3, 128, 33, 0, "relu", false, 0), new int[] {5, 33, 9}),
                Arguments.of(config(24, 1, 2, 24, 20, 3, "gelu", true, 2), new int[] {1}));
    }

    static EncoderConfig config(
            int hidden,
            int heads,
            int layers,
            int inter,
            int positions,
            int types,
            String act,
            boolean pooler,
            int labels) {
        List<String> names = new java.util.ArrayList<>();
        for (int i = 0; i < labels; i++) {
            names.add("class" + i);
        }
        return EncoderConfig.builder()
                .setHiddenSize(hidden)
                .setNumHeads(heads)
                .setNumLayers(layers)
                .setIntermediateSize(inter)
                .setMaxPositions(positions)
                .setVocabSize(97)
                .optTypeVocabSize(types)
                .optLayerNormEps(1e-12f)
                .optActivation(HiddenActivation.fromName(act))
                .optPooler(pooler)
                .optLabels(names)
                .build();
    }

    @ParameterizedTest
    @MethodSource("configs")
    void matchesFloat64ReferenceInPaddedBatches(EncoderConfig config, int[] lengths)
            throws Exception {
        EncoderCheckpoint checkpoint =
                RandomCheckpoint.create(config, lengths.length * 31L + config.getHiddenSize());
        NaiveBert naive = NaiveBert.of(checkpoint);
        int batch = lengths.length;
        int seq = 0;
        for (int l : lengths) {
            seq = Math.max(seq, l);
        }
        Random random = new Random(seq * 7L + batch);
        long[] ids = new long[batch * seq];
        long[] mask = new long[batch * seq];
        long[] types = new long[batch * seq];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < seq; t++) {
                // Padding positions get random ids too: they must not leak into valid tokens.
                ids[b * seq + t] = random.nextInt(config.getVocabSize());
                types[b * seq + t] =
                        config.getTypeVocabSize() > 0
                                ? random.nextInt(config.getTypeVocabSize())
                                : 0;
                mask[b * seq + t] = t < lengths[b] ? 1 : 0;
            }
        }
        int h = config.getHiddenSize();
        for (Pooling pooling : Pooling.values()) {
            if (pooling == Pooling.POOLER && !config.hasPooler()) {
                continue;
            }
            for (boolean normalize : new boolean[] {false, true}) {
                try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
                    TextEncoderBlock block = checkpoint.createBlock(manager, pooling, normalize);
                    NDList in =
                            inputs(
                                    manager,
                                    ids,
                                    mask,
                                    config.getTypeVocabSize() > 0 ? types : null,
                                    batch,
                                    seq);
                    NDList out = block.run(in.get(0), in.get(1), in.size() > 2 ? in.get(2) : null);
                    float[] hidden = out.get(BertEncoder.LAST_HIDDEN_STATE).toFloatArray();
                    NDArray sentence = out.get(TextEncoderBlock.SENTENCE_EMBEDDING);
                    NDArray logits = out.get(TextEncoderBlock.LOGITS);
                    assertEquals(pooling != Pooling.NONE, sentence != null);
                    assertEquals(config.hasClassifier(), logits != null);
                    Shape[] expectedShapes =
                            block.getOutputShapes(new Shape[] {new Shape(batch, seq)});
                    assertEquals(expectedShapes.length, out.size());
                    for (int i = 0; i < out.size(); i++) {
                        assertEquals(expectedShapes[i], out.get(i).getShape(), "output " + i);
                    }
                    double maxDiff = 0;
                    for (int b = 0; b < batch; b++) {
                        long[] seqIds =
                                java.util.Arrays.copyOfRange(ids, b * seq, b * seq + lengths[b]);
                        long[] seqTypes =
                                java.util.Arrays.copyOfRange(types, b * seq, b * seq + lengths[b]);
                        double[][] ref = naive.encode(seqIds, seqTypes);
                        for (int t = 0; t < lengths[b]; t++) {
                            for (int c = 0; c < h; c++) {
                                maxDiff =
                                        Math.max(
                                                maxDiff,
                                                Math.abs(
                                                        ref[t][c] - hidden[(b * seq + t) * h + c]));
                            }
                        }
                        double[] pooledRef = config.hasPooler() ? naive.pool(ref) : null;
                        if (sentence != null) {
                            double[] expected =
                                    expectedSentence(pooling, ref, pooledRef, normalize);
                            float[] actual = sentence.get(b).toFloatArray();
                            for (int c = 0; c < h; c++) {
                                maxDiff = Math.max(maxDiff, Math.abs(expected[c] - actual[c]));
                            }
                        }
                        if (logits != null) {
                            double[] expected =
                                    naive.classify(pooledRef, config.getLabels().size());
                            float[] actual = logits.get(b).toFloatArray();
                            for (int c = 0; c < expected.length; c++) {
                                maxDiff = Math.max(maxDiff, Math.abs(expected[c] - actual[c]));
                            }
                        }
                    }
                    assertTrue(
                            maxDiff <= TOLERANCE,
                            String.format(
                                    Locale.ROOT,
                                    "%s %s normalize=%b: max |diff| %.3e",
                                    config,
                                    pooling,
                                    normalize,
                                    maxDiff));
                }
            }
        }
    }

    private static double[] expectedSentence(
            Pooling pooling, double[][] ref, double[] pooled, boolean normalize) {
        int h = ref[0].length;
        double[] v = new double[h];
        switch (pooling) {
            case CLS:
                v = ref[0].clone();
                break;
            case POOLER:
                v = pooled.clone();
                break;
            case MEAN:
                for (double[] row : ref) {
                    for (int c = 0; c < h; c++) {
                        v[c] += row[c] / ref.length;
                    }
                }
                break;
            case MAX:
                java.util.Arrays.fill(v, Double.NEGATIVE_INFINITY);
                for (double[] row : ref) {
                    for (int c = 0; c < h; c++) {
                        v[c] = Math.max(v[c], row[c]);
                    }
                }
                break;
            case MEAN_SQRT_LEN:
            case WEIGHTED_MEAN:
                double weights = 0;
                for (int t = 0; t < ref.length; t++) {
                    double w = pooling == Pooling.WEIGHTED_MEAN ? t + 1 : 1;
                    weights += w;
                    for (int c = 0; c < h; c++) {
                        v[c] += w * ref[t][c];
                    }
                }
                double d = pooling == Pooling.WEIGHTED_MEAN ? weights : Math.sqrt(ref.length);
                for (int c = 0; c < h; c++) {
                    v[c] /= d;
                }
                break;
            case LAST_TOKEN:
                v = ref[ref.length - 1].clone();
                break;
            default:
                throw new AssertionError(pooling);
        }
        if (normalize) {
            double norm = 0;
            for (double x : v) {
                norm += x * x;
            }
            norm = Math.sqrt(norm);
            for (int c = 0; c < h; c++) {
                v[c] /= norm;
            }
        }
        return v;
    }

    static NDList inputs(NDManager m, long[] ids, long[] mask, long[] types, int batch, int seq) {
        Shape s = new Shape(batch, seq);
        NDList list = new NDList(m.create(ids, s), m.create(mask, s));
        if (types != null) {
            list.add(m.create(types, s));
        }
        return list;
    }

    /**
     * The forward that DJL's own embedding translator gets ({@link
     * TextEncoderBlock#hiddenStatesOnly()}): the encoder's outputs only, equal to the float64
     * reference, with no pooled embedding or logits.
     */
    @Test
    void hiddenStatesOnlyForwardSkipsTheHeads() throws Exception {
        EncoderConfig config = config(48, 3, 2, 80, 40, 2, "gelu", true, 3);
        EncoderCheckpoint checkpoint = RandomCheckpoint.create(config, 11);
        NaiveBert naive = NaiveBert.of(checkpoint);
        int[] lengths = {9, 4};
        int seq = 9;
        Random random = new Random(17);
        long[] ids = new long[2 * seq];
        long[] mask = new long[2 * seq];
        long[] types = new long[2 * seq];
        for (int b = 0; b < 2; b++) {
            for (int t = 0; t < seq; t++) {
                ids[b * seq + t] = random.nextInt(config.getVocabSize());
                types[b * seq + t] = random.nextInt(2);
                mask[b * seq + t] = t < lengths[b] ? 1 : 0;
            }
        }
        int h = config.getHiddenSize();
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            TextEncoderBlock block = checkpoint.createBlock(manager, Pooling.MEAN, true);
            NDList out =
                    block.forward(
                            new ai.djl.training.ParameterStore(manager, false),
                            inputs(manager, ids, mask, types, 2, seq),
                            false,
                            TextEncoderBlock.hiddenStatesOnly());
            assertEquals(2, out.size());
            assertEquals(BertEncoder.LAST_HIDDEN_STATE, out.get(0).getName());
            assertEquals(BertEncoder.POOLER_OUTPUT, out.get(1).getName());
            assertEquals(null, out.get(TextEncoderBlock.SENTENCE_EMBEDDING));
            assertEquals(null, out.get(TextEncoderBlock.LOGITS));
            float[] hidden = out.get(0).toFloatArray();
            float[] pooled = out.get(1).toFloatArray();
            double maxDiff = 0;
            for (int b = 0; b < 2; b++) {
                double[][] ref =
                        naive.encode(
                                java.util.Arrays.copyOfRange(ids, b * seq, b * seq + lengths[b]),
                                java.util.Arrays.copyOfRange(types, b * seq, b * seq + lengths[b]));
                for (int t = 0; t < lengths[b]; t++) {
                    for (int c = 0; c < h; c++) {
                        maxDiff =
                                Math.max(
                                        maxDiff,
                                        Math.abs(ref[t][c] - hidden[(b * seq + t) * h + c]));
                    }
                }
                double[] pooledRef = naive.pool(ref);
                for (int c = 0; c < h; c++) {
                    maxDiff = Math.max(maxDiff, Math.abs(pooledRef[c] - pooled[b * h + c]));
                }
            }
            assertTrue(maxDiff <= TOLERANCE, "max |diff| " + maxDiff);
            // Without the parameters the same forward adds the heads.
            NDList all =
                    block.forward(
                            new ai.djl.training.ParameterStore(manager, false),
                            inputs(manager, ids, mask, types, 2, seq),
                            false);
            assertTrue(all.get(TextEncoderBlock.SENTENCE_EMBEDDING) != null);
            assertTrue(all.get(TextEncoderBlock.LOGITS) != null);
        }
    }

    @Test
    void paramsFileRoundTripGivesIdenticalOutputs() throws Exception {
        EncoderConfig config = config(32, 4, 2, 48, 12, 2, "gelu", true, 2);
        EncoderCheckpoint checkpoint = RandomCheckpoint.create(config, 5);
        long[] ids = {3, 9, 27, 81, 1, 2, 5, 0};
        long[] mask = {1, 1, 1, 1, 1, 1, 0, 0};
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            TextEncoderBlock original = checkpoint.createBlock(manager, Pooling.MEAN, true);
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            original.saveParameters(new DataOutputStream(bytes));
            TextEncoderBlock restored = new TextEncoderBlock(config, Pooling.MEAN, true);
            restored.loadParameters(
                    manager, new DataInputStream(new ByteArrayInputStream(bytes.toByteArray())));
            NDList in = inputs(manager, ids, mask, null, 2, 4);
            NDList a = original.run(in.get(0), in.get(1), null);
            NDList b = restored.run(in.get(0), in.get(1), null);
            assertEquals(a.size(), b.size());
            for (int i = 0; i < a.size(); i++) {
                assertArrayEquals(a.get(i).toFloatArray(), b.get(i).toFloatArray(), 0f);
            }
            // A block initialised randomly (not from a checkpoint) saves and loads too.
            TextEncoderBlock random = new TextEncoderBlock(config, Pooling.CLS, false);
            random.initialize(manager, ai.djl.ndarray.types.DataType.FLOAT32, new Shape(1, 4));
            ByteArrayOutputStream again = new ByteArrayOutputStream();
            random.saveParameters(new DataOutputStream(again));
            assertTrue(again.size() > 4 * 97 * 32);
        }
    }

    @Test
    void longerThanPositionTableIsRefusedClearly() {
        EncoderConfig config = config(16, 2, 1, 16, 8, 0, "gelu", false, 0);
        EncoderCheckpoint checkpoint = RandomCheckpoint.create(config, 1);
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            TransformerEncoder encoder = checkpoint.createEncoder(manager);
            NDArray ids = manager.zeros(new Shape(1, 9), ai.djl.ndarray.types.DataType.INT64);
            IllegalArgumentException e =
                    assertThrows(
                            IllegalArgumentException.class, () -> encoder.encode(ids, null, null));
            assertTrue(
                    e.getMessage().contains("9 tokens") && e.getMessage().contains("8"),
                    e.getMessage());
            NDArray bad = manager.create(new long[] {1, 97}, new Shape(1, 2));
            e = assertThrows(IllegalArgumentException.class, () -> encoder.encode(bad, null, null));
            assertTrue(e.getMessage().contains("input_ids"), e.getMessage());
            NDArray ok = manager.create(new long[] {1, 2}, new Shape(1, 2));
            NDArray wrongMask = manager.create(new long[] {1, 1, 1}, new Shape(1, 3));
            e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> encoder.encode(ok, wrongMask, null));
            assertTrue(e.getMessage().contains("attention_mask"), e.getMessage());
        } catch (ai.djl.MalformedModelException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void maskWithHolesHidesThoseKeys() throws Exception {
        EncoderConfig config = config(32, 4, 2, 40, 10, 0, "gelu", false, 0);
        EncoderCheckpoint checkpoint = RandomCheckpoint.create(config, 9);
        Map<String, float[]> weights = RandomCheckpoint.arrays(checkpoint);
        NaiveBert naive = new NaiveBert(weights, 32, 4, 2, 40, 1e-12, "gelu");
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            TransformerEncoder encoder = checkpoint.createEncoder(manager);
            // A mask with holes takes the key-padding-mask path: the tokens still see only valid
            // keys.
            long[] ids = {5, 6, 7, 8, 9};
            long[] mask = {1, 0, 1, 1, 0};
            NDList out =
                    encoder.encode(
                            manager.create(ids, new Shape(1, 5)),
                            manager.create(mask, new Shape(1, 5)),
                            null);
            float[] hidden = out.get(0).toFloatArray();
            double[][] expected = naive.encode(ids, new long[5], mask);
            double maxDiff = 0;
            for (int t = 0; t < 5; t++) {
                for (int c = 0; c < 32; c++) {
                    maxDiff = Math.max(maxDiff, Math.abs(expected[t][c] - hidden[t * 32 + c]));
                }
            }
            assertTrue(maxDiff <= TOLERANCE, "max |diff| " + maxDiff);
            // The holes matter: without the mask the vectors differ.
            double[][] unmasked = naive.encode(ids, new long[5]);
            assertTrue(Math.abs(unmasked[0][0] - hidden[0]) > 1e-3);
        }
    }

    /** Forwards leave nothing behind in the caller's manager but their outputs. */
    @Test
    void forwardsLeaveOnlyTheirOutputs() throws Exception {
        EncoderConfig config = config(32, 4, 2, 40, 16, 2, "gelu", true, 2);
        EncoderCheckpoint checkpoint = RandomCheckpoint.create(config, 21);
        try (NDManager model = NDManager.newBaseManager("PyTorch")) {
            TextEncoderBlock block = checkpoint.createBlock(model, Pooling.MEAN, true);
            block.run(
                    model.create(new long[] {1, 2, 3, 4}, new Shape(2, 2)),
                    model.create(new long[] {1, 1, 1, 0}, new Shape(2, 2)),
                    null);
            int modelArrays = model.getManagedArrays().size();
            try (NDManager caller = model.newSubManager()) {
                NDArray ids = caller.create(new long[] {5, 6, 7, 8, 9, 10}, new Shape(2, 3));
                NDArray mask = caller.create(new long[] {1, 1, 1, 1, 0, 0}, new Shape(2, 3));
                int before = caller.getManagedArrays().size();
                for (int i = 0; i < 5; i++) {
                    NDList out = block.run(ids, mask, null);
                    assertEquals(before + out.size(), caller.getManagedArrays().size());
                    out.close();
                }
                assertEquals(before, caller.getManagedArrays().size());
            }
            // The weights' manager gained nothing either (packed weights were made on first use).
            assertEquals(modelArrays, model.getManagedArrays().size());
        }
    }
}
