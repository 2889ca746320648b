package io.github.tilewise.tribuo;

/**
 * The arithmetic of the encoder's linear layers, chosen with the extractor's {@code precision}
 * option. Activations between layers, softmax, LayerNorm and residuals stay fp32 in every mode.
 *
 * <p>Only {@link #FP32} runs in this build; the others are the modes of the low-precision converter
 * (Tilewise issue 4) and are refused at configuration time, naming the field, until that converter
 * is on the class path.
 */
public enum EncoderPrecision {
    /** Plain fp32 weights and arithmetic: the same features as the original extractor. */
    FP32,
    /** int8 weights (per output channel) and int8 activations (per token), int32 accumulation. */
    INT8,
    /** int8 weights, fp32 activations. */
    INT8_WEIGHT_ONLY,
    /** bfloat16 weights, fp32 accumulation. */
    BF16,
    /** IEEE half weights, fp32 accumulation. */
    FP16
}
