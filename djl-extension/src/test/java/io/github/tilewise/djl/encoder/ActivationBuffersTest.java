package io.github.tilewise.djl.encoder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.encoder.linear.LinearOperator;
import io.github.tilewise.djl.jni.SharedMemory;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Activation buffers kept from forward to forward: lent views share the slot's memory, outputs
 * equal those computed with new arrays whatever the order of batch sizes, concurrent forwards on
 * one encoder do not disturb each other, and closing frees the buffers.
 */
class ActivationBuffersTest {

    @AfterEach
    void restore() {
        System.clearProperty("tilewise.activationBuffers");
        System.clearProperty("tilewise.packed");
    }

    @Test
    void lentViewsAreTheSlotsMemory() {
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            ActivationBuffers.Pool pool = new ActivationBuffers.Pool();
            NDArray like = manager.create(new float[] {1f});
            ActivationBuffers buffers = pool.acquire(like);
            assertNotNull(buffers);
            LinearOperator writes = writingOperator();
            NDArray x = manager.zeros(new Shape(3, 5, 8));
            NDArray first = ActivationBuffers.lend(buffers, ActivationBuffers.HIDDEN, writes, x, 4);
            assertEquals(new Shape(3, 5, 4), first.getShape());
            assertEquals(manager, first.getManager(), "attached to the input's manager");
            FloatBuffer through = SharedMemory.of(first, "first", null).asFloatBuffer();
            for (int i = 0; i < 60; i++) {
                through.put(i, i);
            }
            first.close();
            NDArray again =
                    ActivationBuffers.lend(
                            buffers, ActivationBuffers.HIDDEN, writes, x.get("0:2"), 6);
            float[] seen = again.toFloatArray();
            for (int i = 0; i < seen.length; i++) {
                assertEquals(i, seen[i], "the slot's first floats, as written through the view");
            }
            assertNull(ActivationBuffers.lend(buffers, -1, writes, x, 4), "no slot: a new array");
            assertNull(
                    ActivationBuffers.lend(buffers, 0, readOnlyOperator(), x, 4),
                    "an operator that would not write into it borrows nothing");
            assertTrue(buffers.heldBytes() >= 60 * 4);
            pool.release(buffers);
            assertTrue(pool.acquire(like) == buffers, "idle buffers are lent again");
            pool.release(buffers);
            pool.close();
            assertEquals(0, buffers.heldBytes(), "closing the pool frees idle buffers");
            assertNull(pool.acquire(like), "a closed pool lends nothing");
        }
    }

    @Test
    void theCapLimitsWhatIsKept() {
        System.setProperty("tilewise.activationBuffers", "0");
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            ActivationBuffers.Pool pool = new ActivationBuffers.Pool();
            assertNull(pool.acquire(manager.create(1f)), "0 turns the reuse off");
            System.setProperty("tilewise.activationBuffers", "1");
            ActivationBuffers buffers = pool.acquire(manager.create(1f));
            NDArray big = manager.zeros(new Shape(1024, 512));
            assertNull(
                    ActivationBuffers.lend(buffers, 0, writingOperator(), big, 512),
                    "2 MiB past a 1 MiB cap: a new array");
            assertNotNull(ActivationBuffers.lend(buffers, 0, writingOperator(), big, 128));
            pool.close();
            pool.release(buffers);
            assertEquals(0, buffers.heldBytes(), "given back after the close: freed");
        }
    }

    @Test
    void outputsEqualNewArraysAcrossSizesPrecisionsAndThreads() throws Exception {
        outputsEqualNewArrays(
                BertEncoderTest.config(48, 4, 3, 96, 64, 2, "gelu", true, 0), "true", "false");
    }

    /** ModernBERT: pre-norm layers (a residual slot), GeGLU rows, local and global attention. */
    @Test
    void modernBertOutputsEqualNewArrays() throws Exception {
        EncoderConfig config =
                EncoderConfig.builder()
                        .optArchitecture(EncoderArchitecture.MODERNBERT)
                        .setHiddenSize(48)
                        .setNumHeads(4)
                        .setNumLayers(4)
                        .setIntermediateSize(40)
                        .setMaxPositions(128)
                        .setVocabSize(97)
                        .optTypeVocabSize(0)
                        .optLayerNormEps(1e-5f)
                        .optActivation(HiddenActivation.fromName("gelu"))
                        .optBiases(false, false)
                        .optRotary(160000f, 10000f, 8, new boolean[] {false, true, true, false})
                        .build();
        // ModernBERT always runs packed.
        outputsEqualNewArrays(config, "true");
    }

    private static void outputsEqualNewArrays(EncoderConfig config, String... packedModes)
            throws Exception {
        int[][] batches = {{40, 40}, {3, 17, 2}, {64, 64, 64}, {1}, {25, 9, 40, 2}};
        for (Precision precision : new Precision[] {Precision.FP32, Precision.INT8}) {
            for (String packed : packedModes) {
                System.setProperty("tilewise.packed", packed);
                try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
                    TextEncoderBlock block =
                            RandomCheckpoint.create(config, 11)
                                    .createBlock(manager, Pooling.MEAN, false);
                    if (precision != Precision.FP32) {
                        LowPrecisionConverter.builder()
                                .setPrecision(precision)
                                .build()
                                .convert(block);
                    }
                    TransformerEncoder encoder = block.getEncoder();
                    System.setProperty("tilewise.activationBuffers", "0");
                    List<float[]> fresh = new ArrayList<>();
                    for (int[] lengths : batches) {
                        fresh.add(hidden(encoder, manager, config, lengths));
                    }
                    System.clearProperty("tilewise.activationBuffers");
                    String what = precision + " packed=" + packed;
                    for (int round = 0; round < 2; round++) {
                        for (int i = 0; i < batches.length; i++) {
                            assertArrayEquals(
                                    fresh.get(i),
                                    hidden(encoder, manager, config, batches[i]),
                                    1e-6f,
                                    what + " batch " + i + " round " + round);
                        }
                    }
                    ExecutorService pool = Executors.newFixedThreadPool(4);
                    try {
                        List<Future<?>> calls = new ArrayList<>();
                        for (int t = 0; t < 4; t++) {
                            int offset = t;
                            calls.add(
                                    pool.submit(
                                            () -> {
                                                for (int r = 0; r < 10; r++) {
                                                    int i = (r + offset) % batches.length;
                                                    assertArrayEquals(
                                                            fresh.get(i),
                                                            hidden(
                                                                    encoder,
                                                                    manager,
                                                                    config,
                                                                    batches[i]),
                                                            1e-6f,
                                                            what + " concurrent batch " + i);
                                                }
                                                return null;
                                            }));
                        }
                        for (Future<?> call : calls) {
                            call.get();
                        }
                    } finally {
                        pool.shutdown();
                    }
                    encoder.close();
                    assertThrows(
                            IllegalStateException.class,
                            () -> hidden(encoder, manager, config, batches[0]));
                }
            }
        }
    }

    /** The hidden states of texts of the given lengths, right-padded into one batch. */
    private static float[] hidden(
            TransformerEncoder encoder, NDManager manager, EncoderConfig config, int[] lengths) {
        int batch = lengths.length;
        int seq = 0;
        for (int n : lengths) {
            seq = Math.max(seq, n);
        }
        Random random = new Random(31L * batch + seq);
        long[] ids = new long[batch * seq];
        long[] mask = new long[batch * seq];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < lengths[b]; t++) {
                ids[b * seq + t] = random.nextInt(config.getVocabSize());
                mask[b * seq + t] = 1;
            }
        }
        try (NDManager scope = manager.newSubManager()) {
            Shape shape = new Shape(batch, seq);
            NDList out = encoder.encode(scope.create(ids, shape), scope.create(mask, shape), null);
            return out.get(0).toFloatArray();
        }
    }

    private static LinearOperator writingOperator() {
        return new LinearOperator() {
            @Override
            public NDArray forward(NDArray x, NDArray residual) {
                throw new UnsupportedOperationException();
            }

            @Override
            public boolean writesInto() {
                return true;
            }

            @Override
            public String describe() {
                return "writes";
            }
        };
    }

    private static LinearOperator readOnlyOperator() {
        return new LinearOperator() {
            @Override
            public NDArray forward(NDArray x, NDArray residual) {
                throw new UnsupportedOperationException();
            }

            @Override
            public String describe() {
                return "allocates";
            }
        };
    }
}
