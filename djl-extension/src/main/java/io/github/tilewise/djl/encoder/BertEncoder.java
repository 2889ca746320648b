package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import io.github.tilewise.djl.attention.AttentionLayout;
import io.github.tilewise.djl.attention.AttentionOptions;
import io.github.tilewise.djl.attention.ComputePrecision;
import io.github.tilewise.djl.encoder.linear.LinearActivation;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * An encoder with BERT's post-LayerNorm layer: BERT itself (MiniLM, BGE, E5 ...), RoBERTa,
 * XLM-RoBERTa, DistilBERT and MPNet, whose checkpoints are mapped onto BERT's tensor names when
 * read. {@link BertEmbeddings}, {@code N} {@link BertLayer}s and, when the checkpoint has one, the
 * pooler {@code tanh(dense(h[:, 0]))}. Inputs, outputs and lifecycle: {@link TransformerEncoder}.
 */
public final class BertEncoder extends TransformerEncoder {

    private static final byte VERSION = 1;

    private final BertEmbeddings embeddings;
    private final List<BertLayer> layers;
    private final LinearBlock pooler;
    private final Parameter relativeBias;

    /**
     * Creates an encoder with uninitialised parameters; load a checkpoint into it or call {@link
     * #initialize}.
     *
     * @param config the configuration, from the checkpoint
     */
    public BertEncoder(EncoderConfig config) {
        super(VERSION, config);
        embeddings = addChildBlock("embeddings", new BertEmbeddings(config));
        List<BertLayer> list = new ArrayList<>();
        for (int i = 0; i < config.getNumLayers(); i++) {
            list.add(addChildBlock("layer" + i, new BertLayer(config, i)));
        }
        layers = Collections.unmodifiableList(list);
        relativeBias =
                config.getRelativeBuckets() > 0
                        ? addParameter(
                                ParameterValues.create(
                                        "relative_attention_bias", Parameter.Type.WEIGHT))
                        : null;
        pooler =
                config.hasPooler()
                        ? addChildBlock(
                                "pooler",
                                new LinearBlock(
                                        "pooler.dense",
                                        config.getHiddenSize(),
                                        config.getHiddenSize(),
                                        LinearActivation.TANH))
                        : null;
    }

    @Override
    protected NDArray forwardPacked(
            NDArray ids,
            NDArray types,
            long[] positions,
            int[] offsets,
            ComputePrecision attentionPrecision) {
        AttentionOptions.Builder options =
                AttentionOptions.builder().optComputePrecision(attentionPrecision);
        AttentionOptions attention = withRelativeBias(options, ids.getManager()).build();
        NDArray hidden = embeddings.apply(ids, types, ids.getManager().create(positions));
        return runLayers(hidden, offsets, attention);
    }

    @Override
    protected NDArray forwardPadded(
            NDArray ids,
            NDArray mask,
            NDArray types,
            long[] positions,
            ComputePrecision attentionPrecision) {
        Shape shape = ids.getShape();
        AttentionOptions attention =
                attentionOptions(
                        mask,
                        shape,
                        withRelativeBias(
                                AttentionOptions.builder()
                                        .optLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM)
                                        .optComputePrecision(attentionPrecision),
                                ids.getManager()));
        NDArray hidden = embeddings.apply(ids, types, ids.getManager().create(positions, shape));
        return runLayers(hidden, null, attention);
    }

    /**
     * The layers on packed ({@code offsets}) or padded ({@code offsets} null) rows, with activation
     * buffers borrowed for this forward: every layer but the last writes into them, the last into a
     * new array.
     */
    private NDArray runLayers(NDArray hidden, int[] offsets, AttentionOptions attention) {
        ActivationBuffers buffers = acquireBuffers(hidden);
        try {
            for (int i = 0; i < layers.size(); i++) {
                NDArray next =
                        layers.get(i)
                                .apply(
                                        hidden,
                                        offsets,
                                        attention,
                                        buffers,
                                        ActivationBuffers.outputSlot(i, layers.size()));
                hidden.close();
                hidden = next;
            }
            return hidden;
        } finally {
            releaseBuffers(buffers);
        }
    }

    /** Adds MPNet's relative-position bias table (built from the buckets) to the options. */
    private AttentionOptions.Builder withRelativeBias(
            AttentionOptions.Builder options, NDManager scope) {
        if (relativeBias != null) {
            options.optRelativeBias(
                    RelativePositionBuckets.table(
                            relativeBias.getArray(),
                            RelativePositionBuckets.MPNET_BUCKETS,
                            config.getRelativeMaxDistance(),
                            scope));
        }
        return options;
    }

    @Override
    protected LinearBlock getPooler() {
        return pooler;
    }

    /**
     * Returns the encoder layers, first to last.
     *
     * @return the layers (unmodifiable)
     */
    public List<BertLayer> getLayers() {
        return layers;
    }

    /**
     * Returns every linear projection (per layer: query, key, value, attention output,
     * intermediate, output; then the pooler), for converters.
     *
     * @return the projections
     */
    @Override
    public List<LinearBlock> getLinearBlocks() {
        List<LinearBlock> all = new ArrayList<>();
        for (BertLayer layer : layers) {
            all.addAll(layer.getLinearBlocks());
        }
        if (pooler != null) {
            all.add(pooler);
        }
        return all;
    }

    /**
     * Returns every parameter with its Hugging Face checkpoint name (without a {@code bert.}
     * prefix) and shape, in checkpoint order.
     *
     * @return the parameters
     */
    @Override
    public List<CheckpointParameter> getCheckpointParameters() {
        List<CheckpointParameter> out = new ArrayList<>();
        embeddings.collectCheckpointParameters(out);
        for (BertLayer layer : layers) {
            layer.collectCheckpointParameters(out);
        }
        if (relativeBias != null) {
            out.add(
                    new CheckpointParameter(
                            "encoder.relative_attention_bias.weight",
                            relativeBias,
                            new Shape(config.getRelativeBuckets(), config.getNumHeads())));
        }
        if (pooler != null) {
            BertLayer.collectLinear(pooler, out);
        }
        return out;
    }

    @Override
    protected List<List<LinearBlock>> getSharedInputGroups() {
        List<List<LinearBlock>> groups = new ArrayList<>();
        for (BertLayer layer : layers) {
            groups.add(layer.getAttentionProjections());
        }
        return groups;
    }

    @Override
    protected void prepare(Shape[] inputShapes) {
        if (relativeBias != null) {
            ParameterValues.prepare(
                    relativeBias, new Shape(config.getRelativeBuckets(), config.getNumHeads()));
        }
    }

    @Override
    protected void initializeChildBlocks(
            NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape ids = inputShapes[0];
        embeddings.initialize(manager, dataType, ids);
        Shape hidden = ids.add(config.getHiddenSize());
        for (BertLayer layer : layers) {
            layer.initialize(manager, dataType, hidden);
        }
        if (pooler != null) {
            pooler.initialize(manager, dataType, new Shape(ids.get(0), config.getHiddenSize()));
        }
    }

    /**
     * Turns an attention mask into attention options: right-padded masks (the tokenizer's) become
     * key valid lengths, which let the kernel skip padded tiles; any other mask is passed as a key
     * padding mask.
     */
    static AttentionOptions attentionOptions(
            NDArray mask, Shape shape, AttentionOptions.Builder options) {
        if (mask == null) {
            return options.build();
        }
        int batch = (int) shape.get(0);
        int seq = (int) shape.get(1);
        int[] values;
        if (mask.getDataType() == DataType.INT32) {
            values = mask.toIntArray();
        } else {
            try (NDArray asInt = mask.toType(DataType.INT32, true)) {
                values = asInt.toIntArray();
            }
        }
        int[] lengths = new int[batch];
        boolean prefix = true;
        for (int b = 0; b < batch && prefix; b++) {
            int len = 0;
            while (len < seq && values[b * seq + len] != 0) {
                len++;
            }
            for (int t = len; t < seq; t++) {
                if (values[b * seq + t] != 0) {
                    prefix = false;
                    break;
                }
            }
            lengths[b] = len;
        }
        return prefix
                ? options.optKeyValidLengths(lengths).build()
                : options.optKeyPaddingMask(mask).build();
    }
}
