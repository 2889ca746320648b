package io.github.tilewise.it.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.MalformedModelException;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import com.google.gson.JsonObject;
import io.github.tilewise.djl.encoder.TransformerEncoder;
import io.github.tilewise.djl.encoder.checkpoint.CheckpointTensor;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every encoder family against {@link Float64Encoder}, an independent float64 reference written
 * from transformers' modeling source: a random checkpoint ({@link RandomHfCheckpoint}) is written
 * as a Hugging Face directory, read with {@link EncoderCheckpoint#read}, and its {@code
 * last_hidden_state} compared at every real token with the reference's, within {@value #TOLERANCE}.
 *
 * <p>Inputs: single texts of 1, 7, 33 and 129 tokens (or the longest the position table takes), a
 * right-padded batch of three lengths (packed, and padded with {@code -Dtilewise.packed=false}),
 * and for ModernBERT 1,000 and 3,000 tokens, far beyond its 16-token local window. Each variant
 * prints one line {@code float64-parity variant=... model_type=... route=... max_abs=...
 * worst_case=...}.
 */
class Float64ParityTest {

    /** The largest absolute difference allowed at any real token. */
    static final double TOLERANCE = 1e-4;

    @TempDir Path tmp;

    static List<String> variants() {
        return RandomHfCheckpoint.VARIANTS;
    }

    private static long seedOf(String variant) {
        return 0x7115_0000L + variant.hashCode();
    }

    @ParameterizedTest
    @MethodSource("variants")
    void fp32MatchesFloat64(String variant) throws Exception {
        RandomHfCheckpoint checkpoint = RandomHfCheckpoint.create(variant, seedOf(variant));
        Path dir = checkpoint.write(tmp.resolve(variant));
        Float64Encoder reference = checkpoint.reference();
        Random random = new Random(seedOf(variant));
        List<Case> cases = new ArrayList<>();
        int longest = Math.min(129, checkpoint.getMaxTokens());
        for (int n : new int[] {1, 7, 33, longest}) {
            cases.add(Case.single("single-" + n, ids(random, n, checkpoint.getPadTokenId())));
        }
        cases.add(
                Case.padded(
                        "padded-17-5-40",
                        random,
                        checkpoint.getPadTokenId(),
                        new int[] {17, 5, 40},
                        false));
        if (!checkpoint.getModelType().equals("modernbert")) {
            cases.add(
                    Case.padded(
                            "padded-unpacked-17-5-40",
                            random,
                            checkpoint.getPadTokenId(),
                            new int[] {17, 5, 40},
                            true));
        } else {
            for (int n : new int[] {1000, 3000}) {
                cases.add(Case.single("long-" + n, ids(random, n, checkpoint.getPadTokenId())));
            }
        }
        if (variant.equals("xlm-roberta-long")) {
            cases.add(Case.single("long-2000", ids(random, 2000, checkpoint.getPadTokenId())));
        }
        Result worst = run(variant, EncoderCheckpoint.read(dir), reference, cases);
        report(variant, checkpoint.getModelType(), "safetensors", worst);
        assertTrue(worst.maxAbs <= TOLERANCE, variant + ": " + worst);
    }

    static Stream<Arguments> exportLayouts() {
        List<Arguments> out = new ArrayList<>();
        for (String variant : RandomHfCheckpoint.VARIANTS) {
            out.add(Arguments.of(variant, OnnxExportLayout.Style.DYNAMO));
            if (!variant.equals("modernbert")) { // no biases: torchscript cannot name its layers
                out.add(Arguments.of(variant, OnnxExportLayout.Style.TORCHSCRIPT));
            }
        }
        return out.stream();
    }

    /**
     * The ONNX import route of every family: an export directory ({@code model.onnx} with the
     * weights as {@code torch.onnx} lays them out, and {@code config.json}) gives the safetensors
     * tensors bit for bit and the float64 reference's output.
     */
    @ParameterizedTest
    @MethodSource("exportLayouts")
    void onnxExportMatchesFloat64(String variant, OnnxExportLayout.Style style) throws Exception {
        RandomHfCheckpoint checkpoint = RandomHfCheckpoint.create(variant, seedOf(variant));
        EncoderCheckpoint fromSafetensors =
                EncoderCheckpoint.read(checkpoint.write(tmp.resolve(variant)));
        Path export =
                OnnxExportLayout.write(checkpoint, tmp.resolve(variant + "-" + style), style, true);
        EncoderCheckpoint fromOnnx = EncoderCheckpoint.read(export);
        assertEquals(fromSafetensors.getTensors().keySet(), fromOnnx.getTensors().keySet());
        for (CheckpointTensor t : fromSafetensors.getTensors().values()) {
            assertArrayEquals(t.getShape(), fromOnnx.getTensor(t.getName()).getShape());
            assertArrayEquals(t.getData(), fromOnnx.getTensor(t.getName()).getData());
        }
        Random random = new Random(seedOf(variant));
        List<Case> cases = new ArrayList<>();
        cases.add(Case.single("single-33", ids(random, 33, checkpoint.getPadTokenId())));
        cases.add(
                Case.padded(
                        "padded-17-5-40",
                        random,
                        checkpoint.getPadTokenId(),
                        new int[] {17, 5, 40},
                        false));
        Result worst = run(variant, fromOnnx, checkpoint.reference(), cases);
        report(variant, checkpoint.getModelType(), "onnx-" + style, worst);
        assertTrue(worst.maxAbs <= TOLERANCE, variant + " " + style + ": " + worst);
    }

    /**
     * An export that numbers positions from the padding, without its {@code config.json}: the
     * configuration inferred from a BERT graph cannot express it, and the message says what to do.
     */
    @Test
    void paddingPositionedExportWithoutConfigIsRefused() throws Exception {
        RandomHfCheckpoint checkpoint = RandomHfCheckpoint.create("roberta", 3);
        Path export =
                OnnxExportLayout.write(
                        checkpoint, tmp.resolve("bare"), OnnxExportLayout.Style.TORCHSCRIPT, false);
        MalformedModelException e =
                assertThrows(MalformedModelException.class, () -> EncoderCheckpoint.read(export));
        assertTrue(e.getMessage().contains("config.json"), e.getMessage());
        assertTrue(e.getMessage().contains("CumSum"), e.getMessage());
    }

    /**
     * INT8 and BF16 (linear layers converted, BF16 attention where the CPU has it) against the
     * float64 reference: the mean-pooled vector of every text within the cosine bounds used for
     * MiniLM (INT8 ≥ 0.99, BF16 ≥ 0.999).
     */
    @ParameterizedTest
    @MethodSource("variants")
    void lowPrecisionStaysWithinTheCosineBounds(String variant) throws Exception {
        RandomHfCheckpoint checkpoint = RandomHfCheckpoint.create(variant, seedOf(variant));
        Path dir = checkpoint.write(tmp.resolve(variant));
        Float64Encoder reference = checkpoint.reference();
        Random random = new Random(seedOf(variant) + 1);
        int longest = Math.min(129, checkpoint.getMaxTokens());
        List<Case> cases =
                List.of(
                        Case.single(
                                "single-" + longest,
                                ids(random, longest, checkpoint.getPadTokenId())),
                        Case.padded(
                                "padded-17-5-40",
                                random,
                                checkpoint.getPadTokenId(),
                                new int[] {17, 5, 40},
                                false));
        EncoderCheckpoint loaded = EncoderCheckpoint.read(dir);
        for (Precision precision : List.of(Precision.INT8, Precision.BF16)) {
            double minCos = 1;
            try (NDManager manager = NDManager.newBaseManager("PyTorch");
                    TransformerEncoder encoder = loaded.createEncoder(manager)) {
                LowPrecisionConverter.builder().setPrecision(precision).build().convert(encoder);
                for (Case c : cases) {
                    double[][][] expected = reference.encode(c.ids, c.mask);
                    float[] actual = hidden(encoder, manager, c);
                    int seq = c.ids[0].length;
                    int h = expected[0][0].length;
                    for (int b = 0; b < c.ids.length; b++) {
                        double[] mine = new double[h];
                        double[] theirs = new double[h];
                        for (int t = 0; t < c.lengths[b]; t++) {
                            for (int k = 0; k < h; k++) {
                                mine[k] += actual[(b * seq + t) * h + k];
                                theirs[k] += expected[b][t][k];
                            }
                        }
                        minCos = Math.min(minCos, cosine(mine, theirs));
                    }
                }
            }
            System.out.printf(
                    Locale.ROOT,
                    "float64-lowp variant=%s precision=%s min_cos=%.6f%n",
                    variant,
                    precision,
                    minCos);
            assertTrue(
                    minCos >= (precision == Precision.INT8 ? 0.99 : 0.999),
                    variant + " " + precision + ": min cosine " + minCos);
        }
    }

    /** The cosine of two vectors, in float64. */
    static double cosine(double[] a, double[] b) {
        double ab = 0;
        double aa = 0;
        double bb = 0;
        for (int i = 0; i < a.length; i++) {
            ab += a[i] * b[i];
            aa += a[i] * a[i];
            bb += b[i] * b[i];
        }
        return ab / Math.sqrt(aa * bb);
    }

    @Test
    void shardedCheckpointMatchesFloat64AndTheSingleFile() throws Exception {
        String variant = "mpnet";
        RandomHfCheckpoint checkpoint = RandomHfCheckpoint.create(variant, seedOf(variant));
        Path sharded = checkpoint.writeSharded(tmp.resolve("sharded"), 3);
        assertTrue(Files.isRegularFile(sharded.resolve("model-00003-of-00003.safetensors")));
        assertTrue(Files.notExists(sharded.resolve("model.safetensors")));
        Path single = checkpoint.write(tmp.resolve("single"));
        Random random = new Random(7);
        List<Case> cases =
                List.of(
                        Case.single("single-60", ids(random, 60, checkpoint.getPadTokenId())),
                        Case.padded(
                                "padded-9-30-2",
                                random,
                                checkpoint.getPadTokenId(),
                                new int[] {9, 30, 2},
                                false));
        Result worst = run(variant, EncoderCheckpoint.read(sharded), checkpoint.reference(), cases);
        report(variant, checkpoint.getModelType(), "sharded", worst);
        assertTrue(worst.maxAbs <= TOLERANCE, variant + " sharded: " + worst);
        try (NDManager manager = NDManager.newBaseManager("PyTorch");
                TransformerEncoder a = EncoderCheckpoint.read(sharded).createEncoder(manager);
                TransformerEncoder b = EncoderCheckpoint.read(single).createEncoder(manager)) {
            for (Case c : cases) {
                assertArrayEquals(hidden(a, manager, c), hidden(b, manager, c), c.name);
            }
        }
    }

    /**
     * RoBERTa numbers positions by {@code ids != pad}, not by the attention mask: a padding id
     * inside a text (mask 1) takes position {@code pad} and does not advance the count.
     */
    @Test
    void robertaPositionsFollowThePaddingIdInsideAText() throws Exception {
        RandomHfCheckpoint checkpoint = RandomHfCheckpoint.create("roberta", 11);
        Path dir = checkpoint.write(tmp.resolve("roberta"));
        int[] ids = ids(new Random(3), 20, checkpoint.getPadTokenId());
        ids[6] = checkpoint.getPadTokenId();
        ids[13] = checkpoint.getPadTokenId();
        Result worst =
                run(
                        "roberta",
                        EncoderCheckpoint.read(dir),
                        checkpoint.reference(),
                        List.of(Case.single("inner-pad-ids", ids)));
        report("roberta-inner-pad", "roberta", "safetensors", worst);
        assertTrue(worst.maxAbs <= TOLERANCE, "roberta inner padding ids: " + worst);
    }

    @Test
    void configContradictingTheWeightsIsRefused() throws Exception {
        RandomHfCheckpoint bert = RandomHfCheckpoint.create("bert", 1);
        JsonObject wrong = bert.getConfig();
        wrong.addProperty("intermediate_size", 256);
        Path dir = bert.write(tmp.resolve("bert-wrong"), wrong);
        MalformedModelException e =
                assertThrows(MalformedModelException.class, () -> EncoderCheckpoint.read(dir));
        assertTrue(
                e.getMessage().contains("intermediate_size") && e.getMessage().contains("256"),
                e.getMessage());

        RandomHfCheckpoint modern = RandomHfCheckpoint.create("modernbert", 2);
        JsonObject layers = modern.getConfig();
        layers.addProperty("num_hidden_layers", 5);
        layers.remove("layer_types");
        Path dir2 = modern.write(tmp.resolve("modern-wrong"), layers);
        MalformedModelException e2 =
                assertThrows(MalformedModelException.class, () -> EncoderCheckpoint.read(dir2));
        assertTrue(e2.getMessage().contains("num_hidden_layers"), e2.getMessage());

        RandomHfCheckpoint distil = RandomHfCheckpoint.create("distilbert", 3);
        JsonObject dim = distil.getConfig();
        dim.addProperty("dim", 128);
        dim.addProperty("n_heads", 4);
        Path dir3 = distil.write(tmp.resolve("distil-wrong"), dim);
        MalformedModelException e3 =
                assertThrows(MalformedModelException.class, () -> EncoderCheckpoint.read(dir3));
        assertTrue(e3.getMessage().contains("128"), e3.getMessage());
    }

    @Test
    void unknownModelTypeListsTheSupportedOnes() throws Exception {
        RandomHfCheckpoint bert = RandomHfCheckpoint.create("bert", 1);
        JsonObject gpt = bert.getConfig();
        gpt.addProperty("model_type", "gpt2");
        Path dir = bert.write(tmp.resolve("gpt2"), gpt);
        MalformedModelException e =
                assertThrows(MalformedModelException.class, () -> EncoderCheckpoint.read(dir));
        String message = e.getMessage();
        assertTrue(message.contains("gpt2"), message);
        for (String type : Float64Encoder.MODEL_TYPES) {
            assertTrue(message.contains(type), type + " missing from: " + message);
        }
    }

    @ParameterizedTest
    @MethodSource("variants")
    void textLongerThanThePositionTableIsRefused(String variant) throws Exception {
        RandomHfCheckpoint checkpoint = RandomHfCheckpoint.create(variant, seedOf(variant));
        if (checkpoint.getModelType().equals("modernbert")) {
            return; // 8,192 positions: 8,193 tokens are covered by the BERT-layout families
        }
        Path dir = checkpoint.write(tmp.resolve(variant));
        int n = checkpoint.getMaxTokens() + 1;
        int[] ids = ids(new Random(5), n, checkpoint.getPadTokenId());
        try (NDManager manager = NDManager.newBaseManager("PyTorch");
                TransformerEncoder encoder = EncoderCheckpoint.read(dir).createEncoder(manager)) {
            // The longest text the table takes runs...
            Case fits = Case.single("fits", Arrays.copyOf(ids, n - 1));
            assertEquals(
                    (long) (n - 1) * 64, hidden(encoder, manager, fits).length, variant + " fits");
            // ...one more token is refused with a message naming the limit.
            IllegalArgumentException e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> hidden(encoder, manager, Case.single("too-long", ids)));
            assertTrue(e.getMessage().contains(String.valueOf(n - 1)), e.getMessage());
        }
    }

    // ---------------------------------------------------------------- cases and comparison

    /** One input: ids and mask {@code [batch][seq]}, and whether to run it padded. */
    static final class Case {
        final String name;
        final int[][] ids;
        final int[][] mask;
        final int[] lengths;
        final boolean unpacked;

        private Case(String name, int[][] ids, int[][] mask, int[] lengths, boolean unpacked) {
            this.name = name;
            this.ids = ids;
            this.mask = mask;
            this.lengths = lengths;
            this.unpacked = unpacked;
        }

        static Case single(String name, int[] ids) {
            int[] mask = new int[ids.length];
            Arrays.fill(mask, 1);
            return new Case(
                    name, new int[][] {ids}, new int[][] {mask}, new int[] {ids.length}, false);
        }

        static Case padded(String name, Random random, int pad, int[] lengths, boolean unpacked) {
            int seq = Arrays.stream(lengths).max().getAsInt();
            int[][] ids = new int[lengths.length][seq];
            int[][] mask = new int[lengths.length][seq];
            for (int b = 0; b < lengths.length; b++) {
                int[] real = Float64ParityTest.ids(random, lengths[b], pad);
                Arrays.fill(ids[b], pad);
                System.arraycopy(real, 0, ids[b], 0, lengths[b]);
                Arrays.fill(mask[b], 0, lengths[b], 1);
            }
            return new Case(name, ids, mask, lengths.clone(), unpacked);
        }
    }

    /** The worst difference of a run and where it was. */
    static final class Result {
        double maxAbs;
        String where = "none";

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "max_abs=%.3g at %s", maxAbs, where);
        }
    }

    /** Token ids in {@code [4, 300)}, never the padding id. */
    static int[] ids(Random random, int n, int pad) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            int id;
            do {
                id = 4 + random.nextInt(296);
            } while (id == pad);
            ids[i] = id;
        }
        return ids;
    }

    private static Result run(
            String variant,
            EncoderCheckpoint checkpoint,
            Float64Encoder reference,
            List<Case> cases)
            throws Exception {
        Result worst = new Result();
        try (NDManager manager = NDManager.newBaseManager("PyTorch");
                TransformerEncoder encoder = checkpoint.createEncoder(manager)) {
            for (Case c : cases) {
                double[][][] expected = reference.encode(c.ids, c.mask);
                float[] actual = hidden(encoder, manager, c);
                int seq = c.ids[0].length;
                int h = expected[0][0].length;
                assertEquals((long) c.ids.length * seq * h, actual.length, c.name + " size");
                double caseWorst = 0;
                String at = "";
                for (int b = 0; b < c.ids.length; b++) {
                    for (int t = 0; t < c.lengths[b]; t++) {
                        for (int k = 0; k < h; k++) {
                            double d = Math.abs(actual[(b * seq + t) * h + k] - expected[b][t][k]);
                            if (!(d <= caseWorst)) {
                                caseWorst = Double.isNaN(d) ? Double.POSITIVE_INFINITY : d;
                                at = "row " + b + " token " + t + " dim " + k;
                            }
                        }
                    }
                }
                System.out.printf(
                        Locale.ROOT,
                        "float64-case variant=%s case=%s max_abs=%.3g at=%s%n",
                        variant,
                        c.name,
                        caseWorst,
                        at.replace(' ', '_'));
                if (worst.where.equals("none") || caseWorst > worst.maxAbs) {
                    worst.maxAbs = caseWorst;
                    worst.where = c.name + " " + at;
                }
            }
        }
        return worst;
    }

    private static float[] hidden(TransformerEncoder encoder, NDManager manager, Case c) {
        int batch = c.ids.length;
        int seq = c.ids[0].length;
        long[] ids = new long[batch * seq];
        long[] mask = new long[batch * seq];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < seq; t++) {
                ids[b * seq + t] = c.ids[b][t];
                mask[b * seq + t] = c.mask[b][t];
            }
        }
        String previous = System.getProperty("tilewise.packed");
        if (c.unpacked) {
            System.setProperty("tilewise.packed", "false");
        }
        try (NDManager scope = manager.newSubManager()) {
            NDArray idArray = scope.create(ids).reshape(batch, seq);
            NDArray maskArray = scope.create(mask).reshape(batch, seq);
            NDList out = encoder.encode(idArray, maskArray, null);
            return out.get(TransformerEncoder.LAST_HIDDEN_STATE).toFloatArray();
        } finally {
            if (c.unpacked) {
                if (previous == null) {
                    System.clearProperty("tilewise.packed");
                } else {
                    System.setProperty("tilewise.packed", previous);
                }
            }
        }
    }

    private static void report(String variant, String modelType, String route, Result worst) {
        System.out.printf(
                Locale.ROOT,
                "float64-parity variant=%s model_type=%s route=%s max_abs=%.3g worst_case=%s%n",
                variant,
                modelType,
                route,
                worst.maxAbs,
                worst.where.replace(' ', '_'));
    }
}
