package io.github.tilewise.djl.encoder.linear;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.CallGuard;
import io.github.tilewise.djl.jni.LinearF32Native;
import io.github.tilewise.djl.jni.SharedMemory;
import java.nio.ByteBuffer;

/**
 * The fp32 linear layer on Tilewise's native kernel: {@code W} packed once into 32-column panels (a
 * native-order copy owned by this operator), an AVX-512 12×32 register tile (AVX2: 6×16) with bias,
 * exact GELU and the residual fused into its epilogue, run on the Tilewise worker pool. Same
 * arithmetic as {@link Fp32LinearOperator} (fp32 products and sums), without PyTorch's BLAS, which
 * on AMD CPUs runs its AVX2 code and is about half as fast here.
 *
 * <p>Activations other than GELU (the pooler's tanh) are applied with DJL ops after the kernel.
 */
public final class NativeFp32LinearOperator implements LinearOperator {

    private final int inFeatures;
    private final int outFeatures;
    private final LinearActivation activation;
    private final NDArray packed;
    private final NDArray bias;
    private final CallGuard guard;

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
        if (bias != null
                && (bias.getDataType() != DataType.FLOAT32 || bias.size() != outFeatures)) {
            throw new IllegalArgumentException("bias must be fp32 [" + outFeatures + "]");
        }
        packed = weight.getManager().create(new Shape(bytes / 4), DataType.FLOAT32);
        try {
            lib.pack(
                    outFeatures,
                    inFeatures,
                    SharedMemory.of(weight, "weight", null),
                    SharedMemory.of(packed, "packed", null));
        } catch (RuntimeException e) {
            packed.close();
            throw e;
        }
        this.bias = bias;
        this.guard =
                new CallGuard("fp32 linear operator [" + outFeatures + ", " + inFeatures + "]");
    }

    @Override
    public NDArray forward(NDArray x, NDArray residual) {
        try (CallGuard.Lease lease = guard.enter()) {
            return forwardLive(x, residual);
        }
    }

    private NDArray forwardLive(NDArray x, NDArray residual) {
        if (packed.isReleased()) {
            throw new IllegalStateException(
                    "the packed weights of this linear operator were freed with their manager");
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
            ByteBuffer out = SharedMemory.of(y, "y", null);
            boolean fusedGelu = activation == LinearActivation.GELU;
            LinearF32Native.get()
                    .linear(
                            rows,
                            outFeatures,
                            inFeatures,
                            SharedMemory.of(x, "x", null),
                            SharedMemory.of(packed, "packed", null),
                            bias == null ? null : SharedMemory.of(bias, "bias", null),
                            fusedGelu,
                            residual == null ? null : SharedMemory.of(residual, "residual", null),
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

    @Override
    public String describe() {
        return "fp32-native";
    }

    @Override
    public void close() {
        guard.close(packed::close);
    }
}
