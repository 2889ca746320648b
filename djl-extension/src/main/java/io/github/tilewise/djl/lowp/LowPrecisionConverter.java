package io.github.tilewise.djl.lowp;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.attention.ComputePrecision;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import io.github.tilewise.djl.encoder.TransformerEncoder;
import io.github.tilewise.djl.encoder.linear.Fp32LinearOperator;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import io.github.tilewise.djl.encoder.linear.LinearOperator;
import io.github.tilewise.djl.encoder.linear.LinearOperatorFactory;
import io.github.tilewise.djl.encoder.linear.PackedLinear;
import io.github.tilewise.djl.encoder.linear.PackedWeights;
import io.github.tilewise.djl.encoder.linear.SharedInputLinear;
import io.github.tilewise.djl.jni.LibUtils;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Converts a float encoder to low precision in one call, choosing the precision per linear layer.
 *
 * <pre>{@code
 * ConversionReport report = LowPrecisionConverter.builder()
 *         .setPrecision(Precision.INT8)
 *         .optCalibration(Calibration.collect(encoder, texts, 16)) // optional
 *         .optAutoSensitive(0.03)                                 // layers above 3% error stay higher
 *         .build()
 *         .convert(encoder.getBlock());
 * }</pre>
 *
 * <p>A layer's precision is, in order: the first {@link Builder#optLayerPrecision pattern} matching
 * its name; the {@link Builder#optSensitivePrecision sensitive precision} if it is {@link
 * Builder#optSensitiveLayers named sensitive} or {@link Builder#optAutoSensitive measured
 * sensitive} on the calibration set; else the default precision. Each converted layer becomes a
 * {@link PackedLinear} on its weights packed in that precision; without the native library the
 * layer stays fp32 and a warning says so once. With a calibration set and {@link
 * Builder#optSmoothQuant}, INT8 layers get SmoothQuant input scales. INT8 weights get the code
 * range of {@link Int8WeightRange} (system property {@code tilewise.int8.weightRange}).
 *
 * <p>Also a {@link LinearOperatorFactory}, so it plugs into {@code TextEncoder.Builder} and the
 * {@code linearOperatorFactory} Criteria option.
 */
public final class LowPrecisionConverter implements LinearOperatorFactory {

    private static final Logger logger = LoggerFactory.getLogger(LowPrecisionConverter.class);
    private static final Set<String> WARNED = ConcurrentHashMap.newKeySet();

    private final Precision precision;
    private final Map<Pattern, Precision> layerPrecisions;
    private final Set<String> sensitiveLayers;
    private final Precision sensitivePrecision;
    private final Calibration calibration;
    private final double autoSensitiveError;
    private final float smoothQuantAlpha;
    private final ComputePrecision attentionPrecision;
    private final Map<String, Double> measuredErrors = new LinkedHashMap<>();

    private LowPrecisionConverter(Builder b) {
        this.precision = b.precision;
        this.layerPrecisions = new LinkedHashMap<>(b.layerPrecisions);
        this.sensitiveLayers = new LinkedHashSet<>(b.sensitiveLayers);
        this.sensitivePrecision = b.sensitivePrecision;
        this.calibration = b.calibration;
        this.autoSensitiveError = b.autoSensitiveError;
        this.smoothQuantAlpha = b.smoothQuantAlpha;
        this.attentionPrecision = b.attentionPrecision;
    }

    /**
     * Creates a builder.
     *
     * @return the builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Converts every linear layer of an encoder block.
     *
     * @param block the block (modified: its layers get new operators)
     * @return what was done
     */
    public ConversionReport convert(TextEncoderBlock block) {
        block.getEncoder().replaceLinearOperators(this);
        List<LinearBlock> rest = new ArrayList<>(block.getLinearBlocks());
        rest.removeAll(block.getEncoder().getLinearBlocks());
        convert(rest);
        return report(block.getLinearBlocks());
    }

    /**
     * Converts every linear layer of an encoder.
     *
     * @param encoder the encoder (modified)
     * @return what was done
     */
    public ConversionReport convert(TransformerEncoder encoder) {
        encoder.replaceLinearOperators(this);
        return report(encoder.getLinearBlocks());
    }

    private void convert(List<LinearBlock> layers) {
        for (LinearBlock layer : layers) {
            LinearOperator op = create(layer);
            if (op != null) {
                layer.setOperator(op);
            }
        }
    }

    private static ConversionReport report(List<LinearBlock> layers) {
        List<ConversionReport.Layer> out = new ArrayList<>();
        for (LinearBlock layer : layers) {
            out.add(describe(layer));
        }
        return new ConversionReport(out);
    }

    /**
     * Describes a layer's current operator and resident size.
     *
     * @param layer the layer
     * @return the report entry
     */
    static ConversionReport.Layer describe(LinearBlock layer) {
        long fp32 = 4L * layer.getOutFeatures() * (layer.getInFeatures() + 1L);
        LinearOperator op = layer.getOperator();
        // A part of a fused projection reports its share of the fused weights.
        double share = 1;
        SharedInputLinear group = SharedInputLinear.groupOf(op);
        if (group != null) {
            share = layer.getOutFeatures() / (double) group.totalWidth();
            op = group.getFused();
        }
        if (op instanceof PackedLinear) {
            PackedLinear l = (PackedLinear) op;
            return new ConversionReport.Layer(
                    layer.getName(),
                    l.getPrecision(),
                    layer.getOperator().describe(),
                    Math.round(l.getByteSize() * share),
                    fp32);
        }
        return new ConversionReport.Layer(
                layer.getName(), Precision.FP32, op.describe(), fp32, fp32);
    }

    /**
     * Returns the precision a layer gets.
     *
     * @param layer the layer
     * @return its precision
     */
    public Precision precisionOf(LinearBlock layer) {
        for (Map.Entry<Pattern, Precision> e : layerPrecisions.entrySet()) {
            if (e.getKey().matcher(layer.getName()).matches()) {
                return e.getValue();
            }
        }
        if (sensitiveLayers.contains(layer.getName()) || isMeasuredSensitive(layer)) {
            return sensitivePrecision;
        }
        return precision;
    }

    /**
     * Returns the relative output error of each layer measured in its default precision on the
     * calibration set (filled by conversions with {@link Builder#optAutoSensitive}).
     *
     * @return layer name to {@code ‖y − y_fp32‖ / ‖y_fp32‖}
     */
    public Map<String, Double> getMeasuredErrors() {
        return Map.copyOf(measuredErrors);
    }

    @Override
    public LinearOperator create(LinearBlock layer) {
        Precision p = precisionOf(layer);
        if (p == Precision.FP32) {
            return null;
        }
        if (!LibUtils.isAvailable()) {
            warnOnce(
                    "no-native-" + p,
                    p
                            + " needs the native library, which is not loaded ("
                            + LibUtils.unavailableReason()
                            + "): layers stay fp32");
            return null;
        }
        if (!p.isNativelySupported()) {
            warnOnce(
                    "fallback-" + p,
                    p
                            + " is not native on this CPU: layers run on the "
                            + p.kernelName()
                            + " kernel"
                            + (p == Precision.INT8
                                    ? " (those with reduced-range weights, see "
                                            + Int8WeightRange.PROPERTY
                                            + ", on a faster one; the conversion report names"
                                            + " each layer's kernel)"
                                    : ""));
        }
        return pack(layer, p, smoothingFor(layer, p));
    }

    /**
     * Packs a layer's weights in a precision (with SmoothQuant scales {@code s}: {@code W·diag(s)},
     * the layer then divides its input by {@code s}); INT8 weights get the code range of {@link
     * Int8WeightRange#configured()}.
     */
    private static PackedLinear pack(LinearBlock layer, Precision precision, float[] smoothing) {
        int out = layer.getOutFeatures();
        int in = layer.getInFeatures();
        float[] w = layer.getWeightAsFloats();
        if (smoothing != null) {
            for (int o = 0; o < out; o++) {
                for (int i = 0; i < in; i++) {
                    w[o * in + i] *= smoothing[i];
                }
            }
        }
        int weightMax =
                precision == Precision.INT8
                        ? Int8WeightRange.configured().weightMaxFor(layer.getName())
                        : 127;
        PackedWeights packed =
                layer.getActivation().isGated()
                        ? PackedWeights.packGated(w, out, in, precision, weightMax)
                        : precision == Precision.INT8
                                ? PackedWeights.packInt8(w, out, in, weightMax)
                                : PackedWeights.pack(w, out, in, precision);
        try {
            return PackedLinear.builder()
                    .setWeights(packed)
                    .optBias(layer.getBiasAsFloats())
                    .optActivation(layer.getActivation())
                    .optInputScales(smoothing)
                    .build();
        } catch (RuntimeException e) {
            packed.close();
            throw e;
        }
    }

    /**
     * The attention precision of converted encoders: the one set with {@link
     * Builder#optAttentionPrecision}, else bf16 dot products where the CPU has them natively
     * (AVX512-BF16) and the linear layers leave fp32, else the data's precision.
     */
    @Override
    public ComputePrecision attentionPrecision() {
        if (attentionPrecision != null) {
            return attentionPrecision;
        }
        return precision != Precision.FP32 && Precision.BF16.isNativelySupported()
                ? ComputePrecision.BF16
                : ComputePrecision.DATA;
    }

    /**
     * Fuses an encoder layer's query, key and value projections into one operator when all three
     * get the same low precision: the input is quantized once and the GEMM is three times wider.
     * SmoothQuant scales come from the shared input's calibration statistics and the stacked
     * weights.
     */
    @Override
    public LinearOperator createShared(List<LinearBlock> layers) {
        Precision p = precisionOf(layers.get(0));
        for (LinearBlock layer : layers) {
            if (precisionOf(layer) != p) {
                return null;
            }
        }
        if (p == Precision.FP32 || layers.size() < 2) {
            return null;
        }
        if (!LibUtils.isAvailable()) {
            return create(layers.get(0)); // warns once, returns null
        }
        String name = layers.get(0).getName().replaceAll("\\.[^.]*$", "") + ".qkv";
        try (NDManager manager = layers.get(0).getWeight().getManager().newSubManager()) {
            LinearBlock stacked = LinearBlock.concatenate(name, layers, manager);
            return pack(stacked, p, smoothingFor(stacked, layers.get(0).getName(), p));
        }
    }

    private float[] smoothingFor(LinearBlock layer, Precision p) {
        return smoothingFor(layer, layer.getName(), p);
    }

    /** SmoothQuant scales of a layer whose input was recorded under {@code inputName}. */
    private float[] smoothingFor(LinearBlock layer, String inputName, Precision p) {
        if (smoothQuantAlpha <= 0
                || calibration == null
                || p != Precision.INT8
                || !calibration.getWidths().containsKey(inputName)) {
            return null;
        }
        return smoothQuantScales(
                calibration.getChannelAbsMax(inputName),
                layer.getWeightAsFloats(),
                layer.getOutFeatures(),
                layer.getInFeatures(),
                smoothQuantAlpha);
    }

    /**
     * SmoothQuant's per-input-channel scales {@code s_j = max|X_j|^α / max_o|W_oj|^(1−α)}: dividing
     * the activations by {@code s} and multiplying the weights' columns by it balances their
     * ranges.
     *
     * @param activationAbsMax {@code in} channel maxima of the inputs
     * @param weights {@code out·in} row-major
     * @param out output channels
     * @param in input width
     * @param alpha migration strength in (0, 1); 0.5 in the paper
     * @return {@code in} positive scales
     */
    public static float[] smoothQuantScales(
            float[] activationAbsMax, float[] weights, int out, int in, float alpha) {
        float[] s = new float[in];
        for (int j = 0; j < in; j++) {
            float wmax = 0;
            for (int o = 0; o < out; o++) {
                wmax = Math.max(wmax, Math.abs(weights[o * in + j]));
            }
            double a = Math.max(activationAbsMax[j], 1e-5);
            double w = Math.max(wmax, 1e-5);
            double v = Math.pow(a, alpha) / Math.pow(w, 1 - alpha);
            s[j] = (float) Math.min(1e4, Math.max(1e-4, v));
        }
        return s;
    }

    private boolean isMeasuredSensitive(LinearBlock layer) {
        if (autoSensitiveError <= 0
                || calibration == null
                || precision == Precision.FP32
                || !calibration.getWidths().containsKey(layer.getName())) {
            return false;
        }
        double error = measureError(layer, precision);
        measuredErrors.put(layer.getName(), error);
        if (error > autoSensitiveError) {
            logger.info(
                    "{}: {} error {} above {}: kept in {}",
                    layer.getName(),
                    precision,
                    error,
                    autoSensitiveError,
                    sensitivePrecision);
            return true;
        }
        return false;
    }

    /** ‖y − y_fp32‖ / ‖y_fp32‖ of the layer in a precision on the recorded inputs. */
    private double measureError(LinearBlock layer, Precision p) {
        if (!LibUtils.isAvailable()) {
            return 0;
        }
        float[] rows = calibration.getSampleRows(layer.getName());
        int in = layer.getInFeatures();
        if (rows.length == 0) {
            return 0;
        }
        try (NDManager manager = layer.getWeight().getManager().newSubManager();
                LinearOperator low = pack(layer, p, smoothingFor(layer, p))) {
            NDArray x = manager.create(rows, new Shape(rows.length / in, in));
            Fp32LinearOperator fp32 =
                    new Fp32LinearOperator(
                            layer.getWeight(), layer.getBias(), layer.getActivation());
            float[] ref = fp32.forward(x, null).toFloatArray();
            float[] got = low.forward(x, null).toFloatArray();
            double e2 = 0;
            double r2 = 0;
            for (int i = 0; i < ref.length; i++) {
                e2 += (got[i] - ref[i]) * (double) (got[i] - ref[i]);
                r2 += ref[i] * (double) ref[i];
            }
            return Math.sqrt(e2 / Math.max(r2, 1e-30));
        }
    }

    private static void warnOnce(String key, String message) {
        if (WARNED.add(key)) {
            logger.warn(message);
        }
    }

    /** Builds a {@link LowPrecisionConverter}: {@code setPrecision} is required. */
    public static final class Builder {
        private Precision precision;
        private final Map<Pattern, Precision> layerPrecisions = new LinkedHashMap<>();
        private final Set<String> sensitiveLayers = new LinkedHashSet<>();
        private Precision sensitivePrecision;
        private Calibration calibration;
        private double autoSensitiveError;
        private float smoothQuantAlpha;
        private ComputePrecision attentionPrecision;

        Builder() {}

        /**
         * Sets the default precision of the linear layers.
         *
         * @param precision e.g. {@link Precision#INT8}
         * @return this builder
         */
        public Builder setPrecision(Precision precision) {
            this.precision = precision;
            return this;
        }

        /**
         * Gives the layers whose name matches a regular expression their own precision (first match
         * wins), e.g. {@code ".*pooler.*"} → FP32.
         *
         * @param regex a {@link Pattern} over the whole layer name
         * @param layerPrecision the precision
         * @return this builder
         */
        public Builder optLayerPrecision(String regex, Precision layerPrecision) {
            layerPrecisions.put(Pattern.compile(regex), layerPrecision);
            return this;
        }

        /**
         * Names layers to keep in the sensitive precision.
         *
         * @param names layer names, e.g. {@code encoder.layer.5.output.dense}
         * @return this builder
         */
        public Builder optSensitiveLayers(Iterable<String> names) {
            names.forEach(sensitiveLayers::add);
            return this;
        }

        /**
         * Sets the precision of sensitive layers (default INT8_WEIGHT_ONLY for INT8, else FP32).
         *
         * @param sensitive the precision
         * @return this builder
         */
        public Builder optSensitivePrecision(Precision sensitive) {
            this.sensitivePrecision = sensitive;
            return this;
        }

        /**
         * Sets the calibration set (needed by {@link #optAutoSensitive} and {@link
         * #optSmoothQuant}).
         *
         * @param calibration recorded layer inputs
         * @return this builder
         */
        public Builder optCalibration(Calibration calibration) {
            this.calibration = calibration;
            return this;
        }

        /**
         * Keeps in the sensitive precision every layer whose relative output error in the default
         * precision, measured on the calibration set, exceeds a bound.
         *
         * @param maxRelativeError e.g. 0.03; 0 turns detection off
         * @return this builder
         */
        public Builder optAutoSensitive(double maxRelativeError) {
            this.autoSensitiveError = maxRelativeError;
            return this;
        }

        /**
         * Applies SmoothQuant to INT8 layers with migration strength {@code alpha} (0 = off).
         *
         * @param alpha in [0, 1); 0.5 in the paper
         * @return this builder
         */
        public Builder optSmoothQuant(float alpha) {
            this.smoothQuantAlpha = alpha;
            return this;
        }

        /**
         * Sets the precision of the converted encoder's attention dot products (default: {@link
         * ComputePrecision#BF16} when the precision is not FP32 and the CPU has AVX512-BF16, else
         * {@link ComputePrecision#DATA}).
         *
         * @param attention the attention precision
         * @return this builder
         */
        public Builder optAttentionPrecision(ComputePrecision attention) {
            this.attentionPrecision = attention;
            return this;
        }

        /**
         * Builds the converter.
         *
         * @return the converter
         * @throws IllegalArgumentException if the precision is missing, or calibration-based
         *     options lack a calibration set
         */
        public LowPrecisionConverter build() {
            if (precision == null) {
                throw new IllegalArgumentException("setPrecision(...) is required");
            }
            if ((autoSensitiveError > 0 || smoothQuantAlpha > 0) && calibration == null) {
                throw new IllegalArgumentException(
                        "optAutoSensitive and optSmoothQuant need optCalibration(...)");
            }
            if (smoothQuantAlpha < 0 || smoothQuantAlpha >= 1) {
                throw new IllegalArgumentException(
                        "SmoothQuant alpha must be in [0, 1), got " + smoothQuantAlpha);
            }
            if (sensitivePrecision == null) {
                sensitivePrecision =
                        precision == Precision.INT8 ? Precision.INT8_WEIGHT_ONLY : Precision.FP32;
            }
            return new LowPrecisionConverter(this);
        }
    }
}
