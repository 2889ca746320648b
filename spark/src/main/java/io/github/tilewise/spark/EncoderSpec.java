package io.github.tilewise.spark;

import ai.djl.MalformedModelException;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.lowp.Calibration;
import io.github.tilewise.djl.lowp.CalibrationTexts;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Objects;

/**
 * What identifies a loaded encoder: the model path as the user wrote it and every option that
 * changes the loaded model. It is the key of the executor-wide {@link ModelCache}, and is shipped
 * to executors with each task (it is small and serializable).
 */
public final class EncoderSpec implements Serializable {

    private static final long serialVersionUID = 1L;

    private final String modelPath;
    private final String tokenizerPath;
    private final String precision;
    private final String pooling;
    private final Boolean normalize;
    private final Integer maxLength;
    private final boolean truncation;

    /**
     * Creates a specification; {@code null} options take the model's defaults.
     *
     * @param modelPath the model file or directory (a shared path, or a name given to {@code
     *     SparkContext.addFile})
     * @param tokenizerPath the {@code tokenizer.json}, or null for the one next to the model
     * @param precision {@code fp32}, {@code int8}, {@code int8_weight_only}, {@code bf16} or {@code
     *     fp16}
     * @param pooling a {@link Pooling} name, or null for the model's own
     * @param normalize whether to L2-normalise, or null for the model's own
     * @param maxLength the most tokens per text, or null for the model's own
     * @param truncation true to cut longer texts, false to refuse them
     * @throws IllegalArgumentException if the precision or pooling is unknown
     */
    public EncoderSpec(
            String modelPath,
            String tokenizerPath,
            String precision,
            String pooling,
            Boolean normalize,
            Integer maxLength,
            boolean truncation) {
        if (modelPath == null || modelPath.isBlank()) {
            throw new IllegalArgumentException("modelPath is required");
        }
        this.modelPath = modelPath;
        this.tokenizerPath =
                tokenizerPath == null || tokenizerPath.isBlank() ? null : tokenizerPath;
        this.precision = Precision.fromName(precision == null ? "fp32" : precision).label();
        this.pooling =
                pooling == null || pooling.isBlank()
                        ? null
                        : Pooling.fromName(pooling).name().toLowerCase(Locale.ROOT);
        this.normalize = normalize;
        this.maxLength = maxLength;
        this.truncation = truncation;
    }

    /**
     * Returns the model path as given.
     *
     * @return the path
     */
    public String getModelPath() {
        return modelPath;
    }

    /**
     * Returns the precision label (as {@link Precision#label()}).
     *
     * @return the label
     */
    public String getPrecision() {
        return precision;
    }

    /**
     * Loads the encoder this specification names, resolving its files on this host (see {@link
     * ModelFiles}). The linear layers are converted as the Criteria {@code precision} argument
     * converts them (INT8 calibrated for SmoothQuant on the built-in calibration texts).
     *
     * @return the encoder, owned by the caller
     * @throws IOException if a file is missing or unreadable
     * @throws MalformedModelException if the checkpoint is invalid
     */
    public TextEncoder load() throws IOException, MalformedModelException {
        Path model = ModelFiles.resolve(modelPath, "modelPath");
        TextEncoder.Builder builder = TextEncoder.builder().setModelPath(model);
        if (tokenizerPath != null) {
            builder.optTokenizerPath(ModelFiles.resolve(tokenizerPath, "tokenizerPath"));
        }
        if (pooling != null) {
            builder.optPooling(Pooling.fromName(pooling));
        }
        if (normalize != null) {
            builder.optNormalize(normalize);
        }
        if (maxLength != null) {
            builder.optMaxLength(maxLength);
        }
        builder.optTruncation(truncation);
        TextEncoder encoder = builder.build();
        try {
            Precision p = Precision.fromName(precision);
            if (p != Precision.FP32) {
                LowPrecisionConverter.Builder converter =
                        LowPrecisionConverter.builder().setPrecision(p);
                if (p == Precision.INT8) {
                    converter.optCalibration(
                            Calibration.collect(encoder, CalibrationTexts.defaults(), 16));
                }
                converter.build().convert(encoder.getBlock());
            }
            return encoder;
        } catch (RuntimeException e) {
            encoder.close();
            throw e;
        }
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof EncoderSpec)) {
            return false;
        }
        EncoderSpec s = (EncoderSpec) o;
        return modelPath.equals(s.modelPath)
                && Objects.equals(tokenizerPath, s.tokenizerPath)
                && precision.equals(s.precision)
                && Objects.equals(pooling, s.pooling)
                && Objects.equals(normalize, s.normalize)
                && Objects.equals(maxLength, s.maxLength)
                && truncation == s.truncation;
    }

    @Override
    public int hashCode() {
        return Objects.hash(
                modelPath, tokenizerPath, precision, pooling, normalize, maxLength, truncation);
    }

    @Override
    public String toString() {
        return "model="
                + modelPath
                + (tokenizerPath == null ? "" : " tokenizer=" + tokenizerPath)
                + " precision="
                + precision
                + " pooling="
                + (pooling == null ? "(model)" : pooling)
                + " normalize="
                + (normalize == null ? "(model)" : normalize)
                + " maxLength="
                + (maxLength == null ? "(model)" : maxLength)
                + " truncation="
                + truncation;
    }
}
