package io.github.tilewise.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.attention.AttentionLayout;
import io.github.tilewise.djl.attention.AttentionOptions;
import io.github.tilewise.djl.attention.FusedAttention;
import io.github.tilewise.it.bench.AttentionCase;
import io.github.tilewise.it.bench.OrtMultiHeadAttention;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Tilewise's fused attention against an independent implementation, ONNX Runtime's {@code
 * com.microsoft.MultiHeadAttention}, on the benchmark's own inputs: plain, causal and padded.
 */
class FusedAttentionVsOnnxRuntimeTest {

    @ParameterizedTest(name = "N={0} {1}")
    @CsvSource({"100,plain", "77,causal", "96,padded", "300,causal"})
    void matchesOnnxRuntime(int n, String variant) throws Exception {
        assertTrue(Tilewise.isNativeAvailable(), Tilewise.describe());
        AttentionCase c =
                variant.equals("padded")
                        ? AttentionCase.padded(4, n, 64)
                        : AttentionCase.single(4, n, 64, variant.equals("causal"));
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(c.batch, n, c.heads, c.headDim);
            NDArray q = manager.randomNormal(shape);
            NDArray k = manager.randomNormal(shape);
            NDArray v = manager.randomNormal(shape);
            AttentionOptions.Builder options =
                    AttentionOptions.builder()
                            .optLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM)
                            .optCausal(c.causal);
            IntBuffer mask = null;
            if (c.isPadded()) {
                int[] lengths = c.validLengths();
                int[] flat = new int[c.batch * n];
                for (int b = 0; b < c.batch; ++b) {
                    for (int j = 0; j < lengths[b]; ++j) {
                        flat[b * n + j] = 1;
                    }
                }
                mask =
                        ByteBuffer.allocateDirect(4 * flat.length)
                                .order(ByteOrder.nativeOrder())
                                .asIntBuffer();
                mask.put(flat).rewind();
                options.optKeyPaddingMask(manager.create(flat, new Shape(c.batch, n)));
            }
            float[] ours = FusedAttention.forward(q, k, v, options.build()).toFloatArray();
            float[] theirs;
            try (OrtMultiHeadAttention ort =
                    new OrtMultiHeadAttention(
                            c,
                            c.causal,
                            q.toByteBuffer(true).asFloatBuffer(),
                            k.toByteBuffer(true).asFloatBuffer(),
                            v.toByteBuffer(true).asFloatBuffer(),
                            mask,
                            2)) {
                theirs = ort.runAndRead();
            }
            assertEquals(ours.length, theirs.length);
            double maxError = 0;
            for (int i = 0; i < ours.length; ++i) {
                maxError = Math.max(maxError, Math.abs(ours[i] - theirs[i]));
            }
            // Both are fp32 with fp32 accumulation; outputs are O(1).
            assertTrue(maxError < 2e-5, "max |tilewise - onnxruntime| = " + maxError);
        }
    }
}
