package io.github.tilewise.djl.jni;

import java.nio.ByteBuffer;

/**
 * The JNI entry point of the rotary position embeddings ({@code tw_rope_apply} in {@code
 * tilewise.h}). Internal: use {@link io.github.tilewise.djl.attention.RotaryEmbedding}, which
 * validates NDArrays; the native side checks the buffer against the rows it spans again.
 */
public final class RotaryNative {

    private static final RotaryNative INSTANCE = new RotaryNative();

    private RotaryNative() {}

    /**
     * Returns the entry points, or throws if the native library is not loaded.
     *
     * @return the entry points
     * @throws IllegalStateException naming why the library is not loaded
     */
    public static RotaryNative get() {
        LibUtils.requireLoaded();
        return INSTANCE;
    }

    /**
     * Rotates fp32 rows in place: token {@code t}'s {@code heads} heads of {@code headDim} floats
     * start at element {@code t * tokenStride} of {@code x} (rotate_half convention, angles {@code
     * positions[t] / theta^(2i / headDim)}).
     *
     * @param x direct, writable, native-order buffer whose element 0 is token 0's first head
     * @param tokens number of rows
     * @param heads heads per row
     * @param headDim even head dimension
     * @param tokenStride elements between rows, at least {@code heads * headDim}
     * @param positions one position per row
     * @param theta the base, positive and finite
     * @throws IllegalArgumentException naming the bad argument
     */
    public void apply(
            ByteBuffer x,
            long tokens,
            long heads,
            long headDim,
            long tokenStride,
            int[] positions,
            float theta) {
        if (x != null && x.isReadOnly()) {
            throw new IllegalArgumentException("rotary x buffer is read-only");
        }
        apply0(x, tokens, heads, headDim, tokenStride, positions, theta);
    }

    private native void apply0(
            ByteBuffer x,
            long tokens,
            long heads,
            long headDim,
            long tokenStride,
            int[] positions,
            float theta);
}
