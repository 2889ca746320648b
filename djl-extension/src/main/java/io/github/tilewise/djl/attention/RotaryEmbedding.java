package io.github.tilewise.djl.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.jni.LibUtils;
import io.github.tilewise.djl.jni.RotaryNative;
import io.github.tilewise.djl.jni.SharedMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Rotary position embeddings (RoPE), applied in place to the query and key columns of projection
 * rows, in Hugging Face's "rotate_half" form (Llama, ModernBERT, GPT-NeoX) over whole heads:
 *
 * <pre>
 *   inv_freq[i] = 1 / theta^(2i / d)        (fp32, as torch computes it),  i in [0, d/2)
 *   c, s        = cos, sin(float(pos) · inv_freq[i])
 *   x'[i]       = x[i]·c − x[i + d/2]·s
 *   x'[i + d/2] = x[i + d/2]·c + x[i]·s
 * </pre>
 *
 * <p>The arithmetic follows torch's fp32 eager path ({@code q * cos + rotate_half(q) * sin}, each
 * product rounded) with cos and sin correctly rounded, so results agree with Hugging Face's to
 * about 1 ulp.
 *
 * <pre>{@code
 * NDArray qkv = projection.forward(x);               // [T, 3·H·D], packed sequences
 * int[] positions = RotaryEmbedding.packedPositions(offsets);
 * RotaryEmbedding.applyToQueryKey(qkv, heads, positions, 160000f); // rotates Q and K in place
 * NDArray out = FusedAttention.forwardPackedQkv(qkv, heads, offsets, options);
 * }</pre>
 *
 * <p>Runs natively (parallel over tokens) when the library is loaded and the rows are a contiguous
 * array; otherwise, and without the native library, with DJL ops that write the result back with
 * {@code set}.
 */
public final class RotaryEmbedding {

    private RotaryEmbedding() {}

    /**
     * Rotates, in place, the columns {@code [columnOffset, columnOffset + heads·headDim)} of each
     * row of {@code rows}, read as {@code heads} heads of {@code headDim}. For a fused projection
     * {@code [T, 3·H·D]}, {@code columnOffset = 0, heads = 2H} rotates Q and K in one call.
     *
     * @param rows FLOAT32 {@code [tokens, width]} on the CPU, rotated in place
     * @param columnOffset the first column to rotate
     * @param heads heads to rotate per row
     * @param headDim head dimension, even
     * @param positions the position of each row (within its own sequence for packed batches)
     * @param theta the RoPE base ({@code rope_theta}), positive and finite
     * @throws IllegalArgumentException naming the problem: rank, type, device, an odd head
     *     dimension, columns past the row, a positions array of the wrong length, a bad theta
     * @throws IllegalStateException if the array has been closed
     */
    public static void apply(
            NDArray rows, long columnOffset, int heads, int headDim, int[] positions, float theta) {
        check(rows, columnOffset, heads, headDim, positions, theta);
        long tokens = rows.getShape().get(0);
        if (tokens == 0) {
            return;
        }
        if (!LibUtils.isAvailable()
                || !"PyTorch".equals(rows.getManager().getEngine().getEngineName())) {
            reference(rows, columnOffset, heads, headDim, positions, theta);
            return;
        }
        long width = rows.getShape().get(1);
        try (NDManager scope = rows.getManager().newSubManager()) {
            ByteBuffer all = SharedMemory.of(rows, "rows", scope);
            if (!sharesMemory(all, rows)) {
                // A non-contiguous view: its buffer is a copy, so write through DJL instead.
                reference(rows, columnOffset, heads, headDim, positions, theta);
                return;
            }
            ByteBuffer first =
                    all.duplicate()
                            .position((int) (columnOffset * Float.BYTES))
                            .slice()
                            .order(ByteOrder.LITTLE_ENDIAN);
            RotaryNative.get().apply(first, tokens, heads, headDim, width, positions, theta);
        }
    }

    /**
     * Rotates the query and key parts of a fused projection {@code [T, 3·H·D]} (Q, K, V
     * concatenated on the last axis) in place; V is left alone.
     *
     * @param qkv FLOAT32 {@code [T, 3·heads·headDim]} on the CPU
     * @param heads attention heads {@code H}
     * @param positions the position of each row
     * @param theta the RoPE base, positive and finite
     * @throws IllegalArgumentException naming the problem, as {@link #apply}, or when the last axis
     *     does not split into {@code 3 × heads} heads of an even size
     * @throws IllegalStateException if the array has been closed
     */
    public static void applyToQueryKey(NDArray qkv, int heads, int[] positions, float theta) {
        if (qkv == null || qkv.getShape().dimension() != 2) {
            throw new IllegalArgumentException(
                    "qkv must be [rows, 3·heads·headDim], got "
                            + (qkv == null ? "null" : qkv.getShape()));
        }
        long width = qkv.getShape().get(1);
        if (heads < 1 || width == 0 || width % (3L * heads) != 0) {
            throw new IllegalArgumentException(
                    "qkv "
                            + qkv.getShape()
                            + ": the last axis must split into 3 × "
                            + heads
                            + " heads of equal size");
        }
        long headDim = width / (3L * heads);
        if (headDim > Integer.MAX_VALUE / 2) {
            throw new IllegalArgumentException("qkv head dimension " + headDim + " is too large");
        }
        apply(qkv, 0, 2 * heads, (int) headDim, positions, theta);
    }

    /**
     * Returns each packed row's position within its own sequence: {@code r - offsets[s]} for row
     * {@code r} of sequence {@code s}.
     *
     * @param offsets {@code numSequences + 1} row offsets from 0, never decreasing
     * @return one position per row
     * @throws IllegalArgumentException if the offsets do not start at 0 or decrease
     */
    public static int[] packedPositions(int[] offsets) {
        if (offsets == null || offsets.length < 1) {
            throw new IllegalArgumentException("offsets must hold numSequences + 1 entries");
        }
        PackedSequences.checkOffsets(
                offsets.length == 1 ? new int[] {0, 0} : offsets,
                offsets[offsets.length - 1],
                "offsets");
        int[] positions = new int[offsets[offsets.length - 1]];
        for (int s = 0; s + 1 < offsets.length; s++) {
            for (int r = offsets[s]; r < offsets[s + 1]; r++) {
                positions[r] = r - offsets[s];
            }
        }
        return positions;
    }

    private static void check(
            NDArray rows, long columnOffset, int heads, int headDim, int[] positions, float theta) {
        if (rows == null) {
            throw new IllegalArgumentException("rows must not be null");
        }
        if (rows.isReleased()) {
            throw new IllegalStateException("rows has been closed");
        }
        Shape shape = rows.getShape();
        if (shape.dimension() != 2) {
            throw new IllegalArgumentException(
                    "rows must be [tokens, width] (rank 2), got " + shape);
        }
        if (rows.getDataType() != DataType.FLOAT32) {
            throw new IllegalArgumentException(
                    "rotary embeddings take FLOAT32 rows, got " + rows.getDataType().name());
        }
        if (!ai.djl.Device.Type.CPU.equals(rows.getDevice().getDeviceType())) {
            throw new IllegalArgumentException(
                    "rows are on " + rows.getDevice() + "; rotary embeddings run on the CPU");
        }
        if (heads < 1) {
            throw new IllegalArgumentException("heads must be positive, got " + heads);
        }
        if (headDim < 2 || headDim % 2 != 0) {
            throw new IllegalArgumentException(
                    "headDim must be even and at least 2 (rotate_half pairs i with i + d/2), got "
                            + headDim);
        }
        if (columnOffset < 0 || columnOffset + (long) heads * headDim > shape.get(1)) {
            throw new IllegalArgumentException(
                    "columns ["
                            + columnOffset
                            + ", "
                            + (columnOffset + (long) heads * headDim)
                            + ") do not fit in rows of width "
                            + shape.get(1));
        }
        if (positions == null || positions.length != shape.get(0)) {
            throw new IllegalArgumentException(
                    "positions must hold one entry per row ("
                            + shape.get(0)
                            + "), got "
                            + (positions == null ? "null" : positions.length));
        }
        if (!(theta > 0f) || !Float.isFinite(theta)) {
            throw new IllegalArgumentException("theta must be positive and finite, got " + theta);
        }
    }

    /**
     * Whether {@code buffer} (from {@code toByteBuffer(true)}) is the array's own memory rather
     * than a contiguous copy of a view: a second buffer of a contiguous array sees a write through
     * the first. The first value is restored.
     */
    private static boolean sharesMemory(ByteBuffer buffer, NDArray rows) {
        ByteBuffer again = rows.toByteBuffer(true);
        int bits = buffer.getInt(0);
        buffer.putInt(0, ~bits);
        boolean shared = again.getInt(0) == ~bits;
        buffer.putInt(0, bits);
        return shared;
    }

    /**
     * The DJL reference (the fallback and the tests' oracle): torch's fp32 computation of the
     * angles and the rotation, written back into {@code rows} with {@code set}.
     */
    static void reference(
            NDArray rows, long columnOffset, int heads, int headDim, int[] positions, float theta) {
        long tokens = rows.getShape().get(0);
        if (tokens == 0) {
            return;
        }
        int half = headDim / 2;
        long end = columnOffset + (long) heads * headDim;
        try (NDManager scope = rows.getManager().newSubManager()) {
            // inv_freq = 1 / theta ** (arange(0, d, 2).float() / d), all fp32.
            NDArray exponents =
                    scope.arange(0, headDim, 2)
                            .toType(DataType.FLOAT32, false)
                            .div((float) headDim);
            NDArray invFreq =
                    scope.ones(new Shape(half))
                            .div(scope.full(new Shape(half), theta).pow(exponents));
            NDArray freqs =
                    scope.create(positions)
                            .toType(DataType.FLOAT32, false)
                            .reshape(tokens, 1)
                            .mul(invFreq.reshape(1, half));
            NDArray cos = freqs.cos().reshape(tokens, 1, half);
            NDArray sin = freqs.sin().reshape(tokens, 1, half);
            NDIndex columns = new NDIndex(":, {}:{}", columnOffset, end);
            NDArray block = rows.get(columns).reshape(tokens, heads, headDim);
            block.attach(scope);
            NDArray x1 = block.get(":, :, :{}", half);
            NDArray x2 = block.get(":, :, {}:", half);
            NDArray lo = x1.mul(cos).add(x2.neg().mul(sin));
            NDArray hi = x2.mul(cos).add(x1.mul(sin));
            NDArray rotated =
                    NDArrays.concat(new NDList(lo, hi), 2).reshape(tokens, end - columnOffset);
            rows.set(columns, rotated);
        }
    }
}
