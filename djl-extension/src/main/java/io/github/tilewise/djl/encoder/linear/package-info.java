/**
 * Linear layers with pluggable arithmetic, the extension point for low precision: {@link
 * io.github.tilewise.djl.encoder.linear.LinearBlock} owns fp32 parameters and delegates {@code
 * act(x·Wᵀ + b) + residual} to a {@link io.github.tilewise.djl.encoder.linear.LinearOperator} —
 * {@link io.github.tilewise.djl.encoder.linear.NativeFp32LinearOperator} (AVX-512 / AVX2 kernel) or
 * {@link io.github.tilewise.djl.encoder.linear.Fp32LinearOperator} (PyTorch) by default, anything a
 * {@link io.github.tilewise.djl.encoder.linear.LinearOperatorFactory} makes (INT8, BF16) after
 * conversion.
 */
package io.github.tilewise.djl.encoder.linear;
