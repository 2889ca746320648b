package io.github.tilewise.djl.encoder;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import io.github.tilewise.djl.encoder.linear.LinearOperator;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * The activation memory of one forward, kept from call to call: a flat fp32 array per slot (the
 * projections, the attention output, the normalised attention output, the feed-forward hidden rows,
 * a pre-norm layer's residual stream, and two layer outputs used in turn), grown to the largest
 * forward seen. A layer borrows a slot as a contiguous view of the shape it needs and the native
 * kernels write into it, so a batch reuses pages it has already touched instead of page-faulting on
 * fresh outputs layer after layer (about 7% of an fp32 32 × 128 MiniLM batch, with glibc returning
 * each freed output to the kernel).
 *
 * <p>One forward at a time: a {@link Pool} lends each forward its own buffers and takes them back
 * when it returns, so concurrent forwards never share memory. A view never outlives the forward
 * that borrowed it: the encoder writes its last layer into a new array, which is all the caller
 * gets. The arrays belong to a base manager of their own, closed (their memory freed) when the pool
 * is, after the forwards in flight have returned ({@link TransformerEncoder#close()}).
 *
 * <p>{@code -Dtilewise.activationBuffers} caps the bytes one forward's buffers may hold (MiB,
 * default {@value #DEFAULT_CAP_MIB}; {@code 0} turns the reuse off): a slot that would grow past it
 * is not lent, and the layer allocates a new array as it would without buffers.
 */
final class ActivationBuffers implements AutoCloseable {

    /** The query projection, or the fused query-key-value projection. */
    static final int QUERY = 0;

    /** The key projection. */
    static final int KEY = 1;

    /** The value projection. */
    static final int VALUE = 2;

    /** {@code LayerNorm(x + attention output)}. */
    static final int NORMED = 3;

    /** The feed-forward hidden rows {@code act(a·W1ᵀ + b1)}. */
    static final int HIDDEN = 4;

    /** The output of even layers (layer 0, 2, ...), the input of the next. */
    static final int OUTPUT_EVEN = 5;

    /** The output of odd layers. */
    static final int OUTPUT_ODD = 6;

    /** The attention output (context). */
    static final int CONTEXT = 7;

    /** The residual stream between a pre-norm layer's attention and feed-forward blocks. */
    static final int RESIDUAL = 8;

    private static final int SLOTS = 9;

    /**
     * Default cap of one forward's buffers: 512 MiB holds a BERT-base chunk of 8,192 packed tokens
     * (seven 768-wide slots and one 3,072-wide: about 270 MB) and a ModernBERT-base document of
     * 8,192 tokens (five 768-wide slots, the 2,304-wide QKV and the 1,152-wide GeGLU rows: about
     * 260 MB); MiniLM's 32 × 128 batch needs 63 MB.
     */
    static final int DEFAULT_CAP_MIB = 512;

    private final NDManager manager;
    private final long capBytes;
    private final NDArray[] flats = new NDArray[SLOTS];
    private long heldBytes;

    private ActivationBuffers(NDManager manager, long capBytes) {
        this.manager = manager;
        this.capBytes = capBytes;
    }

    /** The output slot of layer {@code index}, or -1 (a new array) for the last layer. */
    static int outputSlot(int index, int layers) {
        if (index == layers - 1) {
            return -1;
        }
        return alternatingSlot(index);
    }

    /**
     * The output slot of layer {@code index} where every layer's output stays in the forward (a
     * final norm writes the new array that leaves it): even and odd layers in turn, so that a layer
     * never writes the slot it reads.
     */
    static int alternatingSlot(int index) {
        return index % 2 == 0 ? OUTPUT_EVEN : OUTPUT_ODD;
    }

    /**
     * Lends slot {@code slot} as the output of {@code op} on {@code x}: {@code x}'s shape with the
     * last axis {@code width}, attached to {@code x}'s manager (closing it closes only the view).
     *
     * @param buffers the forward's buffers, or null
     * @param slot the slot, or -1 for none
     * @param op the operator that will write the output
     * @param x the operator's input
     * @param width the output's last axis
     * @return the view, or null (the operator allocates) when there are no buffers or slot, the
     *     operator does not write into lent arrays, or the slot would grow past the cap
     */
    static NDArray lend(
            ActivationBuffers buffers, int slot, LinearOperator op, NDArray x, long width) {
        if (op == null || !op.writesInto()) {
            return null;
        }
        Shape xs = x.getShape();
        return lend(buffers, slot, xs.slice(0, xs.dimension() - 1).add(width), x.getManager());
    }

    /**
     * Runs {@code linear(x) + residual} into slot {@code slot} where the layer's operator writes
     * into lent arrays, else into a new array.
     *
     * @param linear the layer
     * @param x its input
     * @param residual added after its activation, or null
     * @param buffers the forward's buffers, or null
     * @param slot the slot, or -1 for a new array
     * @return the output, attached to {@code x}'s manager
     */
    static NDArray apply(
            LinearBlock linear, NDArray x, NDArray residual, ActivationBuffers buffers, int slot) {
        return linear.apply(
                x, residual, lend(buffers, slot, linear.getOperator(), x, linear.getOutputWidth()));
    }

    /**
     * Lends slot {@code slot} as a FLOAT32 array of {@code shape}, attached to {@code target}
     * (closing it closes only the view).
     *
     * @param buffers the forward's buffers, or null
     * @param slot the slot, or -1 for none
     * @param shape the array's shape
     * @param target the manager the view is attached to
     * @return the view, or null when there are no buffers or slot, or the slot would grow past the
     *     cap
     */
    static NDArray lend(ActivationBuffers buffers, int slot, Shape shape, NDManager target) {
        if (buffers == null || slot < 0) {
            return null;
        }
        return buffers.view(slot, shape, target);
    }

    /** A contiguous FLOAT32 view of the first {@code shape.size()} floats of a slot, or null. */
    private NDArray view(int slot, Shape shape, NDManager target) {
        long n = shape.size();
        NDArray flat = flats[slot];
        if (flat == null || flat.size() < n) {
            long old = flat == null ? 0 : flat.size() * 4L;
            // An eighth more than asked, so chunks of slowly growing sizes do not regrow each time.
            long grown = n + n / 8;
            if (heldBytes - old + grown * 4L > capBytes) {
                return null;
            }
            if (flat != null) {
                flat.close();
                flats[slot] = null;
                heldBytes -= old;
            }
            flat = manager.create(new Shape(grown), DataType.FLOAT32);
            flats[slot] = flat;
            heldBytes += grown * 4L;
        }
        NDArray prefix = flat.get(new NDIndex().addSliceDim(0, n));
        NDArray view = prefix.reshape(shape);
        if (view != prefix) {
            prefix.close();
        }
        view.attach(target);
        return view;
    }

    /**
     * Returns the bytes the slots hold.
     *
     * @return bytes
     */
    long heldBytes() {
        return heldBytes;
    }

    /** Frees the slots' memory. */
    @Override
    public void close() {
        manager.close();
        heldBytes = 0;
    }

    /**
     * The buffers of an encoder: each forward borrows a set of its own ({@link #acquire}) and gives
     * it back ({@link #release}); idle sets are kept for the next forwards, so the pool holds as
     * many as the most forwards that ran at once.
     */
    static final class Pool implements AutoCloseable {

        private final Deque<ActivationBuffers> idle = new ArrayDeque<>();
        private boolean closed;

        /**
         * Lends a set of buffers to one forward.
         *
         * @param like an input of the forward: its engine allocates the buffers
         * @return the buffers, or null where reuse is off ({@code -Dtilewise.activationBuffers=0}),
         *     the input is not on the CPU, or the pool is closed
         */
        ActivationBuffers acquire(NDArray like) {
            long cap = capBytes();
            if (cap <= 0 || !Device.Type.CPU.equals(like.getDevice().getDeviceType())) {
                return null;
            }
            synchronized (this) {
                if (closed) {
                    return null;
                }
                ActivationBuffers buffers = idle.pollFirst();
                if (buffers != null) {
                    return buffers;
                }
            }
            NDManager manager = like.getManager().getEngine().newBaseManager(Device.cpu());
            manager.setName("tilewise-activations");
            return new ActivationBuffers(manager, cap);
        }

        /**
         * Takes buffers back after their forward returned (or failed); frees them if the pool is
         * closed.
         *
         * @param buffers the buffers, or null
         */
        void release(ActivationBuffers buffers) {
            if (buffers == null) {
                return;
            }
            synchronized (this) {
                if (!closed && buffers.capBytes == capBytes()) {
                    idle.addFirst(buffers);
                    return;
                }
            }
            buffers.close();
        }

        /** Frees the idle buffers; buffers given back later are freed then. */
        @Override
        public void close() {
            synchronized (this) {
                closed = true;
                for (ActivationBuffers buffers : idle) {
                    buffers.close();
                }
                idle.clear();
            }
        }

        private static long capBytes() {
            long mib = Long.getLong("tilewise.activationBuffers", DEFAULT_CAP_MIB);
            // Negative turns the reuse off; a huge value means no cap, not an overflowed one.
            return Math.min(Math.max(0, mib), Long.MAX_VALUE >> 20) << 20;
        }
    }
}
