package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import io.github.tilewise.djl.attention.AttentionLayout;
import io.github.tilewise.djl.attention.AttentionOptions;
import io.github.tilewise.djl.attention.FusedAttention;
import io.github.tilewise.djl.encoder.linear.LinearActivation;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import io.github.tilewise.djl.encoder.linear.SharedInputLinear;
import java.util.List;

/**
 * One post-LayerNorm BERT encoder layer:
 *
 * <pre>
 *   a = LayerNorm(x + Wo·Attention(Wq·x, Wk·x, Wv·x))
 *   y = LayerNorm(a + W2·act(W1·a))
 * </pre>
 *
 * The projections are {@link LinearBlock}s (pluggable arithmetic); attention is {@link
 * FusedAttention} reading the projections' {@code [batch, seq, hidden]} outputs as {@code [batch,
 * seq, heads, headDim]} ({@link AttentionLayout#BATCH_SEQ_HEADS_DIM}) without a transpose.
 */
public final class BertLayer extends AbstractBlock {

    private static final byte VERSION = 1;

    private final EncoderConfig config;
    private final LinearBlock query;
    private final LinearBlock key;
    private final LinearBlock value;
    private final LinearBlock attentionOutput;
    private final LayerNormBlock attentionNorm;
    private final LinearBlock intermediate;
    private final LinearBlock output;
    private final LayerNormBlock outputNorm;

    /**
     * Creates layer {@code index} of an encoder.
     *
     * @param config the encoder's configuration
     * @param index the layer's index, for checkpoint names
     */
    public BertLayer(EncoderConfig config, int index) {
        super(VERSION);
        this.config = config;
        int h = config.getHiddenSize();
        int ff = config.getIntermediateSize();
        float eps = config.getLayerNormEps();
        String p = "encoder.layer." + index + ".";
        query = addChildBlock("query", linear(p + "attention.self.query", h, h));
        key = addChildBlock("key", linear(p + "attention.self.key", h, h));
        value = addChildBlock("value", linear(p + "attention.self.value", h, h));
        attentionOutput =
                addChildBlock("attention_output", linear(p + "attention.output.dense", h, h));
        attentionNorm =
                addChildBlock(
                        "attention_norm",
                        new LayerNormBlock(p + "attention.output.LayerNorm", h, eps));
        intermediate =
                addChildBlock(
                        "intermediate",
                        new LinearBlock(
                                p + "intermediate.dense",
                                h,
                                ff,
                                LinearActivation.of(config.getActivation())));
        output = addChildBlock("output", linear(p + "output.dense", ff, h));
        outputNorm =
                addChildBlock("output_norm", new LayerNormBlock(p + "output.LayerNorm", h, eps));
    }

    private static LinearBlock linear(String name, int in, int out) {
        return new LinearBlock(name, in, out, LinearActivation.NONE);
    }

    /**
     * Runs the layer.
     *
     * @param x {@code [batch, seq, hidden]}
     * @param attention the attention options (layout {@link AttentionLayout#BATCH_SEQ_HEADS_DIM}
     *     and the key mask)
     * @return {@code [batch, seq, hidden]}, attached to {@code x}'s manager; {@code x} is kept
     */
    public NDArray apply(NDArray x, AttentionOptions attention) {
        return apply(x, null, attention);
    }

    /**
     * Runs the layer on packed sequences: the rows of every sequence, one after another, with no
     * padding; each sequence attends only to its own rows.
     *
     * @param x {@code [tokens, hidden]}
     * @param offsets sequence {@code s} owns rows {@code [offsets[s], offsets[s + 1])}
     * @param attention scale and compute precision (no masks: the offsets are the mask)
     * @return {@code [tokens, hidden]}, attached to {@code x}'s manager; {@code x} is kept
     */
    public NDArray applyPacked(NDArray x, int[] offsets, AttentionOptions attention) {
        return apply(x, offsets, attention);
    }

    /** The layer on a padded batch ({@code offsets} null) or on packed sequences. */
    private NDArray apply(NDArray x, int[] offsets, AttentionOptions attention) {
        return apply(x, offsets, attention, null, -1);
    }

    /**
     * The layer, its projections, normalised attention output and feed-forward rows written into a
     * forward's {@code buffers} (null: new arrays) and its output into slot {@code outSlot} (-1: a
     * new array, which the last layer must use, since its output leaves the forward).
     */
    NDArray apply(
            NDArray x,
            int[] offsets,
            AttentionOptions attention,
            ActivationBuffers buffers,
            int outSlot) {
        Shape shape = x.getShape();
        NDManager parent = x.getManager();
        try (NDManager scope = parent.newSubManager()) {
            x.tempAttach(scope);
            NDArray context = attend(x, offsets, attention, buffers).reshape(shape);
            NDArray a =
                    attentionNorm.applyAfter(
                            attentionOutput, context, x, buffers, ActivationBuffers.NORMED);
            NDArray y =
                    outputNorm.applyAfter(
                            intermediate, output, a, a, buffers, ActivationBuffers.HIDDEN, outSlot);
            return scope.ret(y);
        }
    }

    /**
     * Self-attention of {@code x}: one packed projection when the query, key and value operators
     * are the parts of one {@link SharedInputLinear} (a converter fused them), else three.
     */
    private NDArray attend(
            NDArray x, int[] offsets, AttentionOptions attention, ActivationBuffers buffers) {
        int heads = config.getNumHeads();
        SharedInputLinear qkv =
                SharedInputLinear.of(query.getOperator(), key.getOperator(), value.getOperator());
        if (qkv != null) {
            NDArray all =
                    qkv.forwardAll(
                            x,
                            ActivationBuffers.lend(
                                    buffers,
                                    ActivationBuffers.QUERY,
                                    qkv.getFused(),
                                    x,
                                    qkv.totalWidth()));
            Shape as = all.getShape();
            long headDim = as.get(as.dimension() - 1) / (3L * heads);
            Shape contextShape =
                    offsets == null
                            ? new Shape(as.get(0), as.get(1), heads, headDim)
                            : new Shape(as.get(0), heads, headDim);
            NDArray context = lendContext(buffers, all, contextShape);
            return offsets == null
                    ? FusedAttention.forwardPackedQkv(all, heads, attention, context)
                    : FusedAttention.forwardPackedQkv(all, heads, offsets, attention, context);
        }
        Shape shape = x.getShape();
        Shape headShape =
                offsets == null
                        ? new Shape(shape.get(0), shape.get(1), heads, config.getHeadSize())
                        : new Shape(shape.get(0), heads, config.getHeadSize());
        NDArray q =
                ActivationBuffers.apply(query, x, null, buffers, ActivationBuffers.QUERY)
                        .reshape(headShape);
        NDArray k =
                ActivationBuffers.apply(key, x, null, buffers, ActivationBuffers.KEY)
                        .reshape(headShape);
        NDArray v =
                ActivationBuffers.apply(value, x, null, buffers, ActivationBuffers.VALUE)
                        .reshape(headShape);
        NDArray context = lendContext(buffers, q, headShape);
        return offsets == null
                ? FusedAttention.forward(q, k, v, attention, context)
                : FusedAttention.forwardPacked(q, k, v, offsets, offsets, attention, context);
    }

    /** The attention output's slot as an array of {@code shape} (FLOAT32 inputs only), or null. */
    private static NDArray lendContext(ActivationBuffers buffers, NDArray input, Shape shape) {
        if (input.getDataType() != DataType.FLOAT32) {
            return null;
        }
        return ActivationBuffers.lend(
                buffers, ActivationBuffers.CONTEXT, shape, input.getManager());
    }

    /**
     * Returns the query, key and value projections, which read the same input (a converter may
     * compute them as one {@link SharedInputLinear}).
     *
     * @return query, key, value
     */
    public List<LinearBlock> getAttentionProjections() {
        return List.of(query, key, value);
    }

    /**
     * Returns the layer's linear projections in checkpoint order: query, key, value, attention
     * output, intermediate, output.
     *
     * @return the projections
     */
    public List<LinearBlock> getLinearBlocks() {
        return List.of(query, key, value, attentionOutput, intermediate, output);
    }

    void collectCheckpointParameters(List<CheckpointParameter> out) {
        for (LinearBlock l : getLinearBlocks()) {
            collectLinear(l, out);
            if (l == attentionOutput) {
                attentionNorm.collectCheckpointParameters(out);
            }
        }
        outputNorm.collectCheckpointParameters(out);
    }

    static void collectLinear(LinearBlock l, List<CheckpointParameter> out) {
        collectLinear(l, out, true);
    }

    /** As above; without a checkpoint bias ({@code attention_bias = false}) the bias stays zero. */
    static void collectLinear(LinearBlock l, List<CheckpointParameter> out, boolean withBias) {
        out.add(
                new CheckpointParameter(
                        l.getName() + ".weight",
                        l.getParameters().get("weight"),
                        new Shape(l.getOutFeatures(), l.getInFeatures())));
        if (withBias) {
            out.add(
                    new CheckpointParameter(
                            l.getName() + ".bias",
                            l.getParameters().get("bias"),
                            new Shape(l.getOutFeatures())));
        }
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        NDArray x = inputs.head();
        AttentionOptions.Builder options =
                AttentionOptions.builder().optLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM);
        if (inputs.size() > 1) {
            options.optKeyPaddingMask(inputs.get(1));
        }
        return new NDList(apply(x, options.build()));
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }

    @Override
    protected void initializeChildBlocks(
            NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape x = inputShapes[0];
        Shape ff = x.slice(0, x.dimension() - 1).add(config.getIntermediateSize());
        for (LinearBlock l : List.of(query, key, value, attentionOutput, intermediate)) {
            l.initialize(manager, dataType, x);
        }
        output.initialize(manager, dataType, ff);
        attentionNorm.initialize(manager, dataType, x);
        outputNorm.initialize(manager, dataType, x);
    }
}
