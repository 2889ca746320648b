package io.github.tilewise.djl.jni;

import java.nio.ByteBuffer;

/**
 * The JNI entry points of {@code libtilewise_cuda}. Every method re-checks its arguments on the
 * native side and reports failures as Java exceptions carrying the CUDA error text ({@link
 * IllegalArgumentException} for bad arguments, {@link UnsupportedOperationException} when no usable
 * GPU or driver is present, {@link OutOfMemoryError} when device memory runs out, {@link
 * IllegalStateException} otherwise).
 *
 * <p>Obtain the instance from {@link CudaLibrary#requireLoaded()}, which guarantees the library is
 * loaded. Device addresses are plain {@code long}s: callers (the {@code cuda} package) own their
 * lifetime and bounds.
 */
public final class CudaNative {

    static final CudaNative INSTANCE = new CudaNative();

    private CudaNative() {}

    /**
     * Returns the number of usable CUDA devices (0 without a driver or GPU).
     *
     * @return the count
     */
    public native int deviceCount();

    /**
     * Returns why no device is usable.
     *
     * @return the reason, or null if a device is usable
     */
    public native String noDeviceReason();

    /**
     * Describes a device.
     *
     * @param device the device index
     * @return e.g. "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)"
     */
    public native String describeDevice(int device);

    /**
     * Allocates device memory.
     *
     * @param bytes the size, positive
     * @return the device address
     */
    public native long malloc(long bytes);

    /**
     * Frees device memory from {@link #malloc(long)}.
     *
     * @param address the device address (0 is ignored)
     */
    public native void free(long address);

    /**
     * Copies host bytes to the device (synchronous).
     *
     * @param dst device address
     * @param src direct buffer
     * @param srcOffset first byte of {@code src} to copy (the buffer's position is ignored)
     * @param bytes number of bytes
     */
    public native void copyToDevice(long dst, ByteBuffer src, long srcOffset, long bytes);

    /**
     * Copies device bytes to the host, after all earlier work on the default stream.
     *
     * @param dst direct buffer
     * @param dstOffset first byte of {@code dst} to write (the buffer's position is ignored)
     * @param src device address
     * @param bytes number of bytes
     */
    public native void copyToHost(ByteBuffer dst, long dstOffset, long src, long bytes);

    /** Waits for all work on the current device; surfaces errors of kernels that ran. */
    public native void synchronize();

    /**
     * Launches the fused attention on the default stream (tw_cuda_attention_forward).
     *
     * @param dtype 1 for fp16, 2 for bf16 (tw_dtype)
     * @param shape {batch, qHeads, kvHeads, qLen, kvLen, headDim}
     * @param q device address of Q
     * @param k device address of K
     * @param v device address of V
     * @param o device address of the output
     * @param strides element strides {q batch, head, seq, k ..., v ..., o ...}
     * @param scale the score scale, positive
     * @param causal bottom-right aligned causal mask
     * @param kvValidLengths device address of int32 [batch] key lengths, or 0
     * @param lse device address of fp32 [batch, qHeads, qLen] log-sum-exp output, or 0
     */
    public native void attentionForward(
            int dtype,
            long[] shape,
            long q,
            long k,
            long v,
            long o,
            long[] strides,
            float scale,
            boolean causal,
            long kvValidLengths,
            long lse);
}
