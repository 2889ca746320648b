/**
 * Linear layers and their arithmetic: {@link io.github.tilewise.djl.encoder.linear.LinearBlock}
 * owns fp32 parameters and delegates {@code act(x·Wᵀ + b) + residual} to a {@link
 * io.github.tilewise.djl.encoder.linear.LinearOperator}. The native one is {@link
 * io.github.tilewise.djl.encoder.linear.PackedLinear} on {@link
 * io.github.tilewise.djl.encoder.linear.PackedWeights} of any {@link
 * io.github.tilewise.djl.lowp.Precision} (FP32, INT8, INT8_WEIGHT_ONLY, BF16, FP16), with GELU, the
 * residual and the LayerNorm fused; {@link
 * io.github.tilewise.djl.encoder.linear.Fp32LinearOperator} is PyTorch's fp32 product, the
 * reference and the fallback. {@link io.github.tilewise.djl.encoder.linear.LinearOperators#fp32}
 * picks the default fp32 operator; a {@link
 * io.github.tilewise.djl.encoder.linear.LinearOperatorFactory} (such as the low-precision
 * converter) replaces operators per layer.
 */
package io.github.tilewise.djl.encoder.linear;
