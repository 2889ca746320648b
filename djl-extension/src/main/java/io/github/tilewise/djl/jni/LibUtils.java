package io.github.tilewise.djl.jni;

import io.github.tilewise.djl.NativeLibraryUnavailableException;
import io.github.tilewise.djl.Tilewise;
import java.io.IOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finds, verifies and loads {@code libtilewise} once per JVM.
 *
 * <p>The library ships inside the {@code tilewise-native} jar under {@code native/<os>-<arch>/}.
 * {@link NativeLibraryLoader} copies it to a private cache ({@code <tilewise.cache.dir>/<content
 * hash>/}, default {@code ~/.tilewise/cache}), checks the copy's SHA-256 against the jar before
 * every load and never follows a link out of the cache. When there is no build for this platform,
 * or loading fails, {@link #isAvailable()} is false, {@link #unavailableReason()} says why (also
 * logged once), and every operator falls back to its DJL reference implementation.
 */
public final class LibUtils {

    private static final Logger logger = LoggerFactory.getLogger(LibUtils.class);
    private static final String LIB_NAME = "libtilewise.so";
    private static final int RETAINED_BYTES = 1 << 30;

    private static final String failure;

    static {
        failure = load();
        if (failure != null) {
            logger.warn(
                    "Tilewise native kernels unavailable, using the DJL reference path: {}",
                    failure);
        }
    }

    private LibUtils() {}

    /**
     * Returns whether the native library is loaded.
     *
     * @return true if native kernels can be called
     */
    public static boolean isAvailable() {
        return failure == null;
    }

    /**
     * Returns why the native library is not loaded.
     *
     * @return the reason, or null if it is loaded
     */
    public static String unavailableReason() {
        return failure;
    }

    /**
     * Returns the JNI entry points, or throws if the library is not loaded.
     *
     * @return the entry points
     * @throws NativeLibraryUnavailableException naming the reason the library could not be loaded
     */
    public static TilewiseNative requireLoaded() {
        if (failure != null) {
            throw new NativeLibraryUnavailableException(
                    "Tilewise native library is not loaded: " + failure);
        }
        return TilewiseNative.INSTANCE;
    }

    /** Returns null on success, else the reason. */
    private static String load() {
        if (!Boolean.parseBoolean(System.getProperty("tilewise.native", "true"))) {
            return "disabled by -Dtilewise.native=false";
        }
        String platform = NativeLibraryLoader.platform();
        String resource = "/native/" + platform + "/" + LIB_NAME;
        try {
            if (NativeLibraryLoader.load(resource) == null) {
                return "no native build for " + platform + " in the tilewise-native jar";
            }
        } catch (IOException | UnsatisfiedLinkError | SecurityException e) {
            return "loading " + resource + " failed: " + e;
        }
        try {
            applySettings();
        } catch (RuntimeException e) {
            return "configuring the native library failed: " + e.getMessage();
        }
        logger.debug("Loaded {}", Tilewise.describe());
        return null;
    }

    private static void applySettings() {
        String isa = System.getProperty("tilewise.isa", "auto").trim();
        if (!isa.isEmpty() && !"auto".equalsIgnoreCase(isa)) {
            int wanted = Tilewise.Isa.fromName(isa).ordinal();
            if (wanted > TilewiseNative.INSTANCE.isaDetected()) {
                logger.warn(
                        "-Dtilewise.isa={} is not supported by this CPU; using {}",
                        isa,
                        Tilewise.Isa.values()[TilewiseNative.INSTANCE.isaDetected()]);
            } else {
                TilewiseNative.INSTANCE.setIsa(wanted);
            }
        }
        retainFreedMemory();
        String threads = System.getProperty("tilewise.threads");
        if (threads != null && !threads.isBlank()) {
            try {
                TilewiseNative.INSTANCE.setNumThreads(Integer.parseInt(threads.trim()));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(
                        "-Dtilewise.threads must be an integer, got '" + threads + "'", e);
            }
        }
    }

    /**
     * With {@code -Dtilewise.retainFreedMemory=true}: lets glibc keep up to {@value
     * #RETAINED_BYTES} bytes of freed blocks for reuse instead of returning them to the OS, so
     * per-call activations do not page-fault on fresh pages. Off by default: it is process-wide,
     * and since the encoder's fused low-precision path stopped allocating most per-layer
     * activations it no longer measurably changes page faults or throughput here (see
     * docs/BENCHMARKS.md).
     */
    private static void retainFreedMemory() {
        if (!Boolean.parseBoolean(System.getProperty("tilewise.retainFreedMemory", "false"))) {
            return;
        }
        if (TilewiseNative.INSTANCE.retainFreedMemory(RETAINED_BYTES)) {
            logger.info(
                    "Tilewise: glibc keeps up to {} MiB of freed memory for reuse"
                            + " (-Dtilewise.retainFreedMemory=true, process-wide)",
                    RETAINED_BYTES >> 20);
        }
    }
}
