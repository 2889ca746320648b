package io.github.tilewise.djl.cuda;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.CallGuard;
import io.github.tilewise.djl.attention.AttentionLayout;
import io.github.tilewise.djl.attention.AttentionOptions;
import io.github.tilewise.djl.attention.ComputePrecision;
import io.github.tilewise.djl.jni.CudaLibrary;
import io.github.tilewise.djl.jni.CudaNative;
import io.github.tilewise.djl.jni.SharedMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Fused attention on an NVIDIA GPU:
 *
 * <pre>  O = softmax(scale · Q·Kᵀ + mask) · V</pre>
 *
 * computed FlashAttention style by {@code libtilewise_cuda} (tensor-core tiles, online softmax in
 * registers, fp32 accumulation); the {@code qLen × kvLen} score matrix never reaches GPU memory.
 *
 * <p><b>On NDArrays</b>, {@link #forward(NDArray, NDArray, NDArray, AttentionOptions)} takes the
 * same arguments as {@link io.github.tilewise.djl.attention.FusedAttention#forward}, which calls it
 * for arrays on a GPU:
 *
 * <pre>{@code
 * NDArray out = CudaAttention.forward(q, k, v, options); // FLOAT16, on q's device and manager
 * }</pre>
 *
 * <p><b>On raw buffers</b>, an instance describes one problem shape and is reused across calls:
 *
 * <pre>{@code
 * try (CudaAttention attention = CudaAttention.builder()
 *         .setDataType(DataType.BFLOAT16)
 *         .setShape(batch, heads, kvHeads, qLen, kvLen, 128)
 *         .optOptions(AttentionOptions.builder().optCausal(true).build())
 *         .build()) {
 *     attention.forward(q, k, v, out);             // host direct buffers: copied in and out
 *     attention.forward(dq, dk, dv, dout, null);   // DeviceBuffers kept on the GPU
 * }
 * }</pre>
 *
 * <p>Data are 16-bit values ({@link DataType#FLOAT16} or {@link DataType#BFLOAT16}, little-endian;
 * the kernels have no fp32 variant) in {@link AttentionLayout} order: Q and O {@code [B, H, Nq,
 * D]}, K and V {@code [B, Hkv, Nk, D]} for {@link AttentionLayout#BATCH_HEADS_SEQ_DIM}, seq and
 * head axes swapped for {@link AttentionLayout#BATCH_SEQ_HEADS_DIM}. {@code Hkv} divides {@code H}
 * (grouped-query attention). Of {@link AttentionOptions}, the kernels take the layout, a positive
 * scale, the causal mask (bottom-right aligned: query i sees key j iff {@code j <= i + kvLen -
 * qLen}) and key valid lengths (keys past each sequence's length are masked and their tiles
 * skipped); a key-padding mask, a bias or {@link ComputePrecision#BF16} is refused with an {@link
 * UnsupportedOperationException} naming the option. Rows with no visible key are zeros. Head
 * dimensions 64 and 128 are supported.
 */
public final class CudaAttention implements AutoCloseable {

    private static final int ELEMENT_BYTES = 2;

    private final DataType dataType;
    private final int dtypeCode;
    private final AttentionLayout layout;
    private final long[] shape;
    private final long[] strides;
    private final float scale;
    private final boolean causal;
    private final int[] keyValidLengths;
    private DeviceBuffer keyValidLengthsOnDevice;
    private final CallGuard guard = new CallGuard("CudaAttention");

    private CudaAttention(Builder b) {
        this.dataType = b.dataType;
        this.dtypeCode = dtypeCode(b.dataType);
        this.layout = b.options.getLayout();
        this.shape = new long[] {b.batch, b.qHeads, b.kvHeads, b.qLen, b.kvLen, b.headDim};
        this.scale = b.options.getScale(b.headDim);
        this.causal = b.options.isCausal();
        this.keyValidLengths = b.options.getKeyValidLengths();
        long[] q = strides(b.qHeads, b.qLen);
        long[] kv = strides(b.kvHeads, b.kvLen);
        this.strides =
                new long[] {
                    q[0], q[1], q[2], kv[0], kv[1], kv[2], kv[0], kv[1], kv[2], q[0], q[1], q[2]
                };
    }

    /**
     * Returns whether the CUDA kernels can run here (library loaded, driver and GPU present).
     *
     * @return true if forward calls can succeed
     */
    public static boolean isAvailable() {
        return CudaLibrary.isAvailable();
    }

    /**
     * Returns why the CUDA kernels cannot run here.
     *
     * @return the reason, or null if they can
     */
    public static String unavailableReason() {
        return CudaLibrary.unavailableReason();
    }

    /**
     * Describes the GPU the kernels run on.
     *
     * @return e.g. "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)"
     * @throws io.github.tilewise.djl.NativeLibraryUnavailableException if CUDA is unavailable
     */
    public static String describeDevice() {
        return CudaLibrary.requireLoaded().describeDevice(0);
    }

    /**
     * Returns a builder.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Computes attention on NDArrays, with the arguments and shapes of {@link
     * io.github.tilewise.djl.attention.FusedAttention#forward}: Q {@code [B, H, Nq, D]}, K and V
     * {@code [B, Hkv, Nk, D]} in {@link AttentionLayout#BATCH_HEADS_SEQ_DIM} (seq and head axes
     * swapped in {@link AttentionLayout#BATCH_SEQ_HEADS_DIM}), all {@link DataType#FLOAT16} and on
     * one device (a GPU, or the CPU to use the GPU from CPU arrays).
     *
     * <p><b>Host staging.</b> DJL's API gives no device address of a tensor ({@code toByteBuffer}
     * of a GPU tensor is a host copy, and the PyTorch engine's native entry points are not public),
     * so the kernel cannot read a GPU NDArray in place: Q, K and V are copied to the host, then to
     * the CUDA library's device (device 0, whatever GPU the arrays are on), and the output comes
     * back the same way. The copies are freed before the call returns. For device-resident data
     * across calls, use {@link DeviceBuffer}s with {@link #forward(DeviceBuffer, DeviceBuffer,
     * DeviceBuffer, DeviceBuffer, DeviceBuffer)}.
     *
     * <p>BFLOAT16 arrays are refused: the output would be a BFLOAT16 NDArray, which DJL's PyTorch
     * engine aborts on; bf16 runs through the buffer API ({@code setDataType(DataType.BFLOAT16)}).
     *
     * @param q queries
     * @param k keys
     * @param v values
     * @param options layout, scale, causal mask and key valid lengths; null means the defaults
     * @return the output, shaped like q, FLOAT16, on q's device, attached to q's manager
     * @throws IllegalArgumentException naming the problem for null, mixed-device, mixed-type or
     *     ill-shaped arrays, or invalid valid lengths
     * @throws IllegalStateException for closed arrays
     * @throws UnsupportedOperationException for a data type other than FLOAT16, a head dimension
     *     other than 64 or 128, or an option the CUDA kernel does not implement (named)
     * @throws io.github.tilewise.djl.NativeLibraryUnavailableException if CUDA is unavailable here
     *     (the message carries {@link #unavailableReason()}); arguments are checked first
     */
    public static NDArray forward(NDArray q, NDArray k, NDArray v, AttentionOptions options) {
        AttentionOptions opts = options == null ? AttentionOptions.builder().build() : options;
        checkArray(q, "q");
        checkArray(k, "k");
        checkArray(v, "v");
        Device device = q.getDevice();
        DataType type = q.getDataType();
        for (NDArray x : new NDArray[] {k, v}) {
            String name = x == k ? "k" : "v";
            if (!device.equals(x.getDevice())) {
                throw new IllegalArgumentException(
                        name + " is on " + x.getDevice() + ", q on " + device + ": use one device");
            }
            if (x.getDataType() != type) {
                throw new IllegalArgumentException(
                        "q, k and v must share one data type, got "
                                + type.name()
                                + " and "
                                + x.getDataType().name()
                                + " ("
                                + name
                                + ")");
            }
        }
        if (type == DataType.BFLOAT16) {
            throw new UnsupportedOperationException(
                    "BFLOAT16 NDArrays: the output would be a BFLOAT16 NDArray, which DJL's PyTorch"
                            + " engine aborts on; use FLOAT16 arrays, or BFLOAT16 through"
                            + " CudaAttention's buffer API");
        }
        if (type != DataType.FLOAT16) {
            throw new UnsupportedOperationException(
                    "CUDA attention takes FLOAT16 NDArrays, got "
                            + type.name()
                            + " (the kernels have no fp32 variant: convert with"
                            + " toType(DataType.FLOAT16, false), or use FusedAttention on CPU"
                            + " arrays)");
        }
        long[] qs = q.getShape().getShape();
        long[] ks = k.getShape().getShape();
        if (qs.length != 4 || ks.length != 4 || !k.getShape().equals(v.getShape())) {
            throw new IllegalArgumentException(
                    "q "
                            + q.getShape()
                            + ", k "
                            + k.getShape()
                            + " and v "
                            + v.getShape()
                            + " must have rank 4, and k and v one shape");
        }
        if (qs[0] != ks[0] || qs[3] != ks[3]) {
            throw new IllegalArgumentException(
                    "q "
                            + q.getShape()
                            + " and k "
                            + k.getShape()
                            + " must share batch and headDim");
        }
        boolean headsFirst = opts.getLayout() == AttentionLayout.BATCH_HEADS_SEQ_DIM;
        try (CudaAttention attention =
                builder()
                        .setDataType(type)
                        .setShape(
                                qs[0],
                                headsFirst ? qs[1] : qs[2],
                                headsFirst ? ks[1] : ks[2],
                                headsFirst ? qs[2] : qs[1],
                                headsFirst ? ks[2] : ks[1],
                                qs[3])
                        .optOptions(opts)
                        .build()) {
            CudaLibrary.requireLoaded();
            NDManager target = q.getManager();
            try (NDManager scope = target.newSubManager(Device.cpu())) {
                ByteBuffer hq = stage(q, "q", scope);
                ByteBuffer hk = stage(k, "k", scope);
                ByteBuffer hv = stage(v, "v", scope);
                NDArray hostOut = scope.create(new Shape(qs), type);
                attention.forward(hq, hk, hv, SharedMemory.of(hostOut, "output", null));
                NDArray out = hostOut.toDevice(device, false);
                out.attach(target);
                return out;
            }
        }
    }

    /** A host view of an input: GPU arrays are copied to the CPU inside the call's scope. */
    private static ByteBuffer stage(NDArray x, String name, NDManager scope) {
        // Attaching twice (q == k) would hand the array back to the closing scope, which closes it.
        if (x.getManager() != scope) {
            x.tempAttach(scope);
        }
        NDArray host =
                Device.Type.CPU.equals(x.getDevice().getDeviceType())
                        ? x
                        : x.toDevice(Device.cpu(), false);
        return SharedMemory.of(host, name, scope);
    }

    private static void checkArray(NDArray array, String name) {
        if (array == null) {
            throw new IllegalArgumentException(name + " must not be null");
        }
        if (array.isReleased()) {
            throw new IllegalStateException(name + " has been closed");
        }
    }

    /**
     * The kernel's {@code tw_dtype} code of a DJL data type.
     *
     * @throws UnsupportedOperationException for a type other than FLOAT16 or BFLOAT16
     */
    static int dtypeCode(DataType type) {
        if (type == DataType.FLOAT16) {
            return 1;
        }
        if (type == DataType.BFLOAT16) {
            return 2;
        }
        throw new UnsupportedOperationException(
                "CUDA attention takes FLOAT16 or BFLOAT16 data, got "
                        + type.name()
                        + " (the kernels have no other variant)");
    }

    /**
     * Refuses, by name, every option the CUDA kernel does not implement. Each option of {@link
     * AttentionOptions} must be handled here or in the builder (CudaAttentionOptionsTest lists
     * them), so that a new option is never ignored silently on the GPU.
     */
    static void requireSupported(AttentionOptions options, long headDim) {
        if (options.getKeyPaddingMask() != null) {
            throw new UnsupportedOperationException(
                    "keyPaddingMask is not supported by CUDA attention: pass each sequence's"
                            + " length with optKeyValidLengths instead");
        }
        if (options.getBias() != null) {
            throw new UnsupportedOperationException(
                    "bias is not supported by CUDA attention (no additive bias in the kernel)");
        }
        if (options.getComputePrecision() != ComputePrecision.DATA) {
            throw new UnsupportedOperationException(
                    "computePrecision "
                            + options.getComputePrecision()
                            + " is not supported by CUDA attention: the dot products run in the"
                            + " data's precision (use BFLOAT16 data for bf16)");
        }
        if (options.hasSlidingWindow()) {
            throw new UnsupportedOperationException(
                    "optSlidingWindow is not supported by CUDA attention (no window in the kernel)");
        }
        if (options.getRelativeBias() != null) {
            throw new UnsupportedOperationException(
                    "optRelativeBias is not supported by CUDA attention (no relative-position bias"
                            + " in the kernel)");
        }
        float scale = options.getScale(headDim);
        if (!(scale > 0f)) {
            throw new UnsupportedOperationException(
                    "scale " + scale + " is not supported by CUDA attention: it must be positive");
        }
    }

    /**
     * Returns the bytes Q (and the output) must hold.
     *
     * @return {@code B·H·Nq·D·2}
     */
    public long queryBytes() {
        return bytes(shape[1], shape[3]);
    }

    /**
     * Returns the bytes K (and V) must hold.
     *
     * @return {@code B·Hkv·Nk·D·2}
     */
    public long keyValueBytes() {
        return bytes(shape[2], shape[4]);
    }

    /**
     * Returns the bytes of the log-sum-exp output.
     *
     * @return {@code B·H·Nq·4}
     */
    public long logSumExpBytes() {
        return Math.multiplyExact(Math.multiplyExact(shape[0], shape[1]), shape[3]) * Float.BYTES;
    }

    /**
     * Computes attention on host buffers: copies Q, K, V to the GPU, runs the kernel, copies the
     * output back. Buffers are direct; their bytes from 0 are used, positions are ignored.
     *
     * @param q queries, at least {@link #queryBytes()}
     * @param k keys, at least {@link #keyValueBytes()}
     * @param v values, at least {@link #keyValueBytes()}
     * @param out the output, at least {@link #queryBytes()}
     */
    public void forward(ByteBuffer q, ByteBuffer k, ByteBuffer v, ByteBuffer out) {
        forward(q, k, v, out, null);
    }

    /**
     * Computes attention on host buffers and, if {@code lse} is not null, the log-sum-exp of each
     * query row's scaled, masked scores (fp32, {@code [B, H, Nq]}, -infinity for rows with no
     * visible key).
     *
     * @param q queries
     * @param k keys
     * @param v values
     * @param out the output
     * @param lse the log-sum-exp output (direct, at least {@link #logSumExpBytes()}), or null
     */
    public void forward(ByteBuffer q, ByteBuffer k, ByteBuffer v, ByteBuffer out, ByteBuffer lse) {
        checkOpen();
        checkHost(q, queryBytes(), "q");
        checkHost(k, keyValueBytes(), "k");
        checkHost(v, keyValueBytes(), "v");
        checkHost(out, queryBytes(), "out");
        if (lse != null) {
            checkHost(lse, logSumExpBytes(), "lse");
        }
        try (DeviceBuffer dq = upload(q, queryBytes());
                DeviceBuffer dk = upload(k, keyValueBytes());
                DeviceBuffer dv = upload(v, keyValueBytes());
                DeviceBuffer dout = DeviceBuffer.allocate(queryBytes());
                DeviceBuffer dlse = lse != null ? DeviceBuffer.allocate(logSumExpBytes()) : null) {
            forward(dq, dk, dv, dout, dlse);
            dout.copyTo(out.duplicate().limit(Math.toIntExact(queryBytes())));
            if (lse != null) {
                dlse.copyTo(lse.duplicate().limit(Math.toIntExact(logSumExpBytes())));
            }
        }
    }

    /**
     * Computes attention on device-resident buffers. The kernel is queued on the default stream and
     * this call returns without waiting; {@link DeviceBuffer#copyTo(ByteBuffer)} waits for it.
     *
     * @param q queries, at least {@link #queryBytes()}
     * @param k keys, at least {@link #keyValueBytes()}
     * @param v values, at least {@link #keyValueBytes()}
     * @param out the output, at least {@link #queryBytes()}
     * @param lse the log-sum-exp output (at least {@link #logSumExpBytes()}), or null
     */
    public void forward(
            DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer out, DeviceBuffer lse) {
        checkOpen();
        checkDevice(q, queryBytes(), "q");
        checkDevice(k, keyValueBytes(), "k");
        checkDevice(v, keyValueBytes(), "v");
        checkDevice(out, queryBytes(), "out");
        if (lse != null) {
            checkDevice(lse, logSumExpBytes(), "lse");
        }
        CudaNative cuda = CudaLibrary.requireLoaded();
        DeviceBuffer lengths = keyValidLengths != null ? keyValidLengthsOnDevice() : null;
        try (CallGuard.Lease self = guard.enter();
                CallGuard.Lease lq = q.enter();
                CallGuard.Lease lk = k.enter();
                CallGuard.Lease lv = v.enter();
                CallGuard.Lease lo = out.enter();
                CallGuard.Lease ll = lse != null ? lse.enter() : null;
                CallGuard.Lease lengthsLease = lengths != null ? lengths.enter() : null) {
            launch(cuda, q, k, v, out, lse, lengths);
        }
    }

    private synchronized DeviceBuffer keyValidLengthsOnDevice() {
        if (keyValidLengthsOnDevice == null) {
            ByteBuffer host =
                    ByteBuffer.allocateDirect(keyValidLengths.length * Integer.BYTES)
                            .order(ByteOrder.nativeOrder());
            host.asIntBuffer().put(keyValidLengths);
            keyValidLengthsOnDevice = DeviceBuffer.copyOf(host);
        }
        return keyValidLengthsOnDevice;
    }

    private void launch(
            CudaNative cuda,
            DeviceBuffer q,
            DeviceBuffer k,
            DeviceBuffer v,
            DeviceBuffer out,
            DeviceBuffer lse,
            DeviceBuffer lengths) {
        cuda.attentionForward(
                dtypeCode,
                shape,
                q.address(),
                k.address(),
                v.address(),
                out.address(),
                strides,
                scale,
                causal,
                lengths != null ? lengths.address() : 0,
                lse != null ? lse.address() : 0);
    }

    /** Frees the device copy of the key valid lengths; later forward calls throw. */
    @Override
    public void close() {
        guard.close(
                () -> {
                    synchronized (this) {
                        if (keyValidLengthsOnDevice != null) {
                            keyValidLengthsOnDevice.close();
                        }
                    }
                });
    }

    /**
     * Returns the layout of Q, K, V and the output.
     *
     * @return the layout
     */
    public AttentionLayout getLayout() {
        return layout;
    }

    /**
     * Returns the element type.
     *
     * @return {@link DataType#FLOAT16} or {@link DataType#BFLOAT16}
     */
    public DataType getDataType() {
        return dataType;
    }

    private long[] strides(long heads, long len) {
        long d = shape[5];
        if (layout == AttentionLayout.BATCH_SEQ_HEADS_DIM) {
            return new long[] {len * heads * d, d, heads * d};
        }
        return new long[] {heads * len * d, len * d, d};
    }

    private long bytes(long heads, long len) {
        long elements =
                Math.multiplyExact(
                        Math.multiplyExact(Math.multiplyExact(shape[0], heads), len), shape[5]);
        return Math.multiplyExact(elements, ELEMENT_BYTES);
    }

    private void checkOpen() {
        if (guard.isClosed()) {
            throw new IllegalStateException("CudaAttention is closed");
        }
    }

    private static DeviceBuffer upload(ByteBuffer host, long bytes) {
        DeviceBuffer buffer = DeviceBuffer.allocate(bytes);
        try {
            buffer.copyFrom(host.duplicate().limit(Math.toIntExact(bytes)));
        } catch (RuntimeException e) {
            buffer.close();
            throw e;
        }
        return buffer;
    }

    private static void checkHost(ByteBuffer buffer, long bytes, String what) {
        DeviceBuffer.checkDirect(buffer, what);
        if (buffer.capacity() < bytes) {
            throw new IllegalArgumentException(
                    what + " buffer holds " + buffer.capacity() + " bytes, " + bytes + " needed");
        }
    }

    private static void checkDevice(DeviceBuffer buffer, long bytes, String what) {
        if (buffer == null) {
            throw new IllegalArgumentException(what + " device buffer is null");
        }
        if (buffer.isClosed()) {
            throw new IllegalStateException(what + " device buffer is closed");
        }
        if (buffer.byteSize() < bytes) {
            throw new IllegalArgumentException(
                    what
                            + " device buffer holds "
                            + buffer.byteSize()
                            + " bytes, "
                            + bytes
                            + " needed");
        }
    }

    /** Builds a {@link CudaAttention}: {@code setX} values are required, {@code optX} optional. */
    public static final class Builder {
        private DataType dataType;
        private long batch = -1;
        private long qHeads;
        private long kvHeads;
        private long qLen;
        private long kvLen;
        private long headDim;
        private AttentionOptions options = AttentionOptions.builder().build();

        private Builder() {}

        /**
         * Sets the element type of Q, K, V and the output.
         *
         * @param dataType {@link DataType#FLOAT16} or {@link DataType#BFLOAT16}
         * @return this builder
         */
        public Builder setDataType(DataType dataType) {
            this.dataType = dataType;
            return this;
        }

        /**
         * Sets the problem shape.
         *
         * @param batch batch size
         * @param qHeads query heads
         * @param kvHeads key/value heads, dividing qHeads
         * @param qLen query length
         * @param kvLen key/value length
         * @param headDim head dimension: 64 or 128
         * @return this builder
         */
        public Builder setShape(
                long batch, long qHeads, long kvHeads, long qLen, long kvLen, long headDim) {
            this.batch = batch;
            this.qHeads = qHeads;
            this.kvHeads = kvHeads;
            this.qLen = qLen;
            this.kvLen = kvLen;
            this.headDim = headDim;
            return this;
        }

        /**
         * Sets the attention options shared with {@link
         * io.github.tilewise.djl.attention.FusedAttention}: layout, scale, causal mask and key
         * valid lengths are used; the others must be at their defaults ({@link #build()} refuses
         * them). Default: {@code AttentionOptions.builder().build()}.
         *
         * @param options the options, not null
         * @return this builder
         */
        public Builder optOptions(AttentionOptions options) {
            if (options == null) {
                throw new IllegalArgumentException("options must not be null");
            }
            this.options = options;
            return this;
        }

        /**
         * Validates the settings and builds the operator (no GPU work happens here).
         *
         * @return the operator
         * @throws IllegalArgumentException naming the first invalid setting
         * @throws UnsupportedOperationException for a data type other than FLOAT16 or BFLOAT16, a
         *     head dimension other than 64 or 128, or an option the CUDA kernel does not implement
         *     (named in the message)
         */
        public CudaAttention build() {
            if (dataType == null) {
                throw new IllegalArgumentException("setDataType is required");
            }
            dtypeCode(dataType);
            if (batch < 0) {
                throw new IllegalArgumentException("setShape is required");
            }
            if (batch < 1 || qHeads < 1 || kvHeads < 1 || qLen < 1 || kvLen < 1 || headDim < 1) {
                throw new IllegalArgumentException(
                        String.format(
                                "batch, qHeads, kvHeads, qLen, kvLen and headDim must be >= 1, got"
                                        + " %d, %d, %d, %d, %d, %d",
                                batch, qHeads, kvHeads, qLen, kvLen, headDim));
            }
            if (batch > 65535
                    || qHeads > 65535
                    || qLen > Integer.MAX_VALUE
                    || kvLen > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(
                        "batch and qHeads must be <= 65535 and lengths < 2^31");
            }
            if (qHeads % kvHeads != 0) {
                throw new IllegalArgumentException(
                        "kvHeads (" + kvHeads + ") must divide qHeads (" + qHeads + ")");
            }
            if (headDim != 64 && headDim != 128) {
                throw new UnsupportedOperationException(
                        "CUDA attention supports head dimensions 64 and 128, got " + headDim);
            }
            requireSupported(options, headDim);
            int[] keyValidLengths = options.getKeyValidLengths();
            if (keyValidLengths != null) {
                if (keyValidLengths.length != batch) {
                    throw new IllegalArgumentException(
                            "keyValidLengths has "
                                    + keyValidLengths.length
                                    + " values, batch is "
                                    + batch);
                }
                for (int i = 0; i < keyValidLengths.length; i++) {
                    if (keyValidLengths[i] < 0 || keyValidLengths[i] > kvLen) {
                        throw new IllegalArgumentException(
                                "keyValidLengths["
                                        + i
                                        + "] = "
                                        + keyValidLengths[i]
                                        + " is outside [0, "
                                        + kvLen
                                        + "]");
                    }
                }
            }
            CudaAttention attention = new CudaAttention(this);
            // Sizes must fit a long: fail here rather than at the first call.
            attention.queryBytes();
            attention.keyValueBytes();
            attention.logSumExpBytes();
            return attention;
        }
    }
}
