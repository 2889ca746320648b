package io.github.tilewise.djl.engine;

import ai.djl.BaseModel;
import ai.djl.Device;
import ai.djl.MalformedModelException;
import ai.djl.inference.Predictor;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.translate.Translator;
import ai.djl.util.ClassLoaderUtils;
import io.github.tilewise.djl.CallGuard;
import io.github.tilewise.djl.attention.ComputePrecision;
import io.github.tilewise.djl.encoder.EncoderConfig;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import io.github.tilewise.djl.encoder.linear.LinearOperatorFactory;
import io.github.tilewise.djl.encoder.text.EncoderTokenizer;
import io.github.tilewise.djl.lowp.Calibration;
import io.github.tilewise.djl.lowp.CalibrationTexts;
import io.github.tilewise.djl.lowp.ConversionReport;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * A Tilewise model: a {@link TextEncoderBlock} loaded from a checkpoint (an ONNX file, a directory
 * holding one, or a Hugging Face directory with {@code config.json} + {@code model.safetensors}).
 *
 * <p>Options, from {@code Criteria.optArgument} or {@code optOption}: {@code pooling} ({@code mean}
 * (default), {@code cls}, {@code pooler}, {@code none}), {@code normalize} ({@code false}), and
 * {@code linearOperatorFactory} (the class name of a {@link LinearOperatorFactory} with a
 * no-argument constructor, e.g. an INT8 converter), {@code precision} ({@code fp32} (default),
 * {@code int8}, {@code int8_weight_only}, {@code bf16}, {@code fp16}: the linear layers are
 * converted by {@link LowPrecisionConverter}; the model property {@code linearWeightBytes} then
 * reports their resident size), {@code sensitiveLayers} (comma-separated layer names kept in
 * INT8_WEIGHT_ONLY under int8, in fp32 otherwise), {@code smoothQuant} and {@code calibrationFile}
 * (SmoothQuant for int8, on by default with built-in calibration texts), and {@code
 * attentionPrecision} ({@code fp32} or {@code bf16}; by default bf16 when {@code precision} is not
 * fp32 and the CPU has AVX512-BF16, else fp32). When a block was set before {@code load}, its
 * parameters are read from DJL {@code .params} files instead, as for any DJL model.
 */
public final class TilewiseModel extends BaseModel {

    private final CallGuard guard;

    TilewiseModel(String name, NDManager manager) {
        super(name);
        this.guard = new CallGuard("Tilewise model " + name);
        this.manager = manager;
        this.manager.setName("tilewiseModel");
        dataType = DataType.FLOAT32;
    }

    @Override
    public void load(Path modelPath, String prefix, Map<String, ?> options)
            throws IOException, MalformedModelException {
        Path absolute = modelPath.toAbsolutePath();
        setModelDir(Files.isRegularFile(absolute) ? absolute.getParent() : absolute);
        wasLoaded = true;
        if (block != null) {
            loadBlock(prefix, options);
            return;
        }
        Path checkpointPath = absolute;
        if (prefix != null && Files.isDirectory(absolute)) {
            Path named = absolute.resolve(prefix.endsWith(".onnx") ? prefix : prefix + ".onnx");
            if (Files.isRegularFile(named)) {
                checkpointPath = named;
            }
        }
        EncoderCheckpoint checkpoint = EncoderCheckpoint.read(checkpointPath);
        Pooling pooling;
        try {
            pooling = Pooling.fromName(option(options, "pooling", "mean"));
        } catch (IllegalArgumentException e) {
            throw new MalformedModelException("Criteria argument " + e.getMessage(), e);
        }
        boolean normalize = Boolean.parseBoolean(option(options, "normalize", "false"));
        TextEncoderBlock encoder;
        try {
            encoder = checkpoint.createBlock(manager, pooling, normalize);
        } catch (IllegalArgumentException e) {
            throw new MalformedModelException(checkpointPath + ": " + e.getMessage(), e);
        }
        String factory = option(options, "linearOperatorFactory", null);
        if (factory != null) {
            LinearOperatorFactory f =
                    ClassLoaderUtils.initClass(
                            ClassLoaderUtils.getContextClassLoader(),
                            LinearOperatorFactory.class,
                            factory);
            if (f == null) {
                throw new MalformedModelException(
                        "cannot create the LinearOperatorFactory " + factory);
            }
            encoder.getEncoder().replaceLinearOperators(f);
        }
        String precision = option(options, "precision", null);
        if (precision != null) {
            convertPrecision(encoder, precision, options);
        }
        String attention = option(options, "attentionPrecision", null);
        if (attention != null) {
            encoder.getEncoder().setAttentionPrecision(attentionPrecision(attention));
        }
        block = encoder;
        EncoderConfig config = checkpoint.getConfig();
        properties.putIfAbsent("maxPositions", Integer.toString(config.getMaxSequenceLength()));
    }

    /**
     * Converts the linear layers for the {@code precision} option. INT8 is calibrated for
     * SmoothQuant (alpha {@code smoothQuant}, default 0.5; 0 turns it off) on the texts of {@code
     * calibrationFile} (one per line) or on the built-in {@link CalibrationTexts}, tokenized with
     * the model directory's {@code tokenizer.json} (without one, INT8 runs unsmoothed).
     */
    private void convertPrecision(TextEncoderBlock encoder, String name, Map<String, ?> options)
            throws IOException, MalformedModelException {
        Precision p;
        float alpha;
        try {
            p = Precision.fromName(name);
            alpha = Float.parseFloat(option(options, "smoothQuant", "0.5"));
        } catch (IllegalArgumentException e) {
            throw new MalformedModelException(
                    "Criteria argument precision/smoothQuant: " + e.getMessage(), e);
        }
        LowPrecisionConverter.Builder builder = LowPrecisionConverter.builder().setPrecision(p);
        String sensitive = option(options, "sensitiveLayers", null);
        if (sensitive != null && !sensitive.isBlank()) {
            builder.optSensitiveLayers(Arrays.asList(sensitive.trim().split("\\s*,\\s*")));
        }
        Path tokenizerFile = getModelPath().resolve("tokenizer.json");
        if (p == Precision.INT8 && alpha > 0 && Files.isRegularFile(tokenizerFile)) {
            String file = option(options, "calibrationFile", null);
            List<String> texts = CalibrationTexts.defaults();
            if (file != null) {
                texts =
                        Files.readAllLines(Paths.get(file)).stream()
                                .filter(t -> !t.isBlank())
                                .collect(Collectors.toList());
                if (texts.isEmpty()) {
                    throw new MalformedModelException("calibrationFile " + file + " holds no text");
                }
            }
            try (EncoderTokenizer tokenizer = EncoderTokenizer.load(tokenizerFile, 128, true)) {
                builder.optCalibration(Calibration.collect(encoder, tokenizer, texts, 16, manager))
                        .optSmoothQuant(alpha);
            }
        }
        ConversionReport report = builder.build().convert(encoder);
        properties.put("precision", p.label());
        properties.put("linearWeightBytes", Long.toString(report.getResidentBytes()));
    }

    private static ComputePrecision attentionPrecision(String name) throws MalformedModelException {
        switch (name.trim().toLowerCase(Locale.ROOT)) {
            case "bf16":
                return ComputePrecision.BF16;
            case "fp32":
            case "data":
                return ComputePrecision.DATA;
            default:
                throw new MalformedModelException(
                        "Criteria argument attentionPrecision: unknown value '"
                                + name
                                + "', expected fp32 or bf16");
        }
    }

    /**
     * Returns the loaded encoder block.
     *
     * @return the block
     * @throws IllegalStateException if the model is not loaded or holds another kind of block
     */
    public TextEncoderBlock getEncoderBlock() {
        if (!(block instanceof TextEncoderBlock)) {
            throw new IllegalStateException(
                    "model " + modelName + " holds no Tilewise encoder block (not loaded?)");
        }
        return (TextEncoderBlock) block;
    }

    private String option(Map<String, ?> options, String key, String fallback) {
        if (options != null && options.get(key) != null) {
            return options.get(key).toString();
        }
        String property = getProperty(key);
        return property != null ? property : fallback;
    }

    /**
     * Returns a predictor whose calls hold this model open: {@link #close()} waits for them, and
     * calls after the close throw {@link IllegalStateException}.
     */
    @Override
    public <I, O> Predictor<I, O> newPredictor(Translator<I, O> translator, Device device) {
        return new ModelPredictor<>(this, translator, device, guard);
    }

    /** Waits for the predictions in flight, then frees the native memory and the parameters. */
    @Override
    public void close() {
        guard.close(
                () -> {
                    if (block instanceof TextEncoderBlock) {
                        ((TextEncoderBlock) block).close();
                    }
                    super.close();
                });
    }
}
