/**
 * Benchmarks against peers in the same process (ONNX Runtime, DJL's own ops), printing one
 * machine-readable line per case; see {@code docs/BENCHMARKS.md} for the commands and results.
 */
package io.github.tilewise.it.bench;
