package io.github.tilewise.djl.encoder.linear;

/**
 * Makes the {@link LinearOperator} of one layer from its fp32 weights: how a converter (e.g. to
 * INT8) plugs into an encoder. See {@link
 * io.github.tilewise.djl.encoder.BertEncoder#replaceLinearOperators(LinearOperatorFactory)}.
 */
@FunctionalInterface
public interface LinearOperatorFactory {

    /**
     * Returns the operator for a layer, or null to keep the layer's current one. The layer's {@link
     * LinearBlock#getName() name} (e.g. {@code encoder.layer.3.intermediate.dense}), {@link
     * LinearBlock#getWeight() weight}, {@link LinearBlock#getBias() bias} and {@link
     * LinearBlock#getActivation() activation} say what to build.
     *
     * @param layer the layer, with its parameters loaded
     * @return the new operator, or null
     */
    LinearOperator create(LinearBlock layer);
}
