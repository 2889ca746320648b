package io.github.tilewise.djl.lowp;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Direct little-endian views of fp32 NDArrays for the native kernels. */
final class NativeBuffers {

    private NativeBuffers() {}

    /**
     * Returns a direct buffer over the array's memory. {@code toByteBuffer(true)} shares the
     * tensor's memory when it is contiguous; otherwise PyTorch makes a contiguous copy on the
     * array's manager, which is why the array is first attached to the call's scope.
     *
     * @param array the array
     * @param name for messages
     * @param scope the call's scope, or null when the array is known to be contiguous and new
     */
    static ByteBuffer shared(NDArray array, String name, NDManager scope) {
        if (array.isReleased()) {
            throw new IllegalArgumentException(name + " is closed");
        }
        if (scope != null && array.getManager() != scope) {
            array.tempAttach(scope);
        }
        long bytes = array.size() * array.getDataType().getNumOfBytes();
        ByteBuffer buffer = array.toByteBuffer(true);
        if (!buffer.isDirect() || buffer.capacity() != bytes) {
            throw new IllegalStateException(
                    "the engine returned a "
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
