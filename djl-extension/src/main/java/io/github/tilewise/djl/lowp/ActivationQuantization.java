package io.github.tilewise.djl.lowp;

import io.github.tilewise.djl.jni.LinearNative;

/** How an {@link Precision#INT8} layer quantizes each row (token) of its input at run time. */
public enum ActivationQuantization {
    /**
     * {@code [min(x, 0), max(x, 0)]} mapped onto 0..255 with a zero point: uses all 256 codes even
     * when a row is mostly positive (e.g. after GELU). The default.
     */
    ASYMMETRIC(LinearNative.QUANT_ASYMMETRIC),
    /** {@code ±max|x|} mapped onto ±127 around code 128. */
    SYMMETRIC(LinearNative.QUANT_SYMMETRIC);

    private final int code;

    ActivationQuantization(int code) {
        this.code = code;
    }

    /**
     * Returns the native code of this mode.
     *
     * @return {@code LinearNative.QUANT_SYMMETRIC} or {@code LinearNative.QUANT_ASYMMETRIC}
     */
    public int code() {
        return code;
    }
}
