/**
 * Low-precision (INT8, BF16, FP16) benchmarks and accuracy checks against fp32 and ONNX Runtime,
 * printing one machine-readable line per case; see {@code docs/BENCHMARKS.md} for the commands and
 * results.
 */
package io.github.tilewise.it.lowp;
