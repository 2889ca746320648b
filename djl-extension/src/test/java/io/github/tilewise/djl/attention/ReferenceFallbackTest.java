package io.github.tilewise.djl.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.attention.AttentionTestData.Bias;
import io.github.tilewise.djl.attention.AttentionTestData.Case;
import io.github.tilewise.djl.attention.AttentionTestData.KeyMask;
import io.github.tilewise.djl.attention.NaiveAttention.Precision;
import org.junit.jupiter.api.Test;

/**
 * Without the native library ({@code -Dtilewise.native=false}, set by the {@code
 * reference-fallback} surefire execution that runs this class alone), {@link FusedAttention} still
 * answers, through {@link ReferenceAttention}.
 */
class ReferenceFallbackTest {

    @Test
    void fusedAttentionFallsBackToTheReference() {
        assertFalse(Tilewise.isNativeAvailable(), "run with -Dtilewise.native=false");
        assertTrue(Tilewise.describe().contains("not loaded"), Tilewise.describe());
        Case c =
                new Case(3, 4, 2, 21, 30, 64, true)
                        .with(KeyMask.VALID_LENGTHS)
                        .with(Bias.QUERY_KEYS)
                        .with(AttentionLayout.BATCH_SEQ_HEADS_DIM);
        AttentionTestData data = new AttentionTestData(c, System.nanoTime(), false);
        try (NDManager manager = NDManager.newBaseManager()) {
            NDList result =
                    FusedAttention.forwardWithLogSumExp(
                            data.q(manager, DataType.FLOAT32),
                            data.k(manager, DataType.FLOAT32),
                            data.v(manager, DataType.FLOAT32),
                            data.options(manager).build());
            NaiveAttention.Result expected =
                    NaiveAttention.compute(data.problem, Precision.FLOAT64);
            float[] out = data.outputOf(result.get(0));
            float[] lse = result.get(1).toFloatArray();
            for (int i = 0; i < out.length; ++i) {
                assertEquals(expected.out[i], out[i], 2e-5, "output element " + i + " " + data);
            }
            for (int i = 0; i < lse.length; ++i) {
                assertEquals(
                        expected.lse[i], lse[i], 2e-5 * Math.max(1, Math.abs(expected.lse[i])));
            }
        }
    }

    @Test
    void packedQkvFallsBackToo() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray qkv = manager.randomNormal(new ai.djl.ndarray.types.Shape(2, 9, 3 * 2 * 16));
            NDArray packed = qkv.reshape(2, 9, 3, 2, 16);
            AttentionOptions options =
                    AttentionOptions.builder()
                            .optLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM)
                            .optCausal(true)
                            .build();
            NDArray expected =
                    ReferenceAttention.forward(
                            packed.get(":, :, 0"),
                            packed.get(":, :, 1"),
                            packed.get(":, :, 2"),
                            options);
            NDArray actual = FusedAttention.forwardPackedQkv(qkv, 2, options);
            assertEquals(expected.getShape(), actual.getShape());
            assertTrue(expected.allClose(actual, 1e-6, 1e-6, false));
        }
    }
}
