package io.github.tilewise.it.lowp;

import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.lowp.Calibration;
import io.github.tilewise.djl.lowp.ConversionReport;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import io.github.tilewise.it.models.RealModels;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Prints how closely each low-precision variant of all-MiniLM-L6-v2 agrees with the fp32 model over
 * {@link AccuracyTexts} (240 texts):
 *
 * <pre>accuracy model=all-minilm-l6-v2 variant=int8 cos_min= cos_mean= spearman= weights_mib=</pre>
 */
public final class LowPrecisionAccuracy {

    private LowPrecisionAccuracy() {}

    /**
     * Runs the comparison.
     *
     * @param args unused
     * @throws Exception if the model cannot be loaded
     */
    public static void main(String[] args) throws Exception {
        Path onnx = RealModels.onnxFile(RealModels.miniLm());
        List<String> texts = AccuracyTexts.all();
        List<String> calibrationTexts = texts.subList(0, 64);
        float[][] reference;
        try (TextEncoder fp32 = open(onnx)) {
            reference = fp32.embed(texts);
        }
        run(onnx, texts, reference, "int8", b -> b.setPrecision(Precision.INT8), null);
        run(
                onnx,
                texts,
                reference,
                "int8_smoothquant",
                b -> b.setPrecision(Precision.INT8).optSmoothQuant(0.5f),
                calibrationTexts);
        run(
                onnx,
                texts,
                reference,
                "int8_auto_sensitive",
                b -> b.setPrecision(Precision.INT8).optAutoSensitive(0.05),
                calibrationTexts);
        run(
                onnx,
                texts,
                reference,
                "int8_weight_only",
                b -> b.setPrecision(Precision.INT8_WEIGHT_ONLY),
                null);
        run(onnx, texts, reference, "bf16", b -> b.setPrecision(Precision.BF16), null);
        run(onnx, texts, reference, "fp16", b -> b.setPrecision(Precision.FP16), null);
    }

    /** Configures a converter. */
    interface Setup {
        LowPrecisionConverter.Builder apply(LowPrecisionConverter.Builder builder);
    }

    static TextEncoder open(Path onnx) throws Exception {
        return TextEncoder.builder()
                .setModelPath(onnx)
                .optPooling(Pooling.MEAN)
                .optNormalize(true)
                .build();
    }

    /**
     * Converts a fresh copy of the model, embeds the texts and prints the agreement line.
     *
     * @return the agreement
     */
    static EmbeddingAgreement run(
            Path onnx,
            List<String> texts,
            float[][] reference,
            String variant,
            Setup setup,
            List<String> calibrationTexts)
            throws Exception {
        try (TextEncoder encoder = open(onnx)) {
            LowPrecisionConverter.Builder b = LowPrecisionConverter.builder();
            if (calibrationTexts != null) {
                b.optCalibration(Calibration.collect(encoder, calibrationTexts, 16));
            }
            LowPrecisionConverter converter = setup.apply(b).build();
            ConversionReport report = converter.convert(encoder.getBlock());
            EmbeddingAgreement agreement = EmbeddingAgreement.of(reference, encoder.embed(texts));
            System.out.printf(
                    Locale.ROOT,
                    "accuracy model=%s variant=%s %s weights_mib=%.2f fp32_weights_mib=%.2f int8_layers=%d%n",
                    RealModels.MINILM,
                    variant,
                    agreement,
                    report.getResidentBytes() / 1048576.0,
                    report.getFp32Bytes() / 1048576.0,
                    report.count(Precision.INT8));
            if (!converter.getMeasuredErrors().isEmpty()) {
                converter
                        .getMeasuredErrors()
                        .forEach(
                                (k, v) ->
                                        System.out.printf(
                                                Locale.ROOT, "#   %s error=%.4f%n", k, v));
            }
            return agreement;
        }
    }
}
