package io.github.tilewise.djl.jni;

import java.nio.ByteBuffer;

/**
 * JNI entry points of the native fp32 linear layer ({@code tilewise_linear_f32.h}): weight packing
 * and {@code y = act(x·Wᵀ + b) + residual} on direct little-endian buffers with contiguous rows.
 * The native side checks every size and capacity again; use {@link
 * io.github.tilewise.djl.encoder.linear.NativeFp32LinearOperator} rather than this class.
 */
public final class LinearF32Native {

    private static final LinearF32Native INSTANCE = new LinearF32Native();

    private LinearF32Native() {}

    /**
     * Returns the entry points, loading the native library.
     *
     * @return the instance
     * @throws IllegalStateException if the native library cannot be loaded
     */
    public static LinearF32Native get() {
        LibUtils.requireLoaded();
        return INSTANCE;
    }

    /**
     * Returns the bytes of the packed form of {@code W [n, k]}.
     *
     * @param n output features
     * @param k input features
     * @return the byte count, or -1 for a bad shape
     */
    public native long packedBytes(long n, long k);

    /**
     * Packs {@code W [n, k]} (row-major fp32) into column panels.
     *
     * @param n output features
     * @param k input features
     * @param w the weights, {@code n·k·4} bytes
     * @param packed the destination, {@link #packedBytes} bytes
     */
    public native void pack(long n, long k, ByteBuffer w, ByteBuffer packed);

    /**
     * Computes {@code y = act(x·Wᵀ + b) + residual}.
     *
     * @param m rows
     * @param n output features
     * @param k input features
     * @param x {@code [m, k]}
     * @param packed the packed weights
     * @param bias {@code [n]} or null
     * @param gelu whether to apply the exact GELU after the bias
     * @param residual {@code [m, n]} or null
     * @param y {@code [m, n]}, written
     */
    public native void linear(
            long m,
            long n,
            long k,
            ByteBuffer x,
            ByteBuffer packed,
            ByteBuffer bias,
            boolean gelu,
            ByteBuffer residual,
            ByteBuffer y);
}
