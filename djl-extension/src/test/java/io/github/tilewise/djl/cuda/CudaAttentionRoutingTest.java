package io.github.tilewise.djl.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.when;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.NativeLibraryUnavailableException;
import io.github.tilewise.djl.attention.AttentionLayout;
import io.github.tilewise.djl.attention.AttentionOptions;
import io.github.tilewise.djl.attention.ComputePrecision;
import io.github.tilewise.djl.attention.FusedAttention;
import io.github.tilewise.djl.jni.CudaLibrary;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * {@link FusedAttention#forward} routes GPU arrays to {@link CudaAttention} and keeps CPU arrays on
 * the CPU path; the CUDA side maps DJL's {@link DataType} and the shared {@link AttentionOptions},
 * refusing by name what its kernel does not implement. GPU arrays are Mockito mocks (DJL's PyTorch
 * engine here is CPU-only), so these run without a GPU; the last test needs one and is skipped
 * elsewhere. It runs on a machine with Java, Maven, nvcc and an NVIDIA GPU: {@code mvn -B verify
 * -pl native,djl-extension -Dtilewise.cuda.build=ON -Dtest='Cuda*'
 * -Dsurefire.failIfNoSpecifiedTests=false}.
 */
class CudaAttentionRoutingTest {

    /**
     * Every public getter of AttentionOptions that {@link CudaAttention} handles (maps or refuses).
     */
    private static final Set<String> HANDLED_OPTIONS =
            Set.of(
                    "getLayout",
                    "getScale",
                    "isCausal",
                    "getKeyValidLengths",
                    "getKeyPaddingMask",
                    "getBias",
                    "getComputePrecision",
                    "hasSlidingWindow",
                    "getWindowLeft",
                    "getWindowRight",
                    "getRelativeBias",
                    "getRelativeBiasRadius");

    private static NDArray onGpu(DataType type, long... shape) {
        NDArray array = mock(NDArray.class);
        when(array.getDevice()).thenReturn(Device.gpu());
        when(array.getDataType()).thenReturn(type);
        when(array.getShape()).thenReturn(new Shape(shape));
        return array;
    }

    private static AttentionOptions defaults() {
        return AttentionOptions.builder().build();
    }

    private static <T extends Throwable> void assertThrowsMentioning(
            Class<T> type, Executable call, String... fragments) {
        T e = assertThrows(type, call);
        for (String fragment : fragments) {
            assertTrue(
                    e.getMessage().contains(fragment),
                    "message '" + e.getMessage() + "' should mention '" + fragment + "'");
        }
    }

    @Test
    void dataTypesMapToTheKernelsCodes() {
        assertEquals(1, CudaAttention.dtypeCode(DataType.FLOAT16));
        assertEquals(2, CudaAttention.dtypeCode(DataType.BFLOAT16));
        for (DataType type : DataType.values()) {
            if (type != DataType.FLOAT16 && type != DataType.BFLOAT16) {
                assertThrowsMentioning(
                        UnsupportedOperationException.class,
                        () -> CudaAttention.dtypeCode(type),
                        type.name());
            }
        }
        assertThrowsMentioning(
                UnsupportedOperationException.class,
                () ->
                        CudaAttention.builder()
                                .setDataType(DataType.FLOAT32)
                                .setShape(1, 1, 1, 1, 1, 64)
                                .build(),
                "FLOAT32");
        try (CudaAttention a =
                CudaAttention.builder()
                        .setDataType(DataType.BFLOAT16)
                        .setShape(1, 1, 1, 1, 1, 128)
                        .build()) {
            assertEquals(DataType.BFLOAT16, a.getDataType());
        }
    }

    @Test
    void unsupportedOptionsAreRefusedByName() {
        NDArray mask = mock(NDArray.class);
        NDArray bias = mock(NDArray.class);
        Object[][] cases = {
            {AttentionOptions.builder().optKeyPaddingMask(mask).build(), "keyPaddingMask"},
            {AttentionOptions.builder().optBias(bias).build(), "bias"},
            {
                AttentionOptions.builder().optComputePrecision(ComputePrecision.BF16).build(),
                "computePrecision BF16"
            },
            {AttentionOptions.builder().optScale(-0.5f).build(), "scale -0.5"},
            {AttentionOptions.builder().optScale(0f).build(), "scale 0.0"},
        };
        for (Object[] c : cases) {
            AttentionOptions options = (AttentionOptions) c[0];
            String name = (String) c[1];
            // The buffer API's builder and the NDArray route (through FusedAttention) alike.
            assertThrowsMentioning(
                    UnsupportedOperationException.class,
                    () ->
                            CudaAttention.builder()
                                    .setDataType(DataType.FLOAT16)
                                    .setShape(2, 4, 2, 8, 8, 64)
                                    .optOptions(options)
                                    .build(),
                    name,
                    "CUDA");
            assertThrowsMentioning(
                    UnsupportedOperationException.class,
                    () ->
                            FusedAttention.forward(
                                    onGpu(DataType.FLOAT16, 2, 4, 8, 64),
                                    onGpu(DataType.FLOAT16, 2, 2, 8, 64),
                                    onGpu(DataType.FLOAT16, 2, 2, 8, 64),
                                    options),
                    name,
                    "CUDA");
        }
    }

    /** A new option added to AttentionOptions must be mapped or refused on the GPU, not ignored. */
    @Test
    void everyAttentionOptionIsHandledByCudaAttention() {
        for (Method m : AttentionOptions.class.getDeclaredMethods()) {
            if (Modifier.isPublic(m.getModifiers())
                    && !Modifier.isStatic(m.getModifiers())
                    && !HANDLED_OPTIONS.contains(m.getName())) {
                fail(
                        "AttentionOptions."
                                + m.getName()
                                + " is new: support it in CudaAttention or refuse it in"
                                + " CudaAttention.requireSupported, then add it to this test");
            }
        }
    }

    @Test
    void gpuArraysAreCheckedBeforeCudaIsNeeded() {
        NDArray q = onGpu(DataType.FLOAT16, 2, 4, 8, 64);
        NDArray kv = onGpu(DataType.FLOAT16, 2, 2, 8, 64);
        assertThrowsMentioning(
                UnsupportedOperationException.class,
                () ->
                        FusedAttention.forward(
                                onGpu(DataType.FLOAT32, 2, 4, 8, 64),
                                onGpu(DataType.FLOAT32, 2, 2, 8, 64),
                                onGpu(DataType.FLOAT32, 2, 2, 8, 64),
                                null),
                "FLOAT32",
                "toType(DataType.FLOAT16");
        assertThrowsMentioning(
                UnsupportedOperationException.class,
                () ->
                        FusedAttention.forward(
                                onGpu(DataType.BFLOAT16, 2, 4, 8, 64),
                                onGpu(DataType.BFLOAT16, 2, 2, 8, 64),
                                onGpu(DataType.BFLOAT16, 2, 2, 8, 64),
                                null),
                "BFLOAT16",
                "buffer API");
        assertThrowsMentioning(
                UnsupportedOperationException.class,
                () ->
                        FusedAttention.forward(
                                onGpu(DataType.FLOAT16, 2, 4, 8, 96),
                                onGpu(DataType.FLOAT16, 2, 2, 8, 96),
                                onGpu(DataType.FLOAT16, 2, 2, 8, 96),
                                null),
                "head dimensions 64 and 128, got 96");
        assertThrowsMentioning(
                IllegalArgumentException.class,
                () -> FusedAttention.forward(q, onGpu(DataType.FLOAT16, 2, 3, 8, 64), kv, null),
                "k and v one shape");
        assertThrowsMentioning(
                IllegalArgumentException.class,
                () -> FusedAttention.forward(q, kv, onGpu(DataType.FLOAT32, 2, 2, 8, 64), null),
                "one data type");
        NDArray cpu = mock(NDArray.class);
        when(cpu.getDevice()).thenReturn(Device.cpu());
        assertThrowsMentioning(
                IllegalArgumentException.class,
                () -> FusedAttention.forward(q, cpu, kv, null),
                "k is on cpu()",
                "q on gpu(0)");
        assertThrowsMentioning(
                IllegalArgumentException.class,
                () -> FusedAttention.forward(q, null, kv, null),
                "k must not be null");
        AttentionOptions tooLong =
                AttentionOptions.builder().optKeyValidLengths(new int[] {3, 9}).build();
        assertThrowsMentioning(
                IllegalArgumentException.class,
                () -> FusedAttention.forward(q, kv, kv, tooLong),
                "keyValidLengths[1] = 9");
        // [B, S, H, D]: q 4 heads of 8 rows, k/v 2 heads of 8 rows, read along the other axes.
        AttentionOptions seqMajor =
                AttentionOptions.builder().optLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM).build();
        assertThrowsMentioning(
                IllegalArgumentException.class,
                () ->
                        FusedAttention.forward(
                                onGpu(DataType.FLOAT16, 2, 8, 4, 64),
                                onGpu(DataType.FLOAT16, 2, 8, 3, 64),
                                onGpu(DataType.FLOAT16, 2, 8, 3, 64),
                                seqMajor),
                "kvHeads (3) must divide qHeads (4)");
    }

    @Test
    void withoutCudaGpuArraysFailNamingTheReason() {
        assumeFalse(CudaLibrary.isAvailable(), "a GPU is present");
        NDArray q = onGpu(DataType.FLOAT16, 2, 4, 8, 64);
        NDArray kv = onGpu(DataType.FLOAT16, 2, 2, 8, 64);
        AttentionOptions options =
                AttentionOptions.builder()
                        .optCausal(true)
                        .optKeyValidLengths(new int[] {8, 5})
                        .optScale(0.1f)
                        .build();
        for (Executable call :
                new Executable[] {
                    () -> FusedAttention.forward(q, kv, kv, options),
                    () -> CudaAttention.forward(q, kv, kv, options)
                }) {
            NativeLibraryUnavailableException e =
                    assertThrows(NativeLibraryUnavailableException.class, call);
            assertTrue(e.getMessage().contains(CudaLibrary.unavailableReason()), e.getMessage());
        }
    }

    @Test
    void cpuArraysKeepTheCpuPath() {
        try (NDManager manager = NDManager.newBaseManager(Device.cpu())) {
            NDArray q =
                    manager.randomNormal(new Shape(1, 2, 5, 64)).toType(DataType.FLOAT16, false);
            NDArray k =
                    manager.randomNormal(new Shape(1, 2, 7, 64)).toType(DataType.FLOAT16, false);
            NDArray v =
                    manager.randomNormal(new Shape(1, 2, 7, 64)).toType(DataType.FLOAT16, false);
            // The options CUDA refuses are fine on the CPU: this call never reaches CudaAttention.
            AttentionOptions options =
                    AttentionOptions.builder()
                            .optKeyPaddingMask(manager.ones(new Shape(1, 7), DataType.BOOLEAN))
                            .build();
            NDArray out = FusedAttention.forward(q, k, v, options);
            assertEquals(Device.cpu(), out.getDevice());
            assertEquals(q.getShape(), out.getShape());
            assertEquals(DataType.FLOAT16, out.getDataType());
        }
    }

    /**
     * The NDArray form on a GPU against the CPU operator: CPU FLOAT16 arrays, so that a DJL PyTorch
     * engine without CUDA suffices (the staging from GPU arrays is the same code after one {@code
     * toDevice}). Skipped without a usable GPU.
     */
    @Test
    void onGpuNdArraysMatchTheCpuOperator() {
        assumeTrue(CudaLibrary.isAvailable(), () -> "no GPU: " + CudaLibrary.unavailableReason());
        try (NDManager manager = NDManager.newBaseManager(Device.cpu())) {
            for (AttentionLayout layout : AttentionLayout.values()) {
                boolean headsFirst = layout == AttentionLayout.BATCH_HEADS_SEQ_DIM;
                Shape qShape = headsFirst ? new Shape(2, 4, 70, 128) : new Shape(2, 70, 4, 128);
                Shape kShape = headsFirst ? new Shape(2, 2, 90, 128) : new Shape(2, 90, 2, 128);
                NDArray q = manager.randomNormal(qShape).toType(DataType.FLOAT16, false);
                NDArray k = manager.randomNormal(kShape).toType(DataType.FLOAT16, false);
                NDArray v = manager.randomNormal(kShape).toType(DataType.FLOAT16, false);
                AttentionOptions options =
                        AttentionOptions.builder()
                                .optLayout(layout)
                                .optCausal(true)
                                .optKeyValidLengths(new int[] {90, 41})
                                .build();
                NDArray gpu = CudaAttention.forward(q, k, v, options);
                NDArray cpu = FusedAttention.forward(q, k, v, options);
                assertEquals(q.getShape(), gpu.getShape());
                assertEquals(DataType.FLOAT16, gpu.getDataType());
                assertEquals(Device.cpu(), gpu.getDevice());
                float[] g = gpu.toType(DataType.FLOAT32, false).toFloatArray();
                float[] c = cpu.toType(DataType.FLOAT32, false).toFloatArray();
                double err = 0;
                double norm = 0;
                for (int i = 0; i < c.length; i++) {
                    assertTrue(Float.isFinite(g[i]), "non-finite output at " + i);
                    err += (g[i] - c[i]) * (double) (g[i] - c[i]);
                    norm += c[i] * (double) c[i];
                }
                assertTrue(
                        Math.sqrt(err / norm) < 5e-3,
                        layout + ": relative error " + Math.sqrt(err / norm));
            }
        }
    }
}
