package io.github.tilewise.djl.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Sequences of different lengths packed row after row, with no padding: sequence {@code s} owns
 * rows {@code [offsets[s], offsets[s + 1])} (FlashAttention's {@code cu_seqlens}). This class
 * checks offsets and options for {@link FusedAttention#forwardPacked} and computes the DJL
 * reference, sequence by sequence.
 */
final class PackedSequences {

    private PackedSequences() {}

    /**
     * Checks that {@code offsets} run from 0 to {@code rows}, never decreasing.
     *
     * @throws IllegalArgumentException naming the problem
     */
    static void checkOffsets(int[] offsets, long rows, String name) {
        if (offsets == null || offsets.length < 2) {
            throw new IllegalArgumentException(
                    name
                            + " must hold numSequences + 1 >= 2 offsets, got "
                            + (offsets == null ? "null" : offsets.length));
        }
        if (offsets[0] != 0) {
            throw new IllegalArgumentException(name + "[0] must be 0, got " + offsets[0]);
        }
        for (int s = 1; s < offsets.length; s++) {
            if (offsets[s] < offsets[s - 1]) {
                throw new IllegalArgumentException(
                        name + " decreases at " + s + ": " + offsets[s] + " < " + offsets[s - 1]);
            }
        }
        if (offsets[offsets.length - 1] != rows) {
            throw new IllegalArgumentException(
                    name
                            + " ends at "
                            + offsets[offsets.length - 1]
                            + " but there are "
                            + rows
                            + " packed rows");
        }
    }

    /** Packed sequences take no masks, bias or valid lengths: the offsets are the mask. */
    static void checkOptions(AttentionOptions options) {
        if (options.getKeyPaddingMask() != null
                || options.getKeyValidLengths() != null
                || options.getBias() != null) {
            throw new IllegalArgumentException(
                    "packed sequences take no key padding mask, valid lengths or bias: the offsets"
                            + " say which keys each query sees");
        }
    }

    /**
     * The DJL reference: each sequence through {@link ReferenceAttention}, concatenated.
     *
     * @param q {@code [Tq, H, D]}
     * @param k {@code [Tk, Hkv, D]}
     * @param v {@code [Tk, Hkv, D]}
     * @return {@code [Tq, H, D]} on {@code target}
     */
    static NDArray reference(
            NDArray q,
            NDArray k,
            NDArray v,
            int[] offsetsQ,
            int[] offsetsK,
            AttentionOptions options,
            NDManager target) {
        AttentionOptions perSequence = options.withLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM);
        long heads = q.getShape().get(1);
        long headDim = q.getShape().get(2);
        try (NDManager scope = target.newSubManager()) {
            NDList parts = new NDList();
            for (int s = 0; s + 1 < offsetsQ.length; s++) {
                int q0 = offsetsQ[s];
                int q1 = offsetsQ[s + 1];
                int k0 = offsetsK[s];
                int k1 = offsetsK[s + 1];
                if (q1 == q0) {
                    continue;
                }
                if (k1 == k0) {
                    parts.add(scope.zeros(new Shape(q1 - q0, heads, headDim), q.getDataType()));
                    continue;
                }
                NDArray out =
                        ReferenceAttention.forward(
                                rows(q, q0, q1).expandDims(0),
                                rows(k, k0, k1).expandDims(0),
                                rows(v, k0, k1).expandDims(0),
                                perSequence);
                out.attach(scope);
                parts.add(out.squeeze(0));
            }
            NDArray all = parts.size() == 1 ? parts.get(0).duplicate() : NDArrays.concat(parts, 0);
            all.attach(target);
            return all;
        }
    }

    private static NDArray rows(NDArray x, int from, int to) {
        return x.get(new NDIndex("{}:{}", from, to));
    }

    /** The element type the kernel is told about. */
    static DataType requireDataType(NDArray q) {
        DataType type = q.getDataType();
        if (type != DataType.FLOAT32 && type != DataType.FLOAT16) {
            throw new IllegalArgumentException(
                    "packed attention takes FLOAT32 or FLOAT16 arrays, got " + type);
        }
        return type;
    }
}
