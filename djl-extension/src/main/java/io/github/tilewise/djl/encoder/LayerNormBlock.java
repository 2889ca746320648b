package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.Initializer;
import ai.djl.util.PairList;
import java.util.List;

/**
 * Layer normalisation over the last axis, {@code y = (x − mean) / √(var + eps) · γ + β}, in fp32
 * (PyTorch's {@code layer_norm}). Parameters {@code gamma} and {@code beta} map to a checkpoint's
 * {@code <name>.weight} and {@code <name>.bias}.
 */
public final class LayerNormBlock extends AbstractBlock {

    private static final byte VERSION = 1;

    private final String name;
    private final int size;
    private final float eps;
    private final Parameter gamma;
    private final Parameter beta;

    /**
     * Creates the block.
     *
     * @param name the checkpoint name, e.g. {@code embeddings.LayerNorm}
     * @param size the normalised width
     * @param eps the epsilon under the square root
     */
    public LayerNormBlock(String name, int size, float eps) {
        super(VERSION);
        this.name = name;
        this.size = size;
        this.eps = eps;
        gamma = addParameter(ParameterValues.create("gamma", Parameter.Type.GAMMA));
        beta = addParameter(ParameterValues.create("beta", Parameter.Type.BETA));
        gamma.setInitializer(Initializer.ONES);
        beta.setInitializer(Initializer.ZEROS);
    }

    /**
     * Normalises {@code x [..., size]}.
     *
     * @param x the input
     * @return the normalised array, attached to {@code x}'s manager
     */
    public NDArray apply(NDArray x) {
        return x.getNDArrayInternal()
                .layerNorm(x, new Shape(size), gamma.getArray(), beta.getArray(), eps)
                .singletonOrThrow();
    }

    void collectCheckpointParameters(List<CheckpointParameter> out) {
        out.add(new CheckpointParameter(name + ".weight", gamma, new Shape(size)));
        out.add(new CheckpointParameter(name + ".bias", beta, new Shape(size)));
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        return new NDList(apply(inputs.head()));
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }

    @Override
    protected void prepare(Shape[] inputShapes) {
        ParameterValues.prepare(gamma, new Shape(size));
        ParameterValues.prepare(beta, new Shape(size));
    }
}
