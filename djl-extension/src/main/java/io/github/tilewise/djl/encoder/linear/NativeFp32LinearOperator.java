package io.github.tilewise.djl.encoder.linear;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.jni.LinearF32Native;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The fp32 linear layer on Tilewise's native kernel: {@code W} packed once into 32-column panels (a
 * native-order copy owned by this operator), an AVX-512 12×32 register tile with bias, exact GELU
 * and the residual fused into its epilogue, run on the Tilewise worker pool. Same arithmetic as
 * {@link Fp32LinearOperator} (fp32 products and sums), without PyTorch's BLAS, which on AMD CPUs
 * runs its AVX2 code and is about half as fast here.
 *
 * <p>Activations other than GELU (the pooler's tanh) are applied with DJL ops after the kernel.
 */
public final class NativeFp32LinearOperator implements LinearOperator {

    private final int inFeatures;
    private final int outFeatures;
    private final LinearActivation activation;
    private final ByteBuffer packed;
    private final ByteBuffer bias;
    private volatile boolean closed;

    /**
     * Packs a layer's weights.
     *
     * @param weight {@code [out, in]} fp32
     * @param bias {@code [out]} fp32, or null
     * @param activation applied after the bias
     * @throws IllegalStateException if the native library is not loaded
     */
    public NativeFp32LinearOperator(NDArray weight, NDArray bias, LinearActivation activation) {
        Shape shape = weight.getShape();
        if (shape.dimension() != 2 || weight.getDataType() != DataType.FLOAT32) {
            throw new IllegalArgumentException(
                    "weight must be fp32 [out, in], got " + weight.getDataType() + shape);
        }
        this.outFeatures = Math.toIntExact(shape.get(0));
        this.inFeatures = Math.toIntExact(shape.get(1));
        this.activation = activation;
        LinearF32Native lib = LinearF32Native.get();
        long bytes = lib.packedBytes(outFeatures, inFeatures);
        if (bytes < 0 || bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("weight " + shape + " is too large to pack");
        }
        packed = ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
        lib.pack(outFeatures, inFeatures, copyOf(weight), packed);
        if (bias != null) {
            if (bias.getDataType() != DataType.FLOAT32 || bias.size() != outFeatures) {
                throw new IllegalArgumentException("bias must be fp32 [" + outFeatures + "]");
            }
            this.bias = copyOf(bias);
        } else {
            this.bias = null;
        }
    }

    private static ByteBuffer copyOf(NDArray array) {
        float[] values = array.toFloatArray();
        ByteBuffer b = ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return b;
    }

    @Override
    public NDArray forward(NDArray x, NDArray residual) {
        if (closed) {
            throw new IllegalStateException("this linear operator has been closed");
        }
        Shape in = x.getShape();
        if (x.getDataType() != DataType.FLOAT32 || in.get(in.dimension() - 1) != inFeatures) {
            throw new IllegalArgumentException(
                    "x must be fp32 [..., " + inFeatures + "], got " + x.getDataType() + in);
        }
        long rows = in.size() / inFeatures;
        Shape outShape = in.slice(0, in.dimension() - 1).add(outFeatures);
        if (residual != null
                && (!residual.getShape().equals(outShape)
                        || residual.getDataType() != DataType.FLOAT32)) {
            throw new IllegalArgumentException(
                    "residual must be fp32 " + outShape + ", got " + residual.getShape());
        }
        NDManager manager = x.getManager();
        NDArray y = manager.create(outShape, DataType.FLOAT32);
        try {
            ByteBuffer out = shared(y, "y");
            boolean fusedGelu = activation == LinearActivation.GELU;
            LinearF32Native.get()
                    .linear(
                            rows,
                            outFeatures,
                            inFeatures,
                            shared(x, "x"),
                            packed,
                            bias,
                            fusedGelu,
                            residual == null ? null : shared(residual, "residual"),
                            out);
            if (!fusedGelu && activation != LinearActivation.NONE) {
                if (residual != null) {
                    throw new IllegalStateException(
                            activation + " with a residual is not fused; never used by BERT");
                }
                y = activation.applyInPlace(y);
            }
            return y;
        } catch (RuntimeException e) {
            y.close();
            throw e;
        }
    }

    /** The array's memory as a direct buffer: shared when contiguous (always, for outputs). */
    private static ByteBuffer shared(NDArray array, String name) {
        long bytes = array.size() * 4L;
        ByteBuffer b = array.toByteBuffer(true);
        if (!b.isDirect() || b.capacity() != bytes) {
            throw new IllegalStateException(
                    "the PyTorch engine gave no direct buffer of " + bytes + " bytes for " + name);
        }
        return b.order(ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    public String describe() {
        return "fp32-native";
    }

    @Override
    public void close() {
        closed = true;
    }
}
