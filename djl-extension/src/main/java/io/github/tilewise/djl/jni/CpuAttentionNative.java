package io.github.tilewise.djl.jni;

import java.nio.ByteBuffer;

/**
 * The CPU fused attention of {@code libtilewise} ({@code tw_attention_forward}) on raw host
 * buffers, for cross-checking the CUDA kernels with identical inputs. Internal: the public CPU
 * operator is {@code io.github.tilewise.djl.attention.FusedAttention}.
 *
 * <p>Call it only once {@code libtilewise} is loaded ({@link LibUtils#requireLoaded()}, or {@link
 * System#load(String)} of the library in a standalone program).
 */
public final class CpuAttentionNative {

    private CpuAttentionNative() {}

    /**
     * Computes attention on the CPU.
     *
     * @param dtype tw_dtype of q, k, v and o: 0 fp32, 1 fp16, 2 bf16
     * @param shape {batch, qHeads, kvHeads, qLen, kvLen, headDim}
     * @param q direct buffer of queries
     * @param k direct buffer of keys
     * @param v direct buffer of values
     * @param o direct buffer for the output
     * @param strides element strides {q batch, head, seq, k ..., v ..., o ...}
     * @param scale score scale
     * @param causal bottom-right aligned causal mask
     * @param kvValidLengths per-batch key lengths, or null
     * @param lse direct buffer for the fp32 log-sum-exp {@code [B, H, Nq]}, or null
     */
    public static native void forward(
            int dtype,
            long[] shape,
            ByteBuffer q,
            ByteBuffer k,
            ByteBuffer v,
            ByteBuffer o,
            long[] strides,
            float scale,
            boolean causal,
            int[] kvValidLengths,
            ByteBuffer lse);
}
