package io.github.tilewise.djl.lowp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tilewise.djl.encoder.linear.LinearActivation;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import io.github.tilewise.djl.encoder.linear.PackedWeights;
import io.github.tilewise.djl.jni.LibUtils;
import org.junit.jupiter.api.Test;

/**
 * Without the native library (run by the {@code reference-fallback} surefire execution, {@code
 * -Dtilewise.native=false}): precisions report that they cannot run natively, the converter keeps
 * every layer fp32 instead of failing, and packing weights is a clear exception.
 */
class LowPrecisionFallbackTest {

    @Test
    void conversionKeepsFp32WithoutTheNativeLibrary() {
        assertFalse(LibUtils.isAvailable(), "this test runs without the native library");
        for (Precision p : Precision.values()) {
            assertEquals(p == Precision.FP32, p.isNativelySupported(), p.name());
            if (p.isLowPrecision()) {
                assertEquals("unavailable", p.kernelName());
            }
        }
        LinearBlock layer =
                new LinearBlock("encoder.layer.0.output.dense", 8, 4, LinearActivation.NONE);
        LowPrecisionConverter converter =
                LowPrecisionConverter.builder().setPrecision(Precision.INT8).build();
        assertEquals(Precision.INT8, converter.precisionOf(layer));
        assertNull(converter.create(layer), "the layer keeps its fp32 operator");
        IllegalStateException e =
                assertThrows(
                        IllegalStateException.class,
                        () -> PackedWeights.pack(new float[32], 4, 8, Precision.INT8));
        assertTrue(e.getMessage().contains("not loaded"), e.getMessage());
    }
}
