package io.github.tilewise.djl.cuda;

import io.github.tilewise.djl.CallGuard;
import io.github.tilewise.djl.attention.AttentionLayout;
import io.github.tilewise.djl.jni.CudaLibrary;
import io.github.tilewise.djl.jni.CudaNative;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Fused attention on an NVIDIA GPU:
 *
 * <pre>  O = softmax(scale · Q·Kᵀ + mask) · V</pre>
 *
 * computed FlashAttention-2 style by {@code libtilewise_cuda} (tensor-core tiles, online softmax in
 * registers, fp32 accumulation); the {@code qLen × kvLen} score matrix never reaches GPU memory.
 *
 * <p>An instance describes one problem shape and is reused across calls:
 *
 * <pre>{@code
 * try (CudaAttention attention = CudaAttention.builder()
 *         .setDataType(CudaAttention.DataType.FLOAT16)
 *         .setShape(batch, heads, kvHeads, qLen, kvLen, 128)
 *         .optCausal(true)
 *         .build()) {
 *     attention.forward(q, k, v, out);             // host direct buffers: copied in and out
 *     attention.forward(dq, dk, dv, dout, null);   // DeviceBuffers kept on the GPU
 * }
 * }</pre>
 *
 * <p>Data are raw 16-bit values (fp16 or bf16, little-endian) in {@link AttentionLayout} order: Q
 * and O {@code [B, H, Nq, D]}, K and V {@code [B, Hkv, Nk, D]} for {@link
 * AttentionLayout#BATCH_HEADS_SEQ_DIM}, seq and head axes swapped for {@link
 * AttentionLayout#BATCH_SEQ_HEADS_DIM}. {@code Hkv} divides {@code H} (grouped-query attention).
 * The causal mask is bottom-right aligned (query i sees key j iff {@code j <= i + kvLen - qLen});
 * key valid lengths mask the keys past each sequence's length and skip their tiles. Rows with no
 * visible key are zeros. Head dimensions 64 and 128 are supported.
 */
public final class CudaAttention implements AutoCloseable {

    /** Element type of Q, K, V and the output. */
    public enum DataType {
        /** IEEE half precision. */
        FLOAT16(1),
        /** bfloat16. */
        BFLOAT16(2);

        private final int code;

        DataType(int code) {
            this.code = code;
        }
    }

    private static final int ELEMENT_BYTES = 2;

    private final DataType dataType;
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
        this.layout = b.layout;
        this.shape = new long[] {b.batch, b.qHeads, b.kvHeads, b.qLen, b.kvLen, b.headDim};
        this.scale = b.scale != null ? b.scale : (float) (1.0 / Math.sqrt(b.headDim));
        this.causal = b.causal;
        this.keyValidLengths = b.keyValidLengths;
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
                dataType.code,
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
     * @return the data type
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
        private AttentionLayout layout = AttentionLayout.BATCH_HEADS_SEQ_DIM;
        private long batch = -1;
        private long qHeads;
        private long kvHeads;
        private long qLen;
        private long kvLen;
        private long headDim;
        private Float scale;
        private boolean causal;
        private int[] keyValidLengths;

        private Builder() {}

        /**
         * Sets the element type of Q, K, V and the output.
         *
         * @param dataType fp16 or bf16
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
         * Sets the memory layout (default {@link AttentionLayout#BATCH_HEADS_SEQ_DIM}).
         *
         * @param layout the layout
         * @return this builder
         */
        public Builder optLayout(AttentionLayout layout) {
            this.layout = layout;
            return this;
        }

        /**
         * Sets the score scale (default {@code 1/sqrt(headDim)}).
         *
         * @param scale a positive, finite value
         * @return this builder
         */
        public Builder optScale(float scale) {
            this.scale = scale;
            return this;
        }

        /**
         * Enables the causal mask, aligned to the bottom right.
         *
         * @param causal true to mask keys after each query's position
         * @return this builder
         */
        public Builder optCausal(boolean causal) {
            this.causal = causal;
            return this;
        }

        /**
         * Sets each sequence's number of valid keys; keys past it are masked and their tiles
         * skipped.
         *
         * @param lengths one value in {@code [0, kvLen]} per batch element (copied)
         * @return this builder
         */
        public Builder optKeyValidLengths(int[] lengths) {
            this.keyValidLengths = lengths == null ? null : lengths.clone();
            return this;
        }

        /**
         * Validates the settings and builds the operator (no GPU work happens here).
         *
         * @return the operator
         * @throws IllegalArgumentException naming the first invalid setting
         * @throws UnsupportedOperationException for a head dimension other than 64 or 128
         */
        public CudaAttention build() {
            if (dataType == null) {
                throw new IllegalArgumentException("setDataType is required");
            }
            if (layout == null) {
                throw new IllegalArgumentException("layout must not be null");
            }
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
            if (scale != null && !(scale > 0f && Float.isFinite(scale))) {
                throw new IllegalArgumentException(
                        "scale must be positive and finite, got " + scale);
            }
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
