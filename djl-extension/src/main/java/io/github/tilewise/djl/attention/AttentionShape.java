package io.github.tilewise.djl.attention;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.EnumSet;
import java.util.Set;

/**
 * The checked dimensions of one attention call. {@link #check} validates Q, K, V and the options
 * against the contract of {@link FusedAttention} and throws an exception naming the first problem;
 * both the fused operator and the reference use it, so they accept and reject the same calls.
 */
final class AttentionShape {

    private static final Set<DataType> MASK_TYPES =
            EnumSet.of(
                    DataType.BOOLEAN,
                    DataType.UINT8,
                    DataType.INT8,
                    DataType.INT32,
                    DataType.INT64);

    /** Batch size {@code B}. */
    final long batch;

    /** Query heads {@code H}. */
    final long heads;

    /** Key/value heads {@code Hkv}, dividing {@code H}. */
    final long kvHeads;

    /** Query rows per head {@code Nq}. */
    final long qLen;

    /** Keys per head {@code Nk}. */
    final long kvLen;

    /** Head dimension {@code D}. */
    final long headDim;

    /** Memory layout of Q, K, V and the output. */
    final AttentionLayout layout;

    /** Data type of Q, K, V and the output. */
    final DataType dataType;

    private AttentionShape(long[] q, long[] k, AttentionLayout layout, DataType dataType) {
        boolean headsFirst = layout == AttentionLayout.BATCH_HEADS_SEQ_DIM;
        this.batch = q[0];
        this.heads = headsFirst ? q[1] : q[2];
        this.qLen = headsFirst ? q[2] : q[1];
        this.kvHeads = headsFirst ? k[1] : k[2];
        this.kvLen = headsFirst ? k[2] : k[1];
        this.headDim = q[3];
        this.layout = layout;
        this.dataType = dataType;
    }

    /**
     * Validates one call.
     *
     * @param q queries
     * @param k keys
     * @param v values
     * @param options the options (not null)
     * @return the checked dimensions
     * @throws IllegalArgumentException for null arrays, ranks other than 4, inconsistent shapes,
     *     unsupported or mixed data types, non-CPU arrays, masks or biases of the wrong shape or
     *     type, valid lengths out of range
     * @throws IllegalStateException for closed arrays
     */
    static AttentionShape check(NDArray q, NDArray k, NDArray v, AttentionOptions options) {
        checkArray(q, "q");
        checkArray(k, "k");
        checkArray(v, "v");
        DataType type = dataType(q, "q");
        if (k.getDataType() != type || v.getDataType() != type) {
            throw new IllegalArgumentException(
                    "q, k and v must share one data type, got "
                            + type.name()
                            + ", "
                            + k.getDataType().name()
                            + " and "
                            + v.getDataType().name());
        }
        checkComputePrecision(type, options);
        long[] qs = rank4(q, "q");
        long[] ks = rank4(k, "k");
        long[] vs = rank4(v, "v");
        AttentionLayout layout = options.getLayout();
        String axes =
                layout == AttentionLayout.BATCH_HEADS_SEQ_DIM
                        ? "[batch, heads, seq, headDim]"
                        : "[batch, seq, heads, headDim]";
        for (int i = 0; i < 4; ++i) {
            if (qs[i] < 1 || ks[i] < 1) {
                throw new IllegalArgumentException(
                        "q "
                                + q.getShape()
                                + " and k "
                                + k.getShape()
                                + " must have no empty axis (layout "
                                + axes
                                + ")");
            }
        }
        if (!k.getShape().equals(v.getShape())) {
            throw new IllegalArgumentException(
                    "k " + k.getShape() + " and v " + v.getShape() + " must have the same shape");
        }
        if (ks[0] != qs[0]) {
            throw new IllegalArgumentException(
                    "q "
                            + q.getShape()
                            + " and k "
                            + k.getShape()
                            + " have different batch sizes (layout "
                            + axes
                            + ")");
        }
        if (ks[3] != qs[3]) {
            throw new IllegalArgumentException(
                    "q "
                            + q.getShape()
                            + " and k "
                            + k.getShape()
                            + " have different head dimensions (layout "
                            + axes
                            + ")");
        }
        AttentionShape shape = new AttentionShape(qs, ks, layout, type);
        if (shape.heads % shape.kvHeads != 0) {
            throw new IllegalArgumentException(
                    "k/v head count "
                            + shape.kvHeads
                            + " does not divide q head count "
                            + shape.heads
                            + " (layout "
                            + axes
                            + ", q "
                            + q.getShape()
                            + ", k "
                            + k.getShape()
                            + ")");
        }
        shape.checkHeadDimAndOptions(options);
        return shape;
    }

    /**
     * Validates a call on a packed QKV tensor ({@code [batch, seq, 3, heads, headDim]} in memory):
     * the checks of {@link #check} that can fail when Q, K and V are parts of one array, without
     * creating views of them (three native indexing calls per layer).
     *
     * @param qkv the packed tensor, its dimensions already checked by the caller
     * @param dims {@code batch, seq, heads, headDim}
     * @param options the options (not null), layout {@link AttentionLayout#BATCH_SEQ_HEADS_DIM}
     * @return the checked dimensions
     * @throws IllegalArgumentException as {@link #check}
     * @throws IllegalStateException for a closed array
     */
    static AttentionShape checkPacked(NDArray qkv, long[] dims, AttentionOptions options) {
        checkArray(qkv, "qkv");
        DataType type = dataType(qkv, "qkv");
        checkComputePrecision(type, options);
        for (long d : dims) {
            if (d < 1) {
                throw new IllegalArgumentException(
                        "qkv "
                                + qkv.getShape()
                                + " must have no empty axis (q, k and v [batch, seq, heads,"
                                + " headDim] = "
                                + java.util.Arrays.toString(dims)
                                + ")");
            }
        }
        AttentionShape shape = new AttentionShape(dims, dims, options.getLayout(), type);
        shape.checkHeadDimAndOptions(options);
        return shape;
    }

    /** The data type of a fused-attention input: FLOAT32 or FLOAT16. */
    private static DataType dataType(NDArray array, String name) {
        DataType type = array.getDataType();
        if (type != DataType.FLOAT32 && type != DataType.FLOAT16) {
            throw new IllegalArgumentException(
                    name
                            + " has data type "
                            + type.name()
                            + "; fused attention takes FLOAT32 or FLOAT16");
        }
        return type;
    }

    /** BF16 dot products read FLOAT32 data. */
    private static void checkComputePrecision(DataType type, AttentionOptions options) {
        if (options.getComputePrecision() == ComputePrecision.BF16 && type != DataType.FLOAT32) {
            throw new IllegalArgumentException(
                    "BF16 compute precision needs FLOAT32 data, got " + type.name());
        }
    }

    private void checkHeadDimAndOptions(AttentionOptions options) {
        if (headDim > FusedAttention.MAX_HEAD_DIM) {
            throw new IllegalArgumentException(
                    "head dimension "
                            + headDim
                            + " exceeds the supported maximum "
                            + FusedAttention.MAX_HEAD_DIM);
        }
        checkOptions(options);
    }

    private void checkOptions(AttentionOptions options) {
        int[] lengths = options.getKeyValidLengths();
        if (lengths != null) {
            if (lengths.length != batch) {
                throw new IllegalArgumentException(
                        "keyValidLengths has "
                                + lengths.length
                                + " entries for a batch of "
                                + batch);
            }
            for (int b = 0; b < lengths.length; ++b) {
                if (lengths[b] < 0 || lengths[b] > kvLen) {
                    throw new IllegalArgumentException(
                            "keyValidLengths["
                                    + b
                                    + "] = "
                                    + lengths[b]
                                    + " is outside [0, "
                                    + kvLen
                                    + "]");
                }
            }
        }
        NDArray mask = options.getKeyPaddingMask();
        if (mask != null) {
            checkArray(mask, "keyPaddingMask");
            if (!MASK_TYPES.contains(mask.getDataType())) {
                throw new IllegalArgumentException(
                        "keyPaddingMask has data type "
                                + mask.getDataType().name()
                                + "; expected BOOLEAN or an integer type (use a bias for"
                                + " additive float masks)");
            }
            if (!mask.getShape().equals(new Shape(batch, kvLen))) {
                throw new IllegalArgumentException(
                        "keyPaddingMask has shape "
                                + mask.getShape()
                                + "; expected [batch, kvLen] = "
                                + new Shape(batch, kvLen));
            }
        }
        NDArray bias = options.getBias();
        if (bias != null) {
            checkArray(bias, "bias");
            if (bias.getDataType() != DataType.FLOAT32 && bias.getDataType() != DataType.FLOAT16) {
                throw new IllegalArgumentException(
                        "bias has data type "
                                + bias.getDataType().name()
                                + "; expected FLOAT32 (or FLOAT16, widened)");
            }
            biasExtents(bias.getShape());
        }
        checkRelativeBias(options, heads);
    }

    /**
     * Checks the relative-position bias table of the options (if any) against the query heads.
     *
     * @throws IllegalArgumentException if it has neither 1 nor {@code heads} rows or is not on the
     *     CPU
     * @throws IllegalStateException if it has been closed
     */
    static void checkRelativeBias(AttentionOptions options, long heads) {
        NDArray table = options.getRelativeBias();
        if (table == null) {
            return;
        }
        checkArray(table, "relative bias table");
        long rows = table.getShape().get(0);
        if (rows != heads && rows != 1) {
            throw new IllegalArgumentException(
                    "relative bias table "
                            + table.getShape()
                            + " must have one row per query head ("
                            + heads
                            + ") or a single shared row");
        }
    }

    /**
     * Returns the bias shape padded on the left to rank 4, after checking it broadcasts to {@code
     * [batch, heads, qLen, kvLen]}.
     *
     * @param biasShape the bias shape
     * @return four extents, each 1 or the matching full extent
     */
    long[] biasExtents(Shape biasShape) {
        long[] full = {batch, heads, qLen, kvLen};
        int rank = biasShape.dimension();
        if (rank > 4) {
            throw new IllegalArgumentException(
                    "bias has rank " + rank + "; expected at most 4 ([batch, heads, qLen, kvLen])");
        }
        long[] extents = {1, 1, 1, 1};
        for (int i = 0; i < rank; ++i) {
            extents[4 - rank + i] = biasShape.get(i);
        }
        for (int i = 0; i < 4; ++i) {
            if (extents[i] != 1 && extents[i] != full[i]) {
                throw new IllegalArgumentException(
                        "bias shape "
                                + biasShape
                                + " does not broadcast to [batch, heads, qLen, kvLen] = "
                                + new Shape(full));
            }
        }
        return extents;
    }

    /**
     * Returns the element strides {@code {batch, head, seq}} of a contiguous tensor with this
     * call's layout.
     *
     * @param headCount heads of the tensor ({@link #heads} or {@link #kvHeads})
     * @param seqLen rows of the tensor ({@link #qLen} or {@link #kvLen})
     * @return the three strides
     */
    long[] strides(long headCount, long seqLen) {
        if (layout == AttentionLayout.BATCH_HEADS_SEQ_DIM) {
            return new long[] {headCount * seqLen * headDim, seqLen * headDim, headDim};
        }
        return new long[] {seqLen * headCount * headDim, headDim, headCount * headDim};
    }

    private static void checkArray(NDArray array, String name) {
        if (array == null) {
            throw new IllegalArgumentException(name + " must not be null");
        }
        if (array.isReleased()) {
            throw new IllegalStateException(name + " has been closed");
        }
        Device device = array.getDevice();
        if (!Device.Type.CPU.equals(device.getDeviceType())) {
            throw new IllegalArgumentException(
                    name
                            + " is on "
                            + device
                            + "; this attention call takes CPU arrays (FusedAttention.forward"
                            + " runs q, k and v that are all on one GPU with CudaAttention)");
        }
    }

    private static long[] rank4(NDArray array, String name) {
        Shape shape = array.getShape();
        if (shape.dimension() != 4) {
            throw new IllegalArgumentException(
                    name
                            + " has shape "
                            + shape
                            + " (rank "
                            + shape.dimension()
                            + "); expected rank 4");
        }
        return shape.getShape();
    }
}
