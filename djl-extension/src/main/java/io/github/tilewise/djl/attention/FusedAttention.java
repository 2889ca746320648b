package io.github.tilewise.djl.attention;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.cuda.CudaAttention;
import io.github.tilewise.djl.jni.AttentionNative;
import io.github.tilewise.djl.jni.CudaLibrary;
import io.github.tilewise.djl.jni.LibUtils;
import io.github.tilewise.djl.jni.SharedMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The fused, IO-aware attention operator on DJL NDArrays (PyTorch engine, CPU):
 *
 * <pre>  O = softmax(scale · Q·Kᵀ + mask) · V</pre>
 *
 * computed tile by tile with an online softmax; the {@code qLen × kvLen} score matrix is never
 * materialised, so extra memory is a few tiles per thread whatever the sequence length.
 *
 * <pre>{@code
 * AttentionOptions options = AttentionOptions.builder()
 *         .optLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM) // [B, N, H, D] straight from a projection
 *         .optCausal(true)
 *         .optKeyPaddingMask(attentionMask)              // [B, Nk], 0 = padding
 *         .build();
 * NDArray out = FusedAttention.forward(q, k, v, options);  // shaped like q, on q's manager
 * }</pre>
 *
 * <p><b>Shapes.</b> In {@link AttentionLayout#BATCH_HEADS_SEQ_DIM}: Q {@code [B, H, Nq, D]}, K and
 * V {@code [B, Hkv, Nk, D]} with {@code Hkv} dividing {@code H} (grouped-query and multi-query
 * attention: query head {@code h} reads K/V head {@code h / (H / Hkv)}), output {@code [B, H, Nq,
 * D]}; in {@link AttentionLayout#BATCH_SEQ_HEADS_DIM} the seq and head axes swap. {@code Nq} may
 * differ from {@code Nk} (cross-attention, decoding one row against a cache); {@code D} is at most
 * {@value #MAX_HEAD_DIM}.
 *
 * <p><b>Types.</b> Data is FLOAT32 or FLOAT16, the same for Q, K and V; the output has that type.
 * Dot products accumulate in fp32. {@link ComputePrecision#BF16} on FLOAT32 data rounds tiles to
 * bfloat16 on the fly for twice the arithmetic rate (a BFLOAT16 NDArray itself would abort DJL's
 * PyTorch engine, so bf16 is offered this way only).
 *
 * <p><b>Masks</b> (see {@link AttentionOptions}) combine; a query row that sees no key gets zeros
 * and log-sum-exp {@code -inf}, never NaN.
 *
 * <p><b>NaN and infinity.</b> No input value makes the call fail or crash; the result follows IEEE
 * arithmetic like the naive computation. A query row whose query vector, or whose visible keys,
 * values or bias entries hold NaN or ±Inf, comes out NaN (or ±Inf). Keys at or past a valid length
 * never contribute, whatever their bits (an unwritten cache tail is safe), and a NaN or ±Inf in a
 * key or value row hidden by any mask never reaches the rows it is hidden from, on every
 * instruction set (the kernels skip masked products instead of multiplying by a zero weight).
 *
 * <p><b>Memory.</b> Q, K, V, masks and bias are read in place through {@code toByteBuffer(true)}
 * when they are contiguous (the usual case); a non-contiguous view (e.g. after {@code transpose})
 * is copied once into a scoped manager that is freed before the call returns. The output is
 * allocated on Q's manager and written by the kernel directly, without a further copy. Each tensor
 * must fit a {@link ByteBuffer} (2 GiB).
 *
 * <p><b>Packed projections.</b> {@link #forwardPackedQkv} takes the {@code [B, S, 3·H·D]} output of
 * one fused Q/K/V projection and reads Q, K and V inside it through strides, without splitting.
 *
 * <p><b>Threads.</b> The kernel runs on Tilewise's own pool ({@link
 * io.github.tilewise.djl.Tilewise#setNumThreads}). During a call the input arrays are temporarily
 * attached to a scoped manager (DJL's {@code tempAttach} idiom, so that any copy DJL makes of them
 * is freed with the scope) and handed back before it returns; as with other DJL operations, do not
 * use one NDArray from two threads at once.
 *
 * <p>When the native library is not loaded (see {@link io.github.tilewise.djl.Tilewise}), the same
 * call runs {@link ReferenceAttention}, which materialises the score matrix.
 *
 * <p><b>GPU.</b> {@link #forward} on arrays on a GPU ({@code Device.isGpu()}) runs {@link
 * CudaAttention#forward(NDArray, NDArray, NDArray, AttentionOptions)} (FLOAT16, head dim 64 or 128,
 * no mask or bias arrays; staged through host memory, see there); the other methods take CPU
 * arrays.
 */
public final class FusedAttention {

    /** The largest supported head dimension. */
    public static final int MAX_HEAD_DIM = AttentionNative.MAX_HEAD_DIM;

    private static final String PYTORCH = "PyTorch";

    private FusedAttention() {}

    /**
     * Computes attention.
     *
     * @param q queries
     * @param k keys
     * @param v values
     * @param options layout, scale, masks and precision; null means the defaults
     * @return the output, shaped like q, with q's data type, attached to q's manager (and on q's
     *     device)
     * @throws IllegalArgumentException naming the problem for bad ranks, shapes, dtypes, devices,
     *     engines, masks, biases or valid lengths
     * @throws IllegalStateException for closed arrays
     * @throws UnsupportedOperationException for GPU arrays the CUDA kernel cannot take (data type,
     *     head dimension, or an option it does not implement, named in the message)
     * @throws io.github.tilewise.djl.NativeLibraryUnavailableException for GPU arrays where the
     *     CUDA library is unavailable (the message carries {@link CudaLibrary#unavailableReason()})
     */
    public static NDArray forward(NDArray q, NDArray k, NDArray v, AttentionOptions options) {
        return forward(q, k, v, options, null);
    }

    /**
     * As {@link #forward(NDArray, NDArray, NDArray, AttentionOptions)}, writing the output into
     * {@code out} (an array the caller reuses from call to call, so no fresh memory is touched).
     *
     * @param q queries
     * @param k keys
     * @param v values
     * @param options layout, scale, masks and precision; null means the defaults
     * @param out an open array shaped like q, of q's data type and device, or null (a new array)
     * @return {@code out}, or a new array as {@link #forward(NDArray, NDArray, NDArray,
     *     AttentionOptions)} returns
     * @throws IllegalArgumentException naming the problem, as {@link #forward(NDArray, NDArray,
     *     NDArray, AttentionOptions)}, or when {@code out} is closed or of another shape or type
     */
    public static NDArray forward(
            NDArray q, NDArray k, NDArray v, AttentionOptions options, NDArray out) {
        if (q != null && !q.isReleased() && q.getDevice().isGpu()) {
            // GPU arrays: the CUDA kernel (it checks CudaLibrary.isAvailable()); CPU arrays below.
            checkOut(out, q.getShape(), q.getDataType(), q.getDevice());
            return into(CudaAttention.forward(q, k, v, options), out);
        }
        return compute(q, k, v, options, false, out).singletonOrThrow();
    }

    /**
     * Computes attention and the log-sum-exp of each query row's scaled, masked scores ({@code log
     * Σⱼ exp(scale·qᵢ·kⱼ + biasᵢⱼ)} over visible keys; {@code -inf} for a row that sees no key).
     *
     * @param q queries
     * @param k keys
     * @param v values
     * @param options layout, scale, masks and precision; null means the defaults
     * @return the output (shaped like q) and the log-sum-exp {@code [B, H, Nq]} (FLOAT32), both
     *     attached to q's manager
     * @throws IllegalArgumentException naming the problem, as {@link #forward}
     * @throws IllegalStateException for closed arrays
     */
    public static NDList forwardWithLogSumExp(
            NDArray q, NDArray k, NDArray v, AttentionOptions options) {
        return compute(q, k, v, options, true, null);
    }

    /**
     * Computes self-attention on a packed QKV tensor, as one projection {@code x·[Wq Wk Wv]}
     * produces it, reading Q, K and V in place (no split, no copy).
     *
     * <pre>{@code
     * NDArray qkv = linear.forward(x);                        // [B, S, 3·H·D]
     * NDArray out = FusedAttention.forwardPackedQkv(qkv, 12, options); // [B, S, H, D]
     * NDArray merged = out.reshape(batch, seq, -1);            // free: the output is contiguous
     * }</pre>
     *
     * @param qkv {@code [B, S, 3·H·D]} (Q, K, V concatenated on the last axis, each {@code [H, D]})
     *     or {@code [B, S, 3, H, D]}
     * @param heads the number of heads {@code H}
     * @param options scale, masks and precision; null means the defaults. The layout is implied by
     *     the packing ({@link AttentionLayout#BATCH_SEQ_HEADS_DIM}) and the option is ignored
     * @return the output {@code [B, S, H, D]}, with qkv's data type, attached to qkv's manager
     * @throws IllegalArgumentException naming the problem, as {@link #forward}, or when the last
     *     axis does not split into {@code 3 × heads} equal parts
     * @throws IllegalStateException for closed arrays
     */
    public static NDArray forwardPackedQkv(NDArray qkv, int heads, AttentionOptions options) {
        return forwardPackedQkv(qkv, heads, options, null);
    }

    /**
     * As {@link #forwardPackedQkv(NDArray, int, AttentionOptions)}, writing the output into {@code
     * out} (an array the caller reuses from call to call, so no fresh memory is touched).
     *
     * @param qkv {@code [B, S, 3·H·D]} or {@code [B, S, 3, H, D]}
     * @param heads the number of heads {@code H}
     * @param options scale, masks and precision; null means the defaults
     * @param out an open contiguous CPU array {@code [B, S, H, D]} of qkv's data type, or null (a
     *     new array)
     * @return {@code out}, or a new array attached to qkv's manager
     * @throws IllegalArgumentException naming the problem, as {@link #forwardPackedQkv(NDArray,
     *     int, AttentionOptions)}, or when {@code out} is closed or of another shape or type
     */
    public static NDArray forwardPackedQkv(
            NDArray qkv, int heads, AttentionOptions options, NDArray out) {
        AttentionOptions opts =
                (options == null ? AttentionOptions.builder().build() : options)
                        .withLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM);
        long[] dims = packedDims(qkv, heads);
        long batch = dims[0];
        long seq = dims[1];
        long headDim = dims[2];
        NDManager target = qkv.getManager();
        try (NDManager scope = target.newSubManager()) {
            attachForCall(qkv, scope);
            if (!LibUtils.isAvailable()) {
                // Views (no copies) of Q, K and V for the reference path.
                NDArray packed = qkv.reshape(batch, seq, 3, heads, headDim);
                NDArray q = packed.get(":, :, 0");
                NDArray k = packed.get(":, :, 1");
                NDArray v = packed.get(":, :, 2");
                AttentionShape shape = AttentionShape.check(q, k, v, opts);
                checkOut(out, new Shape(batch, seq, heads, headDim), shape.dataType);
                return into(
                        ReferenceAttention.compute(q, k, v, opts, shape, false, target)
                                .singletonOrThrow(),
                        out);
            }
            AttentionShape shape =
                    AttentionShape.checkPacked(qkv, new long[] {batch, seq, heads, headDim}, opts);
            requirePyTorch(qkv, "qkv");
            Operands operands = packedOperands(qkv, shape, scope);
            return runNative(operands, opts, shape, target, scope, false, out).singletonOrThrow();
        }
    }

    /**
     * Computes attention over sequences of different lengths packed row after row, with no padding
     * (FlashAttention's variable-length form): sequence {@code s} owns query rows {@code
     * [offsetsQ[s], offsetsQ[s + 1])} and key rows {@code [offsetsK[s], offsetsK[s + 1])} and sees
     * only those keys. No work or memory is spent on padding.
     *
     * @param q {@code [Tq, H, D]}, FLOAT32 or FLOAT16
     * @param k {@code [Tk, Hkv, D]} ({@code Hkv} divides {@code H})
     * @param v {@code [Tk, Hkv, D]}
     * @param offsetsQ {@code numSequences + 1} offsets from 0 to {@code Tq}, never decreasing
     * @param offsetsK {@code numSequences + 1} offsets from 0 to {@code Tk}
     * @param options scale, causal (bottom-right aligned within each sequence), sliding window and
     *     relative-position bias (positions within each sequence) and compute precision; masks,
     *     valid lengths and dense bias are refused (the offsets are the mask); null means the
     *     defaults
     * @return {@code [Tq, H, D]}, q's data type, attached to q's manager; rows of a sequence with
     *     no keys are zeros
     * @throws IllegalArgumentException naming the problem
     * @throws IllegalStateException for closed arrays
     */
    public static NDArray forwardPacked(
            NDArray q,
            NDArray k,
            NDArray v,
            int[] offsetsQ,
            int[] offsetsK,
            AttentionOptions options) {
        return forwardPacked(q, k, v, offsetsQ, offsetsK, options, null);
    }

    /**
     * As {@link #forwardPacked(NDArray, NDArray, NDArray, int[], int[], AttentionOptions)}, writing
     * the output into {@code out} (an array the caller reuses from call to call).
     *
     * @param q {@code [Tq, H, D]}
     * @param k {@code [Tk, Hkv, D]}
     * @param v {@code [Tk, Hkv, D]}
     * @param offsetsQ {@code numSequences + 1} offsets from 0 to {@code Tq}
     * @param offsetsK {@code numSequences + 1} offsets from 0 to {@code Tk}
     * @param options as {@link #forwardPacked(NDArray, NDArray, NDArray, int[], int[],
     *     AttentionOptions)}
     * @param out an open contiguous CPU array {@code [Tq, H, D]} of q's data type, or null (a new
     *     array)
     * @return {@code out}, or a new array attached to q's manager
     * @throws IllegalArgumentException naming the problem, or when {@code out} is closed or of
     *     another shape or type
     */
    public static NDArray forwardPacked(
            NDArray q,
            NDArray k,
            NDArray v,
            int[] offsetsQ,
            int[] offsetsK,
            AttentionOptions options,
            NDArray out) {
        AttentionOptions opts = options == null ? AttentionOptions.builder().build() : options;
        PackedSequences.checkOptions(opts);
        long[] qs = packedShape(q, "q");
        long[] ks = packedShape(k, "k");
        long[] vs = packedShape(v, "v");
        if (ks[0] != vs[0] || ks[1] != vs[1] || ks[2] != vs[2] || qs[2] != ks[2]) {
            throw new IllegalArgumentException(
                    "packed q "
                            + q.getShape()
                            + ", k "
                            + k.getShape()
                            + " and v "
                            + v.getShape()
                            + " must share the head dim, and k and v their shape");
        }
        if (qs[1] % ks[1] != 0) {
            throw new IllegalArgumentException("k's " + ks[1] + " heads must divide q's " + qs[1]);
        }
        DataType type = PackedSequences.requireDataType(q);
        if (k.getDataType() != type || v.getDataType() != type) {
            throw new IllegalArgumentException("q, k and v must share one data type");
        }
        AttentionShape.checkRelativeBias(opts, qs[1]);
        PackedSequences.checkOffsets(offsetsQ, qs[0], "offsetsQ");
        PackedSequences.checkOffsets(offsetsK, ks[0], "offsetsK");
        if (offsetsQ.length != offsetsK.length) {
            throw new IllegalArgumentException(
                    "offsetsQ and offsetsK must describe as many sequences, got "
                            + (offsetsQ.length - 1)
                            + " and "
                            + (offsetsK.length - 1));
        }
        NDManager target = q.getManager();
        checkOut(out, new Shape(qs[0], qs[1], qs[2]), type);
        if (!LibUtils.isAvailable() || qs[0] == 0 || ks[0] == 0) {
            requireEngineOfQ(k, v, q);
            if (qs[0] == 0) {
                return out != null ? out : target.create(new Shape(0, qs[1], qs[2]), type);
            }
            return into(PackedSequences.reference(q, k, v, offsetsQ, offsetsK, opts, target), out);
        }
        requirePyTorch(q, k, v);
        try (NDManager scope = target.newSubManager()) {
            Operands operands =
                    new Operands(
                            SharedMemory.of(q, "q", scope),
                            rowStrides(qs[0], qs[1], qs[2], qs[1] * qs[2]),
                            SharedMemory.of(k, "k", scope),
                            rowStrides(ks[0], ks[1], ks[2], ks[1] * ks[2]),
                            SharedMemory.of(v, "v", scope),
                            rowStrides(ks[0], ks[1], ks[2], ks[1] * ks[2]));
            return launchPacked(
                    operands, type, qs[0], ks[0], qs[1], ks[1], qs[2], offsetsQ, offsetsK, opts,
                    target, out);
        }
    }

    /**
     * Computes self-attention over packed sequences on one fused Q/K/V projection {@code [T,
     * 3·H·D]} (the rows of all sequences, no padding), reading Q, K and V in place.
     *
     * @param qkv {@code [T, 3·H·D]}
     * @param heads the number of heads {@code H}
     * @param offsets {@code numSequences + 1} row offsets from 0 to {@code T}
     * @param options scale, causal, sliding window, relative bias and compute precision, as {@link
     *     #forwardPacked}
     * @return {@code [T, H, D]}, attached to qkv's manager
     * @throws IllegalArgumentException naming the problem
     * @throws IllegalStateException for closed arrays
     */
    public static NDArray forwardPackedQkv(
            NDArray qkv, int heads, int[] offsets, AttentionOptions options) {
        return forwardPackedQkv(qkv, heads, offsets, options, null);
    }

    /**
     * As {@link #forwardPackedQkv(NDArray, int, int[], AttentionOptions)}, writing the output into
     * {@code out} (an array the caller reuses from call to call, so no fresh memory is touched).
     *
     * @param qkv {@code [T, 3·H·D]}
     * @param heads the number of heads {@code H}
     * @param offsets {@code numSequences + 1} row offsets from 0 to {@code T}
     * @param options as {@link #forwardPacked}
     * @param out an open contiguous CPU array {@code [T, H, D]} of qkv's data type, or null (a new
     *     array)
     * @return {@code out}, or a new array attached to qkv's manager
     * @throws IllegalArgumentException naming the problem, or when {@code out} is closed or of
     *     another shape or type
     */
    public static NDArray forwardPackedQkv(
            NDArray qkv, int heads, int[] offsets, AttentionOptions options, NDArray out) {
        AttentionOptions opts = options == null ? AttentionOptions.builder().build() : options;
        PackedSequences.checkOptions(opts);
        if (qkv == null || qkv.getShape().dimension() != 2) {
            throw new IllegalArgumentException(
                    "packed qkv must be [rows, 3·heads·headDim], got "
                            + (qkv == null ? "null" : qkv.getShape()));
        }
        if (heads < 1 || qkv.getShape().get(1) % (3L * heads) != 0 || qkv.getShape().get(1) == 0) {
            throw new IllegalArgumentException(
                    "packed qkv "
                            + qkv.getShape()
                            + ": the last axis must split into 3 × "
                            + heads
                            + " heads of equal size");
        }
        long rows = qkv.getShape().get(0);
        long headDim = qkv.getShape().get(1) / (3L * heads);
        DataType type = PackedSequences.requireDataType(qkv);
        AttentionShape.checkRelativeBias(opts, heads);
        PackedSequences.checkOffsets(offsets, rows, "offsets");
        NDManager target = qkv.getManager();
        checkOut(out, new Shape(rows, heads, headDim), type);
        if (!LibUtils.isAvailable() || rows == 0) {
            NDArray split = qkv.reshape(rows, 3, heads, headDim);
            return into(
                    forwardPacked(
                            split.get(":, 0"),
                            split.get(":, 1"),
                            split.get(":, 2"),
                            offsets,
                            offsets,
                            opts),
                    out);
        }
        requirePyTorch(qkv, "qkv");
        try (NDManager scope = target.newSubManager()) {
            attachForCall(qkv, scope);
            ByteBuffer all = SharedMemory.of(qkv, "qkv", scope);
            long hd = heads * headDim;
            int elem = type.getNumOfBytes();
            long[] strides = rowStrides(rows, heads, headDim, 3 * hd);
            Operands operands =
                    new Operands(
                            slice(all, 0),
                            strides,
                            slice(all, (int) (hd * elem)),
                            strides,
                            slice(all, (int) (2 * hd * elem)),
                            strides);
            return launchPacked(
                    operands, type, rows, rows, heads, heads, headDim, offsets, offsets, opts,
                    target, out);
        }
    }

    /** {T, H, D} of a packed rank-3 array, after checking it is open. */
    private static long[] packedShape(NDArray x, String name) {
        if (x == null) {
            throw new IllegalArgumentException(name + " must not be null");
        }
        if (x.isReleased()) {
            throw new IllegalStateException(name + " has been closed");
        }
        Shape s = x.getShape();
        if (s.dimension() != 3 || s.get(1) < 1 || s.get(2) < 1 || s.get(2) > MAX_HEAD_DIM) {
            throw new IllegalArgumentException(
                    name
                            + " must be [rows, heads, headDim] with 1 <= headDim <= "
                            + MAX_HEAD_DIM
                            + ", got "
                            + s);
        }
        return new long[] {s.get(0), s.get(1), s.get(2)};
    }

    /** (batch, head, row) element strides of packed rows {@code rowStride} apart. */
    private static long[] rowStrides(long rows, long heads, long headDim, long rowStride) {
        return new long[] {rows * rowStride, headDim, rowStride};
    }

    private static NDArray launchPacked(
            Operands in,
            DataType type,
            long rowsQ,
            long rowsK,
            long heads,
            long kvHeads,
            long headDim,
            int[] offsetsQ,
            int[] offsetsK,
            AttentionOptions opts,
            NDManager target,
            NDArray out) {
        requirePyTorch(opts.getRelativeBias(), "relativeBias");
        NDArray output = out != null ? out : target.create(new Shape(rowsQ, heads, headDim), type);
        try (NDManager scope = target.newSubManager()) {
            NDArray table = opts.getRelativeBias();
            AttentionNative.get()
                    .forwardPacked(
                            dtypeCode(type),
                            computeCode(opts),
                            new long[] {1, heads, kvHeads, rowsQ, rowsK, headDim},
                            in.q(),
                            in.qStrides(),
                            in.k(),
                            in.kStrides(),
                            in.v(),
                            in.vStrides(),
                            SharedMemory.of(output, "output", null),
                            rowStrides(rowsQ, heads, headDim, heads * headDim),
                            opts.getScale(headDim),
                            opts.isCausal(),
                            offsetsQ,
                            offsetsK,
                            window(opts),
                            table == null ? null : SharedMemory.of(table, "relativeBias", scope),
                            Math.max(opts.getRelativeBiasRadius(), 0),
                            relativeBiasHeadStride(table));
            return output;
        } catch (RuntimeException | Error e) {
            if (output != out) {
                output.close();
            }
            throw e;
        }
    }

    /** Checks a caller-owned output: open, on the CPU, of the output's shape and data type. */
    private static void checkOut(NDArray out, Shape shape, DataType type) {
        checkOut(out, shape, type, null);
    }

    /** As {@link #checkOut(NDArray, Shape, DataType)}, on {@code device} (null: any CPU). */
    private static void checkOut(NDArray out, Shape shape, DataType type, Device device) {
        if (out == null) {
            return;
        }
        if (out.isReleased()) {
            throw new IllegalArgumentException("out is closed");
        }
        boolean placed =
                device == null
                        ? Device.Type.CPU.equals(out.getDevice().getDeviceType())
                        : device.equals(out.getDevice());
        if (!out.getShape().equals(shape) || out.getDataType() != type || !placed) {
            throw new IllegalArgumentException(
                    "out must be a "
                            + (device == null ? "CPU" : device.toString())
                            + " "
                            + type
                            + " "
                            + shape
                            + ", got "
                            + out.getDataType()
                            + " "
                            + out.getShape()
                            + " on "
                            + out.getDevice());
        }
    }

    /** {@code result} copied into {@code out} (then closed), or {@code result} without one. */
    private static NDArray into(NDArray result, NDArray out) {
        if (out == null) {
            return result;
        }
        result.copyTo(out);
        result.close();
        return out;
    }

    private static NDList compute(
            NDArray q,
            NDArray k,
            NDArray v,
            AttentionOptions options,
            boolean withLogSumExp,
            NDArray out) {
        AttentionOptions opts = options == null ? AttentionOptions.builder().build() : options;
        AttentionShape shape = AttentionShape.check(q, k, v, opts);
        NDManager target = q.getManager();
        if (!LibUtils.isAvailable()) {
            // DJL ops would mix engines (and read a foreign array's memory as their own).
            requireEngineOfQ(k, v, q);
            checkOut(out, q.getShape(), shape.dataType);
            NDList result = ReferenceAttention.compute(q, k, v, opts, shape, withLogSumExp, target);
            return out == null ? result : new NDList(into(result.singletonOrThrow(), out));
        }
        requirePyTorch(q, k, v);
        try (NDManager scope = target.newSubManager()) {
            Operands operands =
                    new Operands(
                            SharedMemory.of(q, "q", scope),
                            shape.strides(shape.heads, shape.qLen),
                            SharedMemory.of(k, "k", scope),
                            shape.strides(shape.kvHeads, shape.kvLen),
                            SharedMemory.of(v, "v", scope),
                            shape.strides(shape.kvHeads, shape.kvLen));
            return runNative(operands, opts, shape, target, scope, withLogSumExp, out);
        }
    }

    /** Q, K and V as the kernel reads them: direct buffers and (batch, head, seq) strides. */
    private record Operands(
            ByteBuffer q,
            long[] qStrides,
            ByteBuffer k,
            long[] kStrides,
            ByteBuffer v,
            long[] vStrides) {}

    /** {B, S, D} of a packed QKV tensor, after checking it. */
    private static long[] packedDims(NDArray qkv, int heads) {
        if (qkv == null) {
            throw new IllegalArgumentException("qkv must not be null");
        }
        if (qkv.isReleased()) {
            throw new IllegalStateException("qkv has been closed");
        }
        if (heads < 1) {
            throw new IllegalArgumentException("heads must be positive, got " + heads);
        }
        Shape shape = qkv.getShape();
        if (shape.dimension() == 3) {
            long last = shape.get(2);
            if (last % (3L * heads) != 0 || last == 0) {
                throw new IllegalArgumentException(
                        "qkv "
                                + shape
                                + ": the last axis ("
                                + last
                                + ") must split into 3 × "
                                + heads
                                + " heads of equal size");
            }
            return new long[] {shape.get(0), shape.get(1), last / (3L * heads)};
        }
        if (shape.dimension() == 5) {
            if (shape.get(2) != 3 || shape.get(3) != heads) {
                throw new IllegalArgumentException(
                        "qkv " + shape + " must be [batch, seq, 3, " + heads + ", headDim]");
            }
            return new long[] {shape.get(0), shape.get(1), shape.get(4)};
        }
        throw new IllegalArgumentException(
                "qkv has shape "
                        + shape
                        + "; expected [batch, seq, 3·heads·headDim] or [batch, seq, 3, heads,"
                        + " headDim]");
    }

    /** Q, K and V inside one packed buffer: offsets 0, H·D and 2·H·D, rows 3·H·D apart. */
    private static Operands packedOperands(NDArray qkv, AttentionShape shape, NDManager scope) {
        ByteBuffer all = SharedMemory.of(qkv, "qkv", scope);
        long hd = shape.heads * shape.headDim;
        long[] strides = {shape.qLen * 3 * hd, shape.headDim, 3 * hd};
        int elem = shape.dataType.getNumOfBytes();
        return new Operands(
                slice(all, 0),
                strides,
                slice(all, (int) (hd * elem)),
                strides,
                slice(all, (int) (2 * hd * elem)),
                strides);
    }

    private static ByteBuffer slice(ByteBuffer buffer, int byteOffset) {
        return buffer.duplicate().position(byteOffset).slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Allocates the outputs on {@code target}, runs the kernel, and frees them if it fails. */
    private static NDList runNative(
            Operands operands,
            AttentionOptions opts,
            AttentionShape shape,
            NDManager target,
            NDManager scope,
            boolean withLogSumExp,
            NDArray out) {
        requirePyTorch(opts.getKeyPaddingMask(), "keyPaddingMask");
        requirePyTorch(opts.getBias(), "bias");
        requirePyTorch(opts.getRelativeBias(), "relativeBias");
        Shape outShape =
                shape.layout == AttentionLayout.BATCH_HEADS_SEQ_DIM
                        ? new Shape(shape.batch, shape.heads, shape.qLen, shape.headDim)
                        : new Shape(shape.batch, shape.qLen, shape.heads, shape.headDim);
        checkOut(out, outShape, shape.dataType);
        NDArray output = out != null ? out : target.create(outShape, shape.dataType);
        NDArray logSumExp =
                withLogSumExp
                        ? target.create(
                                new Shape(shape.batch, shape.heads, shape.qLen), DataType.FLOAT32)
                        : null;
        try {
            launch(operands, opts, shape, output, logSumExp, scope);
        } catch (RuntimeException | Error e) {
            if (output != out) {
                output.close();
            }
            if (logSumExp != null) {
                logSumExp.close();
            }
            throw e;
        }
        return logSumExp == null ? new NDList(output) : new NDList(output, logSumExp);
    }

    private static void launch(
            Operands in,
            AttentionOptions opts,
            AttentionShape shape,
            NDArray output,
            NDArray logSumExp,
            NDManager scope) {
        ByteBuffer outBuffer = SharedMemory.of(output, "output", null);
        ByteBuffer lseBuffer = logSumExp == null ? null : SharedMemory.of(logSumExp, "lse", null);

        ByteBuffer maskBuffer = null;
        NDArray mask = opts.getKeyPaddingMask();
        if (mask != null) {
            attachForCall(mask, scope);
            DataType type = mask.getDataType();
            // BOOLEAN, UINT8 and INT8 are one byte per key already, 0 masking; wider integers
            // become BOOLEAN (non-zero keeps) inside the scope.
            NDArray bytes =
                    type == DataType.BOOLEAN || type == DataType.UINT8 || type == DataType.INT8
                            ? mask
                            : mask.neq(0);
            maskBuffer = SharedMemory.of(bytes, "keyPaddingMask", scope);
        }
        int[] validLengths = opts.getKeyValidLengths();
        if (maskBuffer != null) {
            // The kernel skips whole key tiles past a valid length, but must test a mask key by
            // key: hand it the mask's trailing padding as lengths, and drop the mask altogether
            // when it only pads on the right (the Hugging Face convention).
            MaskPrefix prefix = MaskPrefix.of(maskBuffer, shape.batch, shape.kvLen);
            validLengths = prefix.combine(validLengths);
            if (prefix.isPrefixOnly()) {
                maskBuffer = null;
            }
        }

        ByteBuffer biasBuffer = null;
        long[] biasStrides = null;
        NDArray bias = opts.getBias();
        if (bias != null) {
            attachForCall(bias, scope);
            NDArray fp32 = bias.toType(DataType.FLOAT32, false);
            biasBuffer = SharedMemory.of(fp32, "bias", scope);
            biasStrides = broadcastStrides(shape.biasExtents(bias.getShape()));
        }

        NDArray table = opts.getRelativeBias();
        ByteBuffer tableBuffer =
                table == null ? null : SharedMemory.of(table, "relativeBias", scope);

        int dtype = dtypeCode(shape.dataType);
        int compute = computeCode(opts);
        long[] dims = {
            shape.batch, shape.heads, shape.kvHeads, shape.qLen, shape.kvLen, shape.headDim
        };
        AttentionNative.get()
                .forward(
                        dtype,
                        compute,
                        dims,
                        in.q(),
                        in.qStrides(),
                        in.k(),
                        in.kStrides(),
                        in.v(),
                        in.vStrides(),
                        outBuffer,
                        shape.strides(shape.heads, shape.qLen),
                        opts.getScale(shape.headDim),
                        opts.isCausal(),
                        validLengths,
                        maskBuffer,
                        biasBuffer,
                        biasStrides,
                        lseBuffer,
                        window(opts),
                        tableBuffer,
                        Math.max(opts.getRelativeBiasRadius(), 0),
                        relativeBiasHeadStride(table));
    }

    /** The sliding window as the kernel takes it: null, or {left, right} (-1: unlimited). */
    private static long[] window(AttentionOptions opts) {
        return opts.hasSlidingWindow()
                ? new long[] {opts.getWindowLeft(), opts.getWindowRight()}
                : null;
    }

    /** Elements between the heads' rows of a relative-bias table; 0 for one shared row. */
    private static long relativeBiasHeadStride(NDArray table) {
        return table == null || table.getShape().get(0) == 1 ? 0 : table.getShape().get(1);
    }

    /** The kernel's code for FLOAT32 or FLOAT16 data. */
    private static int dtypeCode(DataType type) {
        return type == DataType.FLOAT16 ? AttentionNative.DTYPE_F16 : AttentionNative.DTYPE_F32;
    }

    /** The kernel's code for the dot products' precision. */
    private static int computeCode(AttentionOptions opts) {
        return opts.getComputePrecision() == ComputePrecision.BF16
                ? AttentionNative.DTYPE_BF16
                : AttentionNative.DTYPE_F32;
    }

    /** Attaches an input to the call's scope once, so that copies DJL makes of it land there. */
    private static void attachForCall(NDArray array, NDManager scope) {
        // Attaching twice (q == k) would hand the array back to the closing scope, which closes it.
        if (array.getManager() != scope) {
            array.tempAttach(scope);
        }
    }

    /** Row-major element strides of the padded bias extents, 0 along broadcast axes. */
    private static long[] broadcastStrides(long[] extents) {
        long[] strides = new long[4];
        long stride = 1;
        for (int i = 3; i >= 0; --i) {
            strides[i] = extents[i] == 1 ? 0 : stride;
            stride *= extents[i];
        }
        return strides;
    }

    /** Without the native library: k and v on q's engine, so DJL ops do not mix engines. */
    private static void requireEngineOfQ(NDArray k, NDArray v, NDArray q) {
        requireEngineOf(q, k, "k");
        requireEngineOf(q, v, "v");
    }

    /** With the native library: q, k and v on the PyTorch engine, whose memory it reads. */
    private static void requirePyTorch(NDArray q, NDArray k, NDArray v) {
        requirePyTorch(q, "q");
        requirePyTorch(k, "k");
        requirePyTorch(v, "v");
    }

    private static void requireEngineOf(NDArray q, NDArray array, String name) {
        String expected = q.getManager().getEngine().getEngineName();
        String engine = array.getManager().getEngine().getEngineName();
        if (!expected.equals(engine)) {
            throw new IllegalArgumentException(
                    name
                            + " belongs to the "
                            + engine
                            + " engine, q to the "
                            + expected
                            + " engine: attention needs all arrays on one engine");
        }
    }

    private static void requirePyTorch(NDArray array, String name) {
        if (array == null) {
            return;
        }
        String engine = array.getManager().getEngine().getEngineName();
        if (!PYTORCH.equals(engine)) {
            throw new IllegalArgumentException(
                    name
                            + " belongs to the "
                            + engine
                            + " engine; Tilewise attention reads PyTorch engine NDArrays");
        }
    }
}
