package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import java.util.List;

/**
 * BERT's input layer: {@code LayerNorm(word[id] + position[t] + tokenType[type])} with absolute
 * positions {@code t = 0..seq-1}.
 *
 * <p>Inputs: token ids {@code [batch, seq]} and optionally token types {@code [batch, seq]} (type 0
 * when absent), integer arrays. Output: {@code [batch, seq, hidden]} fp32.
 */
public final class BertEmbeddings extends AbstractBlock {

    private static final byte VERSION = 1;

    private final EncoderConfig config;
    private final Parameter words;
    private final Parameter positions;
    private final Parameter tokenTypes;
    private final LayerNormBlock norm;

    /**
     * Creates the block for a configuration.
     *
     * @param config the encoder's configuration
     */
    public BertEmbeddings(EncoderConfig config) {
        super(VERSION);
        this.config = config;
        words = addParameter(ParameterValues.create("word_embeddings", Parameter.Type.WEIGHT));
        positions =
                addParameter(ParameterValues.create("position_embeddings", Parameter.Type.WEIGHT));
        tokenTypes =
                config.getTypeVocabSize() > 0
                        ? addParameter(
                                ParameterValues.create(
                                        "token_type_embeddings", Parameter.Type.WEIGHT))
                        : null;
        norm =
                addChildBlock(
                        "LayerNorm",
                        new LayerNormBlock(
                                "embeddings.LayerNorm",
                                config.getHiddenSize(),
                                config.getLayerNormEps()));
    }

    /**
     * Embeds a batch of token ids.
     *
     * @param ids {@code [batch, seq]} token ids in {@code [0, vocab)}
     * @param types {@code [batch, seq]} token types in {@code [0, typeVocab)}, or null for all 0
     * @return {@code [batch, seq, hidden]}, attached to {@code ids}' manager
     */
    public NDArray apply(NDArray ids, NDArray types) {
        long seq = ids.getShape().get(1);
        try (NDArray positionIds = ids.getManager().arange(0, seq, 1, DataType.INT64)) {
            return apply(ids, types, positionIds);
        }
    }

    /**
     * Embeds token ids at given positions: {@code [batch, seq]} with positions {@code [seq]}, or
     * packed sequences {@code [tokens]} with each token's position in its own sequence.
     *
     * @param ids token ids in {@code [0, vocab)}
     * @param types token types shaped like {@code ids}, or null for all 0
     * @param positionIds positions in {@code [0, maxPositions)}, broadcastable to {@code ids}
     * @return {@code ids}' shape plus {@code hidden}, attached to {@code ids}' manager
     */
    public NDArray apply(NDArray ids, NDArray types, NDArray positionIds) {
        NDManager manager = ids.getManager();
        NDArray x = embed(ids, words.getArray());
        try (NDArray position = embed(positionIds, positions.getArray())) {
            x.addi(position);
        }
        if (tokenTypes != null) {
            if (types != null) {
                try (NDArray type = embed(types, tokenTypes.getArray())) {
                    x.addi(type);
                }
            } else {
                try (NDArray zero = manager.zeros(new Shape(1), DataType.INT64);
                        NDArray type = embed(zero, tokenTypes.getArray())) {
                    x.addi(type);
                }
            }
        }
        NDArray y = norm.apply(x);
        x.close();
        return y;
    }

    void collectCheckpointParameters(List<CheckpointParameter> out) {
        int h = config.getHiddenSize();
        out.add(
                new CheckpointParameter(
                        "embeddings.word_embeddings.weight",
                        words,
                        new Shape(config.getVocabSize(), h)));
        out.add(
                new CheckpointParameter(
                        "embeddings.position_embeddings.weight",
                        positions,
                        new Shape(config.getMaxPositions(), h)));
        if (tokenTypes != null) {
            out.add(
                    new CheckpointParameter(
                            "embeddings.token_type_embeddings.weight",
                            tokenTypes,
                            new Shape(config.getTypeVocabSize(), h)));
        }
        norm.collectCheckpointParameters(out);
    }

    private static NDArray embed(NDArray ids, NDArray table) {
        return ids.getNDArrayInternal()
                .embedding(ids, table, SparseFormat.DENSE)
                .singletonOrThrow();
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        return new NDList(apply(inputs.get(0), inputs.size() > 1 ? inputs.get(1) : null));
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0].add(config.getHiddenSize())};
    }

    @Override
    protected void prepare(Shape[] inputShapes) {
        int h = config.getHiddenSize();
        ParameterValues.prepare(words, new Shape(config.getVocabSize(), h));
        ParameterValues.prepare(positions, new Shape(config.getMaxPositions(), h));
        if (tokenTypes != null) {
            ParameterValues.prepare(tokenTypes, new Shape(config.getTypeVocabSize(), h));
        }
    }

    @Override
    protected void initializeChildBlocks(
            NDManager manager, DataType dataType, Shape... inputShapes) {
        norm.initialize(manager, dataType, inputShapes[0].add(config.getHiddenSize()));
    }
}
