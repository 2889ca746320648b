package io.github.tilewise.djl.encoder.checkpoint;

import java.util.Arrays;

/** One fp32 tensor of a checkpoint, in row-major order, held on the Java heap. */
public final class CheckpointTensor {

    private final String name;
    private final long[] shape;
    private final float[] data;

    /**
     * Creates a tensor.
     *
     * @param name its checkpoint name
     * @param shape its shape
     * @param data {@code prod(shape)} values, row-major
     * @throws IllegalArgumentException if a dimension is negative or the sizes disagree
     */
    public CheckpointTensor(String name, long[] shape, float[] data) {
        long n = 1;
        try {
            for (long d : shape) {
                if (d < 0) {
                    throw new ArithmeticException("negative dimension");
                }
                n = Math.multiplyExact(n, d);
            }
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(
                    name + ": shape " + Arrays.toString(shape) + " is invalid: " + e.getMessage());
        }
        if (n != data.length) {
            throw new IllegalArgumentException(
                    name
                            + ": shape "
                            + Arrays.toString(shape)
                            + " needs "
                            + n
                            + " values, got "
                            + data.length);
        }
        this.name = name;
        this.shape = shape.clone();
        this.data = data;
    }

    /**
     * Returns the name.
     *
     * @return the checkpoint name
     */
    public String getName() {
        return name;
    }

    /**
     * Returns the shape.
     *
     * @return a copy of the shape
     */
    public long[] getShape() {
        return shape.clone();
    }

    /**
     * Returns the values (not copied).
     *
     * @return the row-major values
     */
    public float[] getData() {
        return data;
    }

    /**
     * Returns this tensor renamed.
     *
     * @param newName the new name
     * @return a tensor sharing the data
     */
    public CheckpointTensor rename(String newName) {
        return new CheckpointTensor(newName, shape, data);
    }

    /**
     * Returns the transpose of a matrix (e.g. ONNX's {@code [in, out]} MatMul weight into PyTorch's
     * {@code [out, in]}).
     *
     * @param newName the name of the result
     * @return the transposed copy
     * @throws IllegalStateException if this is not a matrix
     */
    public CheckpointTensor transpose(String newName) {
        if (shape.length != 2) {
            throw new IllegalStateException(name + " is not a matrix: " + Arrays.toString(shape));
        }
        int rows = (int) shape[0];
        int cols = (int) shape[1];
        float[] t = new float[data.length];
        // Blocked so both sides stay in cache for the large embedding-sized matrices.
        final int block = 64;
        for (int r0 = 0; r0 < rows; r0 += block) {
            for (int c0 = 0; c0 < cols; c0 += block) {
                int r1 = Math.min(rows, r0 + block);
                int c1 = Math.min(cols, c0 + block);
                for (int r = r0; r < r1; r++) {
                    for (int c = c0; c < c1; c++) {
                        t[c * rows + r] = data[r * cols + c];
                    }
                }
            }
        }
        return new CheckpointTensor(newName, new long[] {cols, rows}, t);
    }

    @Override
    public String toString() {
        return name + Arrays.toString(shape);
    }
}
