package io.github.tilewise.spark;

import io.github.tilewise.djl.encoder.text.TextEncoder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The executor-wide cache of loaded encoders: one {@link TextEncoder} per {@link EncoderSpec} per
 * JVM, shared by every task that runs there (a {@code TextEncoder} is thread-safe).
 *
 * <p>Policy: reference-counted leases with idle eviction. A task {@link #acquire acquires} a lease
 * for its spec (the first one loads the model; tasks arriving meanwhile wait for that load, never
 * load a second copy) and releases it when it ends. An encoder nobody holds stays loaded for the
 * next task, and is closed once it has been unused for {@code tilewise.spark.idleSeconds} (system
 * property of the executor JVM, default 600; 0 closes it as soon as the last lease goes). Every
 * encoder left is closed when the JVM exits. A load that fails is not cached: the next task tries
 * again, and its error reaches the driver through the failed task.
 */
public final class ModelCache {

    private static final Logger LOG = Logger.getLogger(ModelCache.class.getName());

    /** The system property of the idle time (seconds) after which an unused encoder is closed. */
    public static final String IDLE_SECONDS_PROPERTY = "tilewise.spark.idleSeconds";

    private static final Map<EncoderSpec, Entry> ENTRIES = new HashMap<>();
    private static final AtomicLong LOADS = new AtomicLong();
    private static ScheduledExecutorService evictor;

    static {
        Runtime.getRuntime()
                .addShutdownHook(new Thread(ModelCache::closeAll, "tilewise-cache-exit"));
    }

    private ModelCache() {}

    /** One cached encoder and who holds it. Guarded by the entry's monitor. */
    private static final class Entry {
        TextEncoder encoder;
        int leases;
        long idleSince;
        boolean closed;
    }

    /** A task's hold on a cached encoder; {@link #close()} releases it (once). */
    public static final class Lease implements AutoCloseable {
        private final EncoderSpec spec;
        private final Entry entry;
        private boolean released;

        private Lease(EncoderSpec spec, Entry entry) {
            this.spec = spec;
            this.entry = entry;
        }

        /**
         * Returns the encoder, valid until this lease is closed.
         *
         * @return the encoder
         */
        public TextEncoder encoder() {
            return entry.encoder;
        }

        /** Releases the lease; an encoder nobody holds is closed after the idle time. */
        @Override
        public void close() {
            synchronized (this) {
                if (released) {
                    return;
                }
                released = true;
            }
            release(spec, entry);
        }
    }

    /**
     * Returns a lease on the encoder of {@code spec}, loading it if no task of this JVM has.
     *
     * @param spec what to load
     * @return the lease; close it when the task ends
     * @throws Exception if the model cannot be loaded (not cached: the next call tries again)
     */
    public static Lease acquire(EncoderSpec spec) throws Exception {
        for (; ; ) {
            Entry entry;
            Throwable failure = null;
            synchronized (ENTRIES) {
                entry = ENTRIES.computeIfAbsent(spec, k -> new Entry());
            }
            synchronized (entry) {
                if (entry.closed) {
                    continue; // evicted between the lookup and now: take the new entry
                }
                if (entry.encoder == null) {
                    try {
                        long start = System.nanoTime();
                        entry.encoder = spec.load();
                        LOADS.incrementAndGet();
                        LOG.info(
                                String.format(
                                        "Tilewise loaded %s in %.1f s (loads in this JVM: %d)",
                                        spec, (System.nanoTime() - start) / 1e9, LOADS.get()));
                    } catch (Exception | Error e) {
                        entry.closed = true;
                        failure = e;
                    }
                }
                if (failure == null) {
                    entry.leases++;
                    return new Lease(spec, entry);
                }
            }
            // Outside the entry's monitor: the lock order is ENTRIES, then an entry.
            synchronized (ENTRIES) {
                ENTRIES.remove(spec, entry);
            }
            if (failure instanceof Error) {
                throw (Error) failure;
            }
            throw (Exception) failure;
        }
    }

    private static void release(EncoderSpec spec, Entry entry) {
        long idle = idleNanos();
        synchronized (entry) {
            entry.leases--;
            if (entry.leases > 0) {
                return;
            }
            entry.idleSince = System.nanoTime();
            if (idle > 0) {
                scheduleEviction(idle);
                return;
            }
        }
        evict(spec, entry, 0);
    }

    /** Closes the entry if it is still unheld and idle for at least {@code idle} nanoseconds. */
    private static void evict(EncoderSpec spec, Entry entry, long idle) {
        TextEncoder toClose;
        synchronized (ENTRIES) {
            synchronized (entry) {
                if (entry.closed
                        || entry.leases > 0
                        || System.nanoTime() - entry.idleSince < idle) {
                    return;
                }
                entry.closed = true;
                toClose = entry.encoder;
                entry.encoder = null;
                ENTRIES.remove(spec, entry);
            }
        }
        if (toClose != null) {
            toClose.close();
            LOG.fine("Tilewise closed the idle encoder " + spec);
        }
    }

    private static synchronized void scheduleEviction(long idle) {
        if (evictor == null) {
            evictor =
                    Executors.newSingleThreadScheduledExecutor(
                            r -> {
                                Thread t = new Thread(r, "tilewise-cache-evictor");
                                t.setDaemon(true);
                                return t;
                            });
        }
        evictor.schedule(ModelCache::evictIdle, idle + 1_000_000, TimeUnit.NANOSECONDS);
    }

    /** Closes every encoder that nobody holds and that has been idle for the idle time. */
    static void evictIdle() {
        long idle = idleNanos();
        for (Map.Entry<EncoderSpec, Entry> e : snapshot()) {
            evict(e.getKey(), e.getValue(), idle);
        }
    }

    private static List<Map.Entry<EncoderSpec, Entry>> snapshot() {
        synchronized (ENTRIES) {
            return new ArrayList<>(ENTRIES.entrySet());
        }
    }

    /**
     * Closes every encoder nobody holds now, whatever its idle time (e.g. between jobs, to give the
     * memory back).
     *
     * @return how many encoders were closed
     */
    public static int evictUnused() {
        int closed = 0;
        for (Map.Entry<EncoderSpec, Entry> e : snapshot()) {
            int before = size();
            evict(e.getKey(), e.getValue(), 0);
            closed += before - size();
        }
        return closed;
    }

    /**
     * Returns how many models this JVM has loaded since it started (a model loaded again after an
     * eviction counts twice).
     *
     * @return the count
     */
    public static long loadCount() {
        return LOADS.get();
    }

    /**
     * Returns how many encoders are loaded now.
     *
     * @return the count
     */
    public static int size() {
        synchronized (ENTRIES) {
            return ENTRIES.size();
        }
    }

    private static long idleNanos() {
        String s = System.getProperty(IDLE_SECONDS_PROPERTY, "600").trim();
        try {
            return TimeUnit.MILLISECONDS.toNanos((long) (Double.parseDouble(s) * 1000));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(
                    IDLE_SECONDS_PROPERTY + " must be a number of seconds, got '" + s + "'", e);
        }
    }

    private static void closeAll() {
        for (Map.Entry<EncoderSpec, Entry> e : snapshot()) {
            TextEncoder encoder;
            synchronized (e.getValue()) {
                encoder = e.getValue().encoder;
                e.getValue().encoder = null;
                e.getValue().closed = true;
            }
            if (encoder != null) {
                try {
                    encoder.close();
                } catch (RuntimeException | Error ex) {
                    LOG.log(Level.FINE, "closing " + e.getKey() + " at exit", ex);
                }
            }
        }
    }
}
