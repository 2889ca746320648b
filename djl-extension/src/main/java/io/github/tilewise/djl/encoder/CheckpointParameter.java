package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;

/**
 * A block parameter together with its Hugging Face checkpoint name (e.g. {@code
 * encoder.layer.0.attention.self.query.weight}) and required shape: how checkpoints map onto
 * blocks.
 */
public final class CheckpointParameter {

    private final String name;
    private final Parameter parameter;
    private final Shape shape;

    /**
     * Creates the mapping of one parameter.
     *
     * @param name the checkpoint name
     * @param parameter the block parameter
     * @param shape the required shape
     */
    public CheckpointParameter(String name, Parameter parameter, Shape shape) {
        this.name = name;
        this.parameter = parameter;
        this.shape = shape;
    }

    /**
     * Returns the checkpoint name.
     *
     * @return e.g. {@code embeddings.LayerNorm.weight}
     */
    public String getName() {
        return name;
    }

    /**
     * Returns the block parameter.
     *
     * @return the parameter
     */
    public Parameter getParameter() {
        return parameter;
    }

    /**
     * Returns the required shape.
     *
     * @return the shape
     */
    public Shape getShape() {
        return shape;
    }
}
