package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;

/** Puts checkpoint arrays into DJL {@link Parameter}s, checking shape and type first. */
public final class ParameterValues {

    private ParameterValues() {}

    /**
     * Replaces a parameter's array (closing the old one) by {@code value}, which the parameter
     * takes over.
     *
     * @param owner the name of the owning layer, for messages
     * @param parameter the parameter
     * @param value the new value
     * @param expected its required shape
     * @throws IllegalArgumentException naming the parameter if the shape or type differs
     */
    public static void replace(String owner, Parameter parameter, NDArray value, Shape expected) {
        String what = owner.isEmpty() ? parameter.getName() : owner + "." + parameter.getName();
        if (value.getDataType() != DataType.FLOAT32) {
            throw new IllegalArgumentException(
                    what + " must be float32, got " + value.getDataType());
        }
        if (!value.getShape().equals(expected)) {
            throw new IllegalArgumentException(
                    what + " has shape " + value.getShape() + ", expected " + expected);
        }
        parameter.close();
        if (parameter.getShape() != null) {
            parameter.setShape(null);
        }
        parameter.setArray(value);
    }

    /**
     * Sets a parameter's shape for initialisation unless it already has a value or a shape.
     *
     * @param parameter the parameter
     * @param shape its shape
     */
    public static void prepare(Parameter parameter, Shape shape) {
        if (!parameter.isInitialized() && parameter.getShape() == null) {
            parameter.setShape(shape);
        }
    }

    /**
     * Builds an inference parameter (no gradient).
     *
     * @param name its name in {@code .params} files
     * @param type weight, bias, gamma or beta
     * @return the parameter
     */
    public static Parameter create(String name, Parameter.Type type) {
        return Parameter.builder().setName(name).setType(type).optRequiresGrad(false).build();
    }
}
