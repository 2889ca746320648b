package io.github.tilewise.it.lowp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.inference.Predictor;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.engine.EncoderTranslatorFactory;
import io.github.tilewise.djl.lowp.Calibration;
import io.github.tilewise.djl.lowp.CalibrationTexts;
import io.github.tilewise.djl.lowp.ConversionReport;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import io.github.tilewise.it.models.RealModels;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * all-MiniLM-L6-v2 in low precision against the fp32 model over 240 varied texts ({@link
 * AccuracyTexts}), calibrated on different texts ({@link CalibrationTexts}): INT8 (SmoothQuant)
 * sentence-embedding cosine min ≥ 0.99 and mean ≥ 0.995, BF16 and FP16 min ≥ 0.999, and the
 * Spearman correlation of all pairwise similarities ≥ 0.99; resident linear weights at most about a
 * quarter (INT8) or half (16-bit) of fp32. Also the Criteria argument {@code precision=int8}.
 */
class LowPrecisionAccuracyTest {

    @Test
    void miniLmInLowPrecisionAgreesWithFp32() throws Exception {
        Path onnx = RealModels.onnxFile(RealModels.miniLm());
        List<String> texts = AccuracyTexts.all();
        assertTrue(texts.size() >= 200);
        try (TextEncoder encoder = LowPrecisionAccuracy.open(onnx)) {
            float[][] reference = encoder.embed(texts);
            Calibration calibration = Calibration.collect(encoder, CalibrationTexts.defaults(), 16);

            ConversionReport int8 =
                    LowPrecisionConverter.builder()
                            .setPrecision(Precision.INT8)
                            .optCalibration(calibration)
                            .optSmoothQuant(0.5f)
                            .build()
                            .convert(encoder.getBlock());
            assertEquals(int8.getLayers().size(), int8.count(Precision.INT8));
            EmbeddingAgreement a = EmbeddingAgreement.of(reference, encoder.embed(texts));
            assertTrue(a.getMinCosine() >= 0.99, "int8 " + a);
            assertTrue(a.getMeanCosine() >= 0.995, "int8 " + a);
            assertTrue(a.getSpearman() >= 0.99, "int8 " + a);
            assertTrue(int8.getResidentBytes() <= 0.26 * int8.getFp32Bytes(), int8.toString());

            for (Precision p : new Precision[] {Precision.BF16, Precision.FP16}) {
                encoder.getBlock().resetLinearOperators();
                ConversionReport r =
                        LowPrecisionConverter.builder()
                                .setPrecision(p)
                                .build()
                                .convert(encoder.getBlock());
                assertEquals(r.getLayers().size(), r.count(p));
                EmbeddingAgreement h = EmbeddingAgreement.of(reference, encoder.embed(texts));
                assertTrue(h.getMinCosine() >= 0.999, p + " " + h);
                assertTrue(h.getSpearman() >= 0.99, p + " " + h);
                assertTrue(r.getResidentBytes() <= 0.51 * r.getFp32Bytes(), r.toString());
            }

            // Back to fp32: the converted operators are gone, the embeddings are the reference's.
            encoder.getBlock().resetLinearOperators();
            EmbeddingAgreement back = EmbeddingAgreement.of(reference, encoder.embed(texts));
            assertTrue(back.getMinCosine() > 0.99999, back.toString());
        }
    }

    @Test
    void criteriaArgumentPrecisionInt8() throws Exception {
        Path dir = RealModels.miniLm();
        List<String> texts = AccuracyTexts.all().subList(20, 60);
        float[][] fp32 = embedWithCriteria(dir, "fp32", texts);
        float[][] int8 = embedWithCriteria(dir, "int8", texts);
        EmbeddingAgreement a = EmbeddingAgreement.of(fp32, int8);
        assertTrue(a.getMinCosine() >= 0.99, a.toString());
        assertTrue(a.getMeanCosine() >= 0.995, a.toString());
    }

    private static float[][] embedWithCriteria(Path dir, String precision, List<String> texts)
            throws Exception {
        Criteria<String, float[]> criteria =
                Criteria.builder()
                        .setTypes(String.class, float[].class)
                        .optEngine("Tilewise")
                        .optModelPath(dir)
                        .optTranslatorFactory(new EncoderTranslatorFactory())
                        .optArgument("pooling", "mean")
                        .optArgument("normalize", "true")
                        .optArgument("precision", precision)
                        .build();
        try (ZooModel<String, float[]> model = criteria.loadModel();
                Predictor<String, float[]> predictor = model.newPredictor()) {
            if (!"fp32".equals(precision)) {
                long bytes = Long.parseLong(model.getProperty("linearWeightBytes"));
                assertTrue(
                        bytes > 0 && bytes < 12L << 20, "int8 linear weights " + bytes + " bytes");
            }
            return predictor.batchPredict(texts).toArray(new float[0][]);
        }
    }
}
