/**
 * Low precision for Transformer encoders: the {@link io.github.tilewise.djl.lowp.Precision} of a
 * linear layer (INT8 with dynamic per-token activation quantization, INT8 weight-only, BF16, FP16,
 * or FP32), run by {@link io.github.tilewise.djl.encoder.linear.PackedLinear} on weights packed
 * once ({@link io.github.tilewise.djl.encoder.linear.PackedWeights}); a one-call converter choosing
 * the precision per layer ({@link io.github.tilewise.djl.lowp.LowPrecisionConverter}, a {@link
 * io.github.tilewise.djl.encoder.linear.LinearOperatorFactory}: the one way operators are plugged
 * into an encoder); calibration for SmoothQuant and sensitive-layer detection ({@link
 * io.github.tilewise.djl.lowp.Calibration}).
 */
package io.github.tilewise.djl.lowp;
