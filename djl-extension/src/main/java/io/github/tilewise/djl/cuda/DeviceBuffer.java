package io.github.tilewise.djl.cuda;

import io.github.tilewise.djl.jni.CudaLibrary;
import io.github.tilewise.djl.jni.CudaNative;
import java.nio.ByteBuffer;

/**
 * A block of GPU memory owned by the caller, kept across calls (for example Q, K and V of a model's
 * layer) so that only the data that changes crosses the PCIe bus. Free it with {@link #close()}
 * (try-with-resources); a closed buffer refuses every use with {@link IllegalStateException}.
 *
 * <p>Not thread-safe: one thread uses and closes a buffer.
 */
public final class DeviceBuffer implements AutoCloseable {

    private final CudaNative cuda;
    private final long byteSize;
    private long address;

    private DeviceBuffer(CudaNative cuda, long address, long byteSize) {
        this.cuda = cuda;
        this.address = address;
        this.byteSize = byteSize;
    }

    /**
     * Allocates device memory (contents undefined).
     *
     * @param byteSize the size in bytes, positive
     * @return the buffer
     * @throws UnsupportedOperationException if CUDA is unavailable
     * @throws OutOfMemoryError if the device has no room
     */
    public static DeviceBuffer allocate(long byteSize) {
        if (byteSize <= 0) {
            throw new IllegalArgumentException("byteSize must be positive, got " + byteSize);
        }
        CudaNative cuda = CudaLibrary.requireLoaded();
        return new DeviceBuffer(cuda, cuda.malloc(byteSize), byteSize);
    }

    /**
     * Allocates a buffer holding a copy of the host buffer's bytes from position 0 to its limit.
     *
     * @param host a direct buffer
     * @return the buffer
     */
    public static DeviceBuffer copyOf(ByteBuffer host) {
        checkDirect(host, "host");
        DeviceBuffer buffer = allocate(host.limit());
        try {
            buffer.copyFrom(host);
        } catch (RuntimeException e) {
            buffer.close();
            throw e;
        }
        return buffer;
    }

    /**
     * Returns the size in bytes.
     *
     * @return the size
     */
    public long byteSize() {
        return byteSize;
    }

    /**
     * Copies the host buffer's bytes [0, limit) to the start of this buffer (synchronous).
     *
     * @param host a direct buffer no larger than this one
     */
    public void copyFrom(ByteBuffer host) {
        checkDirect(host, "host");
        if (host.limit() > byteSize) {
            throw new IllegalArgumentException(
                    "host buffer holds " + host.limit() + " bytes, device buffer " + byteSize);
        }
        cuda.copyToDevice(address(), host, 0, host.limit());
    }

    /**
     * Copies the first {@code host.limit()} bytes of this buffer into the host buffer, after all
     * earlier GPU work (the kernels writing this buffer included) has finished.
     *
     * @param host a direct buffer no larger than this one
     */
    public void copyTo(ByteBuffer host) {
        checkDirect(host, "host");
        if (host.limit() > byteSize) {
            throw new IllegalArgumentException(
                    "host buffer holds " + host.limit() + " bytes, device buffer " + byteSize);
        }
        cuda.copyToHost(host, 0, address(), host.limit());
    }

    /**
     * Returns whether {@link #close()} was called.
     *
     * @return true once closed
     */
    public boolean isClosed() {
        return address == 0;
    }

    /** Frees the device memory; later calls do nothing. */
    @Override
    public void close() {
        if (address != 0) {
            long a = address;
            address = 0;
            cuda.free(a);
        }
    }

    /** The device address; throws if closed. */
    long address() {
        if (address == 0) {
            throw new IllegalStateException("DeviceBuffer is closed");
        }
        return address;
    }

    static void checkDirect(ByteBuffer buffer, String what) {
        if (buffer == null) {
            throw new IllegalArgumentException(what + " buffer is null");
        }
        if (!buffer.isDirect()) {
            throw new IllegalArgumentException(what + " buffer must be a direct ByteBuffer");
        }
    }
}
