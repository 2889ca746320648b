package io.github.tilewise.djl.encoder;

import java.util.Locale;

/** The activation of the feed-forward layer, named as in Hugging Face's {@code hidden_act}. */
public enum HiddenActivation {
    /** Exact GELU, {@code x·Φ(x) = x/2·(1 + erf(x/√2))}: BERT's {@code gelu}. */
    GELU,
    /** GELU's tanh approximation ({@code gelu_new}, {@code gelu_pytorch_tanh}). */
    GELU_TANH,
    /** {@code max(0, x)}. */
    RELU;

    /**
     * Parses a Hugging Face {@code hidden_act} value.
     *
     * @param name {@code gelu}, {@code gelu_new}, {@code gelu_pytorch_tanh}, {@code gelu_fast} or
     *     {@code relu} (any case)
     * @return the activation
     * @throws IllegalArgumentException for any other name
     */
    public static HiddenActivation fromName(String name) {
        switch (name.trim().toLowerCase(Locale.ROOT)) {
            case "gelu":
                return GELU;
            case "gelu_new":
            case "gelu_pytorch_tanh":
            case "gelu_fast":
            case "gelu_tanh":
                return GELU_TANH;
            case "relu":
                return RELU;
            default:
                throw new IllegalArgumentException(
                        "Unsupported activation '"
                                + name
                                + "': expected gelu, gelu_new, gelu_pytorch_tanh or relu");
        }
    }
}
