package io.github.tilewise.djl.encoder.linear;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import io.github.tilewise.djl.CallGuard;
import io.github.tilewise.djl.jni.LinearNative;
import io.github.tilewise.djl.lowp.Precision;
import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A linear layer's weights {@code W [out, in]} packed ONCE into native memory in the layout the
 * micro-kernels read: 32-column panels of fp32, int8, bf16 or fp16 values, one format per {@link
 * Precision} (see {@code tilewise_gemm.h}). {@link PackedLinear} multiplies by them.
 *
 * <p>Owns native memory: close it (or the {@link PackedLinear} that owns it) to free it at once; a
 * {@link Cleaner} frees it if an unclosed instance becomes unreachable. Using closed weights is an
 * {@link IllegalStateException}. Thread-safe: forwards may run concurrently; {@link #close()} waits
 * for them.
 */
public final class PackedWeights implements AutoCloseable {

    private static final Cleaner CLEANER = Cleaner.create();

    private final Precision precision;
    private final boolean gated;
    private final int outFeatures;
    private final int inFeatures;
    private final long byteSize;
    private final CallGuard guard;
    private final Handle handle;
    private final Cleaner.Cleanable cleanable;

    /** The native handle, freed once by close() or by the cleaner. */
    private static final class Handle implements Runnable {
        private long value;

        Handle(long value) {
            this.value = value;
        }

        @Override
        public synchronized void run() {
            if (value != 0) {
                LinearNative.get().freeWeights(value);
                value = 0;
            }
        }
    }

    private PackedWeights(Precision precision, long handle) {
        this(precision, handle, false);
    }

    private PackedWeights(Precision precision, long handle, boolean gated) {
        this.precision = precision;
        this.gated = gated;
        this.handle = new Handle(handle);
        long[] info = LinearNative.get().weightsInfo(handle);
        this.outFeatures = Math.toIntExact(info[1]);
        this.inFeatures = Math.toIntExact(info[2]);
        this.byteSize = info[3];
        this.guard =
                new CallGuard(
                        "packed "
                                + (gated ? "gated " : "")
                                + precision
                                + " weights ["
                                + outFeatures
                                + ", "
                                + inFeatures
                                + "]");
        this.cleanable = CLEANER.register(this, this.handle);
    }

    /**
     * Packs fp32 weights.
     *
     * @param weights {@code out·in} floats, row {@code o} at offset {@code o·in}
     * @param outFeatures output channels
     * @param inFeatures input width
     * @param precision FP32 (the values as they are), INT8 / INT8_WEIGHT_ONLY (quantized symmetric
     *     per output channel), BF16 or FP16 (rounded to nearest even)
     * @return the packed weights
     * @throws IllegalArgumentException if the shape does not match, or a weight is not finite and
     *     the precision is not FP32
     * @throws IllegalStateException if the native library is not loaded
     */
    public static PackedWeights pack(
            float[] weights, int outFeatures, int inFeatures, Precision precision) {
        checkWeights(weights, outFeatures, inFeatures, precision);
        ByteBuffer buffer = directFloats(weights);
        return new PackedWeights(
                precision,
                LinearNative.get()
                        .packWeights(precision.formatCode(), outFeatures, inFeatures, buffer));
    }

    /**
     * Packs fp32 weights as INT8 with codes within {@code ±weightMax} (symmetric per output
     * channel; below 127 each channel's scale is the clipping with the least squared rounding
     * error). See {@link io.github.tilewise.djl.lowp.Int8WeightRange} for why fewer codes can be
     * faster.
     *
     * @param weights {@code out·in} floats, row {@code o} at offset {@code o·in}
     * @param outFeatures output channels
     * @param inFeatures input width
     * @param weightMax the largest code, 1..127
     * @return the packed INT8 weights
     * @throws IllegalArgumentException if the shape does not match, a weight is not finite, or
     *     weightMax is out of range
     */
    public static PackedWeights packInt8(
            float[] weights, int outFeatures, int inFeatures, int weightMax) {
        checkWeights(weights, outFeatures, inFeatures, Precision.INT8);
        if (weightMax < 1 || weightMax > 127) {
            throw new IllegalArgumentException("weightMax must be in 1..127, got " + weightMax);
        }
        return new PackedWeights(
                Precision.INT8,
                LinearNative.get()
                        .packInt8WeightsInRange(
                                outFeatures, inFeatures, directFloats(weights), weightMax));
    }

    /**
     * Packs the fp32 weights of a gated layer ({@link LinearActivation#isGated()}): rows {@code [0,
     * ff)} are the activated half {@code u}, rows {@code [ff, 2·ff)} the gate {@code g}, as in the
     * checkpoint. The kernels pair each {@code u} row with its {@code g} row inside a panel, so a
     * {@link PackedLinear} with a gated activation writes the {@code ff} values {@code f(u)·g} in
     * one pass; {@link #toFloatArray()} still returns the rows in the given order.
     *
     * @param weights {@code out·in} floats, row {@code o} at offset {@code o·in}
     * @param outFeatures {@code 2·ff}, even
     * @param inFeatures input width
     * @param precision as {@link #pack(float[], int, int, Precision)}
     * @param weightMax INT8: the largest code, 1..127 (127 for the full range); ignored otherwise
     * @return the packed weights
     * @throws IllegalArgumentException if the shape does not match or is odd, a weight is not
     *     finite and the precision is not FP32, or weightMax is out of range
     */
    public static PackedWeights packGated(
            float[] weights, int outFeatures, int inFeatures, Precision precision, int weightMax) {
        checkWeights(weights, outFeatures, inFeatures, precision);
        if (outFeatures % 2 != 0) {
            throw new IllegalArgumentException(
                    "gated weights need an even output count 2·ff, got " + outFeatures);
        }
        if (weightMax < 1 || weightMax > 127) {
            throw new IllegalArgumentException("weightMax must be in 1..127, got " + weightMax);
        }
        return new PackedWeights(
                precision,
                LinearNative.get()
                        .packGatedWeights(
                                precision.formatCode(),
                                outFeatures,
                                inFeatures,
                                directFloats(weights),
                                weightMax),
                true);
    }

    /**
     * Packs an fp32 NDArray {@code [out, in]} (PyTorch's {@code Linear.weight} layout).
     *
     * @param weight the weight
     * @param precision see {@link #pack(float[], int, int, Precision)}
     * @return the packed weights
     * @throws IllegalArgumentException if the array is not 2-D fp32
     */
    public static PackedWeights pack(NDArray weight, Precision precision) {
        if (weight.getDataType() != DataType.FLOAT32 || weight.getShape().dimension() != 2) {
            throw new IllegalArgumentException(
                    "weight must be a 2-D FLOAT32 array [out, in], got "
                            + weight.getDataType()
                            + " "
                            + weight.getShape());
        }
        return pack(
                weight.toFloatArray(),
                Math.toIntExact(weight.getShape().get(0)),
                Math.toIntExact(weight.getShape().get(1)),
                precision);
    }

    /**
     * Packs weights quantized elsewhere (e.g. an ONNX Runtime export): {@code W[o, i] =
     * scales[o]·codes[o·in + i]}.
     *
     * @param codes {@code out·in} int8 codes, row-major
     * @param scales {@code out} per-channel scales, finite and non-negative
     * @param outFeatures output channels
     * @param inFeatures input width
     * @param precision INT8 or INT8_WEIGHT_ONLY
     * @return the packed weights
     * @throws IllegalArgumentException if shapes do not match or a scale is invalid
     */
    public static PackedWeights fromInt8(
            byte[] codes, float[] scales, int outFeatures, int inFeatures, Precision precision) {
        checkShape(outFeatures, inFeatures, precision);
        if (precision != Precision.INT8 && precision != Precision.INT8_WEIGHT_ONLY) {
            throw new IllegalArgumentException(
                    "int8 codes pack as INT8 or INT8_WEIGHT_ONLY, not " + precision);
        }
        if (codes == null || codes.length != (long) outFeatures * inFeatures) {
            throw new IllegalArgumentException(
                    "int8 codes hold "
                            + (codes == null ? "null" : codes.length + " bytes")
                            + ", expected "
                            + outFeatures
                            + "·"
                            + inFeatures);
        }
        if (scales == null || scales.length != outFeatures) {
            throw new IllegalArgumentException(
                    "expected "
                            + outFeatures
                            + " scales, got "
                            + (scales == null ? "null" : scales.length));
        }
        ByteBuffer c = ByteBuffer.allocateDirect(codes.length).order(ByteOrder.LITTLE_ENDIAN);
        c.put(codes).flip();
        return new PackedWeights(
                precision,
                LinearNative.get()
                        .packInt8Weights(outFeatures, inFeatures, c, directFloats(scales)));
    }

    private static void checkWeights(
            float[] weights, int outFeatures, int inFeatures, Precision precision) {
        checkShape(outFeatures, inFeatures, precision);
        if (weights == null || weights.length != (long) outFeatures * inFeatures) {
            throw new IllegalArgumentException(
                    "weights hold "
                            + (weights == null ? "null" : weights.length + " floats")
                            + ", expected "
                            + outFeatures
                            + "·"
                            + inFeatures);
        }
    }

    private static void checkShape(int outFeatures, int inFeatures, Precision precision) {
        if (precision == null) {
            throw new IllegalArgumentException("the precision must not be null");
        }
        if (outFeatures <= 0 || inFeatures <= 0) {
            throw new IllegalArgumentException(
                    "weight shape must be positive, got [" + outFeatures + ", " + inFeatures + "]");
        }
        if (inFeatures > LinearNative.MAX_K) {
            throw new IllegalArgumentException(
                    "input width " + inFeatures + " exceeds " + LinearNative.MAX_K);
        }
    }

    static ByteBuffer directFloats(float[] values) {
        ByteBuffer buffer =
                ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        buffer.asFloatBuffer().put(values);
        return buffer;
    }

    /**
     * Returns the precision the weights were packed for.
     *
     * @return the precision
     */
    public Precision getPrecision() {
        return precision;
    }

    /**
     * Returns whether the weights were packed for a gated activation ({@link #packGated}).
     *
     * @return true for gated weights
     */
    public boolean isGated() {
        return gated;
    }

    /**
     * Returns the number of output channels.
     *
     * @return {@code out}
     */
    public int getOutFeatures() {
        return outFeatures;
    }

    /**
     * Returns the input width.
     *
     * @return {@code in}
     */
    public int getInFeatures() {
        return inFeatures;
    }

    /**
     * Returns the native memory these weights occupy (values padded to the kernel's panels, plus
     * per-channel scales and sums for int8).
     *
     * @return bytes
     */
    public long getByteSize() {
        return byteSize;
    }

    /**
     * Names the native kernel that multiplies by these weights on this CPU: as {@link
     * Precision#kernelName()}, except that reduced-range INT8 weights run on {@code
     * avx2-maddubs-reduced-range} where the CPU has no VNNI.
     *
     * @return the kernel name
     * @throws IllegalStateException if closed
     */
    public String kernelName() {
        try (CallGuard.Lease lease = guard.enter()) {
            return LinearNative.get()
                    .kernelNameFor(handle.value, precision.activationQuantization());
        }
    }

    /**
     * Returns the weights the kernels actually multiply by (as packed for FP32, else dequantized or
     * widened to fp32).
     *
     * @return {@code out·in} floats, row-major
     * @throws IllegalStateException if closed
     */
    public float[] toFloatArray() {
        ByteBuffer out =
                ByteBuffer.allocateDirect(outFeatures * inFeatures * 4)
                        .order(ByteOrder.LITTLE_ENDIAN);
        try (CallGuard.Lease lease = guard.enter()) {
            LinearNative.get().unpackWeights(handle.value, out);
        }
        float[] values = new float[outFeatures * inFeatures];
        out.asFloatBuffer().get(values);
        return values;
    }

    /**
     * Returns whether {@link #close()} was called.
     *
     * @return true once closed
     */
    public boolean isClosed() {
        return guard.isClosed();
    }

    /**
     * Starts a native call on the handle: {@link #close()} waits until the lease is closed.
     *
     * @throws IllegalStateException if closed
     */
    CallGuard.Lease enter() {
        return guard.enter();
    }

    /** The native handle; only valid inside a lease from {@link #enter()}. */
    long handle() {
        return handle.value;
    }

    /** Frees the native memory (idempotent); waits for forwards in progress. */
    @Override
    public void close() {
        guard.close(cleanable::clean);
    }

    @Override
    public String toString() {
        return "PackedWeights("
                + (gated ? "gated " : "")
                + precision.label()
                + ", ["
                + outFeatures
                + ", "
                + inFeatures
                + "], "
                + byteSize
                + " bytes)";
    }
}
