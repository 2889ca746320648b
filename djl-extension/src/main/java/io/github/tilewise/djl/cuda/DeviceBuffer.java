package io.github.tilewise.djl.cuda;

import io.github.tilewise.djl.CallGuard;
import io.github.tilewise.djl.jni.CudaLibrary;
import io.github.tilewise.djl.jni.CudaNative;
import java.nio.ByteBuffer;

/**
 * A block of GPU memory owned by the caller, kept across calls (for example Q, K and V of a model's
 * layer) so that only the data that changes crosses the PCIe bus. Free it with {@link #close()}
 * (try-with-resources); a closed buffer refuses every use with {@link IllegalStateException}.
 *
 * <p>Thread-safe: copies and kernels may use a buffer from several threads; {@link #close()} waits
 * for the calls in flight and frees the memory once.
 */
public final class DeviceBuffer implements AutoCloseable {

    private final CudaNative cuda;
    private final long byteSize;
    private final long address;
    private final CallGuard guard;

    private DeviceBuffer(CudaNative cuda, long address, long byteSize) {
        this.cuda = cuda;
        this.address = address;
        this.byteSize = byteSize;
        this.guard = new CallGuard("DeviceBuffer of " + byteSize + " bytes");
    }

    /**
     * Allocates device memory (contents undefined).
     *
     * @param byteSize the size in bytes, positive
     * @return the buffer
     * @throws io.github.tilewise.djl.NativeLibraryUnavailableException if CUDA is unavailable
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
        try (CallGuard.Lease lease = guard.enter()) {
            cuda.copyToDevice(address, host, 0, host.limit());
        }
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
        try (CallGuard.Lease lease = guard.enter()) {
            cuda.copyToHost(host, 0, address, host.limit());
        }
    }

    /**
     * Returns whether {@link #close()} was called.
     *
     * @return true once closed
     */
    public boolean isClosed() {
        return guard.isClosed();
    }

    /** Frees the device memory once, after the calls in flight; later calls do nothing. */
    @Override
    public void close() {
        guard.close(() -> cuda.free(address));
    }

    /**
     * Starts a call that uses the device address: {@link #close()} waits until the lease is closed.
     *
     * @throws IllegalStateException if closed
     */
    CallGuard.Lease enter() {
        return guard.enter();
    }

    /** The device address; only valid inside a lease from {@link #enter()}. */
    long address() {
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
