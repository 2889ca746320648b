package io.github.tilewise.djl;

import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The lifecycle of an object whose calls read memory that its {@code close()} frees (native
 * buffers, packed weights, NDArrays of a model's manager): calls may run concurrently, and closing
 * waits for the calls in flight, then makes every later call fail with an {@link
 * IllegalStateException} — memory is never freed under a running call.
 *
 * <pre>{@code
 * public float[] forward(...) {
 *     try (CallGuard.Lease lease = guard.enter()) {
 *         ... // the owner's memory stays valid until the lease is closed
 *     }
 * }
 * public void close() {
 *     guard.close(() -> nativeMemory.free()); // runs once, after the calls in flight
 * }
 * }</pre>
 *
 * <p>A read-write lock: each call holds the read side, {@link #close} takes the write side. Calls
 * may nest (a call of the owner that calls itself), but closing from inside a call of the same
 * guard would wait for itself and is refused.
 */
public final class CallGuard {

    private final String name;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final Lease lease = lock.readLock()::unlock;
    private volatile boolean closed;

    /** A call in flight; closing it ends the call (it never throws). */
    @FunctionalInterface
    public interface Lease extends AutoCloseable {
        /** Ends the call. */
        @Override
        void close();
    }

    /**
     * Creates the guard of one object.
     *
     * @param name what the object is, for the messages of closed calls (e.g. {@code "TextEncoder
     *     all-MiniLM-L6-v2"})
     */
    public CallGuard(String name) {
        this.name = name;
    }

    /**
     * Starts a call: until the lease is closed, {@link #close} waits.
     *
     * @return the lease, to close in a {@code finally} or try-with-resources
     * @throws IllegalStateException if the object is closed
     */
    public Lease enter() {
        lock.readLock().lock();
        if (closed) {
            lock.readLock().unlock();
            throw new IllegalStateException(name + " is closed");
        }
        return lease;
    }

    /**
     * Closes the object once: waits for the calls in flight, then runs {@code release} while no
     * call can start. Later calls of {@link #enter} throw; later calls of this method do nothing.
     *
     * @param release frees what the object owns; runs at most once
     * @return true if this call closed the object, false if it was already closed
     * @throws IllegalStateException if the current thread is inside a call of this guard
     */
    public boolean close(Runnable release) {
        if (lock.getReadHoldCount() > 0) {
            throw new IllegalStateException(
                    name + " cannot be closed from inside one of its own calls");
        }
        lock.writeLock().lock();
        try {
            if (closed) {
                return false;
            }
            closed = true;
            release.run();
            return true;
        } finally {
            lock.writeLock().unlock();
        }
    }

    /**
     * Returns whether {@link #close} has run.
     *
     * @return true once closed
     */
    public boolean isClosed() {
        return closed;
    }

    @Override
    public String toString() {
        return "CallGuard(" + name + (closed ? ", closed)" : ")");
    }
}
