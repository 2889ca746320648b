package io.github.tilewise.djl.lowp;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import io.github.tilewise.djl.encoder.linear.Fp32LinearOperator;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import io.github.tilewise.djl.encoder.linear.LinearOperator;
import io.github.tilewise.djl.encoder.text.EncoderTokenizer;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.encoder.text.TokenBatch;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the linear layers of an encoder see on a user's calibration set, recorded by running the
 * fp32 model over it: per layer, the largest magnitude of each input channel (for SmoothQuant
 * scales) and a sample of input rows (to measure each layer's quantization error, which finds the
 * sensitive layers).
 */
public final class Calibration {

    /** Input rows kept per layer for error measurements. */
    public static final int MAX_SAMPLE_ROWS = 512;

    private final Map<String, LayerInputs> layers;

    /** The recorded inputs of one layer. */
    static final class LayerInputs {
        final int width;
        final float[] channelAbsMax;
        float[] sample;
        int sampleRows;

        LayerInputs(int width) {
            this.width = width;
            this.channelAbsMax = new float[width];
            this.sample = new float[MAX_SAMPLE_ROWS * width];
        }

        void add(float[] x) {
            int n = x.length / width;
            for (int r = 0; r < n; r++) {
                for (int c = 0; c < width; c++) {
                    float a = Math.abs(x[r * width + c]);
                    if (a > channelAbsMax[c]) {
                        channelAbsMax[c] = a;
                    }
                }
                // Keep every second row up to the cap: a spread over the set, not just its start.
                if (sampleRows < MAX_SAMPLE_ROWS && (r % 2 == 0)) {
                    System.arraycopy(x, r * width, sample, sampleRows * width, width);
                    sampleRows++;
                }
            }
        }
    }

    private Calibration(Map<String, LayerInputs> layers) {
        this.layers = layers;
    }

    /**
     * Runs the fp32 encoder over calibration texts and records what each linear layer sees.
     *
     * @param encoder the encoder (its linear layers must be fp32 now; they are fp32 afterwards)
     * @param texts a few dozen representative texts
     * @param batchSize texts per forward
     * @return the calibration
     * @throws IllegalArgumentException if there are no texts or the batch size is not positive
     */
    public static Calibration collect(TextEncoder encoder, List<String> texts, int batchSize) {
        return collect(
                encoder.getBlock(), encoder.getTokenizer(), texts, batchSize, encoder.getManager());
    }

    /**
     * Tokenizes calibration texts, runs the fp32 encoder block over them and records what each
     * linear layer sees.
     *
     * @param block the encoder block (its linear layers must be fp32 now; they are fp32 afterwards)
     * @param tokenizer the model's tokenizer
     * @param texts a few dozen representative texts
     * @param batchSize texts per forward
     * @param manager where the token arrays are created (closed after each batch)
     * @return the calibration
     * @throws IllegalArgumentException if there are no texts or the batch size is not positive
     */
    public static Calibration collect(
            TextEncoderBlock block,
            EncoderTokenizer tokenizer,
            List<String> texts,
            int batchSize,
            NDManager manager) {
        if (texts == null || texts.isEmpty()) {
            throw new IllegalArgumentException("the calibration set is empty");
        }
        if (batchSize <= 0) {
            throw new IllegalArgumentException("batch size must be positive, got " + batchSize);
        }
        Map<String, LayerInputs> stats = install(block);
        try {
            for (int from = 0; from < texts.size(); from += batchSize) {
                TokenBatch batch =
                        tokenizer.encode(
                                texts.subList(from, Math.min(texts.size(), from + batchSize)));
                try (NDManager scope = manager.newSubManager()) {
                    NDList in = batch.toNDList(scope);
                    block.run(in.get(0), in.get(1), in.get(2));
                }
            }
        } finally {
            block.getLinearBlocks().forEach(l -> l.setOperator(null));
        }
        return new Calibration(stats);
    }

    /**
     * Runs the fp32 encoder block over token batches {@code (inputIds, attentionMask,
     * tokenTypeIds)}, each {@code [batch, seq]} INT64 of one shape, and records what each linear
     * layer sees.
     *
     * @param block the encoder block
     * @param batches the calibration batches
     * @return the calibration
     * @throws IllegalArgumentException naming the batch whose arrays are missing or misshapen
     */
    public static Calibration collect(TextEncoderBlock block, List<NDList> batches) {
        if (batches == null || batches.isEmpty()) {
            throw new IllegalArgumentException("the calibration set is empty");
        }
        for (int i = 0; i < batches.size(); i++) {
            NDList b = batches.get(i);
            if (b == null || b.size() != 3) {
                throw new IllegalArgumentException(
                        "calibration batch "
                                + i
                                + " must hold (inputIds, attentionMask, tokenTypeIds), got "
                                + (b == null ? "null" : b.size() + " arrays"));
            }
            Shape s = b.get(0).getShape();
            for (NDArray a : b) {
                if (a.getShape().dimension() != 2
                        || !a.getShape().equals(s)
                        || a.getDataType() != DataType.INT64) {
                    throw new IllegalArgumentException(
                            "calibration batch "
                                    + i
                                    + ": every array must be INT64 [batch, seq] of one shape, got "
                                    + a.getDataType()
                                    + " "
                                    + a.getShape()
                                    + " next to "
                                    + s);
                }
            }
        }
        Map<String, LayerInputs> stats = install(block);
        try {
            for (NDList b : batches) {
                block.run(b.get(0), b.get(1), b.get(2)).close();
            }
        } finally {
            block.getLinearBlocks().forEach(l -> l.setOperator(null));
        }
        return new Calibration(stats);
    }

    private static Map<String, LayerInputs> install(TextEncoderBlock block) {
        Map<String, LayerInputs> stats = new LinkedHashMap<>();
        for (LinearBlock layer : block.getLinearBlocks()) {
            LayerInputs inputs = new LayerInputs(layer.getInFeatures());
            stats.put(layer.getName(), inputs);
            Fp32LinearOperator fp32 =
                    new Fp32LinearOperator(
                            layer.getWeight(), layer.getBias(), layer.getActivation());
            layer.setOperator(
                    new LinearOperator() {
                        @Override
                        public NDArray forward(NDArray x, NDArray residual) {
                            inputs.add(x.toFloatArray());
                            return fp32.forward(x, residual);
                        }

                        @Override
                        public String describe() {
                            return "fp32-recording";
                        }
                    });
        }
        return stats;
    }

    /**
     * Returns the names of the recorded layers.
     *
     * @return layer names in encoder order
     */
    public List<String> getLayerNames() {
        return List.copyOf(layers.keySet());
    }

    /**
     * Returns the largest magnitude seen on each input channel of a layer.
     *
     * @param layer the layer's name
     * @return {@code in} floats (a copy)
     * @throws IllegalArgumentException if the layer was not recorded
     */
    public float[] getChannelAbsMax(String layer) {
        return get(layer).channelAbsMax.clone();
    }

    /**
     * Returns sample input rows of a layer.
     *
     * @param layer the layer's name
     * @return {@code rows·in} floats, row-major (a copy)
     */
    public float[] getSampleRows(String layer) {
        LayerInputs l = get(layer);
        float[] out = new float[l.sampleRows * l.width];
        System.arraycopy(l.sample, 0, out, 0, out.length);
        return out;
    }

    /**
     * Returns the recorded layers' input widths.
     *
     * @return layer name to width
     */
    public Map<String, Integer> getWidths() {
        Map<String, Integer> m = new LinkedHashMap<>();
        layers.forEach((k, v) -> m.put(k, v.width));
        return Collections.unmodifiableMap(m);
    }

    private LayerInputs get(String layer) {
        LayerInputs l = layers.get(layer);
        if (l == null) {
            throw new IllegalArgumentException(
                    "layer '" + layer + "' was not recorded; known: " + layers.keySet());
        }
        return l;
    }
}
