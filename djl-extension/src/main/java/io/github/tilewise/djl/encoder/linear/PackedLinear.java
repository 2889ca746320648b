package io.github.tilewise.djl.encoder.linear;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.CallGuard;
import io.github.tilewise.djl.jni.LinearNative;
import io.github.tilewise.djl.jni.SharedMemory;
import io.github.tilewise.djl.lowp.ActivationQuantization;
import io.github.tilewise.djl.lowp.Precision;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A linear layer {@code y = act(x·Wᵀ + b) + residual} on {@link PackedWeights}: FP32 (the native
 * fp32 kernel, the default where the library is loaded, see {@link LinearOperators#fp32}), INT8
 * (dynamic per-token activation quantization, int32 dot products), INT8_WEIGHT_ONLY, BF16 or FP16,
 * computed by the native kernels of {@code tilewise_gemm.h} with the bias, exact GELU, the residual
 * and (through {@link #forwardNormalized}) the LayerNorm fused into the store. Other activations
 * (tanh-GELU, ReLU, tanh, SiLU) run afterwards with DJL ops. Gated activations ({@link
 * LinearActivation#isGated()}, on {@link PackedWeights#packGated gated weights}) are fused: the
 * kernel writes the {@code ff} values {@code f(u)·g} of the {@code 2·ff} products in one pass (a
 * residual is then added with DJL ops).
 *
 * <p>Inputs and outputs are fp32 DJL NDArrays on the PyTorch engine; {@code x} is read in place
 * (zero-copy when contiguous) and the result is written straight into a new array on {@code x}'s
 * manager. Intermediates live in a sub-manager closed before returning.
 *
 * <p>With {@link Builder#optInputScales SmoothQuant input scales} {@code s}, the layer computes
 * {@code (x/s)·(W·diag(s))ᵀ}: the same product, with activation outliers moved into the weights.
 *
 * <p>Implements the encoder's {@link LinearOperator}, so a converter can swap it into any {@link
 * LinearBlock}. Owns its {@link PackedWeights}: {@link #close()} frees them.
 */
public final class PackedLinear implements NormalizingLinearOperator {

    private final PackedWeights weights;
    private final ByteBuffer bias;
    private final ByteBuffer inverseInputScales;
    private final LinearActivation activation;
    private final ActivationQuantization quantization;

    private PackedLinear(Builder builder) {
        this.weights = builder.weights;
        this.bias = builder.bias == null ? null : PackedWeights.directFloats(builder.bias);
        this.activation = builder.activation;
        this.quantization = builder.quantization;
        if (builder.inputScales != null) {
            float[] inverse = new float[builder.inputScales.length];
            for (int i = 0; i < inverse.length; i++) {
                inverse[i] = 1f / builder.inputScales[i];
            }
            inverseInputScales = PackedWeights.directFloats(inverse);
        } else {
            inverseInputScales = null;
        }
    }

    /**
     * Creates a builder.
     *
     * @return the builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns the packed weights (owned by this layer).
     *
     * @return the weights
     */
    public PackedWeights getWeights() {
        return weights;
    }

    /**
     * Returns the layer's precision.
     *
     * @return the precision
     */
    public Precision getPrecision() {
        return weights.getPrecision();
    }

    /**
     * Returns the native memory the layer holds: packed weights plus the fp32 bias.
     *
     * @return bytes
     */
    public long getByteSize() {
        return weights.getByteSize() + (bias == null ? 0 : bias.capacity());
    }

    @Override
    public NDArray forward(NDArray x, NDArray residual) {
        return run(x, residual, false, null, null, 0f, null);
    }

    @Override
    public NDArray forward(NDArray x, NDArray residual, NDArray out) {
        return run(x, residual, false, null, null, 0f, out);
    }

    /**
     * True: the kernel writes into the array {@link #forward(NDArray, NDArray, NDArray)} gets, at
     * every precision (the output is fp32 either way).
     */
    @Override
    public boolean writesInto() {
        return true;
    }

    /** True when the activation is fused (none or GELU), so the LayerNorm can follow in-kernel. */
    @Override
    public boolean fusesLayerNorm() {
        return activation == LinearActivation.NONE || activation == LinearActivation.GELU;
    }

    /** The native flag of a gated activation. */
    private static int gatedEpilogue(LinearActivation activation) {
        switch (activation) {
            case GATED_GELU:
                return LinearNative.EPILOGUE_GATED_GELU;
            case GATED_GELU_TANH:
                return LinearNative.EPILOGUE_GATED_GELU_TANH;
            case GATED_SILU:
                return LinearNative.EPILOGUE_GATED_SILU;
            default:
                throw new AssertionError(activation);
        }
    }

    @Override
    public NDArray forwardNormalized(
            NDArray x, NDArray residual, ByteBuffer gamma, ByteBuffer beta, float eps) {
        return forwardNormalized(x, residual, gamma, beta, eps, null);
    }

    @Override
    public NDArray forwardNormalized(
            NDArray x,
            NDArray residual,
            ByteBuffer gamma,
            ByteBuffer beta,
            float eps,
            NDArray out) {
        if (!fusesLayerNorm()) {
            throw new IllegalStateException(
                    "the " + activation + " activation runs after the kernel: no fused LayerNorm");
        }
        if (!(eps >= 0) || Float.isInfinite(eps)) {
            throw new IllegalArgumentException("LayerNorm eps must be finite and >= 0, got " + eps);
        }
        return run(x, residual, true, gamma, beta, eps, out);
    }

    private NDArray run(
            NDArray x,
            NDArray residual,
            boolean layerNorm,
            ByteBuffer gamma,
            ByteBuffer beta,
            float eps,
            NDArray into) {
        int in = weights.getInFeatures();
        int out = activation.outputWidth(weights.getOutFeatures());
        Shape ys = checkInputs(x, residual, in, out);
        Shape xs = x.getShape();
        long m = xs.size() / in;
        NDManager target = x.getManager();
        boolean gated = activation.isGated();
        boolean fuseGelu = activation == LinearActivation.GELU;
        boolean fuseResidual =
                residual != null && (activation == LinearActivation.NONE || fuseGelu);
        checkOut(into, "out", ys);
        NDArray y = into != null ? into : target.create(ys, DataType.FLOAT32);
        // INT8 divides x by the SmoothQuant scales inside its quantization pass; other precisions
        // (which keep x in floating point) do it here.
        boolean nativeScaling = weights.getPrecision() == Precision.INT8;
        try (NDManager scope = target.newSubManager()) {
            NDArray input = x;
            if (inverseInputScales != null && !nativeScaling) {
                attach(x, scope);
                float[] inverse = new float[in];
                inverseInputScales.asFloatBuffer().get(inverse);
                input = x.mul(scope.create(inverse));
            }
            ByteBuffer xb = SharedMemory.of(input, "x", scope);
            ByteBuffer rb = fuseResidual ? SharedMemory.of(residual, "residual", scope) : null;
            ByteBuffer yb = SharedMemory.of(y, "y", null);
            int epilogue =
                    (gated ? gatedEpilogue(activation) : 0)
                            | (fuseGelu ? LinearNative.EPILOGUE_GELU : 0)
                            | (fuseResidual ? LinearNative.EPILOGUE_RESIDUAL : 0)
                            | (layerNorm ? LinearNative.EPILOGUE_LAYERNORM : 0);
            int quant =
                    weights.getPrecision() == Precision.INT8
                            ? quantization.code()
                            : LinearNative.QUANT_NONE;
            try (CallGuard.Lease lease = weights.enter()) {
                LinearNative.get()
                        .linear(
                                weights.handle(),
                                m,
                                xb,
                                quant,
                                nativeScaling ? inverseInputScales : null,
                                bias,
                                epilogue,
                                rb,
                                gamma,
                                beta,
                                eps,
                                yb,
                                null,
                                null,
                                null,
                                0,
                                null);
            }
        } catch (RuntimeException | Error e) {
            if (y != into) {
                y.close();
            }
            throw e;
        }
        if (!fuseGelu && !gated && activation != LinearActivation.NONE) {
            y = activation.applyInPlace(y);
        }
        if (residual != null && !fuseResidual) {
            y.addi(residual);
        }
        return y;
    }

    /**
     * Checks {@code x [..., in]} and the residual against the output shape {@code [..., out]}.
     *
     * @return the output shape
     */
    private static Shape checkInputs(NDArray x, NDArray residual, int in, int out) {
        if (x == null || x.isReleased()) {
            throw new IllegalArgumentException("x is " + (x == null ? "null" : "closed"));
        }
        if (residual != null && residual.isReleased()) {
            throw new IllegalArgumentException("residual is closed");
        }
        Shape xs = x.getShape();
        if (x.getDataType() != DataType.FLOAT32
                || xs.dimension() < 1
                || xs.get(xs.dimension() - 1) != in) {
            throw new IllegalArgumentException(
                    "x must be FLOAT32 [..., " + in + "], got " + x.getDataType() + " " + xs);
        }
        Shape ys = xs.slice(0, xs.dimension() - 1).add(out);
        checkResidual(residual, ys);
        if (xs.size() / in * Math.max(in, out) * 4L > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(
                    "x " + xs + " is too large for one call (over 2 GiB): split the batch");
        }
        return ys;
    }

    /** Checks a caller-owned array {@code name}: open, FLOAT32 and of shape {@code shape}. */
    private static void checkOut(NDArray array, String name, Shape shape) {
        if (array != null
                && (array.isReleased()
                        || array.getDataType() != DataType.FLOAT32
                        || !array.getShape().equals(shape))) {
            throw new IllegalArgumentException(
                    name
                            + " must be an open FLOAT32 "
                            + shape
                            + (array.isReleased()
                                    ? " (it is closed)"
                                    : ", got " + array.getDataType() + " " + array.getShape()));
        }
    }

    private static void checkResidual(NDArray residual, Shape ys) {
        if (residual != null
                && (residual.isReleased()
                        || residual.getDataType() != DataType.FLOAT32
                        || !residual.getShape().equals(ys))) {
            throw new IllegalArgumentException(
                    "residual must be an open FLOAT32 "
                            + ys
                            + (residual.isReleased()
                                    ? " (it is closed)"
                                    : ", got "
                                            + residual.getDataType()
                                            + " "
                                            + residual.getShape()));
        }
    }

    /**
     * Two INT8 layers in a row, {@code LayerNorm(next(act(x·Wᵀ + b)) + residual)}, with the hidden
     * activations handed over as int8 rows: this layer's kernel quantizes each finished row for
     * {@code next} (with next's SmoothQuant scales) while it is in cache, so the fp32 hidden
     * activations are never written to memory, and {@code next} runs on the codes. Null when the
     * pair does not qualify (both INT8 with fused activations, matching widths). The codes, their
     * scales and zero points take the front of {@code hidden}'s memory when it is given (a quarter
     * of it: the fp32 hidden rows never exist).
     */
    @Override
    public NDArray forwardChainNormalized(
            NDArray x,
            LinearOperator next,
            NDArray residual,
            ByteBuffer gamma,
            ByteBuffer beta,
            float eps,
            NDArray out,
            NDArray hidden) {
        if (!(next instanceof PackedLinear)) {
            return null;
        }
        PackedLinear second = (PackedLinear) next;
        if (getPrecision() != Precision.INT8
                || second.getPrecision() != Precision.INT8
                || !fusesLayerNorm()
                || !second.fusesLayerNorm()
                || second.weights.getInFeatures() != weights.getOutFeatures()) {
            return null;
        }
        if (!(eps >= 0) || Float.isInfinite(eps)) {
            throw new IllegalArgumentException("LayerNorm eps must be finite and >= 0, got " + eps);
        }
        int in = weights.getInFeatures();
        int width = weights.getOutFeatures();
        int outWidth = second.weights.getOutFeatures();
        checkInputs(x, null, in, width);
        Shape xs = x.getShape();
        Shape ys = xs.slice(0, xs.dimension() - 1).add(outWidth);
        checkResidual(residual, ys);
        if (xs.size() / in * Math.max(width, outWidth) * 4L > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(
                    "x " + xs + " is too large for one call (over 2 GiB): split the batch");
        }
        long m = xs.size() / in;
        checkOut(out, "out", ys);
        checkOut(hidden, "hidden", xs.slice(0, xs.dimension() - 1).add(width));
        NDManager target = x.getManager();
        NDArray y = out != null ? out : target.create(ys, DataType.FLOAT32);
        try (NDManager scope = target.newSubManager()) {
            long ldq = LinearNative.quantizedRowStride(width);
            // Codes, then scales and zero points from a 64-byte boundary.
            long codeBytes = (m * ldq + 63) / 64 * 64;
            ByteBuffer cb;
            ByteBuffer sb;
            ByteBuffer zb;
            if (hidden != null && codeBytes + 8 * m <= hidden.size() * 4) {
                ByteBuffer all = SharedMemory.of(hidden, "hidden", null);
                cb = slice(all, 0, m * ldq);
                sb = slice(all, codeBytes, 4 * m);
                zb = slice(all, codeBytes + 4 * m, 4 * m);
            } else {
                cb =
                        SharedMemory.of(
                                scope.create(new Shape(m, ldq), DataType.UINT8), "codes", null);
                sb = SharedMemory.of(scope.create(new Shape(m), DataType.FLOAT32), "scales", null);
                zb = SharedMemory.of(scope.create(new Shape(m), DataType.INT32), "zeros", null);
            }
            ByteBuffer xb = SharedMemory.of(x, "x", scope);
            ByteBuffer rb = residual == null ? null : SharedMemory.of(residual, "residual", scope);
            ByteBuffer yb = SharedMemory.of(y, "y", null);
            int qmax;
            try (CallGuard.Lease lease = weights.enter()) {
                qmax =
                        LinearNative.get()
                                .linear(
                                        weights.handle(),
                                        m,
                                        xb,
                                        quantization.code(),
                                        inverseInputScales,
                                        bias,
                                        activation == LinearActivation.GELU
                                                ? LinearNative.EPILOGUE_GELU
                                                : 0,
                                        null,
                                        null,
                                        null,
                                        0f,
                                        null,
                                        cb,
                                        sb,
                                        zb,
                                        second.quantization.code(),
                                        second.inverseInputScales);
            }
            try (CallGuard.Lease lease = second.weights.enter()) {
                LinearNative.get()
                        .linearFromQuantized(
                                second.weights.handle(),
                                m,
                                cb,
                                sb,
                                zb,
                                qmax,
                                second.bias,
                                (rb != null ? LinearNative.EPILOGUE_RESIDUAL : 0)
                                        | (second.activation == LinearActivation.GELU
                                                ? LinearNative.EPILOGUE_GELU
                                                : 0)
                                        | LinearNative.EPILOGUE_LAYERNORM,
                                rb,
                                gamma,
                                beta,
                                eps,
                                yb);
            }
        } catch (RuntimeException | Error e) {
            if (y != out) {
                y.close();
            }
            throw e;
        }
        return y;
    }

    /** Bytes {@code [offset, offset + length)} of a direct little-endian buffer. */
    private static ByteBuffer slice(ByteBuffer all, long offset, long length) {
        return all.slice((int) offset, (int) length).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static void attach(NDArray array, NDManager scope) {
        if (array.getManager() != scope) {
            array.tempAttach(scope);
        }
    }

    @Override
    public String describe() {
        return weights.getPrecision().label()
                + (inverseInputScales != null ? "+smoothquant" : "")
                + "["
                + weights.kernelName()
                + "]";
    }

    /** Frees the packed weights. */
    @Override
    public void close() {
        weights.close();
    }

    @Override
    public String toString() {
        return "PackedLinear(" + describe() + ", " + weights + ", " + activation + ")";
    }

    /** Builds a {@link PackedLinear}: {@code setWeights} is required. */
    public static final class Builder {
        private PackedWeights weights;
        private float[] bias;
        private float[] inputScales;
        private LinearActivation activation = LinearActivation.NONE;
        private ActivationQuantization quantization = ActivationQuantization.ASYMMETRIC;

        Builder() {}

        /**
         * Sets the packed weights; the layer takes ownership (closes them).
         *
         * @param weights {@code [out, in]}
         * @return this builder
         */
        public Builder setWeights(PackedWeights weights) {
            this.weights = weights;
            return this;
        }

        /**
         * Sets the bias (copied).
         *
         * @param bias {@code out} floats, or null
         * @return this builder
         */
        public Builder optBias(float[] bias) {
            this.bias = bias == null ? null : bias.clone();
            return this;
        }

        /**
         * Sets the function after the bias ({@code NONE} by default; GELU is fused natively).
         *
         * @param activation the activation
         * @return this builder
         */
        public Builder optActivation(LinearActivation activation) {
            this.activation = activation;
            return this;
        }

        /**
         * Sets how INT8 layers quantize their input rows (asymmetric by default).
         *
         * @param quantization the mode
         * @return this builder
         */
        public Builder optActivationQuantization(ActivationQuantization quantization) {
            this.quantization = quantization;
            return this;
        }

        /**
         * Declares SmoothQuant scales {@code s} (one per input channel, positive): the packed
         * weights must be {@code W·diag(s)}, and inputs are divided by {@code s} before the
         * product.
         *
         * @param inputScales {@code in} floats
         * @return this builder
         */
        public Builder optInputScales(float[] inputScales) {
            this.inputScales = inputScales == null ? null : inputScales.clone();
            return this;
        }

        /**
         * Builds the layer.
         *
         * @return the layer
         * @throws IllegalArgumentException if the weights are missing or closed, the bias or scales
         *     do not match them, or the activation is gated and the weights are not (or the
         *     reverse)
         */
        public PackedLinear build() {
            if (weights == null || weights.isClosed()) {
                throw new IllegalArgumentException(
                        "setWeights(...) with open packed weights is required");
            }
            if (bias != null && bias.length != weights.getOutFeatures()) {
                throw new IllegalArgumentException(
                        "bias has "
                                + bias.length
                                + " values, the weights have "
                                + weights.getOutFeatures()
                                + " outputs");
            }
            if (inputScales != null) {
                if (inputScales.length != weights.getInFeatures()) {
                    throw new IllegalArgumentException(
                            "input scales have "
                                    + inputScales.length
                                    + " values, the weights take "
                                    + weights.getInFeatures()
                                    + " inputs");
                }
                for (float s : inputScales) {
                    if (!(s > 0f) || Float.isInfinite(s)) {
                        throw new IllegalArgumentException(
                                "input scales must be finite and positive, got " + s);
                    }
                }
            }
            if (activation == null || quantization == null) {
                throw new IllegalArgumentException("activation and quantization must not be null");
            }
            if (activation.isGated() != weights.isGated()) {
                throw new IllegalArgumentException(
                        "a "
                                + activation
                                + " activation needs "
                                + (activation.isGated()
                                        ? "gated weights (PackedWeights.packGated)"
                                        : "weights packed without gating")
                                + ", got "
                                + weights);
            }
            return new PackedLinear(this);
        }
    }
}
