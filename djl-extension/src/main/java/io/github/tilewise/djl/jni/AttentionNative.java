package io.github.tilewise.djl.jni;

import java.nio.ByteBuffer;

/**
 * The JNI entry point of the fused attention ({@code tw_attention_forward} in {@code tilewise.h}).
 * Internal: use {@link io.github.tilewise.djl.attention.FusedAttention}, which validates NDArrays
 * and builds the buffers; the native side checks everything again (ranks, ranges, buffer capacities
 * against shapes and strides, alignment) before any kernel touches memory.
 *
 * <p>Tensors are direct buffers addressed as {@code [batch, heads, seq, headDim]} through element
 * strides {@code {batch, head, seq}}; the head-dim stride is 1.
 */
public final class AttentionNative {

    /** {@code tw_dtype} code of fp32. */
    public static final int DTYPE_F32 = 0;

    /** {@code tw_dtype} code of IEEE fp16. */
    public static final int DTYPE_F16 = 1;

    /** {@code tw_dtype} code of bfloat16. */
    public static final int DTYPE_BF16 = 2;

    /** Largest head dimension the native kernels accept ({@code TW_ATTENTION_MAX_HEAD_DIM}). */
    public static final int MAX_HEAD_DIM = 256;

    private static final AttentionNative INSTANCE = new AttentionNative();

    private AttentionNative() {}

    /**
     * Returns the entry points, or throws if the native library is not loaded.
     *
     * @return the entry points
     * @throws IllegalStateException naming why the library is not loaded
     */
    public static AttentionNative get() {
        LibUtils.requireLoaded();
        return INSTANCE;
    }

    /**
     * Runs {@code tw_attention_forward}.
     *
     * @param dtype data type of q, k, v and the output ({@link #DTYPE_F32}, {@link #DTYPE_F16},
     *     {@link #DTYPE_BF16})
     * @param compute precision of the dot products ({@link #DTYPE_F32} or {@link #DTYPE_BF16})
     * @param dims {@code {batch, qHeads, kvHeads, qLen, kvLen, headDim}}
     * @param q queries
     * @param qStrides element strides of q for batch, head, seq
     * @param k keys
     * @param kStrides element strides of k
     * @param v values
     * @param vStrides element strides of v
     * @param output where the result is written
     * @param outputStrides element strides of the output
     * @param scale score scale
     * @param causal bottom-right-aligned causal masking
     * @param keyValidLengths valid keys per batch entry, or null
     * @param keyPaddingMask {@code [batch, kvLen]} bytes where 0 masks, or null
     * @param bias fp32 additive bias, or null
     * @param biasStrides element strides of the bias for batch, head, query, key (0 broadcasts);
     *     ignored without a bias
     * @param logSumExp fp32 {@code [batch, qHeads, qLen]} output, or null
     * @throws IllegalArgumentException naming the bad argument
     */
    public void forward(
            int dtype,
            int compute,
            long[] dims,
            ByteBuffer q,
            long[] qStrides,
            ByteBuffer k,
            long[] kStrides,
            ByteBuffer v,
            long[] vStrides,
            ByteBuffer output,
            long[] outputStrides,
            float scale,
            boolean causal,
            int[] keyValidLengths,
            ByteBuffer keyPaddingMask,
            ByteBuffer bias,
            long[] biasStrides,
            ByteBuffer logSumExp) {
        forward(
                dtype,
                compute,
                dims,
                q,
                qStrides,
                k,
                kStrides,
                v,
                vStrides,
                output,
                outputStrides,
                scale,
                causal,
                keyValidLengths,
                keyPaddingMask,
                bias,
                biasStrides,
                logSumExp,
                null,
                null,
                0,
                0);
    }

    /**
     * Runs {@code tw_attention_forward} with a sliding window and a relative-position bias table.
     *
     * @param dtype data type of q, k, v and the output ({@link #DTYPE_F32}, {@link #DTYPE_F16},
     *     {@link #DTYPE_BF16})
     * @param compute precision of the dot products ({@link #DTYPE_F32} or {@link #DTYPE_BF16})
     * @param dims {@code {batch, qHeads, kvHeads, qLen, kvLen, headDim}}
     * @param q queries
     * @param qStrides element strides of q for batch, head, seq
     * @param k keys
     * @param kStrides element strides of k
     * @param v values
     * @param vStrides element strides of v
     * @param output where the result is written
     * @param outputStrides element strides of the output
     * @param scale score scale
     * @param causal bottom-right-aligned causal masking
     * @param keyValidLengths valid keys per batch entry, or null
     * @param keyPaddingMask {@code [batch, kvLen]} bytes where 0 masks, or null
     * @param bias fp32 additive bias, or null
     * @param biasStrides element strides of the bias for batch, head, query, key (0 broadcasts);
     *     ignored without a bias
     * @param logSumExp fp32 {@code [batch, qHeads, qLen]} output, or null
     * @param window null for none, or {@code {left, right}}: query {@code i} sees keys {@code [i' -
     *     left, i' + right]} with {@code i' = i + kvLen - qLen}; a negative side is unlimited
     * @param relBias null for none, or fp32 tables of {@code 2R + 1} entries per query head, added
     *     to the scaled scores at {@code clamp(j - i', -R, R) + R}
     * @param relBiasRadius {@code R >= 0}; ignored without a table
     * @param relBiasHeadStride elements between heads' tables (0: one table for all heads)
     * @throws IllegalArgumentException naming the bad argument
     */
    public void forward(
            int dtype,
            int compute,
            long[] dims,
            ByteBuffer q,
            long[] qStrides,
            ByteBuffer k,
            long[] kStrides,
            ByteBuffer v,
            long[] vStrides,
            ByteBuffer output,
            long[] outputStrides,
            float scale,
            boolean causal,
            int[] keyValidLengths,
            ByteBuffer keyPaddingMask,
            ByteBuffer bias,
            long[] biasStrides,
            ByteBuffer logSumExp,
            long[] window,
            ByteBuffer relBias,
            long relBiasRadius,
            long relBiasHeadStride) {
        requireWritable(output, "output");
        requireWritable(logSumExp, "log-sum-exp");
        forward0(
                dtype,
                compute,
                dims,
                q,
                qStrides,
                k,
                kStrides,
                v,
                vStrides,
                output,
                outputStrides,
                scale,
                causal,
                keyValidLengths,
                keyPaddingMask,
                bias,
                biasStrides,
                logSumExp,
                null,
                null,
                window,
                relBias,
                relBiasRadius,
                relBiasHeadStride);
    }

    /**
     * Runs {@code tw_attention_varlen_forward}: packed sequences, no padding. Q, K, V and the
     * output are one batch entry ({@code dims[0] = 1}) whose {@code qLen} / {@code kvLen} are the
     * total packed rows; sequence {@code s} owns query rows {@code [cuSeqlensQ[s], cuSeqlensQ[s +
     * 1])} and key rows {@code [cuSeqlensK[s], cuSeqlensK[s + 1])}.
     *
     * @param dtype data type of q, k, v and the output
     * @param compute precision of the dot products
     * @param dims {@code {1, qHeads, kvHeads, totalQ, totalK, headDim}}
     * @param q queries
     * @param qStrides element strides of q (batch, head, row)
     * @param k keys
     * @param kStrides element strides of k
     * @param v values
     * @param vStrides element strides of v
     * @param output where the result is written
     * @param outputStrides element strides of the output
     * @param scale score scale
     * @param causal bottom-right-aligned causal masking within each sequence
     * @param cuSeqlensQ {@code numSeqs + 1} query offsets from 0 to {@code totalQ}
     * @param cuSeqlensK {@code numSeqs + 1} key offsets from 0 to {@code totalK}
     * @throws IllegalArgumentException naming the bad argument
     */
    public void forwardPacked(
            int dtype,
            int compute,
            long[] dims,
            ByteBuffer q,
            long[] qStrides,
            ByteBuffer k,
            long[] kStrides,
            ByteBuffer v,
            long[] vStrides,
            ByteBuffer output,
            long[] outputStrides,
            float scale,
            boolean causal,
            int[] cuSeqlensQ,
            int[] cuSeqlensK) {
        forwardPacked(
                dtype,
                compute,
                dims,
                q,
                qStrides,
                k,
                kStrides,
                v,
                vStrides,
                output,
                outputStrides,
                scale,
                causal,
                cuSeqlensQ,
                cuSeqlensK,
                null,
                null,
                0,
                0);
    }

    /**
     * Runs {@code tw_attention_varlen_forward} with a sliding window and a relative-position bias
     * table, positions counted within each sequence.
     *
     * @param dtype data type of q, k, v and the output
     * @param compute precision of the dot products
     * @param dims {@code {1, qHeads, kvHeads, totalQ, totalK, headDim}}
     * @param q queries
     * @param qStrides element strides of q (batch, head, row)
     * @param k keys
     * @param kStrides element strides of k
     * @param v values
     * @param vStrides element strides of v
     * @param output where the result is written
     * @param outputStrides element strides of the output
     * @param scale score scale
     * @param causal bottom-right-aligned causal masking within each sequence
     * @param cuSeqlensQ {@code numSeqs + 1} query offsets from 0 to {@code totalQ}
     * @param cuSeqlensK {@code numSeqs + 1} key offsets from 0 to {@code totalK}
     * @param window null for none, or {@code {left, right}} (negative: unlimited side), as {@link
     *     #forward(int, int, long[], ByteBuffer, long[], ByteBuffer, long[], ByteBuffer, long[],
     *     ByteBuffer, long[], float, boolean, int[], ByteBuffer, ByteBuffer, long[], ByteBuffer,
     *     long[], ByteBuffer, long, long)}
     * @param relBias null for none, or fp32 tables of {@code 2R + 1} entries per query head
     * @param relBiasRadius {@code R >= 0}; ignored without a table
     * @param relBiasHeadStride elements between heads' tables (0: one table for all heads)
     * @throws IllegalArgumentException naming the bad argument
     */
    public void forwardPacked(
            int dtype,
            int compute,
            long[] dims,
            ByteBuffer q,
            long[] qStrides,
            ByteBuffer k,
            long[] kStrides,
            ByteBuffer v,
            long[] vStrides,
            ByteBuffer output,
            long[] outputStrides,
            float scale,
            boolean causal,
            int[] cuSeqlensQ,
            int[] cuSeqlensK,
            long[] window,
            ByteBuffer relBias,
            long relBiasRadius,
            long relBiasHeadStride) {
        requireWritable(output, "output");
        if (cuSeqlensQ == null || cuSeqlensK == null) {
            throw new IllegalArgumentException("packed attention needs cuSeqlensQ and cuSeqlensK");
        }
        forward0(
                dtype,
                compute,
                dims,
                q,
                qStrides,
                k,
                kStrides,
                v,
                vStrides,
                output,
                outputStrides,
                scale,
                causal,
                null,
                null,
                null,
                null,
                null,
                cuSeqlensQ,
                cuSeqlensK,
                window,
                relBias,
                relBiasRadius,
                relBiasHeadStride);
    }

    /** JNI hands out the address of a read-only direct buffer too: refuse to write through it. */
    private static void requireWritable(ByteBuffer buffer, String name) {
        if (buffer != null && buffer.isReadOnly()) {
            throw new IllegalArgumentException(name + " buffer is read-only");
        }
    }

    private native void forward0(
            int dtype,
            int compute,
            long[] dims,
            ByteBuffer q,
            long[] qStrides,
            ByteBuffer k,
            long[] kStrides,
            ByteBuffer v,
            long[] vStrides,
            ByteBuffer output,
            long[] outputStrides,
            float scale,
            boolean causal,
            int[] keyValidLengths,
            ByteBuffer keyPaddingMask,
            ByteBuffer bias,
            long[] biasStrides,
            ByteBuffer logSumExp,
            int[] cuSeqlensQ,
            int[] cuSeqlensK,
            long[] window,
            ByteBuffer relBias,
            long relBiasRadius,
            long relBiasHeadStride);
}
