package io.github.tilewise.djl.jni;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Direct little-endian views of NDArray memory for the native kernels, the one place where Tilewise
 * turns an NDArray into a buffer the JNI layer can read or write.
 *
 * <p>{@code toByteBuffer(true)} shares the tensor's memory when it is contiguous (always the case
 * for arrays the caller just allocated, such as outputs); otherwise the PyTorch engine makes a
 * contiguous copy on the array's manager, which is why an input is first attached to the call's
 * scope: DJL gives it back to its own manager when the scope closes, and the copy is freed.
 */
public final class SharedMemory {

    private SharedMemory() {}

    /**
     * Returns a direct little-endian buffer over the array's memory.
     *
     * @param array the array
     * @param name the argument's name, for messages
     * @param scope the call's scope, or null when the array is known to be contiguous and new
     * @return a buffer of exactly the array's byte size, position 0
     * @throws IllegalArgumentException if the array is closed, not on the CPU, or larger than 2 GiB
     * @throws IllegalStateException if the engine gives no direct buffer of the expected size
     */
    public static ByteBuffer of(NDArray array, String name, NDManager scope) {
        if (array.isReleased()) {
            throw new IllegalArgumentException(name + " is closed");
        }
        // A GPU tensor's toByteBuffer is a host copy: the kernel would read or write the copy.
        if (!Device.Type.CPU.equals(array.getDevice().getDeviceType())) {
            throw new IllegalArgumentException(
                    name
                            + " is on "
                            + array.getDevice()
                            + ": Tilewise's CPU kernels take arrays on the CPU");
        }
        // Attaching twice (q == k) would hand the array back to the closing scope, which closes it.
        if (scope != null && array.getManager() != scope) {
            array.tempAttach(scope);
        }
        long bytes = array.size() * array.getDataType().getNumOfBytes();
        if (bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(
                    name
                            + " "
                            + array.getShape()
                            + " holds "
                            + bytes
                            + " bytes, more than a ByteBuffer can address (2 GiB); split the"
                            + " batch");
        }
        ByteBuffer buffer = array.toByteBuffer(true);
        if (!buffer.isDirect() || buffer.capacity() != bytes) {
            throw new IllegalStateException(
                    "the PyTorch engine returned a "
                            + (buffer.isDirect() ? "direct" : "heap")
                            + " buffer of "
                            + buffer.capacity()
                            + " bytes for "
                            + name
                            + " ("
                            + bytes
                            + " expected)");
        }
        return buffer.order(ByteOrder.LITTLE_ENDIAN);
    }
}
