/**
 * Low precision for Transformer encoders: linear layers with INT8 (dynamic per-token activation
 * quantization), INT8 weight-only, BF16 and FP16 weights, run by native kernels on weights packed
 * once ({@link io.github.tilewise.djl.lowp.PackedWeights}, {@link
 * io.github.tilewise.djl.lowp.LowPrecisionLinear}); a one-call converter choosing the precision per
 * layer ({@link io.github.tilewise.djl.lowp.LowPrecisionConverter}) over a {@link
 * java.util.ServiceLoader} registry of converters ({@link
 * io.github.tilewise.djl.lowp.LinearConverter}); calibration for SmoothQuant and sensitive-layer
 * detection ({@link io.github.tilewise.djl.lowp.Calibration}).
 */
package io.github.tilewise.djl.lowp;
