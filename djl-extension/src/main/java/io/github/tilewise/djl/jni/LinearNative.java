package io.github.tilewise.djl.jni;

import java.nio.ByteBuffer;

/**
 * The JNI entry points of the linear layers (fp32, INT8, BF16 and FP16 weights) and the fused
 * LayerNorm ({@code tilewise_gemm.h}). Internal: use {@link
 * io.github.tilewise.djl.encoder.linear.PackedWeights} and {@link
 * io.github.tilewise.djl.encoder.linear.PackedLinear}, which validate NDArrays first; the native
 * side checks everything again (shapes, direct buffers and their capacities, live handles).
 *
 * <p>Packed weights are an opaque {@code long} handle; the native side keeps a registry of live
 * handles, so a closed or forged handle is an {@link IllegalArgumentException}, never a crash.
 * Matrices are contiguous row-major fp32 in direct little-endian buffers.
 */
public final class LinearNative {

    /** {@code TW_F32}: fp32 weights, kept as they are. */
    public static final int FORMAT_F32 = 0;

    /** {@code TW_BF16}: bfloat16 weights. */
    public static final int FORMAT_BF16 = 2;

    /** {@code TW_F16}: IEEE half weights. */
    public static final int FORMAT_F16 = 1;

    /** {@code TW_I8}: int8 weights, symmetric per output channel. */
    public static final int FORMAT_I8 = 3;

    /** {@code TW_QUANT_NONE}: fp32 activations. */
    public static final int QUANT_NONE = 0;

    /** {@code TW_QUANT_SYMMETRIC}: activations quantized per row around zero. */
    public static final int QUANT_SYMMETRIC = 1;

    /** {@code TW_QUANT_ASYMMETRIC}: activations quantized per row over [min, max]. */
    public static final int QUANT_ASYMMETRIC = 2;

    /** {@code TW_EPILOGUE_GELU}: exact GELU after the bias. */
    public static final int EPILOGUE_GELU = 1;

    /** {@code TW_EPILOGUE_RESIDUAL}: adds the residual last. */
    public static final int EPILOGUE_RESIDUAL = 2;

    /**
     * Epilogue flag: layer-normalises each finished output row in place (after the residual), with
     * {@code lnGamma}, {@code lnBeta} and {@code lnEps}.
     */
    public static final int EPILOGUE_LAYERNORM = 4;

    /** Largest K of packed weights ({@code TW_INT8_MAX_K}). */
    public static final long MAX_K = 65536;

    /** {@code TW_EPILOGUE_GATED_GELU}: {@code gelu(u)·g} over gated weights (GeGLU). */
    public static final int EPILOGUE_GATED_GELU = 8;

    /** {@code TW_EPILOGUE_GATED_GELU_TANH}: {@code gelu_tanh(u)·g} over gated weights. */
    public static final int EPILOGUE_GATED_GELU_TANH = 16;

    /** {@code TW_EPILOGUE_GATED_SILU}: {@code silu(u)·g} over gated weights (SwiGLU). */
    public static final int EPILOGUE_GATED_SILU = 32;

    /**
     * {@code TW_INT8_REDUCED_WEIGHT_MAX}: int8 weight codes within ±64 cannot saturate plain AVX2's
     * vpmaddubsw, so CPUs without VNNI run them on a kernel ~1.3x faster than the exact sign-trick
     * one that full-range weights need.
     */
    public static final int REDUCED_WEIGHT_MAX = 64;

    private static final LinearNative INSTANCE = new LinearNative();

    private LinearNative() {}

    /**
     * Returns the entry points, or throws if the native library is not loaded.
     *
     * @return the entry points
     * @throws IllegalStateException naming why the library is not loaded
     */
    public static LinearNative get() {
        LibUtils.requireLoaded();
        return INSTANCE;
    }

    /**
     * Packs fp32 weights {@code [n, k]} ({@code tw_pack_weights}).
     *
     * @param format {@link #FORMAT_F32}, {@link #FORMAT_I8}, {@link #FORMAT_BF16} or {@link
     *     #FORMAT_F16}
     * @param n output channels
     * @param k input width
     * @param weights {@code n·k} fp32, row-major
     * @return the handle
     */
    public native long packWeights(int format, long n, long k, ByteBuffer weights);

    /**
     * Packs fp32 weights {@code [n, k]} as int8 with codes within {@code ±weightMax} ({@code
     * tw_pack_weights_int8_range}); {@link #REDUCED_WEIGHT_MAX} lets CPUs without VNNI run the
     * faster reduced-range kernel.
     *
     * @param n output channels
     * @param k input width
     * @param weights {@code n·k} fp32, row-major
     * @param weightMax the largest code, 1..127
     * @return the handle
     */
    public native long packInt8WeightsInRange(long n, long k, ByteBuffer weights, int weightMax);

    /**
     * Packs fp32 weights {@code [n, k]} of a gated layer ({@code tw_pack_weights_gated}): rows
     * {@code [0, n/2)} the activated half, {@code [n/2, n)} the gate; {@code linear} then needs an
     * {@code EPILOGUE_GATED_*} flag and writes {@code n/2} columns.
     *
     * @param format {@link #FORMAT_F32}, {@link #FORMAT_I8}, {@link #FORMAT_BF16} or {@link
     *     #FORMAT_F16}
     * @param n output channels, even
     * @param k input width
     * @param weights {@code n·k} fp32, row-major
     * @param weightMax int8: the largest code, 1..127 (ignored for the other formats)
     * @return the handle
     */
    public native long packGatedWeights(
            int format, long n, long k, ByteBuffer weights, int weightMax);

    /**
     * Packs already-quantized int8 weights ({@code tw_pack_weights_int8}).
     *
     * @param n output channels
     * @param k input width
     * @param codes {@code n·k} int8, row-major
     * @param scales {@code n} fp32 per-channel scales
     * @return the handle
     */
    public native long packInt8Weights(long n, long k, ByteBuffer codes, ByteBuffer scales);

    /**
     * Frees packed weights.
     *
     * @param handle a live handle
     */
    public native void freeWeights(long handle);

    /**
     * Describes packed weights.
     *
     * @param handle a live handle
     * @return {@code {format, n, k, resident bytes}}
     */
    public native long[] weightsInfo(long handle);

    /**
     * Writes the weights the kernels use, as fp32 {@code [n, k]}.
     *
     * @param handle a live handle
     * @param out {@code n·k} fp32
     */
    public native void unpackWeights(long handle, ByteBuffer out);

    /**
     * Runs {@code y = epilogue(x·Wᵀ + bias)} ({@code tw_linear}).
     *
     * @param handle packed weights {@code [n, k]}
     * @param m rows
     * @param x {@code m·k} fp32
     * @param actQuant {@link #QUANT_NONE}, {@link #QUANT_SYMMETRIC} or {@link #QUANT_ASYMMETRIC}
     * @param channelScale {@code k} fp32 multipliers of x's columns before quantization
     *     (SmoothQuant's {@code 1/s}; dynamic int8 only), or null
     * @param bias {@code n} fp32, or null
     * @param epilogue {@link #EPILOGUE_GELU} | {@link #EPILOGUE_RESIDUAL} | {@link
     *     #EPILOGUE_LAYERNORM} flags, or one {@code EPILOGUE_GATED_*} flag alone for gated weights
     * @param residual {@code m·n} fp32 (with {@link #EPILOGUE_RESIDUAL}), else null
     * @param lnGamma {@code n} fp32 LayerNorm scale (with {@link #EPILOGUE_LAYERNORM}), or null
     * @param lnBeta {@code n} fp32 LayerNorm shift, or null
     * @param lnEps the LayerNorm epsilon (finite, at least 0)
     * @param y {@code m·n} fp32 output ({@code m·n/2} for gated weights; may be the residual); null
     *     when {@code yqCodes} is set and only the quantized copy is wanted
     * @param yqCodes {@code m} rows of {@link #quantizedRowStride}{@code (n)} u8 codes receiving a
     *     quantized copy of y, or null
     * @param yqScales {@code m} fp32 scales of the copy, or null
     * @param yqZeros {@code m} int32 zero points of the copy, or null
     * @param yqMode {@link #QUANT_SYMMETRIC} or {@link #QUANT_ASYMMETRIC}, with {@code yqCodes}
     * @param yqChannelScale {@code n} fp32 multipliers applied before quantizing, or null
     * @return the largest code of the quantized copy (0 without one)
     */
    public native int linear(
            long handle,
            long m,
            ByteBuffer x,
            int actQuant,
            ByteBuffer channelScale,
            ByteBuffer bias,
            int epilogue,
            ByteBuffer residual,
            ByteBuffer lnGamma,
            ByteBuffer lnBeta,
            float lnEps,
            ByteBuffer y,
            ByteBuffer yqCodes,
            ByteBuffer yqScales,
            ByteBuffer yqZeros,
            int yqMode,
            ByteBuffer yqChannelScale);

    /**
     * One linear layer on rows already quantized to u8 (by {@link #linear}'s quantized output or
     * {@code tw_quantize_rows}): {@code x[m, k] ≈ scale[m]·(code[m, k] − zero[m])}.
     *
     * @param handle packed TW_I8 weights {@code [n, k]}
     * @param m rows
     * @param xCodes {@code m} rows of {@link #quantizedRowStride}{@code (k)} u8 codes
     * @param xScales {@code m} fp32 scales
     * @param xZeros {@code m} int32 zero points
     * @param qmax the largest code used (as returned by {@link #linear})
     * @param bias {@code n} fp32, or null
     * @param epilogue {@link #EPILOGUE_GELU} | {@link #EPILOGUE_RESIDUAL} | {@link
     *     #EPILOGUE_LAYERNORM} flags
     * @param residual {@code m·n} fp32 (with {@link #EPILOGUE_RESIDUAL}), else null
     * @param lnGamma {@code n} fp32 LayerNorm scale, or null
     * @param lnBeta {@code n} fp32 LayerNorm shift, or null
     * @param lnEps the LayerNorm epsilon
     * @param y {@code m·n} fp32 output
     */
    public native void linearFromQuantized(
            long handle,
            long m,
            ByteBuffer xCodes,
            ByteBuffer xScales,
            ByteBuffer xZeros,
            int qmax,
            ByteBuffer bias,
            int epilogue,
            ByteBuffer residual,
            ByteBuffer lnGamma,
            ByteBuffer lnBeta,
            float lnEps,
            ByteBuffer y);

    /**
     * Returns the row stride of quantized activations of width {@code k} ({@code k} rounded up to
     * the kernels' group of 4).
     *
     * @param k the row width
     * @return bytes per quantized row
     */
    public static long quantizedRowStride(long k) {
        return (k + 3) / 4 * 4;
    }

    /**
     * Runs the fused LayerNorm {@code y = LN(x + residual)·γ + β} ({@code tw_layernorm}).
     *
     * @param m rows
     * @param k width
     * @param x {@code m·k} fp32
     * @param residual {@code m·k} fp32, or null
     * @param gamma {@code k} fp32, or null
     * @param beta {@code k} fp32, or null
     * @param eps added to the variance
     * @param y {@code m·k} fp32 output (may alias x)
     */
    public native void layerNorm(
            long m,
            long k,
            ByteBuffer x,
            ByteBuffer residual,
            ByteBuffer gamma,
            ByteBuffer beta,
            float eps,
            ByteBuffer y);

    /**
     * Names the kernel {@link #linear} runs for a format and quantization on this CPU.
     *
     * @param format a {@code FORMAT_*} code
     * @param actQuant a {@code QUANT_*} code
     * @return e.g. {@code avx512-f32-12x32}, {@code avx512-vnni} or {@code avx512-bf16-widen}
     */
    public native String kernelName(int format, int actQuant);

    /**
     * Names the kernel {@code tw_linear} runs for these weights ({@code
     * tw_linear_kernel_name_for}): as {@link #kernelName}, except that reduced-range int8 weights
     * take the reduced-range kernel on CPUs without VNNI.
     *
     * @param handle a live handle
     * @param actQuant {@link #QUANT_NONE}, {@link #QUANT_SYMMETRIC} or {@link #QUANT_ASYMMETRIC}
     * @return e.g. {@code avx2-maddubs-reduced-range}
     */
    public native String kernelNameFor(long handle, int actQuant);
}
