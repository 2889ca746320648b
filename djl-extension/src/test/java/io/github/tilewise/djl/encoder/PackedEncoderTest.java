package io.github.tilewise.djl.encoder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A text's vectors do not depend on how it is batched: alone, in a padded batch computed padded
 * ({@code -Dtilewise.packed=false}), packed (the default), and packed in chunks of a few tokens
 * ({@code tilewise.packedTokens}), for every precision; packed rows equal the float64 reference of
 * each sequence on its own.
 */
class PackedEncoderTest {

    private static final int[] LENGTHS = {3, 1, 17, 2, 40, 9, 2, 25};

    @AfterEach
    void restore() {
        System.clearProperty("tilewise.packed");
        System.clearProperty("tilewise.packedTokens");
    }

    @Test
    void textsEmbedTheSameAlonePaddedPackedAndChunked() throws Exception {
        EncoderConfig config = BertEncoderTest.config(48, 4, 2, 96, 64, 2, "gelu", true, 0);
        EncoderCheckpoint checkpoint = RandomCheckpoint.create(config, 77);
        NaiveBert naive = NaiveBert.of(checkpoint);
        Random random = new Random(5);
        int batch = LENGTHS.length;
        int seq = Arrays.stream(LENGTHS).max().getAsInt();
        long[] ids = new long[batch * seq];
        long[] mask = new long[batch * seq];
        long[] types = new long[batch * seq];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < LENGTHS[b]; t++) {
                ids[b * seq + t] = random.nextInt(config.getVocabSize());
                types[b * seq + t] = random.nextInt(2);
                mask[b * seq + t] = 1;
            }
        }
        for (Precision precision :
                new Precision[] {Precision.FP32, Precision.INT8, Precision.BF16}) {
            try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
                TextEncoderBlock block = checkpoint.createBlock(manager, Pooling.MEAN, false);
                if (precision != Precision.FP32) {
                    LowPrecisionConverter.builder().setPrecision(precision).build().convert(block);
                }
                TransformerEncoder encoder = block.getEncoder();
                float[] packed = hidden(encoder, manager, ids, mask, types, batch, seq);
                System.setProperty("tilewise.packedTokens", "20");
                float[] chunked = hidden(encoder, manager, ids, mask, types, batch, seq);
                System.setProperty("tilewise.packed", "false");
                float[] padded = hidden(encoder, manager, ids, mask, types, batch, seq);
                System.clearProperty("tilewise.packed");
                System.clearProperty("tilewise.packedTokens");
                int h = config.getHiddenSize();
                double worstVsPadded = 0;
                double worstVsAlone = 0;
                double worstVsFloat64 = 0;
                for (int b = 0; b < batch; b++) {
                    long[] one = Arrays.copyOfRange(ids, b * seq, b * seq + LENGTHS[b]);
                    long[] oneTypes = Arrays.copyOfRange(types, b * seq, b * seq + LENGTHS[b]);
                    long[] oneMask = new long[LENGTHS[b]];
                    Arrays.fill(oneMask, 1);
                    float[] alone = hidden(encoder, manager, one, oneMask, oneTypes, 1, LENGTHS[b]);
                    double[][] ref = naive.encode(one, oneTypes);
                    for (int t = 0; t < LENGTHS[b]; t++) {
                        for (int c = 0; c < h; c++) {
                            int at = (b * seq + t) * h + c;
                            assertEquals(packed[at], chunked[at], 1e-6f, "chunked vs packed");
                            worstVsPadded =
                                    Math.max(worstVsPadded, Math.abs(packed[at] - padded[at]));
                            worstVsAlone =
                                    Math.max(worstVsAlone, Math.abs(packed[at] - alone[t * h + c]));
                            worstVsFloat64 =
                                    Math.max(worstVsFloat64, Math.abs(packed[at] - ref[t][c]));
                        }
                    }
                    for (int t = LENGTHS[b]; t < seq; t++) {
                        for (int c = 0; c < h; c++) {
                            assertEquals(
                                    0f, packed[(b * seq + t) * h + c], "padding rows are zero");
                        }
                    }
                }
                // Per-row arithmetic: INT8 quantizes each row on its own, so rows agree as well.
                assertTrue(worstVsPadded < 2e-5, precision + " packed vs padded " + worstVsPadded);
                assertTrue(worstVsAlone < 2e-5, precision + " packed vs alone " + worstVsAlone);
                if (precision == Precision.FP32) {
                    assertTrue(worstVsFloat64 < 1e-4, "packed vs float64 " + worstVsFloat64);
                }
            }
        }
    }

    @Test
    void packedInputsAreChecked() throws Exception {
        EncoderConfig config = BertEncoderTest.config(32, 2, 1, 64, 16, 0, "gelu", false, 0);
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            TransformerEncoder encoder =
                    RandomCheckpoint.create(config, 3)
                            .createBlock(manager, Pooling.MEAN, false)
                            .getEncoder();
            NDArray ids = manager.create(new long[20]);
            assertThrows(
                    IllegalArgumentException.class,
                    () -> encoder.encodePacked(ids, null, new int[] {0, 3, 20}),
                    "a sequence over the 16 positions");
            assertThrows(
                    IllegalArgumentException.class,
                    () -> encoder.encodePacked(ids, null, new int[] {0, 10, 10, 20}),
                    "an empty sequence");
            assertThrows(
                    IllegalArgumentException.class,
                    () -> encoder.encodePacked(ids, null, new int[] {0, 10, 19}),
                    "offsets short of the tokens");
            NDList out = encoder.encodePacked(ids, null, new int[] {0, 10, 20});
            assertEquals(new Shape(20, 32), out.get(0).getShape());
        }
    }

    private static float[] hidden(
            TransformerEncoder encoder,
            NDManager manager,
            long[] ids,
            long[] mask,
            long[] types,
            int batch,
            int seq) {
        try (NDManager scope = manager.newSubManager()) {
            Shape shape = new Shape(batch, seq);
            NDList out =
                    encoder.encode(
                            scope.create(ids, shape),
                            scope.create(mask, shape),
                            scope.create(types, shape));
            return out.get(0).toFloatArray();
        }
    }
}
