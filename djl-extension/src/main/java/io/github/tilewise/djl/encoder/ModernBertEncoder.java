package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import io.github.tilewise.djl.attention.AttentionOptions;
import io.github.tilewise.djl.attention.ComputePrecision;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * ModernBERT (Hugging Face {@code modernbert}): token embeddings and a norm, {@code N} pre-norm
 * {@link ModernBertLayer}s with rotary positions, GeGLU feed-forward layers and, in every layer but
 * each {@code global_attn_every_n_layers}-th, attention within a sliding window of {@code
 * local_attention / 2} positions on each side; then a final norm. No position table, no token
 * types, no pooler: the longest text is {@code max_position_embeddings} (8,192 in the published
 * models).
 *
 * <p>Every batch runs as packed sequences (no padded path): local attention visits only the key
 * tiles inside each token's window, so a layer's attention work grows as {@code N × window}, not
 * {@code N²}. Inputs, outputs and lifecycle: {@link TransformerEncoder}.
 */
public final class ModernBertEncoder extends TransformerEncoder {

    private static final byte VERSION = 1;

    private final Parameter tokens;
    private final LayerNormBlock embeddingNorm;
    private final List<ModernBertLayer> layers;
    private final LayerNormBlock finalNorm;

    /**
     * Creates an encoder with uninitialised parameters; load a checkpoint into it.
     *
     * @param config the configuration, from the checkpoint ({@link EncoderArchitecture#MODERNBERT})
     */
    public ModernBertEncoder(EncoderConfig config) {
        super(VERSION, config);
        int h = config.getHiddenSize();
        float eps = config.getLayerNormEps();
        tokens = addParameter(ParameterValues.create("tok_embeddings", Parameter.Type.WEIGHT));
        embeddingNorm = addChildBlock("norm", new LayerNormBlock("embeddings.norm", h, eps));
        List<ModernBertLayer> list = new ArrayList<>();
        for (int i = 0; i < config.getNumLayers(); i++) {
            list.add(addChildBlock("layer" + i, new ModernBertLayer(config, i)));
        }
        layers = Collections.unmodifiableList(list);
        finalNorm = addChildBlock("final_norm", new LayerNormBlock("final_norm", h, eps));
    }

    @Override
    protected NDArray forwardPacked(
            NDArray ids,
            NDArray types,
            long[] positions,
            int[] offsets,
            ComputePrecision attentionPrecision) {
        int[] rotaryPositions = new int[positions.length];
        for (int t = 0; t < positions.length; t++) {
            rotaryPositions[t] = (int) positions[t];
        }
        AttentionOptions precision =
                AttentionOptions.builder().optComputePrecision(attentionPrecision).build();
        NDArray embedded = rows(tokens.getArray(), ids);
        ActivationBuffers buffers = acquireBuffers(embedded);
        try {
            // Layer i writes slot alternatingSlot(i) and reads the other: layer 0 reads the odd.
            NDArray hidden =
                    embeddingNorm.apply(embedded, buffers, ActivationBuffers.alternatingSlot(1));
            embedded.close();
            for (int i = 0; i < layers.size(); i++) {
                NDArray next =
                        layers.get(i)
                                .applyPacked(
                                        hidden,
                                        offsets,
                                        rotaryPositions,
                                        precision,
                                        buffers,
                                        ActivationBuffers.alternatingSlot(i));
                hidden.close();
                hidden = next;
            }
            // A new array: the only one that leaves the forward.
            NDArray out = finalNorm.apply(hidden);
            hidden.close();
            return out;
        } finally {
            releaseBuffers(buffers);
        }
    }

    /**
     * Returns the layers, first to last.
     *
     * @return the layers (unmodifiable)
     */
    public List<ModernBertLayer> getLayers() {
        return layers;
    }

    @Override
    public List<LinearBlock> getLinearBlocks() {
        List<LinearBlock> all = new ArrayList<>();
        for (ModernBertLayer layer : layers) {
            all.addAll(layer.getLinearBlocks());
        }
        return all;
    }

    @Override
    public List<CheckpointParameter> getCheckpointParameters() {
        List<CheckpointParameter> out = new ArrayList<>();
        out.add(
                new CheckpointParameter(
                        "embeddings.tok_embeddings.weight",
                        tokens,
                        new Shape(config.getVocabSize(), config.getHiddenSize())));
        embeddingNorm.collectCheckpointParameters(out, config.hasNormBias());
        for (ModernBertLayer layer : layers) {
            layer.collectCheckpointParameters(out);
        }
        finalNorm.collectCheckpointParameters(out, config.hasNormBias());
        return out;
    }

    @Override
    protected void prepare(Shape[] inputShapes) {
        ParameterValues.prepare(tokens, new Shape(config.getVocabSize(), config.getHiddenSize()));
    }

    @Override
    protected void initializeChildBlocks(
            NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape hidden = new Shape(1, config.getHiddenSize());
        embeddingNorm.initialize(manager, dataType, hidden);
        for (ModernBertLayer layer : layers) {
            layer.initialize(manager, dataType, hidden);
        }
        finalNorm.initialize(manager, dataType, hidden);
    }
}
