package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import io.github.tilewise.djl.attention.AttentionOptions;
import io.github.tilewise.djl.attention.FusedAttention;
import io.github.tilewise.djl.attention.RotaryEmbedding;
import io.github.tilewise.djl.encoder.linear.LinearActivation;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import java.util.List;

/**
 * One pre-norm ModernBERT layer, on packed sequences {@code [tokens, hidden]}:
 *
 * <pre>
 *   q, k, v = split(Wqkv · norm_a(x));  q, k = rotate(q, k, position, θ)
 *   a = x + Wo · Attention(q, k, v)          (local layers: keys within ±w positions)
 *   u, g = split(Wi · norm_m(a))
 *   y = a + Wo' · (act(u) ⊙ g)                (GeGLU)
 * </pre>
 *
 * The GeGLU is one {@link LinearBlock} with a gated activation (one native pass where the linear
 * layers are native; the checkpoint's {@code mlp.Wi.weight [2·ff, hidden]} as it is).
 *
 * <p>Layer 0 has no attention norm ({@code norm_a} is the identity: the embeddings end with a
 * norm). Norms and linear layers carry biases only where the configuration says so ({@code
 * norm_bias}, {@code attention_bias}, {@code mlp_bias}); θ is {@code global_rope_theta} or, in
 * local layers, {@code local_rope_theta}.
 */
public final class ModernBertLayer extends AbstractBlock {

    private static final byte VERSION = 1;

    private final EncoderConfig config;
    private final boolean local;
    private final LayerNormBlock attentionNorm;
    private final LinearBlock qkv;
    private final LinearBlock attentionOutput;
    private final LayerNormBlock mlpNorm;
    private final LinearBlock mlpInput;
    private final LinearBlock mlpOutput;

    /**
     * Creates layer {@code index} of an encoder.
     *
     * @param config the encoder's configuration
     * @param index the layer's index, for checkpoint names and its attention type
     */
    public ModernBertLayer(EncoderConfig config, int index) {
        super(VERSION);
        this.config = config;
        this.local = config.isLocalLayer(index);
        int h = config.getHiddenSize();
        int ff = config.getIntermediateSize();
        float eps = config.getLayerNormEps();
        String p = "layers." + index + ".";
        attentionNorm =
                index == 0
                        ? null
                        : addChildBlock("attn_norm", new LayerNormBlock(p + "attn_norm", h, eps));
        qkv = addChildBlock("Wqkv", linear(p + "attn.Wqkv", h, 3 * h));
        attentionOutput = addChildBlock("attn_Wo", linear(p + "attn.Wo", h, h));
        mlpNorm = addChildBlock("mlp_norm", new LayerNormBlock(p + "mlp_norm", h, eps));
        // Wi [2·ff, h] as in the checkpoint; the gated activation writes act(u) ⊙ g in one pass.
        mlpInput =
                addChildBlock(
                        "Wi",
                        new LinearBlock(
                                p + "mlp.Wi",
                                h,
                                2 * ff,
                                LinearActivation.gated(config.getActivation())));
        mlpOutput = addChildBlock("mlp_Wo", linear(p + "mlp.Wo", ff, h));
    }

    private static LinearBlock linear(String name, int in, int out) {
        return new LinearBlock(name, in, out, LinearActivation.NONE);
    }

    /**
     * Whether the layer attends within a sliding window.
     *
     * @return true for local layers
     */
    public boolean isLocal() {
        return local;
    }

    /**
     * Runs the layer on packed sequences.
     *
     * @param x {@code [tokens, hidden]}
     * @param offsets sequence {@code s} owns rows {@code [offsets[s], offsets[s + 1])}
     * @param positions each row's position in its own sequence
     * @param precision the attention's options (compute precision); the window is added here
     * @return {@code [tokens, hidden]}, attached to {@code x}'s manager; {@code x} is kept
     */
    public NDArray applyPacked(
            NDArray x, int[] offsets, int[] positions, AttentionOptions precision) {
        return applyPacked(x, offsets, positions, precision, null, -1);
    }

    /**
     * As {@link #applyPacked(NDArray, int[], int[], AttentionOptions)}, every intermediate written
     * into a forward's {@code buffers} (null: new arrays) and the output into slot {@code outSlot}
     * (-1: a new array). At 8,192 tokens the intermediates are 25-75 MB each: new arrays would
     * page-fault on every layer of every call (glibc returns blocks this large to the kernel).
     */
    NDArray applyPacked(
            NDArray x,
            int[] offsets,
            int[] positions,
            AttentionOptions precision,
            ActivationBuffers buffers,
            int outSlot) {
        NDManager parent = x.getManager();
        try (NDManager scope = parent.newSubManager()) {
            x.tempAttach(scope);
            int heads = config.getNumHeads();
            // Intermediates are closed as soon as they are used (a view: only the view).
            NDArray normed =
                    attentionNorm == null
                            ? x
                            : attentionNorm.apply(x, buffers, ActivationBuffers.NORMED);
            NDArray projected =
                    ActivationBuffers.apply(qkv, normed, null, buffers, ActivationBuffers.QUERY);
            if (normed != x) {
                normed.close();
            }
            float theta = local ? config.getLocalRopeTheta() : config.getRopeTheta();
            RotaryEmbedding.applyToQueryKey(projected, heads, positions, theta);
            AttentionOptions.Builder options =
                    AttentionOptions.builder().optComputePrecision(precision.getComputePrecision());
            if (local) {
                options.optSlidingWindow(config.getLocalWindow(), config.getLocalWindow());
            }
            NDArray context =
                    projected.getDataType() != DataType.FLOAT32
                            ? null
                            : ActivationBuffers.lend(
                                    buffers,
                                    ActivationBuffers.CONTEXT,
                                    new Shape(
                                            projected.getShape().get(0),
                                            heads,
                                            config.getHeadSize()),
                                    projected.getManager());
            NDArray attended =
                    FusedAttention.forwardPackedQkv(
                            projected, heads, offsets, options.build(), context);
            projected.close();
            NDArray flat = attended.reshape(x.getShape());
            NDArray a =
                    ActivationBuffers.apply(
                            attentionOutput, flat, x, buffers, ActivationBuffers.RESIDUAL);
            flat.close();
            attended.close();
            NDArray mlpIn = mlpNorm.apply(a, buffers, ActivationBuffers.NORMED);
            NDArray activated =
                    ActivationBuffers.apply(
                            mlpInput, mlpIn, null, buffers, ActivationBuffers.HIDDEN);
            mlpIn.close();
            NDArray y = ActivationBuffers.apply(mlpOutput, activated, a, buffers, outSlot);
            activated.close();
            a.close();
            return scope.ret(y);
        }
    }

    /**
     * Returns the layer's linear projections: Wqkv, the attention output, Wi, the feed-forward
     * output.
     *
     * @return the projections
     */
    public List<LinearBlock> getLinearBlocks() {
        return List.of(qkv, attentionOutput, mlpInput, mlpOutput);
    }

    void collectCheckpointParameters(List<CheckpointParameter> out) {
        if (attentionNorm != null) {
            attentionNorm.collectCheckpointParameters(out, config.hasNormBias());
        }
        BertLayer.collectLinear(qkv, out, config.hasBias());
        BertLayer.collectLinear(attentionOutput, out, config.hasBias());
        mlpNorm.collectCheckpointParameters(out, config.hasNormBias());
        BertLayer.collectLinear(mlpInput, out, config.hasBias());
        BertLayer.collectLinear(mlpOutput, out, config.hasBias());
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        throw new UnsupportedOperationException(
                "a ModernBertLayer runs inside ModernBertEncoder (it needs offsets and positions)");
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
        for (LinearBlock l : List.of(qkv, attentionOutput, mlpInput)) {
            l.initialize(manager, dataType, x);
        }
        mlpOutput.initialize(manager, dataType, ff);
        if (attentionNorm != null) {
            attentionNorm.initialize(manager, dataType, x);
        }
        mlpNorm.initialize(manager, dataType, x);
    }
}
