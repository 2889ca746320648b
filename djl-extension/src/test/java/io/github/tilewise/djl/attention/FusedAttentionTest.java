package io.github.tilewise.djl.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.attention.AttentionTestData.Bias;
import io.github.tilewise.djl.attention.AttentionTestData.Case;
import io.github.tilewise.djl.attention.AttentionTestData.KeyMask;
import io.github.tilewise.djl.attention.NaiveAttention.Precision;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Numbers of {@link FusedAttention} (every ISA variant the CPU can run) and of {@link
 * ReferenceAttention} against the float64 loops of {@link NaiveAttention}, on fresh random inputs.
 */
class FusedAttentionTest {

    /** fp32 results must agree with float64 to this fraction of the largest output magnitude. */
    private static final double FP32_RELATIVE_TOLERANCE = 1e-5;

    private static NDManager root;
    private NDManager manager;

    @BeforeAll
    static void createRoot() {
        assertTrue(Tilewise.isNativeAvailable(), Tilewise.describe());
        root = NDManager.newBaseManager();
    }

    @AfterAll
    static void closeRoot() {
        root.close();
    }

    @BeforeEach
    void createManager() {
        manager = root.newSubManager();
    }

    @AfterEach
    void restore() {
        manager.close();
        Tilewise.setIsa(Tilewise.detectedIsa());
    }

    /** Shapes: odd lengths, every fast-path and awkward head dim, GQA/MQA, cross and decoding. */
    static List<Case> shapes() {
        List<Case> cases = new ArrayList<>();
        cases.add(new Case(1, 1, 1, 1, 1, 32, false));
        cases.add(new Case(2, 3, 3, 7, 7, 40, true));
        cases.add(new Case(1, 2, 2, 33, 33, 64, false).with(AttentionLayout.BATCH_SEQ_HEADS_DIM));
        cases.add(new Case(1, 2, 2, 100, 100, 80, true).with(AttentionLayout.BATCH_SEQ_HEADS_DIM));
        cases.add(new Case(1, 1, 1, 257, 257, 96, false));
        cases.add(new Case(1, 2, 2, 65, 130, 128, true));
        cases.add(new Case(1, 1, 1, 40, 33, 256, false));
        cases.add(new Case(1, 2, 2, 17, 17, 33, true)); // a head dim no fast path covers
        cases.add(new Case(2, 8, 2, 33, 47, 64, true)); // grouped-query
        cases.add(new Case(1, 4, 1, 17, 100, 64, false).with(AttentionLayout.BATCH_SEQ_HEADS_DIM));
        cases.add(new Case(2, 4, 2, 1, 257, 128, true)); // decoding one row against a cache
        cases.add(new Case(1, 4, 4, 1, 513, 64, false)); // decoding, longer cache
        cases.add(new Case(1, 2, 2, 50, 20, 64, true)); // Nq > Nk causal: 30 rows see nothing
        cases.add(new Case(3, 2, 2, 33, 40, 64, false).with(KeyMask.VALID_LENGTHS));
        cases.add(
                new Case(3, 4, 2, 20, 20, 32, true)
                        .with(KeyMask.VALID_LENGTHS)
                        .with(AttentionLayout.BATCH_SEQ_HEADS_DIM));
        cases.add(new Case(2, 2, 1, 31, 31, 32, false).with(KeyMask.BOOLEAN_PADDING));
        cases.add(
                new Case(2, 2, 2, 29, 29, 64, true)
                        .with(KeyMask.INT64_PADDING)
                        .with(AttentionLayout.BATCH_SEQ_HEADS_DIM));
        cases.add(new Case(2, 2, 2, 19, 23, 64, false).with(Bias.FULL));
        cases.add(new Case(2, 4, 2, 21, 21, 40, true).with(Bias.HEADS_KEYS));
        cases.add(new Case(2, 2, 2, 9, 70, 64, false).with(Bias.QUERY_KEYS));
        cases.add(
                new Case(3, 2, 1, 24, 24, 32, true)
                        .with(Bias.WITH_MINUS_INFINITY)
                        .with(KeyMask.VALID_LENGTHS));
        return cases;
    }

    static List<Tilewise.Isa> isas() {
        List<Tilewise.Isa> isas = new ArrayList<>();
        for (Tilewise.Isa isa : Tilewise.Isa.values()) {
            if (isa.ordinal() <= Tilewise.detectedIsa().ordinal()) {
                isas.add(isa);
            }
        }
        return isas;
    }

    static Stream<Arguments> shapesTimesIsas() {
        return isas().stream().flatMap(isa -> shapes().stream().map(c -> Arguments.of(isa, c)));
    }

    static Stream<Arguments> halfPrecisionCasesTimesIsas() {
        List<Case> cases =
                List.of(
                        new Case(1, 2, 2, 64, 64, 64, false),
                        new Case(1, 2, 1, 100, 100, 128, true)
                                .with(AttentionLayout.BATCH_SEQ_HEADS_DIM),
                        new Case(2, 2, 2, 33, 257, 32, false).with(KeyMask.VALID_LENGTHS),
                        new Case(1, 2, 2, 1, 300, 80, true),
                        new Case(1, 2, 2, 40, 40, 256, false).with(Bias.FULL));
        return isas().stream().flatMap(isa -> cases.stream().map(c -> Arguments.of(isa, c)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("shapesTimesIsas")
    void fp32MatchesFloat64(Tilewise.Isa isa, Case c) {
        Tilewise.setIsa(isa);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        NDList result =
                FusedAttention.forwardWithLogSumExp(
                        data.q(manager, DataType.FLOAT32),
                        data.k(manager, DataType.FLOAT32),
                        data.v(manager, DataType.FLOAT32),
                        data.options(manager).build());
        assertEquals(DataType.FLOAT32, result.get(0).getDataType());
        NaiveAttention.Result expected = NaiveAttention.compute(data.problem, Precision.FLOAT64);
        assertCloseToFloat64(data, data.outputOf(result.get(0)), expected, isa.toString());
        assertLogSumExp(data, result.get(1), expected, isa.toString());
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("shapesTimesIsas")
    void fp32IntoACallerOwnedOutputMatchesFloat64(Tilewise.Isa isa, Case c) {
        Tilewise.setIsa(isa);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        NDArray q = data.q(manager, DataType.FLOAT32);
        // NaN everywhere first: every element must be written.
        NDArray into = manager.full(q.getShape(), Float.NaN, DataType.FLOAT32);
        NDArray out =
                FusedAttention.forward(
                        q,
                        data.k(manager, DataType.FLOAT32),
                        data.v(manager, DataType.FLOAT32),
                        data.options(manager).build(),
                        into);
        assertSame(into, out);
        assertCloseToFloat64(
                data,
                data.outputOf(out),
                NaiveAttention.compute(data.problem, Precision.FLOAT64),
                isa + " into out");
        // An output that is also an input would be read while it is written.
        NDArray k = data.k(manager, DataType.FLOAT32);
        NDArray v = data.v(manager, DataType.FLOAT32);
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> FusedAttention.forward(q, k, v, data.options(manager).build(), q));
        assertTrue(e.getMessage().contains("shares memory"), e.getMessage());
    }

    @ParameterizedTest(name = "{1}")
    @MethodSource("shapes")
    void referenceMatchesFloat64(Case c) {
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        NDList result =
                ReferenceAttention.forwardWithLogSumExp(
                        data.q(manager, DataType.FLOAT32),
                        data.k(manager, DataType.FLOAT32),
                        data.v(manager, DataType.FLOAT32),
                        data.options(manager).build());
        NaiveAttention.Result expected = NaiveAttention.compute(data.problem, Precision.FLOAT64);
        assertCloseToFloat64(data, data.outputOf(result.get(0)), expected, "reference");
        assertLogSumExp(data, result.get(1), expected, "reference");
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("halfPrecisionCasesTimesIsas")
    void fp16DataIsWithinTwiceTheNaiveFp16Error(Tilewise.Isa isa, Case c) {
        Tilewise.setIsa(isa);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), true);
        NDArray out =
                FusedAttention.forward(
                        data.q(manager, DataType.FLOAT16),
                        data.k(manager, DataType.FLOAT16),
                        data.v(manager, DataType.FLOAT16),
                        data.options(manager).build());
        assertEquals(DataType.FLOAT16, out.getDataType());
        assertWithinTwiceNaive(data, data.outputOf(out), Precision.FP16, isa);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("halfPrecisionCasesTimesIsas")
    void bf16ComputeIsWithinTwiceTheNaiveBf16Error(Tilewise.Isa isa, Case c) {
        Tilewise.setIsa(isa);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        NDArray out =
                FusedAttention.forward(
                        data.q(manager, DataType.FLOAT32),
                        data.k(manager, DataType.FLOAT32),
                        data.v(manager, DataType.FLOAT32),
                        data.options(manager).optComputePrecision(ComputePrecision.BF16).build());
        assertEquals(DataType.FLOAT32, out.getDataType());
        assertWithinTwiceNaive(data, data.outputOf(out), Precision.BF16, isa);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("packedCasesTimesIsas")
    void packedQkvIsReadInPlace(Tilewise.Isa isa, Case c) {
        Tilewise.setIsa(isa);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        NDArray qkv = packed(data, c.layout() == AttentionLayout.BATCH_SEQ_HEADS_DIM);
        AttentionOptions options = data.options(manager).build();
        int before = manager.getManagedArrays().size();
        NDArray out = FusedAttention.forwardPackedQkv(qkv, c.heads(), options);
        assertEquals(before + 1, manager.getManagedArrays().size());
        assertEquals(new Shape(c.batch(), c.qLen(), c.heads(), c.headDim()), out.getShape());
        assertSame(manager, qkv.getManager());
        float[] flat =
                AttentionTestData.swapMiddleAxes(
                        out.toFloatArray(), c.batch(), c.qLen(), c.heads(), c.headDim());
        assertCloseToFloat64(
                data,
                flat,
                NaiveAttention.compute(data.problem, Precision.FLOAT64),
                isa + " packed");
        // The same into a caller-owned output, NaN first: every element must be written.
        Shape shape = out.getShape();
        NDArray into = manager.full(shape, Float.NaN, DataType.FLOAT32);
        assertSame(into, FusedAttention.forwardPackedQkv(qkv, c.heads(), options, into));
        assertCloseToFloat64(
                data,
                AttentionTestData.swapMiddleAxes(
                        into.toFloatArray(), c.batch(), c.qLen(), c.heads(), c.headDim()),
                NaiveAttention.compute(data.problem, Precision.FLOAT64),
                isa + " packed into out");
        NDArray wrongShape = manager.zeros(new Shape(c.batch(), c.qLen(), c.heads() + 1, 1));
        assertThrows(
                IllegalArgumentException.class,
                () -> FusedAttention.forwardPackedQkv(qkv, c.heads(), options, wrongShape));
        NDArray wrongType = manager.zeros(shape, DataType.FLOAT64);
        assertThrows(
                IllegalArgumentException.class,
                () -> FusedAttention.forwardPackedQkv(qkv, c.heads(), options, wrongType));
        NDArray closed = manager.zeros(shape);
        closed.close();
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> FusedAttention.forwardPackedQkv(qkv, c.heads(), options, closed));
        assertTrue(e.getMessage().contains("out is closed"), e.getMessage());
    }

    static Stream<Arguments> packedCasesTimesIsas() {
        // The layout field here picks the packed rank: BSHD = [B, S, 3·H·D], BHSD = [B, S, 3, H,
        // D].
        List<Case> cases =
                List.of(
                        new Case(2, 4, 4, 37, 37, 64, true)
                                .with(KeyMask.INT64_PADDING)
                                .with(AttentionLayout.BATCH_SEQ_HEADS_DIM),
                        new Case(1, 3, 3, 100, 100, 32, false).with(Bias.HEADS_KEYS),
                        new Case(3, 2, 2, 20, 20, 128, false).with(KeyMask.VALID_LENGTHS));
        return isas().stream().flatMap(isa -> cases.stream().map(c -> Arguments.of(isa, c)));
    }

    /** Q, K and V of a self-attention case packed as one projection output would be. */
    private NDArray packed(AttentionTestData data, boolean flatLastAxis) {
        Case c = data.c;
        int hd = c.heads() * c.headDim();
        float[] flat = new float[c.batch() * c.qLen() * 3 * hd];
        float[][] parts = {data.problem.q, data.problem.k, data.problem.v};
        for (int b = 0; b < c.batch(); ++b) {
            for (int s = 0; s < c.qLen(); ++s) {
                for (int part = 0; part < 3; ++part) {
                    for (int h = 0; h < c.heads(); ++h) {
                        System.arraycopy(
                                parts[part],
                                ((b * c.heads() + h) * c.qLen() + s) * c.headDim(),
                                flat,
                                ((b * c.qLen() + s) * 3 + part) * hd + h * c.headDim(),
                                c.headDim());
                    }
                }
            }
        }
        Shape shape =
                flatLastAxis
                        ? new Shape(c.batch(), c.qLen(), 3L * hd)
                        : new Shape(c.batch(), c.qLen(), 3, c.heads(), c.headDim());
        return manager.create(flat, shape);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("isas")
    void validLengthsAndPaddingMaskCombine(Tilewise.Isa isa) {
        Tilewise.setIsa(isa);
        // Entry 0: prefix mask 20 of 33 and length 25 (the mask wins); entry 1: mask with holes and
        // length 10 (the length wins past key 10, holes before it stay masked); entry 2: all kept.
        Case c = new Case(3, 2, 2, 17, 33, 64, false);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        boolean[][] keep = new boolean[3][33];
        for (int j = 0; j < 33; ++j) {
            keep[0][j] = j < 20;
            keep[1][j] = j % 3 != 1;
            keep[2][j] = true;
        }
        data.problem.keep = keep;
        data.problem.validLengths = new int[] {25, 10, 33};
        boolean[] flat = new boolean[3 * 33];
        for (int b = 0; b < 3; ++b) {
            for (int j = 0; j < 33; ++j) {
                flat[b * 33 + j] = keep[b][j];
            }
        }
        AttentionOptions options =
                data.options(manager)
                        .optKeyValidLengths(data.problem.validLengths)
                        .optKeyPaddingMask(manager.create(flat, new Shape(3, 33)))
                        .build();
        NDArray out =
                FusedAttention.forward(
                        data.q(manager, DataType.FLOAT32),
                        data.k(manager, DataType.FLOAT32),
                        data.v(manager, DataType.FLOAT32),
                        options);
        NaiveAttention.Result expected = NaiveAttention.compute(data.problem, Precision.FLOAT64);
        assertCloseToFloat64(data, data.outputOf(out), expected, isa + " lengths+mask");
        assertCloseToFloat64(
                data,
                data.outputOf(
                        ReferenceAttention.forward(
                                data.q(manager, DataType.FLOAT32),
                                data.k(manager, DataType.FLOAT32),
                                data.v(manager, DataType.FLOAT32),
                                options)),
                expected,
                "reference lengths+mask");
    }

    @Test
    void explicitScaleIsUsed() {
        Case c = new Case(1, 2, 2, 20, 30, 64, false);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        data.problem.scale = 0.37f;
        NDArray out =
                FusedAttention.forward(
                        data.q(manager, DataType.FLOAT32),
                        data.k(manager, DataType.FLOAT32),
                        data.v(manager, DataType.FLOAT32),
                        data.options(manager).optScale(0.37f).build());
        assertCloseToFloat64(
                data,
                data.outputOf(out),
                NaiveAttention.compute(data.problem, Precision.FLOAT64),
                "scale");
    }

    @Test
    void outputLivesOnQsManagerAndNoIntermediateRemains() {
        AttentionTestData data =
                new AttentionTestData(
                        new Case(2, 2, 2, 16, 16, 32, true)
                                .with(KeyMask.INT64_PADDING)
                                .with(Bias.HEADS_KEYS),
                        System.nanoTime(),
                        false);
        NDArray q = data.q(manager, DataType.FLOAT32);
        NDArray k = data.k(manager, DataType.FLOAT32);
        NDArray v = data.v(manager, DataType.FLOAT32);
        AttentionOptions options = data.options(manager).build();
        int before = manager.getManagedArrays().size();
        NDList result = FusedAttention.forwardWithLogSumExp(q, k, v, options);
        assertEquals(before + 2, manager.getManagedArrays().size());
        for (NDArray array : List.of(q, k, v, result.get(0), result.get(1))) {
            assertSame(manager, array.getManager());
            assertFalse(array.isReleased());
        }
        assertSame(manager, options.getKeyPaddingMask().getManager());
        assertSame(manager, options.getBias().getManager());
    }

    @Test
    void nonContiguousViewsAreReadCorrectlyAndTheirCopiesFreed() {
        // K arrives as a transposed view: [B, Nk, H, D] seen as [B, H, Nk, D].
        Case c = new Case(2, 3, 3, 25, 31, 64, false);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        NDArray q = data.q(manager, DataType.FLOAT32);
        float[] kSeqFirst =
                AttentionTestData.swapMiddleAxes(
                        data.problem.k, c.batch(), c.kvHeads(), c.kvLen(), 64);
        NDArray kView =
                manager.create(kSeqFirst, new Shape(c.batch(), c.kvLen(), c.kvHeads(), 64))
                        .transpose(0, 2, 1, 3);
        NDArray v = data.v(manager, DataType.FLOAT32);
        int before = manager.getManagedArrays().size();
        NDArray out = FusedAttention.forward(q, kView, v, data.options(manager).build());
        assertEquals(before + 1, manager.getManagedArrays().size());
        assertSame(manager, kView.getManager());
        assertCloseToFloat64(
                data,
                data.outputOf(out),
                NaiveAttention.compute(data.problem, Precision.FLOAT64),
                "view");
    }

    @Test
    void selfAttentionWithOneArrayForQkAndV() {
        Case c = new Case(1, 2, 2, 37, 37, 64, true);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        data.problem.k = data.problem.q;
        data.problem.v = data.problem.q;
        NDArray x = data.q(manager, DataType.FLOAT32);
        NDArray out = FusedAttention.forward(x, x, x, data.options(manager).build());
        assertFalse(x.isReleased());
        assertSame(manager, x.getManager());
        assertCloseToFloat64(
                data,
                data.outputOf(out),
                NaiveAttention.compute(data.problem, Precision.FLOAT64),
                "self");
    }

    @Test
    void defaultOptionsWhenNull() {
        Case c = new Case(1, 2, 2, 10, 12, 32, false);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        NDArray out =
                FusedAttention.forward(
                        data.q(manager, DataType.FLOAT32),
                        data.k(manager, DataType.FLOAT32),
                        data.v(manager, DataType.FLOAT32),
                        null);
        assertCloseToFloat64(
                data,
                data.outputOf(out),
                NaiveAttention.compute(data.problem, Precision.FLOAT64),
                "defaults");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("isas")
    void nanInAQueryRowPoisonsOnlyThatRow(Tilewise.Isa isa) {
        Tilewise.setIsa(isa);
        Case c = new Case(1, 2, 2, 20, 30, 64, false);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        int poisonedRow = 7; // head 0, row 7
        data.problem.q[poisonedRow * 64 + 5] = Float.NaN;
        data.problem.q[(20 + 3) * 64 + 1] = Float.POSITIVE_INFINITY; // head 1, row 3
        float[] out =
                data.outputOf(
                        FusedAttention.forward(
                                data.q(manager, DataType.FLOAT32),
                                data.k(manager, DataType.FLOAT32),
                                data.v(manager, DataType.FLOAT32),
                                data.options(manager).build()));
        assertRowsMatchWithNaNs(data, out, isa);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("isas")
    void nanInAKeyPoisonsTheRowsThatSeeItOnly(Tilewise.Isa isa) {
        Tilewise.setIsa(isa);
        // Causal, Nq = Nk: key 12 is seen by rows 12.. only; rows 0..11 must stay exact even
        // though the kernels compute their scores against key 12 inside the diagonal tile.
        Case c = new Case(1, 1, 1, 30, 30, 32, true);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        data.problem.k[12 * 32 + 4] = Float.NaN;
        float[] out =
                data.outputOf(
                        FusedAttention.forward(
                                data.q(manager, DataType.FLOAT32),
                                data.k(manager, DataType.FLOAT32),
                                data.v(manager, DataType.FLOAT32),
                                data.options(manager).build()));
        for (int i = 0; i < 12; ++i) {
            for (int d = 0; d < 32; ++d) {
                assertTrue(Float.isFinite(out[i * 32 + d]), "row " + i + " " + data);
            }
        }
        for (int i = 12; i < 30; ++i) {
            assertTrue(Float.isNaN(out[i * 32]), "row " + i + " sees the NaN key " + data);
        }
        assertRowsMatchWithNaNs(data, out, isa);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("isas")
    void nanInAValueReachesEveryRowThatSeesIt(Tilewise.Isa isa) {
        Tilewise.setIsa(isa);
        // Causal: value 20 is seen by rows 20.. only. Rows before it never see it, so they stay
        // finite and exact on every ISA (masked lanes skip the product instead of computing 0·NaN).
        Case c = new Case(1, 1, 1, 30, 30, 32, true);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        data.problem.v[20 * 32 + 9] = Float.NaN;
        float[] out =
                data.outputOf(
                        FusedAttention.forward(
                                data.q(manager, DataType.FLOAT32),
                                data.k(manager, DataType.FLOAT32),
                                data.v(manager, DataType.FLOAT32),
                                data.options(manager).build()));
        NaiveAttention.Result expected = NaiveAttention.compute(data.problem, Precision.FLOAT64);
        for (int i = 0; i < 30; ++i) {
            if (i >= 20) {
                assertTrue(Float.isNaN(out[i * 32 + 9]), isa + " row " + i + " sees value 20");
                continue;
            }
            for (int d = 0; d < 32; ++d) {
                assertEquals(
                        expected.out[i * 32 + d],
                        out[i * 32 + d],
                        4 * FP32_RELATIVE_TOLERANCE,
                        isa + " row " + i + " does not see value 20 " + data);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("isas")
    void nanBeyondTheValidLengthsIsIgnored(Tilewise.Isa isa) {
        Tilewise.setIsa(isa);
        // A pre-allocated cache whose unused tail holds garbage: keys past the valid length must
        // not contribute, whatever their bits.
        Case c = new Case(2, 2, 2, 9, 70, 64, false).with(KeyMask.VALID_LENGTHS);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        int[] lengths = data.problem.validLengths;
        lengths[0] = 41;
        for (int b = 0; b < 2; ++b) {
            for (int g = 0; g < 2; ++g) {
                for (int j = lengths[b]; j < 70; ++j) {
                    for (int d = 0; d < 64; ++d) {
                        int index = ((b * 2 + g) * 70 + j) * 64 + d;
                        data.problem.k[index] = Float.NaN;
                        data.problem.v[index] = j % 2 == 0 ? Float.NaN : Float.NEGATIVE_INFINITY;
                    }
                }
            }
        }
        NDArray out =
                FusedAttention.forward(
                        data.q(manager, DataType.FLOAT32),
                        data.k(manager, DataType.FLOAT32),
                        data.v(manager, DataType.FLOAT32),
                        data.options(manager).optKeyValidLengths(lengths).build());
        // The float64 loops skip hidden keys, so they give the finite answer.
        assertCloseToFloat64(
                data,
                data.outputOf(out),
                NaiveAttention.compute(data.problem, Precision.FLOAT64),
                isa + " garbage tail");
    }

    /** Rows without NaN in the float64 reference must match; the others must be NaN. */
    private static void assertRowsMatchWithNaNs(AttentionTestData data, float[] out, Object isa) {
        NaiveAttention.Result expected = NaiveAttention.compute(data.problem, Precision.FLOAT64);
        int d = data.c.headDim();
        int rows = expected.out.length / d;
        int poisoned = 0;
        for (int row = 0; row < rows; ++row) {
            boolean nanRow = false;
            for (int x = 0; x < d; ++x) {
                nanRow |= Double.isNaN(expected.out[row * d + x]);
            }
            for (int x = 0; x < d; ++x) {
                float actual = out[row * d + x];
                if (nanRow) {
                    assertTrue(
                            !Float.isFinite(actual),
                            isa + " row " + row + " should be NaN, got " + actual + " " + data);
                } else {
                    assertEquals(
                            expected.out[row * d + x],
                            actual,
                            FP32_RELATIVE_TOLERANCE * 4,
                            isa + " row " + row + " " + data);
                }
            }
            poisoned += nanRow ? 1 : 0;
        }
        assertTrue(poisoned > 0 && poisoned < rows, "the test must poison some rows only");
    }

    private static void assertCloseToFloat64(
            AttentionTestData data, float[] actual, NaiveAttention.Result expected, String what) {
        assertEquals(expected.out.length, actual.length);
        double maxRef = 0;
        for (double x : expected.out) {
            maxRef = Math.max(maxRef, Math.abs(x));
        }
        double tolerance = FP32_RELATIVE_TOLERANCE * Math.max(1.0, maxRef);
        int d = data.c.headDim();
        int maskedRows = 0;
        for (int row = 0; row < expected.lse.length; ++row) {
            boolean masked = expected.lse[row] == Double.NEGATIVE_INFINITY;
            maskedRows += masked ? 1 : 0;
            for (int x = 0; x < d; ++x) {
                int index = row * d + x;
                if (masked) {
                    assertEquals(
                            0f,
                            actual[index],
                            what + ": fully masked row " + row + " must be zeros; " + data);
                } else {
                    double error = Math.abs(actual[index] - expected.out[index]);
                    if (!(error <= tolerance)) {
                        throw new AssertionError(
                                String.format(
                                        "%s: element %d (row %d) is %s, float64 says %s (error %.3g"
                                                + " > %.3g); %s",
                                        what,
                                        index,
                                        row,
                                        actual[index],
                                        expected.out[index],
                                        error,
                                        tolerance,
                                        data));
                    }
                }
            }
        }
        boolean expectsMaskedRows =
                data.c.qLen() > data.c.kvLen() && data.c.causal()
                        || data.c.mask() == KeyMask.VALID_LENGTHS && data.c.batch() >= 3
                        || data.c.mask() == KeyMask.BOOLEAN_PADDING && data.c.batch() >= 2;
        if (expectsMaskedRows) {
            assertTrue(maskedRows > 0, "the case was meant to contain fully masked rows: " + data);
        }
    }

    private static void assertLogSumExp(
            AttentionTestData data, NDArray lse, NaiveAttention.Result expected, String what) {
        assertEquals(
                new Shape(data.c.batch(), data.c.heads(), data.c.qLen()), lse.getShape(), what);
        assertEquals(DataType.FLOAT32, lse.getDataType());
        float[] actual = lse.toFloatArray();
        for (int row = 0; row < actual.length; ++row) {
            double want = expected.lse[row];
            if (want == Double.NEGATIVE_INFINITY) {
                assertEquals(Float.NEGATIVE_INFINITY, actual[row], what + " lse row " + row);
            } else {
                assertEquals(
                        want,
                        actual[row],
                        FP32_RELATIVE_TOLERANCE * Math.max(1.0, Math.abs(want)),
                        what + " lse row " + row + " " + data);
            }
        }
    }

    /**
     * FlashAttention's rule: the fused result may be at most twice as far from float64 as the naive
     * computation in the same precision.
     */
    private static void assertWithinTwiceNaive(
            AttentionTestData data, float[] actual, Precision precision, Tilewise.Isa isa) {
        NaiveAttention.Result exact = NaiveAttention.compute(data.problem, Precision.FLOAT64);
        NaiveAttention.Result naive = NaiveAttention.compute(data.problem, precision);
        double fusedError = 0;
        double naiveError = 0;
        for (int i = 0; i < actual.length; ++i) {
            fusedError = Math.max(fusedError, Math.abs(actual[i] - exact.out[i]));
            naiveError = Math.max(naiveError, Math.abs(naive.out[i] - exact.out[i]));
        }
        assertTrue(naiveError > 0, "the naive " + precision + " computation must have an error");
        assertTrue(
                fusedError <= 2 * naiveError,
                String.format(
                        "%s %s: fused error %.3g exceeds twice the naive %s error %.3g; %s",
                        isa, precision, fusedError, precision, naiveError, data));
    }
}
