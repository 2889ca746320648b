/**
 * Tilewise for DJL: IO-aware fused attention, faithful Transformer encoder blocks and low-precision
 * kernels for models running on DJL's PyTorch engine.
 *
 * <p>{@link io.github.tilewise.djl.Tilewise} reports what the native library found on this machine;
 * {@link io.github.tilewise.djl.attention.FusedAttention} is the attention operator.
 */
package io.github.tilewise.djl;
