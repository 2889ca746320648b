package io.github.tilewise.djl.encoder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import io.github.tilewise.djl.encoder.linear.LinearOperator;
import io.github.tilewise.djl.encoder.linear.PackedLinear;
import io.github.tilewise.djl.encoder.linear.SharedInputLinear;
import io.github.tilewise.djl.lowp.ConversionReport;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Query, key and value fused into one packed projection ({@link SharedInputLinear}) must give what
 * three separate projections in the same precision give: each output column is the same dot
 * product, so the encoders agree to rounding; and the parts still work one at a time.
 */
class SharedProjectionTest {

    @ParameterizedTest
    @EnumSource(
            value = Precision.class,
            names = {"INT8", "BF16", "FP16", "INT8_WEIGHT_ONLY"})
    void fusedProjectionMatchesSeparateProjections(Precision precision) throws Exception {
        EncoderConfig config = BertEncoderTest.config(48, 3, 2, 80, 40, 2, "gelu", false, 0);
        EncoderCheckpoint checkpoint = RandomCheckpoint.create(config, 77);
        int[] lengths = {7, 1, 13, 4};
        int batch = lengths.length;
        int seq = 13;
        Random random = new Random(5);
        long[] ids = new long[batch * seq];
        long[] mask = new long[batch * seq];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < seq; t++) {
                ids[b * seq + t] = random.nextInt(config.getVocabSize());
                mask[b * seq + t] = t < lengths[b] ? 1 : 0;
            }
        }
        LowPrecisionConverter converter =
                LowPrecisionConverter.builder().setPrecision(precision).build();
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            TextEncoderBlock fused = checkpoint.createBlock(manager, Pooling.MEAN, false);
            TextEncoderBlock separate = checkpoint.createBlock(manager, Pooling.MEAN, false);
            ConversionReport report = converter.convert(fused);
            // A factory that only knows create(...): every projection on its own.
            separate.getEncoder().replaceLinearOperators(converter::create);
            separate.getEncoder().setAttentionPrecision(fused.getEncoder().getAttentionPrecision());

            for (BertLayer layer : List.of(((BertEncoder) fused.getEncoder()).getLayers().get(0))) {
                List<LinearBlock> qkv = layer.getAttentionProjections();
                SharedInputLinear group =
                        SharedInputLinear.of(
                                qkv.get(0).getOperator(),
                                qkv.get(1).getOperator(),
                                qkv.get(2).getOperator());
                assertNotNull(group, "query, key and value share one operator");
                assertEquals(3 * 48, group.totalWidth());
                assertTrue(group.getFused() instanceof PackedLinear);
            }
            assertNull(
                    SharedInputLinear.groupOf(
                            separate.getEncoder().getLinearBlocks().get(0).getOperator()));
            ConversionReport.Layer query = report.getLayers().get(0);
            assertEquals(precision, query.getPrecision());
            assertTrue(query.getOperator().contains("part 1 of 3"), query.getOperator());

            NDList in = BertEncoderTest.inputs(manager, ids, mask, null, batch, seq);
            float[] a =
                    fused.run(in.get(0), in.get(1), null)
                            .get(BertEncoder.LAST_HIDDEN_STATE)
                            .toFloatArray();
            float[] b =
                    separate.run(in.get(0), in.get(1), null)
                            .get(BertEncoder.LAST_HIDDEN_STATE)
                            .toFloatArray();
            assertEquals(a.length, b.length);
            double worst = 0;
            for (int i = 0; i < a.length; i++) {
                worst = Math.max(worst, Math.abs(a[i] - b[i]));
            }
            assertTrue(worst < 1e-4, precision + ": fused vs separate differ by " + worst);

            // A part used alone computes its own layer (the key: the middle slice).
            LinearBlock fusedKey = fused.getEncoder().getLinearBlocks().get(1);
            LinearBlock separateKey = separate.getEncoder().getLinearBlocks().get(1);
            NDArray x = manager.randomNormal(new Shape(5, 48));
            NDArray r = manager.randomNormal(new Shape(5, 48));
            float[] alone = fusedKey.apply(x, r).toFloatArray();
            float[] reference = separateKey.apply(x, r).toFloatArray();
            for (int i = 0; i < alone.length; i++) {
                assertEquals(reference[i], alone[i], 1e-4, "key part, element " + i);
            }
            // A residual that would broadcast is refused, not silently added.
            NDArray narrow = manager.randomNormal(new Shape(5, 1));
            IllegalArgumentException e =
                    assertThrows(IllegalArgumentException.class, () -> fusedKey.apply(x, narrow));
            assertTrue(e.getMessage().contains("residual has shape (5, 1)"), e.getMessage());

            // Resetting the operators closes the fused weights once all three parts are gone.
            PackedLinear weights =
                    (PackedLinear) SharedInputLinear.groupOf(fusedKey.getOperator()).getFused();
            fused.resetLinearOperators();
            assertTrue(weights.getWeights().isClosed(), "fused weights freed with the parts");
        }
    }

    /**
     * The whole low-precision path (fused projections, linear + residual + LayerNorm in one kernel
     * pass, bf16 attention where the CPU has it) against the float64 reference encoder: every token
     * vector keeps its direction.
     */
    @ParameterizedTest
    @EnumSource(
            value = Precision.class,
            names = {"INT8", "BF16", "FP16", "INT8_WEIGHT_ONLY"})
    void convertedEncoderStaysCloseToFloat64(Precision precision) throws Exception {
        EncoderConfig config = BertEncoderTest.config(64, 4, 2, 96, 40, 0, "gelu", false, 0);
        EncoderCheckpoint checkpoint = RandomCheckpoint.create(config, 123);
        NaiveBert naive = NaiveBert.of(checkpoint);
        int seq = 23;
        Random random = new Random(99);
        long[] ids = new long[seq];
        for (int t = 0; t < seq; t++) {
            ids[t] = random.nextInt(config.getVocabSize());
        }
        double[][] ref = naive.encode(ids, new long[seq]);
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            TextEncoderBlock block = checkpoint.createBlock(manager, Pooling.MEAN, false);
            LowPrecisionConverter.builder().setPrecision(precision).build().convert(block);
            NDList in = BertEncoderTest.inputs(manager, ids, new long[seq], null, 1, seq);
            in.set(1, manager.ones(new Shape(1, seq), ai.djl.ndarray.types.DataType.INT64));
            float[] hidden =
                    block.run(in.get(0), in.get(1), null)
                            .get(BertEncoder.LAST_HIDDEN_STATE)
                            .toFloatArray();
            int h = config.getHiddenSize();
            double worst = 1;
            for (int t = 0; t < seq; t++) {
                double dot = 0;
                double a2 = 0;
                double b2 = 0;
                for (int c = 0; c < h; c++) {
                    dot += ref[t][c] * hidden[t * h + c];
                    a2 += ref[t][c] * ref[t][c];
                    b2 += hidden[t * h + c] * (double) hidden[t * h + c];
                }
                worst = Math.min(worst, dot / Math.sqrt(a2 * b2));
            }
            double bound = precision == Precision.INT8 ? 0.99 : 0.999;
            assertTrue(worst >= bound, precision + ": worst token cosine " + worst);
        }
    }

    @ParameterizedTest
    @EnumSource(
            value = Precision.class,
            names = {"INT8"})
    void mixedPrecisionsAreNotFused(Precision precision) throws Exception {
        EncoderConfig config = BertEncoderTest.config(32, 4, 1, 48, 12, 0, "gelu", false, 0);
        EncoderCheckpoint checkpoint = RandomCheckpoint.create(config, 3);
        LowPrecisionConverter converter =
                LowPrecisionConverter.builder()
                        .setPrecision(precision)
                        .optLayerPrecision(".*attention\\.self\\.key", Precision.BF16)
                        .build();
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            TextEncoderBlock block = checkpoint.createBlock(manager, Pooling.MEAN, false);
            converter.convert(block);
            List<LinearBlock> qkv =
                    ((BertEncoder) block.getEncoder()).getLayers().get(0).getAttentionProjections();
            LinearOperator key = qkv.get(1).getOperator();
            assertNull(SharedInputLinear.groupOf(key));
            assertEquals(Precision.BF16, ((PackedLinear) key).getPrecision());
            assertThrows(IllegalArgumentException.class, () -> new SharedInputLinear(key, 4, 0));
        }
    }
}
