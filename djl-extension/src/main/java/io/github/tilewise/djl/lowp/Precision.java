package io.github.tilewise.djl.lowp;

import io.github.tilewise.djl.encoder.linear.LinearOperators;
import io.github.tilewise.djl.jni.LibUtils;
import io.github.tilewise.djl.jni.LinearNative;
import java.util.Locale;

/** The arithmetic of one linear layer: how its weights are stored and how its products run. */
public enum Precision {
    /**
     * fp32 weights and activations: the reference arithmetic, on the native fp32 kernel (AVX-512
     * 12×32 or AVX2 6×16 register tiles) or PyTorch's GEMM, as {@link LinearOperators#fp32}
     * chooses.
     */
    FP32(LinearNative.FORMAT_F32, 4),
    /**
     * int8 weights (symmetric per output channel) and int8 activations quantized per token at run
     * time; int32 dot products (AVX512-VNNI / AVX-VNNI; on plain AVX2 exact vpmaddubsw products of
     * 255-level activations, through the sign trick for full-range weights, or directly for
     * reduced-range ones: see {@link Int8WeightRange}).
     */
    INT8(LinearNative.FORMAT_I8, 1),
    /** int8 weights widened to fp32 on the fly, fp32 activations: for sensitive layers. */
    INT8_WEIGHT_ONLY(LinearNative.FORMAT_I8, 1),
    /**
     * bfloat16 weights; AVX512-BF16 dot products on bf16-rounded activations where the CPU has
     * them, else weights widened to fp32. fp32 accumulation.
     */
    BF16(LinearNative.FORMAT_BF16, 2),
    /** IEEE fp16 weights widened to fp32 with F16C; fp32 activations and accumulation. */
    FP16(LinearNative.FORMAT_F16, 2);

    private final int format;
    private final int bytesPerWeight;

    Precision(int format, int bytesPerWeight) {
        this.format = format;
        this.bytesPerWeight = bytesPerWeight;
    }

    /**
     * Parses a precision name as used in Criteria arguments: {@code fp32}, {@code int8}, {@code
     * int8_weight_only} (or {@code int8-weight-only}, {@code w8}), {@code bf16}, {@code fp16}, in
     * any case.
     *
     * @param name the name
     * @return the precision
     * @throws IllegalArgumentException listing the valid names
     */
    public static Precision fromName(String name) {
        String n = name.trim().toUpperCase(Locale.ROOT).replace('-', '_');
        switch (n) {
            case "FLOAT32":
            case "F32":
                return FP32;
            case "W8":
            case "INT8_WO":
                return INT8_WEIGHT_ONLY;
            case "BFLOAT16":
                return BF16;
            case "FLOAT16":
            case "HALF":
                return FP16;
            default:
                break;
        }
        try {
            return valueOf(n);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(
                    "Unknown precision '"
                            + name
                            + "': expected fp32, int8, int8_weight_only, bf16 or fp16",
                    e);
        }
    }

    /**
     * Returns the stored size of one weight.
     *
     * @return 4, 2 or 1 bytes
     */
    public int getBytesPerWeight() {
        return bytesPerWeight;
    }

    /**
     * Returns whether this precision stores weights in fewer than 32 bits (what a conversion
     * changes).
     *
     * @return false only for {@link #FP32}
     */
    public boolean isLowPrecision() {
        return this != FP32;
    }

    /**
     * Returns whether this CPU runs this precision with its intended instructions: INT8 with VNNI
     * dot products (8-bit activations), BF16 with AVX512-BF16. Where it does not, the layer still
     * runs (int8 through vpmaddubsw with 255-level activations, or bf16 weights widened to fp32),
     * and {@link #kernelName()} says how.
     *
     * @return true if the native kernel is the intended one
     */
    public boolean isNativelySupported() {
        if (this == FP32) {
            return true;
        }
        if (!LibUtils.isAvailable()) {
            return false;
        }
        String kernel = kernelName();
        switch (this) {
            case INT8:
                return kernel.contains("vnni");
            case BF16:
                return kernel.contains("bf16-dot");
            default:
                return !kernel.startsWith("portable");
        }
    }

    /**
     * Names the native kernel this precision runs on this CPU at the active ISA.
     *
     * @return e.g. {@code avx512-f32-12x32}, {@code avx512-vnni}, {@code avx512-bf16-widen}; {@code
     *     pytorch} for FP32 layers that {@link LinearOperators#fp32} leaves to PyTorch, {@code
     *     unavailable} for the others without the native library
     */
    public String kernelName() {
        if (this == FP32 && !LinearOperators.nativeFp32()) {
            return "pytorch";
        }
        if (!LibUtils.isAvailable()) {
            return "unavailable";
        }
        return LinearNative.get().kernelName(format, activationQuantization());
    }

    /**
     * Returns the {@code TW_*} weight format code of {@link LinearNative}.
     *
     * @return e.g. {@link LinearNative#FORMAT_I8}
     */
    public int formatCode() {
        return format;
    }

    /**
     * Returns the activation quantization code ({@code LinearNative.QUANT_*}) this precision runs
     * with by default.
     *
     * @return {@link LinearNative#QUANT_ASYMMETRIC} for INT8, else {@link LinearNative#QUANT_NONE}
     */
    public int activationQuantization() {
        return this == INT8 ? LinearNative.QUANT_ASYMMETRIC : LinearNative.QUANT_NONE;
    }

    /**
     * Returns the lower-case name used in Criteria arguments and benchmark lines.
     *
     * @return e.g. {@code int8}
     */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
