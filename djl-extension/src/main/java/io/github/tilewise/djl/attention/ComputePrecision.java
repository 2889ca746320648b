package io.github.tilewise.djl.attention;

/** The precision of the dot products inside the fused attention; accumulation is always fp32. */
public enum ComputePrecision {
    /** The data's own precision: fp32 for fp32 arrays, fp16 values widened to fp32 for fp16. */
    DATA,
    /**
     * bfloat16 dot products (AVX512-BF16 where the CPU has it), tiles converted on the fly: about
     * twice the arithmetic rate of fp32, at bf16's 8-bit mantissa.
     */
    BF16
}
