package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import io.github.tilewise.djl.CallGuard;
import io.github.tilewise.djl.encoder.linear.LinearActivation;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import java.util.ArrayList;
import java.util.List;

/**
 * A whole text model: a {@link TransformerEncoder} with the heads that turn its token vectors into
 * results, the block a Tilewise {@code Model} runs.
 *
 * <p>Inputs: as {@link TransformerEncoder} ({@code input_ids}, {@code attention_mask}, optionally
 * {@code token_type_ids}). Outputs, by name: {@code last_hidden_state} (always first, so
 * translators written for Hugging Face exports work unchanged), {@code pooler_output} (with a
 * pooler), {@code sentence_embedding} {@code [batch, hidden]} (unless pooling is {@link
 * Pooling#NONE}; L2-normalised when asked) and {@code logits} {@code [batch, labels]} (with a
 * classifier).
 */
public final class TextEncoderBlock extends AbstractBlock implements AutoCloseable {

    /** Name of the pooled (and optionally normalised) text embedding output. */
    public static final String SENTENCE_EMBEDDING = "sentence_embedding";

    /** Name of the classifier's output. */
    public static final String LOGITS = "logits";

    private static final String OUTPUTS = "tilewise.outputs";

    private static final byte VERSION = 1;

    private final TransformerEncoder encoder;
    private final LinearBlock classifier;
    private final Pooling pooling;
    private final boolean normalize;
    private final CallGuard guard = new CallGuard("TextEncoderBlock");

    /**
     * Creates the block.
     *
     * @param config the configuration (a classifier is added when it has labels)
     * @param pooling how token vectors become one text vector
     * @param normalize whether the text vector is L2-normalised
     */
    public TextEncoderBlock(EncoderConfig config, Pooling pooling, boolean normalize) {
        super(VERSION);
        if (pooling == Pooling.POOLER && !config.hasPooler()) {
            throw new IllegalArgumentException(
                    "pooling POOLER needs a checkpoint with a pooler (pooler.dense.*); this one has"
                            + " none: use CLS or MEAN");
        }
        this.pooling = pooling;
        this.normalize = normalize;
        encoder = addChildBlock("bert", TransformerEncoder.create(config));
        classifier =
                config.hasClassifier()
                        ? addChildBlock(
                                "classifier",
                                new LinearBlock(
                                        "classifier",
                                        config.getHiddenSize(),
                                        config.getLabels().size(),
                                        LinearActivation.NONE))
                        : null;
    }

    /**
     * Returns the encoder.
     *
     * @return the encoder
     */
    public TransformerEncoder getEncoder() {
        return encoder;
    }

    /**
     * Returns the pooling mode.
     *
     * @return the pooling
     */
    public Pooling getPooling() {
        return pooling;
    }

    /**
     * Returns whether text vectors are L2-normalised.
     *
     * @return true if normalised
     */
    public boolean isNormalize() {
        return normalize;
    }

    /**
     * Returns every linear projection, the classifier's included, for converters.
     *
     * @return the projections
     */
    public List<LinearBlock> getLinearBlocks() {
        List<LinearBlock> all = new ArrayList<>(encoder.getLinearBlocks());
        if (classifier != null) {
            all.add(classifier);
        }
        return all;
    }

    /**
     * Returns every parameter with its Hugging Face checkpoint name.
     *
     * @return the parameters
     */
    public List<CheckpointParameter> getCheckpointParameters() {
        List<CheckpointParameter> all = new ArrayList<>(encoder.getCheckpointParameters());
        if (classifier != null) {
            BertLayer.collectLinear(classifier, all);
        }
        return all;
    }

    /** Rebuilds fp32 operators after the parameter arrays were replaced. */
    public void resetLinearOperators() {
        for (LinearBlock l : getLinearBlocks()) {
            l.setOperator(null);
        }
    }

    /**
     * Runs the model.
     *
     * @param inputIds {@code [batch, seq]}
     * @param attentionMask {@code [batch, seq]} or null
     * @param tokenTypeIds {@code [batch, seq]} or null
     * @return the named outputs (see the class comment), attached to {@code inputIds}' manager
     * @throws IllegalStateException if the block is closed
     */
    public NDList run(NDArray inputIds, NDArray attentionMask, NDArray tokenTypeIds) {
        // The pooling after the forward runs under the same PyTorch thread limit: PyTorch's first
        // parallel op after the limit is lifted costs about 1 ms (its OpenMP team grows again).
        try (CallGuard.Lease lease = guard.enter();
                PyTorchThreads limit = PyTorchThreads.limit()) {
            return runLive(inputIds, attentionMask, tokenTypeIds);
        }
    }

    private NDList runLive(NDArray inputIds, NDArray attentionMask, NDArray tokenTypeIds) {
        NDList out = encoder.encode(inputIds, attentionMask, tokenTypeIds);
        NDManager parent = inputIds.getManager();
        try (NDManager scope = parent.newSubManager()) {
            NDArray hidden = out.get(0);
            NDArray pooled = out.size() > 1 ? out.get(1) : null;
            NDList extra = new NDList();
            if (pooling != Pooling.NONE) {
                NDArray mask =
                        attentionMask != null
                                ? attentionMask
                                : scope.ones(inputIds.getShape(), DataType.INT64);
                NDArray text = pooling.apply(hidden, mask, pooled);
                if (text == hidden || text == pooled) {
                    text = text.duplicate();
                }
                text.attach(scope);
                if (normalize) {
                    text = text.normalize(2, -1);
                }
                text.setName(SENTENCE_EMBEDDING);
                extra.add(text);
            }
            if (classifier != null) {
                NDArray logits = classifier.apply(pooled, null);
                logits.attach(scope);
                logits.setName(LOGITS);
                extra.add(logits);
            }
            out.addAll(scope.ret(extra));
        }
        return out;
    }

    /**
     * Frees the native memory of every linear operator after the calls in flight have returned;
     * later calls throw {@link IllegalStateException}. The parameters belong to the manager they
     * were created on, which the owner closes after this.
     */
    @Override
    public void close() {
        guard.close(
                () -> {
                    encoder.close();
                    if (classifier != null) {
                        classifier.setOperator(null);
                    }
                });
    }

    /**
     * Returns forward parameters that ask for the encoder's outputs only ({@code last_hidden_state}
     * and, with a pooler, {@code pooler_output}): no pooling, normalization or classifier, for
     * callers that pool the hidden states themselves.
     *
     * @return new parameters for {@code forward(parameterStore, inputs, false, params)}
     */
    public static PairList<String, Object> hiddenStatesOnly() {
        PairList<String, Object> params = new PairList<>();
        params.add(OUTPUTS, TransformerEncoder.LAST_HIDDEN_STATE);
        return params;
    }

    /**
     * Runs the encoder alone: {@link TransformerEncoder#encode}'s outputs, without the pooled
     * embedding and the classifier.
     *
     * @param inputIds {@code [batch, seq]}
     * @param attentionMask {@code [batch, seq]} or null
     * @param tokenTypeIds {@code [batch, seq]} or null
     * @return {@code last_hidden_state} and, with a pooler, {@code pooler_output}, attached to
     *     {@code inputIds}' manager
     * @throws IllegalStateException if the block is closed
     */
    public NDList runEncoder(NDArray inputIds, NDArray attentionMask, NDArray tokenTypeIds) {
        try (CallGuard.Lease lease = guard.enter();
                PyTorchThreads limit = PyTorchThreads.limit()) {
            return encoder.encode(inputIds, attentionMask, tokenTypeIds);
        }
    }

    /**
     * Runs {@link #run}, or {@link #runEncoder} when {@code params} holds the entry of {@link
     * #hiddenStatesOnly()}.
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        NDArray ids = find(inputs, "input_ids", 0);
        NDArray mask = find(inputs, "attention_mask", 1);
        NDArray types = find(inputs, "token_type_ids", 2);
        if (params != null && TransformerEncoder.LAST_HIDDEN_STATE.equals(params.get(OUTPUTS))) {
            return runEncoder(ids, mask, types);
        }
        return run(ids, mask, types);
    }

    private static NDArray find(NDList inputs, String name, int index) {
        NDArray named = inputs.get(name);
        if (named != null) {
            return named;
        }
        return inputs.size() > index ? inputs.get(index) : null;
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        List<Shape> shapes = new ArrayList<>(List.of(encoder.getOutputShapes(inputShapes)));
        long batch = inputShapes[0].get(0);
        int hidden = encoder.getConfig().getHiddenSize();
        if (pooling != Pooling.NONE) {
            shapes.add(new Shape(batch, hidden));
        }
        if (classifier != null) {
            shapes.add(new Shape(batch, encoder.getConfig().getLabels().size()));
        }
        return shapes.toArray(new Shape[0]);
    }

    @Override
    protected void initializeChildBlocks(
            NDManager manager, DataType dataType, Shape... inputShapes) {
        encoder.initialize(manager, dataType, inputShapes);
        if (classifier != null) {
            classifier.initialize(
                    manager,
                    dataType,
                    new Shape(inputShapes[0].get(0), encoder.getConfig().getHiddenSize()));
        }
    }
}
