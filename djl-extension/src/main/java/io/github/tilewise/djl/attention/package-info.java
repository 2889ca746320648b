/**
 * IO-aware fused attention for DJL NDArrays: {@link
 * io.github.tilewise.djl.attention.FusedAttention} computes {@code softmax(scale·QKᵀ + mask)·V}
 * tile by tile with an online softmax, so memory grows linearly with sequence length. {@link
 * io.github.tilewise.djl.attention.ReferenceAttention} is the same operator composed from DJL ops:
 * the test oracle and the fallback where no native build exists.
 */
package io.github.tilewise.djl.attention;
