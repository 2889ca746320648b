package io.github.tilewise.djl.encoder.linear;

import ai.djl.ndarray.NDArray;

/**
 * The fp32 linear layer on PyTorch: {@code torch.nn.functional.linear} (one BLAS GEMM with the
 * bias, reading {@code W [out, in]} transposed in place, no copy), then the activation (a gated one
 * on the two halves of the output, see {@link LinearActivation#applyInPlace}) and the residual in
 * place.
 */
public final class Fp32LinearOperator implements LinearOperator {

    private final NDArray weight;
    private final NDArray bias;
    private final LinearActivation activation;

    /**
     * Creates the operator over a layer's parameters (not copied: they stay owned by the layer).
     *
     * @param weight {@code [out, in]} fp32
     * @param bias {@code [out]} fp32, or null
     * @param activation applied after the bias
     */
    public Fp32LinearOperator(NDArray weight, NDArray bias, LinearActivation activation) {
        this.weight = weight;
        this.bias = bias;
        this.activation = activation;
    }

    @Override
    public NDArray forward(NDArray x, NDArray residual) {
        NDArray y = x.getNDArrayInternal().linear(x, weight, bias).singletonOrThrow();
        y = activation.applyInPlace(y);
        if (residual != null) {
            y.addi(residual);
        }
        return y;
    }

    @Override
    public String describe() {
        return "fp32-pytorch";
    }
}
