package io.github.tilewise.djl.encoder.linear;

import io.github.tilewise.djl.attention.ComputePrecision;
import java.util.List;

/**
 * Makes the {@link LinearOperator} of one layer from its fp32 weights: the one way operators are
 * plugged into an encoder ({@link
 * io.github.tilewise.djl.encoder.TransformerEncoder#replaceLinearOperators(LinearOperatorFactory)},
 * {@code TextEncoder.Builder.optLinearOperatorFactory}, the {@code linearOperatorFactory} Criteria
 * option). The built-in low-precision converter ({@link
 * io.github.tilewise.djl.lowp.LowPrecisionConverter}) is one; another backend (e.g. a GPU one) is
 * another, choosing its operators per layer.
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

    /**
     * Returns one operator for several layers that read the same input (an encoder layer's query,
     * key and value projections), computing {@code x·[W₀ W₁ …]ᵀ} with their outputs concatenated,
     * or null (the default) to have {@link #create} asked for each layer instead. The concatenated
     * weights are available as {@link LinearBlock#concatenate}.
     *
     * @param layers the layers, in concatenation order, with their parameters loaded
     * @return the fused operator, or null
     */
    default LinearOperator createShared(List<LinearBlock> layers) {
        return null;
    }

    /**
     * Returns the precision the encoder's attention should compute in once the factory's operators
     * are in place, or null (the default) to leave it as it is.
     *
     * @return the attention precision, or null
     */
    default ComputePrecision attentionPrecision() {
        return null;
    }
}
