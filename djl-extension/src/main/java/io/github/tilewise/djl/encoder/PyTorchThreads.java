package io.github.tilewise.djl.encoder;

import ai.djl.pytorch.jni.JniUtils;

/**
 * Keeps PyTorch's intra-op pool from fighting Tilewise's native workers during an encoder forward.
 *
 * <p>In a forward, PyTorch runs only the glue (embeddings, LayerNorm, reshapes) between Tilewise's
 * native linear and attention kernels. After each parallel PyTorch op its OpenMP threads spin-wait
 * for more work, taking the cores the native pool needs next: measured here, limiting PyTorch to
 * one intra-op thread during the forward made the all-MiniLM-L6-v2 batch 1.2 to 1.6× faster on 2
 * busy cores. The limit is set when the first concurrent forward starts and the previous count
 * restored when the last one ends; meanwhile other PyTorch work in the process also runs on one
 * thread. The limit nests: {@code ModelPredictor} and {@code TextEncoderBlock} hold it over the
 * whole call (pooling included), since PyTorch's first parallel op after the count rises again
 * costs about 1 ms (measured on all-MiniLM-L6-v2 one text per call: 15% of the call).
 *
 * <p>System property {@code tilewise.pytorch.threads}: the intra-op threads during forwards
 * (default {@code 1}); {@code keep} leaves PyTorch's setting alone.
 */
public final class PyTorchThreads implements AutoCloseable {

    private static final Object LOCK = new Object();
    private static int active;
    private static int saved;

    private final boolean limited;

    private PyTorchThreads(boolean limited) {
        this.limited = limited;
    }

    /**
     * Applies the limit for the duration of a forward; close the result when the forward ends.
     *
     * @return the scope of the limit
     */
    public static PyTorchThreads limit() {
        String setting = System.getProperty("tilewise.pytorch.threads", "1").trim();
        if ("keep".equalsIgnoreCase(setting)) {
            return new PyTorchThreads(false);
        }
        int threads;
        try {
            threads = Integer.parseInt(setting);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(
                    "tilewise.pytorch.threads must be a positive number or keep, got " + setting,
                    e);
        }
        if (threads < 1) {
            throw new IllegalArgumentException(
                    "tilewise.pytorch.threads must be a positive number or keep, got " + setting);
        }
        synchronized (LOCK) {
            if (active++ == 0) {
                saved = JniUtils.getNumThreads();
                if (saved != threads) {
                    JniUtils.setNumThreads(threads);
                }
            }
        }
        return new PyTorchThreads(true);
    }

    @Override
    public void close() {
        if (!limited) {
            return;
        }
        synchronized (LOCK) {
            if (--active == 0 && JniUtils.getNumThreads() != saved) {
                JniUtils.setNumThreads(saved);
            }
        }
    }
}
