package io.github.tilewise.djl.encoder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import io.github.tilewise.djl.lowp.ConversionReport;
import io.github.tilewise.djl.lowp.Int8WeightRange;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The INT8 weight range chosen per layer at conversion ({@link Int8WeightRange}, system property
 * {@code tilewise.int8.weightRange}): which kernel each converted layer of a random encoder runs,
 * read back from the packed weights, and a clear error for an unknown value.
 */
class Int8WeightRangeTest {

    @AfterEach
    void clearProperty() {
        System.clearProperty(Int8WeightRange.PROPERTY);
    }

    @Test
    void eachRangeGivesTheDocumentedKernelPerLayer() throws Exception {
        String full = Precision.INT8.kernelName();
        String reduced = full.equals("avx2-maddubs-sign") ? "avx2-maddubs-reduced-range" : full;
        for (String value : new String[] {"full", "reduced", "auto", null}) {
            if (value == null) {
                System.clearProperty(Int8WeightRange.PROPERTY); // the default is auto
            } else {
                System.setProperty(Int8WeightRange.PROPERTY, value);
            }
            int layers = 0;
            for (ConversionReport.Layer layer : convertRandomEncoder().getLayers()) {
                String name = layer.getName();
                boolean tolerant =
                        name.matches(
                                "encoder\\.layer\\.\\d+\\.(attention\\..*|intermediate\\.dense)");
                String expected =
                        "full".equals(value)
                                ? full
                                : "reduced".equals(value) ? reduced : tolerant ? reduced : full;
                assertTrue(
                        layer.getOperator().contains("[" + expected + "]"),
                        value
                                + ": "
                                + name
                                + " runs "
                                + layer.getOperator()
                                + ", expected "
                                + expected);
                layers++;
            }
            assertTrue(layers >= 12, "layers converted: " + layers);
        }
    }

    @Test
    void unknownValueIsAClearError() throws Exception {
        System.setProperty(Int8WeightRange.PROPERTY, "fast");
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, this::convertRandomEncoder);
        assertTrue(e.getMessage().contains(Int8WeightRange.PROPERTY), e.getMessage());
        assertTrue(e.getMessage().contains("fast"), e.getMessage());
        assertEquals(Int8WeightRange.FULL, Int8WeightRange.valueOf("FULL"));
    }

    private ConversionReport convertRandomEncoder() throws Exception {
        EncoderConfig config = BertEncoderTest.config(48, 2, 2, 80, 40, 2, "gelu", true, 0);
        EncoderCheckpoint checkpoint = RandomCheckpoint.create(config, 11);
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            TextEncoderBlock block = checkpoint.createBlock(manager, Pooling.CLS, false);
            return LowPrecisionConverter.builder()
                    .setPrecision(Precision.INT8)
                    .build()
                    .convert(block);
        }
    }
}
