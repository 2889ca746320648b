package io.github.tilewise.djl.attention;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.Mockito.RETURNS_DEEP_STUBS;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.when;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * Bad calls of {@link FusedAttention} (and of {@link ReferenceAttention}, which shares the checks)
 * are Java exceptions naming the problem, thrown before native code runs.
 */
class FusedAttentionValidationTest {

    private NDManager manager;
    private NDArray q;
    private NDArray k;
    private NDArray v;

    @BeforeEach
    void createInputs() {
        manager = NDManager.newBaseManager();
        q = manager.randomNormal(new Shape(2, 4, 10, 32));
        k = manager.randomNormal(new Shape(2, 2, 12, 32));
        v = manager.randomNormal(new Shape(2, 2, 12, 32));
    }

    @AfterEach
    void close() {
        manager.close();
    }

    private static AttentionOptions defaults() {
        return AttentionOptions.builder().build();
    }

    /** Asserts both operators throw {@code type} with a message containing every fragment. */
    private static <T extends Throwable> void assertRejected(
            Class<T> type, Executable fused, Executable reference, String... fragments) {
        for (Executable call : new Executable[] {fused, reference}) {
            T e = assertThrows(type, call);
            for (String fragment : fragments) {
                assertTrue(
                        e.getMessage().contains(fragment),
                        "message '" + e.getMessage() + "' should mention '" + fragment + "'");
            }
        }
    }

    private void assertRejected(
            NDArray q, NDArray k, NDArray v, AttentionOptions options, String... fragments) {
        assertRejected(
                IllegalArgumentException.class,
                () -> FusedAttention.forward(q, k, v, options),
                () -> ReferenceAttention.forward(q, k, v, options),
                fragments);
    }

    @Test
    void validCallPasses() {
        FusedAttention.forward(q, k, v, defaults());
        ReferenceAttention.forward(q, k, v, defaults());
    }

    @Test
    void nullArrays() {
        assertRejected(null, k, v, defaults(), "q must not be null");
        assertRejected(q, null, v, defaults(), "k must not be null");
        assertRejected(q, k, null, defaults(), "v must not be null");
    }

    @Test
    void wrongRank() {
        assertRejected(manager.zeros(new Shape(4, 10, 32)), k, v, defaults(), "q", "rank 3");
        assertRejected(q, manager.zeros(new Shape(1, 2, 2, 12, 32)), v, defaults(), "k", "rank 5");
    }

    @Test
    void mismatchedShapes() {
        assertRejected(q, k, manager.zeros(new Shape(2, 2, 11, 32)), defaults(), "same shape");
        NDArray kBatch = manager.zeros(new Shape(3, 2, 12, 32));
        assertRejected(q, kBatch, kBatch, defaults(), "batch");
        NDArray kDim = manager.zeros(new Shape(2, 2, 12, 16));
        assertRejected(q, kDim, kDim, defaults(), "head dimensions");
        NDArray empty = manager.zeros(new Shape(2, 2, 0, 32));
        assertRejected(q, empty, empty, defaults(), "empty axis");
    }

    @Test
    void headCountThatDoesNotDivide() {
        NDArray k3 = manager.zeros(new Shape(2, 3, 12, 32));
        assertRejected(q, k3, k3, defaults(), "3 does not divide", "4");
        // The same arrays in the other layout read heads from axis 2: 10 / 12 do not divide.
        AttentionOptions bshd =
                AttentionOptions.builder().optLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM).build();
        assertRejected(q, k, v, bshd, "does not divide", "[batch, seq, heads, headDim]");
    }

    @Test
    void headDimensionAbove256() {
        NDArray big = manager.zeros(new Shape(1, 1, 4, 257));
        assertRejected(big, big, big, defaults(), "257", "256");
    }

    @Test
    void unsupportedAndMixedDataTypes() {
        NDArray qInt = q.toType(DataType.INT32, false);
        assertRejected(qInt, k, v, defaults(), "INT32", "FLOAT32 or FLOAT16");
        NDArray q64 = q.toType(DataType.FLOAT64, false);
        assertRejected(q64, k, v, defaults(), "FLOAT64");
        assertRejected(q, k.toType(DataType.FLOAT16, false), v, defaults(), "one data type");
        NDArray q16 = q.toType(DataType.FLOAT16, false);
        NDArray k16 = k.toType(DataType.FLOAT16, false);
        NDArray v16 = v.toType(DataType.FLOAT16, false);
        AttentionOptions bf16 =
                AttentionOptions.builder().optComputePrecision(ComputePrecision.BF16).build();
        assertRejected(q16, k16, v16, bf16, "BF16 compute precision needs FLOAT32");
    }

    @Test
    void closedArrays() {
        NDArray closed = manager.zeros(new Shape(2, 4, 10, 32));
        closed.close();
        assertRejected(
                IllegalStateException.class,
                () -> FusedAttention.forward(closed, k, v, defaults()),
                () -> ReferenceAttention.forward(closed, k, v, defaults()),
                "q has been closed");
        NDArray mask = manager.ones(new Shape(2, 12), DataType.BOOLEAN);
        mask.close();
        AttentionOptions options = AttentionOptions.builder().optKeyPaddingMask(mask).build();
        assertRejected(
                IllegalStateException.class,
                () -> FusedAttention.forward(q, k, v, options),
                () -> ReferenceAttention.forward(q, k, v, options),
                "keyPaddingMask has been closed");
    }

    @Test
    void nonCpuArray() {
        NDArray gpu = mock(NDArray.class);
        when(gpu.getDevice()).thenReturn(Device.gpu());
        // A GPU q routes forward to CudaAttention (CudaAttentionRoutingTest); a GPU k or v next to
        // a CPU q, and any GPU array of the reference, are refused here.
        assertRejected(q, gpu, v, defaults(), "k is on gpu(0)", "CPU");
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> ReferenceAttention.forward(gpu, k, v, defaults()));
        assertTrue(e.getMessage().contains("q is on gpu(0)"), e.getMessage());
    }

    @Test
    void otherEngine() {
        NDArray foreign = mock(NDArray.class, RETURNS_DEEP_STUBS);
        when(foreign.getDevice()).thenReturn(Device.cpu());
        when(foreign.getDataType()).thenReturn(DataType.FLOAT32);
        when(foreign.getShape()).thenReturn(new Shape(2, 2, 12, 32));
        when(foreign.getManager().getEngine().getEngineName()).thenReturn("OnnxRuntime");
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> FusedAttention.forward(q, foreign, foreign, defaults()));
        assertTrue(e.getMessage().contains("k belongs to the OnnxRuntime engine"), e.getMessage());
    }

    @Test
    void keyPaddingMaskOfWrongShapeOrType() {
        AttentionOptions wrongShape =
                AttentionOptions.builder()
                        .optKeyPaddingMask(manager.ones(new Shape(2, 10), DataType.BOOLEAN))
                        .build();
        assertRejected(q, k, v, wrongShape, "keyPaddingMask has shape (2, 10)", "(2, 12)");
        AttentionOptions wrongType =
                AttentionOptions.builder()
                        .optKeyPaddingMask(manager.ones(new Shape(2, 12)))
                        .build();
        assertRejected(q, k, v, wrongType, "keyPaddingMask has data type FLOAT32");
    }

    @Test
    void biasThatDoesNotBroadcast() {
        AttentionOptions wrongShape =
                AttentionOptions.builder().optBias(manager.zeros(new Shape(4, 10, 11))).build();
        assertRejected(q, k, v, wrongShape, "bias shape (4, 10, 11) does not broadcast");
        AttentionOptions tooManyAxes =
                AttentionOptions.builder()
                        .optBias(manager.zeros(new Shape(1, 2, 4, 10, 12)))
                        .build();
        assertRejected(q, k, v, tooManyAxes, "bias has rank 5");
        AttentionOptions wrongType =
                AttentionOptions.builder()
                        .optBias(manager.zeros(new Shape(10, 12), DataType.INT32))
                        .build();
        assertRejected(q, k, v, wrongType, "bias has data type INT32");
    }

    @Test
    void validLengthsOutOfRange() {
        assertRejected(
                q,
                k,
                v,
                AttentionOptions.builder().optKeyValidLengths(new int[] {12}).build(),
                "1 entries for a batch of 2");
        assertRejected(
                q,
                k,
                v,
                AttentionOptions.builder().optKeyValidLengths(new int[] {12, 13}).build(),
                "keyValidLengths[1] = 13 is outside [0, 12]");
        assertRejected(
                q,
                k,
                v,
                AttentionOptions.builder().optKeyValidLengths(new int[] {-1, 3}).build(),
                "keyValidLengths[0] = -1");
    }

    @Test
    void packedQkvOfTheWrongShape() {
        NDArray packed = manager.zeros(new Shape(2, 10, 3 * 4 * 32));
        FusedAttention.forwardPackedQkv(packed, 4, null); // the valid call
        assertThrows(
                IllegalArgumentException.class,
                () -> FusedAttention.forwardPackedQkv(null, 4, null));
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> FusedAttention.forwardPackedQkv(packed, 5, null));
        assertTrue(e.getMessage().contains("must split into 3 × 5 heads"), e.getMessage());
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> FusedAttention.forwardPackedQkv(packed, 0, null));
        assertTrue(e.getMessage().contains("heads must be positive"), e.getMessage());
        NDArray rank5 = manager.zeros(new Shape(2, 10, 2, 4, 32));
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> FusedAttention.forwardPackedQkv(rank5, 4, null));
        assertTrue(e.getMessage().contains("[batch, seq, 3, 4, headDim]"), e.getMessage());
        NDArray tooWide = manager.zeros(new Shape(1, 4, 3 * 300));
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> FusedAttention.forwardPackedQkv(tooWide, 1, null));
        assertTrue(e.getMessage().contains("300"), e.getMessage());
        NDArray ints = manager.zeros(new Shape(2, 10, 3 * 4 * 32), DataType.INT32);
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> FusedAttention.forwardPackedQkv(ints, 4, null));
        assertTrue(e.getMessage().contains("data type INT32"), e.getMessage());
        NDArray noTokens = manager.zeros(new Shape(2, 0, 3 * 4 * 32));
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> FusedAttention.forwardPackedQkv(noTokens, 4, null));
        assertTrue(e.getMessage().contains("empty axis"), e.getMessage());
        NDArray fp32 = manager.zeros(new Shape(2, 10, 3 * 4 * 32));
        AttentionOptions bf16Half =
                AttentionOptions.builder().optComputePrecision(ComputePrecision.BF16).build();
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                FusedAttention.forwardPackedQkv(
                                        fp32.toType(DataType.FLOAT16, false), 4, bf16Half));
        assertTrue(e.getMessage().contains("BF16 compute precision"), e.getMessage());
        NDArray closed = manager.zeros(new Shape(2, 10, 3 * 4 * 32));
        closed.close();
        assertThrows(
                IllegalStateException.class,
                () -> FusedAttention.forwardPackedQkv(closed, 4, null));
    }

    @Test
    void nonFiniteScaleAndNullSettings() {
        assertThrows(
                IllegalArgumentException.class,
                () -> AttentionOptions.builder().optScale(Float.NaN));
        assertThrows(
                IllegalArgumentException.class,
                () -> AttentionOptions.builder().optScale(Float.POSITIVE_INFINITY));
        assertThrows(
                IllegalArgumentException.class, () -> AttentionOptions.builder().optLayout(null));
        assertThrows(
                IllegalArgumentException.class,
                () -> AttentionOptions.builder().optComputePrecision(null));
    }
}
